//! Encryption at rest, seen from outside the server: after a workload through aws-sdk-s3
//! (single PUT, multipart with a copied part, small inline objects, user metadata, copies),
//! no file under the arrays or the metadata store (the RocksDB directory, or with
//! `COFFRE_TEST_METADATA=postgres` the test database's files and the write-ahead log it
//! wrote) holds an object's bytes, ETag, checksum or user metadata value; tampered, truncated or swapped data files make GET fail
//! and never return wrong bytes; everything is readable after a restart; responses say
//! `x-amz-server-side-encryption: AES256`. The same workload runs with the `local-file` root
//! key and with the `pkcs11` one on a SoftHSM2 token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, MetadataDirective, ServerSideEncryption,
};
use aws_sdk_s3::Client;
use coffre_conformance::softhsm::SoftHsmToken;
use coffre_conformance::{
    files_under, md5_hex, multipart_etag, pseudo_random_bytes, simple_etag, TestServer,
};
use http::Method;
use http_body_util::BodyExt;

const BUCKET: &str = "control-visible-bucket-name";
/// Written into every object body every 4 KiB: a plaintext segment would show it.
const BODY_CANARY: &[u8] = b"PLAINTEXT-BODY-CANARY-7f3a";
/// Every user metadata value carries it.
const META_CANARY: &str = "METADATA-VALUE-CANARY-c41d";
const MIB: usize = 1024 * 1024;
const AES256: Option<&ServerSideEncryption> = Some(&ServerSideEncryption::Aes256);

/// An object as the client stored it.
struct Stored {
    key: String,
    body: Vec<u8>,
    /// Quoted, as in the ETag header.
    etag: String,
    metadata: Vec<(String, String)>,
}

/// What the workload wrote, and every string that must not be found on disk.
struct Workload {
    objects: Vec<Stored>,
    secrets: Vec<Vec<u8>>,
    /// Where the write-ahead log was when it began, on PostgreSQL.
    wal_start: Option<String>,
}

/// `len` pseudo-random bytes with [`BODY_CANARY`] and a label every 4 KiB.
fn canary_body(len: usize, seed: u64) -> Vec<u8> {
    let mut body = pseudo_random_bytes(len, seed);
    let mut at = 0;
    while at + BODY_CANARY.len() + 8 <= len {
        body[at..at + BODY_CANARY.len()].copy_from_slice(BODY_CANARY);
        at += 4096;
    }
    body
}

fn meta_value(label: &str) -> String {
    format!("{META_CANARY}-{label}")
}

/// Stores, through aws-sdk-s3, an object above the inline threshold, two inline objects,
/// a multipart object whose last part is an UploadPartCopy, and two copies (one keeping the
/// metadata, one replacing it); checks the SSE header of every response.
async fn run_workload(s3: &Client) -> Workload {
    let wal_start = wal_position();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let mut objects = Vec::new();
    let mut secrets: Vec<Vec<u8>> = vec![BODY_CANARY.to_vec(), META_CANARY.as_bytes().to_vec()];

    let singles = [
        ("control-visible-key-large", 300_000, 1),
        ("inline/small", 2_000, 2),
        ("inline/tiny", 40, 3),
    ];
    for (key, len, seed) in singles {
        let body = canary_body(len, seed);
        let metadata = vec![("label".to_string(), meta_value(key))];
        let out = s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .metadata("label", meta_value(key))
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"));
        assert_eq!(out.server_side_encryption(), AES256, "PutObject {key}");
        if let Some(crc) = out.checksum_crc32() {
            secrets.push(crc.as_bytes().to_vec());
        }
        objects.push(Stored {
            key: key.to_string(),
            etag: simple_etag(&body),
            body,
            metadata,
        });
    }

    // Multipart: a 5 MiB part, then the large object copied in as the last part.
    let key = "multi/part";
    let created = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .metadata("label", meta_value(key))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.server_side_encryption(),
        AES256,
        "CreateMultipartUpload"
    );
    let upload_id = created.upload_id().unwrap();
    let first = canary_body(5 * MIB, 4);
    let part = s3
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(first.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(part.server_side_encryption(), AES256, "UploadPart");
    let first_etag = part.e_tag().unwrap().to_string();
    let copied = s3
        .upload_part_copy()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .part_number(2)
        .copy_source(format!("{BUCKET}/control-visible-key-large"))
        .send()
        .await
        .unwrap();
    assert_eq!(copied.server_side_encryption(), AES256, "UploadPartCopy");
    let second_etag = copied
        .copy_part_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let completed = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(first_etag)
                        .build(),
                )
                .parts(
                    CompletedPart::builder()
                        .part_number(2)
                        .e_tag(second_etag)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        completed.server_side_encryption(),
        AES256,
        "CompleteMultipartUpload"
    );
    let second = objects[0].body.clone();
    secrets.push(md5_hex(&first).into_bytes());
    objects.push(Stored {
        key: key.to_string(),
        etag: multipart_etag(&[&first, &second]),
        body: [first, second].concat(),
        metadata: vec![("label".to_string(), meta_value(key))],
    });

    // Copies: metadata kept, and metadata replaced.
    let source = format!("{BUCKET}/inline/small");
    let copy = s3
        .copy_object()
        .bucket(BUCKET)
        .key("copies/kept")
        .copy_source(&source)
        .send()
        .await
        .unwrap();
    assert_eq!(copy.server_side_encryption(), AES256, "CopyObject");
    let kept = Stored {
        key: "copies/kept".to_string(),
        body: objects[1].body.clone(),
        etag: objects[1].etag.clone(),
        metadata: objects[1].metadata.clone(),
    };
    objects.push(kept);
    let copy = s3
        .copy_object()
        .bucket(BUCKET)
        .key("copies/replaced")
        .copy_source(format!("{BUCKET}/control-visible-key-large"))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("label", meta_value("replaced"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        copy.server_side_encryption(),
        AES256,
        "CopyObject (REPLACE)"
    );
    let replaced = Stored {
        key: "copies/replaced".to_string(),
        body: objects[0].body.clone(),
        etag: objects[0].etag.clone(),
        metadata: vec![("label".to_string(), meta_value("replaced"))],
    };
    objects.push(replaced);

    for object in &objects {
        secrets.push(object.etag.trim_matches('"').as_bytes().to_vec());
        for (_, value) in &object.metadata {
            secrets.push(value.clone().into_bytes());
        }
    }
    Workload {
        objects,
        secrets,
        wal_start,
    }
}

/// Every object reads back whole, with its ETag, metadata and the SSE header on GET and HEAD.
async fn check_readable(s3: &Client, workload: &Workload) {
    for object in &workload.objects {
        let key = &object.key;
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD {key}: {e:?}"));
        assert_eq!(head.server_side_encryption(), AES256, "HeadObject {key}");
        let got = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {key}: {e:?}"));
        assert_eq!(got.server_side_encryption(), AES256, "GetObject {key}");
        assert_eq!(got.e_tag(), Some(object.etag.as_str()), "{key}");
        let metadata: Vec<(String, String)> = got
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        assert_eq!(metadata, object.metadata, "metadata of {key}");
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(body == object.body, "{key}: the bytes read back differ");
    }
}

/// The files of the server's metadata: its RocksDB directory, or on PostgreSQL its
/// database's files and the write-ahead log segments written since `wal_start` (after a
/// CHECKPOINT, so that the table pages are on disk too).
fn metadata_files(data_dir: &Path, wal_start: Option<&str>) -> Vec<PathBuf> {
    let Some(database) = postgres_database(data_dir) else {
        let files = files_under(&data_dir.join("meta"));
        assert!(
            !files.is_empty(),
            "no RocksDB files under {}",
            data_dir.join("meta").display()
        );
        return files;
    };
    let wal_start = wal_start
        .expect("the workload's start in the write-ahead log")
        .to_owned();
    let (oid, first, last) = on_postgres(move |client| {
        client.batch_execute("CHECKPOINT").unwrap();
        let oid: postgres::types::Oid = client
            .query_one(
                "SELECT oid FROM pg_database WHERE datname = $1",
                &[&database],
            )
            .unwrap()
            .get(0);
        let segments = client
            .query_one(
                "SELECT pg_walfile_name($1::text::pg_lsn), pg_walfile_name(pg_current_wal_lsn())",
                &[&wal_start],
            )
            .unwrap();
        (
            oid,
            segments.get::<_, String>(0),
            segments.get::<_, String>(1),
        )
    });
    let cluster = PathBuf::from(std::env::var("COFFRE_TEST_POSTGRES_DIR").unwrap()).join("data");
    let mut files = files_under(&cluster.join("base").join(oid.to_string()));
    assert!(!files.is_empty(), "no files for database oid {oid}");
    let segments: Vec<PathBuf> = files_under(&cluster.join("pg_wal"))
        .into_iter()
        .filter(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            name.len() == 24 && name >= first && name <= last
        })
        .collect();
    assert!(
        !segments.is_empty(),
        "no WAL segment from {first} to {last}"
    );
    files.extend(segments);
    files
}

/// Runs `query` with a client of the test PostgreSQL server, on a thread of its own (the
/// blocking client runs a runtime of its own, which cannot start inside the test's).
fn on_postgres<T: Send + 'static>(
    query: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let url = std::env::var("COFFRE_TEST_POSTGRES_URL").expect("COFFRE_TEST_POSTGRES_URL");
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        query(&mut client)
    })
    .join()
    .unwrap()
}

/// Where the write-ahead log is now, when the metadata is in PostgreSQL.
fn wal_position() -> Option<String> {
    if std::env::var(coffre_conformance::METADATA_ENV).as_deref() != Ok("postgres") {
        return None;
    }
    Some(on_postgres(|client| {
        client
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .unwrap()
            .get(0)
    }))
}

/// The PostgreSQL database the server in `data_dir` keeps its metadata in, if any (the
/// harness writes its URL into `coffre-postgres.toml`).
fn postgres_database(data_dir: &Path) -> Option<String> {
    let config = fs::read_to_string(data_dir.join("coffre-postgres.toml")).ok()?;
    let url = config
        .lines()
        .find_map(|line| line.trim().strip_prefix("url = "))?
        .trim_matches('"');
    Some(url.rsplit('/').next()?.split('?').next()?.to_owned())
}

/// For each needle, the files (under the arrays and the metadata store) that contain it.
fn scan(data_dir: &Path, wal_start: Option<&str>, needles: &[Vec<u8>]) -> Vec<(String, PathBuf)> {
    let finders: Vec<memchr::memmem::Finder<'_>> = needles
        .iter()
        .map(|needle| {
            assert!(needle.len() >= 8, "needle too short: {needle:?}");
            memchr::memmem::Finder::new(needle)
        })
        .collect();
    let mut hits = Vec::new();
    let mut files = files_under(&data_dir.join("arrays"));
    files.extend(metadata_files(data_dir, wal_start));
    for file in files {
        let bytes = fs::read(&file).unwrap();
        for finder in &finders {
            if finder.find(&bytes).is_some() {
                let needle = String::from_utf8_lossy(finder.needle()).into_owned();
                hits.push((needle, file.clone()));
            }
        }
    }
    hits
}

/// Stops the server (RocksDB flushes its memtables and closes its WAL), scans its files,
/// and starts it again.
async fn assert_nothing_in_plaintext(server: &mut TestServer, workload: &Workload) {
    server.stop();
    let wal_start = workload.wal_start.as_deref();
    let leaks = scan(server.data_dir(), wal_start, &workload.secrets);
    assert!(leaks.is_empty(), "plaintext found on disk: {leaks:#?}");
    // Control: the scan does see what is stored in the clear (names are listing keys).
    let control = scan(
        server.data_dir(),
        wal_start,
        &[
            BUCKET.as_bytes().to_vec(),
            b"control-visible-key-large".to_vec(),
        ],
    );
    assert_eq!(
        control
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        2,
        "the scan should find the bucket and key names: {control:?}"
    );
    server.start_again();
}

#[tokio::test]
async fn local_file_root_key_leaves_no_plaintext_on_disk_and_survives_restart() {
    let mut server = TestServer::start();
    let workload = run_workload(&server.s3_client()).await;
    check_readable(&server.s3_client(), &workload).await;
    assert_nothing_in_plaintext(&mut server, &workload).await;
    assert!(server.data_dir().join("root.key").is_file());
    check_readable(&server.s3_client(), &workload).await;
    server.restart();
    check_readable(&server.s3_client(), &workload).await;
}

#[tokio::test]
async fn pkcs11_root_key_on_softhsm_leaves_no_plaintext_on_disk_and_survives_restart() {
    let token = SoftHsmToken::init("coffre-test");
    let mut server = TestServer::start_with_config(&token.key_provider_toml(), &token.env());
    let workload = run_workload(&server.s3_client()).await;
    check_readable(&server.s3_client(), &workload).await;
    assert_nothing_in_plaintext(&mut server, &workload).await;
    assert!(
        !server.data_dir().join("root.key").exists(),
        "with the pkcs11 provider no root key file is written"
    );
    check_readable(&server.s3_client(), &workload).await;
    server.restart();
    check_readable(&server.s3_client(), &workload).await;
    // The token's directory holds the root key, sealed by SoftHSM: nothing of ours either.
    assert!(token
        .dir()
        .join("tokens")
        .read_dir()
        .unwrap()
        .next()
        .is_some());
}

/// What a GET produced, as a client without checksum validation sees it.
#[derive(Debug)]
enum Outcome {
    /// An error status before any body.
    Refused(u16),
    /// The connection was cut: before the headers, or after `received` body bytes.
    Cut { received: usize },
    /// A complete 200 response.
    Whole(Vec<u8>),
}

async fn raw_get(server: &TestServer, key: &str) -> Outcome {
    let request = server
        .request(Method::GET, &format!("/{BUCKET}/{key}"))
        .build();
    let client = coffre_conformance::raw_client();
    let Ok(response) = client.request(request).await else {
        return Outcome::Cut { received: 0 };
    };
    let status = response.status();
    let mut body = response.into_body();
    let mut received = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    received.extend_from_slice(&data);
                }
            }
            Err(_) => {
                return Outcome::Cut {
                    received: received.len(),
                }
            }
        }
    }
    if status.is_success() {
        Outcome::Whole(received)
    } else {
        Outcome::Refused(status.as_u16())
    }
}

/// A GET of a damaged object fails: an error status or a cut connection, never bytes.
async fn assert_get_fails(server: &TestServer, key: &str, original: &[u8], what: &str) {
    match raw_get(server, key).await {
        Outcome::Refused(status) => {
            assert!(status >= 500, "{what}: GET {key} answered {status}");
        }
        Outcome::Cut { received } => {
            assert!(
                received < original.len(),
                "{what}: GET {key} cut after the whole body"
            )
        }
        Outcome::Whole(bytes) => panic!(
            "{what}: GET {key} returned {} bytes ({}) instead of failing",
            bytes.len(),
            if bytes == original {
                "the original"
            } else {
                "WRONG BYTES"
            }
        ),
    }
}

/// Puts `key` and returns the data file it created under the arrays.
async fn put_with_file(server: &TestServer, key: &str, body: &[u8]) -> PathBuf {
    let arrays = server.data_dir().join("arrays");
    let before: BTreeSet<PathBuf> = files_under(&arrays).into_iter().collect();
    server
        .s3_client()
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
    let created: Vec<PathBuf> = files_under(&arrays)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    assert_eq!(created.len(), 1, "PUT {key} created {created:?}");
    let file = created.into_iter().next().unwrap();
    assert!(
        file.starts_with(arrays.join("0")),
        "{} is not under arrays/0/<tenant>/",
        file.display()
    );
    file
}

#[tokio::test]
async fn tampered_truncated_or_swapped_data_files_make_get_fail() {
    let server = TestServer::start();
    let s3 = server.s3_client();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    // Above the inline threshold, several segments each; a and b have the same size.
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("flipped", canary_body(200_000, 11)),
        ("truncated", canary_body(200_000, 12)),
        ("swap-a", canary_body(150_000, 13)),
        ("swap-b", canary_body(150_000, 14)),
        ("untouched", canary_body(150_000, 15)),
    ];
    let mut files = HashMap::new();
    for (key, body) in &bodies {
        files.insert(*key, put_with_file(&server, key, body).await);
    }
    let body_of = |key: &str| bodies.iter().find(|(k, _)| *k == key).unwrap().1.clone();

    // One bit in the middle of the sealed body.
    let path = &files["flipped"];
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(path, bytes).unwrap();
    assert_get_fails(&server, "flipped", &body_of("flipped"), "a flipped bit").await;

    // The last segment cut short, then the file cut at a segment boundary.
    let path = &files["truncated"];
    let len = fs::metadata(path).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len - 1).unwrap();
    assert_get_fails(&server, "truncated", &body_of("truncated"), "one byte cut").await;
    file.set_len(16 + 65_536 + 16).unwrap();
    assert_get_fails(&server, "truncated", &body_of("truncated"), "segments cut").await;

    // Two objects' data files swapped: each is sealed under the other's key.
    let (a, b) = (&files["swap-a"], &files["swap-b"]);
    let parked = a.with_extension("parked");
    fs::rename(a, &parked).unwrap();
    fs::rename(b, a).unwrap();
    fs::rename(&parked, b).unwrap();
    assert_get_fails(&server, "swap-a", &body_of("swap-a"), "swapped files").await;
    assert_get_fails(&server, "swap-b", &body_of("swap-b"), "swapped files").await;

    // A range inside an undamaged segment of the flipped object is still served, and
    // untouched objects read as before.
    match raw_get(&server, "untouched").await {
        Outcome::Whole(bytes) => assert!(bytes == body_of("untouched")),
        other => panic!("GET untouched: {other:?}"),
    }
    let first_segment = s3
        .get_object()
        .bucket(BUCKET)
        .key("flipped")
        .range("bytes=0-999")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert!(first_segment[..] == body_of("flipped")[..1000]);
}

#[tokio::test]
async fn sse_s3_may_be_asked_for_and_sse_kms_is_refused() {
    let server = TestServer::start();
    let s3 = server.s3_client();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("asked")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"asked for AES256"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.server_side_encryption(), AES256);
    let refused = server
        .request(Method::PUT, &format!("/{BUCKET}/kms"))
        .header("x-amz-server-side-encryption", "aws:kms")
        .body("kms")
        .send()
        .await;
    refused.assert_error(501, "NotImplemented");
    let refused = server
        .request(Method::PUT, &format!("/{BUCKET}/des"))
        .header("x-amz-server-side-encryption", "DES")
        .body("des")
        .send()
        .await;
    refused.assert_error(400, "InvalidArgument");
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["asked"], "refused PUTs store nothing");
}
