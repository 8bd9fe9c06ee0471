//! The key rotation schedule, in the background like garbage collection. At start it
//! finishes a root rotation that a crash interrupted. Then it carries out the rewrap of
//! every tenant KEK rotation: one bounded step per tenant in turn, paced by
//! `[key_rotation]`, woken by the admin API when a rotation begins, resumed from the
//! cursor in the tenant's record after a restart. Each retirement of KEK versions, and
//! each finished root rotation, is recorded in the audit trail.
//!
//! It also rotates the KEKs that wrapped `[key_rotation] max_dek_wraps` DEKs: the store
//! counts this node's wraps in memory and wakes the schedule as soon as a tenant may have
//! reached its limit (`Store::watch_dek_wraps`), which then checks the stored counts, even
//! in the middle of a long rewrap round. The check also runs when the schedule starts, when
//! a rotation ends, and at least every `IDLE_POLL` (which finds wraps made by other nodes).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coffre_crypto::{MaintenanceScope, TenantId};
use coffre_storage::{Lease, RewrapStep, RootRotation, Store};
use tokio::sync::{watch, Notify};

use crate::audit::{AuditLog, AuditRecord};
use crate::config::KeyRotationConfig;

/// How long to wait before retrying after a failed step (an HSM unreachable, ...).
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How often to look for work nobody announced.
const IDLE_POLL: Duration = Duration::from_secs(300);
const TASK: &str = "key-rotation";

/// Wakes the schedule when a rotation begins or a KEK nears its limit. Cheap to clone.
#[derive(Clone, Default, Debug)]
pub struct RotationWaker(Arc<Waker>);

#[derive(Default, Debug)]
struct Waker {
    notify: Notify,
    /// Set by `wake`, taken by a rewrap round between its steps.
    woken: AtomicBool,
}

impl RotationWaker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the schedule to look for work now (remembered if it is busy; a rewrap round
    /// under way stops after its current step so that the new work is seen).
    pub fn wake(&self) {
        self.0.woken.store(true, Ordering::Release);
        self.0.notify.notify_one();
    }

    /// Whether `wake` was called since the last time this was asked.
    fn take(&self) -> bool {
        self.0.woken.swap(false, Ordering::AcqRel)
    }
}

/// How soon to look at the stored DEK wrap counts again when a commit that wore a KEK may
/// not have landed when they were read (`Store::worn_kek_check_pending`).
const WORN_RECHECK: Duration = Duration::from_millis(250);

/// How long to wait before looking again while another node holds the lease.
const LEASE_POLL: Duration = Duration::from_secs(10);

pub async fn run(
    store: Arc<Store>,
    audit: AuditLog,
    config: KeyRotationConfig,
    waker: RotationWaker,
    node: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let hook = waker.clone();
    store.watch_dek_wraps(config.max_dek_wraps, move || hook.wake());
    let mut root_checked = false;
    loop {
        // Whatever woke the schedule is about to be looked at.
        waker.take();
        // One node at a time does the work, under the lease: the others wait for it.
        let held = crate::cluster::lease(&store, TASK, &node).await;
        let wait = match &held {
            None => Some(LEASE_POLL),
            Some(lease) => {
                if !root_checked {
                    finish_root_rotation(&store, &audit, lease).await;
                    root_checked = true;
                }
                rotate_worn_keks(&store, &audit, &config, lease).await;
                let wait =
                    rewrap_round(&store, &audit, &config, &node, &waker, &mut shutdown).await;
                match wait {
                    Some(wait) if store.worn_kek_check_pending() => Some(wait.min(WORN_RECHECK)),
                    wait => wait,
                }
            }
        };
        let Some(wait) = wait else {
            crate::cluster::release(&store, held).await;
            return;
        };
        tokio::select! {
            _ = waker.0.notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {
                crate::cluster::release(&store, held).await;
                return;
            }
        }
    }
}

async fn finish_root_rotation(store: &Arc<Store>, audit: &AuditLog, lease: &Lease) {
    let (pass, lease) = (store.clone(), lease.clone());
    let result = tokio::task::spawn_blocking(move || {
        pass.resume_root_rotation(&MaintenanceScope::new(TASK), &lease)
    })
    .await;
    match result {
        Ok(Ok(Some(rotation))) => {
            tracing::info!(
                root_version = %rotation.root_version,
                keks = rotation.keks,
                retired = ?rotation.retired.iter().map(|v| v.get()).collect::<Vec<_>>(),
                "interrupted root key rotation finished"
            );
            audit.record(root_record(&rotation));
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::error!(error = %e,
            "an interrupted root key rotation could not be finished; the older root versions are kept"),
        Err(e) => tracing::error!(error = %e, "root key rotation task panicked"),
    }
}

/// Steps every tenant with rewrap work, in turn, until none has any left now, or until the
/// schedule is woken (a new rotation, a KEK at its limit). Returns how long to sleep before
/// the next round (`None`: shutting down; zero: at once, as the round was cut short or a
/// rotation ended, after which the worn KEKs are looked for again).
async fn rewrap_round(
    store: &Arc<Store>,
    audit: &AuditLog,
    config: &KeyRotationConfig,
    node: &str,
    waker: &RotationWaker,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Duration> {
    let list = store.clone();
    let mut turn: VecDeque<TenantId> = match tokio::task::spawn_blocking(move || {
        list.tenants_rewrapping(&MaintenanceScope::new(TASK))
    })
    .await
    {
        Ok(Ok(tenants)) => tenants.into(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "listing the tenants with a KEK rotation failed");
            return Some(RETRY_AFTER);
        }
        Err(e) => {
            tracing::error!(error = %e, "key rotation task panicked");
            return Some(RETRY_AFTER);
        }
    };
    let settings = config.rewrap();
    let mut next = IDLE_POLL;
    let mut stepped = false;
    while let Some(tenant) = turn.pop_front() {
        if *shutdown.borrow() {
            return None;
        }
        // After one step at least, so that every round makes progress.
        if stepped && waker.take() {
            // The cursors are in the tenant records: the next round resumes them.
            return Some(Duration::ZERO);
        }
        stepped = true;
        // Renewed at every step: a long round keeps its lease.
        let Some(held) = crate::cluster::lease(store, TASK, node).await else {
            return Some(LEASE_POLL);
        };
        let step = store.clone();
        let result = tokio::task::spawn_blocking(move || {
            step.rewrap_step(&MaintenanceScope::new(TASK), tenant, &settings, &held)
        })
        .await;
        match result {
            Ok(Ok(RewrapStep::Progress)) => {
                turn.push_back(tenant);
                if !config.pause.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(config.pause) => {}
                        _ = shutdown.changed() => return None,
                    }
                }
            }
            // A little past the grace period, so that the next step finds it over.
            Ok(Ok(RewrapStep::Wait(wait))) => {
                next = next.min(wait + Duration::from_millis(50));
            }
            Ok(Ok(RewrapStep::Finished {
                kek_version,
                retired,
                rewrapped,
            })) => {
                tracing::info!(
                    tenant = %tenant,
                    kek_version = %kek_version,
                    rewrapped,
                    retired = ?retired.iter().map(|v| v.get()).collect::<Vec<_>>(),
                    "KEK rotation finished; older versions destroyed"
                );
                // Writes made during the rewrap may have worn the new version already.
                next = Duration::ZERO;
                audit.record(AuditRecord {
                    time: AuditRecord::now(),
                    kind: "admin",
                    tenant: Some(tenant.to_hex()),
                    operation: "RetireKekVersions".to_owned(),
                    status: 200,
                    change: Some(serde_json::json!({
                        "task": TASK,
                        "kek_version": kek_version.get(),
                        "destroyed_kek_versions": retired.iter().map(|v| v.get()).collect::<Vec<_>>(),
                        "deks_rewrapped": rewrapped,
                    })),
                    ..AuditRecord::default()
                });
            }
            Ok(Ok(RewrapStep::Blocked { unreadable })) => {
                tracing::error!(
                    tenant = %tenant,
                    unreadable,
                    "KEK rotation blocked: DEKs under older KEK versions do not open; those \
                     versions are kept (see `coffre admin tenant show`)"
                );
                audit.record(AuditRecord {
                    time: AuditRecord::now(),
                    kind: "admin",
                    tenant: Some(tenant.to_hex()),
                    operation: "RetireKekVersions".to_owned(),
                    status: 500,
                    change: Some(serde_json::json!({
                        "task": TASK,
                        "blocked": true,
                        "unreadable_deks": unreadable,
                    })),
                    ..AuditRecord::default()
                });
            }
            Ok(Ok(RewrapStep::Idle)) => {}
            Ok(Err(e)) => {
                tracing::error!(tenant = %tenant, error = %e, "KEK rewrap step failed; will retry");
                next = next.min(RETRY_AFTER);
            }
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "KEK rewrap step panicked");
                next = next.min(RETRY_AFTER);
            }
        }
    }
    Some(next)
}

/// Rotates the KEKs whose current version wrapped `[key_rotation] max_dek_wraps` DEKs (as
/// `Store::rotate_worn_keks` rules); each rotation is audited like an operator's and its
/// rewrap follows in this round.
async fn rotate_worn_keks(
    store: &Arc<Store>,
    audit: &AuditLog,
    config: &KeyRotationConfig,
    lease: &Lease,
) {
    let (pass, lease, limit) = (store.clone(), lease.clone(), config.max_dek_wraps);
    let result = tokio::task::spawn_blocking(move || {
        pass.rotate_worn_keks(&MaintenanceScope::new(TASK), &lease, limit)
    })
    .await;
    match result {
        Ok(Ok(rotated)) => {
            for (tenant, version) in rotated {
                audit.record(AuditRecord {
                    time: AuditRecord::now(),
                    kind: "admin",
                    operation: "RotateTenantKey".to_owned(),
                    status: 200,
                    change: Some(serde_json::json!({
                        "task": TASK,
                        "tenant": tenant.to_hex(),
                        "kek_version": version.get(),
                        "reason": "max_dek_wraps",
                        "max_dek_wraps": limit,
                    })),
                    ..AuditRecord::default()
                });
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "rotating worn KEKs failed"),
        Err(e) => tracing::error!(error = %e, "rotating worn KEKs panicked"),
    }
}

/// The audit record of a root rotation finished in the background.
fn root_record(rotation: &RootRotation) -> AuditRecord {
    AuditRecord {
        time: AuditRecord::now(),
        kind: "admin",
        operation: "FinishRootRotation".to_owned(),
        status: 200,
        change: Some(serde_json::json!({
            "task": TASK,
            "root_version": rotation.root_version.get(),
            "retired_root_versions": rotation.retired.iter().map(|v| v.get()).collect::<Vec<_>>(),
            "keks_rewrapped": rotation.keks,
        })),
        ..AuditRecord::default()
    }
}
