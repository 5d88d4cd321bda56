//! Installs a layer into a fresh `python/` folder, by one of three installers: uv or pip
//! inside the build image (`docker.rs`), uv or pip on the host with cross-platform wheels
//! only (`pip.rs`), or, for a merged layer, its members' built zips unpacked in order
//! (`merge.rs`). uv is the pinned one (`lock::uv`), `uv pip install --no-deps --target`
//! from the same requirements.txt; pip is used when a layer says `installer = "pip"` or
//! uv cannot be had.

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
    cache_dir("XTASK_PIP_CACHE", "pip", "pip's")
}

/// Where uv's cache lives between builds (and locks): `$XTASK_UV_CACHE`, else
/// `$XDG_CACHE_HOME/lambda-layers/uv-cache`, else `~/.cache/lambda-layers/uv-cache`.
pub fn uv_cache_dir() -> Result<PathBuf> {
    cache_dir("XTASK_UV_CACHE", "uv-cache", "uv's")
}

/// `$var`, else `$XDG_CACHE_HOME/lambda-layers/<sub>`, else `~/.cache/lambda-layers/<sub>`,
/// created.
fn cache_dir(var: &str, sub: &str, whose: &str) -> Result<PathBuf> {
    let dir = if let Some(d) = crate::settings::var_os(var) {
        PathBuf::from(d)
    } else if let Some(d) = crate::settings::var_os("XDG_CACHE_HOME") {
        PathBuf::from(d).join("lambda-layers").join(sub)
    } else {
        let home = crate::settings::var_os("HOME")
            .with_context(|| format!("HOME is not set: set {var} to a folder for {whose} cache"))?;
        PathBuf::from(home).join(".cache/lambda-layers").join(sub)
    };
    std::fs::create_dir_all(&dir).with_context(|| {
        format!("cannot create {whose} cache folder {}: set {var} to a writable folder", dir.display())
    })?;
    Ok(dir)
}

/// The uv binary to install `input` with: the static one for the target's arch when
/// `in_image` (mounted into the build image), else the host's; None when the layer says
/// `installer = "pip"`, or uv cannot be had (a warning, once per run; pip installs).
fn uv_for(input: &BuildInput<'_>, in_image: bool) -> Option<PathBuf> {
    if input.layer.installer == crate::config::Installer::Pip {
        return None;
    }
    // Where uv could not be had, the run does not try again for every unit.
    static FAILED: std::sync::Mutex<Vec<(bool, crate::runtime::Arch)>> = std::sync::Mutex::new(Vec::new());
    let key = (in_image, if in_image { input.arch } else { crate::runtime::Arch::X86_64 });
    if FAILED.lock().is_ok_and(|f| f.contains(&key)) {
        return None;
    }
    let uv = if in_image {
        crate::lockfile::uv::ensure_static(input.arch, Some(input.image))
    } else {
        crate::lockfile::uv::ensure(Some(input.image))
    };
    match uv {
        Ok(uv) => Some(uv),
        Err(e) => {
            if let Ok(mut f) = FAILED.lock() {
                f.push(key);
            }
            static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                crate::output::warn(format_args!(
                    "uv {} is not available ({e:#}): installing with pip instead (set `installer = \"pip\"` in layers.toml to say so)",
                    crate::lockfile::uv::UV_VERSION
                ));
            }
            None
        }
    }
}

/// The uv arguments both builders share, pip's in uv's words: exactly the listed
/// requirements, no dependency resolution, no bytecode (uv's default), into `target`,
/// files hard-linked from uv's cache when `link` (see [`may_link`]) else copied; in
/// hash-checking mode when the requirements carry hashes.
fn uv_install_args(requirements: &str, target: &str, hashed: bool, link: bool) -> Vec<String> {
    let mode = if link { "hardlink" } else { "copy" };
    let mut args: Vec<String> =
        ["pip", "install", "-r", requirements, "--no-deps", "--link-mode", mode, "--target", target]
            .iter()
            .map(|s| s.to_string())
            .collect();
    if hashed {
        args.push("--require-hashes".into());
    }
    args
}

/// Whether uv may hard-link its cached files into the output instead of copying them
/// (copying is most of a warm install: 135 MB for numpy + pandas). Only when nothing
/// will write into an installed file: `slim = "aggressive"` runs `strip`, which rewrites
/// shared libraries in place and, through a hard link, would rewrite uv's cache; the
/// other stages only read files or remove them (removing a link leaves the cache's file).
/// And only when the cache and `work` are on one filesystem, where a link can exist.
fn may_link(input: &BuildInput<'_>, uv_cache: &Path, work: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    input.layer.slim != crate::config::SlimLevel::Aggressive && dev(uv_cache).is_some() && dev(uv_cache) == dev(work)
}

/// What uv leaves in a `--target` folder that belongs to no distribution: the empty
/// `.lock` file it locks the folder with. Removed, so the tree is what pip makes.
fn remove_uv_leftovers(python: &Path) -> Result<()> {
    let lock = python.join(".lock");
    if lock.symlink_metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
        std::fs::remove_file(&lock).with_context(|| format!("cannot remove {}", lock.display()))?;
    }
    Ok(())
}

/// For a uv install, what pip's install report would have told (uv makes none): the
/// Python version and the sha256 of each archive installed, written as `pip-report.json`
/// in pip's format. A hash comes from the lock when the distribution's line allows exactly
/// one, else from uv's cache, which records the file name and sha256 of each wheel it
/// fetched (`lock::uv::cached_wheel_hash`, matched by version and wheel tags).
fn write_uv_report(input: &BuildInput<'_>, work: &Path, python_version: &str) -> Result<()> {
    let path = input.layer.dir.join("requirements.txt");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let reqs = crate::requirements_txt::Requirements::parse(&text, &input.layer.name)?;
    let env = crate::python::Env::new(input.runtime, input.arch);
    let mut hashes = crate::python::locked_hashes(&reqs.lines, &env);
    let cache = uv_cache_dir()?;
    for (name, (version, tags)) in crate::python::installed_wheel_tags(&work.join("python")) {
        if let std::collections::btree_map::Entry::Vacant(slot) = hashes.entry(name) {
            if let Some(sha) = crate::lockfile::uv::cached_wheel_hash(&cache, slot.key(), &version, &tags) {
                slot.insert(sha);
            }
        }
    }
    let report = crate::python::install_report(python_version, &hashes);
    let file = work.join("pip-report.json");
    std::fs::write(&file, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", file.display()))
}

/// The `<unit>` of a unit's folders in `dist/.work/`: `<unit>-<pid>` while it builds,
/// `<unit>.removed` for what its slimming removed (`slim::Record`).
pub fn unit_work_name(layer: &str, runtime: Runtime, arch: Arch) -> String {
    format!("{layer}-{}-{arch}", runtime.tag())
}

/// A new, empty `<work_root>/<unit>-<pid>/python` (and `tmp/` beside it for pip), made by this process so it and every
/// file pip writes in it belong to the user; removed on drop unless kept.
fn work_dir(input: &BuildInput<'_>, work_root: &Path) -> Result<TempPath> {
    crate::interrupt::sweep_stale(work_root);
    let work = TempPath::new(work_root.join(format!(
        "{}-{}",
        unit_work_name(&input.layer.name, input.runtime, input.arch),
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
    Docker(&'a crate::docker_cli::Docker),
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
    let result = match installer {
        Installer::Docker(d) => docker::install(d, input, work_root, pip_cache),
        Installer::HostPip => pip::install(input, work_root, pip_cache),
        Installer::Zips(zips) => {
            let work = work_dir(input, work_root)?;
            merge::install(input, zips, work.path())?;
            Ok(work)
        }
    };
    result.map_err(|e| hash_mismatch_hint(e, &input.layer.name, &input.layer.dir))
}

/// A failed install whose cause is a hash mismatch (pip's `THESE PACKAGES DO NOT MATCH
/// THE HASHES`, uv's `Hash mismatch for`) names the fix first: the lock was edited or
/// the index changed a file.
fn hash_mismatch_hint(e: anyhow::Error, layer: &str, dir: &Path) -> anyhow::Error {
    let text = format!("{e:#}");
    if !(text.contains("DO NOT MATCH THE HASHES") || text.contains("Hash mismatch for")) {
        return e;
    }
    if crate::lockfile::source_of(dir).is_some() {
        e.context(format!("layers/{layer}/requirements.txt does not match its lock: run `cargo xtask lock {layer}`"))
    } else {
        e.context(format!(
            "a hash in layers/{layer}/requirements.txt does not match the file the index serves: fix that line"
        ))
    }
}
