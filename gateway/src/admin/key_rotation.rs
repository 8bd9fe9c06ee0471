//! Key rotation routes: rotate the root key, show the root key versions, rotate a tenant's
//! KEK (its DEKs are then rewrapped in the background by `crate::key_rotation`), and the
//! `encryption` part of the Tenant document that shows where that rewrap is.

use coffre_storage::{RewrapPhase, RootKeyStatus, RootRotation, RotationState, TenantRecord};
use http::StatusCode;

use super::error::AdminError;
use super::schema::{
    EncryptionDoc, KekDoc, RewrapPhaseDoc, RootKeyDoc, RootRotationDoc, RootVersionDoc,
    RotationDoc, RotationStateDoc,
};
use super::{blocking, rfc3339, tenants, AdminContext, JsonReply};

/// `POST /admin/v1/rotate-root`: runs to the end before answering.
pub async fn rotate_root(ctx: &AdminContext) -> Result<JsonReply, AdminError> {
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let rotation = store.rotate_root_key(admin)?;
        let doc = rotation_doc(&rotation, &store.root_key_status(admin)?);
        let audit = serde_json::json!({
            "root_version": doc.root_version,
            "retired_root_versions": doc.retired_root_versions,
            "keks_rewrapped": doc.keks_rewrapped,
        });
        Ok(JsonReply::ok(&doc)?.audited(audit))
    })
    .await
}

/// `GET /admin/v1/root-key`.
pub async fn show_root(ctx: &AdminContext) -> Result<JsonReply, AdminError> {
    let ctx = ctx.clone();
    blocking(move || {
        let status = ctx.store.root_key_status(&ctx.admin)?;
        JsonReply::ok(&root_key_doc(&status))
    })
    .await
}

/// `POST /admin/v1/tenants/{name}/rotate-key`: the new version is current when this
/// answers (202); the rewrap goes on in the background.
pub async fn rotate_tenant_key(ctx: &AdminContext, name: String) -> Result<JsonReply, AdminError> {
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let tenant = tenants::by_name(store, admin, &name)?;
        let rotated = store.rotate_tenant_key(admin, tenant.id)?;
        ctx.rotation.wake();
        let audit = serde_json::json!({ "kek_version": rotated.kek_version.get() });
        Ok(
            JsonReply::new(StatusCode::ACCEPTED, &tenants::doc(store, admin, rotated)?)?
                .audited(audit),
        )
    })
    .await
}

/// What the Tenant document shows of its keys.
pub(crate) fn encryption_doc(
    tenant: &TenantRecord,
    wraps: &[(coffre_crypto::KekVersion, u64)],
) -> EncryptionDoc {
    let mut keks: Vec<KekDoc> = tenant
        .keks
        .iter()
        .map(|k| KekDoc {
            version: k.kek_version.get(),
            root_version: k.root_version().map(|v| v.get()),
            dek_wraps: wraps
                .iter()
                .find(|(v, _)| *v == k.kek_version)
                .map_or(0, |(_, n)| *n),
        })
        .collect();
    keks.sort_by_key(|k| k.version);
    EncryptionDoc {
        kek_version: tenant.kek_version.get(),
        keks,
        rotation: tenant.rotation.as_ref().map(|r| {
            let (state, phase, finished, unreadable, retired) = match &r.state {
                RotationState::Rewrapping(cursor) => {
                    let (state, phase) = match cursor.phase {
                        RewrapPhase::Uploads => {
                            (RotationStateDoc::Rewrapping, Some(RewrapPhaseDoc::Uploads))
                        }
                        RewrapPhase::Objects => {
                            (RotationStateDoc::Rewrapping, Some(RewrapPhaseDoc::Objects))
                        }
                        RewrapPhase::Settling => (RotationStateDoc::Settling, None),
                        RewrapPhase::Blocked => (RotationStateDoc::Blocked, None),
                    };
                    (state, phase, None, cursor.pass_unreadable, Vec::new())
                }
                RotationState::Finished {
                    finished,
                    destroyed,
                    ..
                } => (
                    RotationStateDoc::Finished,
                    None,
                    Some(rfc3339(*finished)),
                    0,
                    destroyed.iter().map(|v| v.get()).collect(),
                ),
            };
            RotationDoc {
                kek_version: r.target.get(),
                state,
                phase,
                started: rfc3339(r.started),
                finished,
                passes: r.passes,
                deks_rewrapped: r.rewrapped,
                records_scanned: r.scanned,
                unreadable_deks: unreadable,
                retired_kek_versions: retired,
            }
        }),
    }
}

fn root_key_doc(status: &RootKeyStatus) -> RootKeyDoc {
    RootKeyDoc {
        provider: status.provider.to_owned(),
        current_version: status.current.get(),
        versions: status
            .versions
            .iter()
            .map(|v| RootVersionDoc {
                version: v.get(),
                keks: status.keks.get(v).copied().unwrap_or(0),
            })
            .collect(),
    }
}

fn rotation_doc(rotation: &RootRotation, status: &RootKeyStatus) -> RootRotationDoc {
    RootRotationDoc {
        root_version: rotation.root_version.get(),
        retired_root_versions: rotation.retired.iter().map(|v| v.get()).collect(),
        tenants_rewrapped: rotation.tenants,
        keks_rewrapped: rotation.keks,
        root_key: root_key_doc(status),
    }
}
