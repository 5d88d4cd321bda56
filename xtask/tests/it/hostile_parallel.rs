//! Hostile tests of the parallel `layer --all --jobs N` (and of publish's build phase): cycles,
//! failing members, faults.

use crate::common;

use common::{Fixture, Run};

/// `layer status` of each JSON row a run printed, in order.
fn statuses(run: &Run) -> Vec<String> {
    run.json().iter().map(|r| format!("{} {}", r["layer"].as_str().unwrap(), r["status"].as_str().unwrap())).collect()
}

#[test]
fn a_requires_cycle_is_refused_as_check_refuses_it_and_the_other_units_build() {
    let env = require_docker!("a_requires_cycle_is_refused_as_check_refuses_it_and_the_other_units_build");
    let f = Fixture::new(&env, &[("idna", "idna==3.10\n"), ("six", "six==1.16.0\n"), ("zz", "six==1.16.0\n")]);
    f.write("layers/idna/layer.toml", "requires = [\"six\"]\n");
    f.write("layers/six/layer.toml", "requires = [\"idna\"]\n");
    let run = f.run(&["layer", "--all", "--jobs", "2", "--json"]).fails_with(&["require each other in a cycle"]);
    assert_eq!(statuses(&run), ["idna failed", "six failed", "zz built"], "{}", run.stdout);
    assert!(!f.path("dist/six").exists() && !f.path("dist/idna").exists());
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_merged_layer_whose_member_fails_is_not_built_and_the_member_is_installed_once() {
    let env = require_docker!("a_merged_layer_whose_member_fails_is_not_built_and_the_member_is_installed_once");
    let f = Fixture::new(&env, &[("bad", "this-package-does-not-exist-xtask==1.0\n"), ("six", "six==1.16.0\n")]);
    f.write("layers/bundle/layer.toml", "merge = [\"bad\", \"six\"]\n");
    f.write("layers/bundle/requirements.txt", "this-package-does-not-exist-xtask==1.0\nsix==1.16.0\n");
    let run = f.run(&["layer", "--all", "--jobs", "3"]).fails_with(&["bad python3.13 x86_64: uv pip install"]);
    assert!(run.stderr.contains("bundle python3.13 x86_64: not built: its member bad"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("pip install for bad").count(), 1, "bad is installed once:\n{}", run.stderr);
    assert!(run.stderr.contains("built 1, up-to-date 0, failed 2"), "{}", run.stderr);
    assert!(!f.path("dist/bundle").exists());
    let work: Vec<_> = std::fs::read_dir(f.path("dist/.work")).unwrap().collect();
    assert!(work.is_empty(), "nothing temporary is left behind: {work:?}");
}

#[test]
fn a_layer_named_twice_is_built_once() {
    let env = require_docker!("a_layer_named_twice_is_built_once");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    let run = f.run(&["layer", "six", "six", "--jobs", "2", "--json"]).ok();
    assert_eq!(run.json().len(), 1, "{}", run.stdout);
    assert_eq!(run.stderr.matches("built      six").count(), 1, "{}", run.stderr);
}

#[test]
fn publish_refuses_a_requires_cycle_even_with_no_check_and_publishes_the_rest() {
    let env = require_emulator!("publish_refuses_a_requires_cycle_even_with_no_check_and_publishes_the_rest");
    let f = Fixture::new(&env, &[("idna", "idna==3.10\n"), ("six", "six==1.16.0\n"), ("zz", "six==1.16.0\n")]);
    f.prefix_layer_names("cyc");
    f.write("layers/idna/layer.toml", "requires = [\"six\"]\n");
    f.write("layers/six/layer.toml", "requires = [\"idna\"]\n");
    f.run(&["bootstrap"]).ok();
    let run = f.run(&["publish-all", "--no-check", "--json"]).fails_with(&["require each other in a cycle"]);
    assert_eq!(statuses(&run), ["idna failed", "six failed", "zz published"], "{}", run.stdout);
    let manifest = std::fs::read_to_string(f.path("published/staging.json")).unwrap();
    assert!(
        manifest.contains("\"zz\"") && !manifest.contains("\"six\"") && !manifest.contains("\"idna\""),
        "{manifest}"
    );
}
