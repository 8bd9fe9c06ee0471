//! The S3 request pipeline: request id, routing, authentication, authorization, handler,
//! and the error response. Logging is applied here, around the handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffre_storage::Store;
use http::{HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use rand::RngCore;
use tracing::Instrument;

use super::admission::{Admission, GlobalPermit, TenantPermit};
use super::auth::{authenticate, authorize};
use super::body::{self, Body};
use super::error::{S3Error, S3ErrorCode};
use super::handlers::{
    bucket_config, bucket_cors, buckets, copy_object, delete_objects, list_objects,
    multipart_upload, object_attributes, object_tagging, objects, post_object,
};
use super::operation::Operation;
use super::query::Query;
use super::request_audit::{Attribution, RequestAudit};
use super::request_body::RequestBody;
use super::server_side_encryption;
use super::unread_body::UnreadBody;
use super::RequestContext;
use crate::audit::AuditLog;
use crate::config::LimitsConfig;
use crate::metrics::{Metrics, RequestOutcome};
use crate::min_rate::MinRate;

/// Bodies of requests that carry an XML document or nothing.
const MAX_SMALL_BODY: u64 = 4 * 1024 * 1024;

pub struct S3Service {
    store: Arc<Store>,
    region: Arc<str>,
    domain: Option<String>,
    audit: AuditLog,
    metrics: Arc<Metrics>,
    /// The listener serves TLS, or is configured as behind a trusted TLS terminator: SSE-C
    /// headers are accepted.
    secure_transport: bool,
    /// Requests in flight, globally and per tenant.
    admission: Admission,
    /// The slowest a client may send a request body.
    body_min_rate: MinRate,
    /// How long a browser form has to deliver its fields, before it is authenticated.
    form_fields_timeout: Duration,
}

/// What the pipeline learned about a request, for its audit record.
#[derive(Default)]
struct Seen {
    operation: Option<&'static str>,
    bucket: Option<String>,
    key: Option<String>,
    tenant: Option<String>,
    access_key: Option<String>,
    /// A browser's authenticated request on a bucket: its response, success or error, gets
    /// the CORS headers of the bucket's matching rule (so the page can read S3's answer).
    cors: Option<bucket_cors::ActualRequest>,
    /// The request's share of its tenant's bound, held until its response body is sent.
    tenant_permit: Option<TenantPermit>,
}

impl Seen {
    fn attribution(&self) -> Attribution<'_> {
        Attribution {
            operation: self.operation,
            tenant: self.tenant.as_deref(),
            access_key: self.access_key.as_deref(),
            bucket: self.bucket.as_deref(),
            key: self.key.as_deref(),
        }
    }
}

impl S3Service {
    pub fn new(
        store: Arc<Store>,
        region: String,
        domain: Option<String>,
        audit: AuditLog,
        metrics: Arc<Metrics>,
    ) -> Self {
        let limits = LimitsConfig::default();
        Self {
            store,
            region: region.into(),
            domain,
            audit,
            metrics,
            secure_transport: false,
            admission: Admission::new(
                limits.max_requests_in_flight,
                limits.max_requests_in_flight_per_tenant,
            ),
            body_min_rate: limits.body_min_rate,
            form_fields_timeout: limits.form_fields_timeout,
        }
    }

    /// Applies the bounds of `[limits]` that concern requests (connections are the
    /// listener's).
    pub fn with_limits(mut self, limits: &LimitsConfig) -> Self {
        self.admission = Admission::new(
            limits.max_requests_in_flight,
            limits.max_requests_in_flight_per_tenant,
        );
        self.body_min_rate = limits.body_min_rate;
        self.form_fields_timeout = limits.form_fields_timeout;
        self
    }

    /// Whether the connections this service answers are encrypted (a TLS listener, or one
    /// behind a trusted TLS terminator): SSE-C is refused otherwise.
    pub fn with_secure_transport(mut self, secure_transport: bool) -> Self {
        self.secure_transport = secure_transport;
        self
    }

    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        if !self.audit.accepting() {
            // No access without evidence: refuse while the audit trail cannot be written.
            let error = S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "The audit trail cannot be written; the service refuses requests until it can.",
            );
            return error_response(&error, &new_request_id(), request.method() == Method::HEAD);
        }
        let _in_flight = self.metrics.start_request();
        let request_id = new_request_id();
        let mut audit = RequestAudit::start(&self.audit, &request_id, peer);
        // Body bytes count as they arrive, whichever part of the pipeline reads them.
        let received = audit.received().clone();
        let is_head = request.method() == Method::HEAD;
        let span = tracing::info_span!(
            "s3",
            request_id = %request_id,
            op = tracing::field::Empty,
            tenant = tracing::field::Empty,
        );
        let started = Instant::now();
        let method = request.method().clone();
        let mut seen = Seen::default();
        // Beyond the bound, refused before any work: no lookup, no queue.
        let (global_permit, result) = match self.admission.admit() {
            Ok(permit) => {
                let result = received
                    .counting(self.dispatch(request, &request_id, &mut seen, &mut audit))
                    .instrument(span.clone())
                    .await;
                (Some(permit), result)
            }
            Err(refused) => {
                // Drained in the background, so that the client can read the answer.
                drop(UnreadBody::new(request.into_body()));
                (None, Err(refused))
            }
        };
        let error_code = result.as_ref().err().map(|e| e.code());
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                let _entered = span.enter();
                if error.status().is_server_error() {
                    tracing::error!(error = %error, "request failed");
                } else {
                    tracing::debug!(error = %error, "request refused");
                }
                error_response(&error, &request_id, is_head)
            }
        };
        if let Some(cors) = seen.cors.take() {
            cors.add_headers(&mut response).await;
        }
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            response
                .headers_mut()
                .insert("x-amz-request-id", id.clone());
            response.headers_mut().insert("x-amz-id-2", id);
        }
        response
            .headers_mut()
            .insert(http::header::SERVER, HeaderValue::from_static("Coffre"));
        let bytes_out = if is_head {
            0
        } else {
            declared_length(response.headers())
        };
        let operation = seen.operation.unwrap_or("Unknown");
        let bytes_in = audit.bytes_in();
        self.metrics.observe(&RequestOutcome {
            op: operation,
            status: response.status().as_u16(),
            error: error_code,
            tenant: seen.tenant.as_deref(),
            bucket: seen.bucket.as_deref(),
            bytes_in,
            bytes_out,
            seconds: started.elapsed().as_secs_f64(),
        });
        let seen_permit = seen.tenant_permit.take();
        audit.finish(
            seen.attribution(),
            response.status().as_u16(),
            error_code.map(S3ErrorCode::as_str),
            bytes_out,
        );
        span.in_scope(|| {
            tracing::debug!(
                method = %method,
                status = response.status().as_u16(),
                micros = started.elapsed().as_micros() as u64,
                "request"
            );
        });
        // The request stays in flight until its response body is sent or dropped.
        let permits = Permits {
            _global: global_permit,
            _tenant: seen_permit,
        };
        response.map(|body| body::holding(body, permits))
    }

    async fn dispatch(
        &self,
        request: Request<Incoming>,
        request_id: &str,
        seen: &mut Seen,
        audit: &mut RequestAudit,
    ) -> Result<Response<Body>, S3Error> {
        let (parts, incoming) = request.into_parts();
        let query = Query::parse(parts.uri.query().unwrap_or(""))?;
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(parts.uri.host());
        let operation = Operation::parse(
            &parts.method,
            host,
            self.domain.as_deref(),
            parts.uri.path(),
            &query,
            parts
                .headers
                .get("x-amz-copy-source")
                .map(|v| v.to_str().unwrap_or_default()),
        )?;
        tracing::Span::current().record("op", operation.name());
        seen.operation = Some(operation.name());
        seen.bucket = operation.bucket().map(str::to_owned);
        seen.key = operation.key().map(str::to_owned);

        // Browsers send preflights without credentials: answered from published CORS rules.
        if let Operation::CorsPreflight { bucket, key } = operation {
            return bucket_cors::preflight(self.store.clone(), bucket, &key, &parts.headers).await;
        }

        // A browser form has no Authorization header: it is authenticated by its fields.
        if let Operation::PostObject { .. } = operation {
            // It writes: its place in the audit trail is taken before the form is read.
            audit.reserve(seen.attribution())?;
            let (store, region) = (self.store.clone(), self.region.clone());
            let scheme = if self.secure_transport {
                post_object::Scheme::Https
            } else {
                post_object::Scheme::Http
            };
            let bounds = post_object::PostBounds {
                scheme,
                fields_timeout: self.form_fields_timeout,
                body_min_rate: self.body_min_rate,
                admission: &self.admission,
            };
            let mut by = post_object::PostedBy::default();
            let result = post_object::post_object(
                store, region, parts, incoming, operation, bounds, &mut by,
            )
            .await;
            (seen.tenant, seen.access_key, seen.key) = (by.tenant, by.access_key, by.key);
            seen.tenant_permit = by.permit;
            return result;
        }

        // From here on, a body left unread when the answer is ready is drained in the
        // background, so that the client can read the answer.
        let incoming = UnreadBody::new(incoming);

        // Customer keys travel in the clear over plain HTTP: refused before anything else.
        server_side_encryption::check_transport(&parts.headers, &query, self.secure_transport)?;

        let auth = authenticate(&self.store, &parts, &query, &self.region).await?;
        seen.tenant = Some(auth.scope.tenant_id().to_hex());
        seen.access_key = Some(auth.scope.access_key().to_string());
        // No handler runs without a place for its record in the audit trail.
        audit.reserve(seen.attribution())?;
        let tenant = auth.scope.tenant_id().to_hex();
        seen.tenant_permit = Some(self.admission.admit_tenant(&tenant)?);
        tracing::Span::current().record("tenant", tracing::field::display(auth.scope.tenant_id()));
        authorize(&auth.scope, &operation)?;

        let limit = match operation {
            Operation::PutObject { .. } | Operation::UploadPart { .. } => objects::MAX_PUT_BYTES,
            _ => MAX_SMALL_BODY,
        };
        let body = RequestBody::new(
            incoming,
            &parts.headers,
            &auth.payload,
            auth.chunk_signer,
            limit,
            self.body_min_rate,
        )?;
        let ctx = RequestContext {
            request_id: request_id.into(),
            store: self.store.clone(),
            scope: Arc::new(auth.scope),
            region: self.region.clone(),
            headers: parts.headers,
            query,
            body,
        };
        seen.cors =
            bucket_cors::ActualRequest::of(&ctx, operation.bucket(), operation.http_method());
        handle_operation(ctx, operation).await
    }
}

async fn handle_operation(
    ctx: RequestContext,
    operation: Operation,
) -> Result<Response<Body>, S3Error> {
    use Operation as Op;
    match operation {
        Op::ListBuckets => buckets::list_buckets(ctx).await,
        Op::CreateBucket { bucket } => buckets::create_bucket(ctx, bucket).await,
        Op::HeadBucket { bucket } => buckets::head_bucket(ctx, bucket).await,
        Op::DeleteBucket { bucket } => buckets::delete_bucket(ctx, bucket).await,
        Op::GetBucketLocation { bucket } => buckets::get_bucket_location(ctx, bucket).await,
        Op::GetBucketVersioning { bucket } => buckets::get_bucket_versioning(ctx, bucket).await,
        Op::ListObjects { bucket } => list_objects::list_objects_v1(ctx, bucket).await,
        Op::ListObjectsV2 { bucket } => list_objects::list_objects_v2(ctx, bucket).await,
        Op::ListMultipartUploads { bucket } => {
            multipart_upload::list_multipart_uploads(ctx, bucket).await
        }
        Op::PutObject { bucket, key } => objects::put_object(ctx, bucket, key).await,
        Op::GetObject {
            bucket,
            key,
            part_number,
        } => objects::get_object(ctx, bucket, key, part_number).await,
        Op::HeadObject {
            bucket,
            key,
            part_number,
        } => objects::head_object(ctx, bucket, key, part_number).await,
        Op::CopyObject {
            bucket,
            key,
            source,
        } => copy_object::copy_object(ctx, bucket, key, source).await,
        Op::UploadPartCopy {
            bucket,
            key,
            upload_id,
            part_number,
            source,
        } => copy_object::upload_part_copy(ctx, bucket, key, upload_id, part_number, source).await,
        Op::GetObjectAttributes { bucket, key } => {
            object_attributes::get_object_attributes(ctx, bucket, key).await
        }
        Op::GetObjectAcl { bucket, key } => bucket_config::get_object_acl(ctx, bucket, key).await,
        Op::PutObjectAcl { bucket, key } => bucket_config::put_object_acl(ctx, bucket, key).await,
        Op::DeleteObjects { bucket } => delete_objects::delete_objects(ctx, bucket).await,
        Op::ListObjectVersions { bucket } => list_objects::list_object_versions(ctx, bucket).await,
        Op::GetBucketAcl { bucket } => bucket_config::get_bucket_acl(ctx, bucket).await,
        Op::PutBucketAcl { bucket } => bucket_config::put_bucket_acl(ctx, bucket).await,
        Op::GetBucketEncryption { bucket } => {
            bucket_config::get_bucket_encryption(ctx, bucket).await
        }
        Op::GetBucketPolicyStatus { bucket } => {
            bucket_config::get_bucket_policy_status(ctx, bucket).await
        }
        Op::GetPublicAccessBlock { bucket } => {
            bucket_config::get_public_access_block(ctx, bucket).await
        }
        Op::GetBucketOwnershipControls { bucket } => {
            bucket_config::get_bucket_ownership_controls(ctx, bucket).await
        }
        Op::GetBucketCors { bucket } => bucket_cors::get_bucket_cors(ctx, bucket).await,
        Op::PutBucketCors { bucket } => bucket_cors::put_bucket_cors(ctx, bucket).await,
        Op::DeleteBucketCors { bucket } => bucket_cors::delete_bucket_cors(ctx, bucket).await,
        Op::GetObjectTagging { bucket, key } => {
            object_tagging::get_object_tagging(ctx, bucket, key).await
        }
        Op::PutObjectTagging { bucket, key } => {
            object_tagging::put_object_tagging(ctx, bucket, key).await
        }
        Op::DeleteObjectTagging { bucket, key } => {
            object_tagging::delete_object_tagging(ctx, bucket, key).await
        }
        Op::GetAbsentBucketConfig { bucket, code, .. } => {
            bucket_config::get_absent_config(ctx, bucket, code).await
        }
        Op::DeleteObject { bucket, key } => objects::delete_object(ctx, bucket, key).await,
        Op::CreateMultipartUpload { bucket, key } => {
            multipart_upload::create_multipart_upload(ctx, bucket, key).await
        }
        Op::UploadPart {
            bucket,
            key,
            upload_id,
            part_number,
        } => multipart_upload::upload_part(ctx, bucket, key, upload_id, part_number).await,
        Op::CompleteMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart_upload::complete_multipart_upload(ctx, bucket, key, upload_id).await,
        Op::AbortMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart_upload::abort_multipart_upload(ctx, bucket, key, upload_id).await,
        Op::ListParts {
            bucket,
            key,
            upload_id,
        } => multipart_upload::list_parts(ctx, bucket, key, upload_id).await,
        Op::PostObject { .. } => Err(S3Error::internal(
            "PostObject is handled before authentication",
        )),
        Op::CorsPreflight { .. } => Err(S3Error::internal(
            "CorsPreflight is handled before authentication",
        )),
        Op::Unsupported { name } => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("{name} is not implemented by Coffre."),
        )),
    }
}

/// Content-Length (or the decoded length of an aws-chunked body), 0 when absent.
fn declared_length(headers: &http::HeaderMap) -> u64 {
    ["x-amz-decoded-content-length", "content-length"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode_upper(bytes)
}

/// The S3 error response: XML body (none for HEAD and 304), right status.
pub fn error_response(error: &S3Error, request_id: &str, is_head: bool) -> Response<Body> {
    let no_body = is_head || error.code() == S3ErrorCode::NotModified;
    let mut response = if no_body {
        Response::new(body::empty())
    } else {
        let mut r = Response::new(body::full(error.to_xml(request_id)));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        r
    };
    *response.status_mut() = error.status();
    response
}

/// A request's permits, carried by its response body.
struct Permits {
    _global: Option<GlobalPermit>,
    _tenant: Option<TenantPermit>,
}
