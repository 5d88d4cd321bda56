//! Integration tests of `cargo xtask usage`, `rollout` and the function-aware `prune`: the
//! real binary against the emulator (moto), with functions created through the real
//! Lambda SDK client (their role created in the emulator's IAM over plain HTTP) attaching
//! older versions of the repo's layers and a layer of another owner.

use crate::common;

use std::io::Write;

use aws_sdk_lambda::types::Architecture;
use common::Fixture;
use serde_json::Value;

use crate::repo::repo;

fn function<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter().find(|r| r["function"] == name).unwrap_or_else(|| panic!("no function {name} in {rows:#?}"))
}

/// (layer or null, version, newest) of each attached layer of a `usage --json` row.
fn attached(row: &Value) -> Vec<(Value, Value, Value, String)> {
    row["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (l["layer"].clone(), l["version"].clone(), l["newest"].clone(), l["owner"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn usage_lists_the_functions_rollout_moves_them_keeping_the_foreign_layer_and_undo_restores() {
    let env =
        require_emulator!("usage_lists_the_functions_rollout_moves_them_keeping_the_foreign_layer_and_undo_restores");
    let r = repo(&env, &[("six", "six==1.16.0\n"), ("idna", "idna==3.9\n")]);
    r.f.stack("both", "layers = [\"six\", \"idna\"]\nruntime = \"python3.13\"\n");
    r.publish("six", "six==1.16.0\n");
    r.publish("idna", "idna==3.9\n");
    let foreign = r.publish_direct(&format!("{}-foreign", r.prefix), "another team's layer", Architecture::X8664);
    let a = r.create_function("a", &[foreign.clone(), r.arn("six", 1), r.arn("idna", 1)], Architecture::X8664, 0);
    let b = r.create_function("b", &[r.arn("six", 1)], Architecture::X8664, 0);
    let c = r.create_function("c", std::slice::from_ref(&foreign), Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    r.publish("idna", "idna==3.10\n");

    // usage: both functions with each layer's attached and newest version; the foreign
    // layer as another owner's; the function without a repo layer is not listed.
    let run = r.f.run(&["usage", "--json"]).ok();
    let rows: Vec<Value> =
        run.json().into_iter().filter(|f| f["function"].as_str().unwrap().starts_with(&r.prefix)).collect();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let fa = function(&rows, &a);
    assert_eq!(
        (fa["runtime"].as_str(), fa["arch"].as_str(), fa["stack"].as_str()),
        (Some("python3.13"), Some("x86_64"), Some("both"))
    );
    let six = || Value::from("six");
    assert_eq!(
        attached(fa),
        [
            (Value::Null, Value::from(1), Value::Null, "other".to_string()),
            (six(), Value::from(1), Value::from(2), "repo".to_string()),
            (Value::from("idna"), Value::from(1), Value::from(2), "repo".to_string()),
        ]
    );
    assert_eq!(function(&rows, &b)["stack"], Value::Null);
    assert!(rows.iter().all(|f| f["function"] != c.as_str()));
    assert!(run.stderr.contains("(other owner, left alone)") && run.stderr.contains("2 (outdated)"), "{}", run.stderr);
    // Filtered by layer: idna is attached by `a` only.
    let idna: Vec<Value> = r.f.run(&["usage", "idna", "--json"]).ok().json();
    assert_eq!(idna.iter().filter(|f| f["function"].as_str().unwrap().starts_with(&r.prefix)).count(), 1);

    // A dry run prints the plan (function, layer, from, to) and changes nothing.
    let before_a = r.layers_of(&a);
    let dry = r.f.run(&["rollout", "--function", &a, "--dry-run"]).ok();
    let six_line = dry
        .stderr
        .lines()
        .find(|l| l.contains(&a) && l.contains(&r.layer_name("six")))
        .unwrap_or_else(|| panic!("{}", dry.stderr));
    assert_eq!(six_line.split_whitespace().rev().take(2).collect::<Vec<_>>(), ["2", "1"], "{six_line}");
    assert!(dry.stderr.contains("dry run: 1 function would change"), "{}", dry.stderr);
    assert_eq!(r.layers_of(&a), before_a);
    assert!(!r.f.path("published/staging-rollouts.json").exists());

    // The rollout moves both, keeping the foreign layer and the order, and records it.
    let run = r.f.run(&["rollout", "--all-outdated"]).ok();
    assert!(run.stderr.contains("2 updated, 0 failed"), "{}", run.stderr);
    assert_eq!(r.layers_of(&a), [foreign.clone(), r.arn("six", 2), r.arn("idna", 2)]);
    assert_eq!(r.layers_of(&b), [r.arn("six", 2)]);
    assert_eq!(r.layers_of(&c), std::slice::from_ref(&foreign), "a function without repo layers is never touched");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(r.f.path("published/staging-rollouts.json")).unwrap()).unwrap();
    let last = &record["rollouts"][0];
    assert_eq!(last["how"], "--all-outdated");
    let moved_a = last["functions"].as_array().unwrap().iter().find(|m| m["function"] == a.as_str()).unwrap();
    assert_eq!(moved_a["before"], serde_json::json!(before_a));
    assert_eq!(moved_a["status"], "successful");
    assert!(r.f.run(&["rollout", "--all-outdated"]).ok().stderr.contains("nothing to roll out"));

    // --undo restores the previous lists of the last rollout.
    r.f.run(&["rollout", "--undo"]).ok();
    assert_eq!(r.layers_of(&a), before_a);
    assert_eq!(r.layers_of(&b), [r.arn("six", 1)]);

    // --stack: exactly the stack's ARNs from the manifest, where the repo layers were.
    let run = r.f.run(&["rollout", "--stack", "both", "--json"]).ok();
    assert_eq!(run.json().len(), 1, "only `a` attaches the stack's layers:\n{}", run.stdout);
    assert_eq!(r.layers_of(&a), [foreign, r.arn("six", 2), r.arn("idna", 2)]);
    assert_eq!(r.layers_of(&b), [r.arn("six", 1)]);
    r.f.run(&["rollout", "--function", "nope"]).fails_with(&["function nope attaches no layer of this repo", "usage"]);

    // Someone changes `a` after the rollout: --undo refuses to overwrite it, and changes nothing.
    let by_hand = vec![r.arn("six", 1)];
    r.emu
        .rt
        .block_on(
            r.emu.lambda.update_function_configuration().function_name(&a).set_layers(Some(by_hand.clone())).send(),
        )
        .unwrap();
    r.f.run(&["rollout", "--undo"]).fails_with(&[&a, "changed since the rollout", "not undone"]);
    assert_eq!(r.layers_of(&a), by_hand);
}

#[test]
fn a_rollout_over_five_layers_over_250_mib_or_onto_the_wrong_arch_is_refused_before_any_write() {
    let env =
        require_emulator!("a_rollout_over_five_layers_over_250_mib_or_onto_the_wrong_arch_is_refused_before_any_write");
    let r = repo(&env, &[("six", "six==1.16.0\n"), ("idna", "idna==3.9\n")]);
    // `big`: 249 MiB of zeros (a tiny zip), under the limit alone.
    std::fs::create_dir_all(r.f.path("layers/big")).unwrap();
    {
        let mut z =
            zip::ZipWriter::new(std::fs::File::create(r.f.path("layers/big/big-1.0-py3-none-any.whl")).unwrap());
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        z.start_file("big/__init__.py", deflated).unwrap();
        z.start_file("big/data.bin", deflated).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..249 {
            z.write_all(&chunk).unwrap();
        }
        let di = "big-1.0.dist-info";
        z.start_file(format!("{di}/METADATA"), deflated).unwrap();
        z.write_all(b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n").unwrap();
        z.start_file(format!("{di}/WHEEL"), deflated).unwrap();
        z.write_all(b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n").unwrap();
        z.start_file(format!("{di}/RECORD"), deflated).unwrap();
        z.write_all(
            format!("big/__init__.py,,\nbig/data.bin,,\n{di}/METADATA,,\n{di}/WHEEL,,\n{di}/RECORD,,\n").as_bytes(),
        )
        .unwrap();
        z.finish().unwrap();
    }
    r.f.stack("both", "layers = [\"six\", \"idna\"]\nruntime = \"python3.13\"\n");
    r.publish("six", "six==1.16.0\n");
    r.publish("idna", "idna==3.9\n");
    r.publish("big", "./big-1.0-py3-none-any.whl\n");
    let others: Vec<String> = (0..4)
        .map(|i| r.publish_direct(&format!("{}-other{i}", r.prefix), "another team's layer", Architecture::X8664))
        .collect();
    let mut five = others.clone();
    five.push(r.arn("six", 1));
    let many = r.create_function("many", &five, Architecture::X8664, 0);
    // The function's own code: 2 MiB, so with big's 249 MiB it is over 250 MiB.
    let heavy = r.create_function("heavy", &[r.arn("big", 1), r.arn("six", 1)], Architecture::X8664, 2 << 20);
    let fine = r.create_function("fine", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    let record = r.f.path("published/staging-rollouts.json");

    // 6 layers: refused, and nothing is written.
    let run = r.f.run(&["rollout", "--stack", "both", "--function", &many]).fails_with(&["rollout refused"]);
    assert!(run.stderr.contains("6 layers, over Lambda's limit of 5"), "{}", run.stderr);
    assert_eq!(r.layers_of(&many), five);

    // Over 250 MiB with the function's code size: refused for every function, so the one
    // that would pass is not moved either (nothing half-done).
    let run = r.f.run(&["rollout", "--all-outdated"]).fails_with(&["rollout refused", "1 function"]);
    assert!(
        run.stderr.contains("over Lambda's limit by") && run.stderr.contains("CodeSize from GetFunction"),
        "{}",
        run.stderr
    );
    assert_eq!(r.layers_of(&heavy), [r.arn("big", 1), r.arn("six", 1)]);
    assert_eq!(r.layers_of(&fine), [r.arn("six", 1)]);

    // An arm64-only version of the repo's layer name onto an x86_64 function: refused.
    let arm = r.publish_direct(&r.layer_name("six"), "built elsewhere for arm64", Architecture::Arm64);
    assert!(arm.ends_with(":3"), "{arm}");
    let run = r.f.run(&["rollout", "--function", &fine]).fails_with(&["rollout refused"]);
    assert!(run.stderr.contains("is built for arm64, but function") && run.stderr.contains("x86_64"), "{}", run.stderr);
    assert_eq!(r.layers_of(&fine), [r.arn("six", 1)]);
    assert!(!record.exists(), "a refused rollout recorded something");
}

#[test]
fn rollout_on_production_needs_yes_and_the_right_account_before_any_write() {
    let env = require_emulator!("rollout_on_production_needs_yes_and_the_right_account_before_any_write");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    f.prefix_layer_names("p");
    f.run(&["rollout", "--all-outdated", "--profile", "production"]).fails_with(&[
        "production",
        "--yes",
        "nothing was written",
    ]);
    f.run(&["rollout", "--undo", "--profile", "production"]).fails_with(&["production", "--yes"]);
    f.set_profile_key("production", "account_id = \"111122223333\"");
    f.run(&["rollout", "--all-outdated", "--profile", "production", "--yes"]).fails_with(&[
        "wrong AWS account",
        "111122223333",
        "123456789012",
    ]);
    // A dry run writes nothing, so it needs no --yes; the account is still checked.
    f.run(&["rollout", "--all-outdated", "--profile", "production", "--dry-run"]).fails_with(&["wrong AWS account"]);
    assert!(!f.path("published").exists(), "something was written");
    f.run(&["usage", "--profile", "production"]).fails_with(&["wrong AWS account"]);
}

#[test]
fn prune_keeps_a_version_a_function_attaches_and_deletes_the_zip_of_what_it_deletes() {
    let env = require_emulator!("prune_keeps_a_version_a_function_attaches_and_deletes_the_zip_of_what_it_deletes");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    for reqs in ["six==1.16.0\n", "six==1.17.0\n", "six==1.17.0\nidna==3.10\n"] {
        r.publish("six", reqs);
    }
    let name = r.layer_name("six");
    assert_eq!(r.emu.versions(&name), [1, 2, 3]);
    let user = r.create_function("user", &[r.arn("six", 1)], Architecture::X8664, 0);
    let sha_hex = |v: i64| {
        use base64_free::decode;
        decode(r.emu.version(&name, v).content().unwrap().code_sha256().unwrap())
    };
    let bucket = {
        let text = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
        let at = text.find("bucket = \"").unwrap() + 10;
        text[at..].split('"').next().unwrap().to_string()
    };
    let object = |v: i64| format!("layers/{name}/{}.zip", sha_hex(v));
    let exists = |key: &str| r.emu.rt.block_on(r.emu.s3.head_object().bucket(&bucket).key(key).send()).is_ok();
    let keys: Vec<String> = [1, 2, 3].iter().map(|&v| object(v)).collect();
    assert!(keys.iter().all(|k| exists(k)), "{keys:?}");

    let run = r.f.run(&["prune", "--keep", "1"]).ok();
    assert!(run.stderr.contains(&format!("attached by function {user}")), "{}", run.stderr);
    assert!(run.stderr.contains("2 kept, 1 deleted"), "{}", run.stderr);
    assert_eq!(r.emu.versions(&name), [1, 3]);
    assert!(!exists(&keys[1]), "the zip of the deleted version is still in the bucket");
    assert!(exists(&keys[0]) && exists(&keys[2]), "a kept version's zip was deleted");
}

/// Base64 to hex without a base64 crate in the tests.
mod base64_free {
    pub fn decode(b64: &str) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits: u32 = 0;
        let mut n = 0;
        let mut out = String::new();
        for c in b64.bytes().filter(|&c| c != b'=') {
            bits = (bits << 6) | ABC.iter().position(|&a| a == c).unwrap() as u32;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push_str(&format!("{:02x}", (bits >> n) & 0xff));
            }
        }
        out
    }
}

#[test]
fn undo_restores_the_functions_left_as_the_rollout_left_them_and_skips_one_changed_by_hand() {
    let env =
        require_emulator!("undo_restores_the_functions_left_as_the_rollout_left_them_and_skips_one_changed_by_hand");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let a = r.create_function("a", &[r.arn("six", 1)], Architecture::X8664, 0);
    let b = r.create_function("b", &[r.arn("six", 1)], Architecture::X8664, 0);
    let c = r.create_function("c", &[r.arn("six", 1)], Architecture::X8664, 0);
    let bystander = r.create_function("d", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    r.f.run(&["rollout", "--function", &a, &b, &c]).ok();
    for f in [&a, &b, &c] {
        assert_eq!(r.layers_of(f), [r.arn("six", 2)]);
    }
    let record_path = r.f.path("published/staging-rollouts.json");
    let record = || -> Value { serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap() };

    // --undo --function: only the named function of that rollout; one it did not move is
    // an error naming it, and nothing is changed.
    r.f.run(&["rollout", "--undo", "--function", &bystander]).fails_with(&[
        &bystander,
        "not one of the functions",
        "nothing was changed",
    ]);
    r.f.run(&["rollout", "--undo", "--function", &b]).ok();
    assert_eq!(r.layers_of(&b), [r.arn("six", 1)]);
    assert_eq!(r.layers_of(&a), [r.arn("six", 2)]);
    assert_eq!(r.layers_of(&c), [r.arn("six", 2)]);

    // `a` is changed by hand: --undo restores `c`, skips `a` with the reason on one line,
    // and fails.
    let by_hand = vec![r.arn("six", 1), r.arn("six", 2)];
    r.emu
        .rt
        .block_on(
            r.emu.lambda.update_function_configuration().function_name(&a).set_layers(Some(by_hand.clone())).send(),
        )
        .unwrap();
    let run = r.f.run(&["rollout", "--undo"]).fails_with(&[&a, "skipped", "changed since the rollout"]);
    let skipped: Vec<&str> = run.stderr.lines().filter(|l| l.contains("skipped") && l.contains(&a)).collect();
    assert!(!skipped.is_empty(), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("{c} (us-east-1)")), "{}", run.stderr);
    assert_eq!(r.layers_of(&a), by_hand, "a function changed by hand was overwritten");
    assert_eq!(r.layers_of(&c), [r.arn("six", 1)]);
    assert_eq!(r.layers_of(&b), [r.arn("six", 1)]);
    assert_eq!(r.layers_of(&bystander), [r.arn("six", 1)]);

    // The record says what each undo did: the partial one restored b; the last restored c
    // and skipped a, with the reason.
    let rec = record();
    let rollouts = rec["rollouts"].as_array().unwrap();
    assert_eq!(rollouts.len(), 3, "{rec:#}");
    assert!(rollouts[1]["how"].as_str().unwrap().starts_with(&format!("--undo --function {b}")), "{rec:#}");
    let status = |i: usize, f: &str| {
        let m = rollouts[i]["functions"].as_array().unwrap().iter().find(|m| m["function"] == f);
        m.map(|m| (m["status"].as_str().unwrap().to_string(), m["reason"].as_str().map(str::to_string)))
    };
    assert_eq!(status(1, &b).map(|s| s.0), Some("successful".into()), "{rec:#}");
    assert_eq!(status(2, &c).map(|s| s.0), Some("successful".into()), "{rec:#}");
    let (st, why) = status(2, &a).unwrap_or_else(|| panic!("a is not in the record of the undo: {rec:#}"));
    assert_eq!(st, "skipped", "{rec:#}");
    assert!(why.unwrap_or_default().contains("changed since the rollout"), "{rec:#}");
    assert!(status(2, &b).is_none(), "b was already restored: {rec:#}");
}

#[test]
fn rollout_and_prune_wait_for_the_publish_lock_and_give_up_and_a_dry_run_takes_none() {
    let env = require_emulator!("rollout_and_prune_wait_for_the_publish_lock_and_give_up_and_a_dry_run_takes_none");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let f = r.create_function("f", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    r.publish("six", "six==1.17.0\nidna==3.10\n");
    let name = r.layer_name("six");
    r.forge_lock(600);

    // A dry run takes no lock.
    r.f.run(&["rollout", "--all-outdated", "--dry-run", "--lock-timeout", "1"]).ok();
    r.f.run(&["prune", "--keep", "1", "--dry-run", "--lock-timeout", "1"]).ok();

    // rollout waits for the holder, names it, gives up, and changes nothing.
    let run = r.f.run(&["rollout", "--all-outdated", "--lock-timeout", "2"]);
    assert!(run.stderr.contains("waiting for the publish lock of profile `staging`"), "{}", run.stderr);
    run.fails_with(&["held by ghost@elsewhere", "gave up after 2 s"]);
    assert_eq!(r.layers_of(&f), [r.arn("six", 1)]);
    assert!(!r.f.path("published/staging-rollouts.json").exists(), "a rollout without the lock recorded something");
    // --undo too.
    r.drop_lock();
    r.f.run(&["rollout", "--all-outdated"]).ok();
    assert!(!r.lock_held(), "rollout did not release the lock");
    assert_eq!(r.layers_of(&f), [r.arn("six", 3)]);
    r.forge_lock(600);
    let run = r.f.run(&["rollout", "--undo", "--lock-timeout", "2"]);
    run.fails_with(&["held by ghost@elsewhere", "gave up after 2 s"]);
    assert_eq!(r.layers_of(&f), [r.arn("six", 3)]);

    // prune too: version 2 (neither newest, attached nor restored by --undo) stays.
    let run = r.f.run(&["prune", "--keep", "1", "--lock-timeout", "2"]);
    assert!(run.stderr.contains("waiting for the publish lock of profile `staging`"), "{}", run.stderr);
    run.fails_with(&["held by ghost@elsewhere", "gave up after 2 s"]);
    assert_eq!(r.emu.versions(&name), [1, 2, 3]);
    r.drop_lock();
    let run = r.f.run(&["prune", "--keep", "1", "--lock-timeout", "2"]).ok();
    assert!(run.stderr.contains("1 deleted"), "{}", run.stderr);
    assert_eq!(r.emu.versions(&name), [1, 3]);
    assert!(!r.lock_held(), "prune did not release the lock");
}

#[test]
fn a_refused_rollout_prints_no_verdict_for_checks_that_did_not_run() {
    let env = require_emulator!("a_refused_rollout_prints_no_verdict_for_checks_that_did_not_run");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let f = r.create_function("f", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    // The layer changes after its last publish: the newest version's contents cannot be
    // checked from here, so the rollout is refused; size and closure did not run.
    r.f.write("layers/six/requirements.txt", "six==1.17.0\nidna==3.10\n");
    let run = r.f.run(&["rollout", "--function", &f]).fails_with(&["rollout refused"]);
    assert!(run.stderr.contains("cannot be checked"), "{}", run.stderr);
    for check in ["size", "closure", "overlap"] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(check))
            .unwrap_or_else(|| panic!("no {check} line:\n{}", run.stderr));
        let verdict = line.split_whitespace().next().unwrap();
        assert!(!["pass", "warn", "FAIL"].contains(&verdict), "a check that did not run has a verdict: {line}");
        assert!(line.contains("not run"), "{line}");
    }
    assert!(!run.stderr.contains("0.0 MiB"), "{}", run.stderr);
    assert!(!run.stderr.contains("0 distributions"), "{}", run.stderr);
    assert_eq!(r.layers_of(&f), [r.arn("six", 1)]);
}
