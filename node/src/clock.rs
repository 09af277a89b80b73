//! Time, read and waited on through one handle so tests can hold it (Moonfire's `Clocks`).
//!
//! - [`Clock::wall_ms`]: wall time (Unix ms), for what is stored or sent: event times, token
//!   expiry, `last_seen`.
//! - [`Clock::monotonic`]: an `Instant` that never goes back, for deadlines and intervals.
//! - [`Clock::sleep`] (async) and [`Clock::sleep_blocking`] (threads, interruptible by a
//!   [`Shutdown`]).
//!
//! [`SystemClock`] is the real one. [`ManualClock`] moves only when a test calls
//! [`ManualClock::advance`]; sleepers whose deadline it passes wake at once, so a retention
//! sweep, a token expiry or a backoff is tested without waiting in real time.
//!
//! Network time-outs (a request that must answer within 30 s) stay on tokio's timer: they
//! bound I/O with the outside world, which a manual clock does not drive.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::shutdown::Shutdown;

/// A future returned by [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where time comes from. Shared as [`SharedClock`].
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Wall time, Unix milliseconds.
    fn wall_ms(&self) -> u64;
    /// Monotonic time.
    fn monotonic(&self) -> Instant;
    /// Resolves once `d` has passed on this clock.
    fn sleep(&self, d: Duration) -> Sleep;
    /// Blocks the calling thread until `d` has passed on this clock or `stop` is triggered;
    /// returns `true` when it was stopped.
    fn sleep_blocking(&self, d: Duration, stop: &Shutdown) -> bool;
}

/// A clock shared between tasks and threads.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clocks and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn monotonic(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }

    fn sleep_blocking(&self, d: Duration, stop: &Shutdown) -> bool {
        stop.wait_blocking(d)
    }
}

/// A clock that moves only when told to ([`ManualClock::advance`], [`ManualClock::set_wall_ms`]).
#[derive(Clone)]
pub struct ManualClock(Arc<ManualInner>);

struct ManualInner {
    origin: Instant,
    state: Mutex<ManualState>,
    changed: Condvar,
    tick: tokio::sync::watch::Sender<Duration>,
}

#[derive(Debug, Clone, Copy)]
struct ManualState {
    wall_ms: u64,
    elapsed: Duration,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.state()).finish()
    }
}

impl ManualClock {
    /// A clock whose wall time starts at `wall_ms`.
    pub fn new(wall_ms: u64) -> Self {
        let (tick, _) = tokio::sync::watch::channel(Duration::ZERO);
        ManualClock(Arc::new(ManualInner {
            origin: Instant::now(),
            state: Mutex::new(ManualState {
                wall_ms,
                elapsed: Duration::ZERO,
            }),
            changed: Condvar::new(),
            tick,
        }))
    }

    /// This clock as a [`SharedClock`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    fn state(&self) -> ManualState {
        *self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time since the clock was made, on this clock.
    pub fn elapsed(&self) -> Duration {
        self.state().elapsed
    }

    /// Moves wall and monotonic time forward by `d`, waking every sleeper it passes.
    pub fn advance(&self, d: Duration) {
        let elapsed = {
            let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
            s.elapsed += d;
            s.wall_ms = s.wall_ms.saturating_add(d.as_millis() as u64);
            s.elapsed
        };
        self.0.changed.notify_all();
        self.0.tick.send_replace(elapsed);
    }

    /// Sets wall time alone (a clock step, as NTP makes): monotonic time does not move.
    pub fn set_wall_ms(&self, wall_ms: u64) {
        self.0
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .wall_ms = wall_ms;
    }

    /// How many async sleeps are waiting on this clock now (tests wait for a task to be
    /// asleep before they advance the clock past its deadline).
    pub fn sleepers(&self) -> usize {
        self.0.tick.receiver_count()
    }
}

impl Clock for ManualClock {
    fn wall_ms(&self) -> u64 {
        self.state().wall_ms
    }

    fn monotonic(&self) -> Instant {
        self.0.origin + self.state().elapsed
    }

    fn sleep(&self, d: Duration) -> Sleep {
        let deadline = self.state().elapsed + d;
        let mut rx = self.0.tick.subscribe();
        Box::pin(async move {
            while *rx.borrow_and_update() < deadline {
                if rx.changed().await.is_err() {
                    // The clock is gone: nothing will ever move it.
                    std::future::pending::<()>().await;
                }
            }
        })
    }

    fn sleep_blocking(&self, d: Duration, stop: &Shutdown) -> bool {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = s.elapsed + d;
        loop {
            if stop.is_triggered() {
                return true;
            }
            if s.elapsed >= deadline {
                return false;
            }
            // The short real wait only lets a trigger of `stop` be seen; time itself moves
            // only through `advance`.
            s = self
                .0
                .changed
                .wait_timeout(s, Duration::from_millis(5))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_wall_and_monotonic_move_together() {
        let c = ManualClock::new(1_000);
        let t0 = c.monotonic();
        c.advance(Duration::from_millis(1_500));
        assert_eq!(c.wall_ms(), 2_500);
        assert_eq!(c.monotonic() - t0, Duration::from_millis(1_500));
        c.set_wall_ms(10);
        assert_eq!(c.wall_ms(), 10);
        assert_eq!(c.monotonic() - t0, Duration::from_millis(1_500));
    }

    #[tokio::test]
    async fn manual_sleep_wakes_only_when_advanced_past_its_deadline() {
        let c = ManualClock::new(0);
        let shared = c.shared();
        let sleeping = tokio::spawn(async move { shared.sleep(Duration::from_secs(60)).await });
        while c.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        c.advance(Duration::from_secs(59));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(!sleeping.is_finished());
        c.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeping)
            .await
            .expect("woken by advance")
            .unwrap();
    }

    #[tokio::test]
    async fn zero_sleep_is_ready() {
        let c = ManualClock::new(0);
        tokio::time::timeout(Duration::from_secs(1), c.sleep(Duration::ZERO))
            .await
            .expect("ready at once");
    }

    #[test]
    fn manual_blocking_sleep_ends_on_advance_or_stop() {
        let c = ManualClock::new(0);
        let stop = Shutdown::new();
        let (c2, stop2) = (c.clone(), stop.clone());
        let t = std::thread::spawn(move || c2.sleep_blocking(Duration::from_secs(10), &stop2));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!t.is_finished());
        c.advance(Duration::from_secs(10));
        assert!(!t.join().unwrap(), "ended by time, not by stop");

        let (c2, stop2) = (c.clone(), stop.clone());
        let t = std::thread::spawn(move || c2.sleep_blocking(Duration::from_secs(10), &stop2));
        stop.trigger();
        assert!(t.join().unwrap(), "ended by stop");
    }

    #[test]
    fn system_blocking_sleep_returns_early_on_stop() {
        let stop = Shutdown::new();
        let s2 = stop.clone();
        let t =
            std::thread::spawn(move || SystemClock.sleep_blocking(Duration::from_secs(30), &s2));
        stop.trigger();
        assert!(t.join().unwrap());
        assert!(!SystemClock.sleep_blocking(Duration::from_millis(1), &Shutdown::new()));
    }
}
