//! `[limits]`: what any one client may hold of the server, so that no client can starve
//! another. Connections are capped globally and per source address, requests in flight
//! globally and per tenant (beyond them: 503 SlowDown at once, never a queue), and every
//! wait on a client has a deadline: request headers, the fields of a browser form before it
//! is authenticated, and a minimum rate on request bodies and on response writes.

use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::min_rate::MinRate;

/// The `[limits]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Open S3 connections, all clients together.
    pub max_connections: Option<usize>,
    /// Open S3 connections from one source IP address.
    pub max_connections_per_address: Option<usize>,
    /// S3 requests being served (their response bodies included), all tenants together.
    pub max_requests_in_flight: Option<usize>,
    /// S3 requests being served for one tenant.
    pub max_requests_in_flight_per_tenant: Option<usize>,
    /// Seconds a client has to send a request's headers (also the keep-alive idle limit).
    pub header_timeout_secs: Option<u64>,
    /// Seconds a browser form has to deliver its fields, before it is authenticated.
    pub form_fields_timeout_secs: Option<u64>,
    /// The slowest request body accepted, in bytes per second, judged over each window.
    pub body_min_bytes_per_sec: Option<u64>,
    /// The slowest reader of a response accepted, in bytes per second, judged over each
    /// window.
    pub response_min_bytes_per_sec: Option<u64>,
    /// Seconds spent waiting on a client over which its rate is judged; a client that
    /// moves no byte for this long is cut whatever the rates say.
    pub min_rate_window_secs: Option<u64>,
    /// Threads of the blocking pool (storage calls: one segment batch, one metadata call).
    pub blocking_threads: Option<usize>,
}

/// The validated `[limits]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub max_requests_in_flight: usize,
    pub max_requests_in_flight_per_tenant: usize,
    pub header_timeout: Duration,
    pub form_fields_timeout: Duration,
    pub body_min_rate: MinRate,
    pub response_min_rate: MinRate,
    pub blocking_threads: usize,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 512;
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT: usize = 1024;
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT_PER_TENANT: usize = 256;
const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 30;
const DEFAULT_FORM_FIELDS_TIMEOUT_SECS: u64 = 30;
const DEFAULT_BODY_MIN_BYTES_PER_SEC: u64 = 4096;
const DEFAULT_RESPONSE_MIN_BYTES_PER_SEC: u64 = 4096;
/// As S3's own idle limit on a socket.
const DEFAULT_MIN_RATE_WINDOW_SECS: u64 = 20;
/// Tokio's own default.
pub const DEFAULT_BLOCKING_THREADS: usize = 512;

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            max_requests_in_flight: DEFAULT_MAX_REQUESTS_IN_FLIGHT,
            max_requests_in_flight_per_tenant: DEFAULT_MAX_REQUESTS_IN_FLIGHT_PER_TENANT,
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            form_fields_timeout: Duration::from_secs(DEFAULT_FORM_FIELDS_TIMEOUT_SECS),
            body_min_rate: MinRate::new(
                DEFAULT_BODY_MIN_BYTES_PER_SEC,
                Duration::from_secs(DEFAULT_MIN_RATE_WINDOW_SECS),
            ),
            response_min_rate: MinRate::new(
                DEFAULT_RESPONSE_MIN_BYTES_PER_SEC,
                Duration::from_secs(DEFAULT_MIN_RATE_WINDOW_SECS),
            ),
            blocking_threads: DEFAULT_BLOCKING_THREADS,
        }
    }
}

impl LimitsConfig {
    pub(super) fn resolve(raw: Option<RawLimits>) -> Result<Self, ConfigError> {
        const FIELD: &str = "limits";
        let raw = raw.unwrap_or_default();
        let count = |name: &str, value: Option<usize>, default: usize| match value {
            None => Ok(default),
            Some(0) => Err(invalid(FIELD, format!("{name} must be at least 1"))),
            Some(n) => Ok(n),
        };
        let secs = |name: &str, value: Option<u64>, default: u64| match value {
            None => Ok(Duration::from_secs(default)),
            Some(0) => Err(invalid(FIELD, format!("{name} must be at least 1"))),
            Some(n) if n > 24 * 3600 => Err(invalid(FIELD, format!("{name}: at most a day"))),
            Some(n) => Ok(Duration::from_secs(n)),
        };
        let max_connections = count(
            "max_connections",
            raw.max_connections,
            DEFAULT_MAX_CONNECTIONS,
        )?;
        let max_connections_per_address = count(
            "max_connections_per_address",
            raw.max_connections_per_address,
            DEFAULT_MAX_CONNECTIONS_PER_ADDRESS.min(max_connections),
        )?;
        let max_requests_in_flight = count(
            "max_requests_in_flight",
            raw.max_requests_in_flight,
            DEFAULT_MAX_REQUESTS_IN_FLIGHT,
        )?;
        let max_requests_in_flight_per_tenant = count(
            "max_requests_in_flight_per_tenant",
            raw.max_requests_in_flight_per_tenant,
            DEFAULT_MAX_REQUESTS_IN_FLIGHT_PER_TENANT.min(max_requests_in_flight),
        )?;
        if max_connections_per_address > max_connections {
            return Err(invalid(
                FIELD,
                "max_connections_per_address must not exceed max_connections",
            ));
        }
        if max_requests_in_flight_per_tenant > max_requests_in_flight {
            return Err(invalid(
                FIELD,
                "max_requests_in_flight_per_tenant must not exceed max_requests_in_flight",
            ));
        }
        let window = secs(
            "min_rate_window_secs",
            raw.min_rate_window_secs,
            DEFAULT_MIN_RATE_WINDOW_SECS,
        )?;
        let blocking_threads = count(
            "blocking_threads",
            raw.blocking_threads,
            DEFAULT_BLOCKING_THREADS,
        )?;
        if blocking_threads > 4096 {
            return Err(invalid(FIELD, "blocking_threads: at most 4096"));
        }
        Ok(Self {
            max_connections,
            max_connections_per_address,
            max_requests_in_flight,
            max_requests_in_flight_per_tenant,
            header_timeout: secs(
                "header_timeout_secs",
                raw.header_timeout_secs,
                DEFAULT_HEADER_TIMEOUT_SECS,
            )?,
            form_fields_timeout: secs(
                "form_fields_timeout_secs",
                raw.form_fields_timeout_secs,
                DEFAULT_FORM_FIELDS_TIMEOUT_SECS,
            )?,
            body_min_rate: MinRate::new(
                raw.body_min_bytes_per_sec
                    .unwrap_or(DEFAULT_BODY_MIN_BYTES_PER_SEC),
                window,
            ),
            response_min_rate: MinRate::new(
                raw.response_min_bytes_per_sec
                    .unwrap_or(DEFAULT_RESPONSE_MIN_BYTES_PER_SEC),
                window,
            ),
            blocking_threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::*;

    #[test]
    fn defaults_bound_everything() {
        let limits = parse("").unwrap_or_else(|e| panic!("{e}")).limits;
        assert_eq!(limits, LimitsConfig::default());
        assert_eq!(limits.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            limits.max_requests_in_flight_per_tenant,
            DEFAULT_MAX_REQUESTS_IN_FLIGHT_PER_TENANT
        );
        assert_eq!(limits.header_timeout, Duration::from_secs(30));
        assert_eq!(limits.body_min_rate.window(), Duration::from_secs(20));
        assert_eq!(limits.blocking_threads, DEFAULT_BLOCKING_THREADS);
    }

    #[test]
    fn a_small_setup_is_read_as_written() {
        let limits = parse(
            "[limits]\nmax_connections = 10\nmax_connections_per_address = 5\n\
             max_requests_in_flight = 8\nmax_requests_in_flight_per_tenant = 4\n\
             header_timeout_secs = 2\nform_fields_timeout_secs = 3\n\
             body_min_bytes_per_sec = 100\nresponse_min_bytes_per_sec = 200\n\
             min_rate_window_secs = 4\nblocking_threads = 6\n",
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .limits;
        assert_eq!(limits.max_connections_per_address, 5);
        assert_eq!(limits.max_requests_in_flight_per_tenant, 4);
        assert_eq!(limits.form_fields_timeout, Duration::from_secs(3));
        assert_eq!(limits.body_min_rate.bytes_per_window(), 400);
        assert_eq!(limits.response_min_rate.bytes_per_window(), 800);
        assert_eq!(limits.blocking_threads, 6);
        // A per-tenant default larger than a small global limit follows it down.
        let limits = parse("[limits]\nmax_requests_in_flight = 8\n")
            .unwrap_or_else(|e| panic!("{e}"))
            .limits;
        assert_eq!(limits.max_requests_in_flight_per_tenant, 8);
    }

    #[test]
    fn unbounded_or_inconsistent_limits_are_refused() {
        for text in [
            "[limits]\nmax_connections = 0",
            "[limits]\nmax_requests_in_flight_per_tenant = 0",
            "[limits]\nheader_timeout_secs = 0",
            "[limits]\nmin_rate_window_secs = 0",
            "[limits]\nmax_connections = 4\nmax_connections_per_address = 5",
            "[limits]\nmax_requests_in_flight = 4\nmax_requests_in_flight_per_tenant = 5",
            "[limits]\nblocking_threads = 100000",
        ] {
            match parse(text) {
                Err(ConfigError::Invalid { field, .. }) => assert_eq!(field, "limits", "{text}"),
                other => panic!("{text}: expected an error on limits, got {other:?}"),
            }
        }
        assert!(matches!(
            parse("[limits]\nmax_conections = 4"),
            Err(ConfigError::Parse { .. })
        ));
    }
}
