//! A region's Lambda code storage: every layer version (and function version) counts
//! toward a quota per account and region, 75 GB by default, and a publish past it fails
//! (CodeStorageExceededException). [`usage`] reads it (GetAccountSettings: used and limit,
//! or `None` when the endpoint does not implement the call, as the emulator does: then the
//! usage is [`UNKNOWN`], never a made-up number); [`warn_before_publish`] says when a
//! publish would take it past 80% or past the quota; [`amount`] and [`gb`] format sizes in
//! the units AWS quotes the quota in (GB = 1024³ bytes, one decimal).

use anyhow::Result;
use aws_sdk_lambda::error::ProvideErrorMetadata as _;
use serde::Serialize;

use super::{one_line, status, Clients};

/// What status prints for a region whose endpoint does not implement GetAccountSettings.
pub const UNKNOWN: &str = "unknown (the endpoint does not answer GetAccountSettings)";

/// The IAM action reading the usage needs.
pub const ACTION: &str = "lambda:GetAccountSettings";

/// From this share of the quota on, a publish is warned (percent).
pub const WARN_PERCENT: u64 = 80;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A region's code storage: what the account's functions and layers take, and the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub used_bytes: u64,
    pub limit_bytes: u64,
}

impl Usage {
    /// The share of the quota used, in percent (100 for a quota of 0 with anything used).
    pub fn percent(&self) -> f64 {
        match self.limit_bytes {
            0 if self.used_bytes == 0 => 0.0,
            0 => 100.0,
            limit => self.used_bytes as f64 * 100.0 / limit as f64,
        }
    }

    /// The usage once `bytes` more are stored.
    pub fn plus(&self, bytes: u64) -> Usage {
        Usage { used_bytes: self.used_bytes.saturating_add(bytes), ..*self }
    }

    /// Whether more than `percent` of the quota is used (exact, in integers).
    pub fn over(&self, percent: u64) -> bool {
        u128::from(self.used_bytes) * 100 > u128::from(self.limit_bytes) * u128::from(percent)
    }
}

/// `3.4 of 75.0 GB (5%)`.
impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.used_bytes as f64 / GIB;
        write!(f, "{used:.1} of {} ({:.0}%)", gb(self.limit_bytes), self.percent().floor())
    }
}

/// Bytes in GB (1024³) with one decimal, as AWS quotes the quota: `75.0 GB`.
pub fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / GIB)
}

/// A size in the quota's units, the largest that keeps it above 1: `812 B`, `14.2 KB`,
/// `3.4 MB`, `1.2 GB` (1024-based, as AWS quotes the quota).
pub fn amount(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else if b < GIB {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    } else {
        gb(bytes)
    }
}

/// The region's code storage, or `None` when the endpoint does not implement
/// GetAccountSettings (or answers it without the sizes). Access denied is an error naming
/// [`ACTION`]; so is any other failure.
pub async fn usage(c: &Clients) -> Result<Option<Usage>> {
    let region = &c.target.region;
    let what = format!("cannot read the Lambda code storage in {region} (GetAccountSettings)");
    match c.lambda.get_account_settings().send().await {
        Ok(out) => Ok(parse(
            out.account_limit().map(|l| l.total_code_size()),
            out.account_usage().map(|u| u.total_code_size()),
        )),
        Err(e) => match classify(e.code(), status(&e)) {
            Answer::Unimplemented => Ok(None),
            Answer::Denied => {
                let message = e.message().map(one_line).unwrap_or_default();
                anyhow::bail!("{what}: access denied to {}; grant its role `{ACTION}` ({message})", c.target.who())
            }
            Answer::Other => Err(c.target.explain(&what, e)),
        },
    }
}

/// The sizes of a GetAccountSettings answer (AccountLimit.TotalCodeSize,
/// AccountUsage.TotalCodeSize); `None` when either is missing or the limit is not positive
/// (an endpoint that answers without knowing).
fn parse(limit: Option<i64>, used: Option<i64>) -> Option<Usage> {
    let limit = u64::try_from(limit?).ok().filter(|l| *l > 0)?;
    let used = u64::try_from(used?).ok()?;
    Some(Usage { used_bytes: used, limit_bytes: limit })
}

/// How a failed GetAccountSettings is read.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The endpoint has no such operation (moto: 404; others: UnknownOperation, 501).
    Unimplemented,
    /// The credentials may not call it.
    Denied,
    Other,
}

fn classify(code: Option<&str>, status: Option<u16>) -> Answer {
    match (code.unwrap_or(""), status) {
        ("AccessDenied" | "AccessDeniedException", _) | ("", Some(403)) => Answer::Denied,
        ("UnknownOperationException" | "UnknownOperation" | "InvalidAction" | "NotImplemented", _) => {
            Answer::Unimplemented
        }
        (_, Some(404 | 501)) => Answer::Unimplemented,
        _ => Answer::Other,
    }
}

/// What a publish of `adding_bytes` (the zips it uploads as new versions) into `region`
/// does to its code storage: `None` while it stays within [`WARN_PERCENT`]; a warning past
/// it; a [`Warning`] with `fails` past the quota (Lambda would refuse the version). `profile`
/// names the deploy profile in the prune command it suggests.
pub fn warn_before_publish(region: &str, profile: &str, usage: &Usage, adding_bytes: u64) -> Option<Warning> {
    let after = usage.plus(adding_bytes);
    if !after.over(WARN_PERCENT) {
        return None;
    }
    let fails = after.over(100);
    let (takes, then) =
        if fails { ("would take", ", past the quota: Lambda would refuse the new versions") } else { ("takes", "") };
    let message = format!(
        "publishing {} in {region} {takes} code storage to {:.0}% of {}{then}: {}",
        amount(adding_bytes),
        after.percent().floor(),
        gb(usage.limit_bytes),
        prune_hint(profile),
    );
    Some(Warning { fails, message })
}

/// What to run to free code storage.
pub fn prune_hint(profile: &str) -> String {
    format!("run `cargo xtask prune --keep N --profile {profile}` to free space")
}

/// What [`warn_before_publish`] says: a warning, or (`fails`) why the region's publish
/// cannot succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The publish would pass the quota: the region's versions would be refused.
    pub fails: bool,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1024 * 1024 * 1024;

    fn quota(used: u64) -> Usage {
        Usage { used_bytes: used, limit_bytes: 75 * GB }
    }

    #[test]
    fn usage_reads_as_gb_of_the_quota_with_one_decimal() {
        let u = Usage { used_bytes: 3 * GB + 4 * GB / 10 + 1, limit_bytes: 75 * GB };
        assert_eq!(u.to_string(), "3.4 of 75.0 GB (4%)");
        assert_eq!(quota(0).to_string(), "0.0 of 75.0 GB (0%)");
        assert_eq!(quota(75 * GB).percent(), 100.0);
        assert_eq!(Usage { used_bytes: 1, limit_bytes: 0 }.percent(), 100.0);
        assert_eq!(gb(80_530_636_800), "75.0 GB");
        assert_eq!(amount(812), "812 B");
        assert_eq!(amount(14_541), "14.2 KB");
        assert_eq!(amount(3 * 1024 * 1024 + 400_000), "3.4 MB");
        assert_eq!(amount(GB + GB / 5), "1.2 GB");
    }

    #[test]
    fn publish_is_warned_past_80_percent_and_refused_past_the_quota() {
        // 60 GB used: 1.2 GB more is 81.6%.
        let w = warn_before_publish("eu-west-1", "staging", &quota(60 * GB), GB + GB / 5).unwrap();
        assert!(!w.fails);
        assert_eq!(
            w.message,
            "publishing 1.2 GB in eu-west-1 takes code storage to 81% of 75.0 GB: run `cargo xtask prune --keep N --profile staging` to free space"
        );
        // Exactly 80% is not past it; one byte more is.
        assert_eq!(warn_before_publish("r", "p", &quota(59 * GB), GB), None);
        assert!(warn_before_publish("r", "p", &quota(59 * GB), GB + 1).is_some_and(|w| !w.fails));
        // Exactly the quota still fits; one byte more does not.
        assert!(warn_before_publish("r", "p", &quota(74 * GB), GB).is_some_and(|w| !w.fails));
        let w = warn_before_publish("us-east-1", "prod", &quota(74 * GB), GB + 1).unwrap();
        assert!(w.fails, "{w}");
        assert!(w.message.contains("past the quota") && w.message.contains("--profile prod"), "{w}");
        // Already past 80%, adding nothing still warns.
        assert!(warn_before_publish("r", "p", &quota(70 * GB), 0).is_some());
        assert_eq!(warn_before_publish("r", "p", &quota(0), 10 * GB), None);
    }

    #[test]
    fn answers_are_parsed_and_failures_classified() {
        assert_eq!(parse(Some(100), Some(7)), Some(Usage { used_bytes: 7, limit_bytes: 100 }));
        assert_eq!(parse(None, Some(7)), None);
        assert_eq!(parse(Some(100), None), None);
        assert_eq!(parse(Some(0), Some(0)), None, "a limit of 0 is an endpoint that does not know");
        assert_eq!(parse(Some(100), Some(-1)), None);
        assert_eq!(classify(None, Some(404)), Answer::Unimplemented);
        assert_eq!(classify(Some("UnknownOperationException"), Some(400)), Answer::Unimplemented);
        assert_eq!(classify(Some("AccessDeniedException"), Some(403)), Answer::Denied);
        assert_eq!(classify(None, Some(403)), Answer::Denied);
        assert_eq!(classify(Some("ServiceException"), Some(500)), Answer::Other);
        assert_eq!(classify(Some("ThrottlingException"), Some(429)), Answer::Other);
    }
}
