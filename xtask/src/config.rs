//! Reads `layers.toml` (the repo's defaults and deploy profiles) and each layer's optional
//! `layer.toml`, and resolves them into one [`LayerConfig`] per layer.
//!
//! Every key is known: an unknown or mistyped key is an error naming the key, the file and
//! the line, so a typo never silently falls back to a default.
//!
//! `layers.toml` also declares stacks (`[stacks.NAME]`: the layers one function attaches,
//! resolved into [`StackConfig`]), and a `layer.toml` may declare a merged layer
//! (`merge = [...]`: one layer made of other layers' built zips, see `stack/merge.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

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

/// `[defaults]` in `layers.toml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Defaults {
    runtimes: Option<Vec<String>>,
    architectures: Option<Vec<String>>,
    builder: Option<Builder>,
    image: Option<String>,
    check_image: Option<String>,
    license: Option<String>,
    slim: Option<SlimLevel>,
    #[serde(default)]
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
    profiles: BTreeMap<String, Profile>,
    #[serde(default)]
    stacks: BTreeMap<String, StackFile>,
}

/// One `[stacks.NAME]` table in `layers.toml`: what one function attaches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StackFile {
    layers: Vec<String>,
    runtime: String,
    arch: Option<String>,
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
    runtimes: Option<Vec<String>>,
    architectures: Option<Vec<String>>,
    builder: Option<Builder>,
    image: Option<String>,
    check_image: Option<String>,
    #[serde(default)]
    requires: Vec<String>,
    slim: Option<SlimLevel>,
    #[serde(default)]
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
    pub builder: Builder,
    /// Image per target, already resolved.
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
    /// For a merged layer, the layers whose built zips it is made of, in order (a later one
    /// wins a path both ship); empty for a layer built from its requirements.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merge: Vec<String>,
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

/// Parses TOML, turning serde's multi-line report into `FILE:LINE: message`.
fn parse_toml<T: for<'de> Deserialize<'de>>(path: &Path, display: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {display}"))?;
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().trim().replace('\n', " ");
        match line {
            Some(l) => anyhow::anyhow!("invalid config in {display}:{l}: {msg}"),
            None => anyhow::anyhow!("invalid config in {display}: {msg}"),
        }
    })
}

impl RepoConfig {
    pub fn load(repo: &Repo) -> Result<RepoConfig> {
        let path = repo.root.join("layers.toml");
        let file: RepoFile = if path.exists() { parse_toml(&path, "layers.toml")? } else { RepoFile::default() };
        let mut stacks = BTreeMap::new();
        for (name, s) in file.stacks {
            stacks.insert(name.clone(), resolve_stack(&name, s)?);
        }
        let cfg = RepoConfig { defaults: file.defaults, images: file.images, profiles: file.profiles, stacks };
        // Validate the defaults once, so a bad default is reported against layers.toml.
        parse_runtimes(cfg.defaults.runtimes.as_deref(), "layers.toml")?;
        parse_archs(cfg.defaults.architectures.as_deref(), "layers.toml")?;
        for key in cfg.images.keys() {
            let (r, a) = key.rsplit_once('-').with_context(|| {
                format!(
                    "invalid config in layers.toml: [images] key `{key}` must be RUNTIME-ARCH, e.g. python3.12-x86_64"
                )
            })?;
            Runtime::parse(r).with_context(|| format!("invalid config in layers.toml: [images] key `{key}`"))?;
            Arch::parse(a).with_context(|| format!("invalid config in layers.toml: [images] key `{key}`"))?;
        }
        Ok(cfg)
    }

    /// Resolves one layer's settings: `layer.toml` over `layers.toml` over built-in defaults.
    pub fn layer(&self, repo: &Repo, name: &str) -> Result<LayerConfig> {
        let dir = repo.layer_dir(name)?;
        let toml_path = dir.join("layer.toml");
        let display = format!("layers/{name}/layer.toml");
        let file: LayerFile = if toml_path.exists() { parse_toml(&toml_path, &display)? } else { LayerFile::default() };
        if file.merge.is_some() {
            return self.merged_layer(repo, name, dir, file, &display);
        }
        let d = &self.defaults;
        let (runtimes, rsrc) = match &file.runtimes {
            Some(r) => (parse_runtimes(Some(r), &display)?, display.as_str()),
            None => (parse_runtimes(d.runtimes.as_deref(), "layers.toml")?, "layers.toml"),
        };
        let architectures = match &file.architectures {
            Some(a) => parse_archs(Some(a), &display)?,
            None => parse_archs(d.architectures.as_deref(), "layers.toml")?,
        };
        if runtimes.is_empty() {
            bail!("invalid config in {rsrc}: `runtimes` is empty; name at least one, e.g. [\"python3.12\"]");
        }
        if architectures.is_empty() {
            bail!("invalid config for layer {name}: `architectures` is empty; name at least one, e.g. [\"x86_64\"]");
        }
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
            builder: file.builder.or(d.builder).unwrap_or_default(),
            images,
            slim: file.slim.or(d.slim).unwrap_or_default(),
            exclude,
            public: file.public,
            share_with_accounts: file.share_with_accounts,
            share_with_organization: file.share_with_organization,
            requires: file.requires,
            check_images,
            merge: Vec::new(),
        })
    }

    /// A merged layer (`merge = [...]` in its layer.toml): its files come from its members'
    /// built zips, so it has no builder, image or slimming of its own. Its "image" per
    /// target names every member's fingerprint, so its own fingerprint (which hashes the
    /// image) changes whenever a member's does; see `stack/merge.rs`.
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
        for (key, set) in [("builder", file.builder.is_some()), ("image", file.image.is_some())] {
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
            if !c.merge.is_empty() {
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
        let mut images = BTreeMap::new();
        let mut check_images = BTreeMap::new();
        for r in &runtimes {
            for a in &architectures {
                let image = crate::stack::merge::merged_image(name, &member_configs, *r, *a)?;
                images.insert((*r, *a), image);
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
            // The unit pipeline knows two builders; a merged layer is planned as a docker
            // one (its image is the member list) and `build::install` unpacks the members.
            builder: Builder::Docker,
            images,
            slim: file.slim.unwrap_or(SlimLevel::None),
            exclude: file.exclude,
            public: file.public,
            share_with_accounts: file.share_with_accounts,
            share_with_organization: file.share_with_organization,
            requires,
            check_images,
            merge: members,
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

    /// The deploy profile called `name`, or an error listing the ones that exist.
    pub fn profile(&self, name: &str) -> Result<&Profile> {
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
fn resolve_stack(name: &str, s: StackFile) -> Result<StackConfig> {
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
    let runtime = Runtime::parse(&s.runtime).with_context(|| format!("{at}: `runtime`"))?;
    let arch = match &s.arch {
        Some(a) => Arch::parse(a).with_context(|| format!("{at}: `arch`"))?,
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
        globset::Glob::new(pat)
            .with_context(|| format!("invalid config for layer {name}: bad exclude pattern `{pat}`"))?;
    }
    Ok(())
}

fn parse_runtimes(list: Option<&[String]>, file: &str) -> Result<Vec<Runtime>> {
    let list = list.unwrap_or(&[]);
    if list.is_empty() {
        return Ok(vec![Runtime::parse("python3.13")?]);
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
    let list = list.unwrap_or(&[]);
    if list.is_empty() {
        return Ok(vec![Arch::X86_64]);
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
                &["layers.toml", "[stacks.x]", "python2.7", "python3.13"],
            ),
            (
                "[stacks.x]\nlayers = [\"a\"]\nruntime = \"python3.13\"\narch = \"amd64\"\n",
                &["[stacks.x]", "amd64", "arm64"],
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
    fn merged_layer_takes_members_fingerprints_and_refuses_a_builder() {
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
        assert_eq!(m.merge, ["a", "b"]);
        assert_eq!(m.requires, ["c"]);
        assert_eq!(m.slim, SlimLevel::None, "a merged layer is not slimmed again by default");
        let py = Runtime::parse("python3.13").unwrap();
        let image = m.images[&(py, Arch::X86_64)].clone();
        assert!(image.starts_with("merge of a@") && image.contains(", b@"), "{image}");
        // A member's change changes the merged layer's image, hence its fingerprint.
        std::fs::write(d.path().join("layers/a/requirements.txt"), "six==1.17.0\n").unwrap();
        assert_ne!(cfg.layer(&repo, "m").unwrap().images[&(py, Arch::X86_64)], image);

        std::fs::write(d.path().join("layers/m/layer.toml"), "merge = [\"a\"]\nbuilder = \"pip\"\n").unwrap();
        let err = format!("{:#}", cfg.layer(&repo, "m").unwrap_err());
        assert!(err.contains("layers/m/layer.toml") && err.contains("`builder`"), "{err}");
        std::fs::write(d.path().join("layers/m/layer.toml"), "merge = [\"a\"]\narchitectures = [\"arm64\"]\n").unwrap();
        let err = format!("{:#}", cfg.layer(&repo, "m").unwrap_err());
        assert!(err.contains("member a is not built for it") && err.contains("arm64"), "{err}");
    }

    #[test]
    fn unknown_profile_lists_known_ones() {
        let (_d, repo) =
            repo_with(&[("layers.toml", "[profiles.staging]\nregions = [\"eu-west-1\"]\nbucket = \"b\"\n")]);
        let cfg = RepoConfig::load(&repo).unwrap();
        assert_eq!(cfg.profile("staging").unwrap().prefix, "layers");
        let err = cfg.profile("prod").unwrap_err().to_string();
        assert!(err.contains("prod") && err.contains("staging"), "{err}");
    }
}
