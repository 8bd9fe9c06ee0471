//! The admin API of a [`TestServer`]: JSON requests with the bearer token the server wrote
//! to `<data-dir>/admin-token`, and short ways to make tenants and keys for a test.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::server::TestServer;

/// A client of one server's admin listener.
pub struct AdminApi {
    endpoint: String,
    token: String,
}

/// A complete admin API response.
#[derive(Debug)]
pub struct AdminResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
}

impl AdminResponse {
    /// `error.code` of an error document.
    pub fn error_code(&self) -> Option<&str> {
        self.json["error"]["code"].as_str()
    }

    /// Asserts status and error code, printing the response otherwise.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.error_code()),
            (status, Some(code)),
            "expected {status} {code}, got {} {}",
            self.status,
            self.text
        );
    }

    /// Asserts a status, printing the response otherwise.
    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body {}",
            self.text
        );
    }
}

/// Credentials of an access key made through the admin API.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
}

impl TestServer {
    /// The admin API, authenticated with the token from `<data-dir>/admin-token`.
    pub fn admin(&self) -> AdminApi {
        self.admin_with_token_file(&self.data_dir().join("admin-token"))
    }

    /// The admin API, authenticated with the token in `path` (a configured
    /// `admin_token_file`, shared by the nodes of a cluster).
    pub fn admin_with_token_file(&self, path: &std::path::Path) -> AdminApi {
        let token = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .trim()
            .to_string();
        AdminApi {
            endpoint: self.admin_endpoint.clone(),
            token,
        }
    }
}

impl AdminApi {
    /// The token this client sends.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Sends `body` (raw bytes) with `token` as bearer token (`None`: no header).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: impl Into<Bytes>,
        token: Option<&str>,
    ) -> AdminResponse {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.endpoint))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body.into())).expect("admin request");
        let client = Client::builder(TokioExecutor::new()).build_http();
        let response = client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e:?}"))
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        AdminResponse {
            status,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    /// Sends `body` as JSON (nothing for `None`) with the right token.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> AdminResponse {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let token = self.token.clone();
        self.send_raw(method, path, bytes, Some(&token)).await
    }

    /// Creates a tenant from a `POST /admin/v1/tenants` document; returns the Tenant.
    pub async fn create_tenant(&self, document: Value) -> Value {
        let response = self
            .send(Method::POST, "/admin/v1/tenants", Some(document))
            .await;
        response.assert_status(201);
        response.json
    }

    /// Creates an access key for `tenant`; `buckets` limits it when given.
    pub async fn create_key(&self, tenant: &str, role: &str, buckets: Option<&[&str]>) -> KeyPair {
        let mut document = serde_json::json!({ "role": role });
        if let Some(buckets) = buckets {
            document["buckets"] = serde_json::json!(buckets);
        }
        let response = self
            .send(
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/keys"),
                Some(document),
            )
            .await;
        response.assert_status(201);
        KeyPair {
            access_key: response.json["access_key_id"]
                .as_str()
                .expect("access_key_id")
                .to_string(),
            secret_key: response.json["secret_access_key"]
                .as_str()
                .expect("secret_access_key")
                .to_string(),
        }
    }

    /// A new tenant `name` (no quotas, any array) and an admin key for it.
    pub async fn tenant_with_key(&self, name: &str) -> KeyPair {
        self.create_tenant(serde_json::json!({ "name": name }))
            .await;
        self.create_key(name, "admin", None).await
    }

    /// `GET /admin/v1/tenants/{name}`.
    pub async fn tenant(&self, name: &str) -> AdminResponse {
        self.send(Method::GET, &format!("/admin/v1/tenants/{name}"), None)
            .await
    }
}
