//! A forced rebuild that is interrupted (Ctrl-C, or killed outright) leaves the build
//! that was in dist/ as it was: its zip and its report both there and matching, so `list`
//! still says it is current. The real binary and docker engine.

use crate::common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::Fixture;

const ZIP: &str = "dist/np/np-py313-x86_64.zip";
const REPORT: &str = "dist/np/np-py313-x86_64.json";

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the rebuild is when it is stopped.
#[derive(Debug, Clone, Copy)]
enum When {
    /// Its build container is running.
    Installing,
    /// The new zip is packed and being written: its temporary file is a FIFO nobody reads
    /// yet, so the write blocks there until the test has stopped the run.
    WritingTheZip,
}

/// Waits until `child` is at `when`, failing if it finished first.
fn wait_until(f: &Fixture, child: &mut Child, when: When) {
    let started = Instant::now();
    let pid = child.id();
    match when {
        When::Installing => {
            let prefix = format!("xtask-build-{pid}-");
            loop {
                let ps = Command::new("docker").args(["ps", "--format", "{{.Names}}"]).output().unwrap();
                if String::from_utf8_lossy(&ps.stdout).lines().any(|l| l.starts_with(&prefix)) {
                    return;
                }
                assert!(child.try_wait().unwrap().is_none(), "the rebuild ended before its container was seen");
                assert!(started.elapsed() < Duration::from_secs(120), "the build container never started");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        When::WritingTheZip => {
            // Opening the FIFO for reading returns once the run opened it to write the zip;
            // nothing is read, so it blocks in that write (the zip is far over a pipe's 64 KiB).
            let fifo = f.path(&format!("dist/np/.np-py313-x86_64.zip.tmp-{pid}"));
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let reader = std::fs::File::open(&fifo).unwrap();
                tx.send(()).unwrap();
                // Held open until the run is gone, so the writer neither fails nor finishes.
                std::thread::sleep(Duration::from_secs(600));
                drop(reader);
            });
            loop {
                if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                    std::thread::sleep(Duration::from_millis(300));
                    return;
                }
                assert!(child.try_wait().unwrap().is_none(), "the rebuild ended without writing its zip");
                assert!(started.elapsed() < Duration::from_secs(300), "the zip was never written");
            }
        }
    }
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// The state of dist/ the test compares: the zip's sha256, and the report's.
fn dist_state(f: &Fixture, what: &str) -> (String, serde_json::Value) {
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(f.path(REPORT)).unwrap_or_else(|e| panic!("{what}: {REPORT} is gone ({e})")),
    )
    .unwrap();
    (sha256_hex(&f.path(ZIP)), report)
}

/// `list --json`'s `dist` of the one unit.
fn listed(f: &Fixture) -> String {
    let run = f.run(&["list", "--json"]).ok();
    run.json()[0]["dist"].as_str().unwrap().to_string()
}

#[test]
fn an_interrupted_forced_rebuild_keeps_the_old_zip_and_report() {
    let env = require_docker!("an_interrupted_forced_rebuild_keeps_the_old_zip_and_report");
    let f = Fixture::new(&env, &[("np", "numpy==2.3.5\n")]);
    f.run(&["layer", "np"]).ok();
    let (zip_sha, report) = dist_state(&f, "the first build");
    assert_eq!(report["sha256"].as_str(), Some(zip_sha.as_str()));
    assert_eq!(listed(&f), "current");

    for when in [When::Installing, When::WritingTheZip] {
        for signal in ["INT", "KILL"] {
            let what = format!("SIG{signal} while {when:?}");
            let mut child = f.cmd(&["layer", "np", "--force"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
            let pid = child.id();
            let fifo = f.path(&format!("dist/np/.np-py313-x86_64.zip.tmp-{pid}"));
            if let When::WritingTheZip = when {
                mkfifo(&fifo);
            }
            wait_until(&f, &mut child, when);
            Command::new("kill").args([format!("-{signal}"), pid.to_string()]).status().unwrap();
            let out = child.wait_with_output().unwrap();
            if signal == "INT" {
                assert_eq!(out.status.code(), Some(130), "{what}: {}", String::from_utf8_lossy(&out.stderr));
            }
            // What SIGKILL cannot clean: its container and its temporary files.
            let prefix = format!("name=xtask-build-{pid}-");
            let ps = Command::new("docker").args(["ps", "-aq", "--filter", &prefix]).output().unwrap();
            for id in String::from_utf8_lossy(&ps.stdout).split_whitespace() {
                Command::new("docker").args(["rm", "--force", id]).output().unwrap();
            }
            let _ = std::fs::remove_file(&fifo);

            assert_eq!(dist_state(&f, &what), (zip_sha.clone(), report.clone()), "{what}: the old zip and report");
            assert_eq!(listed(&f), "current", "{what}");
        }
    }

    // Nothing of the interrupted runs stands in the way of the next one.
    f.run(&["layer", "np", "--force"]).ok();
    assert_eq!(dist_state(&f, "the last build").0, zip_sha);
    assert_eq!(listed(&f), "current");
}
