//! The garbage collector's schedule: superseded and orphaned data files are removed in the
//! background, off every request's path, after any interrupted tenant deletion is finished.

use std::sync::Arc;
use std::time::Duration;

use coffre_crypto::MaintenanceScope;
use coffre_storage::Store;
use tokio::sync::watch;

/// The lease one node at a time collects under.
const JOB: &str = "gc";

pub async fn run(
    store: Arc<Store>,
    interval: Duration,
    node: String,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // Another node holds the lease: it collects; this one looks again next time.
        let held = crate::cluster::lease(&store, JOB, &node).await;
        if let Some(lease) = &held {
            collect(&store, lease.clone()).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {
                crate::cluster::release(&store, held).await;
                return;
            }
        }
    }
}

async fn collect(store: &Arc<Store>, lease: coffre_storage::Lease) {
    let pass = store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let maint = MaintenanceScope::new("garbage-collection");
        // Tenant deletions a crash interrupted queue their files for this very pass.
        pass.resume_tenant_deletions(&maint, &lease)?;
        pass.collect_garbage(&maint, &lease)
    })
    .await;
    match result {
        Ok(Ok(stats)) if stats.files_removed > 0 => {
            tracing::info!(
                files = stats.files_removed,
                bytes = stats.bytes_removed,
                "garbage collected"
            );
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "garbage collection failed"),
        Err(e) => tracing::error!(error = %e, "garbage collection panicked"),
    }
}
