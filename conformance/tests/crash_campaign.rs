//! Crash campaign (issue 12): the server is killed with SIGKILL at random moments under a
//! mixed load (PUTs inline, multi-segment and over 1 MiB, multipart uploads, copies,
//! deletes, tagging, a tenant KEK or root key rotation), restarted on its own state, and
//! every key is checked against a model of what the clients were told: an acknowledged
//! write is there with its exact bytes, ETag and tags, an acknowledged delete is gone, an
//! operation that got no answer happened or did not, and nothing else is ever visible (no
//! partial object, no listed key that does not read back), and the tenant's usage counts
//! exactly the objects and uploads that remain. At the end every rotation must
//! have finished (one KEK and one root key version left), everything is deleted, every
//! upload aborted, and the garbage collector must leave no data file on the array. Once on
//! RocksDB (embedded) and once on PostgreSQL.
//!
//! Bounded: `ROUNDS` kills, each after 100-800 ms of load. The seed of the operation mix and
//! of the kill moments is printed; `COFFRE_CRASH_SEED` replays one (the timing of the
//! server is not replayed, so a replay is close, not identical), `COFFRE_CRASH_ROUNDS`
//! runs a longer campaign.
//!
//! The model keeps, for each key, the set of states it may be in (`KeyModel::states`). One
//! client task owns each key, so the operations on a key are sequential: an acknowledged
//! one leaves exactly its outcome (from any state it may have applied to), an unanswered one
//! adds its outcome to what was possible before. After each restart the observed state
//! must be one of them, and the set collapses to it. A few more keys are overwritten and
//! deleted by every task at once (`ContendedKey`): each ends in the outcome of a write that
//! may have been the last one, as the clock stamps of the writes and their answers tell.
//!
//! `a_collector_pass_cut_short_leaves_no_orphan_file_*` kills the collector while it
//! removes the orphans of a crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging, TaggingDirective};
use aws_sdk_s3::Client;
use bytes::Bytes;
use coffre_conformance::{
    completed_parts, files_under, multipart_etag, postgres, pseudo_random_bytes, sdk_error,
    simple_etag, TestServer,
};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BUCKETS: [&str; 2] = ["crash-a", "crash-b"];
const TENANT: &str = "default";
/// Kill/restart rounds (`COFFRE_CRASH_ROUNDS` overrides).
const ROUNDS: usize = 5;
/// Concurrent client tasks, each owning `KEYS_PER_TASK` keys.
const TASKS: usize = 4;
const KEYS_PER_TASK: usize = 6;
/// Keys every task overwrites and deletes, and the share of the operations that go to them.
const CONTENDED_KEYS: usize = 3;
const CONTENDED_SHARE: f64 = 0.25;
/// Load before the kill: a random time in this range, in milliseconds.
const KILL_AFTER_MS: std::ops::RangeInclusive<u64> = 100..=800;
/// No single S3 call of the load should take this long while the server lives; once it is
/// killed every call fails at once. A call that times out ends its task (see `run_op`).
const OP_TIMEOUT: Duration = Duration::from_secs(30);
const MIB: usize = 1024 * 1024;
/// Every part of a multipart upload but the last is at least this large.
const MIN_PART: usize = 5 * MIB;

/// The server's settings: a collector pass every second, and a KEK rotation that rewraps
/// in small paced steps and retires the older versions one second after it began, so that
/// kills land in the middle of both.
const SETTINGS: &str = "gc_interval_secs = 1\n\n\
    [key_rotation]\nrewrap_batch = 4\nrewrap_pause_ms = 20\nretire_grace_secs = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_campaign_rocksdb() {
    // Named explicitly, so that the harness's PostgreSQL pass leaves it on RocksDB.
    let config = format!("{SETTINGS}\n[metadata]\nkind = \"rocksdb\"\n");
    campaign("rocksdb", &config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_campaign_postgres() {
    // No COFFRE_TEST_POSTGRES_URL is a failure, never a skip.
    let url = postgres::fresh_database();
    let config =
        format!("{SETTINGS}\n[metadata]\nkind = \"postgres\"\nurl = {url:?}\npool_size = 8\n");
    campaign("postgres", &config).await;
}

// ---------------------------------------------------------------------------------------
// The model.

/// An object's data, as the (length, seed) of each of its parts' pseudo-random bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Content {
    parts: Vec<(usize, u64)>,
    /// Made by CompleteMultipartUpload (its ETag is the MD5 of the part MD5s, `-N`).
    multipart: bool,
}

impl Content {
    fn single(len: usize, seed: u64) -> Self {
        Content {
            parts: vec![(len, seed)],
            multipart: false,
        }
    }

    fn part_bytes(&self) -> Vec<Vec<u8>> {
        self.parts
            .iter()
            .map(|&(len, seed)| pseudo_random_bytes(len, seed))
            .collect()
    }

    fn bytes(&self) -> Vec<u8> {
        self.part_bytes().concat()
    }

    fn len(&self) -> usize {
        self.parts.iter().map(|(len, _)| len).sum()
    }

    fn etag(&self) -> String {
        if self.multipart {
            multipart_etag(&self.part_bytes())
        } else {
            simple_etag(&self.bytes())
        }
    }

    /// What CopyObject makes of it: the same bytes, a single-part object whose ETag is
    /// their MD5 (as on AWS).
    fn copied(&self) -> Content {
        Content {
            parts: self.parts.clone(),
            multipart: false,
        }
    }
}

type Tags = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Obj {
    content: Content,
    tags: Tags,
}

/// A key's state: absent, or an object.
type State = Option<Obj>;

/// One key and the states it may be in.
#[derive(Clone, Debug)]
struct KeyModel {
    bucket: &'static str,
    key: String,
    states: Vec<State>,
}

/// The model contradicted by an acknowledgement: no state the key may be in allows it.
#[derive(Debug)]
struct Impossible(String);

impl KeyModel {
    fn new(bucket: &'static str, key: String) -> Self {
        KeyModel {
            bucket,
            key,
            states: vec![None],
        }
    }

    fn name(&self) -> String {
        format!("{}/{}", self.bucket, self.key)
    }

    /// The states `effect` leads to from each state the key may be in (an empty list: the
    /// operation fails from that state and changes nothing).
    fn outcomes(&self, effect: &impl Fn(&State) -> Vec<State>) -> Vec<State> {
        let mut out = Vec::new();
        for state in &self.states {
            for next in effect(state) {
                if !out.contains(&next) {
                    out.push(next);
                }
            }
        }
        out
    }

    /// An acknowledged operation: the key is now in one of its outcomes, and only those.
    fn acknowledged(
        &mut self,
        what: &str,
        effect: impl Fn(&State) -> Vec<State>,
    ) -> Result<(), Impossible> {
        let outcomes = self.outcomes(&effect);
        if outcomes.is_empty() {
            return Err(Impossible(format!(
                "{what} on {} was acknowledged, but no state the key may be in allows it: {}",
                self.name(),
                describe_states(&self.states)
            )));
        }
        self.states = outcomes;
        Ok(())
    }

    /// An operation without an answer (an error, a cut connection): it happened or not.
    fn uncertain(&mut self, effect: impl Fn(&State) -> Vec<State>) {
        for next in self.outcomes(&effect) {
            if !self.states.contains(&next) {
                self.states.push(next);
            }
        }
    }

    /// The objects the key may hold (for a copy from it).
    fn present(&self) -> Vec<Obj> {
        self.states.iter().flatten().cloned().collect()
    }

    /// Checks what the server shows of the key against the model, and keeps only the
    /// states that match it. When unanswered operations had left the key uncertain: whether
    /// one of them took effect (the first state is where the last acknowledged operation or
    /// observation left the key; the others are outcomes of unanswered ones).
    fn observe(&mut self, seen: &Observed) -> Result<Option<bool>, String> {
        let before = self.states.clone();
        self.states.retain(|state| seen.matches(state));
        if self.states.is_empty() {
            return Err(format!(
                "{}: the server shows {}, but the model allows only {}",
                self.name(),
                seen.describe(),
                describe_states(&before)
            ));
        }
        Ok((before.len() > 1).then(|| !self.states.contains(&before[0])))
    }
}

/// What the server showed of one key: GET, HEAD and GetObjectTagging.
#[derive(Debug)]
enum Observed {
    Absent,
    Present {
        body: Vec<u8>,
        get_etag: String,
        head_etag: String,
        head_len: i64,
        tags: Tags,
    },
}

impl Observed {
    fn matches(&self, state: &State) -> bool {
        match (self, state) {
            (Observed::Absent, None) => true,
            (
                Observed::Present {
                    body,
                    get_etag,
                    head_etag,
                    head_len,
                    tags,
                },
                Some(obj),
            ) => {
                if body.len() != obj.content.len() || *tags != obj.tags {
                    return false;
                }
                let etag = obj.content.etag();
                *get_etag == etag
                    && *head_etag == etag
                    && *head_len == body.len() as i64
                    && *body == obj.content.bytes()
            }
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Observed::Absent => "no object (404)".to_owned(),
            Observed::Present {
                body,
                get_etag,
                head_etag,
                head_len,
                tags,
            } => {
                let exact = format!("{:?}", simple_etag(body));
                format!(
                    "an object of {} bytes (GET ETag {get_etag}, HEAD ETag {head_etag} and \
                     size {head_len}, MD5 of the bytes read {exact}, tags {tags:?})",
                    body.len()
                )
            }
        }
    }
}

fn describe_states(states: &[State]) -> String {
    let described: Vec<String> = states
        .iter()
        .map(|state| match state {
            None => "absent".to_owned(),
            Some(obj) => format!(
                "{} bytes, ETag {}, parts {:?}, tags {:?}",
                obj.content.len(),
                obj.content.etag(),
                obj.content.parts,
                obj.tags
            ),
        })
        .collect();
    format!("[{}]", described.join("; "))
}

/// A key every task writes, with blind writes only (PUT, DELETE): concurrent overwrites
/// and deletes racing each other and the kill. Each write is stamped from one logical clock
/// when it is sent and when its answer comes back, and the key ends in the outcome of a
/// write that may have been the last: one no acknowledged write began after it ended (an
/// unanswered write never ended), or in its state before the round if no write was
/// acknowledged and none of the unanswered ones happened.
#[derive(Debug)]
struct ContendedKey {
    bucket: &'static str,
    key: String,
    /// The state the last check found.
    before: State,
    writes: Vec<Write>,
}

#[derive(Debug)]
struct Write {
    sent: u64,
    /// When its acknowledgement came back; `None`: unanswered.
    acked: Option<u64>,
    outcome: State,
}

impl ContendedKey {
    fn name(&self) -> String {
        format!("{}/{}", self.bucket, self.key)
    }

    /// The states the key may be in.
    fn candidates(&self) -> Vec<State> {
        let last_sent_after = |end: u64| {
            self.writes
                .iter()
                .any(|w| w.acked.is_some() && w.sent > end)
        };
        let mut out = Vec::new();
        if self.writes.iter().all(|w| w.acked.is_none()) {
            out.push(self.before.clone());
        }
        for write in &self.writes {
            let may_be_last = match write.acked {
                Some(end) => !last_sent_after(end),
                None => true,
            };
            if may_be_last && !out.contains(&write.outcome) {
                out.push(write.outcome.clone());
            }
        }
        out
    }

    /// Checks what the server shows against the candidates; the key starts the next round
    /// from it.
    fn observe(&mut self, seen: &Observed) -> Result<(), String> {
        let candidates = self.candidates();
        match candidates.iter().find(|state| seen.matches(state)) {
            Some(state) => {
                self.before = state.clone();
                self.writes.clear();
                Ok(())
            }
            None => Err(format!(
                "{} (written by every task): the server shows {}, but the model allows only \
                 {} (writes: {})",
                self.name(),
                seen.describe(),
                describe_states(&candidates),
                self.writes
                    .iter()
                    .map(|w| format!(
                        "[{}, {}] {}",
                        w.sent,
                        w.acked.map_or("unanswered".to_owned(), |a| a.to_string()),
                        describe_states(std::slice::from_ref(&w.outcome))
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
}

/// The contended keys and their clock, shared by the tasks.
#[derive(Debug)]
struct Contended {
    keys: std::sync::Mutex<Vec<ContendedKey>>,
    clock: std::sync::atomic::AtomicU64,
}

impl Contended {
    fn new() -> Self {
        Contended {
            keys: std::sync::Mutex::new(
                (0..CONTENDED_KEYS)
                    .map(|i| ContendedKey {
                        bucket: BUCKETS[i % BUCKETS.len()],
                        key: format!("contended/key-{i}"),
                        before: None,
                        writes: Vec::new(),
                    })
                    .collect(),
            ),
            clock: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------
// The campaign.

async fn campaign(backend: &str, config: &str) {
    let seed = match std::env::var("COFFRE_CRASH_SEED") {
        Ok(text) => text
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("COFFRE_CRASH_SEED={text}: {e}")),
        Err(_) => rand::random(),
    };
    let rounds = match std::env::var("COFFRE_CRASH_ROUNDS") {
        Ok(text) => text
            .parse::<usize>()
            .unwrap_or_else(|e| panic!("COFFRE_CRASH_ROUNDS={text}: {e}")),
        Err(_) => ROUNDS,
    };
    eprintln!(
        "crash campaign on {backend}: seed {seed} (COFFRE_CRASH_SEED={seed} replays it), \
         {rounds} rounds"
    );
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = TestServer::start_with_config(config, &[]);
    let token = admin_token(&server);
    let s3 = server.s3_client();
    for bucket in BUCKETS {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let mut owned: Vec<Vec<KeyModel>> = (0..TASKS)
        .map(|task| {
            (0..KEYS_PER_TASK)
                .map(|i| KeyModel::new(BUCKETS[i % BUCKETS.len()], format!("t{task}/key-{i}")))
                .collect()
        })
        .collect();
    let contended = Arc::new(Contended::new());
    let mut totals = Stats::default();
    // Acknowledged and unanswered rotations: of the tenant's KEK, of the root key.
    let mut rotations = [(0, 0), (0, 0)];
    let mut resolved = (0, 0);

    for round in 0..rounds {
        let s3 = server.s3_client();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for (task, keys) in owned.drain(..).enumerate() {
            let task_rng = StdRng::seed_from_u64(rng.gen());
            let (s3, stop, contended) = (s3.clone(), stop.clone(), contended.clone());
            tasks.spawn(async move {
                let done = client_task(s3, keys, &contended, task_rng, stop).await;
                (task, done)
            });
        }
        let load_for = Duration::from_millis(rng.gen_range(KILL_AFTER_MS));
        // In most rounds, at a random moment of the load, a rotation: of the tenant's KEK
        // (its rewrap goes on in the background) or of the root key (synchronous; one a
        // crash cut short is finished at the next start).
        let rotation = match rng.gen_range(0..100) {
            0..=54 => Some((KEK, format!("/admin/v1/tenants/{TENANT}/rotate-key"))),
            55..=79 => Some((ROOT, "/admin/v1/rotate-root".to_owned())),
            _ => None,
        }
        .map(|(which, path)| {
            let delay = load_for.mul_f64(rng.gen_range(0.0..1.0));
            let (endpoint, token) = (server.admin_endpoint.clone(), token.clone());
            let call = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let answer = admin_call(&endpoint, &token, Method::POST, &path).await;
                matches!(answer, Ok((200..=299, _)))
            });
            (which, call)
        });
        tokio::time::sleep(load_for).await;
        // The tasks send nothing more (each one's call in flight is cut by the kill), so
        // that no call reaches a dead server and adds an uncertainty for nothing.
        stop.store(true, Ordering::SeqCst);
        server.kill();

        let mut returned: Vec<(usize, (Vec<KeyModel>, Stats))> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            returned.push(done.unwrap_or_else(|e| panic!("seed {seed}: a client task: {e}")));
        }
        returned.sort_by_key(|(task, _)| *task);
        for (_, (keys, stats)) in returned {
            owned.push(keys);
            totals.add(&stats);
        }
        if let Some((which, call)) = rotation {
            let acked = call.await.unwrap();
            rotations[which].0 += usize::from(acked);
            rotations[which].1 += usize::from(!acked);
        }

        server.start_again();
        let s3 = server.s3_client();
        match check_against_model(&s3, &mut owned, &contended).await {
            Ok(checked) => {
                if let Err(failure) = check_usage(&server, &token, &s3, &checked).await {
                    panic!("seed {seed}, round {round}: {failure}");
                }
                eprintln!(
                    "round {round}: killed after {load_for:?}; after the restart {} of {} keys \
                     hold an object, as the model allows; of the keys that unanswered \
                     operations left uncertain, {} show one took effect, {} that none did \
                     ({:.1} s so far)",
                    checked.present,
                    TASKS * KEYS_PER_TASK + CONTENDED_KEYS,
                    checked.took_effect,
                    checked.did_not,
                    started.elapsed().as_secs_f64()
                );
                resolved.0 += checked.took_effect;
                resolved.1 += checked.did_not;
            }
            Err(failures) => panic!("seed {seed}, round {round}:\n{failures}"),
        }
    }
    eprintln!(
        "load over {rounds} rounds: {totals}; KEK rotations acknowledged {}, unanswered {}; \
         root key rotations acknowledged {}, unanswered {}; uncertain keys resolved: {} took \
         an unanswered operation's outcome, {} did not",
        rotations[KEK].0,
        rotations[KEK].1,
        rotations[ROOT].0,
        rotations[ROOT].1,
        resolved.0,
        resolved.1
    );
    let server_errors = totals.server_errors();
    assert!(
        server_errors.is_empty(),
        "seed {seed}: server errors while the server was up: {server_errors:?}"
    );

    let s3 = server.s3_client();
    // Every rotation ends (older KEK and root versions destroyed), and everything still
    // reads. Version 1 at the start; one more for each rotation that took place.
    let kek_version = wait_for_kek_rotation(&server, &token, seed).await;
    let root_version = wait_for_root_rotation(&server, &token, seed).await;
    for (which, version) in [(KEK, kek_version), (ROOT, root_version)] {
        let (acked, unanswered) = rotations[which];
        assert!(
            (1 + acked..=1 + acked + unanswered).contains(&version),
            "seed {seed}: {} version {version} after {acked} acknowledged and {unanswered} \
             unanswered rotations",
            ["KEK", "root key"][which]
        );
    }
    if let Err(failures) = check_against_model(&s3, &mut owned, &contended).await {
        panic!("seed {seed}, after the rotations finished:\n{failures}");
    }

    // Clean up, then the collector must leave no data file behind.
    let arrays = server.data_dir().join("arrays");
    let files_before = files_under(&arrays).len();
    for keys in &owned {
        for model in keys {
            s3.delete_object()
                .bucket(model.bucket)
                .key(&model.key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("DELETE {}: {e:?}", model.name()));
        }
    }
    let contended_keys: Vec<(&str, String)> = contended
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|k| (k.bucket, k.key.clone()))
        .collect();
    for (bucket, key) in contended_keys {
        s3.delete_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DELETE {bucket}/{key}: {e:?}"));
    }
    let mut aborted = 0;
    for bucket in BUCKETS {
        for (key, upload_id) in open_uploads(&s3, bucket).await {
            s3.abort_multipart_upload()
                .bucket(bucket)
                .key(&key)
                .upload_id(&upload_id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("AbortMultipartUpload {bucket}/{key}: {e:?}"));
            aborted += 1;
        }
        assert!(listing(&s3, bucket).await.is_empty(), "{bucket} is empty");
        assert!(
            open_uploads(&s3, bucket).await.is_empty(),
            "{bucket}: no upload"
        );
    }
    if let Err(failure) = check_usage(&server, &token, &s3, &Checked::default()).await {
        panic!("seed {seed}, after the clean-up: {failure}");
    }
    let left = after_two_gc_passes(&server, &token).await;
    let files = files_under(&arrays);
    assert!(
        files.is_empty(),
        "seed {seed}: {} data files left after everything was deleted ({aborted} uploads \
         aborted) and a whole collector pass ran: {files:#?}\n{left}",
        files.len()
    );
    eprintln!(
        "crash campaign on {backend} passed: seed {seed}, {rounds} rounds; {files_before} data \
         files before the clean-up, {aborted} open uploads aborted, none left after the \
         collector; {:.1} s\n{left}",
        started.elapsed().as_secs_f64()
    );
}

/// How the calls of the load were answered: by operation, "ok" or the error (HTTP status
/// and S3 code; status 0: no response, as when the server is killed).
#[derive(Default, Debug)]
struct Stats {
    counts: BTreeMap<String, usize>,
}

impl Stats {
    fn ok(&mut self, op: &str) {
        *self.counts.entry(format!("{op} ok")).or_default() += 1;
    }

    fn answered<T>(&mut self, op: &str, answer: &Answer<T>) {
        let outcome = match answer {
            Answer::Acked(_) => "ok".to_owned(),
            Answer::Unanswered { status: 0, .. } => "no response".to_owned(),
            Answer::Unanswered { status, code } => format!("{status} {code}"),
            Answer::TimedOut => "timed out".to_owned(),
        };
        *self.counts.entry(format!("{op} {outcome}")).or_default() += 1;
    }

    fn add(&mut self, other: &Stats) {
        for (outcome, count) in &other.counts {
            *self.counts.entry(outcome.clone()).or_default() += count;
        }
    }

    /// Calls answered with a server error (5xx): none is expected.
    fn server_errors(&self) -> Vec<String> {
        self.counts
            .iter()
            .filter(|(outcome, _)| outcome.contains(" 5"))
            .map(|(outcome, count)| format!("{outcome}: {count}"))
            .collect()
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(outcome, count)| format!("{outcome}: {count}"))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

// ---------------------------------------------------------------------------------------
// The load.

#[derive(Clone, Copy, Debug)]
enum Op {
    Put,
    Multipart,
    Copy,
    Delete,
    Tag,
}

fn pick_op(rng: &mut StdRng) -> Op {
    match rng.gen_range(0..100) {
        0..=34 => Op::Put,
        35..=49 => Op::Multipart,
        50..=66 => Op::Copy,
        67..=80 => Op::Delete,
        _ => Op::Tag,
    }
}

/// A size: inline (at most 4 KiB, sometimes empty), multi-segment above the 64 KiB inline
/// threshold, or over 1 MiB.
fn pick_len(rng: &mut StdRng) -> usize {
    match rng.gen_range(0..10) {
        0 => 0,
        1..=3 => rng.gen_range(1..=4096),
        4..=7 => rng.gen_range(65_537..=400_000),
        _ => rng.gen_range(MIB + 1..=5 * MIB / 2),
    }
}

fn pick_tags(rng: &mut StdRng) -> Tags {
    (0..rng.gen_range(0..=3))
        .map(|i| (format!("t{i}"), format!("v{}", rng.gen_range(0..1000))))
        .collect()
}

fn tagging_header(tags: &Tags) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn tag_set(tags: &Tags) -> Tagging {
    let set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
        .collect();
    Tagging::builder().set_tag_set(Some(set)).build().unwrap()
}

/// The answer to one call: acknowledged (with what it returned), or none (an error, a cut
/// connection: the operation may or may not have happened).
enum Answer<T> {
    Acked(T),
    /// An error: HTTP status (0 when no response came back) and S3 error code.
    Unanswered {
        status: u16,
        code: String,
    },
    /// No answer within `OP_TIMEOUT`: the task stops, so that nothing it sends later on
    /// the key can be overtaken by this call.
    TimedOut,
}

impl<T> Answer<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Acked(out) => Answer::Acked(f(out)),
            Answer::Unanswered { status, code } => Answer::Unanswered { status, code },
            Answer::TimedOut => Answer::TimedOut,
        }
    }
}

async fn call<T, E: ProvideErrorMetadata>(
    request: impl std::future::Future<Output = Result<T, SdkError<E>>>,
) -> Answer<T> {
    match tokio::time::timeout(OP_TIMEOUT, request).await {
        Ok(Ok(out)) => Answer::Acked(out),
        Ok(Err(e)) => {
            let (status, code) = sdk_error(&e);
            Answer::Unanswered { status, code }
        }
        Err(_) => Answer::TimedOut,
    }
}

/// Runs operations on the task's own keys until `stop`. Returns the keys' models.
async fn client_task(
    s3: Client,
    mut keys: Vec<KeyModel>,
    contended: &Contended,
    mut rng: StdRng,
    stop: Arc<AtomicBool>,
) -> (Vec<KeyModel>, Stats) {
    let mut stats = Stats::default();
    while !stop.load(Ordering::SeqCst) {
        if rng.gen_bool(CONTENDED_SHARE) {
            if !contended_write(&s3, contended, &mut rng, &mut stats).await {
                break;
            }
            continue;
        }
        let target = rng.gen_range(0..keys.len());
        let op = pick_op(&mut rng);
        match run_op(&s3, &mut keys, target, op, &mut rng, &mut stats).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(Impossible(message)) => panic!("{message}"),
        }
    }
    (keys, stats)
}

/// A PUT or DELETE of a contended key, recorded with its clock stamps; whether the task
/// goes on.
async fn contended_write(
    s3: &Client,
    contended: &Contended,
    rng: &mut StdRng,
    stats: &mut Stats,
) -> bool {
    let index = rng.gen_range(0..CONTENDED_KEYS);
    let (bucket, key) = {
        let keys = contended.keys.lock().unwrap();
        (keys[index].bucket, keys[index].key.clone())
    };
    let content = rng
        .gen_bool(0.8)
        .then(|| Content::single(pick_len(rng), rng.gen()));
    let sent = contended.tick();
    let (op, answer) = match &content {
        Some(content) => {
            let request = s3
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(ByteStream::from(content.bytes()))
                .send();
            let answer = call(request).await;
            if let Answer::Acked(out) = &answer {
                assert_eq!(out.e_tag(), Some(content.etag().as_str()), "PUT {key}");
            }
            ("contended put", answer.map(|_| ()))
        }
        None => {
            let answer = call(s3.delete_object().bucket(bucket).key(&key).send()).await;
            ("contended delete", answer.map(|_| ()))
        }
    };
    let acked = matches!(answer, Answer::Acked(_)).then(|| contended.tick());
    stats.answered(op, &answer);
    contended.keys.lock().unwrap()[index].writes.push(Write {
        sent,
        acked,
        outcome: content.map(|content| Obj {
            content,
            tags: Tags::new(),
        }),
    });
    !matches!(answer, Answer::TimedOut)
}

/// One operation on `keys[target]`, recorded in the model. `Ok(false)`: stop the task.
async fn run_op(
    s3: &Client,
    keys: &mut [KeyModel],
    target: usize,
    op: Op,
    rng: &mut StdRng,
    stats: &mut Stats,
) -> Result<bool, Impossible> {
    let (bucket, key) = (keys[target].bucket, keys[target].key.clone());
    match op {
        Op::Put => {
            let content = Content::single(pick_len(rng), rng.gen());
            let tags = if rng.gen_bool(0.3) {
                pick_tags(rng)
            } else {
                Tags::new()
            };
            let new = Some(Obj {
                content: content.clone(),
                tags: tags.clone(),
            });
            let effect = |_: &State| vec![new.clone()];
            let request = s3
                .put_object()
                .bucket(bucket)
                .key(&key)
                .set_tagging((!tags.is_empty()).then(|| tagging_header(&tags)))
                .body(ByteStream::from(content.bytes()))
                .send();
            match call(request).await {
                Answer::Acked(out) => {
                    stats.ok("put");
                    assert_eq!(out.e_tag(), Some(content.etag().as_str()), "PUT {key}");
                    keys[target].acknowledged("PutObject", effect)?;
                }
                answer => return Ok(unanswered(answer, &mut keys[target], effect, "put", stats)),
            }
        }
        Op::Multipart => {
            let parts: Vec<(usize, u64)> = if rng.gen_bool(0.15) {
                vec![
                    (MIN_PART, rng.gen()),
                    (rng.gen_range(1..=300_000), rng.gen()),
                ]
            } else {
                vec![(rng.gen_range(1..=400_000), rng.gen())]
            };
            let content = Content {
                parts,
                multipart: true,
            };
            let tags = if rng.gen_bool(0.3) {
                pick_tags(rng)
            } else {
                Tags::new()
            };
            let new = Some(Obj {
                content: content.clone(),
                tags: tags.clone(),
            });
            let effect = |_: &State| vec![new.clone()];
            // Until the completion is sent, the key does not change; an upload left open
            // by a failure is aborted at the end.
            let create = s3
                .create_multipart_upload()
                .bucket(bucket)
                .key(&key)
                .set_tagging((!tags.is_empty()).then(|| tagging_header(&tags)))
                .send();
            let upload_id = match call(create).await {
                Answer::Acked(out) => out.upload_id().unwrap().to_owned(),
                answer @ Answer::Unanswered { .. } => {
                    stats.answered("create upload", &answer);
                    return Ok(true);
                }
                Answer::TimedOut => return Ok(false),
            };
            let mut etags = Vec::new();
            for (i, data) in content.part_bytes().into_iter().enumerate() {
                let number = i as i32 + 1;
                let part = s3
                    .upload_part()
                    .bucket(bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(data))
                    .send();
                match call(part).await {
                    Answer::Acked(out) => etags.push((number, out.e_tag().unwrap().to_owned())),
                    answer @ Answer::Unanswered { .. } => {
                        stats.answered("upload part", &answer);
                        return Ok(true);
                    }
                    Answer::TimedOut => return Ok(false),
                }
            }
            let listed: Vec<(i32, &str)> = etags.iter().map(|(n, e)| (*n, e.as_str())).collect();
            let complete = s3
                .complete_multipart_upload()
                .bucket(bucket)
                .key(&key)
                .upload_id(&upload_id)
                .multipart_upload(completed_parts(&listed))
                .send();
            match call(complete).await {
                Answer::Acked(out) => {
                    stats.ok("multipart");
                    assert_eq!(out.e_tag(), Some(content.etag().as_str()), "Complete {key}");
                    keys[target].acknowledged("CompleteMultipartUpload", effect)?;
                }
                answer => {
                    return Ok(unanswered(
                        answer,
                        &mut keys[target],
                        effect,
                        "multipart",
                        stats,
                    ))
                }
            }
        }
        Op::Copy => {
            let source = (target + 1 + rng.gen_range(0..keys.len() - 1)) % keys.len();
            let replace = rng.gen_bool(0.3).then(|| pick_tags(rng));
            let candidates: Vec<Obj> = keys[source]
                .present()
                .into_iter()
                .map(|obj| Obj {
                    content: obj.content.copied(),
                    tags: replace.clone().unwrap_or(obj.tags),
                })
                .collect();
            let mut request = s3
                .copy_object()
                .bucket(bucket)
                .key(&key)
                .copy_source(format!("{}/{}", keys[source].bucket, keys[source].key));
            if let Some(tags) = &replace {
                request = request
                    .tagging_directive(TaggingDirective::Replace)
                    .tagging(tagging_header(tags));
            }
            match call(request.send()).await {
                Answer::Acked(out) => {
                    stats.ok("copy");
                    let etag = out
                        .copy_object_result()
                        .and_then(|r| r.e_tag())
                        .unwrap_or_default()
                        .to_owned();
                    // The source was one of these; the ETag tells which content.
                    let matching: Vec<State> = candidates
                        .iter()
                        .filter(|obj| obj.content.etag() == etag)
                        .cloned()
                        .map(Some)
                        .collect();
                    let from = keys[source].name();
                    keys[target]
                        .acknowledged(&format!("CopyObject from {from} (ETag {etag})"), |_| {
                            matching.clone()
                        })?;
                }
                Answer::Unanswered { status: 404, code } if code == "NoSuchKey" => {
                    // A definite answer: the source held no object, and nothing changed.
                    stats.ok("copy (NoSuchKey)");
                    let to = keys[target].name();
                    keys[source].acknowledged(
                        &format!("CopyObject to {to} answered NoSuchKey for its source"),
                        |state| match state {
                            None => vec![None],
                            Some(_) => Vec::new(),
                        },
                    )?;
                }
                answer => {
                    let effect = |_: &State| -> Vec<State> {
                        candidates.iter().cloned().map(Some).collect()
                    };
                    return Ok(unanswered(answer, &mut keys[target], effect, "copy", stats));
                }
            }
        }
        Op::Delete => {
            let effect = |_: &State| vec![None];
            match call(s3.delete_object().bucket(bucket).key(&key).send()).await {
                Answer::Acked(_) => {
                    stats.ok("delete");
                    keys[target].acknowledged("DeleteObject", effect)?;
                }
                answer => {
                    return Ok(unanswered(
                        answer,
                        &mut keys[target],
                        effect,
                        "delete",
                        stats,
                    ))
                }
            }
        }
        Op::Tag => {
            let tags = pick_tags(rng);
            let effect = |state: &State| match state {
                Some(obj) => vec![Some(Obj {
                    content: obj.content.clone(),
                    tags: tags.clone(),
                })],
                None => Vec::new(),
            };
            let request = s3
                .put_object_tagging()
                .bucket(bucket)
                .key(&key)
                .tagging(tag_set(&tags))
                .send();
            match call(request).await {
                Answer::Acked(_) => {
                    stats.ok("tag");
                    keys[target].acknowledged("PutObjectTagging", effect)?;
                }
                Answer::Unanswered { status: 404, code } if code == "NoSuchKey" => {
                    // A definite answer: the key held no object, and nothing changed.
                    stats.ok("tag (NoSuchKey)");
                    keys[target].acknowledged("PutObjectTagging answered NoSuchKey", |state| {
                        match state {
                            None => vec![None],
                            Some(_) => Vec::new(),
                        }
                    })?;
                }
                answer => return Ok(unanswered(answer, &mut keys[target], effect, "tag", stats)),
            }
        }
    }
    Ok(true)
}

/// Records an operation without an answer; whether the task goes on.
fn unanswered<T>(
    answer: Answer<T>,
    model: &mut KeyModel,
    effect: impl Fn(&State) -> Vec<State>,
    op: &'static str,
    stats: &mut Stats,
) -> bool {
    stats.answered(op, &answer);
    model.uncertain(effect);
    !matches!(answer, Answer::TimedOut)
}

// ---------------------------------------------------------------------------------------
// Checks.

/// What a check found.
#[derive(Debug, Default)]
struct Checked {
    /// Keys holding an object.
    present: usize,
    /// Their sizes.
    bytes: u64,
    /// Keys left uncertain by unanswered operations, one of which took effect.
    took_effect: usize,
    /// Keys left uncertain by unanswered operations, none of which took effect.
    did_not: usize,
}

/// Every key against the model; the keys that ListObjectsV2 shows against those GET finds.
/// What it found, or every discrepancy.
async fn check_against_model(
    s3: &Client,
    owned: &mut [Vec<KeyModel>],
    contended: &Contended,
) -> Result<Checked, String> {
    let mut failures = Vec::new();
    let mut checked = Checked::default();
    let mut found: BTreeMap<&'static str, BTreeMap<String, i64>> = BTreeMap::new();
    for model in owned.iter_mut().flatten() {
        let seen = observe(s3, model.bucket, &model.key).await;
        if let Observed::Present { body, .. } = &seen {
            checked.present += 1;
            checked.bytes += body.len() as u64;
            found
                .entry(model.bucket)
                .or_default()
                .insert(model.key.clone(), body.len() as i64);
        }
        match model.observe(&seen) {
            Ok(Some(true)) => checked.took_effect += 1,
            Ok(Some(false)) => checked.did_not += 1,
            Ok(None) => {}
            Err(failure) => failures.push(failure),
        }
    }
    let names: Vec<(&'static str, String)> = contended
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|k| (k.bucket, k.key.clone()))
        .collect();
    for (index, (bucket, key)) in names.into_iter().enumerate() {
        let seen = observe(s3, bucket, &key).await;
        if let Observed::Present { body, .. } = &seen {
            checked.present += 1;
            checked.bytes += body.len() as u64;
            found
                .entry(bucket)
                .or_default()
                .insert(key.clone(), body.len() as i64);
        }
        if let Err(failure) = contended.keys.lock().unwrap()[index].observe(&seen) {
            failures.push(failure);
        }
    }
    for bucket in BUCKETS {
        let listed = listing(s3, bucket).await;
        let expected = found.remove(bucket).unwrap_or_default();
        if listed != expected {
            failures.push(format!(
                "{bucket}: ListObjectsV2 shows {listed:?} (key: size), GET finds {expected:?}"
            ));
        }
    }
    if failures.is_empty() {
        Ok(checked)
    } else {
        Err(failures.join("\n"))
    }
}

/// The tenant's usage against what is stored: its objects and uploads in progress exactly;
/// its bytes, the data of both plus each one's record (its key and metadata as stored: at
/// most `RECORD_BYTES` here), so exactly zero once everything is gone.
async fn check_usage(
    server: &TestServer,
    token: &str,
    s3: &Client,
    checked: &Checked,
) -> Result<(), String> {
    const RECORD_BYTES: u64 = 2048;
    let mut uploads: u64 = 0;
    let mut part_bytes = 0;
    for bucket in BUCKETS {
        for (key, upload_id) in open_uploads(s3, bucket).await {
            uploads += 1;
            let parts = s3
                .list_parts()
                .bucket(bucket)
                .key(&key)
                .upload_id(&upload_id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListParts {bucket}/{key}: {e:?}"));
            assert_ne!(parts.is_truncated(), Some(true), "at most two parts");
            part_bytes += parts
                .parts()
                .iter()
                .map(|p| p.size().unwrap_or(0) as u64)
                .sum::<u64>();
        }
    }
    let body = admin_get(server, token, &format!("/admin/v1/tenants/{TENANT}")).await;
    let tenant: serde_json::Value = serde_json::from_str(&body).unwrap();
    let usage = &tenant["usage"];
    let data = checked.bytes + part_bytes;
    let records = checked.present as u64 + uploads;
    let counts = (
        usage["objects"].as_u64(),
        usage["uploads"].as_u64(),
        usage["buckets"].as_u64(),
    );
    let bytes = usage["bytes"].as_u64().unwrap_or(u64::MAX);
    let expected = (
        Some(checked.present as u64),
        Some(uploads),
        Some(BUCKETS.len() as u64),
    );
    if counts == expected && (data..=data + records * RECORD_BYTES).contains(&bytes) {
        Ok(())
    } else {
        Err(format!(
            "the tenant's usage is {usage}, but it stores {} objects ({} bytes of data) and \
             {uploads} uploads in progress ({part_bytes} bytes of parts) in {} buckets: {data} \
             bytes of data, and at most {RECORD_BYTES} bytes for each of their records",
            checked.present,
            checked.bytes,
            BUCKETS.len()
        ))
    }
}

/// GET (whole body), HEAD and GetObjectTagging of one key.
async fn observe(s3: &Client, bucket: &str, key: &str) -> Observed {
    let got = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) if sdk_error(&e).0 == 404 => {
            let head = s3.head_object().bucket(bucket).key(key).send().await;
            match head {
                Err(e) if sdk_error(&e).0 == 404 => return Observed::Absent,
                other => panic!("{bucket}/{key}: GET says 404, HEAD says {other:?}"),
            }
        }
        Err(e) => panic!("GET {bucket}/{key} after the restart: {e:?}"),
    };
    let get_etag = got.e_tag().unwrap_or_default().to_owned();
    let body = got
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: reading the body: {e:?}"))
        .into_bytes()
        .to_vec();
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("HEAD {bucket}/{key} (GET found it): {e:?}"));
    let tagging = s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObjectTagging {bucket}/{key} (GET found it): {e:?}"));
    Observed::Present {
        body,
        get_etag,
        head_etag: head.e_tag().unwrap_or_default().to_owned(),
        head_len: head.content_length().unwrap_or(-1),
        tags: tagging
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
    }
}

/// Every key ListObjectsV2 shows in `bucket`, with its size, across pages.
async fn listing(s3: &Client, bucket: &str) -> BTreeMap<String, i64> {
    let mut listed = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket}: {e:?}"));
        for object in page.contents() {
            let key = object.key().unwrap().to_owned();
            assert!(
                listed
                    .insert(key.clone(), object.size().unwrap_or(-1))
                    .is_none(),
                "{bucket}: {key} listed twice"
            );
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => return listed,
        }
    }
}

/// Every multipart upload in progress in `bucket`: (key, upload id).
async fn open_uploads(s3: &Client, bucket: &str) -> BTreeSet<(String, String)> {
    let mut uploads = BTreeSet::new();
    let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s3
            .list_multipart_uploads()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListMultipartUploads {bucket}: {e:?}"));
        for upload in page.uploads() {
            uploads.insert((
                upload.key().unwrap().to_owned(),
                upload.upload_id().unwrap().to_owned(),
            ));
        }
        if page.is_truncated() != Some(true) {
            return uploads;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        id_marker = page.next_upload_id_marker().map(str::to_owned);
    }
}

// ---------------------------------------------------------------------------------------
// The admin listener.

fn admin_token(server: &TestServer) -> String {
    std::fs::read_to_string(server.data_dir().join("admin-token"))
        .expect("the admin token")
        .trim()
        .to_owned()
}

/// One admin request; an error instead of a panic when the server is gone.
async fn admin_call(
    endpoint: &str,
    token: &str,
    method: Method,
    path: &str,
) -> Result<(u16, String), String> {
    let request = Request::builder()
        .method(method)
        .uri(format!("{endpoint}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = tokio::time::timeout(OP_TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("{path}: no answer within {OP_TIMEOUT:?}"))?
        .map_err(|e| format!("{path}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{path}: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn admin_get(server: &TestServer, token: &str, path: &str) -> String {
    let (status, body) = admin_call(&server.admin_endpoint, token, Method::GET, path)
        .await
        .unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Indexes of the rotation counts.
const KEK: usize = 0;
const ROOT: usize = 1;

/// Waits until the root key has one version left (a rotation a crash cut short is
/// finished in the background after the start). Returns it.
async fn wait_for_root_rotation(server: &TestServer, token: &str, seed: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = admin_get(server, token, "/admin/v1/root-key").await;
        let root: serde_json::Value = serde_json::from_str(&body).unwrap();
        let versions = root["versions"].as_array().unwrap();
        let current = root["current_version"].as_u64().unwrap();
        if versions.len() == 1 {
            assert_eq!(versions[0]["version"], current, "seed {seed}: {root}");
            eprintln!("root key after the campaign: {root}");
            return current as usize;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: older root key versions still held after 30 s: {root}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the tenant's latest KEK rotation, if any, has finished (its older versions
/// destroyed). Returns the tenant's KEK version.
async fn wait_for_kek_rotation(server: &TestServer, token: &str, seed: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = admin_get(server, token, &format!("/admin/v1/tenants/{TENANT}")).await;
        let tenant: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rotation = &tenant["encryption"]["rotation"];
        match rotation["state"].as_str() {
            None | Some("finished") => {
                let version = tenant["encryption"]["kek_version"].as_u64().unwrap();
                eprintln!("KEK version {version} after the campaign; rotation {rotation}");
                // Every older version was destroyed at the end.
                let held: Vec<u64> = tenant["encryption"]["keks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k["version"].as_u64().unwrap())
                    .collect();
                assert_eq!(held, [version], "seed {seed}: KEKs held: {tenant}");
                return version as usize;
            }
            Some("blocked") => panic!("seed {seed}: the KEK rotation is blocked: {rotation}"),
            Some(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the KEK rotation did not finish within 30 s: {rotation}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the sample `series` (name and labels) in a /metrics text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

const GC_OK: &str = "coffre_gc_passes_total{result=\"ok\"}";
const GC_FAILED: &str = "coffre_gc_passes_total{result=\"failed\"}";

/// Waits until two more collector passes have ended, so that one began after this call
/// and ran whole. Returns the collector's series as they are then (for a failure message).
async fn after_two_gc_passes(server: &TestServer, token: &str) -> String {
    let passes =
        |text: &str| sample(text, GC_OK).unwrap_or(0.0) + sample(text, GC_FAILED).unwrap_or(0.0);
    let first = passes(&admin_get(server, token, "/metrics").await);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = admin_get(server, token, "/metrics").await;
        if passes(&text) >= first + 2.0 {
            assert_eq!(
                sample(&text, GC_FAILED).unwrap_or(0.0),
                0.0,
                "a garbage-collection pass failed; see the server's log"
            );
            return text
                .lines()
                .filter(|l| l.starts_with("coffre_gc_"))
                .collect::<Vec<_>>()
                .join("\n");
        }
        assert!(
            Instant::now() < deadline,
            "no two garbage-collection passes within 30 s ({GC_OK} was {first})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The model's own rules.

fn obj(len: usize, seed: u64) -> State {
    Some(Obj {
        content: Content::single(len, seed),
        tags: Tags::new(),
    })
}

#[test]
fn an_acknowledged_write_is_the_only_state_and_an_unanswered_one_adds_its_outcome() {
    let mut model = KeyModel::new("b", "k".into());
    model.acknowledged("put", |_| vec![obj(10, 1)]).unwrap();
    assert_eq!(model.states, [obj(10, 1)]);
    model.uncertain(|_| vec![obj(20, 2)]);
    assert_eq!(model.states, [obj(10, 1), obj(20, 2)]);
    model.uncertain(|_| vec![None]);
    assert_eq!(model.states, [obj(10, 1), obj(20, 2), None]);
    model.acknowledged("delete", |_| vec![None]).unwrap();
    assert_eq!(model.states, [None]);
}

#[test]
fn tagging_applies_to_present_states_only_and_cannot_be_acknowledged_on_nothing() {
    let tags: Tags = [("a".to_owned(), "1".to_owned())].into();
    let tag = |state: &State| match state {
        Some(o) => vec![Some(Obj {
            content: o.content.clone(),
            tags: tags.clone(),
        })],
        None => Vec::new(),
    };
    let mut model = KeyModel::new("b", "k".into());
    assert!(model.acknowledged("tag", tag).is_err(), "nothing to tag");
    model.uncertain(|_| vec![obj(5, 1)]);
    model.uncertain(tag);
    assert_eq!(model.states.len(), 3, "{:?}", model.states);
    model.acknowledged("tag", tag).unwrap();
    assert_eq!(model.states.len(), 1);
    assert_eq!(model.states[0].as_ref().unwrap().tags, tags);
}

#[test]
fn an_observation_keeps_the_matching_states_and_refuses_anything_else() {
    let mut model = KeyModel::new("b", "k".into());
    model.uncertain(|_| vec![obj(100, 7)]);
    let data = pseudo_random_bytes(100, 7);
    let whole = Observed::Present {
        body: data.clone(),
        get_etag: simple_etag(&data),
        head_etag: simple_etag(&data),
        head_len: 100,
        tags: Tags::new(),
    };
    let mut partial = data.clone();
    partial[50] ^= 1;
    let damaged = Observed::Present {
        body: partial,
        get_etag: simple_etag(&data),
        head_etag: simple_etag(&data),
        head_len: 100,
        tags: Tags::new(),
    };
    assert!(model.clone().observe(&damaged).is_err());
    let mut absent = model.clone();
    assert_eq!(absent.observe(&Observed::Absent), Ok(Some(false)));
    assert_eq!(absent.states, [None]);
    assert_eq!(model.observe(&whole), Ok(Some(true)));
    assert_eq!(model.states, [obj(100, 7)]);
    assert!(model.observe(&Observed::Absent).is_err());
}

#[test]
fn a_copy_has_the_md5_of_its_bytes_as_etag() {
    let parts = Content {
        parts: vec![(10, 1), (20, 2)],
        multipart: true,
    };
    let data = parts.bytes();
    assert_eq!(parts.etag(), multipart_etag(&parts.part_bytes()));
    assert_eq!(parts.copied().etag(), simple_etag(&data));
    assert_eq!(parts.copied().len(), 30);
}

// ---------------------------------------------------------------------------------------
// A collector pass cut short.

/// Many writes left half-done by a kill become orphan intents; the next start's collector
/// claims each (a synced commit) and then removes its files. Killed again while it does,
/// every file must still be removed by a later pass (the claimed intent stays, abandoned,
/// until its files are gone: `storage/src/gc.rs`). It failed within 1 to 11 attempts when
/// the claim deleted the intent before the removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_pass_cut_short_leaves_no_orphan_file_rocksdb() {
    let config = format!("{SETTINGS}\n[metadata]\nkind = \"rocksdb\"\n");
    collector_cut_short(&config, None).await;
}

/// The same on PostgreSQL, where a leak is shown against the collector's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_pass_cut_short_leaves_no_orphan_file_postgres() {
    let url = postgres::fresh_database();
    let config =
        format!("{SETTINGS}\n[metadata]\nkind = \"postgres\"\nurl = {url:?}\npool_size = 8\n");
    collector_cut_short(&config, Some(url)).await;
}

async fn collector_cut_short(config: &str, postgres_url: Option<String>) {
    const ORPHANS: usize = 48;
    let seed: u64 = std::env::var("COFFRE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let attempts: usize = std::env::var("COFFRE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    eprintln!("seed {seed}, {attempts} attempts");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = TestServer::start_with_config(config, &[]);
    let token = admin_token(&server);
    server
        .s3_client()
        .create_bucket()
        .bucket("orphans")
        .send()
        .await
        .unwrap();
    let arrays = server.data_dir().join("arrays");
    for attempt in 0..attempts {
        // Half-sent uploads above the inline threshold: each has its intent and temp file.
        let mut senders = Vec::new();
        let mut uploads = Vec::new();
        for i in 0..ORPHANS {
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
            let request = server
                .request(Method::PUT, &format!("/orphans/o{i}"))
                .payload(coffre_conformance::Payload::Unsigned)
                .header("content-length", &(4 * MIB).to_string())
                .body_channel(rx)
                .build();
            uploads.push(tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(60),
                    coffre_conformance::raw_client().request(request),
                )
                .await;
            }));
            // Past the first ~1 MiB batch, which the server writes to the array.
            let chunk = Bytes::from(pseudo_random_bytes(MIB, i as u64));
            for _ in 0..2 {
                tx.send(chunk.clone()).await.unwrap();
            }
            senders.push(tx);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while files_under(&arrays).len() < ORPHANS {
            assert!(
                Instant::now() < deadline,
                "the uploads never reached the array"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.kill();
        drop(senders);
        for upload in uploads {
            let _ = upload.await;
        }
        let orphans = files_under(&arrays).len();
        // The collector's first pass runs at start: cut it short.
        server.start_again();
        let cut_after = Duration::from_millis(rng.gen_range(0..=400));
        tokio::time::sleep(cut_after).await;
        let before_kill = files_under(&arrays).len();
        server.kill();
        let after_kill = files_under(&arrays).len();
        server.start_again();
        after_two_gc_passes(&server, &token).await;
        let left = files_under(&arrays);
        eprintln!(
            "attempt {attempt}: {orphans} orphan files; killed {cut_after:?} after the start \
             ({before_kill} files then, {after_kill} at the kill); {} left after two passes",
            left.len()
        );
        let entries = match &postgres_url {
            Some(url) if !left.is_empty() => format!(
                "; the collector's entries (coffre_gc keys) now: {:?}",
                gc_entries(url)
            ),
            _ => String::new(),
        };
        assert!(
            left.is_empty(),
            "seed {seed}, attempt {attempt}: {} orphan files never collected: {left:#?}{entries}",
            left.len()
        );
    }
}

/// The keys (file ids, hex) of the collector's entries in a PostgreSQL metadata store.
fn gc_entries(url: &str) -> Vec<String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        client
            .query("SELECT encode(key, 'hex') FROM coffre_gc ORDER BY key", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
    .join()
    .unwrap()
}

#[test]
fn a_contended_key_ends_in_a_write_that_may_have_been_the_last() {
    let write = |sent, acked, seed| Write {
        sent,
        acked,
        outcome: obj(10, seed),
    };
    let mut key = ContendedKey {
        bucket: "b",
        key: "k".into(),
        before: obj(10, 0),
        writes: vec![write(1, None, 1)],
    };
    // Unanswered only: it happened or not.
    assert_eq!(key.candidates(), [obj(10, 0), obj(10, 1)]);
    // One acknowledged write after another: only the second (and the unanswered one).
    key.writes.push(write(2, Some(3), 2));
    key.writes.push(write(4, Some(5), 3));
    assert_eq!(key.candidates(), [obj(10, 1), obj(10, 3)]);
    // Overlapping acknowledged writes: either may be last.
    key.writes.push(write(4, Some(7), 4));
    assert_eq!(key.candidates(), [obj(10, 1), obj(10, 3), obj(10, 4)]);
    let data = pseudo_random_bytes(10, 2);
    let second = Observed::Present {
        body: data.clone(),
        get_etag: simple_etag(&data),
        head_etag: simple_etag(&data),
        head_len: 10,
        tags: Tags::new(),
    };
    assert!(
        key.observe(&second).is_err(),
        "overwritten by a later write"
    );
    let data = pseudo_random_bytes(10, 4);
    let fourth = Observed::Present {
        body: data.clone(),
        get_etag: simple_etag(&data),
        head_etag: simple_etag(&data),
        head_len: 10,
        tags: Tags::new(),
    };
    key.observe(&fourth).unwrap();
    assert_eq!((key.before.clone(), key.writes.len()), (obj(10, 4), 0));
}
