//! The admin API client behind `coffre admin`: JSON with the bearer token, over plain HTTP
//! or over HTTPS trusting a given CA, with a client certificate when the admin listener
//! requires one (`admin_client_ca_file`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::{de::DeserializeOwned, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use super::schema::ErrorDoc;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the admin token from {path}: {source} (use --token-file or COFFRE_ADMIN_TOKEN_FILE)")]
    Token {
        path: String,
        source: std::io::Error,
    },
    #[error("bad endpoint '{0}': expected http://HOST:PORT or https://HOST:PORT")]
    Endpoint(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot reach the admin API at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The server answered with an error document.
    #[error("{code}: {message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("unexpected answer from the server ({status}): {message}")]
    Protocol { status: StatusCode, message: String },
}

/// How the client checks an https admin listener and proves itself to it.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM CA certificates the listener's certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and its key, for a listener that requires client
    /// certificates (`admin_client_ca_file`).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

pub struct AdminClient {
    endpoint: String,
    /// `host:port` to connect to and send as `Host`.
    authority: String,
    /// Set for https endpoints.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    token: Zeroizing<String>,
}

impl AdminClient {
    /// `endpoint` is `http://host:port`; the token is the first line of `token_file`.
    pub fn new(endpoint: &str, token_file: &Path) -> Result<Self, ClientError> {
        Self::with_tls(endpoint, token_file, &ClientTls::default())
    }

    /// `endpoint` is `http://host:port` or `https://host:port`; an https endpoint needs
    /// `tls.ca_file`, and a client certificate when the listener requires one.
    pub fn with_tls(
        endpoint: &str,
        token_file: &Path,
        tls: &ClientTls,
    ) -> Result<Self, ClientError> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let (https, authority) = match (
            endpoint.strip_prefix("http://"),
            endpoint.strip_prefix("https://"),
        ) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(ClientError::Endpoint(endpoint)),
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(ClientError::Endpoint(endpoint));
        }
        let authority = authority.to_owned();
        let tls = if https {
            Some(connector(&authority, tls)?)
        } else {
            if tls.ca_file.is_some() || tls.cert_file.is_some() {
                return Err(ClientError::Tls(format!(
                    "{endpoint} is plain http: TLS options need an https:// endpoint"
                )));
            }
            None
        };
        let text = Zeroizing::new(std::fs::read_to_string(token_file).map_err(|source| {
            ClientError::Token {
                path: token_file.display().to_string(),
                source,
            }
        })?);
        let token = Zeroizing::new(text.trim().to_owned());
        Ok(Self {
            endpoint,
            authority,
            tls,
            token,
        })
    }

    /// One connection per call: the CLI makes one call per command.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        let tcp = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| e.to_string())?;
        match &self.tls {
            None => exchange(tcp, request).await,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                exchange(stream, request).await
            }
        }
    }

    /// Sends `body` (if any) as JSON and decodes the answer; `None` for 204.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Option<T>, ClientError> {
        let payload = match body {
            Some(body) => {
                Bytes::from(serde_json::to_vec(body).map_err(|e| ClientError::Protocol {
                    status: StatusCode::OK,
                    message: e.to_string(),
                })?)
            }
            None => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.authority)
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token.as_str()),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(payload))
            .map_err(|_| ClientError::Endpoint(self.endpoint.clone()))?;
        let unreachable = |message: String| ClientError::Unreachable {
            endpoint: self.endpoint.clone(),
            message,
        };
        let response = self.send(request).await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorDoc>(&bytes) {
                Ok(doc) => ClientError::Api {
                    status,
                    code: doc.error.code,
                    message: doc.error.message,
                },
                Err(_) => ClientError::Protocol {
                    status,
                    message: String::from_utf8_lossy(&bytes).into_owned(),
                },
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ClientError::Protocol {
                status,
                message: e.to_string(),
            })
    }
}

async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // TLS 1.3 reports a refused client certificate on the first read: an error here.
    sender.send_request(request).await.map_err(|e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    })
}

/// A TLS connector trusting `tls.ca_file` only, presenting the client certificate if
/// given, for the server named by the endpoint's host.
fn connector(
    authority: &str,
    tls: &ClientTls,
) -> Result<(TlsConnector, ServerName<'static>), ClientError> {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| ClientError::Tls(format!("'{host}' is not a host name or address")))?;
    let ca_file = tls.ca_file.as_ref().ok_or_else(|| {
        ClientError::Tls(
            "an https endpoint needs the CA of the admin listener's certificate \
             (--ca-file or COFFRE_ADMIN_CA_FILE)"
                .into(),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca_file)? {
        roots
            .add(cert)
            .map_err(|e| ClientError::Tls(format!("{}: {e}", ca_file.display())))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| ClientError::Tls(format!("client key {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ClientError::Tls(format!("client certificate: {e}")))?
        }
        _ => {
            return Err(ClientError::Tls(
                "a client certificate needs both --client-cert and --client-key".into(),
            ))
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsConnector::from(Arc::new(config)), name))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ClientError::Tls(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}
