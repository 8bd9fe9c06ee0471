//! `[[arrays]]`: the directories data files are placed on.

use std::path::{Path, PathBuf};

use coffre_storage::ArrayConfig;
use serde::Deserialize;

use super::{invalid, ConfigError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArray {
    pub name: String,
    pub path: PathBuf,
    pub weight: Option<u32>,
    pub site: Option<String>,
}

/// Checks names, paths and weights; without any `[[arrays]]`, one array `0` under
/// `data_dir`.
pub(super) fn resolve_arrays(
    raw: Vec<RawArray>,
    data_dir: &Path,
) -> Result<Vec<ArrayConfig>, ConfigError> {
    let arrays = if raw.is_empty() {
        vec![ArrayConfig {
            name: "0".to_owned(),
            path: data_dir.join("arrays").join("0"),
            weight: 1,
            site: None,
        }]
    } else {
        let mut arrays: Vec<ArrayConfig> = Vec::new();
        for a in raw {
            if a.name.is_empty() || arrays.iter().any(|b| b.name == a.name) {
                return Err(invalid(
                    "arrays",
                    format!("array names must be unique and non-empty ('{}')", a.name),
                ));
            }
            if arrays.iter().any(|b| b.path == a.path) {
                return Err(invalid(
                    "arrays",
                    format!("two arrays share the path {}", a.path.display()),
                ));
            }
            let weight = a.weight.unwrap_or(1);
            if weight == 0 {
                return Err(invalid(
                    "arrays",
                    format!("array '{}' has weight 0", a.name),
                ));
            }
            arrays.push(ArrayConfig {
                name: a.name,
                path: a.path,
                weight,
                site: a.site,
            });
        }
        arrays
    };
    Ok(arrays)
}
