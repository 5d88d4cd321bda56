//! Integration test of docs/json.md: the `--json` output of every command that works on
//! units, successes and failures alike, is valid against docs/unit-result.schema.json
//! (checked with Python's `jsonschema`, the reference validator, from the emulator's
//! virtualenv that `scripts/test.sh` sets up).

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn schema_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("docs/unit-result.schema.json")
}

/// Validates every object against `#/$defs/<def>` of the schema; panics with the
/// validator's words and the object when one is invalid.
fn validate(def: &str, objects: &[Value]) {
    let python = std::env::var("XTASK_JSONSCHEMA_PYTHON").expect("XTASK_JSONSCHEMA_PYTHON (set by scripts/test.sh)");
    let script = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
definition = dict(schema["$defs"][sys.argv[2]])
definition["$defs"] = schema["$defs"]
validator = jsonschema.Draft202012Validator(definition)
bad = 0
for line in sys.stdin:
    obj = json.loads(line)
    for e in validator.iter_errors(obj):
        bad += 1
        print(f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}\n  in {json.dumps(obj)[:400]}")
sys.exit(1 if bad else 0)
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .arg(schema_path())
        .arg(def)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for o in objects {
            writeln!(stdin, "{o}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "output of `{def}` is not valid against docs/unit-result.schema.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_units_json_result_and_error_has_the_documented_shape() {
    let env = require_emulator!("every_units_json_result_and_error_has_the_documented_shape");
    let f = common::Fixture::new(&env, &[("six", "six==1.16.0\n"), ("broken", "six==1.16.0\n")]);
    f.prefix_layer_names("json");
    // A layer that cannot be planned, and one whose build fails.
    f.write("layers/broken/layer.toml", "slim = \"tiny\"\n");
    f.write("layers/nowheel/requirements.txt", "this-package-does-not-exist-xtask==0.0.1\n");

    let layer = f.run(&["layer", "--all", "--json"]).json();
    let statuses: Vec<&str> = layer.iter().map(|v| v["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "failed", "built"], "{layer:?}");
    validate("layer", &layer);
    let again = f.run(&["layer", "six", "--json"]).ok().json();
    assert_eq!(again[0]["status"], "up-to-date");
    validate("layer", &again);

    let check = f.run(&["check", "six", "broken", "--json"]).json();
    assert!(check.iter().any(|v| v["status"] == "pass") && check.iter().any(|v| v["status"] == "failed"), "{check:?}");
    validate("check", &check);

    f.run(&["bootstrap"]).ok();
    let publish = f.run(&["publish", "six", "broken", "--json"]).json();
    assert!(
        publish.iter().any(|v| v["status"] == "published") && publish.iter().any(|v| v["status"] == "failed"),
        "{publish:?}"
    );
    validate("publish", &publish);
    let status = f.run(&["status", "six", "--json"]).ok().json();
    assert_eq!(status[0]["status"], "unchanged");
    validate("status", &status);

    // The validator is not blind: an error object without `error` is refused.
    let result = std::panic::catch_unwind(|| {
        validate("layer", &[serde_json::json!({"layer": "six", "runtime": null, "arch": null, "status": "failed"})])
    });
    assert!(result.is_err(), "the schema accepted a failed unit without an error");
}
