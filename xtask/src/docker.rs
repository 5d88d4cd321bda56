//! The docker CLI: finding it, checking the daemon and the image, and running a build
//! container with the host's pip settings and the invoking user's uid:gid.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::interrupt;
use crate::runtime::Arch;

/// The host's pip settings that are passed into the build container. Teams behind
/// private indexes or TLS-inspecting proxies need every one of them.
const PIP_ENV: &[&str] = &[
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_RETRIES",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Where the host's `PIP_CERT` file is mounted (read-only) inside the container.
const CERT_IN_CONTAINER: &str = "/run/xtask/pip-cert.pem";

/// A docker CLI whose daemon answered.
pub struct Docker {
    program: String,
    sh: Shell,
}

/// One `docker run` of a build image.
pub struct RunSpec<'a> {
    pub image: &'a str,
    pub arch: Arch,
    /// (host path, container path, read-only)
    pub mounts: Vec<(PathBuf, String, bool)>,
    pub workdir: &'a str,
    pub entrypoint: &'a str,
    pub args: Vec<String>,
    pub pip_cache: &'a Path,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// What the run is for, used in messages.
    pub what: String,
}

impl Docker {
    /// Finds the CLI (`$DOCKER`, else `docker` on PATH) and checks that its daemon answers.
    pub fn connect() -> Result<Docker> {
        let program = std::env::var("DOCKER").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "docker".into());
        if find_program(&program).is_none() {
            bail!("docker CLI not found (looked for `{program}`): install Docker, or set DOCKER to the CLI's path");
        }
        let sh = Shell::new()?;
        let fmt = "{{.Server.Version}}";
        let out = cmd!(sh, "{program} version --format {fmt}")
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("cannot run `{program} version`"))?;
        if !out.status.success() {
            let why = last_line(&String::from_utf8_lossy(&out.stderr));
            bail!("docker daemon not reachable ({why}): start Docker (e.g. `sudo systemctl start docker`) or check DOCKER_HOST");
        }
        Ok(Docker { program, sh })
    }

    /// Makes sure `image` is present, pulling it when missing.
    pub fn ensure_image(&self, image: &str, arch: Arch) -> Result<()> {
        self.ensure_image_for(image, arch, "build image", "--image or `image` in layers.toml")
    }

    /// [`Docker::ensure_image`] with the image's role and how to choose another in errors.
    pub fn ensure_image_for(&self, image: &str, arch: Arch, role: &str, how_to_change: &str) -> Result<()> {
        let program = &self.program;
        let fmt = "{{.Id}}";
        let present = cmd!(self.sh, "{program} image inspect --format {fmt} {image}")
            .quiet()
            .ignore_status()
            .output()?
            .status
            .success();
        if present {
            return Ok(());
        }
        let platform = arch.docker_platform();
        let spinner = crate::progress::spinner(format!("pulling {image}"));
        let out =
            cmd!(self.sh, "{program} pull --quiet --platform {platform} {image}").quiet().ignore_status().output()?;
        spinner.finish_and_clear();
        if !out.status.success() {
            let why = last_line(&String::from_utf8_lossy(&out.stderr));
            bail!("{role} `{image}` is not present and cannot be pulled ({why}): pull it, log in to its registry, or choose another with {how_to_change}");
        }
        Ok(())
    }

    /// Runs a container as the invoking user, with the host's pip settings, and fails with
    /// the tail of its output when it exits non-zero.
    pub fn run(&self, spec: &RunSpec<'_>) -> Result<String> {
        let program = &self.program;
        let name = format!("xtask-build-{}-{}", std::process::id(), unique());
        let mut args: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--name".into(),
            name.clone(),
            "--platform".into(),
            spec.arch.docker_platform().into(),
            "--user".into(),
            format!("{}:{}", uid(), gid()),
            "--entrypoint".into(),
            spec.entrypoint.into(),
            "-w".into(),
            spec.workdir.into(),
            "-e".into(),
            "HOME=/tmp".into(),
            "-e".into(),
            "PIP_CACHE_DIR=/pip-cache".into(),
            "-e".into(),
            "PIP_DISABLE_PIP_VERSION_CHECK=1".into(),
            "-e".into(),
            "PIP_NO_INPUT=1".into(),
            "-e".into(),
            "PYTHONDONTWRITEBYTECODE=1".into(),
            "-v".into(),
            format!("{}:/pip-cache", spec.pip_cache.display()),
        ];
        for (k, v) in &spec.env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        for (host, inside, ro) in &spec.mounts {
            args.push("-v".into());
            args.push(format!("{}:{inside}{}", host.display(), if *ro { ":ro" } else { "" }));
        }
        args.extend(pip_settings_args()?);
        args.push(spec.image.into());
        args.extend(spec.args.iter().cloned());

        let _guard = interrupt::Container::new(program, &name);
        let spinner = crate::progress::spinner(spec.what.clone());
        let out = cmd!(self.sh, "{program} {args...}").quiet().ignore_status().output()?;
        spinner.finish_and_clear();
        interrupt::wait_if_interrupted();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            bail!("{} failed (exit {}):\n{}", spec.what, out.status.code().unwrap_or(-1), fence_tail(&text, 15));
        }
        Ok(text)
    }
}

impl Docker {
    /// Runs `python3 -c code arg` in `image` with `opt` mounted read-only at `/opt`, no
    /// network, as the invoking user; returns stdout and stderr together.
    pub fn run_python(
        &self,
        image: &str,
        arch: Arch,
        opt: &Path,
        pythonpath: &str,
        code: &str,
        arg: &str,
    ) -> Result<String> {
        self.ensure_image_for(image, arch, "check image", "--check-image or `check_image` in layers.toml")?;
        let program = &self.program;
        let platform = arch.docker_platform();
        let user = format!("{}:{}", uid(), gid());
        let mount = format!("{}:/opt:ro", opt.display());
        let env = format!("PYTHONPATH={pythonpath}");
        let out = cmd!(
            self.sh,
            "{program} run --rm --network none --platform {platform} --user {user} -e HOME=/tmp -e {env} -v {mount} --entrypoint python3 {image} -c {code} {arg}"
        )
        .quiet()
        .ignore_status()
        .output()?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if text.contains("exec format error") {
            bail!("{image} cannot run here ({arch} needs emulation: install qemu-user-static / binfmt)");
        }
        Ok(text)
    }
}

/// `-e` and `-v` arguments that carry the host's pip settings into the container.
pub fn pip_settings_args() -> Result<Vec<String>> {
    let mut args = Vec::new();
    for var in PIP_ENV {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                args.push("-e".into());
                args.push(format!("{var}={v}"));
            }
        }
    }
    if let Ok(cert) = std::env::var("PIP_CERT") {
        if !cert.is_empty() {
            let path = Path::new(&cert);
            let path = path
                .canonicalize()
                .with_context(|| format!("PIP_CERT names {cert}, which does not exist: fix or unset PIP_CERT"))?;
            args.push("-v".into());
            args.push(format!("{}:{CERT_IN_CONTAINER}:ro", path.display()));
            args.push("-e".into());
            args.push(format!("PIP_CERT={CERT_IN_CONTAINER}"));
        }
    }
    Ok(args)
}

/// The last `n` lines of a program's output, indented and fenced, for error messages.
pub fn fence_tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    let mut out = String::from("    ┌──\n");
    for l in tail {
        out.push_str("    │ ");
        out.push_str(l.trim_end());
        out.push('\n');
    }
    out.push_str("    └──");
    out
}

fn last_line(text: &str) -> String {
    text.trim().lines().last().unwrap_or("no output").trim().to_string()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `program` as a path if it names an executable, directly or through PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The invoking user's ids: the container runs as them, so every file it writes is theirs.
pub fn uid() -> u32 {
    // SAFETY: getuid cannot fail and has no preconditions.
    unsafe { libc_getuid() }
}

pub fn gid() -> u32 {
    // SAFETY: getgid cannot fail and has no preconditions.
    unsafe { libc_getgid() }
}

extern "C" {
    #[link_name = "getuid"]
    fn libc_getuid() -> u32;
    #[link_name = "getgid"]
    fn libc_getgid() -> u32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_fenced_and_bounded() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = fence_tail(&text, 3);
        assert!(t.contains("│ line 28") && t.contains("│ line 30") && !t.contains("line 27"), "{t}");
    }

    #[test]
    fn missing_program_is_not_found() {
        assert!(find_program("definitely-not-a-program-xyz").is_none());
        assert!(find_program("sh").is_some());
    }
}
