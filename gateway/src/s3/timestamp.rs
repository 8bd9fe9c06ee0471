//! The two time formats S3 uses: ISO 8601 with milliseconds in XML, RFC 1123 in headers.

use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `2009-10-12T17:50:30.000Z`
pub fn iso8601(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    let mut s = t.format(&Rfc3339).unwrap_or_default();
    // Rfc3339 drops trailing zero fractions; S3 always sends three digits.
    if !s.contains('.') {
        s = s.replacen('Z', ".000Z", 1);
    } else if let Some((head, frac)) = s.trim_end_matches('Z').split_once('.') {
        s = format!("{head}.{frac:0<3}Z");
    }
    s
}

/// `Mon, 12 Oct 2009 17:50:30 GMT`
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Parses an HTTP date (If-Modified-Since and friends); `None` when malformed.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn iso8601_has_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_255_369_830_000);
        assert_eq!(iso8601(t), "2009-10-12T17:50:30.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_255_369_830_120);
        assert_eq!(iso8601(t), "2009-10-12T17:50:30.120Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_255_369_830_123_456);
        assert_eq!(iso8601(t), "2009-10-12T17:50:30.123Z");
    }

    #[test]
    fn http_dates_round_trip_to_the_second() {
        let t = UNIX_EPOCH + Duration::from_secs(1_255_369_830);
        assert_eq!(http_date(t), "Mon, 12 Oct 2009 17:50:30 GMT");
        assert_eq!(parse_http_date(&http_date(t)), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
