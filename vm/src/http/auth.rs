//! Who is asking, and whether they may: the client's address (the connection's, or behind a
//! configured trusted proxy the one it forwards), the owner token in `Authorization` only
//! (never in a query string, where it would end up in proxy logs and browser history), and
//! a limit on failed sign-ins per address. [`client_ip`] and [`Failures`] are pure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warp::{Filter, Rejection};

use super::ApiError;
use super::server::ClientAddr;
use crate::state::VmState;

/// The address a request is from: the connection's peer, unless that peer is a trusted
/// proxy, in which case the right-most address of `X-Forwarded-For` that is not itself a
/// trusted proxy (the left part is whatever the client wrote, and cannot be trusted).
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut ip = peer;
    for part in header.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(a) => {
                ip = a;
                if !trusted.contains(&a) {
                    break;
                }
            }
            // Garbage in the header: stop at the last address we could trust.
            Err(_) => break,
        }
    }
    ip
}

/// Failed sign-ins per address in a sliding minute (a fixed window per address, which is
/// enough here): past the limit an address is refused with 429 until its window ends,
/// whatever it sends. Other addresses are not affected.
#[derive(Debug)]
pub struct Failures {
    limit: u32,
    window: Duration,
    by_address: HashMap<IpAddr, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failed: u32,
}

/// The most addresses remembered; past it, expired windows are dropped, and if none is
/// expired the oldest goes (an attacker with many addresses cannot grow the map).
const MAX_ADDRESSES: usize = 10_000;

/// What a failed sign-in leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// Failures from the address in its window, this one included.
    pub count: u32,
    /// This failure reached the limit: the address is refused from now on (log it once).
    pub now_limited: bool,
}

impl Failures {
    /// At most `limit` failures per `window` and address.
    pub fn new(limit: u32, window: Duration) -> Self {
        Failures {
            limit: limit.max(1),
            window,
            by_address: HashMap::new(),
        }
    }

    /// `Some(wait)` when `ip` is refused at `now`, for `wait` more.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let w = self.by_address.get(&ip)?;
        let end = w.started + self.window;
        (w.failed >= self.limit && now < end).then(|| end - now)
    }

    /// Counts a failed sign-in from `ip` at `now`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> Failed {
        if self.by_address.len() >= MAX_ADDRESSES && !self.by_address.contains_key(&ip) {
            let window = self.window;
            self.by_address.retain(|_, w| now < w.started + window);
            if self.by_address.len() >= MAX_ADDRESSES
                && let Some(oldest) = self
                    .by_address
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(a, _)| *a)
            {
                self.by_address.remove(&oldest);
            }
        }
        let w = self.by_address.entry(ip).or_insert(Window {
            started: now,
            failed: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failed: 0,
            };
        }
        w.failed = w.failed.saturating_add(1);
        Failed {
            count: w.failed,
            now_limited: w.failed == self.limit,
        }
    }
}

/// The HTTP side's sign-in state: trusted proxies and the failure counts.
pub struct SignIn {
    trusted: Vec<IpAddr>,
    failures: Mutex<Failures>,
    clock: guardian_node::SharedClock,
}

impl SignIn {
    /// From `[http]`.
    pub fn new(
        trusted: Vec<IpAddr>,
        failures_per_minute: u32,
        clock: guardian_node::SharedClock,
    ) -> Self {
        SignIn {
            clock,
            trusted,
            failures: Mutex::new(Failures::new(failures_per_minute, Duration::from_secs(60))),
        }
    }

    fn now(&self) -> Instant {
        self.clock.monotonic()
    }

    /// Refuses a blocked address with 429.
    pub fn check_not_blocked(&self, ip: IpAddr) -> Result<(), Rejection> {
        match self
            .failures
            .lock()
            .expect("sign-in lock")
            .blocked(ip, self.now())
        {
            Some(wait) => Err(warp::reject::custom(ApiError::TooManyAttempts(
                wait.as_secs().max(1),
            ))),
            None => Ok(()),
        }
    }

    /// Records a failure from `ip` (logged) and gives the rejection to answer with.
    pub fn refuse(&self, ip: IpAddr, what: &'static str) -> Rejection {
        let f = self
            .failures
            .lock()
            .expect("sign-in lock")
            .failed(ip, self.now());
        if f.now_limited {
            tracing::warn!(client = %ip, failures = f.count, "failed sign-ins: the address is refused for a minute");
        } else {
            tracing::warn!(client = %ip, failures = f.count, what, "failed sign-in");
        }
        warp::reject::custom(ApiError::Unauthorized)
    }
}

/// Who a request is from.
#[derive(Clone)]
pub struct Client {
    /// Its address (see [`client_ip`]).
    pub ip: IpAddr,
    /// The sign-in state.
    pub sign_in: Arc<SignIn>,
}

/// The requesting [`Client`]; 429 when its address is refused.
pub fn client(sign_in: Arc<SignIn>) -> impl Filter<Extract = (Client,), Error = Rejection> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and_then(move |addr: Option<ClientAddr>, xff: Option<String>| {
            let sign_in = sign_in.clone();
            async move {
                let peer = addr
                    .map(|a| a.0.ip())
                    .unwrap_or(IpAddr::from([127, 0, 0, 1]));
                let ip = client_ip(peer, xff.as_deref(), &sign_in.trusted);
                sign_in.check_not_blocked(ip)?;
                Ok::<_, Rejection>(Client { ip, sign_in })
            }
        })
}

/// The bearer token of an `Authorization` header.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The owner's token in `Authorization: Bearer`, or 401 (a wrong token counts as a failed
/// sign-in; a request with none does not).
pub fn owner(
    state: Arc<VmState>,
    sign_in: Arc<SignIn>,
) -> impl Filter<Extract = (Arc<VmState>,), Error = Rejection> + Clone {
    client(sign_in)
        .and(warp::header::optional::<String>("authorization"))
        .and_then(move |client: Client, header: Option<String>| {
            let state = state.clone();
            async move {
                match bearer(header.as_deref()) {
                    Some(t) if state.owner_token_matches(t) => Ok(state),
                    Some(_) => Err(client.sign_in.refuse(client.ip, "owner token")),
                    // No credentials at all is no guess: refused, not counted.
                    None => Err(warp::reject::custom(ApiError::Unauthorized)),
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_forwarded_address_counts_only_behind_a_trusted_proxy() {
        let proxy = [ip("10.0.0.1"), ip("10.0.0.2")];
        let peer = ip("10.0.0.1");
        // Not a trusted peer: its header is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.7"), Some("1.2.3.4"), &proxy),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(peer, None, &proxy), peer);
        assert_eq!(
            client_ip(peer, Some("203.0.113.9"), &proxy),
            ip("203.0.113.9")
        );
        // The client wrote a fake first entry; the proxies appended the real one.
        assert_eq!(
            client_ip(peer, Some("6.6.6.6, 203.0.113.9, 10.0.0.2"), &proxy),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(peer, Some("garbage, 203.0.113.9"), &proxy),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(peer, Some("garbage"), &proxy), peer);
        assert_eq!(
            client_ip(peer, Some("2001:db8::5"), &proxy),
            ip("2001:db8::5")
        );
        // With no trusted proxy, nobody can choose their address.
        assert_eq!(client_ip(peer, Some("1.2.3.4"), &[]), peer);
    }

    #[test]
    fn failures_block_one_address_for_the_rest_of_its_window() {
        let t0 = Instant::now();
        let min = Duration::from_secs(60);
        let mut f = Failures::new(3, min);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!(f.blocked(a, t0), None);
        assert!(!f.failed(a, t0).now_limited);
        assert!(!f.failed(a, t0).now_limited);
        assert_eq!(f.blocked(a, t0), None);
        let third = f.failed(a, t0 + Duration::from_secs(10));
        assert_eq!(
            third,
            Failed {
                count: 3,
                now_limited: true
            }
        );
        assert_eq!(
            f.blocked(a, t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(50))
        );
        assert_eq!(f.blocked(b, t0), None, "another address is not affected");
        // More failures while blocked do not log again.
        assert!(!f.failed(a, t0 + Duration::from_secs(20)).now_limited);
        // The window ends: free again, and counting starts over.
        assert_eq!(f.blocked(a, t0 + min), None);
        assert_eq!(f.failed(a, t0 + min).count, 1);
    }

    #[test]
    fn the_table_of_addresses_is_bounded() {
        let t0 = Instant::now();
        let mut f = Failures::new(2, Duration::from_secs(60));
        for i in 0..(MAX_ADDRESSES as u32 + 50) {
            f.failed(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert!(f.by_address.len() <= MAX_ADDRESSES);
    }
}
