//! `layers.toml` and `layer.toml` as written: their serde structs (`deny_unknown_fields`:
//! an unknown key is an error naming the key, the file and the line), the deserialisers
//! that check a key's value as it is read (a word from a set, a list of runtimes or
//! architectures, `exclude` patterns), and the reading of a file with `FILE:LINE` errors.
//!
//! A new key goes into the struct of the file it is written in; a check of its value alone
//! goes into its deserialiser here (so the parser reports the line), a check against other
//! keys into the resolution (`layer.rs`, `profile.rs`, `stack.rs`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::layer::check_exclude;
use super::profile::{default_layer_name, default_prefix};
use super::{Builder, Installer, SlimLevel};
use crate::quote::clip;
use crate::runtime::{Arch, Runtime};

/// `[defaults]` in `layers.toml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Defaults {
    #[serde(default, deserialize_with = "de_targets")]
    pub(super) runtimes: Option<Vec<Runtime>>,
    #[serde(default, deserialize_with = "de_targets")]
    pub(super) architectures: Option<Vec<Arch>>,
    #[serde(default, deserialize_with = "de_builder")]
    pub(super) builder: Option<Builder>,
    #[serde(default, deserialize_with = "de_installer")]
    pub(super) installer: Option<Installer>,
    pub(super) image: Option<String>,
    pub(super) check_image: Option<String>,
    pub(super) license: Option<String>,
    #[serde(default, deserialize_with = "de_slim")]
    pub(super) slim: Option<SlimLevel>,
    #[serde(default, deserialize_with = "de_excludes")]
    pub(super) exclude: Vec<String>,
}

/// One `[profiles.NAME]` table as written, with the spans its checks report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProfileFile {
    pub(super) aws_profile: Option<String>,
    pub(super) regions: Vec<Spanned<String>>,
    pub(super) bucket: Spanned<String>,
    #[serde(default = "default_prefix")]
    pub(super) prefix: String,
    pub(super) account_id: Option<String>,
    pub(super) endpoint_url: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_public: bool,
    pub(super) confirm: Option<Spanned<bool>>,
    #[serde(default = "default_layer_name")]
    pub(super) layer_name: String,
    pub(super) ssm_parameter: Option<Spanned<String>>,
}

/// `layers.toml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RepoFile {
    #[serde(default)]
    pub(super) defaults: Defaults,
    /// Build images per `RUNTIME-ARCH`, overriding `defaults.image`.
    #[serde(default)]
    pub(super) images: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, Spanned<ProfileFile>>,
    #[serde(default)]
    pub(super) stacks: BTreeMap<String, StackFile>,
}

/// One `[stacks.NAME]` table in `layers.toml`: what one function attaches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StackFile {
    pub(super) layers: Vec<String>,
    pub(super) runtime: Spanned<String>,
    pub(super) arch: Option<Spanned<String>>,
    pub(super) function_bytes: Option<u64>,
}

/// `layers.local.toml`: this machine's settings, merged over the committed files (see
/// `local.rs`). Only what is machine-specific: the images a build and a check run in, and
/// where an emulator profile's endpoint is. Nothing that changes what a layer is.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct LocalFile {
    /// The build image of every layer and target (a template, like `defaults.image`).
    pub(super) image: Option<String>,
    /// The image the import check runs in, for every layer and target.
    pub(super) check_image: Option<String>,
    /// Build images per `RUNTIME-ARCH`, over `image`.
    #[serde(default)]
    pub(super) images: BTreeMap<String, Spanned<String>>,
    /// Check images per `RUNTIME-ARCH`, over `check_image`.
    #[serde(default)]
    pub(super) check_images: BTreeMap<String, Spanned<String>>,
    /// Machine settings of deploy profiles that layers.toml defines.
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, Spanned<LocalProfileFile>>,
}

/// One `[profiles.NAME]` table of `layers.local.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LocalProfileFile {
    /// This machine's name of the AWS profile (its ~/.aws/config).
    pub(super) aws_profile: Option<String>,
    /// Where this machine's emulator listens (only a profile that has one in layers.toml).
    pub(super) endpoint_url: Option<Spanned<String>>,
}

/// `layers/<name>/layer.toml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct LayerFile {
    pub(super) description: Option<String>,
    pub(super) license: Option<String>,
    #[serde(default, deserialize_with = "de_targets")]
    pub(super) runtimes: Option<Vec<Runtime>>,
    #[serde(default, deserialize_with = "de_targets")]
    pub(super) architectures: Option<Vec<Arch>>,
    #[serde(default, deserialize_with = "de_builder")]
    pub(super) builder: Option<Builder>,
    #[serde(default, deserialize_with = "de_installer")]
    pub(super) installer: Option<Installer>,
    pub(super) image: Option<String>,
    pub(super) check_image: Option<String>,
    #[serde(default)]
    pub(super) requires: Vec<String>,
    #[serde(default, deserialize_with = "de_slim")]
    pub(super) slim: Option<SlimLevel>,
    #[serde(default, deserialize_with = "de_excludes")]
    pub(super) exclude: Vec<String>,
    #[serde(default)]
    pub(super) public: bool,
    #[serde(default)]
    pub(super) share_with_accounts: Vec<String>,
    pub(super) share_with_organization: Option<String>,
    pub(super) merge: Option<Vec<String>>,
}

/// A config file as read: its name as shown and its text, to turn a span into a line.
pub(super) struct ConfigText {
    pub(super) display: String,
    pub(super) text: String,
}

impl ConfigText {
    /// `FILE:LINE` of the byte offset where `span` starts.
    pub(super) fn at(&self, span: Range<usize>) -> String {
        format!("{}:{}", self.display, line_of(&self.text, span.start))
    }
}

/// The 1-based line of byte offset `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Parses TOML, turning serde's multi-line report into `FILE:LINE: message`.
pub(super) fn parse_toml<T: for<'de> Deserialize<'de>>(path: &Path, display: &str) -> Result<(T, ConfigText)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {display}"))?;
    let src = ConfigText { display: display.to_string(), text };
    let value = toml::from_str(&src.text).map_err(|e| {
        let msg = clip_message(&e.message().trim().replace('\n', " "));
        match e.span() {
            Some(s) => anyhow::anyhow!("invalid config in {}: {msg}", src.at(s)),
            None => anyhow::anyhow!("invalid config in {display}: {msg}"),
        }
    })?;
    Ok((value, src))
}

/// A parser's message quotes what it read (an unknown key, a value): keep it readable
/// however long that input was.
fn clip_message(msg: &str) -> String {
    crate::quote::clip_to(msg, 4 * crate::quote::MAX_QUOTED)
}

/// A file of the layer repo that must not be a link to a file elsewhere: the repo is what
/// a pull request reviews and what the fingerprint covers.
pub fn ensure_inside(path: &Path, root: &Path, display: &str) -> Result<()> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let real = path.canonicalize().with_context(|| format!("cannot read {display}"))?;
    if !real.starts_with(&root) {
        bail!(
            "{display} is a link to {}, outside the layer repo: a layer's files must be inside the repo (what a pull request reviews); replace the link with the file itself",
            clip(&real.display().to_string())
        );
    }
    Ok(())
}

/// A config value as an error message shows it.
fn shown(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("\"{}\"", clip(s)),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "a list".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// A key that takes one of a few words: anything else is an error naming the key and
/// every valid value. Reported by the parser, so the message carries the file and line.
fn one_of<'de, D: Deserializer<'de>, T: Copy>(d: D, key: &str, values: &[(&str, T)]) -> Result<Option<T>, D::Error> {
    let v = toml::Value::deserialize(d)?;
    if let Some(t) = v.as_str().and_then(|s| values.iter().find(|(n, _)| *n == s)) {
        return Ok(Some(t.1));
    }
    let valid: Vec<String> = values.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    Err(D::Error::custom(format!("`{key}` must be one of {}, not {}", valid.join(", "), shown(&v))))
}

fn de_slim<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SlimLevel>, D::Error> {
    one_of(d, "slim", &[("none", SlimLevel::None), ("safe", SlimLevel::Safe), ("aggressive", SlimLevel::Aggressive)])
}

fn de_builder<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Builder>, D::Error> {
    one_of(d, "builder", &[("docker", Builder::Docker), ("pip", Builder::Pip)])
}

fn de_installer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Installer>, D::Error> {
    one_of(d, "installer", &[("uv", Installer::Uv), ("pip", Installer::Pip)])
}

/// What a layer is built for and lists by name: runtimes and architectures. Both lists
/// are read by one code, [`de_targets`].
pub(super) trait Target: Copy + PartialEq {
    /// The key that lists them, in `[defaults]` and in layer.toml.
    const KEY: &'static str;
    /// The one a layer is built for when no file sets the key; messages' example, too.
    const DEFAULT: &'static str;
    /// Every valid name, as messages list them.
    fn valid() -> String;
    fn parse(name: &str) -> Result<Self>;
}

impl Target for Runtime {
    const KEY: &'static str = "runtimes";
    const DEFAULT: &'static str = "python3.13";
    fn valid() -> String {
        let ids: Vec<&str> = crate::runtime::RUNTIMES.iter().map(|r| r.id).collect();
        ids.join(", ")
    }
    fn parse(name: &str) -> Result<Runtime> {
        Runtime::parse(name)
    }
}

impl Target for Arch {
    const KEY: &'static str = "architectures";
    const DEFAULT: &'static str = "x86_64";
    fn valid() -> String {
        "x86_64, arm64".into()
    }
    fn parse(name: &str) -> Result<Arch> {
        Arch::parse(name)
    }
}

/// A non-empty list of valid runtimes or architectures, each kept once (the first time it
/// is listed). Reported by the parser, so the message carries the file and line.
fn de_targets<'de, D: Deserializer<'de>, T: Target>(d: D) -> Result<Option<Vec<T>>, D::Error> {
    let (key, valid, example) = (T::KEY, T::valid(), T::DEFAULT);
    let v = toml::Value::deserialize(d)?;
    let items = v.as_array().ok_or_else(|| {
        D::Error::custom(format!(
            "`{key}` must be a list of {valid}, e.g. {key} = [\"{}\"], not {}",
            example,
            shown(&v)
        ))
    })?;
    if items.is_empty() {
        return Err(D::Error::custom(format!(
            "`{key}` is empty; name at least one of {valid}, e.g. {key} = [\"{}\"]",
            example
        )));
    }
    let mut out: Vec<T> = Vec::new();
    for item in items {
        let s = item.as_str().ok_or_else(|| {
            D::Error::custom(format!("`{key}` must be a list of {valid}, not a list holding {}", shown(item)))
        })?;
        let t = T::parse(s).map_err(|e| D::Error::custom(format!("`{key}`: {e:#}")))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(Some(out))
}

fn de_excludes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let patterns = Vec::<String>::deserialize(d)?;
    for p in &patterns {
        check_exclude(p).map_err(|e| D::Error::custom(format!("{e:#}")))?;
    }
    Ok(patterns)
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{config_error, repo_with};
    use crate::config::RepoConfig;

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let (_d, repo) = repo_with(&[
            ("layers.toml", "[defaults]\nruntimes = [\"python3.12\"]\n"),
            ("layers/a/requirements.txt", "six==1.16.0\n"),
            ("layers/a/layer.toml", "description = \"x\"\nslimm = \"safe\"\n"),
        ]);
        let cfg = RepoConfig::load(&repo).unwrap();
        let err = format!("{:#}", cfg.layer(&repo, "a").unwrap_err());
        assert!(err.contains("layers/a/layer.toml:2") && err.contains("slimm"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn unknown_runtime_in_defaults_is_reported_against_layers_toml() {
        let (_d, repo) = repo_with(&[("layers.toml", "[defaults]\nruntimes = [\"python2.7\"]\n")]);
        let err = format!("{:#}", RepoConfig::load(&repo).unwrap_err());
        assert!(err.contains("layers.toml") && err.contains("python2.7") && err.contains("python3.12"), "{err}");
    }

    #[test]
    fn empty_lists_and_enum_keys_name_key_file_line_and_valid_values() {
        for (text, layer, needles) in [
            ("[defaults]\nruntimes = []\n", "", &["layers.toml:2", "`runtimes` is empty", "python3.13"][..]),
            ("", "description = \"x\"\nruntimes = []\n", &["layers/a/layer.toml:2", "`runtimes` is empty"]),
            ("", "architectures = []\n", &["layers/a/layer.toml:1", "`architectures` is empty", "x86_64, arm64"]),
            ("", "slim = 3\n", &["layers/a/layer.toml:1", "`slim` must be one of \"none\", \"safe\", \"aggressive\""]),
            ("[defaults]\nslim = \"max\"\n", "", &["layers.toml:2", "`slim` must be one of", "\"max\""]),
            ("", "builder = \"podman\"\n", &["layer.toml:1", "`builder` must be one of \"docker\", \"pip\""]),
            (
                "",
                "slim = \"safe\"\ninstaller = \"poetry\"\n",
                &["layers/a/layer.toml:2", "`installer` must be one of \"uv\", \"pip\"", "\"poetry\""],
            ),
            (
                "[defaults]\ninstaller = true\n",
                "",
                &["layers.toml:2", "`installer` must be one of \"uv\", \"pip\", not true"],
            ),
            ("", "architectures = \"arm64\"\n", &["layer.toml:1", "`architectures` must be a list", "arm64"]),
            ("", "runtimes = [\"python3.9\"]\n", &["layer.toml:1", "unknown runtime `python3.9`", "python3.10"]),
            ("", "runtimes = [3]\n", &["layer.toml:1", "`runtimes` must be a list of python3.10"]),
        ] {
            let err = config_error(text, layer);
            for n in needles {
                assert!(err.contains(n), "`{n}` not in: {err}");
            }
        }
    }

    #[test]
    fn a_layer_toml_linked_from_outside_the_repo_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("layer.toml"), "description = \"elsewhere\"\n").unwrap();
        let (d, repo) = repo_with(&[("layers/a/requirements.txt", "six==1.16.0\n")]);
        std::os::unix::fs::symlink(outside.path().join("layer.toml"), d.path().join("layers/a/layer.toml")).unwrap();
        let cfg = RepoConfig::load(&repo).unwrap();
        let err = format!("{:#}", cfg.layer(&repo, "a").unwrap_err());
        assert!(err.contains("layers/a/layer.toml is a link") && err.contains("outside the layer repo"), "{err}");
    }
}
