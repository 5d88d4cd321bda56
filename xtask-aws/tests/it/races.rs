//! Integration tests of what must stay true when runs race or files are tampered with:
//! the repo is the one you are in (even when clones share a target directory), two
//! publishes at once never duplicate a version or lose a record (the publish lock in S3,
//! the manifest's file lock), a dead holder's lock expires, and a hand-edited manifest
//! entry is refused. The real binary, the real docker engine and the emulator.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::repo::Repo;
use common::{Fixture, Run, TestEnv};

/// The folder the `xtask` binary the tests run is in (`target/debug`).
fn profile_dir() -> PathBuf {
    common::xtask_bin().parent().unwrap().to_path_buf()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A copy of this workspace's sources (what `cargo xtask` compiles) with one layer.
fn workspace_copy(dir: &Path, layer: &str) {
    let root = repo_root();
    let files = ["Cargo.toml", "Cargo.lock", ".cargo/config.toml", "xtask/Cargo.toml", "xtask-aws/Cargo.toml"];
    // aws-front (the tests' AWS front) is a workspace member: cargo loads every member's manifest.
    for rel in files.into_iter().chain(["aws-front/Cargo.toml"]) {
        std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(root.join(rel), dir.join(rel)).unwrap();
    }
    for src in ["xtask/src", "xtask-aws/src", "aws-front/src"] {
        let status = Command::new("cp").arg("-r").arg(root.join(src)).arg(dir.join(src)).status().unwrap();
        assert!(status.success());
    }
    std::fs::write(dir.join("layers.toml"), "[defaults]\nruntimes = [\"python3.13\"]\n").unwrap();
    std::fs::create_dir_all(dir.join(format!("layers/{layer}"))).unwrap();
    std::fs::write(dir.join(format!("layers/{layer}/requirements.txt")), "six==1.16.0\n").unwrap();
}

/// `cargo xtask ARGS` run in `dir`, as a user types it, with `target` as CARGO_TARGET_DIR.
fn cargo_xtask(dir: &Path, target: &Path, args: &[&str]) -> Run {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .arg("xtask")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("XTASK_REPO")
        .output()
        .unwrap();
    Run::from(out, args)
}

#[test]
fn two_clones_sharing_a_target_dir_each_act_on_their_own_layers() {
    let _env = require_docker!("two_clones_sharing_a_target_dir_each_act_on_their_own_layers");
    // The shared target directory starts with this build's compiled dependencies
    // (hard links, same filesystem), so only the xtask crate itself is compiled.
    let shared =
        tempfile::Builder::new().prefix("xtask-it-shared-").tempdir_in(profile_dir().parent().unwrap()).unwrap();
    let debug = shared.path().join("debug");
    std::fs::create_dir_all(&debug).unwrap();
    for sub in ["deps", "build", ".fingerprint"] {
        let st = Command::new("cp").arg("-al").arg(profile_dir().join(sub)).arg(&debug).status().unwrap();
        assert!(st.success(), "cannot link {sub} into the shared target dir");
    }
    let clones = tempfile::Builder::new().prefix("xtask-it-clones-").tempdir().unwrap();
    let (a, b) = (clones.path().join("a"), clones.path().join("b"));
    workspace_copy(&a, "alpha");
    workspace_copy(&b, "beta");
    let lists = |dir: &Path, want: &str, not: &str| {
        let run = cargo_xtask(dir, shared.path(), &["list"]).ok();
        assert!(run.stderr.contains(want) && !run.stderr.contains(not), "in {}:\n{}", dir.display(), run.stderr);
    };
    lists(&a, "alpha", "beta");
    lists(&b, "beta", "alpha");
    // B's build is now the binary in the shared target dir: run in A, it still acts on A.
    lists(&a, "alpha", "beta");
    let b_binary = Command::new(debug.join("xtask")).arg("list").current_dir(a.join("layers/alpha")).output().unwrap();
    let run = Run::from(b_binary, &["list"]).ok();
    assert!(run.stderr.contains("alpha") && !run.stderr.contains("beta"), "{}", run.stderr);
}

#[test]
fn the_repo_is_the_one_holding_the_current_directory() {
    let env = require_docker!("the_repo_is_the_one_holding_the_current_directory");
    let f = Fixture::new(&env, &[("gamma", "six==1.16.0\n")]);
    let bare = |dir: &Path, repo_env: Option<&Path>| {
        let mut c = Command::new(common::xtask_bin());
        c.arg("list").current_dir(dir).env_remove("XTASK_REPO");
        if let Some(r) = repo_env {
            c.env("XTASK_REPO", r);
        }
        Run::from(c.output().unwrap(), &["list"])
    };
    // From a folder inside the repo, as git and cargo find theirs; this binary was built
    // elsewhere, and it says which repo it acts on.
    let run = bare(&f.path("layers/gamma"), None).ok();
    assert!(run.stderr.contains("gamma"), "{}", run.stderr);
    assert!(run.stderr.contains("note: layer repo") && run.stderr.contains("built from"), "{}", run.stderr);
    // Outside any layer repo: one line saying so, with the way out.
    let outside = tempfile::tempdir().unwrap();
    bare(outside.path(), None).fails_with(&["not inside a layer repo", "--repo"]);
    // XTASK_REPO is honoured and named.
    let run = bare(outside.path(), Some(f.root())).ok();
    assert!(run.stderr.contains("gamma") && run.stderr.contains("(from XTASK_REPO)"), "{}", run.stderr);
    // --repo to a folder that is no layer repo.
    let mut c = Command::new(common::xtask_bin());
    c.args(["--repo"]).arg(outside.path()).arg("list");
    Run::from(c.output().unwrap(), &["--repo", "DIR", "list"]).fails_with(&["is not a layer repo", "layers.toml"]);
}

/// A [`Repo`] publishing to the emulator: its bucket made and its layers built.
fn publishing(env: &TestEnv, layers: &[(&str, &str)]) -> Repo {
    let r = Repo::new(env, layers, "race");
    r.f.run(&["bootstrap"]).ok();
    r.f.run(&["layer", "--all"]).ok();
    r
}

impl Repo {
    /// Every (layer, version) the manifest records, and that each layer has exactly one
    /// version in the emulator, the recorded one.
    fn assert_one_version_each(&self, layers: &[&str]) {
        let m = self.manifest("staging");
        let entries = m["layers"].as_array().unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e["layer"].as_str().unwrap()).collect();
        assert_eq!(names, layers, "manifest:\n{m:#}");
        for e in entries {
            let name = e["layer_name"].as_str().unwrap();
            assert_eq!(self.emu.versions(name), [1], "{name} was published more than once");
            assert_eq!(e["version"], 1);
        }
    }
}

#[test]
fn two_publish_all_at_once_publish_each_unit_once_and_record_every_one() {
    let env = require_emulator!("two_publish_all_at_once_publish_each_unit_once_and_record_every_one");
    let p =
        publishing(&env, &[("six", "six==1.16.0\n"), ("idna", "idna==3.10\n"), ("certifi", "certifi==2024.8.30\n")]);
    let start = || {
        let mut c = p.f.cmd(&["publish-all", "--no-check", "--json"]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let children = [start(), start()];
    let runs: Vec<Run> =
        children.into_iter().map(|c| Run::from(c.wait_with_output().unwrap(), &["publish-all"]).ok()).collect();
    p.assert_one_version_each(&["certifi", "idna", "six"]);
    // Between them, each unit was published once; the other run found it unchanged.
    let published: usize =
        runs.iter().map(|r| r.json().iter().filter(|row| row["status"] == "published").count()).sum();
    assert_eq!(published, 3, "{}\n---\n{}", runs[0].stderr, runs[1].stderr);
    assert!(p.lock_object().is_none(), "the lock was not released: {:?}", p.lock_object());
}

#[test]
fn two_publishes_of_different_layers_at_once_keep_both_records() {
    let env = require_emulator!("two_publishes_of_different_layers_at_once_keep_both_records");
    let p = publishing(&env, &[("certifi", "certifi==2024.8.30\n"), ("packaging", "packaging==24.1\n")]);
    let children: Vec<_> = ["certifi", "packaging"]
        .iter()
        .map(|l| p.f.cmd(&["publish", l, "--no-check"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    for c in children {
        Run::from(c.wait_with_output().unwrap(), &["publish"]).ok();
    }
    p.assert_one_version_each(&["certifi", "packaging"]);
}

#[test]
fn a_held_lock_makes_the_next_run_wait_then_fail_naming_the_holder_and_unlock_removes_it() {
    let env =
        require_emulator!("a_held_lock_makes_the_next_run_wait_then_fail_naming_the_holder_and_unlock_removes_it");
    let p = publishing(&env, &[("six", "six==1.16.0\n")]);
    p.forge_lock(600);
    let run = p.f.run(&["publish-all", "--no-check", "--lock-timeout", "2"]);
    assert!(run.stderr.contains("waiting for the publish lock of profile `staging`"), "{}", run.stderr);
    run.fails_with(&[
        "held by ghost@elsewhere",
        "github run 77",
        "gave up after 2 s",
        "cargo xtask unlock --profile staging",
    ]);
    assert!(!p.f.path("published/staging.json").exists(), "a run without the lock recorded something");
    let name = format!("{}-six-py313-x86_64", p.prefix);
    assert!(p.emu.versions(&name).is_empty(), "a run without the lock published");
    // unlock names the holder and needs --yes without a terminal.
    p.f.run(&["unlock", "--profile", "staging"]).fails_with(&["pass --yes"]);
    assert!(p.lock_object().is_some());
    let run = p.f.run(&["unlock", "--profile", "staging", "--yes"]).ok();
    assert!(run.stderr.contains("ghost@elsewhere") && run.stderr.contains("removed"), "{}", run.stderr);
    assert!(p.lock_object().is_none());
    p.f.run(&["publish-all", "--no-check", "--lock-timeout", "2"]).ok();
    p.assert_one_version_each(&["six"]);
}

#[test]
fn a_killed_holders_lock_expires_and_the_next_run_proceeds() {
    let env = require_emulator!("a_killed_holders_lock_expires_and_the_next_run_proceeds");
    let layers: Vec<(String, String)> = ["six==1.16.0", "idna==3.10", "certifi==2024.8.30", "packaging==24.1"]
        .iter()
        .map(|r| (r.split("==").next().unwrap().to_string(), format!("{r}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = layers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = publishing(&env, &refs);
    // The first run holds the lock while it publishes, one unit at a time; it is killed
    // (no chance to release) as soon as its lock is seen in the bucket.
    let mut first =
        p.f.cmd(&["publish-all", "--no-check", "--jobs", "1"])
            .env("XTASK_LOCK_LEASE", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let holder = loop {
        if let Some(h) = p.lock_object() {
            break h;
        }
        assert!(first.try_wait().unwrap().is_none(), "the first run ended before its lock was seen");
        assert!(Instant::now() < deadline, "no lock appeared");
        std::thread::sleep(Duration::from_millis(10));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(holder["pid"], first.id());
    assert!(p.lock_object().is_some(), "a killed run cannot release its lock");
    // The next run waits for the lease to run out, takes the lock over and finishes the
    // work: every unit once, whatever the killed run had published.
    let run = p.f.cmd(&["publish-all", "--no-check", "--lock-timeout", "60"]).env("XTASK_LOCK_LEASE", "3").output();
    let run = Run::from(run.unwrap(), &["publish-all"]).ok();
    assert!(run.stderr.contains("took over the publish lock"), "{}", run.stderr);
    p.assert_one_version_each(&["certifi", "idna", "packaging", "six"]);
    assert!(p.lock_object().is_none());
}

#[test]
fn a_hand_edited_manifest_arn_is_refused_by_every_reader() {
    let env = require_emulator!("a_hand_edited_manifest_arn_is_refused_by_every_reader");
    let p = publishing(&env, &[("six", "six==1.16.0\n")]);
    p.f.write(
        "layers.toml",
        &(std::fs::read_to_string(p.f.path("layers.toml")).unwrap()
            + "\n[stacks.web]\nlayers = [\"six\"]\nruntime = \"python3.13\"\n"),
    );
    p.f.run(&["publish-all", "--no-check"]).ok();
    p.f.run(&["stack", "web"]).ok();
    let path = p.f.path("published/staging.json");
    let good = std::fs::read_to_string(&path).unwrap();
    let arn = p.manifest("staging")["layers"][0]["layer_version_arn"].as_str().unwrap().to_string();
    let evil = "arn:aws:lambda:us-east-1:999999999999:layer:evil-layer:7";
    std::fs::write(&path, good.replace(&arn, evil)).unwrap();
    for args in [&["stack", "web", "--format", "terraform"][..], &["changed"], &["publish-all", "--no-check"]] {
        let run = p.f.run(args);
        assert!(run.stdout.is_empty(), "`{args:?}` printed {}", run.stdout);
        run.fails_with(&["invalid manifest", "entry six python3.13 x86_64 us-east-1", "evil-layer"]);
    }
    // The account alone changed: refused against the profile's account_id.
    let other_account = arn.replacen(":123456789012:", ":999999999999:", 1);
    std::fs::write(&path, good.replace(&arn, &other_account)).unwrap();
    p.f.set_profile_key("staging", "account_id = \"123456789012\"");
    p.f.run(&["stack", "web"]).fails_with(&["account 999999999999", "account_id"]);
    // The manifest is not tracked by git here: the hint says how to rebuild it, not `git checkout`.
    let run = p.f.run(&["changed"]);
    assert!(!run.stderr.contains("git checkout"), "{}", run.stderr);
    run.fails_with(&["delete it and run `cargo xtask publish-all --profile staging`"]);
    std::fs::remove_file(&path).unwrap();
    p.f.run(&["publish-all", "--no-check"]).ok();
    assert_eq!(p.manifest("staging")["layers"][0]["layer_version_arn"], arn.as_str(), "the rebuilt manifest differs");
}

#[test]
fn the_missing_bucket_hint_of_a_guarded_profile_includes_yes() {
    let env = require_emulator!("the_missing_bucket_hint_of_a_guarded_profile_includes_yes");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    f.prefix_layer_names("race");
    f.run(&["publish-all", "--profile", "production", "--yes", "--no-check"])
        .fails_with(&["does not exist", "cargo xtask bootstrap --profile production --yes"]);
}

#[test]
fn unlock_shows_and_removes_a_lock_object_the_tool_did_not_write() {
    let env = require_emulator!("unlock_shows_and_removes_a_lock_object_the_tool_did_not_write");
    let p = publishing(&env, &[("six", "six==1.16.0\n")]);
    let (bucket, key) = (p.bucket(), Repo::LOCK_KEY.to_string());
    // Not a lock this tool wrote: a line of text, a terminal escape, then much more.
    let garbage = format!("garbage \u{1b}[2J\n{{not json{}", "x".repeat(5000));
    let body = aws_sdk_s3::primitives::ByteStream::from(garbage.into_bytes());
    p.emu.rt.block_on(p.emu.s3.put_object().bucket(&bucket).key(&key).body(body).send()).unwrap();
    p.f.run(&["publish-all", "--no-check", "--lock-timeout", "2"])
        .fails_with(&["is not a lock this tool wrote", "cargo xtask unlock --profile staging"]);
    // unlock shows what is there (escaped, clipped, one line) and asks for --yes.
    let run = p.f.run(&["unlock", "--profile", "staging"]).fails_with(&["pass --yes"]);
    assert!(run.stderr.contains(r"garbage \u{1b}[2J\n{not json"), "{}", run.stderr);
    assert!(run.stderr.contains("more characters"), "not clipped:\n{}", run.stderr);
    assert!(run.stderr.lines().all(|l| l.len() < 600), "{}", run.stderr);
    let holding = || p.emu.rt.block_on(p.emu.s3.head_object().bucket(&bucket).key(&key).send()).is_ok();
    assert!(holding());
    let run = p.f.run(&["unlock", "--profile", "staging", "--yes"]).ok();
    assert!(run.stderr.contains("not a lock this tool wrote") && run.stderr.contains("removed"), "{}", run.stderr);
    assert!(!holding(), "unlock --yes left the object in place");
    p.f.run(&["publish-all", "--no-check", "--lock-timeout", "2"]).ok();
    p.assert_one_version_each(&["six"]);
}
