//! `cargo xtask check NAME... | --all | --zip FILE`: imports, ABI and dependency closure
//! of built layers, before they ship.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::check::run::{self, Status, UnitCheck};
use crate::repo::Repo;
use crate::runtime::{Arch, Runtime};
use crate::unit::{self, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Layers to check (built first when dist/ is not current)
    pub names: Vec<String>,
    /// Check every layer
    #[arg(long, conflicts_with_all = ["names", "zip"])]
    pub all: bool,
    /// Check any layer zip instead of a layer of this repo (needs --runtime and --arch)
    #[arg(long, value_name = "FILE", conflicts_with = "names", requires_all = ["runtime", "arch"])]
    pub zip: Option<PathBuf>,
    /// The runtime a --zip is for, e.g. python3.13; for layers: only the units of this runtime
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// The architecture a --zip is for: x86_64 or arm64; for layers: only the units of this architecture
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Extras whose requirements count too, e.g. `pandas[performance]` or `performance`
    #[arg(long, value_delimiter = ',')]
    pub extras: Vec<String>,
    /// Use this build image for builds this check needs
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Import layers in this image instead of the configured `check_image`
    #[arg(long, value_name = "IMAGE")]
    pub check_image: Option<String>,
    /// Exit non-zero when an import check could not run (no docker, no emulation, no host Python)
    #[arg(long)]
    pub require_imports: bool,
    /// Print one JSON object per unit on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let mut ctx = Context::new(repo, args.image.clone())?;
    ctx.check_image_override = args.check_image.clone();
    let mut results: Vec<std::result::Result<UnitCheck, (String, anyhow::Error)>> = Vec::new();
    if let Some(zip) = &args.zip {
        let runtime = Runtime::parse(args.runtime.as_deref().unwrap_or_default())?;
        let arch = Arch::parse(args.arch.as_deref().unwrap_or_default())?;
        let scratch = tempfile::Builder::new().prefix("xtask-check-").tempdir()?;
        let image = args
            .check_image
            .clone()
            .unwrap_or_else(|| crate::config::expand_image(crate::config::DEFAULT_CHECK_IMAGE, runtime, arch));
        let name = zip.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        std::fs::metadata(zip).with_context(|| format!("cannot read {}", zip.display()))?;
        results.push(
            run::check_zips(
                scratch.path(),
                &name,
                zip,
                &[],
                runtime,
                arch,
                &args.extras,
                &image,
                ctx.docker_if_available(),
            )
            .map_err(|e| (name.clone(), e)),
        );
    } else {
        let filter = unit::UnitFilter::parse(args.runtime.as_deref(), args.arch.as_deref())?;
        let names = unit::select_layers(&ctx.repo, &args.names, args.all)?;
        let mut kept = 0;
        for name in &names {
            match unit::plan(&ctx, name) {
                Ok(units) => {
                    let units = filter.apply(units);
                    kept += units.len();
                    for u in &units {
                        results.push(run::check_unit(&ctx, u, &args.extras).map_err(|e| (u.label(), e)));
                    }
                }
                Err(e) => results.push(Err((name.clone(), e))),
            }
        }
        if results.is_empty() {
            filter.ensure_matched(kept, &names)?;
        }
    }
    let mut ok = true;
    for r in results {
        match r {
            Ok(c) => {
                // A skipped import check found nothing wrong: the exit code stays 0 unless
                // --require-imports asks for every import check to have run.
                ok &= match c.status {
                    Status::Pass => true,
                    Status::Skipped => !args.require_imports,
                    Status::Fail => false,
                };
                print(&c);
                if args.json {
                    println!("{}", serde_json::to_string(&c)?);
                }
            }
            Err((what, e)) => {
                ok = false;
                eprintln!("error: {what}: {e:#}");
                if args.json {
                    println!("{}", serde_json::json!({"unit": what, "status": "failed", "error": format!("{e:#}")}));
                }
            }
        }
    }
    Ok(ok)
}

pub fn print(c: &UnitCheck) {
    eprintln!(
        "{:<7} {} {} {}: {} finding(s); {} import/metadata check(s) passed, import check {}",
        c.status.label(),
        c.layer,
        c.runtime,
        c.arch,
        c.findings.len(),
        c.imports_passed,
        c.import_check
    );
    for f in &c.findings {
        eprintln!("    {}: {}: {}", f.check, f.subject, f.message);
    }
    for n in &c.notes {
        eprintln!("    note: {n}");
    }
    if c.status == Status::Skipped {
        eprintln!(
            "warning: {} {} {} is unverified: its import check did not run; publish refuses it without --allow-unverified",
            c.layer, c.runtime, c.arch
        );
    }
}
