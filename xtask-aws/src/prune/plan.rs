//! What prune keeps and what it deletes: every version of the repo's layers in a
//! profile's regions, each kept with why (one of the N newest, named by a manifest,
//! attached by a function, restored by the last rollout's `--undo`) or deleted with its
//! S3 object (unless a kept version shares the content-addressed zip), and the code
//! storage it frees (its CodeSize).

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};

use super::{Action, Row};
use crate::aws::{bounded, Clients, Session};
use crate::rollout::record::{Record, SUFFIX as RECORD_SUFFIX};
use xtask::profile::manifest::Manifest;
use xtask::profile::naming;
use xtask::unit::Unit;

/// Every version of the repo's layers in the profile's regions, each to keep (with why) or
/// to delete (with its S3 object).
pub(super) async fn plan(
    session: &Session,
    units: &[Unit],
    published: &std::path::Path,
    keep: usize,
) -> Result<Vec<Row>> {
    let protected = protected_arns(published)?;
    let attached = attached_versions(session).await?;

    // Each layer name once per region (a `layer_name` without {py} or {arch} is shared).
    let mut targets: BTreeMap<(usize, String), String> = BTreeMap::new();
    for u in units {
        let layer_name = naming::layer_name(&session.profile.layer_name, &u.layer.name, u.runtime, u.arch)?;
        for region in 0..session.clients.len() {
            // A region named twice in the profile is pruned once.
            let name = &session.clients[region].target.region;
            if session.clients[..region].iter().any(|c| &c.target.region == name) {
                continue;
            }
            targets.entry((region, layer_name.clone())).or_insert_with(|| u.layer.name.clone());
        }
    }
    let targets: Vec<((usize, String), String)> = targets.into_iter().collect();
    let futures: Vec<_> = targets
        .iter()
        .map(|((region, name), _)| {
            let (c, name) = (session.clients[*region].clone(), name.clone());
            async move { list_versions(&c, &name).await }
        })
        .collect();
    let listed = bounded(8, futures).await;
    let mut rows = Vec::new();
    for (((region, layer_name), layer), versions) in targets.iter().zip(listed) {
        let region = &session.clients[*region].target.region;
        for (version, arn, reason) in decide(&versions?, keep, &protected, &attached) {
            let action = if reason.is_some() { Action::Keep } else { Action::Delete };
            rows.push(Row {
                layer: layer.clone(),
                region: region.clone(),
                layer_name: layer_name.clone(),
                version,
                arn,
                action,
                reason,
                object: None,
                code_size: None,
            });
        }
    }
    let objects = plan_objects(session, &rows).await?;
    for r in &mut rows {
        if let Some((object, size)) = objects.get(&(r.region.clone(), r.layer_name.clone(), r.version)) {
            r.object = object.clone();
            r.code_size = Some(*size);
        }
    }
    Ok(rows)
}

/// Every layer version ARN a function of the profile's regions attaches, with the
/// functions attaching it.
async fn attached_versions(session: &Session) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &session.clients {
        for (name, arns) in crate::rollout::usage::list_function_versions(c).await? {
            for arn in arns {
                let names = out.entry(arn).or_default();
                if !names.contains(&name) {
                    names.push(name.clone());
                }
            }
        }
    }
    Ok(out)
}

/// For each version to delete: its S3 object (`s3://BUCKET/KEY` of its content-addressed
/// zip), or `None` with a note when a kept version of the same layer shares the content;
/// and its CodeSize (what deleting it frees of the region's code storage). Read
/// (GetLayerVersion: ListLayerVersions carries neither) only for layers that lose a
/// version.
async fn plan_objects(
    session: &Session,
    rows: &[Row],
) -> Result<BTreeMap<(String, String, i64), (Option<String>, u64)>> {
    let mut out = BTreeMap::new();
    let losing: std::collections::BTreeSet<(String, String)> =
        rows.iter().filter(|r| r.action == Action::Delete).map(|r| (r.region.clone(), r.layer_name.clone())).collect();
    for (region, layer_name) in losing {
        let Some(c) = session.clients.iter().find(|c| c.target.region == region) else { continue };
        let mut read: Vec<(i64, Action, Content)> = Vec::new();
        for r in rows.iter().filter(|r| r.region == region && r.layer_name == layer_name) {
            read.push((r.version, r.action, content(c, &layer_name, r.version).await?));
        }
        let bucket = naming::bucket(&session.profile, &region);
        for (version, _, content) in read.iter().filter(|s| s.1 == Action::Delete) {
            let object = match read.iter().find(|(_, a, s)| *a != Action::Delete && s.sha == content.sha) {
                Some((kept, _, _)) => Some(format!("kept: version {kept} has the same content")),
                None => hex_of_base64(&content.sha)
                    .map(|hex| format!("s3://{bucket}/{}", naming::s3_key(&session.profile.prefix, &layer_name, &hex))),
            };
            out.insert((region.clone(), layer_name.clone(), *version), (object, content.code_size));
        }
    }
    Ok(out)
}

/// What GetLayerVersion says of a version's zip.
struct Content {
    /// CodeSha256, base64.
    sha: String,
    /// CodeSize, bytes.
    code_size: u64,
}

async fn content(c: &Clients, layer_name: &str, version: i64) -> Result<Content> {
    let what = format!("cannot read version {version} of layer {layer_name} in {}", c.target.region);
    let out = c
        .lambda
        .get_layer_version()
        .layer_name(layer_name)
        .version_number(version)
        .send()
        .await
        .map_err(|e| c.target.explain(&what, e))?;
    let content = out.content().with_context(|| format!("{what}: Lambda returned no Content"))?;
    let sha = content.code_sha256().with_context(|| format!("{what}: Lambda returned no CodeSha256"))?;
    Ok(Content { sha: sha.to_string(), code_size: u64::try_from(content.code_size()).unwrap_or(0) })
}

/// A base64 SHA-256 (Lambda's CodeSha256) as hex (the S3 key's), if it is one.
fn hex_of_base64(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Every layer version ARN named by a manifest in `published/`, with the file naming it.
fn protected_arns(published: &std::path::Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(published) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", published.display())),
    };
    for e in entries {
        let path = e.with_context(|| format!("cannot read {}", published.display()))?.path();
        let (Some(stem), Some("json")) =
            (path.file_stem().and_then(|s| s.to_str()), path.extension().and_then(|s| s.to_str()))
        else {
            continue;
        };
        if let Some(profile) = stem.strip_suffix(RECORD_SUFFIX) {
            // What `rollout --undo` would restore must still exist.
            let record = Record::load(&path, profile)?;
            for arn in record.undoable().iter().flat_map(|r| r.functions.iter()).flat_map(|m| m.before.iter()) {
                out.entry(arn.clone())
                    .or_insert_with(|| format!("the last rollout in published/{stem}.json restores it (--undo)"));
            }
            continue;
        }
        // An unreadable manifest is an error: pruning without it could delete what it names.
        let m = Manifest::load(&path, stem, None)?;
        for entry in m.layers {
            out.entry(entry.layer_version_arn).or_insert_with(|| format!("named in published/{stem}.json"));
        }
    }
    Ok(out)
}

/// For the versions of one layer: `(version, arn, why it is kept)`, newest first; `None`
/// means delete. The `keep` newest are kept, and every version in `protected`.
fn decide(
    versions: &[(i64, String)],
    keep: usize,
    protected: &BTreeMap<String, String>,
    attached: &BTreeMap<String, Vec<String>>,
) -> Vec<(i64, String, Option<String>)> {
    let mut sorted = versions.to_vec();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.0));
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, (version, arn))| {
            let reason = match (attached.get(&arn), protected.get(&arn)) {
                (Some(functions), _) => Some(format!("attached by function {}", functions.join(", "))),
                (None, Some(why)) => Some(why.clone()),
                (None, None) if i < keep => Some(format!("one of the {keep} newest")),
                (None, None) => None,
            };
            (version, arn, reason)
        })
        .collect()
}

/// Every version of a layer in the clients' region: (number, ARN).
async fn list_versions(c: &Clients, layer_name: &str) -> Result<Vec<(i64, String)>> {
    let versions = crate::rollout::usage::list_versions(c, layer_name).await?;
    Ok(versions.into_iter().map(|v| (v.version, v.arn)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_what_a_manifest_names() {
        let arn = |v: i64| format!("arn:aws:lambda:us-east-1:123456789012:layer:six-py313-x86_64:{v}");
        let versions: Vec<(i64, String)> = [2, 5, 1, 3, 4].iter().map(|&v| (v, arn(v))).collect();
        let protected = BTreeMap::from([(arn(2), "named in published/staging.json".to_string())]);
        let attached = BTreeMap::from([(arn(1), vec!["api".to_string(), "worker".to_string()])]);
        let d = decide(&versions, 2, &protected, &attached);
        let summary: Vec<(i64, bool)> = d.iter().map(|(v, _, r)| (*v, r.is_some())).collect();
        assert_eq!(summary, [(5, true), (4, true), (3, false), (2, true), (1, true)]);
        assert_eq!(d[4].2.as_deref(), Some("attached by function api, worker"));
        assert_eq!(d[3].2.as_deref(), Some("named in published/staging.json"));
        assert_eq!(d[0].2.as_deref(), Some("one of the 2 newest"));
        assert!(decide(&versions, 10, &BTreeMap::new(), &BTreeMap::new()).iter().all(|(_, _, r)| r.is_some()));
        assert_eq!(hex_of_base64("AAE=").as_deref(), Some("0001"));
    }

    #[test]
    fn every_manifest_protects_its_versions_and_a_broken_one_stops_the_prune() {
        let d = tempfile::tempdir().unwrap();
        assert!(protected_arns(&d.path().join("missing")).unwrap().is_empty());
        std::fs::write(d.path().join("staging.json"), r#"{"profile":"staging","layers":[{"layer":"six","runtime":"python3.13","arch":"x86_64","region":"us-east-1","layer_name":"six-py313-x86_64","version":2,"layer_version_arn":"arn:aws:lambda:us-east-1:123456789012:layer:six-py313-x86_64:2","code_sha256":"c","fingerprint":"f","published_at":"2025-01-01T00:00:00Z"}]}"#).unwrap();
        std::fs::write(d.path().join("notes.txt"), "not a manifest").unwrap();
        let p = protected_arns(d.path()).unwrap();
        let arn = "arn:aws:lambda:us-east-1:123456789012:layer:six-py313-x86_64:2";
        assert_eq!(p.get(arn).map(String::as_str), Some("named in published/staging.json"));
        // A rollout record is not a manifest: its last rollout's `before` lists are kept.
        let before = "arn:aws:lambda:us-east-1:123456789012:layer:six-py313-x86_64:1";
        std::fs::write(d.path().join("staging-rollouts.json"), format!(r#"{{"profile":"staging","rollouts":[{{"at":"2025-01-01T00:00:00Z","how":"--all-outdated","functions":[{{"region":"us-east-1","function":"f","before":["{before}"],"after":["{arn}"],"status":"successful"}}]}}]}}"#)).unwrap();
        let p = protected_arns(d.path()).unwrap();
        assert!(p.get(before).is_some_and(|w| w.contains("--undo")), "{p:?}");
        std::fs::write(d.path().join("production.json"), "{").unwrap();
        let err = format!("{:#}", protected_arns(d.path()).unwrap_err());
        assert!(err.contains("production.json"), "{err}");
    }
}
