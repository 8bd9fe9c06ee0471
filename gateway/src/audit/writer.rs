//! The writer thread: receives records, chains and appends them, syncs once per batch
//! (a batch is whatever was queued while the previous one was being synced, so the writer
//! keeps up with the request rate without a fixed delay), rotates files by size with the
//! chain carried over, and records the chain head after every sync.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::admission::{Places, RateLimit, Summary};
use super::chain::{link_hash, ChainHead, GENESIS};
use super::record::AuditRecord;

/// What the gateway does when the audit trail cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Refuse requests (503) until the audit disk works again: no access without evidence.
    /// The records already queued are kept and written once the disk works.
    Refuse,
    /// Keep serving; the failure is logged and counted, and the records that could not be
    /// written are dropped.
    Continue,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub dir: PathBuf,
    pub max_file_bytes: u64,
    pub on_failure: OnFailure,
    /// Records queued or reserved by running requests, at most. Beyond, requests are
    /// refused with `SlowDown`.
    pub capacity: usize,
    /// Records of unauthenticated requests written one by one per second, at most; the
    /// others are counted in a summary record.
    pub unauthenticated_per_second: u32,
    /// How often the counted unauthenticated requests are written as a summary record.
    pub summary_interval: Duration,
    /// The node whose chain this is, written into every record (`node`): each gateway of a
    /// cluster keeps its own chain.
    pub node: Option<String>,
}

impl AuditConfig {
    /// The defaults, writing to `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            max_file_bytes: 64 * 1024 * 1024,
            on_failure: OnFailure::Refuse,
            capacity: 65_536,
            unauthenticated_per_second: 100,
            summary_interval: Duration::from_secs(10),
            node: None,
        }
    }
}

/// Handle to the audit trail, cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: Sender<AuditRecord>,
    state: Arc<State>,
}

/// A reserved place in the queue for the record of one request. Dropping it unused gives
/// the place back.
pub struct AuditSlot {
    log: AuditLog,
    used: bool,
}

impl AuditSlot {
    /// Queues the request's record in the place reserved for it.
    pub fn record(mut self, mut record: AuditRecord) {
        self.used = true;
        record.bound();
        self.log.send(record);
    }
}

impl Drop for AuditSlot {
    fn drop(&mut self) {
        if !self.used {
            self.log.state.places.release(1);
        }
    }
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records durably written since start.
    pub written: u64,
    /// Failed writes, and records dropped (a non-zero value is an incident).
    pub failures: u64,
    /// Requests refused because no place was left in the queue.
    pub refused: u64,
    /// Unauthenticated requests counted in summary records instead of recorded one by one.
    pub summarized: u64,
}

struct State {
    healthy: AtomicBool,
    failures: AtomicU64,
    written: AtomicU64,
    /// Records sent to the writer; `written + dropped` catches up with it.
    queued: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    summarized: AtomicU64,
    on_failure: OnFailure,
    places: Places,
    unauthenticated: RateLimit,
    summary: Summary,
}

pub const FILE_PREFIX: &str = "audit-";
const HEAD_FILE: &str = "HEAD";
/// Records written (and synced) together at most.
const MAX_BATCH: usize = 4096;
/// Longest wait before a failed write is tried again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);
/// How long the first record of a batch waits for others while the writer keeps up.
const GATHER: Duration = Duration::from_millis(4);

impl AuditLog {
    /// Opens (or creates) the trail in `config.dir`, continuing the existing chain.
    pub fn open(config: AuditConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let mut sink = Sink::resume(&config)?;
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(State {
            healthy: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            written: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            summarized: AtomicU64::new(0),
            on_failure: config.on_failure,
            places: Places::new(config.capacity),
            unauthenticated: RateLimit::new(config.unauthenticated_per_second),
            summary: Summary::default(),
        });
        let thread_state = state.clone();
        let interval = config.summary_interval;
        std::thread::Builder::new()
            .name("coffre-audit".into())
            .spawn(move || run(&mut sink, &rx, &thread_state, interval))?;
        Ok(Self { tx, state })
    }

    /// A place for the record of a request about to run, or `None` when the queue is full:
    /// the request must then be refused, not run.
    pub fn reserve(&self) -> Option<AuditSlot> {
        if self.state.places.take() {
            Some(AuditSlot {
                log: self.clone(),
                used: false,
            })
        } else {
            self.state.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Queues a record of the server's own work (key rotation and the like), which holds
    /// no slot: these are few, and never refused.
    pub fn record(&self, mut record: AuditRecord) {
        record.bound();
        self.state.places.force();
        self.send(record);
    }

    /// The record of a request nobody authenticated: written on its own while under the
    /// rate and while the queue has room, otherwise counted in the next summary record.
    pub fn unauthenticated(&self, mut record: AuditRecord) {
        if self.state.unauthenticated.allow() && self.state.places.take() {
            record.bound();
            self.send(record);
        } else {
            self.state.summarized.fetch_add(1, Ordering::Relaxed);
            self.state.summary.count(&record);
        }
    }

    fn send(&self, record: AuditRecord) {
        self.state.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(record).is_err() {
            self.state.places.release(1);
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
            self.state.fail("the audit writer stopped");
        }
    }

    /// Whether requests may be served: false when the trail is failing and the policy is
    /// to refuse.
    pub fn accepting(&self) -> bool {
        self.state.on_failure == OnFailure::Continue || self.state.healthy.load(Ordering::Relaxed)
    }

    /// Writes the pending summary, then waits (bounded) until every queued record is
    /// synced: for a clean shutdown.
    pub fn flush(&self, timeout: Duration) -> bool {
        if let Some(summary) = self.state.summary.take() {
            self.record(summary);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let queued = self.state.queued.load(Ordering::Relaxed);
            let done = self.state.written.load(Ordering::Relaxed)
                + self.state.dropped.load(Ordering::Relaxed);
            if done >= queued {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn failures(&self) -> u64 {
        self.state.failures.load(Ordering::Relaxed)
    }

    pub fn records_written(&self) -> u64 {
        self.state.written.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> AuditStats {
        AuditStats {
            written: self.records_written(),
            failures: self.failures(),
            refused: self.state.refused.load(Ordering::Relaxed),
            summarized: self.state.summarized.load(Ordering::Relaxed),
        }
    }

    /// Slots reserved plus records not yet written.
    pub fn pending(&self) -> usize {
        self.state.places.pending()
    }
}

impl State {
    fn fail(&self, what: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::error!("AUDIT TRAIL FAILING: {what}");
        }
    }

    fn done(&self, n: usize, written: bool) {
        let counter = if written {
            &self.written
        } else {
            &self.dropped
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        self.places.release(n);
    }
}

fn run(sink: &mut Sink, rx: &Receiver<AuditRecord>, state: &State, summary_interval: Duration) {
    let mut batch: Vec<AuditRecord> = Vec::new();
    let mut last_summary = Instant::now();
    let mut retry_delay = Duration::from_millis(10);
    let mut open = true;
    let mut backlogged = false;
    while open || !batch.is_empty() {
        if batch.is_empty() {
            // Wakes for the summary even when nothing else comes.
            match rx.recv_timeout(summary_interval) {
                Ok(record) => {
                    batch.push(record);
                    // Group commit: a writer keeping up lets the records of a few
                    // milliseconds gather under one sync (one sync per request would load
                    // the disk the data shares, and wake this thread per request); a
                    // writer behind never waits.
                    if !backlogged {
                        std::thread::sleep(GATHER);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        // Whatever queued up meanwhile goes in the same batch, under the same sync.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        backlogged = batch.len() >= MAX_BATCH;
        if last_summary.elapsed() >= summary_interval || !open {
            last_summary = Instant::now();
            if let Some(summary) = state.summary.take() {
                state.places.force();
                state.queued.fetch_add(1, Ordering::Relaxed);
                batch.push(summary);
            }
        }
        if batch.is_empty() {
            continue;
        }
        match sink.write_batch(&batch) {
            Ok(()) => {
                state.done(batch.len(), true);
                batch.clear();
                retry_delay = Duration::from_millis(10);
                if !state.healthy.swap(true, Ordering::Relaxed) {
                    tracing::warn!("audit trail writable again");
                }
            }
            Err(e) => {
                state.fail(&e.to_string());
                if state.on_failure == OnFailure::Continue || !open {
                    state.done(batch.len(), false);
                    batch.clear();
                } else {
                    // Kept and tried again: the records of requests that ran are not lost
                    // to a passing disk error. Meanwhile requests are refused.
                    std::thread::sleep(retry_delay);
                    retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
    }
}

/// The open log file and the chain's end.
struct Sink {
    dir: PathBuf,
    file: File,
    /// Bytes of complete, synced records in `file`.
    file_bytes: u64,
    /// A failed write may have left part of a batch after `file_bytes`.
    dirty: bool,
    sequence: u64,
    head: ChainHead,
    max_file_bytes: u64,
    node: Option<String>,
}

impl Sink {
    fn resume(config: &AuditConfig) -> std::io::Result<Self> {
        let files = log_files(&config.dir)?;
        let (sequence, head) = match files.last() {
            Some((sequence, path)) => (*sequence, chain_end(path, &config.dir)?),
            None => (
                1,
                ChainHead {
                    records: 0,
                    hash: GENESIS.to_owned(),
                },
            ),
        };
        let path = file_path(&config.dir, sequence);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let file_bytes = file.metadata()?.len();
        Ok(Self {
            dir: config.dir.clone(),
            file,
            file_bytes,
            dirty: false,
            sequence,
            head,
            max_file_bytes: config.max_file_bytes,
            node: config.node.clone(),
        })
    }

    /// Chains, appends and syncs `batch`, then records the new head. On error nothing of
    /// the batch counts: the chain's end is unchanged and what was appended is cut off
    /// before the next attempt, so the same batch can be written again.
    fn write_batch(&mut self, batch: &[AuditRecord]) -> std::io::Result<()> {
        if self.dirty {
            self.file.set_len(self.file_bytes)?;
            self.dirty = false;
        }
        let mut head = self.head.clone();
        let mut out = String::new();
        for record in batch {
            let (line, hash) = chained_line(record, self.node.as_deref(), &head.hash)?;
            head.hash = hash;
            head.records += 1;
            out.push_str(&line);
            out.push('\n');
        }
        if self.file_bytes > 0 && self.file_bytes + out.len() as u64 > self.max_file_bytes {
            self.rotate()?;
        }
        self.dirty = true;
        self.file.write_all(out.as_bytes())?;
        self.file.sync_data()?;
        write_head(&self.dir, &head)?;
        self.dirty = false;
        self.file_bytes += out.len() as u64;
        self.head = head;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(file_path(&self.dir, self.sequence + 1))?;
        sync_dir(&self.dir)?;
        self.sequence += 1;
        self.file = file;
        self.file_bytes = 0;
        Ok(())
    }
}

fn write_head(dir: &Path, head: &ChainHead) -> std::io::Result<()> {
    let text = serde_json::to_vec(head).map_err(std::io::Error::other)?;
    let tmp = dir.join("HEAD.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&text)?;
    f.sync_data()?;
    std::fs::rename(&tmp, dir.join(HEAD_FILE))?;
    sync_dir(dir)
}

/// `(line, hash)`: the record's JSON with `prev` and `hash` fields.
fn chained_line(
    record: &AuditRecord,
    node: Option<&str>,
    prev: &str,
) -> std::io::Result<(String, String)> {
    let mut value = serde_json::to_value(record).map_err(std::io::Error::other)?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| std::io::Error::other("audit record is not an object"))?;
    if let Some(node) = node {
        object.insert("node".into(), node.into());
    }
    object.insert("prev".into(), prev.into());
    let body = serde_json::to_string(&value).map_err(std::io::Error::other)?;
    let hash = link_hash(prev, &body);
    if let Some(object) = value.as_object_mut() {
        object.insert("hash".into(), hash.clone().into());
    }
    let line = serde_json::to_string(&value).map_err(std::io::Error::other)?;
    Ok((line, hash))
}

fn file_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{FILE_PREFIX}{sequence:08}.jsonl"))
}

/// The log files in chain order.
pub fn log_files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let sequence = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(FILE_PREFIX))
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(sequence) = sequence {
            files.push((sequence, path));
        }
    }
    files.sort();
    Ok(files)
}

/// The chain's end: the last complete record of the last file. A partial last line (a crash
/// mid-write, never acknowledged as synced) is cut off. HEAD gives the record count.
fn chain_end(last_file: &Path, dir: &Path) -> std::io::Result<ChainHead> {
    let head: Option<ChainHead> = std::fs::read(dir.join(HEAD_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let content = std::fs::read(last_file)?;
    let complete = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    if complete < content.len() {
        tracing::warn!(file = %last_file.display(), "cutting a partial audit record left by a crash");
        OpenOptions::new()
            .write(true)
            .open(last_file)?
            .set_len(complete as u64)?;
    }
    let hashes: Vec<String> = BufReader::new(&content[..complete])
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            serde_json::from_str::<serde_json::Value>(&line)
                .ok()?
                .get("hash")?
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let Some(last) = hashes.last().cloned() else {
        return Ok(head.unwrap_or(ChainHead {
            records: 0,
            hash: GENESIS.to_owned(),
        }));
    };
    let records = match &head {
        Some(head) => match hashes.iter().position(|h| *h == head.hash) {
            Some(at) => head.records + (hashes.len() - 1 - at) as u64,
            None => {
                tracing::error!(
                    "audit HEAD not found in the last log file: run `coffre audit verify`"
                );
                head.records
            }
        },
        None => hashes.len() as u64,
    };
    Ok(ChainHead {
        records,
        hash: last,
    })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
