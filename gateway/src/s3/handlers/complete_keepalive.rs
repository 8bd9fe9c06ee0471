//! The slow path of CompleteMultipartUpload: answer 200 at once and send whitespace until
//! the result (or an error document) is ready, as S3 does, so clients do not time out.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::s3::body::{Body, ChannelBody};
use crate::s3::error::S3Error;

/// How long a completion may take before the response starts early to keep the client
/// from timing out, and how often whitespace then keeps the connection alive.
pub(super) const COMPLETE_FAST_PATH: Duration = Duration::from_secs(1);
pub(super) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

pub(super) const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

pub(super) fn keepalive_response(
    mut work: tokio::task::JoinHandle<Result<String, S3Error>>,
    request_id: Arc<str>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        // Whitespace is allowed before the root element (not before a declaration, so the
        // document is sent without one).
        let outcome = loop {
            tokio::select! {
                joined = &mut work => break joined,
                _ = tokio::time::sleep(KEEPALIVE_INTERVAL) => {
                    if tx.send(Ok(Bytes::from_static(b" "))).await.is_err() {
                        return;
                    }
                }
            }
        };
        let document = match outcome.map_err(S3Error::internal).and_then(|r| r) {
            Ok(document) => document,
            Err(error) => {
                tracing::warn!(error = %error, "multipart completion failed after the early 200");
                let xml = error.to_xml(&request_id);
                xml.trim_start_matches(XML_DECLARATION).to_owned()
            }
        };
        let _ = tx.send(Ok(Bytes::from(document))).await;
    });
    let mut response = Response::new(ChannelBody::of_unknown_length(rx).boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::error::S3ErrorCode;
    use http::StatusCode;

    async fn body_text(response: Response<Body>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(start_paused = true)]
    async fn slow_completion_streams_whitespace_then_the_result() {
        let work = tokio::spawn(async {
            tokio::time::sleep(KEEPALIVE_INTERVAL * 2 + Duration::from_secs(1)).await;
            Ok("<CompleteMultipartUploadResult/>".to_owned())
        });
        let response = keepalive_response(work, Arc::from("REQ1"));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            body_text(response).await,
            "  <CompleteMultipartUploadResult/>"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_completion_failure_is_an_error_document_after_the_200() {
        let work = tokio::spawn(async {
            tokio::time::sleep(KEEPALIVE_INTERVAL + Duration::from_secs(1)).await;
            Err(S3Error::new(S3ErrorCode::InvalidPart))
        });
        let text = body_text(keepalive_response(work, Arc::from("REQ2"))).await;
        assert!(
            text.starts_with(" <Error><Code>InvalidPart</Code>"),
            "{text}"
        );
        assert!(text.contains("<RequestId>REQ2</RequestId>"), "{text}");
    }
}
