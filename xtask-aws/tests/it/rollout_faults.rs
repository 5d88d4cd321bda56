//! `rollout` (and `--undo`) against Lambda as it really behaves, through the fault-injecting
//! front (`aws-front`) of the emulator: lost UpdateFunctionConfiguration answers (the call
//! took effect), 409 ResourceConflictException, and functions whose update stays in
//! progress for a while (or beyond the bound, `XTASK_ROLLOUT_WAIT`).

use std::time::{Duration, Instant};

use aws_front::{Fault, Faults, Front, Rule};
use aws_sdk_lambda::types::Architecture;
use serde_json::Value;

use crate::emulator::Emulator;
use crate::repo::{repo, Repo};

const UPDATE: &str = "lambda:UpdateFunctionConfiguration";

/// A front of the emulator, with the fixture's profiles sending every call through it.
fn front(r: &Repo) -> Front {
    let front = Front::start(&r.endpoint).unwrap();
    let toml = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
    let endpoint = format!("endpoint_url = \"{}\"", r.endpoint);
    assert!(toml.contains(&endpoint), "{toml}");
    std::fs::write(r.f.path("layers.toml"), toml.replace(&endpoint, &format!("endpoint_url = \"{}\"", front.url())))
        .unwrap();
    front
}

/// (function, status, reason) of each function of the last rollout in the record.
fn last_rollout(r: &Repo) -> (String, Vec<(String, String, String)>) {
    let text = std::fs::read_to_string(r.f.path("published/staging-rollouts.json")).unwrap();
    let record: Value = serde_json::from_str(&text).unwrap();
    let last = record["rollouts"].as_array().unwrap().last().unwrap().clone();
    let rows = last["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
            (s("function"), s("status"), s("reason"))
        })
        .collect();
    (last["how"].as_str().unwrap().to_string(), rows)
}

/// Makes an update of `function` through the front by hand (its description), so that the
/// front reports it in progress for `update_seconds`.
fn update_by_hand(front: &Front, function: &str) {
    let emu = Emulator::new(&front.url(), "us-east-1");
    let call = emu.lambda.update_function_configuration().function_name(function).description("by hand");
    emu.rt.block_on(call.send()).unwrap();
}

#[test]
fn lost_answers_and_a_409_end_with_every_moved_function_recorded_successful() {
    let env = require_emulator!("lost_answers_and_a_409_end_with_every_moved_function_recorded_successful");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let a = r.create_function("a", &[r.arn("six", 1)], Architecture::X8664, 0);
    let b = r.create_function("b", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    let front = front(&r);

    // The first three UpdateFunctionConfiguration calls take effect but their answers are
    // lost (the SDK's three attempts of a function, or the attempts of both), the fourth
    // is refused with a 409 without taking effect.
    front.set(Faults {
        rules: vec![Rule::new(UPDATE, Fault::Lose).times(3), Rule::new(UPDATE, Fault::Conflict).times(1)],
        ..Default::default()
    });
    let run = r.f.run(&["rollout", "--all-outdated"]).ok();
    let counts = front.counts();
    assert_eq!((counts.fault("lose"), counts.fault("conflict")), (3, 1), "{counts:?}\n{}", run.stderr);
    assert!(run.stderr.contains("2 updated, 0 failed"), "{}", run.stderr);
    assert_eq!(r.layers_of(&a), [r.arn("six", 2)]);
    assert_eq!(r.layers_of(&b), [r.arn("six", 2)]);
    let (how, rows) = last_rollout(&r);
    assert_eq!(how, "--all-outdated");
    assert!(rows.iter().all(|(_, status, _)| status == "successful"), "{rows:#?}");
    assert!(rows.iter().any(|(_, _, reason)| reason.starts_with("confirmed after")), "{rows:#?}");
    assert!(run.stderr.contains("confirmed after"), "{}", run.stderr);

    // --undo gets the same treatment. Every answer is lost now, so the SDK's retries run
    // out for both functions: each is read back and confirmed, not failed.
    front.set(Faults { rules: vec![Rule::new(UPDATE, Fault::Lose)], ..Default::default() });
    let run = r.f.run(&["rollout", "--undo"]).ok();
    assert!(run.stderr.contains("2 updated, 0 failed"), "{}", run.stderr);
    assert_eq!((r.layers_of(&a), r.layers_of(&b)), (vec![r.arn("six", 1)], vec![r.arn("six", 1)]));
    let (how, rows) = last_rollout(&r);
    assert!(how.starts_with("--undo"), "{how}");
    for (f, status, reason) in &rows {
        assert_eq!(status, "successful", "{rows:#?}");
        assert!(reason.starts_with("confirmed after") && reason.contains("lost the connection"), "{f}: {reason}");
    }
    assert!(front.counts().fault("lose") >= 3 + 2, "{:?}", front.counts());
}

#[test]
fn an_update_in_progress_is_waited_for_then_the_rollout_succeeds() {
    let env = require_emulator!("an_update_in_progress_is_waited_for_then_the_rollout_succeeds");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let f = r.create_function("f", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    let front = front(&r);

    // Someone's update of f is in progress for 6 s when the rollout starts (planning
    // takes about 3 of them); then the rollout's own update is in progress for 6 s.
    let window = 6.0;
    front.set(Faults { update_seconds: window, ..Default::default() });
    update_by_hand(&front, &f);
    let started = Instant::now();
    let run = r.f.run(&["rollout", "--function", &f]).ok();
    let took = started.elapsed();
    let note = format!("waiting for function {f} (us-east-1): an update is in progress (up to 300 s)");
    assert!(run.stderr.contains(&note), "{}", run.stderr);
    assert_eq!(run.stderr.matches(&format!("waiting for function {f}")).count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("1 updated, 0 failed"), "{}", run.stderr);
    assert_eq!(r.layers_of(&f), [r.arn("six", 2)]);
    assert!(took >= Duration::from_secs_f64(window), "the rollout's own update was not waited for: {took:?}");
    let (_, rows) = last_rollout(&r);
    assert_eq!(rows, [(f.clone(), "successful".to_string(), String::new())]);
    // Never a 409: the rollout waited instead of calling into the update in progress.
    assert_eq!(front.counts().op(UPDATE), 2, "{:?}", front.counts());
}

#[test]
fn an_update_that_never_finishes_within_the_bound_is_failed_with_what_to_do() {
    let env = require_emulator!("an_update_that_never_finishes_within_the_bound_is_failed_with_what_to_do");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let busy = r.create_function("busy", &[r.arn("six", 1)], Architecture::X8664, 0);
    let slow = r.create_function("slow", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    let front = front(&r);

    // `busy` has someone's update in progress for 10 minutes; `slow` takes the rollout's
    // update and then stays in progress as long. The bound is 3 s.
    front.set(Faults { update_seconds: 600.0, ..Default::default() });
    update_by_hand(&front, &busy);
    let started = Instant::now();
    let run = r.f.run_with(&["rollout", "--all-outdated"], &[("XTASK_ROLLOUT_WAIT", "3")]);
    let took = started.elapsed();
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("0 updated, 2 failed"), "{}", run.stderr);
    assert!(took < Duration::from_secs(120), "the bound was not kept: {took:?}");
    let line = |f: &str| {
        run.stderr
            .lines()
            .find(|l| l.starts_with("error:") && l.contains(f))
            .unwrap_or_else(|| panic!("no error line for {f}:\n{}", run.stderr))
            .to_string()
    };
    let busy_line = line(&busy);
    for needle in ["still in progress after 3 s", "its layers were not changed", "aws lambda wait function-updated-v2"]
    {
        assert!(busy_line.contains(needle), "{busy_line}");
    }
    let slow_line = line(&slow);
    for needle in ["Lambda still reports the update InProgress after 3 s", "function-updated-v2 --function-name"] {
        assert!(slow_line.contains(needle), "{slow_line}");
    }
    assert_eq!(r.layers_of(&busy), [r.arn("six", 1)], "never called into an update in progress");
    assert_eq!(r.layers_of(&slow), [r.arn("six", 2)]);
    let (_, rows) = last_rollout(&r);
    assert!(rows.iter().all(|(_, status, reason)| status == "failed" && !reason.is_empty()), "{rows:#?}");

    // A bound that is not a number of seconds is refused before anything is written.
    r.f.run_with(&["rollout", "--function", &busy], &[("XTASK_ROLLOUT_WAIT", "soon")])
        .fails_with(&["invalid XTASK_ROLLOUT_WAIT=soon", "seconds"]);
}
