use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

fn config(dir: &Path, max_file_bytes: u64) -> AuditConfig {
    AuditConfig {
        dir: dir.to_owned(),
        sync_delay: Duration::from_millis(5),
        max_file_bytes,
        on_failure: OnFailure::Refuse,
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
