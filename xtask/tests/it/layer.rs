//! `cargo xtask layer` end to end: the real binary, the real docker engine, the local
//! build image, packages from PyPI.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{python_in_image, unzip, write_data_wheel, zip_names, Fixture};
use sha2::{Digest, Sha256};

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn builds_a_real_layer_with_python_at_the_root_and_a_matching_report() {
    let env = require_docker!("builds_a_real_layer");
    let f = Fixture::new(&env, &[("idna", "idna==3.10\n")]);
    let run = f.run(&["layer", "idna", "--json"]).ok();
    let out = run.json();
    assert_eq!(out.len(), 1, "{}", run.stdout);
    let r = &out[0];
    assert_eq!(r["status"], "built");
    assert_eq!(r["runtime"], "python3.13");
    assert_eq!(r["arch"], "x86_64");
    let zip = f.path("dist/idna/idna-py313-x86_64.zip");
    assert_eq!(r["zip"], "dist/idna/idna-py313-x86_64.zip");
    let names = zip_names(&zip);
    assert!(names.contains(&"python/idna/__init__.py".to_string()), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("python/")), "{names:?}");
    // The report's hashes are the zip's.
    assert_eq!(r["sha256"], sha256_hex(&zip));
    let raw = Sha256::digest(std::fs::read(&zip).unwrap());
    use base64::Engine;
    assert_eq!(r["code_sha256"], base64::engine::general_purpose::STANDARD.encode(raw));
    assert_eq!(r["zipped_bytes"], std::fs::metadata(&zip).unwrap().len());
    assert_eq!(r["packages"][0]["name"], "idna");
    assert_eq!(r["packages"][0]["version"], "3.10");
    // The report in dist/ holds the same fields.
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.path("dist/idna/idna-py313-x86_64.json")).unwrap()).unwrap();
    assert_eq!(on_disk["sha256"], r["sha256"]);
    assert_eq!(on_disk["fingerprint"], r["fingerprint"]);
    // Nothing temporary is left behind.
    let work: Vec<_> = std::fs::read_dir(f.path("dist/.work")).unwrap().collect();
    assert!(work.is_empty(), "{work:?}");
    assert!(run.stderr.contains("built"), "{}", run.stderr);
}

#[test]
fn two_builds_give_identical_zips_and_unchanged_inputs_are_up_to_date_without_docker() {
    let env = require_docker!("two_builds_identical");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    let zip = f.path("dist/six/six-py313-x86_64.zip");
    f.run(&["layer", "six"]).ok();
    let first = std::fs::read(&zip).unwrap();
    f.run(&["layer", "six", "--force"]).ok();
    assert_eq!(first, std::fs::read(&zip).unwrap(), "a rebuild of the same inputs must be byte-identical");

    // No docker at all: an up-to-date unit must not need it.
    let mut cmd = f.cmd(&["layer", "six", "--json"]);
    cmd.env("DOCKER", "/nonexistent/docker");
    let run = common::Run::from(cmd.output().unwrap(), &["layer", "six"]).ok();
    assert_eq!(run.json()[0]["status"], "up-to-date");

    // A changed input is rebuilt, and then needs docker.
    f.write("layers/six/requirements.txt", "six==1.17.0\n");
    let mut cmd = f.cmd(&["layer", "six"]);
    cmd.env("DOCKER", "/nonexistent/docker");
    common::Run::from(cmd.output().unwrap(), &["layer", "six"]).fails_with(&["docker CLI not found", "DOCKER"]);
    assert_eq!(first, std::fs::read(&zip).unwrap(), "a failed build must leave the previous zip alone");
}

#[test]
fn files_in_dist_belong_to_the_invoking_user() {
    let env = require_docker!("files_belong_to_user");
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    if unsafe_getuid() != 0 {
        // As a normal user the container already runs as that user; checked below the same way.
    }
    const NOBODY: u32 = 65534;
    let socket_gid = std::fs::metadata("/var/run/docker.sock").map(|m| m.gid()).unwrap_or(0);
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    let home = f.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let (uid, gid) = if unsafe_getuid() == 0 {
        // Run the tool as an unprivileged user in the docker group, as a developer would.
        let st = Command::new("chown").args(["-R", &format!("{NOBODY}:{socket_gid}")]).arg(f.root()).status().unwrap();
        assert!(st.success());
        (NOBODY, socket_gid)
    } else {
        (unsafe_getuid(), std::fs::metadata(f.root()).unwrap().gid())
    };
    let mut cmd = f.cmd(&["layer", "six"]);
    cmd.env("HOME", &home).env("XTASK_PIP_CACHE", home.join("pip-cache")).env("XTASK_UV_CACHE", home.join("uv-cache"));
    // The uv binary is fetched into this user's own cache, whatever the caller's
    // XDG_CACHE_HOME (CI may set one the unprivileged user cannot write).
    cmd.env("XDG_CACHE_HOME", home.join(".cache"));
    if unsafe_getuid() == 0 {
        cmd.uid(uid).gid(gid);
    }
    common::Run::from(cmd.output().unwrap(), &["layer", "six"]).ok();
    for entry in common::walk(&f.path("dist")) {
        let m = std::fs::symlink_metadata(&entry).unwrap();
        assert_eq!(m.uid(), uid, "{} is owned by uid {}, not the invoking user {uid}", entry.display(), m.uid());
    }
    // pip's and uv's caches (and the uv binary fetched) are the user's too, so the next
    // build can reuse them without sudo.
    for cache in ["pip-cache", "uv-cache", ".cache"] {
        assert!(home.join(cache).is_dir(), "no {cache} in the user's home");
        for entry in common::walk(&home.join(cache)) {
            assert_eq!(std::fs::symlink_metadata(&entry).unwrap().uid(), uid, "{}", entry.display());
        }
    }
}

fn unsafe_getuid() -> u32 {
    extern "C" {
        fn getuid() -> u32;
    }
    // SAFETY: getuid has no preconditions.
    unsafe { getuid() }
}

#[test]
fn safe_slimming_removes_what_it_claims_and_keeps_imports_and_metadata_working() {
    let env = require_docker!("slimming");
    let f = Fixture::new(&env, &[("np", "numpy==2.3.5\n"), ("npfull", "numpy==2.3.5\n")]);
    f.write("layers/npfull/layer.toml", "slim = \"none\"\n");
    let run = f.run(&["layer", "np", "npfull", "--json"]).ok();
    let out = run.json();
    let (safe, none) = (&out[0], &out[1]);
    assert_eq!(safe["layer"], "np");
    let removed: u64 = safe["slim"]["removed"].as_array().unwrap().iter().map(|r| r["bytes"].as_u64().unwrap()).sum();
    let tests_rule = safe["slim"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"].as_str().unwrap().starts_with("test suites"))
        .unwrap();
    assert!(tests_rule["bytes"].as_u64().unwrap() > 1_000_000, "numpy ships MBs of tests: {tests_rule}");
    assert_eq!(
        none["slim"]["removed"].as_array().unwrap().iter().map(|r| r["bytes"].as_u64().unwrap()).sum::<u64>(),
        0
    );
    // What the report says was removed is exactly the difference between the two trees.
    assert_eq!(none["unzipped_bytes"].as_u64().unwrap() - safe["unzipped_bytes"].as_u64().unwrap(), removed);

    let names = zip_names(&f.path("dist/np/np-py313-x86_64.zip"));
    assert!(
        !names.iter().any(|n| n.contains("/tests/") || n.ends_with(".pyc") || n.contains("__pycache__")),
        "tests or caches left"
    );
    assert!(!names.iter().any(|n| n.ends_with(".dist-info/RECORD") || n.ends_with(".dist-info/INSTALLER")));
    assert!(names.iter().any(|n| n.ends_with(".dist-info/METADATA")));

    // Imports and importlib.metadata work from the slimmed layer, unpacked as Lambda does.
    let tree = tempfile::tempdir().unwrap();
    unzip(&f.path("dist/np/np-py313-x86_64.zip"), tree.path());
    let out = python_in_image(
        &env.image,
        tree.path(),
        "import numpy, importlib.metadata as m; assert numpy.__file__.startswith('/opt/python/'), numpy.__file__; print(m.version('numpy'), int(numpy.arange(5).sum()))",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "2.3.5 10");
}

#[test]
fn input_errors_are_one_line_and_name_what_to_fix() {
    let env = require_docker!("input_errors");
    let f = Fixture::new(&env, &[("good", "six==1.16.0\n"), ("empty", "# nothing yet\n")]);
    std::fs::create_dir_all(f.path("layers/noreq")).unwrap();
    f.run(&["layer", "nope"]).fails_with(&["unknown layer `nope`", "cargo xtask new nope"]);
    f.run(&["layer", "../etc"]).fails_with(&["invalid layer name `../etc`"]);
    f.run(&["layer", "noreq"]).fails_with(&["layers/noreq/requirements.txt"]);
    f.run(&["layer", "empty"]).fails_with(&["layers/empty/requirements.txt lists no package"]);
    f.write("layers/good/layer.toml", "description = \"x\"\nruntime = [\"python3.12\"]\n");
    f.run(&["layer", "good"]).fails_with(&["layers/good/layer.toml:2", "unknown field `runtime`"]);
    f.write("layers/good/layer.toml", "runtimes = [\"python3.9\"]\n");
    f.run(&["layer", "good"]).fails_with(&["unknown runtime `python3.9`", "python3.10"]);
    f.write("layers/good/layer.toml", "architectures = [\"amd64\"]\n");
    f.run(&["layer", "good"]).fails_with(&["unknown architecture `amd64`", "x86_64, arm64"]);
    std::fs::remove_file(f.path("layers/good/layer.toml")).unwrap();
    let typo = std::fs::read_to_string(f.path("layers.toml")).unwrap().replace("license =", "licence =");
    f.write("layers.toml", &typo);
    f.run(&["layer", "good"]).fails_with(&["layers.toml", "unknown field `licence`"]);
    for e in ["dist/good", "dist/empty"] {
        assert!(!f.path(e).exists(), "{e} must not be written");
    }
}

#[test]
fn docker_problems_are_reported_clearly() {
    let env = require_docker!("docker_problems");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    let mut c = f.cmd(&["layer", "six"]);
    c.env("DOCKER", "/nonexistent/docker");
    common::Run::from(c.output().unwrap(), &["layer"]).fails_with(&["docker CLI not found"]);
    let mut c = f.cmd(&["layer", "six"]);
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    common::Run::from(c.output().unwrap(), &["layer"]).fails_with(&["docker daemon not reachable", "start Docker"]);
    f.run(&["layer", "six", "--image", "127.0.0.1:1/no/such-image:1"])
        .fails_with(&["build image `127.0.0.1:1/no/such-image:1` is not present and cannot be pulled", "--image"]);
    assert!(!f.path("dist/six/six-py313-x86_64.zip").exists());
}

#[test]
fn pip_failure_shows_pips_own_words_and_other_layers_still_build() {
    let env = require_docker!("pip_failure");
    let f = Fixture::new(&env, &[("bad", "xtask-no-such-package-anywhere==1.0.0\n"), ("good", "six==1.16.0\n")]);
    let run = f.run(&["layer", "--all", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("pip install for bad python3.13 x86_64"), "{}", run.stderr);
    assert!(
        run.stderr.contains("No matching distribution")
            || run.stderr.contains("Could not find a version")
            || run.stderr.contains("was not found in the package registry"),
        "the installer's own message should be shown: {}",
        run.stderr
    );
    let out = run.json();
    assert_eq!(out[0]["status"], "failed");
    assert_eq!(out[1]["status"], "built");
    assert!(!f.path("dist/bad/bad-py313-x86_64.zip").exists());
    assert!(f.path("dist/good/good-py313-x86_64.zip").exists());
}

#[test]
fn unpinned_requirements_warn() {
    let env = require_docker!("unpinned_warn");
    let f = Fixture::new(&env, &[("six", "six\n")]);
    let run = f.run(&["layer", "six"]).ok();
    assert!(run.stderr.contains("`six` is not pinned with `==`"), "{}", run.stderr);
}

#[test]
fn dist_not_writable_is_an_error() {
    let env = require_docker!("dist_not_writable");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    f.write("dist", "a file where the dist folder should be");
    f.run(&["layer", "six"]).fails_with(&["dist/ is not writable"]);
}

#[test]
fn size_limits_over_250_mib_fails_naming_the_package_and_over_50_mib_notes_s3() {
    let env = require_docker!("size_limits");
    let f = Fixture::new(&env, &[]);
    std::fs::create_dir_all(f.path("layers/huge")).unwrap();
    std::fs::create_dir_all(f.path("layers/big")).unwrap();
    // Local wheels kept next to requirements.txt are installed from the layer folder.
    let huge = write_data_wheel(&f.path("layers/huge"), "hugepkg", 260, 1 << 20, 0);
    f.write("layers/huge/requirements.txt", &format!("./{huge}\n"));
    let big = write_data_wheel(&f.path("layers/big"), "bigpkg", 60, 1 << 20, 0);
    f.write("layers/big/requirements.txt", &format!("./{big}\n"));

    f.run(&["layer", "huge"]).fails_with(&["over Lambda's limit of 250 MiB", "hugepkg 260.0 MiB"]);
    assert!(!f.path("dist/huge/huge-py313-x86_64.zip").exists());

    let run = f.run(&["layer", "big", "--json"]).ok();
    assert!(run.stderr.contains("over the 50 MiB direct-upload limit"), "{}", run.stderr);
    assert!(run.json()[0]["notes"][0].as_str().unwrap().contains("S3"));
}

#[test]
fn ctrl_c_leaves_no_zip_no_temp_folder_and_no_container() {
    let env = require_docker!("ctrl_c");
    let f = Fixture::new(&env, &[("np", "numpy==2.3.5\npandas==2.3.3\n")]);
    let mut child = f.cmd(&["layer", "np"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let name_prefix = format!("xtask-build-{}-", child.id());
    let started = std::time::Instant::now();
    loop {
        let ps = Command::new("docker").args(["ps", "--format", "{{.Names}}"]).output().unwrap();
        if String::from_utf8_lossy(&ps.stdout).lines().any(|l| l.starts_with(&name_prefix)) {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "the build container never started");
        assert!(child.try_wait().unwrap().is_none(), "the build ended before it could be interrupted");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!f.path("dist/np/np-py313-x86_64.zip").exists());
    let leftovers: Vec<_> = std::fs::read_dir(f.path("dist/.work")).unwrap().collect();
    assert!(leftovers.is_empty(), "temporary build folders left: {leftovers:?}");
    let ps = Command::new("docker").args(["ps", "-a", "--format", "{{.Names}}"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).lines().any(|l| l.starts_with(&name_prefix)),
        "the build container is still there"
    );
}

#[test]
fn new_scaffolds_a_layer_and_list_shows_whether_dist_is_current() {
    let env = require_docker!("new_and_list");
    let f = Fixture::new(&env, &[]);
    f.run(&["new", "mylayer", "six==1.16.0"]).ok();
    assert_eq!(
        std::fs::read_to_string(f.path("layers/mylayer/requirements.in")).unwrap().lines().last(),
        Some("six==1.16.0")
    );
    let locked = std::fs::read_to_string(f.path("layers/mylayer/requirements.txt")).unwrap();
    assert!(locked.contains("\nsix==1.16.0 \\\n    --hash=sha256:"), "{locked}");
    f.run(&["new", "mylayer"]).fails_with(&["already exists"]);
    f.run(&["new", "bad/name"]).fails_with(&["invalid layer name"]);
    f.run(&["new", "loose", "six>=1,,"]).fails_with(&["is not a requirement", "six"]);
    assert!(!f.path("layers/loose").exists());

    let state = |f: &Fixture| f.run(&["list", "--json"]).ok().json()[0]["dist"].as_str().unwrap().to_string();
    assert_eq!(state(&f), "not built");
    f.run(&["layer", "mylayer"]).ok();
    assert_eq!(state(&f), "current");
    f.write("layers/mylayer/requirements.txt", "six==1.17.0\n");
    assert_eq!(state(&f), "stale");
    let list = f.run(&["list", "--json"]).ok().json();
    assert_eq!(list[0]["lock"], "stale", "a requirements.txt edited by hand is not the lock of requirements.in");
}

#[test]
fn aggressive_slimming_strips_shared_libraries_and_numpy_still_imports() {
    let env = require_docker!("aggressive_slimming");
    let f = Fixture::new(&env, &[("np", "numpy==2.3.5\n")]);
    f.write("layers/np/layer.toml", "slim = \"aggressive\"\n");
    let run = f.run(&["layer", "np", "--json"]).ok();
    let r = &run.json()[0];
    let rule = |prefix: &str| {
        r["slim"]["removed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["rule"].as_str().unwrap().starts_with(prefix))
            .cloned()
    };
    let stripped = rule("debug symbols").expect("the strip rule is reported");
    assert!(stripped["files"].as_u64().unwrap() > 0 && stripped["bytes"].as_u64().unwrap() > 0, "{stripped}");
    assert!(rule("type stubs").unwrap()["bytes"].as_u64().unwrap() > 0);
    let tree = tempfile::tempdir().unwrap();
    unzip(&f.path("dist/np/np-py313-x86_64.zip"), tree.path());
    let out = python_in_image(&env.image, tree.path(), "import numpy; print(numpy.linalg.inv(numpy.eye(2)).sum())");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2.0");
}

#[test]
fn an_image_whose_python_is_not_the_runtimes_is_refused() {
    let env = require_docker!("image_python_mismatch");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    f.write("layers/six/layer.toml", "runtimes = [\"python3.12\"]\n");
    f.run(&["layer", "six"]).fails_with(&["runs Python 3.13 but the target is python3.12"]);
    assert!(!f.path("dist/six/six-py312-x86_64.zip").exists());
}
