//! `cargo xtask publish NAME...` and `cargo xtask publish-all`: publishes what changed to a
//! deploy profile (staging unless `--profile` names another) and prints a summary.

use anyhow::Result;

use crate::publish::{self, Options, Row, Status};
use crate::repo::Repo;
use crate::unit::{self, Context};

/// The flags `publish` and `publish-all` share.
#[derive(clap::Args, Debug)]
pub struct Opts {
    /// Deploy profile from layers.toml; no other profile than staging is ever used unless named here
    #[arg(long, default_value = "staging", value_name = "PROFILE")]
    pub profile: String,
    /// Detect changes and build, but upload, publish and record nothing; print the plan
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm writing to a profile marked `confirm = true` (such as production)
    #[arg(long)]
    pub yes: bool,
    /// How many units are uploaded and published at once
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Use this build image for this run instead of the configured one
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Publish without running `cargo xtask check` first
    #[arg(long)]
    pub no_check: bool,
    /// Publish units whose import check could not run (no docker, no emulation, no host Python)
    #[arg(long)]
    pub allow_unverified: bool,
    /// Import layers in this image instead of the configured `check_image`
    #[arg(long, value_name = "IMAGE")]
    pub check_image: Option<String>,
    /// Print one JSON object per unit and region on stdout
    #[arg(long)]
    pub json: bool,
    /// Only the units of this runtime, e.g. python3.13
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Only the units of this architecture: x86_64 or arm64
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// How long to wait, in seconds, while another run holds the profile's publish lock
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub lock_timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Layers to publish (folders under layers/)
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub opts: Opts,
}

#[derive(clap::Args, Debug)]
pub struct AllArgs {
    #[command(flatten)]
    pub opts: Opts,
}

/// `publish NAME...`; returns whether every unit succeeded.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    publish_layers(repo, &args.names, false, &args.opts)
}

/// `publish-all`; returns whether every unit succeeded.
pub fn run_all(repo: Repo, args: &AllArgs) -> Result<bool> {
    publish_layers(repo, &[], true, &args.opts)
}

fn publish_layers(repo: Repo, names: &[String], all: bool, o: &Opts) -> Result<bool> {
    let filter = unit::UnitFilter::parse(o.runtime.as_deref(), o.arch.as_deref())?;
    let mut ctx = Context::new(repo, o.image.clone())?;
    ctx.check_image_override = o.check_image.clone();
    let names = unit::select_layers(&ctx.repo, names, all)?;
    let opts = Options {
        profile: o.profile.clone(),
        dry_run: o.dry_run,
        yes: o.yes,
        jobs: usize::from(o.jobs),
        check: !o.no_check,
        allow_unverified: o.allow_unverified,
        filter,
        lock_timeout: std::time::Duration::from_secs(o.lock_timeout),
    };
    let published = publish::publish(&ctx, &names, &opts)?;
    for c in &published.checks {
        crate::cmd::check::print(c);
    }
    let rows = published.rows;
    if o.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    }
    print_summary(&rows, &opts);
    Ok(rows.iter().all(|r| r.status != Status::Failed))
}

fn print_summary(rows: &[Row], opts: &Options) {
    let s = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    eprintln!();
    eprintln!(
        "{:<10} {:<20} {:<11} {:<7} {:<15} {:>7}  ARN / DETAIL",
        "STATUS", "LAYER", "RUNTIME", "ARCH", "REGION", "VERSION"
    );
    for r in rows {
        let version = r.version.map_or("-".to_string(), |v| v.to_string());
        let last = match r.status {
            Status::Failed => format!("error: {}", s(&r.error)),
            Status::Planned => s(&r.detail),
            _ => s(&r.arn),
        };
        eprintln!(
            "{:<10} {:<20} {:<11} {:<7} {:<15} {:>7}  {last}",
            r.status.as_str(),
            r.layer,
            s(&r.runtime),
            s(&r.arch),
            s(&r.region),
            version
        );
    }
    let count = |st: Status| rows.iter().filter(|r| r.status == st).count();
    let mode = if opts.dry_run { " (dry run: nothing was written)" } else { "" };
    eprintln!(
        "profile {}: {} published, {} unchanged, {} planned, {} failed{mode}",
        opts.profile,
        count(Status::Published),
        count(Status::Unchanged),
        count(Status::Planned),
        count(Status::Failed)
    );
    if count(Status::Published) > 0 {
        eprintln!("recorded in published/{}.json", opts.profile);
    }
}
