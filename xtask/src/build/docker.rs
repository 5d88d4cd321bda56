//! The docker builder: uv (a static binary mounted read-only) or pip inside a
//! Lambda-compatible build image, as the invoking user. A unit's commands run with
//! `docker exec` in the run's build container for its image and platform (one per run,
//! [`Docker::exec`]), which mounts the folder holding the layer folders at `/layers` and
//! the work root at `/work`; each unit reads and writes only its own folders in them.
//! A unit whose installed tree records the folder it was installed from (`slim = "none"`
//! keeps pip's `direct_url.json`, which names a local wheel by its path in the
//! container) gets a container of its own, with its folders at `/src` and `/out` as
//! always, so its zip is the same bytes.

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
    let place = Place::new(input, work.path(), !records_source_folder(input))?;
    match super::uv_for(input, true) {
        Some(uv) => uv_install(docker, input, &place, work.path(), pip_cache, &uv)?,
        None => pip_install(docker, input, &place, work.path(), pip_cache)?,
    }
    Ok(work)
}

/// Where a unit's folders are inside its container, and which container it runs in.
struct Place {
    /// The container's mounts: (host path, container path, read-only).
    mounts: Vec<(PathBuf, String, bool)>,
    /// The layer folder, read-only, the working directory, so requirements may name
    /// wheels kept next to them (`./wheels/private-1.0-py3-none-any.whl`).
    src: String,
    /// The unit's work folder.
    out: String,
    /// In the run's shared container ([`Docker::exec`]), else one of its own.
    shared: bool,
}

impl Place {
    /// Shared: the layer folder's parent at `/layers` (read-only) and the work root at
    /// `/work`, the same for every unit. Its own: the layer folder at `/src` and `work` at
    /// `/out`.
    fn new(input: &BuildInput<'_>, work: &Path, shared: bool) -> Result<Place> {
        if !shared {
            return Ok(Place {
                mounts: vec![
                    (input.layer.dir.clone(), "/src".into(), true),
                    (work.to_path_buf(), "/out".into(), false),
                ],
                src: "/src".into(),
                out: "/out".into(),
                shared,
            });
        }
        let dir =
            input.layer.dir.canonicalize().with_context(|| format!("cannot read {}", input.layer.dir.display()))?;
        let (layers, name) = parent_and_name(&dir)?;
        let (work_root, work_name) = parent_and_name(work)?;
        let work_root = work_root.canonicalize().with_context(|| format!("cannot read {}", work_root.display()))?;
        Ok(Place {
            mounts: vec![(layers.to_path_buf(), "/layers".into(), true), (work_root, "/work".into(), false)],
            src: format!("/layers/{name}"),
            out: format!("/work/{work_name}"),
            shared,
        })
    }

    /// Runs `spec` in the unit's container.
    fn run(&self, docker: &Docker, spec: &RunSpec<'_>) -> Result<String> {
        if self.shared {
            docker.exec(spec)
        } else {
            docker.run(spec)
        }
    }

    /// The environment every command of the unit gets: `TMPDIR` (and, in the shared
    /// container, `HOME`) its own `tmp` folder. pip -t installs into a temporary folder
    /// and then moves everything into the target: with the temporary folder on the same
    /// mount that move is a rename, not a copy of every file (about 2 s of a pandas +
    /// numpy build).
    fn env(&self, tmp: &str) -> Vec<(String, String)> {
        let mut env = vec![("TMPDIR".to_string(), tmp.to_string())];
        if self.shared {
            env.push(("HOME".into(), tmp.into()));
        }
        env
    }
}

/// A folder's parent and its name (a name a container path can hold).
fn parent_and_name(dir: &Path) -> Result<(&Path, String)> {
    let parent = dir.parent().with_context(|| format!("{} has no parent folder", dir.display()))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).filter(|n| !n.contains(['/', ':', ',']));
    let name = name.with_context(|| format!("{} cannot be named inside a container: rename it", dir.display()))?;
    Ok((parent, name))
}

/// Whether the unit's zip would name the folder its requirements were installed from:
/// with `slim = "none"` pip's and uv's `direct_url.json` stay, and for a requirement that
/// is a local file (`./wheels/x.whl`, `/abs/x.whl`, `file:...`) it holds that file's path
/// in the container.
fn records_source_folder(input: &BuildInput<'_>) -> bool {
    if input.layer.slim != crate::config::SlimLevel::None {
        return false;
    }
    let text = std::fs::read_to_string(input.layer.dir.join("requirements.txt")).unwrap_or_default();
    text.lines().map(str::trim).any(|l| {
        l.starts_with('.')
            || l.starts_with('/')
            || l.starts_with("file:")
            || l.contains("@ file:")
            || l.contains("@file:")
    })
}

fn pip_install(docker: &Docker, input: &BuildInput<'_>, place: &Place, work: &Path, pip_cache: &Path) -> Result<()> {
    let layer = input.layer;
    let out = &place.out;
    let args =
        pip_install_args("requirements.txt", &format!("{out}/python"), &format!("{out}/pip-report.json"), input.hashed);
    place.run(
        docker,
        &RunSpec {
            image: input.image,
            arch: input.arch,
            mounts: place.mounts.clone(),
            workdir: &place.src,
            entrypoint: "pip",
            args,
            pip_cache,
            env: place.env(&format!("{out}/tmp")),
            what: format!("pip install for {} {} {} in {}", layer.name, input.runtime, input.arch, input.image),
        },
    )?;
    check_python_version(&work.join("pip-report.json"), input)
}

/// `uv pip install` in the build image, in one container: a small script writes the
/// version of the image's `python3` to `<out>/python-version` (uv makes no install report
/// to read it from), maps the user's pip settings to uv's, and execs the static uv
/// mounted at `/xtask-uv` with `--python` set to that interpreter (it decides the wheel
/// tags and markers, as the image's pip would). uv's cache is mounted at `/uv-cache`.
/// When uv may hard-link from it ([`super::may_link`]), `<out>` is a staging folder inside
/// that mount (a link cannot cross mounts), moved into `work` afterwards; else it is
/// `work` itself, and uv copies.
fn uv_install(
    docker: &Docker,
    input: &BuildInput<'_>,
    place: &Place,
    work: &Path,
    pip_cache: &Path,
    uv: &Path,
) -> Result<()> {
    let layer = input.layer;
    let uv_dir = uv.parent().context("uv has no folder")?.to_path_buf();
    let uv_cache = super::uv_cache_dir()?;
    let stage = if super::may_link(input, &uv_cache, work) { Some(staging(&uv_cache, work)?) } else { None };
    let (out, host_out) = match &stage {
        Some((s, name)) => (format!("/uv-cache/{STAGING}/{name}"), s.path().to_path_buf()),
        None => (place.out.clone(), work.to_path_buf()),
    };
    let script = format!(
        "py=$(command -v python3 || command -v python) || {{ echo 'no python3 in the image' >&2; exit 97; }}; \
         \"$py\" -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' > {out}/python-version || exit 97; \
         {} exec /xtask-uv/uv \"$@\" --python \"$py\"",
        crate::lockfile::uv::PIP_TO_UV_SH
    );
    let mut args = vec!["-c".to_string(), script, "sh".into()];
    args.extend(super::uv_install_args("requirements.txt", &format!("{out}/python"), input.hashed, stage.is_some()));
    let mut mounts = place.mounts.clone();
    mounts.push((uv_dir, "/xtask-uv".into(), true));
    mounts.push((uv_cache, "/uv-cache".into(), false));
    let mut env = crate::lockfile::uv::container_env("/uv-cache");
    env.extend(place.env(&format!("{out}/tmp")));
    let result = place.run(
        docker,
        &RunSpec {
            image: input.image,
            arch: input.arch,
            mounts,
            workdir: &place.src,
            entrypoint: "sh",
            args,
            pip_cache,
            env,
            what: format!("uv pip install for {} {} {} in {}", layer.name, input.runtime, input.arch, input.image),
        },
    );
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
    // Only the work root is mounted: one more shared container per image and platform
    // for the units that strip, not one per unit.
    let (work_root, name) = parent_and_name(work)?;
    let work_root = work_root.canonicalize().with_context(|| format!("cannot read {}", work_root.display()))?;
    let out = format!("/work/{name}");
    let script = format!(
        "command -v strip >/dev/null 2>&1 || {{ echo XTASK_NO_STRIP; exit 0; }}; \
         find {out}/python -type f -name '*.so*' -exec strip --strip-unneeded {{}} +"
    );
    let out = docker.exec(&RunSpec {
        image: input.image,
        arch: input.arch,
        mounts: vec![(work_root, "/work".into(), false)],
        workdir: &out,
        entrypoint: "sh",
        args: vec!["-c".into(), script],
        pip_cache,
        env: vec![("HOME".into(), format!("{out}/tmp")), ("TMPDIR".into(), format!("{out}/tmp"))],
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
