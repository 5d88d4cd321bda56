//! Which test folders the kept modules of a tree import, read statically from the `.py`
//! files: `import a.tests.b`, `from a.tests import b`, `from a import tests`, and the
//! relative forms (`from .tests import b`, `from . import tests`, `from ..tests import b`).
//!
//! Limits: an import built at run time (`importlib.import_module(name)`, `__import__`)
//! is not seen, and a line in a docstring that reads like an import counts (a folder is
//! then kept that need not be: never a broken import). `cargo xtask check --deep` proves
//! the result by importing every module.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use walkdir::WalkDir;

/// The folders of `test_dirs` (relative to `python_dir`) that a kept `.py` file imports,
/// each with which file imports what. A file is kept when no entry of `removed` (relative
/// paths, `test_dirs` among them) holds it, or when it lies in a test folder found kept
/// (what that folder imports counts too); `conftest.py` and `__main__.py` never count.
pub fn imported(python_dir: &Path, removed: &[PathBuf], test_dirs: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    for e in WalkDir::new(python_dir).min_depth(1).sort_by_file_name() {
        let e = e?;
        let name = e.file_name().to_string_lossy();
        if e.file_type().is_file() && name.ends_with(".py") && name != "conftest.py" && name != "__main__.py" {
            files.push(e.path().strip_prefix(python_dir).unwrap().to_path_buf());
        }
    }
    let mut kept: Vec<(PathBuf, String)> = Vec::new();
    let mut scanned = BTreeSet::new();
    // Pass after pass: a folder found kept has its own files read in the next one.
    loop {
        let before = kept.len();
        for f in &files {
            let removed_now = removed.iter().any(|r| f.starts_with(r)) && !kept.iter().any(|(k, _)| f.starts_with(k));
            if removed_now || !scanned.insert(f.clone()) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(python_dir.join(f)) else { continue };
            if !text.contains("test") {
                continue;
            }
            for module in imported_modules(f, &text) {
                let parts: Vec<&str> = module.split('.').collect();
                let hit = test_dirs.iter().find(|d| {
                    let key: Vec<String> = d.iter().map(|c| c.to_string_lossy().into_owned()).collect();
                    parts.len() >= key.len() && key.iter().zip(&parts).all(|(k, p)| k == p)
                });
                if let Some(d) = hit.filter(|d| !kept.iter().any(|(k, _)| k == *d)) {
                    kept.push((d.clone(), format!("{} imports {module}", f.display())));
                }
            }
        }
        if kept.len() == before {
            return Ok(kept);
        }
    }
}

/// The modules a file's import statements name, absolute: for `from X import a, b`, `X`,
/// `X.a` and `X.b` (a name may be a submodule); relative ones resolved from the file's
/// package (`file` relative to `python/`).
fn imported_modules(file: &Path, text: &str) -> Vec<String> {
    let package: Vec<String> =
        file.parent().map(|p| p.iter().map(|c| c.to_string_lossy().into_owned()).collect()).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(rest) = line.strip_prefix("import ") {
            for item in rest.split(',') {
                if let Some(m) = item.split_whitespace().next() {
                    out.push(m.to_string());
                }
            }
        } else if let Some(rest) = line.strip_prefix("from ") {
            let mut words = rest.split_whitespace();
            let (Some(from), Some("import")) = (words.next(), words.next()) else { continue };
            let dots = from.chars().take_while(|c| *c == '.').count();
            let base = if dots == 0 {
                from.to_string()
            } else {
                if dots - 1 > package.len() {
                    continue;
                }
                let mut parts: Vec<&str> = package[..package.len() - (dots - 1)].iter().map(String::as_str).collect();
                parts.extend(from[dots..].split('.').filter(|p| !p.is_empty()));
                parts.join(".")
            };
            if !base.is_empty() {
                out.push(base.clone());
            }
            let names = rest.split_once(" import ").map(|(_, n)| n).unwrap_or("");
            for name in names.trim_matches(|c| c == '(' || c == ')' || c == '\\').split(',') {
                if let Some(n) = name.split_whitespace().next().filter(|n| *n != "*" && *n != "(") {
                    let n = n.trim_matches(|c| c == '(' || c == ')');
                    if !n.is_empty() {
                        out.push(if base.is_empty() { n.to_string() } else { format!("{base}.{n}") });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn absolute_and_relative_imports_resolve_from_the_package() {
        let f = Path::new("scipy/special/_precompute/hyp2f1_data.py");
        let m = imported_modules(
            f,
            "import os, scipy.special.tests as t\nfrom ..tests import data\nfrom . import (x, y)\nfrom .z import *\n# import no.tests\n",
        );
        assert_eq!(
            m,
            [
                "os",
                "scipy.special.tests",
                "scipy.special.tests",
                "scipy.special.tests.data",
                "scipy.special._precompute",
                "scipy.special._precompute.x",
                "scipy.special._precompute.y",
                "scipy.special._precompute.z"
            ]
        );
    }

    #[test]
    fn a_test_folder_a_kept_module_imports_is_kept_with_what_it_imports() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(r, "pkg/__init__.py", "");
        write(r, "pkg/data.py", "from pkg.tests.fixtures import VALUES\n");
        write(r, "pkg/tests/fixtures.py", "from pkg.sub.tests import x\n");
        write(r, "pkg/sub/tests/__init__.py", "");
        write(r, "pkg/other/tests/__init__.py", "");
        write(r, "pkg/other/tests/test_a.py", "import pkg.other.tests\n");
        write(r, "pkg/conftest.py", "import pkg.other.tests\n");
        let dirs: Vec<PathBuf> = ["pkg/tests", "pkg/sub/tests", "pkg/other/tests"].iter().map(PathBuf::from).collect();
        let kept = imported(r, &dirs, &dirs).unwrap();
        assert_eq!(
            kept,
            [
                (PathBuf::from("pkg/tests"), "pkg/data.py imports pkg.tests.fixtures".to_string()),
                (PathBuf::from("pkg/sub/tests"), "pkg/tests/fixtures.py imports pkg.sub.tests".to_string()),
            ]
        );
    }
}
