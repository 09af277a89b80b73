//! An ONVIF client: asks a camera's device and media services what it is and which
//! streams it has ([`inspect`], for discovery) and where the configured profiles stream
//! ([`resolve`], each time a camera connects). The formats are
//! [`protocols::lan::onvif`]; this module only sends them ([`super::http`]).
//!
//! Authentication is a WS-Security UsernameToken digest made at the camera's own time: the
//! first request, `GetSystemDateAndTime`, needs none, and its answer gives the offset from
//! our clock (a camera with a wrong clock would otherwise refuse every digest).

use std::time::Duration;

use protocols::lan::LanError;
use protocols::lan::onvif::{self, MediaProfile, Request, UsernameToken};
use rand::RngCore;

use super::http::{self, HttpError};

/// How long one SOAP exchange may take.
pub const CALL_WITHIN: Duration = Duration::from_secs(5);
/// At most this many profiles are asked for their stream URI.
const URIS_OF: usize = 4;

/// Why a camera could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum OnvifError {
    /// The camera refused the user name or password (or wants them).
    #[error("unauthorized: the camera refused the ONVIF user name or password")]
    Unauthorized,
    /// No connection to its service.
    #[error("ONVIF service unreachable: {0}")]
    Unreachable(String),
    /// It answered, but not what was asked (a fault, a malformed answer, no such profile).
    #[error("ONVIF: {0}")]
    Camera(String),
}

impl From<HttpError> for OnvifError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Url(_) | HttpError::Answer(_) => OnvifError::Camera(e.to_string()),
            HttpError::Connect { .. } | HttpError::Io(_) => OnvifError::Unreachable(e.to_string()),
        }
    }
}

impl From<LanError> for OnvifError {
    fn from(e: LanError) -> Self {
        if e.is_unauthorized() {
            OnvifError::Unauthorized
        } else {
            OnvifError::Camera(e.to_string())
        }
    }
}

/// A user name and password.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    /// The user.
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
}

/// A session with one camera: its services and its clock's offset from ours.
pub struct Session<'a> {
    xaddr: String,
    media: String,
    login: Option<Login<'a>>,
    /// The camera's time minus ours, ms.
    offset_ms: i64,
    now_ms: u64,
}

impl<'a> Session<'a> {
    /// Opens a session: the camera's time (no authentication), then where its media service
    /// is (no authentication; the device service's address when it does not say).
    pub fn open(xaddr: &str, login: Option<Login<'a>>, now_ms: u64) -> Result<Self, OnvifError> {
        let mut s = Session {
            xaddr: xaddr.to_owned(),
            media: xaddr.to_owned(),
            login,
            offset_ms: 0,
            now_ms,
        };
        match s.call(&Request::SystemDateAndTime, false) {
            Ok(b) => {
                if let Ok(camera_ms) = onvif::parse_date_time(&b) {
                    s.offset_ms = camera_ms as i64 - now_ms as i64;
                }
            }
            // Some cameras want authentication even for this: go on with our own clock.
            Err(OnvifError::Unauthorized) | Err(OnvifError::Camera(_)) => {}
            Err(e) => return Err(e),
        }
        if let Ok(b) = s.call(&Request::Capabilities, s.login.is_some())
            && let Ok(Some(media)) = onvif::parse_media_xaddr(&b)
            && http::parse_url(&media).is_ok()
        {
            s.media = media;
        }
        Ok(s)
    }

    fn call(&self, req: &Request, authenticate: bool) -> Result<Vec<u8>, OnvifError> {
        let token = match (authenticate, self.login) {
            (true, Some(l)) => {
                let mut nonce = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut nonce);
                let camera_ms = (self.now_ms as i64 + self.offset_ms).max(0) as u64;
                Some(UsernameToken::new(
                    l.username, l.password, &nonce, camera_ms,
                ))
            }
            _ => None,
        };
        let url = if req.is_media() {
            &self.media
        } else {
            &self.xaddr
        };
        let content_type = format!(
            "application/soap+xml; charset=utf-8; action=\"{}\"",
            req.action()
        );
        let (status, body) = http::post(
            url,
            &content_type,
            req.envelope(token.as_ref()).as_bytes(),
            CALL_WITHIN,
        )?;
        match status {
            200 => Ok(body),
            401 | 403 => Err(OnvifError::Unauthorized),
            _ => match onvif::body(&body) {
                Err(e) => Err(e.into()),
                Ok(_) => Err(OnvifError::Camera(format!("HTTP status {status}"))),
            },
        }
    }

    /// `GetDeviceInformation`.
    pub fn device_information(&self) -> Result<onvif::DeviceInformation, OnvifError> {
        Ok(onvif::parse_device_information(
            &self.call(&Request::DeviceInformation, true)?,
        )?)
    }

    /// `GetProfiles`.
    pub fn profiles(&self) -> Result<Vec<MediaProfile>, OnvifError> {
        Ok(onvif::parse_profiles(
            &self.call(&Request::Profiles, true)?,
        )?)
    }

    /// `GetStreamUri` of `profile`.
    pub fn stream_uri(&self, profile: &str) -> Result<String, OnvifError> {
        Ok(onvif::parse_uri(
            &self.call(&Request::StreamUri(profile.to_owned()), true)?,
        )?)
    }
}

/// What [`inspect`] learned of a camera.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspection {
    /// Maker, model, firmware (with credentials, or when the camera tells anyone).
    pub info: Option<onvif::DeviceInformation>,
    /// Its profiles with their stream URIs (same condition).
    pub profiles: Vec<(MediaProfile, Option<String>)>,
    /// Whether it asked for credentials.
    pub needs_credentials: bool,
    /// Whether the credentials given were accepted (`None`: none given).
    pub credentials_accepted: Option<bool>,
    /// What else went wrong.
    pub note: Option<String>,
}

/// Asks a camera what it is and what it streams, with `login` when given.
pub fn inspect(
    xaddr: &str,
    login: Option<Login<'_>>,
    now_ms: u64,
) -> Result<Inspection, OnvifError> {
    let s = Session::open(xaddr, login, now_ms)?;
    let mut out = Inspection::default();
    match s.device_information() {
        Ok(i) => out.info = Some(i),
        Err(OnvifError::Unauthorized) => out.needs_credentials = true,
        Err(e) => out.note = Some(e.to_string()),
    }
    match s.profiles() {
        Ok(profiles) => {
            for (i, p) in profiles.into_iter().enumerate() {
                let uri = if i < URIS_OF {
                    s.stream_uri(&p.token).ok()
                } else {
                    None
                };
                out.profiles.push((p, uri));
            }
        }
        Err(OnvifError::Unauthorized) => out.needs_credentials = true,
        Err(e) => out.note = out.note.or(Some(e.to_string())),
    }
    if login.is_some() {
        // With credentials, an authorization refusal means these were refused; a camera
        // that never asked took them too.
        out.credentials_accepted = Some(!out.needs_credentials);
        if out.needs_credentials {
            out.note = Some("the camera refused the configured user name or password".into());
        }
    }
    Ok(out)
}

/// The profile token to stream: `wanted`, or (empty) the largest H.264 profile, else the
/// largest.
pub fn pick_profile<'p>(profiles: &'p [MediaProfile], wanted: &str) -> Option<&'p MediaProfile> {
    if !wanted.is_empty() {
        return profiles.iter().find(|p| p.token == wanted);
    }
    let area =
        |p: &MediaProfile| u64::from(p.width.unwrap_or(0)) * u64::from(p.height.unwrap_or(0));
    let h264 = |p: &&MediaProfile| {
        p.encoding
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("H264"))
    };
    profiles
        .iter()
        .filter(h264)
        .max_by_key(|p| area(p))
        .or_else(|| profiles.iter().max_by_key(|p| area(p)))
}

/// The stream URLs (without user information) of an ONVIF camera's configured profiles:
/// (main, substream).
pub fn resolve(
    xaddr: &str,
    login: Login<'_>,
    profile: &str,
    substream_profile: &str,
    now_ms: u64,
) -> Result<(String, Option<String>), OnvifError> {
    let s = Session::open(xaddr, Some(login), now_ms)?;
    let profiles = s.profiles()?;
    let main = pick_profile(&profiles, profile).ok_or_else(|| {
        OnvifError::Camera(format!(
            "the camera has no profile {profile:?} (it has {})",
            profiles
                .iter()
                .map(|p| p.token.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let main_url = s.stream_uri(&main.token)?;
    let sub_url = if substream_profile.is_empty() {
        None
    } else {
        let sub = pick_profile(&profiles, substream_profile).ok_or_else(|| {
            OnvifError::Camera(format!("the camera has no profile {substream_profile:?}"))
        })?;
        Some(s.stream_uri(&sub.token)?)
    };
    let strip = |u: String| protocols::credential::split_userinfo(&u).url;
    Ok((strip(main_url), sub_url.map(strip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(token: &str, enc: &str, w: u32, h: u32) -> MediaProfile {
        MediaProfile {
            token: token.into(),
            encoding: Some(enc.into()),
            width: Some(w),
            height: Some(h),
            ..Default::default()
        }
    }

    #[test]
    fn the_largest_h264_profile_unless_one_is_named() {
        let ps = [
            p("sub", "H264", 640, 360),
            p("jpeg", "JPEG", 3840, 2160),
            p("main", "H264", 1920, 1080),
        ];
        assert_eq!(pick_profile(&ps, "").unwrap().token, "main");
        assert_eq!(pick_profile(&ps, "sub").unwrap().token, "sub");
        assert!(pick_profile(&ps, "nope").is_none());
        assert_eq!(pick_profile(&ps[1..2], "").unwrap().token, "jpeg");
        assert!(pick_profile(&[], "").is_none());
    }

    #[test]
    fn errors_say_unauthorized_or_unreachable() {
        let refused = Session::open("http://127.0.0.1:1/onvif/device_service", None, 0);
        assert!(matches!(refused, Err(OnvifError::Unreachable(_))));
        let fault = LanError::Fault {
            code: "Sender".into(),
            subcode: "NotAuthorized".into(),
            reason: "no".into(),
        };
        assert!(matches!(OnvifError::from(fault), OnvifError::Unauthorized));
        assert!(
            OnvifError::Unauthorized
                .to_string()
                .starts_with("unauthorized")
        );
    }
}
