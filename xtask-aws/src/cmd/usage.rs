//! `cargo xtask usage [LAYER...]`: the functions of a profile's regions that attach this
//! repo's layers, each attached layer with its version and the newest published one, and
//! the stack the function's layer list matches. Other owners' layers are shown as such.

use anyhow::Result;

use crate::{aws, rollout};
use xtask::cmd::remote::usage::Args;
use xtask::output::{self, Table};
use xtask::repo::Repo;
use xtask::unit::{self, Context};

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    // Which layers are this repo's needs their names only: a stale lock does not matter here.
    let ctx = Context::new(repo, None)?.with_stale_lock(xtask::unit::StaleLock::Ignore);
    let only = if args.names.is_empty() { Vec::new() } else { unit::select_layers(&ctx.repo, &args.names, false)? };
    // A misspelt layer would otherwise read as "no function attaches it".
    for name in &only {
        ctx.repo.layer_dir(name)?;
    }
    let survey = aws::run(rollout::survey(&ctx, &args.profile.profile, &only))?;
    if args.output.json {
        for f in &survey.functions {
            output::json(f)?;
        }
    }
    if survey.functions.is_empty() {
        output::line(format_args!("no function in profile {} attaches a layer of this repo", args.profile.profile));
        return Ok(true);
    }
    let mut table = Table::new(&["REGION", "FUNCTION", "RUNTIME", "ARCH", "LAYER", "ATTACHED", "NEWEST", "STACK"]);
    for f in &survey.functions {
        let stack = f.stack.clone().unwrap_or_else(|| "-".into());
        for (i, a) in f.layers.iter().enumerate() {
            let first = i == 0;
            let cell = |s: String| if first { s } else { String::new() };
            let (layer, newest) = match &a.layer {
                Some(l) => {
                    let newest = match a.newest {
                        Some(n) if a.outdated() => format!("{n} (outdated)"),
                        Some(n) => n.to_string(),
                        None => "-".into(),
                    };
                    (format!("{l} ({})", a.layer_name), newest)
                }
                None => (format!("{} (other owner, left alone)", a.layer_name), "-".into()),
            };
            table.row(vec![
                cell(f.region.clone()),
                cell(f.function.clone()),
                cell(f.runtime.clone().unwrap_or_else(|| "image".into())),
                cell(f.arch.clone()),
                layer,
                a.version.map_or("-".into(), |v| v.to_string()),
                newest,
                cell(stack.clone()),
            ]);
        }
    }
    table.print();
    let outdated = survey.functions.iter().filter(|f| f.outdated()).count();
    output::line(format_args!(
        "{}, {outdated} attaching an older version than the newest (`cargo xtask rollout --all-outdated --profile {}` moves them)",
        output::count(survey.functions.len(), "function"),
        args.profile.profile
    ));
    Ok(true)
}
