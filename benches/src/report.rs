//! Results: one row per measured phase, printed as a table or as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::byte_size::ByteSize;
use crate::phase::{PhaseResult, StopReason};

#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub endpoint: String,
    pub scenario: String,
    pub command: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// One measured phase. MB/s is 10^6 bytes per second; latencies are per operation.
#[derive(Debug, Serialize)]
pub struct Row {
    pub phase: String,
    pub object_size: Option<u64>,
    pub concurrency: usize,
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub bytes: u64,
    pub mb_per_s: f64,
    pub ops_per_s: f64,
    pub items: u64,
    pub item_unit: &'static str,
    pub items_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub stopped_by: StopReason,
    pub error_samples: Vec<String>,
}

impl Row {
    pub fn new(
        phase: &str,
        object_size: Option<u64>,
        concurrency: usize,
        item_unit: &'static str,
        result: &PhaseResult,
    ) -> Self {
        let seconds = result.elapsed.as_secs_f64();
        let rate = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Self {
            phase: phase.to_owned(),
            object_size,
            concurrency,
            ops: result.ops(),
            errors: result.errors,
            seconds,
            bytes: result.bytes,
            mb_per_s: rate(result.bytes) / 1e6,
            ops_per_s: rate(result.ops()),
            items: result.items,
            item_unit,
            items_per_s: rate(result.items),
            p50_ms: result.percentile(0.50).map(ms),
            p99_ms: result.percentile(0.99).map(ms),
            max_ms: result.latencies.last().copied().map(ms),
            stopped_by: result.stopped_by,
            error_samples: result.error_samples.clone(),
        }
    }
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.rows.iter().any(|row| row.errors > 0)
    }

    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "== {} ({}) scenario {}\n   {}",
            self.label, self.endpoint, self.scenario, self.command
        );
        let _ = writeln!(
            out,
            "{:<15} {:>7} {:>5} {:>7} {:>5} {:>8} {:>9} {:>9} {:>16} {:>9} {:>9} {:>9}  stop",
            "phase",
            "size",
            "conc",
            "ops",
            "err",
            "seconds",
            "MB/s",
            "ops/s",
            "items/s",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
        for row in &self.rows {
            let size = row
                .object_size
                .map(|size| ByteSize(size).to_string())
                .unwrap_or_else(|| "-".into());
            let items = format!("{:.0} {}", row.items_per_s, row.item_unit);
            let _ = writeln!(
                out,
                "{:<15} {:>7} {:>5} {:>7} {:>5} {:>8.2} {:>9.1} {:>9.1} {:>16} {:>9} {:>9} {:>9}  {:?}",
                row.phase,
                size,
                row.concurrency,
                row.ops,
                row.errors,
                row.seconds,
                row.mb_per_s,
                row.ops_per_s,
                items,
                fmt_ms(row.p50_ms),
                fmt_ms(row.p99_ms),
                fmt_ms(row.max_ms),
                row.stopped_by,
            );
        }
        for row in self.rows.iter().filter(|row| row.errors > 0) {
            for sample in &row.error_samples {
                let _ = writeln!(out, "   {} error: {sample}", row.phase);
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "   note: {note}");
        }
        out
    }
}

fn fmt_ms(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms < 10.0 => format!("{ms:.2}"),
        Some(ms) => format!("{ms:.1}"),
        None => "-".into(),
    }
}
