//! The admin API client behind `coffre admin`: JSON over plain HTTP (the admin listener is
//! meant for loopback or a private network) with the bearer token.

use std::path::Path;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::{de::DeserializeOwned, Serialize};
use zeroize::Zeroizing;

use super::schema::ErrorDoc;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the admin token from {path}: {source} (use --token-file or COFFRE_ADMIN_TOKEN_FILE)")]
    Token {
        path: String,
        source: std::io::Error,
    },
    #[error("bad endpoint '{0}': expected http://HOST:PORT")]
    Endpoint(String),
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

pub struct AdminClient {
    endpoint: String,
    token: Zeroizing<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    /// `endpoint` is `http://host:port`; the token is the first line of `token_file`.
    pub fn new(endpoint: &str, token_file: &Path) -> Result<Self, ClientError> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let valid = endpoint
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        if !valid {
            return Err(ClientError::Endpoint(endpoint));
        }
        let text = Zeroizing::new(std::fs::read_to_string(token_file).map_err(|source| {
            ClientError::Token {
                path: token_file.display().to_string(),
                source,
            }
        })?);
        let token = Zeroizing::new(text.trim().to_owned());
        Ok(Self {
            endpoint,
            token,
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Sends `body` (if any) as JSON and decodes the answer; `None` for 204.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Option<T>, ClientError> {
        let uri = format!("{}{path}", self.endpoint);
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
            .uri(&uri)
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
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| unreachable(format!("{e}")))?;
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
