//! The audit trail: one JSON line per S3 request and per admin action, hash-chained so that
//! any edit, deletion, reordering or truncation is detectable (`coffre audit verify`).
//!
//! Records are written by a dedicated thread in batches with a bounded fsync delay, so no
//! request waits on a disk sync. A failing audit disk is logged loudly and, by default,
//! makes the gateway refuse requests rather than serve them without evidence.

mod chain;
mod record;
mod verify;
mod writer;

pub use chain::{ChainHead, GENESIS};
pub use record::AuditRecord;
pub use verify::{verify_files, VerifyReport};
pub use writer::{AuditConfig, AuditLog, OnFailure};

#[cfg(test)]
mod tests;
