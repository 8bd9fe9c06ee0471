//! PUT then (optionally) GET of `count` objects of one size, then DELETE of what was written.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Result};

use super::{Bounds, ScenarioOutput};
use crate::payload::Payload;
use crate::phase::{self, Outcome};
use crate::report::Row;
use crate::s3_client::S3Client;

#[derive(Clone, Debug)]
pub struct ObjectsConfig {
    pub size: u64,
    pub count: u64,
    pub concurrency: usize,
    /// GET every object that was written, after the PUT phase.
    pub read_back: bool,
    /// Check the CRC32 of one GET in this many (every GET's length is checked).
    pub verify_every: u64,
    /// Leave the objects in the bucket instead of deleting them at the end.
    pub keep: bool,
}

pub async fn run(
    client: Arc<S3Client>,
    bounds: Bounds,
    config: &ObjectsConfig,
    run_id: u64,
) -> Result<ScenarioOutput> {
    let payload = Arc::new(Payload::new(config.size, run_id));
    let prefix = Arc::new(format!("loadgen/{run_id:016x}/{}/", config.size));
    let key = |prefix: &str, index: u64| format!("{prefix}{index:07}");
    let mut output = ScenarioOutput::default();
    let row = |phase: &str, result: &phase::PhaseResult| {
        Row::new(
            phase,
            Some(config.size),
            config.concurrency,
            "objects",
            result,
        )
    };

    let put = {
        let (client, payload, prefix) = (client.clone(), payload.clone(), prefix.clone());
        phase::run(
            bounds.limits(config.count, config.concurrency),
            move |index| {
                let (client, payload, prefix) = (client.clone(), payload.clone(), prefix.clone());
                async move {
                    let body = payload.body(index);
                    let bytes = body.len();
                    client.put_object(&key(&prefix, index), body).await?;
                    Ok(Outcome { bytes, items: 1 })
                }
            },
        )
        .await
    };
    output.rows.push(row("PUT", &put));
    let written = Arc::new(put.succeeded.clone());

    if config.read_back && !written.is_empty() {
        let verify_every = config.verify_every.max(1);
        // Expected checksums are computed before the clock starts: only the reads are timed.
        let expected: Arc<HashMap<u64, u32>> = Arc::new(
            (0..written.len() as u64)
                .step_by(usize::try_from(verify_every).unwrap_or(usize::MAX))
                .map(|nth| {
                    let index = written[nth as usize];
                    (nth, payload.expected_crc32(index))
                })
                .collect(),
        );
        let size = config.size;
        let get = {
            let (client, prefix, written, expected) = (
                client.clone(),
                prefix.clone(),
                written.clone(),
                expected.clone(),
            );
            phase::run(
                bounds.limits(written.len() as u64, config.concurrency),
                move |nth| {
                    let (client, prefix, written, expected) = (
                        client.clone(),
                        prefix.clone(),
                        written.clone(),
                        expected.clone(),
                    );
                    async move {
                        let key = key(&prefix, written[usize::try_from(nth)?]);
                        let expected_crc = expected.get(&nth).copied();
                        let got = client.get_object(&key, expected_crc.is_some()).await?;
                        if got.length != size {
                            bail!("GET {key}: {} bytes, expected {size}", got.length);
                        }
                        if let (Some(crc), Some(expected)) = (got.crc32, expected_crc) {
                            if crc != expected {
                                bail!("GET {key}: CRC32 {crc:08x}, expected {expected:08x}");
                            }
                        }
                        Ok(Outcome {
                            bytes: got.length,
                            items: 1,
                        })
                    }
                },
            )
            .await
        };
        output.rows.push(row("GET", &get));
        output.notes.push(format!(
            "GET checked the length of every body and the CRC32 of 1 in {verify_every}"
        ));
    }

    if config.keep {
        output.notes.push(format!("objects kept under {prefix}"));
    } else if !written.is_empty() {
        let delete = {
            let (client, prefix, written) = (client.clone(), prefix.clone(), written.clone());
            phase::run(
                bounds.limits(written.len() as u64, config.concurrency),
                move |nth| {
                    let (client, prefix, written) =
                        (client.clone(), prefix.clone(), written.clone());
                    async move {
                        let index = written[usize::try_from(nth)?];
                        client.delete_object(&key(&prefix, index)).await?;
                        Ok(Outcome { bytes: 0, items: 1 })
                    }
                },
            )
            .await
        };
        output.rows.push(row("DELETE", &delete));
    }
    Ok(output)
}
