//! The bucket record with its CORS rules, and the `cors_index` entries.

use std::time::SystemTime;

use coffre_crypto::BucketId;
use serde::{Deserialize, Serialize};

use super::{decode_body, unix_millis, unknown_version, Record};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub id: BucketId,
    #[serde(with = "unix_millis")]
    pub created: SystemTime,
    pub region: String,
    /// The bucket's CORS rules, in the order given; empty: no CORS configuration. Kept in
    /// plaintext: they are answered to unauthenticated browser preflights, which cannot
    /// open anything sealed under the tenant's keys, and they are public by design.
    pub cors: Vec<CorsRule>,
}

/// One rule of a bucket's CORS configuration, as S3's `CORSRule` holds it. The gateway
/// validates and matches it; storage only keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u32>,
}

/// Format 2 added the CORS rules; format 1 buckets have none.
const BUCKET_FORMAT_VERSION: u8 = 2;

impl Record for BucketRecord {
    const KIND: &'static str = "bucket";
    const VERSION: u8 = BUCKET_FORMAT_VERSION;

    fn decode_older(version: u8, body: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct BucketRecordV1 {
            name: String,
            id: BucketId,
            #[serde(with = "unix_millis")]
            created: SystemTime,
            region: String,
        }
        match version {
            1 => {
                let v1: BucketRecordV1 = decode_body(Self::KIND, body)?;
                Ok(BucketRecord {
                    name: v1.name,
                    id: v1.id,
                    created: v1.created,
                    region: v1.region,
                    cors: Vec::new(),
                })
            }
            _ => Err(unknown_version(Self::KIND, version)),
        }
    }
}

/// `cors_index` value: the bucket incarnation that has CORS rules (see `bucket_cors`); an
/// entry that no longer names the live incarnation is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CorsIndexEntry {
    pub bucket: BucketId,
}

impl Record for CorsIndexEntry {
    const KIND: &'static str = "cors index";
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::records::now;

    fn bucket() -> BucketRecord {
        BucketRecord {
            name: "b".into(),
            id: BucketId::random(),
            created: now(),
            region: "us-east-1".into(),
            cors: vec![CorsRule {
                allowed_origins: vec!["*".into()],
                allowed_methods: vec!["GET".into()],
                max_age_seconds: Some(60),
                ..CorsRule::default()
            }],
        }
    }

    #[test]
    fn format_1_buckets_read_without_cors() {
        #[derive(Serialize)]
        struct V1<'a> {
            name: &'a str,
            id: BucketId,
            created: u64,
            region: &'a str,
        }
        let id = BucketId::random();
        let v1 = V1 {
            name: "old",
            id,
            created: 1234,
            region: "r",
        };
        let bytes = postcard::to_extend(&v1, vec![1]).unwrap();
        let bucket = BucketRecord::decode(&bytes).unwrap();
        assert_eq!((bucket.name.as_str(), bucket.id), ("old", id));
        assert!(bucket.cors.is_empty());
    }

    #[test]
    fn records_round_trip() {
        let record = bucket();
        assert_eq!(
            BucketRecord::decode(&record.encode().unwrap()).unwrap(),
            record
        );
    }

    #[test]
    fn unknown_version_truncation_and_trailing_bytes_are_corrupt() {
        let mut bytes = bucket().encode().unwrap();
        bytes[0] = 9;
        assert!(matches!(
            BucketRecord::decode(&bytes),
            Err(Error::Corrupt(_))
        ));
        bytes[0] = BUCKET_FORMAT_VERSION;
        assert!(matches!(
            BucketRecord::decode(&bytes[..bytes.len() - 1]),
            Err(Error::Corrupt(_))
        ));
        bytes.push(0);
        assert!(matches!(
            BucketRecord::decode(&bytes),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(BucketRecord::decode(&[]), Err(Error::Corrupt(_))));
    }
}
