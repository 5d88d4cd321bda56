//! Paths shipped by more than one layer zip (the layers of a stack, or the members of a
//! merged layer). Lambda extracts a function's layers in order into `/opt`, so for a path
//! two layers ship, the later layer's copy is the one the function sees. Overlaps are
//! found from the zips' listings (path, CRC-32, size), and grouped by top-level folder so
//! a package shipped twice is one line, not a thousand.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};

/// One file (or symlink) a layer's zip ships, from its central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    /// The path inside the zip, e.g. `python/six.py`.
    pub path: String,
    pub crc32: u32,
    pub size: u64,
}

/// Every file and symlink of a zip (folders left out), in the zip's order.
pub fn listing(zip: &Path) -> Result<Vec<Shipped>> {
    let file = std::fs::File::open(zip).with_context(|| format!("cannot open {}", zip.display()))?;
    let mut z = zip::ZipArchive::new(file).with_context(|| format!("cannot read {} as a zip", zip.display()))?;
    let mut out = Vec::new();
    for i in 0..z.len() {
        let e = z.by_index_raw(i).with_context(|| format!("cannot read {}", zip.display()))?;
        if e.is_dir() {
            continue;
        }
        let path = e
            .name()
            .with_context(|| format!("{} holds an entry whose name cannot be read", zip.display()))?
            .into_owned();
        out.push(Shipped { path, crc32: e.crc32(), size: e.size() });
    }
    Ok(out)
}

/// One path shipped by several layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub path: String,
    /// The layers shipping it, as indexes in stack order; the last one wins.
    pub layers: Vec<usize>,
    /// Whether every copy has the same size and CRC-32.
    pub identical: bool,
}

/// Every path shipped by two or more of `listings` (one per layer, in stack order),
/// sorted by path.
pub fn find(listings: &[Vec<Shipped>]) -> Vec<Overlap> {
    let mut by_path: BTreeMap<&str, Vec<(usize, u32, u64)>> = BTreeMap::new();
    for (i, listing) in listings.iter().enumerate() {
        for s in listing {
            by_path.entry(s.path.as_str()).or_default().push((i, s.crc32, s.size));
        }
    }
    by_path
        .into_iter()
        .filter(|(_, copies)| copies.len() > 1)
        .map(|(path, copies)| Overlap {
            path: path.to_string(),
            layers: copies.iter().map(|c| c.0).collect(),
            identical: copies.iter().all(|c| (c.1, c.2) == (copies[0].1, copies[0].2)),
        })
        .collect()
}

/// Overlapping paths under one top-level entry of `python/`, shipped by the same layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `python/numpy/` for a folder, `python/six.py` for a single top-level file.
    pub top: String,
    /// The layers shipping these paths, in stack order; the last one wins.
    pub layers: Vec<String>,
    pub paths: Vec<String>,
    /// How many of the paths differ between the layers.
    pub differing: usize,
}

impl Group {
    pub fn winner(&self) -> &str {
        self.layers.last().map(String::as_str).unwrap_or_default()
    }

    /// One line: what overlaps, between which layers, and which copy the function sees.
    pub fn describe(&self) -> String {
        let layers = self.layers.join(", ");
        let what = if self.paths.len() == 1 {
            self.paths[0].clone()
        } else if self.paths.len() <= 3 {
            format!(
                "{} ({})",
                self.top,
                self.paths.iter().map(|p| p.strip_prefix(&self.top).unwrap_or(p)).collect::<Vec<_>>().join(", ")
            )
        } else {
            format!("{} ({} files)", self.top, self.paths.len())
        };
        let verdict = match (self.differing, self.paths.len()) {
            (0, _) => format!("identical copies; {} is extracted last", self.winner()),
            (1, 1) => format!("different content: {} wins", self.winner()),
            (d, n) if d == n => format!("all differ: {}'s copies win", self.winner()),
            (d, _) => format!("{d} differ: {}'s copies win", self.winner()),
        };
        format!("{what} shipped by {layers}: {verdict}")
    }
}

/// Groups overlaps by top-level entry and set of layers; `names` are the layers in stack
/// order. Sorted by top-level entry.
pub fn group(overlaps: &[Overlap], names: &[String]) -> Vec<Group> {
    let mut groups: BTreeMap<(String, Vec<usize>), Group> = BTreeMap::new();
    for o in overlaps {
        let top = top_level(&o.path);
        let g = groups.entry((top.clone(), o.layers.clone())).or_insert_with(|| Group {
            top,
            layers: o.layers.iter().map(|&i| names[i].clone()).collect(),
            paths: Vec::new(),
            differing: 0,
        });
        g.paths.push(o.path.clone());
        g.differing += usize::from(!o.identical);
    }
    groups.into_values().collect()
}

/// `python/numpy/` for `python/numpy/core/x.py`; the path itself for a top-level file.
fn top_level(path: &str) -> String {
    let mut parts = path.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(root), Some(top), Some(_)) => format!("{root}/{top}/"),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(path: &str, crc32: u32) -> Shipped {
        Shipped { path: path.into(), crc32, size: 10 }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_paths_shipped_twice_with_the_later_layer_winning() {
        let a = vec![s("python/six.py", 1), s("python/a.py", 2), s("python/ns/__init__.py", 3)];
        let b = vec![s("python/b.py", 4), s("python/six.py", 9)];
        let c = vec![s("python/ns/__init__.py", 3), s("python/six.py", 9)];
        let o = find(&[a, b, c]);
        assert_eq!(
            o,
            vec![
                Overlap { path: "python/ns/__init__.py".into(), layers: vec![0, 2], identical: true },
                Overlap { path: "python/six.py".into(), layers: vec![0, 1, 2], identical: false },
            ]
        );
        let g = group(&o, &names(&["a", "b", "c"]));
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].winner(), "c");
        assert_eq!(g[1].describe(), "python/six.py shipped by a, b, c: different content: c wins");
        assert_eq!(g[0].describe(), "python/ns/__init__.py shipped by a, c: identical copies; c is extracted last");
        assert!(find(&[vec![s("python/x.py", 1)], vec![s("python/y.py", 1)]]).is_empty());
    }

    #[test]
    fn many_files_of_one_package_are_one_group() {
        let files: Vec<Shipped> = (0..500).map(|i| s(&format!("python/numpy/m{i}.py"), i)).collect();
        let mut other = files.clone();
        other[7].crc32 = 12345;
        let g = group(&find(&[files, other]), &names(&["numpy", "numpy2"]));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].paths.len(), 500);
        assert_eq!(
            g[0].describe(),
            "python/numpy/ (500 files) shipped by numpy, numpy2: 1 differ: numpy2's copies win"
        );
    }
}
