//! `gateway/ADMIN_API.md` is the admin API's reference: every route it documents exists on
//! a running server, and the server has no route it does not document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use coffre_gateway::admin::client::{AdminClient, ClientError};
use coffre_gateway::admin::routes::ROUTES;
use coffre_gateway::config::{Config, Overrides, RawConfig};
use http::Method;

/// `(METHOD, /path/{param})` of every `### \`METHOD /path\`` heading under "## Routes".
fn documented_routes() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ADMIN_API.md"))
        .expect("read ADMIN_API.md");
    let routes_section = text
        .split("\n## ")
        .find(|section| section.starts_with("Routes"))
        .expect("a \"## Routes\" section");
    routes_section
        .lines()
        .filter_map(|line| line.strip_prefix("### `")?.strip_suffix('`'))
        .map(|route| {
            let (method, path) = route.split_once(' ').expect("`METHOD /path`");
            (method.to_owned(), path.to_owned())
        })
        .collect()
}

fn served_routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.pattern.to_owned()))
        .collect()
}

#[test]
fn the_reference_lists_exactly_the_served_routes() {
    let documented = documented_routes();
    let served = served_routes();
    assert!(
        documented.len() >= 10,
        "parsed too few routes: {documented:?}"
    );
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && missing.is_empty(),
        "served but not in ADMIN_API.md: {undocumented:?}; documented but not served: {missing:?}"
    );
}

#[tokio::test]
async fn every_documented_route_answers_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::resolve(
        RawConfig::default(),
        Overrides {
            data_dir: Some(dir.path().to_owned()),
            s3_listen: Some("127.0.0.1:0".into()),
            admin_listen: Some("127.0.0.1:0".into()),
            ..Overrides::default()
        },
    )
    .unwrap();
    let running = coffre_gateway::serve(config).await.unwrap();
    let endpoint = format!("http://{}", running.admin_addr);
    let client = AdminClient::new(&endpoint, &dir.path().join("admin-token")).unwrap();

    for (method, pattern) in documented_routes() {
        if pattern == "/metrics" {
            // Text, not JSON: conformance/tests/observability.rs scrapes it.
            continue;
        }
        let path = pattern
            .replace("{name}", "no-such-tenant")
            .replace("{access_key_id}", "CONOSUCHKEY000000000");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = serde_json::json!({});
        let result = client
            .call::<serde_json::Value>(method.clone(), &path, Some(&body))
            .await;
        // Any answer but "no such route" or "wrong method" proves the route exists: the
        // placeholders name nothing, so most answers are NoSuchTenant or NoSuchAccessKey.
        if let Err(ClientError::Api { code, .. }) = &result {
            assert!(
                code != "NoSuchRoute" && code != "MethodNotAllowed",
                "{method} {path}: {code}"
            );
        }
        if let Err(e @ (ClientError::Unreachable { .. } | ClientError::Protocol { .. })) = &result {
            panic!("{method} {path}: {e}");
        }
    }
    // And an undocumented path is not served.
    let result = client
        .call::<serde_json::Value>(Method::GET, "/admin/v1/buckets", None::<&()>)
        .await;
    assert!(matches!(result, Err(ClientError::Api { code, .. }) if code == "NoSuchRoute"));
    running.shutdown().await;
}
