//! The harness of the integration tests of both crates: a throw-away layer repo, the real
//! `xtask` binary run against it, and the real docker engine / emulator the README's test
//! command starts (`scripts/test.sh`). Compiled once into xtask's test binary (`tests/it`)
//! and once into xtask-aws's, which includes this file by path and adds the emulator's side
//! (xtask-aws/tests/it/emulator.rs, repo.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What `scripts/test-env.sh` provides. Without it (plain `cargo test` on a laptop), the
/// integration tests say they were not run; under `scripts/test.sh` or CI they must run.
pub struct TestEnv {
    pub image: String,
    pub endpoint: Option<String>,
}

pub fn test_env(test: &str) -> Option<TestEnv> {
    match std::env::var("XTASK_TEST_IMAGE") {
        Ok(image) if !image.is_empty() => Some(TestEnv { image, endpoint: std::env::var("XTASK_TEST_ENDPOINT").ok() }),
        _ => {
            if std::env::var_os("XTASK_REQUIRE_INTEGRATION").is_some() || std::env::var_os("CI").is_some() {
                panic!("{test} needs the docker engine and the local build image: run `scripts/test.sh`");
            }
            // Written to stderr directly, not through eprintln!, so the test harness does not
            // swallow it: `cargo test` shows plainly which tests did not run.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "NOT RUN: {test} needs the docker engine and test image; run `scripts/test.sh` to run it"
            );
            None
        }
    }
}

/// Returns early from a test when the docker engine is not set up (see [`test_env`]).
macro_rules! require_docker {
    ($name:expr) => {
        match crate::common::test_env($name) {
            Some(env) => env,
            None => return,
        }
    };
}

/// Like [`require_docker`], and also needs the S3 + Lambda emulator.
macro_rules! require_emulator {
    ($name:expr) => {
        match crate::common::test_env($name) {
            Some(env) if env.endpoint.is_some() => env,
            Some(_) => panic!("{} needs the emulator: run `scripts/test.sh`", $name),
            None => return,
        }
    };
}

/// The `xtask` binary the tests run. Cargo names it to xtask's own tests
/// (`CARGO_BIN_EXE_xtask`); xtask-aws's tests find it in the target folder their binary
/// runs from (`target/debug/deps/it-HASH` -> `target/debug/xtask`), built by
/// `cargo test --workspace` or `cargo build -p xtask` (scripts/test.sh does both), and
/// refuse one missing or older than xtask's sources.
pub fn xtask_bin() -> PathBuf {
    if let Some(bin) = option_env!("CARGO_BIN_EXE_xtask") {
        return PathBuf::from(bin);
    }
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(Path::parent).unwrap();
        let bin = dir.join(format!("xtask{}", std::env::consts::EXE_SUFFIX));
        let fix = "build it first: `cargo build -p xtask` (scripts/test.sh does), or run `cargo test --workspace`";
        let built = std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("the xtask binary {} is not there ({e}): {fix}", bin.display()));
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask");
        let mut files = vec![sources.join("Cargo.toml")];
        files.extend(walk(&sources.join("src")).into_iter().filter(|p| p.is_file()));
        if let Some(newer) = files.iter().find(|f| f.metadata().and_then(|m| m.modified()).is_ok_and(|t| t > built)) {
            panic!("the xtask binary {} is older than {}: {fix}", bin.display(), newer.display());
        }
        bin
    })
    .clone()
}

/// A layer repo in a temporary folder whose builds use the local test image (Python 3.13).
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// `layers`: (name, requirements.txt text).
    pub fn new(env: &TestEnv, layers: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::Builder::new().prefix("xtask-it-").tempdir().unwrap();
        let f = Fixture { dir };
        let endpoint = env.endpoint.clone().unwrap_or_else(|| "http://127.0.0.1:1".into());
        f.write(
            "layers.toml",
            &format!(
                "[defaults]\nruntimes = [\"python3.13\"]\narchitectures = [\"x86_64\"]\nimage = \"{0}\"\ncheck_image = \"{0}\"\nlicense = \"MIT\"\n\n\
                 [profiles.staging]\nregions = [\"us-east-1\"]\nbucket = \"{bucket}\"\nendpoint_url = \"{endpoint}\"\n\n\
                 [profiles.production]\nregions = [\"us-east-1\"]\nbucket = \"{bucket}-prod\"\nendpoint_url = \"{endpoint}\"\nconfirm = true\n\n\
                 [profiles.local]\nregions = [\"us-east-1\"]\nbucket = \"{bucket}\"\nendpoint_url = \"{endpoint}\"\nallow_public = true\n",
                env.image,
                bucket = format!("it-{}", unique_suffix()),
            ),
        );
        for (name, reqs) in layers {
            f.write(&format!("layers/{name}/requirements.txt"), reqs);
        }
        f
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// The `xtask` binary with `--repo` set to this fixture and pip and uv caches shared by the
    /// tests (a warm cache keeps them fast; the cold case is the benchmark's).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(xtask_bin());
        c.arg("--repo").arg(self.root()).args(args);
        c.env("XTASK_PIP_CACHE", shared_pip_cache());
        c.env("XTASK_UV_CACHE", shared_uv_cache());
        c.env_remove("AWS_PROFILE").env_remove("AWS_REGION").env_remove("AWS_DEFAULT_REGION");
        c.env("AWS_ACCESS_KEY_ID", "testing").env("AWS_SECRET_ACCESS_KEY", "testing");
        c.env("AWS_CONFIG_FILE", self.path("aws-config-absent"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.path("aws-credentials-absent"));
        c
    }

    /// Adds `line` to `[profiles.NAME]` of the fixture's layers.toml.
    pub fn set_profile_key(&self, profile: &str, line: &str) {
        let path = self.path("layers.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let header = format!("[profiles.{profile}]\n");
        assert!(text.contains(&header), "no {header} in layers.toml:\n{text}");
        std::fs::write(&path, text.replace(&header, &format!("{header}{line}\n"))).unwrap();
    }

    /// Gives every profile's Lambda layer names a prefix of their own (`{tag}<unique>`),
    /// so tests sharing one emulator never see each other's layers; returns the prefix.
    pub fn prefix_layer_names(&self, tag: &str) -> String {
        let prefix = format!("{tag}{}", unique_suffix());
        for p in ["staging", "production", "local"] {
            self.set_profile_key(p, &format!("layer_name = \"{prefix}-{{layer}}-{{py}}-{{arch}}\""));
        }
        prefix
    }

    /// Appends `[stacks.NAME]` with `body` to layers.toml.
    pub fn stack(&self, name: &str, body: &str) {
        let path = self.path("layers.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\n[stacks.{name}]\n{body}")).unwrap();
    }

    /// The zip in dist/ of a layer's python3.13 x86_64 unit.
    pub fn zip(&self, layer: &str) -> PathBuf {
        self.path(&format!("dist/{layer}/{layer}-py313-x86_64.zip"))
    }

    /// The unzipped size of a built layer (python3.13 x86_64), from its report in dist/.
    pub fn unzipped(&self, layer: &str) -> u64 {
        let text = std::fs::read_to_string(self.path(&format!("dist/{layer}/{layer}-py313-x86_64.json"))).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["unzipped_bytes"].as_u64().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().unwrap(), args)
    }

    /// [`Fixture::run`] with extra environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd(args);
        c.envs(env.iter().copied());
        Run::from(c.output().unwrap(), args)
    }
}

pub fn shared_pip_cache() -> PathBuf {
    let p = std::env::temp_dir().join("xtask-it-pip-cache");
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// uv's cache, shared by the tests as pip's is (a test that watches a cache uses its own).
pub fn shared_uv_cache() -> PathBuf {
    let p = std::env::temp_dir().join("xtask-it-uv-cache");
    std::fs::create_dir_all(&p).unwrap();
    p
}

pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A finished run, with helpers that show stdout and stderr when an expectation fails.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub args: String,
}

impl Run {
    pub fn from(o: Output, args: &[&str]) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            args: args.join(" "),
        }
    }

    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "`xtask {}` failed:\n--- stderr\n{}\n--- stdout\n{}",
            self.args,
            self.stderr,
            self.stdout
        );
        self
    }

    /// Expects a failure whose error line contains every needle.
    pub fn fails_with(self, needles: &[&str]) -> Run {
        assert_ne!(self.code, Some(0), "`xtask {}` should fail:\n{}", self.args, self.stderr);
        let err_line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("`xtask {}`: no `error:` line in stderr:\n{}", self.args, self.stderr));
        for n in needles {
            assert!(
                err_line.contains(n),
                "`xtask {}`: error line lacks `{n}`:\n{err_line}\n--- full stderr\n{}",
                self.args,
                self.stderr
            );
        }
        self
    }

    /// The JSON objects printed on stdout, one per line.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// Entry names of a zip.
pub fn zip_names(path: &Path) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len()).map(|i| z.by_index(i).unwrap().name().unwrap().to_string()).collect()
}

/// Unzips `zip` into `dest` with the zip crate.
pub fn unzip(zip_path: &Path, dest: &Path) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    z.extract(dest).unwrap();
}

/// Runs python code in the test image with `tree` mounted read-only at /opt (so the zip's
/// `python/` is `/opt/python`, as Lambda unpacks layers) and on sys.path.
pub fn python_in_image(image: &str, tree: &Path, code: &str) -> Output {
    Command::new("docker")
        .args(["run", "--rm", "-v"])
        .arg(format!("{}:/opt:ro", tree.display()))
        .args(["-e", "PYTHONPATH=/opt/python", "--entrypoint", "python3", image, "-c", code])
        .output()
        .unwrap()
}

/// `dir` and every file and folder under it (links not followed).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Writes the wheel `{name}-1.0-py3-none-any.whl` into `dir`: `{name}/__init__.py` and
/// `files` data files `{name}/data0000.bin`, ... of `size` pseudo-random bytes each
/// (`seed` changes them), stored uncompressed. Returns the wheel's file name.
pub fn write_data_wheel(dir: &Path, name: &str, files: usize, size: usize, seed: u64) -> String {
    use std::io::Write;
    let file = format!("{name}-1.0-py3-none-any.whl");
    let mut z = zip::ZipWriter::new(std::fs::File::create(dir.join(&file)).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true);
    z.start_file(format!("{name}/__init__.py"), stored).unwrap();
    writeln!(z, "SEED = {seed}").unwrap();
    let mut state: u64 = 0x9E3779B97F4A7C15 ^ seed.wrapping_mul(0x2545F4914F6CDD1D);
    let mut buf = vec![0u8; size];
    let mut record = format!("{name}/__init__.py,,\n");
    for i in 0..files {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let data = format!("{name}/data{i:04}.bin");
        z.start_file(data.as_str(), stored).unwrap();
        z.write_all(&buf).unwrap();
        record.push_str(&format!("{data},,\n"));
    }
    let di = format!("{name}-1.0.dist-info");
    z.start_file(format!("{di}/METADATA"), stored).unwrap();
    write!(z, "Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n").unwrap();
    z.start_file(format!("{di}/WHEEL"), stored).unwrap();
    write!(z, "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n").unwrap();
    z.start_file(format!("{di}/RECORD"), stored).unwrap();
    write!(z, "{record}{di}/METADATA,,\n{di}/WHEEL,,\n{di}/RECORD,,\n").unwrap();
    z.finish().unwrap();
    file
}

/// Every file (not folder) under `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir)
        .into_iter()
        .filter(|p| p.is_file() || p.is_symlink())
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

/// A docker CLI (written into `dir`, for `DOCKER=`) that logs `start|end <name> <nanoseconds>`
/// around every command that installs or strips: a `docker run` of a container of its own
/// (named by `--name`), or a `docker exec` in a shared one (named `<container>/exec-<pid>`). Starting a
/// shared container (`docker run --detach`) is not logged; its name is appended to
/// `<log>.shared`.
pub fn logging_docker(dir: &Path, log: &Path) -> String {
    let real = std::env::var("DOCKER").ok().filter(|d| !d.is_empty()).unwrap_or_else(|| "docker".into());
    let script = dir.join("docker-logging");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nname=\nif [ \"$1\" = run ]; then\n  name=$(printf '%s\\n' \"$@\" | grep -A1 -x -- --name | tail -n1)\n  [ -n \"$name\" ] || name=unnamed-$$\n  if printf '%s\\n' \"$@\" | grep -q -x -- --detach; then echo \"$name\" >> '{log}.shared'; name=; fi\nelif [ \"$1\" = exec ]; then\n  name=$(printf '%s\\n' \"$@\" | grep -m1 '^xtask-build-')/exec-$$\nfi\nif [ -n \"$name\" ]; then\n  echo \"start $name $(date +%s%N)\" >> '{log}'\n  {real} \"$@\"; rc=$?\n  echo \"end $name $(date +%s%N)\" >> '{log}'\n  exit $rc\nfi\nexec {real} \"$@\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// (start, end) of every logged container, by name.
pub fn intervals(log: &Path) -> Vec<(String, u128, u128)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out: Vec<(String, u128, u128)> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (kind, name, t) = (parts[0], parts[1], parts[2].parse::<u128>().unwrap());
        match kind {
            "start" => out.push((name.to_string(), t, u128::MAX)),
            _ => out.iter_mut().find(|(n, _, _)| n == name).unwrap().2 = t,
        }
    }
    out
}

/// Whether two of the intervals overlap in time.
pub fn overlapping(iv: &[(String, u128, u128)]) -> bool {
    iv.iter().enumerate().any(|(i, a)| iv[i + 1..].iter().any(|b| a.1 < b.2 && b.1 < a.2))
}

/// The line of a check (`  FAIL  size     ...`) in a stack's stderr.
pub fn check_line<'a>(stderr: &'a str, check: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(check) && l.starts_with("  "))
        .unwrap_or_else(|| panic!("no `{check}` check in:\n{stderr}"))
}

/// Every `.rs` file under `dir`, recursively (the self-checks scan both crates with it).
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
