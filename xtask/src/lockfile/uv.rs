//! The pinned uv, resolver and installer: found in the tool cache or fetched once from
//! PyPI as a wheel (by the host's `python3 -m pip download`, else by pip inside the build
//! image) and unpacked from it with the zip crate. For locking and host installs, the
//! host's uv, run with the user's pip settings on the host when it has a `python3` (uv
//! needs some interpreter, even to resolve wheels only for another Python), else inside
//! the build image; for installs inside build images (`build::docker`), the statically
//! linked musllinux uv for the target's architecture, which runs in any image.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::runtime::{Arch, Runtime};

/// The one uv version every lock is made with (named in each lock's header). Bump it on
/// purpose: a new resolver may pick other versions for the same inputs.
pub const UV_VERSION: &str = "0.13.9";

/// Where the tool keeps its own copies of uv: `$XDG_CACHE_HOME/lambda-layers/uv`, else
/// `~/.cache/lambda-layers/uv`.
fn cache_root() -> Result<PathBuf> {
    if let Some(d) = crate::settings::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(d).join("lambda-layers"));
    }
    let home = crate::settings::var_os("HOME").context("HOME is not set: set XDG_CACHE_HOME or XTASK_UV")?;
    Ok(PathBuf::from(home).join(".cache/lambda-layers"))
}

/// The pinned uv and where it runs, for locking `layer`: the build image of its first
/// target fetches and runs uv when this machine has no python3.
pub fn for_layer(layer: &crate::config::LayerConfig) -> Result<(PathBuf, Runner)> {
    let image = layer.images.values().next().map(String::as_str);
    Ok((ensure(image)?, Runner::choose(image)?))
}

/// The uv to run: `$XTASK_UV` when set (used as is), else the pinned version from the
/// tool cache, fetched first when missing. `image` is the build image used to fetch it
/// when the host has no `python3`.
pub fn ensure(image: Option<&str>) -> Result<PathBuf> {
    if let Some(p) = crate::settings::var_os("XTASK_UV") {
        return Ok(PathBuf::from(p));
    }
    let dir = cache_root()?.join("uv").join(UV_VERSION);
    let platform = format!("manylinux_2_17_{}", host_arch().machine());
    ensure_in(&dir, &platform, None, image)
}

/// The pinned uv for Linux on `arch` as a statically linked binary (the musllinux wheel's:
/// no libc, no loader), so it runs in any build image it is mounted into, whatever the
/// image's distribution; kept in `<cache>/uv/<version>/<machine>-linux-musl/uv`, fetched
/// once. `$XTASK_UV_STATIC` names such a binary instead (machines that cannot reach PyPI);
/// it must be a static executable for `arch`. `XTASK_UV` is not used here: it names a
/// binary for the host, which need not run inside an image.
pub fn ensure_static(arch: Arch, image: Option<&str>) -> Result<PathBuf> {
    if let Some(p) = crate::settings::var_os("XTASK_UV_STATIC") {
        let p = PathBuf::from(p);
        let bytes = std::fs::read(&p).with_context(|| format!("XTASK_UV_STATIC names {}", p.display()))?;
        check_static(&bytes, arch).with_context(|| format!("XTASK_UV_STATIC names {}", p.display()))?;
        return Ok(p);
    }
    let dir = cache_root()?.join("uv").join(UV_VERSION).join(format!("{}-linux-musl", arch.machine()));
    let platform = format!("musllinux_1_1_{}", arch.machine());
    ensure_in(&dir, &platform, Some(arch), image)
}

/// `dir/uv`, unpacked from the uv wheel for the wheel `platform` when missing. With
/// `static_for`, the binary must be a static executable for that architecture.
fn ensure_in(dir: &Path, platform: &str, static_for: Option<Arch>, image: Option<&str>) -> Result<PathBuf> {
    let bin = dir.join("uv");
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::output::status("fetching", format_args!("uv {UV_VERSION} ({platform}) from PyPI into {}", dir.display()));
    let download = tempfile::Builder::new().prefix(".download-").tempdir_in(dir)?;
    fetch_wheel(download.path(), platform, image)?;
    let wheel = std::fs::read_dir(download.path())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("pip downloaded no uv {UV_VERSION} wheel for {platform}"))?;
    extract_uv(&wheel, dir, &bin, static_for)?;
    Ok(bin)
}

/// The machine the tool runs on (uv runs where the tool runs).
fn host_arch() -> Arch {
    if cfg!(target_arch = "x86_64") {
        Arch::X86_64
    } else {
        Arch::Arm64
    }
}

/// `pip download uv==UV_VERSION` for the wheel `platform` into `dest`: with the host's
/// Python when there is one, else inside the build image (docker), with the same pip
/// settings a build passes.
fn fetch_wheel(dest: &Path, platform: &str, image: Option<&str>) -> Result<()> {
    let args: Vec<String> = [
        "download",
        &format!("uv=={UV_VERSION}"),
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        platform,
        "--python-version",
        "3.12",
        "--disable-pip-version-check",
        "-q",
        "-d",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(python) = crate::process::find_program("python3") {
        let mut cmd = Command::new(python);
        cmd.arg("-m").arg("pip").args(&args).arg(dest);
        let what = format!("pip download uv=={UV_VERSION}");
        let (status, text) = crate::process::capture(cmd, what.clone())?;
        if status.success() {
            return Ok(());
        }
        if image.is_none() {
            bail!("{what} failed:\n{}", crate::process::fence_tail(&text, 10));
        }
    }
    let Some(image) = image else {
        bail!("cannot fetch uv {UV_VERSION}: no python3 on this machine and no build image to run pip in; install python3, or set XTASK_UV to a uv {UV_VERSION} binary")
    };
    let docker = crate::docker_cli::Docker::connect()
        .context("cannot fetch uv: no python3 on this machine, and docker is needed to run pip in the build image")?;
    let host_arch = host_arch();
    docker.ensure_image(image, host_arch)?;
    let pip_cache = crate::build::pip_cache_dir()?;
    let mut args = args;
    args.push("/out".into());
    docker
        .run(&crate::docker_cli::RunSpec {
            image,
            arch: host_arch,
            mounts: vec![(dest.to_path_buf(), "/out".into(), false)],
            workdir: "/out",
            entrypoint: "pip",
            args,
            pip_cache: &pip_cache,
            env: vec![],
            what: format!("pip download uv=={UV_VERSION} in {image}"),
        })
        .with_context(|| format!("cannot fetch uv {UV_VERSION} with pip in {image}"))?;
    Ok(())
}

/// Unpacks `uv-VERSION.data/scripts/uv` from the wheel to `bin`, atomically (a temp file
/// in the same folder, made executable, then renamed). With `static_for`, refuses a
/// binary that is not a static executable for that architecture.
fn extract_uv(wheel: &Path, dir: &Path, bin: &Path, static_for: Option<Arch>) -> Result<()> {
    let file = std::fs::File::open(wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{} is not a wheel", wheel.display()))?;
    let inner = format!("uv-{UV_VERSION}.data/scripts/uv");
    let mut entry = zip.by_name(&inner).with_context(|| format!("{} has no {inner}", wheel.display()))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    if let Some(arch) = static_for {
        check_static(&bytes, arch).with_context(|| format!("{inner} in {}", wheel.display()))?;
    }
    let mut tmp = tempfile::Builder::new().prefix(".uv-").tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, &bytes)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
    tmp.persist(bin).with_context(|| format!("cannot write {}", bin.display()))?;
    Ok(())
}

/// Fails unless `bytes` is an ELF executable for `arch` that needs no loader (no
/// `PT_INTERP`) and no shared library: one that runs in any Linux image.
fn check_static(bytes: &[u8], arch: Arch) -> Result<()> {
    let elf = goblin::elf::Elf::parse(bytes).context("not an ELF executable")?;
    let machine = match arch {
        Arch::X86_64 => goblin::elf::header::EM_X86_64,
        Arch::Arm64 => goblin::elf::header::EM_AARCH64,
    };
    if elf.header.e_machine != machine {
        bail!("not a {} executable", arch.machine());
    }
    if elf.interpreter.is_some() || !elf.libraries.is_empty() {
        bail!("not statically linked (it needs {:?} and {:?})", elf.interpreter, elf.libraries);
    }
    Ok(())
}

/// uv's `--python-platform` for a runtime and arch: the newest manylinux uv names that the
/// runtime's glibc runs (uv knows 2_17, 2_28 and 2_31 upwards; Amazon Linux 2's 2.26
/// therefore resolves against manylinux_2_17 wheels, which it runs).
pub fn python_platform(runtime: Runtime, arch: Arch) -> String {
    let (_, minor) = runtime.glibc;
    let known = [17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40];
    let best = known.iter().rev().find(|m| **m <= minor).copied().unwrap_or(17);
    format!("{}-manylinux_2_{best}", arch.machine())
}

/// The sha256 of the wheel archive uv installed distribution `name` (normalised) `version`
/// with wheel tags `tags` from, as uv's cache (`cache`) recorded it: uv keeps no archive,
/// but beside each unpacked wheel a pointer file, `wheels-v*/<index>/<name>/<version>-<tags>.http`,
/// holding the file name and the `Sha256` the index gave. Tied to the cache layout of
/// [`UV_VERSION`] (tested); None when nothing matches exactly one pointer.
pub fn cached_wheel_hash(
    cache: &Path,
    name: &str,
    version: &str,
    tags: &std::collections::BTreeSet<String>,
) -> Option<String> {
    let mut found = std::collections::BTreeSet::new();
    let buckets =
        std::fs::read_dir(cache).ok()?.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("wheels-v"));
    for bucket in buckets {
        // `pypi/<name>` or `index/<id>/<name>` (another index), `url/<id>/<name>`, ...
        for dir in walkdir::WalkDir::new(bucket.path()).min_depth(1).max_depth(3).into_iter().flatten() {
            if !dir.file_type().is_dir() || dir.file_name().to_string_lossy() != name {
                continue;
            }
            for e in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(wheel_tags) = file.strip_suffix(".http").and_then(|f| f.strip_prefix(&format!("{version}-")))
                else {
                    continue;
                };
                if !tags.is_empty() && crate::python::expand_wheel_tags(wheel_tags) == *tags {
                    found.extend(std::fs::read(e.path()).ok().and_then(|b| sha256_after_marker(&b)));
                }
            }
        }
    }
    (found.len() == 1).then(|| found.into_iter().next().unwrap_or_default())
}

/// The first 64 hex digits after `Sha256` in a uv pointer file.
fn sha256_after_marker(bytes: &[u8]) -> Option<String> {
    let at = bytes.windows(6).position(|w| w == b"Sha256")? + 6;
    let rest = &bytes[at..];
    let start = rest.iter().position(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())?;
    let hex = rest.get(start..start + 64)?;
    hex.iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        .then(|| String::from_utf8_lossy(hex).into_owned())
}

/// Whether `python_platform` names the runtime's glibc exactly (every Amazon Linux 2023
/// runtime), not an older manylinux standing in for it (Amazon Linux 2's 2.26).
pub fn python_platform_is_exact(runtime: Runtime, arch: Arch) -> bool {
    python_platform(runtime, arch).ends_with(&format!("_{}", runtime.glibc.1))
}

/// The uv cache the resolver uses: `$UV_CACHE_DIR` when set, else the builds' uv cache
/// (`build::uv_cache_dir`).
fn uv_cache() -> Result<PathBuf> {
    if let Some(d) = crate::settings::var_os("UV_CACHE_DIR") {
        return Ok(PathBuf::from(d));
    }
    crate::build::uv_cache_dir()
}

/// Where uv runs.
pub enum Runner {
    /// On this machine: it has a `python3`.
    Host,
    /// In the build image (no `python3` here), with uv and the work folder mounted (each
    /// run connects on its own thread: a docker connection is not shared across threads).
    Docker { image: String },
}

impl Runner {
    /// The host when it has a `python3`, else docker with `image`.
    pub fn choose(image: Option<&str>) -> Result<Runner> {
        if crate::process::find_program("python3").is_some() {
            return Ok(Runner::Host);
        }
        let image = image.context("uv needs a Python interpreter: install python3, or let it run in a build image")?;
        let docker = crate::docker_cli::Docker::connect()
            .context("uv needs a Python interpreter: there is no python3 here, and docker (to run it in the build image) is not reachable")?;
        docker.ensure_image(image, host_arch())?;
        Ok(Runner::Docker { image: image.to_string() })
    }

    /// Runs `uv ARGS` with `work` (a folder every path in `args` is inside) visible at the
    /// same path in a container. Returns whether it succeeded, and its stderr.
    pub fn run(&self, uv: &Path, work: &Path, args: &[String], what: &str) -> Result<(bool, String)> {
        match self {
            Runner::Host => {
                let mut cmd = command(uv)?;
                cmd.args(args);
                crate::output::command(&uv.display().to_string(), args);
                let out = cmd.output().with_context(|| format!("cannot run {}", uv.display()))?;
                Ok((out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned()))
            }
            Runner::Docker { image } => {
                let docker = crate::docker_cli::Docker::connect()?;
                let cache = uv_cache()?;
                std::fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
                let stderr = work.join(format!("uv-stderr-{}.txt", super::hex(what.as_bytes())));
                // The user's pip settings arrive by name (secrets never on a command line)
                // and become uv's inside the container.
                let script = format!("{PIP_TO_UV_SH} err=\"$1\"; shift; exec /xtask-uv/uv \"$@\" 2>\"$err\"");
                let mut full = vec!["-c".to_string(), script, "sh".into(), stderr.display().to_string()];
                full.extend(args.iter().cloned());
                let uv_dir = uv.parent().context("uv has no folder")?.to_path_buf();
                let pip_cache = crate::build::pip_cache_dir()?;
                let work_s = work.display().to_string();
                let result = docker.run(&crate::docker_cli::RunSpec {
                    image,
                    arch: host_arch(),
                    mounts: vec![
                        (uv_dir, "/xtask-uv".into(), true),
                        (work.to_path_buf(), work_s.clone(), false),
                        (cache, "/uv-cache".into(), false),
                    ],
                    workdir: &work_s,
                    entrypoint: "sh",
                    args: full,
                    pip_cache: &pip_cache,
                    env: container_env("/uv-cache"),
                    what: format!("uv {what} in {image}"),
                });
                let text = std::fs::read_to_string(&stderr).unwrap_or_default();
                match result {
                    Ok(_) => Ok((true, text)),
                    Err(_) if !text.trim().is_empty() => Ok((false, text)),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// The user's pip settings as uv's: (pip's variable, uv's). Proxies (`HTTPS_PROXY`, ...)
/// are read by both as they are.
pub const PIP_TO_UV: &[(&str, &str)] = &[
    ("PIP_INDEX_URL", "UV_INDEX_URL"),
    ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL"),
    ("PIP_TRUSTED_HOST", "UV_INSECURE_HOST"),
    ("PIP_CERT", "SSL_CERT_FILE"),
    ("PIP_DEFAULT_TIMEOUT", "UV_HTTP_TIMEOUT"),
    ("PIP_RETRIES", "UV_HTTP_RETRIES"),
];

/// [`PIP_TO_UV`] as a shell prelude for a container: the values arrive by name (docker
/// passes the user's pip settings as bare `-e NAME`, secrets never on a command line) and
/// are copied to uv's names inside; `PIP_CERT` is already the mounted file's path there.
pub const PIP_TO_UV_SH: &str = "[ -n \"$PIP_INDEX_URL\" ] && export UV_INDEX_URL=\"$PIP_INDEX_URL\"; \
     [ -n \"$PIP_EXTRA_INDEX_URL\" ] && export UV_EXTRA_INDEX_URL=\"$PIP_EXTRA_INDEX_URL\"; \
     [ -n \"$PIP_TRUSTED_HOST\" ] && export UV_INSECURE_HOST=\"$PIP_TRUSTED_HOST\"; \
     [ -n \"$PIP_CERT\" ] && export SSL_CERT_FILE=\"$PIP_CERT\"; \
     [ -n \"$PIP_DEFAULT_TIMEOUT\" ] && export UV_HTTP_TIMEOUT=\"$PIP_DEFAULT_TIMEOUT\"; \
     [ -n \"$PIP_RETRIES\" ] && export UV_HTTP_RETRIES=\"$PIP_RETRIES\";";

/// The variables every uv run in a container gets: its cache at `cache`, no managed Python
/// downloads, no user config, no progress bars or colour.
pub fn container_env(cache: &str) -> Vec<(String, String)> {
    [
        ("UV_CACHE_DIR", cache),
        ("UV_PYTHON_DOWNLOADS", "never"),
        ("UV_NO_CONFIG", "1"),
        ("UV_NO_PROGRESS", "1"),
        ("NO_COLOR", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A uv command on the host with the user's pip settings translated ([`PIP_TO_UV`]; a uv
/// variable already set wins, except `SSL_CERT_FILE` over `PIP_CERT`); no managed Python
/// downloads, no user config, no colour.
pub fn command(uv: &Path) -> Result<Command> {
    let mut cmd = Command::new(uv);
    cmd.env("UV_CACHE_DIR", uv_cache()?)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_NO_CONFIG", "1")
        .env("UV_NO_PROGRESS", "1")
        .env("NO_COLOR", "1");
    for &(pip, uv_var) in PIP_TO_UV {
        if let Some(v) = crate::settings::var_os(pip) {
            if crate::settings::var_os(uv_var).is_none() || pip == "PIP_CERT" {
                cmd.env(uv_var, v);
            }
        }
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_follow_the_runtimes_glibc() {
        let r = |id| Runtime::parse(id).unwrap();
        assert_eq!(python_platform(r("python3.11"), Arch::X86_64), "x86_64-manylinux_2_17");
        assert_eq!(python_platform(r("python3.13"), Arch::Arm64), "aarch64-manylinux_2_34");
        assert!(python_platform_is_exact(r("python3.12"), Arch::X86_64));
        assert!(!python_platform_is_exact(r("python3.11"), Arch::X86_64));
    }

    #[test]
    fn a_cached_wheels_hash_is_read_from_uvs_pointer_file() {
        let d = tempfile::tempdir().unwrap();
        let sha = "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3";
        let dir = d.path().join("wheels-v8/pypi/idna");
        std::fs::create_dir_all(&dir).unwrap();
        let mut pointer = b"\x10B0E6Xglcc\x06Sha256@".to_vec();
        pointer.extend(sha.as_bytes());
        pointer.extend(b"\x1aidna-3.10-py3-none-any.whl");
        std::fs::write(dir.join("3.10-py3-none-any.http"), &pointer).unwrap();
        std::fs::write(dir.join("3.9-py3-none-any.http"), b"Sha256@0000").unwrap();
        let tags = crate::python::expand_wheel_tags("py3-none-any");
        assert_eq!(cached_wheel_hash(d.path(), "idna", "3.10", &tags).as_deref(), Some(sha));
        assert_eq!(cached_wheel_hash(d.path(), "idna", "3.9", &tags), None);
        assert_eq!(
            cached_wheel_hash(d.path(), "idna", "3.10", &crate::python::expand_wheel_tags("py2-none-any")),
            None
        );
        assert_eq!(cached_wheel_hash(d.path(), "six", "3.10", &tags), None);
    }

    #[test]
    fn the_container_prelude_maps_every_pip_setting() {
        for (pip, uv) in PIP_TO_UV {
            assert!(PIP_TO_UV_SH.contains(&format!("export {uv}=\"${pip}\"")), "{pip} -> {uv}");
        }
    }

    #[test]
    fn only_a_static_executable_for_the_arch_is_accepted() {
        // This test binary itself: dynamically linked (it has a loader).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = check_static(&me, host_arch()).unwrap_err();
        assert!(format!("{err:#}").contains("not statically linked"), "{err:#}");
        let other = if host_arch() == Arch::X86_64 { Arch::Arm64 } else { Arch::X86_64 };
        assert!(format!("{:#}", check_static(&me, other).unwrap_err()).contains("not a"));
        assert!(check_static(b"#!/bin/sh\n", host_arch()).is_err());
    }
}

#[cfg(test)]
mod settings_check {
    #[test]
    fn the_pip_and_uv_settings_it_maps_are_listed_settings() {
        for name in super::PIP_TO_UV.iter().flat_map(|(pip, uv)| [pip, uv]) {
            assert!(crate::settings::is_listed(name), "{name} is read but not in settings::VARS");
        }
    }
}
