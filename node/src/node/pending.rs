//! Callers waiting for the answers to their outbound requests, by request id: the answer or
//! the failure goes to the one caller that waits for it, once; an answer nobody waits for
//! (its caller gave up) is dropped.

use std::collections::HashMap;
use std::hash::Hash;

use tokio::sync::oneshot;

use crate::error::RequestError;

/// Where the answer to one outbound request goes.
pub(crate) type Answer<T> = oneshot::Sender<Result<T, RequestError>>;

/// Callers waiting, by request id `K`, for answers `T`.
#[derive(Debug)]
pub(crate) struct Pending<K, T>(HashMap<K, Answer<T>>);

impl<K, T> Default for Pending<K, T> {
    fn default() -> Self {
        Pending(HashMap::new())
    }
}

impl<K: Hash + Eq, T> Pending<K, T> {
    /// A caller waits for the answer to request `id`.
    pub(crate) fn insert(&mut self, id: K, answer: Answer<T>) {
        self.0.insert(id, answer);
    }

    /// Request `id` ended with `result`: hands it to its caller. `false` when nobody was
    /// waiting (an unknown id, or a caller that gave up).
    pub(crate) fn resolve(&mut self, id: &K, result: Result<T, RequestError>) -> bool {
        self.0
            .remove(id)
            .is_some_and(|answer| answer.send(result).is_ok())
    }

    /// Requests still waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reaches_its_caller_once() {
        let mut p: Pending<u64, &str> = Pending::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        p.insert(1, tx1);
        p.insert(2, tx2);
        assert_eq!(p.len(), 2);
        assert!(p.resolve(&2, Err(RequestError::Timeout)));
        assert_eq!(rx2.try_recv().unwrap(), Err(RequestError::Timeout));
        assert!(rx1.try_recv().is_err(), "request 1 has no answer yet");
        assert!(p.resolve(&1, Ok("stored")));
        assert_eq!(rx1.try_recv().unwrap(), Ok("stored"));
        assert!(!p.resolve(&1, Ok("again")), "answered once");
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn unknown_ids_and_gone_callers_are_dropped() {
        let mut p: Pending<u64, u8> = Pending::default();
        assert!(!p.resolve(&7, Ok(1)));
        let (tx, rx) = oneshot::channel();
        p.insert(3, tx);
        drop(rx);
        assert!(!p.resolve(&3, Ok(1)), "the caller gave up");
        assert_eq!(p.len(), 0);
    }
}
