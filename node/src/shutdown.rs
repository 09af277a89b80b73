//! The one stop signal of a process: a token that tasks await and threads poll or wait on.
//!
//! `process::shutdown_on_signal` makes the root and triggers it on SIGTERM or SIGINT. Every
//! task and thread gets the root or a [`Shutdown::child`] of it: triggering a parent
//! triggers its children (the process stops everything), triggering a child does not touch
//! its parent (a camera removed at run time stops its own thread only).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// A stop signal; clones share it.
#[derive(Clone)]
pub struct Shutdown(Arc<Inner>);

struct Inner {
    triggered: AtomicBool,
    notify: tokio::sync::Notify,
    lock: Mutex<()>,
    cv: Condvar,
    children: Mutex<Vec<Weak<Inner>>>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn new() -> Arc<Inner> {
        Arc::new(Inner {
            triggered: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            children: Mutex::new(Vec::new()),
        })
    }

    fn trigger(&self) {
        if self.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        self.notify.notify_waiters();
        {
            let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.cv.notify_all();
        }
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|p| p.into_inner()));
        for child in children.iter().filter_map(Weak::upgrade) {
            child.trigger();
        }
    }
}

impl Shutdown {
    /// A root signal, not triggered.
    pub fn new() -> Self {
        Shutdown(Inner::new())
    }

    /// A signal that is triggered with this one, and can also be triggered alone.
    pub fn child(&self) -> Shutdown {
        let child = Inner::new();
        {
            let mut children = self.0.children.lock().unwrap_or_else(|p| p.into_inner());
            children.retain(|w| w.strong_count() > 0);
            children.push(Arc::downgrade(&child));
        }
        // Checked after registering, so a trigger racing with this call is not missed.
        if self.is_triggered() {
            child.trigger();
        }
        Shutdown(child)
    }

    /// Triggers this signal and every child of it. Idempotent.
    pub fn trigger(&self) {
        self.0.trigger();
    }

    /// Whether it has been triggered.
    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::SeqCst)
    }

    /// Resolves once triggered.
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }

    /// Blocks the calling thread until triggered or `timeout` has passed (real time);
    /// returns whether it was triggered.
    pub fn wait_blocking(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.0.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.is_triggered() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .0
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_resolves_after_trigger_even_if_triggered_first() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let waiting = tokio::spawn(async move { s2.wait().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        s.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        // Already triggered: at once.
        tokio::time::timeout(Duration::from_secs(1), s.wait())
            .await
            .expect("ready");
    }

    #[test]
    fn a_parent_stops_its_children_not_the_other_way() {
        let root = Shutdown::new();
        let a = root.child();
        let b = root.child();
        let grandchild = a.child();
        b.trigger();
        assert!(b.is_triggered());
        assert!(!root.is_triggered() && !a.is_triggered());
        root.trigger();
        assert!(a.is_triggered() && grandchild.is_triggered());
        // A child made after the trigger starts triggered.
        assert!(root.child().is_triggered());
    }

    #[test]
    fn wait_blocking_times_out_or_wakes() {
        let s = Shutdown::new();
        assert!(!s.wait_blocking(Duration::from_millis(5)));
        let child = s.child();
        let t = std::thread::spawn(move || child.wait_blocking(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(10));
        s.trigger();
        assert!(t.join().unwrap(), "woken by the parent's trigger");
    }

    #[test]
    fn dropped_children_are_not_kept() {
        let root = Shutdown::new();
        for _ in 0..100 {
            drop(root.child());
        }
        let _kept = root.child();
        assert!(root.0.children.lock().unwrap().len() <= 2);
    }
}
