//! Removes from an installed tree what Lambda never imports, rule by rule, and reports the
//! files and bytes each rule removed.
//!
//! A test folder that a kept module imports (`import pkg.tests.data`, `from .tests import
//! x`, `from . import tests`) is kept, with a note naming the importer (`imports.rs` scans
//! the kept `.py` files, statically: an import built at run time, `importlib.import_module(
//! "pkg." + name)`, is not seen; `cargo xtask check --deep` is the proof). What a build
//! removes is deleted, except in the builds `check --deep` makes (`Context::keep_removed`):
//! those move it into `dist/.work/<unit>.removed/` with `removed.json` naming each entry's
//! rule (see [`Record`]), the unslimmed tree `check --deep` imports from.
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

mod imports;

/// What one rule removed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Removed {
    pub rule: String,
    pub files: u64,
    pub bytes: u64,
}

/// An entry a rule would have removed, kept because a kept module imports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Kept {
    /// The entry, relative to `python/` (`scipy/special/tests`).
    pub path: String,
    pub rule: String,
    /// Which file imports what (`scipy/special/_precompute/hyp2f1_data.py imports scipy.special.tests`).
    pub because: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlimReport {
    pub level: SlimLevel,
    /// One entry per rule, in rule order, including rules that removed nothing.
    pub removed: Vec<Removed>,
    /// What a rule would have removed but a kept module imports (absent when nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Kept>,
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

/// One entry a build removed, in `removed.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordEntry {
    /// Relative to `python/`; a folder is one entry.
    pub path: String,
    pub rule: String,
    /// For [`RULE_EXCLUDE`], the layer's `exclude` patterns that matched it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
}

/// What one build removed: `dist/.work/<unit>.removed/removed.json`, beside `python/`, the
/// removed entries themselves. `kept_files` is the sha256 of the sorted paths of the
/// files left (the zip's `python/` entries), tying the record to the zip it was made with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub kept_files: String,
    pub entries: Vec<RecordEntry>,
}

impl Record {
    pub const FILE: &'static str = "removed.json";

    /// The record in `dir`, if there is a readable one.
    pub fn load(dir: &Path) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(dir.join(Self::FILE)).ok()?).ok()
    }

    /// The removed entry a missing module or file belongs to, the longest that matches:
    /// `module` (dotted) inside an entry (`pkg.tests.data` in `pkg/tests`, `pkg.helpers` is
    /// `pkg/helpers.py` or `pkg/helpers.cpython-313-x86_64-linux-gnu.so`), else an entry
    /// whose path the `message` names.
    pub fn culprit(&self, module: Option<&str>, message: &str) -> Option<&RecordEntry> {
        let wanted: Vec<&str> = module.map(|m| m.split('.').collect()).unwrap_or_default();
        let by_module = self.entries.iter().filter(|e| {
            let parts: Vec<&str> = e.path.split('/').collect();
            let (last, dirs) = parts.split_last().expect("split yields one part");
            let stem = last.split('.').next().unwrap_or(last);
            let key: Vec<&str> = dirs.iter().copied().chain([stem]).collect();
            !wanted.is_empty() && wanted.len() >= key.len() && wanted[..key.len()] == key[..]
        });
        by_module
            .max_by_key(|e| e.path.len())
            .or_else(|| self.entries.iter().filter(|e| message.contains(&e.path)).max_by_key(|e| e.path.len()))
    }
}

/// sha256 of the sorted relative paths (one per line) of the files `paths` lists.
pub fn digest_paths(mut paths: Vec<String>) -> String {
    use sha2::Digest;
    paths.sort();
    let mut h = sha2::Sha256::new();
    for p in &paths {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The relative paths of the files (and links) under `dir`.
fn file_paths(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in WalkDir::new(dir).min_depth(1) {
        let e = e?;
        if !e.file_type().is_dir() {
            out.push(e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Where a build's removed entries go: `python_dir` is `<work_root>/<unit>-<pid>/python`
/// (`build::work_dir`), its record `<work_root>/<unit>.removed`. None for any other
/// folder (the removed entries are then deleted).
fn record_dir_of(python_dir: &Path) -> Option<std::path::PathBuf> {
    let work = python_dir.parent()?;
    let unit = work.file_name()?.to_str()?.strip_suffix(&format!("-{}", std::process::id()))?;
    Some(work.parent()?.join(format!("{unit}.removed")))
}

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
/// With `keep`, inside a build's work folder, the removed entries are moved to its
/// record (see the module doc); else deleted.
pub fn slim(python_dir: &Path, level: SlimLevel, exclude: &[String], keep: bool) -> Result<SlimReport> {
    let record = if keep { record_dir_of(python_dir) } else { None };
    slim_recording(python_dir, level, exclude, record.as_deref())
}

/// [`slim`], moving what it removes into `record` (replaced whole) when given.
pub fn slim_recording(
    python_dir: &Path,
    level: SlimLevel,
    exclude: &[String],
    record: Option<&Path>,
) -> Result<SlimReport> {
    let excludes = build_globset(exclude)?;
    let mut report = SlimReport { level, removed: Vec::new(), kept: Vec::new() };
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

    // What the rules remove, decided before anything goes: a test folder a kept module
    // imports stays.
    let mut planned: Vec<(std::path::PathBuf, bool, &'static str)> = Vec::new();
    let mut walk = WalkDir::new(python_dir).min_depth(1).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.with_context(|| format!("cannot read {}", python_dir.display()))?;
        let rel = entry.path().strip_prefix(python_dir).unwrap();
        let is_dir = entry.file_type().is_dir();
        let Some(rule) = rule_for(rel, is_dir, level, &excludes) else { continue };
        if is_dir {
            walk.skip_current_dir();
        }
        planned.push((rel.to_path_buf(), is_dir, rule));
    }
    let test_dirs: Vec<std::path::PathBuf> =
        planned.iter().filter(|p| p.2 == RULE_TESTS).map(|p| p.0.clone()).collect();
    for (dir, because) in
        imports::imported(python_dir, &planned.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), &test_dirs)?
    {
        let path = dir.to_string_lossy().into_owned();
        crate::output::note(format_args!("slimming kept {path} (rule \"{RULE_TESTS}\"): {because}"));
        report.kept.push(Kept { path, rule: RULE_TESTS.into(), because });
        planned.retain(|p| p.0 != dir);
    }

    let staging = match record {
        Some(r) => {
            let tmp = crate::interrupt::TempPath::new(r.with_extension(format!("removed-{}", std::process::id())));
            if tmp.path().exists() {
                std::fs::remove_dir_all(tmp.path())?;
            }
            std::fs::create_dir_all(tmp.path().join("python"))
                .with_context(|| format!("cannot create {}", tmp.path().display()))?;
            Some(tmp)
        }
        None => None,
    };
    // The patterns that removed something, to name them if nothing is left.
    let mut matched = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for (rel, is_dir, rule) in &planned {
        let path = python_dir.join(rel);
        let mut patterns = Vec::new();
        if *rule == RULE_EXCLUDE {
            let m = excludes.matches(rel);
            patterns = m.iter().map(|i| exclude[*i].clone()).collect();
            matched.extend(m);
        }
        let (files, bytes) = if *is_dir { tree_size(&path)? } else { (1, path.symlink_metadata()?.len()) };
        match &staging {
            Some(s) => {
                let to = s.path().join("python").join(rel);
                std::fs::create_dir_all(to.parent().expect("under python/"))?;
                std::fs::rename(&path, &to)
            }
            None if *is_dir => std::fs::remove_dir_all(&path),
            None => std::fs::remove_file(&path),
        }
        .with_context(|| format!("cannot remove {}", path.display()))?;
        report.add(rule, files, bytes);
        entries.push(RecordEntry { path: rel.to_string_lossy().into_owned(), rule: rule.to_string(), patterns });
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
    if let (Some(staging), Some(record)) = (staging, record) {
        let rec = Record { kept_files: digest_paths(file_paths(python_dir)?), entries };
        std::fs::write(staging.path().join(Record::FILE), serde_json::to_vec_pretty(&rec)?)?;
        if record.exists() {
            std::fs::remove_dir_all(record).with_context(|| format!("cannot replace {}", record.display()))?;
        }
        std::fs::rename(staging.path(), record).with_context(|| format!("cannot write {}", record.display()))?;
        staging.keep();
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
        let rep = slim(r, SlimLevel::Safe, &[], false).unwrap();
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
        let rep = slim(r, SlimLevel::Safe, &[], false).unwrap();
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
        let rep = slim(d.path(), SlimLevel::None, &[], false).unwrap();
        assert_eq!(rep.total_bytes(), 0);
        assert!(exists(d.path(), "pkg/__pycache__"));
        let rep = slim(d.path(), SlimLevel::Aggressive, &[], false).unwrap();
        assert!(!exists(d.path(), "pkg/_lib.pyi") && !exists(d.path(), "pkg/include/x.h"));
        assert_eq!(rep.removed.iter().find(|x| x.rule == RULE_SOURCES).unwrap().bytes, 100);
    }

    #[test]
    fn excludes_that_remove_every_file_are_named_in_an_error() {
        let d = fixture();
        let err = slim(d.path(), SlimLevel::Safe, &["*.md".into(), "**".into()], false).unwrap_err().to_string();
        assert!(err.contains("would be empty") && err.contains("`**`") && !err.contains("*.md"), "{err}");
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "pkg/__pycache__/x.pyc", 3);
        let err = slim(d.path(), SlimLevel::Safe, &[], false).unwrap_err().to_string();
        assert!(err.contains("would be empty") && err.contains("`safe`"), "{err}");
    }

    #[test]
    fn layer_excludes_apply_to_files_and_folders() {
        let d = fixture();
        let rep = slim(d.path(), SlimLevel::Safe, &["pkg/docs".into(), "*.md".into()], false).unwrap();
        assert!(!exists(d.path(), "pkg/docs"));
        assert_eq!(rep.removed.iter().find(|x| x.rule == RULE_EXCLUDE).unwrap().bytes, 30);
    }
}
