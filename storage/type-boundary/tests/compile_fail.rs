//! The tenant boundary is a type boundary: these programs must not compile. Storage cannot
//! be called without a `TenantScope`, and no code outside `coffre-crypto`'s signature
//! verification can make one (no public constructor, no literal, no `Clone`, no
//! `Deserialize`, and the storage-test constructor is behind a feature only test targets
//! enable).
//!
//! The expected compiler messages are in `compile_fail/*.stderr`; after a compiler upgrade
//! regenerate them with `TRYBUILD=overwrite cargo test -p coffre-type-boundary --test compile_fail`
//! and check that each still fails for the reason its file states.

#[test]
fn the_tenant_boundary_is_enforced_by_types() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
