//! `coffre audit verify`: walks the chain across files and reports the first break.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::chain::{link_hash, ChainHead, GENESIS};

#[derive(Debug, PartialEq, Eq)]
pub enum VerifyReport {
    Intact {
        records: u64,
    },
    /// The first record where the chain breaks, and why.
    Broken {
        file: PathBuf,
        line: u64,
        reason: String,
    },
}

/// Verifies `paths` (files, or a directory holding `audit-*.jsonl` and `HEAD`) in order.
pub fn verify_files(paths: &[PathBuf]) -> std::io::Result<VerifyReport> {
    let mut files = Vec::new();
    // Given a directory, its HEAD must be there (and readable) as soon as it holds records:
    // deleting HEAD along with the last records would otherwise go unnoticed.
    let mut head: Option<Result<ChainHead, String>> = None;
    for path in paths {
        if path.is_dir() {
            files.extend(super::writer::log_files(path)?.into_iter().map(|(_, p)| p));
            head = Some(read_head(path));
        } else {
            files.push(path.clone());
        }
    }
    let mut prev = GENESIS.to_owned();
    let mut records = 0u64;
    let (head, head_problem) = match head {
        None => (None, None),
        Some(Ok(head)) => (Some(head), None),
        Some(Err(problem)) => (None, Some(problem)),
    };
    let mut head_seen = head.as_ref().is_none_or(|h| h.hash == GENESIS);
    for file in &files {
        let mut reader = BufReader::new(std::fs::File::open(file)?);
        let mut line_no = 0u64;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            line_no += 1;
            let broken = |reason: String| VerifyReport::Broken {
                file: file.clone(),
                line: line_no,
                reason,
            };
            let Some(text) = line.strip_suffix('\n') else {
                return Ok(broken("truncated record (no end of line)".into()));
            };
            let mut value: serde_json::Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => return Ok(broken(format!("not a JSON record: {e}"))),
            };
            let Some(object) = value.as_object_mut() else {
                return Ok(broken("not a JSON object".into()));
            };
            let Some(hash) = object
                .remove("hash")
                .and_then(|h| h.as_str().map(str::to_owned))
            else {
                return Ok(broken("record has no hash".into()));
            };
            let claimed_prev = object
                .get("prev")
                .and_then(|p| p.as_str())
                .unwrap_or_default();
            if claimed_prev != prev {
                return Ok(broken(
                    "link to the previous record is wrong: a record before it was removed, \
                     inserted or reordered"
                        .into(),
                ));
            }
            let body = serde_json::to_string(&value).map_err(std::io::Error::other)?;
            if link_hash(&prev, &body) != hash {
                return Ok(broken(
                    "record content does not match its hash: edited".into(),
                ));
            }
            if head.as_ref().is_some_and(|h| h.hash == hash) {
                head_seen = true;
            }
            prev = hash;
            records += 1;
        }
    }
    if let Some(reason) = head_problem.filter(|_| records > 0) {
        return Ok(VerifyReport::Broken {
            file: files.last().cloned().unwrap_or_default(),
            line: records,
            reason,
        });
    }
    if !head_seen {
        let file = files.last().cloned().unwrap_or_default();
        return Ok(VerifyReport::Broken {
            file,
            line: records,
            reason: "the chain ends before the recorded HEAD: records were removed at the end"
                .into(),
        });
    }
    Ok(VerifyReport::Intact { records })
}

/// The directory's HEAD, or why there is none to trust.
fn read_head(dir: &Path) -> Result<ChainHead, String> {
    let path = dir.join("HEAD");
    let bytes = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "HEAD is missing while records exist: the end of the chain cannot be checked \
             (records may have been removed at the end)"
                .to_owned()
        } else {
            format!("HEAD cannot be read: {e}")
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("HEAD is not a chain head: {e}"))
}
