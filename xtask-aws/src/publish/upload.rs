//! Uploading a zip to its content-addressed S3 key, once, in one call: a PutObject with
//! `If-None-Match: *`, so an object already there (an earlier run that failed later, or
//! this upload's own retry after a lost answer) is reused, never overwritten, and no
//! HeadObject is needed first.

use std::path::Path;

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;

use crate::aws::{self, policy, Clients};

/// Whether the zip was sent or an earlier upload was reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    Sent,
    Reused,
}

/// Uploads `zip` to `s3://bucket/key` unless an object is already there. No ACL is set:
/// Lambda reads the object with the publisher's own rights. The attempt's timeout grows
/// with `size` (`policy::upload`). Lambda checks what it read: the version's CodeSha256
/// must be the local zip's (`register::verify`).
pub async fn upload(c: &Clients, bucket: &str, key: &str, zip: &Path, size: u64) -> Result<Upload> {
    let url = format!("s3://{bucket}/{key}");
    let body = ByteStream::from_path(zip).await.with_context(|| format!("cannot read {}", zip.display()))?;
    let sent =
        c.s3.put_object()
            .bucket(bucket)
            .key(key)
            .if_none_match("*")
            .content_type("application/zip")
            .body(body)
            .customize()
            .config_override(policy::upload(&c.timeouts, size))
            .send()
            .await;
    match sent {
        Ok(_) => Ok(Upload::Sent),
        // 412: the condition failed, the object is there.
        Err(e) if aws::status(&e) == Some(412) => Ok(Upload::Reused),
        Err(e) => Err(c.target.explain(&format!("cannot upload {url}"), e)),
    }
}
