//! Hostile tests of `usage`, `rollout` and `prune`: bad input, corrupt records, faults.

use aws_sdk_lambda::types::Architecture;

use crate::repo::repo;

#[test]
fn a_stack_goes_onto_a_function_without_repo_layers_and_skips_functions_of_another_target() {
    let env =
        require_emulator!("a_stack_goes_onto_a_function_without_repo_layers_and_skips_functions_of_another_target");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    let toml = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
    std::fs::write(
        r.f.path("layers.toml"),
        toml.replace(r#"architectures = ["x86_64"]"#, r#"architectures = ["x86_64", "arm64"]"#),
    )
    .unwrap();
    r.f.stack("s", "layers = [\"six\"]\nruntime = \"python3.13\"\n");
    r.f.stack("ghost", "layers = [\"six\", \"ghost\"]\nruntime = \"python3.13\"\n");
    r.f.write("layers/six/requirements.txt", "six==1.16.0\n");
    r.f.run(&["publish", "six", "--no-check", "--arch", "x86_64"]).ok();
    let foreign = r.publish_direct(&format!("{}-foreign", r.prefix), "another team's layer", Architecture::X8664);
    let arm = r.publish_direct(&format!("{}-six-py313-arm64", r.prefix), "six for arm64", Architecture::Arm64);
    let x = r.create_function("x", &[r.arn("six", 1)], Architecture::X8664, 0);
    let a = r.create_function("a", std::slice::from_ref(&arm), Architecture::Arm64, 0);
    let bare = r.create_function("bare", std::slice::from_ref(&foreign), Architecture::X8664, 0);
    r.f.write("layers/six/requirements.txt", "six==1.17.0\n");
    r.f.run(&["publish", "six", "--no-check", "--arch", "x86_64"]).ok();

    // The arm64 function attaches the same repo layer, built for arm64: stack s (x86_64)
    // is not its stack, so it is neither moved nor allowed to refuse the rollout.
    let run = r.f.run(&["rollout", "--stack", "s"]).ok();
    assert!(run.stderr.contains("1 updated, 0 failed"), "{}", run.stderr);
    assert_eq!(r.layers_of(&x), [r.arn("six", 2)]);
    assert_eq!(r.layers_of(&a), [arm]);

    // A function attaching no repo layer yet is put on the stack when named (the README's
    // "to put a function on a stack it does not match yet"), after its other layers.
    let run = r.f.run(&["rollout", "--stack", "s", "--function", &bare]).ok();
    assert!(run.stderr.contains("1 updated, 0 failed"), "{}", run.stderr);
    assert_eq!(r.layers_of(&bare), [foreign.clone(), r.arn("six", 2)]);
    // ...and --undo takes it off again.
    r.f.run(&["rollout", "--undo"]).ok();
    assert_eq!(r.layers_of(&bare), [foreign]);

    // A stack naming a layer the repo does not have says so, as `stack` does.
    r.f.run(&["rollout", "--stack", "ghost"]).fails_with(&["names layer ghost, which does not exist"]);
}

#[test]
fn wrong_function_names_and_bad_records_fail_with_one_line_before_any_plan() {
    let env = require_emulator!("wrong_function_names_and_bad_records_fail_with_one_line_before_any_plan");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let f = r.create_function("f", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{f}");

    // An ARN in a region the profile does not have, a qualified ARN, an empty name.
    let other = arn.replace("us-east-1", "eu-west-1");
    r.f.run(&["rollout", "--function", &other]).fails_with(&["eu-west-1, which is not a region of the profile"]);
    let qualified = format!("{arn}:$LATEST");
    r.f.run(&["rollout", "--function", &qualified]).fails_with(&["a qualified ARN", &arn]);
    r.f.run(&["rollout", "--function", ""]).fails_with(&["an empty function name"]);

    // A corrupt record, or another profile's: refused before anything is planned or built.
    let record = r.f.path("published/staging-rollouts.json");
    for text in ["{", r#"{"profile":"production","rollouts":[]}"#] {
        std::fs::write(&record, text).unwrap();
        let run = r.f.run(&["rollout", "--function", &f]).fails_with(&["invalid rollout record"]);
        assert!(!run.stderr.contains("rollout plan"), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert_eq!(r.layers_of(&f), [r.arn("six", 1)]);
    }
    std::fs::remove_file(&record).unwrap();

    // --undo of a rollout whose function was deleted since: one line, nothing changed.
    r.f.run(&["rollout", "--function", &f]).ok();
    r.emu.rt.block_on(r.emu.lambda.delete_function().function_name(&f).send()).unwrap();
    let run = r.f.run(&["rollout", "--undo"]).fails_with(&["cannot undo the rollout", &f, "nothing was changed"]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn with_a_layer_name_shared_by_two_architectures_a_function_moves_to_the_newest_of_its_own() {
    let env =
        require_emulator!("with_a_layer_name_shared_by_two_architectures_a_function_moves_to_the_newest_of_its_own");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    let toml = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
    let shared = format!("{}-shared-{{layer}}", r.prefix);
    std::fs::write(
        r.f.path("layers.toml"),
        toml.replace(r#"architectures = ["x86_64"]"#, r#"architectures = ["x86_64", "arm64"]"#).replace(
            &format!("layer_name = \"{}-{{layer}}-{{py}}-{{arch}}\"", r.prefix),
            &format!("layer_name = \"{shared}\""),
        ),
    )
    .unwrap();
    let name = format!("{}-shared-six", r.prefix);
    let arn = |v: i64| format!("arn:aws:lambda:us-east-1:123456789012:layer:{name}:{v}");
    let publish = |reqs: &str| {
        r.f.write("layers/six/requirements.txt", reqs);
        r.f.run(&["publish", "six", "--no-check", "--arch", "x86_64"]).ok();
    };
    publish("six==1.16.0\n");
    let f = r.create_function("f", &[arn(1)], Architecture::X8664, 0);
    publish("six==1.17.0\n");
    // The newest version of the shared name is arm64's: not an upgrade for an x86_64 function.
    let arm = r.publish_direct(&name, "six for arm64", Architecture::Arm64);
    assert_eq!(arm, arn(3));
    let run = r.f.run(&["usage", "--json"]).ok();
    let row = run.json().into_iter().find(|x| x["function"] == f.as_str()).unwrap();
    assert_eq!(row["layers"][0]["newest"], 2, "{row:#}");
    let run = r.f.run(&["rollout", "--all-outdated"]).ok();
    assert!(run.stderr.contains("1 updated, 0 failed"), "{}", run.stderr);
    assert_eq!(r.layers_of(&f), [arn(2)]);
}

#[test]
fn prune_keeps_a_version_only_a_published_function_version_attaches() {
    let env = require_emulator!("prune_keeps_a_version_only_a_published_function_version_attaches");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let f = r.create_function("f", &[r.arn("six", 1)], Architecture::X8664, 0);
    // Version 1 of the function (an alias `live` may point at it) keeps six:1.
    let v = r.emu.rt.block_on(r.emu.lambda.publish_version().function_name(&f).send()).unwrap();
    let version = v.version().unwrap().to_string();
    r.publish("six", "six==1.17.0\n");
    r.emu
        .rt
        .block_on(r.emu.lambda.update_function_configuration().function_name(&f).layers(r.arn("six", 2)).send())
        .unwrap();
    let run = r.f.run(&["prune", "--keep", "1", "--json"]).ok();
    let rows = run.json();
    let v1 = rows.iter().find(|x| x["version"] == 1).unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(v1["action"], "keep", "{v1:#}");
    assert!(v1["reason"].as_str().unwrap().contains(&format!("{f}:{version}")), "{v1:#}");
    assert_eq!(r.emu.versions(&r.layer_name("six")), [1, 2]);
}

#[test]
fn a_second_undo_does_not_reapply_the_rollout() {
    let env = require_emulator!("a_second_undo_does_not_reapply_the_rollout");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.publish("six", "six==1.16.0\n");
    let f = r.create_function("f", &[r.arn("six", 1)], Architecture::X8664, 0);
    r.publish("six", "six==1.17.0\n");
    r.f.run(&["rollout", "--all-outdated"]).ok();
    assert_eq!(r.layers_of(&f), [r.arn("six", 2)]);
    // The undo plan names the repo layer, as a rollout's does (docs/json.md).
    let plan = r.f.run(&["rollout", "--undo", "--dry-run", "--json"]).ok().json();
    assert_eq!(plan[0]["moves"][0]["layer"], "six", "{plan:#?}");
    assert_eq!((plan[0]["moves"][0]["from"].as_i64(), plan[0]["moves"][0]["to"].as_i64()), (Some(2), Some(1)));
    r.f.run(&["rollout", "--undo"]).ok();
    assert_eq!(r.layers_of(&f), [r.arn("six", 1)]);
    // Run again (in a hurry, or to retry one that failed part-way): nothing to do, and the
    // function stays restored rather than being moved forward again.
    let run = r.f.run(&["rollout", "--undo"]).ok();
    assert!(run.stderr.contains("nothing to undo"), "{}", run.stderr);
    assert_eq!(r.layers_of(&f), [r.arn("six", 1)]);
    // prune keeps what that undo restores (the rollout's `before`), not only the undo's.
    let run = r.f.run(&["prune", "--keep", "1", "--dry-run", "--json"]).ok();
    let v1 = run.json().into_iter().find(|x| x["version"] == 1).unwrap();
    assert_eq!(v1["action"], "keep", "{v1:#}");
}

#[test]
fn usage_of_a_misspelt_layer_is_an_error_not_an_empty_answer() {
    let env = require_emulator!("usage_of_a_misspelt_layer_is_an_error_not_an_empty_answer");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.f.run(&["usage", "sxi"]).fails_with(&["unknown layer `sxi`", "known layers: six"]);
    r.f.run(&["usage", "six"]).ok();
}

#[test]
fn a_region_named_twice_in_the_profile_is_a_config_error_before_any_call() {
    let env = require_emulator!("a_region_named_twice_in_the_profile_is_a_config_error_before_any_call");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    let path = r.f.path("layers.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = text.split_once("[profiles.production]").unwrap();
    let head = head.replacen(r#"regions = ["us-east-1"]"#, r#"regions = ["us-east-1", "us-east-1"]"#, 1);
    let head = regex_free_bucket(&head);
    std::fs::write(&path, format!("{head}[profiles.production]{rest}")).unwrap();
    // Every command that reads the profile refuses it, naming the file, line and region:
    // surveying, moving or pruning a region twice is never what was meant.
    for args in [&["usage"][..], &["rollout", "--all-outdated"], &["prune", "--keep", "1", "--dry-run"]] {
        let run = r.f.run(args).fails_with(&["layers.toml:", "`us-east-1` is listed twice"]);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
}

/// The staging bucket with a `{region}` suffix (a profile of several regions needs one).
fn regex_free_bucket(profile: &str) -> String {
    let start = profile.find("bucket = \"").unwrap() + "bucket = \"".len();
    let end = start + profile[start..].find('"').unwrap();
    format!("{}-{{region}}{}", &profile[..end], &profile[end..])
}
