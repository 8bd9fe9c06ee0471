//! The scenarios `loadgen` runs. Each returns report rows; every loop in them is bounded by a
//! count and by the run's `--max-seconds`.

pub mod listing;
pub mod objects;

use std::time::Duration;

use tokio::time::Instant;

use crate::phase::Limits;

/// Bounds shared by every phase of a run.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Each phase gets this long from its start.
    pub max_duration: Duration,
    pub max_errors: u64,
}

impl Bounds {
    pub fn limits(&self, count: u64, concurrency: usize) -> Limits {
        Limits {
            count,
            concurrency,
            deadline: Instant::now() + self.max_duration,
            max_errors: self.max_errors,
        }
    }
}

/// What a scenario produced.
#[derive(Debug, Default)]
pub struct ScenarioOutput {
    pub rows: Vec<crate::report::Row>,
    pub notes: Vec<String>,
}
