//! Units built at once (`layer --all --jobs N`; publish's build phase is in xtask-aws's
//! tests): the real binary and the real docker engine. A wrapper around the docker CLI
//! (`DOCKER=`) logs when each unit's install (a `docker exec` in the run's shared build
//! container) starts and ends, so overlap in time is seen, not assumed.

use crate::common;

use common::{intervals, logging_docker, overlapping, Fixture};

#[test]
fn with_two_jobs_two_units_build_at_once_and_zips_match_one_at_a_time() {
    let env = require_docker!("with_two_jobs_two_units_build_at_once");
    let layers = [("six", "six==1.16.0\n"), ("idna", "idna==3.10\n"), ("certifi", "certifi==2024.8.30\n")];
    let f = Fixture::new(&env, &layers);
    let log = f.path("docker.log");
    let docker = logging_docker(f.root(), &log);

    let run = f.run_with(&["layer", "--all", "--jobs", "2", "--json"], &[("DOCKER", &docker)]).ok();
    let iv = intervals(&log);
    assert_eq!(iv.len(), 3, "one install per unit: {iv:?}");
    assert!(overlapping(&iv), "with --jobs 2 two installs must run at once: {iv:?}");
    // Reports come out in the units' order, whatever order they finished in.
    let names: Vec<String> = run.json().iter().map(|r| r["layer"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["certifi", "idna", "six"], "{}", run.stdout);
    assert!(run.stderr.contains("built 3,"), "{}", run.stderr);
    let parallel: Vec<Vec<u8>> = layers.iter().map(|(n, _)| std::fs::read(f.zip(n)).unwrap()).collect();

    std::fs::remove_file(&log).unwrap();
    f.run_with(&["layer", "--all", "--jobs", "1", "--force"], &[("DOCKER", &docker)]).ok();
    let iv = intervals(&log);
    assert_eq!(iv.len(), 3, "{iv:?}");
    assert!(!overlapping(&iv), "with --jobs 1 builds run one after another: {iv:?}");
    for ((n, _), bytes) in layers.iter().zip(parallel) {
        assert_eq!(std::fs::read(f.zip(n)).unwrap(), bytes, "{n}: a parallel build must give the same zip");
    }
}

#[test]
fn a_failing_unit_does_not_stop_or_corrupt_the_units_built_beside_it() {
    let env = require_docker!("a_failing_unit_does_not_stop_the_others");
    let f = Fixture::new(
        &env,
        &[("a-broken", "this-package-does-not-exist-xtask==1.0\n"), ("idna", "idna==3.10\n"), ("six", "six==1.16.0\n")],
    );
    let run = f.run(&["layer", "--all", "--jobs", "2", "--json"]).fails_with(&["a-broken python3.13 x86_64"]);
    let rows = run.json();
    let status: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["layer"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(status, [("a-broken", "failed"), ("idna", "built"), ("six", "built")], "{}", run.stdout);
    assert!(run.stderr.contains("built 2, up-to-date 0, failed 1"), "{}", run.stderr);
    assert!(!f.path("dist/a-broken").exists(), "a failed unit leaves nothing in dist/");
    let work: Vec<_> = std::fs::read_dir(f.path("dist/.work")).unwrap().collect();
    assert!(work.is_empty(), "nothing temporary is left behind: {work:?}");
    // The units built beside the failure are whole: the same zips a build of their own gives.
    for n in ["idna", "six"] {
        let together = std::fs::read(f.zip(n)).unwrap();
        f.run(&["layer", n, "--force"]).ok();
        assert_eq!(std::fs::read(f.zip(n)).unwrap(), together, "{n}");
    }
}

#[test]
fn a_merged_layer_and_its_members_in_one_parallel_run_build_each_member_once() {
    let env = require_docker!("a_merged_layer_and_its_members_in_one_parallel_run");
    let f = Fixture::new(&env, &[("idna", "idna==3.10\n"), ("six", "six==1.16.0\n")]);
    f.write("layers/bundle/layer.toml", "merge = [\"idna\", \"six\"]\n");
    // As `stack --merge` generates it: the members' requirements.
    f.write("layers/bundle/requirements.txt", "idna==3.10\nsix==1.16.0\n");
    let log = f.path("docker.log");
    let docker = logging_docker(f.root(), &log);
    let run = f.run_with(&["layer", "--all", "--jobs", "2", "--json"], &[("DOCKER", &docker)]).ok();
    assert_eq!(intervals(&log).len(), 2, "each member is installed once: {:?}", intervals(&log));
    let rows = run.json();
    let status: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["layer"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    // The members were built first, by their own units; the merged layer found them current.
    assert_eq!(status, [("bundle", "built"), ("idna", "built"), ("six", "built")], "{}", run.stdout);
    let names = common::zip_names(&f.zip("bundle"));
    assert!(names.contains(&"python/idna/__init__.py".into()) && names.contains(&"python/six.py".into()), "{names:?}");
}
