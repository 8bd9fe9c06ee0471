use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

fn config(dir: &Path, max_file_bytes: u64) -> AuditConfig {
    AuditConfig {
        max_file_bytes,
        ..AuditConfig::new(dir.to_owned())
    }
}

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        time: AuditRecord::now(),
        request_id: format!("REQ{i}"),
        kind: "s3",
        tenant: Some("t1".into()),
        operation: "PutObject".into(),
        bucket: Some("b".into()),
        key: Some(format!("k{i}")),
        status: 200,
        bytes_in: i,
        duration_us: 1250,
        ..AuditRecord::default()
    }
}

/// Writes `n` records and waits (bounded) until they are synced.
fn write(log: &AuditLog, from: u64, n: u64) {
    let target = log.records_written() + n;
    for i in from..from + n {
        log.record(record(i));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.records_written() < target {
        assert!(
            Instant::now() < deadline,
            "audit records not synced in time"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
}

fn verify(dir: &Path) -> VerifyReport {
    verify_files(&[dir.to_owned()]).unwrap_or_else(|e| panic!("{e}"))
}

fn broken_line(report: VerifyReport) -> u64 {
    match report {
        VerifyReport::Broken { line, .. } => line,
        VerifyReport::Intact { records } => panic!("expected a break, chain intact ({records})"),
    }
}

fn written_log(n: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = AuditLog::open(config(dir.path(), 1 << 20)).unwrap_or_else(|e| panic!("{e}"));
    write(&log, 0, n);
    let file = files(dir.path()).remove(0);
    (dir, file)
}

#[test]
fn an_untouched_trail_verifies() {
    let (dir, _) = written_log(20);
    assert_eq!(verify(dir.path()), VerifyReport::Intact { records: 20 });
}

#[test]
fn an_edited_record_is_found() {
    let (dir, file) = written_log(10);
    let mut l = lines(&file);
    l[4] = l[4].replace("\"status\":200", "\"status\":403");
    rewrite(&file, &l);
    assert_eq!(broken_line(verify(dir.path())), 5);
}

#[test]
fn a_deleted_record_is_found() {
    let (dir, file) = written_log(10);
    let mut l = lines(&file);
    l.remove(3);
    rewrite(&file, &l);
    assert_eq!(broken_line(verify(dir.path())), 4);
}

#[test]
fn reordered_records_are_found() {
    let (dir, file) = written_log(10);
    let mut l = lines(&file);
    l.swap(6, 7);
    rewrite(&file, &l);
    assert_eq!(broken_line(verify(dir.path())), 7);
}

#[test]
fn a_truncated_file_is_found() {
    let (dir, file) = written_log(10);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, &text[..text.len() - 20]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(broken_line(verify(dir.path())), 10);
}

#[test]
fn removing_the_last_records_is_found() {
    let (dir, file) = written_log(10);
    let l = lines(&file);
    rewrite(&file, &l[..8]);
    assert!(matches!(verify(dir.path()), VerifyReport::Broken { .. }));
}

#[test]
fn the_chain_continues_across_rotation_and_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let log = AuditLog::open(config(dir.path(), 2_000)).unwrap_or_else(|e| panic!("{e}"));
        for batch in 0..6 {
            write(&log, batch * 5, 5);
        }
    }
    assert!(files(dir.path()).len() > 1, "expected rotation by size");
    let log = AuditLog::open(config(dir.path(), 2_000)).unwrap_or_else(|e| panic!("{e}"));
    write(&log, 100, 5);
    assert_eq!(verify(dir.path()), VerifyReport::Intact { records: 35 });
    // A whole rotated file removed breaks the chain at the next file.
    std::fs::remove_file(&files(dir.path())[0]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(broken_line(verify(dir.path())), 1);
}

/// Waits (bounded) until `log` has written `n` records in all.
fn wait_written(log: &AuditLog, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.records_written() < n {
        assert!(
            Instant::now() < deadline,
            "audit records not synced in time"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn all_lines(dir: &Path) -> Vec<serde_json::Value> {
    files(dir)
        .iter()
        .flat_map(|f| lines(f))
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn long_strings_are_cut_on_a_char_boundary_and_marked() {
    let mut long = record(1);
    long.bucket = Some("b".repeat(60 * 1024));
    // 'é' is two bytes: 1023 ASCII bytes then 'é' crosses the 1024-byte bound.
    long.key = Some(format!("{}é{}", "k".repeat(1023), "x".repeat(5000)));
    long.change = Some(serde_json::json!({ "target": "t".repeat(10_000), "n": 1 }));
    long.bound();
    assert_eq!(long.bucket.as_deref(), Some("b".repeat(63).as_str()));
    assert_eq!(long.key.as_deref(), Some("k".repeat(1023).as_str()));
    assert_eq!(long.truncated.get("bucket"), Some(&(60 * 1024)));
    assert_eq!(long.truncated.get("key"), Some(&(1023 + 2 + 5000)));
    assert_eq!(long.truncated.get("change"), Some(&10_000));
    let change = long.change.as_ref().map(|c| c["target"].clone());
    assert_eq!(change.and_then(|t| t.as_str().map(str::len)), Some(256));

    // Nobody authenticated: the key is kept shorter still; short fields are left alone.
    let mut anonymous = AuditRecord {
        tenant: None,
        key: Some("é".repeat(100)),
        bucket: Some("photos".into()),
        ..record(2)
    };
    anonymous.bound();
    assert_eq!(anonymous.key.as_deref(), Some("é".repeat(64).as_str()));
    assert_eq!(anonymous.bucket.as_deref(), Some("photos"));
    assert_eq!(anonymous.truncated.keys().collect::<Vec<_>>(), vec![&"key"]);
}

#[test]
fn a_record_is_bounded_on_its_way_into_the_trail() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = AuditLog::open(config(dir.path(), 1 << 20)).unwrap_or_else(|e| panic!("{e}"));
    let slot = log.reserve().unwrap_or_else(|| panic!("a free slot"));
    slot.record(AuditRecord {
        bucket: Some("x".repeat(60 * 1024)),
        ..record(1)
    });
    wait_written(&log, 1);
    let text = std::fs::read_to_string(&files(dir.path())[0]).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.len() < 1024, "{} bytes: {text}", text.len());
    let line: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(line["truncated"]["bucket"], 60 * 1024);
    assert_eq!(verify(dir.path()), VerifyReport::Intact { records: 1 });
}

#[test]
fn slots_are_bounded_and_given_back() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = AuditLog::open(AuditConfig {
        capacity: 2,
        ..config(dir.path(), 1 << 20)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let first = log.reserve().unwrap_or_else(|| panic!("first slot"));
    let second = log.reserve().unwrap_or_else(|| panic!("second slot"));
    assert!(log.reserve().is_none(), "a third request found a place");
    assert_eq!(log.stats().refused, 1);
    drop(first);
    let third = log.reserve().unwrap_or_else(|| panic!("a slot given back"));
    second.record(record(2));
    third.record(record(3));
    wait_written(&log, 2);
    // Written records leave the queue: places are free again.
    assert_eq!(log.pending(), 0);
    assert!(log.reserve().is_some());
}

#[test]
fn a_flood_of_unauthenticated_requests_is_summarised_and_takes_no_slot() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = AuditLog::open(AuditConfig {
        capacity: 8,
        unauthenticated_per_second: 5,
        ..config(dir.path(), 1 << 30)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..10_000 {
        log.unauthenticated(AuditRecord {
            tenant: None,
            operation: "PutObject".into(),
            bucket: Some("b".repeat(60 * 1024)),
            status: 403,
            error: Some("AccessDenied"),
            ..record(i)
        });
    }
    // Authenticated tenants still get every slot.
    let slots: Vec<AuditSlot> = (0..8).filter_map(|_| log.reserve()).collect();
    assert_eq!(slots.len(), 8);
    for (i, slot) in slots.into_iter().enumerate() {
        slot.record(record(20_000 + i as u64));
    }
    assert!(log.flush(Duration::from_secs(10)));

    let records = all_lines(dir.path());
    let alone = records
        .iter()
        .filter(|r| r["kind"] == "s3" && r["status"] == 403)
        .count();
    assert!(
        (1..=6).contains(&alone),
        "{alone} unauthenticated records written one by one"
    );
    let summary = records
        .iter()
        .find(|r| r["kind"] == "summary")
        .unwrap_or_else(|| panic!("no summary record"));
    assert_eq!(summary["operation"], "UnauthenticatedRequests");
    assert_eq!(summary["change"]["requests"], 10_000 - alone as u64);
    assert_eq!(
        summary["change"]["by_error"]["AccessDenied"],
        10_000 - alone as u64
    );
    assert_eq!(
        summary["change"]["by_operation"]["PutObject"],
        10_000 - alone as u64
    );
    assert_eq!(records.iter().filter(|r| r["status"] == 200).count(), 8);
    let bytes: u64 = files(dir.path())
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    assert!(
        bytes < 16 * 1024,
        "10,000 refused requests cost the trail {bytes} bytes"
    );
    assert_eq!(log.stats().summarized, 10_000 - alone as u64);
    assert_eq!(
        verify(dir.path()),
        VerifyReport::Intact {
            records: records.len() as u64
        }
    );
}

#[test]
fn the_writer_syncs_each_record_without_waiting_for_a_batch_window() {
    // One request at a time, each waiting for its record: a writer that slept a fixed
    // window per batch (50 ms) would need 2.5 s for these 50.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = AuditLog::open(config(dir.path(), 1 << 20)).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    for i in 0..50 {
        write(&log, i, 1);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "{elapsed:?} for 50 synced records"
    );
    assert_eq!(verify(dir.path()), VerifyReport::Intact { records: 50 });
}

#[test]
fn records_are_kept_through_a_failing_write_and_written_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = AuditLog::open(config(dir.path(), 1 << 20)).unwrap_or_else(|e| panic!("{e}"));
    write(&log, 0, 3);
    // The HEAD cannot be replaced while `HEAD.tmp` is a directory: every write fails after
    // its records were appended and synced.
    let blocker = dir.path().join("HEAD.tmp");
    std::fs::create_dir(&blocker).unwrap_or_else(|e| panic!("{e}"));
    for i in 3..6 {
        log.reserve()
            .unwrap_or_else(|| panic!("a slot"))
            .record(record(i));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.failures() == 0 {
        assert!(Instant::now() < deadline, "the write did not fail");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !log.accepting(),
        "requests are refused while the trail fails"
    );
    std::fs::remove_dir(&blocker).unwrap_or_else(|e| panic!("{e}"));
    wait_written(&log, 6);
    assert!(log.accepting());
    let ids: Vec<String> = all_lines(dir.path())
        .iter()
        .map(|r| r["request_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..6).map(|i| format!("REQ{i}")).collect();
    assert_eq!(ids, expected, "each record once, in order");
    assert_eq!(verify(dir.path()), VerifyReport::Intact { records: 6 });
}

#[test]
fn a_missing_head_is_a_break_once_records_exist() {
    let (dir, _) = written_log(5);
    std::fs::remove_file(dir.path().join("HEAD")).unwrap_or_else(|e| panic!("{e}"));
    match verify(dir.path()) {
        VerifyReport::Broken { reason, .. } => assert!(reason.contains("HEAD"), "{reason}"),
        other => panic!("expected a break, got {other:?}"),
    }
    // Removing the last records together with HEAD is found too.
    let file = files(dir.path()).remove(0);
    rewrite(&file, &lines(&file)[..3]);
    assert!(matches!(verify(dir.path()), VerifyReport::Broken { .. }));

    // An empty trail needs no HEAD.
    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verify(empty.path()), VerifyReport::Intact { records: 0 });
}
