//! Per-byte costs of a PUT: every digest and checksum the gateway may compute over a body
//! (Content-MD5 and the ETag, `x-amz-content-sha256`, and the `x-amz-checksum-*` algorithms).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use md5::Digest as _;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

const SIZES: [(usize, &str); 2] = [(64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];

fn random_buffer(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    SmallRng::seed_from_u64(0x00c0_ffee).fill_bytes(&mut buf);
    buf
}

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("hashing");
    for (len, label) in SIZES {
        let buf = random_buffer(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("md5", label), &buf, |b, buf| {
            b.iter(|| md5::Md5::digest(black_box(buf)))
        });
        group.bench_with_input(BenchmarkId::new("sha256", label), &buf, |b, buf| {
            b.iter(|| sha2::Sha256::digest(black_box(buf)))
        });
        group.bench_with_input(BenchmarkId::new("crc32", label), &buf, |b, buf| {
            b.iter(|| crc32fast::hash(black_box(buf)))
        });
        group.bench_with_input(BenchmarkId::new("crc32c", label), &buf, |b, buf| {
            b.iter(|| crc32c::crc32c(black_box(buf)))
        });
        group.bench_with_input(BenchmarkId::new("crc64nvme", label), &buf, |b, buf| {
            b.iter(|| {
                let mut digest = crc64fast_nvme::Digest::new();
                digest.write(black_box(buf));
                digest.sum64()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
