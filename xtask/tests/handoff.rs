//! The split between the two binaries: `xtask` runs every command that needs no AWS and
//! hands the others, with the same arguments, to `xtask-aws` (the only one that links the
//! AWS SDK), whose exit status is then the command's. The real `xtask` binary; a script
//! stands in for xtask-aws where the test looks at what it was given.

mod common;

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
/// in its dependency tree; only xtask-aws does.
#[test]
fn the_xtask_crate_does_not_depend_on_the_aws_sdk() {
    let tree = |package: &str| {
        let out = Command::new(env!("CARGO"))
            .args(["tree", "--offline", "--locked", "-e", "normal", "--prefix", "none", "-p", package])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let sdk = |text: &str| -> Vec<String> {
        text.lines().filter(|l| l.starts_with("aws-") || l.starts_with("tokio ")).map(str::to_string).collect()
    };
    assert_eq!(sdk(&tree("xtask")), Vec::<String>::new(), "xtask must compile without the AWS SDK");
    assert!(sdk(&tree("xtask-aws")).iter().any(|l| l.starts_with("aws-sdk-lambda")), "the scan is blind");
}
