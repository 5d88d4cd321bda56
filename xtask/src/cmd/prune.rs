//! `cargo xtask prune --keep N`: deletes old versions of this repo's published layers in a
//! deploy profile, keeping the N newest, every version a manifest names and every version
//! a function attaches (and the zips kept versions share); the list is always printed
//! before anything is deleted.

use anyhow::Result;

use super::args::{OutputArgs, ProfileArgs};
use crate::output::{self, Table};
use crate::publish::prune::{self, Options, Row};
use crate::repo::Repo;
use crate::unit::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// How many of the newest versions of each layer to keep (versions a manifest in published/ names or a function attaches are always kept)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,
    /// List what would be deleted, and delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm deleting from a profile marked `confirm = true` (such as production)
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Returns false when a deletion failed.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    let opts = Options {
        profile: args.profile.profile.clone(),
        keep: args.keep as usize,
        dry_run: args.dry_run,
        yes: args.yes,
    };
    let rows = prune::prune(&ctx, &opts, &|rows| show(rows, &opts))?;
    let count = |a: &str| rows.iter().filter(|r| r.action == a).count();
    for r in rows.iter().filter(|r| r.action != "keep") {
        if !opts.dry_run {
            match &r.reason {
                Some(e) if r.action == "failed" => output::error(format_args!("{}:{}: {e}", r.layer_name, r.version)),
                _ => output::status(r.action, &r.arn),
            }
            match &r.object {
                Some(o) if r.action == "deleted" && o.starts_with("s3://") => output::status("deleted", o),
                Some(o) if r.action == "deleted" && o.starts_with("not deleted") => {
                    output::warn(format_args!("{}:{}: zip {o}", r.layer_name, r.version))
                }
                _ => {}
            }
        }
    }
    if args.output.json {
        for r in &rows {
            output::json(r)?;
        }
    }
    let done = if opts.dry_run {
        format!("{} would be deleted (dry run: nothing was deleted)", count("delete"))
    } else {
        format!("{} deleted, {} failed", count("deleted"), count("failed"))
    };
    output::line(format_args!("profile {}: {} kept, {done}", opts.profile, count("keep")));
    Ok(count("failed") == 0)
}

/// The plan, before anything is deleted.
fn show(rows: &[Row], opts: &Options) {
    if rows.is_empty() {
        output::line(format_args!("no published versions of this repo's layers in profile {}", opts.profile));
        return;
    }
    let mut table = Table::new(&["ACTION", "REGION", "VERSION", "LAYER NAME", "WHY"]).right(2);
    for r in rows {
        let mut why = r.reason.clone().unwrap_or_else(|| format!("older than the {} newest", opts.keep));
        match &r.object {
            Some(o) if o.starts_with("s3://") => why.push_str(&format!("; its zip {o} goes too")),
            Some(o) => why.push_str(&format!("; zip {o}")),
            None => {}
        }
        table.row(vec![r.action.into(), r.region.clone(), r.version.to_string(), r.layer_name.clone(), why]);
    }
    table.print();
}
