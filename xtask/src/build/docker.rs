//! The docker builder: pip inside a Lambda-compatible build image, as the invoking user.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use walkdir::WalkDir;

use super::{pip_install_args, BuildInput};
use crate::docker::{Docker, RunSpec};
use crate::interrupt::TempPath;

/// Runs `pip install` for the unit into `<work>/python`, where `<work>` is a new folder
/// under `work_root` that is removed again unless the caller keeps it.
pub fn install(docker: &Docker, input: &BuildInput<'_>, work_root: &Path, pip_cache: &Path) -> Result<TempPath> {
    let layer = input.layer;
    docker.ensure_image(input.image, input.arch)?;
    let work = super::work_dir(input, work_root)?;
    let args = pip_install_args("requirements.txt", "/out/python", "/out/pip-report.json", input.hashed);
    docker.run(&RunSpec {
        image: input.image,
        arch: input.arch,
        // The layer folder is the working directory, read-only, so requirements may name
        // wheels kept next to them (`./wheels/private-1.0-py3-none-any.whl`).
        mounts: vec![(layer.dir.clone(), "/src".into(), true), (work.path().to_path_buf(), "/out".into(), false)],
        workdir: "/src",
        entrypoint: "pip",
        args,
        pip_cache,
        // pip -t installs into a temporary folder and then moves everything into the
        // target: with the temporary folder on the same mount that move is a rename,
        // not a copy of every file (about 2 s of a pandas + numpy build).
        env: vec![("TMPDIR".into(), "/out/tmp".into())],
        what: format!("pip install for {} {} {} in {}", layer.name, input.runtime, input.arch, input.image),
    })?;
    check_python_version(&work.path().join("pip-report.json"), input)?;
    Ok(work)
}

/// Fails when the image's pip runs another Python than the runtime's: its wheels would
/// not import on Lambda. The Python is read from pip's install report.
pub(super) fn check_python_version(report: &Path, input: &BuildInput<'_>) -> Result<()> {
    let want = format!("3.{}", input.runtime.minor);
    let text = std::fs::read_to_string(report)
        .context("pip wrote no install report: the build image's pip is too old (22.2 or later is needed)")?;
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
pub fn strip_shared_libraries(
    docker: &Docker,
    input: &BuildInput<'_>,
    work: &Path,
    pip_cache: &Path,
) -> Result<Option<(u64, u64)>> {
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
        env: vec![],
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

pub(super) fn shared_libraries(work: &Path) -> Result<Vec<(PathBuf, u64)>> {
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
