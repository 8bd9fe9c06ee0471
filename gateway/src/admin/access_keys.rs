//! Access key routes: list, create (the only answer that carries the secret), disable,
//! enable, delete.

use coffre_crypto::AccessKeyId;
use coffre_storage::{AccessKeyInfo, AccessKeyState};
use http::StatusCode;

use super::error::{AdminError, AdminErrorCode};
use super::schema::{CreateKey, KeyDoc, KeyList, KeyStateDoc};
use super::tenants::by_name;
use super::{blocking, parse_json, rfc3339, AdminContext, JsonReply};
use crate::s3::handlers::buckets::validate_bucket_name;

fn doc(info: AccessKeyInfo, tenant: &str) -> KeyDoc {
    KeyDoc {
        access_key_id: info.id.to_string(),
        tenant: tenant.to_owned(),
        role: info.role.into(),
        buckets: info.buckets,
        state: match info.state {
            AccessKeyState::Active => KeyStateDoc::Active,
            AccessKeyState::Disabled => KeyStateDoc::Disabled,
        },
        created: rfc3339(info.created),
        secret_access_key: None,
    }
}

fn no_such_key(id: &str) -> AdminError {
    AdminError::new(
        AdminErrorCode::NoSuchAccessKey,
        format!("no access key '{id}'"),
    )
}

/// An id that cannot exist is simply not found.
fn parse_id(id: &str) -> Result<AccessKeyId, AdminError> {
    AccessKeyId::parse(id).map_err(|_| no_such_key(id))
}

pub async fn list(ctx: &AdminContext, tenant: String) -> Result<JsonReply, AdminError> {
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let record = by_name(store, admin, &tenant)?;
        let keys = store
            .list_access_keys(admin, record.id)?
            .into_iter()
            .map(|info| doc(info, &record.name))
            .collect();
        JsonReply::ok(&KeyList { keys })
    })
    .await
}

pub async fn create(
    ctx: &AdminContext,
    tenant: String,
    body: &[u8],
) -> Result<JsonReply, AdminError> {
    let request: CreateKey = parse_json(body)?;
    if let Some(buckets) = &request.buckets {
        if buckets.is_empty() {
            return Err(AdminError::new(
                AdminErrorCode::InvalidRequest,
                "buckets must name at least one bucket; leave it out for all buckets",
            ));
        }
        if let Some(bad) = buckets.iter().find(|b| validate_bucket_name(b).is_err()) {
            return Err(AdminError::new(
                AdminErrorCode::InvalidName,
                format!("'{bad}' is not a valid bucket name"),
            ));
        }
    }
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let record = by_name(store, admin, &tenant)?;
        let (id, secret) =
            store.create_access_key(admin, record.id, request.role.into(), request.buckets)?;
        let info = store.access_key(admin, &id)?;
        let mut created = doc(info, &record.name);
        created.secret_access_key = Some(secret.expose().to_owned());
        JsonReply::new(StatusCode::CREATED, &created)
    })
    .await
}

pub async fn set_enabled(
    ctx: &AdminContext,
    id: String,
    enabled: bool,
) -> Result<JsonReply, AdminError> {
    let key = parse_id(&id)?;
    let ctx = ctx.clone();
    blocking(move || {
        let (store, admin) = (&*ctx.store, &*ctx.admin);
        let state = if enabled {
            AccessKeyState::Active
        } else {
            AccessKeyState::Disabled
        };
        let info = store
            .set_access_key_state(admin, &key, state)
            .map_err(|e| key_error(e, &id))?;
        let tenant = store.tenant(admin, info.tenant)?;
        JsonReply::ok(&doc(info, &tenant.name))
    })
    .await
}

pub async fn delete(ctx: &AdminContext, id: String) -> Result<JsonReply, AdminError> {
    let key = parse_id(&id)?;
    let ctx = ctx.clone();
    blocking(move || {
        ctx.store
            .delete_access_key(&ctx.admin, &key)
            .map_err(|e| key_error(e, &id))?;
        Ok(JsonReply::no_content())
    })
    .await
}

fn key_error(e: coffre_storage::Error, id: &str) -> AdminError {
    match e {
        coffre_storage::Error::NoSuchAccessKey => no_such_key(id),
        other => other.into(),
    }
}
