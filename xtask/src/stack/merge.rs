//! Merged layers: one layer made of other layers' built zips, for a function that needs
//! more than Lambda's 5 layers.
//!
//! A merged layer is a real layer folder, `layers/<NAME>/`, whose `layer.toml` says
//! `merge = ["numpy", "pandas", ...]`, so `layer`, `check`, `list`, `status`, `publish` and
//! `publish-all` treat it like any other layer and CI can rebuild it from the repo alone.
//! Its source is `config::Source::Merge`: `unit::plan` plans its members' units as its
//! dependencies, `unit::build` builds them first (in the same run) and the install stage
//! (`build/merge.rs`) unpacks their zips in order into `python/`, a later member's copy
//! replacing an earlier one's as Lambda would. Slimming, the size limit, deterministic
//! packaging and the build report follow as for any layer. Its fingerprint derives from
//! its members' (see `unit::plan`), so any change to a member rebuilds it.
//!
//! `cargo xtask stack S --merge NAME` writes the folder ([`write_folder`]): the
//! `layer.toml` and a generated `requirements.txt` (the members' requirements, used for
//! the published Description and by `repo::layer_names`, never installed).

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};

use crate::config::StackConfig;
use crate::repo::Repo;
use crate::requirements_txt::Requirements;

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
    use crate::runtime::{Arch, Runtime};

    fn stack(layers: &[&str]) -> StackConfig {
        StackConfig {
            name: "s".into(),
            layers: layers.iter().map(|s| s.to_string()).collect(),
            runtime: Runtime::parse("python3.13").unwrap(),
            arch: Arch::X86_64,
            function_bytes: 0,
        }
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
}
