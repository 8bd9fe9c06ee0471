//! `GET /admin/v1/cluster`: the gateways sharing the metadata store, as their heartbeats
//! left them, and the holder of each background job's lease.

use std::time::SystemTime;

use coffre_storage::NODE_TIMEOUT;

use super::error::AdminError;
use super::schema::{ClusterDoc, LeaseDoc, NodeDoc};
use super::{blocking, rfc3339, AdminContext, JsonReply};

pub async fn show(ctx: &AdminContext) -> Result<JsonReply, AdminError> {
    let ctx = ctx.clone();
    blocking(move || {
        let cutoff = SystemTime::now()
            .checked_sub(NODE_TIMEOUT)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let nodes = ctx
            .store
            .nodes()?
            .into_iter()
            .map(|n| NodeDoc {
                live: n.heartbeat >= cutoff,
                name: n.name,
                address: n.address,
                version: n.version,
                started: rfc3339(n.started),
                last_heartbeat: rfc3339(n.heartbeat),
            })
            .collect();
        let leases = ctx
            .store
            .leases()?
            .into_iter()
            .map(|l| LeaseDoc {
                job: l.job,
                holder: l.holder,
                expires: rfc3339(l.expires),
                token: l.token,
            })
            .collect();
        JsonReply::ok(&ClusterDoc { nodes, leases })
    })
    .await
}
