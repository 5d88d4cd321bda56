//! `bootstrap`: the bucket of each of a profile's regions, created when missing, with
//! every kind of public access blocked and default encryption (SSE-S3, AES256) on.

use anyhow::{bail, Result};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};

use crate::aws::{self, confirm, Clients, Session};
use xtask::profile::naming;
use xtask::unit::Context;

/// One region's bucket after bootstrap.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BucketRow {
    pub region: String,
    pub bucket: String,
    /// Whether this run created it (false: it already existed).
    pub created: bool,
}

pub async fn bootstrap(ctx: &Context, profile: &str, yes: bool) -> Result<Vec<BucketRow>> {
    confirm::profile(profile, ctx.config.profile(profile)?, yes)?;
    let session = Session::open(ctx, profile).await?;
    session.check_identity().await?;
    let mut rows = Vec::new();
    for c in &session.clients {
        let bucket = naming::bucket(&session.profile, &c.target.region);
        let created = ensure_bucket(c, &bucket).await?;
        secure(c, &bucket).await?;
        rows.push(BucketRow { region: c.target.region.clone(), bucket, created });
    }
    Ok(rows)
}

/// Creates the bucket unless it is already ours; true when created.
async fn ensure_bucket(c: &Clients, bucket: &str) -> Result<bool> {
    let t = &c.target;
    match c.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(false),
        Err(e) => match aws::status(&e) {
            Some(404) => {}
            Some(403) => bail!("bucket `{bucket}` exists but is not accessible to {}: it may belong to another account; choose another bucket name in layers.toml", t.who()),
            Some(301) => bail!("bucket `{bucket}` exists in another region than {}: choose another bucket name in layers.toml", t.region),
            _ => return Err(t.explain(&format!("cannot check bucket `{bucket}`"), e)),
        },
    }
    let mut req = c.s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that must not be named as a location constraint.
    if t.region != "us-east-1" {
        let loc = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(t.region.as_str()))
            .build();
        req = req.create_bucket_configuration(loc);
    }
    req.send().await.map_err(|e| t.explain(&format!("cannot create bucket `{bucket}` in {}", t.region), e))?;
    Ok(true)
}

/// Blocks public access and turns on default encryption; both are idempotent.
async fn secure(c: &Clients, bucket: &str) -> Result<()> {
    let t = &c.target;
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    c.s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(block)
        .send()
        .await
        .map_err(|e| t.explain(&format!("cannot block public access to bucket `{bucket}`"), e))?;
    let by_default = ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256).build()?;
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build();
    let sse = ServerSideEncryptionConfiguration::builder().rules(rule).build()?;
    c.s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(sse)
        .send()
        .await
        .map_err(|e| t.explain(&format!("cannot turn on default encryption for bucket `{bucket}`"), e))?;
    Ok(())
}
