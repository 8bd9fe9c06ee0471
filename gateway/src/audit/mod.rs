//! The audit trail: one JSON line per S3 request and per admin action, hash-chained so that
//! any edit, deletion, reordering or truncation is detectable (`coffre audit verify`).
//!
//! Records are written by a dedicated thread, one fsync per batch of whatever queued up, so
//! no request waits on a disk sync. A request takes its place in the queue before it runs
//! ([`AuditLog::reserve`]), so the record of a request that ran is never dropped; requests
//! nobody authenticated are recorded up to a rate, then counted ([`admission`]). Every string
//! field is bounded ([`AuditRecord::bound`]). A failing audit disk is logged loudly and, by
//! default, makes the gateway refuse requests rather than serve them without evidence.

pub mod admission;
mod chain;
mod record;
mod verify;
mod writer;

pub use chain::{ChainHead, GENESIS};
pub use record::{truncate_on_char_boundary, AuditRecord};
pub use verify::{verify_files, VerifyReport};
pub use writer::{AuditConfig, AuditLog, AuditSlot, AuditStats, OnFailure};

#[cfg(test)]
mod tests;
