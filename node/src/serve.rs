//! Serving one `libp2p-stream` protocol: each incoming stream handled on its own task, at most
//! `width` at once (the next stream waits for a free slot, so a flood of streams queues in
//! libp2p's bounded accept queue instead of spawning without end), until the shutdown.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use libp2p::{PeerId, Stream};
use libp2p_stream::IncomingStreams;
use tokio::sync::Semaphore;

use crate::shutdown::Shutdown;

/// Runs `handle` for each stream of `incoming`, `width` at a time, until `shutdown` or the
/// end of the streams. Tasks in flight finish on their own (each bounds its own time).
pub async fn serve_streams<F, Fut>(
    mut incoming: IncomingStreams,
    width: usize,
    shutdown: Shutdown,
    handle: F,
) where
    F: Fn(PeerId, Stream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(width.max(1)));
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            next = incoming.next() => next,
        };
        let Some((peer, stream)) = next else { break };
        let permit = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let task = handle(peer, stream);
        tokio::spawn(async move {
            task.await;
            drop(permit);
        });
    }
}

/// [`serve_streams`] for handlers that answer a result: each is bounded by `within`, and a
/// failure or a time-out is logged with `what` (`"camera change report"`) and the peer.
pub async fn serve_streams_within<F, Fut, E>(
    incoming: IncomingStreams,
    width: usize,
    shutdown: Shutdown,
    within: std::time::Duration,
    what: &'static str,
    handle: F,
) where
    F: Fn(PeerId, Stream) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    serve_streams(incoming, width, shutdown, move |peer, stream| {
        let task = handle(peer, stream);
        async move {
            match tokio::time::timeout(within, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(%peer, error = %e, "{what} failed"),
                Err(_) => tracing::warn!(
                    %peer,
                    within_ms = within.as_millis() as u64,
                    "{what} timed out"
                ),
            }
        }
    })
    .await
}
