//! Publishing, per layer x runtime x architecture x region: detect change from what each
//! region holds (one listing per region: Lambda's ListLayers and the publish records in
//! S3, `plan.rs`), build only what changed, upload to a content-addressed S3 key, register
//! the version with Lambda, record it (in S3, `records.rs`, then in
//! `published/<profile>.json`) and share it.
//!
//! The order is fixed by [`publish`]: guards (confirmation) and planning, then one async
//! run ([`run`]): account check -> change detection (the regions listed concurrently,
//! read-only) -> builds and checks (on this thread, because [`Context`] is not `Sync`) ->
//! when anything is to be published, the profile's lock in every region (see `s3lock`)
//! and the records listed again under it, so a unit a racing run published meanwhile is
//! `unchanged`, never a duplicate -> upload, register, record, share (each region's jobs
//! `--jobs` at a time, the regions in parallel) -> release. Nothing here prints a check's
//! result: the checks are returned with the rows.

mod job;
pub mod plan;
mod register;
mod ssm;
pub mod status;
mod upload;

pub use xtask::profile::{manifest, naming};

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::aws::identity::Identity;
use crate::aws::storage;
use crate::aws::{self, bounded, bounded_per_region, confirm, Session};
use crate::s3lock::{lock_regions, Locks};
use job::{Build, Job, Work};
use manifest::Recorder;
use plan::{Listing, Newest};
use register::Sharing;
use xtask::check::run::UnitCheck;
use xtask::failure::Failure;
use xtask::unit::{self, Context, Unit};

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: String,
    pub dry_run: bool,
    pub yes: bool,
    pub jobs: usize,
    /// How many units are built and checked at once.
    pub build_jobs: usize,
    /// Run `cargo xtask check` on every unit before it is published.
    pub check: bool,
    /// Publish a unit whose import check could not run (`--allow-unverified`).
    pub allow_unverified: bool,
    /// `--runtime` / `--arch`: only these units.
    pub filter: unit::UnitFilter,
    /// How long to wait for another run's publish lock.
    pub lock_timeout: Duration,
}

/// The result of one unit in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Published,
    Unchanged,
    Planned,
    Failed,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::Unchanged => "unchanged",
            Status::Planned => "planned",
            Status::Failed => "failed",
        }
    }
}

/// One line of the summary and one `--json` object.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub layer: String,
    pub runtime: Option<String>,
    pub arch: Option<String>,
    pub region: Option<String>,
    pub layer_name: Option<String>,
    pub status: Status,
    pub version: Option<i64>,
    pub arn: Option<String>,
    pub code_sha256: Option<String>,
    pub error: Option<String>,
    /// Why a unit is unchanged, or what a dry run would do.
    pub detail: Option<String>,
    /// For a dry run's `planned` row replacing a version: what changes against it (its
    /// packages and size, from its SBOM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<xtask::profile::changes::Changes>,
}

impl Row {
    fn failed_layer(layer: &str, err: &anyhow::Error) -> Row {
        Row {
            layer: layer.to_string(),
            runtime: None,
            arch: None,
            region: None,
            layer_name: None,
            status: Status::Failed,
            version: None,
            arn: None,
            code_sha256: None,
            error: Some(format!("{err:#}")),
            detail: None,
            changes: None,
        }
    }

    fn sort_key(&self) -> (String, String, String, String) {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        (self.layer.clone(), s(&self.runtime), s(&self.arch), s(&self.region))
    }
}

/// Plans every named layer; a layer that cannot be planned (a cycle in its `requires`
/// included, with or without `--no-check`) becomes a failed row.
fn plan_units(ctx: &Context, names: &[String]) -> (Vec<Unit>, Vec<Row>) {
    let (units, failed) = aws::plan_units(ctx, names);
    (units, failed.iter().map(|(name, e)| Row::failed_layer(name, e)).collect())
}

/// One unit in one region, before anything is decided.
struct Target {
    unit: usize,
    region: usize,
    layer_name: String,
}

fn targets(session: &Session, units: &[Unit]) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let layer_name = naming::layer_name(&session.profile.layer_name, &u.layer.name, u.runtime, u.arch)?;
        for region in 0..session.clients.len() {
            out.push(Target { unit: i, region, layer_name: layer_name.clone() });
        }
    }
    Ok(out)
}

/// What change detection found for a target.
type Detected = std::result::Result<Option<Newest>, Failure>;

/// A unit built (and checked) for publishing, or why it could not be.
type Built = std::result::Result<Build, Failure>;

/// What each region holds, `jobs` regions listed at once: one listing per region,
/// whatever the number of layers (`plan.rs`). A region that cannot be listed fails its
/// targets.
pub(super) async fn list_regions(
    session: &Session,
    who: &Identity,
    jobs: usize,
) -> Vec<std::result::Result<Listing, Failure>> {
    let futures: Vec<_> = session
        .clients
        .iter()
        .map(|c| {
            let (c, who) = (c.clone(), who.clone());
            let bucket = naming::bucket(&session.profile, &c.target.region);
            let prefix = session.profile.prefix.clone();
            async move { plan::list_region(&c, &who, &bucket, &prefix).await.map_err(Failure::new) }
        })
        .collect();
    bounded(jobs, futures).await
}

/// Under the lock, the records of every region again: what a racing run published
/// since the first listing is `unchanged` now, never a duplicate.
async fn refresh_regions(session: &Session, who: &Identity, listings: &mut [std::result::Result<Listing, Failure>]) {
    for (c, l) in session.clients.iter().zip(listings.iter_mut()) {
        let Ok(listing) = l else { continue };
        let bucket = naming::bucket(&session.profile, &c.target.region);
        if let Err(e) = plan::refresh_records(c, who, &bucket, &session.profile.prefix, listing).await {
            *l = Err(Failure::new(e));
        }
    }
}

/// Before publishing, each region's Lambda code storage against its quota: a warning past
/// 80% with what this run adds; per region, why nothing can be published there when the
/// run would pass the quota (Lambda would refuse the versions). Unknown usage (an
/// endpoint without GetAccountSettings) or an unreadable one (a missing permission) only
/// says so: it never blocks a publish.
async fn check_storage(
    session: &Session,
    units: &[Unit],
    targets: &[Target],
    detected: &[Detected],
    builds: &[Option<Built>],
) -> Vec<Option<String>> {
    let mut adding = vec![0u64; session.clients.len()];
    for (t, d) in targets.iter().zip(detected) {
        if let (true, Some(Ok(b))) = (needs_publishing(&units[t.unit], d), &builds[t.unit]) {
            adding[t.region] += b.report.zipped_bytes;
        }
    }
    let mut out = Vec::new();
    for (c, adding) in session.clients.iter().zip(adding) {
        let usage = match (adding, storage::usage(c).await) {
            (0, _) | (_, Ok(None)) => None,
            (_, Ok(Some(u))) => Some(u),
            (_, Err(e)) => {
                xtask::output::warn(format_args!("{e:#}"));
                None
            }
        };
        let warning = usage.and_then(|u| storage::warn_before_publish(&c.target.region, &session.name, &u, adding));
        out.push(match warning {
            Some(w) if w.fails => Some(w.message),
            Some(w) => {
                xtask::output::warn(format_args!("{w}"));
                None
            }
            None => None,
        });
    }
    out
}

/// A region's unfinished-run marker written by this run (`records::unfinished_key`).
struct Marker {
    bucket: String,
    key: String,
    /// An earlier run left it: that run stopped half-way.
    left_behind: bool,
}

/// In every region this run holds the lock of, marks the run as under way; per region,
/// the marker and whether an earlier run left one.
async fn mark_unfinished(
    session: &Session,
    locks: &Locks,
    listings: &[std::result::Result<Listing, Failure>],
) -> Result<Vec<Option<Marker>>> {
    let holder = crate::s3lock::Holder::me("publish").describe();
    let mut out = Vec::new();
    for (c, l) in session.clients.iter().zip(listings) {
        let region = &c.target.region;
        let (Some(_), Ok(l)) = (locks.held.get(region), l) else {
            out.push(None);
            continue;
        };
        let bucket = naming::bucket(&session.profile, region);
        let key = crate::records::unfinished_key(&session.profile.prefix, &session.name, region);
        crate::records::mark_unfinished(c, &bucket, &key, &holder).await?;
        out.push(Some(Marker { left_behind: l.unfinished.contains(&key), bucket, key }));
    }
    Ok(out)
}

/// Removes the marker of every region whose targets all ended well; a region with a
/// failed target keeps it, so the next run looks for what this one may have published.
async fn mark_finished(session: &Session, marked: &[Option<Marker>], rows: &[Row]) {
    for (c, m) in session.clients.iter().zip(marked) {
        let Some(m) = m else { continue };
        let region = Some(c.target.region.clone());
        if rows.iter().any(|r| r.region == region && r.status == Status::Failed) {
            continue;
        }
        if let Err(e) = crate::records::mark_finished(c, &m.bucket, &m.key).await {
            xtask::output::warn(format_args!("{e:#}; the next run reads a few version numbers more"));
        }
    }
}

/// What change detection found for each target, from its region's listing.
fn detect(targets: &[Target], listings: &[std::result::Result<Listing, Failure>]) -> Vec<Detected> {
    targets
        .iter()
        .map(|t| match &listings[t.region] {
            Ok(l) => Ok(l.get(&t.layer_name).cloned()),
            Err(e) => Err(e.clone()),
        })
        .collect()
}

/// Builds (or reuses from dist/) and checks every unit that some region needs and that
/// is not built yet, `opts.build_jobs` at a time (`schedule.rs`), blocking this thread
/// (builds run docker and pip). Each check's result is added to `checks`.
fn build_needed(
    ctx: &Context,
    units: &[Unit],
    targets: &[Target],
    detected: &[Detected],
    opts: &Options,
    builds: &mut [Option<Built>],
    checks: &mut Vec<UnitCheck>,
) {
    let mut needed: Vec<usize> = Vec::new();
    for (t, d) in targets.iter().zip(detected) {
        if needs_publishing(&units[t.unit], d) && builds[t.unit].is_none() && !needed.contains(&t.unit) {
            needed.push(t.unit);
        }
    }
    let todo: Vec<Unit> = needed.iter().map(|&i| units[i].clone()).collect();
    xtask::schedule::each(
        &todo,
        opts.build_jobs,
        |u| {
            let mut found = Vec::new();
            let built = job::build(ctx, u).and_then(|b| {
                if opts.check {
                    checked(ctx, u, opts.allow_unverified, &mut found)?;
                }
                Ok(b)
            });
            (built.map_err(Failure::new), found)
        },
        |i, (built, found)| {
            builds[needed[i]] = Some(built);
            checks.extend(found);
        },
    );
}

/// Whether change detection found the unit's newest version missing or different.
fn needs_publishing(u: &Unit, detected: &Detected) -> bool {
    matches!(detected, Ok(n) if !n.as_ref().is_some_and(|n| n.has_fingerprint(&u.fingerprint)))
}

/// Whether some target is about to be published: changed, and built and checked.
fn will_write(units: &[Unit], targets: &[Target], detected: &[Detected], builds: &[Option<Built>]) -> bool {
    targets
        .iter()
        .zip(detected)
        .any(|(t, d)| needs_publishing(&units[t.unit], d) && matches!(builds[t.unit], Some(Ok(_))))
}

/// Runs every check on a unit about to be published; a failing unit is refused, and so is
/// one whose import check did not run, unless `allow_unverified`.
fn checked(ctx: &Context, u: &Unit, allow_unverified: bool, checks: &mut Vec<UnitCheck>) -> Result<()> {
    use xtask::check::run::CheckStatus as Verdict;
    let c = xtask::check::run::check_unit(ctx, u, &[]).context("check could not run")?;
    checks.push(c.clone());
    match c.status {
        Verdict::Pass => return Ok(()),
        Verdict::Skipped if allow_unverified => return Ok(()),
        Verdict::Skipped => {
            anyhow::bail!(
                "refused: the import check of {} did not run ({}); run it where docker or python3.{} is available, or pass --allow-unverified",
                u.label(),
                c.reason.as_deref().unwrap_or("no reason given"),
                u.runtime.minor
            )
        }
        Verdict::Fail => {}
    }
    let first = &c.findings[0];
    anyhow::bail!(
        "refused: `cargo xtask check {}` found {} problem(s), first: {}: {}: {} (fix them, or pass --no-check)",
        u.layer.name,
        c.findings.len(),
        first.check,
        first.subject,
        first.message
    )
}

/// Who the unit's versions are shared with under this profile.
fn sharing(ctx: &Context, session: &Session, u: &Unit) -> Sharing {
    if u.layer.public && !session.profile.allow_public {
        ctx.warn_once(format!(
            "layer {} is marked public but profile `{}` does not allow public sharing (allow_public = false): it is published privately",
            u.layer.name, session.name
        ));
    }
    Sharing {
        public: u.layer.public && session.profile.allow_public,
        accounts: u.layer.share_with_accounts.clone(),
        organization: u.layer.share_with_organization.clone(),
    }
}

/// What a target needs, from its change detection and its unit's build.
fn decide(u: &Unit, detected: Detected, build: &Option<Built>) -> Work {
    match detected {
        Err(e) => Work::Failed(e),
        Ok(Some(n)) if n.has_fingerprint(&u.fingerprint) => Work::Settle(n),
        Ok(newest) => match build.clone().expect("every changed unit was built") {
            Ok(b) => Work::Publish(newest, Box::new(b)),
            Err(e) => Work::Failed(Failure::new(anyhow::Error::from(e).context("build failed"))),
        },
    }
}

/// What a publish run did: a row per unit and region, and the checks it ran.
pub struct Published {
    pub rows: Vec<Row>,
    pub checks: Vec<UnitCheck>,
}

/// Publishes the named layers to the profile in `opts`; per-unit failures are rows,
/// errors are what stops the whole run before anything is written.
pub async fn publish(ctx: &Context, names: &[String], opts: &Options) -> Result<Published> {
    let profile = ctx.config.profile(&opts.profile)?;
    if !opts.dry_run {
        confirm::profile(&opts.profile, profile, opts.yes)?;
    }
    let session = Session::open(ctx, &opts.profile).await?;
    let (units, mut rows) = plan_units(ctx, names);
    let units = opts.filter.apply(units);
    if rows.is_empty() {
        opts.filter.ensure_matched(units.len(), names)?;
    }
    let targets = targets(&session, &units)?;
    let recorder = Arc::new(Recorder::open(&ctx.repo.published_dir(), &opts.profile, profile)?);
    let mut checks = Vec::new();
    rows.extend(run(ctx, &session, &units, targets, opts, recorder, &mut checks).await?);
    rows.sort_by_key(Row::sort_key);
    Ok(Published { rows, checks })
}

/// The AWS phase of a publish: builds and checks run in it, blocking this thread, while
/// the lock is renewed on the runtime's workers.
async fn run(
    ctx: &Context,
    session: &Session,
    units: &[Unit],
    targets: Vec<Target>,
    opts: &Options,
    recorder: Arc<Recorder>,
    checks: &mut Vec<UnitCheck>,
) -> Result<Vec<Row>> {
    let who = session.check_identity().await?;
    let mut listings = list_regions(session, &who, session.clients.len()).await;
    let mut detected = detect(&targets, &listings);
    let mut builds = vec![None; units.len()];
    build_needed(ctx, units, &targets, &detected, opts, &mut builds, checks);
    let locks = if !opts.dry_run && will_write(units, &targets, &detected, &builds) {
        let locks = lock_regions(session, opts.lock_timeout, None).await?;
        refresh_regions(session, &who, &mut listings).await;
        detected = detect(&targets, &listings);
        build_needed(ctx, units, &targets, &detected, opts, &mut builds, checks);
        locks
    } else {
        Locks::none()
    };
    let full = if locks.held.is_empty() {
        vec![None; session.clients.len()]
    } else {
        check_storage(session, units, &targets, &detected, &builds).await
    };
    let marked = mark_unfinished(session, &locks, &listings).await?;
    let shared = Arc::new(job::Shared::new(session, opts.dry_run, recorder.clone(), &locks));
    let mut jobs = Vec::new();
    for (t, d) in targets.into_iter().zip(detected) {
        let u = &units[t.unit];
        let work = match (decide(u, d, &builds[t.unit]), &full[t.region]) {
            (Work::Publish(..), Some(why)) => Work::Failed(Failure::new(anyhow::anyhow!("{why}"))),
            (work, _) => work,
        };
        let clients = session.clients[t.region].clone();
        let look_first = marked.get(t.region).is_some_and(|m| m.as_ref().is_some_and(|m| m.left_behind));
        let job = Job::new(u, t.layer_name, clients, sharing(ctx, session, u), work, shared.clone(), look_first);
        jobs.push((t.region, job));
    }
    let rows = bounded_per_region(opts.jobs, jobs, Job::run).await;
    mark_finished(session, &marked, &rows).await;
    drop(shared);
    // The versions recorded, from the journal into the manifest in one write. Blocking:
    // it may wait for another run's file lock (up to 20 s) and reads and writes the whole
    // manifest, which would hold up the lock renewals on this runtime's workers.
    let manifest = recorder.manifest_path().display().to_string();
    let folded = tokio::task::spawn_blocking(move || recorder.finish())
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("writing {manifest} stopped: {e}")));
    locks.release().await;
    folded?;
    Ok(rows)
}
