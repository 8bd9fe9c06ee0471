//! The audit record of one S3 request, from its arrival to its answer.
//!
//! A request takes its place in the audit queue before anything runs on its behalf
//! ([`RequestAudit::reserve`], right after authentication, or before a browser form is read):
//! without one it is refused with `SlowDown`. A request that never got that far (no
//! credentials, a bad signature, a preflight) has no place: its record goes to
//! [`AuditLog::unauthenticated`], written up to a rate and counted beyond it. A request
//! dropped before its answer (the client went away) is still recorded, as far as it got.

use std::net::SocketAddr;
use std::time::Instant;

use super::error::{S3Error, S3ErrorCode};
use super::received_bytes::ReceivedBytes;
use crate::audit::{AuditLog, AuditRecord, AuditSlot};

/// Status recorded for a request whose client went away before the answer.
const CLIENT_CLOSED: u16 = 499;

pub struct RequestAudit {
    log: AuditLog,
    slot: Option<AuditSlot>,
    /// What is known so far: ids, source, and from [`RequestAudit::reserve`] on, who and what.
    record: AuditRecord,
    started: Instant,
    received: ReceivedBytes,
    finished: bool,
}

/// Who asked for what, as far as the pipeline knows.
#[derive(Default)]
pub struct Attribution<'a> {
    pub operation: Option<&'static str>,
    pub tenant: Option<&'a str>,
    pub access_key: Option<&'a str>,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
}

impl RequestAudit {
    pub fn start(log: &AuditLog, request_id: &str, peer: SocketAddr) -> Self {
        Self {
            log: log.clone(),
            slot: None,
            record: AuditRecord {
                request_id: request_id.to_owned(),
                kind: "s3",
                source: Some(peer.to_string()),
                ..AuditRecord::default()
            },
            started: Instant::now(),
            received: ReceivedBytes::default(),
            finished: false,
        }
    }

    /// The counter of the body bytes this request receives (see `received_bytes`).
    pub fn received(&self) -> &ReceivedBytes {
        &self.received
    }

    /// Body bytes received so far.
    pub fn bytes_in(&self) -> u64 {
        self.received.get()
    }

    /// Takes the request's place in the audit queue before it runs; SlowDown when the
    /// queue is full, since a request must not run without a place for its record.
    pub fn reserve(&mut self, who: Attribution<'_>) -> Result<(), S3Error> {
        self.attribute(&who);
        if self.slot.is_none() {
            self.slot = Some(self.log.reserve().ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::SlowDown,
                    "The audit trail is behind; please reduce your request rate.",
                )
            })?);
        }
        Ok(())
    }

    /// Queues the record of the answered request: in its reserved place, or, for a request
    /// that never got one, with the unauthenticated ones.
    pub fn finish(
        mut self,
        who: Attribution<'_>,
        status: u16,
        error: Option<&'static str>,
        bytes_out: u64,
    ) {
        self.attribute(&who);
        self.record.status = status;
        self.record.error = error;
        self.record.bytes_out = bytes_out;
        self.submit();
    }

    fn attribute(&mut self, who: &Attribution<'_>) {
        let record = &mut self.record;
        if let Some(operation) = who.operation {
            record.operation = operation.to_owned();
        }
        for (field, value) in [
            (&mut record.tenant, who.tenant),
            (&mut record.access_key, who.access_key),
            (&mut record.bucket, who.bucket),
            (&mut record.key, who.key),
        ] {
            if let Some(value) = value {
                *field = Some(value.to_owned());
            }
        }
    }

    fn submit(&mut self) {
        self.finished = true;
        let mut record = std::mem::take(&mut self.record);
        record.time = AuditRecord::now();
        if record.operation.is_empty() {
            record.operation = "Unknown".to_owned();
        }
        record.bytes_in = self.received.get();
        record.duration_us = self.started.elapsed().as_micros() as u64;
        match self.slot.take() {
            Some(slot) => slot.record(record),
            None => self.log.unauthenticated(record),
        }
    }
}

impl Drop for RequestAudit {
    fn drop(&mut self) {
        if !self.finished {
            self.record.status = CLIENT_CLOSED;
            self.record.error = Some("ClientClosedRequest");
            self.submit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::AuditConfig;

    fn open(dir: &std::path::Path, capacity: usize) -> AuditLog {
        AuditLog::open(AuditConfig {
            capacity,
            ..AuditConfig::new(dir.to_owned())
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn records(dir: &std::path::Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join("audit-00000001.jsonl"))
            .unwrap_or_else(|e| panic!("{e}"));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    fn peer() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 7], 40_000))
    }

    fn who<'a>(tenant: &'a str) -> Attribution<'a> {
        Attribution {
            operation: Some("PutObject"),
            tenant: Some(tenant),
            access_key: Some("AK"),
            bucket: Some("b"),
            key: Some("k"),
        }
    }

    #[test]
    fn a_full_queue_refuses_the_request_before_it_runs() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = open(dir.path(), 1);
        let mut first = RequestAudit::start(&log, "R1", peer());
        assert!(first.reserve(who("t")).is_ok());
        let mut second = RequestAudit::start(&log, "R2", peer());
        match second.reserve(who("t")) {
            Err(e) => assert_eq!(e.code(), S3ErrorCode::SlowDown),
            Ok(()) => panic!("admitted without a place for its record"),
        }
        second.finish(Attribution::default(), 503, Some("SlowDown"), 0);
        first.finish(Attribution::default(), 200, None, 0);
        assert!(log.flush(Duration::from_secs(10)));
        let records = records(dir.path());
        let ran = records
            .iter()
            .find(|r| r["request_id"] == "R1")
            .unwrap_or_else(|| panic!("{records:?}"));
        assert_eq!(ran["status"], 200);
        assert_eq!(ran["tenant"], "t");
        assert_eq!(ran["source"], "192.0.2.7:40000");
    }

    #[test]
    fn a_request_dropped_before_its_answer_is_recorded() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = open(dir.path(), 8);
        let mut audit = RequestAudit::start(&log, "R1", peer());
        assert!(audit.reserve(who("t")).is_ok());
        drop(audit);
        assert!(log.flush(Duration::from_secs(10)));
        let records = records(dir.path());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["status"], CLIENT_CLOSED);
        assert_eq!(records[0]["operation"], "PutObject");
        assert_eq!(records[0]["error"], "ClientClosedRequest");
        assert_eq!(log.pending(), 0);
    }
}
