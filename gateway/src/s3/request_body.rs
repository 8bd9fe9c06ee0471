//! The request payload as the handlers see it: plain bytes, whatever framing and signing
//! mode the client used. aws-chunked framing is removed (each signed chunk verified before
//! its bytes are released), `x-amz-content-sha256` is checked at the end, and the declared
//! length is enforced. A client slower than the minimum rate gets RequestTimeout.

use bytes::{Bytes, BytesMut};
use coffre_crypto::chunked_body::ChunkedDecoder;
use coffre_crypto::sigv4::{ChunkSigner, PayloadMode};
use http::HeaderMap;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::error::{S3Error, S3ErrorCode};
use super::unread_body::UnreadBody;
use crate::min_rate::{MinRate, RateWindow};

pub struct RequestBody {
    /// Drained in the background if the request is answered before its end.
    incoming: UnreadBody,
    decoder: Option<ChunkedDecoder>,
    framed: BytesMut,
    signed_sha256: Option<(Sha256, [u8; 32])>,
    received: u64,
    expected: Option<u64>,
    limit: u64,
    /// Only the time spent waiting on the client counts, not the server's own work.
    pace: RateWindow,
    done: bool,
}

impl RequestBody {
    /// `limit`: the most payload bytes this operation accepts (EntityTooLarge beyond);
    /// `min_rate`: the slowest the client may send it.
    pub fn new(
        incoming: UnreadBody,
        headers: &HeaderMap,
        payload: &PayloadMode,
        chunk_signer: Option<ChunkSigner>,
        limit: u64,
        min_rate: MinRate,
    ) -> Result<Self, S3Error> {
        let header_u64 = |name: &str| -> Result<Option<u64>, S3Error> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .map(Some)
                    .ok_or_else(|| {
                        S3Error::with_message(
                            S3ErrorCode::InvalidArgument,
                            format!("{name} is not a number"),
                        )
                    }),
            }
        };
        let (decoder, expected) = match payload {
            PayloadMode::StreamingSigned
            | PayloadMode::StreamingSignedTrailer
            | PayloadMode::StreamingUnsignedTrailer => {
                let trailer = !matches!(payload, PayloadMode::StreamingSigned);
                let signed = !matches!(payload, PayloadMode::StreamingUnsignedTrailer);
                let signer = if signed {
                    Some(chunk_signer.ok_or_else(|| {
                        S3Error::internal("streaming signed payload without a chunk signer")
                    })?)
                } else {
                    None
                };
                let decoded = header_u64("x-amz-decoded-content-length")?;
                if decoded.is_none() && signed {
                    return Err(S3Error::new(S3ErrorCode::MissingContentLength));
                }
                (Some(ChunkedDecoder::new(signer, trailer)), decoded)
            }
            PayloadMode::Signed(_) | PayloadMode::Unsigned => (None, header_u64("content-length")?),
        };
        if expected.is_some_and(|n| n > limit) {
            return Err(S3Error::new(S3ErrorCode::EntityTooLarge));
        }
        let signed_sha256 = match payload {
            PayloadMode::Signed(digest) => Some((Sha256::new(), *digest)),
            _ => None,
        };
        Ok(Self {
            incoming,
            decoder,
            framed: BytesMut::new(),
            signed_sha256,
            received: 0,
            expected,
            limit,
            pace: RateWindow::new(min_rate),
            done: false,
        })
    }

    /// The payload length the client declared, when it did.
    pub fn declared_length(&self) -> Option<u64> {
        self.expected
    }

    /// The next piece of payload, `None` at the end (after every end-of-body check passed).
    pub async fn next(&mut self) -> Result<Option<Bytes>, S3Error> {
        loop {
            if self.done {
                return Ok(None);
            }
            if let Some(decoder) = &mut self.decoder {
                if let Some(bytes) = decoder.decode(&mut self.framed)? {
                    if !bytes.is_empty() {
                        return self.accept(bytes).map(Some);
                    }
                    continue;
                }
            }
            match self.read_frame().await? {
                Some(bytes) => match self.decoder {
                    Some(_) => self.framed.extend_from_slice(&bytes),
                    None => return self.accept(bytes).map(Some),
                },
                None => {
                    self.finish()?;
                    return Ok(None);
                }
            }
        }
    }

    /// Trailing headers sent after an aws-chunked body (lowercase names).
    pub fn trailers(&self) -> &[(String, String)] {
        match &self.decoder {
            Some(decoder) => decoder.trailers(),
            None => &[],
        }
    }

    /// The whole (small) payload: for XML documents. `max` bounds memory.
    pub async fn collect(&mut self, max: usize) -> Result<Bytes, S3Error> {
        let mut out = BytesMut::new();
        while let Some(bytes) = self.next().await? {
            if out.len() + bytes.len() > max {
                return Err(S3Error::with_message(
                    S3ErrorCode::MalformedXML,
                    "The request body is too large for this operation.",
                ));
            }
            out.extend_from_slice(&bytes);
        }
        Ok(out.freeze())
    }

    fn accept(&mut self, bytes: Bytes) -> Result<Bytes, S3Error> {
        self.received += bytes.len() as u64;
        if self.received > self.limit {
            return Err(S3Error::new(S3ErrorCode::EntityTooLarge));
        }
        if self.expected.is_some_and(|n| self.received > n) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The request body is longer than its declared length.",
            ));
        }
        if let Some((hasher, _)) = &mut self.signed_sha256 {
            hasher.update(&bytes);
        }
        Ok(bytes)
    }

    async fn read_frame(&mut self) -> Result<Option<Bytes>, S3Error> {
        loop {
            let Some(incoming) = self.incoming.get_mut() else {
                return Ok(None);
            };
            let started = tokio::time::Instant::now();
            let frame = tokio::time::timeout(self.pace.remaining(), incoming.frame()).await;
            let moved = match &frame {
                Ok(Some(Ok(frame))) => frame.data_ref().map_or(0, |data| data.len() as u64),
                _ => 0,
            };
            self.pace
                .record(started.elapsed(), moved)
                .map_err(|_| S3Error::new(S3ErrorCode::RequestTimeout))?;
            match frame {
                // The window's time ran out but it moved enough: a new window.
                Err(_) => continue,
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(S3Error::new(S3ErrorCode::IncompleteBody).source(e));
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Result<(), S3Error> {
        self.done = true;
        if let Some(decoder) = &self.decoder {
            decoder.finish()?;
        }
        if self.expected.is_some_and(|n| self.received != n) {
            return Err(S3Error::new(S3ErrorCode::IncompleteBody));
        }
        if let Some((hasher, declared)) = self.signed_sha256.take() {
            let actual: [u8; 32] = hasher.finalize().into();
            if actual != declared {
                return Err(S3Error::with_message(
                    S3ErrorCode::XAmzContentSHA256Mismatch,
                    format!(
                        "The provided 'x-amz-content-sha256' header does not match what was \
                         computed. Client: {}, server: {}",
                        hex::encode(declared),
                        hex::encode(actual)
                    ),
                ));
            }
        }
        Ok(())
    }
}
