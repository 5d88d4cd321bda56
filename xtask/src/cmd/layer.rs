//! `cargo xtask layer NAME... | --all`: builds each unit that is not up to date.

use anyhow::Result;
use serde_json::json;

use crate::limits::mib;
use crate::repo::Repo;
use crate::unit::{self, Context, Outcome};

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
    /// Use this build image for this run instead of the configured one
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Print one JSON object per unit on stdout
    #[arg(long)]
    pub json: bool,
    /// Only the units of this runtime, e.g. python3.13
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Only the units of this architecture: x86_64 or arm64
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
}

/// Returns whether every unit succeeded.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let filter = unit::UnitFilter::parse(args.runtime.as_deref(), args.arch.as_deref())?;
    let ctx = Context::new(repo, args.image.clone())?;
    let names = unit::select_layers(&ctx.repo, &args.names, args.all)?;
    let (mut ok, mut kept) = (true, 0);
    for name in &names {
        let units = match unit::plan(&ctx, name) {
            Ok(u) => filter.apply(u),
            Err(e) => {
                ok = false;
                eprintln!("error: {e:#}");
                if args.json {
                    println!("{}", json!({"layer": name, "status": "failed", "error": format!("{e:#}")}));
                }
                continue;
            }
        };
        kept += units.len();
        for u in &units {
            match unit::build(&ctx, u, args.force) {
                Ok(outcome) => {
                    print_outcome(&outcome);
                    if args.json {
                        let mut v = serde_json::to_value(outcome.report())?;
                        v["status"] = json!(outcome.status());
                        println!("{v}");
                    }
                }
                Err(e) => {
                    ok = false;
                    eprintln!("error: {}: {e:#}", u.label());
                    if args.json {
                        println!(
                            "{}",
                            json!({"layer": u.layer.name, "runtime": u.runtime.id, "arch": u.arch, "status": "failed", "error": format!("{e:#}")})
                        );
                    }
                }
            }
        }
    }
    if ok {
        filter.ensure_matched(kept, &names)?;
    }
    Ok(ok)
}

fn print_outcome(o: &Outcome) {
    let r = o.report();
    let mut line = format!(
        "{:<10} {} {} {}: {} zip, {} unzipped ({:.1}% of 250 MiB), {} files",
        o.status(),
        r.layer,
        r.runtime,
        r.arch,
        mib(r.zipped_bytes),
        mib(r.unzipped_bytes),
        r.budget_percent,
        r.file_count
    );
    if let Outcome::Built(_) = o {
        line.push_str(&format!(", slimmed {} in {:.1}s", mib(r.slim.total_bytes()), r.duration_secs));
    }
    eprintln!("{line}");
    if let Outcome::Built(_) = o {
        for rm in r.slim.removed.iter().filter(|x| x.bytes > 0) {
            eprintln!("    - {}: {} files, {}", rm.rule, rm.files, mib(rm.bytes));
        }
        for n in &r.notes {
            eprintln!("    note: {n}");
        }
        eprintln!("    -> {}", r.zip);
    }
}
