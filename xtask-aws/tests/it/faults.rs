//! Publishing against AWS as it really behaves, modelled by the fault-injecting front of
//! the emulator (`aws-front`): lists that lag the publish (no duplicate versions),
//! throttling beyond the SDK's default 3 attempts (one run rides it out), a stalled answer
//! (a retry or a clear error, never a hang), and a run killed after publishing (the next
//! one finds every version: no duplicate, no lost record). The real binary runs with
//! `endpoint_url` pointing at the front.

use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_front::{Fault, Faults, Front, Rule};
use serde_json::Value;

use crate::common::TestEnv;
use crate::repo::Repo;

/// A repo with a bucket, whose profile talks to a new front of the emulator.
fn repo_via_front(env: &TestEnv, layers: &[(&str, &str)]) -> (Repo, Front) {
    let r = Repo::new(env, layers, "f");
    r.f.run(&["bootstrap"]).ok();
    let front = Front::start(&r.endpoint).expect("start aws-front");
    let text = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
    std::fs::write(r.f.path("layers.toml"), text.replace(&r.endpoint, &front.url())).unwrap();
    (r, front)
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

/// Every row's (layer, status).
fn statuses(rows: &[Value]) -> Vec<(String, String)> {
    rows.iter().map(|r| (s(r, "layer").to_string(), s(r, "status").to_string())).collect()
}

/// Each layer of the rows has exactly version 1 in the emulator, and the manifest names it.
fn assert_one_version_each(r: &Repo, rows: &[Value]) {
    let manifest = r.manifest("staging");
    for row in rows {
        let name = s(row, "layer_name");
        assert_eq!(r.emu.versions(name), [1], "{name} has duplicate versions; rows: {rows:?}");
        let entry = manifest["layers"].as_array().unwrap().iter().find(|e| e["layer_name"] == name);
        let entry = entry.unwrap_or_else(|| panic!("{name} is not in the manifest:\n{manifest:#}"));
        assert_eq!(entry["version"], 1, "{manifest:#}");
    }
}

#[test]
fn a_lagging_list_never_makes_a_second_run_or_a_lost_answer_publish_again() {
    let env = require_emulator!("a_lagging_list_never_makes_a_second_run_or_a_lost_answer_publish_again");
    let (r, front) = repo_via_front(&env, &[("a", "six==1.16.0\n"), ("b", "idna==3.10\n")]);
    // Lists hide a new version for 10 minutes and answer 2 items a page; the first
    // PublishLayerVersion takes effect but its answer is lost.
    front.set(Faults {
        rules: vec![Rule::new("lambda:PublishLayerVersion", Fault::Lose).times(1)],
        page_size: Some(2),
        list_lag_seconds: 600.0,
        ..Faults::default()
    });
    let first = r.f.run(&["publish-all", "--json"]).ok();
    let rows = first.json();
    assert_eq!(statuses(&rows), [("a".into(), "published".into()), ("b".into(), "published".into())]);
    assert_eq!(front.counts().fault("lose"), 1, "the lost answer never happened");
    assert_one_version_each(&r, &rows);

    // The lists still do not show either version: the records in S3 do.
    let second = r.f.run(&["publish-all", "--json"]).ok();
    let rows = second.json();
    assert_eq!(statuses(&rows), [("a".into(), "unchanged".into()), ("b".into(), "unchanged".into())]);
    assert_one_version_each(&r, &rows);
    let status = r.f.run(&["status", "--json"]).ok().json();
    assert!(status.iter().all(|row| row["status"] == "unchanged" && row["version"] == 1), "{status:?}");
}

#[test]
fn throttling_beyond_three_attempts_is_ridden_out_in_one_run() {
    let env = require_emulator!("throttling_beyond_three_attempts_is_ridden_out_in_one_run");
    let (r, front) = repo_via_front(&env, &[("a", "six==1.16.0\n"), ("b", "idna==3.10\n")]);
    // Four refusals in a row of each call kind (more than the SDK's default 3 attempts),
    // then every 5th Lambda call and every 3rd S3 write throttled for the rest of the run.
    front.set(Faults {
        rules: vec![
            Rule::new("lambda:*", Fault::Throttle).times(4),
            Rule::new("s3:PutObject", Fault::Throttle).times(4),
            Rule::new("lambda:*", Fault::Throttle).every(5),
            Rule::new("s3:PutObject", Fault::Throttle).every(3),
        ],
        ..Faults::default()
    });
    let run = r.f.run(&["publish-all", "--json", "--jobs", "4"]).ok();
    let rows = run.json();
    assert!(rows.iter().all(|row| row["status"] == "published"), "{rows:?}");
    assert_one_version_each(&r, &rows);
    let counts = front.counts();
    assert!(counts.fault("throttle") >= 8, "too few throttles to prove anything: {counts:?}");
    // At most --jobs publish jobs in flight in the region, plus the lock's renewal.
    let in_flight = counts.max_in_flight.get("us-east-1").copied().unwrap_or(0);
    assert!(in_flight <= 4 + 1, "{in_flight} calls in flight at once in us-east-1: {counts:?}");
}

#[test]
fn a_stalled_answer_becomes_a_retry_or_a_clear_error_never_a_hang() {
    let env = require_emulator!("a_stalled_answer_becomes_a_retry_or_a_clear_error_never_a_hang");
    let (r, front) = repo_via_front(&env, &[("a", "six==1.16.0\n")]);
    r.f.run(&["layer", "--all"]).ok();
    // The publish takes effect and its answer is held for 10 minutes; a ListLayers answer
    // is held too (an S3 or Lambda read that stalls is simply tried again).
    front.set(Faults {
        rules: vec![
            Rule::new("lambda:PublishLayerVersion", Fault::Stall { seconds: 600.0 }).times(1),
            Rule::new("lambda:ListLayers", Fault::Stall { seconds: 600.0 }).times(1),
        ],
        ..Faults::default()
    });
    let started = Instant::now();
    let mut child =
        r.f.cmd(&["publish-all", "--json"])
            .env("XTASK_AWS_TIMEOUT", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let deadline = started + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("publish-all hung on a stalled answer:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(statuses(&rows), [("a".into(), "published".into())]);
    assert_one_version_each(&r, &rows);
    assert_eq!(front.counts().fault("stall"), 2);
}

#[test]
fn a_run_killed_after_publishing_leaves_every_version_findable_by_the_next() {
    let env = require_emulator!("a_run_killed_after_publishing_leaves_every_version_findable_by_the_next");
    let layers = [("a", "six==1.16.0\n"), ("b", "idna==3.10\n"), ("c", "six==1.17.0\n")];
    let (r, front) = repo_via_front(&env, &layers);
    r.f.run(&["layer", "--all"]).ok();
    // The third publish takes effect but its answer never comes: the run is killed there,
    // after two versions were published and recorded and one was published unrecorded.
    // The lists lag all along, so only the records and the version numbers tell.
    front.set(Faults {
        rules: vec![Rule::new("lambda:PublishLayerVersion", Fault::Stall { seconds: 600.0 }).every(3).times(1)],
        list_lag_seconds: 600.0,
        ..Faults::default()
    });
    let mut child =
        r.f.cmd(&["publish-all", "--jobs", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while front.counts().op("lambda:PublishLayerVersion") < 3 {
        assert!(Instant::now() < deadline, "the run never reached its third publish: {:?}", front.counts());
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its third publish");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL: nothing of the run's own cleanup runs
    child.wait().unwrap();

    front.reset();
    front.set(Faults { list_lag_seconds: 600.0, ..Faults::default() });
    // The lock of the killed run is left behind: take it over after a short lease.
    let rows =
        r.f.run_with(&["publish-all", "--json", "--lock-timeout", "30"], &[("XTASK_LOCK_LEASE", "2")]).ok().json();
    let published = front.counts().op("lambda:PublishLayerVersion");
    assert_eq!(published, 0, "the rerun published again: {rows:?}");
    assert!(rows.iter().all(|row| row["status"] == "unchanged"), "{rows:?}");
    let found = rows.iter().filter(|row| s(row, "detail").contains("published by a run that stopped")).count();
    assert_eq!(found, 1, "the unrecorded version was not found by its number: {rows:?}");
    assert_one_version_each(&r, &rows);
    r.f.run(&["publish-all"]).ok();
    assert_eq!(front.counts().op("lambda:PublishLayerVersion"), 0);
}
