//! Removes from an installed tree what Lambda never imports, rule by rule, and reports the
//! files and bytes each rule removed.
//!
//! `safe` keeps every importable module and the dist-info files `importlib.metadata`
//! reads (`METADATA`, `top_level.txt`, `entry_points.txt`, `WHEEL`, licences); the
//! article's `rm -rf *.dist-info` breaks `importlib.metadata.version(...)`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use walkdir::WalkDir;

use crate::config::SlimLevel;

/// What one rule removed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Removed {
    pub rule: String,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlimReport {
    pub level: SlimLevel,
    /// One entry per rule, in rule order, including rules that removed nothing.
    pub removed: Vec<Removed>,
}

impl SlimReport {
    pub fn total_bytes(&self) -> u64 {
        self.removed.iter().map(|r| r.bytes).sum()
    }

    pub fn add(&mut self, rule: &str, files: u64, bytes: u64) {
        match self.removed.iter_mut().find(|r| r.rule == rule) {
            Some(r) => {
                r.files += files;
                r.bytes += bytes;
            }
            None => self.removed.push(Removed { rule: rule.into(), files, bytes }),
        }
    }
}

pub const RULE_BYTECODE: &str = "bytecode caches (__pycache__, *.pyc)";
pub const RULE_TESTS: &str = "test suites inside packages (tests/, test/)";
pub const RULE_RECORDS: &str = "install records (RECORD, INSTALLER, REQUESTED, direct_url.json, uv_cache.json)";
pub const RULE_SCRIPTS: &str = "console scripts (bin/), not on Lambda's PATH";
pub const RULE_SOURCES: &str = "type stubs, C sources and headers (*.pyi, *.pyx, *.pxd, *.c, *.h, ...)";
pub const RULE_STRIP: &str = "debug symbols stripped from shared libraries";
pub const RULE_EXCLUDE: &str = "layer excludes";

/// Which rule, if any, removes the entry at `rel` (a path relative to `python/`).
fn rule_for(rel: &Path, is_dir: bool, level: SlimLevel, excludes: &GlobSet) -> Option<&'static str> {
    let name = rel.file_name()?.to_str()?;
    let depth = rel.components().count();
    let parent_is_dist_info =
        rel.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".dist-info"));
    if level != SlimLevel::None {
        if (is_dir && name == "__pycache__") || (!is_dir && (name.ends_with(".pyc") || name.ends_with(".pyo"))) {
            return Some(RULE_BYTECODE);
        }
        if is_dir && depth >= 2 && (name == "tests" || name == "test") && !parent_is_dist_info {
            return Some(RULE_TESTS);
        }
        if !is_dir && parent_is_dist_info && is_install_record(name) {
            return Some(RULE_RECORDS);
        }
        if is_dir && depth == 1 && name == "bin" {
            return Some(RULE_SCRIPTS);
        }
    }
    if level == SlimLevel::Aggressive && !is_dir {
        const EXT: &[&str] = &[".pyi", ".pyx", ".pxd", ".pxi", ".c", ".cc", ".cpp", ".h", ".hpp"];
        if EXT.iter().any(|e| name.ends_with(e)) && !parent_is_dist_info {
            return Some(RULE_SOURCES);
        }
    }
    if excludes.is_match(rel) {
        return Some(RULE_EXCLUDE);
    }
    None
}

/// A file of a `.dist-info` folder that says how it was installed, not what: the installer
/// records of PEP 376/610 and uv's `uv_cache.json` (where a local wheel came from, with its
/// timestamp). pip writes none of the latter, so uv's zips stay pip's.
fn is_install_record(name: &str) -> bool {
    matches!(name, "RECORD" | "INSTALLER" | "REQUESTED" | "direct_url.json" | "uv_cache.json")
}

pub fn build_globset(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).with_context(|| format!("bad exclude pattern `{p}`"))?);
    }
    Ok(b.build()?)
}

/// Slims the tree under `python_dir` in place. A tree left without a single file is an
/// error (a layer that ships nothing), naming the `exclude` patterns that emptied it.
pub fn slim(python_dir: &Path, level: SlimLevel, exclude: &[String]) -> Result<SlimReport> {
    let excludes = build_globset(exclude)?;
    let mut report = SlimReport { level, removed: Vec::new() };
    let mut rules: Vec<&str> = Vec::new();
    if level != SlimLevel::None {
        rules.extend([RULE_BYTECODE, RULE_TESTS, RULE_RECORDS, RULE_SCRIPTS]);
    }
    if level == SlimLevel::Aggressive {
        rules.push(RULE_SOURCES);
    }
    if !exclude.is_empty() {
        rules.push(RULE_EXCLUDE);
    }
    for r in rules {
        report.add(r, 0, 0);
    }

    // The patterns that removed something, to name them if nothing is left.
    let mut matched = std::collections::BTreeSet::new();
    let mut walk = WalkDir::new(python_dir).min_depth(1).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.with_context(|| format!("cannot read {}", python_dir.display()))?;
        let rel = entry.path().strip_prefix(python_dir).unwrap();
        let is_dir = entry.file_type().is_dir();
        let Some(rule) = rule_for(rel, is_dir, level, &excludes) else { continue };
        if rule == RULE_EXCLUDE {
            matched.extend(excludes.matches(rel));
        }
        let (files, bytes) =
            if is_dir { tree_size(entry.path())? } else { (1, entry.path().symlink_metadata()?.len()) };
        if is_dir {
            walk.skip_current_dir();
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        }
        .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        report.add(rule, files, bytes);
    }
    if tree_size(python_dir)?.0 == 0 {
        let patterns: Vec<String> = matched.iter().map(|i| format!("`{}`", crate::quote::clip(&exclude[*i]))).collect();
        if patterns.is_empty() {
            bail!("the layer would be empty: no file is left in python/ after slimming `{}`", level_name(level));
        }
        bail!(
            "the layer would be empty: `exclude` pattern {} removed every file (patterns are relative to python/); narrow `exclude`",
            patterns.join(", ")
        );
    }
    Ok(report)
}

fn level_name(level: SlimLevel) -> &'static str {
    match level {
        SlimLevel::None => "none",
        SlimLevel::Safe => "safe",
        SlimLevel::Aggressive => "aggressive",
    }
}

/// Number of files and their total bytes under `dir` (links counted, not followed).
pub fn tree_size(dir: &Path) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for e in WalkDir::new(dir) {
        let e = e?;
        if !e.file_type().is_dir() {
            files += 1;
            bytes += e.path().symlink_metadata()?.len();
        }
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, size: usize) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, vec![b'x'; size]).unwrap();
    }

    fn exists(root: &Path, rel: &str) -> bool {
        root.join(rel).exists()
    }

    fn fixture() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(r, "pkg/__init__.py", 10);
        write(r, "pkg/core.py", 10);
        write(r, "pkg/__pycache__/core.cpython-312.pyc", 100);
        write(r, "pkg/stale.pyc", 7);
        write(r, "pkg/tests/test_core.py", 1000);
        write(r, "pkg/sub/tests/data.csv", 500);
        write(r, "pkg/testing.py", 10);
        write(r, "pkg/_lib.pyi", 40);
        write(r, "pkg/include/x.h", 60);
        write(r, "pkg/docs/readme.md", 30);
        write(r, "pkg-1.0.dist-info/METADATA", 20);
        write(r, "pkg-1.0.dist-info/RECORD", 200);
        write(r, "pkg-1.0.dist-info/INSTALLER", 4);
        write(r, "pkg-1.0.dist-info/REQUESTED", 0);
        write(r, "pkg-1.0.dist-info/top_level.txt", 4);
        write(r, "pkg-1.0.dist-info/entry_points.txt", 4);
        write(r, "pkg-1.0.dist-info/WHEEL", 4);
        write(r, "bin/pkg-cli", 50);
        write(r, "tests/conftest.py", 9);
        d
    }

    #[test]
    fn safe_removes_caches_tests_records_and_scripts_but_keeps_metadata() {
        let d = fixture();
        let r = d.path();
        let rep = slim(r, SlimLevel::Safe, &[]).unwrap();
        for gone in [
            "pkg/__pycache__",
            "pkg/stale.pyc",
            "pkg/tests",
            "pkg/sub/tests",
            "pkg-1.0.dist-info/RECORD",
            "pkg-1.0.dist-info/INSTALLER",
            "pkg-1.0.dist-info/REQUESTED",
            "bin",
        ] {
            assert!(!exists(r, gone), "{gone} should be removed");
        }
        for kept in [
            "pkg/core.py",
            "pkg/testing.py",
            "pkg/_lib.pyi",
            "pkg/include/x.h",
            "pkg-1.0.dist-info/METADATA",
            "pkg-1.0.dist-info/top_level.txt",
            "pkg-1.0.dist-info/entry_points.txt",
            "pkg-1.0.dist-info/WHEEL",
            "tests/conftest.py",
        ] {
            assert!(exists(r, kept), "{kept} should be kept");
        }
        let get = |rule: &str| rep.removed.iter().find(|x| x.rule == rule).unwrap().clone();
        assert_eq!(get(RULE_BYTECODE), Removed { rule: RULE_BYTECODE.into(), files: 2, bytes: 107 });
        assert_eq!(get(RULE_TESTS).bytes, 1500);
        assert_eq!(get(RULE_RECORDS), Removed { rule: RULE_RECORDS.into(), files: 3, bytes: 204 });
        assert_eq!(get(RULE_SCRIPTS).bytes, 50);
        assert_eq!(rep.total_bytes(), 107 + 1500 + 204 + 50);
    }

    #[test]
    fn uvs_cache_record_is_an_install_record_only_inside_a_dist_info() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(r, "pkg/__init__.py", 10);
        write(r, "pkg/uv_cache.json", 5);
        write(r, "pkg-1.0.dist-info/METADATA", 20);
        write(r, "pkg-1.0.dist-info/direct_url.json", 60);
        write(r, "pkg-1.0.dist-info/uv_cache.json", 120);
        let rep = slim(r, SlimLevel::Safe, &[]).unwrap();
        assert!(!exists(r, "pkg-1.0.dist-info/uv_cache.json") && !exists(r, "pkg-1.0.dist-info/direct_url.json"));
        assert!(exists(r, "pkg/uv_cache.json") && exists(r, "pkg-1.0.dist-info/METADATA"));
        assert_eq!(
            rep.removed.iter().find(|x| x.rule == RULE_RECORDS).unwrap(),
            &Removed { rule: RULE_RECORDS.into(), files: 2, bytes: 180 }
        );
    }

    #[test]
    fn none_keeps_everything_and_aggressive_removes_sources() {
        let d = fixture();
        let rep = slim(d.path(), SlimLevel::None, &[]).unwrap();
        assert_eq!(rep.total_bytes(), 0);
        assert!(exists(d.path(), "pkg/__pycache__"));
        let rep = slim(d.path(), SlimLevel::Aggressive, &[]).unwrap();
        assert!(!exists(d.path(), "pkg/_lib.pyi") && !exists(d.path(), "pkg/include/x.h"));
        assert_eq!(rep.removed.iter().find(|x| x.rule == RULE_SOURCES).unwrap().bytes, 100);
    }

    #[test]
    fn excludes_that_remove_every_file_are_named_in_an_error() {
        let d = fixture();
        let err = slim(d.path(), SlimLevel::Safe, &["*.md".into(), "**".into()]).unwrap_err().to_string();
        assert!(err.contains("would be empty") && err.contains("`**`") && !err.contains("*.md"), "{err}");
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "pkg/__pycache__/x.pyc", 3);
        let err = slim(d.path(), SlimLevel::Safe, &[]).unwrap_err().to_string();
        assert!(err.contains("would be empty") && err.contains("`safe`"), "{err}");
    }

    #[test]
    fn layer_excludes_apply_to_files_and_folders() {
        let d = fixture();
        let rep = slim(d.path(), SlimLevel::Safe, &["pkg/docs".into(), "*.md".into()]).unwrap();
        assert!(!exists(d.path(), "pkg/docs"));
        assert_eq!(rep.removed.iter().find(|x| x.rule == RULE_EXCLUDE).unwrap().bytes, 30);
    }
}
