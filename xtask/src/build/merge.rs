//! The install stage of a merged layer (`merge = [...]`): its members' built zips,
//! unpacked in order into `python/`, a later member's file or symlink replacing an
//! earlier one's at the same path, as Lambda does when it extracts layers into `/opt`.
//! The members are planned and built before this runs (`unit::plan`, `unit::build`).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::BuildInput;
use crate::overlap;

/// Unpacks the members' zips into `work` (which holds `python/`), and says which paths
/// two members ship and whose copy was kept.
pub fn install(input: &BuildInput<'_>, zips: &[(String, PathBuf)], work: &Path) -> Result<()> {
    unpack_in_order(zips, work)?;
    let listings = zips.iter().map(|(_, z)| overlap::listing(z)).collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = zips.iter().map(|(n, _)| n.clone()).collect();
    let groups = overlap::group(&overlap::find(&listings), &names);
    if !groups.is_empty() {
        let paths: usize = groups.iter().map(|g| g.paths.len()).sum();
        crate::output::status(
            "merge",
            format_args!(
                "{} {} {}: {paths} path(s) shipped by more than one member; the later member's copy is kept:",
                input.layer.name, input.runtime, input.arch
            ),
        );
        for g in &groups {
            crate::output::detail(g.describe());
        }
    }
    Ok(())
}

/// Unpacks each zip, in order, into `dest` (their entries start with `python/`): a later
/// zip's file or symlink replaces an earlier one's at the same path; modes are kept as
/// the packager normalised them (0644, or 0755 when executable).
pub fn unpack_in_order(zips: &[(String, PathBuf)], dest: &Path) -> Result<()> {
    for (layer, zip) in zips {
        let file = std::fs::File::open(zip).with_context(|| format!("cannot open {}", zip.display()))?;
        let mut z = zip::ZipArchive::new(file).with_context(|| format!("cannot read {} as a zip", zip.display()))?;
        for i in 0..z.len() {
            let mut e = z.by_index(i).with_context(|| format!("cannot read {}", zip.display()))?;
            let rel = e.enclosed_name().filter(|p| p.starts_with("python")).with_context(|| {
                format!("{} holds an entry outside python/: only layer zips can be merged", zip.display())
            })?;
            let target = dest.join(&rel);
            let existing = std::fs::symlink_metadata(&target).ok();
            if e.is_dir() {
                match existing {
                    Some(m) if m.is_dir() => {}
                    Some(_) => bail!(
                        "{} is a file in an earlier layer but a folder in layer {layer}: they cannot be merged",
                        rel.display()
                    ),
                    None => std::fs::create_dir_all(&target)
                        .with_context(|| format!("cannot create {}", target.display()))?,
                }
                continue;
            }
            match existing {
                Some(m) if m.is_dir() => bail!(
                    "{} is a folder in an earlier layer but a file in layer {layer}: they cannot be merged",
                    rel.display()
                ),
                Some(_) => {
                    std::fs::remove_file(&target).with_context(|| format!("cannot replace {}", target.display()))?
                }
                None => {}
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            if e.is_symlink() {
                let mut link = String::new();
                e.read_to_string(&mut link)
                    .with_context(|| format!("cannot read the link {} in {}", rel.display(), zip.display()))?;
                std::os::unix::fs::symlink(&link, &target)
                    .with_context(|| format!("cannot create the link {}", target.display()))?;
            } else {
                let mut out =
                    std::fs::File::create(&target).with_context(|| format!("cannot write {}", target.display()))?;
                std::io::copy(&mut e, &mut out)
                    .with_context(|| format!("cannot unpack {} from {}", rel.display(), zip.display()))?;
                let mode = if e.unix_mode().is_some_and(|m| m & 0o111 != 0) { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip of `files` (path under python/, content, executable) made by the packager.
    fn layer_zip(dir: &Path, name: &str, files: &[(&str, &str, bool)]) -> PathBuf {
        let root = dir.join(format!("{name}-tree"));
        for (path, content, exec) in files {
            let p = root.join("python").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if *exec { 0o755 } else { 0o644 })).unwrap();
        }
        let zip = dir.join(format!("{name}.zip"));
        std::fs::write(&zip, crate::package::package(&root).unwrap().bytes).unwrap();
        zip
    }

    #[test]
    fn later_zips_win_and_the_union_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let a =
            layer_zip(d.path(), "a", &[("six.py", "old", false), ("a/__init__.py", "a", false), ("tool", "#!", true)]);
        let b = layer_zip(d.path(), "b", &[("six.py", "new", false), ("b.py", "b", false)]);
        let out = d.path().join("out");
        unpack_in_order(&[("a".into(), a), ("b".into(), b)], &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("python/six.py")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(out.join("python/a/__init__.py")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(out.join("python/b.py")).unwrap(), "b");
        assert_eq!(std::fs::metadata(out.join("python/tool")).unwrap().permissions().mode() & 0o777, 0o755);
        let merged = crate::package::package(&out).unwrap();
        assert_eq!(merged.file_count, 4);
    }

    #[test]
    fn a_file_against_a_folder_cannot_be_merged() {
        let d = tempfile::tempdir().unwrap();
        let a = layer_zip(d.path(), "a", &[("x/__init__.py", "", false)]);
        let b = layer_zip(d.path(), "b", &[("x", "file", false)]);
        let err = unpack_in_order(&[("a".into(), a), ("b".into(), b)], &d.path().join("out")).unwrap_err().to_string();
        assert!(err.contains("python/x is a folder in an earlier layer but a file in layer b"), "{err}");
    }
}
