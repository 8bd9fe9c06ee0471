//! Moves a request payload to storage. The body is read and hashed on the async side;
//! each batch of about 1 MiB is encrypted and written by one short call on the blocking
//! pool, while the next batch is being received, so hashing and disk I/O overlap. No
//! thread is held while the client sends: a slow client costs a parked task, never a
//! blocking thread. Memory per upload stays bounded (two batches) whatever the object size.

use bytes::{Bytes, BytesMut};
use coffre_storage::{DataWriter, WrittenData};
use tokio::task::JoinHandle;

use super::error::S3Error;
use super::payload_digest::{Digests, PayloadDigest};
use super::request_body::RequestBody;

const BATCH_BYTES: usize = 1 << 20;

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
    digest: PayloadDigest,
) -> Result<(WrittenData, Digests), S3Error> {
    receive_payload_and(body, writer, digest, |data, _| Ok(data)).await
}

/// [`receive_payload`], then `commit` (given the written data and the verified digests)
/// in the same hand-off to the blocking pool as the last batch's write: a small object's
/// whole payload is written, finished and committed in one trip.
pub async fn receive_payload_and<T: Send + 'static>(
    body: &mut impl PayloadSource,
    writer: DataWriter,
    mut digest: PayloadDigest,
    commit: impl FnOnce(WrittenData, &Digests) -> Result<T, coffre_storage::Error> + Send + 'static,
) -> Result<(T, Digests), S3Error> {
    let mut writes = Writes::Idle(Writer(Some(Box::new(writer))));
    let received = receive(body, &mut digest, &mut writes).await;
    let verified = received.and_then(|last| Ok((last, digest.finish(body.trailers())?)));
    // A storage failure explains everything after it (a short body, a digest mismatch).
    let writer = writes.wait().await?;
    let (last, digests) = verified?;
    let mut writer = writer.ok_or_else(|| S3Error::internal("data writer lost"))?;
    let committed = tokio::task::spawn_blocking(move || {
        let mut data_writer = writer.0.take()?;
        let done = (|| {
            if !last.is_empty() {
                data_writer.write(&last)?;
            }
            let data = data_writer.finish()?;
            commit(data, &digests).map(|committed| (committed, digests))
        })();
        Some(done)
    })
    .await
    .map_err(S3Error::internal)?
    .ok_or_else(|| S3Error::internal("data writer lost"))??;
    Ok(committed)
}

/// Reads the whole body into batches, each handed to the writer once the previous one is
/// written; returns the last batch, not yet written.
async fn receive(
    body: &mut impl PayloadSource,
    digest: &mut PayloadDigest,
    writes: &mut Writes,
) -> Result<Bytes, S3Error> {
    let mut batch = BytesMut::new();
    while let Some(bytes) = body.next().await? {
        digest.update(&bytes);
        batch.extend_from_slice(&bytes);
        if batch.len() >= BATCH_BYTES {
            writes.start(batch.split().freeze()).await?;
        }
    }
    Ok(batch.freeze())
}

/// A data writer that, when dropped unfinished (a failed or abandoned upload), is dropped
/// on the blocking pool: removing its temporary file and intent record is disk and
/// metadata I/O, which has no place on an async worker.
struct Writer(Option<Box<DataWriter>>);

impl Drop for Writer {
    fn drop(&mut self) {
        let Some(writer) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || drop(writer));
            }
            Err(_) => drop(writer),
        }
    }
}

/// The data writer, idle or busy with one batch on the blocking pool.
enum Writes {
    Idle(Writer),
    Busy(JoinHandle<(Writer, Result<(), coffre_storage::Error>)>),
    /// A write failed: its error has been returned.
    Broken,
}

impl Writes {
    /// Waits for the batch being written, if any, and hands the writer back; `None` when
    /// an earlier write failed (and its error was returned then).
    async fn wait(&mut self) -> Result<Option<Writer>, S3Error> {
        match std::mem::replace(self, Writes::Broken) {
            Writes::Idle(writer) => Ok(Some(writer)),
            Writes::Busy(task) => {
                let (writer, written) = task.await.map_err(S3Error::internal)?;
                written?;
                Ok(Some(writer))
            }
            Writes::Broken => Ok(None),
        }
    }

    /// Starts writing `batch` once the previous batch is written.
    async fn start(&mut self, batch: Bytes) -> Result<(), S3Error> {
        let Some(mut writer) = self.wait().await? else {
            return Err(S3Error::internal(
                "data writer stopped after a failed write",
            ));
        };
        *self = Writes::Busy(tokio::task::spawn_blocking(move || {
            let written = match writer.0.as_mut() {
                Some(data_writer) => data_writer.write(&batch),
                None => Ok(()),
            };
            (writer, written)
        }));
        Ok(())
    }
}
