//! `cargo xtask publish NAME...` and `cargo xtask publish-all`: publishes what changed to a
//! deploy profile (staging unless `--profile` names another) and prints a summary.

use anyhow::Result;

use crate::aws;
use crate::publish::{self, Options, Row, Status};
use xtask::cmd::remote::publish::{AllArgs, Args, Opts};
use xtask::output::{self, Table};
use xtask::repo::Repo;
use xtask::unit::{self, Context};

/// `publish NAME...`; returns whether every unit succeeded.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    publish_layers(repo, &args.names, false, &args.opts)
}

/// `publish-all`; returns whether every unit succeeded.
pub fn run_all(repo: Repo, args: &AllArgs) -> Result<bool> {
    publish_layers(repo, &[], true, &args.opts)
}

fn publish_layers(repo: Repo, names: &[String], all: bool, o: &Opts) -> Result<bool> {
    let ctx = Context::new(repo, o.images.build.image.clone())?.with_check_image(o.images.check_image.clone());
    let names = unit::select_layers(&ctx.repo, names, all)?;
    let opts = Options {
        profile: o.profile.profile.clone(),
        dry_run: o.dry_run,
        yes: o.yes,
        jobs: usize::from(o.jobs),
        build_jobs: o.build_jobs.map(usize::from).unwrap_or_else(xtask::schedule::default_jobs),
        check: !o.no_check,
        allow_unverified: o.allow_unverified,
        filter: o.target.filter(),
        lock_timeout: std::time::Duration::from_secs(o.lock_timeout),
    };
    let published = aws::run(publish::publish(&ctx, &names, &opts))?;
    for c in &published.checks {
        xtask::cmd::check::print(c);
    }
    let rows = published.rows;
    if o.output.json {
        for r in &rows {
            output::json(r)?;
        }
    }
    print_summary(&rows, &opts);
    Ok(rows.iter().all(|r| r.status != Status::Failed))
}

fn print_summary(rows: &[Row], opts: &Options) {
    let s = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut table = Table::new(&["STATUS", "LAYER", "RUNTIME", "ARCH", "REGION", "VERSION", "ARN / DETAIL"]).right(5);
    for r in rows {
        let version = r.version.map_or("-".to_string(), |v| v.to_string());
        let last = match r.status {
            Status::Failed if r.runtime.is_none() => "(error above)".to_string(),
            Status::Failed => "(error below)".to_string(),
            Status::Planned => s(&r.detail),
            _ => s(&r.arn),
        };
        table.row(vec![
            r.status.as_str().into(),
            r.layer.clone(),
            s(&r.runtime),
            s(&r.arch),
            s(&r.region),
            version,
            last,
        ]);
    }
    if !table.is_empty() {
        output::line("");
        table.print();
    }
    // A unit's error is shown once, here (a layer that could not be planned was named
    // when planning failed).
    for r in rows.iter().filter(|r| r.status == Status::Failed && r.runtime.is_some()) {
        let unit: Vec<&str> = [Some(&r.layer), r.runtime.as_ref(), r.arch.as_ref(), r.region.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        output::error(format_args!("{}: {}", unit.join(" "), s(&r.error)));
    }
    let count = |st: Status| rows.iter().filter(|r| r.status == st).count();
    let mode = if opts.dry_run { " (dry run: nothing was written)" } else { "" };
    output::line(format_args!(
        "profile {}: {}{mode}",
        opts.profile,
        output::summary(&[
            ("published", count(Status::Published)),
            ("unchanged", count(Status::Unchanged)),
            ("planned", count(Status::Planned)),
            ("failed", count(Status::Failed)),
        ])
    ));
    if count(Status::Published) > 0 {
        output::line(format_args!("recorded in published/{}.json", opts.profile));
    }
}
