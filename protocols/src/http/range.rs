//! The one `Range` parser of every ranged endpoint (the clip relayed from the edge, the
//! archive's objects in S3): a single `bytes=` range (RFC 9110 14.1.1), then resolved against
//! the representation's size (14.1.2), all pure. Several ranges, other units and malformed
//! text are refused with 400; a range that lies past the end gets 416 with
//! `Content-Range: bytes */<size>` from the caller.

use std::fmt;

/// One byte range as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=N-` (M `None`) or `bytes=N-M`, N ≤ M.
    From(u64, Option<u64>),
    /// `bytes=-N`: the last N bytes.
    Suffix(u64),
}

/// Why a `Range` header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// Not a single well-formed `bytes=` range: 400.
    Malformed,
    /// Well-formed, but no byte of it is in a representation of this size: 416.
    Unsatisfiable {
        /// The representation's size.
        size: u64,
    },
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeError::Malformed => f.write_str(
                "only a single `bytes=N-`, `bytes=N-M` or `bytes=-N` range is supported",
            ),
            RangeError::Unsatisfiable { size } => {
                write!(f, "the range is outside the {size} bytes")
            }
        }
    }
}

/// The longest `Range` header looked at; real players send a few dozen bytes.
const MAX_HEADER: usize = 100;

fn number(s: &str) -> Result<u64, RangeError> {
    // Digits only: `+5`, ` 5` and `0x5` are not RFC 9110 `1*DIGIT`.
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::Malformed);
    }
    s.parse().map_err(|_| RangeError::Malformed)
}

/// Parses a `Range` header's value.
pub fn parse(header: &str) -> Result<ByteRange, RangeError> {
    if header.len() > MAX_HEADER {
        return Err(RangeError::Malformed);
    }
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Malformed)?
        .trim();
    let (a, b) = spec.split_once('-').ok_or(RangeError::Malformed)?;
    if a.is_empty() {
        return Ok(ByteRange::Suffix(number(b)?));
    }
    let start = number(a)?;
    let end = if b.is_empty() { None } else { Some(number(b)?) };
    if end.is_some_and(|e| e < start) {
        return Err(RangeError::Malformed);
    }
    Ok(ByteRange::From(start, end))
}

/// The bytes served, first and last inclusive, of a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Satisfied {
    /// The first byte.
    pub first: u64,
    /// The last byte (≥ `first`, < size).
    pub last: u64,
    /// The representation's size.
    pub size: u64,
}

impl Satisfied {
    /// Bytes served.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always false: a satisfied range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value.
    pub fn content_range(&self) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, self.size)
    }
}

impl ByteRange {
    /// The bytes this range selects of `size` (14.1.2: a last position past the end is the
    /// end; a suffix longer than the whole is the whole).
    pub fn resolve(self, size: u64) -> Result<Satisfied, RangeError> {
        let unsatisfiable = RangeError::Unsatisfiable { size };
        let (first, last) = match self {
            ByteRange::From(first, last) => {
                if first >= size {
                    return Err(unsatisfiable);
                }
                (first, last.unwrap_or(u64::MAX).min(size - 1))
            }
            ByteRange::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(unsatisfiable);
                }
                (size.saturating_sub(n), size - 1)
            }
        };
        Ok(Satisfied { first, last, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_parse_as_rfc_9110_writes_them() {
        let ok = |s: &str| parse(s).unwrap();
        assert_eq!(ok("bytes=0-"), ByteRange::From(0, None));
        assert_eq!(ok("bytes=10-19"), ByteRange::From(10, Some(19)));
        assert_eq!(ok(" bytes=5-5 "), ByteRange::From(5, Some(5)));
        assert_eq!(ok("bytes=-500"), ByteRange::Suffix(500));
        assert_eq!(ok("bytes=-0"), ByteRange::Suffix(0));
        assert_eq!(
            ok("bytes=18446744073709551615-"),
            ByteRange::From(u64::MAX, None)
        );
        for bad in [
            "bytes=5-1",
            "abc",
            "bytes=",
            "bytes=-",
            "bytes=a-",
            "bytes=1-2,4-5",
            "items=0-",
            "0-10",
            "bytes=--5",
            "bytes=+5-",
            "bytes=1 -2",
            "bytes=18446744073709551616-",
            "bytes=0x10-",
        ] {
            assert_eq!(parse(bad), Err(RangeError::Malformed), "{bad:?}");
        }
        assert_eq!(
            parse(&format!("bytes=0-{}", "0".repeat(200))),
            Err(RangeError::Malformed)
        );
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        let r = |s: &str, size| parse(s).unwrap().resolve(size);
        let sat = |first, last, size| Ok(Satisfied { first, last, size });
        assert_eq!(r("bytes=0-", 10), sat(0, 9, 10));
        assert_eq!(r("bytes=2-4", 10), sat(2, 4, 10));
        assert_eq!(r("bytes=2-400", 10), sat(2, 9, 10));
        assert_eq!(r("bytes=-3", 10), sat(7, 9, 10));
        assert_eq!(r("bytes=-30", 10), sat(0, 9, 10));
        assert_eq!(r("bytes=9-9", 10).unwrap().len(), 1);
        assert_eq!(r("bytes=9-9", 10).unwrap().content_range(), "bytes 9-9/10");
        for (s, size) in [
            ("bytes=10-", 10),
            ("bytes=10-20", 10),
            ("bytes=-0", 10),
            ("bytes=0-", 0),
            ("bytes=-5", 0),
            ("bytes=18446744073709551615-", 10),
        ] {
            assert_eq!(r(s, size), Err(RangeError::Unsatisfiable { size }), "{s}");
        }
    }
}
