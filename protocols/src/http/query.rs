//! Query strings of the listing endpoints (`?camera=&since=&limit=`) and of the clip path
//! (`?token=`), parsed once, with every integer bounded before any cast: `since` fits a
//! signed 64-bit SQLite integer (a larger one used to wrap to a negative value and list
//! everything), `limit` is 1 to [`MAX_LIMIT`], `camera` is a camera id. Unknown keys, a key
//! given twice, malformed percent-escapes and query strings over [`MAX_QUERY`] bytes are
//! refused.

use std::fmt;

/// The most rows one listing returns.
pub const MAX_LIMIT: u32 = 1000;
/// Rows a listing returns when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest `since` (Unix ms): SQLite's largest integer.
pub const MAX_SINCE_MS: u64 = i64::MAX as u64;
/// The longest query string looked at.
pub const MAX_QUERY: usize = 4096;

/// A listing's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Only this camera's rows.
    pub camera: Option<String>,
    /// Rows from this time on, Unix ms (0 when not given).
    pub since: u64,
    /// At most this many rows.
    pub limit: u32,
}

/// Why a query string is refused (a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// Longer than [`MAX_QUERY`].
    TooLong,
    /// A key this path does not take.
    UnknownKey(String),
    /// A key given twice.
    Repeated(&'static str),
    /// A `%` not followed by two hex digits, or text that is not UTF-8 once decoded.
    BadEscape,
    /// A value out of its range, with what the range is.
    OutOfRange {
        /// The key.
        key: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::TooLong => write!(f, "the query string is over {MAX_QUERY} bytes"),
            QueryError::UnknownKey(k) => {
                // The key as given, shortened: it is the client's text.
                let k: String = k.chars().take(40).collect();
                write!(f, "unknown query parameter {k:?}")
            }
            QueryError::Repeated(k) => write!(f, "query parameter {k} is given twice"),
            QueryError::BadEscape => f.write_str("a malformed %-escape in the query string"),
            QueryError::OutOfRange { key, expected } => write!(f, "{key} must be {expected}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
pub fn decode(s: &str) -> Result<String, QueryError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(QueryError::BadEscape);
                };
                out.push((h * 16 + l) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::BadEscape)
}

/// The decoded `(key, value)` pairs of a query string, empty pairs skipped.
fn pairs(raw: &str) -> Result<Vec<(String, String)>, QueryError> {
    if raw.len() > MAX_QUERY {
        return Err(QueryError::TooLong);
    }
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Digits only (no sign, no spaces), at most `max`.
fn bounded(v: &str, max: u64) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().filter(|n| *n <= max)
}

fn set<T>(slot: &mut Option<T>, key: &'static str, value: T) -> Result<(), QueryError> {
    if slot.replace(value).is_some() {
        return Err(QueryError::Repeated(key));
    }
    Ok(())
}

/// Parses a listing's query string (without the `?`).
pub fn listing(raw: &str) -> Result<Listing, QueryError> {
    let (mut camera, mut since, mut limit) = (None, None, None);
    for (k, v) in pairs(raw)? {
        match k.as_str() {
            "camera" => {
                if !crate::messages::valid_id(&v) {
                    return Err(QueryError::OutOfRange {
                        key: "camera",
                        expected: "a camera id (a-z, 0-9, -)",
                    });
                }
                set(&mut camera, "camera", v)?;
            }
            "since" => {
                let n = bounded(&v, MAX_SINCE_MS).ok_or(QueryError::OutOfRange {
                    key: "since",
                    expected: "0 to 9223372036854775807 (Unix ms)",
                })?;
                set(&mut since, "since", n)?;
            }
            "limit" => {
                let n = bounded(&v, u64::from(MAX_LIMIT))
                    .filter(|n| *n >= 1)
                    .ok_or(QueryError::OutOfRange {
                        key: "limit",
                        expected: "1 to 1000",
                    })?;
                set(&mut limit, "limit", n as u32)?;
            }
            _ => return Err(QueryError::UnknownKey(k)),
        }
    }
    Ok(Listing {
        camera,
        since: since.unwrap_or(0),
        limit: limit.unwrap_or(DEFAULT_LIMIT),
    })
}

/// The review timeline's query (`GET /api/v1/review`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Review {
    /// Only this camera.
    pub camera: Option<String>,
    /// Only this category (`person`, `car`, ...).
    pub label: Option<String>,
    /// Only reviewed (`true`) or not reviewed (`false`) events.
    pub reviewed: Option<bool>,
    /// Started before this, Unix ms (exclusive): the next page.
    pub before: Option<u64>,
    /// Started at or after this, Unix ms.
    pub after: Option<u64>,
    /// At most this many rows (default [`DEFAULT_LIMIT`]).
    pub limit: u32,
}

/// Parses the review timeline's query: `camera`, `label` (a-z and `_`, up to 32), `reviewed`
/// (`true` or `false`), `before`, `after` (Unix ms) and `limit`.
pub fn review(raw: &str) -> Result<Review, QueryError> {
    let mut r = Review::default();
    let (mut camera, mut label, mut reviewed, mut before, mut after, mut limit) =
        (None, None, None, None, None, None);
    let time = |key: &'static str, v: &str| {
        bounded(v, MAX_SINCE_MS).ok_or(QueryError::OutOfRange {
            key,
            expected: "0 to 9223372036854775807 (Unix ms)",
        })
    };
    for (k, v) in pairs(raw)? {
        match k.as_str() {
            "camera" => {
                if !crate::messages::valid_id(&v) {
                    return Err(QueryError::OutOfRange {
                        key: "camera",
                        expected: "a camera id (a-z, 0-9, -)",
                    });
                }
                set(&mut camera, "camera", v)?;
            }
            "label" => {
                if v.is_empty()
                    || v.len() > 32
                    || !v.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                {
                    return Err(QueryError::OutOfRange {
                        key: "label",
                        expected: "a label (a-z and _)",
                    });
                }
                set(&mut label, "label", v)?;
            }
            "reviewed" => {
                let b = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(QueryError::OutOfRange {
                            key: "reviewed",
                            expected: "true or false",
                        });
                    }
                };
                set(&mut reviewed, "reviewed", b)?;
            }
            "before" => set(&mut before, "before", time("before", &v)?)?,
            "after" => set(&mut after, "after", time("after", &v)?)?,
            "limit" => {
                let n = bounded(&v, u64::from(MAX_LIMIT))
                    .filter(|n| *n >= 1)
                    .ok_or(QueryError::OutOfRange {
                        key: "limit",
                        expected: "1 to 1000",
                    })?;
                set(&mut limit, "limit", n as u32)?;
            }
            _ => return Err(QueryError::UnknownKey(k)),
        }
    }
    r.camera = camera;
    r.label = label;
    r.reviewed = reviewed;
    r.before = before;
    r.after = after;
    r.limit = limit.unwrap_or(DEFAULT_LIMIT);
    Ok(r)
}

/// Parses the clip path's query string: an optional `token` (a playback token).
pub fn token(raw: &str) -> Result<Option<String>, QueryError> {
    let mut token = None;
    for (k, v) in pairs(raw)? {
        match k.as_str() {
            "token" => set(&mut token, "token", v)?,
            _ => return Err(QueryError::UnknownKey(k)),
        }
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_query_parses_and_refuses_what_it_does_not_take() {
        let r =
            review("camera=porch&label=person&reviewed=false&before=20&after=10&limit=24").unwrap();
        assert_eq!(
            r,
            Review {
                camera: Some("porch".into()),
                label: Some("person".into()),
                reviewed: Some(false),
                before: Some(20),
                after: Some(10),
                limit: 24,
            }
        );
        assert_eq!(review("").unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            "reviewed=yes",
            "label=Person",
            "label=a%20b",
            "before=-1",
            "before=99999999999999999999",
            "limit=0",
            "camera=../x",
            "since=1",
            "before=1&before=2",
        ] {
            assert!(review(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listings_parse_with_bounded_values() {
        assert_eq!(
            listing("").unwrap(),
            Listing {
                camera: None,
                since: 0,
                limit: DEFAULT_LIMIT
            }
        );
        assert_eq!(
            listing("camera=front-door&since=5&limit=2").unwrap(),
            Listing {
                camera: Some("front-door".into()),
                since: 5,
                limit: 2
            }
        );
        assert_eq!(
            listing("since=9223372036854775807").unwrap().since,
            MAX_SINCE_MS
        );
        assert_eq!(
            listing("camera=front%2Ddoor").unwrap().camera.unwrap(),
            "front-door"
        );
        assert_eq!(listing("&&limit=1000&").unwrap().limit, 1000);
        for (bad, want) in [
            ("since=18446744073709551615", "since"),
            ("since=9223372036854775808", "since"),
            ("since=-1", "since"),
            ("since=+1", "since"),
            ("since=", "since"),
            ("since=1e3", "since"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("camera=Front%20Door", "camera"),
            ("camera=", "camera"),
        ] {
            assert!(
                matches!(listing(bad), Err(QueryError::OutOfRange { key, .. }) if key == want),
                "{bad}: {:?}",
                listing(bad)
            );
        }
        assert_eq!(
            listing("unknown=1"),
            Err(QueryError::UnknownKey("unknown".into()))
        );
        assert_eq!(
            listing("since=1&since=2"),
            Err(QueryError::Repeated("since"))
        );
        assert_eq!(listing("camera=%zz"), Err(QueryError::BadEscape));
        assert_eq!(listing("camera=%e2%28"), Err(QueryError::BadEscape));
        assert_eq!(listing("camera=%4"), Err(QueryError::BadEscape));
        assert_eq!(
            listing(&"a".repeat(MAX_QUERY + 1)),
            Err(QueryError::TooLong)
        );
    }

    #[test]
    fn the_clip_query_takes_one_token() {
        assert_eq!(token("").unwrap(), None);
        assert_eq!(token("token=abc-_").unwrap().as_deref(), Some("abc-_"));
        assert_eq!(token("token=a&token=b"), Err(QueryError::Repeated("token")));
        assert!(matches!(token("tok=1"), Err(QueryError::UnknownKey(_))));
        assert_eq!(decode("a+b%20c").unwrap(), "a b c");
    }
}
