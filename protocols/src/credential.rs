//! Camera credentials sealed to the edge that uses them.
//!
//! A camera's password travels and rests off the edge only as an age file sealed to the
//! edge's own X25519 recipient (the identity the edge made at `init`), base64 in JSON. The
//! plaintext binds the password to the camera and the host it is for, so a vm that moves a
//! sealed credential to another camera, or points the camera at another host, gets it
//! refused by the edge ([`open`]) instead of handing the password to that host.
//!
//! The URL helpers split a camera URL's user information off ([`split_userinfo`]) and put it
//! back for the pipeline ([`with_userinfo`]), percent-encoded.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::seal::{self, OpenError, SealError};

/// The largest sealed credential accepted (base64 characters).
pub const MAX_SEALED: usize = 4096;

/// What is sealed: the password and what it is bound to.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bound {
    camera: String,
    host: String,
    password: String,
}

impl Drop for Bound {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.password.zeroize();
    }
}

/// Why a credential cannot be sealed or used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The recipient is not an age X25519 recipient.
    #[error("cannot seal the password: {0}")]
    Seal(#[from] SealError),
    /// Not base64, too long, or not an age file this edge can open.
    #[error("the sealed password is unreadable: {0}")]
    Unreadable(String),
    /// Sealed to another key.
    #[error("the sealed password was not sealed to this edge")]
    NotForThisEdge,
    /// Sealed for another camera.
    #[error("the sealed password is for camera {bound:?}, not {camera:?}")]
    WrongCamera {
        /// The camera it is bound to.
        bound: String,
        /// The camera it was offered for.
        camera: String,
    },
    /// Sealed for another host.
    #[error("the sealed password is for host {bound:?}, not {host:?}")]
    WrongHost {
        /// The host it is bound to.
        bound: String,
        /// The host of the camera's URL.
        host: String,
    },
}

/// Seals `password` for `camera` at `host` to the edge's recipient: base64 of an age file.
pub fn seal(
    edge_recipient: &str,
    camera: &str,
    host: &str,
    password: &str,
) -> Result<String, CredentialError> {
    let recipients = seal::parse_recipients(&[edge_recipient])?;
    let bound = Bound {
        camera: camera.to_owned(),
        host: host.to_ascii_lowercase(),
        password: password.to_owned(),
    };
    let plain = Zeroizing::new(serde_json::to_vec(&bound).expect("a struct of strings"));
    let mut out = Vec::new();
    seal::seal(plain.as_slice(), &mut out, &recipients)?;
    Ok(data_encoding::BASE64.encode(&out))
}

/// Opens a credential sealed by [`seal`] with the edge's identity, for `camera` whose URL has
/// host `host`.
pub fn open(
    identity: &age::x25519::Identity,
    sealed: &str,
    camera: &str,
    host: &str,
) -> Result<Zeroizing<String>, CredentialError> {
    if sealed.len() > MAX_SEALED {
        return Err(CredentialError::Unreadable("too long".into()));
    }
    let bytes = data_encoding::BASE64
        .decode(sealed.trim().as_bytes())
        .map_err(|_| CredentialError::Unreadable("not base64".into()))?;
    let mut plain = Zeroizing::new(Vec::new());
    seal::open(bytes.as_slice(), &mut *plain, identity).map_err(|e| match e {
        OpenError::NoMatchingKey => CredentialError::NotForThisEdge,
        e => CredentialError::Unreadable(e.to_string()),
    })?;
    let bound: Bound = serde_json::from_slice(&plain)
        .map_err(|_| CredentialError::Unreadable("not a camera credential".into()))?;
    if bound.camera != camera {
        return Err(CredentialError::WrongCamera {
            bound: bound.camera.clone(),
            camera: camera.to_owned(),
        });
    }
    if bound.host != host.to_ascii_lowercase() {
        return Err(CredentialError::WrongHost {
            bound: bound.host.clone(),
            host: host.to_owned(),
        });
    }
    Ok(Zeroizing::new(bound.password.clone()))
}

/// A URL's parts around its user information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userinfo {
    /// The URL without user information.
    pub url: String,
    /// The user name, percent-decoded, if the URL had one.
    pub username: Option<String>,
    /// The password, percent-decoded, if the URL had one.
    pub password: Option<Zeroizing<String>>,
}

/// The scheme's end and the authority's range in `url`.
fn authority(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    Some((start, end))
}

/// Splits the user information off `url` (`rtsp://user:pass@host/...`).
pub fn split_userinfo(url: &str) -> Userinfo {
    let Some((start, end)) = authority(url) else {
        return Userinfo {
            url: url.to_owned(),
            username: None,
            password: None,
        };
    };
    let Some(at) = url[start..end].rfind('@').map(|i| start + i) else {
        return Userinfo {
            url: url.to_owned(),
            username: None,
            password: None,
        };
    };
    let info = &url[start..at];
    let (user, pass) = match info.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (info, None),
    };
    Userinfo {
        url: format!("{}{}", &url[..start], &url[at + 1..]),
        username: Some(percent_decode(user)),
        password: pass.map(|p| Zeroizing::new(percent_decode(p))),
    }
}

/// The host of `url`, lowercase, without port or user information.
pub fn host(url: &str) -> Option<String> {
    let (start, end) = authority(url)?;
    let auth = &url[start..end];
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let h = if let Some(rest) = auth.strip_prefix('[') {
        rest.split_once(']').map(|(h, _)| h)?
    } else {
        auth.split(':').next().unwrap_or_default()
    };
    (!h.is_empty()).then(|| h.to_ascii_lowercase())
}

/// `url` (without user information) with `username` and `password` put in, percent-encoded.
pub fn with_userinfo(url: &str, username: &str, password: Option<&str>) -> Zeroizing<String> {
    let Some((start, _)) = authority(url) else {
        return Zeroizing::new(url.to_owned());
    };
    let mut out = String::with_capacity(url.len() + 32);
    out.push_str(&url[..start]);
    out.push_str(&percent_encode(username));
    if let Some(p) = password {
        out.push(':');
        out.push_str(&percent_encode(p));
    }
    out.push('@');
    out.push_str(&url[start..]);
    Zeroizing::new(out)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` sequences decoded (invalid ones kept as they are).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge() -> age::x25519::Identity {
        age::x25519::Identity::generate()
    }

    #[test]
    fn a_sealed_password_opens_for_its_camera_and_host_only() {
        let id = edge();
        let r = id.to_public().to_string();
        let s = seal(&r, "porch", "192.0.2.10", "p@ss:word/1").unwrap();
        assert!(!s.contains("p@ss"));
        assert_eq!(
            open(&id, &s, "porch", "192.0.2.10").unwrap().as_str(),
            "p@ss:word/1"
        );
        assert!(matches!(
            open(&id, &s, "garage", "192.0.2.10"),
            Err(CredentialError::WrongCamera { .. })
        ));
        assert!(matches!(
            open(&id, &s, "porch", "198.51.100.7"),
            Err(CredentialError::WrongHost { .. })
        ));
        assert!(matches!(
            open(&edge(), &s, "porch", "192.0.2.10"),
            Err(CredentialError::NotForThisEdge)
        ));
        assert!(matches!(
            open(&id, "not base64!", "porch", "192.0.2.10"),
            Err(CredentialError::Unreadable(_))
        ));
        assert!(matches!(
            seal("age1nope", "porch", "h", "p"),
            Err(CredentialError::Seal(_))
        ));
    }

    #[test]
    fn userinfo_is_split_off_and_put_back_encoded() {
        let u = split_userinfo("rtsp://admin:p%40ss%3Aw@192.0.2.10:554/main?x=1");
        assert_eq!(u.url, "rtsp://192.0.2.10:554/main?x=1");
        assert_eq!(u.username.as_deref(), Some("admin"));
        assert_eq!(u.password.as_deref().map(|p| p.as_str()), Some("p@ss:w"));
        let back = with_userinfo(&u.url, "admin", Some("p@ss:w"));
        assert_eq!(
            back.as_str(),
            "rtsp://admin:p%40ss%3Aw@192.0.2.10:554/main?x=1"
        );
        assert_eq!(split_userinfo(&back).password.unwrap().as_str(), "p@ss:w");
        let plain = split_userinfo("rtsp://192.0.2.10/main");
        assert_eq!(
            (plain.url.as_str(), plain.username, plain.password.is_none()),
            ("rtsp://192.0.2.10/main", None, true)
        );
        // An '@' in the path is not user information.
        assert_eq!(split_userinfo("rtsp://h/a@b").username, None);
        assert_eq!(split_userinfo("test://ball").url, "test://ball");
        assert_eq!(split_userinfo("rtsp://u@h/").username.as_deref(), Some("u"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn the_host_is_found_whatever_surrounds_it() {
        assert_eq!(
            host("rtsp://a:b@Cam.Local:554/x").as_deref(),
            Some("cam.local")
        );
        assert_eq!(host("rtsp://[fd00::5]:8554/x").as_deref(), Some("fd00::5"));
        assert_eq!(host("rtsp://192.0.2.1").as_deref(), Some("192.0.2.1"));
        assert_eq!(host("test://ball").as_deref(), Some("ball"));
        assert_eq!(host("file:///tmp/a.mp4"), None);
        assert_eq!(host("nonsense"), None);
    }
}
