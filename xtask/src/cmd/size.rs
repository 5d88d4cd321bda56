//! `cargo xtask size`: what a layer ships and what each distribution weighs, largest
//! first, with the biggest folders of the large ones, what slimming removed from each and
//! the headroom left in Lambda's 250 MiB (with the layers it requires counted); writes the treemap `<unit>.size.svg` beside the
//! zip. Builds the unit first when dist/ is not current (or its report predates sizes).

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::args::{ImageArgs, OutputArgs, TargetArgs};
use crate::limits::UNZIPPED_LIMIT;
use crate::output::{self, Table};
use crate::repo::Repo;
use crate::report::BuildReport;
use crate::sizes::PackageSize;
use crate::unit::{self, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layer to look into
    pub name: String,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Show the N largest packages (the rest are summed in one line)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Compare with the same unit built from the layer as committed at this git ref
    /// (unpacked and built under dist/.compare/), showing each changed package's delta
    #[arg(long, value_name = "REF")]
    pub compare: Option<String>,
    /// Refuse a stale lock instead of locking it again first (for CI: what ships is what was committed)
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `size --compare`: the unit at a git ref and what changed.
#[derive(Debug, Serialize)]
pub struct Comparison {
    #[serde(rename = "ref")]
    pub reference: String,
    pub unzipped_bytes_before: u64,
    pub delta_bytes: i64,
    pub packages: Vec<crate::sizes::PackageDelta>,
}

/// A required layer's share of the budget.
#[derive(Debug, Serialize)]
pub struct RequiredSize {
    pub layer: String,
    pub unzipped_bytes: u64,
}

/// One unit's sizes, as `size --json` prints them (docs/json.md).
#[derive(Debug, Serialize)]
pub struct SizeResult<'a> {
    #[serde(flatten)]
    pub unit: &'a crate::unit_id::UnitId,
    pub unzipped_bytes: u64,
    pub zipped_bytes: u64,
    pub budget_percent: f64,
    /// The layers it `requires` (attached with it at run time), with their unzipped sizes.
    pub required: Vec<RequiredSize>,
    /// What is left of the 250 MiB for the function and its other layers, once this layer
    /// and the layers it requires are counted.
    pub headroom_bytes: u64,
    /// The treemap, relative to the repo root.
    pub svg: String,
    pub packages: &'a [PackageSize],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<Comparison>,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, args.image.image.clone())?.with_stale_lock(unit::StaleLock::building(args.locked));
    let filter = args.target.filter();
    let units = filter.apply(unit::plan(&ctx, &args.name)?);
    filter.ensure_matched(units.len(), std::slice::from_ref(&args.name))?;
    let old_ctx = match &args.compare {
        // The layer as committed then, its lock as it was (never locked again here).
        Some(r) => Some(
            Context::new(ctx.repo.at_git_ref(r)?, args.image.image.clone())?.with_stale_lock(unit::StaleLock::Ignore),
        ),
        None => None,
    };
    for u in &units {
        let report = sized_report(&ctx, u)?;
        let compare = match (&old_ctx, &args.compare) {
            (Some(old), Some(reference)) => {
                let before = unit::plan(old, &args.name)
                    .with_context(|| format!("layer {} at {reference}", args.name))?
                    .into_iter()
                    .find(|o| (o.runtime, o.arch) == (u.runtime, u.arch))
                    .with_context(|| format!("layer {} at {reference} has no unit {}", args.name, u.label()))?;
                let before =
                    sized_report(old, &before).with_context(|| format!("cannot build {} at {reference}", u.label()))?;
                Some(Comparison {
                    reference: reference.clone(),
                    unzipped_bytes_before: before.unzipped_bytes,
                    delta_bytes: report.unzipped_bytes as i64 - before.unzipped_bytes as i64,
                    packages: crate::sizes::compare(&before.package_sizes, &report.package_sizes),
                })
            }
            _ => None,
        };
        // The layers it requires are attached with it: they count in the same 250 MiB.
        let mut required = Vec::new();
        for name in unit::required_layers(&ctx, &u.layer.name)? {
            let theirs = unit::plan(&ctx, &name)?
                .into_iter()
                .find(|r| (r.runtime, r.arch) == (u.runtime, u.arch))
                .with_context(|| {
                    format!(
                        "required layer {name} is not built for {}: add it to its runtimes/architectures",
                        u.label()
                    )
                })?;
            let built =
                unit::build(&ctx, &theirs, false).with_context(|| format!("cannot build {}", theirs.label()))?;
            required.push(RequiredSize { layer: name, unzipped_bytes: built.report().unzipped_bytes });
        }
        let attached = report.unzipped_bytes + required.iter().map(|r| r.unzipped_bytes).sum::<u64>();
        let reserved: Vec<(String, u64)> = required.iter().map(|r| (r.layer.clone(), r.unzipped_bytes)).collect();
        let svg = crate::sizes::svg(
            &format!("{}: {}", u.label(), output::size(report.unzipped_bytes)),
            &report.package_sizes,
            &reserved,
        );
        crate::package::write_atomically(&u.paths.svg, svg.as_bytes())
            .with_context(|| format!("cannot write {}", ctx.repo.display(&u.paths.svg)))?;
        let result = SizeResult {
            unit: &report.unit,
            unzipped_bytes: report.unzipped_bytes,
            zipped_bytes: report.zipped_bytes,
            budget_percent: report.budget_percent,
            headroom_bytes: UNZIPPED_LIMIT.saturating_sub(attached),
            required,
            svg: ctx.repo.display(&u.paths.svg),
            packages: &report.package_sizes,
            compare,
        };
        if args.output.json {
            output::json(&result)?;
        }
        print_table(&report, args.top);
        if let Some(c) = &result.compare {
            print_comparison(c);
        }
        let with = if result.required.is_empty() {
            String::new()
        } else {
            let list: Vec<String> =
                result.required.iter().map(|r| format!("{} {}", r.layer, output::size(r.unzipped_bytes))).collect();
            format!(", {} with the layers it requires ({})", output::size(attached), list.join(", "))
        };
        output::line(format_args!(
            "{}: {} unzipped ({}% of 250 MiB){with}, {} left; treemap {}",
            u.label(),
            output::size(report.unzipped_bytes),
            report.budget_percent,
            output::size(result.headroom_bytes),
            result.svg
        ));
    }
    Ok(true)
}

/// The unit's report with per-package sizes: built when dist/ is not current, rebuilt
/// when its report predates sizes (the same fingerprint builds the same zip).
fn sized_report(ctx: &Context, u: &unit::Unit) -> Result<BuildReport> {
    let report = unit::build(ctx, u, false)?.report().clone();
    if !report.package_sizes.is_empty() {
        return Ok(report);
    }
    Ok(unit::build(ctx, u, true)?.report().clone())
}

/// `+1.2 MiB`, `-512 B`.
fn signed_size(delta: i64) -> String {
    let sign = if delta < 0 { "-" } else { "+" };
    format!("{sign}{}", output::size(delta.unsigned_abs()))
}

fn print_comparison(c: &Comparison) {
    let mut table =
        Table::new(&["CHANGED", "BEFORE", "NOW", "SIZE BEFORE", "SIZE NOW", "DELTA"]).right(3).right(4).right(5);
    let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for p in &c.packages {
        table.row(vec![
            p.name.clone(),
            v(&p.version_before),
            v(&p.version),
            output::size(p.bytes_before),
            output::size(p.bytes),
            signed_size(p.delta_bytes),
        ]);
    }
    if !table.is_empty() {
        table.print();
    }
    output::line(format_args!(
        "against {}: {} -> {} ({})",
        c.reference,
        output::size(c.unzipped_bytes_before),
        output::size((c.unzipped_bytes_before as i64 + c.delta_bytes) as u64),
        signed_size(c.delta_bytes)
    ));
}

/// Packages at least this share of the layer show their largest folders.
const LARGE_PERCENT: f64 = 10.0;
const FOLDERS_SHOWN: usize = 3;

fn print_table(report: &BuildReport, top: usize) {
    let mut table = Table::new(&["PACKAGE", "VERSION", "SIZE", "LAYER", "BUDGET", "SLIMMED", "LICENSE"])
        .right(2)
        .right(3)
        .right(4)
        .right(5);
    let pct = |p: f64| format!("{p:.1}%");
    for p in report.package_sizes.iter().take(top) {
        let slimmed = if p.slimmed_bytes == 0 { "-".to_string() } else { output::size(p.slimmed_bytes) };
        table.row(vec![
            p.name.clone(),
            p.version.clone(),
            output::size(p.bytes),
            pct(p.layer_percent),
            pct(p.budget_percent),
            slimmed,
            crate::quote::clip_to(p.license.as_deref().unwrap_or("-"), 40),
        ]);
        if p.layer_percent >= LARGE_PERCENT {
            for f in p.folders.iter().take(FOLDERS_SHOWN) {
                let share = if report.unzipped_bytes == 0 {
                    0.0
                } else {
                    f.bytes as f64 * 100.0 / report.unzipped_bytes as f64
                };
                table.row(vec![
                    format!("  {}", f.path),
                    String::new(),
                    output::size(f.bytes),
                    pct(share),
                    String::new(),
                    String::new(),
                ]);
            }
        }
    }
    let rest = &report.package_sizes[top.min(report.package_sizes.len())..];
    if !rest.is_empty() {
        let bytes: u64 = rest.iter().map(|p| p.bytes).sum();
        let share = if report.unzipped_bytes == 0 { 0.0 } else { bytes as f64 * 100.0 / report.unzipped_bytes as f64 };
        table.row(vec![
            format!("({} more)", rest.len()),
            String::new(),
            output::size(bytes),
            pct(share),
            pct(crate::limits::budget_share(bytes)),
            String::new(),
        ]);
    }
    table.print();
}
