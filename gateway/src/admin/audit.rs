//! Where admin actions are recorded: the hash-chained audit trail, and a structured log
//! line on the `coffre::audit` target.

use std::net::SocketAddr;

use http::StatusCode;

use crate::audit::{AuditLog, AuditRecord, AuditSlot};

/// One admin request, after it was answered. Never holds a secret.
#[derive(Debug)]
pub struct AdminEvent<'a> {
    /// The client's address.
    pub source: SocketAddr,
    /// The route's name (`CreateTenant`, ...), or `Unrouted` / `Unauthenticated`.
    pub action: &'a str,
    /// The tenant name or access key id acted on, if any.
    pub target: Option<&'a str>,
    pub status: StatusCode,
    /// The admin error code when the action failed.
    pub error: Option<&'a str>,
    /// Whether the bearer token was valid.
    pub authenticated: bool,
    /// What a successful action did, when its handler says (a rotation's new version).
    pub result: Option<&'a serde_json::Value>,
}

/// Records one admin action, successful or not, in the hash-chained audit trail: in the
/// place `slot` reserved for it before it ran, if it got that far. Requests with a wrong
/// or no token are recorded up to a rate and counted beyond it, like unauthenticated S3
/// requests.
pub fn record(log: &AuditLog, slot: Option<AuditSlot>, event: &AdminEvent<'_>) {
    let record = AuditRecord {
        time: AuditRecord::now(),
        request_id: String::new(),
        kind: "admin",
        source: Some(event.source.to_string()),
        operation: event.action.to_owned(),
        status: event.status.as_u16(),
        error: None,
        change: Some(serde_json::json!({
            "action": event.action,
            "target": event.target,
            "authenticated": event.authenticated,
            "error": event.error,
            "result": event.result,
        })),
        ..AuditRecord::default()
    };
    match slot {
        Some(slot) => slot.record(record),
        None if event.authenticated => log.record(record),
        None => log.unauthenticated(record),
    }
    tracing::info!(
        target: "coffre::audit",
        kind = "admin",
        source = %event.source,
        action = event.action,
        target_name = event.target.unwrap_or(""),
        status = event.status.as_u16(),
        error = event.error.unwrap_or(""),
        authenticated = event.authenticated,
        "admin action"
    );
}
