//! `cargo xtask new NAME [REQUIREMENT...]`: scaffolds `layers/NAME/`.

use anyhow::{bail, Context, Result};

use crate::repo::{validate_layer_name, Repo};
use crate::requirements::Requirements;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layer's name (letters, digits, `-`, `_`)
    pub name: String,
    /// Requirements, pinned as `package==version`
    pub requirements: Vec<String>,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let name = &args.name;
    validate_layer_name(name)?;
    let dir = repo.layers_dir().join(name);
    if dir.exists() {
        bail!("layer `{name}` already exists: edit layers/{name}/requirements.txt instead");
    }
    let mut text = String::from("# One package per line, pinned with `==` so every build installs the same files.\n");
    for r in &args.requirements {
        text.push_str(r);
        text.push('\n');
    }
    if !args.requirements.is_empty() {
        let parsed = Requirements::parse(&text, name)?;
        if !parsed.unpinned.is_empty() {
            bail!("pin every requirement as `package==version`: {}", parsed.unpinned.join(", "));
        }
    }
    let layer_toml = format!(
        "# Settings for layer {name}; every key is optional and overrides [defaults] in layers.toml.\n\
         description = \"{name}\"\n\
         # license = \"MIT\"\n\
         # runtimes = [\"python3.12\"]\n\
         # architectures = [\"x86_64\"]\n\
         # slim = \"safe\"            # none | safe | aggressive\n\
         # exclude = []             # globs relative to python/, e.g. \"mypkg/data/**\"\n\
         # public = false           # share published versions with every AWS account\n\
         # share_with_accounts = [] # or with these account ids\n\
         # share_with_organization = \"o-xxxxxxxxxx\"\n"
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create layers/{name}"))?;
    std::fs::write(dir.join("requirements.txt"), text)?;
    std::fs::write(dir.join("layer.toml"), layer_toml)?;
    crate::output::status("created", format_args!("layers/{name}/requirements.txt and layers/{name}/layer.toml"));
    if args.requirements.is_empty() {
        crate::output::note(format_args!(
            "next: add `package==version` lines to layers/{name}/requirements.txt, then `cargo xtask layer {name}`"
        ));
    } else {
        crate::output::note(format_args!("next: `cargo xtask layer {name}`"));
    }
    Ok(true)
}
