//! What each distribution of a layer weighs: every file of `python/` attributed to the
//! distribution that installed it (`python::Owners`, read before slimming), summed as the
//! zip counts bytes (a file's length, a symlink's target), so the figures add up to the
//! layer's unzipped size exactly; and the treemap SVG `cargo xtask size` writes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::limits::UNZIPPED_LIMIT;
use crate::python::Owners;

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

/// A treemap of a layer (package -> its largest folders, area = bytes), labelled,
/// self-contained SVG.
pub fn svg(title: &str, sizes: &[PackageSize]) -> String {
    const W: f64 = 1200.0;
    const H: f64 = 800.0;
    const TOP: f64 = 36.0;
    let total: u64 = sizes.iter().map(|p| p.bytes).sum();
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n<text x=\"8\" y=\"24\" font-size=\"18\" font-weight=\"bold\">{}</text>\n",
        H + TOP,
        H + TOP,
        esc(title)
    );
    let items: Vec<f64> = sizes.iter().map(|p| p.bytes.max(1) as f64).collect();
    let rects = squarify(&items, Rect { x: 0.0, y: TOP, w: W, h: H });
    const COLOURS: [&str; 8] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];
    for (i, (p, r)) in sizes.iter().zip(&rects).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let label = format!("{} {}", p.name, p.version).trim().to_string();
        let share = if total == 0 { 0.0 } else { p.bytes as f64 * 100.0 / total as f64 };
        out.push_str(&format!(
            "<g class=\"package\" data-package=\"{}\"><title>{} — {} ({share:.1}%)</title>\n<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" stroke=\"#ffffff\" stroke-width=\"2\"/>\n",
            esc(&p.name),
            esc(&label),
            crate::output::size(p.bytes),
            r.x,
            r.y,
            r.w,
            r.h
        ));
        // Its folders inside, below the label.
        let head = 30.0_f64.min(r.h / 2.0);
        let inner = Rect { x: r.x + 2.0, y: r.y + head, w: (r.w - 4.0).max(0.0), h: (r.h - head - 2.0).max(0.0) };
        let folder_bytes: Vec<f64> = p.folders.iter().map(|f| f.bytes.max(1) as f64).collect();
        let rest = p.bytes.saturating_sub(p.folders.iter().map(|f| f.bytes).sum());
        let mut fb = folder_bytes.clone();
        if rest > 0 {
            fb.push(rest as f64);
        }
        if inner.w > 40.0 && inner.h > 30.0 && p.folders.len() > 1 {
            for (j, fr) in squarify(&fb, inner).iter().enumerate().take(p.folders.len()) {
                let f = &p.folders[j];
                out.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#ffffff\" fill-opacity=\"0.18\" stroke=\"#ffffff\" stroke-width=\"0.5\"><title>{} — {}</title></rect>\n",
                    fr.x, fr.y, fr.w, fr.h, esc(&f.path), crate::output::size(f.bytes)
                ));
                if fr.w > 70.0 && fr.h > 16.0 {
                    out.push_str(&format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#ffffff\">{}</text>\n",
                        fr.x + 3.0,
                        fr.y + 13.0,
                        esc(&clip(&format!("{} {}", f.path, crate::output::size(f.bytes)), fr.w, 6.6)),
                    ));
                }
            }
        }
        let font = (r.h * 0.6).clamp(4.0, 15.0);
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{font:.1}\" font-weight=\"bold\" fill=\"#ffffff\">{}</text>\n</g>\n",
            r.x + 4.0,
            r.y + font + 2.0_f64.min(r.h / 4.0),
            esc(&clip(&format!("{} {}", p.name, crate::output::size(p.bytes)), r.w, font * 0.6))
        ));
    }
    out.push_str("</svg>\n");
    out
}

/// `text` cut to what fits in `width` at `char_width` per character.
fn clip(text: &str, width: f64, char_width: f64) -> String {
    let max = ((width - 6.0) / char_width).max(1.0) as usize;
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Squarified treemap (Bruls, Huizing, van Wijk): one rectangle per value (values
/// largest first), areas in proportion, in the order given.
fn squarify(values: &[f64], area: Rect) -> Vec<Rect> {
    let total: f64 = values.iter().sum();
    let mut out = Vec::with_capacity(values.len());
    if values.is_empty() || total <= 0.0 {
        return out;
    }
    let scale = area.w * area.h / total;
    let areas: Vec<f64> = values.iter().map(|v| v * scale).collect();
    let mut free = area;
    let mut i = 0;
    while i < areas.len() {
        let side = free.w.min(free.h);
        let worst = |row: &[f64]| {
            let s: f64 = row.iter().sum();
            let (mx, mn) = row.iter().fold((0.0_f64, f64::MAX), |(a, b), &r| (a.max(r), b.min(r)));
            ((side * side * mx) / (s * s)).max((s * s) / (side * side * mn))
        };
        let mut j = i + 1;
        while j < areas.len() && worst(&areas[i..=j]) <= worst(&areas[i..j]) {
            j += 1;
        }
        let row = &areas[i..j];
        let s: f64 = row.iter().sum();
        if free.w >= free.h {
            let w = if free.h > 0.0 { s / free.h } else { 0.0 };
            let mut y = free.y;
            for a in row {
                let h = if w > 0.0 { a / w } else { 0.0 };
                out.push(Rect { x: free.x, y, w, h });
                y += h;
            }
            free = Rect { x: free.x + w, w: (free.w - w).max(0.0), ..free };
        } else {
            let h = if free.w > 0.0 { s / free.w } else { 0.0 };
            let mut x = free.x;
            for a in row {
                let w = if h > 0.0 { a / h } else { 0.0 };
                out.push(Rect { x, y: free.y, w, h });
                x += w;
            }
            free = Rect { y: free.y + h, h: (free.h - h).max(0.0), ..free };
        }
        i = j;
    }
    out
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
        let svg = svg("t", &sizes);
        assert_eq!(svg.matches("class=\"package\"").count(), 2);
    }

    #[test]
    fn squarify_fills_the_area() {
        let r = squarify(&[6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0], Rect { x: 0.0, y: 0.0, w: 6.0, h: 4.0 });
        let area: f64 = r.iter().map(|r| r.w * r.h).sum();
        assert!((area - 24.0).abs() < 1e-9 && r.len() == 7);
    }
}
