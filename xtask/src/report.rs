//! The build report written beside each zip in dist/, and where both live.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::python::Package;
use crate::repo::Repo;
use crate::runtime::{Arch, Runtime};
use crate::slim::SlimReport;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    pub layer: String,
    pub runtime: String,
    pub arch: Arch,
    /// The zip, relative to the repo root.
    pub zip: String,
    /// Hex SHA-256 of the zip.
    pub sha256: String,
    /// Base64 SHA-256 of the zip, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    pub zipped_bytes: u64,
    pub unzipped_bytes: u64,
    pub budget_percent: f64,
    pub file_count: u64,
    pub packages: Vec<Package>,
    pub fingerprint: String,
    pub slim: SlimReport,
    pub builder: String,
    pub image: String,
    pub duration_secs: f64,
    #[serde(default)]
    pub notes: Vec<String>,
    /// Seconds spent in each stage of the build (install, attribute (files to their
    /// distributions), slim, sizes, package, write, sbom).
    #[serde(default)]
    pub stages: std::collections::BTreeMap<String, f64>,
    /// Each distribution's unzipped bytes after slimming, largest first, with the files no
    /// distribution claims as `(unattributed)`: they sum to `unzipped_bytes` exactly.
    #[serde(default)]
    pub package_sizes: Vec<crate::sizes::PackageSize>,
}

/// The dist/ paths of one unit: `dist/<layer>/<layer>-<py>-<arch>.zip` and `.json`.
#[derive(Debug, Clone)]
pub struct DistPaths {
    pub dir: PathBuf,
    pub zip: PathBuf,
    pub report: PathBuf,
    /// The CycloneDX SBOM every build writes.
    pub sbom: PathBuf,
    /// The treemap `cargo xtask size` writes.
    pub svg: PathBuf,
}

impl DistPaths {
    pub fn new(repo: &Repo, layer: &str, runtime: Runtime, arch: Arch) -> DistPaths {
        let dir = repo.dist_dir().join(layer);
        let stem = format!("{layer}-{}-{}", runtime.tag(), arch.as_str());
        DistPaths {
            zip: dir.join(format!("{stem}.zip")),
            report: dir.join(format!("{stem}.json")),
            svg: dir.join(format!("{stem}.size.svg")),
            sbom: dir.join(format!("{stem}.cdx.json")),
            dir,
        }
    }

    /// The report of the build in dist/, if there is one whose zip is still there, whole.
    pub fn current(&self) -> Option<BuildReport> {
        let text = std::fs::read_to_string(&self.report).ok()?;
        let report: BuildReport = serde_json::from_str(&text).ok()?;
        let zip_len = std::fs::metadata(&self.zip).ok()?.len();
        (zip_len == report.zipped_bytes).then_some(report)
    }
}

pub fn read(path: &Path) -> Result<BuildReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("invalid build report {}", path.display()))
}
