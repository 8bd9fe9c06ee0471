//! The `multipart/form-data` body of a POST Object, read with multer: the text fields before
//! the `file` part (20 KiB at most, as S3 allows), then the file itself as a stream. Fields
//! after the file are ignored, as S3 ignores them.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use coffre_crypto::sigv4::FormFields;
use futures_util::stream::{self, Stream};
use http::HeaderMap;

use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::request_body::RequestBody;

/// S3's limit on the fields before the file: names and values, in bytes.
pub const MAX_PRE_DATA_BYTES: usize = 20 * 1024;
/// How many body bytes may pass before the file part is found: the fields, their part
/// headers and boundaries, and the start of the file read along with them. Bounds what
/// multer buffers while it looks for the end of a part's headers.
const MAX_PRE_FILE_STREAM_BYTES: u64 = 1024 * 1024;
/// How much of what follows the file part is read (and ignored) so that the connection
/// can be reused.
const MAX_TRAILING_BYTES: usize = 64 * 1024;

/// The boundary of a `multipart/form-data` request; anything else is refused the way S3
/// refuses it.
pub fn boundary(headers: &HeaderMap) -> Result<String, S3Error> {
    let not_multipart = || {
        S3Error::new(S3ErrorCode::PreconditionFailed).detail(
            "Condition",
            "Bucket POST must be of the enclosure-type multipart/form-data",
        )
    };
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(not_multipart)?;
    multer::parse_boundary(content_type).map_err(|e| match e {
        multer::Error::NoBoundary => malformed().source(e),
        _ => not_multipart(),
    })
}

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedPOSTRequest)
}

fn pre_data_too_large() -> S3Error {
    S3Error::new(S3ErrorCode::MaxPostPreDataLengthExceeded)
        .detail("MaxPostPreDataLengthBytes", MAX_PRE_DATA_BYTES.to_string())
}

/// A form being read: fields first, then the file.
pub struct PostForm {
    multipart: multer::Multipart<'static>,
    file_reached: Arc<AtomicBool>,
}

/// The file part, positioned at its first byte.
pub struct FilePart {
    field: multer::Field<'static>,
    /// The `filename` parameter, when the part has one.
    pub filename: Option<String>,
}

impl PostForm {
    pub fn new(body: RequestBody, boundary: String) -> Self {
        let file_reached = Arc::new(AtomicBool::new(false));
        let stream = FormStream {
            inner: Box::pin(body_stream(body)),
            passed: 0,
            file_reached: file_reached.clone(),
            yielded: false,
            done: false,
        };
        Self {
            multipart: multer::Multipart::new(stream, boundary),
            file_reached,
        }
    }

    /// Reads the text fields up to the `file` part.
    pub async fn read_fields(&mut self) -> Result<(FormFields, FilePart), S3Error> {
        let mut fields = FormFields::new();
        let mut pre_data = 0usize;
        loop {
            let Some(mut field) = self.multipart.next_field().await.map_err(form_error)? else {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "POST requires exactly one file upload per request.",
                )
                .detail("ArgumentName", "file")
                .detail("ArgumentValue", "0"));
            };
            let name = field
                .name()
                .map(str::to_owned)
                .ok_or_else(|| malformed().message("A form part has no field name."))?;
            if name.eq_ignore_ascii_case("file") {
                self.file_reached.store(true, Ordering::Relaxed);
                let filename = field.file_name().map(str::to_owned);
                return Ok((fields, FilePart { field, filename }));
            }
            pre_data += name.len();
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(form_error)? {
                if pre_data + value.len() + chunk.len() > MAX_PRE_DATA_BYTES {
                    return Err(pre_data_too_large());
                }
                value.extend_from_slice(&chunk);
            }
            pre_data += value.len();
            if pre_data > MAX_PRE_DATA_BYTES {
                return Err(pre_data_too_large());
            }
            let value = String::from_utf8(value).map_err(|_| {
                malformed().message(format!("The form field {name} is not valid UTF-8."))
            })?;
            fields.push(&name, &value);
        }
    }

    /// Reads and drops what follows the file (a submit button, the closing boundary), up
    /// to a bound: past it, or on any error, the connection is simply not reused.
    pub async fn skip_rest(mut self) {
        let mut skipped = 0usize;
        while let Ok(Some(mut field)) = self.multipart.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                skipped += chunk.len();
                if skipped > MAX_TRAILING_BYTES {
                    return;
                }
            }
        }
    }
}

impl FilePart {
    /// The next piece of the file; `None` once its closing boundary has been read.
    pub async fn next(&mut self) -> Result<Option<Bytes>, S3Error> {
        self.field.chunk().await.map_err(form_error)
    }

    /// Reads and drops up to `limit` more bytes of the file, stopping at its end or at the
    /// first error.
    pub async fn discard(&mut self, limit: u64) {
        let mut discarded = 0u64;
        while let Ok(Some(chunk)) = self.field.chunk().await {
            discarded += chunk.len() as u64;
            if discarded > limit {
                return;
            }
        }
    }
}

/// A request-body error carried through multer, which only knows boxed errors.
#[derive(Debug)]
struct BodyError(S3Error);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BodyError {}

/// A body error (timeout, short body, too large) keeps its code; anything multer itself
/// finds wrong is a malformed form.
fn form_error(e: multer::Error) -> S3Error {
    match e {
        multer::Error::StreamReadFailed(source) => match source.downcast::<BodyError>() {
            Ok(body) => body.0,
            Err(other) => malformed().source(other),
        },
        other => malformed().source(other),
    }
}

fn body_stream(body: RequestBody) -> impl Stream<Item = Result<Bytes, BodyError>> + Send {
    stream::unfold(Some(body), |state| async move {
        let mut body = state?;
        match body.next().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(body))),
            Ok(None) => None,
            Err(e) => Some((Err(BodyError(e)), None)),
        }
    })
}

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// The body as multer reads it. multer pulls its input until the input is pending, so this
/// hands over one piece per poll (waking itself at once): what multer buffers stays about
/// one read, however fast the client sends. Before the file part, at most
/// `MAX_PRE_FILE_STREAM_BYTES` pass.
struct FormStream {
    inner: BodyStream,
    passed: u64,
    file_reached: Arc<AtomicBool>,
    yielded: bool,
    done: bool,
}

impl Stream for FormStream {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.yielded {
            this.yielded = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.passed += bytes.len() as u64;
                if this.passed > MAX_PRE_FILE_STREAM_BYTES
                    && !this.file_reached.load(Ordering::Relaxed)
                {
                    this.done = true;
                    return Poll::Ready(Some(Err(BodyError(pre_data_too_large()))));
                }
                this.yielded = true;
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
