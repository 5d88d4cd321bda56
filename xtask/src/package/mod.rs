//! Packages a slimmed tree into a reproducible zip: `python/` at the root, entries in
//! sorted order, fixed timestamps, normalised permissions, files compressed in parallel
//! and written in order, the SHA-256 computed on the finished bytes in memory, and the
//! file renamed into place only when complete. Files unchanged since the unit's previous
//! zip are copied from it raw instead of deflated again ([`reuse`]).

pub mod reuse;

use std::io::{Cursor, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;
use zip::write::{PreparedZipFile, SimpleFileOptions};
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::interrupt::TempPath;

/// The zip, in memory, with what the report needs to know about it.
pub struct Packaged {
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
    pub file_count: u64,
    pub unzipped_bytes: u64,
    /// Files copied raw from the previous zip instead of compressed.
    pub reused_files: u64,
}

/// A file ready to be appended: compressed now, or the same bytes already compressed by
/// this packer in the previous zip, as a one-entry zip with fresh headers
/// ([`reuse::Reader::fresh_entry`]).
enum Ready {
    Compressed(PreparedZipFile),
    Reused(Vec<u8>),
}

enum Entry {
    Dir(String),
    File(String, PathBuf, u32),
    Symlink(String, String),
}

fn options(mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(DateTime::default())
        .unix_permissions(mode)
}

/// Zips `root/python` (and nothing else of `root`) into memory.
pub fn package(root: &Path) -> Result<Packaged> {
    package_reusing(root, None)
}

/// [`package`], copying the entries of `previous` that hold a file's exact bytes instead
/// of compressing that file again: the zip is the same as without `previous`.
pub fn package_reusing(root: &Path, previous: Option<&reuse::Previous>) -> Result<Packaged> {
    let python = root.join("python");
    let entries = collect(root, &python)?;
    let files: Vec<(usize, &str, &Path, u32)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Entry::File(name, path, mode) => Some((i, name.as_str(), path.as_path(), *mode)),
            _ => None,
        })
        .collect();

    // Compress every file on all cores; results are kept by index so the archive's order
    // does not depend on which thread finished first.
    let prepared: Mutex<Vec<Option<Ready>>> = Mutex::new((0..entries.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(16);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut reader = previous.map(|p| p.reader());
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, name, path, mode)) = files.get(k) else { break };
                    match prepare(name, path, mode, reader.as_mut()) {
                        Ok(p) => prepared.lock().unwrap()[i] = Some(p),
                        Err(e) => {
                            *failure.lock().unwrap() = Some(e);
                            next.store(files.len(), Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let mut prepared = prepared.into_inner().unwrap();

    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let (mut file_count, mut unzipped_bytes, mut reused_files) = (0u64, 0u64, 0u64);
    for (i, e) in entries.iter().enumerate() {
        match e {
            Entry::Dir(name) => zip.add_directory(name.as_str(), options(0o755))?,
            Entry::File(_, _, mode) => {
                file_count += 1;
                match prepared[i].take().expect("every file was prepared") {
                    Ready::Compressed(p) => {
                        unzipped_bytes += p.uncompressed_size();
                        zip.add_prepared_file(p)?;
                    }
                    Ready::Reused(one) => {
                        // Only the old compressed data, inside headers made here (reuse.rs).
                        let mut one = zip::ZipArchive::new(Cursor::new(one))?;
                        let entry = one.by_index_raw(0)?;
                        unzipped_bytes += entry.size();
                        reused_files += 1;
                        zip.raw_copy_file_touch(entry, DateTime::default(), Some(*mode))?;
                    }
                }
            }
            Entry::Symlink(name, target) => {
                file_count += 1;
                unzipped_bytes += target.len() as u64;
                zip.add_symlink(name.as_str(), target.as_str(), options(0o777))?;
            }
        }
    }
    let bytes = zip.finish().context("cannot finish the zip")?.into_inner();
    let sha256 = Sha256::digest(&bytes).into();
    Ok(Packaged { bytes, sha256, file_count, unzipped_bytes, reused_files })
}

/// Reads one file and finds its bytes in the previous zip, or compresses it.
fn prepare(name: &str, path: &Path, mode: u32, previous: Option<&mut reuse::Reader>) -> Result<Ready> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(r) = previous {
        if let Some(reused) = r.matching(name, &data) {
            return Ok(Ready::Reused(r.fresh_entry(name, mode, &reused)));
        }
    }
    Ok(Ready::Compressed(compress(name, &data, mode)?))
}

/// Deflates one file; keeps it stored when deflate would not make it smaller, as
/// Info-ZIP does. What this makes is named by [`reuse::PACKER`].
fn compress(name: &str, data: &[u8], mode: u32) -> Result<PreparedZipFile> {
    let p = PreparedZipFile::from_data(name, options(mode), data)?;
    if p.compressed_size() >= data.len() as u64 {
        return Ok(PreparedZipFile::from_data(
            name,
            options(mode).compression_method(CompressionMethod::Stored).compression_level(None),
            data,
        )?);
    }
    Ok(p)
}

/// The entries under `python/`, in sorted order. Symlinks are kept as links when they
/// stay inside the tree; one that points outside is an error.
fn collect(root: &Path, python: &Path) -> Result<Vec<Entry>> {
    if !python.is_dir() {
        bail!("nothing was installed: {} is missing", python.display());
    }
    let mut out = Vec::new();
    for e in WalkDir::new(python).sort_by_file_name() {
        let e = e.with_context(|| format!("cannot read {}", python.display()))?;
        let rel = e.path().strip_prefix(root).unwrap();
        let Some(name) = rel.to_str().map(|s| s.replace('\\', "/")) else {
            bail!("file name is not UTF-8: {}", rel.display());
        };
        let ft = e.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(e.path())?;
            check_link_inside(rel, &target)?;
            out.push(Entry::Symlink(name, target.to_string_lossy().into_owned()));
        } else if ft.is_dir() {
            out.push(Entry::Dir(format!("{name}/")));
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = e.metadata()?.permissions().mode();
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            out.push(Entry::File(name, e.path().to_path_buf(), mode));
        }
    }
    Ok(out)
}

/// A link at `rel` (relative to the zip root) must resolve to a path inside `python/`.
fn check_link_inside(rel: &Path, target: &Path) -> Result<()> {
    let outside = || {
        anyhow::anyhow!(
            "symlink {} points outside the layer (to {}): remove it or add it to `exclude`",
            rel.display(),
            target.display()
        )
    };
    if target.is_absolute() {
        return Err(outside());
    }
    let mut parts: Vec<Component> = rel.parent().map(|p| p.components().collect()).unwrap_or_default();
    for c in target.components() {
        match c {
            Component::ParentDir => {
                parts.pop().ok_or_else(outside)?;
            }
            Component::Normal(_) => parts.push(c),
            Component::CurDir => {}
            _ => return Err(outside()),
        }
    }
    if parts.first() != Some(&Component::Normal("python".as_ref())) {
        return Err(outside());
    }
    Ok(())
}

/// Writes `bytes` to `dest` through a temporary file in the same folder and a rename, so
/// `dest` is either the old file or the complete new one, never a partial one.
pub fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp(dest, bytes)?;
    std::fs::rename(tmp.path(), dest).with_context(|| format!("cannot rename into {}", dest.display()))?;
    tmp.keep();
    Ok(())
}

/// Writes `bytes`, synced, to a temporary file beside `dest` (`.<name>.tmp-<pid>`), removed
/// unless renamed into place and kept.
pub fn write_temp(dest: &Path, bytes: &[u8]) -> Result<TempPath> {
    let dir = dest.parent().context("destination has no folder")?;
    let tmp =
        TempPath::new(dir.join(format!(".{}.tmp-{}", dest.file_name().unwrap().to_string_lossy(), std::process::id())));
    let mut f = std::fs::File::create(tmp.path())
        .with_context(|| format!("cannot write {}: is it writable?", dir.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", tmp.path().display()))?;
    f.sync_all()?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("python/pkg");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("b.py"), "print('b')\n".repeat(100)).unwrap();
        std::fs::write(p.join("a.py"), "x = 1\n").unwrap();
        std::fs::write(p.join("tool"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.join("tool"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(d.path().join("outside.txt"), "not zipped").unwrap();
        d
    }

    #[test]
    fn same_tree_gives_identical_bytes_whatever_the_mtimes() {
        let d = tree();
        let a = package(d.path()).unwrap();
        let f = d.path().join("python/pkg/a.py");
        std::fs::File::options().write(true).open(&f).unwrap().set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let b = package(d.path()).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.bytes, b.bytes);
    }

    #[test]
    fn entries_sorted_under_python_with_normalised_modes() {
        let d = tree();
        let p = package(d.path()).unwrap();
        let mut z = zip::ZipArchive::new(Cursor::new(p.bytes)).unwrap();
        let names: Vec<String> = (0..z.len()).map(|i| z.by_index(i).unwrap().name().unwrap().to_string()).collect();
        assert_eq!(names, ["python/", "python/pkg/", "python/pkg/a.py", "python/pkg/b.py", "python/pkg/tool"]);
        assert_eq!(z.by_name("python/pkg/tool").unwrap().unix_mode().unwrap() & 0o777, 0o755);
        assert_eq!(z.by_name("python/pkg/a.py").unwrap().unix_mode().unwrap() & 0o777, 0o644);
        let mut s = String::new();
        z.by_name("python/pkg/b.py").unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "print('b')\n".repeat(100));
        assert_eq!(p.file_count, 3);
    }

    #[test]
    fn symlinks_inside_are_kept_and_outside_refused() {
        let d = tree();
        std::os::unix::fs::symlink("a.py", d.path().join("python/pkg/link.py")).unwrap();
        package(d.path()).unwrap();
        std::os::unix::fs::symlink("../../outside.txt", d.path().join("python/pkg/escape")).unwrap();
        let err = package(d.path()).err().unwrap().to_string();
        assert!(err.contains("python/pkg/escape") && err.contains("outside"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("x.zip");
        write_atomically(&dest, b"one").unwrap();
        write_atomically(&dest, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
