//! `cargo xtask prune`: deletes old versions of this repo's published layers. For every
//! unit of the repo in every region of a profile, the N newest versions are kept, and so
//! is every version a manifest in `published/` names (any profile's: profiles may share an
//! account and layer names), every version a function in the profile's regions attaches
//! (ListFunctions), and every version the last recorded rollout's `--undo` would restore;
//! the rest are listed, then deleted, after confirmation on a profile marked `confirm`.
//! The S3 object (and SBOM) of each deleted version goes too, unless a kept version of the
//! same layer has the same content (the key is content-addressed, so they share it).
//! Each deleted version frees its CodeSize of the region's code storage ([`freed`]).
//!
//! `plan.rs` decides what to keep and why; this file confirms, locks, plans again under
//! the lock and deletes.

mod plan;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;

use crate::aws::{bounded, confirm, plan_repo, Clients, Session};
use crate::s3lock::{lock_regions, Locks};
use xtask::profile::naming;
use xtask::unit::Context;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: String,
    /// How many of the newest versions of each layer to keep, whatever the manifests say.
    pub keep: usize,
    pub dry_run: bool,
    pub yes: bool,
    /// How long to wait for another run's publish lock (`--lock-timeout`).
    pub lock_timeout: std::time::Duration,
}

/// What happens to a version: kept, to be deleted (the plan), deleted, or its deletion
/// failed. Serialised as its text (`keep`, `delete`, `deleted`, `failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Keep,
    Delete,
    Deleted,
    Failed,
}

impl Action {
    /// The word shown in the table, the status line and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Delete => "delete",
            Action::Deleted => "deleted",
            Action::Failed => "failed",
        }
    }
}

/// One version of one published layer, and what happens to it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub layer: String,
    pub region: String,
    pub layer_name: String,
    pub version: i64,
    pub arn: String,
    pub action: Action,
    /// Why a version is kept, or why its deletion failed.
    pub reason: Option<String>,
    /// For a version deleted (or to be): its S3 object, `s3://BUCKET/KEY`, deleted with it;
    /// or why it stays (a kept version shares it).
    pub object: Option<String>,
    /// For a version deleted (or to be): its zip's size as Lambda counts it toward the
    /// region's code storage (CodeSize), what deleting it frees; `None` for one kept.
    pub code_size: Option<u64>,
}

/// What the rows with `action` free of each region's code storage: (versions, bytes) per
/// region, by region name.
pub fn freed(rows: &[Row], action: Action) -> BTreeMap<String, (usize, u64)> {
    let mut out: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.action == action) {
        let e = out.entry(r.region.clone()).or_default();
        e.0 += 1;
        e.1 += r.code_size.unwrap_or(0);
    }
    out
}

/// Lists what would be deleted and calls `show` with it (always, before anything is
/// deleted); unless this is a dry run, then confirms, takes the profile's publish lock in
/// the regions it deletes in (so a publish or rollout never races it), plans again under
/// it, and deletes what both plans delete.
pub async fn prune(ctx: &Context, opts: &Options, show: &dyn Fn(&[Row])) -> Result<Vec<Row>> {
    let profile = ctx.config.profile(&opts.profile)?.clone();
    let session = Session::open(ctx, &opts.profile).await?;
    let units = plan_repo(ctx, "deleted")?;
    session.check_identity().await?;
    let published = ctx.repo.published_dir();
    let rows = plan::plan(&session, &units, &published, opts.keep).await?;
    show(&rows);
    if opts.dry_run || !rows.iter().any(|r| r.action == Action::Delete) {
        return Ok(rows);
    }
    confirm::profile(&opts.profile, &profile, opts.yes)?;
    let regions: BTreeSet<String> =
        rows.iter().filter(|r| r.action == Action::Delete).map(|r| r.region.clone()).collect();
    let locks = lock_regions(&session, opts.lock_timeout, Some(&regions)).await?;
    let result = async {
        // Under the lock, look again: what a publish or rollout did meanwhile (a manifest
        // or a function now naming a version, a new version sharing a zip) keeps what it
        // needs.
        let fresh = plan::plan(&session, &units, &published, opts.keep).await?;
        let rows = settle(rows, &fresh);
        Ok(delete_rows(&session, rows, &locks).await)
    }
    .await;
    locks.release().await;
    result
}

/// The rows shown, with what the plan made under the lock (`fresh`) says: a version is
/// deleted only when both plans delete it (with the fresh plan's view of its zip); one the
/// fresh plan keeps, or that is gone, is kept and said so. Nothing the user was not shown
/// is deleted.
fn settle(shown: Vec<Row>, fresh: &[Row]) -> Vec<Row> {
    shown
        .into_iter()
        .map(|r| {
            if r.action != Action::Delete {
                return r;
            }
            let now =
                fresh.iter().find(|f| f.region == r.region && f.layer_name == r.layer_name && f.version == r.version);
            match now {
                Some(f) if f.action == Action::Delete => Row { object: f.object.clone(), code_size: f.code_size, ..r },
                _ => {
                    let why = match now {
                        Some(f) => f.reason.clone().unwrap_or_default(),
                        None => "no longer listed (deleted by another run)".into(),
                    };
                    let why = format!("kept after all: under the publish lock, {why}");
                    xtask::output::note(format_args!("{}:{}: {why}", r.layer_name, r.version));
                    Row { action: Action::Keep, reason: Some(why), object: None, code_size: None, ..r }
                }
            }
        })
        .collect()
}

/// Deletes the rows to delete, each only while the lock of its region is still held, then
/// their S3 objects.
async fn delete_rows(session: &Session, rows: Vec<Row>, locks: &Locks) -> Vec<Row> {
    let region_clients: BTreeMap<String, Clients> =
        session.clients.iter().map(|c| (c.target.region.clone(), c.clone())).collect();
    let futures: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let c = region_clients[&r.region].clone();
            let lock = locks.held.get(&r.region).cloned();
            let (bucket, prefix) = (naming::bucket(&session.profile, &r.region), session.profile.prefix.clone());
            async move {
                if r.action != Action::Delete {
                    return r;
                }
                let held = match &lock {
                    Some(l) => l.ensure_held(),
                    None => Err(anyhow::anyhow!("this run does not hold the publish lock in {}", r.region)),
                };
                match held {
                    Ok(()) => match delete(&c, &bucket, &prefix, &r.layer_name, r.version).await {
                        Ok(()) => Row { action: Action::Deleted, ..r },
                        Err(e) => Row { action: Action::Failed, reason: Some(format!("{e:#}")), ..r },
                    },
                    Err(e) => Row { action: Action::Failed, reason: Some(format!("{e:#}")), ..r },
                }
            }
        })
        .collect();
    let rows = bounded(4, futures).await;
    delete_objects(session, rows, locks).await
}

/// Deletes the S3 object (and the SBOM beside it) of every deleted version whose object is
/// not shared with a kept one; a failure is noted on the row, the version stays deleted.
async fn delete_objects(session: &Session, mut rows: Vec<Row>, locks: &Locks) -> Vec<Row> {
    let url = |r: &Row| r.object.clone().filter(|o| o.starts_with("s3://"));
    // A version whose deletion failed is still there: so must its zip be, for every row
    // sharing it.
    let needed: std::collections::BTreeSet<String> =
        rows.iter().filter(|r| r.action != Action::Deleted).filter_map(url).collect();
    let mut done: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for r in rows.iter_mut() {
        let Some(url) = url(r) else { continue };
        if r.action != Action::Deleted {
            r.object = None;
            continue;
        }
        if needed.contains(&url) {
            r.object = Some("kept: a version that could not be deleted has the same content".into());
            continue;
        }
        if !done.insert(url.clone()) {
            continue;
        }
        let Some(c) = session.clients.iter().find(|c| c.target.region == r.region) else { continue };
        if let Err(e) = locks.held.get(&r.region).map_or(Ok(()), |l| l.ensure_held()) {
            r.object = Some(format!("not deleted: {e:#}"));
            continue;
        }
        let (bucket, key) = url.trim_start_matches("s3://").split_once('/').unwrap_or_default();
        for k in [key.to_string(), naming::sbom_key(key)] {
            if let Err(e) = c.s3.delete_object().bucket(bucket).key(&k).send().await {
                let e = c.target.explain(&format!("cannot delete s3://{bucket}/{k}"), e);
                r.object = Some(format!("not deleted: {e:#}"));
                break;
            }
        }
    }
    rows
}

/// Deletes a version, then its publish record (`records.rs`): a record left behind would
/// name a version that no longer exists.
async fn delete(c: &Clients, bucket: &str, prefix: &str, layer_name: &str, version: i64) -> Result<()> {
    let what = format!("cannot delete version {version} of layer {layer_name} in {}", c.target.region);
    c.lambda
        .delete_layer_version()
        .layer_name(layer_name)
        .version_number(version)
        .send()
        .await
        .map_err(|e| c.target.explain(&what, e))?;
    crate::records::delete_version(c, bucket, prefix, layer_name, version).await
}
