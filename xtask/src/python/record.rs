//! Which distribution installed a file: the paths of each `*.dist-info/RECORD` (a CSV
//! whose first column is the path, relative to the install root), the names of its
//! `top_level.txt`, and the dist-info folder itself. Read before slimming removes RECORD.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::dist::read_dists;
use super::name::normalise;

/// The owners of the files of one `python/` folder.
#[derive(Debug, Default, Clone)]
pub struct Owners {
    /// Every distribution.
    pub dists: Vec<super::Dist>,
    by_path: HashMap<String, usize>,
    /// Top-level names (`top_level.txt`, the dist-info folder) and their distribution.
    by_top: HashMap<String, usize>,
}

impl Owners {
    /// Reads every dist-info of `python_dir`.
    pub fn read(python_dir: &Path) -> Result<Owners> {
        let mut owners = Owners::default();
        let mut info_dirs: HashMap<String, String> = HashMap::new();
        for e in std::fs::read_dir(python_dir).with_context(|| format!("cannot read {}", python_dir.display()))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".dist-info") {
                let dist = stem.split('-').next().unwrap_or(stem);
                info_dirs.insert(normalise(dist), name);
            }
        }
        for d in read_dists(python_dir, "")? {
            let i = owners.dists.len();
            let Some(dir) = info_dirs.get(&normalise(&d.name)).cloned() else {
                owners.dists.push(d);
                continue;
            };
            owners.dists.push(d);
            let dir = &dir;
            owners.by_top.insert(dir.clone(), i);
            let info = python_dir.join(dir);
            if let Ok(text) = std::fs::read_to_string(info.join("top_level.txt")) {
                for top in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    owners.by_top.entry(top.split('/').next().unwrap_or(top).to_string()).or_insert(i);
                }
            }
            if let Ok(text) = std::fs::read_to_string(info.join("RECORD")) {
                for line in text.lines() {
                    if let Some(path) = record_path(line) {
                        owners.by_path.insert(path.trim_start_matches("./").to_string(), i);
                    }
                }
            }
        }
        Ok(owners)
    }

    /// The index in [`Self::dists`] of the distribution that owns `rel` (a `/`-separated
    /// path relative to `python/`), if any does.
    pub fn owner(&self, rel: &str) -> Option<usize> {
        if let Some(&i) = self.by_path.get(rel) {
            return Some(i);
        }
        let top = rel.split('/').next().unwrap_or(rel);
        if let Some(&i) = self.by_top.get(top) {
            return Some(i);
        }
        // A top-level module: `six.py`, `_cffi_backend.cpython-312-x86_64-linux-gnu.so`.
        let module = top.split('.').next().unwrap_or(top);
        (module != top).then(|| self.by_top.get(module).copied()).flatten()
    }
}

/// The first CSV field of a RECORD line (quoted when it holds a comma or a quote).
fn record_path(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
        return None;
    }
    let path = line.split(',').next()?;
    (!path.is_empty()).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_owned_by_record_top_level_or_dist_info() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("numpy-2.0.dist-info")).unwrap();
        std::fs::write(p.join("numpy-2.0.dist-info/METADATA"), "Name: numpy\nVersion: 2.0\n").unwrap();
        std::fs::write(
            p.join("numpy-2.0.dist-info/RECORD"),
            "numpy/__init__.py,sha256=x,1\n\"numpy.libs/a,b.so\",sha256=y,2\n../../bin/f2py,,\n",
        )
        .unwrap();
        std::fs::create_dir_all(p.join("six-1.0.dist-info")).unwrap();
        std::fs::write(p.join("six-1.0.dist-info/METADATA"), "Name: six\nVersion: 1.0\n").unwrap();
        std::fs::write(p.join("six-1.0.dist-info/top_level.txt"), "six\n").unwrap();
        let o = Owners::read(p).unwrap();
        let name = |rel: &str| o.owner(rel).map(|i| o.dists[i].name.clone());
        assert_eq!(name("numpy/__init__.py").as_deref(), Some("numpy"));
        assert_eq!(name("numpy.libs/a,b.so").as_deref(), Some("numpy"));
        assert_eq!(name("six.py").as_deref(), Some("six"));
        assert_eq!(name("six-1.0.dist-info/METADATA").as_deref(), Some("six"));
        assert_eq!(name("stray.txt"), None);
    }
}
