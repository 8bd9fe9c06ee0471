// Only signature verification (inside coffre-crypto) turns a credential into a scope.
use coffre_crypto::{Credential, TenantScope};

fn forge(credential: &Credential) -> TenantScope {
    TenantScope::from_verified(credential)
}

fn main() {}
