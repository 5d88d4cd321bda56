//! `cargo xtask layer NAME... | --all`: builds each unit that is not up to date.

use anyhow::Result;
use serde_json::json;

use super::args::{ImageArgs, OutputArgs, TargetArgs};
use crate::output::{self, count, size};
use crate::repo::Repo;
use crate::unit::{self, Context, Outcome, UnitFailure};

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
    #[command(flatten)]
    pub image: ImageArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Returns whether every unit succeeded.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let filter = args.target.filter();
    let json = args.output.json;
    let ctx = Context::new(repo, args.image.image.clone())?;
    let names = unit::select_layers(&ctx.repo, &args.names, args.all)?;
    let (mut kept, mut built, mut current, mut failed) = (0, 0, 0, 0);
    for name in &names {
        let units = match unit::plan(&ctx, name) {
            Ok(u) => filter.apply(u),
            Err(e) => {
                failed += 1;
                output::error(format_args!("{e:#}"));
                if json {
                    output::json(&UnitFailure::of_layer(name, &e))?;
                }
                continue;
            }
        };
        kept += units.len();
        for u in &units {
            match unit::build(&ctx, u, args.force) {
                Ok(outcome) => {
                    match outcome {
                        Outcome::Built(_) => built += 1,
                        Outcome::UpToDate(_) => current += 1,
                    }
                    print_outcome(&outcome);
                    if json {
                        let mut v = serde_json::to_value(outcome.report())?;
                        v["status"] = json!(outcome.status());
                        output::json(&v)?;
                    }
                }
                Err(e) => {
                    failed += 1;
                    output::error(format_args!("{}: {e:#}", u.label()));
                    if json {
                        output::json(&UnitFailure::of_unit(&u.layer.name, u.runtime, u.arch, &e))?;
                    }
                }
            }
        }
    }
    if built + current + failed > 1 || args.all {
        output::line(output::summary(&[("built", built), ("up-to-date", current), ("failed", failed)]));
    }
    if failed == 0 {
        filter.ensure_matched(kept, &names)?;
    }
    Ok(failed == 0)
}

fn print_outcome(o: &Outcome) {
    let r = o.report();
    let mut line = format!(
        "{} {} {}: {} zip, {} unzipped ({:.1}% of 250 MiB), {}",
        r.layer,
        r.runtime,
        r.arch,
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
