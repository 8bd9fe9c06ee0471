//! Scopes: the capabilities that storage demands before it touches anything.
//!
//! A [`TenantScope`] can only come out of SigV4 verification (`sigv4::verify`), which needs a
//! [`Credential`] whose secret signed the request. Its fields are private and it has no
//! `Default`, `Clone` or `Deserialize`, so no code path can conjure one for an arbitrary
//! tenant. Admin and background work use the distinct [`AdminScope`] and
//! [`MaintenanceScope`].

use crate::ids::{AccessKeyId, Role, SecretKey, TenantId};

/// What storage knows about an access key: enough to verify a signature and, on success,
/// to build the scope of the tenant that owns it.
#[derive(Debug)]
pub struct Credential {
    pub access_key: AccessKeyId,
    pub secret: SecretKey,
    pub tenant: TenantId,
    pub role: Role,
    /// `Some`: the key may only touch these buckets.
    pub buckets: Option<Vec<String>>,
}

/// Proof that the current request was signed by a key of `tenant`.
#[derive(Debug)]
pub struct TenantScope {
    tenant: TenantId,
    access_key: AccessKeyId,
    role: Role,
    buckets: Option<Vec<String>>,
}

impl TenantScope {
    /// Only signature verification calls this.
    pub(crate) fn from_verified(credential: &Credential) -> Self {
        Self {
            tenant: credential.tenant,
            access_key: credential.access_key.clone(),
            role: credential.role,
            buckets: credential.buckets.clone(),
        }
    }

    /// Whether this build has [`TenantScope::for_tests`] (the `test-scope` feature). A build
    /// that ships must not: `coffre build-info` says, and the conformance suite checks the
    /// binary it drives.
    pub const TEST_CONSTRUCTOR_COMPILED: bool = cfg!(feature = "test-scope");

    /// A scope for tests of the storage layer, which have no signed request to verify.
    #[cfg(feature = "test-scope")]
    pub fn for_tests(tenant: TenantId) -> Self {
        Self {
            tenant,
            access_key: AccessKeyId::generate(),
            role: Role::Admin,
            buckets: None,
        }
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    pub fn access_key(&self) -> &AccessKeyId {
        &self.access_key
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this key may touch `bucket` at all (bucket-limited keys).
    pub fn may_access_bucket(&self, bucket: &str) -> bool {
        match &self.buckets {
            None => true,
            Some(allowed) => allowed.iter().any(|b| b == bucket),
        }
    }

    pub fn may_write(&self) -> bool {
        matches!(self.role, Role::Admin | Role::ReadWrite)
    }
}

/// Proof that a caller presented the admin token.
#[derive(Debug)]
pub struct AdminScope {
    _private: (),
}

impl AdminScope {
    /// Constant-time comparison of the presented bearer token with the configured one.
    pub fn verify_token(presented: &[u8], expected: &[u8]) -> Option<Self> {
        use subtle::ConstantTimeEq;
        let equal = presented.len() == expected.len() && bool::from(presented.ct_eq(expected));
        equal.then_some(Self { _private: () })
    }

    /// The server itself acting as operator: creating the embedded default tenant at first
    /// start, command-line tools working on a stopped server's data directory.
    pub fn local_operator() -> Self {
        Self { _private: () }
    }
}

/// Background work (garbage collection, key rotation) that spans tenants by design.
#[derive(Debug)]
pub struct MaintenanceScope {
    task: &'static str,
}

impl MaintenanceScope {
    pub fn new(task: &'static str) -> Self {
        Self { task }
    }

    pub fn task(&self) -> &'static str {
        self.task
    }
}
