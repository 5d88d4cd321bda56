//! `cargo xtask stack`'s published side (`--merge` published like any other layer, the ARN
//! formats from the manifest) and `cargo xtask prune`: the real binary, real layers built
//! in the local build image, and the emulator, inspected through the Lambda SDK. The
//! stack checks, which publish nothing, are xtask's tests (xtask/tests/it/stack.rs).

use std::collections::BTreeSet;
use std::io::Read;

use crate::common::{check_line, zip_names};
use crate::repo::Repo;
use serde_json::Value;

/// A [`Repo`] whose layer names start with `s`; no bucket yet.
fn repo(env: &crate::common::TestEnv, layers: &[(&str, &str)]) -> Repo {
    Repo::new(env, layers, "s")
}

fn file_content(zip: &std::path::Path, name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut out = Vec::new();
    z.by_name(name).unwrap_or_else(|_| panic!("no {name} in {}", zip.display())).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn merge_makes_one_layer_of_the_union_in_stack_order_that_publishes_like_any_other() {
    let env = require_emulator!("merge_makes_one_layer_of_the_union_in_stack_order_that_publishes_like_any_other");
    let r = repo(&env, &[("a", "six==1.17.0\nidna==3.10\n"), ("b", "six==1.17.0\n")]);
    r.f.stack("s", "layers = [\"a\", \"b\"]\nruntime = \"python3.13\"\n");
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
    let (za, zb, zm) = (r.f.zip("a"), r.f.zip("b"), r.f.zip("m"));
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
    assert_eq!(r.emu.versions(&r.layer_name("m")), [1]);
    let arns: Vec<String> =
        serde_json::from_str(&r.f.run(&["stack", "s", "--merge", "m", "--format", "json"]).ok().stdout).unwrap();
    assert_eq!(arns, [r.manifest_arn("staging", "m")]);

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
    r.f.stack("s", "layers = [\"six\", \"idna\"]\nruntime = \"python3.13\"\n");
    r.f.stack("t", "layers = [\"idna\", \"later\"]\nruntime = \"python3.13\"\n");
    r.f.run(&["bootstrap"]).ok();
    r.f.run(&["publish", "six", "idna"]).ok();
    let expected = vec![r.manifest_arn("staging", "six"), r.manifest_arn("staging", "idna")];

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
    let emu = &r.emu;
    let name = r.layer_name("six");
    for reqs in ["six==1.16.0\n", "six==1.17.0\n", "six==1.17.0\nidna==3.10\n"] {
        r.f.write("layers/six/requirements.txt", reqs);
        r.f.run(&["publish", "six", "--no-check"]).ok();
    }
    assert_eq!(emu.versions(&name), [1, 2, 3]);
    // The committed manifest names version 1 (e.g. what production still runs).
    let path = r.f.path("published/staging.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v3 = r.manifest_arn("staging", "six");
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
