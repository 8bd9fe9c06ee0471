//! The binary the conformance suites drive is the one that ships: built without the
//! test-only `TenantScope` constructor, which cargo's feature unification would otherwise
//! compile into it from storage's test build (conformance/run builds it on its own).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffre_conformance::coffre_binary;

#[test]
fn r12_the_binary_under_test_has_no_test_only_tenant_scope_constructor() {
    let output = std::process::Command::new(coffre_binary())
        .arg("build-info")
        .output()
        .unwrap();
    assert!(output.status.success());
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        info["test_scope_constructor"],
        false,
        "{} was built with the test-scope feature: build it with \
         `cargo build -p coffre-gateway --bin coffre` (conformance/run does)",
        coffre_binary().display()
    );
}
