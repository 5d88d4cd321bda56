//! What a profile holds compared with the repo: for every unit and region, the local
//! fingerprint, the newest published version, and `unchanged`, `changed` or `new`, from
//! one listing per region (`plan::list_region`), whatever the number of layers.
//! Read-only; the fingerprint alone decides (a publish may still find a changed unit's
//! content identical and publish nothing).

use anyhow::Result;

use super::{naming, plan};
use crate::aws::{bounded, plan_units, Session};
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
        })
        .collect();
    let who = session.check_identity().await?;
    let listings: Vec<_> = session
        .clients
        .iter()
        .map(|c| {
            let (c, who) = (c.clone(), who.clone());
            let bucket = naming::bucket(&session.profile, &c.target.region);
            let prefix = session.profile.prefix.clone();
            async move { plan::list_region(&c, &who, &bucket, &prefix).await.map_err(|e| format!("{e:#}")) }
        })
        .collect();
    let listings = bounded(jobs.max(1), listings).await;
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
            };
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
    rows.sort_by(|a, b| (&a.layer, &a.runtime, &a.arch, &a.region).cmp(&(&b.layer, &b.runtime, &b.arch, &b.region)));
    Ok(rows)
}
