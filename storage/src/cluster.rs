//! Several gateways over one metadata store: who they are, which of them does each
//! background job, and how their caches learn that keys were destroyed elsewhere.
//!
//! - Each node writes its record (`node/<name>`: boot id, address, version, heartbeat)
//!   every few seconds. A node whose heartbeat is older than [`NODE_TIMEOUT`] is gone: the
//!   data file intents of its boot are orphans for the collector, never before.
//! - A background job (garbage collection, key rotation, resumed deletions) runs under a
//!   lease (`lease/<job>`): one holder at a time, until an expiry it renews, with a fencing
//!   token that grows each time the lease changes hands. The job's transactions check the
//!   token ([`Lease`] is only made by [`Store::acquire_lease`]), so a node that lost its
//!   lease while paused cannot commit work another node now owns. A dead holder's lease is
//!   taken over once it expires.
//! - Destroying keys (a tenant deleted, KEK versions retired, a root version retired) adds
//!   one to the key epoch (`epoch/keys`) in the same transaction. Every node polls it and
//!   drops its cached KEKs when it moves, so no node keeps a destroyed key in memory for
//!   longer than its poll interval.
//!
//! Times are the nodes' wall clocks: keep them synchronised (NTP), well within the lease.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::meta_store::{Cf, Durability, Tx};
use crate::records::{now, LeaseRecord, NodeRecord, Record};
use crate::store::{read, Store};

/// A node silent for this long is gone.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a lease lasts without renewal by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

const EPOCH_KEY: &[u8] = b"epoch/keys";

fn node_key(name: &str) -> Vec<u8> {
    [b"node/".as_slice(), name.as_bytes()].concat()
}

fn lease_key(job: &str) -> Vec<u8> {
    [b"lease/".as_slice(), job.as_bytes()].concat()
}

/// The right to do `job` for this node, as the lease's holder at `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    job: String,
    holder: String,
    boot_id: [u8; 16],
    token: u64,
}

impl Lease {
    pub fn job(&self) -> &str {
        &self.job
    }

    pub fn token(&self) -> u64 {
        self.token
    }

    /// Fails with `LeaseLost` unless the lease is still held under this token and has not
    /// expired; `tx` then depends on it, so a takeover committing first makes it run again
    /// (and fail here).
    pub(crate) fn check(&self, tx: &mut Tx<'_>) -> Result<()> {
        let held: Option<LeaseRecord> = read(tx, Cf::Cluster, &lease_key(&self.job))?;
        match held {
            Some(lease)
                if lease.token == self.token
                    && lease.holder == self.holder
                    && lease.holder_boot_id == self.boot_id
                    && lease.expires > SystemTime::now() =>
            {
                Ok(())
            }
            _ => Err(Error::LeaseLost(self.job.clone())),
        }
    }
}

/// What `coffre admin cluster status` shows of a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub job: String,
    pub holder: String,
    pub expires: SystemTime,
    pub token: u64,
}

impl Store {
    /// This process's boot id, as its node record and its data file intents carry it.
    pub fn boot_id(&self) -> [u8; 16] {
        self.shared.boot_id
    }

    /// Writes this node's record with a fresh heartbeat. A record of the same name with
    /// another boot id is the same node's previous life, replaced.
    pub fn heartbeat(&self, name: &str, address: &str, started: SystemTime) -> Result<()> {
        let record = NodeRecord {
            name: name.to_owned(),
            boot_id: self.shared.boot_id,
            address: address.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started,
            heartbeat: now(),
        };
        let value = record.encode()?;
        self.transact(Durability::Buffered, |tx| {
            tx.put(Cf::Cluster, node_key(name), value.clone());
            Ok(())
        })
    }

    /// Every node that ever wrote a heartbeat, by name.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.cluster_records(b"node/")
    }

    /// The boot ids of the nodes heard from within [`NODE_TIMEOUT`], this one included.
    pub(crate) fn live_boot_ids(&self) -> Result<HashSet<[u8; 16]>> {
        let cutoff = SystemTime::now()
            .checked_sub(NODE_TIMEOUT)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut live: HashSet<[u8; 16]> = self
            .nodes()?
            .into_iter()
            .filter(|n| n.heartbeat >= cutoff)
            .map(|n| n.boot_id)
            .collect();
        live.insert(self.shared.boot_id);
        Ok(live)
    }

    /// Every lease ever taken.
    pub fn leases(&self) -> Result<Vec<LeaseInfo>> {
        let prefix = b"lease/";
        let mut cursor = self
            .meta()
            .cursor(Cf::Cluster, crate::keys::prefix_end(prefix))?;
        cursor.seek(prefix);
        let mut leases = Vec::new();
        while let Some((key, value)) = cursor.next_entry()? {
            let Some(job) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let lease = LeaseRecord::decode(&value)?;
            leases.push(LeaseInfo {
                job: String::from_utf8_lossy(job).into_owned(),
                holder: lease.holder,
                expires: lease.expires,
                token: lease.token,
            });
        }
        Ok(leases)
    }

    /// Takes `job`'s lease for node `name` for `ttl`, or renews it if this node holds it;
    /// `None` while another node holds it and it has not expired. A lease held under this
    /// node's name by an earlier boot is taken over at once (node names are unique).
    pub fn acquire_lease(&self, job: &str, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        let key = lease_key(job);
        let boot_id = self.shared.boot_id;
        self.transact(Durability::Synced, |tx| {
            let held: Option<LeaseRecord> = read(tx, Cf::Cluster, &key)?;
            let now = now();
            let token = match &held {
                Some(lease) if lease.holder == name && lease.holder_boot_id == boot_id => {
                    lease.token
                }
                // Held by this node's previous life (node names are unique): it is gone.
                Some(lease) if lease.holder == name => lease.token + 1,
                Some(lease) if lease.expires > now => return Ok(None),
                Some(lease) => lease.token + 1,
                None => 1,
            };
            let record = LeaseRecord {
                holder: name.to_owned(),
                holder_boot_id: boot_id,
                expires: now + ttl,
                token,
            };
            tx.put(Cf::Cluster, key.clone(), record.encode()?);
            Ok(Some(Lease {
                job: job.to_owned(),
                holder: name.to_owned(),
                boot_id,
                token,
            }))
        })
    }

    /// Gives `lease` up (at shutdown), so another node need not wait for its expiry.
    pub fn release_lease(&self, lease: &Lease) -> Result<()> {
        let key = lease_key(&lease.job);
        self.transact(Durability::Synced, |tx| {
            if lease.check(tx).is_ok() {
                tx.delete(Cf::Cluster, key.clone());
            }
            Ok(())
        })
    }

    /// The key epoch: it moves whenever keys are destroyed anywhere in the cluster.
    pub fn key_epoch(&self) -> Result<u64> {
        Ok(self
            .meta()
            .get(Cf::Cluster, EPOCH_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Drops every cached KEK if the key epoch moved since `seen`; returns the epoch now.
    pub fn follow_key_epoch(&self, seen: u64) -> Result<u64> {
        let epoch = self.key_epoch()?;
        if epoch != seen {
            self.shared.keys.forget_all();
        }
        Ok(epoch)
    }

    fn cluster_records<R: Record>(&self, prefix: &[u8]) -> Result<Vec<R>> {
        let mut cursor = self
            .meta()
            .cursor(Cf::Cluster, crate::keys::prefix_end(prefix))?;
        cursor.seek(prefix);
        let mut found = Vec::new();
        while let Some((key, value)) = cursor.next_entry()? {
            if !key.starts_with(prefix) {
                break;
            }
            found.push(R::decode(&value)?);
        }
        Ok(found)
    }
}

/// The lease of background `job` for a unit test, as the only node.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) fn test_lease(store: &Store, job: &str) -> Lease {
    store
        .acquire_lease(job, "test-node", DEFAULT_LEASE)
        .unwrap()
        .expect("no other node holds the lease")
}

/// Moves the key epoch on, in the transaction that destroys keys.
pub(crate) fn advance_key_epoch(tx: &mut Tx<'_>) -> Result<()> {
    let epoch = tx
        .get(Cf::Cluster, EPOCH_KEY)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_be_bytes);
    tx.put(
        Cf::Cluster,
        EPOCH_KEY.to_vec(),
        (epoch + 1).to_be_bytes().to_vec(),
    );
    Ok(())
}
