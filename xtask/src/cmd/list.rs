//! `cargo xtask list`: every layer with its targets and whether dist/ is current.

use anyhow::Result;
use serde_json::json;

use super::args::OutputArgs;
use crate::output::{self, size, Table};
use crate::repo::Repo;
use crate::unit::{self, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Returns false when some layer could not be planned (its error is printed after the
/// table, never in it).
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?.with_stale_lock(unit::StaleLock::Ignore);
    // With -v, every command's config load has noted them already.
    if !output::is_verbose() {
        ctx.config.note_local_settings();
    }
    let names = ctx.repo.layer_names()?;
    if names.is_empty() {
        output::line("no layers yet: add one with `cargo xtask new NAME package==version`");
    }
    let mut table = Table::new(&["DIST", "LOCK", "LAYER", "RUNTIME", "ARCH", "ZIP"]).right(5);
    let mut errors = Vec::new();
    for name in names {
        match unit::plan(&ctx, &name) {
            Ok(units) => {
                // A stale lock is what a build would lock again first (and publish refuses).
                let lock = match crate::lockfile::freshness(&ctx.repo, &ctx.config, &name) {
                    Ok(crate::lockfile::Freshness::Current) => "current",
                    Ok(crate::lockfile::Freshness::Stale(_)) => "stale",
                    Ok(crate::lockfile::Freshness::NotLocked) => "by hand",
                    Err(_) => "unreadable",
                };
                for u in units {
                    let (state, zip) = match (unit::current(&u), u.paths.current()) {
                        (Some(r), _) => ("current", size(r.zipped_bytes)),
                        (None, Some(_)) => ("stale", "-".into()),
                        (None, None) => ("not built", "-".into()),
                    };
                    table.row(vec![
                        state.into(),
                        lock.into(),
                        u.layer.name.clone(),
                        u.runtime.id.into(),
                        u.arch.as_str().into(),
                        zip,
                    ]);
                    if args.output.json {
                        output::json(&json!({"layer": u.layer.name, "runtime": u.runtime.id, "arch": u.arch,
                            "image": u.image, "fingerprint": u.fingerprint, "dist": state, "lock": lock}))?;
                    }
                }
            }
            Err(e) => errors.push(format!("layer {name}: {e:#}")),
        }
    }
    if !table.is_empty() {
        table.print();
    }
    for e in &errors {
        output::error(e);
    }
    Ok(errors.is_empty())
}
