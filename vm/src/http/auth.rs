//! Who is asking, and whether they may: the client's address (the connection's, or behind a
//! configured trusted proxy the one it forwards), the owner token in `Authorization` only
//! (never in a query string, where it would end up in proxy logs and browser history), and
//! a limit on failed sign-ins per address. [`client_ip`] and [`Failures`] are pure.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warp::{Filter, Rejection};

use super::ApiError;
use super::server::ClientAddr;
use crate::access::{self, Principal};
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
pub struct Failures<K = IpAddr> {
    limit: u32,
    window: Duration,
    by_address: HashMap<K, Window>,
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

impl<K: Hash + Eq + Clone> Failures<K> {
    /// At most `limit` failures per `window` and address (or user).
    pub fn new(limit: u32, window: Duration) -> Self {
        Failures {
            limit: limit.max(1),
            window,
            by_address: HashMap::new(),
        }
    }

    /// `Some(wait)` when `ip` is refused at `now`, for `wait` more.
    pub fn blocked(&self, ip: K, now: Instant) -> Option<Duration> {
        let w = self.by_address.get(&ip)?;
        let end = w.started + self.window;
        (w.failed >= self.limit && now < end).then(|| end - now)
    }

    /// Counts a failed sign-in from `ip` at `now`.
    pub fn failed(&mut self, ip: K, now: Instant) -> Failed {
        if self.by_address.len() >= MAX_ADDRESSES && !self.by_address.contains_key(&ip) {
            let window = self.window;
            self.by_address.retain(|_, w| now < w.started + window);
            if self.by_address.len() >= MAX_ADDRESSES
                && let Some(oldest) = self
                    .by_address
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(a, _)| a.clone())
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

/// The HTTP side's sign-in state: trusted proxies, the failure counts per address and per
/// user name, and the bound on concurrent password checks.
pub struct SignIn {
    trusted: Vec<IpAddr>,
    failures: Mutex<Failures>,
    /// Failed passwords per user name: a guesser spread over many addresses is slowed down
    /// too. The owner token is not a user: the owner is never locked out by it.
    user_failures: Mutex<Failures<String>>,
    /// Argon2id runs at once (each takes memory and a core for a fraction of a second).
    pub hashing: tokio::sync::Semaphore,
    clock: guardian_node::SharedClock,
}

/// Failed passwords per user name and minute before it is refused for the rest of the minute.
pub const USER_FAILURES_PER_MINUTE: u32 = 10;
/// Password hashes computed at once.
pub const CONCURRENT_HASHES: usize = 2;

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
            user_failures: Mutex::new(Failures::new(
                USER_FAILURES_PER_MINUTE,
                Duration::from_secs(60),
            )),
            hashing: tokio::sync::Semaphore::new(CONCURRENT_HASHES),
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

    /// Refuses a user name that failed too often with 429.
    pub fn check_user_not_blocked(&self, name: &str) -> Result<(), Rejection> {
        match self
            .user_failures
            .lock()
            .expect("sign-in lock")
            .blocked(name.to_owned(), self.now())
        {
            Some(wait) => Err(warp::reject::custom(ApiError::TooManyAttempts(
                wait.as_secs().max(1),
            ))),
            None => Ok(()),
        }
    }

    /// Records a failed password for `name` from `ip` (both counted) and gives the rejection.
    pub fn refuse_user(&self, ip: IpAddr, name: &str) -> Rejection {
        let f = self
            .user_failures
            .lock()
            .expect("sign-in lock")
            .failed(name.to_owned(), self.now());
        if f.now_limited {
            tracing::warn!(user = %name, failures = f.count, "failed sign-ins: the user is refused for a minute");
        }
        self.refuse(ip, "password")
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

pub use protocols::http::session::bearer;

/// The [`Principal`] of a request: the owner token in `Authorization: Bearer`, or a live
/// session cookie (a user's, or one opened with the owner token); 401 otherwise. A wrong token
/// counts as a failed sign-in; no credentials, or an expired session, do not.
pub fn principal(
    state: Arc<VmState>,
    sign_in: Arc<SignIn>,
) -> impl Filter<Extract = (Arc<VmState>, Principal), Error = Rejection> + Clone {
    client(sign_in)
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("cookie"))
        .and_then(
            move |client: Client, header: Option<String>, cookie: Option<String>| {
                let state = state.clone();
                async move {
                    let p = identify(&state, &client, header.as_deref(), cookie.as_deref()).await?;
                    Ok::<_, Rejection>((state, p))
                }
            },
        )
        .untuple_one()
}

/// Who the credentials are (see [`principal`]).
pub async fn identify(
    state: &VmState,
    client: &Client,
    authorization: Option<&str>,
    cookie: Option<&str>,
) -> Result<Principal, Rejection> {
    match bearer(authorization) {
        Some(t) if state.owner_token_matches(t) => return Ok(Principal::owner()),
        Some(_) => return Err(client.sign_in.refuse(client.ip, "owner token")),
        None => {}
    }
    let Some(id) = access::session_cookie(cookie) else {
        return Err(warp::reject::custom(ApiError::Unauthorized));
    };
    match session_principal(state, id).await? {
        Some(p) => Ok(p),
        None => Err(warp::reject::custom(ApiError::Unauthorized)),
    }
}

/// The principal of a live session, by its cookie value.
pub async fn session_principal(state: &VmState, id: &str) -> Result<Option<Principal>, Rejection> {
    let key = session_key(id);
    let now = state.clock.wall_ms();
    let found = state
        .db
        .call(move |c| crate::db::session(c, &key, now))
        .await
        .map_err(super::internal)?;
    Ok(found.map(|(user, _)| match user {
        None => Principal::owner(),
        Some(u) => Principal {
            role: access::Role::parse(&u.user.role).unwrap_or(access::Role::Viewer),
            name: u.user.name,
            cameras: u.user.cameras,
        },
    }))
}

/// What a session is stored as: the SHA-256 of its cookie value, in hex.
pub fn session_key(id: &str) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(id.as_bytes()))
}

/// Anyone signed in (the state only).
pub fn signed_in(
    state: Arc<VmState>,
    sign_in: Arc<SignIn>,
) -> impl Filter<Extract = (Arc<VmState>,), Error = Rejection> + Clone {
    principal(state, sign_in).map(|s: Arc<VmState>, _p: Principal| s)
}

/// An admin (the owner token, or a user with the admin role), or 403.
pub fn owner(
    state: Arc<VmState>,
    sign_in: Arc<SignIn>,
) -> impl Filter<Extract = (Arc<VmState>,), Error = Rejection> + Clone {
    principal(state, sign_in).and_then(|s: Arc<VmState>, p: Principal| async move {
        if p.is_admin() {
            Ok(s)
        } else {
            Err(warp::reject::custom(ApiError::Forbidden(
                "this needs the admin role".into(),
            )))
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
