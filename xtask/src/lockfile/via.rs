//! Why each package is in a lock: the `# via` lines. Per target, a second `uv pip
//! compile` of the same requirements, pinned to what the first one resolved and run
//! `--offline` from uv's cache, writes uv's `# via` annotations; they are merged over the
//! targets and written under each package's hashes (`    # via requirements.in, pandas`),
//! and, for the packages the required layers provide, in the header
//! (`#   numpy via pandas`). `cargo xtask why` reads them back: no resolver, no network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

use super::{uv, Inputs, Pin};
use crate::runtime::{Arch, Runtime};

/// For one target: each package (normalised) -> what asks for it: package names, and the
/// lock's input file (`requirements.in`, `pyproject.toml`) for a top-level requirement.
pub type Vias = BTreeMap<String, BTreeSet<String>>;

/// The prefix of the header lines naming why a package of a required layer is needed.
pub const PROVIDED_VIA: &str = "#   ";

/// `uv pip compile` again for one target, pinned to `pins` (what the first run resolved),
/// writing uv's annotations; `--offline` first (the first run filled the cache), online
/// when the cache cannot answer.
#[allow(clippy::too_many_arguments)]
pub(super) fn annotate(
    inputs: &Inputs,
    uv: &Path,
    runner: &uv::Runner,
    tmp: &Path,
    dir: &Path,
    runtime: Runtime,
    arch: Arch,
    pins: &[Pin],
) -> Result<Vias> {
    let pinned = dir.join("pins.txt");
    let text: String = pins.iter().map(|p| format!("{}=={}\n", p.name, p.version)).collect();
    std::fs::write(&pinned, text)?;
    let out = dir.join("annotated.txt");
    let path = |p: &Path| p.display().to_string();
    let mut args: Vec<String> = vec!["pip".into(), "compile".into(), path(&tmp.join("requirements.in"))];
    args.extend(["-o".into(), path(&out)]);
    args.extend(["--python-version".into(), format!("3.{}", runtime.minor)]);
    args.extend(["--python-platform".into(), uv::python_platform(runtime, arch)]);
    args.extend(["--only-binary", ":all:", "--no-header", "--quiet", "--annotation-style", "line"].map(String::from));
    args.extend(["-c".into(), path(&tmp.join("constraints.txt")), "-c".into(), path(&pinned)]);
    let what = format!("annotate-{}-{}", runtime, arch);
    let mut offline = args.clone();
    offline.push("--offline".into());
    let (mut ok, mut stderr) = runner.run(uv, tmp, &offline, &what)?;
    if !ok {
        (ok, stderr) = runner.run(uv, tmp, &args, &what)?;
    }
    if !ok {
        anyhow::bail!(
            "cannot record why each package is in layer {} for {runtime} {arch}: {}",
            inputs.layer,
            super::one_line(&stderr)
        );
    }
    let text = std::fs::read_to_string(&out).context("uv wrote no annotated requirements")?;
    Ok(parse_uv(&text, inputs.source.file()))
}

/// uv's `--annotation-style line` output: `name==1.0  # via a, b, -r /x/requirements.in`.
/// Constraint files (`-c ...`) are not reasons.
fn parse_uv(text: &str, root: &str) -> Vias {
    let mut out = Vias::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (req, via) = line.split_once("# via ").unwrap_or((line, ""));
        let name = crate::python::normalise(req.split("==").next().unwrap_or(req).trim());
        let reasons = out.entry(name).or_default();
        for v in via.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            if v.starts_with("-r ") {
                reasons.insert(root.to_string());
            } else if !v.starts_with('-') {
                reasons.insert(crate::python::normalise(v.split('[').next().unwrap_or(v).trim()));
            }
        }
    }
    out
}

/// The reasons as a lock writes them: the input file first, then packages by name.
pub fn join(reasons: &BTreeSet<String>, root: &str) -> String {
    let mut list: Vec<&str> = reasons.iter().filter(|r| *r == root).map(String::as_str).collect();
    list.extend(reasons.iter().filter(|r| *r != root).map(String::as_str));
    list.join(", ")
}

/// A lock without its reasons: what `lock --check` compares, so a lock written before
/// reasons were recorded is not "would change" for them alone.
pub fn without_reasons(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with(PROVIDED_VIA) && !l.trim_start().starts_with("# via "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// One package line of a lock, read back for `cargo xtask why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub version: String,
    /// The marker naming its targets (`None`: every target).
    pub marker: Option<String>,
    /// Why it is there (package names, or the input file).
    pub via: Vec<String>,
}

/// A lock's packages and reasons, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotated {
    pub entries: Vec<Entry>,
    /// Packages of required layers this layer needs -> the packages needing them.
    pub provided: BTreeMap<String, Vec<String>>,
    /// Whether the lock has `# via` lines at all (locks written before they were recorded
    /// have none).
    pub annotated: bool,
}

/// Reads a requirements.txt this stage wrote.
pub fn read(text: &str) -> Annotated {
    let mut a = Annotated::default();
    let split = |s: &str| s.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect::<Vec<_>>();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(PROVIDED_VIA) {
            if let Some((name, via)) = rest.split_once(" via ") {
                a.provided.insert(name.trim().to_string(), split(via));
                a.annotated = true;
            }
            continue;
        }
        let trimmed = line.trim();
        if let Some(via) = trimmed.strip_prefix("# via ") {
            if let Some(last) = a.entries.last_mut() {
                last.via = split(via);
                a.annotated = true;
            }
            continue;
        }
        if line.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            let req = line.trim_end_matches('\\').trim();
            let (spec, marker) = match req.split_once(';') {
                Some((s, m)) => (s.trim(), Some(m.trim().to_string())),
                None => (req, None),
            };
            if let Some((name, version)) = spec.split_once("==") {
                a.entries.push(Entry {
                    name: crate::python::normalise(name.trim()),
                    version: version.trim().to_string(),
                    marker,
                    via: Vec::new(),
                });
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uv_annotations_become_reasons_without_constraint_files() {
        let v = parse_uv(
            "pandas==2.3.3             # via -c /t/c.txt, -r /t/requirements.in\nPython_Dateutil==2.9.0    # via pandas, -c /t/pins.txt\n\n# The following packages were excluded\n# numpy\n",
            "requirements.in",
        );
        assert_eq!(v["pandas"], BTreeSet::from(["requirements.in".to_string()]));
        assert_eq!(v["python-dateutil"], BTreeSet::from(["pandas".to_string()]));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn a_lock_reads_back_with_reasons_and_markers() {
        let a = read(
            "# resolver: uv 0.13.9\n# provided by required layers: numpy (layer numpy)\n#   numpy via pandas\npandas==2.3.3 \\\n    --hash=sha256:aa\n    # via requirements.in\nsix==1.17.0 ; python_version == \"3.13\" \\\n    --hash=sha256:bb\n    # via python-dateutil, pandas\n",
        );
        assert!(a.annotated);
        assert_eq!(a.provided["numpy"], ["pandas"]);
        assert_eq!(a.entries[0].via, ["requirements.in"]);
        assert_eq!(a.entries[1].marker.as_deref(), Some("python_version == \"3.13\""));
        assert_eq!(a.entries[1].via, ["python-dateutil", "pandas"]);
        assert!(!read("six==1.17.0 \\\n    --hash=sha256:bb\n").annotated);
        assert_eq!(
            without_reasons("# provided by required layers: numpy (layer numpy)\n#   numpy via pandas\nsix==1 \\\n    --hash=sha256:bb\n    # via pandas\n"),
            "# provided by required layers: numpy (layer numpy)\nsix==1 \\\n    --hash=sha256:bb\n"
        );
    }
}
