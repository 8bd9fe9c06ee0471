//! One measured loop: `count` operations spread over `concurrency` workers, stopped early by the
//! deadline or by too many errors. Latency is recorded per successful operation.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::time::{timeout_at, Instant};

/// Operations still running at the deadline get this long to finish before they are abandoned.
const DEADLINE_GRACE: Duration = Duration::from_secs(30);
/// How many distinct error messages a phase keeps for its report.
const ERROR_SAMPLES: usize = 3;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub count: u64,
    pub concurrency: usize,
    pub deadline: Instant,
    pub max_errors: u64,
}

/// What one operation did: bytes moved and items (objects, keys, prefixes) handled.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome {
    pub bytes: u64,
    pub items: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Count,
    Deadline,
    Errors,
}

#[derive(Debug)]
pub struct PhaseResult {
    pub elapsed: Duration,
    pub bytes: u64,
    pub items: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub stopped_by: StopReason,
    /// Sorted latencies of the successful operations.
    pub latencies: Vec<Duration>,
    /// Indices of the operations that succeeded, in increasing order.
    pub succeeded: Vec<u64>,
}

impl PhaseResult {
    pub fn ops(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// Nearest-rank percentile, `q` in 0..=1.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let n = self.latencies.len();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        Some(self.latencies[rank - 1])
    }
}

#[derive(Default)]
struct WorkerLog {
    latencies: Vec<Duration>,
    succeeded: Vec<u64>,
    bytes: u64,
    items: u64,
}

struct Shared {
    next: AtomicU64,
    errors: AtomicU64,
    error_samples: Mutex<Vec<String>>,
    deadline_hit: AtomicU64,
}

/// Runs `op(index)` for index in `0..limits.count`.
pub async fn run<F, Fut>(limits: Limits, op: F) -> PhaseResult
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Outcome>> + Send + 'static,
{
    let op = Arc::new(op);
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        error_samples: Mutex::new(Vec::new()),
        deadline_hit: AtomicU64::new(0),
    });
    let start = Instant::now();
    let workers: Vec<_> = (0..limits.concurrency.max(1))
        .map(|_| tokio::spawn(worker(limits, Arc::clone(&op), Arc::clone(&shared))))
        .collect();
    let mut log = WorkerLog::default();
    for worker in workers {
        match worker.await {
            Ok(worker_log) => {
                log.latencies.extend(worker_log.latencies);
                log.succeeded.extend(worker_log.succeeded);
                log.bytes += worker_log.bytes;
                log.items += worker_log.items;
            }
            Err(err) => record_error(&shared, format!("worker failed: {err}")),
        }
    }
    let elapsed = start.elapsed();
    log.latencies.sort_unstable();
    log.succeeded.sort_unstable();
    let errors = shared.errors.load(Ordering::Relaxed);
    let stopped_by = if errors >= limits.max_errors {
        StopReason::Errors
    } else if shared.deadline_hit.load(Ordering::Relaxed) > 0 {
        StopReason::Deadline
    } else {
        StopReason::Count
    };
    let error_samples = std::mem::take(
        &mut *shared
            .error_samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    PhaseResult {
        elapsed,
        bytes: log.bytes,
        items: log.items,
        errors,
        error_samples,
        stopped_by,
        latencies: log.latencies,
        succeeded: log.succeeded,
    }
}

async fn worker<F, Fut>(limits: Limits, op: Arc<F>, shared: Arc<Shared>) -> WorkerLog
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = anyhow::Result<Outcome>>,
{
    let mut log = WorkerLog::default();
    loop {
        if shared.errors.load(Ordering::Relaxed) >= limits.max_errors {
            break;
        }
        if Instant::now() >= limits.deadline {
            shared.deadline_hit.fetch_add(1, Ordering::Relaxed);
            break;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= limits.count {
            break;
        }
        let started = Instant::now();
        match timeout_at(limits.deadline + DEADLINE_GRACE, op(index)).await {
            Ok(Ok(outcome)) => {
                log.latencies.push(started.elapsed());
                log.succeeded.push(index);
                log.bytes += outcome.bytes;
                log.items += outcome.items;
            }
            Ok(Err(err)) => record_error(&shared, format!("{err:#}")),
            Err(_) => {
                shared.deadline_hit.fetch_add(1, Ordering::Relaxed);
                record_error(&shared, "abandoned: still running past the deadline".into());
            }
        }
    }
    log
}

fn record_error(shared: &Shared, message: String) {
    shared.errors.fetch_add(1, Ordering::Relaxed);
    let mut samples = shared
        .error_samples
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if samples.len() < ERROR_SAMPLES && !samples.contains(&message) {
        samples.push(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(count: u64) -> Limits {
        Limits {
            count,
            concurrency: 4,
            deadline: Instant::now() + Duration::from_secs(60),
            max_errors: 5,
        }
    }

    #[tokio::test]
    async fn runs_every_index_once() {
        let result = run(limits(100), |i| async move {
            Ok(Outcome { bytes: i, items: 1 })
        })
        .await;
        assert_eq!(result.ops(), 100);
        assert_eq!(result.items, 100);
        assert_eq!(result.bytes, (0..100).sum::<u64>());
        assert_eq!(result.succeeded, (0..100).collect::<Vec<_>>());
        assert_eq!(result.stopped_by, StopReason::Count);
    }

    #[tokio::test]
    async fn stops_after_max_errors() {
        let result = run(limits(1_000), |_| async { anyhow::bail!("no") }).await;
        assert_eq!(result.stopped_by, StopReason::Errors);
        assert!(result.errors >= 5 && result.errors < 5 + 4);
        assert_eq!(result.error_samples, ["no"]);
    }

    #[tokio::test]
    async fn stops_at_the_deadline() {
        let limits = Limits {
            deadline: Instant::now() + Duration::from_millis(50),
            ..limits(u64::MAX)
        };
        let result = run(limits, |_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(Outcome::default())
        })
        .await;
        assert_eq!(result.stopped_by, StopReason::Deadline);
        assert!(result.ops() > 0);
    }
}
