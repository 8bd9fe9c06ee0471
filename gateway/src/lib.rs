//! The Coffre gateway: configuration, listeners, the S3 protocol and its handlers, and the
//! admin listener. `main.rs` only parses the command line and calls [`server::serve`].

pub mod admin;
pub mod audit;
pub mod bootstrap;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod connection_limits;
pub mod gc;
pub mod key_rotation;
pub mod metrics;
pub mod min_rate;
pub mod paced_io;
pub mod s3;
pub mod server;
pub mod tls;

pub use server::{serve, Running};
