//! The stored forms round trip, hold no plaintext value, refuse swapped values, and older
//! formats still read.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::records::now;
use coffre_crypto::{CustomerKey, Dek, DekContext, Kek, KekVersion, TenantId};

fn record(dek: &Dek) -> ObjectRecord {
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let (bucket, id) = (BucketId::random(), ObjectId::random());
    let context = DekContext {
        tenant: TenantId::random(),
        bucket,
        key: "k",
        object: id,
        version: 0,
    };
    ObjectRecord {
        key: "k".into(),
        id,
        meta: ObjectMeta {
            size: 3,
            etag: "the_etag".into(),
            user_metadata: vec![("a".into(), "one".into()), ("b".into(), "two".into())],
            tags: vec![("project".into(), "zephyr".into())],
            checksums: vec![("CRC32".into(), "AAAAAA==".into())],
            ..ObjectMeta::default()
        },
        last_modified: now(),
        parts: vec![PartLayout {
            part_number: 0,
            size: 3,
            location: DataLocation::Inline(vec![1, 2, 3]),
            checksums: vec![("CRC32".into(), "BBBBBB==".into())],
            nonce: NoncePrefix::random(),
        }],
        bucket,
        dek: kek.wrap_dek(dek, &context).unwrap(),
        customer_key_check: None,
        multipart: false,
    }
}

#[test]
fn objects_round_trip_and_hold_no_plaintext_value() {
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let record = record(&dek);
    let encoded = StoredObject::seal(&record, &key).unwrap().encode().unwrap();
    for plain in [
        "the_etag", "one", "two", "AAAAAA==", "BBBBBB==", "project", "zephyr",
    ] {
        assert!(
            !encoded.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain} in the clear"
        );
    }
    let stored = StoredObject::decode(&encoded).unwrap();
    assert_eq!(stored.open_etag(&key).unwrap(), "the_etag");
    assert_eq!(stored.open(record.bucket, &key).unwrap(), record);
}

#[test]
fn swapped_values_or_another_key_fail() {
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let record = record(&dek);
    let mut stored = StoredObject::seal(&record, &key).unwrap();
    let first = stored.meta.user_metadata[0].1.clone();
    stored.meta.user_metadata[0].1 = stored.meta.user_metadata[1].1.clone();
    stored.meta.user_metadata[1].1 = first;
    assert!(matches!(
        stored.open(record.bucket, &key),
        Err(Error::Integrity { .. })
    ));

    let mut stored = StoredObject::seal(&record, &key).unwrap();
    stored.meta.etag = stored.meta.user_metadata[0].1.clone();
    assert!(matches!(
        stored.open(record.bucket, &key),
        Err(Error::Integrity { .. })
    ));

    let other = Dek::generate().value_key().unwrap();
    let stored = StoredObject::seal(&record, &key).unwrap();
    assert!(matches!(
        stored.open(record.bucket, &other),
        Err(Error::Integrity { .. })
    ));
}

#[test]
fn tags_are_replaced_alone_and_bound_to_their_object() {
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let mut record = record(&dek);
    let mut stored = StoredObject::seal(&record, &key).unwrap();
    let tags = vec![
        ("a".to_owned(), "1".to_owned()),
        ("b".to_owned(), String::new()),
    ];
    stored.replace_tags(&tags, &key).unwrap();
    record.meta.tags = tags;
    assert_eq!(stored.clone().open(record.bucket, &key).unwrap(), record);
    stored.replace_tags(&[], &key).unwrap();
    assert_eq!(stored.meta.tags, None);

    // Another object's sealed tags do not open here, nor does another sealed value.
    let other_dek = Dek::generate();
    let other =
        StoredObject::seal(&self::record(&other_dek), &other_dek.value_key().unwrap()).unwrap();
    let mut swapped = StoredObject::seal(&record, &key).unwrap();
    swapped.meta.tags = other.meta.tags.clone();
    assert!(matches!(
        swapped.open(record.bucket, &key),
        Err(Error::Integrity { .. })
    ));
    let mut swapped = StoredObject::seal(&record, &key).unwrap();
    swapped.meta.tags = Some(swapped.meta.etag.clone());
    assert!(matches!(
        swapped.open(record.bucket, &key),
        Err(Error::Integrity { .. })
    ));
}

#[test]
fn format_2_objects_read_as_untagged() {
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let mut record = record(&dek);
    record.meta.tags.clear();
    let s = StoredObject::seal(&record, &key).unwrap();
    let m = &s.meta;
    // Postcard writes a struct as the tuple of its fields.
    let v2 = (
        &s.key,
        s.id,
        &s.dek,
        (
            m.size,
            &m.etag,
            &m.content_type,
            &m.content_encoding,
            &m.content_disposition,
            &m.content_language,
            &m.cache_control,
            &m.expires,
            &m.user_metadata,
            &m.checksums,
            &m.checksum_type,
        ),
        crate::records::to_millis(s.last_modified),
        &s.parts,
    );
    let bytes = postcard::to_extend(&v2, vec![SEALED_FORMAT_VERSION]).unwrap();
    let decoded = StoredObject::decode(&bytes).unwrap();
    assert_eq!(decoded.open(record.bucket, &key).unwrap(), record);
}

#[test]
fn plaintext_format_1_records_are_refused() {
    let dek = Dek::generate();
    let mut bytes = StoredObject::seal(&record(&dek), &dek.value_key().unwrap())
        .unwrap()
        .encode()
        .unwrap();
    bytes[0] = 1;
    assert!(matches!(
        StoredObject::decode(&bytes),
        Err(Error::Corrupt(_))
    ));
}

#[test]
fn the_sse_c_key_check_round_trips_and_the_key_is_not_stored() {
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let customer_key = CustomerKey::from_bytes(&[0x5A; 32]);
    let mut record = record(&dek);
    record.customer_key_check = Some(dek.customer_key_check(&customer_key).unwrap());
    assert!(record.is_sse_c());
    let encoded = StoredObject::seal(&record, &key).unwrap().encode().unwrap();
    assert_eq!(encoded[0], MULTIPART_FORMAT_VERSION);
    assert!(!encoded.windows(32).any(|w| w == [0x5A; 32]));
    let opened = StoredObject::decode(&encoded)
        .unwrap()
        .open(record.bucket, &key)
        .unwrap();
    assert_eq!(opened, record);
    let check = opened.customer_key_check.unwrap();
    assert!(dek.matches_customer_key(&customer_key, &check).unwrap());
}

#[test]
fn format_3_objects_and_uploads_read_as_not_sse_c() {
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let record = record(&dek);
    let s = StoredObject::seal(&record, &key).unwrap();
    // Format 3 is format 4 without the trailing key check.
    let v3 = (
        &s.key,
        s.id,
        &s.dek,
        &s.meta,
        crate::records::to_millis(s.last_modified),
        &s.parts,
    );
    let bytes = postcard::to_extend(&v3, vec![TAGGED_FORMAT_VERSION]).unwrap();
    let decoded = StoredObject::decode(&bytes).unwrap();
    assert_eq!(decoded.customer_key_check, None);
    assert_eq!(decoded.open(record.bucket, &key).unwrap(), record);

    let upload = UploadRecord {
        id: record.id,
        key: "k".into(),
        initiated: now(),
        meta: ObjectMeta::default(),
        dek: record.dek.clone(),
        customer_key_check: None,
    };
    let u = StoredUpload::seal(&upload, &key).unwrap();
    let v3 = (
        &u.upload_id,
        &u.key,
        crate::records::to_millis(u.initiated),
        &u.dek,
        &u.meta,
    );
    let bytes = postcard::to_extend(&v3, vec![TAGGED_FORMAT_VERSION]).unwrap();
    let decoded = StoredUpload::decode(&bytes).unwrap();
    assert_eq!(decoded.open(&key).unwrap(), upload);
    assert!(!upload.is_sse_c());
    // And format 4 uploads keep their check.
    let sse_c = UploadRecord {
        customer_key_check: Some(
            dek.customer_key_check(&CustomerKey::from_bytes(&[1; 32]))
                .unwrap(),
        ),
        ..upload
    };
    let encoded = StoredUpload::seal(&sse_c, &key).unwrap().encode().unwrap();
    assert_eq!(
        StoredUpload::decode(&encoded).unwrap().open(&key).unwrap(),
        sse_c
    );
}

/// A record of three file parts, as a completed multipart upload leaves it.
fn multipart_record(dek: &Dek) -> ObjectRecord {
    let mut record = record(dek);
    record.multipart = true;
    record.meta.etag = "0f343b0931126a20f133d67c2b018a3b-3".into();
    record.meta.size = 3 * 5_000_000;
    record.parts = (1..=3)
        .map(|part_number| PartLayout {
            part_number,
            size: 5_000_000,
            location: DataLocation::File {
                array: "a1".into(),
                file: ObjectId::random(),
            },
            checksums: Vec::new(),
            nonce: NoncePrefix::random(),
        })
        .collect();
    record
}

#[test]
fn r12_a_part_layout_reordered_dropped_duplicated_or_redirected_does_not_open() {
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let record = multipart_record(&dek);
    let sealed = StoredObject::seal(&record, &key).unwrap();
    assert!(sealed.clone().open(record.bucket, &key).is_ok());
    let other_file = ObjectId::random();
    type Tampering = Box<dyn Fn(&mut StoredObject)>;
    let tamperings: Vec<(&str, Tampering)> = vec![
        ("reordered", Box::new(|s| s.parts.swap(0, 1))),
        ("dropped", Box::new(|s| drop(s.parts.pop()))),
        (
            "duplicated",
            Box::new(|s| {
                let first = s.parts[0].clone();
                s.parts[1] = first;
            }),
        ),
        ("renumbered", Box::new(|s| s.parts[2].part_number = 7)),
        ("resized", Box::new(|s| s.parts[0].size -= 1)),
        ("total size", Box::new(|s| s.meta.size += 1)),
        (
            "another file",
            Box::new(move |s| {
                s.parts[1].location = DataLocation::File {
                    array: "a1".into(),
                    file: other_file,
                }
            }),
        ),
        (
            "another array",
            Box::new(|s| {
                if let DataLocation::File { array, .. } = &mut s.parts[1].location {
                    *array = "a2".into();
                }
            }),
        ),
        (
            "another nonce",
            Box::new(|s| s.parts[2].nonce = NoncePrefix::random()),
        ),
        (
            "seal removed",
            Box::new(|s| s.layout_seal = Some(Vec::new())),
        ),
        ("single", Box::new(|s| s.multipart = Some(false))),
        ("flag removed", Box::new(|s| s.multipart = None)),
    ];
    for (what, tamper) in tamperings {
        let mut stored = StoredObject::decode(&sealed.encode().unwrap()).unwrap();
        tamper(&mut stored);
        assert!(
            matches!(
                stored.open(record.bucket, &key),
                Err(Error::Integrity { .. })
            ),
            "{what}: must not open"
        );
    }
}

#[test]
fn objects_of_format_4_read_without_a_layout_seal() {
    #[derive(Serialize)]
    struct V4<'a> {
        key: &'a str,
        id: ObjectId,
        dek: &'a WrappedDek,
        meta: &'a SealedMeta,
        #[serde(with = "unix_millis")]
        last_modified: SystemTime,
        parts: &'a [StoredPart],
        customer_key_check: Option<CustomerKeyCheck>,
    }
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let record = multipart_record(&dek);
    let stored = StoredObject::seal(&record, &key).unwrap();
    let v4 = postcard::to_extend(
        &V4 {
            key: &stored.key,
            id: stored.id,
            dek: &stored.dek,
            meta: &stored.meta,
            last_modified: stored.last_modified,
            parts: &stored.parts,
            customer_key_check: stored.customer_key_check,
        },
        vec![SSE_C_FORMAT_VERSION],
    )
    .unwrap();
    let read = StoredObject::decode(&v4).unwrap();
    assert_eq!(read.layout_seal, None);
    assert_eq!(read.open(record.bucket, &key).unwrap(), record);
}

#[test]
fn objects_of_format_5_are_multipart_when_their_etag_says_so() {
    #[derive(Serialize)]
    struct V5<'a> {
        key: &'a str,
        id: ObjectId,
        dek: &'a WrappedDek,
        meta: &'a SealedMeta,
        #[serde(with = "unix_millis")]
        last_modified: SystemTime,
        parts: &'a [StoredPart],
        customer_key_check: Option<CustomerKeyCheck>,
        layout_seal: Option<Vec<u8>>,
    }
    let dek = Dek::generate();
    let key = dek.value_key().unwrap();
    let mut single = record(&dek);
    single.meta.etag = "0f343b0931126a20f133d67c2b018a3b".into();
    for record in [multipart_record(&dek), single] {
        // A format 5 writer sealed the layout without the flag.
        let layout: Vec<_> = record
            .parts
            .iter()
            .map(|p| (p.part_number, p.size, &p.location, &p.nonce))
            .collect();
        let seal = key
            .seal(
                &layout_field(record.id, record.meta.size, &layout, None),
                b"",
            )
            .unwrap();
        let stored = StoredObject::seal(&record, &key).unwrap();
        let v5 = postcard::to_extend(
            &V5 {
                key: &stored.key,
                id: stored.id,
                dek: &stored.dek,
                meta: &stored.meta,
                last_modified: stored.last_modified,
                parts: &stored.parts,
                customer_key_check: stored.customer_key_check,
                layout_seal: Some(seal),
            },
            vec![LAYOUT_FORMAT_VERSION],
        )
        .unwrap();
        let read = StoredObject::decode(&v5).unwrap();
        assert_eq!(read.multipart, None);
        let opened = read.open(record.bucket, &key).unwrap();
        assert_eq!(opened.is_multipart(), record.multipart);
        assert_eq!(opened, record);
    }
}
