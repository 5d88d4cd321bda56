//! Stacks: the layers one function attaches (`[stacks.NAME]` in layers.toml), checked
//! together before anything is deployed, and the LayerVersionArns to attach.
//!
//! - `members.rs`: the stack's layers as built units (built when dist/ is not current),
//!   and what their zips ship.
//! - `checks.rs`: at most 5 layers, the 250 MiB budget with the function's own code, the
//!   dependency closure across the stack, overlapping paths, runtime and architecture.
//! - `overlap.rs`: paths shipped by several layers, grouped, and whose copy wins.
//! - `arns.rs`: the version of each layer to attach, from `published/<profile>.json`.
//! - `formats.rs`: text, JSON, Terraform, SAM and CDK renderings of the ARNs.
//! - `merge.rs`: merged layers (`merge = [...]` in layer.toml) for more than 5 layers.

pub mod arns;
pub mod checks;
pub mod formats;
pub mod members;
pub mod merge;

use anyhow::{Context as _, Result};

use crate::config::StackConfig;
use crate::unit::Context;
use checks::{Check, Verdict};
use members::Member;

/// A stack's checks, and its layers that could be built for its target.
pub struct Checked {
    pub checks: Vec<Check>,
    pub members: Vec<Member>,
}

impl Checked {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.verdict == Verdict::Fail)
    }
}

/// A merged layer standing in for the stack: its name and unzipped size.
pub struct Merged<'a> {
    pub name: &'a str,
    pub unzipped_bytes: u64,
}

/// Builds what is not current and runs every check on `stack`. With `merged`, the stack is
/// attached as that one layer: its size is the merged layer's.
pub fn check(ctx: &Context, stack: &StackConfig, merged: Option<Merged<'_>>) -> Result<Checked> {
    let (members, off_target) = members::resolve(ctx, stack)?;
    let scratch =
        tempfile::Builder::new().prefix("xtask-stack-").tempdir().context("cannot create a temporary folder")?;
    let mut listings = Vec::new();
    let mut dists = Vec::new();
    for (i, m) in members.iter().enumerate() {
        listings.push(crate::overlap::listing(&m.unit.paths.zip)?);
        dists.push((m.name.clone(), members::dists(&m.unit.paths.zip, &m.name, &scratch.path().join(i.to_string()))?));
    }
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let groups = crate::overlap::group(&crate::overlap::find(&listings), &names);

    let sizes: Vec<(String, u64)> = match &merged {
        Some(m) => vec![(m.name.to_string(), m.unzipped_bytes)],
        None => members.iter().map(|m| (m.name.clone(), m.report.unzipped_bytes)).collect(),
    };
    let missing_requires: Vec<(String, String)> = members
        .iter()
        .flat_map(|m| {
            m.unit.layer.requires.iter().filter(|r| !stack.layers.contains(r)).map(|r| (m.name.clone(), r.clone()))
        })
        .collect();
    let provider = |dist: &str| provider_in_repo(ctx, stack, dist);
    let checks = vec![
        checks::count(&stack.name, stack.layers.len(), merged.as_ref().map(|m| m.name)),
        checks::budget(&sizes, stack.function_bytes),
        checks::closure(&dists, &missing_requires, stack.runtime, stack.arch, &provider),
        checks::overlaps(&groups, &dists, merged.is_some()),
        checks::targets(stack.runtime, stack.arch, off_target),
    ];
    Ok(Checked { checks, members })
}

/// An ordinary layer of the repo, outside the stack, whose requirements.txt lists `dist`.
fn provider_in_repo(ctx: &Context, stack: &StackConfig, dist: &str) -> Option<String> {
    crate::python::providers(&ctx.repo, dist).into_iter().find(|l| {
        !stack.layers.contains(l) && ctx.config.layer(&ctx.repo, l).is_ok_and(|c| c.source.members().is_empty())
    })
}
