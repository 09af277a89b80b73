//! Who may do what (pure): the signed-in [`Principal`] (the owner token, or a user with a role
//! and a camera list), what a user name and password must be, and the session cookie's text.
//! The HTTP layer asks these on every endpoint; the UI only hides what they refuse.

use serde::Serialize;

/// The name the owner token signs in as.
pub const OWNER: &str = "owner";
pub use protocols::http::session::{COOKIE, session_cookie};
/// Admin or viewer: the same role the edges are sent with the users.
pub use protocols::messages::config::Role;
/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// The longest password accepted (Argon2 takes any length; this bounds the work per request).
pub const MAX_PASSWORD: usize = 256;

/// The one a request is from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The user's name ([`OWNER`] for the owner token).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The cameras it may see (`None`: all).
    pub cameras: Option<Vec<String>>,
}

impl Principal {
    /// The owner token's principal: an admin of every camera.
    pub fn owner() -> Self {
        Principal {
            name: OWNER.into(),
            role: Role::Admin,
            cameras: None,
        }
    }

    /// Whether it may change settings.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether it may see the camera's events, clips and pictures.
    pub fn may_see(&self, camera_id: &str) -> bool {
        self.cameras
            .as_ref()
            .is_none_or(|c| c.iter().any(|x| x == camera_id))
    }
}

/// Why a user's fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The name is not 1 to 64 of `a-z 0-9 . _ -`, or is the owner's.
    #[error("a user name is 1 to 64 characters a-z, 0-9, '.', '_' or '-', and not \"owner\"")]
    BadName,
    /// The password is too short or too long.
    #[error("a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")]
    BadPassword,
    /// A new user needs a password.
    #[error("a new user needs a password")]
    PasswordRequired,
    /// A camera id is not one.
    #[error("{0:?} is not a camera id")]
    BadCamera(String),
}

/// Checks a user name.
pub fn check_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != OWNER
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    ok.then_some(()).ok_or(UserError::BadName)
}

/// Checks a password's length (in characters).
pub fn check_password(password: &str) -> Result<(), UserError> {
    let n = password.chars().count();
    (MIN_PASSWORD..=MAX_PASSWORD)
        .contains(&n)
        .then_some(())
        .ok_or(UserError::BadPassword)
}

/// Checks a camera list.
pub fn check_cameras(cameras: &Option<Vec<String>>) -> Result<(), UserError> {
    for c in cameras.iter().flatten() {
        if !protocols::messages::valid_id(c) {
            return Err(UserError::BadCamera(c.chars().take(64).collect()));
        }
    }
    Ok(())
}

/// The `Set-Cookie` value for a new session (empty `value` and `max_age_secs` 0 clear it).
pub fn set_cookie(value: &str, max_age_secs: u64, secure: bool) -> String {
    protocols::http::session::set_cookie(value, max_age_secs, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_sees_only_its_cameras_and_the_owner_all() {
        let v = Principal {
            name: "kid".into(),
            role: Role::Viewer,
            cameras: Some(vec!["porch".into()]),
        };
        assert!(v.may_see("porch"));
        assert!(!v.may_see("garage"));
        assert!(!v.is_admin());
        let none = Principal {
            cameras: Some(vec![]),
            ..v.clone()
        };
        assert!(!none.may_see("porch"));
        assert!(Principal::owner().may_see("garage"));
        assert!(Principal::owner().is_admin());
    }

    #[test]
    fn names_passwords_and_cameras_are_checked() {
        assert!(check_name("ana.b-1_x").is_ok());
        for bad in ["", "owner", "Ana", "a b", "a/b", &"x".repeat(65)] {
            assert_eq!(check_name(bad), Err(UserError::BadName), "{bad:?}");
        }
        assert!(check_password("0123456789").is_ok());
        assert_eq!(check_password("short"), Err(UserError::BadPassword));
        assert_eq!(
            check_password(&"p".repeat(257)),
            Err(UserError::BadPassword)
        );
        // Characters, not bytes: ten accented letters are enough.
        assert!(check_password("éééééééééé").is_ok());
        assert!(check_cameras(&Some(vec!["porch".into()])).is_ok());
        assert!(check_cameras(&Some(vec!["../x".into()])).is_err());
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn the_cookie_is_read_and_written() {
        assert_eq!(
            session_cookie(Some("a=b; guardian_session=xyz; c=d")),
            Some("xyz")
        );
        assert_eq!(session_cookie(Some("guardian_session=")), None);
        assert_eq!(session_cookie(Some("guardian_sessionx=1")), None);
        assert_eq!(session_cookie(None), None);
        let c = set_cookie("v", 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie("v", 60, false).contains("Secure"));
    }
}
