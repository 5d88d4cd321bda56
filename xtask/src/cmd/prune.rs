//! `cargo xtask prune --keep N`: deletes old versions of this repo's published layers in a
//! deploy profile, keeping the N newest and every version a manifest names; the list is
//! always printed before anything is deleted.

use anyhow::Result;

use crate::publish::prune::{self, Options, Row};
use crate::repo::Repo;
use crate::unit::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Deploy profile from layers.toml; no other profile than staging is ever used unless named here
    #[arg(long, default_value = "staging", value_name = "PROFILE")]
    pub profile: String,
    /// How many of the newest versions of each layer to keep (versions a manifest in published/ names are always kept)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,
    /// List what would be deleted, and delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm deleting from a profile marked `confirm = true` (such as production)
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON object per layer version on stdout
    #[arg(long)]
    pub json: bool,
}

/// Returns false when a deletion failed.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    let opts =
        Options { profile: args.profile.clone(), keep: args.keep as usize, dry_run: args.dry_run, yes: args.yes };
    let rows = prune::prune(&ctx, &opts, &|rows| show(rows, &opts))?;
    let count = |a: &str| rows.iter().filter(|r| r.action == a).count();
    for r in rows.iter().filter(|r| r.action != "keep") {
        if !opts.dry_run {
            match &r.reason {
                Some(e) if r.action == "failed" => eprintln!("error: {}:{}: {e}", r.layer_name, r.version),
                _ => eprintln!("{:<8} {}", r.action, r.arn),
            }
        }
    }
    if args.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    }
    let done = if opts.dry_run {
        format!("{} would be deleted (dry run: nothing was deleted)", count("delete"))
    } else {
        format!("{} deleted, {} failed", count("deleted"), count("failed"))
    };
    eprintln!("profile {}: {} kept, {done}", opts.profile, count("keep"));
    Ok(count("failed") == 0)
}

/// The plan, before anything is deleted.
fn show(rows: &[Row], opts: &Options) {
    if rows.is_empty() {
        eprintln!("no published versions of this repo's layers in profile {}", opts.profile);
        return;
    }
    eprintln!("{:<8} {:<15} {:>7}  {:<40} WHY", "ACTION", "REGION", "VERSION", "LAYER NAME");
    for r in rows {
        let why = r.reason.clone().unwrap_or_else(|| format!("older than the {} newest", opts.keep));
        eprintln!("{:<8} {:<15} {:>7}  {:<40} {why}", r.action, r.region, r.version, r.layer_name);
    }
}
