//! The `Range` header of GetObject: one range in bytes (`a-b`, `a-`, `-n`).

use super::error::{S3Error, S3ErrorCode};

/// A satisfiable byte range: `start..end` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// `bytes 0-9/100`; `bytes */100` for an empty range (the empty part of a multipart
    /// object read with `partNumber`), which has no first and last byte to name.
    pub fn content_range(&self, size: u64) -> String {
        match self.end.checked_sub(1) {
            Some(last) if !self.is_empty() => format!("bytes {}-{last}/{size}", self.start),
            _ => format!("bytes */{size}"),
        }
    }
}

/// `Ok(None)`: no range, or one S3 ignores (malformed, multiple ranges, another unit): the
/// whole object is sent. `Err(InvalidRange)`: well-formed but not satisfiable.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, S3Error> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    let unsatisfiable = || {
        S3Error::with_message(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )
    };
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => return Ok(None),
        // `-n`: the last n bytes.
        (true, false) => {
            let Some(n) = parse(last) else {
                return Ok(None);
            };
            if n == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size,
            }
        }
        (false, open_ended) => {
            let Some(start) = parse(first) else {
                return Ok(None);
            };
            let end = if open_ended {
                size
            } else {
                let Some(last) = parse(last) else {
                    return Ok(None);
                };
                if last < start {
                    return Ok(None);
                }
                last.saturating_add(1).min(size)
            };
            if start >= size {
                return Err(unsatisfiable());
            }
            ByteRange { start, end }
        }
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(h: &str, size: u64) -> Result<Option<(u64, u64)>, S3ErrorCode> {
        parse_range(Some(h), size)
            .map(|o| o.map(|r| (r.start, r.end)))
            .map_err(|e| e.code())
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(r("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(r("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(r("bytes=-10", 100), Ok(Some((90, 100))));
        assert_eq!(r("bytes=-1000", 100), Ok(Some((0, 100))));
        assert_eq!(r("bytes=50-1000", 100), Ok(Some((50, 100))));
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges() {
        assert_eq!(r("bytes=100-", 100), Err(S3ErrorCode::InvalidRange));
        assert_eq!(r("bytes=100-200", 100), Err(S3ErrorCode::InvalidRange));
        assert_eq!(r("bytes=-0", 100), Err(S3ErrorCode::InvalidRange));
        assert_eq!(r("bytes=0-", 0), Err(S3ErrorCode::InvalidRange));
        assert_eq!(r("bytes=5-1", 100), Ok(None));
        assert_eq!(r("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(r("items=0-1", 100), Ok(None));
        assert_eq!(r("bytes=x-1", 100), Ok(None));
        assert_eq!(parse_range(None, 100).ok().flatten(), None);
    }

    #[test]
    fn r12_empty_ranges_have_a_content_range_without_underflow() {
        for (start, end, size) in [(0, 0, 0), (5, 5, 5), (7, 3, 9), (u64::MAX, 0, 0)] {
            let range = ByteRange { start, end };
            assert!(range.is_empty());
            assert_eq!(range.len(), 0);
            assert_eq!(range.content_range(size), format!("bytes */{size}"));
        }
        let range = ByteRange { start: 0, end: 1 };
        assert_eq!(range.content_range(1), "bytes 0-0/1");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any header text at all: no panic, and a range only inside the object.
        #[test]
        fn r12_any_range_header_is_answered(
            header in "([0-9 ,-]{0,30})|(\\PC{0,30})",
            size in any::<u64>(),
        ) {
            for h in [header.clone(), format!("bytes={header}")] {
                match parse_range(Some(&h), size) {
                    Ok(Some(range)) => {
                        prop_assert!(range.start < range.end && range.end <= size);
                        let _ = range.content_range(size);
                    }
                    Ok(None) => {}
                    Err(e) => prop_assert_eq!(e.code(), S3ErrorCode::InvalidRange),
                }
            }
        }

        #[test]
        fn satisfiable_ranges_lie_inside_the_object(a in 0u64..200, b in 0u64..200, size in 0u64..150) {
            for h in [format!("bytes={a}-{b}"), format!("bytes={a}-"), format!("bytes=-{b}")] {
                if let Ok(Some(range)) = parse_range(Some(&h), size) {
                    prop_assert!(range.start < range.end);
                    prop_assert!(range.end <= size);
                }
            }
        }
    }
}
