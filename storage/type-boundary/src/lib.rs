//! No code: this crate holds the compile-fail tests of the tenant boundary
//! (`tests/compile_fail.rs`). They live apart from the gateway so that trybuild's project
//! depends on `coffre-storage` without RocksDB.
