//! Runs every check on one unit: makes sure it and the layers it requires are built,
//! unpacks them, then audits the ABI, the dependency closure and the imports.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::{abi, closure, deep, imports, unpack, Finding, Kind};
use crate::limits;
use crate::python;
use crate::runtime::{Arch, Runtime};
use crate::unit::{self, Context, Unit};

/// The checks' verdict on one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Every check ran and found nothing.
    Pass,
    /// A check found a problem.
    Fail,
    /// Nothing was found, but the import check did not run: the layer is unverified.
    Skipped,
}

impl CheckStatus {
    /// Fail when anything was found, else skipped when the import check did not run.
    pub fn of(findings: &[Finding], import_skipped: bool) -> CheckStatus {
        match (findings.is_empty(), import_skipped) {
            (false, _) => CheckStatus::Fail,
            (true, true) => CheckStatus::Skipped,
            (true, false) => CheckStatus::Pass,
        }
    }

    /// How the text output shows it (a failure in capitals, to stand out).
    pub fn label(&self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skipped => "skipped",
        }
    }
}

/// The checks' result on one unit.
#[derive(Debug, Clone, Serialize)]
pub struct UnitCheck {
    /// Which unit (serialised flat: `layer`, `runtime`, `arch`).
    #[serde(flatten)]
    pub unit: crate::unit_id::UnitId,
    pub status: CheckStatus,
    /// Why the import check did not run, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the import check ran (`in IMAGE`), or `not run: REASON`.
    pub import_check: String,
    pub imports_passed: usize,
    pub findings: Vec<Finding>,
    /// What `--deep` tried (absent without `--deep`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deep: Option<deep::DeepSummary>,
    /// Worth knowing, not a problem (a zip over the 50 MiB direct-upload limit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Checks a unit of this repo; `extras` are the extras whose requirements count too.
pub fn check_unit(ctx: &Context, unit: &Unit, extras: &[String]) -> Result<UnitCheck> {
    check_unit_with(ctx, unit, extras, false)
}

/// [`check_unit`]; `deep` imports every module before and after slimming too (`deep.rs`).
pub fn check_unit_with(ctx: &Context, unit: &Unit, extras: &[String], deep: bool) -> Result<UnitCheck> {
    let own_zip = zip_of(ctx, unit)?;
    let record = if deep { Some(removed_record(ctx, unit)?) } else { None };
    let scratch = tempfile::Builder::new().prefix("xtask-check-").tempdir()?;
    let mut required = Vec::new();
    let mut findings = Vec::new();
    for name in unit::required_layers(ctx, &unit.layer.name)? {
        let planned = unit::plan(ctx, &name)?;
        match planned.into_iter().find(|u| u.runtime == unit.runtime && u.arch == unit.arch) {
            Some(u) => required.push((name, zip_of(ctx, &u)?)),
            None => findings.push(Finding::new(
                Kind::Closure,
                format!("layer {name}"),
                format!(
                    "required layer {name} is not built for {} {}: add them to its runtimes/architectures",
                    unit.runtime, unit.arch
                ),
            )),
        }
    }
    let docker = ctx.docker_if_available();
    let image =
        ctx.check_image_override.clone().unwrap_or_else(|| unit.layer.check_images[&(unit.runtime, unit.arch)].clone());
    let mut result = check_zips(
        scratch.path(),
        &unit.layer.name,
        &own_zip,
        &required,
        unit.runtime,
        unit.arch,
        extras,
        &image,
        docker,
        record.as_ref().map(|(dir, r)| (dir.as_path(), r)),
    )?;
    let locked = crate::lockfile::source_of(&unit.layer.dir).is_some();
    for f in &mut result.findings {
        if f.unprovided {
            f.message = suggest_provider(ctx, &unit.layer.name, &f.message, &f.subject, locked);
        } else if locked && f.check == Kind::Closure {
            f.message = format!("{}: run `cargo xtask lock {}`", f.message, unit.layer.name);
        }
    }
    findings.extend(result.findings);
    result.findings = findings;
    result.status = CheckStatus::of(&result.findings, result.reason.is_some());
    Ok(result)
}

/// What the build of the unit's zip removed (`slim::Record`), the unit built again when
/// the record is missing or belongs to another build (builds are reproducible: the zip
/// keeps its bytes).
fn removed_record(ctx: &Context, unit: &Unit) -> Result<(PathBuf, crate::slim::Record)> {
    let name = crate::build::unit_work_name(&unit.layer.name, unit.runtime, unit.arch);
    let dir = ctx.repo.dist_dir().join(".work").join(format!("{name}.removed"));
    let current = |zip: &Path| -> Result<Option<crate::slim::Record>> {
        let want = crate::slim::digest_paths(zip_files(zip)?);
        Ok(crate::slim::Record::load(&dir).filter(|r| r.kept_files == want))
    };
    if let Some(r) = current(&unit.paths.zip)? {
        return Ok((dir, r));
    }
    unit::build(ctx, unit, true).with_context(|| format!("cannot build {} again for --deep", unit.label()))?;
    match current(&unit.paths.zip)? {
        Some(r) => Ok((dir, r)),
        None => anyhow::bail!(
            "{} has no record of what its slimming removed after building it again ({}): --deep cannot compare",
            unit.label(),
            dir.display()
        ),
    }
}

/// The files of a zip's `python/`, relative to it.
fn zip_files(zip: &Path) -> Result<Vec<String>> {
    let unreadable = || format!("{} is not a readable zip", zip.display());
    let file = std::fs::File::open(zip).with_context(|| format!("cannot open {}", zip.display()))?;
    let mut z = zip::ZipArchive::new(file).with_context(unreadable)?;
    let mut out = Vec::new();
    for i in 0..z.len() {
        let e = z.by_index_raw(i).with_context(unreadable)?;
        let name = e.name().with_context(unreadable)?;
        if let Some(rel) = name.strip_prefix("python/").filter(|n| !n.is_empty() && !n.ends_with('/')) {
            out.push(rel.to_string());
        }
    }
    Ok(out)
}

/// The zip of a unit, built first when dist/ is not current.
fn zip_of(ctx: &Context, unit: &Unit) -> Result<PathBuf> {
    unit::build(ctx, unit, false).with_context(|| format!("cannot build {}", unit.label()))?;
    Ok(unit.paths.zip.clone())
}

/// The checks on zips: `own` is the layer under check, `required` the layers attached
/// before it, in order.
#[allow(clippy::too_many_arguments)]
pub fn check_zips(
    scratch: &Path,
    layer: &str,
    own: &Path,
    required: &[(String, PathBuf)],
    runtime: Runtime,
    arch: Arch,
    extras: &[String],
    image: &str,
    docker: Option<&crate::docker_cli::Docker>,
    deep: Option<(&Path, &crate::slim::Record)>,
) -> Result<UnitCheck> {
    // Each zip is unpacked once, all of them within Lambda's unzipped limit; /opt is then
    // the required layers with this one over them, as Lambda lays them out.
    let mut budget = unpack::Budget::lambda();
    let own_dir = scratch.join("own");
    let mut required_dirs = Vec::new();
    let mut provided = Vec::new();
    for (i, (name, zip)) in required.iter().enumerate() {
        let dir = scratch.join(format!("required-{i}"));
        unpack::unzip(zip, &dir, &mut budget)?;
        provided.extend(python::read_dists(&dir.join("python"), name)?);
        required_dirs.push(dir);
    }
    unpack::unzip(own, &own_dir, &mut budget)?;
    let opt = if required_dirs.is_empty() {
        own_dir.clone()
    } else {
        let opt = scratch.join("opt");
        for dir in required_dirs.iter().chain([&own_dir]) {
            unpack::overlay(dir, &opt)?;
        }
        opt
    };
    let notes = limits::notes(std::fs::metadata(own).with_context(|| format!("cannot read {}", own.display()))?.len());

    let mut findings = abi::audit(&own_dir, runtime, arch)?;

    let own_dists = python::read_dists(&own_dir.join("python"), layer)?;
    for u in closure::closure(&own_dists, &provided, runtime, arch, extras) {
        let message = match &u.found {
            None => {
                format!("{} (layer {}) requires {}, which no attached layer provides", u.dist, u.layer, u.requirement)
            }
            Some((version, by)) => format!(
                "{} (layer {}) requires {}, but layer {by} provides {} {version}",
                u.dist, u.layer, u.requirement, u.name
            ),
        };
        findings
            .push(Finding { unprovided: u.found.is_none(), ..Finding::new(Kind::Closure, u.name.clone(), message) });
    }

    let modules = imports::top_level_modules(&own_dir.join("python"))?;
    let dists: Vec<String> = own_dists.iter().map(|d| d.name.clone()).collect();
    let outcome = imports::check(&opt, &modules, &dists, runtime, arch, image, docker)?;
    findings.extend(outcome.findings);
    let (import_check, reason) = match outcome.ran {
        imports::Ran::In(where_) => (format!("in {where_}"), None),
        imports::Ran::NotRun(why) => (format!("not run: {why}"), Some(why)),
    };
    let deep = match deep {
        None => None,
        Some((removed, record)) => {
            let Some(docker) = docker else {
                anyhow::bail!("check --deep imports in the check image and needs docker: start docker, or drop --deep");
            };
            let layers: Vec<PathBuf> = required_dirs.iter().chain([&own_dir]).cloned().collect();
            let before = scratch.join("before");
            let (summary, broken) = deep::check(
                &before,
                &opt,
                &layers,
                removed,
                record,
                &own_dir.join("python"),
                &modules,
                runtime,
                arch,
                image,
                docker,
            )?;
            findings.extend(broken);
            Some(summary)
        }
    };
    Ok(UnitCheck {
        unit: crate::unit_id::UnitId::new(layer, runtime, arch),
        status: CheckStatus::of(&findings, reason.is_some()),
        reason,
        import_check,
        imports_passed: outcome.passed,
        findings,
        deep,
        notes,
    })
}

/// Adds which layer of the repo would provide a distribution no attached layer provides.
/// A layer locked from requirements.in gets its dependencies from the lock: the fix ends
/// with running it again.
fn suggest_provider(ctx: &Context, layer: &str, message: &str, dist: &str, locked: bool) -> String {
    match (python::providers(&ctx.repo, dist).into_iter().find(|l| l != layer), locked) {
        (Some(p), false) => {
            format!("{message}: add `requires = [\"{p}\"]` to layers/{layer}/layer.toml (layer {p} provides it)")
        }
        (Some(p), true) => format!(
            "{message}: add `requires = [\"{p}\"]` to layers/{layer}/layer.toml (layer {p} provides it), then run `cargo xtask lock {layer}`"
        ),
        (None, false) => {
            format!("{message}: add it to layers/{layer}/requirements.txt or to a layer listed in `requires`")
        }
        (None, true) => format!("{message}: run `cargo xtask lock {layer}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding::new(Kind::Abi, "x.so".into(), "built for arm64".into())
    }

    #[test]
    fn a_check_that_did_not_run_is_skipped_not_passed() {
        assert_eq!(CheckStatus::of(&[], false), CheckStatus::Pass);
        assert_eq!(CheckStatus::of(&[], true), CheckStatus::Skipped);
        assert_eq!(CheckStatus::of(&[finding()], false), CheckStatus::Fail);
        // A finding outweighs the check that did not run.
        assert_eq!(CheckStatus::of(&[finding()], true), CheckStatus::Fail);
    }

    #[test]
    fn status_and_reason_serialise_lowercase() {
        let c = UnitCheck {
            unit: crate::unit_id::UnitId::new("six", Runtime::parse("python3.13").unwrap(), Arch::Arm64),
            status: CheckStatus::Skipped,
            reason: Some("no docker".into()),
            import_check: "not run: no docker".into(),
            imports_passed: 0,
            findings: vec![],
            deep: None,
            notes: vec![],
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!((v["status"].as_str(), v["reason"].as_str()), (Some("skipped"), Some("no docker")));
        let passed = UnitCheck { status: CheckStatus::Pass, reason: None, ..c };
        let v = serde_json::to_value(&passed).unwrap();
        assert_eq!(v["status"], "pass");
        assert!(v.get("reason").is_none(), "{v}");
    }
}
