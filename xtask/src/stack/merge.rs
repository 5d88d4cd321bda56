//! Merged layers: one layer made of other layers' built zips, for a function that needs
//! more than Lambda's 5 layers.
//!
//! A merged layer is a real layer folder, `layers/<NAME>/`, whose `layer.toml` says
//! `merge = ["numpy", "pandas", ...]`, so `layer`, `check`, `list`, `status`, `publish` and
//! `publish-all` treat it like any other layer and CI can rebuild it from the repo alone.
//! It passes through the same pipeline as every unit (`unit::build`): only the install
//! stage differs, where `build::install` calls [`unpack`] instead of pip, which builds the
//! members (when dist/ is not current) and unpacks their zips in order into `python/`, a
//! later member's copy replacing an earlier one's as Lambda would. Slimming, the size
//! limit, deterministic packaging and the build report follow as for any layer.
//!
//! Its fingerprint derives from its members': for each target its "image" is
//! `merge of numpy@<fingerprint>, pandas@<fingerprint>` ([`merged_image`]), and the
//! fingerprint hashes the image, so any change to a member rebuilds the merged layer, and
//! the build report says exactly which member builds it was made of.
//!
//! `cargo xtask stack S --merge NAME` writes the folder ([`write_folder`]): the
//! `layer.toml` and a generated `requirements.txt` (the members' requirements, used for
//! the published Description and by `repo::layer_names`, never installed).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::members::{listing, Shipped};
use super::overlap;
use crate::build::BuildInput;
use crate::config::{Builder, LayerConfig, StackConfig};
use crate::fingerprint;
use crate::repo::Repo;
use crate::requirements::Requirements;
use crate::runtime::{Arch, Runtime};
use crate::unit::{self, Context};

const IMAGE_PREFIX: &str = "merge of ";

/// The "image" of a merged layer's unit for one target: its members and their fingerprints.
pub fn merged_image(name: &str, members: &[LayerConfig], runtime: Runtime, arch: Arch) -> Result<String> {
    let mut parts = Vec::new();
    for m in members {
        if !m.targets().contains(&(runtime, arch)) {
            bail!(
                "merged layer {name} targets {runtime} {arch} but its member {0} is not built for it: add them to `runtimes`/`architectures` in layers/{0}/layer.toml, or remove them from layers/{name}/layer.toml",
                m.name
            );
        }
        let reqs = Requirements::read(&m.dir, &m.name)?;
        parts.push((m.name.clone(), fingerprint::compute(m, &reqs, runtime, arch, &member_image(m, runtime, arch))?));
    }
    Ok(image_of(&parts))
}

fn image_of(members: &[(String, String)]) -> String {
    let list: Vec<String> = members.iter().map(|(n, fp)| format!("{n}@{fp}")).collect();
    format!("{IMAGE_PREFIX}{}", list.join(", "))
}

/// The image `unit::plan` gives a member when no `--image` is passed.
fn member_image(m: &LayerConfig, runtime: Runtime, arch: Arch) -> String {
    match m.builder {
        Builder::Pip => format!("pip (host) for {} wheels", arch.machine()),
        Builder::Docker => m.images[&(runtime, arch)].clone(),
    }
}

/// The install stage of a merged unit: builds its members when dist/ is not current, then
/// unpacks their zips in order into `python` (the work folder's `python/`), and reports on
/// stderr the paths two members ship and whose copy was kept.
pub fn unpack(input: &BuildInput<'_>, python: &Path) -> Result<()> {
    let layer = input.layer;
    let name = &layer.name;
    let target = (input.runtime, input.arch);
    if layer.images.get(&target).map(String::as_str) != Some(input.image) {
        bail!(
            "layer {name} is merged from {}: --image does not apply to it; build it without --image",
            layer.merge.join(", ")
        );
    }
    let root = layer
        .dir
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("layer folder {} is not inside a repo", layer.dir.display()))?;
    // A context of its own: the install stage is handed the layer, not the run's context.
    let ctx = Context::new(Repo::at(root)?, None)?;
    let mut built = Vec::new();
    for m in &layer.merge {
        let u = unit::plan(&ctx, m)?.into_iter().find(|u| (u.runtime, u.arch) == target).with_context(|| {
            format!("layer {m}, merged into {name}, is not built for {} {}", input.runtime, input.arch)
        })?;
        if unit::current(&u).is_none() {
            eprintln!("building   {} (merged into {name})", u.label());
        }
        unit::build(&ctx, &u, false)
            .with_context(|| format!("cannot build {}, merged into layer {name}", u.label()))?;
        built.push((m.clone(), u.fingerprint.clone(), u.paths.zip.clone()));
    }
    let now: Vec<(String, String)> = built.iter().map(|(n, f, _)| (n.clone(), f.clone())).collect();
    if image_of(&now) != input.image {
        bail!("the members of merged layer {name} changed while it was being built: run the command again");
    }
    let zips: Vec<(String, PathBuf)> = built.into_iter().map(|(n, _, z)| (n, z)).collect();
    let dest = python.parent().context("the work folder has no parent")?;
    unpack_in_order(&zips, dest)?;
    let listings = zips.iter().map(|(_, z)| listing(z)).collect::<Result<Vec<Vec<Shipped>>>>()?;
    let names: Vec<String> = zips.iter().map(|(n, _)| n.clone()).collect();
    let groups = overlap::group(&overlap::find(&listings), &names);
    if !groups.is_empty() {
        let paths: usize = groups.iter().map(|g| g.paths.len()).sum();
        eprintln!("merge      {name} {} {}: {paths} path(s) shipped by more than one member; the later member's copy is kept:", input.runtime, input.arch);
        for g in &groups {
            eprintln!("    {}", g.describe());
        }
    }
    Ok(())
}

/// Unpacks each zip, in order, into `dest` (their entries start with `python/`): a later
/// zip's file or symlink replaces an earlier one's at the same path; modes are kept as
/// the packager normalised them (0644, or 0755 when executable).
pub fn unpack_in_order(zips: &[(String, PathBuf)], dest: &Path) -> Result<()> {
    for (layer, zip) in zips {
        let file = std::fs::File::open(zip).with_context(|| format!("cannot open {}", zip.display()))?;
        let mut z = zip::ZipArchive::new(file).with_context(|| format!("cannot read {} as a zip", zip.display()))?;
        for i in 0..z.len() {
            let mut e = z.by_index(i).with_context(|| format!("cannot read {}", zip.display()))?;
            let rel = e.enclosed_name().filter(|p| p.starts_with("python")).with_context(|| {
                format!("{} holds an entry outside python/: only layer zips can be merged", zip.display())
            })?;
            let target = dest.join(&rel);
            let existing = std::fs::symlink_metadata(&target).ok();
            if e.is_dir() {
                match existing {
                    Some(m) if m.is_dir() => {}
                    Some(_) => bail!(
                        "{} is a file in an earlier layer but a folder in layer {layer}: they cannot be merged",
                        rel.display()
                    ),
                    None => std::fs::create_dir_all(&target)
                        .with_context(|| format!("cannot create {}", target.display()))?,
                }
                continue;
            }
            match existing {
                Some(m) if m.is_dir() => bail!(
                    "{} is a folder in an earlier layer but a file in layer {layer}: they cannot be merged",
                    rel.display()
                ),
                Some(_) => {
                    std::fs::remove_file(&target).with_context(|| format!("cannot replace {}", target.display()))?
                }
                None => {}
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            if e.is_symlink() {
                let mut link = String::new();
                e.read_to_string(&mut link)
                    .with_context(|| format!("cannot read the link {} in {}", rel.display(), zip.display()))?;
                std::os::unix::fs::symlink(&link, &target)
                    .with_context(|| format!("cannot create the link {}", target.display()))?;
            } else {
                let mut out =
                    std::fs::File::create(&target).with_context(|| format!("cannot write {}", target.display()))?;
                std::io::copy(&mut e, &mut out)
                    .with_context(|| format!("cannot unpack {} from {}", rel.display(), zip.display()))?;
                let mode = if e.unix_mode().is_some_and(|m| m & 0o111 != 0) { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
            }
        }
    }
    Ok(())
}

/// What [`write_folder`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Created,
    /// The folder already declared this merge; its requirements.txt was regenerated.
    Kept,
}

/// Creates `layers/<name>/` as the merged layer of `stack` (or checks that it already is
/// one, with the same members), and (re)writes its generated requirements.txt.
pub fn write_folder(repo: &Repo, stack: &StackConfig, name: &str) -> Result<Folder> {
    crate::repo::validate_layer_name(name).context("--merge")?;
    if stack.layers.iter().any(|l| l == name) {
        bail!(
            "--merge {name}: {name} is a layer of stack {}; name the merged layer differently, e.g. {}-merged",
            stack.name,
            stack.name
        );
    }
    let dir = repo.layers_dir().join(name);
    let toml_path = dir.join("layer.toml");
    let outcome = if toml_path.is_file() {
        let text =
            std::fs::read_to_string(&toml_path).with_context(|| format!("cannot read layers/{name}/layer.toml"))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("invalid config in layers/{name}/layer.toml"))?;
        let Some(merge) = table.get("merge") else {
            bail!("layers/{name} is an ordinary layer (its layer.toml has no `merge`): pick another name for --merge");
        };
        let merge: Vec<&str> =
            merge.as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
        if merge != stack.layers.iter().map(String::as_str).collect::<Vec<_>>() {
            bail!(
                "layers/{name}/layer.toml merges [{}], not the layers of stack {} [{}]: edit its `merge`, or remove layers/{name}/ and run this again",
                merge.join(", "),
                stack.name,
                stack.layers.join(", ")
            );
        }
        Folder::Kept
    } else if dir.join("requirements.txt").is_file() {
        bail!("layers/{name} is an ordinary layer (it has a requirements.txt): pick another name for --merge");
    } else {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create layers/{name}"))?;
        crate::package::write_atomically(&toml_path, layer_toml(stack, name).as_bytes())
            .with_context(|| format!("cannot write layers/{name}/layer.toml"))?;
        Folder::Created
    };
    let mut members = Vec::new();
    for l in &stack.layers {
        members.push((l.clone(), Requirements::read(&repo.layers_dir().join(l), l)?.lines));
    }
    let text = requirements_txt(stack, name, &members);
    let path = dir.join("requirements.txt");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        crate::package::write_atomically(&path, text.as_bytes())
            .with_context(|| format!("cannot write layers/{name}/requirements.txt"))?;
    }
    Ok(outcome)
}

fn quoted(items: &[String]) -> String {
    items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ")
}

fn layer_toml(stack: &StackConfig, name: &str) -> String {
    format!(
        "# A merged layer: the built zips of the layers in `merge`, unpacked in this order into\n\
         # one layer (a later layer's copy wins a path two of them ship), for stack {s}.\n\
         # Made by `cargo xtask stack {s} --merge {name}`. `cargo xtask layer {name}` rebuilds\n\
         # it whenever a member changes, and it publishes like any other layer. description,\n\
         # license, runtimes, architectures, exclude, check_image and sharing may be set as\n\
         # for any layer; builder, image and aggressive slimming may not (docs/stacks.md).\n\
         description = \"merged for stack {s}: {members}\"\n\
         merge = [{merge}]\n\
         runtimes = [\"{runtime}\"]\n\
         architectures = [\"{arch}\"]\n",
        s = stack.name,
        members = stack.layers.join(", "),
        merge = quoted(&stack.layers),
        runtime = stack.runtime,
        arch = stack.arch,
    )
}

/// The generated requirements.txt: every member's requirements, one line per distribution
/// (a later member's line replacing an earlier one's for the same name), pip options left out.
fn requirements_txt(stack: &StackConfig, name: &str, members: &[(String, Vec<String>)]) -> String {
    let mut lines: Vec<(String, String, String)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (layer, reqs) in members {
        for line in reqs.iter().filter(|l| !l.starts_with('-')) {
            let key = requirement_key(line);
            match index.get(&key) {
                Some(&i) => lines[i] = (key, line.clone(), layer.clone()),
                None => {
                    index.insert(key.clone(), lines.len());
                    lines.push((key, line.clone(), layer.clone()));
                }
            }
        }
    }
    let mut out = format!(
        "# Generated by `cargo xtask stack {} --merge {name}`; do not edit.\n\
         # The requirements of {}, for reference and the published description:\n\
         # this layer is not installed from this file but made of those layers' built zips\n\
         # (`merge` in layer.toml).\n",
        stack.name,
        stack.layers.join(", ")
    );
    for (_, line, layer) in lines {
        out.push_str(&format!("{line}  # from {layer}\n"));
    }
    out
}

/// The normalised distribution name a requirement line installs, or the line itself (a
/// local file).
fn requirement_key(line: &str) -> String {
    crate::python::requirement_name(line).unwrap_or_else(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(layers: &[&str]) -> StackConfig {
        StackConfig {
            name: "s".into(),
            layers: layers.iter().map(|s| s.to_string()).collect(),
            runtime: Runtime::parse("python3.13").unwrap(),
            arch: Arch::X86_64,
            function_bytes: 0,
        }
    }

    /// A zip of `files` (path under python/, content, executable) made by the packager.
    fn layer_zip(dir: &Path, name: &str, files: &[(&str, &str, bool)]) -> PathBuf {
        let root = dir.join(format!("{name}-tree"));
        for (path, content, exec) in files {
            let p = root.join("python").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if *exec { 0o755 } else { 0o644 })).unwrap();
        }
        let zip = dir.join(format!("{name}.zip"));
        std::fs::write(&zip, crate::package::package(&root).unwrap().bytes).unwrap();
        zip
    }

    #[test]
    fn later_zips_win_and_the_union_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let a =
            layer_zip(d.path(), "a", &[("six.py", "old", false), ("a/__init__.py", "a", false), ("tool", "#!", true)]);
        let b = layer_zip(d.path(), "b", &[("six.py", "new", false), ("b.py", "b", false)]);
        let out = d.path().join("out");
        unpack_in_order(&[("a".into(), a), ("b".into(), b)], &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("python/six.py")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(out.join("python/a/__init__.py")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(out.join("python/b.py")).unwrap(), "b");
        assert_eq!(std::fs::metadata(out.join("python/tool")).unwrap().permissions().mode() & 0o777, 0o755);
        let merged = crate::package::package(&out).unwrap();
        assert_eq!(merged.file_count, 4);
    }

    #[test]
    fn a_file_against_a_folder_cannot_be_merged() {
        let d = tempfile::tempdir().unwrap();
        let a = layer_zip(d.path(), "a", &[("x/__init__.py", "", false)]);
        let b = layer_zip(d.path(), "b", &[("x", "file", false)]);
        let err = unpack_in_order(&[("a".into(), a), ("b".into(), b)], &d.path().join("out")).unwrap_err().to_string();
        assert!(err.contains("python/x is a folder in an earlier layer but a file in layer b"), "{err}");
    }

    #[test]
    fn generated_requirements_take_the_later_line_for_a_name() {
        let members = vec![
            (
                "a".to_string(),
                vec!["six==1.16.0".to_string(), "--only-binary=:all:".to_string(), "idna==3.10".to_string()],
            ),
            ("b".to_string(), vec!["Six==1.17.0".to_string()]),
        ];
        let text = requirements_txt(&stack(&["a", "b"]), "m", &members);
        let reqs = Requirements::parse(&text, "m").unwrap();
        assert_eq!(reqs.lines, vec!["Six==1.17.0", "idna==3.10"]);
        assert!(text.contains("Six==1.17.0  # from b"), "{text}");
        let toml = layer_toml(&stack(&["a", "b"]), "m");
        let t: toml::Table = toml::from_str(&toml).unwrap();
        assert_eq!(t["merge"].as_array().unwrap().len(), 2);
        assert_eq!(t["runtimes"].as_array().unwrap()[0].as_str(), Some("python3.13"));
    }

    #[test]
    fn the_image_names_every_member_fingerprint() {
        assert_eq!(image_of(&[("a".into(), "f1".into()), ("b".into(), "f2".into())]), "merge of a@f1, b@f2");
    }
}
