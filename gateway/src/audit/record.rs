//! One audit record. Never a secret or object content: ids, names, sizes, outcomes.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditRecord {
    /// RFC 3339 with milliseconds, UTC.
    pub time: String,
    pub request_id: String,
    /// `s3` or `admin`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Integer microseconds: floats do not survive a JSON round trip bit for bit, and the
    /// chain hashes the exact text.
    pub duration_us: u64,
    /// For admin actions: what changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<serde_json::Value>,
}

impl AuditRecord {
    pub fn now() -> String {
        let now = time::OffsetDateTime::now_utc();
        let now = now
            .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
            .unwrap_or(now);
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
}
