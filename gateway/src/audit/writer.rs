//! The writer thread: receives records, chains and appends them, syncs in batches (at most
//! `sync_delay` after a record arrives), rotates files by size with the chain carried over,
//! and records the chain head after every sync.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chain::{link_hash, ChainHead, GENESIS};
use super::record::AuditRecord;

/// What the gateway does when the audit trail cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Refuse requests (503) until the audit disk works again: no access without evidence.
    Refuse,
    /// Keep serving; the failure is logged and counted.
    Continue,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub dir: PathBuf,
    pub sync_delay: Duration,
    pub max_file_bytes: u64,
    pub on_failure: OnFailure,
}

/// Handle to the audit trail, cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: SyncSender<AuditRecord>,
    state: Arc<State>,
}

struct State {
    healthy: AtomicBool,
    failures: AtomicU64,
    written: AtomicU64,
    queued: AtomicU64,
    on_failure: OnFailure,
}

const QUEUE: usize = 65_536;
pub const FILE_PREFIX: &str = "audit-";
const HEAD_FILE: &str = "HEAD";

impl AuditLog {
    /// Opens (or creates) the trail in `config.dir`, continuing the existing chain.
    pub fn open(config: AuditConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let mut sink = Sink::resume(&config)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let state = Arc::new(State {
            healthy: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            written: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            on_failure: config.on_failure,
        });
        let thread_state = state.clone();
        std::thread::Builder::new()
            .name("coffre-audit".into())
            .spawn(move || run(&mut sink, rx, &thread_state, config.sync_delay))?;
        Ok(Self { tx, state })
    }

    /// Queues a record. Never blocks a request: a full queue is a failure, not a wait.
    pub fn record(&self, record: AuditRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {
                self.state.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.state.fail("audit queue full or writer stopped");
            }
        }
    }

    /// Whether requests may be served: false when the trail is failing and the policy is
    /// to refuse.
    pub fn accepting(&self) -> bool {
        self.state.on_failure == OnFailure::Continue || self.state.healthy.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until every queued record is synced: for a clean shutdown.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let queued = self.state.queued.load(Ordering::Relaxed);
            let done = self.state.written.load(Ordering::Relaxed)
                + self.state.failures.load(Ordering::Relaxed);
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
}

impl State {
    fn fail(&self, what: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::error!("AUDIT TRAIL FAILING: {what}");
        }
    }
}

/// Records written (and synced) together at most.
const MAX_BATCH: usize = 4096;

fn run(sink: &mut Sink, rx: Receiver<AuditRecord>, state: &State, sync_delay: Duration) {
    loop {
        let first = match rx.recv() {
            Ok(record) => record,
            Err(_) => return,
        };
        // The first record opens a batch; the rest of the window is slept through rather
        // than waited on record by record, so that requests do not wake this thread one by
        // one (a context switch per request on a busy server). Then whatever came is taken.
        std::thread::sleep(sync_delay);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        match sink.append(batch).and_then(|()| sink.sync()) {
            Ok(()) => {
                state.written.fetch_add(n, Ordering::Relaxed);
                if !state.healthy.swap(true, Ordering::Relaxed) {
                    tracing::warn!("audit trail writable again");
                }
            }
            Err(e) => state.fail(&e.to_string()),
        }
    }
}

/// The open log file and the chain's end.
struct Sink {
    dir: PathBuf,
    file: File,
    file_bytes: u64,
    sequence: u64,
    head: ChainHead,
    max_file_bytes: u64,
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
            sequence,
            head,
            max_file_bytes: config.max_file_bytes,
        })
    }

    fn append(&mut self, batch: Vec<AuditRecord>) -> std::io::Result<()> {
        let mut out = String::new();
        for record in batch {
            let line = chained_line(&record, &self.head.hash)?;
            self.head.hash = line.1;
            self.head.records += 1;
            out.push_str(&line.0);
            out.push('\n');
        }
        if self.file_bytes > 0 && self.file_bytes + out.len() as u64 > self.max_file_bytes {
            self.rotate()?;
        }
        self.file.write_all(out.as_bytes())?;
        self.file_bytes += out.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.sequence += 1;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(file_path(&self.dir, self.sequence))?;
        self.file_bytes = 0;
        sync_dir(&self.dir)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        let head = serde_json::to_vec(&self.head).map_err(std::io::Error::other)?;
        let tmp = self.dir.join("HEAD.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&head)?;
        f.sync_data()?;
        std::fs::rename(&tmp, self.dir.join(HEAD_FILE))?;
        sync_dir(&self.dir)
    }
}

/// `(line, hash)`: the record's JSON with `prev` and `hash` fields.
fn chained_line(record: &AuditRecord, prev: &str) -> std::io::Result<(String, String)> {
    let mut value = serde_json::to_value(record).map_err(std::io::Error::other)?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| std::io::Error::other("audit record is not an object"))?;
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
