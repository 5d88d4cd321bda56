//! Issue 20, "what you declared is what ships": a stale lock is locked again by the
//! commands that build and refused by the ones that publish; a lock of nothing, an
//! unknown `--upgrade-package` and a direct URL are errors; a hash mismatch names the fix;
//! a mistyped layer name suggests the close one. Real binary, real uv, real docker.

use crate::common;

use common::{Fixture, Run};

const STALE: [&str; 2] = ["layers/web/requirements.txt is stale", "run `cargo xtask lock web`"];

fn lock_of(f: &Fixture, layer: &str) -> String {
    std::fs::read_to_string(f.path(&format!("layers/{layer}/requirements.txt"))).unwrap()
}

/// The distributions a `layer --json` run installed into its unit.
fn packages(run: &Run) -> Vec<String> {
    run.json()[0]["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_stale_lock_is_locked_again_before_a_build_and_refused_by_publishing() {
    let env = require_emulator!("declared_stale_lock");
    let f = Fixture::new(&env, &[]);
    f.prefix_layer_names("stale");
    f.run(&["bootstrap"]).ok();
    f.run(&["new", "web", "idna"]).ok();
    f.run(&["layer", "web"]).ok();
    f.write("layers/web/requirements.in", "idna\nsix\n");
    let before = lock_of(&f, "web");

    // The commands that publish or deploy never lock: they refuse, dry run included.
    f.run(&["publish-all", "--dry-run"]).fails_with(&STALE);
    f.run(&["publish", "web", "--dry-run"]).fails_with(&STALE);
    f.write(
        "layers.toml",
        &(std::fs::read_to_string(f.path("layers.toml")).unwrap()
            + "\n[stacks.site]\nlayers = [\"web\"]\nruntime = \"python3.13\"\n"),
    );
    f.run(&["stack", "site"]).fails_with(&STALE);
    let rollout = f.run(&["rollout", "--all-outdated", "--dry-run"]);
    assert_ne!(rollout.code, Some(0), "{}", rollout.stderr);
    assert!(rollout.stderr.contains(STALE[0]) && rollout.stderr.contains(STALE[1]), "{}", rollout.stderr);
    // `--locked` (CI) refuses too; nothing was written by any of them.
    f.run(&["layer", "web", "--locked"]).fails_with(&STALE);
    f.run(&["check", "web", "--locked"]).fails_with(&STALE);
    f.run(&["size", "web", "--locked"]).fails_with(&STALE);
    assert_eq!(lock_of(&f, "web"), before);
    let list = f.run(&["list", "--json"]).ok().json();
    assert_eq!((&list[0]["dist"], &list[0]["lock"]), (&"current".into(), &"stale".into()), "{list:?}");

    // `layer` locks it again first, saying so, and builds what requirements.in now asks.
    let run = f.run(&["layer", "web", "--json"]).ok();
    assert!(run.stderr.contains("web: requirements.in or a required layer's pins changed"), "{}", run.stderr);
    assert!(packages(&run).contains(&"six".to_string()), "{}", run.stdout);
    assert!(lock_of(&f, "web").contains("\nsix=="));
    f.run(&["publish-all", "--dry-run"]).ok();

    // A new `requires` makes the lock stale too: the required layer's packages leave it.
    f.run(&["new", "base", "six"]).ok();
    f.write("layers/web/layer.toml", "requires = [\"base\"]\n");
    f.run(&["publish", "web", "--dry-run"]).fails_with(&STALE);
    let run = f.run(&["check", "web", "--json"]).ok();
    assert!(run.stderr.contains("locking "), "{}", run.stderr);
    let lock = lock_of(&f, "web");
    assert!(!lock.contains("\nsix==") && lock.contains("six (layer base)"), "{lock}");
    let run = f.run(&["layer", "web", "--json", "--locked"]).ok();
    assert_eq!(packages(&run), ["idna"], "{}", run.stdout);
}

/// A fake `XTASK_UV` that answers `pip compile` by writing `pylock` to its `-o` file.
fn fake_uv(f: &Fixture, pylock: &str) -> String {
    let path = f.path("fake-uv");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && printf '%s' '{pylock}' > \"$2\"; shift; done\nexit 0\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn a_lock_of_nothing_an_unknown_upgrade_and_a_direct_url_are_errors_that_write_nothing() {
    let env = require_docker!("declared_lock_errors");
    let f = Fixture::new(&env, &[]);
    f.write("layers/web/requirements.in", "idna\n");
    let empty = fake_uv(&f, "lock-version = \"1.0\"\n");
    f.run_with(&["lock", "web"], &[("XTASK_UV", &empty)])
        .fails_with(&["uv resolved layers/web/requirements.in to no package", "nothing was written"]);
    let garbage = fake_uv(&f, "[[[ not toml");
    f.run_with(&["lock", "web"], &[("XTASK_UV", &garbage)]).fails_with(&["uv (", "layers/web", "not TOML"]);
    assert!(!f.path("layers/web/requirements.txt").exists());

    f.run(&["lock", "web"]).ok();
    let before = lock_of(&f, "web");
    f.run(&["lock", "web", "--upgrade-package", "urllib4"])
        .fails_with(&["--upgrade-package urllib4", "no package urllib4 in the lock of web"]);
    f.run(&["lock", "web", "--upgrade-package", "IDNA"]).ok();
    assert_eq!(lock_of(&f, "web"), before);

    f.write("layers/url/requirements.in", "six @ file:///tmp/six-1.17.0-py2.py3-none-any.whl\n");
    f.run(&["lock", "url"]).fails_with(&[
        "layers/url/requirements.in:1",
        "direct URL requirements cannot be locked: put the wheel in the layer folder",
    ]);
    assert!(!f.path("layers/url/requirements.txt").exists());
}

#[test]
fn a_hash_mismatch_names_the_lock_and_a_typo_names_the_close_layer() {
    let env = require_docker!("declared_hash_mismatch");
    let f = Fixture::new(&env, &[]);
    f.run(&["new", "web", "six"]).ok();
    let tampered: String = lock_of(&f, "web")
        .lines()
        .map(|l| match l.split_once("--hash=sha256:") {
            Some((indent, _)) => format!("{indent}--hash=sha256:{}\n", "0".repeat(64)),
            None => format!("{l}\n"),
        })
        .collect();
    f.write("layers/web/requirements.txt", &tampered);
    f.run(&["layer", "web"])
        .fails_with(&["layers/web/requirements.txt does not match its lock: run `cargo xtask lock web`"]);
    f.run(&["layer", "wbe"]).fails_with(&["unknown layer `wbe`: did you mean `web`?"]);
    f.run(&["layer", "zzzzzz"]).fails_with(&["unknown layer `zzzzzz`", "create it with `cargo xtask new zzzzzz`"]);
}

#[test]
fn a_stopped_run_holding_the_manifest_lock_is_named_and_waited_for_a_bounded_time() {
    let env = require_emulator!("declared_manifest_lock");
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    f.prefix_layer_names("mlock");
    f.run(&["bootstrap"]).ok();
    f.run(&["layer", "six"]).ok();
    // Another run holds the manifest's lock and is stopped (Ctrl-Z): a process that
    // takes the lock as the tool does (flock), says who it is, and stops itself.
    std::fs::create_dir_all(f.path("published")).unwrap();
    let lock = f.path("published/.staging.json.lock");
    let script = "import fcntl, os, signal, socket, sys\n\
        f = open(sys.argv[1], 'a+')\n\
        fcntl.flock(f, fcntl.LOCK_EX)\n\
        f.truncate(0); f.write('pid %d on %s since 2026-12-03T10:00:00Z\\n' % (os.getpid(), open('/proc/sys/kernel/hostname').read().strip())); f.flush()\n\
        print('locked', flush=True)\n\
        os.kill(os.getpid(), signal.SIGSTOP)\n";
    let mut holder = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&lock)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let pid = holder.id();
    let started = std::time::Instant::now();
    let run = f.run(&["publish", "six"]);
    let waited = started.elapsed();
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    let _ = holder.wait();
    let run = run.fails_with(&[
        ".staging.json.lock is locked by another run",
        &format!("pid {pid} on"),
        &format!("which is stopped: resume it (`fg`, or `kill -CONT {pid}`)"),
        "gave up after 20 s",
        "could not record it in the manifest; a rerun finishes it",
    ]);
    assert!(run.stderr.contains("waiting for"), "{}", run.stderr);
    assert!(waited < std::time::Duration::from_secs(60), "waited {waited:?}: past the publish lock's lease");
    // Once that run is gone, a rerun records what was published, publishing nothing again.
    let rows = f.run(&["publish", "six", "--json"]).ok().json();
    assert_eq!(rows[0]["status"], "unchanged", "{rows:?}");
    assert!(std::fs::read_to_string(f.path("published/staging.json")).unwrap().contains("\"version\": 1"));
}

#[test]
fn size_counts_the_layers_a_unit_requires_in_its_headroom() {
    let env = require_docker!("declared_size_requires");
    let f = Fixture::new(&env, &[("base", "six==1.17.0\n"), ("top", "idna==3.10\n")]);
    f.write("layers/top/layer.toml", "requires = [\"base\"]\n");
    let run = f.run(&["size", "top", "--json"]).ok();
    let out = &run.json()[0];
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.path("dist/base/base-py313-x86_64.json")).unwrap()).unwrap();
    let (own, theirs) = (out["unzipped_bytes"].as_u64().unwrap(), base["unzipped_bytes"].as_u64().unwrap());
    assert_eq!(out["required"], serde_json::json!([{"layer": "base", "unzipped_bytes": theirs}]));
    assert_eq!(out["headroom_bytes"].as_u64().unwrap(), 262_144_000 - own - theirs);
    assert!(run.stderr.contains("with the layers it requires (base "), "{}", run.stderr);
}
