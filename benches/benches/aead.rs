//! AES-256-GCM on 64 KiB segments: Coffre's segment API (`SegmentEncryptor`,
//! `SegmentDecryptor`) side by side with the raw call of the library it uses (aws-lc-rs) and
//! with the `aes-gcm` crate, the independent reference. Target: the segment API at
//! 2.5 GB/s or more per core and within 90% of the raw call.
//!
//! Run: `cargo bench -p coffre-benches --bench aead`.
//!
//! Both `open` variants first copy the stored segment into the working buffer (what reading
//! it from a file does), because opening in place consumes the ciphertext.

// Benchmark set-up may unwrap: a failure is a broken bench, not a request.
#![allow(clippy::unwrap_used)]

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use bytes::BytesMut;
use coffre_crypto::{
    Dek, EncryptionError, NoncePrefix, SegmentDecryptor, SegmentEncryptor, SEGMENT_LEN,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

fn random_buffer(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    SmallRng::seed_from_u64(0x00c0_ffee).fill_bytes(&mut buf);
    buf
}

fn aead(c: &mut Criterion) {
    let plain = random_buffer(SEGMENT_LEN);
    let key_bytes = random_buffer(32);
    let nonce = [7u8; 12];
    let mut group = c.benchmark_group("aead_64KiB");
    group.throughput(Throughput::Bytes(SEGMENT_LEN as u64));

    // Seal.
    let dek = Dek::generate();
    let prefix = NoncePrefix::random();
    let mut encryptor = SegmentEncryptor::new(dek.part_key(0).unwrap(), prefix);
    group.bench_function("seal/coffre_segment", |b| {
        // Steady state: each 64 KiB piece is sealed, and releases the previous segment.
        b.iter(|| {
            encryptor
                .update(black_box(plain.as_slice()), |sealed| {
                    black_box(sealed);
                    Ok::<_, EncryptionError>(())
                })
                .unwrap();
        })
    });
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).unwrap());
    let mut buf = plain.clone();
    group.bench_function("seal/aws_lc_rs_raw", |b| {
        b.iter(|| {
            let tag = raw
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    black_box(&mut buf),
                )
                .unwrap();
            let _tag = black_box(tag);
        })
    });
    let reference = aes_gcm::Aes256Gcm::new_from_slice(&key_bytes).unwrap();
    group.bench_function("seal/aes_gcm_raw", |b| {
        b.iter(|| {
            let tag = reference
                .encrypt_in_place_detached(&nonce.into(), b"", black_box(&mut buf))
                .unwrap();
            black_box(tag);
        })
    });

    // Open: segment 0 of a two-segment part (a full, non-last segment).
    let mut sealer = SegmentEncryptor::new(dek.part_key(0).unwrap(), prefix);
    let two_segments = [plain.as_slice(), plain.as_slice()].concat();
    let mut stored = Vec::new();
    sealer
        .update(&two_segments, |sealed| {
            stored.extend_from_slice(sealed);
            Ok::<_, EncryptionError>(())
        })
        .unwrap();
    let decryptor =
        SegmentDecryptor::new(dek.part_key(0).unwrap(), prefix, 2 * SEGMENT_LEN as u64).unwrap();
    let mut work = BytesMut::from(&stored[..]);
    group.bench_function("open/coffre_segment", |b| {
        b.iter(|| {
            work.copy_from_slice(&stored);
            let plain = decryptor.open_in_place(0, black_box(&mut work)).unwrap();
            black_box(plain.len());
        })
    });
    let mut raw_sealed = plain.clone();
    let tag = raw
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut raw_sealed,
        )
        .unwrap();
    raw_sealed.extend_from_slice(tag.as_ref());
    let mut raw_work = raw_sealed.clone();
    group.bench_function("open/aws_lc_rs_raw", |b| {
        b.iter(|| {
            raw_work.copy_from_slice(&raw_sealed);
            let plain = raw
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    black_box(&mut raw_work),
                )
                .unwrap();
            black_box(plain.len());
        })
    });
    let (ct, tag) = raw_sealed.split_at(SEGMENT_LEN);
    let mut ref_work = ct.to_vec();
    group.bench_function("open/aes_gcm_raw", |b| {
        b.iter(|| {
            ref_work.copy_from_slice(ct);
            reference
                .decrypt_in_place_detached(&nonce.into(), b"", black_box(&mut ref_work), tag.into())
                .unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, aead);
criterion_main!(benches);
