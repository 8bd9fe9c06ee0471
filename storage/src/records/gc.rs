//! Entries of the `gc` key space: data files to remove, or being written.

use coffre_crypto::{ObjectId, TenantId};
use serde::{Deserialize, Serialize};

use super::Record;

/// A data file, wherever it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileLocation {
    pub tenant: TenantId,
    pub array: String,
    pub file: ObjectId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum GcState {
    /// Superseded or deleted: remove it.
    Queued,
    /// Being written by the process that booted with this id; if that process is gone,
    /// whatever it left (temp or final file) is an orphan.
    Pending { boot_id: [u8; 16] },
    /// An orphan the collector claimed: its writer can no longer commit it; the temp and
    /// final files are removed, then the entry. (Added after `Pending`: older entries
    /// decode as before.)
    Abandoned,
}

/// `gc` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GcEntry {
    pub location: FileLocation,
    pub state: GcState,
}

impl Record for GcEntry {
    const KIND: &'static str = "gc";
}
