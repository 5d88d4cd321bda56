//! Change detection against what a region holds, in calls that grow with the region and
//! its pages, never with the number of layers: one ListLayers listing (each layer with
//! its newest version and Description) and one listing of the publish records in S3
//! (`records.rs`, strongly consistent) per region. For every layer name, [`Listing`]
//! knows the newest version either tells, whether it carries a fingerprint, and its
//! CodeSha256 when a record gives it.
//!
//! [`newest`] (ListLayerVersions of one layer) stays for the places that need one layer's
//! full list: adopting a version whose publish answer was lost.

use std::collections::HashMap;

use anyhow::{Context, Result};

use crate::aws::identity::Identity;
use crate::aws::Clients;
use crate::records::{self, Record};
use xtask::profile::naming;

/// How long a record may be missing from Lambda's lists before the version it names is
/// taken as deleted outside this tool (AWS does not document how long its lists lag;
/// this is far beyond the seconds seen).
pub const LIST_LAG_TRUST_SECS: i64 = 15 * 60;

/// The newest version of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub version: i64,
    pub arn: String,
    /// Lambda's Description, when a list told it (empty otherwise).
    pub description: String,
    /// Lambda's CreatedDate (`2024-05-01T10:00:00.000+0000`), or the record's time.
    pub created: String,
    /// The version's CodeSha256, when a record told it.
    pub code_sha256: Option<String>,
    /// The record of this version, when there is one.
    pub record: Option<Record>,
}

impl Newest {
    pub fn has_fingerprint(&self, fingerprint: &str) -> bool {
        self.record.as_ref().is_some_and(|r| r.fingerprint == fingerprint)
            || naming::has_fingerprint(&self.description, fingerprint)
    }
}

/// What one region holds: the newest version of every layer name it lists or records.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    newest: HashMap<String, Newest>,
    /// The unfinished-run markers found with the records (`records::unfinished_key`).
    pub unfinished: Vec<String>,
}

impl Listing {
    pub fn get(&self, layer_name: &str) -> Option<&Newest> {
        self.newest.get(layer_name)
    }

    /// Adds one version the region holds; the newer of two wins, and two tellings of the
    /// same version are merged (a list's Description, a record's CodeSha256).
    pub fn add(&mut self, layer_name: &str, n: Newest) {
        match self.newest.get_mut(layer_name) {
            Some(have) if have.version > n.version => {}
            Some(have) if have.version == n.version => {
                if have.description.is_empty() {
                    have.description = n.description;
                }
                have.code_sha256 = have.code_sha256.take().or(n.code_sha256);
                have.record = have.record.take().or(n.record);
            }
            _ => {
                self.newest.insert(layer_name.to_string(), n);
            }
        }
    }

    /// Adds the records of a region, newest version per layer name; a record whose version
    /// the list does not show although it is older than [`LIST_LAG_TRUST_SECS`] names a
    /// version deleted outside this tool, and is left out.
    pub fn add_records(&mut self, region: &str, who: &Identity, records: Vec<Record>, now_secs: i64) {
        let mut newest: HashMap<String, Record> = HashMap::new();
        for r in records {
            if newest.get(&r.layer_name).is_none_or(|have| have.version < r.version) {
                newest.insert(r.layer_name.clone(), r);
            }
        }
        for (name, r) in newest {
            let listed = self.newest.get(&name).map(|n| n.version);
            let old = r.stored_secs.is_some_and(|s| now_secs - s > LIST_LAG_TRUST_SECS);
            if old && listed.is_none_or(|v| v < r.version) {
                continue;
            }
            let n = Newest {
                version: r.version,
                arn: who.layer_version_arn(region, &name, r.version),
                description: String::new(),
                created: r.stored_at.clone().unwrap_or_default(),
                code_sha256: r.code_sha256(),
                record: Some(r),
            };
            self.add(&name, n);
        }
    }
}

/// What a region holds: every layer's newest version (ListLayers, all pages) and the
/// publish records in the bucket.
pub async fn list_region(c: &Clients, who: &Identity, bucket: &str, prefix: &str) -> Result<Listing> {
    let (listed, recorded) = tokio::join!(list_layers(c), records::list_all(c, bucket, prefix));
    let (mut l, recorded) = (listed?, recorded?);
    l.unfinished = recorded.unfinished;
    l.add_records(&c.target.region, who, recorded.records, now_secs());
    Ok(l)
}

/// The records of a region again (under the lock: what a racing run published since).
pub async fn refresh_records(c: &Clients, who: &Identity, bucket: &str, prefix: &str, l: &mut Listing) -> Result<()> {
    let recorded = records::list_all(c, bucket, prefix).await?;
    l.unfinished = recorded.unfinished;
    l.add_records(&c.target.region, who, recorded.records, now_secs());
    Ok(())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Every layer of the region with its newest version (ListLayers, 50 a page).
async fn list_layers(c: &Clients) -> Result<Listing> {
    let what = || format!("cannot list the layers in {}", c.target.region);
    let mut pages = c.lambda.list_layers().into_paginator().send();
    let mut out = Listing::default();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| c.target.explain(&what(), e))?;
        for l in page.layers() {
            // A layer whose versions were all deleted has no name or version.
            let (Some(name), Some(v)) = (l.layer_name(), l.latest_matching_version()) else { continue };
            out.add(name, listed(v));
        }
    }
    Ok(out)
}

/// A version as a Lambda list shows it (ListLayers' newest, or one of ListLayerVersions').
fn listed(v: &aws_sdk_lambda::types::LayerVersionsListItem) -> Newest {
    Newest {
        version: v.version(),
        arn: v.layer_version_arn().unwrap_or_default().to_string(),
        description: v.description().unwrap_or_default().to_string(),
        created: v.created_date().unwrap_or_default().to_string(),
        code_sha256: None,
        record: None,
    }
}

/// The newest version of `layer_name` in the clients' region, if any, by
/// ListLayerVersions (every page).
pub async fn newest(c: &Clients, layer_name: &str) -> Result<Option<Newest>> {
    let what = || format!("cannot list the versions of layer {layer_name} in {}", c.target.region);
    let mut pages = c.lambda.list_layer_versions().layer_name(layer_name).into_paginator().send();
    let mut best: Option<Newest> = None;
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            // A layer that never existed is reported as an empty list, but be lenient.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(c.target.explain(&what(), e)),
        };
        for v in page.layer_versions() {
            if best.as_ref().is_none_or(|b| v.version() > b.version) {
                best = Some(listed(v));
            }
        }
    }
    Ok(best)
}

/// One version as GetLayerVersion tells it (a direct read, taken as consistent right
/// after a publish; the lists may lag), or `None` when there is no such version.
pub async fn version(c: &Clients, layer_name: &str, version: i64) -> Result<Option<(Newest, String)>> {
    let what = format!("cannot read version {version} of layer {layer_name} in {}", c.target.region);
    let out = match c.lambda.get_layer_version().layer_name(layer_name).version_number(version).send().await {
        Ok(o) => o,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
        Err(e) => return Err(c.target.explain(&what, e)),
    };
    let code = out.content().and_then(|c| c.code_sha256()).map(str::to_string);
    let code = code.with_context(|| format!("{what}: Lambda returned no CodeSha256"))?;
    let n = Newest {
        version: out.version(),
        arn: out.layer_version_arn().unwrap_or_default().to_string(),
        description: out.description().unwrap_or_default().to_string(),
        created: out.created_date().unwrap_or_default().to_string(),
        code_sha256: Some(code.clone()),
        record: None,
    };
    Ok(Some((n, code)))
}

/// The CodeSha256 (base64) of one version.
pub async fn code_sha256(c: &Clients, layer_name: &str, v: i64) -> Result<String> {
    match version(c, layer_name, v).await? {
        Some((_, code)) => Ok(code),
        None => anyhow::bail!("version {v} of layer {layer_name} in {} does not exist", c.target.region),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "00ff";
    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn listed(version: i64, description: &str) -> Newest {
        Newest {
            version,
            arn: format!("arn:aws:lambda:r:123456789012:layer:l:{version}"),
            description: description.into(),
            created: String::new(),
            code_sha256: None,
            record: None,
        }
    }

    fn record(version: i64, stored_secs: i64) -> Record {
        let mut r = records::parse("", &records::key("", "l", version, FP, SHA)).unwrap();
        r.stored_secs = Some(stored_secs);
        r
    }

    fn who() -> Identity {
        Identity { partition: "aws".into(), account: "123456789012".into() }
    }

    #[test]
    fn a_record_the_lagging_list_does_not_show_yet_is_the_newest() {
        let mut l = Listing::default();
        l.add("l", listed(1, "fp:old"));
        l.add_records("r", &who(), vec![record(1, 1_000), record(2, 1_000)], 1_010);
        let n = l.get("l").unwrap();
        assert_eq!((n.version, n.has_fingerprint(FP)), (2, true));
        assert_eq!(n.arn, "arn:aws:lambda:r:123456789012:layer:l:2");
        assert!(n.code_sha256.is_some());
    }

    #[test]
    fn a_list_and_a_record_of_one_version_are_merged_and_a_newer_list_wins() {
        let mut l = Listing::default();
        l.add("l", listed(2, "numpy fp:other"));
        l.add_records("r", &who(), vec![record(2, 1_000)], 1_010);
        let n = l.get("l").unwrap();
        assert_eq!((n.version, n.description.as_str(), n.code_sha256.is_some()), (2, "numpy fp:other", true));
        let mut l = Listing::default();
        l.add("l", listed(3, "fp:other"));
        l.add_records("r", &who(), vec![record(2, 1_000)], 1_010);
        assert_eq!(l.get("l").unwrap().version, 3);
        assert!(!l.get("l").unwrap().has_fingerprint(FP));
    }

    #[test]
    fn an_old_record_of_a_version_lambda_no_longer_lists_is_left_out() {
        let now = 100_000;
        let mut l = Listing::default();
        l.add("l", listed(1, "fp:old"));
        l.add_records("r", &who(), vec![record(2, now - LIST_LAG_TRUST_SECS - 1)], now);
        assert_eq!(l.get("l").unwrap().version, 1);
        let mut gone = Listing::default();
        gone.add_records("r", &who(), vec![record(2, now - LIST_LAG_TRUST_SECS - 1)], now);
        assert!(gone.get("l").is_none());
    }
}
