//! TEMPORARY: direct serde parsing of dynamic files (replaced by the tree decoder).
use std::path::Path;

use super::dynamic::DynamicConfig;
use crate::provider::ConfigIssue;

pub fn parse_dynamic_file(
    path: &Path,
    text: &str,
) -> Result<(DynamicConfig, Vec<ConfigIssue>), Vec<ConfigIssue>> {
    let src = format!("file {}", path.display());
    let parsed: Result<DynamicConfig, String> = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(text).map_err(|e| e.to_string()),
        _ => serde_yaml::from_str(text).map_err(|e| e.to_string()),
    };
    parsed
        .map(|c| (c, Vec::new()))
        .map_err(|e| vec![ConfigIssue::error("file", src, e)])
}
