//! The web app's session cookie and bearer token as every server of the owner's API reads and
//! writes them (the vm's, and the edge's on the LAN): one name, one parser, one set of
//! attributes (HttpOnly, SameSite=Strict, Path=/; Secure where the server is reached over
//! https).

/// The session cookie's name.
pub const COOKIE: &str = "guardian_session";

/// The session id in a `Cookie` header, if it holds ours (spaces around names and values
/// are ignored; an empty value is none).
pub fn session_cookie(header: Option<&str>) -> Option<&str> {
    header?.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k.trim() == COOKIE && !v.trim().is_empty()).then(|| v.trim())
    })
}

/// The `Set-Cookie` value holding `value` for `max_age_secs` (an empty value and 0 clear it).
pub fn set_cookie(value: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The bearer token of an `Authorization` header.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_and_the_bearer_token_are_read_and_written() {
        assert_eq!(
            session_cookie(Some("a=b; guardian_session=xyz ; c=d")),
            Some("xyz")
        );
        assert_eq!(session_cookie(Some("guardian_session=")), None);
        assert_eq!(session_cookie(Some("guardian_sessionx=1")), None);
        assert_eq!(session_cookie(None), None);
        let c = set_cookie("v", 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie("v", 60, false).contains("Secure"));
        assert_eq!(bearer(Some("Bearer tok")), Some("tok"));
        assert_eq!(bearer(Some("Basic tok")), None);
    }
}
