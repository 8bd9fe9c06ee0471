//! A fresh PostgreSQL database for a test, in the server the test command started.
//! `conformance/postgres` starts a throwaway server and prints the `export` line; the test
//! command (`conformance/run`) does it for the whole run. No server is a failure, never a
//! skip: the PostgreSQL backend is tested on every run.
//!
//! Shared by the storage and conformance harnesses (`#[path]`), so there is one copy.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

/// The variable that names the test server, as `postgresql://user@127.0.0.1:port/postgres`.
pub const TEST_SERVER_VARIABLE: &str = "COFFRE_TEST_POSTGRES_URL";

/// The URL of the test server (its maintenance database). Panics with the way to start one.
pub fn test_server_url() -> String {
    std::env::var(TEST_SERVER_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{TEST_SERVER_VARIABLE} is not set: the PostgreSQL backend's tests need a server. \
             Run them through conformance/run, or start one with \
             `eval \"$(conformance/postgres start)\"`"
        )
    })
}

/// A new, empty schema on the test server, as the URL of a database whose search path is
/// that schema alone: every store under test gets tables of its own. (A schema rather than
/// a database: created in milliseconds, and a few kilobytes instead of a copy of the
/// template database each.)
pub fn fresh_database() -> String {
    let server = test_server_url();
    let name = format!("coffre_test_{:032x}", rand::random::<u128>());
    // On a thread of its own: the synchronous client runs a runtime of its own, which
    // cannot start on a thread of an async test's runtime.
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut client = postgres::Client::connect(&server, postgres::NoTls)
                .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {server}: {e}"));
            client
                .batch_execute(&format!("CREATE SCHEMA {name}"))
                .expect("create a test schema");
        })
        .join()
        .expect("create a test schema");
    });
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options=-csearch_path%3D{name}")
}
