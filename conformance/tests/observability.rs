//! Operators' view of the real binary: `/metrics` in the Prometheus text format, scraped by
//! a real Prometheus server whose query API sees the workload; and the deploy files (alert
//! rules, Grafana dashboard) name only metrics the server exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use coffre_conformance::{files_under, TestServer};

fn admin_token(server: &TestServer) -> String {
    std::fs::read_to_string(server.data_dir().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

async fn http_get(url: &str, token: Option<&str>) -> (u16, String) {
    try_http_get(url, token).await.unwrap()
}

async fn try_http_get(
    url: &str,
    token: Option<&str>,
) -> Result<(u16, String), hyper_util::client::legacy::Error> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let mut request = http::Request::get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client.request(request.body(Empty::new()).unwrap()).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn workload(server: &TestServer) {
    let s3 = server.s3_client();
    s3.create_bucket().bucket("observed").send().await.unwrap();
    for i in 0..5 {
        s3.put_object()
            .bucket("observed")
            .key(format!("k{i}"))
            .body(ByteStream::from(vec![b'x'; 1000]))
            .send()
            .await
            .unwrap();
        s3.get_object()
            .bucket("observed")
            .key(format!("k{i}"))
            .send()
            .await
            .unwrap();
    }
    assert!(s3
        .get_object()
        .bucket("observed")
        .key("missing")
        .send()
        .await
        .is_err());
}

/// Metric names in a text exposition (`name{labels} value` lines).
fn exported_series(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn metrics_need_the_token_and_count_the_workload() {
    let server = TestServer::start();
    workload(&server).await;
    let url = format!("{}/metrics", server.admin_endpoint);
    let (status, _) = http_get(&url, None).await;
    assert_eq!(status, 401, "/metrics without the admin token");
    let (status, text) = http_get(&url, Some(&admin_token(&server))).await;
    assert_eq!(status, 200);
    for line in [
        "coffre_requests_total{op=\"PutObject\",code=\"200\"} 5",
        "coffre_requests_total{op=\"GetObject\",code=\"200\"} 5",
        "coffre_requests_total{op=\"GetObject\",code=\"404\"} 1",
        "coffre_received_bytes_total{op=\"PutObject\"} 5000",
        "coffre_sent_bytes_total{op=\"GetObject\"} 5000",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    let series = exported_series(&text);
    for name in [
        "coffre_request_duration_seconds_bucket",
        "coffre_build_info",
        "coffre_requests_in_flight",
        "coffre_array_free_bytes",
        "coffre_array_size_bytes",
        "coffre_kek_cache_entries",
    ] {
        assert!(series.contains(name), "missing {name}");
    }
    // Ten object requests of one tenant: its KEK is served from memory, not unwrapped by
    // the root key provider each time.
    let gauge = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(gauge("coffre_kek_cache_hits") >= 9.0, "{text}");
    assert!(gauge("coffre_kek_cache_misses") <= 1.0);
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `coffre_*` identifier in the deploy files.
fn metric_names_in_deploy_files() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in [
        "deploy/prometheus/coffre-alerts.yml",
        "deploy/grafana/coffre.json",
    ] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("coffre_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

#[tokio::test]
async fn deploy_files_name_only_exported_metrics() {
    // The workload's bucket is listed, so that the per-bucket series exist too.
    let server =
        TestServer::start_with_config("[metrics]\nbucket_labels = [\"default/observed\"]\n", &[]);
    workload(&server).await;
    let url = format!("{}/metrics", server.admin_endpoint);
    let (_, text) = http_get(&url, Some(&admin_token(&server))).await;
    let series = exported_series(&text);
    let names = metric_names_in_deploy_files();
    assert!(names.len() >= 8, "too few metric names found: {names:?}");
    for name in &names {
        assert!(
            series.contains(name),
            "{name} is used in deploy/ but the server does not export it"
        );
    }
}

/// The scrape, as the admin listener serves it to Prometheus.
async fn scrape(server: &TestServer) -> String {
    let url = format!("{}/metrics", server.admin_endpoint);
    let (status, text) = http_get(&url, Some(&admin_token(server))).await;
    assert_eq!(status, 200);
    text
}

/// The value of the one sample named exactly `series` (name and labels), if exported.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

const SEALS: &str = "coffre_encryption_operations_total{op=\"seal\"}";
const OPENS: &str = "coffre_encryption_operations_total{op=\"open\"}";
const FILES_WRITTEN: &str = "coffre_data_files_written_total{array=\"0\"}";
const BYTES_WRITTEN: &str = "coffre_array_written_bytes_total{array=\"0\"}";
const DATA_INTEGRITY: &str = "coffre_integrity_failures_total{kind=\"data\"}";
const UNWRAPS: &str =
    "coffre_key_provider_duration_seconds_count{op=\"unwrap\",provider=\"local-file\"}";

#[tokio::test]
async fn storage_key_provider_and_metadata_series_follow_the_workload() {
    let mut server = TestServer::start_with_config("gc_interval_secs = 1\n", &[]);
    let s3 = server.s3_client();
    s3.create_bucket().bucket("observed").send().await.unwrap();
    let before = scrape(&server).await;
    for name in [SEALS, OPENS, FILES_WRITTEN, BYTES_WRITTEN, DATA_INTEGRITY] {
        assert_eq!(value(&before, name), 0.0, "{name} before any object");
    }
    // The default tenant's KEK was wrapped by the root key when it was created.
    let wraps = "coffre_key_provider_duration_seconds_count{op=\"wrap\",provider=\"local-file\"}";
    assert!(value(&before, wraps) >= 1.0, "{before}");

    // 200 000 bytes: a data file of four sealed segments.
    let arrays = server.data_dir().join("arrays");
    let existing: BTreeSet<PathBuf> = files_under(&arrays).into_iter().collect();
    let body = vec![b'z'; 200_000];
    s3.put_object()
        .bucket("observed")
        .key("large")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("observed")
        .key("large")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().len(),
        body.len()
    );
    let after = scrape(&server).await;
    assert_eq!(value(&after, SEALS), 4.0);
    assert_eq!(value(&after, OPENS), 4.0);
    assert_eq!(value(&after, FILES_WRITTEN), 1.0);
    // Header, plaintext and one 16-byte tag per segment.
    assert_eq!(value(&after, BYTES_WRITTEN), (16 + 200_000 + 4 * 16) as f64);
    for op in ["get", "begin", "commit", "scan"] {
        let count = format!("coffre_meta_operation_duration_seconds_count{{op=\"{op}\"}}");
        assert!(value(&after, &count) > 0.0, "{count} in\n{after}");
    }
    assert!(value(&after, "coffre_rocksdb_memtable_bytes{cf=\"objects\"}") > 0.0);
    assert!(value(&after, "coffre_rocksdb_estimated_keys{cf=\"objects\"}") >= 1.0);
    assert_eq!(value(&after, "coffre_rocksdb_background_errors"), 0.0);

    // One flipped bit in the middle of the data file: the GET fails, and is counted.
    let created: Vec<PathBuf> = files_under(&arrays)
        .into_iter()
        .filter(|file| !existing.contains(file))
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    let mut sealed = std::fs::read(&created[0]).unwrap();
    let middle = sealed.len() / 2;
    sealed[middle] ^= 0x01;
    std::fs::write(&created[0], sealed).unwrap();
    // The status line has gone out when the damaged segment is reached: the body is cut.
    let whole = match s3.get_object().bucket("observed").key("large").send().await {
        Ok(response) => response.body.collect().await.is_ok(),
        Err(_) => false,
    };
    assert!(!whole, "a tampered object was read whole");
    let tampered = scrape(&server).await;
    assert!(value(&tampered, DATA_INTEGRITY) >= 1.0, "{tampered}");
    for kind in ["wrapped_dek", "sealed_value", "wrapped_kek"] {
        let series = format!("coffre_integrity_failures_total{{kind=\"{kind}\"}}");
        assert_eq!(value(&tampered, &series), 0.0, "only the data was damaged");
    }

    // Deleted, its file is queued and collected by a pass (one a second here).
    s3.delete_object()
        .bucket("observed")
        .key("large")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(&server).await;
        if value(&text, "coffre_gc_removed_files_total") >= 1.0 {
            assert!(value(&text, "coffre_gc_removed_bytes_total") >= 200_000.0);
            assert!(value(&text, "coffre_gc_passes_total{result=\"ok\"}") >= 1.0);
            assert_eq!(value(&text, "coffre_gc_retained_files"), 0.0);
            assert!(sample(&text, "coffre_gc_backlog_files{state=\"queued\"}").is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deleted file was never collected:\n{text}"
        );
        // The poll interval of the wait for the collection, under the deadline above.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A new process knows no KEK: the first request has the root key provider unwrap it.
    server.restart();
    let s3 = server.s3_client();
    s3.list_objects_v2()
        .bucket("observed")
        .send()
        .await
        .unwrap();
    let restarted = scrape(&server).await;
    assert!(value(&restarted, UNWRAPS) >= 1.0, "{restarted}");
    let slowest = "coffre_key_provider_duration_seconds_bucket{le=\"+Inf\",op=\"unwrap\",provider=\"local-file\"}";
    assert_eq!(sample(&restarted, slowest), sample(&restarted, UNWRAPS));
}

/// The default tenant's id, as the `tenant` label shows it.
fn default_tenant_id(text: &str) -> String {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("coffre_tenant_requests_total{tenant=\"")?;
            Some(rest.split('"').next()?.to_owned())
        })
        .unwrap_or_else(|| panic!("no tenant series in\n{text}"))
}

#[tokio::test]
async fn bucket_and_tenant_labels_follow_the_configuration() {
    let server = TestServer::start_with_config(
        "[metrics]\nbucket_labels = [\"default/listed\", \"nobody/listed\"]\n",
        &[],
    );
    let s3 = server.s3_client();
    for bucket in ["listed", "unlisted"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
        s3.put_object()
            .bucket(bucket)
            .key("k")
            .body(ByteStream::from(vec![b'x'; 100]))
            .send()
            .await
            .unwrap();
    }
    let text = scrape(&server).await;
    let tenant = default_tenant_id(&text);
    let listed = format!("{{tenant=\"{tenant}\",bucket=\"listed\"}}");
    assert_eq!(
        value(&text, &format!("coffre_bucket_requests_total{listed}")),
        2.0
    );
    assert_eq!(
        value(
            &text,
            &format!("coffre_bucket_received_bytes_total{listed}")
        ),
        100.0
    );
    assert!(!text.contains("bucket=\"unlisted\""), "{text}");

    let server = TestServer::start_with_config("[metrics]\ntenant_labels = false\n", &[]);
    workload(&server).await;
    let text = scrape(&server).await;
    assert_eq!(
        value(
            &text,
            "coffre_requests_total{op=\"PutObject\",code=\"200\"}"
        ),
        5.0
    );
    assert!(!text.contains("tenant="), "tenant labels are off:\n{text}");
}

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(target: &str, token_file: &Path) -> Prometheus {
    let binary = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect(
            "prometheus is not installed: conformance/run installs the Debian package `prometheus`",
        );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: coffre\n    \
             authorization:\n      type: Bearer\n      credentials_file: {}\n    \
             static_configs:\n      - targets: [\"{target}\"]\n",
            token_file.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// The value of an instant query's first sample, once Prometheus has one (bounded wait).
async fn query(prometheus: &Prometheus, promql: &str, deadline: Instant) -> f64 {
    let encoded: String = url_encode(promql);
    let url = format!("{}/api/v1/query?query={encoded}", prometheus.url);
    loop {
        // Prometheus may still be starting: connection errors are retried until the deadline.
        if let Ok(Ok((200, body))) =
            tokio::time::timeout(Duration::from_secs(5), try_http_get(&url, None)).await
        {
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            if let Some(sample) = value["data"]["result"].get(0) {
                return sample["value"][1].as_str().unwrap().parse().unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned a sample for {promql}"
        );
        // The poll interval of the wait for the sample, under the caller's deadline.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_workload() {
    let server = TestServer::start();
    let target = server
        .admin_endpoint
        .trim_start_matches("http://")
        .to_owned();
    let prometheus = start_prometheus(&target, &server.data_dir().join("admin-token"));
    let deadline = Instant::now() + Duration::from_secs(60);
    // Let a first scrape see the counters before the workload, so rate() has two points.
    assert_eq!(
        query(&prometheus, "up{job=\"coffre\"}", deadline).await,
        1.0
    );
    workload(&server).await;
    // rate() needs the counters to grow between two scrapes (1 s apart): a second round of
    // requests once a scrape has seen the first.
    let first_round = query(
        &prometheus,
        "sum(coffre_requests_total{op=\"PutObject\",code=\"200\"}) == 5",
        deadline,
    )
    .await;
    assert_eq!(first_round, 5.0);
    let s3 = server.s3_client();
    for i in 0..5 {
        s3.put_object()
            .bucket("observed")
            .key(format!("again{i}"))
            .body(ByteStream::from(vec![b'y'; 10]))
            .send()
            .await
            .unwrap();
        s3.get_object()
            .bucket("observed")
            .key(format!("again{i}"))
            .send()
            .await
            .unwrap();
    }
    for op in ["PutObject", "GetObject"] {
        let promql =
            format!("sum(rate(coffre_requests_total{{op=\"{op}\",code=\"200\"}}[1m])) > 0");
        let rate = query(&prometheus, &promql, deadline).await;
        assert!(rate > 0.0, "{op} rate {rate}");
    }
    let puts = query(
        &prometheus,
        "sum(coffre_requests_total{op=\"PutObject\",code=\"200\"}) == 10",
        deadline,
    )
    .await;
    assert_eq!(puts, 10.0);
    // Every object, inline ones too, is sealed and opened segment by segment.
    for op in ["seal", "open"] {
        let promql = format!("rate(coffre_encryption_operations_total{{op=\"{op}\"}}[1m]) > 0");
        let rate = query(&prometheus, &promql, deadline).await;
        assert!(rate > 0.0, "{op} rate {rate}");
    }
    let gets = query(
        &prometheus,
        "coffre_meta_operation_duration_seconds_count{op=\"get\"} > 0",
        deadline,
    )
    .await;
    assert!(gets > 0.0);
    let kinds = query(
        &prometheus,
        "count(coffre_integrity_failures_total == 0)",
        deadline,
    )
    .await;
    assert_eq!(kinds, 4.0, "every kind exported, none failed");
    let live = query(
        &prometheus,
        "sum(coffre_rocksdb_estimated_keys) > 0",
        deadline,
    )
    .await;
    assert!(live > 0.0);
}
