//! `cargo xtask prune --keep N`: deletes old versions of this repo's published layers in a
//! deploy profile, keeping the N newest, every version a manifest names and every version
//! a function attaches (and the zips kept versions share); the list is always printed
//! before anything is deleted, and what it frees of each region's code storage after.

use anyhow::Result;

use crate::aws::{self, storage};
use crate::prune::{self, freed, Action, Options, Row};
use xtask::cmd::remote::prune::Args;
use xtask::output::{self, Table};
use xtask::repo::Repo;
use xtask::unit::Context;

/// Returns false when a deletion failed.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    let opts = Options {
        profile: args.profile.profile.clone(),
        keep: args.keep as usize,
        dry_run: args.dry_run,
        yes: args.yes,
        lock_timeout: std::time::Duration::from_secs(args.lock_timeout),
    };
    let rows = aws::run(prune::prune(&ctx, &opts, &|rows| show(rows, &opts)))?;
    let count = |a: Action| rows.iter().filter(|r| r.action == a).count();
    for r in rows.iter().filter(|r| r.action != Action::Keep) {
        if !opts.dry_run {
            match &r.reason {
                Some(e) if r.action == Action::Failed => {
                    output::error(format_args!("{}:{}: {e}", r.layer_name, r.version))
                }
                _ => output::status(r.action.as_str(), &r.arn),
            }
            match &r.object {
                Some(o) if r.action == Action::Deleted && o.starts_with("s3://") => output::status("deleted", o),
                Some(o) if r.action == Action::Deleted && o.starts_with("not deleted") => {
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
    let (action, frees) = if opts.dry_run { (Action::Delete, "would free") } else { (Action::Deleted, "freed") };
    let freed = freed(&rows, action);
    for (region, (versions, bytes)) in &freed {
        output::line(format_args!(
            "{region}: {frees} {} of Lambda code storage ({})",
            storage::amount(*bytes),
            output::count(*versions, "version")
        ));
    }
    let total = storage::amount(freed.values().map(|f| f.1).sum());
    let done = if opts.dry_run {
        format!("{} would be deleted (dry run: nothing was deleted), which {frees} {total}", count(Action::Delete))
    } else {
        format!("{} deleted, {} failed, {frees} {total}", count(Action::Deleted), count(Action::Failed))
    };
    output::line(format_args!("profile {}: {} kept, {done}", opts.profile, count(Action::Keep)));
    Ok(count(Action::Failed) == 0)
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
        table.row(vec![r.action.as_str().into(), r.region.clone(), r.version.to_string(), r.layer_name.clone(), why]);
    }
    table.print();
}
