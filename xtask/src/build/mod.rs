//! Installs a layer into a fresh `python/` folder, by one of three installers: pip inside
//! the build image (`docker.rs`), pip on the host with cross-platform wheels only
//! (`pip.rs`), or, for a merged layer, its members' built zips unpacked in order
//! (`merge.rs`).

pub mod docker;
pub mod merge;
pub mod pip;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::LayerConfig;
use crate::interrupt::TempPath;
use crate::runtime::{Arch, Runtime};

/// One unit to install: a layer for one runtime and architecture, with its image.
pub struct BuildInput<'a> {
    pub layer: &'a LayerConfig,
    pub runtime: Runtime,
    pub arch: Arch,
    pub image: &'a str,
    /// Its requirements.txt carries hashes: pip runs with `--require-hashes`.
    pub hashed: bool,
}

/// Where pip's download and wheel cache lives between builds: `$XTASK_PIP_CACHE`, else
/// `$XDG_CACHE_HOME/lambda-layers/pip`, else `~/.cache/lambda-layers/pip`.
pub fn pip_cache_dir() -> Result<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("XTASK_PIP_CACHE").filter(|d| !d.is_empty()) {
        PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(d).join("lambda-layers/pip")
    } else {
        let home =
            std::env::var_os("HOME").context("HOME is not set: set XTASK_PIP_CACHE to a folder for pip's cache")?;
        PathBuf::from(home).join(".cache/lambda-layers/pip")
    };
    std::fs::create_dir_all(&dir).with_context(|| {
        format!("cannot create pip cache folder {}: set XTASK_PIP_CACHE to a writable folder", dir.display())
    })?;
    Ok(dir)
}

/// A new, empty `<work_root>/<unit>-<pid>/python` (and `tmp/` beside it for pip), made by this process so it and every
/// file pip writes in it belong to the user; removed on drop unless kept.
fn work_dir(input: &BuildInput<'_>, work_root: &Path) -> Result<TempPath> {
    let work = TempPath::new(work_root.join(format!(
        "{}-{}-{}-{}",
        input.layer.name,
        input.runtime.tag(),
        input.arch,
        std::process::id()
    )));
    if work.path().exists() {
        std::fs::remove_dir_all(work.path())?;
    }
    for dir in ["python", "tmp"] {
        std::fs::create_dir_all(work.path().join(dir))
            .with_context(|| format!("cannot create {}: is dist/ writable?", work.path().display()))?;
    }
    Ok(work)
}

/// The pip arguments both builders share: exactly the listed requirements, no
/// dependency resolution, no bytecode, into `target`, with an install report; in
/// hash-checking mode when the requirements carry hashes.
fn pip_install_args(requirements: &str, target: &str, report: &str, hashed: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "install",
        "-r",
        requirements,
        "--no-deps",
        "--ignore-installed",
        "--no-compile",
        "--no-warn-script-location",
        "--progress-bar",
        "off",
        "-t",
        target,
        // pip's install report names the Python that ran it.
        "--report",
        report,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if hashed {
        args.push("--require-hashes".into());
    }
    args
}

/// What fills a unit's `python/`.
pub enum Installer<'a> {
    /// pip in the build image.
    Docker(&'a crate::docker::Docker),
    /// pip on the host, for the target's platform.
    HostPip,
    /// A merged layer: its members' zips (layer name, zip), unpacked in this order.
    Zips(&'a [(String, PathBuf)]),
}

/// Runs the installer; the returned folder holds `python/`.
pub fn install(
    installer: &Installer<'_>,
    input: &BuildInput<'_>,
    work_root: &Path,
    pip_cache: &Path,
) -> Result<TempPath> {
    match installer {
        Installer::Docker(d) => docker::install(d, input, work_root, pip_cache),
        Installer::HostPip => pip::install(input, work_root, pip_cache),
        Installer::Zips(zips) => {
            let work = work_dir(input, work_root)?;
            merge::install(input, zips, work.path())?;
            Ok(work)
        }
    }
}
