//! `cargo xtask size`: what a layer ships and what each distribution weighs, largest
//! first, with the biggest folders of the large ones, what slimming removed from each and
//! the headroom left in Lambda's 250 MiB; writes the treemap `<unit>.size.svg` beside the
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
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One unit's sizes, as `size --json` prints them (docs/json.md).
#[derive(Debug, Serialize)]
pub struct SizeResult<'a> {
    pub layer: &'a str,
    pub runtime: &'a str,
    pub arch: crate::runtime::Arch,
    pub unzipped_bytes: u64,
    pub zipped_bytes: u64,
    pub budget_percent: f64,
    /// What is left of the 250 MiB for the function and its other layers.
    pub headroom_bytes: u64,
    /// The treemap, relative to the repo root.
    pub svg: String,
    pub packages: &'a [PackageSize],
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, args.image.image.clone())?;
    let filter = args.target.filter();
    let units = filter.apply(unit::plan(&ctx, &args.name)?);
    filter.ensure_matched(units.len(), std::slice::from_ref(&args.name))?;
    for u in &units {
        let mut report = unit::build(&ctx, u, false)?.report().clone();
        if report.package_sizes.is_empty() {
            // Built before reports had sizes: the same fingerprint builds the same zip.
            report = unit::build(&ctx, u, true)?.report().clone();
        }
        let svg = crate::sizes::svg(
            &format!("{} — {}", u.label(), output::size(report.unzipped_bytes)),
            &report.package_sizes,
        );
        crate::package::write_atomically(&u.paths.svg, svg.as_bytes())
            .with_context(|| format!("cannot write {}", ctx.repo.display(&u.paths.svg)))?;
        let result = SizeResult {
            layer: &report.layer,
            runtime: &report.runtime,
            arch: report.arch,
            unzipped_bytes: report.unzipped_bytes,
            zipped_bytes: report.zipped_bytes,
            budget_percent: report.budget_percent,
            headroom_bytes: UNZIPPED_LIMIT.saturating_sub(report.unzipped_bytes),
            svg: ctx.repo.display(&u.paths.svg),
            packages: &report.package_sizes,
        };
        if args.output.json {
            output::json(&result)?;
        }
        print_table(&report, args.top);
        output::line(format_args!(
            "{}: {} unzipped ({}% of 250 MiB), {} left; treemap {}",
            u.label(),
            output::size(report.unzipped_bytes),
            report.budget_percent,
            output::size(result.headroom_bytes),
            result.svg
        ));
    }
    Ok(true)
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
