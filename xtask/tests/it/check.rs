//! `cargo xtask check` and the pip builder end to end: real builds (docker and host pip),
//! real ELF files, the real Python of the test image standing in for the runtime image.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{zip_names, Fixture, Run};

const NUMPY: &str = "numpy==2.3.5\n";
const PANDAS: &str = "pandas==2.3.3\npython-dateutil==2.9.0.post0\npytz==2025.2\ntzdata==2025.2\nsix==1.17.0\n";

fn unit<'a>(run: &'a Run, layer: &str, arch: &str) -> &'a serde_json::Value {
    let all = Box::leak(Box::new(run.json()));
    all.iter()
        .find(|u| u["layer"] == layer && u["arch"] == arch)
        .unwrap_or_else(|| panic!("no {layer} {arch} in\n{}", run.stdout))
}

fn findings(u: &serde_json::Value, check: &str) -> Vec<String> {
    u["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .map(|f| format!("{}: {}", f["subject"].as_str().unwrap(), f["message"].as_str().unwrap()))
        .collect()
}

#[test]
fn pip_builder_builds_both_architectures_and_the_abi_audit_catches_the_wrong_one() {
    let env = require_docker!("pip_builder_matrix");
    let f = Fixture::new(&env, &[("pure", "six==1.16.0\n"), ("compiled", "markupsafe==3.0.2\n")]);
    for l in ["pure", "compiled"] {
        f.write(&format!("layers/{l}/layer.toml"), "builder = \"pip\"\narchitectures = [\"x86_64\", \"arm64\"]\n");
    }
    // The pip builder needs no docker at all.
    let mut c = f.cmd(&["layer", "--all", "--json"]);
    c.env("DOCKER", "/nonexistent/docker");
    let built = Run::from(c.output().unwrap(), &["layer", "--all"]).ok();
    assert_eq!(built.json().len(), 4, "{}", built.stdout);
    let arm = zip_names(&f.path("dist/compiled/compiled-py313-arm64.zip"));
    assert!(arm.iter().any(|n| n.ends_with("aarch64-linux-gnu.so")), "{arm:?}");
    let x86 = zip_names(&f.path("dist/compiled/compiled-py313-x86_64.zip"));
    assert!(x86.iter().any(|n| n.ends_with("x86_64-linux-gnu.so")), "{x86:?}");

    let run = f.run(&["check", "--all", "--json"]).ok();
    for (layer, arch) in [("pure", "x86_64"), ("pure", "arm64"), ("compiled", "x86_64"), ("compiled", "arm64")] {
        let u = unit(&run, layer, arch);
        // Without arm64 emulation (or an arm64 variant of the local image) the arm64 import
        // check cannot run: skipped with its reason, not passed.
        if arch == "arm64" && u["status"] == "skipped" {
            assert!(!u["reason"].as_str().unwrap_or_default().is_empty(), "{layer} {arch}: {u}");
            assert!(u["import_check"].as_str().unwrap().starts_with("not run"), "{layer} {arch}: {u}");
            continue;
        }
        assert_eq!(u["status"], "pass", "{layer} {arch}: {u}");
    }
    // The x86_64 units are imported by the (stand-in) runtime image.
    assert!(unit(&run, "compiled", "x86_64")["import_check"].as_str().unwrap().starts_with("in "), "{}", run.stderr);

    // The arm64 zip checked as an x86_64 layer: its extension module is for the other arch.
    let wrong = f.run(&[
        "check",
        "--zip",
        f.path("dist/compiled/compiled-py313-arm64.zip").to_str().unwrap(),
        "--runtime",
        "python3.13",
        "--arch",
        "x86_64",
        "--json",
    ]);
    assert_eq!(wrong.code, Some(1), "{}", wrong.stderr);
    let abi = findings(&wrong.json()[0], "abi");
    assert!(abi.iter().any(|m| m.contains(".so") && m.contains("built for arm64")), "{abi:?}");
    assert!(abi.iter().any(|m| m.contains("WHEEL") && m.contains("aarch64")), "{abi:?}");
}

#[test]
fn pip_builder_names_a_package_without_a_wheel_and_suggests_docker() {
    let env = require_docker!("pip_builder_no_wheel");
    // An sdist-only release: no wheel at all.
    let f = Fixture::new(&env, &[("old", "pyyaml==5.3.1\n")]);
    f.write("layers/old/layer.toml", "builder = \"pip\"\n");
    f.run(&["layer", "old"]).fails_with(&["no wheel of `pyyaml==5.3.1`", "builder = \"docker\""]);
}

#[test]
fn docker_and_pip_builders_give_the_same_packages_and_files() {
    let env = require_docker!("builders_agree");
    let f = Fixture::new(
        &env,
        &[
            ("viadocker", "six==1.16.0\nidna==3.10\nmarkupsafe==3.0.2\n"),
            ("viapip", "six==1.16.0\nidna==3.10\nmarkupsafe==3.0.2\n"),
        ],
    );
    f.write("layers/viapip/layer.toml", "builder = \"pip\"\n");
    let run = f.run(&["layer", "--all", "--json"]).ok();
    let out = run.json();
    assert_eq!(out[0]["packages"], out[1]["packages"]);
    let files = |l: &str| -> Vec<String> {
        zip_names(&f.path(&format!("dist/{l}/{l}-py313-x86_64.zip")))
            .into_iter()
            .filter(|n| !n.contains(".dist-info/"))
            .collect()
    };
    assert_eq!(files("viadocker"), files("viapip"));
}

fn zip_dir(src: &Path, dest: &Path) {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::fs::File::create(dest).unwrap());
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    for e in common::walk(src) {
        let rel = e.strip_prefix(src).unwrap().to_string_lossy().into_owned();
        if e.is_file() {
            z.start_file(rel, opts).unwrap();
            z.write_all(&std::fs::read(&e).unwrap()).unwrap();
        }
    }
    z.finish().unwrap();
}

#[test]
fn a_library_needing_a_newer_glibc_fails_the_audit_for_python311() {
    let env = require_docker!("glibc_audit");
    let f = Fixture::new(&env, &[]);
    // The test image's own Python binary, built against Debian trixie's glibc: wherever
    // the image keeps it (the `python3` on its PATH: /var/lang/bin in Lambda's layout).
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("python/vendored")).unwrap();
    let out = Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "sh", &env.image, "-c", "cat \"$(command -v python3)\""])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.starts_with(b"\x7fELF"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(tree.path().join("python/vendored/libhelper.so"), &out.stdout).unwrap();
    let zip = f.path("glibc.zip");
    zip_dir(tree.path(), &zip);
    let run =
        f.run(&["check", "--zip", zip.to_str().unwrap(), "--runtime", "python3.11", "--arch", "x86_64", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let abi = findings(&run.json()[0], "abi");
    assert!(
        abi.iter().any(|m| m.contains("python/vendored/libhelper.so")
            && m.contains("needs GLIBC_2.")
            && m.contains("glibc 2.26")),
        "{abi:?}"
    );
}

#[test]
fn a_missing_dependency_fails_the_closure_naming_it_and_requires_fixes_it() {
    let env = require_docker!("closure");
    let f = Fixture::new(&env, &[("numpy", NUMPY), ("pandas", PANDAS)]);
    let run = f.run(&["check", "pandas", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let u = &run.json()[0];
    let closure = findings(u, "closure");
    assert!(closure.iter().any(|m| m.contains("numpy>=1.26.0") && m.contains("requires = [\"numpy\"]")), "{closure:?}");
    // Without numpy attached, importing pandas fails too, with the exception text.
    let imports = findings(u, "import");
    assert!(imports.iter().any(|m| m.contains("import pandas") && m.contains("numpy")), "{imports:?}");

    f.write("layers/pandas/layer.toml", "requires = [\"numpy\"]\n");
    let run = f.run(&["check", "pandas", "--json"]).ok();
    let u = &run.json()[0];
    assert_eq!(u["status"], "pass", "{u}");
    assert!(u["imports_passed"].as_u64().unwrap() >= 6, "{u}");
}

#[test]
fn the_import_check_reports_the_exception_of_a_module_that_raises() {
    let env = require_docker!("import_raises");
    let f = Fixture::new(&env, &[]);
    std::fs::create_dir_all(f.path("layers/boom")).unwrap();
    let wheel = "boom-1.0-py3-none-any.whl";
    {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::fs::File::create(f.path(&format!("layers/boom/{wheel}"))).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        z.start_file("boom/__init__.py", o).unwrap();
        z.write_all(b"raise RuntimeError('boom at import time')\n").unwrap();
        z.start_file("boom-1.0.dist-info/METADATA", o).unwrap();
        z.write_all(b"Metadata-Version: 2.1\nName: boom\nVersion: 1.0\n").unwrap();
        z.start_file("boom-1.0.dist-info/WHEEL", o).unwrap();
        z.write_all(b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n").unwrap();
        z.start_file("boom-1.0.dist-info/RECORD", o).unwrap();
        z.write_all(b"boom/__init__.py,,\nboom-1.0.dist-info/METADATA,,\nboom-1.0.dist-info/WHEEL,,\nboom-1.0.dist-info/RECORD,,\n").unwrap();
        z.finish().unwrap();
    }
    f.write("layers/boom/requirements.txt", &format!("./{wheel}\n"));
    f.write("layers/good/requirements.txt", "six==1.16.0\n");
    let run = f.run(&["check", "boom", "good", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let boom = unit(&run, "boom", "x86_64");
    assert!(findings(boom, "import").iter().any(|m| m.contains("RuntimeError: boom at import time")), "{boom}");
    assert_eq!(unit(&run, "good", "x86_64")["status"], "pass");
}

#[test]
fn without_docker_the_import_check_uses_a_host_python_of_the_same_version() {
    let env = require_docker!("host_python_check");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    f.write("layers/six/layer.toml", "builder = \"pip\"\nruntimes = [\"python3.11\"]\n");
    let mut c = f.cmd(&["check", "six", "--json"]);
    c.env("DOCKER", "/nonexistent/docker");
    let run = Run::from(c.output().unwrap(), &["check"]).ok();
    let u = &run.json()[0];
    let host_has_311 = Command::new("python3.11").arg("--version").output().is_ok_and(|o| o.status.success());
    if host_has_311 {
        assert_eq!(u["import_check"], "in host python3.11", "{u}");
        assert_eq!(u["imports_passed"], 2, "{u}");
    } else {
        assert!(u["import_check"].as_str().unwrap().starts_with("not run"), "{u}");
    }
}
