//! The admin listener: `/health` and `/ready` today; the admin API joins it later.

use std::sync::Arc;

use coffre_storage::{ArrayConfig, Store};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::s3::body::{self, Body};

pub struct AdminService {
    store: Arc<Store>,
    arrays: Vec<ArrayConfig>,
}

impl AdminService {
    pub fn new(store: Arc<Store>, arrays: Vec<ArrayConfig>) -> Self {
        Self { store, arrays }
    }

    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/health") => json(StatusCode::OK, r#"{"status":"alive"}"#.to_owned()),
            (&Method::GET, "/ready") => self.ready().await,
            _ => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.to_owned()),
        }
    }

    /// Ready when the metadata store answers and every array accepts a write.
    async fn ready(&self) -> Response<Body> {
        let store = self.store.clone();
        let arrays = self.arrays.clone();
        let problems = tokio::task::spawn_blocking(move || {
            let mut problems = Vec::new();
            if let Err(e) = store.list_tenants(&coffre_crypto::AdminScope::local_operator()) {
                problems.push(format!("metadata store: {e}"));
            }
            for array in &arrays {
                let probe = array.path.join(".ready-probe");
                if let Err(e) =
                    std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe))
                {
                    problems.push(format!("array {}: {e}", array.name));
                }
            }
            problems
        })
        .await
        .unwrap_or_else(|e| vec![format!("readiness check failed: {e}")]);
        if problems.is_empty() {
            json(StatusCode::OK, r#"{"status":"ready"}"#.to_owned())
        } else {
            let body = serde_json::json!({ "status": "not ready", "problems": problems });
            json(StatusCode::SERVICE_UNAVAILABLE, body.to_string())
        }
    }
}

fn json(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
