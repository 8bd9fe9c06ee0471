//! aws-sdk-s3 shortcuts for what a test sets up and reads back rather than checks: buckets
//! with a client, whole-object puts and gets, every key of a bucket, a multipart object in one
//! call. Each panics with the operation and key when the server refuses.

use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use tokio::task::JoinSet;

use crate::server::TestServer;

/// How many PUTs [`put_keys`] sends at once.
const PARALLEL_PUTS: usize = 8;

impl TestServer {
    /// Starts a server with the default arguments, creates `buckets` and returns a client of
    /// the default tenant with it.
    pub async fn start_with_buckets(buckets: &[&str]) -> (TestServer, Client) {
        let server = TestServer::start();
        let s3 = server.s3_client();
        create_buckets(&s3, buckets).await;
        (server, s3)
    }
}

/// Creates each of `buckets`.
pub async fn create_buckets(s3: &Client, buckets: &[&str]) {
    for bucket in buckets {
        s3.create_bucket()
            .bucket(*bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
    }
}

/// PutObject of `data`; returns the ETag.
pub async fn put_bytes(s3: &Client, bucket: &str, key: &str, data: &[u8]) -> String {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key:?}: {e:?}"))
        .e_tag()
        .expect("PutObject returns an ETag")
        .to_string()
}

/// Puts every key of `keys` with its own name as its body, several at a time.
pub async fn put_keys(s3: &Client, bucket: &str, keys: &[String]) {
    let mut tasks = JoinSet::new();
    for batch in keys.chunks(keys.len().div_ceil(PARALLEL_PUTS).max(1)) {
        let (s3, bucket, batch) = (s3.clone(), bucket.to_string(), batch.to_vec());
        tasks.spawn(async move {
            for key in batch {
                put_bytes(&s3, &bucket, &key, key.as_bytes()).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a PUT task");
    }
}

/// GetObject: the response, its body not yet read.
pub async fn get_object(s3: &Client, bucket: &str, key: &str) -> GetObjectOutput {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key:?}: {e:?}"))
}

/// GetObject: the whole body.
pub async fn get_bytes(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    read_body(get_object(s3, bucket, key).await.body).await
}

/// Reads a whole response body (the SDK checks its checksum on the way when it asked for one).
pub async fn read_body(body: ByteStream) -> Vec<u8> {
    body.collect()
        .await
        .expect("read the response body")
        .into_bytes()
        .to_vec()
}

/// Every key of `bucket`, in listing order, across ListObjectsV2 pages.
pub async fn list_keys(s3: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket}: {e:?}"));
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_string),
        );
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
            _ => return keys,
        }
    }
}

/// CreateMultipartUpload; returns the upload id.
pub async fn create_upload(s3: &Client, bucket: &str, key: &str) -> String {
    create_upload_with(s3, bucket, key, None).await
}

async fn create_upload_with(
    s3: &Client,
    bucket: &str,
    key: &str,
    checksum: Option<ChecksumAlgorithm>,
) -> String {
    s3.create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_checksum_algorithm(checksum)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload {bucket}/{key:?}: {e:?}"))
        .upload_id()
        .expect("an UploadId")
        .to_string()
}

/// UploadPart of `data` as part `number`; returns the part's ETag.
pub async fn upload_part(
    s3: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    number: i32,
    data: &[u8],
) -> String {
    s3.upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart {number} of {bucket}/{key:?}: {e:?}"))
        .e_tag()
        .expect("UploadPart returns an ETag")
        .to_string()
}

/// The CompleteMultipartUpload document naming `(part number, ETag)` pairs, in that order.
pub fn completed_parts(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(number, etag)| {
                    CompletedPart::builder()
                        .part_number(*number)
                        .e_tag(*etag)
                        .build()
                })
                .collect(),
        ))
        .build()
}

/// Uploads `parts` (numbered from 1) as a multipart object and completes it. With `checksum`,
/// the upload is created with that algorithm, and each part's checksum is sent with it and
/// named again in the completion.
pub async fn multipart_object(
    s3: &Client,
    bucket: &str,
    key: &str,
    parts: &[Vec<u8>],
    checksum: Option<ChecksumAlgorithm>,
) -> CompleteMultipartUploadOutput {
    let upload_id = create_upload_with(s3, bucket, key, checksum.clone()).await;
    let mut completed = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let number = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .part_number(number)
            .set_checksum_algorithm(checksum.clone())
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {number} of {bucket}/{key:?}: {e:?}"));
        let mut part = CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_string));
        if checksum.is_some() {
            part = part
                .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_string))
                .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_string))
                .set_checksum_sha1(out.checksum_sha1().map(str::to_string))
                .set_checksum_sha256(out.checksum_sha256().map(str::to_string));
        }
        completed.push(part.build());
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload {bucket}/{key:?}: {e:?}"))
}
