//! A region's bucket before anything is written to it (a zip, or the publish lock): it
//! exists, in that region, and the credentials may use it; each failure says to run
//! `cargo xtask bootstrap`. Creating it is `bootstrap`'s.

use anyhow::Result;

use super::{status, Clients};

/// Checks that the bucket exists and is ours to write, before anything is uploaded.
pub async fn check(c: &Clients, bucket: &str) -> Result<()> {
    let t = &c.target;
    let bootstrap = t.bootstrap_command();
    match c.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => match status(&e) {
            Some(404) => anyhow::bail!("bucket `{bucket}` does not exist in {}: create it with `{bootstrap}`", t.region),
            Some(403) => anyhow::bail!(
                "bucket `{bucket}` is not accessible to {} (it may belong to another account): grant access, or choose another bucket in layers.toml and run `{bootstrap}`",
                t.who()
            ),
            Some(301) => anyhow::bail!(
                "bucket `{bucket}` is not in {}: Lambda reads a layer's zip only from a bucket in the same region; use a bucket per region (bucket = \"NAME-{{region}}\") and run `{bootstrap}`",
                t.region
            ),
            _ => Err(t.explain(&format!("cannot check bucket `{bucket}`"), e)),
        },
    }
}
