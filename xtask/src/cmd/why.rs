//! `cargo xtask why NAME PKG`: why package PKG is in layer NAME, per target (runtime x
//! architecture): each chain of requirements from the lock's input file down to it, read
//! from the `# via` lines `cargo xtask lock` records (offline: no resolver, no network),
//! and which required layer provides it when the layer's lock leaves it out. The
//! inverted dependency tree, like `cargo tree -i` or `uv tree --invert`.

use std::collections::{BTreeMap, VecDeque};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::config::RepoConfig;
use crate::lockfile::{self, via};
use crate::output;
use crate::python::{normalise, Requirement};
use crate::repo::Repo;
use crate::unit_id::UnitId;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layer
    pub name: String,
    /// The package (any spelling: `Python_Dateutil` is `python-dateutil`)
    pub package: String,
    #[command(flatten)]
    pub output: super::args::OutputArgs,
}

/// One package of a chain.
#[derive(Debug, Clone, Serialize)]
struct Node {
    name: String,
    version: String,
    /// The required layer that provides it (it is not in this layer's lock).
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<String>,
}

/// What `--json` prints: one object per target.
#[derive(Debug, Serialize)]
struct Answer {
    #[serde(flatten)]
    unit: UnitId,
    package: String,
    /// Its version on this target; `null` when this target does not need it.
    version: Option<String>,
    /// The required layer providing it, when this layer's lock leaves it out.
    provided_by: Option<String>,
    /// Each chain from a top-level requirement (first) down to the package (last): the
    /// shortest one for each top-level requirement it is reached from.
    chains: Vec<Vec<Node>>,
}

/// A package present on one target: its version, what asks for it, the layer providing it.
struct Present {
    version: String,
    via: Vec<String>,
    layer: Option<String>,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let config = RepoConfig::load(&repo)?;
    let name = &args.name;
    let layer = config.layer(&repo, name)?;
    let Some(inputs) = lockfile::inputs(&repo, &config, name)? else {
        bail!("layer {name} has a hand-written requirements.txt: `why` reads the reasons `cargo xtask lock` records (lock it from a requirements.in)");
    };
    let text = std::fs::read_to_string(layer.dir.join("requirements.txt"))
        .with_context(|| format!("layer {name} is not locked yet: run `cargo xtask lock {name}`"))?;
    let lock = via::read(&text);
    if !lock.annotated {
        bail!("layers/{name}/requirements.txt records no reasons (no `# via` lines: it was locked by an older xtask): run `cargo xtask lock {name}`");
    }
    if let Some(e) = lockfile::freshness(&repo, &config, name)?.error(name) {
        output::warn(format_args!("answering from the lock on disk: {e}"));
    }
    let root = inputs.source.file();
    // The pins of the required layers: (package -> (version, layer)).
    let mut required: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (l, pkg, line) in &inputs.provided {
        let version = Requirement::parse(line).and_then(|r| r.pinned_version()).unwrap_or_default();
        required.entry(pkg.clone()).or_insert((version, l.clone()));
    }
    let package = normalise(&args.package);
    let mut answers = Vec::new();
    for (runtime, arch) in layer.targets() {
        let mut present: BTreeMap<String, Present> = BTreeMap::new();
        let env = crate::python::Env::new(runtime, arch);
        let on_target = |e: &&via::Entry| match &e.marker {
            None => true,
            Some(m) => {
                Requirement::parse(&format!("{}=={} ; {m}", e.name, e.version)).is_some_and(|r| r.applies(&env, ""))
            }
        };
        for e in lock.entries.iter().filter(on_target) {
            present.insert(e.name.clone(), Present { version: e.version.clone(), via: e.via.clone(), layer: None });
        }
        for (pkg, why) in &lock.provided {
            if let Some((version, l)) = required.get(pkg) {
                present.insert(
                    pkg.clone(),
                    Present { version: version.clone(), via: why.clone(), layer: Some(l.clone()) },
                );
            }
        }
        let unit = UnitId::new(name, runtime, arch);
        let Some(found) = present.get(&package) else {
            answers.push(Answer { unit, package: package.clone(), version: None, provided_by: None, chains: vec![] });
            continue;
        };
        answers.push(Answer {
            unit,
            package: package.clone(),
            version: Some(found.version.clone()),
            provided_by: found.layer.clone(),
            chains: chains(&present, &package, root),
        });
    }
    if answers.iter().all(|a| a.version.is_none()) {
        bail!("{}", not_in(&repo, name, &package, &lock, &required)?);
    }
    for a in &answers {
        if args.output.json {
            output::json(a)?;
        }
        let Some(version) = &a.version else {
            output::line(format_args!("layers/{name} {} {}: no {package} on this target", a.unit.runtime, a.unit.arch));
            continue;
        };
        let from = a.provided_by.as_ref().map(|l| format!(", from required layer `{l}`")).unwrap_or_default();
        output::line(format_args!("layers/{name} {} {}: {package} {version}{from}", a.unit.runtime, a.unit.arch));
        if a.chains.is_empty() {
            output::line(format_args!("  (no recorded reason reaches {root}: run `cargo xtask lock {name}`)"));
        }
        for chain in &a.chains {
            let shown: Vec<String> = chain
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let mut s = format!("{}=={}", n.name, n.version);
                    if i == 0 {
                        s.push_str(&format!(" ({})", top_line(&inputs.requirements, &n.name, root)));
                    }
                    if let Some(l) = &n.layer {
                        s.push_str(&format!(" [layer {l}]"));
                    }
                    s
                })
                .collect();
            output::line(format_args!("  {}", shown.join(" -> ")));
        }
    }
    Ok(true)
}

/// `requirements.in`, or `requirements.in: pandas>=2.2` when the line says more than the
/// name.
fn top_line(requirements: &[String], name: &str, root: &str) -> String {
    let line = requirements.iter().find(|r| Requirement::parse(r).is_some_and(|r| r.name == name));
    match line {
        Some(l) if normalise(l) != name => format!("{root}: {l}"),
        _ => root.to_string(),
    }
}

/// The shortest chain from each top-level requirement down to `package`: a walk up the
/// reasons from the package, breadth first, so the first way a top is reached is shortest.
fn chains(present: &BTreeMap<String, Present>, package: &str, root: &str) -> Vec<Vec<Node>> {
    let node = |n: &str| {
        let p = &present[n];
        Node { name: n.to_string(), version: p.version.clone(), layer: p.layer.clone() }
    };
    // child of each visited package on the way down to `package`
    let mut down: BTreeMap<String, Option<String>> = BTreeMap::from([(package.to_string(), None)]);
    let mut queue = VecDeque::from([package.to_string()]);
    let mut out = Vec::new();
    while let Some(at) = queue.pop_front() {
        let p = &present[&at];
        if p.via.iter().any(|v| v == root) {
            let mut chain = vec![node(&at)];
            let mut cur = down[&at].clone();
            while let Some(c) = cur {
                chain.push(node(&c));
                cur = down[&c].clone();
            }
            out.push(chain);
        }
        for parent in p.via.iter().filter(|v| *v != root && present.contains_key(*v)) {
            if !down.contains_key(parent) {
                down.insert(parent.clone(), Some(at.clone()));
                queue.push_back(parent.clone());
            }
        }
    }
    out
}

/// Why `package` is not in the layer, as one line: which required layer (or other layer)
/// ships it anyway, else the closest package name the lock has.
fn not_in(
    repo: &Repo,
    name: &str,
    package: &str,
    lock: &via::Annotated,
    required: &BTreeMap<String, (String, String)>,
) -> Result<String> {
    if let Some((version, l)) = required.get(package) {
        return Ok(format!(
            "no package {package} in layer {name}: nothing it locks needs it; layer `{l}`, which {name} requires, ships {package} {version}"
        ));
    }
    if let Some(other) = crate::python::providers(repo, package).into_iter().find(|l| l != name) {
        return Ok(format!(
            "no package {package} in layer {name}; layer `{other}` ships it (`cargo xtask why {other} {package}`)"
        ));
    }
    let names: Vec<&str> =
        lock.entries.iter().map(|e| e.name.as_str()).chain(lock.provided.keys().map(String::as_str)).collect();
    Ok(match crate::suggest::closest(package, names.iter().copied()) {
        Some(close) => format!("no package {package} in layer {name}: did you mean `{close}`?"),
        None if names.len() <= 8 => format!("no package {package} in layer {name}: it has {}", names.join(", ")),
        None => format!(
            "no package {package} in layer {name}: none of its {} packages (layers/{name}/requirements.txt)",
            names.len()
        ),
    })
}
