//! `cargo xtask stack NAME | --all`: checks a stack (`[stacks.NAME]` in layers.toml) and
//! prints the LayerVersionArns to attach, in order, from the profile's manifest;
//! `--merge LAYER` builds the stack as one merged layer instead. Checks and progress go to
//! stderr; only the ARNs, in the requested format, go to stdout.

use anyhow::{bail, Context as _, Result};

use super::args::{ImageArgs, ProfileArgs};
use crate::config::StackConfig;
use crate::output::{self, count, size};
use crate::profile::manifest::Manifest;
use crate::repo::Repo;
use crate::stack::arns::{self, Publication};
use crate::stack::formats::{self, Format, Source};
use crate::stack::merge::{self, Folder};
use crate::stack::{self, Checked, Merged};
use crate::unit::{self, Context};

#[derive(clap::Args, Debug)]
#[command(
    mut_arg("profile", |a| a.help("Deploy profile whose manifest (published/PROFILE.json) the ARNs are read from")),
    mut_arg("image", |a| a.help("Use this build image for builds the stack needs, instead of the configured one"))
)]
pub struct Args {
    /// The stack, as declared by [stacks.NAME] in layers.toml
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Check every stack of layers.toml
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Region to print ARNs for (default: the profile's first region)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// How the ARNs are printed on stdout
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print references to the SSM parameters holding the ARNs (the profile's
    /// `ssm_parameter`) instead of the ARNs themselves
    #[arg(long, conflicts_with = "merge")]
    pub ssm: bool,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Only run the checks (as on a pull request, before anything is published)
    #[arg(long, conflicts_with = "merge")]
    pub no_arns: bool,
    /// Build the stack's layers as one merged layer, layers/LAYER (created if missing), for
    /// a function that needs more than 5 layers; it then publishes like any other layer
    #[arg(long, value_name = "LAYER", conflicts_with = "all")]
    pub merge: Option<String>,
}

/// Where the ARNs are read from.
struct Target {
    profile: String,
    region: String,
    manifest: Manifest,
    /// With `--ssm`: the profile's `ssm_parameter` template.
    ssm: Option<String>,
}

/// Returns false when a check failed or a layer is not published (the checks are shown
/// either way). A failing check prints nothing on stdout at all.
pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let ctx = Context::new(repo, args.image.image.clone())?;
    let name = &args.profile.profile;
    let profile = ctx.config.profile(name)?;
    let region = arns::region(name, profile, args.region.as_deref())?;
    let manifest = Manifest::load(&Manifest::path(&ctx.repo.published_dir(), name), name, Some(profile))?;
    let ssm = match (args.ssm, &profile.ssm_parameter) {
        (false, _) => None,
        (true, Some(t)) => Some(t.clone()),
        (true, None) => bail!(
            "--ssm: profile `{name}` has no ssm_parameter in layers.toml: set e.g. ssm_parameter = \"/layers/{{layer}}/{{py}}/{{arch}}\" and publish, then the ARNs are in SSM"
        ),
    };
    let refs = if ssm.is_some() { formats::Refs::Ssm } else { formats::Refs::Arns };
    let target = Target { profile: name.clone(), region, manifest, ssm };
    let source = Source { profile: &target.profile, region: &target.region };

    if let (Some(name), Some(layer)) = (&args.name, &args.merge) {
        let stack = ctx.config.stack(name)?.clone();
        return merge_stack(&ctx, &stack, layer, &target, args.format);
    }
    let stacks: Vec<StackConfig> = match &args.name {
        Some(name) => vec![ctx.config.stack(name)?.clone()],
        None if ctx.config.stacks.is_empty() => {
            bail!("no stacks: declare one as [stacks.NAME] in layers.toml (see docs/stacks.md)")
        }
        None => ctx.config.stacks.values().cloned().collect(),
    };
    let mut ok = true;
    // A stack whose checks failed (or could not run) prints no ARNs, and then no stack
    // does: `stack --all --format terraform > file` must not leave a usable-looking file.
    let mut checks_failed = false;
    let mut complete = Vec::new();
    for s in &stacks {
        let checked = match stack::check(&ctx, s, None) {
            Ok(c) => c,
            Err(e) if args.all => {
                output::error(format_args!("stack {}: {e:#}", s.name));
                ok = false;
                checks_failed = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        print_checks(s, &checked);
        checks_failed |= checked.failed();
        if args.no_arns {
            ok &= !checked.failed();
            continue;
        }
        let layers: Vec<(String, Option<String>)> = s
            .layers
            .iter()
            .map(|l| (l.clone(), checked.members.iter().find(|m| &m.name == l).map(|m| m.unit.fingerprint.clone())))
            .collect();
        let attach = print_attach(s, &layers, &target);
        ok &= !checked.failed() && attach.is_some();
        if let Some(arns) = attach {
            complete.push((s.name.clone(), arns));
        }
    }
    if checks_failed && !complete.is_empty() {
        output::line("a stack's checks failed: no ARNs printed");
    }
    let out = match (args.all, complete.as_slice()) {
        _ if checks_failed => String::new(),
        (_, []) => String::new(),
        (false, [(_, arns)]) => formats::one(args.format, refs, &about(&stacks[0]), &source, arns),
        _ => formats::many(args.format, refs, &source, &complete),
    };
    output::stdout(&out);
    Ok(ok)
}

/// `stack analytics (python3.13 x86_64)`
fn about(s: &StackConfig) -> String {
    format!("stack {} ({} {})", s.name, s.runtime, s.arch)
}

fn print_checks(s: &StackConfig, c: &Checked) {
    output::line(format_args!("{}: {}", about(s), s.layers.join(", ")));
    let width = c.checks.iter().map(|c| c.check.len()).max().unwrap_or(0).max(8);
    for check in &c.checks {
        output::line(format_args!("  {:<5} {:<width$} {}", check.verdict.as_str(), check.check, check.summary));
        for d in &check.details {
            output::line(format_args!("  {:<5} {:<width$} {d}", "", ""));
        }
    }
}

/// Prints the version of each layer to attach; returns the ARNs when every layer is
/// published.
fn print_attach(s: &StackConfig, layers: &[(String, Option<String>)], t: &Target) -> Option<Vec<String>> {
    let found = arns::lookup(&t.manifest, layers, s.runtime, s.arch, &t.region);
    output::line(format_args!(
        "  attach, in this order (profile {}, {}, from published/{}.json):",
        t.profile, t.region, t.profile
    ));
    let width = layers.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut arns = Vec::new();
    let mut missing = 0;
    for (i, (layer, p)) in found.iter().enumerate() {
        let line = match p {
            Publication::Published { arn, stale: false, .. } => arn.clone(),
            Publication::Published { arn, version, stale: true } => format!(
                "{arn} (version {version} was built from other inputs than layers/{layer} now: `cargo xtask publish {layer} --profile {}` updates it)",
                t.profile
            ),
            Publication::Missing => {
                missing += 1;
                format!("NOT PUBLISHED for {} {} in {}: run `cargo xtask publish {layer} --profile {}`", s.runtime, s.arch, t.region, t.profile)
            }
        };
        if let Publication::Published { arn, .. } = p {
            match &t.ssm {
                None => arns.push(arn.clone()),
                Some(template) => {
                    let name = crate::profile::naming::ssm_parameter(template, layer, s.runtime, s.arch);
                    let entry = t.manifest.get(layer, s.runtime.id, s.arch.as_str(), &t.region);
                    if entry.and_then(|e| e.ssm_parameter.as_deref()) != Some(name.as_str()) {
                        missing += 1;
                        output::line(format_args!(
                            "    {layer}: SSM parameter {name} not written yet: run `cargo xtask publish {layer} --profile {}`",
                            t.profile
                        ));
                    }
                    arns.push(name);
                }
            }
        }
        output::line(format_args!("    {}. {layer:<width$}  {line}", i + 1));
    }
    if missing > 0 {
        output::line(format_args!(
            "  {missing} of {} not published in profile {}: no ARNs printed",
            count(layers.len(), "layer"),
            t.profile
        ));
        return None;
    }
    Some(arns)
}

/// `--merge LAYER`: writes layers/LAYER as the stack's merged layer, builds it, checks the
/// stack as that one layer, and prints its ARN when it is published.
fn merge_stack(ctx: &Context, s: &StackConfig, layer: &str, t: &Target, format: Format) -> Result<bool> {
    // Members that ship one distribution in two versions cannot be merged into anything
    // that works: refused before layers/LAYER is written.
    let members = stack::check(ctx, s, None)?;
    if let Some(c) = members.checks.iter().find(|c| c.check == "overlap" && c.verdict == stack::checks::Verdict::Fail) {
        bail!("refused: cannot merge stack {} into layer {layer}: {}", s.name, c.summary);
    }
    match merge::write_folder(&ctx.repo, s, layer)? {
        Folder::Created => output::status(
            "created",
            format_args!("layers/{layer}/ (layer.toml, requirements.txt): commit it, it is a layer like any other"),
        ),
        Folder::Kept => output::status("using", format_args!("layers/{layer}/ (merges {})", s.layers.join(", "))),
    }
    let unit = unit::plan(ctx, layer)?.into_iter().find(|u| u.runtime == s.runtime && u.arch == s.arch).with_context(|| {
        format!("merged layer {layer} is not built for {} {}: add them to `runtimes`/`architectures` in layers/{layer}/layer.toml", s.runtime, s.arch)
    })?;
    let outcome =
        unit::build(ctx, &unit, false).with_context(|| format!("cannot build merged layer {}", unit.label()))?;
    let r = outcome.report();
    output::status(
        outcome.status().as_str(),
        format_args!(
            "{}: {} zip, {} unzipped, {} -> {}",
            unit.label(),
            size(r.zipped_bytes),
            size(r.unzipped_bytes),
            count(r.file_count as usize, "file"),
            r.zip
        ),
    );
    let checked = stack::check(ctx, s, Some(Merged { name: layer, unzipped_bytes: r.unzipped_bytes }))?;
    print_checks(s, &checked);
    let source = Source { profile: &t.profile, region: &t.region };
    match print_attach(s, &[(layer.to_string(), Some(unit.fingerprint.clone()))], t) {
        Some(_) if checked.failed() => output::line("the stack's checks failed: no ARN printed"),
        Some(arns) => {
            output::stdout(&formats::one(format, formats::Refs::Arns, &format!("{} merged as layer {layer}", about(s)), &source, &arns))
        }
        None => output::note(format_args!(
            "next: `cargo xtask publish {layer} --profile {}`; then this command prints its ARN (or attach it alone: `layers = [\"{layer}\"]` in a stack)",
            t.profile
        )),
    }
    Ok(!checked.failed())
}
