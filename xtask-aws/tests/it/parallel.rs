//! Publish's build phase builds the changed units at once: the real binary, the real
//! docker engine (its CLI wrapped to log when each build container starts and ends) and
//! the emulator.

use crate::common::{intervals, logging_docker, overlapping, Fixture};
use crate::emulator::Emulator;

#[test]
fn publish_builds_the_changed_units_at_once_and_publishes_each() {
    let env = require_emulator!("publish_builds_the_changed_units_at_once_and_publishes_each");
    let f = Fixture::new(&env, &[("idna", "idna==3.10\n"), ("six", "six==1.16.0\n")]);
    let prefix = f.prefix_layer_names("par");
    let log = f.path("docker.log");
    let docker = logging_docker(f.root(), &log);
    f.run(&["bootstrap"]).ok();
    let run = f.run_with(&["publish-all", "--build-jobs", "2", "--json"], &[("DOCKER", &docker)]).ok();
    // Build containers are named; the import checks' are not.
    let builds: Vec<_> = intervals(&log).into_iter().filter(|(n, _, _)| n.starts_with("xtask-build-")).collect();
    assert_eq!(builds.len(), 2, "{builds:?}");
    assert!(overlapping(&builds), "publish's build phase must build both units at once: {builds:?}");
    let rows = run.json();
    let status: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["layer"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(status, [("idna", "published"), ("six", "published")], "{}", run.stdout);
    let emu = Emulator::new(env.endpoint.as_deref().unwrap(), "us-east-1");
    assert_eq!(emu.layers_named(&prefix).len(), 2);
}
