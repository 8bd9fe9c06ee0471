//! This gateway as one node of a cluster sharing a metadata store: its heartbeat, the key
//! epoch it follows (to drop cached KEKs destroyed through another node), and the leases
//! under which it runs background jobs. On a single RocksDB node the same protocol runs,
//! with one participant.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use coffre_storage::{Lease, Store, DEFAULT_LEASE};
use tokio::sync::watch;

/// How often a node writes its heartbeat and looks at the key epoch: the bound on how long
/// a KEK destroyed through another node stays cached here.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Who this node is, for its heartbeat and its leases.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub name: String,
    /// The S3 listener's address, as other nodes and operators see it.
    pub address: String,
    pub started: SystemTime,
}

/// Writes the heartbeat and follows the key epoch until shutdown.
pub async fn run(store: Arc<Store>, node: NodeIdentity, mut shutdown: watch::Receiver<bool>) {
    let mut seen_epoch = None;
    loop {
        let (beat, identity) = (store.clone(), node.clone());
        let result = tokio::task::spawn_blocking(move || {
            beat.heartbeat(&identity.name, &identity.address, identity.started)?;
            let epoch = match seen_epoch {
                Some(seen) => beat.follow_key_epoch(seen)?,
                None => beat.key_epoch()?,
            };
            Ok::<_, coffre_storage::Error>(epoch)
        })
        .await;
        match result {
            Ok(Ok(epoch)) => seen_epoch = Some(epoch),
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster heartbeat failed"),
            Err(e) => tracing::error!(error = %e, "cluster heartbeat panicked"),
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Gives `lease` up at shutdown, so that another node need not wait for its expiry.
pub async fn release(store: &Arc<Store>, lease: Option<Lease>) {
    let Some(lease) = lease else { return };
    let store = store.clone();
    let released = tokio::task::spawn_blocking(move || store.release_lease(&lease)).await;
    if !matches!(released, Ok(Ok(()))) {
        tracing::warn!("a lease could not be given up at shutdown; it expires by itself");
    }
}

/// Takes or renews `job`'s lease for this node; `None` while another node holds it (or the
/// store cannot be reached, which is logged).
pub async fn lease(store: &Arc<Store>, job: &'static str, node: &str) -> Option<Lease> {
    let (store, node) = (store.clone(), node.to_owned());
    match tokio::task::spawn_blocking(move || store.acquire_lease(job, &node, DEFAULT_LEASE)).await
    {
        Ok(Ok(lease)) => lease,
        Ok(Err(e)) => {
            tracing::warn!(job, error = %e, "cannot take the background job's lease");
            None
        }
        Err(e) => {
            tracing::error!(job, error = %e, "lease task panicked");
            None
        }
    }
}
