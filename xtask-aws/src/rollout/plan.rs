//! What a rollout changes and whether it may: for each selected function, its new layer
//! list (the repo's layers at their newest version, or a stack's ARNs from the manifest;
//! other owners' layers kept where they are, the order kept), and the checks `stack` runs,
//! applied to that list with the function's own code size, runtime and architecture: at
//! most 5 layers, 250 MiB, every repo layer version compatible with the function, the
//! dependency closure and overlapping paths (read from the repo layers' zips in dist/).

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use super::usage::{self, Function, LayerArn, Listed, Owners, Survey};
use xtask::config::StackConfig;
use xtask::profile::manifest::Manifest;
use xtask::profile::naming;
use xtask::runtime::{Arch, Runtime};
use xtask::stack::arns::{self, Publication};
use xtask::stack::checks::{self, Check, Verdict};
use xtask::unit::{self, Context};

/// Which functions move, and to what.
#[derive(Debug, Clone)]
pub enum Selection {
    /// The functions whose repo layers are the stack's (or these functions, name or ARN,
    /// whatever they attach), to exactly its manifest ARNs.
    Stack(String, Vec<String>),
    /// These functions (name or ARN), to the newest versions of the repo layers they attach.
    Functions(Vec<String>),
    /// Every function attaching an older version than the newest, to the newest.
    AllOutdated,
}

impl Selection {
    /// How the rollout was asked for, as the record keeps it.
    pub fn describe(&self) -> String {
        match self {
            Selection::Stack(s, f) if f.is_empty() => format!("--stack {s}"),
            Selection::Stack(s, f) => format!("--stack {s} --function {}", f.join(" ")),
            Selection::Functions(f) => format!("--function {}", f.join(" ")),
            Selection::AllOutdated => "--all-outdated".into(),
        }
    }
}

/// One repo layer of a function, from one version to another (None: not attached).
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub layer: String,
    pub layer_name: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One function's new layer list.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub region: String,
    pub function: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub moves: Vec<Move>,
    /// The checks of the new list (filled in before anything is written).
    pub checks: Vec<Check>,
    /// Index into the survey's functions.
    #[serde(skip)]
    pub index: usize,
}

impl Change {
    pub fn failed(&self) -> bool {
        // A check that did not run cannot clear a rollout either.
        self.checks.iter().any(|c| matches!(c.verdict, Verdict::Fail | Verdict::NotRun))
    }
}

/// The new layer list of every selected function; functions already there are left out.
/// An unknown function, a stack no function attaches or a stack layer missing from the
/// manifest are errors.
pub fn changes(
    profile: &str,
    survey: &Survey,
    owners: &Owners,
    selection: &Selection,
    stacks: &BTreeMap<String, StackConfig>,
    manifest: &Manifest,
) -> Result<Vec<Change>> {
    let regions = || {
        let r: std::collections::BTreeSet<&str> = survey.functions.iter().map(|f| f.region.as_str()).collect();
        r.into_iter().collect::<Vec<_>>().join(", ")
    };
    let mut out = Vec::new();
    match selection {
        Selection::AllOutdated => {
            for (i, f) in survey.functions.iter().enumerate() {
                if f.outdated() {
                    out.push(change(survey, owners, i, newest_list(survey, owners, f)));
                }
            }
        }
        Selection::Functions(names) => {
            for i in named(profile, survey, names)? {
                out.push(change(survey, owners, i, newest_list(survey, owners, &survey.functions[i])));
            }
        }
        Selection::Stack(name, names) => {
            let stack = stacks.get(name).with_context(|| {
                let known: Vec<&str> = stacks.keys().map(String::as_str).collect();
                format!(
                    "unknown stack `{}`: layers.toml defines {}",
                    shown(name),
                    if known.is_empty() { "none".into() } else { known.join(", ") }
                )
            })?;
            if let Some(ghost) = stack.layers.iter().find(|l| !owners.units.iter().any(|u| u.layer.name == **l)) {
                bail!("stack {name} in layers.toml names layer {ghost}, which does not exist (no layers/{ghost}/): fix `layers` or create it with `cargo xtask new {ghost}`");
            }
            let chosen = if names.is_empty() {
                // Only the functions of the stack's runtime and architecture: the same layers
                // built for another target are another stack's (its ARNs would not fit them).
                (0..survey.functions.len())
                    .filter(|&i| {
                        let f = &survey.functions[i];
                        f.own_layers() == stack.layers
                            && f.runtime.as_deref() == Some(stack.runtime.id)
                            && f.arch == stack.arch.as_str()
                    })
                    .collect()
            } else {
                named(profile, survey, names)?
            };
            for i in chosen {
                let f = &survey.functions[i];
                let wanted: Vec<(String, Option<String>)> = stack.layers.iter().map(|l| (l.clone(), None)).collect();
                let mut arns = Vec::new();
                for (layer, p) in arns::lookup(manifest, &wanted, stack.runtime, stack.arch, &f.region) {
                    match p {
                        Publication::Published { arn, .. } => arns.push(arn),
                        Publication::Missing => bail!(
                            "stack {name}: layer {layer} is not published for {} {} in {} (published/{profile}.json): run `cargo xtask publish {layer} --profile {profile}` first (nothing was changed)",
                            stack.runtime, stack.arch, f.region
                        ),
                    }
                }
                out.push(change(survey, owners, i, stack_list(f, &arns)));
            }
            if out.is_empty() {
                bail!(
                    "no function in profile `{profile}` ({}) attaches the layers of stack {name} ({}): `cargo xtask usage --profile {profile}` shows what each function attaches",
                    if survey.functions.is_empty() { "no function attaches a repo layer".into() } else { regions() },
                    stack.layers.join(", ")
                );
            }
        }
    }
    out.retain(|c| c.before != c.after);
    Ok(out)
}

/// The functions named (by name or ARN), each once; a name no function answers to is an error.
fn named(profile: &str, survey: &Survey, names: &[String]) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for n in names {
        let found: Vec<usize> = (0..survey.functions.len())
            .filter(|&i| survey.functions[i].function == *n || survey.functions[i].function_arn == *n)
            .collect();
        if found.is_empty() {
            if let Some(why) = not_here(survey, n) {
                bail!("function {}: {why} (nothing was changed)", shown(n));
            }
            bail!(
                "function {} attaches no layer of this repo in profile `{profile}` (or does not exist there): `cargo xtask usage --profile {profile}` lists the functions that do",
                shown(n)
            );
        }
        for i in found {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    Ok(out)
}

/// A name from the command line as an error line shows it: clipped, control characters
/// (a newline, a terminal escape) escaped.
fn shown(s: &str) -> String {
    xtask::quote::clip(s)
}

/// Why a function named by ARN cannot be one of the profile's: a qualified ARN (a version
/// or alias: only the unqualified function has a layer list to update), or another region.
fn not_here(survey: &Survey, name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("an empty function name: give a function name or ARN".into());
    }
    let parts: Vec<&str> = name.split(':').collect();
    if parts.len() < 7 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" {
        return None;
    }
    if parts.len() > 7 {
        return Some(format!(
            "a qualified ARN (`:{}`): give the unqualified function ARN or name, {}",
            parts[7..].join(":"),
            parts[..7].join(":")
        ));
    }
    let regions: std::collections::BTreeSet<&str> = survey.regions.iter().map(String::as_str).collect();
    if !regions.contains(parts[3]) {
        return Some(format!(
            "the ARN is in {}, which is not a region of the profile ({})",
            parts[3],
            regions.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    None
}

/// The newest version of a repo layer name for the function (for its target, when the
/// name is shared by several targets).
fn newest<'a>(survey: &'a Survey, owners: &Owners, f: &Function, layer_name: &str) -> Option<&'a usage::Version> {
    let target = owners.shared(layer_name).then_some((f.runtime.as_deref(), f.arch.as_str()));
    survey.newest(f.client, layer_name, target)
}

/// The function's layers with each repo layer at its newest version.
fn newest_list(survey: &Survey, owners: &Owners, f: &Function) -> Vec<String> {
    f.layers
        .iter()
        .map(|a| match (a.is_own(), newest(survey, owners, f, &a.layer_name)) {
            (true, Some(n)) => n.arn.clone(),
            _ => a.arn.clone(),
        })
        .collect()
}

/// The function's layers with its repo layers replaced by `arns`, where the first of them
/// was; other owners' layers keep their places.
pub fn stack_list(f: &Function, arns: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut inserted = false;
    for a in &f.layers {
        if !a.is_own() {
            out.push(a.arn.clone());
        } else if !inserted {
            out.extend(arns.iter().cloned());
            inserted = true;
        }
    }
    if !inserted {
        out.extend(arns.iter().cloned());
    }
    out
}

fn change(survey: &Survey, owners: &Owners, index: usize, after: Vec<String>) -> Change {
    let f = &survey.functions[index];
    let before: Vec<String> = f.layers.iter().map(|a| a.arn.clone()).collect();
    let own = |arn: &str| {
        usage::own_name(owners, arn, &survey.accounts[f.client], &f.region).map(|(a, o)| (o[0].layer.clone(), a))
    };
    let mut moves: Vec<Move> = Vec::new();
    for arn in &before {
        if let Some((layer, a)) = own(arn) {
            moves.push(Move { layer, layer_name: a.name, from: Some(a.version), to: None });
        }
    }
    for arn in &after {
        if let Some((layer, a)) = own(arn) {
            match moves.iter_mut().find(|m| m.layer_name == a.name && m.to.is_none()) {
                Some(m) => m.to = Some(a.version),
                None => moves.push(Move { layer, layer_name: a.name, from: None, to: Some(a.version) }),
            }
        }
    }
    // Layers that stay at their version are not part of the plan.
    moves.retain(|m| m.from != m.to);
    Change { region: f.region.clone(), function: f.function.clone(), before, after, moves, checks: Vec::new(), index }
}

/// The checks of a function's new layer list; `fresh` is the function as GetFunction
/// describes it now (its own code size). Builds the repo layers that are not current in
/// dist/, as `stack` does.
pub fn check(ctx: &Context, owners: &Owners, survey: &Survey, fresh: &Listed, change: &Change) -> Vec<Check> {
    let f = &survey.functions[change.index];
    let account = &survey.accounts[f.client];
    let runtime_id = fresh.runtime.clone();
    let runtime = runtime_id.as_deref().and_then(|r| Runtime::parse(r).ok());
    let arch = Arch::parse(&fresh.arch).ok();
    let target = format!("{} {}", runtime_id.as_deref().unwrap_or("(container image)"), fresh.arch);
    let sizes_attached: BTreeMap<&str, i64> = fresh.layers.iter().map(|(a, s)| (a.as_str(), *s)).collect();

    let mut off_target = Vec::new();
    let mut unknown = Vec::new();
    let mut sizes: Vec<(String, u64)> = Vec::new();
    let mut zips: Vec<(String, std::path::PathBuf, Vec<String>)> = Vec::new();
    let mut foreign = 0;
    // The repo layers of the new list; those without a zip in `zips` could not be read.
    let mut own: Vec<String> = Vec::new();
    if runtime_id.is_none() {
        off_target.push(format!("function {} is a container image: it cannot attach layers", f.function));
    }
    for arn in &change.after {
        let Some((a, _)) = usage::own_name(owners, arn, account, &f.region) else {
            foreign += 1;
            let size = sizes_attached.get(arn.as_str()).copied().unwrap_or(0).max(0) as u64;
            sizes.push((format!("{arn} (another owner's layer: its zipped size)"), size));
            continue;
        };
        let label = format!("{}:{}", a.name, a.version);
        own.push(label.clone());
        let Some(v) = survey.version(f.client, &a.name, a.version) else {
            off_target.push(format!("layer version {label} does not exist in {}", f.region));
            continue;
        };
        if let Some(r) = &runtime_id {
            if !v.runtimes.is_empty() && !v.runtimes.contains(r) {
                off_target.push(format!(
                    "layer version {label} is for {}, not for function {}'s runtime {r}",
                    v.runtimes.join(", "),
                    f.function
                ));
            }
        }
        if !v.archs.is_empty() && !v.archs.contains(&fresh.arch) {
            off_target.push(format!(
                "layer version {label} is built for {}, but function {} is {}",
                v.archs.join(", "),
                f.function,
                fresh.arch
            ));
        }
        let Some(owner) = owners.owner(&a.name, runtime_id.as_deref(), &fresh.arch) else {
            // No unit of the repo builds this name for the function's target: left out of
            // the contents checks, as before (the target checks above speak for it).
            own.pop();
            continue;
        };
        if Some(owner.runtime) != runtime || Some(owner.arch) != arch {
            off_target.push(format!(
                "layer {} ({label}) is built for {} {}, not for function {}'s {target}: add it to `runtimes`/`architectures` in layers/{}/layer.toml and publish",
                owner.layer, owner.runtime, owner.arch, f.function, owner.layer
            ));
            continue;
        }
        if !naming::has_fingerprint(&v.description, &owner.fingerprint) {
            unknown.push(format!(
                "{label} was not built from layers/{} as it is now (its fingerprint differs), so its contents cannot be checked here: publish the current layer first, or roll out from the commit that published it",
                owner.layer
            ));
            continue;
        }
        let u = &owners.units[owner.unit];
        match unit::build(ctx, u, false) {
            Ok(outcome) => {
                sizes.push((format!("{} ({label})", owner.layer), outcome.report().unzipped_bytes));
                zips.push((owner.layer.clone(), u.paths.zip.clone(), u.layer.requires.clone()));
            }
            Err(e) => unknown.push(format!("cannot build {} to check it: {e:#}", u.label())),
        }
    }

    let mut out = vec![checks::layer_count(
        change.after.len(),
        "merge the repo's layers into one (`cargo xtask stack NAME --merge LAYER`) or drop one",
    )];
    // Size, closure and overlaps over some of the layers would be verdicts on a list that
    // is not the one rolled out: they do not run when a repo layer could not be read.
    let unread = own.len() - zips.len();
    let not_run = (unread > 0)
        .then(|| format!("{unread} of the {} repo layer(s) could not be read (see targets and contents)", own.len()));
    out.push(match &not_run {
        Some(why) => checks::not_run("size", why),
        None => checks::budget_of(
            &sizes,
            fresh.code_size.max(0) as u64,
            &format!("function {} code (CodeSize from GetFunction)", f.function),
            "drop a layer, slim the layers (`slim`, `exclude`), or merge them",
        ),
    });
    out.push(checks::targets_for(&target, off_target));
    if let Some(why) = &not_run {
        out.push(checks::not_run("closure", why));
        out.push(checks::not_run("overlap", why));
    } else {
        match contents(&zips, runtime, arch) {
            Ok((closure, overlaps)) => {
                out.push(if foreign > 0 {
                    checks::softened(closure, "other owners' layers are not inspected and may provide it")
                } else {
                    closure
                });
                out.push(overlaps);
            }
            Err(e) => {
                let why = "the repo layers' zips could not be read (see contents)";
                out.push(checks::not_run("closure", why));
                out.push(checks::not_run("overlap", why));
                unknown.push(format!("{e:#}"));
            }
        }
    }
    if !unknown.is_empty() {
        out.push(checks::failed("contents", format!("{} repo layer(s) cannot be checked", unknown.len()), unknown));
    }
    out
}

/// The closure and overlap checks over the repo layers' zips, in list order.
fn contents(
    zips: &[(String, std::path::PathBuf, Vec<String>)],
    runtime: Option<Runtime>,
    arch: Option<Arch>,
) -> Result<(Check, Check)> {
    let scratch =
        tempfile::Builder::new().prefix("xtask-rollout-").tempdir().context("cannot create a temporary folder")?;
    // Removed on Ctrl-C too (the handler exits without running destructors).
    let _remove = xtask::interrupt::TempPath::new(scratch.path().to_path_buf());
    let mut listings = Vec::new();
    let mut dists = Vec::new();
    for (i, (name, zip, _)) in zips.iter().enumerate() {
        listings.push(xtask::overlap::listing(zip)?);
        dists.push((name.clone(), xtask::stack::members::dists(zip, name, &scratch.path().join(i.to_string()))?));
    }
    let names: Vec<String> = zips.iter().map(|(n, _, _)| n.clone()).collect();
    let groups = xtask::overlap::group(&xtask::overlap::find(&listings), &names);
    let missing: Vec<(String, String)> = zips
        .iter()
        .flat_map(|(n, _, requires)| requires.iter().filter(|r| !names.contains(r)).map(|r| (n.clone(), r.clone())))
        .collect();
    let closure = match (runtime, arch) {
        (Some(r), Some(a)) => checks::closure(&dists, &missing, r, a, &|_| None),
        _ => checks::failed("closure", "the function's runtime is not a Python runtime xtask knows".into(), vec![]),
    };
    Ok((closure, checks::overlaps(&groups, &dists, false)))
}

/// The repo layer and version of each ARN of a list, for messages (`six:3`, or the ARN).
pub fn short(arn: &str) -> String {
    match LayerArn::parse(arn) {
        Some(a) => format!("{}:{}", a.name, a.version),
        None => arn.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::usage::Attached;

    fn attached(arn: &str, own: bool) -> Attached {
        let a = LayerArn::parse(arn).unwrap();
        Attached {
            arn: arn.into(),
            layer: own.then(|| a.name.clone()),
            layer_name: a.name,
            version: Some(a.version),
            newest: None,
            owner: if own { "repo" } else { "other" },
        }
    }

    #[test]
    fn names_from_the_command_line_stay_on_one_line() {
        assert_eq!(shown("api"), "api");
        assert_eq!(shown("a\u{1b}[31mred\nx"), "a\\u{1b}[31mred\\nx");
        assert!(shown(&"a".repeat(3000)).len() < 400);
    }

    #[test]
    fn a_stack_replaces_the_repo_layers_where_the_first_was_and_keeps_the_others() {
        let arn = |n: &str, v: i64| format!("arn:aws:lambda:us-east-1:123456789012:layer:{n}:{v}");
        let f = Function {
            region: "us-east-1".into(),
            function: "f".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            runtime: Some("python3.13".into()),
            arch: "x86_64".into(),
            layers: vec![
                attached(&arn("other", 4), false),
                attached(&arn("a", 1), true),
                attached(&arn("b", 1), true),
                attached(&arn("ext", 2), false),
            ],
            stack: None,
            client: 0,
        };
        let got = stack_list(&f, &[arn("a", 3), arn("b", 5)]);
        assert_eq!(got, [arn("other", 4), arn("a", 3), arn("b", 5), arn("ext", 2)]);
        assert_eq!(short(&got[1]), "a:3");
    }
}
