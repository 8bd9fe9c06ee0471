//! The S3 operations the scenarios use, over one pooled keep-alive HTTP/1.1 client.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::endpoint::Endpoint;
use crate::list_response::ListPage;
use crate::payload::PayloadBody;
use crate::signer::RequestSigner;

/// Error bodies are read up to this size to report the S3 error code.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub struct S3Client {
    http: Client<HttpConnector, PayloadBody>,
    endpoint: Endpoint,
    signer: RequestSigner,
    region: String,
    bucket: String,
}

/// What a GET returned: its length, and its CRC32 when it was asked for.
pub struct GetOutcome {
    pub length: u64,
    pub crc32: Option<u32>,
}

pub struct ListRequest<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub max_keys: u32,
    pub continuation_token: Option<&'a str>,
}

impl S3Client {
    pub fn new(
        endpoint: Endpoint,
        signer: RequestSigner,
        region: &str,
        bucket: &str,
        max_connections: usize,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_connections.max(1))
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            http,
            endpoint,
            signer,
            region: region.to_owned(),
            bucket: bucket.to_owned(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless HeadBucket finds it already there.
    pub async fn ensure_bucket(&self) -> Result<()> {
        let uri = self.endpoint.bucket_uri(&self.bucket);
        let head = self
            .send(Method::HEAD, &uri, PayloadBody::default())
            .await?;
        let exists = head.status().is_success();
        drain(head).await?;
        if exists {
            return Ok(());
        }
        let body = if self.region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            ))
        };
        let response = self.send(Method::PUT, &uri, body.into()).await?;
        let status = response.status();
        if status.is_success() {
            drain(response).await?;
            return Ok(());
        }
        let failure = S3Failure::read(response).await;
        // Another loadgen run may have created it between the HEAD and the PUT.
        if failure.code == "BucketAlreadyOwnedByYou" {
            return Ok(());
        }
        Err(failure.into_error("PUT", &uri))
    }

    pub async fn put_object(&self, key: &str, body: PayloadBody) -> Result<()> {
        let uri = self.endpoint.object_uri(&self.bucket, key);
        let response = self.send(Method::PUT, &uri, body).await?;
        expect_success(response, "PUT", &uri).await?;
        Ok(())
    }

    /// Reads the whole body, frame by frame, without keeping it.
    pub async fn get_object(&self, key: &str, checksum: bool) -> Result<GetOutcome> {
        let uri = self.endpoint.object_uri(&self.bucket, key);
        let response = self.send(Method::GET, &uri, PayloadBody::default()).await?;
        if !response.status().is_success() {
            return Err(S3Failure::read(response).await.into_error("GET", &uri));
        }
        let mut body = response.into_body();
        let mut length = 0u64;
        let mut hasher = checksum.then(crc32fast::Hasher::new);
        while let Some(frame) = body.frame().await {
            let frame = frame.with_context(|| format!("GET {uri}: reading the body"))?;
            if let Ok(data) = frame.into_data() {
                length += data.len() as u64;
                if let Some(hasher) = hasher.as_mut() {
                    hasher.update(&data);
                }
            }
        }
        Ok(GetOutcome {
            length,
            crc32: hasher.map(crc32fast::Hasher::finalize),
        })
    }

    pub async fn delete_object(&self, key: &str) -> Result<()> {
        let uri = self.endpoint.object_uri(&self.bucket, key);
        let response = self
            .send(Method::DELETE, &uri, PayloadBody::default())
            .await?;
        expect_success(response, "DELETE", &uri).await?;
        Ok(())
    }

    pub async fn list_objects_v2(&self, request: &ListRequest<'_>) -> Result<ListPage> {
        let max_keys = request.max_keys.to_string();
        let mut query = vec![
            ("list-type", "2"),
            ("prefix", request.prefix),
            ("max-keys", max_keys.as_str()),
        ];
        if let Some(delimiter) = request.delimiter {
            query.push(("delimiter", delimiter));
        }
        if let Some(token) = request.continuation_token {
            query.push(("continuation-token", token));
        }
        let uri = self.endpoint.bucket_query_uri(&self.bucket, &query);
        let response = self.send(Method::GET, &uri, PayloadBody::default()).await?;
        let body = expect_success(response, "GET", &uri).await?;
        let xml = std::str::from_utf8(&body).context("ListObjectsV2 response is not UTF-8")?;
        let page = ListPage::parse(xml);
        if page.is_truncated && page.next_continuation_token.is_none() {
            bail!("GET {uri}: truncated listing without NextContinuationToken");
        }
        Ok(page)
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: PayloadBody,
    ) -> Result<Response<Incoming>> {
        let mut builder = Request::builder().method(method.clone()).uri(uri);
        if method == Method::PUT || !body.is_empty() {
            // hyper leaves out `Content-Length: 0`, which S3 requires on every PUT.
            builder = builder.header(http::header::CONTENT_LENGTH, body.len());
        }
        let mut request = builder
            .body(body)
            .with_context(|| format!("building {method} {uri}"))?;
        self.signer.sign(&mut request)?;
        self.http
            .request(request)
            .await
            .with_context(|| format!("{method} {uri}: request failed"))
    }
}

async fn expect_success(response: Response<Incoming>, method: &str, uri: &str) -> Result<Bytes> {
    if !response.status().is_success() {
        return Err(S3Failure::read(response).await.into_error(method, uri));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .with_context(|| format!("{method} {uri}: reading the body"))?;
    Ok(body.to_bytes())
}

async fn drain(response: Response<Incoming>) -> Result<()> {
    response.into_body().collect().await?;
    Ok(())
}

/// An S3 error response: status and the `<Code>`/`<Message>` of its XML body.
struct S3Failure {
    status: StatusCode,
    code: String,
    message: String,
}

impl S3Failure {
    async fn read(response: Response<Incoming>) -> Self {
        let status = response.status();
        let limited = http_body_util::Limited::new(response.into_body(), MAX_ERROR_BODY);
        let body = match limited.collect().await {
            Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
            Err(err) => format!("(unreadable body: {err})"),
        };
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let start = body.find(&open)? + open.len();
            let len = body[start..].find(&format!("</{name}>"))?;
            Some(body[start..start + len].to_owned())
        };
        Self {
            status,
            code: tag("Code").unwrap_or_default(),
            message: tag("Message").unwrap_or_else(|| body.chars().take(200).collect()),
        }
    }

    fn into_error(self, method: &str, uri: &str) -> anyhow::Error {
        anyhow!(
            "{method} {uri}: {} {} {}",
            self.status,
            self.code,
            self.message
        )
    }
}
