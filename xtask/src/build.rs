//! The docker builder: installs a layer's requirements into a fresh `python/` folder with
//! pip inside a Lambda-compatible build image, as the invoking user.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use walkdir::WalkDir;

use crate::config::LayerConfig;
use crate::docker::{Docker, RunSpec};
use crate::interrupt::TempPath;
use crate::runtime::{Arch, Runtime};

/// One unit to install: a layer for one runtime and architecture, with its image.
pub struct BuildInput<'a> {
    pub layer: &'a LayerConfig,
    pub runtime: Runtime,
    pub arch: Arch,
    pub image: &'a str,
}

/// Where pip's download and wheel cache lives between builds: `$XTASK_PIP_CACHE`, else
/// `$XDG_CACHE_HOME/lambda-layers/pip`, else `~/.cache/lambda-layers/pip`.
pub fn pip_cache_dir() -> Result<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("XTASK_PIP_CACHE").filter(|d| !d.is_empty()) {
        PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(d).join("lambda-layers/pip")
    } else {
        let home = std::env::var_os("HOME").context("HOME is not set: set XTASK_PIP_CACHE to a folder for pip's cache")?;
        PathBuf::from(home).join(".cache/lambda-layers/pip")
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create pip cache folder {}: set XTASK_PIP_CACHE to a writable folder", dir.display()))?;
    Ok(dir)
}

/// Runs `pip install` for the unit into `<work>/python`, where `<work>` is a new folder
/// under `work_root` that is removed again unless the caller keeps it.
pub fn install(docker: &Docker, input: &BuildInput<'_>, work_root: &Path, pip_cache: &Path) -> Result<TempPath> {
    let layer = input.layer;
    docker.ensure_image(input.image, input.arch)?;
    let work = TempPath::new(work_root.join(format!(
        "{}-{}-{}-{}",
        layer.name,
        input.runtime.tag(),
        input.arch,
        std::process::id()
    )));
    if work.path().exists() {
        std::fs::remove_dir_all(work.path())?;
    }
    // Made by this process, so the folder (and all pip writes in it) belongs to the user.
    std::fs::create_dir_all(work.path().join("python"))
        .with_context(|| format!("cannot create {}: is dist/ writable?", work.path().display()))?;
    let args = [
        "install",
        "-r",
        "requirements.txt",
        "--no-deps",
        "--ignore-installed",
        "--no-compile",
        "--no-warn-script-location",
        "--progress-bar",
        "off",
        "-t",
        "/out/python",
        // pip's install report names the Python that ran it (checked below).
        "--report",
        "/out/pip-report.json",
    ];
    docker.run(&RunSpec {
        image: input.image,
        arch: input.arch,
        // The layer folder is the working directory, read-only, so requirements may name
        // wheels kept next to them (`./wheels/private-1.0-py3-none-any.whl`).
        mounts: vec![(layer.dir.clone(), "/src".into(), true), (work.path().to_path_buf(), "/out".into(), false)],
        workdir: "/src",
        entrypoint: "pip",
        args: args.iter().map(|s| s.to_string()).collect(),
        pip_cache,
        what: format!("pip install for {} {} {} in {}", layer.name, input.runtime, input.arch, input.image),
    })?;
    check_python_version(&work.path().join("pip-report.json"), input)?;
    Ok(work)
}

/// Fails when the image's pip runs another Python than the runtime's: its wheels would
/// not import on Lambda. The Python is read from pip's install report.
fn check_python_version(report: &Path, input: &BuildInput<'_>) -> Result<()> {
    let want = format!("3.{}", input.runtime.minor);
    let text = std::fs::read_to_string(report).context("pip wrote no install report: the build image's pip is too old (22.2 or later is needed)")?;
    let json: serde_json::Value = serde_json::from_str(&text).context("pip's install report is not JSON")?;
    let found = json["environment"]["python_version"].as_str().unwrap_or_default();
    if found != want {
        anyhow::bail!(
            "build image `{}` runs Python {found} but the target is {}: use an image for Python {want} (--image or `image` in layers.toml)",
            input.image,
            input.runtime
        );
    }
    Ok(())
}

/// Strips debug symbols from the shared libraries of `<work>/python` with the build
/// image's `strip`. Returns (files, bytes saved), or None when the image has no `strip`.
pub fn strip_shared_libraries(docker: &Docker, input: &BuildInput<'_>, work: &Path, pip_cache: &Path) -> Result<Option<(u64, u64)>> {
    let before = shared_libraries(work)?;
    if before.is_empty() {
        return Ok(Some((0, 0)));
    }
    let script = "command -v strip >/dev/null 2>&1 || { echo XTASK_NO_STRIP; exit 0; }; \
                  find /out/python -type f -name '*.so*' -exec strip --strip-unneeded {} +";
    let out = docker.run(&RunSpec {
        image: input.image,
        arch: input.arch,
        mounts: vec![(work.to_path_buf(), "/out".into(), false)],
        workdir: "/out",
        entrypoint: "sh",
        args: vec!["-c".into(), script.into()],
        pip_cache,
        what: format!("strip shared libraries for {} {} {}", input.layer.name, input.runtime, input.arch),
    })?;
    if out.contains("XTASK_NO_STRIP") {
        return Ok(None);
    }
    let after = shared_libraries(work)?;
    let saved: u64 = before.iter().zip(&after).map(|((_, b), (_, a))| b.saturating_sub(*a)).sum();
    let changed = before.iter().zip(&after).filter(|((_, b), (_, a))| a < b).count() as u64;
    Ok(Some((changed, saved)))
}

fn shared_libraries(work: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    for e in WalkDir::new(work.join("python")).sort_by_file_name() {
        let e = e?;
        let name = e.file_name().to_string_lossy();
        if e.file_type().is_file() && (name.ends_with(".so") || name.contains(".so.")) {
            out.push((e.path().to_path_buf(), e.metadata()?.len()));
        }
    }
    Ok(out)
}
