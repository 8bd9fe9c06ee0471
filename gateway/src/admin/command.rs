//! `coffre admin ...`: each subcommand is one admin API call, printed as text or, with
//! `--json`, as the API's JSON document.

use std::fmt::Write as _;

use http::Method;
use serde::{de::DeserializeOwned, Serialize};

use super::byte_size::format_size;
use super::client::{AdminClient, ClientError, ClientTls};
use super::schema::{
    ClusterDoc, CreateKey, CreateTenant, EncryptionDoc, KeyDoc, KeyList, QuotasDoc, QuotasUpdate,
    RoleDoc, RootKeyDoc, RootRotationDoc, TenantDoc, TenantList, UpdateTenant,
};
use crate::cli::{AdminArgs, AdminCommand, ClusterCommand, KeyCommand, KeyRole, TenantCommand};

/// Runs one admin command; the error is ready to print.
pub async fn run(args: AdminArgs) -> Result<(), ClientError> {
    let tls = ClientTls {
        ca_file: args.ca_file,
        cert_file: args.client_cert,
        key_file: args.client_key,
    };
    let client = AdminClient::with_tls(&args.endpoint, &args.token_file, &tls)?;
    let out = Output { json: args.json };
    match args.command {
        AdminCommand::Tenant(command) => tenant(&client, &out, command).await,
        AdminCommand::Key(command) => key(&client, &out, command).await,
        AdminCommand::RotateRoot => {
            let rotation: RootRotationDoc = expect_body(
                client
                    .call(Method::POST, "/admin/v1/rotate-root", None::<&()>)
                    .await?,
            )?;
            out.print(&rotation, root_rotation_text);
            Ok(())
        }
        AdminCommand::RootKey => {
            let root: RootKeyDoc = get(&client, "/admin/v1/root-key").await?;
            out.print(&root, root_key_text);
            Ok(())
        }
        AdminCommand::Cluster(ClusterCommand::Status) => {
            let cluster: ClusterDoc = get(&client, "/admin/v1/cluster").await?;
            out.print(&cluster, cluster_text);
            Ok(())
        }
    }
}

struct Output {
    json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `text(value)`.
    fn print<T: Serialize>(&self, value: &T, text: impl FnOnce(&T) -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(json) => println!("{json}"),
                Err(e) => eprintln!("coffre: cannot print JSON: {e}"),
            }
        } else {
            print!("{}", text(value));
        }
    }

    fn done(&self, message: &str) {
        if self.json {
            println!("{}", serde_json::json!({ "ok": true, "message": message }));
        } else {
            println!("{message}");
        }
    }
}

/// Path segments come from the command line: encode them.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn get<T: DeserializeOwned>(client: &AdminClient, path: &str) -> Result<T, ClientError> {
    expect_body(client.call(Method::GET, path, None::<&()>).await?)
}

fn expect_body<T>(value: Option<T>) -> Result<T, ClientError> {
    value.ok_or_else(|| ClientError::Protocol {
        status: http::StatusCode::NO_CONTENT,
        message: "the server sent no document".into(),
    })
}

async fn tenant(
    client: &AdminClient,
    out: &Output,
    command: TenantCommand,
) -> Result<(), ClientError> {
    match command {
        TenantCommand::Create {
            name,
            placement,
            quota_bytes,
            quota_objects,
            quota_uploads,
        } => {
            let request = CreateTenant {
                name,
                placement,
                quotas: QuotasDoc {
                    bytes: quota_bytes,
                    objects: quota_objects,
                    uploads: quota_uploads,
                },
            };
            let created: TenantDoc = expect_body(
                client
                    .call(Method::POST, "/admin/v1/tenants", Some(&request))
                    .await?,
            )?;
            out.print(&created, |t| {
                format!("Created tenant {} ({}).\n", t.name, t.id)
            });
        }
        TenantCommand::List => {
            let list: TenantList = get(client, "/admin/v1/tenants").await?;
            out.print(&list, tenant_table);
        }
        TenantCommand::Show { name } => {
            let tenant: TenantDoc =
                get(client, &format!("/admin/v1/tenants/{}", segment(&name))).await?;
            out.print(&tenant, tenant_details);
        }
        TenantCommand::Update {
            name,
            placement,
            any_array,
            quota_bytes,
            quota_objects,
            quota_uploads,
        } => {
            let quotas = QuotasUpdate {
                bytes: quota_bytes.map(|l| l.0),
                objects: quota_objects.map(|l| l.0),
                uploads: quota_uploads.map(|l| l.0),
            };
            let request = UpdateTenant {
                placement: if any_array {
                    Some(Vec::new())
                } else {
                    placement
                },
                quotas: (quotas != QuotasUpdate::default()).then_some(quotas),
            };
            let path = format!("/admin/v1/tenants/{}", segment(&name));
            let tenant: TenantDoc =
                expect_body(client.call(Method::PATCH, &path, Some(&request)).await?)?;
            out.print(&tenant, tenant_details);
        }
        TenantCommand::Suspend { name } => {
            let path = format!("/admin/v1/tenants/{}/suspend", segment(&name));
            let tenant: TenantDoc =
                expect_body(client.call(Method::POST, &path, None::<&()>).await?)?;
            out.print(&tenant, |t| {
                format!("Suspended tenant {}: its keys are refused.\n", t.name)
            });
        }
        TenantCommand::Resume { name } => {
            let path = format!("/admin/v1/tenants/{}/resume", segment(&name));
            let tenant: TenantDoc =
                expect_body(client.call(Method::POST, &path, None::<&()>).await?)?;
            out.print(&tenant, |t| format!("Resumed tenant {}.\n", t.name));
        }
        TenantCommand::RotateKey { name } => {
            let path = format!("/admin/v1/tenants/{}/rotate-key", segment(&name));
            let tenant: TenantDoc =
                expect_body(client.call(Method::POST, &path, None::<&()>).await?)?;
            out.print(&tenant, |t| {
                format!(
                    "Rotated the KEK of tenant {}: version {} wraps new objects now; existing \
                     DEKs are being rewrapped (see `coffre admin tenant show {}`).\n",
                    t.name, t.encryption.kek_version, t.name
                )
            });
        }
        TenantCommand::Delete { name, force } => {
            let path = format!(
                "/admin/v1/tenants/{}{}",
                segment(&name),
                if force { "?force=true" } else { "" }
            );
            client
                .call::<serde_json::Value>(Method::DELETE, &path, None::<&()>)
                .await?;
            out.done(&format!("Deleted tenant {name}."));
        }
    }
    Ok(())
}

async fn key(client: &AdminClient, out: &Output, command: KeyCommand) -> Result<(), ClientError> {
    match command {
        KeyCommand::Create {
            tenant,
            role,
            buckets,
        } => {
            let request = CreateKey {
                role: match role {
                    KeyRole::Admin => RoleDoc::Admin,
                    KeyRole::ReadWrite => RoleDoc::ReadWrite,
                    KeyRole::ReadOnly => RoleDoc::ReadOnly,
                },
                buckets: (!buckets.is_empty()).then_some(buckets),
            };
            let path = format!("/admin/v1/tenants/{}/keys", segment(&tenant));
            let created: KeyDoc =
                expect_body(client.call(Method::POST, &path, Some(&request)).await?)?;
            out.print(&created, |k| {
                format!(
                    "Created access key for tenant {} (role {}, buckets: {}).\n  \
                     access key id:     {}\n  secret access key: {}\n  \
                     (the secret is shown only this once)\n",
                    k.tenant,
                    k.role.as_str(),
                    buckets_text(&k.buckets),
                    k.access_key_id,
                    k.secret_access_key.as_deref().unwrap_or("?"),
                )
            });
        }
        KeyCommand::List { tenant } => {
            let path = format!("/admin/v1/tenants/{}/keys", segment(&tenant));
            let list: KeyList = get(client, &path).await?;
            out.print(&list, key_table);
        }
        KeyCommand::Disable { access_key_id } => {
            let path = format!("/admin/v1/keys/{}/disable", segment(&access_key_id));
            let key: KeyDoc = expect_body(client.call(Method::POST, &path, None::<&()>).await?)?;
            out.print(&key, |k| {
                format!("Disabled access key {}.\n", k.access_key_id)
            });
        }
        KeyCommand::Enable { access_key_id } => {
            let path = format!("/admin/v1/keys/{}/enable", segment(&access_key_id));
            let key: KeyDoc = expect_body(client.call(Method::POST, &path, None::<&()>).await?)?;
            out.print(&key, |k| {
                format!("Enabled access key {}.\n", k.access_key_id)
            });
        }
        KeyCommand::Delete { access_key_id } => {
            let path = format!("/admin/v1/keys/{}", segment(&access_key_id));
            client
                .call::<serde_json::Value>(Method::DELETE, &path, None::<&()>)
                .await?;
            out.done(&format!("Deleted access key {access_key_id}."));
        }
    }
    Ok(())
}

fn limit_text(limit: Option<u64>, size: bool) -> String {
    match (limit, size) {
        (None, _) => "unlimited".into(),
        (Some(v), true) => format_size(v),
        (Some(v), false) => v.to_string(),
    }
}

fn buckets_text(buckets: &Option<Vec<String>>) -> String {
    match buckets {
        None => "all".into(),
        Some(list) => list.join(","),
    }
}

fn state_text<T: Serialize>(state: &T) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn tenant_table(list: &TenantList) -> String {
    let mut text = format!(
        "{:<24} {:<10} {:>8} {:>10} {:>12} {:>12}\n",
        "NAME", "STATE", "BUCKETS", "OBJECTS", "BYTES", "BYTE QUOTA"
    );
    for t in &list.tenants {
        let _ = writeln!(
            text,
            "{:<24} {:<10} {:>8} {:>10} {:>12} {:>12}",
            t.name,
            state_text(&t.state),
            t.usage.buckets,
            t.usage.objects,
            format_size(t.usage.bytes),
            limit_text(t.quotas.bytes, true),
        );
    }
    text
}

fn tenant_details(t: &TenantDoc) -> String {
    let placement = if t.placement.is_empty() {
        "any array".to_owned()
    } else {
        t.placement.join(", ")
    };
    format!(
        "name:       {}\nid:         {}\nstate:      {}\ncreated:    {}\nplacement:  {}\n\
         quotas:     {} bytes, {} objects, {} uploads in progress\n\
         usage:      {} in {} objects, {} uploads in progress, {} buckets\n{}",
        t.name,
        t.id,
        state_text(&t.state),
        t.created,
        placement,
        limit_text(t.quotas.bytes, true),
        limit_text(t.quotas.objects, false),
        limit_text(t.quotas.uploads, false),
        format_size(t.usage.bytes),
        t.usage.objects,
        t.usage.uploads,
        t.usage.buckets,
        encryption_text(&t.encryption),
    )
}

fn encryption_text(e: &EncryptionDoc) -> String {
    let keks: Vec<String> = e
        .keks
        .iter()
        .map(|k| match k.root_version {
            Some(root) => format!("v{} (root v{root})", k.version),
            None => format!("v{} (tenant key in the HSM)", k.version),
        })
        .collect();
    let mut text = format!(
        "KEK:        v{} current; held: {}\n",
        e.kek_version,
        keks.join(", ")
    );
    if let Some(r) = &e.rotation {
        let phase = r
            .phase
            .map(|p| format!(" {}", state_text(&p)))
            .unwrap_or_default();
        let _ = write!(
            text,
            "rotation:   to v{}, {}{}, started {}; pass {}, {} DEKs rewrapped, {} records scanned",
            r.kek_version,
            state_text(&r.state),
            phase,
            r.started,
            r.passes,
            r.deks_rewrapped,
            r.records_scanned,
        );
        if r.unreadable_deks > 0 {
            let _ = write!(text, ", {} DEKs do not open", r.unreadable_deks);
        }
        if let Some(finished) = &r.finished {
            let retired: Vec<String> = r
                .retired_kek_versions
                .iter()
                .map(|v| format!("v{v}"))
                .collect();
            let _ = write!(
                text,
                "; finished {finished}, destroyed {}",
                retired.join(", ")
            );
        }
        text.push('\n');
    }
    text
}

fn cluster_text(cluster: &ClusterDoc) -> String {
    let mut text = String::new();
    for n in &cluster.nodes {
        let _ = writeln!(
            text,
            "node {:<20} {:<8} {:<28} v{}  last heartbeat {}",
            n.name,
            if n.live { "live" } else { "silent" },
            n.address,
            n.version,
            n.last_heartbeat
        );
    }
    for l in &cluster.leases {
        let _ = writeln!(
            text,
            "lease {:<14} held by {:<20} until {} (token {})",
            l.job, l.holder, l.expires, l.token
        );
    }
    text
}

fn root_key_text(root: &RootKeyDoc) -> String {
    let mut text = format!(
        "provider:   {}\ncurrent:    v{}\n",
        root.provider, root.current_version
    );
    for v in &root.versions {
        let _ = writeln!(text, "version v{}: wraps {} tenant KEKs", v.version, v.keks);
    }
    text
}

fn root_rotation_text(r: &RootRotationDoc) -> String {
    let retired: Vec<String> = r
        .retired_root_versions
        .iter()
        .map(|v| format!("v{v}"))
        .collect();
    format!(
        "Rotated the root key: v{} is current; {} KEKs of {} tenants rewrapped; destroyed: {}.\n",
        r.root_version,
        r.keks_rewrapped,
        r.tenants_rewrapped,
        if retired.is_empty() {
            "none".to_owned()
        } else {
            retired.join(", ")
        },
    )
}

fn key_table(list: &KeyList) -> String {
    let mut text = format!(
        "{:<22} {:<10} {:<9} {:<26} BUCKETS\n",
        "ACCESS KEY ID", "ROLE", "STATE", "CREATED"
    );
    for k in &list.keys {
        let _ = writeln!(
            text,
            "{:<22} {:<10} {:<9} {:<26} {}",
            k.access_key_id,
            k.role.as_str(),
            state_text(&k.state),
            k.created,
            buckets_text(&k.buckets),
        );
    }
    text
}
