//! The pip builder: uv or pip on the host installs wheels built for the target instead of
//! the host (pip: `--platform` manylinux tags the runtime's glibc accepts,
//! `--python-version`, `--implementation cp`, `--only-binary=:all:`; uv:
//! `--python-platform`, `--python-version`, `--only-binary :all:`). No docker, and arm64
//! without emulation; only for layers whose packages all ship wheels. uv is used only
//! where its `--python-platform` names the runtime's glibc exactly (Amazon Linux 2023
//! runtimes); for Amazon Linux 2's glibc 2.26 it knows only manylinux_2_17 and would
//! refuse wheels pip takes, so pip installs those.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::{pip_install_args, BuildInput};
use crate::interrupt::TempPath;
use crate::runtime::{Arch, Runtime};

/// The host Python whose pip is used: `$XTASK_PIP_PYTHON`, else `python3`.
fn host_python() -> String {
    crate::settings::var("XTASK_PIP_PYTHON").unwrap_or("python3").to_string()
}

/// Every manylinux platform tag a runtime's glibc accepts for `arch`, newest first.
pub fn platform_tags(runtime: Runtime, arch: Arch) -> Vec<String> {
    let a = arch.machine();
    let (major, max_minor) = runtime.glibc;
    // aarch64 wheels start at manylinux2014 (glibc 2.17).
    let oldest = if arch == Arch::X86_64 { 5 } else { 17 };
    let mut tags: Vec<String> = (oldest..=max_minor).rev().map(|m| format!("manylinux_{major}_{m}_{a}")).collect();
    tags.push(format!("manylinux2014_{a}"));
    if arch == Arch::X86_64 {
        tags.push("manylinux2010_x86_64".into());
        tags.push("manylinux1_x86_64".into());
    }
    tags
}

/// The arguments that make pip pick wheels for the target instead of the host.
pub fn target_args(runtime: Runtime, arch: Arch) -> Vec<String> {
    let mut args = vec![
        "--only-binary=:all:".to_string(),
        "--python-version".into(),
        format!("3.{}", runtime.minor),
        "--implementation".into(),
        "cp".into(),
        "--abi".into(),
        format!("cp3{}", runtime.minor),
        "--abi".into(),
        "abi3".into(),
        "--abi".into(),
        "none".into(),
    ];
    for t in platform_tags(runtime, arch) {
        args.push("--platform".into());
        args.push(t);
    }
    args
}

pub fn install(input: &BuildInput<'_>, work_root: &Path, pip_cache: &Path) -> Result<TempPath> {
    let work = super::work_dir(input, work_root)?;
    let exact = crate::lockfile::uv::python_platform_is_exact(input.runtime, input.arch);
    match super::uv_for(input, false).filter(|_| exact) {
        Some(uv) => uv_install(input, work.path(), &uv)?,
        None => pip_install(input, work.path(), pip_cache)?,
    }
    Ok(work)
}

/// `uv pip install` on the host for the target: the host's Python only lets uv start
/// (`--python`); `--python-platform` and `--python-version` decide the wheels.
fn uv_install(input: &BuildInput<'_>, work: &Path, uv: &Path) -> Result<()> {
    let target = work.join("python");
    let requirements = requirements_for_target(input, work)?;
    let uv_cache = super::uv_cache_dir()?;
    let link = super::may_link(input, &uv_cache, work);
    let mut args = super::uv_install_args(&requirements, &target.to_string_lossy(), input.hashed, link);
    args.extend([
        "--python".into(),
        host_python(),
        "--python-platform".into(),
        crate::lockfile::uv::python_platform(input.runtime, input.arch),
        "--python-version".into(),
        format!("3.{}", input.runtime.minor),
        "--only-binary".into(),
        ":all:".into(),
    ]);
    let mut cmd = crate::lockfile::uv::command(uv)?;
    cmd.args(&args).current_dir(&input.layer.dir).env("UV_CACHE_DIR", &uv_cache).env("TMPDIR", work.join("tmp"));
    let what = format!(
        "uv pip install (host, {} wheels) for {} {} {}",
        input.arch, input.layer.name, input.runtime, input.arch
    );
    let (status, text) = crate::process::capture(cmd, what.clone())?;
    crate::interrupt::wait_if_interrupted();
    if !status.success() {
        // uv: "Because pyyaml==5.3.1 has no usable wheels and ..." (or "has no wheels with a
        // matching platform tag").
        let missing = text.lines().find_map(|l| {
            let (req, why) = l.split("Because ").nth(1)?.split_once(" has no ")?;
            why.contains("wheels").then(|| req.trim().to_string())
        });
        if let Some(req) = missing {
            return Err(no_wheel(input, &req));
        }
        bail!("{what} failed (exit {}):\n{}", status.code().unwrap_or(-1), crate::process::fence_tail(&text, 15));
    }
    super::remove_uv_leftovers(&target)?;
    super::write_uv_report(input, work, &format!("3.{}", input.runtime.minor))
}

fn pip_install(input: &BuildInput<'_>, work: &Path, pip_cache: &Path) -> Result<()> {
    let python = host_python();
    let target = work.join("python");
    let report = work.join("pip-report.json");
    let requirements = requirements_for_target(input, work)?;
    let mut args = pip_install_args(&requirements, &target.to_string_lossy(), &report.to_string_lossy(), input.hashed);
    args.extend(target_args(input.runtime, input.arch));
    let sh = Shell::new()?;
    sh.change_dir(&input.layer.dir);
    let what =
        format!("pip install (host, {} wheels) for {} {} {}", input.arch, input.layer.name, input.runtime, input.arch);
    let pip = cmd!(sh, "{python} -m pip {args...}")
        .env("PIP_CACHE_DIR", pip_cache)
        .env("TMPDIR", work.join("tmp"))
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1");
    let (status, text) = crate::process::capture(pip.into(), what.clone())
        .with_context(|| format!("cannot run `{python} -m pip`: install Python 3 with pip, or set XTASK_PIP_PYTHON"))?;
    crate::interrupt::wait_if_interrupted();
    if !status.success() {
        if let Some(req) = text.lines().find_map(|l| l.split("No matching distribution found for ").nth(1)) {
            return Err(no_wheel(input, req));
        }
        bail!("{what} failed (exit {}):\n{}", status.code().unwrap_or(-1), crate::process::fence_tail(&text, 15));
    }
    Ok(())
}

/// The error for a requirement with no wheel for the target: the pip builder cannot build.
fn no_wheel(input: &BuildInput<'_>, req: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "no wheel of `{}` for {} {} (CPython 3.{}, manylinux up to glibc {}.{}): the pip builder installs wheels only; set `builder = \"docker\"` in layers/{}/layer.toml to build it in the build image",
        crate::quote::clip(req.trim()),
        input.runtime,
        input.arch,
        input.runtime.minor,
        input.runtime.glibc.0,
        input.runtime.glibc.1,
        input.layer.name
    )
}

/// The requirements file host pip installs: requirements.txt itself, or for a lock whose
/// lines carry markers (a version per runtime or arch), the lines whose marker holds on
/// the target, written to the work folder. Host pip evaluates markers for the host, not
/// for `--python-version`/`--platform`; the build image's pip is the target and needs no
/// help.
fn requirements_for_target(input: &BuildInput<'_>, work: &Path) -> Result<String> {
    if !input.hashed {
        return Ok("requirements.txt".into());
    }
    let path = input.layer.dir.join("requirements.txt");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let reqs = crate::requirements_txt::Requirements::parse(&text, &input.layer.name)?;
    let env = crate::python::Env::new(input.runtime, input.arch);
    let mut kept = String::new();
    for line in &reqs.lines {
        let (req, options) = line.split_once(" --").map_or((line.as_str(), ""), |(r, o)| (r, o));
        match crate::python::Requirement::parse(req) {
            // Without its marker, which host pip would evaluate for the host.
            Some(r) if r.applies(&env, "") => kept.push_str(&r.text),
            Some(_) => continue,
            None => kept.push_str(req),
        }
        if !options.is_empty() {
            kept.push_str(" --");
            kept.push_str(options);
        }
        kept.push('\n');
    }
    let file = work.join("requirements.txt");
    std::fs::write(&file, kept).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file.to_string_lossy().into_owned())
}

/// Strips shared libraries with the host's `strip` when it can handle the target (same
/// arch as the host). Returns (files, bytes saved), or None when it cannot.
pub fn strip_shared_libraries(input: &BuildInput<'_>, work: &Path) -> Result<Option<(u64, u64)>> {
    let host = if cfg!(target_arch = "x86_64") { Arch::X86_64 } else { Arch::Arm64 };
    if input.arch != host || crate::process::find_program("strip").is_none() {
        return Ok(None);
    }
    let libs: Vec<(PathBuf, u64)> = super::docker::shared_libraries(work)?;
    let sh = Shell::new()?;
    let (mut files, mut saved) = (0, 0);
    for (path, before) in libs {
        cmd!(sh, "strip --strip-unneeded {path}").quiet().run().with_context(|| format!("strip {}", path.display()))?;
        let after = std::fs::metadata(&path)?.len();
        if after < before {
            files += 1;
            saved += before - after;
        }
    }
    Ok(Some((files, saved)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_tags_follow_the_runtimes_glibc_and_arch() {
        let r311 = Runtime::parse("python3.11").unwrap();
        let r313 = Runtime::parse("python3.13").unwrap();
        let t = platform_tags(r311, Arch::X86_64);
        assert_eq!(t[0], "manylinux_2_26_x86_64");
        assert!(t.contains(&"manylinux1_x86_64".to_string()) && !t.iter().any(|x| x.contains("2_27")));
        let t = platform_tags(r313, Arch::Arm64);
        assert_eq!(t[0], "manylinux_2_34_aarch64");
        assert_eq!(t.last().unwrap(), "manylinux2014_aarch64");
        assert!(t.iter().all(|x| x.ends_with("_aarch64")));
        let a = target_args(r313, Arch::Arm64);
        assert!(a.windows(2).any(|w| w[0] == "--python-version" && w[1] == "3.13"));
        assert!(a.windows(2).any(|w| w[0] == "--abi" && w[1] == "cp313"));
    }
}
