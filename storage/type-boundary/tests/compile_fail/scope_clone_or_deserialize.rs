// A scope cannot be copied to outlive its request, nor read from outside.
use coffre_crypto::TenantScope;

fn keep(scope: &TenantScope) -> TenantScope {
    scope.clone()
}

fn parse(text: &str) -> TenantScope {
    serde_json::from_str(text).unwrap()
}

fn main() {}
