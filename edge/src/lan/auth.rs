//! Sign-in on the LAN: who a request is from ([`Principal`]), the sessions behind the
//! `guardian_session` cookie ([`Sessions`], expiring on the clock's wall time), the limit on
//! failed sign-ins per address and per user ([`Failures`]), and the check of a synced user's
//! password (Argon2id on the blocking pool, at most [`VERIFY_AT_ONCE`] at a time).
//! [`Failures`], [`Sessions`] and [`session_cookie`] are pure: time is an argument.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use protocols::messages::config::Role;
use serde::Serialize;

/// The session cookie's name.
pub use protocols::http::session::COOKIE;
/// The name the local admin token signs in as.
pub const LOCAL_ADMIN: &str = "local-admin";
/// Password checks (Argon2id, tens of MiB each) running at once; more wait their turn.
pub const VERIFY_AT_ONCE: usize = 2;
/// How long a sign-in waits for its turn at a password check.
pub const VERIFY_WAIT: Duration = Duration::from_secs(10);

/// Who a request is from, as the API sees it: the role and cameras as stored now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The user name ([`LOCAL_ADMIN`] for the local admin token).
    pub name: String,
    /// Admin or viewer.
    pub role: Role,
    /// The cameras the user sees; `None` for every camera.
    pub cameras: Option<Vec<String>>,
}

impl Principal {
    /// The local admin token's principal.
    pub fn local_admin() -> Principal {
        Principal {
            name: LOCAL_ADMIN.into(),
            role: Role::Admin,
            cameras: None,
        }
    }

    /// Whether the user sees `camera`'s events, clips and state.
    pub fn sees(&self, camera: &str) -> bool {
        self.cameras
            .as_ref()
            .is_none_or(|c| c.iter().any(|x| x == camera))
    }
}

/// What a session stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Signed in with the local admin token whose SHA-256 this is (a rotated token ends the
    /// session).
    LocalAdmin {
        /// The token's SHA-256 at sign-in.
        token_hash: [u8; 32],
    },
    /// Signed in as a synced user, with the password hash then stored (a changed password
    /// ends the session).
    User {
        /// The name.
        name: String,
        /// The PHC string at sign-in.
        password_phc: String,
    },
}

/// A session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who.
    pub holder: Holder,
    /// When it ends, Unix ms.
    pub expires_at_ms: u64,
}

/// The most sessions kept; past it the one ending first goes.
pub const MAX_SESSIONS: usize = 1024;

/// Open sessions by the SHA-256 of their cookie value (the value itself is not kept).
#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    by_id: HashMap<[u8; 32], Session>,
}

impl Sessions {
    /// Sessions lasting `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Sessions {
            ttl,
            by_id: HashMap::new(),
        }
    }

    /// Opens a session for `holder` at `now_ms` with the cookie value `secret` (random, made
    /// by the caller); its end.
    pub fn open(&mut self, secret: &str, holder: Holder, now_ms: u64) -> u64 {
        self.by_id.retain(|_, s| s.expires_at_ms > now_ms);
        if self.by_id.len() >= MAX_SESSIONS
            && let Some(first) = self
                .by_id
                .iter()
                .min_by_key(|(_, s)| s.expires_at_ms)
                .map(|(k, _)| *k)
        {
            self.by_id.remove(&first);
        }
        let expires_at_ms = now_ms.saturating_add(self.ttl.as_millis() as u64);
        self.by_id.insert(
            key(secret),
            Session {
                holder,
                expires_at_ms,
            },
        );
        expires_at_ms
    }

    /// The session of cookie value `secret` at `now_ms`, unless it ended (an ended one is
    /// forgotten).
    pub fn get(&mut self, secret: &str, now_ms: u64) -> Option<Session> {
        let k = key(secret);
        match self.by_id.get(&k) {
            Some(s) if s.expires_at_ms > now_ms => Some(s.clone()),
            Some(_) => {
                self.by_id.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `secret`.
    pub fn end(&mut self, secret: &str) {
        self.by_id.remove(&key(secret));
    }

    /// Sessions held now.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

fn key(secret: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).into()
}

pub use protocols::http::session::{bearer, session_cookie};

/// The `Set-Cookie` value that holds `secret` for `max_age` (plain http on the LAN: not
/// Secure).
pub fn set_cookie(secret: &str, max_age: Duration) -> String {
    protocols::http::session::set_cookie(secret, max_age.as_secs(), false)
}

/// The `Set-Cookie` value that clears the cookie.
pub fn clear_cookie() -> String {
    protocols::http::session::set_cookie("", 0, false)
}

/// Failed sign-ins per key (an address, a user name) in a fixed window: past `limit` the key
/// is refused with 429 until its window ends. Other keys are not affected.
#[derive(Debug)]
pub struct Failures<K> {
    limit: u32,
    window: Duration,
    by_key: HashMap<K, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failed: u32,
}

/// The most keys remembered; past it, expired windows go, then the oldest.
const MAX_KEYS: usize = 10_000;

impl<K: Eq + Hash + Clone> Failures<K> {
    /// At most `limit` failures per `window` and key.
    pub fn new(limit: u32, window: Duration) -> Self {
        Failures {
            limit: limit.max(1),
            window,
            by_key: HashMap::new(),
        }
    }

    /// `Some(wait)` when `key` is refused at `now`, for `wait` more.
    pub fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let w = self.by_key.get(key)?;
        let end = w.started + self.window;
        (w.failed >= self.limit && now < end).then(|| end - now)
    }

    /// Counts a failure of `key` at `now`; true when this one reached the limit (log it once).
    pub fn failed(&mut self, key: &K, now: Instant) -> bool {
        if self.by_key.len() >= MAX_KEYS && !self.by_key.contains_key(key) {
            let window = self.window;
            self.by_key.retain(|_, w| now < w.started + window);
            if self.by_key.len() >= MAX_KEYS
                && let Some(oldest) = self
                    .by_key
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| k.clone())
            {
                self.by_key.remove(&oldest);
            }
        }
        let w = self.by_key.entry(key.clone()).or_insert(Window {
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
        w.failed == self.limit
    }
}

/// Whether `password` matches the Argon2id hash `phc` (its own parameters). Slow on purpose:
/// call it on the blocking pool.
pub fn password_matches(phc: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    match argon2::PasswordHash::new(phc) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash no password matches in practice, checked for unknown user names so that a sign-in
/// takes as long whether or not the name exists.
pub fn decoy_phc() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2::Argon2::default()
            .hash_password(b"no user has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use guardian_node::clock::{Clock, ManualClock};

    #[test]
    fn sessions_end_when_the_held_clock_passes_their_expiry() {
        let clock = ManualClock::new(1_000_000);
        let mut s = Sessions::new(Duration::from_secs(12 * 3600));
        let end = s.open(
            "secret-a",
            Holder::LocalAdmin {
                token_hash: [0; 32],
            },
            clock.wall_ms(),
        );
        assert_eq!(end, 1_000_000 + 12 * 3_600_000);
        assert_eq!(
            s.get("secret-a", clock.wall_ms()).unwrap().expires_at_ms,
            end
        );
        assert_eq!(s.get("secret-b", clock.wall_ms()), None);
        clock.advance(Duration::from_secs(12 * 3600 - 1));
        assert!(
            s.get("secret-a", clock.wall_ms()).is_some(),
            "a second left"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.get("secret-a", clock.wall_ms()), None, "ended");
        assert!(s.is_empty(), "and forgotten");
        // Logout ends one session alone.
        let user = Holder::User {
            name: "sitter".into(),
            password_phc: "$argon2id$x".into(),
        };
        s.open("one", user.clone(), clock.wall_ms());
        s.open("two", user, clock.wall_ms());
        s.end("one");
        assert_eq!(s.get("one", clock.wall_ms()), None);
        assert!(s.get("two", clock.wall_ms()).is_some());
    }

    #[test]
    fn sessions_are_bounded() {
        let mut s = Sessions::new(Duration::from_secs(60));
        for i in 0..(MAX_SESSIONS as u64 + 10) {
            s.open(
                &format!("s{i}"),
                Holder::LocalAdmin {
                    token_hash: [0; 32],
                },
                i,
            );
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(s.get("s0", 100).is_none(), "the one ending first went");
        assert!(s.get(&format!("s{}", MAX_SESSIONS + 9), 100).is_some());
    }

    #[test]
    fn cookies_and_bearer_tokens_are_read_from_their_headers() {
        assert_eq!(
            session_cookie(Some("a=1; guardian_session=abc ; b=2")),
            Some("abc")
        );
        assert_eq!(session_cookie(Some("guardian_session=")), None);
        assert_eq!(session_cookie(Some("xguardian_session=abc")), None);
        assert_eq!(session_cookie(None), None);
        let c = set_cookie("abc", Duration::from_secs(3600));
        for part in [
            "guardian_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
        assert_eq!(bearer(Some("Bearer tok")), Some("tok"));
        assert_eq!(bearer(Some("Basic tok")), None);
    }

    #[test]
    fn failures_block_one_key_for_the_rest_of_its_window() {
        let clock = ManualClock::new(0);
        let t0 = clock.monotonic();
        let min = Duration::from_secs(60);
        let mut f = Failures::new(3, min);
        let (a, b) = ("192.0.2.1".to_owned(), "192.0.2.2".to_owned());
        assert!(!f.failed(&a, t0));
        assert!(!f.failed(&a, t0));
        assert_eq!(f.blocked(&a, t0), None);
        clock.advance(Duration::from_secs(10));
        assert!(
            f.failed(&a, clock.monotonic()),
            "the third reaches the limit"
        );
        assert_eq!(
            f.blocked(&a, clock.monotonic()),
            Some(Duration::from_secs(50))
        );
        assert_eq!(
            f.blocked(&b, clock.monotonic()),
            None,
            "another key is free"
        );
        assert!(!f.failed(&a, clock.monotonic()), "logged once");
        clock.advance(Duration::from_secs(50));
        assert_eq!(f.blocked(&a, clock.monotonic()), None, "the window ended");
        assert!(!f.failed(&a, clock.monotonic()));
    }

    #[test]
    fn viewers_see_their_cameras_only() {
        let v = Principal {
            name: "sitter".into(),
            role: Role::Viewer,
            cameras: Some(vec!["porch".into()]),
        };
        assert!(v.sees("porch") && !v.sees("yard"));
        assert!(Principal::local_admin().sees("yard"));
    }

    #[test]
    fn passwords_are_checked_against_their_hash() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse", &salt)
        .unwrap()
        .to_string();
        assert!(password_matches(&phc, "correct horse"));
        assert!(!password_matches(&phc, "wrong horse"));
        assert!(!password_matches("not a hash", "correct horse"));
        assert!(decoy_phc().starts_with("$argon2id$"));
        assert!(!password_matches(decoy_phc(), ""));
    }
}
