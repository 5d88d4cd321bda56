//! What a profile holds compared with the repo: for every unit and region, the local
//! fingerprint, the newest published version, and `unchanged`, `changed` or `new`, from
//! one listing per region (`plan::list_region`), whatever the number of layers.
//! Read-only; the fingerprint alone decides (a publish may still find a changed unit's
//! content identical and publish nothing).

use anyhow::Result;

use super::{naming, plan};
use crate::aws::{bounded, plan_units, Session};
use crate::records;
use xtask::profile::changes;
use xtask::unit::Unit;

/// A unit's packages and unzipped size as they will ship: its build in dist/ when current,
/// else the pins of its locked requirements.txt (no size).
fn local_packages(u: &Unit) -> (Vec<(String, String)>, Option<u64>) {
    match xtask::unit::current(u) {
        Some(r) => (r.packages.iter().map(|p| (p.name.clone(), p.version.clone())).collect(), Some(r.unzipped_bytes)),
        None => (changes::pins(&u.requirements.lines), None),
    }
}
use xtask::profile::status::{Compared, StatusRow};
use xtask::unit::Context;

pub async fn status(ctx: &Context, profile: &str, names: &[String], jobs: usize) -> Result<Vec<StatusRow>> {
    let session = Session::open(ctx, profile).await?;
    let (units, failed) = plan_units(ctx, names);
    let mut rows: Vec<StatusRow> = failed
        .into_iter()
        .map(|(layer, e)| StatusRow {
            layer,
            runtime: None,
            arch: None,
            region: None,
            layer_name: None,
            fingerprint: None,
            status: Compared::Failed,
            version: None,
            arn: None,
            error: Some(format!("{e:#}")),
            changes: None,
        })
        .collect();
    let who = session.check_identity().await?;
    let listings: Vec<_> = super::list_regions(&session, &who, jobs.max(1))
        .await
        .into_iter()
        .map(|l| l.map_err(|e| format!("{e:#}")))
        .collect();
    let mut changed = Vec::new();
    for u in &units {
        let layer_name = naming::layer_name(&session.profile.layer_name, &u.layer.name, u.runtime, u.arch)?;
        for (c, listing) in session.clients.iter().zip(&listings) {
            let base = StatusRow {
                layer: u.layer.name.clone(),
                runtime: Some(u.runtime),
                arch: Some(u.arch),
                region: Some(c.target.region.clone()),
                layer_name: Some(layer_name.clone()),
                fingerprint: Some(u.fingerprint.clone()),
                status: Compared::New,
                version: None,
                arn: None,
                error: None,
                changes: None,
            };
            if let Ok(Some(n)) = listing.as_ref().map(|l| l.get(&layer_name)) {
                if !n.has_fingerprint(&u.fingerprint) {
                    changed.push((rows.len(), c.clone(), n.clone(), layer_name.clone(), local_packages(u)));
                }
            }
            rows.push(match listing.as_ref().map(|l| l.get(&layer_name)) {
                Ok(None) => base,
                Ok(Some(n)) => StatusRow {
                    status: if n.has_fingerprint(&u.fingerprint) { Compared::Unchanged } else { Compared::Changed },
                    version: Some(n.version),
                    arn: Some(n.arn.clone()),
                    ..base
                },
                Err(e) => StatusRow { status: Compared::Failed, error: Some(e.clone()), ..base },
            });
        }
    }
    // What publishing each changed unit would change, from its newest version's SBOM.
    let prefix = session.profile.prefix.clone();
    let futures: Vec<_> = changed
        .into_iter()
        .map(|(i, c, n, layer_name, (local, bytes))| {
            let (bucket, prefix) = (naming::bucket(&session.profile, &c.target.region), prefix.clone());
            async move {
                let code = match &n.code_sha256 {
                    Some(code) => Some(code.clone()),
                    None if n.record.is_none() => plan::code_sha256(&c, &layer_name, n.version).await.ok(),
                    None => None,
                };
                let held = records::held(&c, &bucket, &prefix, &layer_name, n.record.as_ref(), code.as_deref()).await;
                (i, held.map(|h| changes::diff(&h, &local, bytes)))
            }
        })
        .collect();
    for (i, c) in bounded(jobs.max(1), futures).await {
        rows[i].changes = c;
    }
    rows.sort_by(|a, b| (&a.layer, &a.runtime, &a.arch, &a.region).cmp(&(&b.layer, &b.runtime, &b.arch, &b.region)));
    Ok(rows)
}
