//! `cargo xtask changed`: the units (layer x runtime x architecture) a deploy profile does
//! not hold yet, by default from its manifest `published/<profile>.json` (offline: no AWS,
//! no docker), with `--remote` from AWS itself. `--json` prints one line ready for a
//! GitHub Actions matrix: `{"include":[{"layer":..,"runtime":..,"arch":..}]}`. A
//! layer whose lock is stale (requirements.in changed since `cargo xtask lock`) is an error.

use std::collections::BTreeMap;

use anyhow::Result;

use super::args::{OutputArgs, ProfileArgs};
use crate::output::{self, Table};
use crate::profile::manifest::Manifest;
use crate::profile::naming;
use crate::profile::status::{Compared, StatusRow};
use crate::repo::Repo;
use crate::unit::{self, Context, Unit};

#[derive(clap::Args, Debug)]
#[command(
    mut_arg("profile", |a| a.help("Deploy profile from layers.toml whose published layers are compared")),
    mut_arg("json", |a| a.help("Print one line on stdout: a GitHub Actions matrix `{\"include\":[...]}`"))
)]
pub struct Args {
    /// Layers to look at (default: every layer)
    pub names: Vec<String>,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Ask AWS (the newest version of each layer) instead of reading published/<profile>.json
    #[arg(long)]
    pub remote: bool,
    // With --json, stdout is one line: a GitHub Actions matrix `{"include":[...]}`.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One entry of the matrix: exactly what a job needs to name its unit (`layer`,
/// `runtime`, `arch`).
pub type MatrixEntry = crate::unit_id::UnitId;

/// A unit and why it is changed (`None`: unchanged).
struct ChangedUnit {
    entry: MatrixEntry,
    reason: Option<String>,
}

/// Returns false when some layer could not be planned or looked up (nothing is printed
/// on stdout then, so a CI step fails instead of running an incomplete matrix).
/// How `--remote` asks AWS: `status`'s lookup, which the xtask-aws binary passes in
/// (this crate has no AWS SDK; `cargo xtask changed --remote` runs there).
pub type Lookup<'a> = &'a dyn Fn(&Context, &str, &[String]) -> Result<Vec<StatusRow>>;

/// `lookup` is None in the binary without the AWS SDK, which hands `--remote` on instead.
pub fn run(repo: Repo, args: &Args, lookup: Option<Lookup>) -> Result<bool> {
    let ctx = Context::new(repo, None)?.with_stale_lock(unit::StaleLock::Ignore);
    let name = &args.profile.profile;
    let profile = ctx.config.profile(name)?.clone();
    naming::check_profile(name, &profile)?;
    let names = unit::select_layers(&ctx.repo, &args.names, args.names.is_empty())?;
    // A stale lock would build something else than what the pull request asks for.
    let mut stale = false;
    for name in &names {
        if let Some(e) = crate::lockfile::freshness(&ctx.repo, &ctx.config, name)?.error(name) {
            output::error(e);
            stale = true;
        }
    }
    if stale {
        return Ok(false);
    }
    let (verdicts, source) = if args.remote {
        match remote(&ctx, name, &names, lookup)? {
            Some(v) => (v, "AWS".to_string()),
            None => return Ok(false),
        }
    } else {
        let path = Manifest::path(&ctx.repo.published_dir(), name);
        let manifest = Manifest::load(&path, name, Some(&profile))?;
        let mut verdicts = Vec::new();
        let mut ok = true;
        for name in &names {
            match unit::plan(&ctx, name) {
                Ok(units) => verdicts.extend(units.iter().map(|u| offline(u, &manifest, &profile.regions))),
                Err(e) => {
                    ok = false;
                    output::error(format_args!("{e:#}"));
                }
            }
        }
        if !ok {
            return Ok(false);
        }
        (verdicts, ctx.repo.display(&path))
    };
    print(&verdicts, name, &source);
    if args.output.json {
        output::stdout(&format!("{}\n", matrix(&verdicts)));
    }
    Ok(true)
}

/// A unit is changed when some region of the profile has no entry for it in the
/// manifest, or an entry with another fingerprint.
fn offline(u: &Unit, manifest: &Manifest, regions: &[String]) -> ChangedUnit {
    let entry = u.id();
    let mut missing = Vec::new();
    let mut differs = Vec::new();
    for region in regions {
        match manifest.get(&entry.layer, entry.runtime.id, entry.arch.as_str(), region) {
            None => missing.push(region.as_str()),
            Some(e) if e.fingerprint != u.fingerprint => differs.push(region.as_str()),
            Some(_) => {}
        }
    }
    let reason = match (missing.is_empty(), differs.is_empty()) {
        (true, true) => None,
        _ if missing.len() == regions.len() => Some("new: not in the manifest".to_string()),
        (true, false) => Some(format!("fingerprint differs in {}", differs.join(", "))),
        (false, true) => Some(format!("not published in {}", missing.join(", "))),
        (false, false) => {
            Some(format!("not published in {}; fingerprint differs in {}", missing.join(", "), differs.join(", ")))
        }
    };
    ChangedUnit { entry, reason }
}

/// The same question asked of AWS through `status`; None when a lookup failed (printed).
fn remote(ctx: &Context, profile: &str, names: &[String], lookup: Option<Lookup>) -> Result<Option<Vec<ChangedUnit>>> {
    let Some(lookup) = lookup else {
        anyhow::bail!("`changed --remote` needs the AWS half of xtask (the xtask-aws binary); run it as `cargo xtask changed --remote`")
    };
    let rows = lookup(ctx, profile, names)?;
    let mut failed = false;
    let mut units: BTreeMap<MatrixEntry, Vec<String>> = BTreeMap::new();
    for r in rows {
        let (Some(runtime), Some(arch), Some(region)) = (r.runtime, r.arch, r.region) else {
            failed = true;
            output::error(format_args!("{}: {}", r.layer, r.error.unwrap_or_default()));
            continue;
        };
        let reasons = units.entry(MatrixEntry::new(&r.layer, runtime, arch)).or_default();
        match r.status {
            Compared::Unchanged => {}
            Compared::Failed => {
                failed = true;
                output::error(format_args!(
                    "{} {runtime} {arch} in {region}: {}",
                    r.layer,
                    r.error.unwrap_or_default()
                ));
            }
            other => reasons.push(format!("{} in {region}", other.as_str())),
        }
    }
    if failed {
        return Ok(None);
    }
    Ok(Some(
        units
            .into_iter()
            .map(|(entry, reasons)| ChangedUnit { entry, reason: (!reasons.is_empty()).then(|| reasons.join(", ")) })
            .collect(),
    ))
}

/// `{"include":[...]}`, sorted; an empty list when nothing changed.
fn matrix(verdicts: &[ChangedUnit]) -> String {
    let mut include: Vec<&MatrixEntry> = verdicts.iter().filter(|v| v.reason.is_some()).map(|v| &v.entry).collect();
    include.sort();
    serde_json::json!({ "include": include }).to_string()
}

fn print(verdicts: &[ChangedUnit], profile: &str, source: &str) {
    let mut table = Table::new(&["STATUS", "LAYER", "RUNTIME", "ARCH", "WHY"]);
    for v in verdicts {
        let e = &v.entry;
        let status = if v.reason.is_some() { "changed" } else { "unchanged" };
        let why = v.reason.clone().unwrap_or_default();
        table.row(vec![status.into(), e.layer.clone(), e.runtime.to_string(), e.arch.to_string(), why]);
    }
    if !table.is_empty() {
        table.print();
    }
    let changed = verdicts.iter().filter(|v| v.reason.is_some()).count();
    output::line(format_args!(
        "profile {profile}: {changed} of {} changed (compared with {source})",
        output::count(verdicts.len(), "unit")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(layer: &str, runtime: &str, changed: bool) -> ChangedUnit {
        ChangedUnit {
            entry: MatrixEntry::new(
                layer,
                crate::runtime::Runtime::parse(runtime).unwrap(),
                crate::runtime::Arch::X86_64,
            ),
            reason: changed.then(|| "new".to_string()),
        }
    }

    #[test]
    fn matrix_is_sorted_and_lists_only_changed_units() {
        let v = [
            verdict("pandas", "python3.13", true),
            verdict("numpy", "python3.13", false),
            verdict("numpy", "python3.12", true),
        ];
        assert_eq!(
            matrix(&v),
            r#"{"include":[{"arch":"x86_64","layer":"numpy","runtime":"python3.12"},{"arch":"x86_64","layer":"pandas","runtime":"python3.13"}]}"#
        );
        assert_eq!(matrix(&[verdict("numpy", "python3.13", false)]), r#"{"include":[]}"#);
    }
}
