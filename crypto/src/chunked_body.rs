//! Decoder for `Content-Encoding: aws-chunked` bodies, with or without chunk signatures and
//! trailers.
//!
//! Wire format: `hex-size[;chunk-signature=hex64]\r\n<data>\r\n` per chunk, then a final
//! `0[;chunk-signature=...]\r\n`, then trailer lines `name:value\r\n` (signed bodies end them
//! with `x-amz-trailer-signature:hex64\r\n`) and an empty line.
//!
//! With a [`ChunkSigner`], a chunk's bytes are released only once its signature verified, so
//! one chunk (at most [`MAX_SIGNED_CHUNK_SIZE`]) is buffered. Without one, bytes are released
//! as they arrive.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use crate::sigv4::ChunkSigner;

/// Largest chunk accepted when chunks are signed (and therefore buffered).
pub const MAX_SIGNED_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Longest chunk header or trailer line, CRLF excluded.
pub const MAX_LINE_LEN: usize = 4096;
/// Most trailers a body may carry (the signature excluded).
pub const MAX_TRAILERS: usize = 16;

const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";
const CHUNK_SIGNATURE: &str = "chunk-signature=";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkErrorCode {
    /// A chunk or trailer signature is missing or wrong.
    SignatureDoesNotMatch,
    /// The body ended before the final chunk and trailers.
    IncompleteBody,
    /// Malformed framing: bad chunk header, missing CRLF, oversized line or chunk, data after
    /// the end.
    InvalidRequest,
}

impl ChunkErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::IncompleteBody => "IncompleteBody",
            Self::InvalidRequest => "InvalidRequest",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ChunkError {
    code: ChunkErrorCode,
    message: String,
}

impl ChunkError {
    fn new(code: ChunkErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn framing(message: impl Into<String>) -> Self {
        Self::new(ChunkErrorCode::InvalidRequest, message)
    }

    fn signature(message: impl Into<String>) -> Self {
        Self::new(ChunkErrorCode::SignatureDoesNotMatch, message)
    }

    pub fn code(&self) -> ChunkErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

enum State {
    ChunkHeader,
    ChunkData {
        remaining: u64,
    },
    /// The CRLF after a chunk's data.
    ChunkDataEnd,
    /// After the final chunk: trailer lines until an empty line.
    Trailers,
    Finished,
    Failed,
}

pub struct ChunkedDecoder {
    signer: Option<ChunkSigner>,
    expect_trailer: bool,
    state: State,
    /// The signature the next chunk (or the trailer) chains from.
    previous_signature: String,
    /// Signature declared by the current chunk's header.
    chunk_signature: String,
    /// Signed mode: the current chunk's data, held until its signature verified.
    buffer: BytesMut,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<String>,
    decoded_len: u64,
}

impl fmt::Debug for ChunkedDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkedDecoder")
            .field("signed", &self.signer.is_some())
            .field("expect_trailer", &self.expect_trailer)
            .field("decoded_len", &self.decoded_len)
            .finish_non_exhaustive()
    }
}

impl ChunkedDecoder {
    /// `signer`: from `Verified::chunk_signer`, for STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER);
    /// `None` for STREAMING-UNSIGNED-PAYLOAD-TRAILER. `expect_trailer`: the payload mode
    /// announces trailers.
    pub fn new(signer: Option<ChunkSigner>, expect_trailer: bool) -> Self {
        let previous_signature = signer
            .as_ref()
            .map(|s| s.seed_signature().to_owned())
            .unwrap_or_default();
        Self {
            signer,
            expect_trailer,
            state: State::ChunkHeader,
            previous_signature,
            chunk_signature: String::new(),
            buffer: BytesMut::new(),
            trailers: Vec::new(),
            trailer_signature: None,
            decoded_len: 0,
        }
    }

    /// Consumes as much of `input` as possible and returns decoded payload bytes once some are
    /// ready. Call repeatedly until it returns `Ok(None)`, then feed more input. After an error
    /// the decoder stays failed.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<Bytes>, ChunkError> {
        let result = self.step(input);
        if result.is_err() {
            self.state = State::Failed;
            self.buffer = BytesMut::new();
        }
        result
    }

    /// Whether the final chunk and the trailers (if any) have been read and verified.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// The trailers, names lowercased, values trimmed; `x-amz-trailer-signature` excluded.
    /// Complete once finished.
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    /// Payload bytes released so far (compare with `x-amz-decoded-content-length`).
    pub fn decoded_len(&self) -> u64 {
        self.decoded_len
    }

    /// Call at the end of the input: an error unless the body was complete.
    pub fn finish(&self) -> Result<(), ChunkError> {
        match self.state {
            State::Finished => Ok(()),
            State::Failed => Err(ChunkError::framing("the aws-chunked body is invalid")),
            _ => Err(ChunkError::new(
                ChunkErrorCode::IncompleteBody,
                "The request body terminated unexpectedly",
            )),
        }
    }

    fn step(&mut self, input: &mut BytesMut) -> Result<Option<Bytes>, ChunkError> {
        loop {
            match self.state {
                State::Failed => {
                    return Err(ChunkError::framing("the aws-chunked body is invalid"))
                }
                State::Finished => {
                    return if input.is_empty() {
                        Ok(None)
                    } else {
                        Err(ChunkError::framing(
                            "unexpected data after the end of the aws-chunked body",
                        ))
                    };
                }
                State::ChunkHeader => {
                    let Some(line) = take_line(input)? else {
                        return Ok(None);
                    };
                    self.start_chunk(&line)?;
                }
                State::ChunkData { remaining } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let data = input.split_to(n);
                    let remaining = remaining.saturating_sub(n as u64);
                    self.state = if remaining == 0 {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData { remaining }
                    };
                    if self.signer.is_none() {
                        self.decoded_len = self.decoded_len.saturating_add(n as u64);
                        return Ok(Some(data.freeze()));
                    }
                    if self.buffer.is_empty() {
                        self.buffer = data;
                    } else {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                State::ChunkDataEnd => {
                    if input.len() < 2 {
                        return Ok(None);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(ChunkError::framing("chunk data is not followed by CRLF"));
                    }
                    input.advance(2);
                    self.state = State::ChunkHeader;
                    if self.signer.is_some() {
                        let data = std::mem::take(&mut self.buffer);
                        self.verify_chunk(&data)?;
                        self.decoded_len = self.decoded_len.saturating_add(data.len() as u64);
                        return Ok(Some(data.freeze()));
                    }
                }
                State::Trailers => {
                    let Some(line) = take_line(input)? else {
                        return Ok(None);
                    };
                    if line.is_empty() {
                        self.verify_trailers()?;
                        self.state = State::Finished;
                    } else {
                        self.add_trailer(&line)?;
                    }
                }
            }
        }
    }

    fn start_chunk(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let line = std::str::from_utf8(line)
            .map_err(|_| ChunkError::framing("chunk header is not ASCII"))?;
        let (size, extension) = match line.split_once(';') {
            Some((size, extension)) => (size, Some(extension)),
            None => (line, None),
        };
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ChunkError::framing(
                "chunk size is not a hexadecimal number",
            ));
        }
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| ChunkError::framing("chunk size is not a hexadecimal number"))?;

        if self.signer.is_some() {
            if size > MAX_SIGNED_CHUNK_SIZE {
                return Err(ChunkError::framing(format!(
                    "chunk size {size} exceeds the maximum of {MAX_SIGNED_CHUNK_SIZE}"
                )));
            }
            let signature = extension
                .and_then(|e| e.strip_prefix(CHUNK_SIGNATURE))
                .filter(|s| is_lowercase_hex64(s))
                .ok_or_else(|| ChunkError::signature("chunk signature is missing or malformed"))?;
            self.chunk_signature.clear();
            self.chunk_signature.push_str(signature);
        }

        if size == 0 {
            if self.signer.is_some() {
                self.verify_chunk(&[])?;
            }
            self.state = State::Trailers;
        } else {
            self.state = State::ChunkData { remaining: size };
        }
        Ok(())
    }

    fn verify_chunk(&mut self, data: &[u8]) -> Result<(), ChunkError> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let computed = signer.chunk_signature(&self.previous_signature, data);
        if !constant_time_eq(&computed, &self.chunk_signature) {
            return Err(ChunkError::signature(
                "The chunk signature we calculated does not match the signature you provided.",
            ));
        }
        std::mem::swap(&mut self.previous_signature, &mut self.chunk_signature);
        Ok(())
    }

    fn add_trailer(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        if !self.expect_trailer {
            return Err(ChunkError::framing(
                "the aws-chunked body has trailers but none were announced",
            ));
        }
        let line =
            std::str::from_utf8(line).map_err(|_| ChunkError::framing("trailer is not UTF-8"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ChunkError::framing("trailer line has no ':'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ChunkError::framing("trailer name is invalid"));
        }
        if name == TRAILER_SIGNATURE {
            if self.signer.is_none() {
                // Unsigned trailers: nothing to verify it with.
                return Ok(());
            }
            if self.trailer_signature.is_some() || !is_lowercase_hex64(value) {
                return Err(ChunkError::signature("trailer signature is malformed"));
            }
            self.trailer_signature = Some(value.to_owned());
            return Ok(());
        }
        if self.trailers.len() >= MAX_TRAILERS {
            return Err(ChunkError::framing("too many trailers"));
        }
        if self.trailers.iter().any(|(n, _)| *n == name) {
            return Err(ChunkError::framing(format!("trailer {name} appears twice")));
        }
        self.trailers.push((name, value.to_owned()));
        Ok(())
    }

    fn verify_trailers(&mut self) -> Result<(), ChunkError> {
        let (Some(signer), true) = (&self.signer, self.expect_trailer) else {
            return Ok(());
        };
        let Some(provided) = &self.trailer_signature else {
            return Err(ChunkError::signature("trailer signature is missing"));
        };
        let mut sorted: Vec<&(String, String)> = self.trailers.iter().collect();
        sorted.sort();
        let mut canonical = Vec::new();
        for (name, value) in sorted {
            canonical.extend_from_slice(name.as_bytes());
            canonical.push(b':');
            canonical.extend_from_slice(value.as_bytes());
            canonical.push(b'\n');
        }
        let computed = signer.trailer_signature(&self.previous_signature, &canonical);
        if constant_time_eq(&computed, provided) {
            Ok(())
        } else {
            Err(ChunkError::signature(
                "The trailer signature we calculated does not match the signature you provided.",
            ))
        }
    }
}

/// Removes and returns one CRLF-terminated line (without the CRLF), `None` if incomplete.
fn take_line(input: &mut BytesMut) -> Result<Option<BytesMut>, ChunkError> {
    let window = &input[..input.len().min(MAX_LINE_LEN + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            let line = input.split_to(end);
            input.advance(2);
            Ok(Some(line))
        }
        None if input.len() >= MAX_LINE_LEN + 2 => {
            Err(ChunkError::framing("aws-chunked header line is too long"))
        }
        None => Ok(None),
    }
}

fn is_lowercase_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests;
