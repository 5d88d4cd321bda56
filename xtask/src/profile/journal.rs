//! `published/.<profile>.journal`: the versions a publish run recorded that are not in
//! `published/<profile>.json` yet. JSON Lines, one [`Entry`] per line, appended and synced
//! under the manifest's file lock, so recording a version is one short write whatever the
//! size of the manifest. [`Recorder::finish`](super::manifest::Recorder::finish) folds the
//! journal into the manifest in one write and then removes it; a run killed before that
//! leaves it behind, [`Manifest::load`](super::manifest::Manifest::load) applies it (so
//! every reader sees those versions) and the next recorder folds it. Git ignores it.
//!
//! A line counts once it ends with a newline (`record` returns only after that is synced):
//! a last line without one is a run killed mid-append, which readers ignore and the next
//! append cuts off. Any other line that is not an entry is an error naming file and line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::manifest::Entry;

/// The journal of the manifest at `manifest`: `.<profile>.journal` beside it.
pub fn path(manifest: &Path) -> PathBuf {
    let stem = manifest.file_stem().unwrap_or_default().to_string_lossy();
    manifest.with_file_name(format!(".{stem}.journal"))
}

/// The entries of the journal at `path` in the order they were recorded (none when there
/// is no journal), without a torn last line. `profile` names the repair in an error.
pub fn read(path: &Path, profile: &str) -> Result<Vec<Entry>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry = serde_json::from_slice(line).with_context(|| {
            format!(
                "invalid journal {} line {}: fix or delete that line, then run `cargo xtask publish-all --profile {profile}`, which records again what is published",
                path.display(),
                i + 1
            )
        })?;
        out.push(entry);
    }
    Ok(out)
}

/// Appends `entry` as one line and syncs it. The caller holds the manifest's file lock. A
/// torn last line (a run killed mid-append) is cut off first, so it never becomes a
/// corrupt line in the middle.
pub fn append(path: &Path, entry: &Entry) -> Result<()> {
    let line = serde_json::to_string(entry).expect("an entry always serialises") + "\n";
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata().with_context(|| format!("cannot read {}", path.display()))?.len();
    if len > 0 && !ends_with_newline(&file, len)? {
        cut_torn_line(&file, path)?;
    }
    file.write_all(line.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_data().with_context(|| format!("cannot sync {}", path.display()))?;
    if len == 0 {
        // A new journal: its name must survive a crash too (once per journal, not per line).
        let dir = path.parent().context("journal path has no folder")?;
        File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    Ok(())
}

fn ends_with_newline(file: &File, len: u64) -> Result<bool> {
    let mut last = [0u8];
    file.read_exact_at(&mut last, len - 1).context("cannot read the journal's last byte")?;
    Ok(last[0] == b'\n')
}

/// Truncates the file after its last newline (to nothing when it has none).
fn cut_torn_line(file: &File, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    file.set_len(keep as u64).with_context(|| format!("cannot cut the torn last line of {}", path.display()))
}

/// Removes the journal once folded; no journal is fine. The caller holds the file lock.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(layer: &str) -> Entry {
        serde_json::from_value(serde_json::json!({
            "layer": layer, "runtime": "python3.12", "arch": "x86_64", "region": "us-east-1",
            "layer_name": format!("{layer}-py312-x86_64"), "version": 1,
            "layer_version_arn": format!("arn:aws:lambda:us-east-1:123456789012:layer:{layer}-py312-x86_64:1"),
            "code_sha256": "abc=", "fingerprint": "ff", "published_at": "2024-05-01T10:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn lines_are_appended_a_torn_last_line_is_ignored_then_cut_and_a_corrupt_one_is_named() {
        let d = tempfile::tempdir().unwrap();
        let p = path(&d.path().join("local.json"));
        assert_eq!(p.file_name().unwrap(), ".local.journal");
        assert!(read(&p, "local").unwrap().is_empty());
        append(&p, &entry("six")).unwrap();
        append(&p, &entry("idna")).unwrap();
        assert_eq!(read(&p, "local").unwrap(), vec![entry("six"), entry("idna")]);

        // Killed mid-append: the half line is not an entry and not an error.
        let full = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{full}{}", &full[..20])).unwrap();
        assert_eq!(read(&p, "local").unwrap(), vec![entry("six"), entry("idna")]);
        // The next append cuts it off instead of writing after it.
        append(&p, &entry("boto")).unwrap();
        assert_eq!(read(&p, "local").unwrap(), vec![entry("six"), entry("idna"), entry("boto")]);
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 3);

        std::fs::write(&p, format!("{full}garbage\n{full}")).unwrap();
        let err = format!("{:#}", read(&p, "local").unwrap_err());
        assert!(err.contains(&format!("invalid journal {} line 3", p.display())), "{err}");
        assert!(err.contains("--profile local"), "{err}");

        remove(&p).unwrap();
        remove(&p).unwrap();
        assert!(!p.exists());
    }
}
