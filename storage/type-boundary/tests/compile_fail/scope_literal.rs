// A scope's fields are private: it cannot be written as a literal.
use coffre_crypto::{AccessKeyId, Role, TenantId, TenantScope};

fn main() {
    let _scope = TenantScope {
        tenant: TenantId::random(),
        access_key: AccessKeyId::generate(),
        role: Role::Admin,
        buckets: None,
    };
}
