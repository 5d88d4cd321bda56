//! Change detection against what Lambda holds: the newest version of a layer, whether its
//! Description carries the local fingerprint, and its CodeSha256.

use anyhow::{Context, Result};

use crate::aws::Clients;
use xtask::profile::naming;

/// The newest version of a layer, as ListLayerVersions reports it.
#[derive(Debug, Clone)]
pub struct Newest {
    pub version: i64,
    pub arn: String,
    pub description: String,
    /// Lambda's CreatedDate, e.g. `2024-05-01T10:00:00.000+0000`.
    pub created: String,
}

impl Newest {
    pub fn has_fingerprint(&self, fingerprint: &str) -> bool {
        naming::has_fingerprint(&self.description, fingerprint)
    }
}

/// The newest version of `layer_name` in the clients' region, if any.
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
                best = Some(Newest {
                    version: v.version(),
                    arn: v.layer_version_arn().unwrap_or_default().to_string(),
                    description: v.description().unwrap_or_default().to_string(),
                    created: v.created_date().unwrap_or_default().to_string(),
                });
            }
        }
    }
    Ok(best)
}

/// The CodeSha256 (base64) of one version.
pub async fn code_sha256(c: &Clients, layer_name: &str, version: i64) -> Result<String> {
    let what = format!("cannot read version {version} of layer {layer_name} in {}", c.target.region);
    let out = c
        .lambda
        .get_layer_version()
        .layer_name(layer_name)
        .version_number(version)
        .send()
        .await
        .map_err(|e| c.target.explain(&what, e))?;
    out.content()
        .and_then(|c| c.code_sha256())
        .map(str::to_string)
        .with_context(|| format!("{what}: Lambda returned no CodeSha256"))
}
