//! Coffre's benchmarks. Criterion micro-benchmarks live in `benches/`; this library is the
//! loopback load generator behind the `loadgen` binary: it drives any S3 endpoint on the local
//! machine with SigV4-signed requests and reports throughput and latency, bounded by a request
//! count and a deadline so that every run stops by itself.

pub mod byte_size;
pub mod endpoint;
pub mod list_response;
pub mod payload;
pub mod phase;
pub mod report;
pub mod s3_client;
pub mod scenario;
pub mod signer;
