//! `cargo xtask check --deep` and slimming that adapts: a layer from a local wheel whose
//! module imports its own test suite (kept, with a note, and clean), a layer whose
//! `exclude` removes a module another imports (reported with the pattern), and the
//! example layers numpy + pandas (every module, before and after slimming).

use crate::common;

use std::io::Write;
use std::path::Path;

use common::{zip_names, Fixture};

/// Writes `{name}-1.0-py3-none-any.whl` into `dir` holding `files` (path, text) and
/// the dist-info; returns its file name.
fn wheel(dir: &Path, name: &str, files: &[(&str, &str)]) -> String {
    let file = format!("{name}-1.0-py3-none-any.whl");
    let mut z = zip::ZipWriter::new(std::fs::File::create(dir.join(&file)).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    let di = format!("{name}-1.0.dist-info");
    let mut record = String::new();
    for (path, text) in files {
        z.start_file(*path, opts).unwrap();
        z.write_all(text.as_bytes()).unwrap();
        record.push_str(&format!("{path},,\n"));
    }
    z.start_file(format!("{di}/METADATA"), opts).unwrap();
    write!(z, "Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n").unwrap();
    z.start_file(format!("{di}/WHEEL"), opts).unwrap();
    write!(z, "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n").unwrap();
    z.start_file(format!("{di}/RECORD"), opts).unwrap();
    write!(z, "{record}{di}/METADATA,,\n{di}/WHEEL,,\n{di}/RECORD,,\n").unwrap();
    z.finish().unwrap();
    file
}

fn deep_unit(run: &common::Run) -> serde_json::Value {
    run.json().into_iter().find(|u| u.get("deep").is_some()).unwrap_or_else(|| panic!("no deep in\n{}", run.stdout))
}

#[test]
fn a_test_suite_a_module_imports_is_kept_with_a_note_and_deep_is_clean() {
    let env = require_docker!("deep_keeps_imported_tests");
    let f = Fixture::new(&env, &[]);
    std::fs::create_dir_all(f.path("layers/selftest")).unwrap();
    let w = wheel(
        &f.path("layers/selftest"),
        "selftest",
        &[
            ("selftest/__init__.py", ""),
            ("selftest/data.py", "from selftest.tests.values import VALUES\n"),
            ("selftest/tests/__init__.py", ""),
            ("selftest/tests/values.py", "VALUES = [1, 2]\n"),
            ("selftest/tests/test_data.py", "import pytest\n"),
            ("selftest/other/tests/__init__.py", ""),
        ],
    );
    f.write("layers/selftest/requirements.txt", &format!("./{w}\n"));
    let run = f.run(&["layer", "selftest", "--json"]).ok();
    assert!(
        run.stderr.contains("slimming kept selftest/tests")
            && run.stderr.contains("selftest/data.py imports selftest.tests.values"),
        "{}",
        run.stderr
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.path("dist/selftest/selftest-py313-x86_64.json")).unwrap()).unwrap();
    assert_eq!(report["slim"]["kept"][0]["path"], "selftest/tests", "{report}");
    let names = zip_names(&f.zip("selftest"));
    assert!(names.contains(&"python/selftest/tests/values.py".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("python/selftest/other/tests")), "{names:?}");

    let run = f.run(&["check", "--deep", "selftest", "--json"]).ok();
    let u = deep_unit(&run);
    assert_eq!(u["status"], "pass", "{u}");
    // selftest, selftest.data (test suites are not imported).
    assert_eq!((u["deep"]["modules"].as_u64(), u["deep"]["ok"].as_u64()), (Some(2), Some(2)), "{u}");
}

#[test]
fn deep_names_the_exclude_pattern_that_removed_an_imported_module() {
    let env = require_docker!("deep_exclude");
    let f = Fixture::new(&env, &[]);
    std::fs::create_dir_all(f.path("layers/helped")).unwrap();
    let w = wheel(
        &f.path("layers/helped"),
        "helped",
        &[
            ("helped/__init__.py", ""),
            ("helped/api.py", "from helped import helpers\n"),
            ("helped/helpers.py", "X = 1\n"),
        ],
    );
    f.write("layers/helped/requirements.txt", &format!("./{w}\n"));
    f.write("layers/helped/layer.toml", "exclude = [\"helped/help*\"]\n");
    f.run(&["layer", "helped"]).ok();
    let zip = f.zip("helped");
    let before = std::fs::read(&zip).unwrap();
    let run = f.run(&["check", "--deep", "helped", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("deep: import helped.api: imports before slimming, fails after"), "{}", run.stderr);
    let u = deep_unit(&run);
    assert_eq!(u["status"], "fail", "{u}");
    assert_eq!(u["deep"]["broken_by_slimming"], 1, "{u}");
    let f0 = &u["findings"][0];
    assert_eq!((f0["check"].as_str(), f0["subject"].as_str()), (Some("deep"), Some("import helped.api")), "{u}");
    let message = f0["message"].as_str().unwrap();
    assert!(message.contains("cannot import name 'helpers'") && message.contains("`helped/help*`"), "{u}");
    // Only what ships is tried: helped and helped.api.
    assert_eq!(u["deep"]["modules"], 2, "{u}");
    // The check reads the build's record; the zip keeps its bytes.
    assert_eq!(std::fs::read(&zip).unwrap(), before);

    // A record that is gone (swept, or a dist/ from before) is made again by building again.
    std::fs::remove_dir_all(f.path("dist/.work/helped-py313-x86_64.removed")).unwrap();
    let run = f.run(&["check", "--deep", "helped"]);
    assert!(run.code == Some(1) && run.stderr.contains("`helped/help*`"), "{}", run.stderr);
    assert_eq!(std::fs::read(&zip).unwrap(), before, "the rebuild changed the zip");
}

#[test]
fn deep_imports_every_module_of_numpy_and_pandas_and_slimming_broke_none() {
    let env = require_docker!("deep_numpy_pandas");
    let f = Fixture::new(
        &env,
        &[
            ("numpy", "numpy==2.3.5\n"),
            ("pandas", "pandas==2.3.3\npython-dateutil==2.9.0.post0\npytz==2025.2\ntzdata==2025.2\nsix==1.17.0\n"),
        ],
    );
    f.write("layers/pandas/layer.toml", "requires = [\"numpy\"]\n");
    let run = f.run(&["check", "--deep", "numpy", "pandas", "--json"]).ok();
    for u in run.json() {
        assert_eq!(u["status"], "pass", "{u}");
        let d = &u["deep"];
        assert!(d["modules"].as_u64().unwrap() > 150, "{d}");
        assert_eq!(d["broken_by_slimming"], 0, "{d}");
        assert_eq!(
            d["ok"].as_u64().unwrap() + d["broken_upstream"].as_array().unwrap().len() as u64,
            d["modules"].as_u64().unwrap(),
            "{d}"
        );
    }
}
