//! `cargo xtask status`: every unit with its local fingerprint, the newest published
//! version and ARN in each region of a profile, and `unchanged`, `changed` or `new`.

use anyhow::Result;

use crate::publish::status::{self, Compared, StatusRow};
use crate::repo::Repo;
use crate::unit::{self, Context};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Layers to show (default: every layer)
    pub names: Vec<String>,
    /// Deploy profile from layers.toml
    #[arg(long, default_value = "staging", value_name = "PROFILE")]
    pub profile: String,
    /// Print one JSON object per unit and region on stdout
    #[arg(long)]
    pub json: bool,
}

/// Returns false when some unit could not be looked up.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    let names = unit::select_layers(&ctx.repo, &args.names, args.names.is_empty())?;
    let rows = status::status(&ctx, &args.profile, &names, 8)?;
    if args.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    }
    print_table(&rows);
    Ok(rows.iter().all(|r| r.status != Compared::Failed))
}

fn print_table(rows: &[StatusRow]) {
    let s = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    eprintln!(
        "{:<10} {:<20} {:<11} {:<7} {:<15} {:<12} {:>7}  ARN",
        "STATUS", "LAYER", "RUNTIME", "ARCH", "REGION", "FINGERPRINT", "VERSION"
    );
    for r in rows {
        let fp: String = s(&r.fingerprint).chars().take(12).collect();
        let last = match &r.error {
            Some(e) => format!("error: {e}"),
            None => s(&r.arn),
        };
        let version = r.version.map_or("-".to_string(), |v| v.to_string());
        eprintln!(
            "{:<10} {:<20} {:<11} {:<7} {:<15} {:<12} {:>7}  {last}",
            r.status,
            r.layer,
            s(&r.runtime),
            s(&r.arch),
            s(&r.region),
            fp,
            version
        );
    }
}
