//! The data format against an independent implementation (`aes-gcm` + `hkdf`), and every
//! manipulation of stored segments that must fail.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use bytes::BytesMut;
use proptest::prelude::*;
use sha2::Sha256;

use super::*;
use crate::{Dek, EncryptionError};

const SIZES: [usize; 12] = [
    0,
    1,
    16,
    SEGMENT_LEN - 1,
    SEGMENT_LEN,
    SEGMENT_LEN + 1,
    2 * SEGMENT_LEN - 1,
    2 * SEGMENT_LEN,
    2 * SEGMENT_LEN + 1,
    3 * SEGMENT_LEN + 17,
    4 * SEGMENT_LEN,
    5 * SEGMENT_LEN - 3,
];

fn plaintext(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Seals `data` fed in pieces of `piece` bytes (the last piece may be shorter).
fn seal(dek: &Dek, part: u32, prefix: NoncePrefix, data: &[u8], piece: usize) -> Vec<u8> {
    seal_pieces(dek, part, prefix, data, &[piece])
}

/// Seals `data` fed in pieces of the sizes given, cycled.
fn seal_pieces(
    dek: &Dek,
    part: u32,
    prefix: NoncePrefix,
    mut data: &[u8],
    pieces: &[usize],
) -> Vec<u8> {
    let mut encryptor = SegmentEncryptor::new(dek.part_key(part).unwrap(), prefix);
    let mut stored = Vec::new();
    let total = data.len();
    let mut chunks = Vec::new();
    for size in pieces.iter().cycle() {
        if data.is_empty() {
            break;
        }
        let (chunk, rest) = data.split_at((*size).clamp(1, data.len()));
        chunks.push(chunk);
        data = rest;
    }
    for chunk in chunks {
        encryptor
            .update(chunk, |sealed| {
                assert_eq!(sealed.len(), SEALED_SEGMENT_LEN);
                stored.extend_from_slice(sealed);
                Ok::<_, EncryptionError>(())
            })
            .unwrap();
    }
    stored.extend_from_slice(encryptor.finish().unwrap());
    assert_eq!(encryptor.plain_len(), total as u64);
    stored
}

/// Opens a whole stored part the way a reader does: segment by segment at the offsets the
/// metadata length gives, checking the stored length.
fn open_all(
    dek: &Dek,
    part: u32,
    prefix: NoncePrefix,
    plain_len: u64,
    stored: &[u8],
) -> Result<Vec<u8>, EncryptionError> {
    let decryptor = SegmentDecryptor::new(dek.part_key(part)?, prefix, plain_len)?;
    if stored.len() as u64 != sealed_len(plain_len) {
        return Err(EncryptionError::Integrity("stored length"));
    }
    let mut plain = Vec::new();
    for index in 0..decryptor.segment_count() as u32 {
        let start = stored_offset(index) as usize;
        let end = (start + sealed_segment_len(plain_len, index).unwrap()).min(stored.len());
        let segment = BytesMut::from(&stored[start.min(end)..end]);
        plain.extend_from_slice(&decryptor.open(index, segment)?);
    }
    Ok(plain)
}

fn reference_cipher(dek: &Dek, part: u32) -> Aes256Gcm {
    let mut key = [0u8; 32];
    let info = [b"coffre/v1/part-key".as_slice(), &part.to_be_bytes()].concat();
    hkdf::Hkdf::<Sha256>::new(None, dek.secret_bytes())
        .expand(&info, &mut key)
        .unwrap();
    Aes256Gcm::new_from_slice(&key).unwrap()
}

fn reference_nonce(prefix: NoncePrefix, index: u32, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..7].copy_from_slice(prefix.as_bytes());
    nonce[7..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

fn reference_seal(dek: &Dek, part: u32, prefix: NoncePrefix, data: &[u8]) -> Vec<u8> {
    let cipher = reference_cipher(dek, part);
    let segments: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(SEGMENT_LEN).collect()
    };
    let count = segments.len();
    let mut stored = Vec::new();
    for (index, segment) in segments.into_iter().enumerate() {
        let nonce = reference_nonce(prefix, index as u32, index + 1 == count);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: segment,
                    aad: b"",
                },
            )
            .unwrap();
        stored.extend_from_slice(&sealed);
    }
    stored
}

fn reference_open(
    dek: &Dek,
    part: u32,
    prefix: NoncePrefix,
    plain_len: u64,
    stored: &[u8],
) -> Vec<u8> {
    let cipher = reference_cipher(dek, part);
    let count = segment_count(plain_len) as usize;
    let mut plain = Vec::new();
    for (index, sealed) in stored.chunks(SEALED_SEGMENT_LEN).enumerate() {
        let nonce = reference_nonce(prefix, index as u32, index + 1 == count);
        let opened = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: sealed,
                    aad: b"",
                },
            )
            .unwrap();
        plain.extend_from_slice(&opened);
    }
    plain
}

#[test]
fn round_trip_at_every_boundary_size_matching_the_reference() {
    let dek = Dek::generate();
    let prefix = NoncePrefix::random();
    for len in SIZES {
        let data = plaintext(len, 7);
        for piece in [
            1000,
            16 * 1024,
            SEGMENT_LEN - 1,
            SEGMENT_LEN,
            SEGMENT_LEN + 1,
            1 << 20,
        ] {
            let stored = seal(&dek, 3, prefix, &data, piece);
            assert_eq!(stored.len() as u64, sealed_len(len as u64), "len {len}");
            assert_eq!(stored, reference_seal(&dek, 3, prefix, &data), "len {len}");
            assert_eq!(
                open_all(&dek, 3, prefix, len as u64, &stored).unwrap(),
                data
            );
        }
    }
}

#[test]
fn an_empty_part_is_one_empty_last_segment() {
    let dek = Dek::generate();
    let prefix = NoncePrefix::random();
    let stored = seal(&dek, 0, prefix, &[], 1);
    assert_eq!(stored.len(), TAG_LEN);
    assert_eq!(segment_count(0), 1);
    assert!(open_all(&dek, 0, prefix, 0, &stored).unwrap().is_empty());
    assert!(segments_for_range(0, 0..1).is_none());
}

#[test]
fn finish_twice_or_update_after_finish_fails() {
    let dek = Dek::generate();
    let mut encryptor = SegmentEncryptor::new(dek.part_key(0).unwrap(), NoncePrefix::random());
    encryptor.finish().unwrap();
    assert!(matches!(encryptor.finish(), Err(EncryptionError::Finished)));
    assert!(matches!(
        encryptor.update(b"x", |_| Ok::<_, EncryptionError>(())),
        Err(EncryptionError::Finished)
    ));
}

#[test]
fn a_failed_sink_ends_the_part() {
    let dek = Dek::generate();
    let mut encryptor = SegmentEncryptor::new(dek.part_key(0).unwrap(), NoncePrefix::random());
    let data = plaintext(3 * SEGMENT_LEN, 0);
    let failed = encryptor.update(&data, |_| Err(EncryptionError::Refused("disk full")));
    assert!(matches!(failed, Err(EncryptionError::Refused("disk full"))));
    assert!(matches!(encryptor.finish(), Err(EncryptionError::Finished)));
}

#[test]
fn layout_arithmetic() {
    assert_eq!(stored_offset(3), 3 * 65552);
    assert_eq!(sealed_len(0), 16);
    assert_eq!(sealed_len(65536), 65552);
    assert_eq!(sealed_len(65537), 65537 + 32);
    assert_eq!(sealed_segment_len(65537, 1), Some(17));
    assert_eq!(sealed_segment_len(65537, 2), None);
    let span = segments_for_range(300_000, 65_535..65_537).unwrap();
    assert_eq!(
        (span.first, span.last, span.skip, span.len),
        (0, 1, 65_535, 2)
    );
    assert_eq!(span.stored, 0..2 * 65_552);
    let tail = segments_for_range(300_000, 299_999..300_000).unwrap();
    assert_eq!(tail.stored.end, sealed_len(300_000));
    assert!(segments_for_range(10, 5..11).is_none());
    assert!(segments_for_range(10, 5..5).is_none());
    assert!(crate::aead::layout::check_part_len((1 << 48) + 1).is_err());
    assert!(crate::aead::layout::check_part_len(1 << 48).is_ok());
}

/// Stored bytes of a random plaintext, sealed once per test case.
fn sealed_case(len: usize) -> (Dek, NoncePrefix, Vec<u8>, Vec<u8>) {
    let dek = Dek::generate();
    let prefix = NoncePrefix::random();
    let data = plaintext(len, len as u8);
    let stored = seal(&dek, 1, prefix, &data, 4096);
    (dek, prefix, data, stored)
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        0..(4 * SEGMENT_LEN + 100),
        prop::sample::select(SIZES.to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn each_implementation_opens_what_the_other_sealed(
        len in len_strategy(),
        pieces in prop::collection::vec(1usize..150_000, 1..6),
    ) {
        let dek = Dek::generate();
        let prefix = NoncePrefix::random();
        let data = plaintext(len, 1);
        let ours = seal_pieces(&dek, 9, prefix, &data, &pieces);
        prop_assert_eq!(reference_open(&dek, 9, prefix, len as u64, &ours), data.clone());
        let theirs = reference_seal(&dek, 9, prefix, &data);
        prop_assert_eq!(open_all(&dek, 9, prefix, len as u64, &theirs).unwrap(), data);
    }

    #[test]
    fn any_bit_flip_fails(len in len_strategy(), position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (dek, prefix, _, mut stored) = sealed_case(len);
        let at = position.index(stored.len());
        stored[at] ^= 1 << bit;
        prop_assert!(open_all(&dek, 1, prefix, len as u64, &stored).is_err());
    }

    #[test]
    fn any_truncation_fails(len in len_strategy(), cut in any::<prop::sample::Index>()) {
        let (dek, prefix, _, stored) = sealed_case(len);
        let kept = cut.index(stored.len());
        let truncated = &stored[..kept];
        // With the true length from metadata...
        prop_assert!(open_all(&dek, 1, prefix, len as u64, truncated).is_err());
        // ...and with metadata forged to match the truncated file.
        let whole_segments = (kept / SEALED_SEGMENT_LEN) as u64;
        let rest = (kept % SEALED_SEGMENT_LEN).saturating_sub(TAG_LEN) as u64;
        let forged = whole_segments * SEGMENT_LEN as u64 + rest;
        if sealed_len(forged) == kept as u64 {
            prop_assert!(open_all(&dek, 1, prefix, forged, truncated).is_err());
        }
    }

    #[test]
    fn reordering_or_duplicating_segments_fails(
        segments in 2usize..6,
        tail in 0usize..SEGMENT_LEN,
        pick in any::<(prop::sample::Index, prop::sample::Index)>(),
    ) {
        let len = (segments - 1) * SEGMENT_LEN + tail;
        let (dek, prefix, _, stored) = sealed_case(len);
        let count = segment_count(len as u64) as usize;
        let full = if tail == 0 { count } else { count - 1 };
        prop_assume!(full >= 2);
        let (i, j) = (pick.0.index(full), pick.1.index(full));
        prop_assume!(i != j);
        let segment = |k: usize| &stored[k * SEALED_SEGMENT_LEN..(k + 1) * SEALED_SEGMENT_LEN];
        let mut swapped = stored.clone();
        swapped[i * SEALED_SEGMENT_LEN..(i + 1) * SEALED_SEGMENT_LEN].copy_from_slice(segment(j));
        swapped[j * SEALED_SEGMENT_LEN..(j + 1) * SEALED_SEGMENT_LEN].copy_from_slice(segment(i));
        prop_assert!(open_all(&dek, 1, prefix, len as u64, &swapped).is_err());
        let mut duplicated = stored.clone();
        duplicated[j * SEALED_SEGMENT_LEN..(j + 1) * SEALED_SEGMENT_LEN].copy_from_slice(segment(i));
        prop_assert!(open_all(&dek, 1, prefix, len as u64, &duplicated).is_err());
    }

    #[test]
    fn splicing_between_objects_parts_or_tenants_fails(len in 1usize..(3 * SEGMENT_LEN), which in any::<prop::sample::Index>()) {
        // Two objects (of one tenant or of two: each has its own random DEK) of equal length.
        let (dek_a, prefix_a, _, stored_a) = sealed_case(len);
        let (dek_b, prefix_b, _, stored_b) = sealed_case(len);
        prop_assert!(open_all(&dek_a, 1, prefix_a, len as u64, &stored_b).is_err());
        let count = segment_count(len as u64) as u32;
        let index = which.index(count as usize) as u32;
        let start = stored_offset(index) as usize;
        let end = start + sealed_segment_len(len as u64, index).unwrap();
        let mut spliced = stored_a.clone();
        spliced[start..end].copy_from_slice(&stored_b[start..end]);
        prop_assert!(open_all(&dek_a, 1, prefix_a, len as u64, &spliced).is_err());
        // Same object, another part: another key.
        let part_2 = seal(&dek_a, 2, prefix_a, &plaintext(len, 0), 4096);
        prop_assert!(open_all(&dek_a, 1, prefix_a, len as u64, &part_2).is_err());
        // Same key, another nonce prefix.
        prop_assert!(open_all(&dek_a, 1, prefix_b, len as u64, &stored_a).is_err());
        let _ = dek_b;
    }

    #[test]
    fn a_range_decrypt_equals_slicing_a_full_decrypt(
        len in 1usize..(4 * SEGMENT_LEN + 100),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
    ) {
        let (dek, prefix, data, stored) = sealed_case(len);
        let (x, y) = (a.index(len), b.index(len));
        let range = x.min(y) as u64..(x.max(y) + 1) as u64;
        let span = segments_for_range(len as u64, range.clone()).unwrap();
        let decryptor = SegmentDecryptor::new(dek.part_key(1).unwrap(), prefix, len as u64).unwrap();
        let mut out = Vec::new();
        let mut offset = span.stored.start as usize;
        for index in span.first..=span.last {
            let sealed_len = sealed_segment_len(len as u64, index).unwrap();
            prop_assert_eq!(offset as u64, stored_offset(index));
            let segment = BytesMut::from(&stored[offset..offset + sealed_len]);
            out.extend_from_slice(&decryptor.open(index, segment).unwrap());
            offset += sealed_len;
        }
        prop_assert_eq!(offset as u64, span.stored.end);
        let got = &out[span.skip..span.skip + span.len as usize];
        prop_assert_eq!(got, &data[range.start as usize..range.end as usize]);
    }
}
