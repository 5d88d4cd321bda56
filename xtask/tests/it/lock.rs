//! `cargo xtask lock` end to end: the real pinned uv against the real PyPI, real builds in
//! the test image (docker) or with host pip, and `check` of what the lock produced.

use crate::common;

use common::{Fixture, Run};

/// Every package line of a lock is pinned `==` and followed by its hashes.
fn assert_pinned_and_hashed(lock: &str) {
    let body: Vec<&str> = lock.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!body.is_empty(), "empty lock:\n{lock}");
    for (i, l) in body.iter().enumerate() {
        if !l.starts_with(' ') {
            assert!(l.contains("==") && l.ends_with(" \\"), "not pinned with hashes: {l}\n{lock}");
            assert!(body[i + 1].trim_start().starts_with("--hash=sha256:"), "no hash after {l}\n{lock}");
        }
    }
}

fn lock_of(f: &Fixture, layer: &str) -> String {
    std::fs::read_to_string(f.path(&format!("layers/{layer}/requirements.txt"))).unwrap()
}

/// The package names a lock pins.
fn pinned(lock: &str) -> Vec<String> {
    lock.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphanumeric()))
        .map(|l| l.split("==").next().unwrap().to_string())
        .collect()
}

fn check_status(run: &Run) -> Vec<String> {
    run.json().iter().map(|u| u["status"].as_str().unwrap().to_string()).collect()
}

/// The error is one line: nothing follows the `error:` line.
fn assert_one_line_error(run: &Run) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("error:")).expect("an error line");
    assert!(lines[at + 1..].iter().all(|l| l.trim().is_empty()), "more than one line:\n{}", run.stderr);
}

#[test]
fn new_locks_requests_with_its_dependencies_and_check_passes() {
    let env = require_docker!("lock_new_requests");
    let f = Fixture::new(&env, &[]);
    f.run(&["new", "web", "requests"]).ok();
    assert_eq!(std::fs::read_to_string(f.path("layers/web/requirements.in")).unwrap().lines().last(), Some("requests"));
    let lock = lock_of(&f, "web");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(f.path("layers/web/requirements.txt")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    assert_pinned_and_hashed(&lock);
    for p in ["certifi", "charset-normalizer", "idna", "requests", "urllib3"] {
        assert!(pinned(&lock).contains(&p.to_string()), "{p} not in\n{lock}");
    }
    assert!(lock.contains("# targets: python3.13-x86_64\n") && lock.contains("# resolver: uv "), "{lock}");
    let run = f.run(&["check", "web", "--json", "--require-imports"]).ok();
    assert_eq!(check_status(&run), ["pass"], "{}", run.stdout);
    // Locking again changes nothing.
    f.run(&["lock", "web", "--check"]).ok();
    // A lock edited by hand (urllib3 dropped) builds, and check's closure finding says
    // what fixes it.
    let mut dropped = String::new();
    let mut skipping = false;
    for l in lock.lines() {
        if !l.starts_with(' ') {
            skipping = l.starts_with("urllib3==");
        }
        if !skipping {
            dropped.push_str(l);
            dropped.push('\n');
        }
    }
    f.write("layers/web/requirements.txt", &dropped);
    let run = Run::from(f.cmd(&["check", "web", "--json"]).output().unwrap(), &["check"]);
    let unit = &run.json()[0];
    assert_eq!(unit["status"], "fail", "{}", run.stdout);
    let closure: Vec<&str> = unit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "closure")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(!closure.is_empty() && closure.iter().all(|m| m.ends_with("run `cargo xtask lock web`")), "{closure:?}");
}

#[test]
fn pandas_locks_against_the_numpy_layer_and_checks_with_it_attached() {
    let env = require_docker!("lock_pandas_numpy");
    let f = Fixture::new(&env, &[]);
    f.write("layers/numpy/requirements.in", "numpy==2.3.5\n");
    f.write("layers/pandas/requirements.in", "# pandas, with numpy from the numpy layer\npandas\n");
    f.write("layers/pandas/layer.toml", "requires = [\"numpy\"]\n");
    f.run(&["lock", "--all"]).ok();
    let numpy = lock_of(&f, "numpy");
    assert_eq!(pinned(&numpy), ["numpy"]);
    let pandas = lock_of(&f, "pandas");
    assert_pinned_and_hashed(&pandas);
    let names = pinned(&pandas);
    assert!(names.contains(&"pandas".to_string()) && !names.contains(&"numpy".to_string()), "{pandas}");
    assert!(pandas.contains("# provided by required layers: numpy (layer numpy)"), "{pandas}");
    let run = f.run(&["check", "pandas", "--json", "--require-imports"]).ok();
    assert_eq!(check_status(&run), ["pass"], "{}", run.stdout);
    // A new numpy pin makes the pandas lock stale.
    f.write("layers/numpy/requirements.in", "numpy==2.3.4\n");
    f.run(&["lock", "numpy"]).ok();
    f.run(&["lock", "pandas", "--check"])
        .fails_with(&["layers/pandas/requirements.txt is stale", "run `cargo xtask lock pandas`"]);
}

#[test]
fn one_lock_serves_two_runtimes_and_two_architectures_with_hash_checking() {
    let env = require_docker!("lock_four_targets");
    let f = Fixture::new(&env, &[]);
    f.write("layers/multi/requirements.in", "requests\nmarkupsafe\n");
    f.write(
        "layers/multi/layer.toml",
        "builder = \"pip\"\nruntimes = [\"python3.11\", \"python3.13\"]\narchitectures = [\"x86_64\", \"arm64\"]\n",
    );
    f.run(&["lock", "multi"]).ok();
    let lock = lock_of(&f, "multi");
    assert!(
        lock.contains("# targets: python3.11-x86_64 python3.11-arm64 python3.13-x86_64 python3.13-arm64\n"),
        "{lock}"
    );
    assert_pinned_and_hashed(&lock);
    let run = f.run(&["-v", "layer", "multi", "--json"]).ok();
    let built: Vec<String> = run.json().iter().map(|u| format!("{} {}", u["runtime"], u["arch"])).collect();
    assert_eq!(built.len(), 4, "{}", run.stdout);
    assert!(run.json().iter().all(|u| u["status"] == "built"), "{}", run.stdout);
    assert_eq!(run.stderr.matches("--require-hashes").count(), 4, "{}", run.stderr);
}

#[test]
fn editing_requirements_in_makes_the_lock_stale_for_check_lock_and_changed() {
    let env = require_docker!("lock_stale");
    let f = Fixture::new(&env, &[("hand", "six==1.17.0\n")]);
    f.run(&["new", "web", "idna"]).ok();
    f.run(&["lock", "--all", "--check"]).ok();
    f.write("layers/web/requirements.in", "idna\nsix\n");
    let stale = ["layers/web/requirements.txt is stale", "run `cargo xtask lock web`"];
    f.run(&["lock", "--all", "--check"]).fails_with(&stale);
    let run = Run::from(f.cmd(&["lock", "--all", "--check", "--json"]).output().unwrap(), &["lock"]);
    let json = run.json();
    assert_eq!(json.len(), 1, "{}", run.stdout);
    assert_eq!((&json[0]["layer"], &json[0]["status"]), (&"web".into(), &"stale".into()));
    assert!(json[0]["error"].as_str().unwrap().contains("run `cargo xtask lock web`"));
    f.run(&["check", "web", "--locked"]).fails_with(&stale);
    f.run(&["changed"]).fails_with(&stale);
    // A hand-written requirements.txt is not a lock: never stale.
    f.run(&["lock", "hand"]).fails_with(&["layer hand has no requirements.in"]);
    f.run(&["lock", "--all"]).ok();
    assert!(pinned(&lock_of(&f, "web")).contains(&"six".to_string()));
    assert_eq!(lock_of(&f, "hand"), "six==1.17.0\n");
    let run = f.run(&["lock", "--all", "--check", "--json"]).ok();
    assert_eq!(run.json()[0]["status"], "current", "{}", run.stdout);
    assert_eq!(run.json()[0]["targets"], serde_json::json!(["python3.13-x86_64"]));
    f.run(&["changed"]).ok();
}

#[test]
fn a_tampered_hash_fails_the_build_with_pips_hash_error() {
    let env = require_docker!("lock_tampered_hash");
    let f = Fixture::new(&env, &[]);
    f.run(&["new", "web", "six"]).ok();
    let lock = lock_of(&f, "web");
    let tampered: String = lock
        .lines()
        .map(|l| match l.split_once("--hash=sha256:") {
            Some((indent, _)) => format!("{indent}--hash=sha256:{}", "0".repeat(64)),
            None => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    f.write("layers/web/requirements.txt", &tampered);
    let run = f.run(&["layer", "web"]).fails_with(&["pip install", "failed"]);
    // pip's words, or uv's (the default installer).
    assert!(
        run.stderr.contains("DO NOT MATCH THE HASHES") || run.stderr.contains("Hash mismatch for `six"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_inputs_fail_with_one_line_naming_the_cause_and_write_nothing() {
    let env = require_docker!("lock_bad_inputs");
    let f = Fixture::new(&env, &[("numpy", "numpy==2.3.5\n")]);
    let cases: &[(&str, &str, &[&str])] = &[
        ("editable", "-e .\n", &["layers/editable/requirements.in:1", "`-e .` is not supported"]),
        ("include", "six\n-r other.txt\n", &["requirements.in:2", "`-r other.txt`"]),
        (
            "unknown",
            "xtask-no-such-package-zz\n",
            &["python3.13 x86_64", "xtask-no-such-package-zz was not found in the package registry"],
        ),
        ("nowheel", "pandas==1.0.0\n", &["python3.13 x86_64", "pandas==1.0.0 has no usable wheels"]),
        ("conflict", "numpy<2\n", &["python3.13 x86_64", "numpy", "`numpy==2.3.5` is the pin of layer numpy"]),
    ];
    for (layer, input, needles) in cases {
        f.write(&format!("layers/{layer}/requirements.in"), input);
        if *layer == "conflict" {
            f.write("layers/conflict/layer.toml", "requires = [\"numpy\"]\n");
        }
        let run = f.run(&["lock", layer]).fails_with(needles);
        assert_one_line_error(&run);
        assert!(!f.path(&format!("layers/{layer}/requirements.txt")).exists(), "{layer}: a lock was written");
    }
    // An existing lock is left as it was when the new inputs cannot be locked.
    f.write("layers/unknown/requirements.in", "six\n");
    f.run(&["lock", "unknown"]).ok();
    let before = lock_of(&f, "unknown");
    f.write("layers/unknown/requirements.in", "six\nxtask-no-such-package-zz\n");
    f.run(&["lock", "unknown"]).fails_with(&["xtask-no-such-package-zz"]);
    assert_eq!(lock_of(&f, "unknown"), before);
    // `new` with a package that cannot be locked leaves nothing behind.
    f.run(&["new", "ghost", "xtask-no-such-package-zz"]).fails_with(&["xtask-no-such-package-zz"]);
    assert!(!f.path("layers/ghost").exists());
}

#[test]
fn pyproject_dependencies_lock_with_the_versions_of_uv_lock() {
    let env = require_docker!("lock_pyproject");
    let f = Fixture::new(&env, &[]);
    let pyproject = |deps: &str| {
        format!("[project]\nname = \"proj\"\nversion = \"0\"\nrequires-python = \">=3.11\"\ndependencies = [{deps}]\n")
    };
    f.write("layers/proj/pyproject.toml", &pyproject("\"idna\""));
    f.run(&["lock", "proj"]).ok();
    assert!(lock_of(&f, "proj").contains("from pyproject.toml:"));
    // uv.lock made by the same uv with an older idna; the lock keeps its version even
    // once pyproject.toml allows any.
    let home = std::env::var("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
    let uv = std::fs::read_dir(home.join("lambda-layers/uv")).unwrap().flatten().next().unwrap().path().join("uv");
    f.write("layers/proj/pyproject.toml", &pyproject("\"idna==3.7\""));
    let out = std::process::Command::new(&uv)
        .args(["lock", "--quiet"])
        .current_dir(f.path("layers/proj"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    f.write("layers/proj/pyproject.toml", &pyproject("\"idna\""));
    f.run(&["lock", "proj", "--check"]).fails_with(&["layers/proj/requirements.txt is stale"]);
    f.run(&["lock", "proj"]).ok();
    let lock = lock_of(&f, "proj");
    assert!(lock.contains("from pyproject.toml and uv.lock:") && lock.contains("\nidna==3.7 \\\n"), "{lock}");
    let run = f.run(&["check", "proj", "--json", "--require-imports"]).ok();
    assert_eq!(check_status(&run), ["pass"], "{}", run.stdout);
}

#[test]
fn without_python_on_the_machine_uv_is_fetched_and_run_in_the_build_image() {
    let env = require_docker!("lock_without_python");
    let f = Fixture::new(&env, &[]);
    f.write("layers/web/requirements.in", "requests\n");
    let with_python = {
        f.run(&["lock", "web"]).ok();
        lock_of(&f, "web")
    };
    std::fs::remove_file(f.path("layers/web/requirements.txt")).unwrap();
    // PATH holds docker alone, and the tool cache is empty: pip in the build image fetches
    // uv, which then resolves in the build image.
    let bin = f.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let docker = std::env::var("DOCKER").unwrap_or_else(|_| "docker".into());
    let docker = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(&docker))
        .find(|p| p.is_file())
        .unwrap_or_else(|| std::path::PathBuf::from(&docker));
    std::os::unix::fs::symlink(&docker, bin.join("docker")).unwrap();
    let mut c = f.cmd(&["lock", "web"]);
    c.env("PATH", &bin).env("XDG_CACHE_HOME", f.path("cache")).env_remove("DOCKER");
    let run = Run::from(c.output().unwrap(), &["lock", "web"]).ok();
    assert!(run.stderr.contains("fetching"), "{}", run.stderr);
    assert!(f.path("cache/lambda-layers/uv").is_dir());
    assert_eq!(lock_of(&f, "web"), with_python);
}

#[test]
fn targets_that_need_different_versions_get_one_marked_line_each_and_build_their_own() {
    let env = require_docker!("lock_versions_per_target");
    let f = Fixture::new(&env, &[]);
    // Recent numpy ships manylinux_2_28 wheels only: python3.11 (Amazon Linux 2, glibc
    // 2.26) gets an older numpy than python3.13.
    let targets = "runtimes = [\"python3.11\", \"python3.13\"]\n";
    for (layer, builder) in [("npdocker", "docker"), ("nppip", "pip")] {
        f.write(&format!("layers/{layer}/requirements.in"), "numpy\n");
        f.write(&format!("layers/{layer}/layer.toml"), &format!("builder = \"{builder}\"\n{targets}"));
    }
    f.run(&["lock", "--all"]).ok();
    let lock = lock_of(&f, "npdocker");
    let lines: Vec<&str> = lock.lines().filter(|l| l.starts_with("numpy==")).collect();
    assert_eq!(lines.len(), 2, "{lock}");
    assert!(lines.iter().any(|l| l.contains(" ; python_version == \"3.11\" \\")), "{lock}");
    assert!(lines.iter().any(|l| l.contains(" ; python_version == \"3.13\" \\")), "{lock}");
    let version = |line: &str| line.split("==").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let for_py = |py: &str| version(lines.iter().find(|l| l.contains(&format!("\"{py}\""))).unwrap());
    let built = |layer: &str, runtime: &str| {
        let run = f.run(&["layer", layer, "--runtime", runtime, "--json"]).ok();
        run.json()[0]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["version"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // pip in the build image (python3.13) evaluates the markers itself; host pip (the pip
    // builder) gets the target's lines with the markers already evaluated for the target.
    assert_eq!(built("npdocker", "python3.13"), [for_py("3.13")]);
    assert_eq!(built("nppip", "python3.11"), [for_py("3.11")]);
}
