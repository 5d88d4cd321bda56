//! The build report written beside each zip in dist/, and where both live.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::interrupt::TempPath;
use crate::python::Package;
use crate::repo::Repo;
use crate::runtime::{Arch, Runtime};
use crate::slim::SlimReport;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    /// Which unit (serialised flat: `layer`, `runtime`, `arch`).
    #[serde(flatten)]
    pub unit: crate::unit_id::UnitId,
    /// The zip, relative to the repo root.
    pub zip: String,
    /// Hex SHA-256 of the zip.
    pub sha256: String,
    /// Base64 SHA-256 of the zip, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    pub zipped_bytes: u64,
    pub unzipped_bytes: u64,
    pub budget_percent: f64,
    pub file_count: u64,
    pub packages: Vec<Package>,
    pub fingerprint: String,
    pub slim: SlimReport,
    pub builder: String,
    pub image: String,
    pub duration_secs: f64,
    #[serde(default)]
    pub notes: Vec<String>,
    /// Seconds spent in each stage of the build (install, attribute (files to their
    /// distributions), slim, sizes, package, write, sbom).
    #[serde(default)]
    pub stages: std::collections::BTreeMap<String, f64>,
    /// Each distribution's unzipped bytes after slimming, largest first, with the files no
    /// distribution claims as `(unattributed)`: they sum to `unzipped_bytes` exactly.
    #[serde(default)]
    pub package_sizes: Vec<crate::sizes::PackageSize>,
}

/// The dist/ paths of one unit: `dist/<layer>/<layer>-<py>-<arch>.zip` and `.json`.
#[derive(Debug, Clone)]
pub struct DistPaths {
    pub dir: PathBuf,
    pub zip: PathBuf,
    pub report: PathBuf,
    /// The CycloneDX SBOM every build writes.
    pub sbom: PathBuf,
    /// The treemap `cargo xtask size` writes.
    pub svg: PathBuf,
}

impl DistPaths {
    pub fn new(repo: &Repo, layer: &str, runtime: Runtime, arch: Arch) -> DistPaths {
        let dir = repo.dist_dir().join(layer);
        let stem = format!("{layer}-{}-{}", runtime.tag(), arch.as_str());
        DistPaths {
            zip: dir.join(format!("{stem}.zip")),
            report: dir.join(format!("{stem}.json")),
            svg: dir.join(format!("{stem}.size.svg")),
            sbom: dir.join(format!("{stem}.cdx.json")),
            dir,
        }
    }

    /// The report of the build in dist/, if there is one whose zip is still there, whole:
    /// the report waiting to follow its zip into place (a commit stopped halfway, see
    /// [`DistPaths::commit`]) when it describes the zip there (its sha256 checked: the only
    /// case that reads the zip), else the report in place.
    pub fn current(&self) -> Option<BuildReport> {
        if let Some(r) = self.waiting() {
            return Some(r);
        }
        let text = std::fs::read_to_string(&self.report).ok()?;
        let report: BuildReport = serde_json::from_str(&text).ok()?;
        let zip_len = std::fs::metadata(&self.zip).ok()?.len();
        (zip_len == report.zipped_bytes).then_some(report)
    }

    /// The waiting report, when it describes the zip in place.
    fn waiting(&self) -> Option<BuildReport> {
        let text = std::fs::read_to_string(waiting(&self.report)).ok()?;
        let report: BuildReport = serde_json::from_str(&text).ok()?;
        let zip = std::fs::read(&self.zip).ok()?;
        let sha256: String = Sha256::digest(&zip).iter().map(|b| format!("{b:02x}")).collect();
        (zip.len() as u64 == report.zipped_bytes && sha256 == report.sha256).then_some(report)
    }

    /// Puts a build's files, written beside their places (`package::write_temp`), into
    /// place as one: the old zip and report stay until the new zip is in place, and the new
    /// report follows it. In order:
    ///
    /// 1. the SBOM and the report under their waiting names (`.<name>.next`): the old
    ///    files are untouched, and a waiting report that does not describe the zip in place
    ///    is ignored;
    /// 2. the zip (then its stamp): from here the waiting report describes the zip, and is
    ///    kept whatever stops the run (Ctrl-C included), so a reader takes it
    ///    ([`DistPaths::current`]) and the next build puts it in place ([`DistPaths::settle`]);
    /// 3. the SBOM, then the report.
    ///
    /// Stopped anywhere (Ctrl-C, SIGKILL, an error), dist/ holds the old zip and report or
    /// the new ones, never a zip without its report.
    pub fn commit(
        &self,
        zip: TempPath,
        stamp: Option<(TempPath, PathBuf)>,
        sbom: TempPath,
        report: TempPath,
    ) -> Result<()> {
        let rename = |from: &Path, to: &Path| {
            std::fs::rename(from, to).with_context(|| format!("cannot rename {} into place", to.display()))
        };
        let next_sbom = TempPath::new(waiting(&self.sbom));
        rename(sbom.path(), next_sbom.path())?;
        sbom.keep();
        let next_report = TempPath::new(waiting(&self.report));
        rename(report.path(), next_report.path())?;
        report.keep();
        crate::interrupt::keep_all([next_sbom, next_report]);
        if let Err(e) = rename(zip.path(), &self.zip) {
            let _ = std::fs::remove_file(waiting(&self.sbom));
            let _ = std::fs::remove_file(waiting(&self.report));
            return Err(e);
        }
        zip.keep();
        if let Some((tmp, dest)) = stamp {
            // Without it the next build only compresses everything again.
            if std::fs::rename(tmp.path(), dest).is_ok() {
                tmp.keep();
            }
        }
        rename(&waiting(&self.sbom), &self.sbom)?;
        rename(&waiting(&self.report), &self.report)
    }

    /// Finishes what a stopped run left in this unit's folder: a waiting report that
    /// describes the zip goes into place after its SBOM; one that does not (its run stopped
    /// before its zip was in place) is removed once [`SETTLED_AFTER`] old, as are the
    /// temporary files a killed run left a day ago.
    pub fn settle(&self) {
        let next_report = waiting(&self.report);
        if self.waiting().is_some() {
            let _ = std::fs::rename(waiting(&self.sbom), &self.sbom);
            let _ = std::fs::rename(&next_report, &self.report);
        } else if older_than(&next_report, SETTLED_AFTER) {
            let _ = std::fs::remove_file(waiting(&self.sbom));
            let _ = std::fs::remove_file(&next_report);
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(".tmp-") && older_than(&e.path(), crate::interrupt::STALE_AFTER) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// How old a waiting report that describes no zip must be before [`DistPaths::settle`]
/// removes it: far longer than a commit takes, so never one a running build still needs.
pub const SETTLED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// `path` was last modified more than `age` ago.
fn older_than(path: &Path, age: std::time::Duration) -> bool {
    let modified = std::fs::symlink_metadata(path).and_then(|m| m.modified());
    modified.ok().and_then(|t| t.elapsed().ok()).is_some_and(|a| a > age)
}

/// Where `path` waits during a commit: `.<name>.next` beside it.
fn waiting(path: &Path) -> PathBuf {
    path.with_file_name(format!(".{}.next", path.file_name().unwrap_or_default().to_string_lossy()))
}

pub fn read(path: &Path) -> Result<BuildReport> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("invalid build report {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> DistPaths {
        DistPaths {
            dir: dir.to_path_buf(),
            zip: dir.join("l.zip"),
            report: dir.join("l.json"),
            sbom: dir.join("l.cdx.json"),
            svg: dir.join("l.size.svg"),
        }
    }

    /// A report of `zip` (only what `current` reads is meaningful), and an SBOM naming it.
    fn report_of(zip: &[u8], fingerprint: &str) -> (String, String) {
        let sha256: String = Sha256::digest(zip).iter().map(|b| format!("{b:02x}")).collect();
        let report = serde_json::json!({
            "layer": "l", "runtime": "python3.13", "arch": "x86_64", "zip": "dist/l/l.zip",
            "sha256": sha256, "code_sha256": "", "zipped_bytes": zip.len(), "unzipped_bytes": 0,
            "budget_percent": 0.0, "file_count": 0, "packages": [], "fingerprint": fingerprint,
            "slim": {"level": "safe", "removed": []}, "builder": "docker", "image": "i",
            "duration_secs": 0.0,
        });
        (report.to_string(), format!("sbom of {fingerprint}"))
    }

    fn commit(p: &DistPaths, zip: &[u8], fingerprint: &str) -> Result<()> {
        let (report, sbom) = report_of(zip, fingerprint);
        let stamp = crate::package::write_temp(&p.dir.join("l.zip.packer"), fingerprint.as_bytes())?;
        p.commit(
            crate::package::write_temp(&p.zip, zip)?,
            Some((stamp, p.dir.join("l.zip.packer"))),
            crate::package::write_temp(&p.sbom, sbom.as_bytes())?,
            crate::package::write_temp(&p.report, report.as_bytes())?,
        )
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    fn fingerprint(p: &DistPaths) -> Option<String> {
        p.current().map(|r| r.fingerprint)
    }

    #[test]
    fn a_commit_puts_every_file_in_place_and_leaves_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let p = paths(d.path());
        commit(&p, b"old zip", "old").unwrap();
        commit(&p, b"the new zip", "new").unwrap();
        assert_eq!(fingerprint(&p).as_deref(), Some("new"));
        assert_eq!(std::fs::read_to_string(&p.sbom).unwrap(), "sbom of new");
        assert_eq!(std::fs::read_to_string(d.path().join("l.zip.packer")).unwrap(), "new");
        assert_eq!(files(d.path()), ["l.cdx.json", "l.json", "l.zip", "l.zip.packer"]);
    }

    #[test]
    fn a_commit_stopped_after_any_step_leaves_the_old_build_or_the_new() {
        let d = tempfile::tempdir().unwrap();
        let p = paths(d.path());
        let (old_zip, new_zip) = (b"old zip".as_slice(), b"new zip".as_slice());
        let (new_report, new_sbom) = report_of(new_zip, "new");
        let old_state = || {
            commit(&p, old_zip, "old").unwrap();
            // A zip of the same size: only the waiting report's sha256 tells them apart.
            assert_eq!(old_zip.len(), new_zip.len());
        };

        // Stopped after step 1: the new report and SBOM wait, the zip is the old one.
        old_state();
        std::fs::write(waiting(&p.sbom), &new_sbom).unwrap();
        std::fs::write(waiting(&p.report), &new_report).unwrap();
        assert_eq!(fingerprint(&p).as_deref(), Some("old"));
        p.settle();
        assert_eq!(fingerprint(&p).as_deref(), Some("old"), "a recent waiting report may be a running build's");
        assert!(waiting(&p.report).exists());
        let long_ago = std::time::SystemTime::now() - SETTLED_AFTER * 2;
        for f in [waiting(&p.sbom), waiting(&p.report)] {
            std::fs::File::options().write(true).open(&f).unwrap().set_modified(long_ago).unwrap();
        }
        p.settle();
        assert_eq!(fingerprint(&p).as_deref(), Some("old"));
        assert_eq!(std::fs::read_to_string(&p.sbom).unwrap(), "sbom of old");
        assert_eq!(files(d.path()), ["l.cdx.json", "l.json", "l.zip", "l.zip.packer"]);

        // Stopped after step 2 (the new zip in place), and after the SBOM of step 3.
        for sbom_moved in [false, true] {
            old_state();
            std::fs::write(waiting(&p.report), &new_report).unwrap();
            if sbom_moved {
                std::fs::write(&p.sbom, &new_sbom).unwrap();
            } else {
                std::fs::write(waiting(&p.sbom), &new_sbom).unwrap();
            }
            std::fs::write(&p.zip, new_zip).unwrap();
            assert_eq!(fingerprint(&p).as_deref(), Some("new"), "the waiting report describes the zip");
            p.settle();
            assert_eq!(fingerprint(&p).as_deref(), Some("new"));
            assert_eq!(
                serde_json::from_str::<BuildReport>(&std::fs::read_to_string(&p.report).unwrap()).unwrap().fingerprint,
                "new"
            );
            assert_eq!(std::fs::read_to_string(&p.sbom).unwrap(), "sbom of new");
            assert_eq!(files(d.path()), ["l.cdx.json", "l.json", "l.zip", "l.zip.packer"]);
        }
    }

    #[test]
    fn temporary_files_a_killed_run_left_are_removed_a_day_later() {
        let d = tempfile::tempdir().unwrap();
        let p = paths(d.path());
        commit(&p, b"zip", "fp").unwrap();
        let old = d.path().join(".l.zip.tmp-4000001");
        let recent = d.path().join(".l.zip.tmp-4000002");
        for f in [&old, &recent] {
            std::fs::write(f, "part").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - crate::interrupt::STALE_AFTER * 2;
        std::fs::File::options().write(true).open(&old).unwrap().set_modified(long_ago).unwrap();
        p.settle();
        assert!(!old.exists() && recent.exists());
    }
}
