//! What a profile holds compared with the repo: for every unit and region, the local
//! fingerprint, the newest published version, and `unchanged`, `changed` or `new`.
//! Read-only; the fingerprint alone decides (a publish may still find a changed unit's
//! content identical and publish nothing).

use anyhow::Result;

use super::{naming, plan};
use crate::aws::{bounded, plan_units, Session};
use xtask::profile::status::{Compared, StatusRow};
use xtask::unit::Context;

pub async fn status(ctx: &Context, profile: &str, names: &[String], jobs: usize) -> Result<Vec<StatusRow>> {
    let session = Session::open(ctx, profile).await?;
    session.check_identity().await?;
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
    let mut futures = Vec::new();
    for u in &units {
        let layer_name = naming::layer_name(&session.profile.layer_name, &u.layer.name, u.runtime, u.arch)?;
        for c in &session.clients {
            let (c, layer_name, fp) = (c.clone(), layer_name.clone(), u.fingerprint.clone());
            let base = StatusRow {
                layer: u.layer.name.clone(),
                runtime: Some(u.runtime),
                arch: Some(u.arch),
                region: Some(c.target.region.clone()),
                layer_name: Some(layer_name.clone()),
                fingerprint: Some(fp.clone()),
                status: Compared::New,
                version: None,
                arn: None,
                error: None,
            };
            futures.push(async move {
                match plan::newest(&c, &layer_name).await {
                    Ok(None) => base,
                    Ok(Some(n)) => StatusRow {
                        status: if n.has_fingerprint(&fp) { Compared::Unchanged } else { Compared::Changed },
                        version: Some(n.version),
                        arn: Some(n.arn),
                        ..base
                    },
                    Err(e) => StatusRow { status: Compared::Failed, error: Some(format!("{e:#}")), ..base },
                }
            });
        }
    }
    rows.extend(bounded(jobs, futures).await);
    rows.sort_by(|a, b| (&a.layer, &a.runtime, &a.arch, &a.region).cmp(&(&b.layer, &b.runtime, &b.arch, &b.region)));
    Ok(rows)
}
