//! What each distribution of a layer weighs: every file of `python/` attributed to the
//! distribution that installed it (`python::Owners`, read before slimming), summed as the
//! zip counts bytes (a file's length, a symlink's target), so the figures add up to the
//! layer's unzipped size exactly; and the treemap SVG `cargo xtask size` writes (`treemap.rs`,
//! laid out by `squarify.rs`, coloured by `colour.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::limits::UNZIPPED_LIMIT;
use crate::python::Owners;

mod colour;
mod squarify;
mod treemap;

pub use treemap::svg;

/// The name of the entry for files no distribution claims.
pub const UNATTRIBUTED: &str = "(unattributed)";

/// The folders kept per package in a report.
const FOLDERS_KEPT: usize = 8;

/// One distribution's share of a layer, as the build report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageSize {
    pub name: String,
    /// Empty for the unattributed entry.
    pub version: String,
    /// Unzipped bytes after slimming.
    pub bytes: u64,
    pub files: u64,
    /// Share of the layer's unzipped bytes, in percent.
    pub layer_percent: f64,
    /// Share of Lambda's 250 MiB budget, in percent.
    pub budget_percent: f64,
    /// Its licence from its METADATA (`License-Expression`, `License` or classifiers).
    #[serde(default)]
    pub license: Option<String>,
    /// Bytes slimming removed from it.
    pub slimmed_bytes: u64,
    /// The sha256 of the wheel (or sdist) pip installed it from, when pip knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Its largest folders (a top-level entry, or one level inside a top-level folder:
    /// `pandas/_libs`, `numpy.libs`), largest first.
    pub folders: Vec<FolderSize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderSize {
    pub path: String,
    pub bytes: u64,
}

#[derive(Default)]
struct Tally {
    bytes: u64,
    files: u64,
    folders: BTreeMap<String, u64>,
}

/// Bytes per owner (an index of `owners.dists`, or `None`) of the files under `python_dir`.
fn tally(python_dir: &Path, owners: &Owners) -> Result<BTreeMap<Option<usize>, Tally>> {
    let mut out: BTreeMap<Option<usize>, Tally> = BTreeMap::new();
    for e in walkdir::WalkDir::new(python_dir).min_depth(1).sort_by_file_name() {
        let e = e.with_context(|| format!("cannot read {}", python_dir.display()))?;
        let ft = e.file_type();
        let bytes = if ft.is_symlink() {
            std::fs::read_link(e.path())?.to_string_lossy().len() as u64
        } else if ft.is_file() {
            e.metadata()?.len()
        } else {
            continue;
        };
        let rel = e.path().strip_prefix(python_dir).unwrap().to_string_lossy().replace('\\', "/");
        let parts: Vec<&str> = rel.split('/').collect();
        let folder = match parts.len() {
            1 | 2 => parts[0].to_string(),
            _ => format!("{}/{}", parts[0], parts[1]),
        };
        let t = out.entry(owners.owner(&rel)).or_default();
        t.bytes += bytes;
        t.files += 1;
        *t.folders.entry(folder).or_default() += bytes;
    }
    Ok(out)
}

/// Bytes per owner before slimming, to tell what slimming removed from each.
pub struct Before {
    owners: Owners,
    bytes: BTreeMap<Option<usize>, u64>,
}

/// Reads the owners of `python_dir`'s files and their sizes; call before slimming.
pub fn before_slim(python_dir: &Path) -> Result<Before> {
    let owners = Owners::read(python_dir)?;
    let bytes = tally(python_dir, &owners)?.into_iter().map(|(k, t)| (k, t.bytes)).collect();
    Ok(Before { owners, bytes })
}

/// Per-distribution sizes of `python_dir` after slimming, largest first, the
/// unattributed files (if any) as one more entry; they sum to the layer's unzipped bytes.
pub fn after_slim(python_dir: &Path, before: &Before) -> Result<Vec<PackageSize>> {
    let after = tally(python_dir, &before.owners)?;
    let total: u64 = after.values().map(|t| t.bytes).sum();
    let mut keys: Vec<Option<usize>> = (0..before.owners.dists.len()).map(Some).collect();
    keys.push(None);
    let mut out = Vec::new();
    for k in keys {
        let t = after.get(&k);
        let bytes = t.map_or(0, |t| t.bytes);
        let was = before.bytes.get(&k).copied().unwrap_or(0);
        if k.is_none() && bytes == 0 {
            continue;
        }
        let (name, version, license) = match k {
            Some(i) => {
                let d = &before.owners.dists[i];
                (d.name.clone(), d.version.clone(), d.license.clone())
            }
            None => (UNATTRIBUTED.to_string(), String::new(), None),
        };
        let mut folders: Vec<FolderSize> = t
            .map(|t| t.folders.iter().map(|(p, b)| FolderSize { path: p.clone(), bytes: *b }).collect())
            .unwrap_or_default();
        folders.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
        folders.truncate(FOLDERS_KEPT);
        out.push(PackageSize {
            name,
            version,
            bytes,
            files: t.map_or(0, |t| t.files),
            layer_percent: round2(if total == 0 { 0.0 } else { bytes as f64 * 100.0 / total as f64 }),
            budget_percent: round2(bytes as f64 * 100.0 / UNZIPPED_LIMIT as f64),
            license,
            slimmed_bytes: was.saturating_sub(bytes),
            sha256: None,
            folders,
        });
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// One package's change between two builds of a unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageDelta {
    pub name: String,
    /// `None` when the package is new.
    pub version_before: Option<String>,
    /// `None` when the package is gone.
    pub version: Option<String>,
    pub bytes_before: u64,
    pub bytes: u64,
    pub delta_bytes: i64,
}

/// The packages whose version or size differ between `before` and `now`, by the size of
/// the change, largest first.
pub fn compare(before: &[PackageSize], now: &[PackageSize]) -> Vec<PackageDelta> {
    let mut names: Vec<&str> = before.iter().chain(now).map(|p| p.name.as_str()).collect();
    names.sort();
    names.dedup();
    let mut out: Vec<PackageDelta> = names
        .into_iter()
        .filter_map(|name| {
            let b = before.iter().find(|p| p.name == name);
            let n = now.iter().find(|p| p.name == name);
            let (bb, nb) = (b.map_or(0, |p| p.bytes), n.map_or(0, |p| p.bytes));
            let (bv, nv) = (b.map(|p| p.version.clone()), n.map(|p| p.version.clone()));
            (bb != nb || bv != nv).then(|| PackageDelta {
                name: name.to_string(),
                version_before: bv,
                version: nv,
                bytes_before: bb,
                bytes: nb,
                delta_bytes: nb as i64 - bb as i64,
            })
        })
        .collect();
    out.sort_by(|a, b| b.delta_bytes.unsigned_abs().cmp(&a.delta_bytes.unsigned_abs()).then(a.name.cmp(&b.name)));
    out
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_sum_to_the_tree_and_unclaimed_files_are_listed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("a-1.dist-info")).unwrap();
        std::fs::write(p.join("a-1.dist-info/METADATA"), "Name: a\nVersion: 1\n").unwrap();
        std::fs::write(p.join("a-1.dist-info/RECORD"), "a/x/y.py,,\na/t.pyc,,\n").unwrap();
        std::fs::create_dir_all(p.join("a/x")).unwrap();
        std::fs::write(p.join("a/x/y.py"), vec![b'x'; 100]).unwrap();
        std::fs::write(p.join("a/t.pyc"), vec![b'x'; 50]).unwrap();
        std::fs::write(p.join("stray.txt"), "12345").unwrap();
        let before = before_slim(p).unwrap();
        std::fs::remove_file(p.join("a/t.pyc")).unwrap();
        std::fs::remove_file(p.join("a-1.dist-info/RECORD")).unwrap();
        let sizes = after_slim(p, &before).unwrap();
        let total: u64 = sizes.iter().map(|s| s.bytes).sum();
        assert_eq!(total, 100 + 5 + "Name: a\nVersion: 1\n".len() as u64);
        assert_eq!(sizes[0].name, "a");
        assert_eq!(sizes[0].folders[0], FolderSize { path: "a/x".into(), bytes: 100 });
        assert_eq!(sizes[0].slimmed_bytes, 50 + "a/x/y.py,,\na/t.pyc,,\n".len() as u64);
        assert_eq!(sizes[1].name, UNATTRIBUTED);
        let svg = svg("t", &sizes, &[]);
        assert_eq!(svg.matches("class=\"package\"").count(), 2);
    }
}
