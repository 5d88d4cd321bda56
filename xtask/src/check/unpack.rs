//! Unpacks the zips a check looks at, each once, within Lambda's unzipped limit: the sizes
//! the central directory declares are added up before anything is written, and no entry
//! may unzip to more bytes than it declares, so a zip bomb (or a zip whose directory lies
//! about its sizes) is refused before it fills the disk.

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use walkdir::WalkDir;

use crate::limits::{mib, UNZIPPED_LIMIT};

/// What the zips of one check may unzip to together: Lambda's 250 MiB for a function and
/// all its layers.
pub struct Budget {
    limit: u64,
    used: u64,
}

impl Budget {
    pub fn lambda() -> Budget {
        Budget { limit: UNZIPPED_LIMIT, used: 0 }
    }

    /// Takes `bytes` from the budget, or fails naming the limit; `what` is the zip.
    fn take(&mut self, bytes: u64, what: &Path) -> Result<()> {
        let total = self.used.saturating_add(bytes);
        if total > self.limit {
            let with = if self.used > 0 { " with the layers it requires" } else { "" };
            bail!(
                "{}{with} unzips to {} ({total} bytes), over Lambda's limit of 250 MiB ({} bytes) for a function and all its layers: not unpacked",
                what.display(),
                mib(total),
                self.limit
            );
        }
        self.used = total;
        Ok(())
    }
}

/// Unpacks `zip` into `dest` when its declared size fits in `budget`. Every entry is read
/// through a reader that fails once it yields more than the entry's declared size, so the
/// bytes written never exceed what was taken from the budget.
pub fn unzip(zip: &Path, dest: &Path, budget: &mut Budget) -> Result<()> {
    let file = std::fs::File::open(zip).with_context(|| format!("cannot open {}", zip.display()))?;
    let mut z = zip::ZipArchive::new(file).with_context(|| format!("{} is not a readable zip", zip.display()))?;
    let mut declared = 0u64;
    for i in 0..z.len() {
        let entry = z.by_index_raw(i).with_context(|| format!("{} is not a readable zip", zip.display()))?;
        declared = declared.saturating_add(entry.size());
    }
    budget.take(declared, zip)?;
    // zip's extract bounds each entry by its declared size ("larger than its declared
    // uncompressed size" otherwise), keeps paths inside `dest` and symlinks inside it.
    z.extract(dest).with_context(|| format!("cannot unpack {}", zip.display()))?;
    Ok(())
}

/// Lays `from` over `onto` the way Lambda unpacks one layer over another at /opt: a file
/// of `from` replaces one at the same path. Files are hard links, so the overlay costs no
/// extra disk space and no copy.
pub fn overlay(from: &Path, onto: &Path) -> Result<()> {
    for e in WalkDir::new(from).sort_by_file_name() {
        let e = e.with_context(|| format!("cannot read {}", from.display()))?;
        let rel = e.path().strip_prefix(from).expect("walkdir stays under its root");
        let to = onto.join(rel);
        let existing = std::fs::symlink_metadata(&to).ok();
        if e.file_type().is_dir() {
            match existing {
                Some(m) if m.is_dir() => continue,
                Some(_) => std::fs::remove_file(&to)?,
                None => {}
            }
            std::fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
            continue;
        }
        match existing {
            Some(m) if m.is_dir() => std::fs::remove_dir_all(&to)?,
            Some(_) => std::fs::remove_file(&to)?,
            None => {}
        }
        if e.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &to)
        } else {
            std::fs::hard_link(e.path(), &to)
        }
        .with_context(|| format!("cannot link {} to {}", e.path().display(), to.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(path: &Path, files: &[(&str, &[u8])]) {
        let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for (name, data) in files {
            z.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }

    #[test]
    fn the_budget_is_shared_by_every_zip_of_a_check() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.zip"), d.path().join("b.zip"));
        zip_of(&a, &[("python/a.py", &[b'a'; 600])]);
        zip_of(&b, &[("python/b.py", &[b'b'; 600])]);
        let mut budget = Budget { limit: 1000, used: 0 };
        unzip(&a, &d.path().join("x"), &mut budget).unwrap();
        let err = format!("{:#}", unzip(&b, &d.path().join("y"), &mut budget).unwrap_err());
        assert!(err.contains("with the layers it requires unzips to") && err.contains("250 MiB"), "{err}");
        assert!(!d.path().join("y").exists(), "nothing is unpacked past the limit");
    }

    #[test]
    fn overlay_replaces_files_and_links_instead_of_copying() {
        let d = tempfile::tempdir().unwrap();
        let (low, high, opt) = (d.path().join("low"), d.path().join("high"), d.path().join("opt"));
        for (dir, text) in [(&low, "low"), (&high, "high")] {
            std::fs::create_dir_all(dir.join("python/pkg")).unwrap();
            std::fs::write(dir.join("python/pkg/__init__.py"), text).unwrap();
        }
        std::fs::write(low.join("python/only_low.py"), "").unwrap();
        std::os::unix::fs::symlink("pkg/__init__.py", high.join("python/alias.py")).unwrap();
        overlay(&low, &opt).unwrap();
        overlay(&high, &opt).unwrap();
        assert_eq!(std::fs::read_to_string(opt.join("python/pkg/__init__.py")).unwrap(), "high");
        assert!(opt.join("python/only_low.py").exists());
        assert_eq!(std::fs::read_link(opt.join("python/alias.py")).unwrap(), Path::new("pkg/__init__.py"));
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&opt.join("python/pkg/__init__.py")), ino(&high.join("python/pkg/__init__.py")));
    }
}
