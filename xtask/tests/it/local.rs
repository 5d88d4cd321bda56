//! `layers.local.toml` (this machine's images, read by every command without flags), the
//! `build` alias of `layer`, and the names a newcomer mistypes: an unknown subcommand or
//! layer names the closest one. The AWS commands' side (publish, status) is xtask-aws's
//! `local` module.

use crate::common::{Fixture, TestEnv};

/// An image no command may use: layers.toml and layer.toml name it, so a command that
/// builds or fingerprints with it was not given this machine's image.
const TEAM_IMAGE: &str = "layer-repo-test/absent-team-image:{runtime}";

/// A fixture whose committed files name [`TEAM_IMAGE`] (in `[defaults]` and a layer.toml)
/// and whose layers.local.toml names the test image.
fn fixture(env: &TestEnv) -> Fixture {
    let f = Fixture::new(env, &[("six", "six==1.16.0\n")]);
    let text = std::fs::read_to_string(f.path("layers.toml")).unwrap();
    let team = text.replace(&format!("image = \"{}\"", env.image), &format!("image = \"{TEAM_IMAGE}\""));
    assert!(!team.contains(&env.image), "the committed files still name the test image:\n{team}");
    f.write("layers.toml", &team);
    f.write("layers/six/layer.toml", &format!("image = \"{TEAM_IMAGE}\"\ncheck_image = \"{TEAM_IMAGE}\"\n"));
    f.write("layers.local.toml", &format!("image = \"{0}\"\ncheck_image = \"{0}\"\n", env.image));
    f
}

fn modified(f: &Fixture) -> std::time::SystemTime {
    f.zip("six").metadata().unwrap().modified().unwrap()
}

#[test]
fn every_command_uses_the_local_file_without_flags() {
    let env = require_docker!("every_command_uses_the_local_file_without_flags");
    let f = fixture(&env);
    let built = f.run(&["build", "six"]).ok();
    assert!(built.stderr.contains("six"), "{}", built.stderr);
    let zipped = modified(&f);

    let list = f.run(&["list", "--json"]).ok();
    let rows = list.json();
    assert_eq!((rows.len(), &rows[0]["image"], &rows[0]["dist"]), (1, &env.image.as_str().into(), &"current".into()));
    let shown = format!("layers.local.toml: build image = {}", env.image);
    assert_eq!(list.stderr.matches(&shown).count(), 1, "list says what the file sets:\n{}", list.stderr);
    assert!(list.stderr.contains(&format!("layers.local.toml: check image = {}", env.image)), "{}", list.stderr);
    let verbose = f.run(&["-v", "list"]).ok();
    assert_eq!(verbose.stderr.matches(&shown).count(), 1, "-v says it once:\n{}", verbose.stderr);

    // check imports in the local check image and does not rebuild; nor does size.
    let check = f.run(&["check", "six", "--json"]).ok();
    assert_eq!(check.json()[0]["status"], "pass", "{}", check.stdout);
    f.run(&["size", "six"]).ok();
    assert_eq!(modified(&f), zipped, "check or size rebuilt the zip: they used another image than build did");

    // Without the file the committed image is back: another fingerprint, dist/ is stale.
    std::fs::remove_file(f.path("layers.local.toml")).unwrap();
    let rows = f.run(&["list", "--json"]).ok().json();
    assert_eq!(
        (rows[0]["image"].as_str(), rows[0]["dist"].as_str()),
        (Some("layer-repo-test/absent-team-image:python3.13"), Some("stale"))
    );
}

#[test]
fn the_flag_beats_the_local_file() {
    let env = require_docker!("the_flag_beats_the_local_file");
    let f = fixture(&env);
    f.run(&["layer", "six", "--image", "layer-repo-test/absent-flag-image:x"])
        .fails_with(&["build image `layer-repo-test/absent-flag-image:x` is not present"]);
    let check = f.run(&["check", "six", "--check-image", "layer-repo-test/absent-flag-check:x"]).ok();
    assert!(
        check.stderr.contains("check image `layer-repo-test/absent-flag-check:x` is not present"),
        "{}",
        check.stderr
    );
}

#[test]
fn an_unknown_key_of_the_local_file_is_one_line_naming_file_line_and_known_keys() {
    // No docker needed: the file is refused before anything runs.
    let f = Fixture::new(&TestEnv { image: "unused".into(), endpoint: None }, &[("six", "six==1.16.0\n")]);
    f.write("layers.local.toml", "image = \"x\"\nimagee = \"y\"\n");
    for args in [&["list"][..], &["layer", "six"], &["check", "six"], &["changed"]] {
        let run = f.run(args).fails_with(&[
            "layers.local.toml:2",
            "unknown field `imagee`",
            "`image`, `check_image`, `images`, `check_images`, `profiles`",
        ]);
        assert_eq!(run.stderr.lines().count(), 1, "one line:\n{}", run.stderr);
    }
    f.write("layers.local.toml", "[profiles.staging]\nendpoint_url = \"http://127.0.0.1:9\"\nbucket = \"other\"\n");
    f.run(&["list"]).fails_with(&["layers.local.toml:3", "unknown field `bucket`", "`aws_profile` or `endpoint_url`"]);
}

#[test]
fn a_mistyped_subcommand_names_the_closest() {
    let f = Fixture::new(&TestEnv { image: "unused".into(), endpoint: None }, &[]);
    for (typed, close) in [("publsh", "publish"), ("biuld", "build"), ("lyer", "layer"), ("chek", "check")] {
        let run = f.run(&[typed]).fails_with(&[&format!("a subcommand with a similar name exists: `{close}`")]);
        assert_eq!((run.code, run.stderr.lines().count()), (Some(2), 1), "{}", run.stderr);
    }
    f.run(&["frobnicate"]).fails_with(&["no such subcommand `frobnicate`", "--help"]);
}

#[test]
fn a_mistyped_layer_names_the_closest_in_every_command() {
    let f = Fixture::new(&TestEnv { image: "unused".into(), endpoint: None }, &[("pandas", "six==1.16.0\n")]);
    for args in [
        &["layer", "pandsa"][..],
        &["build", "pandsa"],
        &["check", "pandsa"],
        &["size", "pandsa"],
        &["lock", "pandsa"],
        &["changed", "pandsa"],
    ] {
        f.run(args).fails_with(&["unknown layer `pandsa`: did you mean `pandas`?"]);
    }
}
