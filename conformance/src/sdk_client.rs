//! aws-sdk-s3 clients configured for a [`TestServer`], with the SDK's default checksum
//! behaviour left on, over the transport the server announced (HTTPS trusting the harness's
//! test CA, see [`crate::Transport`]).

use std::net::{IpAddr, Ipv4Addr};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::server::TestServer;
use crate::transport::test_ca;
use crate::REGION;

impl TestServer {
    /// A path-style client for the default tenant. Retries are off so that every failure
    /// the server produces is seen by the test.
    pub fn s3_client(&self) -> Client {
        self.s3_client_with(&self.access_key, &self.secret_key)
    }

    /// A path-style client signing with the given credentials.
    pub fn s3_client_with(&self, access_key: &str, secret_key: &str) -> Client {
        let mut config = base_config(access_key, secret_key)
            .endpoint_url(&self.endpoint)
            .force_path_style(true);
        if self.is_https() {
            config = config.http_client(http_client(Some(&test_ca().pem()), false));
        }
        Client::from_conf(config.build())
    }

    /// A path-style client for a server started with TLS of the test's own, trusting only the
    /// CA certificate `ca_pem` (the server's certificate must name 127.0.0.1).
    pub fn s3_client_https(&self, ca_pem: &str) -> Client {
        let config = base_config(&self.access_key, &self.secret_key)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .http_client(http_client(Some(ca_pem), false))
            .build();
        Client::from_conf(config)
    }

    /// A virtual-host-style client: requests go to `http(s)://<bucket>.<domain>:PORT`, and
    /// every name resolves to 127.0.0.1. The server must run with `--domain <domain>` (over
    /// HTTPS, the harness's certificate then names `*.<domain>`).
    pub fn s3_client_virtual_host(&self, domain: &str) -> Client {
        let ca_pem = self.is_https().then(|| test_ca().pem());
        let scheme = if self.is_https() { "https" } else { "http" };
        let config = base_config(&self.access_key, &self.secret_key)
            .endpoint_url(format!("{scheme}://{domain}:{}", self.s3_addr.port()))
            .force_path_style(false)
            .http_client(http_client(ca_pem.as_deref(), true))
            .build();
        Client::from_conf(config)
    }
}

/// The SDK's HTTP client: trusting only `ca_pem` when given, and resolving every name to
/// 127.0.0.1 when `loopback`.
fn http_client(ca_pem: Option<&str>, loopback: bool) -> SharedHttpClient {
    let mut builder =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
    if let Some(ca_pem) = ca_pem {
        let trust = TrustStore::empty().with_pem_certificate(ca_pem.as_bytes());
        let tls = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .expect("a TLS context");
        builder = builder.tls_context(tls);
    }
    if loopback {
        builder.build_with_resolver(LoopbackResolver)
    } else {
        builder.build_https()
    }
}

fn base_config(access_key: &str, secret_key: &str) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "coffre-conformance",
        ))
        .retry_config(RetryConfig::disabled())
}

/// Resolves every name to 127.0.0.1 (for `bucket.s3.test`).
#[derive(Clone, Debug)]
struct LoopbackResolver;

impl ResolveDns for LoopbackResolver {
    fn resolve_dns<'a>(&'a self, _name: &'a str) -> DnsFuture<'a> {
        DnsFuture::ready(Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]))
    }
}

/// HTTP status and S3 error code of a failed SDK call (status 0 when no response came back;
/// code `""` when the response had no error body, as for HEAD).
pub fn sdk_error<E>(err: &aws_sdk_s3::error::SdkError<E>) -> (u16, String)
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    let status = err.raw_response().map_or(0, |r| r.status().as_u16());
    let code = err.code().unwrap_or_default().to_string();
    (status, code)
}
