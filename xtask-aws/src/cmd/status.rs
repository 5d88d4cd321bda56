//! `cargo xtask status`: every unit with its local fingerprint, the newest published
//! version and ARN in each region of a profile, and `unchanged`, `changed` or `new`.

use anyhow::Result;

use crate::aws;
use crate::publish::status;
use xtask::cmd::remote::status::Args;
use xtask::output::{self, Table};
use xtask::profile::status::{Compared, StatusRow};
use xtask::repo::Repo;
use xtask::unit::{self, Context};

/// Returns false when some unit could not be looked up.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, None)?;
    let names = unit::select_layers(&ctx.repo, &args.names, args.names.is_empty())?;
    let rows = aws::run(status::status(&ctx, &args.profile.profile, &names, 8))?;
    if args.output.json {
        for r in &rows {
            output::json(r)?;
        }
    }
    print_table(&rows);
    Ok(rows.iter().all(|r| r.status != Compared::Failed))
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
    let count = |st: Compared| (st.as_str(), rows.iter().filter(|r| r.status == st).count());
    output::line(output::summary(&[
        count(Compared::Unchanged),
        count(Compared::Changed),
        count(Compared::New),
        count(Compared::Failed),
    ]));
}
