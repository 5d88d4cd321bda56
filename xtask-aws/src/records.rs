//! What this tool published, recorded where reads are strongly consistent: one object per
//! published layer version in the region's bucket, written right after
//! PublishLayerVersion returns, under the publish lock.
//!
//! Lambda's lists (ListLayers, ListLayerVersions) are eventually consistent: a version
//! published a moment ago may be missing from them, and deciding from them alone
//! publishes it again. S3 is read-after-write consistent, so a run reads the records of a
//! region (one ListObjectsV2 page per 1,000 versions) before it decides, and again under
//! the lock; the Lambda list stays the fallback for versions other tools published.
//!
//! The key says everything a run needs, so no record is ever read back:
//! `PREFIX/.records/<layer name>/<version, 10 digits>.<fingerprint>.<zip sha256 hex>.cdx.json`.
//! The object is the version's CycloneDX SBOM (`xtask::sbom`), whose metadata names the
//! layer version ARN, region and CodeSha256 it describes: one object per version that is
//! both the record and the SBOM (`sbom_key` in the manifest names it).

use anyhow::Result;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::aws::Clients;

/// The folder of the records under the profile's prefix.
const FOLDER: &str = ".records";

/// One record, as its key tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub layer_name: String,
    pub version: i64,
    pub fingerprint: String,
    /// The zip's SHA-256, hex.
    pub sha256: String,
    /// When S3 stored it: RFC 3339 to the second (from the listing's LastModified).
    pub stored_at: Option<String>,
    /// Seconds since 1970 of `stored_at`.
    pub stored_secs: Option<i64>,
}

impl Record {
    /// Lambda's CodeSha256 of the version: the base64 of the zip's SHA-256.
    pub fn code_sha256(&self) -> Option<String> {
        let bytes: Option<Vec<u8>> = (0..self.sha256.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(self.sha256.get(i..i + 2)?, 16).ok())
            .collect();
        bytes.filter(|b| b.len() == 32).map(|b| base64::engine::general_purpose::STANDARD.encode(b))
    }
}

fn folder(prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{FOLDER}/")
    } else {
        format!("{prefix}/{FOLDER}/")
    }
}

/// The key of a version's record.
pub fn key(prefix: &str, layer_name: &str, version: i64, fingerprint: &str, sha256: &str) -> String {
    format!("{}{layer_name}/{version:010}.{fingerprint}.{sha256}.cdx.json", folder(prefix))
}

/// The record a key names, or `None` for anything else under the folder.
pub fn parse(prefix: &str, key: &str) -> Option<Record> {
    let rest = key.strip_prefix(&folder(prefix))?;
    let (layer_name, file) = rest.split_once('/')?;
    let stem = file.strip_suffix(".cdx.json")?;
    let mut parts = stem.split('.');
    let (version, fingerprint, sha256) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.next().is_some() || layer_name.is_empty() || !hex(fingerprint) || sha256.len() != 64 || !hex(sha256) {
        return None;
    }
    Some(Record {
        key: key.to_string(),
        layer_name: layer_name.to_string(),
        version: version.parse().ok().filter(|v| *v > 0)?,
        fingerprint: fingerprint.to_string(),
        sha256: sha256.to_string(),
        stored_at: None,
        stored_secs: None,
    })
}

/// The marker of a publishing run of `profile` in a region, under the records' folder (so
/// the listing that reads the records sees it): written once the run holds the lock and
/// before it publishes, deleted when every target of the region ended well. A marker left
/// behind says the last run was killed or failed half-way: a version it published may
/// have no record yet, so the next run reads the version numbers after the newest known
/// one before it publishes a target (`register::find`).
pub fn unfinished_key(prefix: &str, profile: &str, region: &str) -> String {
    format!("{}.unfinished/{profile}.{region}", folder(prefix))
}

/// What a listing of the records found.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub records: Vec<Record>,
    /// The keys of the unfinished-run markers ([`unfinished_key`]).
    pub unfinished: Vec<String>,
}

/// Every record in the bucket under the prefix and the unfinished-run markers. A bucket
/// that does not exist yet holds none.
pub async fn list_all(c: &Clients, bucket: &str, prefix: &str) -> Result<Listed> {
    let under = folder(prefix);
    let mut out = Listed::default();
    let markers = format!("{under}.unfinished/");
    for (key, secs) in list_keys(c, bucket, &under).await? {
        if key.starts_with(&markers) {
            out.unfinished.push(key);
        } else if let Some(mut r) = parse(prefix, &key) {
            r.stored_secs = secs;
            r.stored_at = secs.map(xtask::profile::manifest::rfc3339);
            out.records.push(r);
        }
    }
    Ok(out)
}

/// Marks a publishing run of `profile` in the region as under way.
pub async fn mark_unfinished(c: &Clients, bucket: &str, key: &str, holder: &str) -> Result<()> {
    c.s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("text/plain")
        .body(ByteStream::from(holder.as_bytes().to_vec()))
        .send()
        .await
        .map_err(|e| c.target.explain(&format!("cannot write s3://{bucket}/{key}"), e))?;
    Ok(())
}

/// Removes the marker once the region's targets all ended well.
pub async fn mark_finished(c: &Clients, bucket: &str, key: &str) -> Result<()> {
    c.s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| c.target.explain(&format!("cannot delete s3://{bucket}/{key}"), e))?;
    Ok(())
}

/// The keys under `under` with their LastModified seconds, every page.
async fn list_keys(c: &Clients, bucket: &str, under: &str) -> Result<Vec<(String, Option<i64>)>> {
    let what = || format!("cannot list the publish records s3://{bucket}/{under} in {}", c.target.region);
    let mut pages = c.s3.list_objects_v2().bucket(bucket).prefix(under).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_bucket()) => return Ok(Vec::new()),
            Err(e) => return Err(c.target.explain(&what(), e)),
        };
        for o in page.contents() {
            if let Some(k) = o.key() {
                out.push((k.to_string(), o.last_modified().map(|t| t.secs())));
            }
        }
    }
    Ok(out)
}

/// The records of one layer name, oldest version first.
pub async fn list(c: &Clients, bucket: &str, prefix: &str, layer_name: &str) -> Result<Vec<Record>> {
    let under = format!("{}{layer_name}/", folder(prefix));
    Ok(list_keys(c, bucket, &under).await?.into_iter().filter_map(|(k, _)| parse(prefix, &k)).collect())
}

/// What a record says beyond its key: the SBOM of the build, with the version it became.
pub struct Published<'a> {
    pub arn: &'a str,
    pub region: &'a str,
    pub code_sha256: &'a str,
    pub published_at: &'a str,
}

/// The record's body: the build's SBOM, its metadata naming the published version.
pub fn body(sbom: Option<Value>, p: &Published) -> Vec<u8> {
    let mut doc = sbom.unwrap_or_else(
        || json!({ "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "metadata": {}, "components": [] }),
    );
    let props = [
        ("xtask:layer_version_arn", p.arn),
        ("xtask:region", p.region),
        ("xtask:code_sha256", p.code_sha256),
        ("xtask:published_at", p.published_at),
    ];
    let props: Vec<Value> = props.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect();
    if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("properties".into(), Value::Array(props));
    }
    serde_json::to_vec_pretty(&doc).expect("JSON always serialises")
}

/// Writes a record. It is idempotent (the same key gets the same facts), so the SDK's
/// retries may repeat it.
pub async fn write(c: &Clients, bucket: &str, key: &str, body: Vec<u8>) -> Result<()> {
    c.s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/vnd.cyclonedx+json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| c.target.explain(&format!("cannot write the publish record s3://{bucket}/{key}"), e))?;
    Ok(())
}

/// What the version a record (or, for a version published before records, the SBOM beside
/// its zip) describes: its packages and size. `None` when there is neither, or it cannot be
/// read: a change summary is a courtesy, never a reason to fail.
pub async fn held(
    c: &Clients,
    bucket: &str,
    prefix: &str,
    layer_name: &str,
    record: Option<&Record>,
    code_sha256: Option<&str>,
) -> Option<xtask::profile::changes::Held> {
    let key = match (record, code_sha256) {
        (Some(r), _) => r.key.clone(),
        (None, Some(code)) => {
            let raw = base64::engine::general_purpose::STANDARD.decode(code).ok()?;
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            xtask::profile::naming::sbom_key(&xtask::profile::naming::s3_key(prefix, layer_name, &hex))
        }
        (None, None) => return None,
    };
    let got = c.s3.get_object().bucket(bucket).key(&key).send().await.ok()?;
    let bytes = got.body.collect().await.ok()?.into_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    xtask::profile::changes::Held::from_sbom(&doc)
}

/// Deletes the records of one version (prune deletes the version first).
pub async fn delete_version(c: &Clients, bucket: &str, prefix: &str, layer_name: &str, version: i64) -> Result<()> {
    for r in list(c, bucket, prefix, layer_name).await?.into_iter().filter(|r| r.version == version) {
        c.s3.delete_object()
            .bucket(bucket)
            .key(&r.key)
            .send()
            .await
            .map_err(|e| c.target.explain(&format!("cannot delete the publish record s3://{bucket}/{}", r.key), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "0123456789abcdef";
    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn keys_round_trip_and_sort_by_version() {
        let k = key("layers/", "six-py313-x86_64", 12, FP, SHA);
        assert_eq!(k, format!("layers/.records/six-py313-x86_64/0000000012.{FP}.{SHA}.cdx.json"));
        let r = parse("layers", &k).unwrap();
        assert_eq!((r.layer_name.as_str(), r.version, r.fingerprint.as_str()), ("six-py313-x86_64", 12, FP));
        assert!(key("", "a", 9, FP, SHA) < key("", "a", 10, FP, SHA));
        assert_eq!(key("", "a", 1, FP, SHA), format!(".records/a/0000000001.{FP}.{SHA}.cdx.json"));
        // The empty file's SHA-256 in base64, as Lambda's CodeSha256 says it.
        assert_eq!(r.code_sha256().unwrap(), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn other_objects_are_not_records() {
        for k in [
            "layers/six/abc.zip",
            &format!("layers/.records/six/0000000001.{FP}.cdx.json"),
            &format!("layers/.records/six/0000000000.{FP}.{SHA}.cdx.json"),
            &format!("layers/.records/six/x.{FP}.{SHA}.cdx.json"),
            &format!("layers/.records/six/0000000001.{FP}.{SHA}.json"),
            &format!("other/.records/six/0000000001.{FP}.{SHA}.cdx.json"),
        ] {
            assert!(parse("layers", k).is_none(), "{k}");
        }
    }

    #[test]
    fn the_body_is_the_sbom_naming_the_version() {
        let p = Published {
            arn: "arn:aws:lambda:eu-west-1:123456789012:layer:six:3",
            region: "eu-west-1",
            code_sha256: "abc=",
            published_at: "2026-12-03T10:00:00Z",
        };
        let sbom =
            json!({ "bomFormat": "CycloneDX", "metadata": { "component": { "name": "six" } }, "components": [1] });
        let v: Value = serde_json::from_slice(&body(Some(sbom), &p)).unwrap();
        assert_eq!(v["components"], json!([1]));
        assert_eq!(v["metadata"]["component"]["name"], "six");
        assert_eq!(v["metadata"]["properties"][0]["value"], p.arn);
        let bare: Value = serde_json::from_slice(&body(None, &p)).unwrap();
        assert_eq!(bare["bomFormat"], "CycloneDX");
        assert_eq!(bare["metadata"]["properties"][2]["value"], "abc=");
    }
}
