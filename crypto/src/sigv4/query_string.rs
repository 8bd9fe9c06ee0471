//! The one decoding of a request's query string, shared by routing and by the signature
//! check, so that both read the same parameters: `+` is a space (form encoding, as S3 reads
//! it), `%2B` is a plus, `%20` is a space, and the decoded text must be UTF-8.

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the unreserved characters `A-Za-z0-9-._~` is encoded.
pub(crate) const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A query string that does not decode to UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the query string does not decode to UTF-8")]
pub struct QueryStringError;

/// The decoded `(name, value)` pairs of a query string, in the order received. `a` without
/// `=` has the value "".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueryString {
    pairs: Vec<(String, String)>,
}

impl QueryString {
    /// Decodes `raw` (without the `?`).
    pub fn parse(raw: &str) -> Result<Self, QueryStringError> {
        let decode = |s: &str| -> Result<String, QueryStringError> {
            let bytes: Vec<u8> = s
                .bytes()
                .map(|b| if b == b'+' { b' ' } else { b })
                .collect();
            let decoded: Vec<u8> = percent_decode(&bytes).collect();
            String::from_utf8(decoded).map_err(|_| QueryStringError)
        };
        let pairs = raw
            .split('&')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
                Ok((decode(name)?, decode(value)?))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { pairs })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// Every pair, in the order received.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The canonical query string of SigV4: names and values strictly re-encoded, sorted by
    /// name then value. `exclude` names a parameter left out (`X-Amz-Signature` for
    /// presigned requests).
    pub(crate) fn canonical(&self, exclude: Option<&str>) -> String {
        let mut pairs: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(name, _)| exclude != Some(name.as_str()))
            .map(|(name, value)| {
                (
                    percent_encode(name.as_bytes(), QUERY_ENCODE).to_string(),
                    percent_encode(value.as_bytes(), QUERY_ENCODE).to_string(),
                )
            })
            .collect();
        pairs.sort();
        let mut out = String::new();
        for (i, (name, value)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> QueryString {
        QueryString::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn decodes_pairs_and_bare_keywords() {
        let q = parse("uploads&prefix=a%2Fb+c&max-keys=");
        assert!(q.has("uploads"));
        assert_eq!(q.get("uploads"), Some(""));
        assert_eq!(q.get("prefix"), Some("a/b c"));
        assert_eq!(q.get("max-keys"), Some(""));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn plus_is_a_space_and_an_encoded_plus_is_a_plus() {
        assert_eq!(parse("p=a+b").get("p"), Some("a b"));
        assert_eq!(parse("p=a%20b").get("p"), Some("a b"));
        assert_eq!(parse("p=a%2Bb").get("p"), Some("a+b"));
        // The same parameter, however it was spelled, has one canonical form.
        for raw in ["p=a+b", "p=a%20b"] {
            assert_eq!(parse(raw).canonical(None), "p=a%20b");
        }
        assert_eq!(parse("p=a%2Bb").canonical(None), "p=a%2Bb");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(QueryString::parse("p=%FF"), Err(QueryStringError));
        assert_eq!(QueryString::parse("%C3=1"), Err(QueryStringError));
        assert!(QueryString::parse("p=caf%C3%A9").is_ok());
    }

    #[test]
    fn canonical_form_is_sorted_and_strictly_encoded() {
        assert_eq!(parse("").canonical(None), "");
        assert_eq!(parse("lifecycle").canonical(None), "lifecycle=");
        assert_eq!(
            parse("prefix=J&max-keys=2").canonical(None),
            "max-keys=2&prefix=J"
        );
        assert_eq!(parse("a=2&a=1&b").canonical(None), "a=1&a=2&b=");
        assert_eq!(
            parse("prefix=a/b%20c&x=%7e%2f").canonical(None),
            "prefix=a%2Fb%20c&x=~%2F"
        );
        assert_eq!(
            parse("X-Amz-Signature=abc&X-Amz-Date=1").canonical(Some("X-Amz-Signature")),
            "X-Amz-Date=1"
        );
    }
}
