//! `cargo xtask layer NAME... | --all`: builds each unit that is not up to date.

use anyhow::Result;
use serde_json::json;

use super::args::{ImageArgs, OutputArgs, TargetArgs};
use crate::output::{self, count, size};
use crate::repo::Repo;
use crate::unit::{self, Context, Outcome, StaleLock, UnitFailure};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Layers to build (folders under layers/)
    pub names: Vec<String>,
    /// Build every layer
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Rebuild even when dist/ holds a build with the same fingerprint
    #[arg(long)]
    pub force: bool,
    /// Refuse a stale lock instead of locking it again first (for CI: what ships is what was committed)
    #[arg(long)]
    pub locked: bool,
    /// How many units are built at once [default: the number of cores]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Returns whether every unit succeeded.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let json = args.output.json;
    let ctx = Context::new(repo, args.image.image.clone())?.with_stale_lock(StaleLock::building(args.locked));
    // `layer six six`: one build, one report.
    let selection = unit::select(&ctx, &args.names, args.all, args.target.filter())?;
    let (mut built, mut current, mut failed) = (0, 0, 0);
    for (name, e) in selection.failed() {
        failed += 1;
        output::error(format_args!("{e:#}"));
        if json {
            output::json(&UnitFailure::of_layer(name, e))?;
        }
    }
    let units = &selection.units();
    let jobs = args.jobs.map(usize::from).unwrap_or_else(crate::schedule::default_jobs);
    let mut printed: Result<()> = Ok(());
    // A merged layer whose member failed in this run is not built (`unit::build` says so).
    crate::schedule::each(
        units,
        jobs,
        |u| unit::build(&ctx, u, args.force),
        |i, result| {
            let u = &units[i];
            match result {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Built(_) => built += 1,
                        Outcome::UpToDate(_) => current += 1,
                    }
                    print_outcome(&outcome);
                    if json && printed.is_ok() {
                        let mut v = serde_json::to_value(outcome.report()).map_err(anyhow::Error::from);
                        if let Ok(v) = &mut v {
                            v["status"] = json!(outcome.status());
                        }
                        printed = v.and_then(|v| output::json(&v));
                    }
                }
                Err(e) => {
                    failed += 1;
                    output::error(format_args!("{}: {e:#}", u.label()));
                    if json && printed.is_ok() {
                        printed = output::json(&UnitFailure::of_unit(&u.layer.name, u.runtime, u.arch, &e));
                    }
                }
            }
        },
    );
    printed?;
    if built + current + failed > 1 || args.all {
        output::line(output::summary(&[("built", built), ("up-to-date", current), ("failed", failed)]));
    }
    if failed == 0 {
        selection.ensure_matched()?;
    }
    Ok(failed == 0)
}

fn print_outcome(o: &Outcome) {
    let r = o.report();
    let mut line = format!(
        "{}: {} zip, {} unzipped ({:.1}% of 250 MiB), {}",
        r.unit,
        size(r.zipped_bytes),
        size(r.unzipped_bytes),
        r.budget_percent,
        count(r.file_count as usize, "file")
    );
    if let Outcome::Built(_) = o {
        line.push_str(&format!(", slimmed {} in {:.1}s", size(r.slim.total_bytes()), r.duration_secs));
    }
    output::status(o.status().as_str(), line);
    if let Outcome::Built(_) = o {
        for rm in r.slim.removed.iter().filter(|x| x.bytes > 0) {
            output::detail(format_args!("- {}: {}, {}", rm.rule, count(rm.files as usize, "file"), size(rm.bytes)));
        }
        for n in &r.notes {
            output::detail(format_args!("note: {n}"));
        }
        output::detail(format_args!("-> {}", r.zip));
    }
}
