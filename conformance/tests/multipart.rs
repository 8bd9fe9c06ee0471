//! Multipart uploads: create, upload, complete (ETag md5-of-md5s-N), the completion errors,
//! abort, ListParts, ListMultipartUploads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use coffre_conformance::{
    completed_parts, composite_crc32, crc32_base64, create_upload, get_bytes, md5_hex,
    multipart_etag, pseudo_random_bytes, sdk_error, upload_part, TestServer,
};
use http::Method;

const MIB: usize = 1024 * 1024;
const BUCKET: &str = "mpu";

#[tokio::test]
async fn upload_and_complete() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let parts = [
        pseudo_random_bytes(5 * MIB, 1),
        pseudo_random_bytes(5 * MIB + 3, 2),
        pseudo_random_bytes(700_001, 3),
    ];
    let upload_id = create_upload(&s3, BUCKET, "big/object").await;
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let etag = upload_part(&s3, BUCKET, "big/object", &upload_id, i as i32 + 1, part).await;
        assert_eq!(
            etag,
            format!("\"{}\"", md5_hex(part)),
            "a part's ETag is its MD5"
        );
        etags.push(etag);
    }
    let done = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("big/object")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[
            (1, &etags[0]),
            (2, &etags[1]),
            (3, &etags[2]),
        ]))
        .send()
        .await
        .unwrap();
    let expected_etag = multipart_etag(&parts);
    assert_eq!(done.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(done.bucket(), Some(BUCKET));
    assert_eq!(done.key(), Some("big/object"));

    let whole: Vec<u8> = parts.concat();
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("big/object")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(whole.len() as i64));
    assert_eq!(head.e_tag(), Some(expected_etag.as_str()));
    assert!(
        get_bytes(&s3, BUCKET, "big/object").await == whole,
        "GET returns the concatenated parts"
    );

    // A range across the part 1 / part 2 boundary.
    let start = 5 * MIB - 10;
    let response = server
        .request(Method::GET, "/mpu/big/object")
        .header("range", &format!("bytes={start}-{}", start + 19))
        .send()
        .await;
    assert_eq!(response.status.as_u16(), 206);
    assert_eq!(&response.body[..], &whole[start..start + 20]);

    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let object = &listed.contents()[0];
    assert_eq!(object.key(), Some("big/object"));
    assert_eq!(object.size(), Some(whole.len() as i64));
    assert_eq!(object.e_tag(), Some(expected_etag.as_str()));

    let uploads = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "a completed upload is no longer listed"
    );
}

#[tokio::test]
async fn reuploading_a_part_replaces_it_and_parts_may_be_skipped() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload_id = create_upload(&s3, BUCKET, "k").await;
    upload_part(
        &s3,
        BUCKET,
        "k",
        &upload_id,
        1,
        &pseudo_random_bytes(5 * MIB, 10),
    )
    .await;
    let first = pseudo_random_bytes(5 * MIB, 11);
    let etag1 = upload_part(&s3, BUCKET, "k", &upload_id, 1, &first).await;
    let last = b"tail".to_vec();
    let etag7 = upload_part(&s3, BUCKET, "k", &upload_id, 7, &last).await;
    let done = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(1, &etag1), (7, &etag7)]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.e_tag(),
        Some(multipart_etag(&[&first, &last]).as_str())
    );
    assert!(get_bytes(&s3, BUCKET, "k").await == [first, last].concat());
}

#[tokio::test]
async fn completing_with_a_small_part_is_entity_too_small() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload_id = create_upload(&s3, BUCKET, "small").await;
    let etag1 = upload_part(&s3, BUCKET, "small", &upload_id, 1, &[1u8; 1024]).await;
    let etag2 = upload_part(&s3, BUCKET, "small", &upload_id, 2, &[2u8; 1024]).await;
    let err = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("small")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(1, &etag1), (2, &etag2)]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (400, "EntityTooSmall".to_string()));
    let err = s3
        .head_object()
        .bucket(BUCKET)
        .key("small")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err).0,
        404,
        "a failed completion creates no object"
    );

    // A single small part is fine: the last part may be small.
    let upload_id = create_upload(&s3, BUCKET, "single").await;
    let etag = upload_part(&s3, BUCKET, "single", &upload_id, 1, b"only part").await;
    let done = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("single")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(1, &etag)]))
        .send()
        .await
        .unwrap();
    assert_eq!(done.e_tag(), Some(multipart_etag(&[b"only part"]).as_str()));
    assert_eq!(get_bytes(&s3, BUCKET, "single").await, b"only part");
}

#[tokio::test]
async fn completing_with_unknown_parts_is_invalid_part() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload_id = create_upload(&s3, BUCKET, "k").await;
    let etag1 = upload_part(&s3, BUCKET, "k", &upload_id, 1, b"one").await;

    // A part number never uploaded.
    let err = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(1, &etag1), (2, &etag1)]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (400, "InvalidPart".to_string()));

    // A wrong ETag.
    let err = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(
            1,
            "\"0123456789abcdef0123456789abcdef\"",
        )]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (400, "InvalidPart".to_string()));

    // The upload survives failed completions; an unquoted ETag is accepted too.
    let done = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(1, etag1.trim_matches('"'))]))
        .send()
        .await
        .unwrap();
    assert_eq!(done.e_tag(), Some(multipart_etag(&[b"one"]).as_str()));
}

#[tokio::test]
async fn completing_out_of_order_is_invalid_part_order() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload_id = create_upload(&s3, BUCKET, "k").await;
    let etag1 = upload_part(
        &s3,
        BUCKET,
        "k",
        &upload_id,
        1,
        &pseudo_random_bytes(5 * MIB, 1),
    )
    .await;
    let etag2 = upload_part(&s3, BUCKET, "k", &upload_id, 2, b"two").await;
    let err = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(2, &etag2), (1, &etag1)]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (400, "InvalidPartOrder".to_string()));
    let err = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(1, &etag1), (1, &etag1)]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (400, "InvalidPartOrder".to_string()));
}

#[tokio::test]
async fn completing_with_no_parts_is_malformed_xml() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload_id = create_upload(&s3, BUCKET, "k").await;
    let response = server
        .request(Method::POST, "/mpu/k")
        .query("uploadId", &upload_id)
        .body("<CompleteMultipartUpload></CompleteMultipartUpload>")
        .send()
        .await;
    response.assert_error(400, "MalformedXML");
    let response = server
        .request(Method::POST, "/mpu/k")
        .query("uploadId", &upload_id)
        .body("<CompleteMultipartUpload><Part><PartNumber>1</Part>")
        .send()
        .await;
    response.assert_error(400, "MalformedXML");
}

#[tokio::test]
async fn unknown_upload_ids_are_no_such_upload() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let bogus = "bm90LWFuLXVwbG9hZA";
    let err = s3
        .upload_part()
        .bucket(BUCKET)
        .key("k")
        .upload_id(bogus)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchUpload".to_string()));
    let err = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(bogus)
        .multipart_upload(completed_parts(&[(
            1,
            "\"0123456789abcdef0123456789abcdef\"",
        )]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchUpload".to_string()));
    let err = s3
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(bogus)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchUpload".to_string()));
    let err = s3
        .list_parts()
        .bucket(BUCKET)
        .key("k")
        .upload_id(bogus)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchUpload".to_string()));

    // An upload id is bound to its key.
    let upload_id = create_upload(&s3, BUCKET, "real").await;
    let err = s3
        .upload_part()
        .bucket(BUCKET)
        .key("other")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchUpload".to_string()));
}

#[tokio::test]
async fn part_numbers_out_of_range_are_invalid_argument() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload_id = create_upload(&s3, BUCKET, "k").await;
    for number in [0, 10_001] {
        let err = s3
            .upload_part()
            .bucket(BUCKET)
            .key("k")
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            sdk_error(&err),
            (400, "InvalidArgument".to_string()),
            "part {number}"
        );
    }
    upload_part(&s3, BUCKET, "k", &upload_id, 10_000, b"last allowed").await;
}

#[tokio::test]
async fn abort_discards_the_upload() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload_id = create_upload(&s3, BUCKET, "k").await;
    let etag = upload_part(&s3, BUCKET, "k", &upload_id, 1, b"part").await;
    s3.abort_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();

    let uploads = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
    let err = s3
        .list_parts()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchUpload".to_string()));
    let err = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("k")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[(1, &etag)]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchUpload".to_string()));
    let err = s3
        .head_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err).0, 404);
}

#[tokio::test]
async fn list_parts_paginates() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload_id = create_upload(&s3, BUCKET, "parts").await;
    let mut expected = Vec::new();
    for number in 1..=7 {
        let data = pseudo_random_bytes(1000 + number as usize, number as u64);
        let etag = upload_part(&s3, BUCKET, "parts", &upload_id, number, &data).await;
        expected.push((number, etag, data.len() as i64));
    }

    let mut marker: Option<String> = None;
    let mut got = Vec::new();
    loop {
        let page = s3
            .list_parts()
            .bucket(BUCKET)
            .key("parts")
            .upload_id(&upload_id)
            .max_parts(3)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(page.bucket(), Some(BUCKET));
        assert_eq!(page.key(), Some("parts"));
        assert_eq!(page.upload_id(), Some(upload_id.as_str()));
        assert_eq!(page.max_parts(), Some(3));
        assert!(page.parts().len() <= 3);
        for part in page.parts() {
            assert!(part.last_modified().is_some());
            got.push((
                part.part_number().unwrap(),
                part.e_tag().unwrap().to_string(),
                part.size().unwrap(),
            ));
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        let next = page
            .next_part_number_marker()
            .expect("NextPartNumberMarker");
        assert_eq!(next, got.last().unwrap().0.to_string());
        marker = Some(next.to_string());
    }
    assert_eq!(got, expected);
}

#[tokio::test]
async fn list_multipart_uploads() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let mut expected = Vec::new();
    for key in ["b/2", "a", "b/1", "c"] {
        expected.push((key.to_string(), create_upload(&s3, BUCKET, key).await));
    }
    let second_a = create_upload(&s3, BUCKET, "a").await;
    expected.push(("a".to_string(), second_a));
    expected.sort_by(|x, y| x.0.cmp(&y.0));

    let all = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(all.bucket(), Some(BUCKET));
    let mut got: Vec<(String, String)> = all
        .uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap().to_string(),
                u.upload_id().unwrap().to_string(),
            )
        })
        .collect();
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["a", "a", "b/1", "b/2", "c"],
        "uploads are sorted by key"
    );
    for upload in all.uploads() {
        assert!(upload.initiated().is_some());
    }
    got.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(got, expected_sorted);

    let filtered = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .prefix("b/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = filtered.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["b/1", "b/2"]);

    let delimited = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = delimited.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["a", "a", "c"]);
    let prefixes: Vec<&str> = delimited
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["b/"]);

    // Paginate one at a time with key-marker / upload-id-marker.
    let mut key_marker: Option<String> = None;
    let mut id_marker: Option<String> = None;
    let mut paged = Vec::new();
    for _ in 0..20 {
        let page = s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .max_uploads(2)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .unwrap();
        paged.extend(page.uploads().iter().map(|u| {
            (
                u.key().unwrap().to_string(),
                u.upload_id().unwrap().to_string(),
            )
        }));
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
    }
    paged.sort();
    assert_eq!(paged, expected_sorted, "pagination lists every upload once");
}

#[tokio::test]
async fn multipart_with_crc32_checksums() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("summed")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap().to_string();
    let parts = [
        pseudo_random_bytes(5 * MIB, 21),
        pseudo_random_bytes(12_345, 22),
    ];
    let mut completed = Vec::new();
    let mut part_checksums = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let out = s3
            .upload_part()
            .bucket(BUCKET)
            .key("summed")
            .upload_id(&upload_id)
            .part_number(i as i32 + 1)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        let checksum = out
            .checksum_crc32()
            .expect("UploadPart returns the part's CRC32");
        assert_eq!(checksum, crc32_base64(data));
        part_checksums.push(checksum.to_string());
        completed.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(out.e_tag().unwrap())
                .checksum_crc32(checksum)
                .build(),
        );
    }
    let done = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("summed")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let composite = composite_crc32(&part_checksums);
    assert_eq!(done.checksum_crc32(), Some(composite.as_str()));
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("summed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32(), Some(composite.as_str()));
    assert!(get_bytes(&s3, BUCKET, "summed").await == parts.concat());
}
