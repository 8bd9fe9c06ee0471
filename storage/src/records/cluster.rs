//! Entries of the `cluster` key space: the gateways sharing this metadata store, and the
//! leases under which one of them at a time does each background job.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{unix_millis, Record};

/// `cluster` value at `node/<name>`: a gateway, as its last heartbeat left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    /// Changes at every start: a data file intent of another boot id is an orphan once that
    /// boot's heartbeats stopped.
    pub boot_id: [u8; 16],
    /// Where its S3 listener is, as it reported it.
    pub address: String,
    pub version: String,
    #[serde(with = "unix_millis")]
    pub started: SystemTime,
    #[serde(with = "unix_millis")]
    pub heartbeat: SystemTime,
}

impl Record for NodeRecord {
    const KIND: &'static str = "node";
}

/// `cluster` value at `lease/<job>`: who does the job until when, and the fencing token
/// that its transactions check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub holder: String,
    pub holder_boot_id: [u8; 16],
    #[serde(with = "unix_millis")]
    pub expires: SystemTime,
    /// Grows by one each time the lease changes hands.
    pub token: u64,
}

impl Record for LeaseRecord {
    const KIND: &'static str = "lease";
}
