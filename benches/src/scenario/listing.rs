//! ListObjectsV2 over a bucket of many keys: a full paginated scan (keys/s) and a delimiter
//! listing that returns one page of common prefixes (time per call). Missing keys are created
//! first, so a second run against the same bucket starts measuring at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::time::timeout;

use super::{Bounds, ScenarioOutput};
use crate::payload::PayloadBody;
use crate::phase::{self, Outcome};
use crate::report::Row;
use crate::s3_client::{ListRequest, S3Client};

/// S3's page size limit; also the size of the delimiter listing that is measured.
const PAGE_SIZE: u32 = 1000;
/// Tries per key when filling the bucket.
const FILL_ATTEMPTS: u64 = 4;

#[derive(Clone, Debug)]
pub struct ListingConfig {
    pub keys: u64,
    /// Keys are spread over this many common prefixes (`<base>/<prefix>/<key>`).
    pub prefixes: u64,
    pub create_concurrency: usize,
    pub scans: u64,
    pub delimiter_calls: u64,
}

struct Layout {
    base: String,
    prefixes: u64,
}

impl Layout {
    fn key(&self, index: u64) -> String {
        format!("{}{:06}/{index:07}", self.base, index % self.prefixes)
    }
}

pub async fn run(
    client: Arc<S3Client>,
    bounds: Bounds,
    config: &ListingConfig,
) -> Result<ScenarioOutput> {
    if config.prefixes == 0 {
        bail!("--prefixes must be at least 1");
    }
    let layout = Arc::new(Layout {
        base: format!("loadgen-list-{}/", config.prefixes),
        prefixes: config.prefixes,
    });
    let mut output = ScenarioOutput::default();

    let existing: HashSet<String> =
        match timeout(bounds.max_duration, scan(&client, &layout.base, true)).await {
            Ok(scanned) => scanned?.1.into_iter().collect(),
            Err(_) => bail!("listing the existing keys took longer than --max-seconds"),
        };
    let missing: Arc<Vec<u64>> = Arc::new(
        (0..config.keys)
            .filter(|&index| !existing.contains(&layout.key(index)))
            .collect(),
    );
    let mut present = config.keys - missing.len() as u64;
    if !missing.is_empty() {
        let fill = {
            let (client, layout, missing) = (client.clone(), layout.clone(), missing.clone());
            phase::run(
                bounds.limits(missing.len() as u64, config.create_concurrency),
                move |nth| {
                    let (client, layout, missing) =
                        (client.clone(), layout.clone(), missing.clone());
                    async move {
                        let index = missing[usize::try_from(nth)?];
                        put_with_retries(&client, &layout.key(index)).await?;
                        Ok(Outcome { bytes: 0, items: 1 })
                    }
                },
            )
            .await
        };
        present += fill.ops();
        output.rows.push(Row::new(
            "PUT (fill)",
            Some(0),
            config.create_concurrency,
            "objects",
            &fill,
        ));
    }
    output.notes.push(format!(
        "bucket holds {present} of the {} wanted keys under {} ({} were already there)",
        config.keys,
        layout.base,
        existing.len()
    ));

    let full_scan = {
        let (client, layout) = (client.clone(), layout.clone());
        phase::run(bounds.limits(config.scans, 1), move |_| {
            let (client, layout) = (client.clone(), layout.clone());
            async move {
                let (keys, _) = scan(&client, &layout.base, false).await?;
                if keys < present {
                    bail!("full scan returned {keys} keys, expected at least {present}");
                }
                Ok(Outcome {
                    bytes: 0,
                    items: keys,
                })
            }
        })
        .await
    };
    output
        .rows
        .push(Row::new("LIST scan", None, 1, "keys", &full_scan));

    let expected_prefixes = config.prefixes.min(present).min(u64::from(PAGE_SIZE));
    let delimiter = {
        let (client, layout) = (client.clone(), layout.clone());
        phase::run(bounds.limits(config.delimiter_calls, 1), move |_| {
            let (client, layout) = (client.clone(), layout.clone());
            async move {
                let page = client
                    .list_objects_v2(&ListRequest {
                        prefix: &layout.base,
                        delimiter: Some("/"),
                        max_keys: PAGE_SIZE,
                        continuation_token: None,
                    })
                    .await?;
                let found = page.common_prefixes.len() as u64;
                if found != expected_prefixes {
                    bail!(
                        "delimiter listing returned {found} prefixes, expected {expected_prefixes}"
                    );
                }
                Ok(Outcome {
                    bytes: 0,
                    items: found,
                })
            }
        })
        .await
    };
    output
        .rows
        .push(Row::new("LIST delimiter", None, 1, "prefixes", &delimiter));
    Ok(output)
}

/// Filling the bucket is set-up, not measurement: a failed PUT is retried a few times
/// (`rclone serve s3` answers 500 now and then when PUTs race to create the same directory).
async fn put_with_retries(client: &S3Client, key: &str) -> Result<()> {
    let mut attempt = 1;
    loop {
        match client.put_object(key, PayloadBody::default()).await {
            Ok(()) => return Ok(()),
            Err(err) if attempt >= FILL_ATTEMPTS => return Err(err),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// Pages through every key under `prefix`; returns the key count and, if asked, the keys.
async fn scan(client: &S3Client, prefix: &str, collect: bool) -> Result<(u64, Vec<String>)> {
    let mut count = 0u64;
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_objects_v2(&ListRequest {
                prefix,
                delimiter: None,
                max_keys: PAGE_SIZE,
                continuation_token: token.as_deref(),
            })
            .await?;
        count += page.keys.len() as u64;
        let next = page.next_continuation_token;
        if collect {
            keys.extend(page.keys);
        }
        match next {
            Some(next) if page.is_truncated => token = Some(next),
            _ => return Ok((count, keys)),
        }
    }
}
