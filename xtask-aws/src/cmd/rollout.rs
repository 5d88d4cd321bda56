//! `cargo xtask rollout`: moves functions to the newest versions of this repo's layers
//! (`--function`, `--all-outdated`) or to a stack's ARNs (`--stack`), after the stack
//! checks pass for every one of them; `--dry-run` prints the plan, `--undo` restores the
//! layer lists the last rollout replaced.

use anyhow::Result;

use crate::aws;
use crate::rollout::plan::{Change, Selection};
use crate::rollout::record;
use crate::rollout::{self, Options};
use xtask::cmd::remote::rollout::Args;
use xtask::output::{self, Table};
use xtask::repo::Repo;
use xtask::unit::Context;

/// Returns false when a check refused the rollout or an update failed.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    let selection = match (&args.stack, args.function.is_empty(), args.all_outdated) {
        _ if args.undo => None,
        (Some(s), _, _) => Some(Selection::Stack(s.clone(), args.function.clone())),
        (None, false, _) => Some(Selection::Functions(args.function.clone())),
        _ => Some(Selection::AllOutdated),
    };
    let opts = Options {
        profile: args.profile.profile.clone(),
        selection,
        undo_only: if args.undo { args.function.clone() } else { Vec::new() },
        dry_run: args.dry_run,
        yes: args.yes,
        lock_timeout: std::time::Duration::from_secs(args.lock_timeout),
    };
    let outcome = aws::run(rollout::rollout(&ctx, &opts, &|changes| show(changes, &opts)))?;
    if args.output.json {
        for c in &outcome.changes {
            output::json(c)?;
        }
    }
    if outcome.refused {
        let n = outcome.changes.iter().filter(|c| c.failed()).count();
        output::error(format_args!(
            "rollout refused: the checks of {} failed (see above); nothing was changed",
            output::count(n, "function")
        ));
        return Ok(false);
    }
    // `--undo`: one line per function not restored because it changed since the rollout.
    let skipped = outcome.skipped.len();
    let report_skipped = || {
        for m in &outcome.skipped {
            output::error(format_args!(
                "skipped function {} ({}): {}",
                m.function,
                m.region,
                m.reason.as_deref().unwrap_or("not undone")
            ));
        }
    };
    if outcome.changes.is_empty() && args.undo {
        if skipped > 0 {
            report_skipped();
            output::line(format_args!(
                "profile {}: nothing undone, {} skipped; nothing was changed",
                opts.profile,
                output::count(skipped, "function")
            ));
            return Ok(false);
        }
        output::line(format_args!(
            "nothing to undo in profile {}: the functions of the last rollout hold their earlier layer lists",
            opts.profile
        ));
        return Ok(true);
    }
    if outcome.changes.is_empty() {
        output::line(format_args!("nothing to roll out in profile {}", opts.profile));
        return Ok(true);
    }
    if opts.dry_run {
        report_skipped();
        output::line(format_args!(
            "dry run: {} would change{}; nothing was changed",
            output::count(outcome.changes.len(), "function"),
            if skipped > 0 { format!(", {skipped} skipped") } else { String::new() }
        ));
        return Ok(skipped == 0);
    }
    let mut failed = 0;
    for m in &outcome.moved {
        if m.status != record::SUCCESSFUL {
            failed += 1;
            output::error(format_args!("{} ({}): {}", m.function, m.region, m.reason.as_deref().unwrap_or(&m.status)));
            continue;
        }
        // `reason` on a successful one: how it was confirmed after a failed call.
        let how = m.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        output::status("updated", format_args!("{} ({}): LastUpdateStatus Successful{how}", m.function, m.region));
    }
    report_skipped();
    output::line(format_args!(
        "profile {}: {} updated, {failed} failed{}; recorded in published/{}-rollouts.json (`cargo xtask rollout --undo --profile {}` restores)",
        opts.profile,
        outcome.moved.len() - failed,
        if skipped > 0 { format!(", {skipped} skipped (changed since the rollout)") } else { String::new() },
        opts.profile,
        opts.profile
    ));
    Ok(failed == 0 && skipped == 0)
}

/// The plan: per function, each repo layer from one version to another, then its checks.
fn show(changes: &[Change], opts: &Options) {
    if changes.is_empty() {
        return;
    }
    let v = |o: Option<i64>| o.map_or("-".to_string(), |v| v.to_string());
    let mut table = Table::new(&["FUNCTION", "REGION", "LAYER", "FROM", "TO"]).right(3).right(4);
    for c in changes {
        for m in &c.moves {
            table.row(vec![c.function.clone(), c.region.clone(), m.layer_name.clone(), v(m.from), v(m.to)]);
        }
    }
    output::line(format_args!("rollout plan (profile {}):", opts.profile));
    table.print();
    for c in changes.iter().filter(|c| !c.checks.is_empty()) {
        output::line(format_args!("function {} ({}): {} layers", c.function, c.region, c.after.len()));
        let width = c.checks.iter().map(|c| c.check.len()).max().unwrap_or(0).max(8);
        for check in &c.checks {
            output::line(format_args!("  {:<5} {:<width$} {}", check.verdict.as_str(), check.check, check.summary));
            for d in &check.details {
                output::line(format_args!("  {:<5} {:<width$} {d}", "", ""));
            }
        }
    }
}
