//! Rollout: from a new layer version to the functions that attach the layer.
//!
//! - `usage.rs`: the functions of a profile's regions that attach this repo's layers, with
//!   the attached and newest version of each, and the stack their list matches.
//! - `plan.rs`: each selected function's new layer list, and the `stack` checks applied to
//!   it with the function's own code size, runtime and architecture.
//! - `record.rs`: `published/<profile>-rollouts.json`, what `--undo` restores.
//! - `update.rs`: one function's UpdateFunctionConfiguration: an update in progress waited
//!   for, the new list waited for until Lambda reports it `Successful`, a failed call
//!   reconciled with what the function holds before it is recorded `failed`.
//!
//! The order is fixed by [`rollout`]: confirmation (`--yes` on a `confirm` profile), then
//! one async run: account check -> survey -> plan -> GetFunction and checks for every
//! function -> the plan is shown -> only when every function passes, and not a dry run,
//! [`update::update`] per function (bounded: `XTASK_ROLLOUT_WAIT`) -> the record (written
//! `pending` before the first update, then with the outcome). Nothing is written when any
//! check fails. `--undo` writes through the same [`update::update`].

pub mod plan;
pub mod record;
pub mod update;
pub mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::aws::{bounded, confirm, plan_repo, Clients, Session};
use crate::s3lock::{lock_regions, Locks};
use plan::{Change, Move, Selection};
use record::{Moved, Record, Rollout};
use update::Write;
use usage::{LayerArn, Listed, Owners};
use xtask::profile::manifest::{now_rfc3339, Manifest};
use xtask::unit::Context;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: String,
    /// None: `--undo`.
    pub selection: Option<Selection>,
    /// With `--undo`: only these functions (name or ARN) of the last rollout; empty: all.
    pub undo_only: Vec<String>,
    pub dry_run: bool,
    pub yes: bool,
    /// How long to wait for another run's publish lock (`--lock-timeout`).
    pub lock_timeout: Duration,
}

/// What a rollout did.
pub struct Outcome {
    pub changes: Vec<Change>,
    /// Per function written: the result. Empty on a dry run or a refusal.
    pub moved: Vec<Moved>,
    /// A check failed: nothing was written.
    pub refused: bool,
    /// `--undo`: the functions not restored because they changed since the rollout (status
    /// `skipped`, with the reason).
    pub skipped: Vec<Moved>,
}

/// The functions of the profile that attach the repo's layers (`only`: these layers).
pub async fn survey(ctx: &Context, profile: &str, only: &[String]) -> Result<usage::Survey> {
    let session = Session::open(ctx, profile).await?;
    let owners = owners(ctx, &session)?;
    session.check_identity().await?;
    usage::survey(&session, &owners, &ctx.config.stacks, only, &[]).await
}

fn owners(ctx: &Context, session: &Session) -> Result<Owners> {
    Owners::new(session, plan_repo(ctx, "changed")?)
}

/// Plans, checks and (unless a dry run or a check fails) applies a rollout; `show` gets
/// the plan with its checks before anything is written.
pub async fn rollout(ctx: &Context, opts: &Options, show: &dyn Fn(&[Change])) -> Result<Outcome> {
    let profile = ctx.config.profile(&opts.profile)?.clone();
    if !opts.dry_run {
        confirm::profile(&opts.profile, &profile, opts.yes)?;
    }
    let session = Session::open(ctx, &opts.profile).await?;
    let path = Record::path(&ctx.repo.published_dir(), &opts.profile);
    // Read first: a record that cannot be read is reported before any planning or build
    // (a rollout appends to it before its first write).
    let record = Record::load(&path, &opts.profile)?;
    let Some(selection) = &opts.selection else {
        let names = repo_layers(ctx, &session);
        return undo(&session, opts, &record, &path, &names, show).await;
    };
    let owners = owners(ctx, &session)?;
    let manifest = match selection {
        Selection::Stack(..) => {
            Manifest::load(&Manifest::path(&ctx.repo.published_dir(), &opts.profile), &opts.profile, Some(&profile))?
        }
        _ => Manifest::default(),
    };
    session.check_identity().await?;
    let named: &[String] = match selection {
        Selection::Stack(_, names) => names,
        _ => &[],
    };
    let mut survey = usage::survey(&session, &owners, &ctx.config.stacks, &[], named).await?;
    let mut changes = plan::changes(&opts.profile, &survey, &owners, selection, &ctx.config.stacks, &manifest)?;
    // The versions of layers a stack adds that no function attached yet.
    for ch in &changes {
        let f = &survey.functions[ch.index];
        for arn in &ch.after {
            if let Some((a, _)) = usage::own_name(&owners, arn, &survey.accounts[f.client], &f.region) {
                if !survey.versions.contains_key(&(f.client, a.name.clone())) {
                    let v = usage::list_versions(&session.clients[f.client], &a.name).await?;
                    survey.versions.insert((f.client, a.name), v);
                }
            }
        }
    }
    let mut writes = Vec::new();
    for ch in &mut changes {
        let f = &survey.functions[ch.index];
        let c = &session.clients[f.client];
        let fresh = get_function(c, &f.function).await?;
        if fresh.layer_arns() != ch.before {
            bail!(
                "function {} in {} changed while the rollout was planned: run it again (nothing was changed)",
                f.function,
                f.region
            );
        }
        ch.checks = plan::check(ctx, &owners, &survey, &fresh, ch);
        writes.push(Write {
            client: f.client,
            region: f.region.clone(),
            function: f.function.clone(),
            before: ch.before.clone(),
            after: ch.after.clone(),
        });
    }
    show(&changes);
    if changes.iter().any(Change::failed) {
        return Ok(Outcome { changes, moved: Vec::new(), refused: true, skipped: Vec::new() });
    }
    if opts.dry_run || writes.is_empty() {
        return Ok(Outcome { changes, moved: Vec::new(), refused: false, skipped: Vec::new() });
    }
    let record = (path.as_path(), opts.profile.as_str(), selection.describe());
    let moved = write_locked(&session, opts.lock_timeout, writes, record, Vec::new()).await?;
    Ok(Outcome { changes, moved, refused: false, skipped: Vec::new() })
}

/// `--undo`: the last rollout's functions (or the `--function` ones of them) back to their
/// `before` lists, each only when it still holds what the rollout left; one changed since
/// is skipped (and reported, with why), the others are restored.
async fn undo(
    session: &Session,
    opts: &Options,
    record: &Record,
    path: &std::path::Path,
    names: &BTreeMap<String, String>,
    show: &dyn Fn(&[Change]),
) -> Result<Outcome> {
    session.check_identity().await?;
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some(last) = record.undoable() else {
        bail!("no rollout of profile `{}` is recorded in published/{file}: nothing to undo", opts.profile);
    };
    let selected = undo_selection(last, &opts.undo_only)?;
    let mut changes = Vec::new();
    let mut writes = Vec::new();
    let mut skipped = Vec::new();
    for m in selected {
        let Some(client) = session.clients.iter().position(|c| c.target.region == m.region) else {
            bail!("the last rollout ({}) moved function {} in {}, which is not a region of profile `{}` now (nothing was changed)", last.at, m.function, m.region, opts.profile);
        };
        let fresh = get_function(&session.clients[client], &m.function).await.with_context(|| {
            format!(
                "cannot undo the rollout of {}: function {} in {} cannot be read (nothing was changed)",
                last.at, m.function, m.region
            )
        })?;
        let now = fresh.layer_arns();
        if now == m.before {
            continue;
        }
        if now != m.after {
            skipped.push(Moved {
                status: "skipped".into(),
                reason: Some(format!(
                    "it changed since the rollout of {}: it attaches {}, not what the rollout left ({}); not undone",
                    last.at,
                    list(&now),
                    list(&m.after)
                )),
                ..m.clone()
            });
            continue;
        }
        changes.push(Change {
            region: m.region.clone(),
            function: m.function.clone(),
            before: now.clone(),
            after: m.before.clone(),
            moves: moves(&now, &m.before, names),
            checks: Vec::new(),
            index: usize::MAX,
        });
        writes.push(Write {
            client,
            region: m.region.clone(),
            function: m.function.clone(),
            before: now,
            after: m.before.clone(),
        });
    }
    show(&changes);
    if opts.dry_run || writes.is_empty() {
        return Ok(Outcome { changes, moved: Vec::new(), refused: false, skipped });
    }
    let only =
        if opts.undo_only.is_empty() { String::new() } else { format!(" --function {}", opts.undo_only.join(" ")) };
    let how = format!("--undo{only} (of the rollout at {}, {})", last.at, last.how);
    let moved = write_locked(session, opts.lock_timeout, writes, (path, &opts.profile, how), skipped.clone()).await?;
    Ok(Outcome { changes, moved, refused: false, skipped })
}

/// The functions of `last` that `--undo` restores: all, or the ones `only` names (by name
/// or ARN); a name the rollout did not move is an error naming it.
fn undo_selection<'a>(last: &'a Rollout, only: &[String]) -> Result<Vec<&'a Moved>> {
    if only.is_empty() {
        return Ok(last.functions.iter().collect());
    }
    let mut out: Vec<&Moved> = Vec::new();
    for n in only {
        let found: Vec<&Moved> = last.functions.iter().filter(|m| names_function(n, m)).collect();
        if found.is_empty() {
            let moved: Vec<&str> = last.functions.iter().map(|m| m.function.as_str()).collect();
            bail!(
                "function {} is not one of the functions the rollout of {} ({}) moved: give one of {} (nothing was changed)",
                xtask::quote::clip(n),
                last.at,
                xtask::quote::clip_to(&last.how, 80),
                xtask::quote::clip(&moved.join(", "))
            );
        }
        for m in found {
            if !out.iter().any(|x| std::ptr::eq(*x, m)) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Whether `name` (a function name, or an unqualified function ARN) is `m`'s function.
fn names_function(name: &str, m: &Moved) -> bool {
    if name == m.function {
        return true;
    }
    let parts: Vec<&str> = name.split(':').collect();
    parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[3] == m.region
        && parts[5] == "function"
        && parts[6] == m.function
}

/// `a:1, b:2`
fn list(arns: &[String]) -> String {
    if arns.is_empty() {
        return "no layers".into();
    }
    arns.iter().map(|a| plan::short(a)).collect::<Vec<_>>().join(", ")
}

/// The repo layer (`six`) each Lambda layer name of the profile is published from, for
/// the layers that can be planned: `--undo` must not depend on the repo's layers being
/// plannable now, so one that cannot be is left out (and shown by its Lambda name).
fn repo_layers(ctx: &Context, session: &Session) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in ctx.repo.layer_names().unwrap_or_default() {
        for u in xtask::unit::plan(ctx, &name).unwrap_or_default() {
            if let Ok(n) =
                xtask::profile::naming::layer_name(&session.profile.layer_name, &u.layer.name, u.runtime, u.arch)
            {
                out.entry(n).or_insert_with(|| u.layer.name.clone());
            }
        }
    }
    out
}

/// Moves between two lists by layer name (for `--undo`); `layer` is the repo layer where
/// `names` knows it, else the Lambda layer name.
fn moves(before: &[String], after: &[String], names: &BTreeMap<String, String>) -> Vec<Move> {
    let layer = |n: &str| names.get(n).cloned().unwrap_or_else(|| n.to_string());
    let mut out: Vec<Move> = Vec::new();
    for arn in before {
        if let Some(a) = LayerArn::parse(arn) {
            out.push(Move { layer: layer(&a.name), layer_name: a.name, from: Some(a.version), to: None });
        }
    }
    for arn in after {
        if let Some(a) = LayerArn::parse(arn) {
            match out.iter_mut().find(|m| m.layer_name == a.name && m.to.is_none()) {
                Some(m) => m.to = Some(a.version),
                None => out.push(Move { layer: layer(&a.name), layer_name: a.name, from: None, to: Some(a.version) }),
            }
        }
    }
    out.retain(|m| m.from != m.to);
    out
}

/// Takes the profile's publish lock in the regions of `writes` (so two rollouts, or a
/// rollout and a prune or publish, never interleave), checks under it that every function
/// is still what was checked, writes, and releases the lock (also on an error; Ctrl-C
/// releases it too).
async fn write_locked(
    session: &Session,
    timeout: Duration,
    writes: Vec<Write>,
    record: (&std::path::Path, &str, String),
    skipped: Vec<Moved>,
) -> Result<Vec<Moved>> {
    let bound = update::wait_bound()?;
    let regions: BTreeSet<String> = writes.iter().map(|w| w.region.clone()).collect();
    let locks = lock_regions(session, timeout, Some(&regions)).await?;
    let result = async {
        // What a run that held the lock meanwhile changed is not overwritten. The layer
        // list decides, not the RevisionId: an update of something else (code, settings)
        // still in progress when the function was planned moves the RevisionId when it
        // ends, and is waited for by `update`, which writes under the fresh RevisionId
        // only while the function still holds `before`.
        for w in &writes {
            let fresh = get_function(&session.clients[w.client], &w.function).await?;
            if fresh.layer_arns() != w.before {
                bail!(
                    "function {} in {} changed while the rollout waited for the publish lock: run it again (nothing was changed)",
                    w.function,
                    w.region
                );
            }
        }
        apply(session, writes, record, &locks, skipped, bound).await
    }
    .await;
    locks.release().await;
    result
}

/// Writes every function's new list, a few at a time, each waited for, each only while
/// the lock of its region is still held; `skipped` (`--undo`) is recorded with them.
async fn apply(
    session: &Session,
    writes: Vec<Write>,
    record: (&std::path::Path, &str, String),
    locks: &Locks,
    skipped: Vec<Moved>,
    bound: Duration,
) -> Result<Vec<Moved>> {
    let (path, profile, how) = record;
    let at = now_rfc3339();
    let pending = writes
        .iter()
        .map(|w| Moved {
            region: w.region.clone(),
            function: w.function.clone(),
            before: w.before.clone(),
            after: w.after.clone(),
            status: "pending".into(),
            reason: None,
        })
        .chain(skipped.iter().cloned())
        .collect();
    // Recorded before the first write, so a run that stops half-way can still be undone.
    Record::append(path, profile, Rollout { at: at.clone(), how: how.clone(), functions: pending })?;
    let futures: Vec<_> = writes
        .into_iter()
        .map(|w| {
            let c = session.clients[w.client].clone();
            let lock = locks.held.get(&w.region).cloned();
            async move {
                let result = match &lock {
                    Some(l) => l.ensure_held(),
                    None => Err(anyhow::anyhow!("this run does not hold the publish lock in {}", w.region)),
                };
                let result = match result {
                    Ok(()) => update::update(&c, &w, bound).await,
                    Err(e) => Err(e),
                };
                let (status, reason) = match result {
                    Ok(how) => (record::SUCCESSFUL, how),
                    Err(e) => (record::FAILED, Some(format!("{e:#}"))),
                };
                Moved {
                    region: w.region,
                    function: w.function,
                    before: w.before,
                    after: w.after,
                    status: status.into(),
                    reason,
                }
            }
        })
        .collect();
    let moved = bounded(4, futures).await;
    let functions = moved.iter().cloned().chain(skipped).collect();
    Record::finish(path, profile, Rollout { at, how, functions })?;
    Ok(moved)
}

/// The function as GetFunction describes it now.
async fn get_function(c: &Clients, function: &str) -> Result<Listed> {
    let what = format!("cannot read function {function} in {}", c.target.region);
    let out = c.lambda.get_function().function_name(function).send().await.map_err(|e| c.target.explain(&what, e))?;
    let conf = out.configuration().with_context(|| format!("{what}: Lambda returned no configuration"))?;
    Ok(Listed::from_configuration(conf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_moves_are_by_layer_name() {
        let arn = |n: &str, v: i64| format!("arn:aws:lambda:us-east-1:123456789012:layer:{n}:{v}");
        let names = BTreeMap::from([("a".to_string(), "six".to_string())]);
        let m = moves(&[arn("a", 2), arn("x", 1), arn("y", 1)], &[arn("a", 1), arn("x", 1)], &names);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].layer.as_str(), m[0].layer_name.as_str(), m[0].from, m[0].to), ("six", "a", Some(2), Some(1)));
        assert_eq!((m[1].layer.as_str(), m[1].from, m[1].to), ("y", Some(1), None));
        assert_eq!(list(&[]), "no layers");
        assert_eq!(list(&[arn("a", 2)]), "a:2");
    }
}
