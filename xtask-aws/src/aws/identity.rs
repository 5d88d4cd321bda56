//! Whose credentials a session uses: STS GetCallerIdentity (which needs no permission)
//! tells that the endpoint answers and accepts them, and which account they belong to; a
//! profile with `account_id` only goes on with credentials of that account.

use anyhow::{bail, Result};

use super::{Clients, Session};

impl Session {
    /// Before anything else, in every region: the endpoint answers, the credentials work,
    /// and with `account_id` set they belong to that account. One clear error instead of
    /// the same failure for every unit.
    pub async fn check_identity(&self) -> Result<()> {
        let expected = self.profile.account_id.as_deref();
        for c in &self.clients {
            check_account(c, expected).await?;
        }
        Ok(())
    }
}

/// Checks that the region answers and accepts the credentials, and with `account_id` set
/// (`expected`) that they belong to that account.
async fn check_account(c: &Clients, expected: Option<&str>) -> Result<()> {
    let t = &c.target;
    let actual = account(c).await?;
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
pub async fn account(c: &Clients) -> Result<String> {
    let t = &c.target;
    let what = format!("cannot check the AWS identity of {} in {}", t.who(), t.region);
    let out = c.sts.get_caller_identity().send().await.map_err(|e| t.explain(&what, e))?;
    Ok(out.account().unwrap_or("unknown").to_string())
}
