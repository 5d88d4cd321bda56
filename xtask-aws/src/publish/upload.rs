//! Uploading a zip to its content-addressed S3 key, once: an object already there with
//! the same size (an earlier run that failed later) is reused, never overwritten.

use std::path::Path;

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;

use crate::aws::{self, Clients};

/// Whether the zip was sent or an earlier upload was reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    Sent,
    Reused,
}

/// Uploads `zip` to `s3://bucket/key` unless an object of the same size is already there.
/// No ACL is set: Lambda reads the object with the publisher's own rights.
pub async fn upload(c: &Clients, bucket: &str, key: &str, zip: &Path, size: u64) -> Result<Upload> {
    let url = format!("s3://{bucket}/{key}");
    if existing_size(c, bucket, key).await? == Some(size) {
        return Ok(Upload::Reused);
    }
    let body = ByteStream::from_path(zip).await.with_context(|| format!("cannot read {}", zip.display()))?;
    c.s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/zip")
        .body(body)
        .send()
        .await
        .map_err(|e| c.target.explain(&format!("cannot upload {url}"), e))?;
    Ok(Upload::Sent)
}

/// Uploads a small file (the SBOM) to `s3://bucket/key`, replacing what is there: its
/// key is its zip's, which is content-addressed, so the same key gets the same SBOM.
pub async fn upload_file(c: &Clients, bucket: &str, key: &str, path: &Path, content_type: &str) -> Result<()> {
    let url = format!("s3://{bucket}/{key}");
    let body = ByteStream::from_path(path).await.with_context(|| format!("cannot read {}", path.display()))?;
    c.s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(body)
        .send()
        .await
        .map_err(|e| c.target.explain(&format!("cannot upload {url}"), e))?;
    Ok(())
}

/// The size of the object at `key`, if there is one. Without `s3:ListBucket` S3 answers
/// a missing key with 403 rather than 404: then the upload is tried and speaks for itself.
async fn existing_size(c: &Clients, bucket: &str, key: &str) -> Result<Option<u64>> {
    match c.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(o) => Ok(o.content_length().map(|l| l as u64)),
        Err(e) if matches!(aws::status(&e), Some(404 | 403)) => Ok(None),
        Err(e) => Err(c.target.explain(&format!("cannot check s3://{bucket}/{key}"), e)),
    }
}
