//! `cargo xtask bootstrap --profile P`: creates the profile's bucket in each of its regions
//! when missing, with public access blocked and default encryption.

use anyhow::Result;

use crate::{aws, bootstrap};
use xtask::cmd::remote::bootstrap::Args;
use xtask::output;
use xtask::repo::Repo;
use xtask::unit::Context;

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    for r in aws::run(bootstrap::bootstrap(&ctx, &args.profile.profile, args.yes))? {
        let what = if r.created { "created" } else { "exists" };
        output::status(
            what,
            format_args!("s3://{} in {}: public access blocked, default encryption AES256", r.bucket, r.region),
        );
        if args.output.json {
            output::json(&r)?;
        }
    }
    Ok(true)
}
