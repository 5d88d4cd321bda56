//! `cargo xtask lock [NAME...|--all] [--upgrade | --upgrade-package PKG] [--check]
//! [--requires auto|LAYER,...]`: resolves each layer's `requirements.in` (or
//! `pyproject.toml`) into its hashed `requirements.txt` with the pinned uv; `--check`
//! writes nothing and fails when a lock is stale or would change. Packages another layer
//! already ships are named with the `--requires` that leaves them out (layers stay
//! atomic); `--requires` adds layers to the layer's `requires` before locking, `auto` the
//! layers that provide part of its closure.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::config::RepoConfig;
use crate::lockfile::{self, provided, Options};
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
    #[arg(long, value_name = "PKG", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub upgrade_package: Vec<String>,
    /// Write nothing; fail when a lock is stale or would change (for CI)
    #[arg(long)]
    pub check: bool,
    /// Add these layers to the layer's `requires` (layer.toml) and lock without their packages; `auto`: every other layer providing part of its closure
    #[arg(long, value_name = "auto|LAYER,...", value_delimiter = ',', conflicts_with_all = ["check", "all"], value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub requires: Vec<String>,
    #[command(flatten)]
    pub output: super::args::OutputArgs,
}

/// What `--json` prints for each layer.
#[derive(Debug, Serialize)]
struct LockResult<'a> {
    layer: &'a str,
    status: Status,
    /// Packages in the lock (when it was resolved).
    #[serde(skip_serializing_if = "Option::is_none")]
    packages: Option<usize>,
    /// `python3.13-x86_64`, ...
    targets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Status {
    /// Written.
    Locked,
    /// Resolved to what requirements.txt already holds.
    Current,
    /// `--check`: the header does not match the inputs.
    Stale,
    /// `--check`: resolving gives another requirements.txt.
    WouldChange,
    /// Could not be resolved.
    Failed,
}

/// `--requires`: nothing, `auto`, or layer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requires {
    Keep,
    Auto,
    Layers(Vec<String>),
}

impl Requires {
    pub fn of(values: &[String]) -> Result<Requires> {
        Ok(match values {
            [] => Requires::Keep,
            [one] if one == "auto" => Requires::Auto,
            v if v.iter().any(|l| l == "auto") => bail!("--requires auto cannot be combined with layer names"),
            v => Requires::Layers(v.to_vec()),
        })
    }
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let mut config = RepoConfig::load(&repo)?;
    let names = unit::select_layers(&repo, &args.names, args.all)?;
    let requires = Requires::of(&args.requires)?;
    if requires != Requires::Keep && names.len() != 1 {
        bail!("--requires changes one layer's layer.toml: name exactly one layer");
    }
    if let Requires::Layers(add) = &requires {
        let list = crate::requires::add(&repo, &config, &names[0], add)?;
        output::status("requires", format_args!("layers/{}/layer.toml: requires = {list:?}", names[0]));
        config = RepoConfig::load(&repo)?;
    }
    let mut lockable = Vec::new();
    for name in &names {
        let layer = config.layer(&repo, name)?;
        if lockfile::source_of(&layer.dir).is_some() {
            lockable.push((name.clone(), layer.requires.clone()));
        } else if !args.all {
            bail!("layer {name} has no requirements.in or pyproject.toml: nothing to lock (its requirements.txt is written by hand)");
        }
    }
    if lockable.is_empty() {
        output::note("no layer has a requirements.in or pyproject.toml: nothing to lock");
        return Ok(true);
    }
    // `--upgrade-package` of a package no selected lock has is a typo, not a no-op.
    for p in &args.upgrade_package {
        let name = crate::python::normalise(p);
        let mut known = false;
        for (layer, _) in &lockable {
            if let Some(inputs) = lockfile::inputs(&repo, &config, layer)? {
                known |= lockfile::known_packages(&inputs).contains(&name);
            }
        }
        if !known {
            let layers: Vec<&str> = lockable.iter().map(|(l, _)| l.as_str()).collect();
            bail!(
                "--upgrade-package {}: no package {name} in the lock of {}: check the name (`cargo xtask lock` pins what requirements.in asks for)",
                crate::quote::clip(p),
                layers.join(", ")
            );
        }
    }
    let opts = Options { upgrade: args.upgrade, upgrade_packages: args.upgrade_package.clone() };
    let mut uv = None;
    let mut ok = true;
    for name in dependencies_first(lockable) {
        let targets: Vec<String> =
            config.layer(&repo, &name)?.targets().iter().map(|(r, a)| format!("{r}-{a}")).collect();
        let report = |status: Status, packages: Option<usize>, error: Option<String>| -> Result<()> {
            if let Some(e) = &error {
                output::error(e);
            }
            if args.output.json {
                output::json(&LockResult { layer: &name, status, packages, targets: targets.clone(), error })?;
            }
            Ok(())
        };
        if args.check {
            if let Some(e) = lockfile::freshness(&repo, &config, &name)?.error(&name) {
                report(Status::Stale, None, Some(e))?;
                ok = false;
                continue;
            }
        }
        let Some(mut inputs) = lockfile::inputs(&repo, &config, &name)? else { continue };
        if uv.is_none() {
            uv = Some(lockfile::uv::for_layer(&config.layer(&repo, &name)?)?);
        }
        let (uv, runner) = uv.as_ref().expect("uv was just found");
        let started = std::time::Instant::now();
        let mut locked = match lockfile::resolve(&inputs, uv, runner, &opts) {
            Ok(l) => l,
            Err(e) => {
                report(Status::Failed, None, Some(format!("{e:#}")))?;
                ok = false;
                continue;
            }
        };
        let mut overlaps = provided::overlaps(&repo, &config, &name, &locked.pins)?;
        if requires == Requires::Auto && !overlaps.is_empty() {
            let add = provided::choose(&repo, &config, &overlaps)?;
            let list = crate::requires::add(&repo, &config, &name, &add)?;
            output::status("requires", format_args!("layers/{name}/layer.toml: requires = {list:?}"));
            config = RepoConfig::load(&repo)?;
            inputs = lockfile::inputs(&repo, &config, &name)?.context("the lock input went away")?;
            locked = match lockfile::resolve(&inputs, uv, runner, &opts) {
                Ok(l) => l,
                Err(e) => {
                    report(Status::Failed, None, Some(format!("{e:#}")))?;
                    ok = false;
                    continue;
                }
            };
            overlaps = provided::overlaps(&repo, &config, &name, &locked.pins)?;
        } else if requires == Requires::Auto {
            output::note(format_args!("no other layer provides a package of layer {name}: its requires are unchanged"));
        }
        if !overlaps.is_empty() {
            warn_overlaps(&name, &overlaps, &provided::choose(&repo, &config, &overlaps)?);
        }
        let what = format!(
            "layers/{name}/requirements.txt: {} for {} ({:.1}s)",
            output::count(locked.packages, "package"),
            targets.join(", "),
            started.elapsed().as_secs_f64()
        );
        if !locked.changed {
            output::status("current", what);
            report(Status::Current, Some(locked.packages), None)?;
        } else if args.check && unchanged_but_reasons(&inputs, &locked) {
            output::status("current", what);
            output::note(format_args!(
                "layers/{name}/requirements.txt records no reasons yet (`# via`, read by `cargo xtask why`): `cargo xtask lock {name}` adds them"
            ));
            report(Status::Current, Some(locked.packages), None)?;
        } else if args.check {
            let e = format!("layers/{name}/requirements.txt would change: run `cargo xtask lock {name}` and commit it");
            report(Status::WouldChange, Some(locked.packages), Some(e))?;
            ok = false;
        } else {
            lockfile::write(&inputs, &locked)?;
            output::status("locked", what);
            report(Status::Locked, Some(locked.packages), None)?;
        }
    }
    Ok(ok)
}

/// Whether the lock on disk differs from the resolved one only in its `# via` lines.
fn unchanged_but_reasons(inputs: &lockfile::Inputs, locked: &lockfile::Locked) -> bool {
    let existing = std::fs::read_to_string(inputs.dir.join("requirements.txt")).unwrap_or_default();
    lockfile::via::without_reasons(&existing) == lockfile::via::without_reasons(&locked.text)
}

/// One warning per package another layer already ships, then the exact command that
/// leaves them out. A warning, not an error: bundling is allowed, only not atomic.
fn warn_overlaps(name: &str, overlaps: &[provided::Overlap], auto: &[String]) {
    for o in overlaps {
        let layers: Vec<String> = o
            .layers
            .iter()
            .map(|(l, v)| if *v == o.version { format!("`{l}`") } else { format!("`{l}` (at {v})") })
            .collect();
        let s = if o.layers.len() > 1 { "s" } else { "" };
        output::warn(format_args!(
            "layers/{name}: {} {} is provided by layer{s} {}: add `--requires {}` to keep layers atomic, or pass `--requires auto`",
            o.package,
            o.version,
            layers.join(", "),
            o.layers[0].0
        ));
    }
    output::note(format_args!(
        "to leave them out of layers/{name}/requirements.txt: `cargo xtask lock {name} --requires auto` (adds {} to its requires)",
        auto.join(", ")
    ));
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
