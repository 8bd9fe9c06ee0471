//! The values of the metadata store: serde structs encoded with postcard behind a leading
//! format-version byte. A value with an unknown version is [`Error::Corrupt`], never guessed
//! at; a new layout gets a new version and a decoder for the old one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, Result};

mod access_key;
mod bucket;
mod cluster;
mod gc;
mod object;
mod tenant;

pub use access_key::{AccessKeyInfo, AccessKeyState};
pub(crate) use access_key::{AccessKeyRecord, SealedSecret};
pub(crate) use bucket::CorsIndexEntry;
pub use bucket::{BucketRecord, CorsRule};
pub use cluster::{LeaseRecord, NodeRecord};
pub(crate) use gc::{FileLocation, GcEntry, GcState};
pub use object::{
    DataLocation, ObjectMeta, ObjectRecord, PartInfo, PartLayout, PartRecord, UploadRecord,
};
pub(crate) use tenant::TenantNameRecord;
pub use tenant::{
    KekRotation, Quotas, RewrapCursor, RewrapPhase, RotationState, TenantRecord, TenantState,
};

/// The only record layout this build writes and reads.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// A value of the metadata store.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// What the record is, for error messages.
    const KIND: &'static str;
    /// The layout this build writes.
    const VERSION: u8 = FORMAT_VERSION;

    fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_extend(self, vec![Self::VERSION])
            .map_err(|e| Error::Corrupt(format!("encoding {}: {e}", Self::KIND)))
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&version, body)) if version == Self::VERSION => decode_body(Self::KIND, body),
            Some((&version, body)) => Self::decode_older(version, body),
            None => Err(Error::Corrupt(format!("{} record: empty", Self::KIND))),
        }
    }

    /// Layouts written by earlier builds that this one still reads; none by default.
    fn decode_older(version: u8, _body: &[u8]) -> Result<Self> {
        Err(unknown_version(Self::KIND, version))
    }
}

/// One postcard value filling `body` exactly.
pub(crate) fn decode_body<T: DeserializeOwned>(kind: &str, body: &[u8]) -> Result<T> {
    let (record, rest) = postcard::take_from_bytes(body)
        .map_err(|e| Error::Corrupt(format!("{kind} record: {e}")))?;
    if rest.is_empty() {
        Ok(record)
    } else {
        Err(Error::Corrupt(format!("{kind} record: trailing bytes")))
    }
}

pub(crate) fn unknown_version(kind: &str, version: u8) -> Error {
    Error::Corrupt(format!("{kind} record: unknown format version {version}"))
}

/// Times are stored as milliseconds since the Unix epoch, the precision S3 shows.
pub(crate) mod unix_millis {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        time: &SystemTime,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        to_millis(*time).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<SystemTime, D::Error> {
        u64::deserialize(deserializer).map(from_millis)
    }
}

pub(crate) fn to_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn from_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Now, truncated to what a record keeps, so a returned record equals its stored form.
pub(crate) fn now() -> SystemTime {
    from_millis(to_millis(SystemTime::now()))
}
