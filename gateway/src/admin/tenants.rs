//! Tenant routes: list, create, show, update, suspend, resume, delete. (Rotating a
//! tenant's KEK is in `key_rotation`.)

use coffre_crypto::AdminScope;
use coffre_storage::{Quotas, Store, TenantRecord, TenantSettings, TenantState, TenantUpdate};
use http::StatusCode;

use super::error::{AdminError, AdminErrorCode};
use super::key_rotation::encryption_doc;
use super::schema::{
    valid_tenant_name, CreateTenant, QuotasDoc, TenantDoc, TenantList, TenantStateDoc,
    UpdateTenant, UsageDoc,
};
use super::{blocking, parse_json, rfc3339, AdminContext, JsonReply};

/// The tenant named `name`, or `NoSuchTenant` (also for names that cannot exist).
pub(crate) fn by_name(
    store: &Store,
    admin: &AdminScope,
    name: &str,
) -> Result<TenantRecord, AdminError> {
    store
        .tenant_by_name(admin, name)?
        .filter(|t| t.state != TenantState::Deleting)
        .ok_or_else(|| {
            AdminError::new(
                AdminErrorCode::NoSuchTenant,
                format!("no tenant named '{name}'"),
            )
        })
}

pub(crate) fn doc(
    store: &Store,
    admin: &AdminScope,
    tenant: TenantRecord,
) -> Result<TenantDoc, AdminError> {
    let usage = store.tenant_usage(admin, tenant.id)?;
    let wraps = store.dek_wraps(admin, &tenant)?;
    let encryption = encryption_doc(&tenant, &wraps);
    Ok(TenantDoc {
        id: tenant.id.to_hex(),
        name: tenant.name,
        state: match tenant.state {
            TenantState::Suspended => TenantStateDoc::Suspended,
            _ => TenantStateDoc::Active,
        },
        created: rfc3339(tenant.created),
        placement: tenant.placement,
        quotas: QuotasDoc {
            bytes: tenant.quotas.bytes,
            objects: tenant.quotas.objects,
            uploads: tenant.quotas.uploads,
        },
        usage: UsageDoc {
            bytes: usage.bytes,
            objects: usage.objects,
            uploads: usage.uploads,
            buckets: usage.buckets,
        },
        encryption,
    })
}

pub async fn list(ctx: &AdminContext) -> Result<JsonReply, AdminError> {
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let tenants = store
            .list_tenants(admin)?
            .into_iter()
            .map(|t| doc(store, admin, t))
            .collect::<Result<Vec<_>, _>>()?;
        JsonReply::ok(&TenantList { tenants })
    })
    .await
}

pub async fn create(ctx: &AdminContext, body: &[u8]) -> Result<JsonReply, AdminError> {
    let request: CreateTenant = parse_json(body)?;
    if !valid_tenant_name(&request.name) {
        return Err(AdminError::new(
            AdminErrorCode::InvalidName,
            format!(
                "'{}' is not a valid tenant name: 3 to 63 lowercase letters, digits and \
                 hyphens, starting and ending with a letter or digit",
                request.name
            ),
        ));
    }
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let settings = TenantSettings {
            placement: request.placement,
            quotas: Quotas {
                bytes: request.quotas.bytes,
                objects: request.quotas.objects,
                uploads: request.quotas.uploads,
            },
        };
        let tenant = store.create_tenant(admin, &request.name, settings)?;
        JsonReply::new(StatusCode::CREATED, &doc(store, admin, tenant)?)
    })
    .await
}

pub async fn show(ctx: &AdminContext, name: String) -> Result<JsonReply, AdminError> {
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let tenant = by_name(store, admin, &name)?;
        JsonReply::ok(&doc(store, admin, tenant)?)
    })
    .await
}

pub async fn update(
    ctx: &AdminContext,
    name: String,
    body: &[u8],
) -> Result<JsonReply, AdminError> {
    let request: UpdateTenant = parse_json(body)?;
    let quotas = request.quotas.unwrap_or_default();
    let update = TenantUpdate {
        placement: request.placement,
        quota_bytes: quotas.bytes,
        quota_objects: quotas.objects,
        quota_uploads: quotas.uploads,
    };
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let tenant = by_name(store, admin, &name)?;
        let updated = store.update_tenant(admin, tenant.id, update)?;
        JsonReply::ok(&doc(store, admin, updated)?)
    })
    .await
}

pub async fn set_suspended(
    ctx: &AdminContext,
    name: String,
    suspended: bool,
) -> Result<JsonReply, AdminError> {
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let tenant = by_name(store, admin, &name)?;
        let changed = if suspended {
            store.suspend_tenant(admin, tenant.id)?
        } else {
            store.resume_tenant(admin, tenant.id)?
        };
        JsonReply::ok(&doc(store, admin, changed)?)
    })
    .await
}

pub async fn delete(
    ctx: &AdminContext,
    name: String,
    query: &str,
) -> Result<JsonReply, AdminError> {
    let force = parse_force(query)?;
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let tenant = by_name(store, admin, &name)?;
        store.delete_tenant(admin, tenant.id, force)?;
        Ok(JsonReply::no_content())
    })
    .await
}

/// `force=true|false` (or a bare `force`); any other parameter is an error.
fn parse_force(query: &str) -> Result<bool, AdminError> {
    let mut force = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        force = match pair {
            "force" | "force=true" | "force=1" => true,
            "force=false" | "force=0" => false,
            other => {
                return Err(AdminError::new(
                    AdminErrorCode::InvalidRequest,
                    format!("unknown query parameter '{other}': only force=true|false is accepted"),
                ))
            }
        };
    }
    Ok(force)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_parameter() {
        assert!(!parse_force("").unwrap_or(true));
        assert!(parse_force("force=true").unwrap_or(false));
        assert!(parse_force("force").unwrap_or(false));
        assert!(!parse_force("force=false").unwrap_or(true));
        assert!(parse_force("forse=true").is_err());
    }
}
