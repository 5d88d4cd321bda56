//! Integration tests of the Lambda code storage readings: `status` shows each region's
//! usage against the quota (or says it is unknown, against the bare emulator, which does
//! not implement GetAccountSettings), and `prune` says what it frees, the sum of the
//! deleted versions' CodeSize as the emulator reports it.

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
    let total = format!("2 would be deleted, would free {} (dry run", amount(freed));
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
