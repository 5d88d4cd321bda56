//! The docker builder: uv (a static binary mounted read-only) or pip inside a
//! Lambda-compatible build image, as the invoking user.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use walkdir::WalkDir;

use super::{pip_install_args, BuildInput};
use crate::docker_cli::{Docker, RunSpec};
use crate::interrupt::TempPath;

/// Installs the unit into `<work>/python`, where `<work>` is a new folder under
/// `work_root` that is removed again unless the caller keeps it: with uv when the layer's
/// installer is uv and uv can be had, else with pip.
pub fn install(docker: &Docker, input: &BuildInput<'_>, work_root: &Path, pip_cache: &Path) -> Result<TempPath> {
    docker.ensure_image(input.image, input.arch)?;
    let work = super::work_dir(input, work_root)?;
    match super::uv_for(input, true) {
        Some(uv) => uv_install(docker, input, work.path(), pip_cache, &uv)?,
        None => pip_install(docker, input, work.path(), pip_cache)?,
    }
    Ok(work)
}

/// The layer folder is the working directory, read-only, so requirements may name wheels
/// kept next to them (`./wheels/private-1.0-py3-none-any.whl`); the work folder is `/out`.
fn mounts(input: &BuildInput<'_>, work: &Path) -> Vec<(PathBuf, String, bool)> {
    vec![(input.layer.dir.clone(), "/src".into(), true), (work.to_path_buf(), "/out".into(), false)]
}

fn pip_install(docker: &Docker, input: &BuildInput<'_>, work: &Path, pip_cache: &Path) -> Result<()> {
    let layer = input.layer;
    let args = pip_install_args("requirements.txt", "/out/python", "/out/pip-report.json", input.hashed);
    docker.run(&RunSpec {
        image: input.image,
        arch: input.arch,
        mounts: mounts(input, work),
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
    check_python_version(&work.join("pip-report.json"), input)
}

/// `uv pip install` in the build image, in one container: a small script writes the
/// version of the image's `python3` to `<out>/python-version` (uv makes no install report
/// to read it from), maps the user's pip settings to uv's, and execs the static uv
/// mounted at `/xtask-uv` with `--python` set to that interpreter (it decides the wheel
/// tags and markers, as the image's pip would). uv's cache is mounted at `/uv-cache`.
/// When uv may hard-link from it ([`super::may_link`]), `<out>` is a staging folder inside
/// that mount (a link cannot cross mounts), moved into `work` afterwards; else it is
/// `work` itself, mounted at `/out`, and uv copies.
fn uv_install(docker: &Docker, input: &BuildInput<'_>, work: &Path, pip_cache: &Path, uv: &Path) -> Result<()> {
    let layer = input.layer;
    let uv_dir = uv.parent().context("uv has no folder")?.to_path_buf();
    let uv_cache = super::uv_cache_dir()?;
    let stage = if super::may_link(input, &uv_cache, work) { Some(staging(&uv_cache, work)?) } else { None };
    let (out, host_out) = match &stage {
        Some((s, name)) => (format!("/uv-cache/{STAGING}/{name}"), s.path().to_path_buf()),
        None => ("/out".to_string(), work.to_path_buf()),
    };
    let script = format!(
        "py=$(command -v python3 || command -v python) || {{ echo 'no python3 in the image' >&2; exit 97; }}; \
         \"$py\" -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' > {out}/python-version || exit 97; \
         {} exec /xtask-uv/uv \"$@\" --python \"$py\"",
        crate::lockfile::uv::PIP_TO_UV_SH
    );
    let mut args = vec!["-c".to_string(), script, "sh".into()];
    args.extend(super::uv_install_args("requirements.txt", &format!("{out}/python"), input.hashed, stage.is_some()));
    let mut mounts = mounts(input, work);
    mounts.push((uv_dir, "/xtask-uv".into(), true));
    mounts.push((uv_cache, "/uv-cache".into(), false));
    let mut env = crate::lockfile::uv::container_env("/uv-cache");
    env.push(("TMPDIR".into(), format!("{out}/tmp")));
    let result = docker.run(&RunSpec {
        image: input.image,
        arch: input.arch,
        mounts,
        workdir: "/src",
        entrypoint: "sh",
        args,
        pip_cache,
        env,
        what: format!("uv pip install for {} {} {} in {}", layer.name, input.runtime, input.arch, input.image),
    });
    // The image's Python first: a wrong one explains a failed install better than uv does.
    let found = std::fs::read_to_string(host_out.join("python-version")).unwrap_or_default();
    let found = found.trim();
    if found.is_empty() {
        // The container's own failure (its tail says `no python3 in the image` if so), or
        // none at all and no version.
        result?;
        bail!(
            "build image `{}` has no python3: use an image for Python 3.{} (--image or `image` in layers.toml)",
            input.image,
            input.runtime.minor
        );
    }
    same_python(found, input)?;
    result?;
    if stage.is_some() {
        move_tree(&host_out.join("python"), &work.join("python"))?;
    }
    super::remove_uv_leftovers(&work.join("python"))?;
    super::write_uv_report(input, work, found)
}

/// The folder in uv's cache that holds hard-linked installs while they run.
const STAGING: &str = ".xtask-staging";

/// A new, empty staging folder for `work` in uv's cache (`python/` and `tmp/` in it),
/// removed on drop and on Ctrl-C; and its name. The name is `work`'s plus a random part:
/// a cache may be shared by builds in other containers, whose process ids can be ours.
fn staging(uv_cache: &Path, work: &Path) -> Result<(TempPath, String)> {
    let name = work.file_name().context("the work folder has no name")?.to_string_lossy().into_owned();
    let root = uv_cache.join(STAGING);
    crate::interrupt::sweep_stale(&root);
    let made = std::fs::create_dir_all(&root)
        .and_then(|_| tempfile::Builder::new().prefix(&format!("{name}-")).tempdir_in(&root))
        .with_context(|| format!("cannot create a folder in {}: is uv's cache writable?", root.display()))?;
    let stage = TempPath::new(made.keep());
    for dir in ["python", "tmp"] {
        std::fs::create_dir(stage.path().join(dir))
            .with_context(|| format!("cannot create {}", stage.path().join(dir).display()))?;
    }
    let name = stage.path().file_name().context("no name")?.to_string_lossy().into_owned();
    Ok((stage, name))
}

/// Moves the installed tree `from` to `to` (an empty folder): a rename, as both are on
/// one filesystem; a copy when the rename is refused anyway (two mounts of it).
fn move_tree(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_dir(to);
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    for e in WalkDir::new(from).sort_by_file_name() {
        let e = e?;
        let dest = to.join(e.path().strip_prefix(from)?);
        let kind = e.file_type();
        let done = if kind.is_dir() {
            std::fs::create_dir_all(&dest)
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &dest)
        } else {
            std::fs::copy(e.path(), &dest).map(|_| ())
        };
        done.with_context(|| format!("cannot copy {} to {}", e.path().display(), dest.display()))?;
    }
    Ok(())
}

/// Fails when the image's pip runs another Python than the runtime's: its wheels would
/// not import on Lambda. The Python is read from pip's install report.
pub(super) fn check_python_version(report: &Path, input: &BuildInput<'_>) -> Result<()> {
    let text = std::fs::read_to_string(report)
        .context("pip wrote no install report: the build image's pip is too old (22.2 or later is needed)")?;
    let json: serde_json::Value = serde_json::from_str(&text).context("pip's install report is not JSON")?;
    same_python(json["environment"]["python_version"].as_str().unwrap_or_default(), input)
}

/// Fails when `found` (`3.12`) is not the runtime's Python version.
fn same_python(found: &str, input: &BuildInput<'_>) -> Result<()> {
    let want = format!("3.{}", input.runtime.minor);
    if found != want {
        bail!(
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
