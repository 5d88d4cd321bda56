//! Trust in what the checks say: an import check that did not run is `skipped` and publish
//! refuses it, a failing stack prints no ARNs, pip settings never show on a command line,
//! `check --zip` stays within Lambda's unzipped limit, and the README's commands need no
//! sudo as root. The real binary against the real docker engine and the emulator.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fixture, Run, TestEnv};

/// A command of the fixture with docker unreachable and no host Python of the runtime's
/// version on PATH: the import check cannot run anywhere.
fn without_docker(f: &Fixture, args: &[&str]) -> Run {
    let mut c = f.cmd(args);
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock").env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    Run::from(c.output().unwrap(), args)
}

#[test]
fn an_import_check_that_did_not_run_is_skipped_and_publish_refuses_it_unless_allowed() {
    let env = require_emulator!("an_import_check_that_did_not_run_is_skipped_and_publish_refuses_it_unless_allowed");
    assert!(!Path::new("/usr/bin/python3.13").exists(), "this test needs a host without /usr/bin/python3.13");
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    f.prefix_layer_names("ct");
    f.run(&["layer", "six"]).ok();
    f.run(&["bootstrap"]).ok();

    // check: its own status, in text and JSON, with the reason; nothing failed, so exit 0.
    let run = without_docker(&f, &["check", "six", "--json"]).ok();
    let u = &run.json()[0];
    assert_eq!(u["status"], "skipped", "{u}");
    let reason = u["reason"].as_str().unwrap_or_else(|| panic!("no reason in {u}"));
    assert!(reason.contains("no docker") && reason.contains("python3.13"), "{reason}");
    assert_eq!(u["imports_passed"], 0, "{u}");
    let line =
        run.stderr.lines().find(|l| l.contains("six python3.13 x86_64:")).unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(line.starts_with("skipped ") && !line.starts_with("pass"), "{line}");
    assert!(run.stderr.contains("unverified") && run.stderr.contains("--allow-unverified"), "{}", run.stderr);
    // --require-imports: a skipped import check fails the run.
    let strict = without_docker(&f, &["check", "six", "--require-imports"]);
    assert_eq!(strict.code, Some(1), "{}", strict.stderr);

    // publish refuses the unverified unit, says why and what to do, and publishes nothing.
    let refused = without_docker(&f, &["publish", "six", "--json"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    let rows = refused.json();
    assert_eq!((rows.len(), rows[0]["status"].as_str()), (1, Some("failed")), "{rows:?}");
    let err = rows[0]["error"].as_str().unwrap();
    assert!(
        err.contains("refused: the import check of six python3.13 x86_64 did not run (no docker")
            && err.contains("run it where docker or python3.13 is available, or pass --allow-unverified"),
        "{err}"
    );
    let manifest = std::fs::read_to_string(f.path("published/staging.json")).unwrap_or_default();
    assert!(!manifest.contains("\"six\""), "nothing may be recorded: {manifest}");

    // With --allow-unverified it is published.
    let allowed = without_docker(&f, &["publish", "six", "--allow-unverified", "--json"]).ok();
    let rows = allowed.json();
    assert_eq!(rows[0]["status"], "published", "{rows:?}");
}

#[test]
fn a_stack_whose_checks_fail_prints_no_arns() {
    let env = require_emulator!("a_stack_whose_checks_fail_prints_no_arns");
    // python-dateutil requires six, which the `bad` stack does not attach.
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n"), ("dateutil", "python-dateutil==2.9.0.post0\n")]);
    f.prefix_layer_names("cs");
    let path = f.path("layers.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "{text}\n[stacks.good]\nlayers = [\"six\", \"dateutil\"]\nruntime = \"python3.13\"\n\n\
             [stacks.bad]\nlayers = [\"dateutil\"]\nruntime = \"python3.13\"\n"
        ),
    )
    .unwrap();
    f.run(&["bootstrap"]).ok();
    // Both layers are published, so every ARN exists: only the checks can hold them back.
    f.run(&["publish", "six", "dateutil", "--no-check"]).ok();
    let good = f.run(&["stack", "good", "--format", "terraform"]).ok();
    assert!(good.stdout.contains("layers = ["), "{}", good.stdout);

    let bad = f.run(&["stack", "bad", "--format", "terraform"]);
    assert_eq!(bad.code, Some(1), "{}", bad.stderr);
    assert_eq!(bad.stdout, "", "a failing stack must print nothing on stdout");
    assert!(bad.stderr.contains("FAIL") && bad.stderr.contains("six"), "{}", bad.stderr);

    // --all: one failing stack, and nothing at all goes to stdout.
    let all = f.run(&["stack", "--all", "--format", "json"]);
    assert_eq!(all.code, Some(1), "{}", all.stderr);
    assert_eq!(all.stdout, "", "stderr:\n{}", all.stderr);
}

/// Every process's command line, as `/proc/*/cmdline` shows it to any local user.
fn command_lines() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if !e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(bytes) = std::fs::read(e.path().join("cmdline")) {
            out.push(String::from_utf8_lossy(&bytes).replace('\0', " "));
        }
    }
    out
}

#[test]
fn pip_settings_never_appear_on_a_command_line() {
    let env = require_docker!("pip_settings_never_appear_on_a_command_line");
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    // An index nothing answers on (the container's own loopback): pip retries, then fails.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = f.cmd(&["layer", "six"]);
    c.env("PIP_INDEX_URL", format!("http://user:s3cret@127.0.0.1:{port}/simple"))
        .env("PIP_EXTRA_INDEX_URL", format!("http://user:s3cret-extra@127.0.0.1:{port}/extra"))
        .env("HTTPS_PROXY", format!("http://proxyuser:s3cret-proxy@127.0.0.1:{port}"))
        .env("PIP_DEFAULT_TIMEOUT", "5")
        .env("PIP_RETRIES", "3");
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let (mut scans, mut saw_docker_run) = (0, false);
    let mut leaks = Vec::new();
    while child.try_wait().unwrap().is_none() {
        for line in command_lines() {
            saw_docker_run |= line.contains(" run ") && line.contains("xtask-build-");
            if line.contains("s3cret") {
                leaks.push(line);
            }
        }
        scans += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let run = Run::from(child.wait_with_output().unwrap(), &["layer", "six"]);
    assert!(leaks.is_empty(), "secrets on a command line:\n{}", leaks.join("\n"));
    assert!(saw_docker_run, "the scan ({scans} rounds) never saw the build's `docker run`:\n{}", run.stderr);
    // The settings did reach pip inside the container: it tried the index they name.
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("127.0.0.1:{port}")), "pip never saw the index:\n{}", run.stderr);
    assert!(!run.stderr.contains("s3cret"), "pip's output shows the password:\n{}", run.stderr);
}

/// A zip of one entry, `python/zeros.bin`, of `size` zero bytes (deflate: ~1000:1).
fn zeros_zip(path: &Path, size: usize) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    z.start_file("python/zeros.bin", zip::write::SimpleFileOptions::default()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        z.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    z.finish().unwrap();
}

/// Rewrites the uncompressed size of every entry, in the local headers and the central
/// directory, to `declared`: a zip whose directory lies.
fn lie_about_sizes(path: &Path, declared: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    let mut patched = 0;
    for i in 0..bytes.len().saturating_sub(30) {
        let at = match &bytes[i..i + 4] {
            b"PK\x03\x04" => i + 22,
            b"PK\x01\x02" => i + 24,
            _ => continue,
        };
        bytes[at..at + 4].copy_from_slice(&declared.to_le_bytes());
        patched += 1;
    }
    assert_eq!(patched, 2, "one local header and one central directory entry");
    std::fs::write(path, bytes).unwrap();
}

/// `check --zip` of `zip` with its scratch in an empty folder of its own; returns the run
/// and whether that folder is still empty afterwards.
fn check_zip(f: &Fixture, zip: &Path) -> (Run, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["check", "--zip", zip.to_str().unwrap(), "--runtime", "python3.13", "--arch", "x86_64"];
    let mut c = f.cmd(&args);
    c.env("TMPDIR", tmp.path());
    let run = Run::from(c.output().unwrap(), &args);
    let left: Vec<PathBuf> = common::walk(tmp.path()).into_iter().skip(1).collect();
    (run, left)
}

#[test]
fn check_zip_refuses_a_zip_over_lambdas_unzipped_limit_before_unpacking_it() {
    // No docker needed: the limit is enforced before anything is imported.
    let env = TestEnv { image: "unused".into(), endpoint: None };
    let f = Fixture::new(&env, &[]);
    let bomb = f.path("bomb.zip");
    zeros_zip(&bomb, 300 << 20);
    let zipped = std::fs::metadata(&bomb).unwrap().len();
    assert!(zipped < 2 << 20, "the bomb is small: {zipped} bytes");

    let started = std::time::Instant::now();
    let (run, left) = check_zip(&f, &bomb);
    let run = run.fails_with(&["unzips to 300.0 MiB", "over Lambda's limit of 250 MiB", "not unpacked"]);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(left.is_empty(), "scratch left behind: {left:?}");
    assert!(started.elapsed().as_secs() < 20, "refused before unpacking, so quickly: {:?}", started.elapsed());
}

#[test]
fn check_zip_stops_a_zip_whose_directory_lies_about_its_sizes_while_unpacking() {
    let env = TestEnv { image: "unused".into(), endpoint: None };
    let f = Fixture::new(&env, &[]);
    let liar = f.path("liar.zip");
    zeros_zip(&liar, 300 << 20);
    lie_about_sizes(&liar, 4096);

    let (run, left) = check_zip(&f, &liar);
    let run = run.fails_with(&["cannot unpack", "liar.zip"]);
    assert!(run.stderr.contains("larger than its declared"), "{}", run.stderr);
    assert!(left.is_empty(), "scratch left behind: {left:?}");
}

#[test]
fn check_zip_over_50_mib_is_only_a_note() {
    let env = require_docker!("check_zip_over_50_mib_is_only_a_note");
    let f = Fixture::new(&env, &[]);
    let big = f.path("big.zip");
    {
        // 51 MiB that do not compress, stored.
        let mut z = zip::ZipWriter::new(std::fs::File::create(&big).unwrap());
        let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        z.start_file("python/blob.bin", o).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..51 {
            for b in chunk.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
            }
            z.write_all(&chunk).unwrap();
        }
        z.finish().unwrap();
    }
    let args = ["check", "--zip", big.to_str().unwrap(), "--runtime", "python3.13", "--arch", "x86_64"];
    let run = f.run(&[&args[..], &["--check-image", &env.image, "--json"]].concat()).ok();
    let u = &run.json()[0];
    assert_eq!(u["status"], "pass", "{u}");
    let notes = u["notes"].as_array().unwrap_or_else(|| panic!("no notes in {u}"));
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("over the 50 MiB direct-upload limit")), "{u}");
    assert!(run.stderr.contains("note: zip is 51.0 MiB"), "{}", run.stderr);
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A folder of links to every program on PATH except `missing`: PATH as on a machine
/// without them.
fn path_without(missing: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("xtask-path-").tempdir().unwrap();
    for d in std::env::split_paths(&std::env::var_os("PATH").unwrap()) {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name();
            let link = dir.path().join(&name);
            if missing.iter().any(|m| name == *m) || link.symlink_metadata().is_ok() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(e.path(), &link);
        }
    }
    dir
}

#[test]
fn the_readme_commands_need_no_sudo_as_root() {
    let env = require_docker!("the_readme_commands_need_no_sudo_as_root");
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for script in ["scripts/try-local.sh", "scripts/test.sh"] {
        let lines: Vec<&str> = readme.lines().filter(|l| l.contains(script) && !l.contains('`')).collect();
        assert!(!lines.is_empty(), "the README no longer shows `{script}`");
        for l in lines {
            assert!(l.trim_start().starts_with(script), "the README's command must be `{script}` as it is: {l}");
        }
    }

    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        let _ = writeln!(std::io::stderr(), "NOT RUN: the_readme_commands_need_no_sudo_as_root needs root");
        return;
    }
    // As root on a machine without sudo, the environment step works...
    let no_sudo = path_without(&["sudo"]);
    let out = Command::new(repo_root().join("scripts/test-env.sh"))
        .env("PATH", no_sudo.path())
        .env("XTASK_TEST_IMAGE", &env.image)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scripts/test-env.sh failed without sudo:\n{stderr}");
    assert!(!stderr.contains("sudo"), "{stderr}");
    assert!(stdout.contains(&format!("export XTASK_TEST_IMAGE={}", env.image)), "{stdout}");

    // ...and both commands get past it: they stop only where cargo is missing too.
    let no_sudo_no_cargo = path_without(&["sudo", "cargo"]);
    for script in ["scripts/test.sh", "scripts/try-local.sh"] {
        let out = Command::new(repo_root().join(script))
            .env("PATH", no_sudo_no_cargo.path())
            .env("XTASK_TEST_IMAGE", &env.image)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("cargo: command not found"), "{script}:\n{stderr}");
        assert!(!stderr.contains("sudo"), "{script} needs sudo as root:\n{stderr}");
    }
}
