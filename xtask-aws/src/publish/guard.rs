//! The checks that run before anything is written: a profile marked `confirm` needs
//! `--yes` (or its name typed at a terminal); the endpoint must answer and accept the
//! credentials; a profile with `account_id` only writes with credentials of that account.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Result};

use super::aws::Clients;
use xtask::config::Profile;

/// Refuses a write to a profile marked `confirm` unless `--yes` was given or, on a
/// terminal, the user types the profile's name.
pub fn confirm(name: &str, profile: &Profile, yes: bool) -> Result<()> {
    if !profile.confirm || yes {
        return Ok(());
    }
    let refusal = format!("profile `{name}` needs confirmation: pass --yes to write to it (nothing was written)");
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        bail!(refusal);
    }
    xtask::output::prompt(format_args!(
        "profile `{name}` writes to {}; type `{name}` to continue: ",
        profile.regions.join(", ")
    ));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != name {
        bail!(refusal);
    }
    Ok(())
}

/// Checks that the region answers and accepts the credentials (STS GetCallerIdentity
/// needs no permission), and with `account_id` set that they belong to that account.
pub async fn check_identity(c: &Clients, expected: Option<&str>) -> Result<()> {
    let t = &c.target;
    let actual = identity(c).await?;
    let actual = actual.as_str();
    match expected {
        Some(expected) if actual != expected => bail!(
            "wrong AWS account for {}: the credentials belong to account {actual} but layers.toml expects account_id {expected}; log in to the right account or fix account_id (nothing was written)",
            t.who()
        ),
        _ => Ok(()),
    }
}

/// The account the credentials belong to (STS GetCallerIdentity).
pub async fn identity(c: &Clients) -> Result<String> {
    let t = &c.target;
    let what = format!("cannot check the AWS identity of {} in {}", t.who(), t.region);
    let out = c.sts.get_caller_identity().send().await.map_err(|e| t.explain(&what, e))?;
    Ok(out.account().unwrap_or("unknown").to_string())
}
