//! The run's shared build container (`docker exec` per unit): one per image and platform
//! serves every unit, a unit whose install fails fails alone, and no container of the run
//! is left after it, whether it ends well, with a failed unit, or by Ctrl-C. The real
//! binary and docker engine; containers are found by their label, `xtask.build-run=<pid>`.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{intervals, logging_docker, Fixture};

/// The names of the containers, running or not, labelled as made by process `pid`.
fn containers_of(pid: u32) -> Vec<String> {
    let filter = format!("label=xtask.build-run={pid}");
    let ps = Command::new("docker").args(["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]).output().unwrap();
    assert!(ps.status.success(), "docker ps: {}", String::from_utf8_lossy(&ps.stderr));
    String::from_utf8_lossy(&ps.stdout).split_whitespace().map(str::to_string).collect()
}

#[test]
fn one_shared_container_installs_every_unit_and_is_gone_after_a_run_with_a_failed_unit() {
    let env = require_docker!("one_shared_container_installs_every_unit_and_is_gone_after_a_run_with_a_failed_unit");
    let f = Fixture::new(
        &env,
        &[("a-broken", "this-package-does-not-exist-xtask==1.0\n"), ("idna", "idna==3.10\n"), ("six", "six==1.16.0\n")],
    );
    let log = f.path("docker.log");
    let docker = logging_docker(f.root(), &log);
    let child = f
        .cmd(&["layer", "--all", "--jobs", "2", "--json"])
        .env("DOCKER", &docker)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let run = common::Run::from(child.wait_with_output().unwrap(), &["layer", "--all"]);
    let run = run.fails_with(&["a-broken python3.13 x86_64"]);
    let status: Vec<(String, String)> = run
        .json()
        .iter()
        .map(|r| (r["layer"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
        .collect();
    let want = [("a-broken", "failed"), ("idna", "built"), ("six", "built")].map(|(a, b)| (a.into(), b.into()));
    assert_eq!(status, want, "{}", run.stdout);

    let shared: Vec<String> = std::fs::read_to_string(format!("{}.shared", log.display()))
        .unwrap_or_default()
        .lines()
        .map(Into::into)
        .collect();
    assert_eq!(shared.len(), 1, "one build container for the run's one image and platform: {shared:?}");
    let installs = intervals(&log);
    assert_eq!(installs.len(), 3, "{installs:?}");
    assert!(
        installs.iter().all(|(n, _, _)| n.starts_with(&format!("{}/exec-", shared[0]))),
        "every unit installs in it: {installs:?}"
    );
    assert_eq!(containers_of(pid), Vec::<String>::new(), "the run's build container is removed when it ends");
}

#[test]
fn ctrl_c_removes_the_shared_build_container() {
    let env = require_docker!("ctrl_c_removes_the_shared_build_container");
    let f = Fixture::new(&env, &[("np", "numpy==2.3.5\n")]);
    let mut child = f.cmd(&["layer", "np", "--force"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let started = Instant::now();
    while containers_of(pid).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the build ended before its container was seen");
        assert!(started.elapsed() < Duration::from_secs(120), "the build container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(containers_of(pid), Vec::<String>::new(), "Ctrl-C removes the run's build container");
}
