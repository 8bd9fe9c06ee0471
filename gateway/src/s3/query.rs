//! The decoded query string of a request: the one decoding that routing, handlers and the
//! signature check all read (see `coffre_crypto::sigv4::QueryString`), so that `+`, `%2B`
//! and `%20` cannot mean one thing to the router and another to the signature.

use coffre_crypto::sigv4::QueryString;

use super::error::{S3Error, S3ErrorCode};

#[derive(Debug, Default, Clone)]
pub struct Query(QueryString);

impl Query {
    /// Decodes `a=b&c&d=` (`+` is a space, as in form encoding; SDKs send `%20`). A query
    /// string that does not decode to UTF-8 is refused.
    pub fn parse(raw: &str) -> Result<Self, S3Error> {
        QueryString::parse(raw).map(Self).map_err(|e| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The query string is not valid UTF-8.",
            )
            .source(e)
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.has(name)
    }

    /// Every decoded pair, in the order received.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.pairs()
    }

    /// What the signature check reads.
    pub fn decoded(&self) -> &QueryString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_and_bare_keywords() {
        let q = Query::parse("uploads&prefix=a%2Fb+c&max-keys=").unwrap_or_else(|e| panic!("{e}"));
        assert!(q.has("uploads"));
        assert_eq!(q.get("uploads"), Some(""));
        assert_eq!(q.get("prefix"), Some("a/b c"));
        assert_eq!(q.get("max-keys"), Some(""));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn invalid_utf8_is_an_invalid_argument() {
        let e = Query::parse("prefix=%FF")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.code(), S3ErrorCode::InvalidArgument);
    }
}
