//! Integration tests of the Lambda code storage readings: `status` shows each region's
//! usage against the quota (through the fault-injecting front, which answers
//! GetAccountSettings and counts the versions published and deleted through it), or says
//! it is unknown against the bare emulator, which does not implement the call; `prune`
//! says what it frees, the sum of the deleted versions' CodeSize.

use aws_front::{Fault, Faults, Front, Rule, Storage};
use serde_json::Value;

use crate::common::TestEnv;
use crate::repo::Repo;

/// `amount` of xtask-aws' `aws::storage`, for the sizes these tests expect.
fn amount(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    }
}

const GB: u64 = 1024 * 1024 * 1024;

/// The repo's profiles sent through a front of the emulator.
fn through_front(r: &Repo) -> Front {
    let front = Front::start(&r.endpoint).expect("the front starts");
    let path = r.f.path("layers.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&r.endpoint), "{text}");
    std::fs::write(&path, text.replace(&r.endpoint, &front.url())).unwrap();
    front
}

/// The `code_storage` of every status row, with the run's stderr when one lacks it.
fn storage_of(rows: &[Value], stderr: &str) -> Vec<(u64, u64, f64)> {
    rows.iter()
        .map(|r| {
            let s = &r["code_storage"];
            let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("no code_storage.{k} in {r}\n{stderr}"));
            (n("used_bytes"), n("limit_bytes"), s["percent"].as_f64().unwrap())
        })
        .collect()
}

/// A repo with one layer, `six`, published three times with different content: versions
/// 1, 2 and 3, of different sizes.
fn three_versions(env: &TestEnv, tag: &str) -> (Repo, String) {
    let r = Repo::new(env, &[("six", "six==1.16.0\n")], tag);
    r.f.run(&["bootstrap"]).ok();
    for reqs in ["six==1.16.0\n", "six==1.17.0\n", "six==1.17.0\nidna==3.10\n"] {
        r.publish("six", reqs);
    }
    let name = r.layer_name("six");
    assert_eq!(r.emu.versions(&name), [1, 2, 3]);
    (r, name)
}

#[test]
fn status_against_the_bare_emulator_says_storage_is_unknown_and_succeeds() {
    let env = require_emulator!("status_against_the_bare_emulator_says_storage_is_unknown_and_succeeds");
    let r = Repo::new(&env, &[("six", "six==1.16.0\n")], "su");
    r.f.run(&["bootstrap"]).ok();
    r.publish("six", "six==1.16.0\n");
    let run = r.f.run(&["status", "--json"]).ok();
    assert!(
        run.stderr.contains("code storage in us-east-1: unknown (the endpoint does not answer GetAccountSettings)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("warning:"), "{}", run.stderr);
    let rows = run.json();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "unchanged");
    assert_eq!(rows[0].get("code_storage"), Some(&Value::Null), "{}", rows[0]);
}

#[test]
fn prune_says_what_it_frees_the_deleted_versions_code_size() {
    let env = require_emulator!("prune_says_what_it_frees_the_deleted_versions_code_size");
    let (r, name) = three_versions(&env, "sp");
    let size = |v: i64| r.emu.version(&name, v).content().unwrap().code_size() as u64;
    let (s1, s2, s3) = (size(1), size(2), size(3));
    assert!(s1 > 0 && s1 != s2 && s2 != s3, "the versions' sizes should differ: {s1} {s2} {s3}");
    let freed = s1 + s2;

    let dry = r.f.run(&["prune", "--keep", "1", "--dry-run", "--json"]).ok();
    let rows = dry.json();
    let sizes: Vec<(i64, &str, Option<u64>)> = rows
        .iter()
        .map(|r| (r["version"].as_i64().unwrap(), r["action"].as_str().unwrap(), r["code_size"].as_u64()))
        .collect();
    assert_eq!(sizes, [(3, "keep", None), (2, "delete", Some(s2)), (1, "delete", Some(s1))]);
    let region = format!("us-east-1: would free {} of Lambda code storage (2 versions)", amount(freed));
    assert!(dry.stderr.contains(&region), "no `{region}` in:\n{}", dry.stderr);
    let total = format!("2 would be deleted (dry run: nothing was deleted), which would free {}", amount(freed));
    assert!(dry.stderr.contains(&total), "no `{total}` in:\n{}", dry.stderr);
    assert_eq!(r.emu.versions(&name), [1, 2, 3], "a dry run deleted something");

    let run = r.f.run(&["prune", "--keep", "1", "--json"]).ok();
    let deleted: u64 =
        run.json().iter().filter(|r| r["action"] == "deleted").map(|r| r["code_size"].as_u64().unwrap()).sum();
    assert_eq!(deleted, freed);
    let region = format!("us-east-1: freed {} of Lambda code storage (2 versions)", amount(freed));
    assert!(run.stderr.contains(&region), "no `{region}` in:\n{}", run.stderr);
    assert!(run.stderr.contains(&format!("2 deleted, 0 failed, freed {}", amount(freed))), "{}", run.stderr);
    assert_eq!(r.emu.versions(&name), [3]);

    // Nothing left to delete frees nothing.
    let again = r.f.run(&["prune", "--keep", "1"]).ok();
    assert!(again.stderr.contains("0 deleted, 0 failed, freed 0 B"), "{}", again.stderr);
}

#[test]
fn status_through_the_front_shows_storage_against_the_quota_as_publish_and_prune_change_it() {
    let env =
        require_emulator!("status_through_the_front_shows_storage_against_the_quota_as_publish_and_prune_change_it");
    let (r, name) = three_versions(&env, "sf");
    let front = through_front(&r);
    let used = 3 * GB + 4 * GB / 10; // 3.4 GB, 4.53% of 75 GB
    front.set(Faults { storage: Some(Storage { limit_bytes: 75 * GB, used_bytes: used }), ..Default::default() });

    let run = r.f.run(&["status", "--json"]).ok();
    assert!(run.stderr.contains("code storage in us-east-1: 3.4 of 75.0 GB (4%)"), "{}", run.stderr);
    assert!(!run.stderr.contains("warning:"), "{}", run.stderr);
    assert_eq!(storage_of(&run.json(), &run.stderr), [(used, 75 * GB, 4.5)]);

    // A version published through the front counts (its CodeSize, as the emulator has it).
    r.publish("six", "six==1.16.0\nidna==3.10\n");
    assert_eq!(r.emu.versions(&name), [1, 2, 3, 4]);
    let size = |v: i64| r.emu.version(&name, v).content().unwrap().code_size() as u64;
    let run = r.f.run(&["status", "--json"]).ok();
    assert_eq!(storage_of(&run.json(), &run.stderr)[0].0, used + size(4));

    // 61 of 75 GB used, then version 5 published: prune --keep 1 deletes 4 to 1 and says
    // it frees exactly their sizes.
    front.set(Faults { storage: Some(Storage { limit_bytes: 75 * GB, used_bytes: 61 * GB }), ..Default::default() });
    r.publish("six", "six==1.17.0\n");
    let expected: Vec<(i64, u64)> = [4, 3, 2, 1].into_iter().map(|v| (v, size(v))).collect();
    let before = 61 * GB + size(5);
    let prune = r.f.run(&["prune", "--keep", "1", "--json"]).ok();
    let deleted: Vec<(i64, u64)> = prune
        .json()
        .iter()
        .filter(|r| r["action"] == "deleted")
        .map(|r| (r["version"].as_i64().unwrap(), r["code_size"].as_u64().unwrap()))
        .collect();
    assert_eq!(deleted, expected, "{}", prune.stderr);
    assert_eq!(r.emu.versions(&name), [5]);
    let freed: u64 = expected.iter().map(|d| d.1).sum();
    let says = format!("us-east-1: freed {} of Lambda code storage (4 versions)", amount(freed));
    assert!(prune.stderr.contains(&says), "no `{says}` in:\n{}", prune.stderr);
    // Only versions 4 and 5 were published through the front (the others before it), so
    // its usage drops by version 4's size alone.
    let run = r.f.run(&["status", "--json"]).ok();
    assert_eq!(storage_of(&run.json(), &run.stderr)[0].0, before - expected[0].1);
    // Past 80% (61 of 75 GB is 81%), status warns with the prune command and still succeeds.
    assert!(run.stderr.contains("code storage in us-east-1: 61.0 of 75.0 GB (81%)"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: code storage in us-east-1 is past 80%: run `cargo xtask prune --keep N --profile staging`"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn status_with_storage_access_denied_names_the_action_and_still_compares_the_units() {
    let env = require_emulator!("status_with_storage_access_denied_names_the_action_and_still_compares_the_units");
    let r = Repo::new(&env, &[("six", "six==1.16.0\n")], "sd");
    r.f.run(&["bootstrap"]).ok();
    r.publish("six", "six==1.16.0\n");
    let front = through_front(&r);
    front.set(Faults {
        rules: vec![Rule::new("lambda:GetAccountSettings", Fault::Fail { status: 403 })],
        storage: Some(Storage { limit_bytes: 75 * GB, used_bytes: 0 }),
        ..Default::default()
    });
    let run = r.f.run(&["status", "--json"]).ok();
    let line = run.stderr.lines().find(|l| l.contains("code storage in us-east-1")).unwrap_or_default();
    assert!(
        line.starts_with("warning: code storage in us-east-1: unknown: cannot read the Lambda code storage")
            && line.contains("grant its role `lambda:GetAccountSettings`"),
        "{}",
        run.stderr
    );
    let rows = run.json();
    assert_eq!(rows[0]["status"], "unchanged");
    assert_eq!(rows[0]["code_storage"], Value::Null);
    assert_eq!(front.counts().op("lambda:GetAccountSettings"), 1, "{:?}", front.counts());
}
