//! The admin listener: `/health` and `/ready` for probes, and the admin API under
//! `/admin/v1/` (tenants, access keys, key rotation), authenticated with the bearer token and documented
//! in `gateway/ADMIN_API.md`. Every API request is recorded by [`audit::record`].
//!
//! The `coffre admin` command line drives the API through [`client`] and [`command`].

pub mod access_keys;
pub mod audit;
pub mod byte_size;
pub mod client;
pub mod cluster;
pub mod command;
pub mod error;
pub mod key_rotation;
pub mod routes;
pub mod schema;
pub mod tenants;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use coffre_crypto::AdminScope;
use coffre_storage::{ArrayConfig, Store};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::{de::DeserializeOwned, Serialize};

use crate::audit::AuditLog;
use crate::key_rotation::RotationWaker;
use crate::metrics::Metrics;
use crate::s3::body::{self, Body};
use error::{AdminError, AdminErrorCode};
use routes::{Route, Unrouted};
use token::AdminToken;

/// Admin request bodies are small JSON documents.
const MAX_BODY: usize = 64 * 1024;

pub struct AdminService {
    store: Arc<Store>,
    arrays: Vec<ArrayConfig>,
    token: AdminToken,
    metrics: Arc<Metrics>,
    audit: AuditLog,
    rotation: RotationWaker,
}

/// What a handler gets: the store, the scope the token check produced, and the waker of
/// the background key rotation.
#[derive(Clone)]
pub struct AdminContext {
    pub store: Arc<Store>,
    pub admin: Arc<AdminScope>,
    pub rotation: RotationWaker,
}

/// A handler's answer: a status and a JSON body (none for 204), and what the audit record
/// should say the action did, beyond its name and target.
pub struct JsonReply {
    status: StatusCode,
    body: Option<String>,
    audit: Option<serde_json::Value>,
}

impl JsonReply {
    pub fn new(status: StatusCode, value: &impl Serialize) -> Result<Self, AdminError> {
        let mut text = serde_json::to_string_pretty(value).map_err(AdminError::internal)?;
        text.push('\n');
        Ok(Self {
            status,
            body: Some(text),
            audit: None,
        })
    }

    /// Adds `result` (ids and versions, never a secret) to the action's audit record.
    pub fn audited(mut self, result: serde_json::Value) -> Self {
        self.audit = Some(result);
        self
    }

    pub fn ok(value: &impl Serialize) -> Result<Self, AdminError> {
        Self::new(StatusCode::OK, value)
    }

    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            audit: None,
        }
    }
}

impl AdminService {
    pub fn new(
        store: Arc<Store>,
        arrays: Vec<ArrayConfig>,
        token: AdminToken,
        metrics: Arc<Metrics>,
        audit: AuditLog,
        rotation: RotationWaker,
    ) -> Self {
        Self {
            store,
            arrays,
            token,
            metrics,
            audit,
            rotation,
        }
    }

    /// `peer`: the client's address, for the audit record.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let route = routes::resolve(request.method(), request.uri().path());
        match route {
            Ok(Route::Health) => json(StatusCode::OK, r#"{"status":"alive"}"#.to_owned()),
            Ok(Route::Ready) => self.ready().await,
            Ok(Route::Metrics) => self.metrics(&request),
            // In a task of its own: an action whose client goes away still completes and is
            // recorded.
            route => {
                match tokio::spawn(async move { self.api(route, request, peer).await }).await {
                    Ok(response) => response,
                    Err(e) => error_response(&AdminError::internal(e)),
                }
            }
        }
    }

    /// Token first, whatever the path: without it nothing, not even which routes exist,
    /// is revealed.
    async fn api(
        &self,
        route: Result<Route, Unrouted>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let admin = self.authenticate(&request);
        // An action runs only with a place for its record in the audit trail.
        let mut slot = None;
        let authenticated = admin.is_ok();
        let result = match (admin, &route) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(Unrouted::NotFound)) => Err(AdminError::new(
                AdminErrorCode::NoSuchRoute,
                format!("no route {} {}", request.method(), request.uri().path()),
            )),
            (Ok(_), Err(Unrouted::MethodNotAllowed(allowed))) => {
                let allowed: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                Err(AdminError::new(
                    AdminErrorCode::MethodNotAllowed,
                    format!(
                        "{} is not allowed here; use {}",
                        request.method(),
                        allowed.join(", ")
                    ),
                ))
            }
            (Ok(admin), Ok(route)) => match self.audit.reserve() {
                None => Err(AdminError::new(
                    AdminErrorCode::SlowDown,
                    "the audit trail is behind; retry shortly",
                )),
                Some(reserved) => {
                    slot = Some(reserved);
                    let ctx = AdminContext {
                        store: self.store.clone(),
                        admin: Arc::new(admin),
                        rotation: self.rotation.clone(),
                    };
                    dispatch(&ctx, route.clone(), request).await
                }
            },
        };
        let (action, target) = match &route {
            Ok(route) => (route.name(), route.target()),
            Err(_) => ("Unrouted", None),
        };
        let allow = match &route {
            Err(Unrouted::MethodNotAllowed(allowed)) if authenticated => {
                let allowed: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
                HeaderValue::from_str(&allowed.join(", ")).ok()
            }
            _ => None,
        };
        let mut result_detail = None;
        let (mut response, error_code) = match result {
            Ok(reply) => {
                result_detail = reply.audit;
                let response = match reply.body {
                    Some(text) => json(reply.status, text),
                    None => {
                        let mut response = Response::new(body::empty());
                        *response.status_mut() = reply.status;
                        response
                    }
                };
                (response, None)
            }
            Err(error) => {
                if error.status().is_server_error() {
                    tracing::error!(action, error = %error, "admin request failed");
                }
                (error_response(&error), Some(error.code().as_str()))
            }
        };
        if let Some(allow) = allow {
            response.headers_mut().insert(http::header::ALLOW, allow);
        }
        audit::record(
            &self.audit,
            slot,
            &audit::AdminEvent {
                source: peer,
                action: if authenticated {
                    action
                } else {
                    "Unauthenticated"
                },
                target: if authenticated { target } else { None },
                status: response.status(),
                error: error_code,
                authenticated,
                result: result_detail.as_ref(),
            },
        );
        response
    }

    /// `/metrics`, with the admin token.
    fn metrics(&self, request: &Request<Incoming>) -> Response<Body> {
        if let Err(error) = self.authenticate(request) {
            return error_response(&error);
        }
        self.metrics.set_audit(&self.audit.stats());
        let kek = self.store.kek_cache_stats();
        self.metrics
            .set_kek_cache(kek.hits, kek.misses, kek.entries as u64);
        self.metrics.set_store(&self.store);
        for array in &self.arrays {
            // statvfs is one cheap system call per array.
            if let Some((free, size)) = coffre_storage::array_space(&array.path) {
                self.metrics.set_array_space(&array.name, free, size);
            }
        }
        let mut response = Response::new(body::full(self.metrics.render()));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }

    fn authenticate(&self, request: &Request<Incoming>) -> Result<AdminScope, AdminError> {
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                AdminError::new(
                    AdminErrorCode::Unauthorized,
                    "missing bearer token (Authorization: Bearer <admin token>)",
                )
            })?;
        AdminScope::verify_token(presented.as_bytes(), self.token.expose())
            .ok_or_else(|| AdminError::new(AdminErrorCode::Unauthorized, "wrong admin token"))
    }

    /// Ready when the metadata store answers and every array accepts a write.
    async fn ready(&self) -> Response<Body> {
        let store = self.store.clone();
        let arrays = self.arrays.clone();
        let problems = tokio::task::spawn_blocking(move || {
            let mut problems = Vec::new();
            // One read of one key: cheap whatever the store holds.
            if let Err(e) = store.key_epoch() {
                problems.push(format!("metadata store: {e}"));
            }
            for array in &arrays {
                // A name of its own per probe: two probes at once must not remove each
                // other's file and report a healthy array as failing.
                let probe = array.path.join(format!(
                    ".ready-probe-{}",
                    hex::encode(rand::random::<[u8; 8]>())
                ));
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

async fn dispatch(
    ctx: &AdminContext,
    route: Route,
    request: Request<Incoming>,
) -> Result<JsonReply, AdminError> {
    let query = request.uri().query().unwrap_or("").to_owned();
    let body = read_body(request).await?;
    match route {
        Route::Health | Route::Ready | Route::Metrics => Err(AdminError::new(
            AdminErrorCode::NoSuchRoute,
            "probes and metrics are not part of the API",
        )),
        Route::ListTenants => tenants::list(ctx).await,
        Route::CreateTenant => tenants::create(ctx, &body).await,
        Route::ShowTenant { tenant } => tenants::show(ctx, tenant).await,
        Route::UpdateTenant { tenant } => tenants::update(ctx, tenant, &body).await,
        Route::DeleteTenant { tenant } => tenants::delete(ctx, tenant, &query).await,
        Route::SuspendTenant { tenant } => tenants::set_suspended(ctx, tenant, true).await,
        Route::ResumeTenant { tenant } => tenants::set_suspended(ctx, tenant, false).await,
        Route::ListKeys { tenant } => access_keys::list(ctx, tenant).await,
        Route::CreateKey { tenant } => access_keys::create(ctx, tenant, &body).await,
        Route::DisableKey { key } => access_keys::set_enabled(ctx, key, false).await,
        Route::EnableKey { key } => access_keys::set_enabled(ctx, key, true).await,
        Route::DeleteKey { key } => access_keys::delete(ctx, key).await,
        Route::RotateTenantKey { tenant } => key_rotation::rotate_tenant_key(ctx, tenant).await,
        Route::ShowRootKey => key_rotation::show_root(ctx).await,
        Route::ShowCluster => cluster::show(ctx).await,
        Route::RotateRoot => key_rotation::rotate_root(ctx).await,
    }
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, AdminError> {
    match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(AdminError::new(
            AdminErrorCode::PayloadTooLarge,
            format!("request bodies are limited to {MAX_BODY} bytes"),
        )),
        Err(e) => Err(AdminError::new(
            AdminErrorCode::MalformedJson,
            format!("cannot read the request body: {e}"),
        )),
    }
}

/// Parses a request document; its errors are the client's (400).
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| AdminError::from_json(&e))
}

/// Runs storage work on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, AdminError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AdminError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(AdminError::internal)?
}

pub(crate) fn rfc3339(time: SystemTime) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from(time)
        .format(&Rfc3339)
        .unwrap_or_default()
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

fn error_response(error: &AdminError) -> Response<Body> {
    let mut response = json(error.status(), error.to_json());
    if error.code() == AdminErrorCode::Unauthorized {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"coffre-admin\""),
        );
    }
    response
}
