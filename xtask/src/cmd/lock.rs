//! `cargo xtask lock [NAME...|--all] [--upgrade | --upgrade-package PKG] [--check]`:
//! resolves each layer's `requirements.in` (or `pyproject.toml`) into its hashed
//! `requirements.txt` with the pinned uv; `--check` writes nothing and fails when a lock
//! is stale or would change.

use anyhow::{bail, Result};

use crate::config::RepoConfig;
use crate::lock::{self, Options};
use crate::output;
use crate::repo::Repo;
use crate::unit;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Layers to lock
    pub names: Vec<String>,
    /// Lock every layer that has a requirements.in or pyproject.toml
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Resolve every package to its newest allowed version (default: keep locked versions)
    #[arg(long, conflicts_with = "upgrade_package")]
    pub upgrade: bool,
    /// Resolve this package afresh, keeping the others (repeatable)
    #[arg(long, value_name = "PKG")]
    pub upgrade_package: Vec<String>,
    /// Write nothing; fail when a lock is stale or would change (for CI)
    #[arg(long)]
    pub check: bool,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let config = RepoConfig::load(&repo)?;
    let names = unit::select_layers(&repo, &args.names, args.all)?;
    let mut lockable = Vec::new();
    for name in &names {
        let layer = config.layer(&repo, name)?;
        if lock::source_of(&layer.dir).is_some() {
            lockable.push((name.clone(), layer.requires.clone()));
        } else if !args.all {
            bail!("layer {name} has no requirements.in or pyproject.toml: nothing to lock (its requirements.txt is written by hand)");
        }
    }
    if lockable.is_empty() {
        output::note("no layer has a requirements.in or pyproject.toml: nothing to lock");
        return Ok(true);
    }
    let opts = Options { upgrade: args.upgrade, upgrade_packages: args.upgrade_package.clone() };
    let mut uv = None;
    let mut ok = true;
    for name in dependencies_first(lockable) {
        if args.check {
            if let Some(e) = lock::freshness(&repo, &config, &name)?.error(&name) {
                output::error(e);
                ok = false;
                continue;
            }
        }
        let Some(inputs) = lock::inputs(&repo, &config, &name)? else { continue };
        if uv.is_none() {
            // The build image of the layer's first target fetches and runs uv when this
            // machine has no python3.
            let layer = config.layer(&repo, &name)?;
            let image = layer.images.values().next().map(String::as_str);
            uv = Some((lock::uv::ensure(image)?, lock::uv::Runner::choose(image)?));
        }
        let (uv, runner) = uv.as_ref().expect("uv was just found");
        let started = std::time::Instant::now();
        let locked = match lock::resolve(&inputs, uv, runner, &opts) {
            Ok(l) => l,
            Err(e) => {
                output::error(format_args!("{e:#}"));
                ok = false;
                continue;
            }
        };
        let targets: Vec<String> = inputs.targets.iter().map(|(r, a)| format!("{r} {a}")).collect();
        let what = format!(
            "layers/{name}/requirements.txt: {} for {} ({:.1}s)",
            output::count(locked.packages, "package"),
            targets.join(", "),
            started.elapsed().as_secs_f64()
        );
        if !locked.changed {
            output::status("current", what);
        } else if args.check {
            output::error(format_args!(
                "layers/{name}/requirements.txt would change: run `cargo xtask lock {name}` and commit it"
            ));
            ok = false;
        } else {
            lock::write(&inputs, &locked)?;
            output::status("locked", what);
        }
    }
    Ok(ok)
}

/// The layers in an order where each comes after the layers it requires (so theirs pins
/// are locked first).
fn dependencies_first(mut todo: Vec<(String, Vec<String>)>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    while !todo.is_empty() {
        let waiting: Vec<String> = todo.iter().map(|(n, _)| n.clone()).collect();
        let at = todo.iter().position(|(_, req)| req.iter().all(|r| !waiting.contains(r))).unwrap_or(0);
        out.push(todo.remove(at).0);
    }
    out
}
