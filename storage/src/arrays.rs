//! Storage arrays (mounted file systems) and where data files go on them.
//!
//! A data file's path comes only from the array, the tenant id and a random file id:
//! `<array>/<tenant-id-hex>/<ab>/<cd>/<file-id-hex>`, never from user-supplied names. New
//! files are placed by weighted rendezvous hashing, skipping arrays short of free space, so
//! adding an array moves only its share of new writes and no existing file.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use coffre_crypto::{ObjectId, TenantId};

use crate::error::{Error, Result};

/// An array that has less free space than this receives no new files.
pub const ARRAY_RESERVE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayConfig {
    /// Stable identity, recorded in metadata: renaming an array orphans its files.
    pub name: String,
    pub path: PathBuf,
    /// Share of new files; 0 drains the array (read, never written).
    pub weight: u32,
    pub site: Option<String>,
}

/// The validated arrays of a store.
#[derive(Debug)]
pub(crate) struct Arrays {
    arrays: Vec<ArrayConfig>,
}

impl Arrays {
    /// Checks names and creates the array roots.
    pub fn new(arrays: Vec<ArrayConfig>) -> Result<Self> {
        if arrays.is_empty() {
            return Err(Error::InvalidConfig("no storage array configured".into()));
        }
        let mut names = HashSet::new();
        for array in &arrays {
            let valid_name = !array.name.is_empty()
                && array
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !valid_name {
                return Err(Error::InvalidConfig(format!(
                    "bad array name {:?}",
                    array.name
                )));
            }
            if !names.insert(array.name.as_str()) {
                return Err(Error::InvalidConfig(format!(
                    "array {} listed twice",
                    array.name
                )));
            }
            std::fs::create_dir_all(&array.path)?;
        }
        Ok(Self { arrays })
    }

    pub fn by_name(&self, name: &str) -> Option<&ArrayConfig> {
        self.arrays.iter().find(|a| a.name == name)
    }

    /// Fails unless every entry of `placement` names an array or a site label.
    pub fn validate_placement(&self, placement: &[String]) -> Result<()> {
        for entry in placement {
            let known = self
                .arrays
                .iter()
                .any(|a| a.name == *entry || a.site.as_deref() == Some(entry.as_str()));
            if !known {
                return Err(Error::InvalidPlacement(format!(
                    "'{entry}' is neither an array name nor a site label"
                )));
            }
        }
        Ok(())
    }

    /// The array a new file goes to: the highest weighted rendezvous score among the arrays
    /// with room that `placement` allows (array names or site labels; empty allows all).
    pub fn place(&self, file: ObjectId, placement: &[String]) -> Result<&ArrayConfig> {
        let mut ranked: Vec<(f64, &ArrayConfig)> = self
            .arrays
            .iter()
            .filter(|a| a.weight > 0 && allows(placement, a))
            .map(|a| (rendezvous_score(file, a), a))
            .collect();
        ranked.sort_by(|x, y| y.0.total_cmp(&x.0));
        ranked
            .into_iter()
            .map(|(_, array)| array)
            .find(|array| has_room(&array.path))
            .ok_or(Error::NoArrayAvailable)
    }
}

fn allows(placement: &[String], array: &ArrayConfig) -> bool {
    placement.is_empty()
        || placement
            .iter()
            .any(|p| *p == array.name || array.site.as_deref() == Some(p.as_str()))
}

/// Weighted rendezvous hashing: `-weight / ln(u)` with `u` uniform in (0, 1) from the hash
/// of (file, array) gives each array a share of files proportional to its weight.
fn rendezvous_score(file: ObjectId, array: &ArrayConfig) -> f64 {
    let mut hasher = DefaultHasher::new();
    file.as_bytes().hash(&mut hasher);
    array.name.hash(&mut hasher);
    let unit = ((hasher.finish() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(array.weight) / unit.ln()
}

/// Free (available to unprivileged writers) and total bytes of the file system holding
/// `path`, for metrics; `None` when it cannot be read.
pub fn space(path: &Path) -> Option<(u64, u64)> {
    let stats = rustix::fs::statvfs(path).ok()?;
    Some((
        stats.f_bavail.saturating_mul(stats.f_frsize),
        stats.f_blocks.saturating_mul(stats.f_frsize),
    ))
}

fn has_room(path: &Path) -> bool {
    match rustix::fs::statvfs(path) {
        Ok(stats) => stats.f_bavail.saturating_mul(stats.f_frsize) >= ARRAY_RESERVE_BYTES,
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "cannot read array free space");
            false
        }
    }
}

/// `<array>/<tenant>`: everything of one tenant on one array.
pub(crate) fn tenant_dir(array: &Path, tenant: TenantId) -> PathBuf {
    array.join(tenant.to_hex())
}

/// `<array>/<tenant>/<ab>/<cd>`: the directory of a data file.
pub(crate) fn file_dir(array: &Path, tenant: TenantId, file: ObjectId) -> PathBuf {
    let hex = file.to_hex();
    tenant_dir(array, tenant).join(&hex[0..2]).join(&hex[2..4])
}

/// `<array>/<tenant>/<ab>/<cd>/<file>`.
pub(crate) fn file_path(array: &Path, tenant: TenantId, file: ObjectId) -> PathBuf {
    file_dir(array, tenant, file).join(file.to_hex())
}

/// `<array>/<tenant>/tmp`: files being written, renamed into place when complete.
pub(crate) fn temp_dir(array: &Path, tenant: TenantId) -> PathBuf {
    tenant_dir(array, tenant).join("tmp")
}

pub(crate) fn temp_path(array: &Path, tenant: TenantId, file: ObjectId) -> PathBuf {
    temp_dir(array, tenant).join(format!("{}.tmp", file.to_hex()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn array(name: &str, weight: u32) -> ArrayConfig {
        ArrayConfig {
            name: name.into(),
            path: PathBuf::from("/nonexistent"),
            weight,
            site: None,
        }
    }

    #[test]
    fn placement_follows_weights() {
        let arrays = [array("a", 1), array("b", 3)];
        let mut to_b = 0;
        for _ in 0..4000 {
            let file = ObjectId::random();
            let best = arrays
                .iter()
                .max_by(|x, y| rendezvous_score(file, x).total_cmp(&rendezvous_score(file, y)))
                .unwrap();
            if best.name == "b" {
                to_b += 1;
            }
        }
        assert!(
            (2800..3200).contains(&to_b),
            "{to_b} of 4000 went to weight 3 of 4"
        );
    }

    #[test]
    fn paths_come_from_ids_only() {
        let tenant = TenantId::from_bytes([0xAB; 16]);
        let file = ObjectId::from_bytes([0x12; 16]);
        let path = file_path(Path::new("/a"), tenant, file);
        assert_eq!(
            path,
            PathBuf::from(format!("/a/{}/12/12/{}", tenant.to_hex(), file.to_hex()))
        );
    }

    #[test]
    fn duplicate_or_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = array("a", 1);
        a.path = dir.path().join("a");
        assert!(Arrays::new(vec![a.clone(), a.clone()]).is_err());
        let mut bad = a.clone();
        bad.name = "../x".into();
        assert!(Arrays::new(vec![bad]).is_err());
        assert!(Arrays::new(vec![]).is_err());
        let arrays = Arrays::new(vec![a]).unwrap();
        assert_eq!(arrays.place(ObjectId::random(), &[]).unwrap().name, "a");
    }

    #[test]
    fn placement_keeps_files_on_allowed_arrays_and_sites() {
        let dir = tempfile::tempdir().unwrap();
        let mut configs = Vec::new();
        for (name, site) in [("a", "paris"), ("b", "paris"), ("c", "lyon")] {
            let mut config = array(name, 1);
            config.path = dir.path().join(name);
            config.site = Some(site.into());
            configs.push(config);
        }
        let arrays = Arrays::new(configs).unwrap();
        for _ in 0..50 {
            let file = ObjectId::random();
            assert_eq!(arrays.place(file, &["c".into()]).unwrap().name, "c");
            assert_ne!(arrays.place(file, &["paris".into()]).unwrap().name, "c");
        }
        assert!(arrays
            .validate_placement(&["lyon".into(), "a".into()])
            .is_ok());
        assert!(matches!(
            arrays.validate_placement(&["nowhere".into()]),
            Err(Error::InvalidPlacement(_))
        ));
    }
}
