//! Whose credentials a session uses: STS GetCallerIdentity (which needs no permission)
//! tells that the endpoint answers and accepts them, and which account and partition they
//! belong to; a profile with `account_id` only goes on with credentials of that account.
//! One call per session: the account is the same in every region.

use anyhow::{bail, Result};

use super::{Clients, Session};

/// Who the credentials are: their account, and the partition ARNs are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub partition: String,
    pub account: String,
}

impl Identity {
    pub fn layer_version_arn(&self, region: &str, layer_name: &str, version: i64) -> String {
        format!("arn:{}:lambda:{region}:{}:layer:{layer_name}:{version}", self.partition, self.account)
    }
}

impl Session {
    /// Before anything else: the endpoint answers, the credentials work, and with
    /// `account_id` set they belong to that account. One clear error instead of the same
    /// failure for every unit.
    pub async fn check_identity(&self) -> Result<Identity> {
        let Some(c) = self.clients.first() else { bail!("deploy profile `{}` has no regions", self.name) };
        let who = identity(c).await?;
        match self.profile.account_id.as_deref() {
            Some(expected) if who.account != expected => bail!(
                "wrong AWS account for {}: the credentials belong to account {} but layers.toml expects account_id {expected}; log in to the right account or fix account_id (nothing was written)",
                c.target.who(),
                who.account
            ),
            _ => Ok(who),
        }
    }
}

/// The account and partition the credentials belong to (STS GetCallerIdentity).
pub async fn identity(c: &Clients) -> Result<Identity> {
    let t = &c.target;
    let what = format!("cannot check the AWS identity of {} in {}", t.who(), t.region);
    let out = c
        .sts
        .get_caller_identity()
        .customize()
        .config_override(super::policy::first_contact())
        .send()
        .await
        .map_err(|e| t.explain(&what, e))?;
    // `arn:aws:sts::123456789012:assumed-role/...`: the partition is the second field.
    let partition = out.arn().and_then(|a| a.split(':').nth(1)).filter(|p| !p.is_empty()).unwrap_or("aws");
    Ok(Identity { partition: partition.to_string(), account: out.account().unwrap_or("unknown").to_string() })
}

/// The account the credentials belong to.
pub async fn account(c: &Clients) -> Result<String> {
    Ok(identity(c).await?.account)
}
