//! The docker CLI: finding it, checking the daemon and the image, and running a build
//! container with the host's pip settings and the invoking user's uid:gid: one container
//! per command ([`Docker::run`]), or one long-lived container per image, platform and
//! mounts, shared by the units of a run, each command a `docker exec` in it
//! ([`Docker::exec`]; removed when the `Docker` is dropped, and on Ctrl-C).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::process::{capture, fence_tail, find_program};
use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::interrupt;
use crate::runtime::Arch;

/// The host's pip settings that are passed into the build container. Teams behind
/// private indexes or TLS-inspecting proxies need every one of them.
pub const PIP_ENV: &[&str] = &[
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

/// A docker CLI whose daemon answered. Shared by the threads that build units at once,
/// so each call makes its own (cheap) `Shell`.
pub struct Docker {
    program: String,
    /// The run's shared build containers ([`Docker::exec`]), removed on drop.
    shared: Mutex<Vec<Arc<SharedContainer>>>,
}

/// One `docker run` of a build image, or one `docker exec` in the run's shared container.
pub struct RunSpec<'a> {
    pub image: &'a str,
    pub arch: Arch,
    /// (host path, container path, read-only). For [`Docker::exec`], the mounts the shared
    /// container is made with: the same for every unit that shares it (folders that hold
    /// the units' folders), the unit's own folders named by `workdir`, `args` and `env`.
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
        let program = crate::settings::var("DOCKER").unwrap_or("docker").to_string();
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
        Ok(Docker { program, shared: Mutex::new(Vec::new()) })
    }

    /// Makes sure `image` is present, pulling it when missing.
    pub fn ensure_image(&self, image: &str, arch: Arch) -> Result<()> {
        self.ensure_image_for(image, arch, "build image", "--image or `image` in layers.toml")
    }

    /// [`Docker::ensure_image`] with the image's role and how to choose another in errors.
    pub fn ensure_image_for(&self, image: &str, arch: Arch, role: &str, how_to_change: &str) -> Result<()> {
        let program = &self.program;
        let fmt = "{{.Id}}";
        let sh = Shell::new()?;
        let present = cmd!(sh, "{program} image inspect --format {fmt} {image}")
            .quiet()
            .ignore_status()
            .output()?
            .status
            .success();
        if present {
            return Ok(());
        }
        let platform = arch.docker_platform();
        let pull = cmd!(sh, "{program} pull --quiet --platform {platform} {image}");
        let (status, text) = capture(pull.into(), format!("pulling {image}"))?;
        if !status.success() {
            let why = last_line(&text);
            bail!("{role} `{image}` is not present and cannot be pulled ({why}): pull it, log in to its registry, or choose another with {how_to_change}");
        }
        Ok(())
    }

    /// Runs a container as the invoking user, with the host's pip settings, and fails with
    /// the tail of its output when it exits non-zero.
    pub fn run(&self, spec: &RunSpec<'_>) -> Result<String> {
        let program = &self.program;
        let name = format!("xtask-build-{}-{}", std::process::id(), unique());
        let (env, mut args) = self.run_args(spec, &name)?;
        args.push("--entrypoint".into());
        args.push(spec.entrypoint.into());
        args.push("-w".into());
        args.push(spec.workdir.into());
        args.push(spec.image.into());
        args.extend(spec.args.iter().cloned());

        let _guard = interrupt::Container::new(program, &name);
        let sh = Shell::new()?;
        let (status, text) = capture(env.apply(cmd!(sh, "{program} {args...}")).into(), spec.what.clone())?;
        interrupt::wait_if_interrupted();
        if !status.success() {
            bail!("{} failed (exit {}):\n{}", spec.what, status.code().unwrap_or(-1), fence_tail(&text, 15));
        }
        Ok(text)
    }

    /// Runs `spec.entrypoint spec.args` with `docker exec` in the run's shared build
    /// container for `spec`'s image, platform, mounts and pip cache, made on first use (as
    /// [`Docker::run`] makes one: the invoking user, the host's pip settings) and kept
    /// until this `Docker` is dropped. `spec.env` is the command's own. Fails with the tail
    /// of its output when it exits non-zero, or after [`EXEC_LIMIT`]; a container found
    /// gone is replaced for the next command.
    pub fn exec(&self, spec: &RunSpec<'_>) -> Result<String> {
        let container = self.shared_container(spec)?;
        let mut env = ContainerEnv::default();
        for (k, v) in &spec.env {
            env.set(k, v);
        }
        let mut args: Vec<String> = vec!["exec".into(), "-w".into(), spec.workdir.into()];
        args.extend(env.args());
        args.push(container.name.clone());
        args.push(spec.entrypoint.into());
        args.extend(spec.args.iter().cloned());
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&args);
        let (status, text) = capture_within(cmd, spec.what.clone(), EXEC_LIMIT)?;
        interrupt::wait_if_interrupted();
        if !status.success() {
            if !self.is_running(&container.name) {
                // A container that died (the daemon restarted, out of memory) fails only
                // the commands it was running: the next one makes a new container.
                self.shared.lock().unwrap_or_else(|e| e.into_inner()).retain(|c| !Arc::ptr_eq(c, &container));
                bail!(
                    "{} failed: its build container {} stopped (exit {}):\n{}",
                    spec.what,
                    container.name,
                    status.code().unwrap_or(-1),
                    fence_tail(&text, 15)
                );
            }
            bail!("{} failed (exit {}):\n{}", spec.what, status.code().unwrap_or(-1), fence_tail(&text, 15));
        }
        Ok(text)
    }

    /// The shared container for `spec`, made when there is none yet. Made under the lock,
    /// so units that start together make one.
    fn shared_container(&self, spec: &RunSpec<'_>) -> Result<Arc<SharedContainer>> {
        let key = SharedKey {
            image: spec.image.to_string(),
            arch: spec.arch,
            mounts: spec.mounts.clone(),
            pip_cache: spec.pip_cache.to_path_buf(),
        };
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = shared.iter().find(|c| c.key == key) {
            return Ok(c.clone());
        }
        let program = &self.program;
        let name = format!("xtask-build-{}-{}", std::process::id(), unique());
        // Registered before it exists: Ctrl-C while it is being made removes it too.
        let guard = interrupt::Container::new(program, &name);
        let (env, mut args) = self.run_args(spec, &name)?;
        args.splice(1..1, ["--detach".to_string(), "--label".into(), format!("{SHARED_LABEL}={}", std::process::id())]);
        args.extend(["--entrypoint".into(), "sleep".into(), spec.image.into(), SHARED_LIFETIME.as_secs().to_string()]);
        let mut cmd = std::process::Command::new(program);
        cmd.args(&args);
        for (k, v) in env.private() {
            cmd.env(k, v);
        }
        let what = format!("starting a build container of {} ({})", spec.image, spec.arch);
        let (status, text) = capture_within(cmd, what.clone(), START_LIMIT)?;
        interrupt::wait_if_interrupted();
        if !status.success() {
            // Made but not started, it would stay: removed, quietly (it may not exist).
            let _ = capture_within(
                {
                    let mut rm = std::process::Command::new(program);
                    rm.args(["rm", "--force", &name]);
                    rm
                },
                format!("removing build container {name}"),
                REMOVE_LIMIT,
            );
            bail!("{what} failed (exit {}):\n{}", status.code().unwrap_or(-1), fence_tail(&text, 15));
        }
        let container = Arc::new(SharedContainer { key, name, program: program.clone(), _guard: guard });
        shared.push(container.clone());
        Ok(container)
    }

    /// Whether the container `name` exists and runs (false when docker cannot say).
    fn is_running(&self, name: &str) -> bool {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(["inspect", "--format", "{{.State.Running}}", name]);
        capture_within(cmd, format!("inspecting {name}"), START_LIMIT)
            .is_ok_and(|(status, text)| status.success() && text.trim() == "true")
    }

    /// The `docker run` arguments up to the entrypoint, and the environment the CLI needs:
    /// the name, the platform, the invoking user, the pip settings, the pip cache and
    /// `spec.mounts`.
    fn run_args(&self, spec: &RunSpec<'_>, name: &str) -> Result<(ContainerEnv, Vec<String>)> {
        let mut env = ContainerEnv::default();
        for (k, v) in [
            ("HOME", "/tmp"),
            ("PIP_CACHE_DIR", "/pip-cache"),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
            ("PIP_NO_INPUT", "1"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
        ] {
            env.set(k, v);
        }
        for (k, v) in &spec.env {
            env.set(k, v);
        }
        let mut mounts = vec![format!("{}:/pip-cache", spec.pip_cache.display())];
        for (host, inside, ro) in &spec.mounts {
            mounts.push(format!("{}:{inside}{}", host.display(), if *ro { ":ro" } else { "" }));
        }
        mounts.extend(pip_settings(&mut env, |k| crate::settings::var(k).map(str::to_string))?);
        let mut args: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--name".into(),
            name.to_string(),
            "--platform".into(),
            spec.arch.docker_platform().into(),
            "--user".into(),
            format!("{}:{}", uid(), gid()),
        ];
        args.extend(env.args());
        for m in mounts {
            args.push("-v".into());
            args.push(m);
        }
        Ok((env, args))
    }
}

/// The label of every shared build container, with the id of the process that made it:
/// `docker ps -a --filter label=xtask.build-run=<pid>` lists a run's.
pub const SHARED_LABEL: &str = "xtask.build-run";

/// How long a shared container's `sleep` lasts: what ends it should the run be killed
/// (SIGKILL) and never remove it; `--rm` then removes it.
const SHARED_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How long starting a shared container (or asking whether it runs) may take.
const START_LIMIT: Duration = Duration::from_secs(120);

/// How long one command in a shared container may take: the longest install.
pub const EXEC_LIMIT: Duration = Duration::from_secs(3600);

/// How long removing a shared container may take.
const REMOVE_LIMIT: Duration = Duration::from_secs(30);

/// What one shared container is made for: commands that need other ones get another.
#[derive(PartialEq)]
struct SharedKey {
    image: String,
    arch: Arch,
    mounts: Vec<(PathBuf, String, bool)>,
    pip_cache: PathBuf,
}

/// A shared build container, removed (`docker rm --force`) when dropped: when its
/// `Docker` is dropped at the end of the run or on an error, or when found stopped and
/// its last command returned. Registered with Ctrl-C's cleanup while it lives.
struct SharedContainer {
    key: SharedKey,
    name: String,
    program: String,
    _guard: interrupt::Container,
}

impl Drop for SharedContainer {
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(["rm", "--force", &self.name]);
        let removed = capture_within(cmd, format!("removing build container {}", self.name), REMOVE_LIMIT);
        if let Err(e) =
            removed.and_then(|(status, text)| if status.success() { Ok(()) } else { bail!("{}", last_line(&text)) })
        {
            crate::output::warn(format_args!(
                "build container {} was not removed ({e:#}): remove it with `docker rm --force {}`",
                self.name, self.name
            ));
        }
    }
}

/// [`capture`] with a bound: the program is killed, and this fails, when it has not
/// finished after `limit`. Output is read to its end by two threads; the exit is then
/// reaped (an exited program whose output is still held open by a child is waited for
/// with short sleeps, within the same bound).
fn capture_within(
    mut cmd: std::process::Command,
    what: String,
    limit: Duration,
) -> Result<(std::process::ExitStatus, String)> {
    use std::io::{BufRead, Read};
    use std::process::Stdio;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let verbose = crate::output::is_verbose();
    if verbose {
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        crate::output::command(&program, &args);
    }
    let spinner = crate::progress::spinner(what.clone());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{program}`"))?;
    let (tx, rx) = std::sync::mpsc::channel::<(usize, String)>();
    let tag = crate::output::tag();
    let streams: [Box<dyn Read + Send>; 2] =
        [Box::new(child.stdout.take().context("no stdout")?), Box::new(child.stderr.take().context("no stderr")?)];
    for (i, r) in streams.into_iter().enumerate() {
        let (tx, tag) = (tx.clone(), tag.clone());
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut reader = std::io::BufReader::new(r);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let l = String::from_utf8_lossy(&line);
                if verbose {
                    crate::output::live(tag.as_deref(), l.trim_end_matches('\n'));
                }
                text.push_str(&l);
                line.clear();
            }
            let _ = tx.send((i, text));
        });
    }
    drop(tx);
    let deadline = std::time::Instant::now() + limit;
    let mut texts = [String::new(), String::new()];
    let mut pending = 2;
    let mut status = None;
    let mut nap = Duration::from_millis(1);
    while status.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            spinner.finish_and_clear();
            bail!("{what} did not finish within {} s: it was stopped", limit.as_secs());
        }
        if pending > 0 {
            match rx.recv_timeout(left) {
                Ok((i, text)) => {
                    texts[i] = text;
                    pending -= 1;
                }
                Err(_) => pending = 0,
            }
            continue;
        }
        status = child.try_wait()?;
        if status.is_none() {
            std::thread::sleep(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(50));
        }
    }
    spinner.finish_and_clear();
    let [out, err] = texts;
    Ok((status.expect("the loop ends with a status"), format!("{out}{err}")))
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
        let mut env = ContainerEnv::default();
        env.set("HOME", "/tmp");
        env.set("PYTHONPATH", pythonpath);
        let env_args = env.args();
        let sh = Shell::new()?;
        let run = env.apply(cmd!(
            sh,
            "{program} run --rm --network none --platform {platform} --user {user} {env_args...} -v {mount} --entrypoint python3 {image} -c {code} {arg}"
        ));
        let (_, text) = capture(run.into(), format!("import check in {image}"))?;
        if text.contains("exec format error") {
            bail!("{image} cannot run here ({arch} needs emulation: install qemu-user-static / binfmt)");
        }
        Ok(text)
    }
}

/// The environment of a container. Values the tool chooses (paths, switches) go on the
/// docker command line as `-e NAME=VALUE`; values taken from the user's environment, which
/// may carry credentials (`PIP_INDEX_URL=https://user:token@host/simple`), go there by name
/// only (`-e NAME`, which docker completes from its own environment) and travel in the
/// environment of the docker CLI process: command lines are readable by every local user
/// (`/proc/*/cmdline`), a process's environment only by its user.
#[derive(Debug, Default)]
pub struct ContainerEnv {
    /// (name, value, whether the value may only travel in the environment)
    vars: Vec<(String, String, bool)>,
}

impl ContainerEnv {
    /// Sets `name` to a value the tool chose, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: &str) {
        self.put(name, value, false);
    }

    /// Passes `name` with a value from the user's environment, replacing an earlier value:
    /// the value never appears on a command line.
    pub fn pass(&mut self, name: &str, value: &str) {
        self.put(name, value, true);
    }

    fn put(&mut self, name: &str, value: &str, private: bool) {
        self.vars.retain(|(k, _, _)| k != name);
        self.vars.push((name.to_string(), value.to_string(), private));
    }

    /// The `-e` arguments: `NAME=VALUE` for the tool's values, `NAME` alone for the user's.
    pub fn args(&self) -> Vec<String> {
        self.vars
            .iter()
            .flat_map(|(k, v, private)| ["-e".to_string(), if *private { k.clone() } else { format!("{k}={v}") }])
            .collect()
    }

    /// The user's values, for the environment of the docker CLI process.
    fn private(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().filter(|(_, _, p)| *p).map(|(k, v, _)| (k.as_str(), v.as_str()))
    }

    /// Puts the user's values in the environment of the docker CLI command (the tool's own
    /// values stay out of it: `HOME=/tmp` there would hide the CLI's own config).
    pub fn apply<'a>(&self, mut cmd: xshell::Cmd<'a>) -> xshell::Cmd<'a> {
        for (k, v, _) in self.vars.iter().filter(|(_, _, private)| *private) {
            cmd = cmd.env(k, v);
        }
        cmd
    }
}

/// Adds the host's pip settings (read through `lookup`) to `env`, and returns the mounts
/// (`HOST:CONTAINER:ro`) they need: `PIP_CERT`'s file, read-only.
fn pip_settings(env: &mut ContainerEnv, lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    for var in PIP_ENV {
        if let Some(v) = lookup(var).filter(|v| !v.is_empty()) {
            env.pass(var, &v);
        }
    }
    let mut mounts = Vec::new();
    if let Some(cert) = lookup("PIP_CERT").filter(|c| !c.is_empty()) {
        let path = Path::new(&cert)
            .canonicalize()
            .with_context(|| format!("PIP_CERT names {cert}, which does not exist: fix or unset PIP_CERT"))?;
        mounts.push(format!("{}:{CERT_IN_CONTAINER}:ro", path.display()));
        env.set("PIP_CERT", CERT_IN_CONTAINER);
    }
    Ok(mounts)
}

fn last_line(text: &str) -> String {
    text.trim().lines().last().unwrap_or("no output").trim().to_string()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
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
    fn the_users_values_never_reach_the_command_line() {
        let secret = "https://user:s3cret@pypi.example/simple";
        let lookup = |k: &str| match k {
            "PIP_INDEX_URL" => Some(secret.to_string()),
            "HTTPS_PROXY" => Some("http://u:s3cret@proxy:3128".to_string()),
            "PIP_TRUSTED_HOST" => Some(String::new()),
            _ => None,
        };
        let mut env = ContainerEnv::default();
        env.set("HOME", "/tmp");
        let mounts = pip_settings(&mut env, lookup).unwrap();
        assert!(mounts.is_empty(), "{mounts:?}");
        let args = env.args();
        assert_eq!(args, ["-e", "HOME=/tmp", "-e", "PIP_INDEX_URL", "-e", "HTTPS_PROXY"]);
        assert!(!args.iter().any(|a| a.contains("s3cret")), "{args:?}");
        assert!(env.vars.contains(&("PIP_INDEX_URL".to_string(), secret.to_string(), true)));
    }

    #[test]
    fn pip_cert_is_mounted_and_pointed_at_inside() {
        let cert = tempfile::NamedTempFile::new().unwrap();
        let host = cert.path().canonicalize().unwrap().display().to_string();
        let mut env = ContainerEnv::default();
        let mounts = pip_settings(&mut env, |k| (k == "PIP_CERT").then(|| host.clone())).unwrap();
        assert_eq!(mounts, [format!("{host}:{CERT_IN_CONTAINER}:ro")]);
        assert_eq!(env.args(), ["-e".to_string(), format!("PIP_CERT={CERT_IN_CONTAINER}")]);
        let err = pip_settings(&mut env, |k| (k == "PIP_CERT").then(|| "/nonexistent/ca.pem".into())).unwrap_err();
        assert!(format!("{err:#}").contains("PIP_CERT names /nonexistent/ca.pem"), "{err:#}");
    }

    #[test]
    fn a_later_value_replaces_an_earlier_one() {
        let mut env = ContainerEnv::default();
        env.pass("TMPDIR", "/a");
        env.set("TMPDIR", "/b");
        assert_eq!(env.args(), ["-e", "TMPDIR=/b"]);
    }

    #[test]
    fn missing_program_is_not_found() {
        assert!(find_program("definitely-not-a-program-xyz").is_none());
        assert!(find_program("sh").is_some());
    }
}

#[cfg(test)]
mod settings_check {
    #[test]
    fn the_pip_settings_passed_into_containers_are_listed_settings() {
        for name in super::PIP_ENV.iter().chain(["PIP_CERT", "DOCKER"].iter()) {
            assert!(crate::settings::is_listed(name), "{name} is read but not in settings::VARS");
        }
    }
}
