//! Layers stay atomic: which packages of a layer's resolved closure another layer of the
//! repo already ships (and the layer does not require yet), and which layers
//! `--requires auto` makes it require so its lock leaves them out.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::config::RepoConfig;
use crate::python::Requirement;
use crate::repo::Repo;
use crate::requirements_txt::Requirements;

/// A package of the closure that another layer pins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Overlap {
    pub package: String,
    /// The version this layer's lock resolved.
    pub version: String,
    /// The layers pinning it, each with its pinned version (sorted by layer).
    pub layers: Vec<(String, String)>,
}

/// The layers `layer` could require: every other layer that does not require it
/// (transitively, so requiring it makes no cycle) and that it does not require already,
/// with the packages each pins (normalised name -> version). Layers whose requirements.txt
/// cannot be read (not locked yet) provide nothing.
fn candidates(repo: &Repo, config: &RepoConfig, layer: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let required = crate::requires::closure(repo, config, layer)?;
    let mut out = BTreeMap::new();
    for other in repo.layer_names()? {
        if other == layer || required.contains(&other) {
            continue;
        }
        let Ok(closure) = crate::requires::closure(repo, config, &other) else { continue };
        if closure.iter().any(|l| l == layer) {
            continue;
        }
        let Ok(dir) = config.layer(repo, &other).map(|c| c.dir) else { continue };
        let Ok(reqs) = Requirements::read(&dir, &other) else { continue };
        let mut pins = BTreeMap::new();
        for line in &reqs.lines {
            let req = line.split(" --").next().unwrap_or(line).trim();
            if let Some(r) = Requirement::parse(req).filter(|r| r.is_pinned()) {
                if let Some(v) = r.pinned_version() {
                    pins.insert(r.name.clone(), v);
                }
            }
        }
        out.insert(other, pins);
    }
    Ok(out)
}

/// The packages of `pins` (a resolved lock of `layer`) that other layers pin.
pub fn overlaps(
    repo: &Repo,
    config: &RepoConfig,
    layer: &str,
    pins: &BTreeSet<(String, String)>,
) -> Result<Vec<Overlap>> {
    let candidates = candidates(repo, config, layer)?;
    let mut out = Vec::new();
    for (package, version) in pins {
        let layers: Vec<(String, String)> =
            candidates.iter().filter_map(|(l, p)| Some((l.clone(), p.get(package)?.clone()))).collect();
        if !layers.is_empty() {
            out.push(Overlap { package: package.clone(), version: version.clone(), layers });
        }
    }
    Ok(out)
}

/// The layers `--requires auto` adds: greedily, the layer covering most of the packages
/// not covered yet (ties by name), until every overlapping package is covered; then a
/// layer that another chosen one already requires is dropped. Sorted by name.
pub fn choose(repo: &Repo, config: &RepoConfig, overlaps: &[Overlap]) -> Result<Vec<String>> {
    let mut uncovered: BTreeSet<&str> = overlaps.iter().map(|o| o.package.as_str()).collect();
    let mut chosen: Vec<String> = Vec::new();
    while !uncovered.is_empty() {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for o in overlaps.iter().filter(|o| uncovered.contains(o.package.as_str())) {
            for (l, _) in &o.layers {
                *count.entry(l.as_str()).or_default() += 1;
            }
        }
        // BTreeMap order, so the first of the largest is the smallest name.
        let Some((best, _)) = count.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))) else { break };
        let best = best.to_string();
        for o in overlaps.iter().filter(|o| o.layers.iter().any(|(l, _)| *l == best)) {
            uncovered.remove(o.package.as_str());
        }
        chosen.push(best);
    }
    let mut kept = Vec::new();
    for l in &chosen {
        let mut covered = false;
        for other in chosen.iter().filter(|o| *o != l) {
            covered |= crate::requires::closure(repo, config, other)?.contains(l);
        }
        if !covered {
            kept.push(l.clone());
        }
    }
    kept.sort();
    Ok(kept)
}
