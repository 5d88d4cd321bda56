//! Reads `layers.toml` (the repo's defaults and deploy profiles) and each layer's optional
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

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;

use crate::quote::clip;

use crate::repo::Repo;
use crate::runtime::{Arch, Runtime};

/// The image used when neither `layers.toml` nor `layer.toml` names one: AWS SAM's
/// maintained build images, which match Lambda's Amazon Linux and glibc.
pub const DEFAULT_IMAGE: &str = "public.ecr.aws/sam/build-{runtime}:latest-{arch}";

/// The image the import check runs in: AWS's Lambda base image for the runtime, the same
/// files a function sees (its entry point is overridden).
pub const DEFAULT_CHECK_IMAGE: &str = "public.ecr.aws/lambda/python:{python}-{arch}";

/// How much of the installed tree is removed before zipping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SlimLevel {
    /// Keep everything pip installed.
    None,
    /// Remove what no import needs: caches, test suites, install records, scripts.
    #[default]
    Safe,
    /// Also remove type stubs, C sources and headers, and strip shared libraries.
    Aggressive,
}

/// Which program installs the requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    /// `pip install` inside a Lambda-compatible build image, through the docker CLI.
    #[default]
    Docker,
    /// pip on the host, installing wheels built for the target (no docker needed).
    Pip,
}

/// Which installer puts the requirements into `python/` (for either builder). Both install
/// the same wheels with `--no-deps` from the pinned requirements.txt; the zips they make
/// hold the same files (README, "Installer").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Installer {
    /// `uv pip install`: the pinned uv (a static binary mounted into the build image);
    /// pip when uv cannot be had.
    #[default]
    Uv,
    /// `pip install`.
    Pip,
}

/// Where a layer's files come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// pip installs the layer's requirements.txt, run by this builder.
    Pip { builder: Builder },
    /// The built zips of these layers of the repo, unpacked in this order (a later one
    /// wins a path two of them ship): a merged layer, `merge = [...]`.
    Merge { members: Vec<String> },
}

impl Source {
    /// The members of a merged layer; none for a layer pip installs.
    pub fn members(&self) -> &[String] {
        match self {
            Source::Merge { members } => members,
            Source::Pip { .. } => &[],
        }
    }
}

/// `[defaults]` in `layers.toml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default, deserialize_with = "de_runtimes")]
    runtimes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_architectures")]
    architectures: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_builder")]
    builder: Option<Builder>,
    #[serde(default, deserialize_with = "de_installer")]
    installer: Option<Installer>,
    image: Option<String>,
    check_image: Option<String>,
    license: Option<String>,
    #[serde(default, deserialize_with = "de_slim")]
    slim: Option<SlimLevel>,
    #[serde(default, deserialize_with = "de_excludes")]
    exclude: Vec<String>,
}

/// One `[profiles.NAME]` table in `layers.toml`: where and how layers are published.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The AWS profile (shared config and credentials files, SSO included).
    pub aws_profile: Option<String>,
    /// The regions every layer is published to.
    pub regions: Vec<String>,
    /// The S3 bucket the zips are uploaded to.
    pub bucket: String,
    /// The key prefix inside the bucket.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// When set, the caller's account must be this one.
    pub account_id: Option<String>,
    /// An endpoint to use instead of AWS's (an emulator).
    pub endpoint_url: Option<String>,
    /// Whether layers marked `public = true` may be shared with everyone.
    #[serde(default)]
    pub allow_public: bool,
    /// Whether writes need `--yes` (or the profile's name typed at a terminal).
    #[serde(default)]
    pub confirm: bool,
    /// The Lambda layer name; `{layer}`, `{py}` (e.g. py312) and `{arch}` are filled in.
    #[serde(default = "default_layer_name")]
    pub layer_name: String,
}

/// One `[profiles.NAME]` table as written, with the spans its checks report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    aws_profile: Option<String>,
    regions: Vec<Spanned<String>>,
    bucket: Spanned<String>,
    #[serde(default = "default_prefix")]
    prefix: String,
    account_id: Option<String>,
    endpoint_url: Option<Spanned<String>>,
    #[serde(default)]
    allow_public: bool,
    confirm: Option<Spanned<bool>>,
    #[serde(default = "default_layer_name")]
    layer_name: String,
}

fn default_prefix() -> String {
    "layers".into()
}

fn default_layer_name() -> String {
    "{layer}-{py}-{arch}".into()
}

/// `layers.toml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RepoFile {
    #[serde(default)]
    defaults: Defaults,
    /// Build images per `RUNTIME-ARCH`, overriding `defaults.image`.
    #[serde(default)]
    images: BTreeMap<String, String>,
    #[serde(default)]
    profiles: BTreeMap<String, Spanned<ProfileFile>>,
    #[serde(default)]
    stacks: BTreeMap<String, StackFile>,
}

/// One `[stacks.NAME]` table in `layers.toml`: what one function attaches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StackFile {
    layers: Vec<String>,
    runtime: Spanned<String>,
    arch: Option<Spanned<String>>,
    function_bytes: Option<u64>,
}

/// The size a stack leaves for the function's own code when `function_bytes` is not set.
pub const DEFAULT_FUNCTION_BYTES: u64 = 5 * 1024 * 1024;

/// A stack: the layers one function attaches, in order, for one runtime and architecture,
/// and the unzipped size the function's own code needs.
#[derive(Debug, Clone, Serialize)]
pub struct StackConfig {
    pub name: String,
    pub layers: Vec<String>,
    #[serde(serialize_with = "ser_runtime")]
    pub runtime: Runtime,
    pub arch: Arch,
    pub function_bytes: u64,
}

fn ser_runtime<S: serde::Serializer>(r: &Runtime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(r.id)
}

/// `layers/<name>/layer.toml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LayerFile {
    description: Option<String>,
    license: Option<String>,
    #[serde(default, deserialize_with = "de_runtimes")]
    runtimes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_architectures")]
    architectures: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de_builder")]
    builder: Option<Builder>,
    #[serde(default, deserialize_with = "de_installer")]
    installer: Option<Installer>,
    image: Option<String>,
    check_image: Option<String>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default, deserialize_with = "de_slim")]
    slim: Option<SlimLevel>,
    #[serde(default, deserialize_with = "de_excludes")]
    exclude: Vec<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    share_with_accounts: Vec<String>,
    share_with_organization: Option<String>,
    merge: Option<Vec<String>>,
}

/// The repo's settings, read once.
#[derive(Debug)]
pub struct RepoConfig {
    defaults: Defaults,
    images: BTreeMap<String, String>,
    pub profiles: BTreeMap<String, Profile>,
    pub stacks: BTreeMap<String, StackConfig>,
    /// Warnings about each profile, printed once when the profile is used.
    profile_warnings: BTreeMap<String, Vec<String>>,
    warned: Mutex<BTreeSet<String>>,
}

/// One layer's settings with every default applied.
#[derive(Debug, Clone, Serialize)]
pub struct LayerConfig {
    pub name: String,
    #[serde(skip)]
    pub dir: PathBuf,
    pub description: Option<String>,
    pub license: Option<String>,
    #[serde(serialize_with = "ser_runtimes")]
    pub runtimes: Vec<Runtime>,
    pub architectures: Vec<Arch>,
    /// pip with a builder, or a merge of other layers' zips.
    pub source: Source,
    /// uv or pip (a merged layer installs nothing: always the default).
    pub installer: Installer,
    /// Build image per target, already resolved (used by the docker builder only).
    #[serde(skip)]
    pub images: BTreeMap<(Runtime, Arch), String>,
    pub slim: SlimLevel,
    /// Glob patterns relative to `python/`, removed from the tree before zipping.
    pub exclude: Vec<String>,
    /// Share every published version with everyone (only where the profile allows it).
    pub public: bool,
    /// AWS account ids every published version is shared with.
    pub share_with_accounts: Vec<String>,
    /// An AWS Organizations id (`o-...`) every published version is shared with.
    pub share_with_organization: Option<String>,
    /// Layers this one needs at run time (attached before it), e.g. `["numpy"]`.
    pub requires: Vec<String>,
    /// The image the import check runs in, per target, already resolved.
    #[serde(skip)]
    pub check_images: BTreeMap<(Runtime, Arch), String>,
}

impl LayerConfig {
    /// Every (runtime, architecture) this layer is built for.
    pub fn targets(&self) -> Vec<(Runtime, Arch)> {
        let mut out = Vec::new();
        for r in &self.runtimes {
            for a in &self.architectures {
                out.push((*r, *a));
            }
        }
        out
    }
}

fn ser_runtimes<S: serde::Serializer>(r: &[Runtime], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|r| r.id))
}

/// A config file as read: its name as shown and its text, to turn a span into a line.
struct ConfigText {
    display: String,
    text: String,
}

impl ConfigText {
    /// `FILE:LINE` of the byte offset where `span` starts.
    fn at(&self, span: Range<usize>) -> String {
        format!("{}:{}", self.display, line_of(&self.text, span.start))
    }
}

/// The 1-based line of byte offset `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Parses TOML, turning serde's multi-line report into `FILE:LINE: message`.
fn parse_toml<T: for<'de> Deserialize<'de>>(path: &Path, display: &str) -> Result<(T, ConfigText)> {
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
            stacks.insert(name.clone(), resolve_stack(&name, s, &src)?);
        }
        let mut profiles = BTreeMap::new();
        let mut profile_warnings = BTreeMap::new();
        for (name, p) in file.profiles {
            let (profile, warnings) = resolve_profile(&name, p, &src)?;
            profiles.insert(name.clone(), profile);
            profile_warnings.insert(name, warnings);
        }
        let cfg = RepoConfig {
            defaults: file.defaults,
            images: file.images,
            profiles,
            stacks,
            profile_warnings,
            warned: Mutex::new(BTreeSet::new()),
        };
        // Validate the defaults once, so a bad default is reported against layers.toml.
        parse_runtimes(cfg.defaults.runtimes.as_deref(), "layers.toml")?;
        parse_archs(cfg.defaults.architectures.as_deref(), "layers.toml")?;
        for key in cfg.images.keys() {
            let shown = clip(key);
            let (r, a) = key.rsplit_once('-').with_context(|| {
                format!(
                    "invalid config in layers.toml: [images] key `{shown}` must be RUNTIME-ARCH, e.g. python3.12-x86_64"
                )
            })?;
            Runtime::parse(r).with_context(|| format!("invalid config in layers.toml: [images] key `{shown}`"))?;
            Arch::parse(a).with_context(|| format!("invalid config in layers.toml: [images] key `{shown}`"))?;
        }
        Ok(cfg)
    }

    /// Resolves one layer's settings: `layer.toml` over `layers.toml` over built-in defaults.
    pub fn layer(&self, repo: &Repo, name: &str) -> Result<LayerConfig> {
        let dir = repo.layer_dir(name)?;
        let toml_path = dir.join("layer.toml");
        let display = format!("layers/{name}/layer.toml");
        let file: LayerFile = if toml_path.exists() {
            ensure_inside(&toml_path, &repo.root, &display)?;
            parse_toml(&toml_path, &display)?.0
        } else {
            LayerFile::default()
        };
        if file.merge.is_some() {
            return self.merged_layer(repo, name, dir, file, &display);
        }
        let d = &self.defaults;
        let runtimes = match &file.runtimes {
            Some(r) => parse_runtimes(Some(r), &display)?,
            None => parse_runtimes(d.runtimes.as_deref(), "layers.toml")?,
        };
        let architectures = match &file.architectures {
            Some(a) => parse_archs(Some(a), &display)?,
            None => parse_archs(d.architectures.as_deref(), "layers.toml")?,
        };
        let mut images = BTreeMap::new();
        for r in &runtimes {
            for a in &architectures {
                let template = file
                    .image
                    .as_deref()
                    .or_else(|| self.images.get(&format!("{}-{}", r.id, a.as_str())).map(String::as_str))
                    .or(d.image.as_deref())
                    .unwrap_or(DEFAULT_IMAGE);
                images.insert((*r, *a), expand_image(template, *r, *a));
            }
        }
        let mut check_images = BTreeMap::new();
        for (r, a) in images.keys() {
            let template = check_image_template(&file.check_image, d);
            check_images.insert((*r, *a), expand_image(template, *r, *a));
        }
        for req in &file.requires {
            crate::repo::validate_layer_name(req)
                .with_context(|| format!("invalid config in {display}: `requires`"))?;
            if req == name {
                bail!("invalid config in {display}: a layer cannot require itself");
            }
        }
        let mut exclude = d.exclude.clone();
        exclude.extend(file.exclude.iter().cloned());
        validate_excludes(name, &exclude)?;
        Ok(LayerConfig {
            name: name.to_string(),
            dir,
            description: file.description,
            license: file.license.or_else(|| d.license.clone()).filter(|l| !l.is_empty()),
            runtimes,
            architectures,
            source: Source::Pip { builder: file.builder.or(d.builder).unwrap_or_default() },
            installer: file.installer.or(d.installer).unwrap_or_default(),
            images,
            slim: file.slim.or(d.slim).unwrap_or_default(),
            exclude,
            public: file.public,
            share_with_accounts: file.share_with_accounts,
            share_with_organization: file.share_with_organization,
            requires: file.requires,
            check_images,
        })
    }

    /// A merged layer (`merge = [...]` in its layer.toml): its files come from its members'
    /// built zips, so it has no builder, image or slimming of its own. Its members are
    /// planned and built as its dependencies by `unit::plan` and `unit::build`.
    fn merged_layer(
        &self,
        repo: &Repo,
        name: &str,
        dir: PathBuf,
        file: LayerFile,
        display: &str,
    ) -> Result<LayerConfig> {
        let members = file.merge.unwrap_or_default();
        if members.is_empty() {
            bail!(
                "invalid config in {display}: `merge` is empty; list the layers to merge, e.g. [\"numpy\", \"pandas\"]"
            );
        }
        for (i, m) in members.iter().enumerate() {
            crate::repo::validate_layer_name(m).with_context(|| format!("invalid config in {display}: `merge`"))?;
            if m == name {
                bail!("invalid config in {display}: a merged layer cannot merge itself");
            }
            if members[..i].contains(m) {
                bail!("invalid config in {display}: `merge` lists layer {m} twice");
            }
        }
        for (key, set) in [
            ("builder", file.builder.is_some()),
            ("installer", file.installer.is_some()),
            ("image", file.image.is_some()),
        ] {
            if set {
                bail!("invalid config in {display}: a merged layer is made of its members' zips and has no `{key}`: set it on the members");
            }
        }
        if file.slim == Some(SlimLevel::Aggressive) {
            bail!("invalid config in {display}: a merged layer cannot be slimmed `aggressive` (its members' zips are used as built): set it on the members");
        }
        if !dir.join("requirements.txt").is_file() {
            bail!("merged layer {name} has no requirements.txt: recreate it with `cargo xtask stack STACK --merge {name}` (it lists the members' requirements)");
        }
        let d = &self.defaults;
        let runtimes = match &file.runtimes {
            Some(r) => parse_runtimes(Some(r), display)?,
            None => parse_runtimes(d.runtimes.as_deref(), "layers.toml")?,
        };
        let architectures = match &file.architectures {
            Some(a) => parse_archs(Some(a), display)?,
            None => parse_archs(d.architectures.as_deref(), "layers.toml")?,
        };
        let mut member_configs = Vec::new();
        for m in &members {
            let c = self.layer(repo, m).with_context(|| format!("merged layer {name} (layers/{name}/layer.toml)"))?;
            if matches!(c.source, Source::Merge { .. }) {
                bail!("invalid config in {display}: layer {m} is itself a merged layer; merge its members instead");
            }
            member_configs.push(c);
        }
        // Run-time needs of the members that the merge does not contain itself.
        let mut requires: Vec<String> = Vec::new();
        for r in member_configs.iter().flat_map(|c| c.requires.iter()) {
            if !members.contains(r) && !requires.contains(r) && r != name {
                requires.push(r.clone());
            }
        }
        let mut check_images = BTreeMap::new();
        for r in &runtimes {
            for a in &architectures {
                for m in &member_configs {
                    if !m.targets().contains(&(*r, *a)) {
                        bail!(
                            "merged layer {name} targets {r} {a} but its member {0} is not built for it: add them to `runtimes`/`architectures` in layers/{0}/layer.toml, or remove them from layers/{name}/layer.toml",
                            m.name
                        );
                    }
                }
                let template = check_image_template(&file.check_image, d);
                check_images.insert((*r, *a), expand_image(template, *r, *a));
            }
        }
        validate_excludes(name, &file.exclude)?;
        Ok(LayerConfig {
            name: name.to_string(),
            dir,
            description: file.description,
            license: file.license.or_else(|| d.license.clone()).filter(|l| !l.is_empty()),
            runtimes,
            architectures,
            source: Source::Merge { members },
            installer: Installer::default(),
            images: BTreeMap::new(),
            slim: file.slim.unwrap_or(SlimLevel::None),
            exclude: file.exclude,
            public: file.public,
            share_with_accounts: file.share_with_accounts,
            share_with_organization: file.share_with_organization,
            requires,
            check_images,
        })
    }

    /// The stack called `name`, or an error listing the ones that exist.
    pub fn stack(&self, name: &str) -> Result<&StackConfig> {
        self.stacks.get(name).with_context(|| {
            let known: Vec<&str> = self.stacks.keys().map(String::as_str).collect();
            format!(
                "unknown stack `{name}`: layers.toml defines {}; declare it as [stacks.{name}]",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })
    }

    /// The deploy profile called `name`, or an error listing the ones that exist. The
    /// first time a profile is used, its warnings (see [`profile_warnings`]) are printed.
    pub fn profile(&self, name: &str) -> Result<&Profile> {
        if self.warned.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string()) {
            for w in self.profile_warnings.get(name).into_iter().flatten() {
                crate::output::warn(w);
            }
        }
        self.profiles.get(name).with_context(|| {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            format!(
                "unknown profile `{name}`: layers.toml defines {}",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })
    }
}

/// Checks one `[stacks.NAME]` table and applies its defaults.
fn resolve_stack(name: &str, s: StackFile, src: &ConfigText) -> Result<StackConfig> {
    let at = format!("invalid config in layers.toml: [stacks.{name}]");
    if crate::repo::validate_layer_name(name).is_err() {
        bail!("invalid config in layers.toml: stack name `{name}`: use 1 to 64 letters, digits, `-` or `_`, starting with a letter or digit");
    }
    if s.layers.is_empty() {
        bail!("{at}: `layers` is empty; list the layers the function attaches, in order, e.g. [\"numpy\", \"pandas\"]");
    }
    for (i, l) in s.layers.iter().enumerate() {
        crate::repo::validate_layer_name(l).with_context(|| format!("{at}: `layers`"))?;
        if s.layers[..i].contains(l) {
            bail!("{at}: `layers` lists {l} twice");
        }
    }
    let key_at = |key: &str, span: Range<usize>| format!("invalid config in {}: [stacks.{name}] `{key}`", src.at(span));
    let runtime = Runtime::parse(s.runtime.get_ref()).with_context(|| key_at("runtime", s.runtime.span()))?;
    let arch = match &s.arch {
        Some(a) => Arch::parse(a.get_ref()).with_context(|| key_at("arch", a.span()))?,
        None => Arch::X86_64,
    };
    Ok(StackConfig {
        name: name.to_string(),
        layers: s.layers,
        runtime,
        arch,
        function_bytes: s.function_bytes.unwrap_or(DEFAULT_FUNCTION_BYTES),
    })
}

/// The import-check image template: `layer.toml` over `layers.toml` over the default.
fn check_image_template<'a>(layer: &'a Option<String>, d: &'a Defaults) -> &'a str {
    layer.as_deref().or(d.check_image.as_deref()).unwrap_or(DEFAULT_CHECK_IMAGE)
}

fn validate_excludes(name: &str, patterns: &[String]) -> Result<()> {
    for pat in patterns {
        check_exclude(pat).with_context(|| format!("invalid config for layer {name}"))?;
    }
    Ok(())
}

/// An `exclude` glob is relative to `python/`: one that is absolute or climbs out with
/// `..` can match nothing, so it is refused instead of silently doing nothing.
fn check_exclude(pat: &str) -> Result<()> {
    let shown = clip(pat);
    if let Err(e) = globset::Glob::new(pat) {
        bail!("bad `exclude` pattern `{shown}`: {e}");
    }
    if pat.starts_with('/') || pat.starts_with('\\') {
        bail!(
            "`exclude` pattern `{shown}` is absolute: patterns are relative to python/ (e.g. \"pandas/tests/**\"), so it would match nothing"
        );
    }
    if pat.split(['/', '\\']).any(|part| part == "..") {
        bail!(
            "`exclude` pattern `{shown}` climbs out of python/ with `..`: patterns are relative to python/ (e.g. \"pandas/tests/**\") and cannot reach outside it, so it would match nothing"
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

/// A non-empty list of strings, each accepted by `check`; `valid` lists what is accepted.
fn list_of<'de, D: Deserializer<'de>>(
    d: D,
    key: &str,
    valid: &str,
    example: &str,
    check: impl Fn(&str) -> Result<()>,
) -> Result<Option<Vec<String>>, D::Error> {
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
    let mut out = Vec::new();
    for item in items {
        let s = item.as_str().ok_or_else(|| {
            D::Error::custom(format!("`{key}` must be a list of {valid}, not a list holding {}", shown(item)))
        })?;
        check(s).map_err(|e| D::Error::custom(format!("`{key}`: {e:#}")))?;
        out.push(s.to_string());
    }
    Ok(Some(out))
}

fn de_runtimes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let valid: Vec<&str> = crate::runtime::RUNTIMES.iter().map(|r| r.id).collect();
    list_of(d, "runtimes", &valid.join(", "), "python3.13", |s| Runtime::parse(s).map(|_| ()))
}

fn de_architectures<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    list_of(d, "architectures", "x86_64, arm64", "x86_64", |s| Arch::parse(s).map(|_| ()))
}

fn de_excludes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let patterns = Vec::<String>::deserialize(d)?;
    for p in &patterns {
        check_exclude(p).map_err(|e| D::Error::custom(format!("{e:#}")))?;
    }
    Ok(patterns)
}

/// Checks one `[profiles.NAME]` table: region names, the bucket name in every region,
/// and returns the profile with its warnings (a guard that does not guard).
fn resolve_profile(name: &str, p: Spanned<ProfileFile>, src: &ConfigText) -> Result<(Profile, Vec<String>)> {
    let table = p.span();
    let p = p.into_inner();
    let at = |span: Range<usize>| format!("invalid config in {}: [profiles.{name}]", src.at(span));
    for (k, r) in p.regions.iter().enumerate() {
        if p.regions[..k].iter().any(|o| o.get_ref() == r.get_ref()) {
            bail!("{} `regions`: `{}` is listed twice: list each region once", at(r.span()), clip(r.get_ref()));
        }
        if !is_region(r.get_ref()) {
            bail!(
                "{} `regions`: `{}` is not an AWS region name: use one such as \"eu-west-1\", \"us-east-1\", \"ap-southeast-2\" or \"us-gov-west-1\"",
                at(r.span()),
                clip(r.get_ref())
            );
        }
    }
    let bucket = p.bucket.get_ref();
    let mut candidates: Vec<(Option<&str>, String)> =
        p.regions.iter().map(|r| (Some(r.get_ref().as_str()), bucket.replace("{region}", r.get_ref()))).collect();
    if candidates.is_empty() || !bucket.contains("{region}") {
        candidates = vec![(None, bucket.clone())];
    }
    for (region, b) in candidates {
        if let Err(why) = check_bucket(&b) {
            let filled = match region {
                Some(r) => format!(" (`{}` in {r})", clip(&b)),
                None => String::new(),
            };
            bail!(
                "{} `bucket` = \"{}\"{filled} is not a valid S3 bucket name: {why}; use 3 to 63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit",
                at(p.bucket.span()),
                clip(bucket)
            );
        }
    }
    let mut warnings = Vec::new();
    let confirm = p.confirm.as_ref().is_some_and(|c| *c.get_ref());
    let confirm_at = src.at(p.confirm.as_ref().map(|c| c.span()).unwrap_or(table));
    if name == "production" && !confirm {
        warnings.push(format!(
            "profile production has confirm = false ({confirm_at}): it publishes without `--yes`; set confirm = true"
        ));
    }
    if let (true, Some(url)) = (confirm, &p.endpoint_url) {
        warnings.push(format!(
            "profile {name} has confirm = true but `endpoint_url` = \"{}\" ({}): an emulator endpoint is set on a guarded profile, so its writes go there and not to AWS; remove `endpoint_url` to publish to AWS",
            clip(url.get_ref()),
            src.at(url.span())
        ));
    }
    let profile = Profile {
        aws_profile: p.aws_profile,
        regions: p.regions.into_iter().map(Spanned::into_inner).collect(),
        bucket: p.bucket.into_inner(),
        prefix: p.prefix,
        account_id: p.account_id,
        endpoint_url: p.endpoint_url.map(Spanned::into_inner),
        allow_public: p.allow_public,
        confirm,
        layer_name: p.layer_name,
    };
    Ok((profile, warnings))
}

/// A well-formed AWS region name: two letters, an optional partition (`gov`, `iso`,
/// `isob`, ...), a direction and one digit, e.g. `eu-west-1`, `us-gov-west-1`.
fn is_region(r: &str) -> bool {
    const DIRECTIONS: &[&str] =
        &["central", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest"];
    let parts: Vec<&str> = r.split('-').collect();
    let (geo, middle, dir, num) = match parts.as_slice() {
        [geo, dir, num] => (*geo, None, *dir, *num),
        [geo, middle, dir, num] => (*geo, Some(*middle), *dir, *num),
        _ => return false,
    };
    let partition_ok = middle.is_none_or(|m| {
        m == "gov"
            || m.strip_prefix("iso").is_some_and(|rest| rest.len() <= 1 && rest.bytes().all(|b| b.is_ascii_lowercase()))
    });
    geo.len() == 2
        && geo.bytes().all(|b| b.is_ascii_lowercase())
        && partition_ok
        && DIRECTIONS.contains(&dir)
        && num.len() == 1
        && matches!(num.as_bytes()[0], b'1'..=b'9')
}

/// S3's bucket naming rules: 3 to 63 characters; lowercase letters, digits, `.` and `-`;
/// a letter or digit first and last; no `..`; not an IP address.
fn check_bucket(b: &str) -> std::result::Result<(), &'static str> {
    if b.len() < 3 || b.len() > 63 {
        return Err("it must be 3 to 63 characters long");
    }
    if b.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err("it has an uppercase letter");
    }
    if !b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-') {
        return Err("it has a character other than a lowercase letter, a digit, `.` or `-`");
    }
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !edge(b.as_bytes()[0]) || !edge(b.as_bytes()[b.len() - 1]) {
        return Err("it must start and end with a letter or digit");
    }
    if b.contains("..") {
        return Err("it has two dots in a row");
    }
    if b.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("it is formatted as an IP address");
    }
    Ok(())
}

fn parse_runtimes(list: Option<&[String]>, file: &str) -> Result<Vec<Runtime>> {
    let Some(list) = list else {
        return Ok(vec![Runtime::parse("python3.13")?]);
    };
    if list.is_empty() {
        bail!("invalid config in {file}: `runtimes` is empty; name at least one, e.g. [\"python3.13\"]");
    }
    let mut out: Vec<Runtime> = Vec::new();
    for r in list {
        let rt = Runtime::parse(r).with_context(|| format!("invalid config in {file}"))?;
        if !out.contains(&rt) {
            out.push(rt);
        }
    }
    Ok(out)
}

fn parse_archs(list: Option<&[String]>, file: &str) -> Result<Vec<Arch>> {
    let Some(list) = list else {
        return Ok(vec![Arch::X86_64]);
    };
    if list.is_empty() {
        bail!("invalid config in {file}: `architectures` is empty; name at least one, e.g. [\"x86_64\"]");
    }
    let mut out: Vec<Arch> = Vec::new();
    for a in list {
        let arch = Arch::parse(a).with_context(|| format!("invalid config in {file}"))?;
        if !out.contains(&arch) {
            out.push(arch);
        }
    }
    Ok(out)
}

/// Fills `{runtime}` (python3.12), `{python}` (3.12) and `{arch}` (x86_64) into an image
/// reference template.
pub fn expand_image(template: &str, r: Runtime, a: Arch) -> String {
    template.replace("{runtime}", r.id).replace("{python}", &format!("3.{}", r.minor)).replace("{arch}", a.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let repo = Repo::at(dir.path()).unwrap();
        (dir, repo)
    }

    #[test]
    fn layer_overrides_defaults_and_images_resolve_per_target() {
        let (_d, repo) = repo_with(&[
            ("layers.toml", "[defaults]\nruntimes = [\"python3.12\"]\nlicense = \"MIT\"\nexclude = [\"*.md\"]\n[images]\n\"python3.13-arm64\" = \"mine:{python}\"\n"),
            ("layers/a/requirements.txt", "six==1.16.0\n"),
            ("layers/a/layer.toml", "runtimes = [\"python3.12\", \"python3.13\"]\narchitectures = [\"x86_64\", \"arm64\"]\nslim = \"aggressive\"\nexclude = [\"x/**\"]\n"),
        ]);
        let cfg = RepoConfig::load(&repo).unwrap();
        let l = cfg.layer(&repo, "a").unwrap();
        assert_eq!(l.targets().len(), 4);
        assert_eq!(l.slim, SlimLevel::Aggressive);
        assert_eq!(l.license.as_deref(), Some("MIT"));
        assert_eq!(l.exclude, vec!["*.md", "x/**"]);
        let r13 = Runtime::parse("python3.13").unwrap();
        let r12 = Runtime::parse("python3.12").unwrap();
        assert_eq!(l.images[&(r13, Arch::Arm64)], "mine:3.13");
        assert_eq!(l.images[&(r12, Arch::X86_64)], "public.ecr.aws/sam/build-python3.12:latest-x86_64");
    }

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
    fn stacks_resolve_with_defaults_and_bad_ones_are_one_line_errors() {
        let (_d, repo) = repo_with(&[(
            "layers.toml",
            "[stacks.analytics]\nlayers = [\"numpy\", \"pandas\"]\nruntime = \"python3.13\"\n\n[stacks.small]\nlayers = [\"six\"]\nruntime = \"python3.12\"\narch = \"arm64\"\nfunction_bytes = 1000\n",
        )]);
        let cfg = RepoConfig::load(&repo).unwrap();
        let a = cfg.stack("analytics").unwrap();
        assert_eq!(a.layers, ["numpy", "pandas"]);
        assert_eq!((a.runtime.id, a.arch, a.function_bytes), ("python3.13", Arch::X86_64, 5 * 1024 * 1024));
        let s = cfg.stack("small").unwrap();
        assert_eq!((s.runtime.id, s.arch, s.function_bytes), ("python3.12", Arch::Arm64, 1000));
        let err = cfg.stack("big").unwrap_err().to_string();
        assert!(err.contains("unknown stack `big`") && err.contains("analytics, small"), "{err}");

        for (text, needles) in [
            (
                "[stacks.x]\nlayers = [\"a\"]\nruntime = \"python3.13\"\nfunction_mb = 3\n",
                &["layers.toml:4", "function_mb"][..],
            ),
            ("[stacks.x]\nlayers = [\"a\"]\n", &["layers.toml", "runtime"]),
            (
                "[stacks.x]\nlayers = [\"a\"]\nruntime = \"python2.7\"\n",
                &["layers.toml:3", "[stacks.x] `runtime`", "python2.7", "python3.13"],
            ),
            (
                "[stacks.x]\nlayers = [\"a\"]\nruntime = \"python3.13\"\narch = \"amd64\"\n",
                &["layers.toml:4", "[stacks.x] `arch`", "amd64", "arm64"],
            ),
            ("[stacks.x]\nlayers = []\nruntime = \"python3.13\"\n", &["[stacks.x]", "`layers` is empty"]),
            ("[stacks.x]\nlayers = [\"a\", \"a\"]\nruntime = \"python3.13\"\n", &["[stacks.x]", "a twice"]),
            ("[stacks.x]\nlayers = [\"../a\"]\nruntime = \"python3.13\"\n", &["[stacks.x]", "../a"]),
            ("[stacks.\"a b\"]\nlayers = [\"a\"]\nruntime = \"python3.13\"\n", &["stack name `a b`"]),
        ] {
            let (_d, repo) = repo_with(&[("layers.toml", text)]);
            let err = format!("{:#}", RepoConfig::load(&repo).unwrap_err());
            assert!(!err.contains('\n'), "{err}");
            for n in needles {
                assert!(err.contains(n), "`{n}` not in: {err}");
            }
        }
    }

    #[test]
    fn merged_layer_takes_its_members_and_refuses_a_builder() {
        let (d, repo) = repo_with(&[
            ("layers.toml", "[defaults]\nruntimes = [\"python3.13\"]\nslim = \"aggressive\"\n"),
            ("layers/a/requirements.txt", "six==1.16.0\n"),
            ("layers/b/requirements.txt", "idna==3.10\n"),
            ("layers/b/layer.toml", "requires = [\"a\", \"c\"]\n"),
            ("layers/m/requirements.txt", "six==1.16.0\nidna==3.10\n"),
            ("layers/m/layer.toml", "merge = [\"a\", \"b\"]\n"),
        ]);
        let cfg = RepoConfig::load(&repo).unwrap();
        let m = cfg.layer(&repo, "m").unwrap();
        assert_eq!(m.source, Source::Merge { members: vec!["a".into(), "b".into()] });
        assert_eq!(m.requires, ["c"]);
        assert_eq!(m.slim, SlimLevel::None, "a merged layer is not slimmed again by default");
        assert!(m.images.is_empty(), "a merged layer has no build image");

        std::fs::write(d.path().join("layers/m/layer.toml"), "merge = [\"a\"]\nbuilder = \"pip\"\n").unwrap();
        let err = format!("{:#}", cfg.layer(&repo, "m").unwrap_err());
        assert!(err.contains("layers/m/layer.toml") && err.contains("`builder`"), "{err}");
        std::fs::write(d.path().join("layers/m/layer.toml"), "merge = [\"a\"]\ninstaller = \"pip\"\n").unwrap();
        let err = format!("{:#}", cfg.layer(&repo, "m").unwrap_err());
        assert!(err.contains("layers/m/layer.toml") && err.contains("`installer`"), "{err}");
        std::fs::write(d.path().join("layers/m/layer.toml"), "merge = [\"a\"]\narchitectures = [\"arm64\"]\n").unwrap();
        let err = format!("{:#}", cfg.layer(&repo, "m").unwrap_err());
        assert!(err.contains("member a is not built for it") && err.contains("arm64"), "{err}");
    }

    #[test]
    fn installer_is_uv_unless_the_repo_or_the_layer_says_pip() {
        let (d, repo) = repo_with(&[
            ("layers.toml", "[defaults]\nruntimes = [\"python3.13\"]\n"),
            ("layers/a/requirements.txt", "six==1.16.0\n"),
            ("layers/b/requirements.txt", "six==1.16.0\n"),
            ("layers/b/layer.toml", "installer = \"pip\"\n"),
        ]);
        let cfg = RepoConfig::load(&repo).unwrap();
        assert_eq!(cfg.layer(&repo, "a").unwrap().installer, Installer::Uv);
        assert_eq!(cfg.layer(&repo, "b").unwrap().installer, Installer::Pip);
        std::fs::write(d.path().join("layers.toml"), "[defaults]\ninstaller = \"pip\"\n").unwrap();
        std::fs::write(d.path().join("layers/b/layer.toml"), "installer = \"uv\"\n").unwrap();
        let cfg = RepoConfig::load(&repo).unwrap();
        assert_eq!(cfg.layer(&repo, "a").unwrap().installer, Installer::Pip);
        assert_eq!(cfg.layer(&repo, "b").unwrap().installer, Installer::Uv);
    }

    /// The one-line error of loading layers.toml `text` and resolving layer `a` (whose
    /// layer.toml is `layer`).
    fn config_error(text: &str, layer: &str) -> String {
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
    fn excludes_that_can_match_nothing_are_refused_with_their_line() {
        for (pat, needle) in [("../../**", "climbs out"), ("/**", "is absolute"), ("a/../../b", "climbs out")] {
            let err = config_error("", &format!("slim = \"safe\"\nexclude = [\"x/**\", \"{pat}\"]\n"));
            assert!(err.contains("layers/a/layer.toml:2") && err.contains(pat) && err.contains(needle), "{err}");
            let err = config_error(&format!("[defaults]\nexclude = [\"{pat}\"]\n"), "");
            assert!(err.contains("layers.toml:2") && err.contains(needle), "{err}");
        }
        check_exclude("pandas/tests/**").unwrap();
        check_exclude("**/*.md").unwrap();
        check_exclude("a..b/*").unwrap();
    }

    #[test]
    fn region_names_are_checked_by_pattern() {
        for good in [
            "us-east-1",
            "eu-west-3",
            "ap-southeast-2",
            "us-gov-west-1",
            "cn-northwest-1",
            "us-isob-east-1",
            "il-central-1",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "us-east-11",
            "us-east",
            "US-EAST-1",
            "useast-1",
            "us-middle-1",
            "us-east-0",
            "eu-west-1a",
            "",
            "us-foo-east-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        let err = config_error(
            "[profiles.staging]\nregions = [\"eu-west-1\",\n  \"us-east-11\"]\nbucket = \"bkt-{region}\"\n",
            "",
        );
        assert!(
            err.contains("layers.toml:3")
                && err.contains("[profiles.staging] `regions`")
                && err.contains("`us-east-11`")
                && err.contains("eu-west-1"),
            "{err}"
        );
    }

    #[test]
    fn bucket_names_follow_s3_rules_after_region_substitution() {
        check_bucket("my-team-layers.eu").unwrap();
        for (bad, why) in [
            ("ab", "3 to 63"),
            ("My-Bucket", "uppercase"),
            ("a_b_c", "character"),
            ("-abc", "start and end"),
            ("abc.", "start and end"),
            ("a..b", "two dots"),
            ("192.168.1.1", "IP address"),
        ] {
            assert!(check_bucket(bad).unwrap_err().contains(why), "{bad}");
        }
        check_bucket(&"a".repeat(63)).unwrap();
        check_bucket(&"a".repeat(64)).unwrap_err();
        let err = config_error("[profiles.prod]\nregions = [\"eu-west-1\"]\n\nbucket = \"Layers-{region}\"\n", "");
        assert!(
            err.contains("layers.toml:4")
                && err.contains("`bucket`")
                && err.contains("Layers-eu-west-1")
                && err.contains("uppercase"),
            "{err}"
        );
        // Fine alone, too long once the longest region is filled in.
        let long = format!("{}-{{region}}", "b".repeat(50));
        let err = config_error(
            &format!("[profiles.p]\nregions = [\"eu-west-1\", \"ap-southeast-2\"]\nbucket = \"{long}\"\n"),
            "",
        );
        assert!(err.contains("ap-southeast-2") && err.contains("3 to 63"), "{err}");
    }

    #[test]
    fn guards_that_do_not_guard_are_warned_about_with_their_line() {
        let (_d, repo) = repo_with(&[(
            "layers.toml",
            "[profiles.production]\nregions = [\"eu-west-1\"]\nbucket = \"prod-bkt\"\nconfirm = false\n\n[profiles.guarded]\nregions = [\"us-east-1\"]\nbucket = \"g-bkt\"\nconfirm = true\nendpoint_url = \"http://127.0.0.1:5077\"\n\n[profiles.staging]\nregions = [\"us-east-1\"]\nbucket = \"s-bkt\"\nendpoint_url = \"http://127.0.0.1:5077\"\n",
        )]);
        let cfg = RepoConfig::load(&repo).unwrap();
        let w = &cfg.profile_warnings;
        assert_eq!(w["production"].len(), 1);
        assert!(w["production"][0].starts_with("profile production has confirm = false (layers.toml:4)"), "{:?}", w);
        assert_eq!(w["guarded"].len(), 1);
        assert!(
            w["guarded"][0].contains("layers.toml:10")
                && w["guarded"][0].contains("emulator endpoint is set on a guarded profile"),
            "{:?}",
            w
        );
        assert!(w["staging"].is_empty());
        // A production profile that does not say `confirm` at all is not guarded either.
        let (_d, repo) = repo_with(&[(
            "layers.toml",
            "[defaults]\n\n[profiles.production]\nregions = [\"eu-west-1\"]\nbucket = \"prod-bkt\"\n",
        )]);
        let cfg = RepoConfig::load(&repo).unwrap();
        assert!(cfg.profile_warnings["production"][0].contains("layers.toml:3"), "{:?}", cfg.profile_warnings);
        assert!(!cfg.profile("production").unwrap().confirm);
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

    #[test]
    fn unknown_profile_lists_known_ones() {
        let (_d, repo) =
            repo_with(&[("layers.toml", "[profiles.staging]\nregions = [\"eu-west-1\"]\nbucket = \"bkt\"\n")]);
        let cfg = RepoConfig::load(&repo).unwrap();
        assert_eq!(cfg.profile("staging").unwrap().prefix, "layers");
        let err = cfg.profile("prod").unwrap_err().to_string();
        assert!(err.contains("prod") && err.contains("staging"), "{err}");
    }
}
