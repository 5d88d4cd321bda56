//! Registering a layer version with Lambda (PublishLayerVersion from the uploaded S3
//! object), checking what Lambda stored, and sharing the version that was just published.

use std::time::Duration;

use anyhow::{bail, Result};
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::publish_layer_version::PublishLayerVersionError;
use aws_sdk_lambda::types::{Architecture, LayerVersionContentInput, Runtime as LambdaRuntime};

use super::plan;
use crate::aws::{self, policy, Clients};

/// What PublishLayerVersion is asked to create.
#[derive(Debug, Clone)]
pub struct Request {
    pub layer_name: String,
    pub bucket: String,
    pub key: String,
    pub runtimes: Vec<String>,
    pub arch: String,
    pub license: Option<String>,
    pub description: String,
    /// The build fingerprint the Description carries.
    pub fingerprint: String,
    /// The local zip's base64 SHA-256.
    pub code_sha256: String,
}

/// A version Lambda created.
#[derive(Debug, Clone)]
pub struct Published {
    pub version: i64,
    pub arn: String,
    pub code_sha256: String,
}

/// How often PublishLayerVersion is tried when AWS throttles it (it did not take effect).
const ATTEMPTS: u32 = 8;
/// The longest pause between two of those attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How many version numbers past the newest known one adoption looks at.
const PROBES: i64 = 20;

/// Publishes one version, without ever creating two. The SDK does not retry this call
/// (`aws::policy`): a failure that certainly did not take effect (throttling, no
/// connection) is tried again with backoff; one that may have taken effect (a lost or
/// stalled answer, a server error) is looked for instead: a version after `after` (the
/// newest version known before) carrying this fingerprint and content is adopted as the
/// result, waiting a bounded time for it to show, and when none shows the target fails
/// with an error that says a rerun finds it. It is never published twice.
pub async fn publish(c: &Clients, req: &Request, after: i64) -> Result<Published> {
    let mut attempt = 1;
    loop {
        let err = match publish_once(c, req).await {
            Ok(p) => return Ok(p),
            Err(e) => e,
        };
        let what = || {
            format!(
                "cannot publish layer {} in {} from s3://{}/{} (the upload is kept; a rerun reuses it)",
                req.layer_name, c.target.region, req.bucket, req.key
            )
        };
        if policy::took_no_effect(&err) {
            if attempt >= ATTEMPTS {
                return Err(c.target.explain(&what(), err));
            }
            let pause = (Duration::from_millis(500) * 2u32.pow(attempt.min(6))).min(MAX_BACKOFF);
            tokio::time::sleep(jitter(pause)).await;
            attempt += 1;
            continue;
        }
        if !aws::is_transient(&err) {
            return Err(c.target.explain(&what(), err));
        }
        let wait = c.timeouts.read;
        if let Some(p) = adopt(c, req, after, wait).await? {
            return Ok(p);
        }
        let lost = c.target.explain("its answer was lost", err);
        bail!(
            "{}: {lost:#}, and no version with this build appeared within {} s; rerun to finish: a rerun finds the version if it was published, and publishes it once if not",
            what(),
            wait.as_secs_f64().ceil()
        );
    }
}

/// `d` plus up to a quarter more, so throttled jobs do not retry in step.
fn jitter(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

async fn publish_once(
    c: &Clients,
    req: &Request,
) -> Result<Published, SdkError<PublishLayerVersionError, HttpResponse>> {
    let content = LayerVersionContentInput::builder().s3_bucket(&req.bucket).s3_key(&req.key).build();
    let out = c
        .lambda
        .publish_layer_version()
        .layer_name(&req.layer_name)
        .content(content)
        .set_compatible_runtimes(Some(req.runtimes.iter().map(|r| LambdaRuntime::from(r.as_str())).collect()))
        .compatible_architectures(Architecture::from(req.arch.as_str()))
        .set_license_info(req.license.clone())
        .description(&req.description)
        .customize()
        .config_override(policy::no_retries(&c.timeouts))
        .send()
        .await?;
    Ok(Published {
        version: out.version(),
        arn: out.layer_version_arn().unwrap_or_default().to_string(),
        code_sha256: out.content().and_then(|c| c.code_sha256()).unwrap_or_default().to_string(),
    })
}

/// The version a publish whose answer was lost created, if it shows within `wait`: each
/// round is a [`find`], then, as a fallback, the newest version in the layer's list (which
/// may lag).
async fn adopt(c: &Clients, req: &Request, after: i64, wait: Duration) -> Result<Option<Published>> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        if let Some(p) = find(c, req, after).await {
            return Ok(Some(p));
        }
        if let Ok(Some(n)) = plan::newest(c, &req.layer_name).await {
            if n.version > after && n.has_fingerprint(&req.fingerprint) {
                if let Ok(code) = plan::code_sha256(c, &req.layer_name, n.version).await {
                    if code == req.code_sha256 {
                        return Ok(Some(Published { version: n.version, arn: n.arn, code_sha256: code }));
                    }
                }
            }
        }
        if started.elapsed() + pause > wait {
            return Ok(None);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(4));
    }
}

/// A version after `after` that carries the request's fingerprint and content: the
/// version numbers after the newest known one are read one by one (GetLayerVersion, a
/// direct read, taken as consistent at once while the lists may lag) until one is missing.
pub async fn find(c: &Clients, req: &Request, after: i64) -> Option<Published> {
    for v in after + 1..=after + PROBES {
        match plan::version(c, &req.layer_name, v).await {
            Ok(Some((n, code))) if n.has_fingerprint(&req.fingerprint) && code == req.code_sha256 => {
                return Some(Published { version: n.version, arn: n.arn, code_sha256: code });
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
    None
}

/// Lambda must have stored exactly the local zip.
pub fn verify(p: &Published, local_code_sha256: &str) -> Result<()> {
    if p.code_sha256 != local_code_sha256 {
        bail!(
            "{} holds CodeSha256 {:?} but the local zip has {local_code_sha256}: the S3 object differs from dist/",
            p.arn,
            p.code_sha256
        );
    }
    Ok(())
}

/// Deletes a version whose content is not the local zip (its Description carries the
/// fingerprint, so leaving it would make it look current), and returns `err` saying so.
pub async fn withdraw(c: &Clients, req: &Request, p: &Published, err: anyhow::Error) -> anyhow::Error {
    let deleted = c.lambda.delete_layer_version().layer_name(&req.layer_name).version_number(p.version).send().await;
    let fix = format!("delete s3://{}/{} and rerun", req.bucket, req.key);
    match deleted {
        Ok(_) => anyhow::anyhow!("{err:#}; version {} was deleted again: {fix}", p.version),
        Err(e) => anyhow::anyhow!(
            "{err:#}; {}; {fix}",
            c.target.explain(&format!("deleting version {} failed too", p.version), e)
        ),
    }
}

/// Who a layer's versions are shared with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sharing {
    pub public: bool,
    pub accounts: Vec<String>,
    pub organization: Option<String>,
}

/// One permission statement: its id, principal and optional organization.
struct Grant {
    sid: String,
    principal: String,
    organization: Option<String>,
}

impl Sharing {
    pub fn is_empty(&self) -> bool {
        !self.public && self.accounts.is_empty() && self.organization.is_none()
    }

    fn grants(&self) -> Vec<Grant> {
        let mut out = Vec::new();
        if self.public {
            out.push(Grant { sid: "public".into(), principal: "*".into(), organization: None });
        }
        for a in &self.accounts {
            out.push(Grant { sid: format!("account-{a}"), principal: a.clone(), organization: None });
        }
        if let Some(o) = &self.organization {
            out.push(Grant { sid: format!("org-{o}"), principal: "*".into(), organization: Some(o.clone()) });
        }
        out
    }
}

/// Adds the statements of `sharing` that version `version` lacks (all of them for a new
/// version; the missing ones when an earlier run stopped between publish and share).
pub async fn share(c: &Clients, layer_name: &str, version: i64, sharing: &Sharing, fresh: bool) -> Result<()> {
    if sharing.is_empty() {
        return Ok(());
    }
    let present = if fresh { Vec::new() } else { statement_ids(c, layer_name, version).await? };
    for g in sharing.grants().into_iter().filter(|g| !present.contains(&g.sid)) {
        let what = format!("cannot share version {version} of layer {layer_name} in {} ({})", c.target.region, g.sid);
        let res = c
            .lambda
            .add_layer_version_permission()
            .layer_name(layer_name)
            .version_number(version)
            .statement_id(&g.sid)
            .action("lambda:GetLayerVersion")
            .principal(&g.principal)
            .set_organization_id(g.organization.clone())
            .send()
            .await;
        match res {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_conflict_exception()) => {}
            Err(e) => return Err(c.target.explain(&what, e)),
        }
    }
    Ok(())
}

/// The statement ids of a version's policy; none when it has no policy.
async fn statement_ids(c: &Clients, layer_name: &str, version: i64) -> Result<Vec<String>> {
    let res = c.lambda.get_layer_version_policy().layer_name(layer_name).version_number(version).send().await;
    let policy = match res {
        Ok(o) => o.policy().unwrap_or_default().to_string(),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(Vec::new()),
        Err(e) => {
            let what =
                format!("cannot read the policy of version {version} of layer {layer_name} in {}", c.target.region);
            return Err(c.target.explain(&what, e));
        }
    };
    Ok(sids(&policy))
}

fn sids(policy: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(policy).unwrap_or_default();
    let statements = v["Statement"].as_array().cloned().unwrap_or_default();
    statements.iter().filter_map(|s| s["Sid"].as_str().map(str::to_string)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_public_accounts_and_organization() {
        let s = Sharing { public: true, accounts: vec!["111122223333".into()], organization: Some("o-abc".into()) };
        let g = s.grants();
        let ids: Vec<&str> = g.iter().map(|g| g.sid.as_str()).collect();
        assert_eq!(ids, ["public", "account-111122223333", "org-o-abc"]);
        assert_eq!(g[2].principal, "*");
        assert!(Sharing::default().is_empty());
    }

    #[test]
    fn statement_ids_are_read_from_the_policy() {
        let p = r#"{"Version":"2012-10-17","Statement":[{"Sid":"public","Effect":"Allow"},{"Effect":"Allow"}]}"#;
        assert_eq!(sids(p), vec!["public"]);
        assert!(sids("not json").is_empty());
    }

    #[test]
    fn a_different_code_sha256_is_an_error() {
        let p = Published { version: 3, arn: "arn:x:3".into(), code_sha256: "AAA=".into() };
        verify(&p, "AAA=").unwrap();
        let err = verify(&p, "BBB=").unwrap_err().to_string();
        assert!(err.contains("arn:x:3") && err.contains("BBB="), "{err}");
    }
}
