//! One unit of work: a layer for one runtime and architecture. Planning resolves its
//! config and fingerprint; building runs the stages in order:
//! build (docker pip) -> slim -> package -> check limits -> record in dist/.

use std::cell::OnceCell;

use std::time::Instant;

use anyhow::{Context as _, Result};
use base64::Engine;

use crate::build::{self, BuildInput};
use crate::config::{LayerConfig, RepoConfig, SlimLevel};
use crate::docker::Docker;
use crate::fingerprint;
use crate::limits;
use crate::package;
use crate::repo::Repo;
use crate::report::{BuildReport, DistPaths};
use crate::requirements::Requirements;
use crate::runtime::{Arch, Runtime};
use crate::slim;

/// What every unit of one run shares: the repo, its config, and the docker connection
/// (made only when a unit actually needs building).
pub struct Context {
    pub repo: Repo,
    pub config: RepoConfig,
    pub image_override: Option<String>,
    /// `--check-image`: the image the import check runs in, for every unit.
    pub check_image_override: Option<String>,
    docker: OnceCell<std::result::Result<Docker, String>>,
    warned: std::cell::RefCell<Vec<String>>,
}

impl Context {
    pub fn new(repo: Repo, image_override: Option<String>) -> Result<Context> {
        let config = RepoConfig::load(&repo)?;
        Ok(Context {
            repo,
            config,
            image_override,
            check_image_override: None,
            docker: OnceCell::new(),
            warned: Default::default(),
        })
    }

    /// The docker connection when there is one (checks fall back to the host without it).
    pub fn docker_if_available(&self) -> Option<&Docker> {
        self.docker().ok()
    }

    pub fn docker(&self) -> Result<&Docker> {
        self.docker
            .get_or_init(|| Docker::connect().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Prints a warning once per run.
    pub fn warn_once(&self, msg: String) {
        let mut w = self.warned.borrow_mut();
        if !w.contains(&msg) {
            eprintln!("warning: {msg}");
            w.push(msg);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Unit {
    pub layer: LayerConfig,
    pub runtime: Runtime,
    pub arch: Arch,
    pub image: String,
    pub fingerprint: String,
    pub paths: DistPaths,
}

impl Unit {
    /// `pandas python3.12 x86_64`
    pub fn label(&self) -> String {
        format!("{} {} {}", self.layer.name, self.runtime, self.arch)
    }
}

/// Validates a layer and computes the fingerprint of each of its units.
pub fn plan(ctx: &Context, name: &str) -> Result<Vec<Unit>> {
    let layer = ctx.config.layer(&ctx.repo, name)?;
    let reqs = Requirements::read(&layer.dir, name)?;
    for r in &reqs.unpinned {
        ctx.warn_once(format!(
            "layers/{name}/requirements.txt: `{}` is not pinned with `==`: its builds are not reproducible",
            crate::quote::clip(r)
        ));
    }
    let today = crate::runtime::today();
    let mut units = Vec::new();
    for (runtime, arch) in layer.targets() {
        if let Some(w) = runtime.deprecation_warning(&today) {
            ctx.warn_once(w);
        }
        let image = match layer.builder {
            crate::config::Builder::Pip => format!("pip (host) for {} wheels", arch.machine()),
            crate::config::Builder::Docker => {
                ctx.image_override.clone().unwrap_or_else(|| layer.images[&(runtime, arch)].clone())
            }
        };
        let fingerprint = fingerprint::compute(&layer, &reqs, runtime, arch, &image)?;
        let paths = DistPaths::new(&ctx.repo, name, runtime, arch);
        units.push(Unit { layer: layer.clone(), runtime, arch, image, fingerprint, paths });
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

    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Built(_) => "built",
            Outcome::UpToDate(_) => "up-to-date",
        }
    }
}

/// The build in dist/ when it matches the unit's fingerprint.
pub fn current(unit: &Unit) -> Option<BuildReport> {
    unit.paths.current().filter(|r| r.fingerprint == unit.fingerprint)
}

/// Builds the unit unless dist/ already holds a build with the same fingerprint.
pub fn build(ctx: &Context, unit: &Unit, force: bool) -> Result<Outcome> {
    if !force {
        if let Some(r) = current(unit) {
            return Ok(Outcome::UpToDate(r));
        }
    }
    // The unit's dist/ folder is made only when there is something to write into it; a
    // failed build removes it again if this run made it, so a refusal leaves nothing.
    let made_dir = !unit.paths.dir.exists();
    let result = build_unit(ctx, unit);
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

fn build_unit(ctx: &Context, unit: &Unit) -> Result<Outcome> {
    let started = Instant::now();
    let work_root = ctx.repo.dist_dir().join(".work");
    create_dist_dir(ctx, &work_root)?;
    // A merged layer is unpacked from its members' zips: it needs no builder at all.
    let docker = match unit.layer.builder {
        crate::config::Builder::Docker if unit.layer.merge.is_empty() => Some(ctx.docker()?),
        _ => None,
    };
    let pip_cache = build::pip_cache_dir()?;
    let input = BuildInput { layer: &unit.layer, runtime: unit.runtime, arch: unit.arch, image: &unit.image };

    let mut stages = Vec::new();
    let mut lap = Instant::now();
    let mut stage = |name: &str| {
        stages.push((
            name.to_string(),
            (std::mem::replace(&mut lap, Instant::now()).elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        ))
    };

    // build
    let work = build::install(docker, &input, &work_root, &pip_cache)?;
    stage("install");
    let python = work.path().join("python");
    let packages = crate::python::installed(&python)?;

    // slim
    let mut slim_report = slim::slim(&python, unit.layer.slim, &unit.layer.exclude)?;
    let mut notes = Vec::new();
    if unit.layer.slim == SlimLevel::Aggressive {
        let stripped = match docker {
            Some(d) => build::docker::strip_shared_libraries(d, &input, work.path(), &pip_cache)?,
            None => build::pip::strip_shared_libraries(&input, work.path())?,
        };
        match stripped {
            Some((files, bytes)) => slim_report.add(slim::RULE_STRIP, files, bytes),
            None => notes
                .push(format!("no `strip` for {} in {}: shared libraries were not stripped", unit.arch, unit.image)),
        }
    }
    stage("slim");

    // check (the unzipped limit before spending time on compression)
    let (unzipped, largest) = limits::measure(&python)?;
    limits::check_unzipped(unzipped, &largest)?;

    // package
    let packaged = package::package(work.path())?;
    stage("package");
    notes.extend(limits::notes(packaged.bytes.len() as u64));

    // record: the old report goes first, so a crash between the two writes leaves a zip
    // without a matching report, which the next run rebuilds.
    let report = BuildReport {
        layer: unit.layer.name.clone(),
        runtime: unit.runtime.id.to_string(),
        arch: unit.arch,
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
        builder: if unit.layer.merge.is_empty() {
            format!("{:?}", unit.layer.builder).to_lowercase()
        } else {
            "merge".into()
        },
        image: unit.image.clone(),
        duration_secs: (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        notes,
        stages: Default::default(),
    };
    create_dist_dir(ctx, &unit.paths.dir)?;
    let _ = std::fs::remove_file(&unit.paths.report);
    package::write_atomically(&unit.paths.zip, &packaged.bytes)
        .with_context(|| format!("dist/ is not writable: cannot write {}", ctx.repo.display(&unit.paths.zip)))?;
    drop(work);
    stage("write");
    let report = BuildReport { stages: stages.into_iter().collect(), ..report };
    package::write_atomically(&unit.paths.report, serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(Outcome::Built(report))
}

/// Every layer name given, or all of them with `--all`; at least one.
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
    Ok(names.to_vec())
}

/// `--runtime` and `--arch`: narrows a run to the units of one runtime and/or one
/// architecture (one CI matrix job works on exactly one unit).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitFilter {
    pub runtime: Option<Runtime>,
    pub arch: Option<Arch>,
}

impl UnitFilter {
    /// Validates the flags: an unknown value is an error listing the valid ones.
    pub fn parse(runtime: Option<&str>, arch: Option<&str>) -> Result<UnitFilter> {
        Ok(UnitFilter { runtime: runtime.map(Runtime::parse).transpose()?, arch: arch.map(Arch::parse).transpose()? })
    }

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
