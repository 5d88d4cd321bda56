//! Integration tests of `cargo xtask stack` (checks, ARN formats, `--merge`) and
//! `cargo xtask prune`: the real binary, real layers built in the local build image, and
//! the S3 + Lambda emulator `scripts/test.sh` starts, inspected through the Lambda SDK.
//!
//! Each test's Lambda layer names start with a prefix of its own (the profiles'
//! `layer_name`), because the emulator is shared by every test and every run.

mod common;

use std::collections::BTreeSet;
use std::io::Read;

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use common::{zip_names, Fixture, TestEnv};
use serde_json::Value;

const NUMPY: &str = "numpy==2.3.5\n";
const PANDAS: &str = "pandas==2.3.3\npython-dateutil==2.9.0.post0\npytz==2025.2\ntzdata==2025.2\nsix==1.17.0\n";
const LIMIT: u64 = 262_144_000;

/// A fixture whose Lambda layer names start with a prefix of its own.
struct Repo {
    f: Fixture,
    prefix: String,
    endpoint: String,
}

fn repo(env: &TestEnv, layers: &[(&str, &str)]) -> Repo {
    let f = Fixture::new(env, layers);
    let prefix = f.prefix_layer_names("s");
    Repo { f, prefix, endpoint: env.endpoint.clone().unwrap() }
}

impl Repo {
    /// Appends `[stacks.NAME]` with `body` to layers.toml.
    fn stack(&self, name: &str, body: &str) {
        let path = self.f.path("layers.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\n[stacks.{name}]\n{body}")).unwrap();
    }

    fn manifest(&self, profile: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.f.path(&format!("published/{profile}.json"))).unwrap())
            .unwrap()
    }

    /// The manifest's ARN of a layer (python3.13 x86_64 us-east-1).
    fn arn(&self, profile: &str, layer: &str) -> String {
        let m = self.manifest(profile);
        let e = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["layer"] == layer)
            .unwrap_or_else(|| panic!("{layer} not in {m:#}"));
        e["layer_version_arn"].as_str().unwrap().to_string()
    }

    fn layer_name(&self, layer: &str) -> String {
        format!("{}-{layer}-py313-x86_64", self.prefix)
    }

    /// The unzipped size of a built layer, from its report in dist/.
    fn unzipped(&self, layer: &str) -> u64 {
        let text = std::fs::read_to_string(self.f.path(&format!("dist/{layer}/{layer}-py313-x86_64.json"))).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["unzipped_bytes"].as_u64().unwrap()
    }

    fn zip(&self, layer: &str) -> std::path::PathBuf {
        self.f.path(&format!("dist/{layer}/{layer}-py313-x86_64.zip"))
    }

    fn emulator(&self) -> Emulator {
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(common::emulator::http_client())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Emulator { rt, lambda: aws_sdk_lambda::Client::from_conf(conf) }
    }
}

/// The emulator seen through the real Lambda SDK client.
struct Emulator {
    rt: tokio::runtime::Runtime,
    lambda: aws_sdk_lambda::Client,
}

impl Emulator {
    /// Every version number of a layer, ascending.
    fn versions(&self, layer_name: &str) -> Vec<i64> {
        let out = self.rt.block_on(self.lambda.list_layer_versions().layer_name(layer_name).send()).unwrap();
        let mut v: Vec<i64> = out.layer_versions().iter().map(|v| v.version()).collect();
        v.sort();
        v
    }
}

/// `262144000` as `262,144,000`, as the checks print byte counts.
fn digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The line of a check (`  FAIL  size     ...`) in a stack's stderr.
fn check_line<'a>(stderr: &'a str, check: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(check) && l.starts_with("  "))
        .unwrap_or_else(|| panic!("no `{check}` check in:\n{stderr}"))
}

fn file_content(zip: &std::path::Path, name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut out = Vec::new();
    z.by_name(name).unwrap_or_else(|_| panic!("no {name} in {}", zip.display())).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn more_than_five_layers_and_an_over_budget_stack_fail_with_the_numbers() {
    let env = require_emulator!("more_than_five_layers_and_an_over_budget_stack_fail_with_the_numbers");
    let layers: Vec<(String, &str)> = (1..=6).map(|i| (format!("l{i}"), "six==1.17.0\n")).collect();
    let refs: Vec<(&str, &str)> = layers.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    let r = repo(&env, &refs);
    r.stack("many", "layers = [\"l1\", \"l2\", \"l3\", \"l4\", \"l5\", \"l6\"]\nruntime = \"python3.13\"\n");
    r.stack("heavy", &format!("layers = [\"l1\"]\nruntime = \"python3.13\"\nfunction_bytes = {LIMIT}\n"));
    r.stack("fits", "layers = [\"l1\"]\nruntime = \"python3.13\"\n");

    let many = r.f.run(&["stack", "many"]);
    assert_eq!(many.code, Some(1), "{}", many.stderr);
    let line = check_line(&many.stderr, "layers");
    assert!(
        line.contains("FAIL")
            && line.contains("6 layers, over Lambda's limit of 5 per function (by 1)")
            && line.contains("--merge many-merged"),
        "{line}"
    );
    assert!(many.stdout.is_empty(), "nothing is published, so no ARNs: {}", many.stdout);

    let heavy = r.f.run(&["stack", "heavy"]);
    assert_eq!(heavy.code, Some(1), "{}", heavy.stderr);
    let six = r.unzipped("l1");
    let line = check_line(&heavy.stderr, "size");
    for needle in [
        "FAIL",
        &format!("({} bytes) of 250 MiB (262,144,000 bytes)", digits(six + LIMIT)),
        &format!("over Lambda's limit by 0.0 MiB ({} bytes)", digits(six)),
    ] {
        assert!(line.contains(needle), "`{needle}` not in: {line}");
    }
    assert!(heavy.stderr.contains(&format!("l1: 0.0 MiB ({} bytes)", digits(six))), "{}", heavy.stderr);

    let fits = r.f.run(&["stack", "fits"]);
    let line = check_line(&fits.stderr, "size");
    let headroom = LIMIT - six - 5 * 1024 * 1024;
    assert!(
        line.starts_with("  pass")
            && line.contains(&format!(
                "headroom {:.1} MiB ({} bytes)",
                headroom as f64 / 1_048_576.0,
                digits(headroom)
            )),
        "{line}"
    );
    for check in ["layers", "closure", "overlap", "targets"] {
        assert!(check_line(&fits.stderr, check).starts_with("  pass"), "{}", fits.stderr);
    }
}

#[test]
fn an_overlap_is_reported_with_the_layer_that_wins() {
    let env = require_emulator!("an_overlap_is_reported_with_the_layer_that_wins");
    let r = repo(&env, &[("old", "six==1.16.0\n"), ("new", "six==1.17.0\n"), ("same", "six==1.17.0\n")]);
    r.stack("s", "layers = [\"new\", \"same\"]\nruntime = \"python3.13\"\narch = \"x86_64\"\n");
    r.stack("mixed", "layers = [\"old\", \"new\", \"same\"]\nruntime = \"python3.13\"\narch = \"x86_64\"\n");
    let run = r.f.run(&["stack", "s", "--no-arns"]).ok();
    let line = check_line(&run.stderr, "overlap");
    assert!(line.starts_with("  warn") && line.contains("later layer's copy wins"), "{line}");
    assert!(
        run.stderr.contains("python/six-1.17.0.dist-info/ (")
            && run.stderr.contains("shipped by new, same: identical copies"),
        "{}",
        run.stderr
    );
    // The same version twice is wasted bytes: a warning.
    assert!(
        run.stderr.contains("distribution six 1.17.0 is shipped by layers new, same: wasted bytes"),
        "{}",
        run.stderr
    );
    // An overlap is a warning, not a failure: the closure and the rest still pass.
    assert!(check_line(&run.stderr, "closure").starts_with("  pass"), "{}", run.stderr);

    // Two versions of one distribution mix their files in /opt/python: an error naming
    // both layers and versions.
    let run = r.f.run(&["stack", "mixed"]);
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    let line = check_line(&run.stderr, "overlap");
    assert!(
        line.starts_with("  FAIL")
            && line.contains("six: layer old has 1.16.0, layer new has 1.17.0, layer same has 1.17.0"),
        "{line}"
    );
    // six.py: three copies, the last two identical; `same` is extracted last and wins.
    assert!(
        run.stderr.contains("python/six.py shipped by old, new, same: different content: same wins"),
        "{}",
        run.stderr
    );
    // Nor can they be merged into one layer: refused before layers/combo is written.
    r.f.run(&["stack", "mixed", "--merge", "combo"])
        .fails_with(&["refused: cannot merge stack mixed into layer combo", "six: layer old has 1.16.0"]);
    assert!(!r.f.path("layers/combo").exists());
}

#[test]
fn a_stack_of_pandas_without_numpy_names_the_missing_package() {
    let env = require_emulator!("a_stack_of_pandas_without_numpy_names_the_missing_package");
    let r = repo(&env, &[("numpy", NUMPY), ("pandas", PANDAS)]);
    r.stack("partial", "layers = [\"pandas\"]\nruntime = \"python3.13\"\n");
    r.stack("whole", "layers = [\"numpy\", \"pandas\"]\nruntime = \"python3.13\"\n");
    let run = r.f.run(&["stack", "partial"]);
    assert_eq!(run.code, Some(1));
    let line = check_line(&run.stderr, "closure");
    assert!(line.starts_with("  FAIL"), "{line}");
    assert!(
        run.stderr.contains("pandas (layer pandas) requires numpy>=")
            && run.stderr.contains("which no layer of the stack provides: add layer numpy to the stack"),
        "{}",
        run.stderr
    );
    // numpy was not needed for that verdict: only the stack's layers were built.
    assert!(!r.zip("numpy").exists());
    let whole = r.f.run(&["stack", "whole"]);
    assert!(check_line(&whole.stderr, "closure").starts_with("  pass"), "{}", whole.stderr);
    assert!(check_line(&whole.stderr, "overlap").starts_with("  pass"), "{}", whole.stderr);
}

#[test]
fn merge_makes_one_layer_of_the_union_in_stack_order_that_publishes_like_any_other() {
    let env = require_emulator!("merge_makes_one_layer_of_the_union_in_stack_order_that_publishes_like_any_other");
    let r = repo(&env, &[("a", "six==1.17.0\nidna==3.10\n"), ("b", "six==1.17.0\n")]);
    r.stack("s", "layers = [\"a\", \"b\"]\nruntime = \"python3.13\"\n");
    let run = r.f.run(&["stack", "s", "--merge", "m"]).ok();
    assert!(run.stdout.is_empty(), "not published yet, so no ARN: {}", run.stdout);
    assert!(run.stderr.contains("created    layers/m/"), "{}", run.stderr);
    assert!(
        run.stderr.contains("merge      m python3.13 x86_64:")
            && run.stderr.contains("python/six.py shipped by a, b: identical copies"),
        "{}",
        run.stderr
    );
    assert!(check_line(&run.stderr, "layers").contains("2 layers merged into 1 (m)"), "{}", run.stderr);

    // The merged zip holds the union of the members' entries; for a path both ship, b's
    // (two versions of one distribution are refused: an_overlap_is_reported_...).
    let (za, zb, zm) = (r.zip("a"), r.zip("b"), r.zip("m"));
    let union: BTreeSet<String> = zip_names(&za).into_iter().chain(zip_names(&zb)).collect();
    let merged: Vec<String> = zip_names(&zm);
    assert_eq!(merged.iter().cloned().collect::<BTreeSet<_>>(), union);
    assert_eq!(file_content(&zm, "python/six.py"), file_content(&zb, "python/six.py"));
    assert_eq!(file_content(&zm, "python/idna/core.py"), file_content(&za, "python/idna/core.py"));
    assert!(merged.contains(&"python/six-1.17.0.dist-info/METADATA".to_string()));

    // It is a layer of the repo like any other: listed, current, rebuilt when a member changes.
    let toml = std::fs::read_to_string(r.f.path("layers/m/layer.toml")).unwrap();
    assert!(toml.contains("merge = [\"a\", \"b\"]"), "{toml}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(r.f.path("dist/m/m-py313-x86_64.json")).unwrap()).unwrap();
    assert!(report["image"].as_str().unwrap().starts_with("merge of a@"), "{report}");
    let list = r.f.run(&["list", "--json"]).ok().json();
    assert!(list.iter().any(|u| u["layer"] == "m" && u["dist"] == "current"), "{list:?}");
    let again = r.f.run(&["layer", "m", "--json"]).ok().json();
    assert_eq!(again[0]["status"], "up-to-date");
    let first_sha = report["sha256"].clone();
    // Packaged deterministically, like any other layer: a forced rebuild gives the same bytes.
    let forced = r.f.run(&["layer", "m", "--force", "--json"]).ok().json();
    assert_eq!((&forced[0]["status"], &forced[0]["sha256"]), (&Value::from("built"), &first_sha));

    // Published like any other layer, and then the command prints its ARN.
    r.f.run(&["bootstrap"]).ok();
    let rows = r.f.run(&["publish", "m", "--json"]).ok().json();
    assert_eq!(rows[0]["status"], "published", "{rows:?}");
    assert_eq!(r.emulator().versions(&r.layer_name("m")), [1]);
    let arns: Vec<String> =
        serde_json::from_str(&r.f.run(&["stack", "s", "--merge", "m", "--format", "json"]).ok().stdout).unwrap();
    assert_eq!(arns, [r.arn("staging", "m")]);

    // A member changes: the merged layer's fingerprint changes with it, and it is rebuilt.
    r.f.write("layers/a/requirements.txt", "six==1.17.0\nidna==3.9\n");
    let list = r.f.run(&["list", "--json"]).ok().json();
    assert!(list.iter().any(|u| u["layer"] == "m" && u["dist"] == "stale"), "{list:?}");
    let rebuilt = r.f.run(&["layer", "m", "--json"]).ok();
    assert_eq!(rebuilt.json()[0]["status"], "built");
    assert!(rebuilt.stderr.contains("building   a python3.13 x86_64 (merged into m)"), "{}", rebuilt.stderr);
    assert_ne!(rebuilt.json()[0]["sha256"], first_sha);
}

#[test]
fn formats_parse_and_name_the_manifest_arns_in_stack_order() {
    let env = require_emulator!("formats_parse_and_name_the_manifest_arns_in_stack_order");
    let r = repo(&env, &[("six", "six==1.17.0\n"), ("idna", "idna==3.10\n"), ("later", "six==1.16.0\n")]);
    // Stack order, not the manifest's (sorted) order.
    r.stack("s", "layers = [\"six\", \"idna\"]\nruntime = \"python3.13\"\n");
    r.stack("t", "layers = [\"idna\", \"later\"]\nruntime = \"python3.13\"\n");
    r.f.run(&["bootstrap"]).ok();
    r.f.run(&["publish", "six", "idna"]).ok();
    let expected = vec![r.arn("staging", "six"), r.arn("staging", "idna")];

    let text = r.f.run(&["stack", "s"]).ok().stdout;
    assert_eq!(text, format!("{}\n{}\n", expected[0], expected[1]));

    let json: Vec<String> = serde_json::from_str(&r.f.run(&["stack", "s", "--format", "json"]).ok().stdout).unwrap();
    assert_eq!(json, expected);

    let cdk: Value = serde_json::from_str(&r.f.run(&["stack", "s", "--format", "cdk"]).ok().stdout).unwrap();
    assert_eq!(cdk["layerVersionArns"], serde_json::json!(expected));

    let tf = r.f.run(&["stack", "s", "--format", "terraform"]).ok().stdout;
    let lines: Vec<&str> = tf.lines().collect();
    assert!(lines[0].starts_with("# stack s (python3.13 x86_64): profile staging, us-east-1"), "{tf}");
    assert_eq!(lines[1], "layers = [", "{tf}");
    assert_eq!(*lines.last().unwrap(), "]", "{tf}");
    let items: Vec<&str> = lines[2..lines.len() - 1]
        .iter()
        .map(|l| {
            l.trim()
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix("\","))
                .unwrap_or_else(|| panic!("not a quoted item: {l}"))
        })
        .collect();
    assert_eq!(items, expected, "{tf}");
    assert!(
        items
            .iter()
            .all(|a| a.starts_with("arn:aws:lambda:us-east-1:") && a.contains(&format!(":layer:{}-", r.prefix))),
        "{items:?}"
    );

    let sam = r.f.run(&["stack", "s", "--format", "sam"]).ok().stdout;
    let body: Vec<&str> = sam.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(body, ["Layers:".to_string(), format!("  - {}", expected[0]), format!("  - {}", expected[1])]);

    // A layer not published: listed as such, no ARNs on stdout, a failing exit code.
    let t = r.f.run(&["stack", "t", "--format", "json"]);
    assert_eq!(t.code, Some(1), "{}", t.stderr);
    assert!(t.stdout.is_empty(), "{}", t.stdout);
    assert!(t.stderr.contains(&expected[1]) && t.stderr.contains("later  NOT PUBLISHED for python3.13 x86_64 in us-east-1: run `cargo xtask publish later --profile staging`"), "{}", t.stderr);
    // --all prints the complete stacks, keyed by name, and fails for the other.
    let all = r.f.run(&["stack", "--all", "--format", "json"]);
    assert_eq!(all.code, Some(1));
    let v: Value = serde_json::from_str(&all.stdout).unwrap();
    assert_eq!(v, serde_json::json!({ "s": expected }));

    r.f.run(&["stack", "s", "--region", "eu-west-1"])
        .fails_with(&["region eu-west-1 is not one of profile `staging`'s regions (us-east-1)"]);
    r.f.run(&["stack", "nope"]).fails_with(&["unknown stack `nope`", "s, t"]);
    r.f.run(&["stack", "s", "--profile", "prod"]).fails_with(&["unknown profile `prod`"]);
}

#[test]
fn prune_keeps_the_manifest_versions_and_the_newest_and_asks_on_a_confirmed_profile() {
    let env = require_emulator!("prune_keeps_the_manifest_versions_and_the_newest_and_asks_on_a_confirmed_profile");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.f.run(&["bootstrap"]).ok();
    let emu = r.emulator();
    let name = r.layer_name("six");
    for reqs in ["six==1.16.0\n", "six==1.17.0\n", "six==1.17.0\nidna==3.10\n"] {
        r.f.write("layers/six/requirements.txt", reqs);
        r.f.run(&["publish", "six", "--no-check"]).ok();
    }
    assert_eq!(emu.versions(&name), [1, 2, 3]);
    // The committed manifest names version 1 (e.g. what production still runs).
    let path = r.f.path("published/staging.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v3 = r.arn("staging", "six");
    let v1 = v3.strip_suffix(":3").map(|a| format!("{a}:1")).unwrap();
    std::fs::write(&path, text.replace(&v3, &v1).replace("\"version\": 3", "\"version\": 1")).unwrap();

    let dry = r.f.run(&["prune", "--keep", "1", "--dry-run", "--json"]).ok();
    let rows = dry.json();
    let actions: Vec<(i64, &str)> =
        rows.iter().map(|r| (r["version"].as_i64().unwrap(), r["action"].as_str().unwrap())).collect();
    assert_eq!(actions, [(3, "keep"), (2, "delete"), (1, "keep")]);
    assert!(
        dry.stderr.contains("named in published/staging.json") && dry.stderr.contains("1 would be deleted (dry run"),
        "{}",
        dry.stderr
    );
    assert_eq!(emu.versions(&name), [1, 2, 3], "a dry run deleted something");

    let run = r.f.run(&["prune", "--keep", "1"]).ok();
    // The list comes first, then the deletions.
    let listed = run.stderr.find("older than the 1 newest").unwrap_or_else(|| panic!("{}", run.stderr));
    let deleted = run.stderr.find("deleted    arn:").unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(listed < deleted, "{}", run.stderr);
    assert_eq!(emu.versions(&name), [1, 3]);

    // production shares the emulator and layer names here: version 1 is still named by
    // published/staging.json (any manifest protects), so nothing is deleted or asked.
    let nothing = r.f.run(&["prune", "--profile", "production", "--keep", "1"]).ok();
    assert!(nothing.stderr.contains("2 kept, 0 deleted"), "{}", nothing.stderr);
    // Once no manifest names version 1, a profile marked `confirm` lists it, then refuses
    // to delete it without --yes (there is no terminal to ask at).
    std::fs::write(&path, text).unwrap();
    let refused =
        r.f.run(&["prune", "--profile", "production", "--keep", "1"])
            .fails_with(&["profile `production` needs confirmation", "--yes"]);
    assert!(
        refused.stderr.lines().any(|l| l.split_whitespace().take(3).eq(["delete", "us-east-1", "1"])),
        "the list comes before the refusal:\n{}",
        refused.stderr
    );
    assert_eq!(emu.versions(&name), [1, 3]);
    // Deleting takes the profile's publish lock, which lives in its bucket.
    r.f.run(&["prune", "--profile", "production", "--keep", "1", "--yes"]).fails_with(&[
        "bucket `",
        "-prod` does not exist",
        "cargo xtask bootstrap --profile production --yes",
    ]);
    assert_eq!(emu.versions(&name), [1, 3]);
    r.f.run(&["bootstrap", "--profile", "production", "--yes"]).ok();
    r.f.run(&["prune", "--profile", "production", "--keep", "1", "--yes"]).ok();
    assert_eq!(emu.versions(&name), [3]);
}
