//! The layers of a stack as built units: each one planned for the stack's runtime and
//! architecture, built with `unit::build` when dist/ is not current, and read back from its
//! zip (the paths it ships, and its distributions for the closure check).

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::config::StackConfig;
use crate::python::{self, Dist};
use crate::report::BuildReport;
use crate::unit::{self, Context, Unit};

/// One layer of a stack, built for the stack's target.
pub struct Member {
    pub name: String,
    pub unit: Unit,
    pub report: BuildReport,
}

/// The stack's layers that target its runtime and architecture, built; and for the
/// others, why not (one line each, saying what to change).
pub fn resolve(ctx: &Context, stack: &StackConfig) -> Result<(Vec<Member>, Vec<String>)> {
    let (mut members, mut off_target) = (Vec::new(), Vec::new());
    for name in &stack.layers {
        if !ctx.repo.layers_dir().join(name).is_dir() {
            anyhow::bail!("stack {} in layers.toml names layer {name}, which does not exist (no layers/{name}/): fix `layers` or create it with `cargo xtask new {name}`", stack.name);
        }
        let units = unit::plan(ctx, name).with_context(|| format!("stack {}: layer {name}", stack.name))?;
        let Some(u) = units.iter().find(|u| u.runtime == stack.runtime && u.arch == stack.arch).cloned() else {
            let targets: Vec<String> = units.iter().map(|u| format!("{} {}", u.runtime, u.arch)).collect();
            off_target.push(format!(
                "layer {name} is built for {}, not {} {}: add them to `runtimes`/`architectures` in layers/{name}/layer.toml",
                targets.join(", "),
                stack.runtime,
                stack.arch
            ));
            continue;
        };
        let report = unit::build(ctx, &u, false)
            .with_context(|| format!("cannot build {} for stack {}", u.label(), stack.name))?
            .report()
            .clone();
        members.push(Member { name: name.clone(), unit: u, report });
    }
    Ok((members, off_target))
}

/// The distributions a layer's zip ships, read from its `python/*.dist-info/METADATA`
/// files (only those are unpacked, into `scratch`).
pub fn dists(zip: &Path, layer: &str, scratch: &Path) -> Result<Vec<Dist>> {
    let file = std::fs::File::open(zip).with_context(|| format!("cannot open {}", zip.display()))?;
    let mut z = zip::ZipArchive::new(file).with_context(|| format!("cannot read {} as a zip", zip.display()))?;
    let python = scratch.join("python");
    std::fs::create_dir_all(&python).with_context(|| format!("cannot create {}", python.display()))?;
    for i in 0..z.len() {
        let mut e = z.by_index(i).with_context(|| format!("cannot read {}", zip.display()))?;
        let name = e
            .name()
            .with_context(|| format!("{} holds an entry whose name cannot be read", zip.display()))?
            .into_owned();
        let parts: Vec<&str> = name.split('/').collect();
        let is_metadata =
            matches!(parts.as_slice(), ["python", d, "METADATA"] if d.ends_with(".dist-info") && !d.contains(".."));
        if !is_metadata || e.is_dir() {
            continue;
        }
        let dir = python.join(parts[1]);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut out =
            std::fs::File::create(dir.join("METADATA")).with_context(|| format!("cannot write {}", dir.display()))?;
        std::io::copy(&mut e, &mut out)
            .with_context(|| format!("cannot unpack {} from {}", parts[1], zip.display()))?;
    }
    python::read_dists(&python, layer)
}
