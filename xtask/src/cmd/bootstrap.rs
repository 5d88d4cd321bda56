//! `cargo xtask bootstrap --profile P`: creates the profile's bucket in each of its regions
//! when missing, with public access blocked and default encryption.

use anyhow::Result;

use crate::publish::bootstrap;
use crate::repo::Repo;
use crate::unit::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Deploy profile from layers.toml
    #[arg(long, default_value = "staging", value_name = "PROFILE")]
    pub profile: String,
    /// Confirm writing to a profile marked `confirm = true` (such as production)
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON object per bucket on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    for r in bootstrap::bootstrap(&ctx, &args.profile, args.yes)? {
        let what = if r.created { "created" } else { "exists" };
        eprintln!("{what:<8} s3://{} in {}: public access blocked, default encryption AES256", r.bucket, r.region);
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(true)
}
