//! Moves a request payload to storage: the async side reads and hashes the body while a
//! blocking task writes the previous batch, so hashing and disk I/O overlap. Batches are
//! about 1 MiB, and at most a few are in flight: memory per upload stays bounded whatever
//! the object size.

use bytes::{Bytes, BytesMut};
use coffre_storage::{DataWriter, WrittenData};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error::S3Error;
use super::payload_digest::{Digests, PayloadDigest};
use super::request_body::RequestBody;

const BATCH_BYTES: usize = 1 << 20;
const BATCHES_IN_FLIGHT: usize = 4;

enum Message {
    Data(Bytes),
    /// The body was complete and verified: make the data durable.
    Finish,
}

/// Where a payload's bytes come from: a request body, or the file part of a POST form.
pub trait PayloadSource: Send {
    /// The next piece, `None` at the end (after the source's own end-of-payload checks).
    fn next(&mut self) -> impl std::future::Future<Output = Result<Option<Bytes>, S3Error>> + Send;

    /// Trailing headers that may carry the declared checksum.
    fn trailers(&self) -> &[(String, String)];
}

impl PayloadSource for RequestBody {
    async fn next(&mut self) -> Result<Option<Bytes>, S3Error> {
        RequestBody::next(self).await
    }

    fn trailers(&self) -> &[(String, String)] {
        RequestBody::trailers(self)
    }
}

/// Streams `body` into `writer`. On any error the writer is dropped unfinished, which
/// removes its temporary file: nothing partial is ever visible.
pub async fn receive_payload(
    body: &mut impl PayloadSource,
    writer: DataWriter,
    mut digest: PayloadDigest,
) -> Result<(WrittenData, Digests), S3Error> {
    let (tx, rx) = mpsc::channel::<Message>(BATCHES_IN_FLIGHT);
    let task = spawn_writer(writer, rx);
    let pumped = pump(body, &mut digest, &tx).await;
    let verified = pumped.and_then(|()| digest.finish(body.trailers()));
    let finished = match &verified {
        Ok(_) => tx.send(Message::Finish).await.is_ok(),
        Err(_) => false,
    };
    drop(tx);
    // A storage failure explains everything after it (a short body, a digest mismatch).
    let written = task.await.map_err(S3Error::internal)??;
    let digests = verified?;
    match written {
        Some(data) if finished => Ok((data, digests)),
        _ => Err(S3Error::internal(
            "data writer stopped before the end of the body",
        )),
    }
}

async fn pump(
    body: &mut impl PayloadSource,
    digest: &mut PayloadDigest,
    tx: &mpsc::Sender<Message>,
) -> Result<(), S3Error> {
    let mut batch = BytesMut::new();
    while let Some(bytes) = body.next().await? {
        digest.update(&bytes);
        batch.extend_from_slice(&bytes);
        if batch.len() >= BATCH_BYTES {
            let full = batch.split().freeze();
            if tx.send(Message::Data(full)).await.is_err() {
                // The writer failed; its error is reported by `receive_payload`.
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Message::Data(batch.freeze())).await;
    }
    Ok(())
}

/// `Ok(None)`: the channel closed without `Finish` (the request failed); the writer is
/// dropped, removing its temporary file.
fn spawn_writer(
    mut writer: DataWriter,
    mut rx: mpsc::Receiver<Message>,
) -> JoinHandle<Result<Option<WrittenData>, coffre_storage::Error>> {
    tokio::task::spawn_blocking(move || {
        while let Some(message) = rx.blocking_recv() {
            match message {
                Message::Data(bytes) => writer.write(&bytes)?,
                Message::Finish => return writer.finish().map(Some),
            }
        }
        Ok(None)
    })
}
