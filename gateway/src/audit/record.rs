//! One audit record. Never a secret or object content: ids, names, sizes, outcomes.
//!
//! Every string a client can influence is bounded before the record is queued (see
//! [`AuditRecord::bound`]): a request naming a 60 KiB bucket costs the trail 63 bytes of it,
//! and the record says what was cut (`"truncated": {"bucket": 61440}`, the original length).

use std::collections::BTreeMap;

use serde::Serialize;

/// S3 bucket names are at most 63 bytes.
pub const MAX_BUCKET_BYTES: usize = 63;
/// S3 keys are at most 1024 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// The key of a request nobody authenticated: enough to recognise a probe.
pub const MAX_UNAUTHENTICATED_KEY_BYTES: usize = 128;
/// Tenant ids, access key ids, request ids, addresses, operation names.
pub const MAX_ID_BYTES: usize = 128;
/// Each string inside an admin action's `change` document.
pub const MAX_CHANGE_STRING_BYTES: usize = 256;

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditRecord {
    /// RFC 3339 with milliseconds, UTC.
    pub time: String,
    pub request_id: String,
    /// `s3`, `admin`, or `summary` (counts of requests recorded together, see
    /// `AuditLog::unauthenticated`).
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
    /// Fields cut to their bound, with their original length in bytes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub truncated: BTreeMap<&'static str, usize>,
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

    /// Cuts every string field to its bound (on a character boundary) and notes what was
    /// cut in `truncated`. A record of a request nobody authenticated keeps less of its key.
    pub fn bound(&mut self) {
        let key_bytes = if self.tenant.is_some() {
            MAX_KEY_BYTES
        } else {
            MAX_UNAUTHENTICATED_KEY_BYTES
        };
        let truncated = &mut self.truncated;
        bound_field(truncated, "request_id", &mut self.request_id, MAX_ID_BYTES);
        bound_field(truncated, "operation", &mut self.operation, MAX_ID_BYTES);
        for (name, field, max) in [
            ("tenant", &mut self.tenant, MAX_ID_BYTES),
            ("access_key", &mut self.access_key, MAX_ID_BYTES),
            ("source", &mut self.source, MAX_ID_BYTES),
            ("bucket", &mut self.bucket, MAX_BUCKET_BYTES),
            ("key", &mut self.key, key_bytes),
        ] {
            if let Some(value) = field {
                bound_field(truncated, name, value, max);
            }
        }
        if let Some(change) = &mut self.change {
            let mut longest = 0;
            bound_strings(change, &mut longest);
            if longest > 0 {
                truncated.insert("change", longest);
            }
        }
    }
}

fn bound_field(
    truncated: &mut BTreeMap<&'static str, usize>,
    name: &'static str,
    value: &mut String,
    max: usize,
) {
    let original = value.len();
    if truncate_on_char_boundary(value, max) {
        truncated.insert(name, original);
    }
}

/// Bounds every string in a JSON document; `longest` is the longest one cut.
fn bound_strings(value: &mut serde_json::Value, longest: &mut usize) {
    match value {
        serde_json::Value::String(text) => {
            let original = text.len();
            if truncate_on_char_boundary(text, MAX_CHANGE_STRING_BYTES) {
                *longest = (*longest).max(original);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                bound_strings(item, longest);
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values_mut() {
                bound_strings(item, longest);
            }
        }
        _ => {}
    }
}

/// Cuts `text` to at most `max` bytes without splitting a character; true when it cut.
pub fn truncate_on_char_boundary(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}
