//! The split between the two binaries: `xtask` runs every command that needs no AWS and
//! hands the others, with the same arguments, to `xtask-aws` (the only one that links the
//! AWS SDK), whose exit status is then the command's. The real `xtask` binary; a script
//! stands in for xtask-aws where the test looks at what it was given.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fixture, Run};

/// A stand-in for xtask-aws that records its arguments, one per line, and exits 7.
fn fake_aws(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("aws-args.log");
    let script = dir.join("xtask-aws");
    std::fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexit 7\n", log.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

fn handed(log: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(log).ok()?;
    let _ = std::fs::remove_file(log);
    Some(text.lines().map(str::to_string).collect())
}

#[test]
fn aws_commands_go_to_xtask_aws_with_the_same_arguments_and_its_exit_status() {
    let env = require_docker!("aws_commands_go_to_xtask_aws_with_the_same_arguments_and_its_exit_status");
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    let tmp = tempfile::tempdir().unwrap();
    let (script, log) = fake_aws(tmp.path());
    let run = |args: &[&str]| {
        let mut c = f.cmd(args);
        c.env("XTASK_AWS_BIN", &script);
        Run::from(c.output().unwrap(), args)
    };
    let root = f.root().to_str().unwrap().to_string();
    for args in [
        &["publish", "six", "--dry-run"][..],
        &["publish-all", "--profile", "production", "--yes"],
        &["status", "--json"],
        &["bootstrap"],
        &["usage"],
        &["rollout", "--all-outdated", "--dry-run"],
        &["prune", "--keep", "2"],
        &["unlock", "--profile", "staging"],
        &["changed", "--remote"],
        &["-v", "status"],
    ] {
        let r = run(args);
        assert_eq!(r.code, Some(7), "{args:?}: xtask-aws's exit status is the command's\n{}", r.stderr);
        let mut want = vec!["--repo".to_string(), root.clone()];
        want.extend(args.iter().map(|a| a.to_string()));
        assert_eq!(handed(&log), Some(want), "{args:?}");
    }
    // Commands without AWS never start it, and neither does help or a usage error.
    for args in [&["list"][..], &["changed"], &["publish", "--help"], &["stack", "--help"]] {
        let r = run(args).ok();
        assert_eq!(handed(&log), None, "{args:?} started xtask-aws:\n{}", r.stderr);
    }
    let r = run(&["publish"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("<NAMES>"), "{}", r.stderr);
    assert_eq!(handed(&log), None);
}

#[test]
fn outside_cargo_the_binary_beside_xtask_runs_them_and_without_one_the_error_says_how_to_build_it() {
    let env = require_docker!(
        "outside_cargo_the_binary_beside_xtask_runs_them_and_without_one_the_error_says_how_to_build_it"
    );
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    // A copy of the xtask binary alone in a folder, run as an installed binary is (no CARGO).
    let bin = tempfile::tempdir().unwrap();
    let xtask = bin.path().join("xtask");
    std::fs::copy(env!("CARGO_BIN_EXE_xtask"), &xtask).unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(&xtask);
        c.arg("--repo").arg(f.root()).args(args).env_remove("CARGO").env_remove("XTASK_AWS_BIN");
        Run::from(c.output().unwrap(), args)
    };
    let r = run(&["status"]).fails_with(&["cargo build -p xtask-aws", "XTASK_AWS_BIN"]);
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line:\n{}", r.stderr);
    run(&["list"]).ok();
    // With xtask-aws beside it, that one runs.
    let (_, log) = fake_aws(bin.path());
    let r = run(&["status"]);
    assert_eq!(r.code, Some(7), "{}", r.stderr);
    assert_eq!(handed(&log).unwrap().last().map(String::as_str), Some("status"));
    // A named binary that does not exist: one line naming it.
    let mut c = Command::new(&xtask);
    c.arg("--repo").arg(f.root()).arg("status").env("XTASK_AWS_BIN", "/nonexistent/xtask-aws");
    Run::from(c.output().unwrap(), &["status"]).fails_with(&["cannot run /nonexistent/xtask-aws"]);
}

/// The point of the split: what `cargo xtask` compiles first has no AWS SDK (and no tokio)
/// in its dependency tree; only xtask-aws does. Nor do xtask's tests (its dev-dependencies):
/// the tests that need the SDK are xtask-aws's.
#[test]
fn the_xtask_crate_does_not_depend_on_the_aws_sdk() {
    let tree_of = |package: &str, edges: &str| {
        let out = Command::new(env!("CARGO"))
            .args(["tree", "--offline", "--locked", "-e", edges, "--prefix", "none", "-p", package])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let sdk = |text: &str| -> Vec<String> {
        text.lines().filter(|l| l.starts_with("aws-") || l.starts_with("tokio ")).map(str::to_string).collect()
    };
    let tree = |package: &str| tree_of(package, "normal");
    assert_eq!(sdk(&tree("xtask")), Vec::<String>::new(), "xtask must compile without the AWS SDK");
    assert!(sdk(&tree("xtask-aws")).iter().any(|l| l.starts_with("aws-sdk-lambda")), "the scan is blind");
    assert_eq!(
        sdk(&tree_of("xtask", "normal,dev")),
        Vec::<String>::new(),
        "xtask's tests must compile without the AWS SDK: a test that needs it belongs in xtask-aws/tests/it"
    );
}

/// Seeds `to` with the compiled dependencies of this workspace's target directory (hard
/// links where possible), but not its own crates: those are what the test compiles.
fn seed_target(from: &Path, to: &Path) {
    let sh = |script: &str| {
        let out = Command::new("sh").arg("-c").arg(script).arg("sh").arg(from).arg(to).output().unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    };
    sh(r#"set -e
mkdir -p "$2/debug/deps" "$2/debug/build" "$2/debug/.fingerprint"
touch "$2/CACHEDIR.TAG"
for f in "$1"/debug/deps/*; do
  case ${f##*/} in
    *xtask*) ;;
    *.rlib|*.rmeta|*.so|*.d) ln "$f" "$2/debug/deps/" 2>/dev/null || cp -p "$f" "$2/debug/deps/" ;;
  esac
done
for d in "$1"/debug/build/* "$1"/debug/.fingerprint/*; do
  case ${d##*/} in *xtask*) continue ;; esac
  rel=${d#"$1"/}
  cp -al "$d" "$2/$rel" 2>/dev/null || cp -a "$d" "$2/$rel"
done"#);
}

/// Two copies of the repo (a tar copy keeps file times) share one target directory, as
/// with `build.target-dir`, worktrees or a CI cache; the first copy is then deleted. The
/// second still runs its AWS commands, with binaries compiled from its own sources.
#[test]
fn a_copy_sharing_a_target_directory_runs_its_own_sources_after_the_first_copy_is_gone() {
    let env = require_emulator!("a_copy_sharing_a_target_directory_runs_its_own_sources_after_the_first_copy_is_gone");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("shared-target-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&target);
    seed_target(&workspace.join("target"), &target);
    let fixture = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    fixture.prefix_layer_names("shared");
    let copies = tempfile::tempdir().unwrap();
    let (a, b) = (copies.path().join("a"), copies.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    let tar = |from: &Path, what: &[&str], to: &Path| {
        let script =
            "set -e; src=$1; dst=$2; shift 2; mkdir -p \"$dst\"; tar -C \"$src\" -cf - \"$@\" | tar -C \"$dst\" -xpf -";
        let out = Command::new("sh").args(["-c", script, "sh"]).arg(from).arg(to).args(what).output().unwrap();
        assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
    };
    tar(
        workspace,
        &[
            "Cargo.toml",
            "Cargo.lock",
            ".cargo",
            "xtask/Cargo.toml",
            "xtask/src",
            "xtask-aws/Cargo.toml",
            "xtask-aws/src",
            // A workspace member (the tests' AWS front): cargo loads every member's manifest.
            "aws-front",
        ],
        &a,
    );
    // The tests of the crates are not needed to build the binaries; cargo wants the targets it lists.
    tar(workspace, &["xtask/tests", "xtask-aws"], &a);
    tar(fixture.root(), &["layers.toml", "layers"], &a);
    let cargo = |dir: &Path, args: &[&str]| {
        let mut c = Command::new(env!("CARGO"));
        c.current_dir(dir).args(args).env("CARGO_TARGET_DIR", &target);
        for var in
            ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_PRIMARY_PACKAGE", "XTASK_AWS_BIN", "CARGO_TARGET_TMPDIR"]
        {
            c.env_remove(var);
        }
        c.env("XTASK_PIP_CACHE", common::shared_pip_cache()).env("XTASK_UV_CACHE", common::shared_uv_cache());
        c.env("AWS_ACCESS_KEY_ID", "testing").env("AWS_SECRET_ACCESS_KEY", "testing");
        c.env("AWS_CONFIG_FILE", dir.join("absent")).env("AWS_SHARED_CREDENTIALS_FILE", dir.join("absent"));
        let mut all = vec!["cargo"];
        all.extend(args);
        Run::from(c.output().unwrap(), &all)
    };
    cargo(&a, &["xtask", "bootstrap"]).ok();
    cargo(&a, &["xtask", "status"]).ok();
    tar(&a, &["."], &b);
    std::fs::remove_dir_all(&a).unwrap();

    let run = cargo(&b, &["xtask", "status"]).ok();
    assert!(
        run.stderr.contains(&format!("compiled from {}", a.join("xtask").display()))
            && run.stderr.contains("compiling it from this checkout"),
        "{}",
        run.stderr
    );
    let run = cargo(&b, &["xtask", "publish-all", "--json"]).ok();
    assert!(!run.stderr.contains("compiled from"), "compiled once, then current:\n{}", run.stderr);
    assert_eq!(run.json()[0]["status"], "published", "{}", run.stdout);
    let _ = std::fs::remove_dir_all(&target);
}
