//! The decoded query string of a request.

use percent_encoding::percent_decode;

#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `a=b&c&d=` (`+` is a space, as in form encoding; SDKs send `%20`).
    pub fn parse(raw: &str) -> Self {
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            percent_decode(s.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        };
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Self { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_and_bare_keywords() {
        let q = Query::parse("uploads&prefix=a%2Fb+c&max-keys=");
        assert!(q.has("uploads"));
        assert_eq!(q.get("uploads"), Some(""));
        assert_eq!(q.get("prefix"), Some("a/b c"));
        assert_eq!(q.get("max-keys"), Some(""));
        assert_eq!(q.get("missing"), None);
    }
}
