//! Reads `layers.toml` (the repo's defaults and deploy profiles), this machine's optional
//! `layers.local.toml` (images, emulator endpoints: [`local`]) and each layer's optional
//! `layer.toml`, and resolves them into one [`LayerConfig`] per layer.
//!
//! Every key is known: an unknown or mistyped key is an error naming the key, the file and
//! the line, so a typo never silently falls back to a default.
//!
//! `layers.toml` also declares stacks (`[stacks.NAME]`: the layers one function attaches,
//! resolved into [`StackConfig`]), and a `layer.toml` may declare a merged layer
//! (`merge = [...]`: one layer made of other layers' built zips, see `stack/merge.rs`).
//!
//! Resolution reads configuration and nothing else: it never hashes files or builds
//! (fingerprints are `unit::plan`'s, builds `unit::build`'s).

//! The code is split by concept: [`schema`] is the files as written (serde structs, the
//! deserialisers that check a key's value, `FILE:LINE` errors), [`layer`] resolves one
//! layer into [`LayerConfig`], [`profile`] checks deploy profiles and [`stack`] stacks.
//! This module reads `layers.toml` once ([`RepoConfig::load`]) and re-exports what the
//! rest of the crate uses.

mod layer;
mod local;
mod profile;
mod schema;
mod stack;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use anyhow::Result;

pub use layer::{expand_image, Builder, Installer, LayerConfig, SlimLevel, Source, DEFAULT_CHECK_IMAGE, DEFAULT_IMAGE};
pub use local::LOCAL_FILE;
pub use profile::{check_profile, Profile};
pub use schema::ensure_inside;
pub use stack::{StackConfig, DEFAULT_FUNCTION_BYTES};

use crate::repo::Repo;
use schema::{parse_toml, ConfigText, Defaults, RepoFile};

/// The repo's settings, read once.
#[derive(Debug)]
pub struct RepoConfig {
    defaults: Defaults,
    images: BTreeMap<String, String>,
    /// This machine's `layers.local.toml`, over the committed files.
    local: local::Local,
    pub profiles: BTreeMap<String, Profile>,
    pub stacks: BTreeMap<String, StackConfig>,
    /// Warnings about each profile, printed once when the profile is used.
    profile_warnings: BTreeMap<String, Vec<String>>,
    warned: Mutex<BTreeSet<String>>,
    /// Each layer's resolved settings, read once (by repo root and name).
    layers: Mutex<BTreeMap<(std::path::PathBuf, String), LayerConfig>>,
}

impl RepoConfig {
    pub fn load(repo: &Repo) -> Result<RepoConfig> {
        let path = repo.root.join("layers.toml");
        let (file, src): (RepoFile, ConfigText) = if path.exists() {
            parse_toml(&path, "layers.toml")?
        } else {
            (RepoFile::default(), ConfigText { display: "layers.toml".into(), text: String::new() })
        };
        let mut stacks = BTreeMap::new();
        for (name, s) in file.stacks {
            stacks.insert(name.clone(), stack::resolve_stack(&name, s, &src)?);
        }
        let mut profiles = BTreeMap::new();
        let mut profile_warnings = BTreeMap::new();
        for (name, p) in file.profiles {
            let (profile, warnings) = profile::resolve_profile(&name, p, &src)?;
            profiles.insert(name.clone(), profile);
            profile_warnings.insert(name, warnings);
        }
        let local = local::load(repo, &mut profiles, &mut profile_warnings)?;
        let cfg = RepoConfig {
            defaults: file.defaults,
            images: file.images,
            local,
            profiles,
            stacks,
            profile_warnings,
            warned: Mutex::new(BTreeSet::new()),
            layers: Mutex::new(BTreeMap::new()),
        };
        // The defaults' values were checked as the file was read (`schema`), so a bad
        // default is reported against layers.toml; the [images] keys are checked here.
        layer::check_image_keys(&cfg.images)?;
        if crate::output::is_verbose() {
            cfg.note_local_settings();
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    //! What the tests of every part share: a throw-away repo and the error a config makes.

    use super::*;

    /// A throw-away repo holding `files` (path, text).
    pub(super) fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let repo = Repo::at(dir.path()).unwrap();
        (dir, repo)
    }

    /// The one-line error of loading layers.toml `text` and resolving layer `a` (whose
    /// layer.toml is `layer`).
    pub(super) fn config_error(text: &str, layer: &str) -> String {
        let (_d, repo) = repo_with(&[
            ("layers.toml", text),
            ("layers/a/requirements.txt", "six==1.16.0\n"),
            ("layers/a/layer.toml", layer),
        ]);
        let err = match RepoConfig::load(&repo) {
            Err(e) => e,
            Ok(cfg) => cfg.layer(&repo, "a").expect_err("config should be refused"),
        };
        let err = format!("{err:#}");
        assert!(!err.contains('\n'), "{err}");
        err
    }
}
