//! The canonical request of SigV4 as S3 defines it: no path normalisation, single URI
//! encoding, and the signed headers with trimmed values. The canonical query comes from the
//! request's one decoded [`super::QueryString`].

use http::HeaderMap;
use percent_encoding::{percent_decode, percent_encode, AsciiSet};

use super::query_string::QUERY_ENCODE;

/// In a path, `/` separates segments and stays as is.
const PATH_ENCODE: &AsciiSet = &QUERY_ENCODE.remove(b'/');

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The canonical URIs to try for a raw request path. The first is the decoded path
/// re-encoded, which is what every SDK signs. When the raw path encodes a character that
/// decoding would turn into a separator (`%2F`), some clients signed the path as sent instead,
/// so its normalised form (uppercase hex, unreserved characters decoded) is the second.
pub(crate) fn canonical_uris(raw_path: &str) -> Vec<String> {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let decoded: Vec<u8> = percent_decode(path.as_bytes()).collect();
    let reencoded = percent_encode(&decoded, PATH_ENCODE).to_string();

    let bytes = path.as_bytes();
    let mut normalized = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex_at = |j: usize| bytes.get(j).copied().and_then(hex_value);
        let escaped = match (b, hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(hi), Some(lo)) => Some((hi << 4) | lo),
            _ => None,
        };
        match escaped {
            Some(d) => {
                push_path_byte(&mut normalized, d, false);
                i += 3;
            }
            None => {
                push_path_byte(&mut normalized, b, true);
                i += 1;
            }
        }
    }

    if normalized == reencoded {
        vec![reencoded]
    } else {
        vec![reencoded, normalized]
    }
}

fn push_path_byte(out: &mut String, b: u8, slash_is_separator: bool) {
    if is_unreserved(b) || (slash_is_separator && b == b'/') {
        out.push(char::from(b));
    } else {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// `name:value\n` for each signed header, in the order of `signed_headers` (lowercase names).
/// Values are trimmed, inner runs of spaces collapsed, and repeated headers joined with `,`.
/// A signed header missing from the request contributes an empty value, so the signature
/// cannot match one computed over a header that was there.
pub(crate) fn canonical_headers(headers: &HeaderMap, signed_headers: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(&mut out, value.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if b == b' ' || b == b'\t' {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
            started = true;
        }
    }
}

/// `METHOD\nURI\nQUERY\nHEADERS\nSIGNED_HEADERS\nPAYLOAD_HASH`; `headers` already ends with
/// a newline, which gives the blank line S3 expects.
pub(crate) fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &[u8],
    signed_headers: &[String],
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        method.len() + uri.len() + query.len() + headers.len() + payload_hash.len() + 128,
    );
    for part in [method, "\n", uri, "\n", query, "\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(headers);
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn path_is_reencoded_without_normalisation() {
        assert_eq!(canonical_uris(""), vec!["/"]);
        assert_eq!(canonical_uris("/test.txt"), vec!["/test.txt"]);
        assert_eq!(canonical_uris("/test$file.text"), vec!["/test%24file.text"]);
        assert_eq!(canonical_uris("/a/../b//c"), vec!["/a/../b//c"]);
        assert_eq!(
            canonical_uris("/key%20with%20space"),
            vec!["/key%20with%20space"]
        );
        assert_eq!(canonical_uris("/%7e%41"), vec!["/~A"]);
        assert_eq!(canonical_uris("/caf%c3%a9"), vec!["/caf%C3%A9"]);
        assert_eq!(canonical_uris("/a+b"), vec!["/a%2Bb"]);
        assert_eq!(canonical_uris("/100%"), vec!["/100%25"]);
        assert_eq!(canonical_uris("/a%2Fb"), vec!["/a/b", "/a%2Fb"]);
        assert_eq!(canonical_uris("/a%252F"), vec!["/a%252F"]);
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        headers.append("x-amz-meta-a", HeaderValue::from_static("  one   two  "));
        headers.append("x-amz-meta-a", HeaderValue::from_static("three"));
        let signed = vec![
            "host".to_owned(),
            "x-amz-meta-a".to_owned(),
            "x-absent".to_owned(),
        ];
        assert_eq!(
            canonical_headers(&headers, &signed),
            b"host:example.com\nx-amz-meta-a:one two,three\nx-absent:\n"
        );
    }
}
