//! Who gets a place in the audit queue.
//!
//! - A request that will run takes a slot before its handler starts ([`AuditLog::reserve`]);
//!   the slot is its place in the queue, so the record of a request that ran is never dropped.
//!   When no slot is left the request is refused (S3 `SlowDown`) instead of being run
//!   without evidence.
//! - A request nobody authenticated has no slot. Such records are written one by one up to a
//!   rate; beyond it they are counted, and one `summary` record per interval says how many
//!   there were and why they were refused. A flood of them costs the trail a few hundred
//!   bytes per record up to the rate, then one line per interval, and never takes the slots
//!   of authenticated tenants.
//!
//! [`AuditLog::reserve`]: super::AuditLog::reserve

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::record::AuditRecord;

/// The bounded part of the queue: slots reserved by running requests plus records queued
/// and not yet written.
pub(super) struct Places {
    pending: AtomicUsize,
    capacity: usize,
}

impl Places {
    pub fn new(capacity: usize) -> Self {
        Self {
            pending: AtomicUsize::new(0),
            capacity: capacity.max(1),
        }
    }

    /// Takes one place if one is free.
    pub fn take(&self) -> bool {
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes one place whatever the count: records of the server's own work (key rotation,
    /// summaries), which are few.
    pub fn force(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    pub fn release(&self, n: usize) {
        // Never below zero, even if a caller miscounted.
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(n))
            });
    }

    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

/// Records of unauthenticated requests written one by one: a token bucket of
/// `per_second` tokens, holding at most one second's worth.
pub(super) struct RateLimit {
    per_second: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second);
        Self {
            per_second,
            bucket: Mutex::new((per_second, Instant::now())),
        }
    }

    pub fn allow(&self) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else {
            return false;
        };
        let now = Instant::now();
        let refill = now.duration_since(bucket.1).as_secs_f64() * self.per_second;
        bucket.0 = (bucket.0 + refill).min(self.per_second);
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Unauthenticated requests counted instead of recorded one by one, since the last summary.
#[derive(Default)]
pub(super) struct Summary {
    counts: Mutex<SummaryCounts>,
}

#[derive(Default)]
struct SummaryCounts {
    requests: u64,
    /// Error code (or `none`) -> requests.
    by_error: BTreeMap<&'static str, u64>,
    /// Operation -> requests.
    by_operation: BTreeMap<String, u64>,
    first: Option<String>,
    last: Option<String>,
}

/// Distinct operations counted per summary at most (names come from the route table; the
/// bound is a guard, not an expected limit).
const MAX_OPERATIONS: usize = 64;

impl Summary {
    pub fn count(&self, record: &AuditRecord) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        counts.requests += 1;
        *counts
            .by_error
            .entry(record.error.unwrap_or("none"))
            .or_default() += 1;
        let operation = if counts.by_operation.len() < MAX_OPERATIONS
            || counts.by_operation.contains_key(&record.operation)
        {
            record.operation.clone()
        } else {
            "Other".to_owned()
        };
        *counts.by_operation.entry(operation).or_default() += 1;
        if counts.first.is_none() {
            counts.first = Some(record.time.clone());
        }
        counts.last = Some(record.time.clone());
    }

    /// The summary record of what was counted since the last one, if anything was.
    pub fn take(&self) -> Option<AuditRecord> {
        let counts = std::mem::take(&mut *self.counts.lock().ok()?);
        if counts.requests == 0 {
            return None;
        }
        Some(AuditRecord {
            time: AuditRecord::now(),
            kind: "summary",
            operation: "UnauthenticatedRequests".into(),
            change: Some(serde_json::json!({
                "requests": counts.requests,
                "by_error": counts.by_error,
                "by_operation": counts.by_operation,
                "first": counts.first,
                "last": counts.last,
            })),
            ..AuditRecord::default()
        })
    }
}
