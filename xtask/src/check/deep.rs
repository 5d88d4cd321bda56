//! `check --deep`: imports every module of a layer (not only its top-level ones), once
//! from the unslimmed install and once from the zip, in the check image with `/opt/python`
//! laid out as Lambda does (the import check's way, `imports.rs`), and reports each module
//! that imports before slimming and fails after, with the rule or `exclude` pattern that
//! removed what it needed.
//!
//! The unslimmed install is the zip plus what its build removed: slimming moves removed
//! entries into `dist/.work/<unit>.removed/` (`slim::Record`), a rename inside one
//! filesystem, so no second install is needed. Modules run in batches, each in its own
//! interpreter (one crashing extension cannot hide the rest: the modules of a batch that
//! crashed or overran are retried one by one), each import under a timeout.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::{unpack, Finding, Kind};
use crate::docker_cli::Docker;
use crate::runtime::{Arch, Runtime};
use crate::slim::Record;

/// Seconds one import may take.
pub const MODULE_TIMEOUT_SECS: u64 = 20;
/// Modules per interpreter.
const BATCH: usize = 40;
/// Module names never imported: test suites and entry points.
const SKIPPED: &[&str] = &["tests", "test", "__main__", "conftest"];

/// What `--deep` tried, in the unit's JSON as `deep`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeepSummary {
    /// Modules tried (every module of the layer but test suites and `__main__`).
    pub modules: usize,
    /// Modules that import after slimming.
    pub ok: usize,
    /// Modules that import before slimming and fail after (each is a finding).
    pub broken_by_slimming: usize,
    /// Modules that fail before slimming too: the distribution's, not the slimming's.
    pub broken_upstream: Vec<Upstream>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    pub module: String,
    pub error: String,
}

const SCRIPT: &str = r#"
import concurrent.futures, json, os, subprocess, sys
todo = json.load(open("/opt/xtask-deep.json"))
T, B = todo["timeout"], todo["batch"]
WORKER = '''
import importlib, json, signal, sys
T = int(sys.argv[1])
def alarm(*_):
    raise TimeoutError("import took over %d s" % T)
signal.signal(signal.SIGALRM, alarm)
for m in sys.argv[2:]:
    signal.alarm(T)
    try:
        importlib.import_module(m)
        r = None
    except BaseException as e:
        r = (type(e).__name__ + ": " + " ".join(str(e).split()))[:400]
    finally:
        signal.alarm(0)
    sys.stdout.write("\\nXTASK_MOD " + json.dumps([m, r]) + "\\n")
    sys.stdout.flush()
'''
def run(group, limit):
    got, note = {}, None
    try:
        p = subprocess.run([sys.executable, "-c", WORKER, str(T)] + group, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=limit, cwd="/tmp")
        out, err = p.stdout, p.stderr
        if p.returncode != 0:
            note = "the interpreter died (exit code %d)" % p.returncode
    except subprocess.TimeoutExpired as e:
        out, err = e.stdout or b"", e.stderr or b""
        note = "timed out after %d s" % limit
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("XTASK_MOD "):
            m, r = json.loads(line[10:])
            got[m] = r
    tail = " ".join(err.decode(errors="replace").split()[-30:])
    return got, note, tail
def batch(group):
    got, note, tail = run(group, max(60, 4 * T))
    rest = [m for m in group if m not in got]
    if len(group) > 1:
        for m in rest:
            g, n, t = run([m], T + 10)
            got.update(g)
            if m not in got:
                got[m] = ("Crash: " + (n or "no result") + ((": " + t) if t else ""))[:400]
    else:
        for m in rest:
            got[m] = ("Crash: " + (note or "no result") + ((": " + tail) if tail else ""))[:400]
    return got
mods = todo["modules"]
groups = [mods[i:i + B] for i in range(0, len(mods), B)]
results = {}
with concurrent.futures.ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
    for got in pool.map(batch, groups):
        results.update(got)
print("XTASK_RESULT " + json.dumps(results))
"#;

#[derive(Deserialize)]
struct Results(std::collections::BTreeMap<String, Option<String>>);

/// Every module under `python` of the top-level names `tops`, dotted, sorted: packages,
/// `.py` modules and extension modules, none inside a test suite.
pub fn modules(python: &Path, tops: &[String]) -> Result<Vec<String>> {
    let mut out = std::collections::BTreeSet::new();
    for top in tops {
        if SKIPPED.contains(&top.as_str()) {
            continue;
        }
        let dir = python.join(top);
        if !dir.is_dir() {
            out.insert(top.clone());
            continue;
        }
        let mut walk = walkdir::WalkDir::new(&dir).sort_by_file_name().into_iter();
        while let Some(e) = walk.next() {
            let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_dir() {
                if e.depth() > 0 && (!is_identifier(&name) || name == "__pycache__" || SKIPPED.contains(&name.as_str()))
                {
                    walk.skip_current_dir();
                }
                continue;
            }
            let stem = if let Some(s) = name.strip_suffix(".py") {
                s
            } else if name.ends_with(".so") {
                name.split('.').next().unwrap_or_default()
            } else {
                continue;
            };
            if !is_identifier(stem) || SKIPPED.contains(&stem) {
                continue;
            }
            let rel = e.path().parent().expect("under the top folder").strip_prefix(python).expect("under python/");
            let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            if stem != "__init__" {
                parts.push(stem.to_string());
            }
            out.insert(parts.join("."));
        }
    }
    Ok(out.into_iter().collect())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Copies the tree `from` over `onto` (files and links; `from` may be on another
/// filesystem than `onto`, where a hard link cannot be made).
fn copy_over(from: &Path, onto: &Path) -> Result<()> {
    for e in walkdir::WalkDir::new(from).sort_by_file_name() {
        let e = e.with_context(|| format!("cannot read {}", from.display()))?;
        let to = onto.join(e.path().strip_prefix(from).expect("under its root"));
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to)
        } else if e.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &to)
        } else {
            std::fs::copy(e.path(), &to).map(|_| ())
        }
        .with_context(|| format!("cannot copy {} to {}", e.path().display(), to.display()))?;
    }
    Ok(())
}

/// Imports `modules` with `opt` as `/opt` in `image`: module -> None or the error.
fn import_all(
    docker: &Docker,
    image: &str,
    arch: Arch,
    runtime: Runtime,
    opt: &Path,
    modules: &[String],
) -> Result<std::collections::BTreeMap<String, Option<String>>> {
    let todo = serde_json::json!({"modules": modules, "timeout": MODULE_TIMEOUT_SECS, "batch": BATCH});
    let file = opt.join("xtask-deep.json");
    std::fs::write(&file, todo.to_string()).with_context(|| format!("cannot write {}", file.display()))?;
    let pythonpath = format!("/opt/python/lib/python3.{}/site-packages:/opt/python", runtime.minor);
    let output = docker.run_python(image, arch, opt, &pythonpath, SCRIPT, "");
    std::fs::remove_file(&file).ok();
    let output = output?;
    let Some(json) = output.lines().find_map(|l| l.strip_prefix("XTASK_RESULT ")) else {
        anyhow::bail!("the deep import script did not finish:\n{}", crate::process::fence_tail(&output, 10));
    };
    Ok(serde_json::from_str::<Results>(json).context("unreadable deep import result")?.0)
}

/// The module an import error names: `No module named 'pkg.tests'`, or `pkg.helpers` for
/// `cannot import name 'helpers' from 'pkg'` (`from pkg import helpers`).
fn missing_module(error: &str) -> Option<String> {
    let quoted = |after: &str| -> Option<String> {
        let rest = error.split_once(after)?.1;
        rest.split_once('\'').map(|(m, _)| m.to_string())
    };
    quoted("No module named '").or_else(|| Some(format!("{}.{}", quoted("from '")?, quoted("cannot import name '")?)))
}

/// Runs `--deep`: `before` and `after` are folders to build the two `/opt`s in (`after`
/// already holds the zip's tree over the required layers'), `removed` the unit's record
/// folder, `own` the layer's `python/` as zipped, `tops` its top-level modules. The
/// modules tried are those that ship (a module `exclude` removes is not one).
#[allow(clippy::too_many_arguments)]
pub fn check(
    before: &Path,
    after: &Path,
    layers: &[PathBuf],
    removed: &Path,
    record: &Record,
    own: &Path,
    tops: &[String],
    runtime: Runtime,
    arch: Arch,
    image: &str,
    docker: &Docker,
) -> Result<(DeepSummary, Vec<Finding>)> {
    let started = std::time::Instant::now();
    for dir in layers {
        unpack::overlay(dir, before)?;
    }
    copy_over(&removed.join("python"), &before.join("python"))?;
    let modules = modules(own, tops)?;
    let first = import_all(docker, image, arch, runtime, before, &modules)?;
    let ok_before: Vec<String> = modules.iter().filter(|m| matches!(first.get(*m), Some(None))).cloned().collect();
    let second = import_all(docker, image, arch, runtime, after, &ok_before)?;
    let mut summary = DeepSummary { modules: modules.len(), ..DeepSummary::default() };
    let mut findings = Vec::new();
    for m in &modules {
        match (first.get(m), second.get(m)) {
            (Some(None), Some(None)) => summary.ok += 1,
            (Some(None), after) => {
                let error = after.cloned().flatten().unwrap_or_else(|| "no result".into());
                let culprit = record.culprit(missing_module(&error).as_deref(), &error);
                let why = match culprit {
                    Some(e) if !e.patterns.is_empty() => format!(
                        "{} was removed by the layer's `exclude` pattern {}: narrow `exclude` in layer.toml",
                        e.path,
                        e.patterns.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
                    ),
                    Some(e) => format!("{} was removed by the slimming rule \"{}\"", e.path, e.rule),
                    None => "no removed file matches the error".into(),
                };
                findings.push(Finding::new(
                    Kind::Deep,
                    format!("import {m}"),
                    format!("imports before slimming, fails after: {error}; {why}"),
                ));
                summary.broken_by_slimming += 1;
            }
            (error, _) => summary.broken_upstream.push(Upstream {
                module: m.clone(),
                error: error.cloned().flatten().unwrap_or_else(|| "no result".into()),
            }),
        }
    }
    summary.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    Ok((summary, findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_but_test_suites_and_entry_points() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "pkg/__init__.py",
            "pkg/a.py",
            "pkg/__main__.py",
            "pkg/conftest.py",
            "pkg/_ext.cpython-313-x86_64-linux-gnu.so",
            "pkg/sub/__init__.py",
            "pkg/sub/b.py",
            "pkg/tests/test_a.py",
            "pkg/sub/test/x.py",
            "pkg/__pycache__/a.cpython-313.pyc",
            "pkg/data-files/c.py",
            "pkg/ns/d.py",
            "pkg/readme.txt",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        std::fs::write(d.path().join("six.py"), "").unwrap();
        let got = modules(d.path(), &["pkg".into(), "six".into(), "tests".into()]).unwrap();
        assert_eq!(got, ["pkg", "pkg._ext", "pkg.a", "pkg.ns.d", "pkg.sub", "pkg.sub.b", "six"]);
    }

    #[test]
    fn the_culprit_is_the_removed_entry_the_error_names() {
        let rec = Record {
            kept_files: String::new(),
            entries: vec![
                crate::slim::RecordEntry { path: "pkg/tests".into(), rule: "tests".into(), patterns: vec![] },
                crate::slim::RecordEntry {
                    path: "pkg/helpers.py".into(),
                    rule: "excludes".into(),
                    patterns: vec!["pkg/help*".into()],
                },
            ],
        };
        let err = "ModuleNotFoundError: No module named 'pkg.tests.data'";
        assert_eq!(rec.culprit(missing_module(err).as_deref(), err).unwrap().path, "pkg/tests");
        let err = "ModuleNotFoundError: No module named 'pkg.helpers'";
        assert_eq!(rec.culprit(missing_module(err).as_deref(), err).unwrap().path, "pkg/helpers.py");
        let err = "ImportError: cannot import name 'helpers' from 'pkg' (/opt/python/pkg/__init__.py)";
        assert_eq!(rec.culprit(missing_module(err).as_deref(), err).unwrap().path, "pkg/helpers.py");
        let err = "FileNotFoundError: [Errno 2] No such file: '/opt/python/pkg/tests/x.json'";
        assert_eq!(rec.culprit(missing_module(err).as_deref(), err).unwrap().path, "pkg/tests");
        assert!(rec.culprit(Some("other"), "ImportError: x").is_none());
    }
}
