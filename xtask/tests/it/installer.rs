//! The installer (`installer = "uv" | "pip"`) end to end: the real binary, the real docker
//! engine, the local build image, packages from PyPI. uv and pip make the same zips, a
//! build never changes uv's cache, the choice is honoured and validated, and pip takes
//! over (with one warning) when uv cannot be had.

use crate::common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use common::Fixture;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry of a zip: name -> sha256 of its bytes.
fn zip_entries(path: &Path) -> BTreeMap<String, String> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut e = z.by_index(i).unwrap();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (e.name().unwrap().to_string(), hex(&bytes))
        })
        .collect()
}

/// Every file under `dir` (symlinks as their target): relative path -> sha256.
fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&p).unwrap().display()));
            } else {
                out.insert(rel, hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn report(f: &Fixture, layer: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(f.path(&format!("dist/{layer}/{layer}-py313-x86_64.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The numpy lock of the repo's example layer (hashed: installed with --require-hashes).
fn numpy_lock() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../layers/numpy/requirements.txt")).unwrap()
}

/// A built layer: its zip's entries (name -> sha256) and its report.
type Built = (BTreeMap<String, String>, serde_json::Value);

/// Builds `layers` (forced) and returns each one's zip entries and report.
fn build(f: &Fixture, layers: &[&str]) -> (String, Vec<Built>) {
    let mut args = vec!["-v", "layer", "--force"];
    args.extend(layers);
    let run = f.run(&args).ok();
    let out = layers
        .iter()
        .map(|l| (zip_entries(&f.path(&format!("dist/{l}/{l}-py313-x86_64.zip"))), report(f, l)))
        .collect();
    (run.stderr, out)
}

/// Whether `-v` output shows pip run in the build image: `docker exec ... <container> pip`
/// in the run's shared container, or `docker run ... --entrypoint pip` in one of its own.
fn runs_pip(stderr: &str) -> bool {
    stderr.contains("--entrypoint pip")
        || stderr.lines().any(|l| {
            l.contains("docker exec")
                && l.split_whitespace().skip_while(|w| !w.starts_with("xtask-build-")).nth(1) == Some("pip")
        })
}

#[test]
fn uv_and_pip_make_identical_zips_for_a_compiled_and_a_pure_python_layer() {
    let env = require_docker!("uv_and_pip_identical");
    let f = Fixture::new(&env, &[("np", &numpy_lock()), ("pure", "six==1.17.0\nidna==3.10\n")]);
    let (stderr, uv) = build(&f, &["np", "pure"]);
    assert!(stderr.contains("/xtask-uv/uv") && !runs_pip(&stderr), "uv should install:\n{stderr}");
    assert!(!stderr.contains("warning:"), "{stderr}");
    for l in ["np", "pure"] {
        f.write(&format!("layers/{l}/layer.toml"), "installer = \"pip\"\n");
    }
    let (stderr, pip) = build(&f, &["np", "pure"]);
    assert!(runs_pip(&stderr) && !stderr.contains("/xtask-uv/uv"), "`installer = \"pip\"`:\n{stderr}");
    for ((uv_zip, uv_report), (pip_zip, pip_report)) in uv.iter().zip(&pip) {
        let layer = &uv_report["layer"];
        assert!(uv_zip.keys().any(|n| n.ends_with(".dist-info/METADATA")), "{layer}: {uv_zip:?}");
        assert_eq!(uv_zip, pip_zip, "{layer}: uv and pip zips hold different files or bytes");
        // The same bytes, so the same zip, and the same fingerprint: nothing is republished.
        assert_eq!(uv_report["sha256"], pip_report["sha256"], "{layer}");
        assert_eq!(uv_report["fingerprint"], pip_report["fingerprint"], "{layer}");
        assert_eq!(uv_report["packages"], pip_report["packages"], "{layer}");
        // Both record the installed archives' sha256 (uv: from the hashed lock).
        let hashes = |r: &serde_json::Value| -> Vec<serde_json::Value> {
            r["package_sizes"].as_array().unwrap().iter().map(|p| p["sha256"].clone()).collect()
        };
        // The SBOM names the same archives: uv's from the lock (np) or from its cache (pure,
        // unhashed), pip's from its install report.
        assert_eq!(hashes(uv_report), hashes(pip_report), "{layer}");
        assert!(hashes(uv_report).iter().all(|h| h.as_str().is_some_and(|h| h.len() == 64)), "{uv_report}");
        if layer == "np" {
            assert_eq!(hashes(uv_report), ["11e06aa0af8c0f05104d56450d6093ee639e15f24ecf62d417329d06e522e017"]);
        }
    }
}

#[test]
fn kept_whole_uv_and_pip_differ_only_in_install_records_and_script_launchers() {
    let env = require_docker!("uv_and_pip_slim_none");
    let f = Fixture::new(&env, &[("pure", "six==1.17.0\nidna==3.10\n")]);
    f.write("layers/pure/layer.toml", "slim = \"none\"\n");
    let (_, uv) = build(&f, &["pure"]);
    f.write("layers/pure/layer.toml", "slim = \"none\"\ninstaller = \"pip\"\n");
    let (_, pip) = build(&f, &["pure"]);
    let ((uv_zip, uv_report), (pip_zip, pip_report)) = (&uv[0], &pip[0]);
    assert_eq!(uv_zip.keys().collect::<Vec<_>>(), pip_zip.keys().collect::<Vec<_>>(), "the same files");
    let differ: Vec<&String> = uv_zip.keys().filter(|n| uv_zip[*n] != pip_zip[*n]).collect();
    assert!(!differ.is_empty());
    for n in &differ {
        assert!(
            n.ends_with(".dist-info/INSTALLER") || n.ends_with(".dist-info/RECORD") || n.starts_with("python/bin/"),
            "{n} differs between uv and pip"
        );
    }
    // So a layer kept whole is fingerprinted with its installer (uv); pip's is unchanged.
    assert_ne!(uv_report["fingerprint"], pip_report["fingerprint"]);
}

/// Builds numpy with `builder`, slimmed `safe` (fills uv's cache, strips nothing), again
/// (uv hard-links its cached files into the output, and slimming removes some of them),
/// then `aggressive` (strips the output's shared libraries: uv must copy), and compares
/// every file of uv's cache before and after the last two builds.
fn builds_leave_uv_cache_unchanged(env: &common::TestEnv, builder: &str) {
    let f = Fixture::new(env, &[("np", &numpy_lock())]);
    f.write("layers/np/layer.toml", &format!("builder = \"{builder}\"\n"));
    let cache = tempfile::Builder::new().prefix("xtask-it-uv-cache-").tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = f.cmd(args);
        c.env("XTASK_UV_CACHE", cache.path());
        common::Run::from(c.output().unwrap(), args).ok()
    };
    let unchanged = |before: &std::collections::BTreeMap<String, String>, when: &str| {
        let after = tree_hashes(cache.path());
        // Every file, but uv's copies of index pages (`simple-v*/`), which uv itself
        // refreshes whenever it asks the index again; the unpacked wheels the build links
        // or copies from are in `archive-v0/`.
        let changed: Vec<&String> =
            before.keys().filter(|k| !k.starts_with("simple-v") && after.get(*k) != before.get(*k)).collect();
        assert!(changed.is_empty(), "{when} changed files of uv's cache: {changed:?}");
    };
    // Fill the cache.
    run(&["layer", "np"]);
    let before = tree_hashes(cache.path());
    assert!(before.keys().any(|k| k.starts_with("archive-v0/") && k.ends_with(".so")), "{}", before.len());
    // A safe build links, removes what slimming removes, zips, and removes the rest.
    let linked = run(&["-v", "layer", "np", "--force"]);
    assert!(linked.stderr.contains("--link-mode hardlink"), "{}", linked.stderr);
    unchanged(&before, "a hard-linked build");
    f.write("layers/np/layer.toml", &format!("builder = \"{builder}\"\nslim = \"aggressive\"\n"));
    let out = run(&["-v", "layer", "np", "--json"]);
    assert!(out.stderr.contains("--link-mode copy") && !out.stderr.contains("--link-mode hardlink"), "{}", out.stderr);
    let r = &out.json()[0];
    let stripped = r["slim"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"].as_str().unwrap().starts_with("debug symbols"))
        .cloned()
        .unwrap();
    assert!(stripped["files"].as_u64().unwrap() > 0, "strip ran on the output: {stripped}");
    unchanged(&before, "a stripped build");
    // Nothing of either build is left in the cache's staging folder.
    let staging = cache.path().join(".xtask-staging");
    let left: Vec<_> = std::fs::read_dir(&staging).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", staging.display());
}

#[test]
fn linked_and_stripped_builds_in_the_image_leave_every_file_of_the_uv_cache_unchanged() {
    let env = require_docker!("uv_cache_unchanged_docker");
    builds_leave_uv_cache_unchanged(&env, "docker");
}

#[test]
fn linked_and_stripped_builds_on_the_host_leave_every_file_of_the_uv_cache_unchanged() {
    let env = require_docker!("uv_cache_unchanged_host");
    builds_leave_uv_cache_unchanged(&env, "pip");
}

#[test]
fn a_bad_installer_is_one_line_naming_the_file_and_line() {
    let env = require_docker!("bad_installer");
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    f.write("layers/six/layer.toml", "slim = \"safe\"\ninstaller = \"conda\"\n");
    let run = f
        .run(&["layer", "six"])
        .fails_with(&["layers/six/layer.toml:2", "`installer` must be one of \"uv\", \"pip\", not \"conda\""]);
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", run.stderr);
}

#[test]
fn without_uv_pip_installs_after_one_warning() {
    let env = require_docker!("uv_fallback");
    let f = Fixture::new(&env, &[("a", "six==1.17.0\n"), ("b", "idna==3.10\n")]);
    let args = ["-v", "layer", "a", "b"];
    let mut c = f.cmd(&args);
    c.env("XTASK_UV_STATIC", f.path("no-such-uv"));
    let run = common::Run::from(c.output().unwrap(), &args).ok();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("uv 0.13.9 is not available") && warnings[0].contains("installing with pip"),
        "{warnings:?}"
    );
    assert_eq!(run.stderr.lines().filter(|l| runs_pip(l)).count(), 2, "{}", run.stderr);
    assert!(f.path("dist/a/a-py313-x86_64.zip").is_file() && f.path("dist/b/b-py313-x86_64.zip").is_file());
}

#[test]
fn both_installers_refuse_an_image_whose_python_is_not_the_runtimes() {
    let env = require_docker!("installer_python_mismatch");
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    for installer in ["uv", "pip"] {
        f.write("layers/six/layer.toml", &format!("runtimes = [\"python3.12\"]\ninstaller = \"{installer}\"\n"));
        f.run(&["layer", "six"]).fails_with(&["build image", "runs Python 3.13 but the target is python3.12"]);
        assert!(!f.path("dist/six/six-py312-x86_64.zip").exists(), "{installer}");
    }
}

/// A uv cache on another filesystem than `dist/` (here a tmpfs) cannot be linked from:
/// uv copies, and the zip is the one a linked build makes.
#[test]
fn a_uv_cache_on_another_filesystem_is_copied_from_and_gives_the_same_zip() {
    use std::os::unix::fs::MetadataExt;
    let env = require_docker!("a_uv_cache_on_another_filesystem_is_copied_from_and_gives_the_same_zip");
    let f = Fixture::new(&env, &[("pure", "six==1.17.0\nidna==3.10\n")]);
    let other = tempfile::Builder::new().prefix("xtask-it-uv-cache-").tempdir_in("/dev/shm").unwrap();
    let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
    assert_ne!(dev(other.path()), dev(f.root()), "/dev/shm is another filesystem here");
    let linked = f.run(&["-v", "layer", "pure", "--force"]).ok();
    assert!(linked.stderr.contains("--link-mode hardlink"), "{}", linked.stderr);
    let zip = f.path("dist/pure/pure-py313-x86_64.zip");
    let linked_zip = std::fs::read(&zip).unwrap();
    let mut c = f.cmd(&["-v", "layer", "pure", "--force"]);
    c.env("XTASK_UV_CACHE", other.path());
    let copied = common::Run::from(c.output().unwrap(), &["layer"]).ok();
    assert!(copied.stderr.contains("--link-mode copy"), "{}", copied.stderr);
    assert!(std::fs::read(&zip).unwrap() == linked_zip, "the same zip either way");
}
