//! The JSON documents of the admin API, shared by the server and the `coffre admin` client.
//! Requests refuse unknown fields, so a misspelt setting is an error rather than ignored.

use serde::{Deserialize, Deserializer, Serialize};

/// `POST /admin/v1/tenants`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// Array names or site labels; absent or empty: any array.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<String>,
    #[serde(default)]
    pub quotas: QuotasDoc,
}

/// Limits; `null` (or absent) is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasDoc {
    pub bytes: Option<u64>,
    pub objects: Option<u64>,
    /// Multipart uploads in progress at once.
    #[serde(default)]
    pub uploads: Option<u64>,
}

/// `PATCH /admin/v1/tenants/{name}`: absent fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<QuotasUpdate>,
}

/// Each limit: absent leaves it, `null` removes it, a number sets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasUpdate {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub bytes: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub objects: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub uploads: Option<Option<u64>>,
}

/// A field that is present, possibly `null`: `Some(value)`. Absent fields get the default
/// (`None`) without reaching this.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStateDoc {
    Active,
    Suspended,
}

/// A tenant as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDoc {
    pub id: String,
    pub name: String,
    pub state: TenantStateDoc,
    /// RFC 3339.
    pub created: String,
    pub placement: Vec<String>,
    pub quotas: QuotasDoc,
    pub usage: UsageDoc,
    /// Its keys and their rotation.
    #[serde(default)]
    pub encryption: EncryptionDoc,
}

/// A tenant's key-encryption keys, in the Tenant document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionDoc {
    /// The KEK version that wraps the DEKs of new objects and uploads.
    pub kek_version: u32,
    /// The KEK versions the tenant holds, oldest first: older ones until the rotation that
    /// replaced them has rewrapped every DEK.
    pub keks: Vec<KekDoc>,
    /// The latest KEK rotation; `null` if the tenant's KEK was never rotated.
    pub rotation: Option<RotationDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KekDoc {
    pub version: u32,
    /// The root key version that wraps it; `null` when the tenant's own key in the HSM
    /// does (`tenant_keys_in_hsm`).
    pub root_version: Option<u32>,
    /// DEKs it wraps in committed records (a rotation comes at `[key_rotation]
    /// max_dek_wraps`, well before the 2^32 its random nonces allow).
    pub dek_wraps: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotationStateDoc {
    /// DEKs are being rewrapped (`phase` says where).
    Rewrapping,
    /// A pass is over; the next one waits for the grace period.
    Settling,
    /// DEKs under an older version do not open: the older versions are kept.
    Blocked,
    /// Every DEK is under `kek_version`; the older versions are destroyed.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewrapPhaseDoc {
    Uploads,
    Objects,
}

/// A KEK rotation and its background rewrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationDoc {
    /// The version the rotation created, to which every DEK moves.
    pub kek_version: u32,
    pub state: RotationStateDoc,
    /// While rewrapping: the records being gone through.
    pub phase: Option<RewrapPhaseDoc>,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339, once finished.
    pub finished: Option<String>,
    /// Passes over the tenant's records begun; the last one finds nothing left to move.
    pub passes: u32,
    pub deks_rewrapped: u64,
    pub records_scanned: u64,
    /// DEKs of the current pass that do not open (a damaged record).
    pub unreadable_deks: u64,
    /// The KEK versions destroyed at the end.
    pub retired_kek_versions: Vec<u32>,
}

/// `GET /admin/v1/cluster`: the nodes sharing the metadata store and who holds each
/// background job's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterDoc {
    pub nodes: Vec<NodeDoc>,
    pub leases: Vec<LeaseDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDoc {
    pub name: String,
    /// Its S3 listener, as it reported it.
    pub address: String,
    pub version: String,
    pub started: String,
    pub last_heartbeat: String,
    /// Heard from within the node timeout (30 s).
    pub live: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseDoc {
    /// `gc` or `key-rotation`.
    pub job: String,
    pub holder: String,
    pub expires: String,
    /// Grows each time the lease changes hands; the job's commits check it.
    pub token: u64,
}

/// `GET /admin/v1/root-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeyDoc {
    /// `local-file` or `pkcs11`.
    pub provider: String,
    /// The version that wraps KEKs from now on.
    pub current_version: u32,
    /// Every version the provider holds, oldest first.
    pub versions: Vec<RootVersionDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootVersionDoc {
    pub version: u32,
    /// Tenant KEKs it wraps.
    pub keks: usize,
}

/// `POST /admin/v1/rotate-root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRotationDoc {
    /// The new current root key version.
    pub root_version: u32,
    /// Older versions destroyed in the provider.
    pub retired_root_versions: Vec<u32>,
    pub tenants_rewrapped: usize,
    pub keks_rewrapped: usize,
    /// The root keys after the rotation.
    pub root_key: RootKeyDoc,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDoc {
    pub bytes: u64,
    pub objects: u64,
    /// Multipart uploads in progress.
    #[serde(default)]
    pub uploads: u64,
    pub buckets: u64,
}

/// `GET /admin/v1/tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantList {
    pub tenants: Vec<TenantDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleDoc {
    Admin,
    ReadWrite,
    ReadOnly,
}

impl RoleDoc {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleDoc::Admin => "admin",
            RoleDoc::ReadWrite => "read-write",
            RoleDoc::ReadOnly => "read-only",
        }
    }
}

impl From<RoleDoc> for coffre_crypto::Role {
    fn from(role: RoleDoc) -> Self {
        match role {
            RoleDoc::Admin => Self::Admin,
            RoleDoc::ReadWrite => Self::ReadWrite,
            RoleDoc::ReadOnly => Self::ReadOnly,
        }
    }
}

impl From<coffre_crypto::Role> for RoleDoc {
    fn from(role: coffre_crypto::Role) -> Self {
        match role {
            coffre_crypto::Role::Admin => Self::Admin,
            coffre_crypto::Role::ReadWrite => Self::ReadWrite,
            coffre_crypto::Role::ReadOnly => Self::ReadOnly,
        }
    }
}

/// `POST /admin/v1/tenants/{name}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub role: RoleDoc,
    /// The only buckets the key may touch; absent: all of the tenant's buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStateDoc {
    Active,
    Disabled,
}

/// An access key as the API shows it: never with its secret, except once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDoc {
    pub access_key_id: String,
    pub tenant: String,
    pub role: RoleDoc,
    pub buckets: Option<Vec<String>>,
    pub state: KeyStateDoc,
    /// RFC 3339.
    pub created: String,
    /// Present only in the answer to the key's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
}

/// `GET /admin/v1/tenants/{name}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyDoc>,
}

/// Every error: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDoc {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// Tenant names follow the rules of a DNS label: 3 to 63 lowercase letters, digits and
/// hyphens, starting and ending with a letter or digit.
pub fn valid_tenant_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && edge(bytes.first())
        && edge(bytes.last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_dns_labels() {
        for ok in ["abc", "acme-corp", "a1b", "123", &"a".repeat(63)] {
            assert!(valid_tenant_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "Acme",
            "a_b",
            "a.b",
            "",
            &"a".repeat(64),
            "é-abc",
        ] {
            assert!(!valid_tenant_name(bad), "{bad}");
        }
    }

    #[test]
    fn quota_updates_tell_absent_from_null() {
        let parse = |s: &str| serde_json::from_str::<QuotasUpdate>(s).map_err(|e| e.to_string());
        assert_eq!(parse("{}"), Ok(QuotasUpdate::default()));
        assert_eq!(
            parse(r#"{"bytes": null, "objects": 5}"#),
            Ok(QuotasUpdate {
                bytes: Some(None),
                objects: Some(Some(5)),
                uploads: None,
            })
        );
        assert_eq!(
            parse(r#"{"uploads": 100}"#),
            Ok(QuotasUpdate {
                uploads: Some(Some(100)),
                ..QuotasUpdate::default()
            })
        );
        assert!(parse(r#"{"upload": 1}"#).is_err());
        assert!(parse(r#"{"byte": 1}"#).is_err());
        assert!(serde_json::from_str::<CreateTenant>(r#"{"name":"abc","quota":1}"#).is_err());
        assert!(serde_json::from_str::<CreateKey>(r#"{"role":"owner"}"#).is_err());
    }
}
