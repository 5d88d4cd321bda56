//! `cargo xtask status`: every unit with its local fingerprint, the newest published
//! version and ARN in each region of a profile, and `unchanged`, `changed` or `new`; then
//! each region's Lambda code storage against its quota (`aws::storage`), read
//! concurrently with the units.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::aws::{self, bounded, storage, Session};
use crate::publish::status;
use xtask::cmd::remote::status::Args;
use xtask::output::{self, Table};
use xtask::profile::status::{Compared, StatusRow};
use xtask::repo::Repo;
use xtask::unit::{self, Context};

/// A region's code storage: known, unknown (the endpoint does not say), or why it could
/// not be read.
#[derive(Debug)]
enum Reading {
    Known(storage::Usage),
    Unknown,
    Failed(anyhow::Error),
}

/// Each region's code storage, by region name.
type Storage = BTreeMap<String, Reading>;

/// Returns false when some unit could not be looked up (a region whose storage cannot be
/// read is a warning: the units were compared).
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    let names = unit::select_layers(&ctx.repo, &args.names, args.names.is_empty())?;
    let profile = &args.profile.profile;
    let (rows, storage) = aws::run(async {
        let (rows, storage) = tokio::join!(status::status(&ctx, profile, &names, 8), code_storage(&ctx, profile));
        Ok((rows?, storage?))
    })?;
    if args.output.json {
        for r in &rows {
            let code_storage = match r.region.as_ref().and_then(|region| storage.get(region)) {
                Some(Reading::Known(u)) => Some(JsonStorage::from(*u)),
                _ => None,
            };
            output::json(&JsonRow { row: r, code_storage })?;
        }
    }
    print_table(&rows);
    print_storage(&storage, profile);
    Ok(rows.iter().all(|r| r.status != Compared::Failed))
}

/// A status row with its region's code storage (`null` when unknown).
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(flatten)]
    row: &'a StatusRow,
    code_storage: Option<JsonStorage>,
}

#[derive(Serialize)]
struct JsonStorage {
    used_bytes: u64,
    limit_bytes: u64,
    /// Rounded to one decimal.
    percent: f64,
}

impl From<storage::Usage> for JsonStorage {
    fn from(u: storage::Usage) -> JsonStorage {
        JsonStorage {
            used_bytes: u.used_bytes,
            limit_bytes: u.limit_bytes,
            percent: (u.percent() * 10.0).round() / 10.0,
        }
    }
}

/// The code storage of each of the profile's regions, read at once.
async fn code_storage(ctx: &Context, profile: &str) -> Result<Storage> {
    let session = Session::open(ctx, profile).await?;
    let mut seen = std::collections::BTreeSet::new();
    let futures: Vec<_> = session
        .clients
        .iter()
        .filter(|c| seen.insert(c.target.region.clone()))
        .cloned()
        .map(|c| async move {
            let reading = match storage::usage(&c).await {
                Ok(Some(u)) => Reading::Known(u),
                Ok(None) => Reading::Unknown,
                Err(e) => Reading::Failed(e),
            };
            (c.target.region.clone(), reading)
        })
        .collect();
    Ok(bounded(8, futures).await.into_iter().collect())
}

/// `code storage in us-east-1: 3.4 of 75.0 GB (4%)`, one line per region; a warning past
/// 80% with the prune command, and one for a region that could not be read.
fn print_storage(storage: &Storage, profile: &str) {
    for (region, usage) in storage {
        match usage {
            Reading::Known(u) => {
                output::line(format_args!("code storage in {region}: {u}"));
                if u.over(storage::WARN_PERCENT) {
                    let hint = storage::prune_hint(profile);
                    output::warn(format_args!("code storage in {region} is past {}%: {hint}", storage::WARN_PERCENT));
                }
            }
            Reading::Unknown => output::line(format_args!("code storage in {region}: {}", storage::UNKNOWN)),
            Reading::Failed(e) => output::warn(format_args!("code storage in {region}: unknown: {e:#}")),
        }
    }
}

fn print_table(rows: &[StatusRow]) {
    let s = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut table =
        Table::new(&["STATUS", "LAYER", "RUNTIME", "ARCH", "REGION", "FINGERPRINT", "VERSION", "ARN"]).right(6);
    for r in rows {
        let fp: String = s(&r.fingerprint).chars().take(12).collect();
        let last = match &r.error {
            Some(e) => format!("error: {e}"),
            None => s(&r.arn),
        };
        let version = r.version.map_or("-".to_string(), |v| v.to_string());
        table.row(vec![
            r.status.as_str().into(),
            r.layer.clone(),
            r.runtime.map_or("-".to_string(), |x| x.to_string()),
            r.arch.map_or("-".to_string(), |x| x.to_string()),
            s(&r.region),
            fp,
            version,
            last,
        ]);
    }
    table.print();
    let changed: Vec<&StatusRow> = rows.iter().filter(|r| r.changes.is_some()).collect();
    if !changed.is_empty() {
        output::line("what publishing would change, against the newest version's SBOM:");
        for r in changed {
            let (rt, arch) = (r.runtime.map(|x| x.to_string()), r.arch.map(|x| x.to_string()));
            let c = r.changes.as_ref().expect("filtered");
            output::line(format_args!(
                "  {} {} {} {}: {c}",
                r.layer,
                rt.unwrap_or_default(),
                arch.unwrap_or_default(),
                s(&r.region)
            ));
        }
    }
    let count = |st: Compared| (st.as_str(), rows.iter().filter(|r| r.status == st).count());
    output::line(output::summary(&[
        count(Compared::Unchanged),
        count(Compared::Changed),
        count(Compared::New),
        count(Compared::Failed),
    ]));
}
