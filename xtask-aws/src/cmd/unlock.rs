//! `cargo xtask unlock --profile P`: shows who holds a deploy profile's publish lock and,
//! after confirmation, removes it: for a run that died without releasing it and whose
//! lease has not run out yet (a run that waits takes an expired lock over by itself).

use anyhow::{bail, Result};

use crate::aws::{self, confirm, Session};
use crate::s3lock::{self as lock, Found, Place};
use xtask::cmd::remote::unlock::Args;
use xtask::output;
use xtask::profile::naming;
use xtask::repo::Repo;
use xtask::unit::Context;

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    aws::run(unlock(&ctx, args))
}

async fn unlock(ctx: &Context, args: &Args) -> Result<bool> {
    let session = Session::open(ctx, &args.profile).await?;
    if let Some(r) = &args.region {
        if !session.profile.regions.contains(r) {
            bail!(
                "profile `{}` has no region {r}: its regions are {}",
                args.profile,
                session.profile.regions.join(", ")
            );
        }
    }
    session.check_identity().await?;
    for c in session.clients.iter().filter(|c| args.region.as_ref().is_none_or(|r| *r == c.target.region)) {
        let region = &c.target.region;
        let place =
            Place::new(&args.profile, region, &naming::bucket(&session.profile, region), &session.profile.prefix);
        let Some((found, etag)) = lock::inspect(c, &place).await? else {
            output::status(
                "unlocked",
                format_args!("profile `{}` in {region}: no run holds its publish lock", args.profile),
            );
            continue;
        };
        let holder = match found {
            Found::Lock(holder) => {
                let left = holder.lease_left();
                let lease = if left > 0 {
                    format!("its lease ends in {left} s: that run may still be publishing")
                } else {
                    format!("its lease ran out {} s ago", -left)
                };
                format!("by {}; {lease}", holder.describe())
            }
            // Not a lock this tool wrote: shown as it is (escaped, clipped, one line), and
            // removable like any other, so publish's advice to unlock can be followed.
            Found::Foreign { raw, error } => format!(
                "by an object that is not a lock this tool wrote ({error}): s3://{}/{} holds \"{}\"",
                place.bucket,
                place.key,
                xtask::quote::clip(&raw)
            ),
        };
        output::status_styled(
            "locked",
            output::Style::Warn,
            format_args!("profile `{}` in {region} {holder}", args.profile),
        );
        confirm::typed(
            args.yes,
            "unlock",
            "remove it? a run still publishing could then race another; type `unlock` to continue: ",
            format!("not removed: pass --yes to remove the publish lock of profile `{}` in {region} (only when the run holding it is gone)", args.profile),
        )?;
        lock::remove(c, &place, &etag).await?;
        output::status("removed", format_args!("the publish lock of profile `{}` in {region}", args.profile));
    }
    Ok(true)
}
