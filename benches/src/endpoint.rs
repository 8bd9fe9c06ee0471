//! The endpoint under test. The load generator only ever talks to this machine: anything but
//! `127.0.0.1`, `localhost` or `[::1]` is refused before a request is sent.

use anyhow::{bail, Context, Result};
use http::Uri;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const LOOPBACK_HOSTS: [&str; 4] = ["127.0.0.1", "localhost", "[::1]", "::1"];

/// Everything but the RFC 3986 unreserved characters, as SigV4 encodes query values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Path segments keep `/` so that keys read naturally (`objects/run/000001`).
const KEY_PATH: &AsciiSet = &QUERY_VALUE.remove(b'/');

/// A plain-HTTP S3 endpoint on loopback, addressed path-style.
#[derive(Clone, Debug)]
pub struct Endpoint {
    authority: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("`{url}` is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("endpoint `{url}`: scheme `{other}` is not supported, use http"),
            None => bail!("endpoint `{url}` needs a scheme, e.g. http://127.0.0.1:9000"),
        }
        let host = uri.host().unwrap_or_default();
        if !LOOPBACK_HOSTS.contains(&host) {
            bail!(
                "endpoint host `{host}` refused: loadgen only targets 127.0.0.1, localhost or [::1]"
            );
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!("endpoint `{url}` must not have a path or query");
        }
        let authority = uri
            .authority()
            .context("endpoint has no host")?
            .as_str()
            .to_owned();
        if authority.contains('@') {
            bail!("endpoint `{url}` must not carry credentials");
        }
        Ok(Self { authority })
    }

    pub fn bucket_uri(&self, bucket: &str) -> String {
        format!("http://{}/{}", self.authority, encode_key(bucket))
    }

    pub fn object_uri(&self, bucket: &str, key: &str) -> String {
        format!(
            "http://{}/{}/{}",
            self.authority,
            encode_key(bucket),
            encode_key(key)
        )
    }

    /// `pairs` are raw (unencoded) query parameters.
    pub fn bucket_query_uri(&self, bucket: &str, pairs: &[(&str, &str)]) -> String {
        let query: Vec<String> = pairs
            .iter()
            .map(|(name, value)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(name, QUERY_VALUE),
                    utf8_percent_encode(value, QUERY_VALUE)
                )
            })
            .collect();
        format!("{}?{}", self.bucket_uri(bucket), query.join("&"))
    }
}

fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_PATH).to_string()
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn accepts_loopback_only() {
        for ok in [
            "http://127.0.0.1:9000",
            "http://localhost:8080/",
            "http://[::1]:9000",
        ] {
            assert!(Endpoint::parse(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.1:9000",
            "http://example.com",
            "http://127.0.0.2:9000",
            "https://127.0.0.1:9000",
            "http://user:pw@127.0.0.1:9000",
            "http://127.0.0.1.example.com",
            "127.0.0.1:9000",
        ] {
            assert!(Endpoint::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn encodes_keys_and_query_values() -> anyhow::Result<()> {
        let endpoint = Endpoint::parse("http://127.0.0.1:9000")?;
        assert_eq!(
            endpoint.object_uri("b", "dir/a b+c"),
            "http://127.0.0.1:9000/b/dir/a%20b%2Bc"
        );
        assert_eq!(
            endpoint.bucket_query_uri("b", &[("list-type", "2"), ("prefix", "a/")]),
            "http://127.0.0.1:9000/b?list-type=2&prefix=a%2F"
        );
        Ok(())
    }
}
