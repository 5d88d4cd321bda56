//! `cargo xtask list`: every layer with its targets and whether dist/ is current.

use anyhow::Result;
use serde_json::json;

use crate::limits::mib;
use crate::repo::Repo;
use crate::unit::{self, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON object per unit on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    let names = ctx.repo.layer_names()?;
    if names.is_empty() {
        eprintln!("no layers yet: add one with `cargo xtask new NAME package==version`");
    }
    let mut ok = true;
    for name in names {
        match unit::plan(&ctx, &name) {
            Ok(units) => {
                for u in units {
                    let (state, size) = match (unit::current(&u), u.paths.current()) {
                        (Some(r), _) => ("current", format!("{} zip", mib(r.zipped_bytes))),
                        (None, Some(_)) => ("stale", String::new()),
                        (None, None) => ("not built", String::new()),
                    };
                    eprintln!("{:<20} {:<11} {:<7} {:<10} {size}", u.layer.name, u.runtime.id, u.arch.as_str(), state);
                    if args.json {
                        println!(
                            "{}",
                            json!({"layer": u.layer.name, "runtime": u.runtime.id, "arch": u.arch, "image": u.image,
                                   "fingerprint": u.fingerprint, "dist": state})
                        );
                    }
                }
            }
            Err(e) => {
                ok = false;
                eprintln!("{name:<20} error: {e:#}");
            }
        }
    }
    Ok(ok)
}
