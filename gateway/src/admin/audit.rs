//! Where admin actions are recorded. Today a structured log line on the `coffre::audit`
//! target; the hash-chained audit log replaces the body of [`record`] and nothing else.

use http::StatusCode;

/// One admin request, after it was answered. Never holds a secret.
#[derive(Debug)]
pub struct AdminEvent<'a> {
    /// The route's name (`CreateTenant`, ...), or `Unrouted` / `Unauthenticated`.
    pub action: &'a str,
    /// The tenant name or access key id acted on, if any.
    pub target: Option<&'a str>,
    pub status: StatusCode,
    /// The admin error code when the action failed.
    pub error: Option<&'a str>,
    /// Whether the bearer token was valid.
    pub authenticated: bool,
}

/// Records one admin action, successful or not.
pub fn record(event: &AdminEvent<'_>) {
    tracing::info!(
        target: "coffre::audit",
        kind = "admin",
        action = event.action,
        target_name = event.target.unwrap_or(""),
        status = event.status.as_u16(),
        error = event.error.unwrap_or(""),
        authenticated = event.authenticated,
        "admin action"
    );
}
