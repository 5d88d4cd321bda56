//! `cargo xtask new NAME [REQUIREMENT...] [--requires auto|LAYER,...]`: scaffolds
//! `layers/NAME/` (requirements.in and a commented layer.toml) and locks it into
//! requirements.txt. Packages another layer already ships are a warning naming the
//! `--requires` that leaves them out (the lock's); `--requires` writes it.

use anyhow::{bail, Context, Result};

use crate::repo::{validate_layer_name, Repo};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layer's name (letters, digits, `-`, `_`)
    pub name: String,
    /// Requirements written to requirements.in and locked, e.g. `requests` or `pandas>=2.2`
    pub requirements: Vec<String>,
    /// Layers this one requires (their packages are left out of its lock); `auto`: every existing layer providing part of its closure
    #[arg(long, value_name = "auto|LAYER,...", value_delimiter = ',', value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub requires: Vec<String>,
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    let name = &args.name;
    validate_layer_name(name)?;
    let dir = repo.layers_dir().join(name);
    if dir.exists() {
        bail!("layer `{name}` already exists: edit layers/{name}/requirements.in (or requirements.txt) instead");
    }
    // Checked before anything is written: a typo names the closest layer.
    if let super::lock::Requires::Layers(layers) = super::lock::Requires::of(&args.requires)? {
        for r in &layers {
            repo.layer_dir(r).map_err(|e| anyhow::anyhow!("--requires {r}: {e:#}"))?;
        }
    }
    if !args.requires.is_empty() && args.requirements.is_empty() {
        bail!("--requires is applied when the layer is locked: name its requirements too (`cargo xtask new {name} pandas --requires auto`)");
    }
    let mut text = String::from(
        "# What this layer provides: one requirement per line (`requests`, `pandas>=2.2`, `boto3[crt]`).\n\
         # `cargo xtask lock NAME` resolves it into requirements.txt: every dependency pinned and hashed.\n",
    )
    .replace("NAME", name);
    for r in &args.requirements {
        if r.starts_with('-') || crate::python::Requirement::parse(r).is_none() {
            bail!(
                "`{}` is not a requirement: name packages as `name`, `name>=1.2` or `name[extra]`",
                crate::quote::clip(r)
            );
        }
        text.push_str(r);
        text.push('\n');
    }
    let layer_toml = format!(
        "# Settings for layer {name}; every key is optional and overrides [defaults] in layers.toml.\n\
         description = \"{name}\"\n\
         # license = \"MIT\"\n\
         # runtimes = [\"python3.12\"]\n\
         # architectures = [\"x86_64\"]\n\
         # requires = []            # layers attached before this one (their packages are left out of its lock)\n\
         # slim = \"safe\"            # none | safe | aggressive\n\
         # exclude = []             # globs relative to python/, e.g. \"mypkg/data/**\"\n\
         # public = false           # share published versions with every AWS account\n\
         # share_with_accounts = [] # or with these account ids\n\
         # share_with_organization = \"o-xxxxxxxxxx\"\n"
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create layers/{name}"))?;
    std::fs::write(dir.join("requirements.in"), text)?;
    std::fs::write(dir.join("layer.toml"), layer_toml)?;
    crate::output::status("created", format_args!("layers/{name}/requirements.in and layers/{name}/layer.toml"));
    if args.requirements.is_empty() {
        crate::output::note(format_args!(
            "next: add requirements to layers/{name}/requirements.in, then `cargo xtask lock {name}` and `cargo xtask layer {name}`"
        ));
        return Ok(true);
    }
    let lock = super::lock::Args {
        names: vec![name.clone()],
        all: false,
        upgrade: false,
        upgrade_package: Vec::new(),
        check: false,
        requires: args.requires.clone(),
        output: super::args::OutputArgs { json: false },
    };
    match super::lock::run(repo, &lock) {
        Ok(true) => {}
        // Nothing half-made stays behind: the folder is removed, so `new` can run again.
        Ok(false) => {
            let _ = std::fs::remove_dir_all(&dir);
            bail!("layer {name} not created: its requirements cannot be locked (see above)");
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.context(format!("layer {name} not created")));
        }
    }
    crate::output::note(format_args!("next: `cargo xtask layer {name}`, then `cargo xtask check {name}`"));
    Ok(true)
}
