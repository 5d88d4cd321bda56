//! `cargo xtask check NAME... | --all | --zip FILE`: imports, ABI and dependency closure
//! of built layers, before they ship.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::args::{ImagesArgs, OutputArgs, TargetArgs};
use crate::check::run::{self, CheckStatus, UnitCheck};
use crate::output;
use crate::repo::Repo;
use crate::unit::{self, Context, UnitFailure};

#[derive(clap::Args, Debug)]
#[command(
    mut_arg("runtime", |a| a.help("The runtime a --zip is for, e.g. python3.13; for layers: only the units of this runtime")),
    mut_arg("arch", |a| a.help("The architecture a --zip is for: x86_64 or arm64; for layers: only the units of this architecture")),
    mut_arg("image", |a| a.help("Use this build image for builds this check needs"))
)]
pub struct Args {
    /// Layers to check (built first when dist/ is not current)
    pub names: Vec<String>,
    /// Check every layer
    #[arg(long, conflicts_with_all = ["names", "zip"])]
    pub all: bool,
    /// Check any layer zip instead of a layer of this repo (needs --runtime and --arch)
    #[arg(long, value_name = "FILE", conflicts_with = "names", requires_all = ["runtime", "arch"])]
    pub zip: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Extras whose requirements count too, e.g. `pandas[performance]` or `performance`
    #[arg(long, value_delimiter = ',')]
    pub extras: Vec<String>,
    #[command(flatten)]
    pub images: ImagesArgs,
    /// Also import every module of the layer before and after slimming, and report what slimming broke
    #[arg(long, conflicts_with = "zip")]
    pub deep: bool,
    /// Exit non-zero when an import check could not run (no docker, no emulation, no host Python)
    #[arg(long)]
    pub require_imports: bool,
    /// Refuse a stale lock instead of locking it again first (for CI: what ships is what was committed)
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, args.images.build.image.clone())?
        .with_stale_lock(unit::StaleLock::building(args.locked))
        .with_check_image(args.images.check_image.clone())
        .with_removed_kept(args.deep);
    let mut results: Vec<std::result::Result<UnitCheck, UnitFailure>> = Vec::new();
    if let Some(zip) = &args.zip {
        let (Some(runtime), Some(arch)) = (args.target.runtime, args.target.arch) else {
            anyhow::bail!("--zip needs --runtime and --arch");
        };
        let scratch = tempfile::Builder::new().prefix("xtask-check-").tempdir()?;
        let image = args.images.check_image.clone().unwrap_or_else(|| ctx.config.zip_check_image(runtime, arch));
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
                None,
            )
            .map_err(|e| UnitFailure::of_unit(&name, runtime, arch, &e)),
        );
    } else {
        let selection = unit::select(&ctx, &args.names, args.all, args.target.filter())?;
        for (name, planned) in &selection.layers {
            match planned {
                Ok(units) => {
                    for u in units {
                        results.push(
                            run::check_unit_with(&ctx, u, &args.extras, args.deep)
                                .map_err(|e| UnitFailure::of_unit(&u.layer.name, u.runtime, u.arch, &e)),
                        );
                    }
                }
                Err(e) => results.push(Err(UnitFailure::of_layer(name, e))),
            }
        }
        if results.is_empty() {
            selection.ensure_matched()?;
        }
    }
    let mut ok = true;
    let (mut passed, mut skipped, mut failed) = (0, 0, 0);
    let units = results.len();
    for r in results {
        match r {
            Ok(c) => {
                // A skipped import check found nothing wrong: the exit code stays 0 unless
                // --require-imports asks for every import check to have run.
                ok &= match c.status {
                    CheckStatus::Pass => true,
                    CheckStatus::Skipped => !args.require_imports,
                    CheckStatus::Fail => false,
                };
                match c.status {
                    CheckStatus::Pass => passed += 1,
                    CheckStatus::Skipped => skipped += 1,
                    CheckStatus::Fail => failed += 1,
                }
                print(&c);
                if args.output.json {
                    output::json(&c)?;
                }
            }
            Err(f) => {
                ok = false;
                failed += 1;
                output::error(format_args!("{}: {}", f.label(), f.error));
                if args.output.json {
                    output::json(&f)?;
                }
            }
        }
    }
    if units > 1 {
        output::line(output::summary(&[("passed", passed), ("skipped", skipped), ("failed", failed)]));
    }
    Ok(ok)
}

/// A unit's check: one status line, its findings and notes, and a warning when it is
/// unverified.
pub fn print(c: &UnitCheck) {
    output::status(
        c.status.label(),
        format_args!(
            "{}: {}; {} passed, import check {}",
            c.unit,
            output::count(c.findings.len(), "finding"),
            output::count(c.imports_passed, "import/metadata check"),
            c.import_check
        ),
    );
    for f in &c.findings {
        output::detail(format_args!("{}: {}: {}", f.check, f.subject, f.message));
    }
    if let Some(d) = &c.deep {
        output::detail(format_args!(
            "deep: {} tried, {} ok, {} broken by slimming, {} broken upstream (fail before slimming too), {:.1} s",
            output::count(d.modules, "module"),
            d.ok,
            d.broken_by_slimming,
            d.broken_upstream.len(),
            d.seconds
        ));
        for u in d.broken_upstream.iter().take(5) {
            output::detail(format_args!("upstream: import {}: {}", u.module, u.error));
        }
        if d.broken_upstream.len() > 5 {
            output::detail(format_args!("upstream: {} more (--json lists them)", d.broken_upstream.len() - 5));
        }
    }
    for n in &c.notes {
        output::detail(format_args!("note: {n}"));
    }
    if c.status == CheckStatus::Skipped {
        output::warn(format_args!(
            "{} is unverified: its import check did not run; publish refuses it without --allow-unverified",
            c.unit
        ));
    }
}
