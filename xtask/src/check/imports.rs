//! Import check: the runtime's Python imports every top-level module of a layer and reads
//! every distribution's version, with the layer (and the layers it requires) unpacked at
//! `/opt/python` the way Lambda unpacks layers.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::{Finding, Kind};
use crate::docker_cli::Docker;
use crate::runtime::{Arch, Runtime};

/// Where the check ran, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    In(String),
    NotRun(String),
}

/// What the check found.
pub struct Outcome {
    pub ran: Ran,
    pub passed: usize,
    pub findings: Vec<Finding>,
}

const SCRIPT: &str = r#"
import importlib, importlib.metadata as md, json, sys
todo = json.loads(sys.argv[1])
ok, failures = 0, []
for mod in todo["modules"]:
    try:
        importlib.import_module(mod)
        ok += 1
    except BaseException as e:
        failures.append(["import " + mod, (type(e).__name__ + ": " + " ".join(str(e).split()))[:400]])
for dist in todo["dists"]:
    try:
        md.version(dist)
        ok += 1
    except BaseException as e:
        failures.append(["importlib.metadata.version(" + repr(dist) + ")", type(e).__name__ + ": " + str(e)])
print("XTASK_RESULT " + json.dumps({"ok": ok, "failures": failures}))
"#;

#[derive(Deserialize)]
struct ScriptResult {
    ok: usize,
    failures: Vec<(String, String)>,
}

/// The importable top-level names of `python_dir`: packages (folders named like a module),
/// modules (`x.py`) and extension modules (`x.cpython-313-x86_64-linux-gnu.so`).
pub fn top_level_modules(python_dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(python_dir).with_context(|| format!("cannot read {}", python_dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let module = if e.file_type()?.is_dir() {
            Some(name.clone())
        } else if let Some(stem) = name.strip_suffix(".py") {
            Some(stem.to_string())
        } else if name.ends_with(".so") {
            name.split('.').next().map(str::to_string)
        } else {
            None
        };
        if let Some(m) = module.filter(|m| is_identifier(m) && m != "bin" && m != "__pycache__") {
            out.push(m);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Runs the check with `opt` (a folder holding `python/`) as `/opt`: in `image` when docker
/// is there, else with a host `python3.X` of the runtime's version, else not at all.
pub fn check(
    opt: &Path,
    modules: &[String],
    dists: &[String],
    runtime: Runtime,
    arch: Arch,
    image: &str,
    docker: Option<&Docker>,
) -> Result<Outcome> {
    let todo = serde_json::json!({"modules": modules, "dists": dists}).to_string();
    let pythonpath = format!("/opt/python/lib/python3.{}/site-packages:/opt/python", runtime.minor);
    let (ran, output) = match docker {
        Some(d) => match d.run_python(image, arch, opt, &pythonpath, SCRIPT, &todo) {
            Ok(out) => (Ran::In(image.to_string()), out),
            Err(e) => return Ok(not_run(format!("{e:#}"))),
        },
        None => {
            let python = format!("python3.{}", runtime.minor);
            let host_arch = if cfg!(target_arch = "x86_64") { Arch::X86_64 } else { Arch::Arm64 };
            if arch != host_arch || !host_python_is(&python, runtime) {
                return Ok(not_run(format!("no docker and no host {python} for {arch}")));
            }
            let local = opt.join("python");
            let out = std::process::Command::new(&python)
                .args(["-I", "-c"])
                .arg(format!("import sys; sys.path[:0] = [{:?}]\n{SCRIPT}", local.display().to_string()))
                .arg(&todo)
                .env_remove("PYTHONPATH")
                .output()
                .with_context(|| format!("cannot run {python}"))?;
            (
                Ran::In(format!("host {python}")),
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
            )
        }
    };
    let Some(json) = output.lines().find_map(|l| l.strip_prefix("XTASK_RESULT ")) else {
        return Ok(not_run(format!("the check script did not finish:\n{}", crate::process::fence_tail(&output, 10))));
    };
    let result: ScriptResult = serde_json::from_str(json).context("unreadable import check result")?;
    let findings =
        result.failures.into_iter().map(|(subject, message)| Finding::new(Kind::Import, subject, message)).collect();
    Ok(Outcome { ran, passed: result.ok, findings })
}

/// Whether `python` runs and is the runtime's version (a pyenv shim may exist and fail).
fn host_python_is(python: &str, runtime: Runtime) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == format!("3.{}", runtime.minor)
        })
}

fn not_run(reason: String) -> Outcome {
    Outcome { ran: Ran::NotRun(reason), passed: 0, findings: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_modules_are_packages_modules_and_extensions() {
        let d = tempfile::tempdir().unwrap();
        for dir in ["pandas", "numpy.libs", "pandas-2.3.3.dist-info", "bin", "__pycache__", "ns_pkg"] {
            std::fs::create_dir(d.path().join(dir)).unwrap();
        }
        for f in ["six.py", "_cffi_backend.cpython-313-x86_64-linux-gnu.so", "x.pth", "README.txt"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        assert_eq!(top_level_modules(d.path()).unwrap(), ["_cffi_backend", "ns_pkg", "pandas", "six"]);
    }
}
