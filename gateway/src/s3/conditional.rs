//! Conditional requests (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since),
//! evaluated in the order RFC 9110 and S3 use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use super::error::{S3Error, S3ErrorCode};
use super::timestamp::parse_http_date;

/// `Err(PreconditionFailed)` (412) or `Err(NotModified)` (304) when the request's
/// conditions say the object must not be sent.
pub fn check(headers: &HeaderMap, etag: &str, last_modified: SystemTime) -> Result<(), S3Error> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // HTTP dates have one-second resolution.
    let modified = truncate_to_second(last_modified);

    if let Some(if_match) = header("if-match") {
        if !etag_list_matches(if_match, etag) {
            return Err(S3Error::new(S3ErrorCode::PreconditionFailed).resource("If-Match"));
        }
    } else if let Some(date) = header("if-unmodified-since").and_then(parse_http_date) {
        if modified > date {
            return Err(
                S3Error::new(S3ErrorCode::PreconditionFailed).resource("If-Unmodified-Since")
            );
        }
    }
    if let Some(if_none_match) = header("if-none-match") {
        if etag_list_matches(if_none_match, etag) {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
    } else if let Some(date) = header("if-modified-since").and_then(parse_http_date) {
        if modified <= date {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
    }
    Ok(())
}

/// `"a", W/"b"` or `*` against an ETag (stored without quotes).
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || {
            let c = candidate.strip_prefix("W/").unwrap_or(candidate);
            c.trim_matches('"') == etag
        }
    })
}

fn truncate_to_second(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::timestamp::http_date;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap_or_else(|_| panic!("{v}")));
        }
        h
    }

    fn outcome(pairs: &[(&'static str, String)], modified: SystemTime) -> Option<S3ErrorCode> {
        check(&headers(pairs), "abc", modified)
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn etag_conditions() {
        let t = SystemTime::now();
        assert_eq!(outcome(&[("if-match", "\"abc\"".into())], t), None);
        assert_eq!(outcome(&[("if-match", "*".into())], t), None);
        assert_eq!(
            outcome(&[("if-match", "\"x\", \"y\"".into())], t),
            Some(S3ErrorCode::PreconditionFailed)
        );
        assert_eq!(
            outcome(&[("if-none-match", "\"abc\"".into())], t),
            Some(S3ErrorCode::NotModified)
        );
        assert_eq!(outcome(&[("if-none-match", "\"x\"".into())], t), None);
    }

    #[test]
    fn date_conditions_and_their_precedence() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let before = http_date(t - Duration::from_secs(60));
        let same = http_date(t);
        assert_eq!(
            outcome(&[("if-modified-since", same.clone())], t),
            Some(S3ErrorCode::NotModified)
        );
        assert_eq!(outcome(&[("if-modified-since", before.clone())], t), None);
        assert_eq!(
            outcome(&[("if-unmodified-since", before.clone())], t),
            Some(S3ErrorCode::PreconditionFailed)
        );
        assert_eq!(outcome(&[("if-unmodified-since", same)], t), None);
        // If-Match true wins over If-Unmodified-Since false (S3 returns the object).
        assert_eq!(
            outcome(
                &[
                    ("if-match", "\"abc\"".into()),
                    ("if-unmodified-since", before.clone())
                ],
                t
            ),
            None
        );
        // If-None-Match false wins over If-Modified-Since (304).
        assert_eq!(
            outcome(
                &[
                    ("if-none-match", "\"x\"".into()),
                    ("if-modified-since", before)
                ],
                t
            ),
            None
        );
    }
}
