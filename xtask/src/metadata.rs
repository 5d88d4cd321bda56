//! Reads the installed distributions of a tree from their `*.dist-info/METADATA`.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
}

/// Every distribution installed directly in `python_dir`, sorted by name.
pub fn installed(python_dir: &Path) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(python_dir).with_context(|| format!("cannot read {}", python_dir.display()))? {
        let entry = entry?;
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        if !dir_name.ends_with(".dist-info") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path().join("METADATA")) else { continue };
        let (name, version) = headers(&text);
        if let (Some(name), Some(version)) = (name, version) {
            out.push(Package { name, version });
        }
    }
    out.sort();
    Ok(out)
}

/// The `Name` and `Version` headers of a METADATA file.
fn headers(text: &str) -> (Option<String>, Option<String>) {
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        if line.is_empty() {
            break; // The body (long description) starts after the first blank line.
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim().to_string());
        }
    }
    (name, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_and_version_from_headers_only() {
        let d = tempfile::tempdir().unwrap();
        let di = d.path().join("six-1.16.0.dist-info");
        std::fs::create_dir(&di).unwrap();
        std::fs::write(di.join("METADATA"), "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\nName: not-this\n")
            .unwrap();
        std::fs::create_dir(d.path().join("broken.dist-info")).unwrap();
        assert_eq!(installed(d.path()).unwrap(), vec![Package { name: "six".into(), version: "1.16.0".into() }]);
    }
}
