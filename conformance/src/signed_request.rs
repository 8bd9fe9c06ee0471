//! A raw SigV4 request builder for what an SDK will not send: bad signatures, unknown keys,
//! skewed clocks, presigned URLs, lying `x-amz-content-sha256`, hand-framed aws-chunked bodies,
//! virtual-host `Host` headers. Requests go over the transport the server announced (HTTPS
//! trusting the harness's test CA, see [`crate::Transport`]); [`crate::raw_exchange`] sends
//! them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Method, Request};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;

use crate::chunked_body::{flip_hex, AwsChunked, ChunkSigner};
use crate::raw_exchange::{describe, exchange, RawBody, RawResponse};
use crate::server::TestServer;
use crate::REGION;

/// Where the signature goes.
#[derive(Clone, Copy, Debug)]
pub enum Auth {
    /// `Authorization: AWS4-HMAC-SHA256 ...` header.
    Header,
    /// Presigned URL (`X-Amz-Signature` in the query) valid for `expires`.
    Presigned { expires: Duration },
    /// No signature at all.
    Anonymous,
}

/// What the request says about its payload (`x-amz-content-sha256`).
#[derive(Clone, Debug)]
pub enum Payload {
    /// The SHA-256 of the body.
    Signed,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// Any claimed value, e.g. the hash of other bytes.
    Claimed(String),
    /// The body framed as aws-chunked.
    Chunked(AwsChunked),
}

enum RequestBody {
    Bytes(Bytes),
    Channel(mpsc::Receiver<Bytes>),
}

/// A request to the S3 listener, signed (or not) as configured, sent with hyper.
pub struct RawRequest {
    scheme: &'static str,
    addr: SocketAddr,
    method: Method,
    path: String,
    query: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
    body: RequestBody,
    host: Option<String>,
    auth: Auth,
    payload: Payload,
    access_key: String,
    secret_key: String,
    time: Option<SystemTime>,
    corrupt_signature: bool,
}

impl TestServer {
    /// A request signed with the default tenant's key (Authorization header, signed
    /// payload). `path` is the decoded path (`/bucket/key`); it is percent-encoded as S3
    /// canonical URIs are.
    pub fn request(&self, method: Method, path: &str) -> RawRequest {
        RawRequest {
            scheme: if self.is_https() { "https" } else { "http" },
            addr: self.s3_addr,
            method,
            path: encode_path(path),
            query: Vec::new(),
            headers: Vec::new(),
            body: RequestBody::Bytes(Bytes::new()),
            host: None,
            auth: Auth::Header,
            payload: Payload::Signed,
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            time: None,
            corrupt_signature: false,
        }
    }
}

impl RawRequest {
    /// Uses `encoded` verbatim as the request path (already percent-encoded).
    pub fn raw_path(mut self, encoded: &str) -> Self {
        self.path = encoded.to_string();
        self
    }

    /// Adds a query parameter `name=value` (encoded here).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_string(), Some(value.to_string())));
        self
    }

    /// Adds a valueless query parameter such as `uploads` or `location`.
    pub fn query_flag(mut self, name: &str) -> Self {
        self.query.push((name.to_string(), None));
        self
    }

    /// Adds a header (signed).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = RequestBody::Bytes(body.into());
        self
    }

    /// Streams the body from a channel; set `Content-Length` yourself and use
    /// [`Payload::Unsigned`] or [`Payload::Claimed`].
    pub fn body_channel(mut self, receiver: mpsc::Receiver<Bytes>) -> Self {
        self.body = RequestBody::Channel(receiver);
        self
    }

    /// Sends `Host: host` (e.g. `bucket.s3.test:PORT`) and signs it, while connecting to
    /// the server's loopback address.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }

    /// Chooses where the signature goes.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sends no signature.
    pub fn anonymous(self) -> Self {
        self.auth(Auth::Anonymous)
    }

    /// Presigns the URL with `X-Amz-Expires = expires`.
    pub fn presigned(self, expires: Duration) -> Self {
        self.auth(Auth::Presigned { expires })
    }

    /// Chooses the payload mode.
    pub fn payload(mut self, payload: Payload) -> Self {
        self.payload = payload;
        self
    }

    /// Frames the body as aws-chunked.
    pub fn aws_chunked(self, chunked: AwsChunked) -> Self {
        self.payload(Payload::Chunked(chunked))
    }

    /// Signs with another access key id (and the same secret).
    pub fn access_key(mut self, access_key: &str) -> Self {
        self.access_key = access_key.to_string();
        self
    }

    /// Signs with another secret.
    pub fn secret_key(mut self, secret_key: &str) -> Self {
        self.secret_key = secret_key.to_string();
        self
    }

    /// Signs as if the clock read `time`.
    pub fn signing_time(mut self, time: SystemTime) -> Self {
        self.time = Some(time);
        self
    }

    /// Changes one hex digit of the final signature.
    pub fn corrupt_signature(mut self) -> Self {
        self.corrupt_signature = true;
        self
    }

    /// Signs the request and returns it without sending it.
    pub fn build(self) -> Request<RawBody> {
        let time = self.time.unwrap_or_else(SystemTime::now);
        let mut uri = format!("{}://{}{}", self.scheme, self.addr, self.path);
        let query = encode_query(&self.query);
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query);
        }

        let mut headers = self.headers.clone();
        if let Some(host) = &self.host {
            headers.push(("host".to_string(), host.clone()));
        }
        let data = match &self.body {
            RequestBody::Bytes(bytes) => Some(bytes.clone()),
            RequestBody::Channel(_) => None,
        };
        if let Payload::Chunked(chunked) = &self.payload {
            let data = data
                .as_deref()
                .expect("aws-chunked bodies are built from bytes");
            headers.push(("content-encoding".into(), "aws-chunked".into()));
            // A test may lie about the decoded length by setting the header itself.
            if !headers
                .iter()
                .any(|(n, _)| n == "x-amz-decoded-content-length")
            {
                headers.push((
                    "x-amz-decoded-content-length".into(),
                    data.len().to_string(),
                ));
            }
            headers.push((
                "content-length".into(),
                chunked.encoded_len(data).to_string(),
            ));
            if let Some((name, _)) = chunked.trailer_for(data) {
                headers.push(("x-amz-trailer".into(), name));
            }
        }

        let mut request = Request::builder().method(self.method.clone()).uri(&uri);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut request = request.body(()).expect("valid request parts");

        let mut seed_signature = String::new();
        if !matches!(self.auth, Auth::Anonymous) {
            let identity: Identity =
                Credentials::new(&self.access_key, &self.secret_key, None, None, "raw").into();
            let mut settings = SigningSettings::default();
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            match self.auth {
                Auth::Presigned { expires } => {
                    settings.signature_location = SignatureLocation::QueryParams;
                    settings.expires_in = Some(expires);
                }
                _ => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
            }
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(REGION)
                .name("s3")
                .time(time)
                .settings(settings)
                .build()
                .expect("signing params")
                .into();
            let signable_body = match (&self.payload, &data) {
                (_, _) if matches!(self.auth, Auth::Presigned { .. }) => {
                    SignableBody::UnsignedPayload
                }
                (Payload::Signed, Some(bytes)) => SignableBody::Bytes(bytes),
                (Payload::Signed, None) => {
                    panic!("a streamed body cannot be signed; use Payload::Unsigned")
                }
                (Payload::Unsigned, _) => SignableBody::UnsignedPayload,
                (Payload::Claimed(value), _) => SignableBody::Precomputed(value.clone()),
                (Payload::Chunked(chunked), _) => {
                    SignableBody::Precomputed(chunked.mode.content_sha256().to_string())
                }
            };
            let header_pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let signable = SignableRequest::new(
                self.method.as_str(),
                uri.as_str(),
                header_pairs.into_iter(),
                signable_body,
            )
            .expect("signable request");
            let (instructions, signature) = sign(signable, &params)
                .expect("sign the request")
                .into_parts();
            instructions.apply_to_request_http1x(&mut request);
            seed_signature = signature;
            if self.corrupt_signature {
                corrupt(&mut request);
            }
        }

        let body = match (self.body, &self.payload) {
            (RequestBody::Bytes(bytes), Payload::Chunked(chunked)) => {
                let signer = ChunkSigner::new(&self.secret_key, time);
                Full::new(Bytes::from(chunked.encode(
                    &bytes,
                    &seed_signature,
                    &signer,
                )))
                .boxed_unsync()
            }
            (RequestBody::Bytes(bytes), _) => Full::new(bytes).boxed_unsync(),
            (RequestBody::Channel(receiver), _) => ChannelBody { receiver }.boxed_unsync(),
        };
        let (parts, ()) = request.into_parts();
        Request::from_parts(parts, body)
    }

    /// The presigned URL this request would use (only meaningful with [`Auth::Presigned`]).
    pub fn presigned_url(self) -> String {
        self.build().uri().to_string()
    }

    /// Signs and sends the request, and reads the whole response. A server that answers
    /// before it has read the body must still let the client read the answer (Coffre drains
    /// what is left, `gateway/src/s3/unread_body.rs`): a connection cut while sending fails the
    /// test.
    pub async fn send(self) -> RawResponse {
        let built = self.build();
        let description = describe(&built);
        match exchange(built).await {
            Ok(response) => response,
            Err(e) => panic!("{description}: {e:?}"),
        }
    }
}

struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

fn corrupt<B>(request: &mut Request<B>) {
    if let Some(value) = request.headers().get(http::header::AUTHORIZATION) {
        let text = value.to_str().expect("ascii authorization").to_string();
        let corrupted = flip_hex(&text);
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            corrupted.parse().expect("header value"),
        );
        return;
    }
    let uri = request.uri().to_string();
    if let Some(start) = uri.find("X-Amz-Signature=") {
        let start = start + "X-Amz-Signature=".len();
        let end = uri[start..].find('&').map_or(uri.len(), |i| start + i);
        let corrupted = format!(
            "{}{}{}",
            &uri[..start],
            flip_hex(&uri[start..end]),
            &uri[end..]
        );
        *request.uri_mut() = corrupted.parse().expect("uri");
    }
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(time: SystemTime) -> String {
    let time = time::OffsetDateTime::from(time);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate), as conditional headers carry it.
pub fn http_date(secs_since_epoch: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(secs_since_epoch).expect("a timestamp");
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time.format(&format).expect("an HTTP date")
}

/// Percent-encodes every byte except unreserved characters (and `/` when `keep_slash`), the
/// way S3 canonical requests do.
pub fn uri_encode(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn encode_path(path: &str) -> String {
    uri_encode(path, true)
}

fn encode_query(query: &[(String, Option<String>)]) -> String {
    query
        .iter()
        .map(|(name, value)| match value {
            Some(value) => format!("{}={}", uri_encode(name, false), uri_encode(value, false)),
            None => uri_encode(name, false),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_s3() {
        assert_eq!(uri_encode("/b/a b+c%é~", true), "/b/a%20b%2Bc%25%C3%A9~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }

    #[test]
    fn formats_amz_dates() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        assert_eq!(amz_date(time), "20130524T000000Z");
    }

    #[test]
    fn formats_http_dates() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
