//! The hash chain: each record carries the hash of the one before it, and its own hash
//! covers its content and that link.

use sha2::{Digest, Sha256};

/// The `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hash of a record line: SHA-256 over the previous hash and the record's JSON without its
/// `hash` field (`body`, which already contains `"prev"`).
pub fn link_hash(prev: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// Where the chain ends: written next to the log after every sync, so that deleting the
/// last records is detected too.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainHead {
    pub records: u64,
    pub hash: String,
}
