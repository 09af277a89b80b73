//! Signing in (`/api/v1/session`) and the users (`/api/v1/users`, admin only).
//!
//! A session is a random 32-byte cookie value (`guardian_session`, HttpOnly, SameSite=Strict,
//! Secure when `public_url` is https) whose SHA-256 is stored with its user and expiry, so a
//! restart keeps everyone signed in and a stolen database holds no usable cookie. Passwords are
//! hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes) on the blocking pool,
//! at most [`auth::CONCURRENT_HASHES`] at once. Failed sign-ins count per address and, for
//! passwords, per user name; an unknown name costs the same hash as a wrong password.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::{Rejection, Reply};
use zeroize::Zeroizing;

use super::auth::{self, Client};
use super::{ApiError, internal};
use crate::access::{self, Principal, Role};
use crate::db;
use crate::state::VmState;

/// The largest sign-in or user body.
pub(super) const MAX_BODY: u64 = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Serialize)]
struct SessionBody<'a> {
    user: &'a Principal,
    expires_at_ms: Option<u64>,
}

fn bad(m: impl Into<String>) -> Rejection {
    warp::reject::custom(ApiError::BadRequest(m.into()))
}

fn secure(state: &VmState) -> bool {
    state.config.http.public_url.starts_with("https://")
}

/// `POST /api/v1/session`: the owner token or a user's password; sets the cookie.
pub(super) async fn sign_in(
    state: Arc<VmState>,
    client: Client,
    body: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    let b: SignInBody = serde_json::from_slice(&body)
        .map_err(|_| bad("expected {\"token\": ...} or {\"username\": ..., \"password\": ...}"))?;
    let principal = match (b.token, b.username, b.password) {
        (Some(t), None, None) => {
            let t = Zeroizing::new(t);
            if state.owner_token_matches(&t) {
                Principal::owner()
            } else {
                return Err(client.sign_in.refuse(client.ip, "owner token"));
            }
        }
        (None, Some(name), Some(password)) => {
            let password = Zeroizing::new(password);
            check_password(&state, &client, &name, password).await?
        }
        _ => {
            return Err(bad("give either token, or username and password"));
        }
    };
    open_session(&state, principal).await
}

async fn check_password(
    state: &Arc<VmState>,
    client: &Client,
    name: &str,
    password: Zeroizing<String>,
) -> Result<Principal, Rejection> {
    client.sign_in.check_user_not_blocked(name)?;
    let n = name.to_owned();
    let found = state
        .db
        .call(move |c| db::user(c, &n))
        .await
        .map_err(internal)?;
    let phc = found
        .as_ref()
        .map(|u| u.password_phc.clone())
        .unwrap_or_else(|| DUMMY_PHC.to_owned());
    let ok = verify(&client.sign_in, phc, password).await? && found.is_some();
    let Some(u) = found.filter(|_| ok) else {
        return Err(client.sign_in.refuse_user(client.ip, name));
    };
    let (n, now) = (u.user.name.clone(), state.clock.wall_ms());
    state
        .db
        .call(move |c| db::user_signed_in(c, &n, now))
        .await
        .map_err(internal)?;
    Ok(Principal {
        role: Role::parse(&u.user.role).unwrap_or(Role::Viewer),
        name: u.user.name,
        cameras: u.user.cameras,
    })
}

/// A valid Argon2id hash of nothing anyone knows: an unknown name costs a verification too.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$5b5Q0wNr2mFzmlB8r8P1ZBq4GzWq0Ki2Y5bB9bGm2eI";

async fn verify(
    sign_in: &auth::SignIn,
    phc: String,
    password: Zeroizing<String>,
) -> Result<bool, Rejection> {
    let _permit = sign_in.hashing.acquire().await.map_err(internal)?;
    tokio::task::spawn_blocking(move || {
        use argon2::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&phc).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .map_err(internal)
}

async fn hash(sign_in: &auth::SignIn, password: Zeroizing<String>) -> Result<String, Rejection> {
    let _permit = sign_in.hashing.acquire().await.map_err(internal)?;
    tokio::task::spawn_blocking(move || {
        use argon2::PasswordHasher;
        use argon2::password_hash::SaltString;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(internal)?
    .map_err(internal)
}

async fn open_session(
    state: &Arc<VmState>,
    principal: Principal,
) -> Result<warp::reply::Response, Rejection> {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let id = data_encoding::BASE64URL_NOPAD.encode(&raw);
    let ttl_ms = state.config.http.session_hours.max(1) * 3_600_000;
    let now = state.clock.wall_ms();
    let expires = now + ttl_ms;
    let key = auth::session_key(&id);
    let user = (principal.name != access::OWNER).then(|| principal.name.clone());
    state
        .db
        .call(move |c| db::insert_session(c, &key, user.as_deref(), now, expires))
        .await
        .map_err(internal)?;
    tracing::info!(user = %principal.name, "signed in");
    let mut r = warp::reply::json(&SessionBody {
        user: &principal,
        expires_at_ms: Some(expires),
    })
    .into_response();
    let cookie = access::set_cookie(&id, ttl_ms / 1000, secure(state));
    r.headers_mut()
        .insert("set-cookie", cookie.parse().map_err(internal)?);
    Ok(r)
}

/// `GET /api/v1/session`: who is signed in.
pub(super) async fn whoami(
    _state: Arc<VmState>,
    principal: Principal,
) -> Result<warp::reply::Response, Rejection> {
    Ok(warp::reply::json(&SessionBody {
        user: &principal,
        expires_at_ms: None,
    })
    .into_response())
}

/// `DELETE /api/v1/session`: ends the cookie's session and clears it.
pub(super) async fn sign_out(
    state: Arc<VmState>,
    cookie: Option<String>,
) -> Result<warp::reply::Response, Rejection> {
    if let Some(id) = access::session_cookie(cookie.as_deref()) {
        let key = auth::session_key(id);
        state
            .db
            .call(move |c| db::delete_session(c, &key))
            .await
            .map_err(internal)?;
    }
    let mut r = warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response();
    r.headers_mut().insert(
        "set-cookie",
        access::set_cookie("", 0, secure(&state))
            .parse()
            .map_err(internal)?,
    );
    Ok(r)
}

#[derive(Serialize)]
struct UsersBody {
    users: Vec<db::UserRow>,
}

/// `GET /api/v1/users`.
pub(super) async fn list(state: Arc<VmState>) -> Result<warp::reply::Response, Rejection> {
    let users = state
        .db
        .call(|c| db::users(c))
        .await
        .map_err(internal)?
        .into_iter()
        .map(|u| u.user)
        .collect();
    Ok(warp::reply::json(&UsersBody { users }).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutUser {
    password: Option<String>,
    role: String,
    #[serde(default)]
    cameras: Option<Vec<String>>,
}

/// `PUT /api/v1/users/{name}`: creates or changes a user (a new password ends its sessions).
pub(super) async fn put(
    name: String,
    state: Arc<VmState>,
    client: Client,
    body: bytes::Bytes,
) -> Result<warp::reply::Response, Rejection> {
    access::check_name(&name).map_err(|e| bad(e.to_string()))?;
    let b: PutUser = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "expected {{\"password\", \"role\", \"cameras\"}}: {}",
            e.to_string().chars().take(120).collect::<String>()
        ))
    })?;
    let role = Role::parse(&b.role).ok_or_else(|| bad("role is \"admin\" or \"viewer\""))?;
    access::check_cameras(&b.cameras).map_err(|e| bad(e.to_string()))?;
    let password = b.password.map(Zeroizing::new);
    if let Some(p) = &password {
        access::check_password(p).map_err(|e| bad(e.to_string()))?;
    }
    let phc = match password {
        Some(p) => Some(hash(&client.sign_in, p).await?),
        None => None,
    };
    let (n, cams, now) = (name.clone(), b.cameras.clone(), state.clock.wall_ms());
    let done = state
        .db
        .call(move |c| {
            db::put_user(c, &n, phc.as_deref(), role.as_str(), &cams, now)?;
            db::user(c, &n)
        })
        .await
        .map_err(internal)?;
    let Some(user) = done else {
        return Err(bad(access::UserError::PasswordRequired.to_string()));
    };
    tracing::info!(user = %name, role = role.as_str(), "user saved");
    // The edges' copy of the users follows.
    state.config_changed.notify_waiters();
    Ok(warp::reply::json(&user.user).into_response())
}

/// `DELETE /api/v1/users/{name}`: the user and its sessions.
pub(super) async fn delete(
    name: String,
    state: Arc<VmState>,
) -> Result<warp::reply::Response, Rejection> {
    let n = name.clone();
    let gone = state
        .db
        .call(move |c| db::delete_user(c, &n))
        .await
        .map_err(internal)?;
    if !gone {
        return Err(warp::reject::custom(ApiError::NotFound(format!(
            "no user {:?}",
            name.chars().take(64).collect::<String>()
        ))));
    }
    tracing::info!(user = %name, "user deleted");
    // The edges' copy of the users follows.
    state.config_changed.notify_waiters();
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_parses_and_matches_no_common_password() {
        use argon2::{PasswordHash, PasswordVerifier};
        let h = PasswordHash::new(DUMMY_PHC).expect("a valid PHC string");
        for p in ["", "password", "0123456789"] {
            assert!(
                argon2::Argon2::default()
                    .verify_password(p.as_bytes(), &h)
                    .is_err()
            );
        }
    }
}
