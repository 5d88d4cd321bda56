//! One unit of work: a layer for one runtime and architecture. Planning resolves its
//! config, its recipe (a merged layer's member units are planned with it, as its
//! dependencies) and its fingerprint, once per run; building runs the stages in order:
//! install (pip, or the members' zips) -> slim -> package -> check limits -> record in dist/.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context as _, Result};
use base64::Engine;

use crate::build::{self, BuildInput, Installer};
use crate::config::{Builder, LayerConfig, RepoConfig, SlimLevel, Source};
use crate::docker_cli::Docker;
use crate::failure::Failure;
use crate::fingerprint;
use crate::limits;
use crate::package;
use crate::repo::Repo;
use crate::report::{BuildReport, DistPaths};
use crate::requirements_txt::Requirements;
use crate::runtime::{Arch, Runtime};
use crate::slim;

/// What every unit of one run shares: the repo, its config, and the docker connection
/// (made only when a unit actually needs building). Shared by the threads that build
/// units at once (`schedule.rs`).
pub struct Context {
    pub repo: Repo,
    pub config: RepoConfig,
    pub image_override: Option<String>,
    /// `--check-image`: the image the import check runs in, for every unit (set once,
    /// by [`Context::with_check_image`]).
    pub check_image_override: Option<String>,
    /// What planning does with a stale lock (the freshness gate, [`plan`]).
    pub stale_lock: StaleLock,
    /// Whether builds keep what slimming removed in `dist/.work/<unit>.removed/` (the
    /// unslimmed tree `check --deep` imports from); else it is deleted with the build's
    /// work folder, and a build leaves nothing behind but its zip and stamp.
    pub keep_removed: bool,
    docker: OnceLock<std::result::Result<Docker, Failure>>,
    /// The pinned uv and where it runs, found once per run by the first re-lock.
    uv: OnceLock<std::result::Result<(PathBuf, crate::lockfile::uv::Runner), Failure>>,
    /// Held while a layer's lock is compared and re-locked: one thread re-locks it.
    relocking: Mutex<()>,
    warned: Mutex<Vec<String>>,
    /// Every layer planned so far: each is planned once per run.
    plans: Mutex<BTreeMap<String, Vec<Unit>>>,
    /// One lock per unit (by its dist/ folder): a unit is never built by two threads at
    /// once, and one that failed in this run is not tried again (a merged layer's member).
    building: Mutex<HashMap<PathBuf, Arc<Mutex<Option<Failure>>>>>,
}

impl Context {
    pub fn new(repo: Repo, image_override: Option<String>) -> Result<Context> {
        let config = RepoConfig::load(&repo)?;
        Ok(Context {
            repo,
            config,
            image_override,
            check_image_override: None,
            stale_lock: StaleLock::Refuse,
            keep_removed: false,
            docker: OnceLock::new(),
            uv: OnceLock::new(),
            relocking: Mutex::new(()),
            warned: Default::default(),
            plans: Default::default(),
            building: Default::default(),
        })
    }

    /// The same context, with `--check-image` (the image every import check runs in).
    pub fn with_check_image(mut self, image: Option<String>) -> Context {
        self.check_image_override = image;
        self
    }

    /// The same context, keeping what slimming removes when `keep` (`check --deep`).
    pub fn with_removed_kept(mut self, keep: bool) -> Context {
        self.keep_removed = keep;
        self
    }

    /// The same context, with stale locks treated as `stale_lock` says.
    pub fn with_stale_lock(mut self, stale_lock: StaleLock) -> Context {
        self.stale_lock = stale_lock;
        self
    }

    /// The docker connection when there is one (checks fall back to the host without it).
    pub fn docker_if_available(&self) -> Option<&Docker> {
        self.docker().ok()
    }

    pub fn docker(&self) -> Result<&Docker> {
        self.docker.get_or_init(|| Docker::connect().map_err(Failure::new)).as_ref().map_err(|e| e.clone().into())
    }

    /// Prints a warning once per run.
    pub fn warn_once(&self, msg: String) {
        let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if !w.contains(&msg) {
            crate::output::warn(&msg);
            w.push(msg);
        }
    }
}

/// What planning does with a layer whose `requirements.txt` is not the lock of its
/// inputs (`requirements.in` edited, `requires` or the targets changed, a required
/// layer's pins moved): the one freshness gate every command plans through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleLock {
    /// Refuse with the fix: what ships is what was reviewed (publish, publish-all, stack,
    /// rollout, status; and `--locked`, which CI passes to layer, check and size).
    Refuse,
    /// Lock it again before building, saying so, as cargo and uv do (layer, check, size).
    Relock,
    /// Plan it as it is: the command reports freshness itself (list, changed, bench, the
    /// old side of `size --git-ref`).
    Ignore,
}

impl StaleLock {
    /// `Refuse` with `--locked`, else `Relock`: the policy of the commands that build.
    pub fn building(locked: bool) -> StaleLock {
        if locked {
            StaleLock::Refuse
        } else {
            StaleLock::Relock
        }
    }
}

#[derive(Debug, Clone)]
pub struct Unit {
    pub layer: LayerConfig,
    pub runtime: Runtime,
    pub arch: Arch,
    /// How its `python/` is made.
    pub recipe: Recipe,
    /// What makes it, as shown and hashed: the build image, `pip (host) for ... wheels`,
    /// or `merge of a@<fingerprint>, b@<fingerprint>`.
    pub image: String,
    /// Its requirements.txt, read once.
    pub requirements: Requirements,
    pub fingerprint: String,
    pub paths: DistPaths,
}

/// How a unit's `python/` is made, decided at plan time.
#[derive(Debug, Clone)]
pub enum Recipe {
    /// pip in this build image.
    Docker { image: String },
    /// pip on the host, installing wheels built for the target.
    HostPip,
    /// A merged layer: its members' units for the same target, built first and unpacked
    /// in this order.
    Merge { members: Vec<Unit> },
}

impl Recipe {
    /// The builder as the build report names it.
    pub fn builder(&self) -> &'static str {
        match self {
            Recipe::Docker { .. } => "docker",
            Recipe::HostPip => "pip",
            Recipe::Merge { .. } => "merge",
        }
    }
}

impl Unit {
    /// Which unit this is.
    pub fn id(&self) -> crate::unit_id::UnitId {
        crate::unit_id::UnitId::new(&self.layer.name, self.runtime, self.arch)
    }

    /// `pandas python3.12 x86_64`
    pub fn label(&self) -> String {
        self.id().to_string()
    }
}

/// Validates a layer and computes the fingerprint of each of its units; a layer is
/// planned once per run (later calls return the same units). A cycle in its `requires` is
/// refused, and a stale lock as `ctx.stale_lock` says, for every command alike (a
/// schedule would otherwise build the layers of a cycle one after another as if it were
/// fine).
pub fn plan(ctx: &Context, name: &str) -> Result<Vec<Unit>> {
    if let Some(units) = ctx.plans.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
        return Ok(units.clone());
    }
    let required = required_layers(ctx, name)?;
    ensure_fresh(ctx, name, &required)?;
    let units = plan_layer(ctx, name)?;
    ctx.plans.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), units.clone());
    Ok(units)
}

/// The freshness gate: the layers `name` requires (dependencies first, whose pins are
/// its lock's inputs) and then `name` itself are checked against their lock headers
/// (offline), and a stale one is refused or locked again as `ctx.stale_lock` says.
fn ensure_fresh(ctx: &Context, name: &str, required: &[String]) -> Result<()> {
    if ctx.stale_lock == StaleLock::Ignore {
        return Ok(());
    }
    for layer in required.iter().map(String::as_str).chain([name]) {
        let _one_at_a_time = ctx.relocking.lock().unwrap_or_else(|e| e.into_inner());
        let freshness = crate::lockfile::freshness(&ctx.repo, &ctx.config, layer)?;
        let (crate::lockfile::Freshness::Stale(why), Some(stale)) = (&freshness, freshness.error(layer)) else {
            continue;
        };
        match ctx.stale_lock {
            StaleLock::Refuse => anyhow::bail!(stale),
            StaleLock::Ignore => {}
            StaleLock::Relock => {
                crate::output::status("locking", format!("{layer}: {why}"));
                let (uv, runner) = ctx
                    .uv
                    .get_or_init(|| {
                        ctx.config
                            .layer(&ctx.repo, layer)
                            .and_then(|cfg| crate::lockfile::uv::for_layer(&cfg))
                            .map_err(Failure::new)
                    })
                    .as_ref()
                    .map_err(|e| anyhow::Error::from(e.clone()))
                    .with_context(|| format!("cannot lock layer {layer}"))?;
                let locked =
                    crate::lockfile::lock_layer(&ctx.repo, &ctx.config, layer, uv, runner, &Default::default())
                        .with_context(|| format!("{stale}; locking it failed"))?;
                crate::output::status(
                    "locked",
                    format!("layers/{layer}/requirements.txt: {}", crate::output::count(locked.packages, "package")),
                );
            }
        }
    }
    Ok(())
}

/// The layers `name` requires, transitively, dependencies first; a cycle is an error
/// naming it. The one walk of `requires` (the checks attach these layers, the freshness
/// gate locks them first).
pub fn required_layers(ctx: &Context, name: &str) -> Result<Vec<String>> {
    crate::requires::closure(&ctx.repo, &ctx.config, name)
}

fn plan_layer(ctx: &Context, name: &str) -> Result<Vec<Unit>> {
    let layer = ctx.config.layer(&ctx.repo, name)?;
    let reqs = Requirements::read(&layer.dir, name)?;
    for r in &reqs.unpinned {
        ctx.warn_once(format!(
            "layers/{name}/requirements.txt: `{}` is not pinned with `==`: its builds are not reproducible",
            crate::quote::clip(r)
        ));
    }
    // A merged layer's members are its dependencies: planned here, built before it.
    let mut members = Vec::new();
    for m in layer.source.members() {
        members.push((m, plan(ctx, m).with_context(|| format!("layer {m}, merged into {name}"))?));
    }
    let today = crate::runtime::today();
    let mut units = Vec::new();
    for (runtime, arch) in layer.targets() {
        if let Some(w) = runtime.deprecation_warning(&today) {
            ctx.warn_once(w);
        }
        let recipe = match &layer.source {
            Source::Pip { builder: Builder::Pip } => Recipe::HostPip,
            Source::Pip { builder: Builder::Docker } => Recipe::Docker {
                image: ctx.image_override.clone().unwrap_or_else(|| layer.images[&(runtime, arch)].clone()),
            },
            Source::Merge { .. } => {
                let mut units = Vec::new();
                for (m, planned) in &members {
                    let u = planned
                        .iter()
                        .find(|u| (u.runtime, u.arch) == (runtime, arch))
                        .with_context(|| format!("layer {m}, merged into {name}, is not built for {runtime} {arch}"))?;
                    units.push(u.clone());
                }
                Recipe::Merge { members: units }
            }
        };
        let image = match &recipe {
            Recipe::Docker { image } => image.clone(),
            Recipe::HostPip => format!("pip (host) for {} wheels", arch.machine()),
            Recipe::Merge { members } => {
                let list: Vec<String> = members.iter().map(|u| format!("{}@{}", u.layer.name, u.fingerprint)).collect();
                format!("merge of {}", list.join(", "))
            }
        };
        let fingerprint = fingerprint::compute(&layer, &reqs, runtime, arch, &image)?;
        let paths = DistPaths::new(&ctx.repo, name, runtime, arch);
        units.push(Unit {
            layer: layer.clone(),
            runtime,
            arch,
            recipe,
            image,
            requirements: reqs.clone(),
            fingerprint,
            paths,
        });
    }
    Ok(units)
}

pub enum Outcome {
    Built(BuildReport),
    UpToDate(BuildReport),
}

impl Outcome {
    pub fn report(&self) -> &BuildReport {
        match self {
            Outcome::Built(r) | Outcome::UpToDate(r) => r,
        }
    }

    pub fn status(&self) -> BuildStatus {
        match self {
            Outcome::Built(_) => BuildStatus::Built,
            Outcome::UpToDate(_) => BuildStatus::UpToDate,
        }
    }
}

/// A unit (or a layer that could not be planned into units) that failed, as every
/// command's `--json` prints it: docs/json.md, `#/$defs/unit` of
/// docs/unit-result.schema.json.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnitFailure {
    pub layer: String,
    pub runtime: Option<String>,
    pub arch: Option<Arch>,
    pub status: BuildStatus,
    /// The whole error chain, one line.
    pub error: String,
}

impl UnitFailure {
    /// A layer that failed before it had units (its config, its requirements).
    pub fn of_layer(layer: &str, e: &anyhow::Error) -> UnitFailure {
        UnitFailure {
            layer: layer.to_string(),
            runtime: None,
            arch: None,
            status: BuildStatus::Failed,
            error: format!("{e:#}"),
        }
    }

    /// One unit that failed.
    pub fn of_unit(layer: &str, runtime: Runtime, arch: Arch, e: &anyhow::Error) -> UnitFailure {
        UnitFailure { runtime: Some(runtime.id.to_string()), arch: Some(arch), ..UnitFailure::of_layer(layer, e) }
    }

    /// How messages name it: `pandas python3.13 x86_64`, or the layer alone.
    pub fn label(&self) -> String {
        match (&self.runtime, self.arch) {
            (Some(r), Some(a)) => format!("{} {r} {a}", self.layer),
            _ => self.layer.clone(),
        }
    }
}

/// A unit's build status, as text and JSON show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildStatus {
    Built,
    UpToDate,
    Failed,
}

impl BuildStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            BuildStatus::Built => "built",
            BuildStatus::UpToDate => "up-to-date",
            BuildStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The build in dist/ when it matches the unit's fingerprint.
pub fn current(unit: &Unit) -> Option<BuildReport> {
    unit.paths.current().filter(|r| r.fingerprint == unit.fingerprint)
}

/// Builds the unit unless dist/ already holds a build with the same fingerprint; a
/// merged unit's members are built first (those current in dist/ are only read back).
pub fn build(ctx: &Context, unit: &Unit, force: bool) -> Result<Outcome> {
    build_for(ctx, unit, force, None)
}

/// [`build`], saying why the unit is built when another one needs it
/// (`building   a python3.13 x86_64 (merged into m)`). This is the one place that says
/// a unit is being built.
pub fn build_for(ctx: &Context, unit: &Unit, force: bool, why: Option<&str>) -> Result<Outcome> {
    // Another thread building the same unit is waited for; then it is current.
    let slot =
        ctx.building.lock().unwrap_or_else(|e| e.into_inner()).entry(unit.paths.dir.clone()).or_default().clone();
    let mut failed = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = &*failed {
        return Err(f.clone().into());
    }
    build_once(ctx, unit, force, why).map_err(|e| {
        let f = Failure::new(e);
        *failed = Some(f.clone());
        f.into()
    })
}

/// Whether `unit` was built in this run and failed (the one record of build failures).
fn failed_in_run(ctx: &Context, unit: &Unit) -> bool {
    let slot = ctx.building.lock().unwrap_or_else(|e| e.into_inner()).get(&unit.paths.dir).cloned();
    slot.is_some_and(|s| s.lock().unwrap_or_else(|e| e.into_inner()).is_some())
}

fn build_once(ctx: &Context, unit: &Unit, force: bool, why: Option<&str>) -> Result<Outcome> {
    // A commit a stopped run left halfway is finished (or its leftovers removed) first.
    unit.paths.settle();
    if !force {
        if let Some(r) = current(unit) {
            return Ok(Outcome::UpToDate(r));
        }
    }
    // A merged unit's members first, as its dependencies.
    let mut zips: Vec<(String, PathBuf)> = Vec::new();
    if let Recipe::Merge { members } = &unit.recipe {
        let why = format!("merged into {}", unit.layer.name);
        for m in members {
            // A member that failed in this run is not installed again only to fail the
            // same way: said once, where it failed.
            if failed_in_run(ctx, m) {
                anyhow::bail!("not built: its member {} failed (see above)", m.label());
            }
            build_for(ctx, m, false, Some(&why))
                .with_context(|| format!("cannot build {}, merged into layer {}", m.label(), unit.layer.name))?;
            zips.push((m.layer.name.clone(), m.paths.zip.clone()));
        }
    }
    match why {
        Some(why) => crate::output::status("building", format_args!("{} ({why})", unit.label())),
        None => crate::output::status("building", unit.label()),
    }
    // The unit's dist/ folder is made only when there is something to write into it; a
    // failed build removes it again if this run made it, so a refusal leaves nothing.
    let made_dir = !unit.paths.dir.exists();
    let result = build_unit(ctx, unit, &zips);
    if result.is_err() {
        // A stage that failed because Ctrl-C removed its files is not a failure of its own:
        // the interrupt handler reports it and exits 130.
        crate::interrupt::wait_if_interrupted();
        if made_dir {
            let _ = std::fs::remove_dir(&unit.paths.dir);
        }
    }
    result
}

fn create_dist_dir(ctx: &Context, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!("dist/ is not writable: cannot create {}; fix its permissions or remove it", ctx.repo.display(dir))
    })
}

/// The stages of one unit; `zips` are a merged unit's built members.
fn build_unit(ctx: &Context, unit: &Unit, zips: &[(String, PathBuf)]) -> Result<Outcome> {
    let started = Instant::now();
    let work_root = ctx.repo.dist_dir().join(".work");
    create_dist_dir(ctx, &work_root)?;
    let installer = match &unit.recipe {
        Recipe::Docker { .. } => Installer::Docker(ctx.docker()?),
        Recipe::HostPip => Installer::HostPip,
        Recipe::Merge { .. } => Installer::Zips(zips),
    };
    let pip_cache = build::pip_cache_dir()?;
    let input = BuildInput {
        layer: &unit.layer,
        runtime: unit.runtime,
        arch: unit.arch,
        image: &unit.image,
        hashed: unit.requirements.hashed,
    };

    let mut stages = Vec::new();
    let mut lap = Instant::now();
    let mut stage = |name: &str| {
        stages.push((
            name.to_string(),
            (std::mem::replace(&mut lap, Instant::now()).elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        ))
    };

    // build
    let work = build::install(&installer, &input, &work_root, &pip_cache)?;
    stage("install");
    let python = work.path().join("python");
    let packages = crate::python::installed(&python)?;
    let before_slim = crate::sizes::before_slim(&python)?;
    stage("attribute");

    // slim
    let mut slim_report = slim::slim(&python, unit.layer.slim, &unit.layer.exclude, ctx.keep_removed)?;
    let mut notes = Vec::new();
    if unit.layer.slim == SlimLevel::Aggressive {
        let stripped = match installer {
            Installer::Docker(d) => build::docker::strip_shared_libraries(d, &input, work.path(), &pip_cache)?,
            _ => build::pip::strip_shared_libraries(&input, work.path())?,
        };
        match stripped {
            Some((files, bytes)) => slim_report.add(slim::RULE_STRIP, files, bytes),
            None => notes
                .push(format!("no `strip` for {} in {}: shared libraries were not stripped", unit.arch, unit.image)),
        }
    }
    stage("slim");
    let mut package_sizes = crate::sizes::after_slim(&python, &before_slim)?;
    // The archive each distribution came from, as pip's install report names it.
    let hashes = crate::python::installed_hashes(&work.path().join("pip-report.json"));
    for p in &mut package_sizes {
        p.sha256 = hashes.get(&crate::python::normalise(&p.name)).cloned();
    }
    stage("sizes");

    // check (the unzipped limit before spending time on compression)
    let (unzipped, largest) = limits::measure(&python)?;
    limits::check_unzipped(unzipped, &largest)?;

    // package, reusing what the previous zip of this unit already compressed
    let previous = package::reuse::Previous::load_for_user(&unit.paths.zip);
    let packaged = package::package_reusing(work.path(), previous.as_ref().ok())?;
    stage("package");
    if crate::output::is_verbose() {
        if let Err(why) = &previous {
            if unit.paths.zip.exists() {
                crate::output::detail(format_args!("{}: the previous zip is not copied from: {why:#}", unit.label()));
            }
        }
        crate::output::detail(format_args!(
            "{}: {} of {} files copied from the previous zip, the rest compressed",
            unit.label(),
            packaged.reused_files,
            packaged.file_count
        ));
    }
    drop(previous);
    notes.extend(limits::notes(packaged.bytes.len() as u64));

    // record: every file is written under a temporary name, then all are put in place as
    // one (`DistPaths::commit`): a run stopped anywhere leaves the old zip and report, or
    // the new ones, never a zip without its report.
    let report = BuildReport {
        unit: unit.id(),
        zip: ctx.repo.display(&unit.paths.zip),
        sha256: fingerprint::hex(&packaged.sha256),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(packaged.sha256),
        zipped_bytes: packaged.bytes.len() as u64,
        unzipped_bytes: packaged.unzipped_bytes,
        budget_percent: (limits::budget_share(packaged.unzipped_bytes) * 100.0).round() / 100.0,
        file_count: packaged.file_count,
        packages,
        fingerprint: unit.fingerprint.clone(),
        slim: slim_report,
        builder: unit.recipe.builder().to_string(),
        image: unit.image.clone(),
        duration_secs: (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        notes,
        stages: Default::default(),
        package_sizes,
    };
    create_dist_dir(ctx, &unit.paths.dir)?;
    let zip = package::write_temp(&unit.paths.zip, &packaged.bytes)
        .with_context(|| format!("dist/ is not writable: cannot write {}", ctx.repo.display(&unit.paths.zip)))?;
    // The stamp names the zip's sha256: an old one left beside the new zip (no key now, or
    // a failed write) only means the next build copies nothing.
    let stamp_path = package::reuse::stamp_path(&unit.paths.zip);
    let stamp = package::reuse::Key::for_user()
        .ok()
        .and_then(|key| package::write_temp(&stamp_path, package::reuse::stamp(key, &packaged.sha256).as_bytes()).ok())
        .map(|tmp| (tmp, stamp_path));
    drop(work);
    stage("write");
    let sbom = package::write_temp(
        &unit.paths.sbom,
        serde_json::to_string_pretty(&crate::sbom::cyclonedx(&report))?.as_bytes(),
    )?;
    stage("sbom");
    let report = BuildReport { stages: stages.into_iter().collect(), ..report };
    let report_tmp = package::write_temp(&unit.paths.report, serde_json::to_string_pretty(&report)?.as_bytes())?;
    unit.paths.commit(zip, stamp, sbom, report_tmp)?;
    Ok(Outcome::Built(report))
}

/// Every layer name given, or all of them with `--all`; at least one.
/// The units one command works on: the named layers (or all of them), each planned once,
/// narrowed by `--runtime`/`--arch`. A layer that cannot be planned is a failure of its
/// own (the others go on), not an error of the run.
pub struct Selection {
    /// Each layer named (once), in order, with its units that pass the filter or why it
    /// could not be planned.
    pub layers: Vec<(String, std::result::Result<Vec<Unit>, anyhow::Error>)>,
    filter: UnitFilter,
}

impl Selection {
    /// Every selected unit, in the layers' order.
    pub fn units(&self) -> Vec<Unit> {
        self.layers.iter().filter_map(|(_, r)| r.as_ref().ok()).flatten().cloned().collect()
    }

    /// The layers that could not be planned, with why.
    pub fn failed(&self) -> impl Iterator<Item = (&str, &anyhow::Error)> {
        self.layers.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| (n.as_str(), e)))
    }

    /// Fails when a filter was given and no unit of the named layers matches it (only
    /// when every layer could be planned: a failed one may be the one that would match).
    pub fn ensure_matched(&self) -> Result<()> {
        if self.failed().next().is_none() {
            let names: Vec<String> = self.layers.iter().map(|(n, _)| n.clone()).collect();
            self.filter.ensure_matched(self.units().len(), &names)?;
        }
        Ok(())
    }
}

/// Selects and plans: what `layer`, `check` and the publish run start from.
pub fn select(ctx: &Context, names: &[String], all: bool, filter: UnitFilter) -> Result<Selection> {
    let layers = select_layers(&ctx.repo, names, all)?
        .into_iter()
        .map(|name| {
            let planned = plan(ctx, &name).map(|u| filter.apply(u));
            (name, planned)
        })
        .collect();
    Ok(Selection { layers, filter })
}

pub fn select_layers(repo: &Repo, names: &[String], all: bool) -> Result<Vec<String>> {
    if all {
        let names = repo.layer_names()?;
        if names.is_empty() {
            anyhow::bail!("no layers: add one with `cargo xtask new NAME`");
        }
        return Ok(names);
    }
    if names.is_empty() {
        anyhow::bail!("name at least one layer, or pass --all");
    }
    // A layer named twice is worked on once.
    let mut unique: Vec<String> = Vec::new();
    for n in names {
        if !unique.contains(n) {
            unique.push(n.clone());
        }
    }
    Ok(unique)
}

/// `--runtime` and `--arch` (parsed by clap, `cmd/args.rs`): narrows a run to the units
/// of one runtime and/or one architecture (one CI matrix job works on exactly one unit).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitFilter {
    pub runtime: Option<Runtime>,
    pub arch: Option<Arch>,
}

impl UnitFilter {
    pub fn is_set(&self) -> bool {
        self.runtime.is_some() || self.arch.is_some()
    }

    /// The units the filter lets through, in their order.
    pub fn apply(&self, units: Vec<Unit>) -> Vec<Unit> {
        units
            .into_iter()
            .filter(|u| self.runtime.is_none_or(|r| r == u.runtime) && self.arch.is_none_or(|a| a == u.arch))
            .collect()
    }

    /// Fails when the filter is set and no unit of the run (`kept` after [`Self::apply`])
    /// matched it: a misspelt matrix entry must not pass as "nothing to do".
    pub fn ensure_matched(&self, kept: usize, names: &[String]) -> Result<()> {
        if !self.is_set() || kept > 0 {
            return Ok(());
        }
        let mut flags = Vec::new();
        if let Some(r) = self.runtime {
            flags.push(format!("--runtime {r}"));
        }
        if let Some(a) = self.arch {
            flags.push(format!("--arch {a}"));
        }
        anyhow::bail!(
            "no unit of {} matches {}: check the layers' `runtimes` and `architectures` (`cargo xtask list` shows every unit)",
            names.join(", "),
            flags.join(" ")
        )
    }
}

/// Unpacks a zip into `dest` (for checks and benchmarks that look at a built layer).
pub fn unzip_into(zip: &std::path::Path, dest: &std::path::Path) -> Result<()> {
    let mut z =
        zip::ZipArchive::new(std::fs::File::open(zip).with_context(|| format!("cannot open {}", zip.display()))?)?;
    z.extract(dest).with_context(|| format!("cannot unpack {}", zip.display()))?;
    Ok(())
}
