// The storage tests' constructor needs the `test-scope` feature, which the gateway never
// enables.
use coffre_crypto::{TenantId, TenantScope};

fn main() {
    let _scope = TenantScope::for_tests(TenantId::random());
}
