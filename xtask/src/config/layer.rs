//! One layer's settings resolved into a [`LayerConfig`]: `layer.toml` over `layers.toml`
//! over built-in defaults, for a layer pip installs or a merged one (`merge = [...]`); the
//! targets it is built for, its build and check images per target (this machine's
//! `layers.local.toml` first, `local.rs`), and its `exclude` patterns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::schema::{ensure_inside, parse_toml, LayerFile, Target};
use super::RepoConfig;
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
        cross(&self.runtimes, &self.architectures)
    }
}

/// Every (runtime, architecture) pair, runtimes first.
fn cross(runtimes: &[Runtime], architectures: &[Arch]) -> Vec<(Runtime, Arch)> {
    runtimes.iter().flat_map(|r| architectures.iter().map(|a| (*r, *a))).collect()
}

fn ser_runtimes<S: serde::Serializer>(r: &[Runtime], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|r| r.id))
}

impl RepoConfig {
    /// Resolves one layer's settings: `layer.toml` over `layers.toml` over built-in defaults.
    /// Layer `name` with every default applied: its layer.toml is read once per run (a
    /// layer that could not be read is tried again, and fails the same way).
    pub fn layer(&self, repo: &Repo, name: &str) -> Result<LayerConfig> {
        let key = (repo.root.clone(), name.to_string());
        if let Some(l) = self.layers.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(l.clone());
        }
        let layer = self.read_layer(repo, name)?;
        self.layers.lock().unwrap_or_else(|e| e.into_inner()).insert(key, layer.clone());
        Ok(layer)
    }

    /// The image the import check of a zip that is no layer's (`check --zip`) runs in: this
    /// machine's (`layers.local.toml`), else layers.toml's `check_image`, else the default.
    pub fn zip_check_image(&self, r: Runtime, a: Arch) -> String {
        let template = (self.local.check_image(r, a)).or(self.defaults.check_image.as_deref());
        expand_image(template.unwrap_or(DEFAULT_CHECK_IMAGE), r, a)
    }

    fn read_layer(&self, repo: &Repo, name: &str) -> Result<LayerConfig> {
        let dir = repo.layer_dir(name)?;
        let toml_path = dir.join("layer.toml");
        let display = format!("layers/{name}/layer.toml");
        let file: LayerFile = if toml_path.exists() {
            ensure_inside(&toml_path, &repo.root, &display)?;
            parse_toml(&toml_path, &display)?.0
        } else {
            LayerFile::default()
        };
        let d = &self.defaults;
        let runtimes = targets(&file.runtimes, &d.runtimes)?;
        let architectures = targets(&file.architectures, &d.architectures)?;
        let each = cross(&runtimes, &architectures);
        let made = match &file.merge {
            Some(members) => self.merged_layer(repo, name, &dir, members, &file, &each)?,
            None => self.installed_layer(name, &file, &each)?,
        };
        validate_excludes(name, &made.exclude)?;
        Ok(LayerConfig {
            name: name.to_string(),
            dir,
            description: file.description,
            license: file.license.or_else(|| d.license.clone()).filter(|l| !l.is_empty()),
            runtimes,
            architectures,
            source: made.source,
            installer: made.installer,
            images: made.images,
            slim: made.slim,
            exclude: made.exclude,
            public: file.public,
            share_with_accounts: file.share_with_accounts,
            share_with_organization: file.share_with_organization,
            requires: made.requires,
            check_images: each
                .iter()
                .map(|&(r, a)| {
                    let template = (self.local.check_image(r, a))
                        .or(file.check_image.as_deref())
                        .or(d.check_image.as_deref())
                        .unwrap_or(DEFAULT_CHECK_IMAGE);
                    ((r, a), expand_image(template, r, a))
                })
                .collect(),
        })
    }

    /// A layer pip (or uv) installs from its requirements.txt, run by its builder, in the
    /// build image of each target.
    fn installed_layer(&self, name: &str, file: &LayerFile, each: &[(Runtime, Arch)]) -> Result<Made> {
        let display = format!("layers/{name}/layer.toml");
        let d = &self.defaults;
        let mut images = BTreeMap::new();
        for &(r, a) in each {
            let template = self
                .local
                .image(r, a)
                .or(file.image.as_deref())
                .or_else(|| self.images.get(&format!("{}-{}", r.id, a.as_str())).map(String::as_str))
                .or(d.image.as_deref())
                .unwrap_or(DEFAULT_IMAGE);
            images.insert((r, a), expand_image(template, r, a));
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
        Ok(Made {
            source: Source::Pip { builder: file.builder.or(d.builder).unwrap_or_default() },
            installer: file.installer.or(d.installer).unwrap_or_default(),
            images,
            slim: file.slim.or(d.slim).unwrap_or_default(),
            exclude,
            requires: file.requires.clone(),
        })
    }

    /// A merged layer (`merge = [...]` in its layer.toml): its files come from its members'
    /// built zips, so it has no builder, image or slimming of its own. Its members are
    /// planned and built as its dependencies by `unit::plan` and `unit::build`.
    fn merged_layer(
        &self,
        repo: &Repo,
        name: &str,
        dir: &Path,
        members: &[String],
        file: &LayerFile,
        each: &[(Runtime, Arch)],
    ) -> Result<Made> {
        let display = format!("layers/{name}/layer.toml");
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
        let mut member_configs = Vec::new();
        for m in members {
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
        for &(r, a) in each {
            for m in &member_configs {
                if !m.targets().contains(&(r, a)) {
                    bail!(
                        "merged layer {name} targets {r} {a} but its member {0} is not built for it: add them to `runtimes`/`architectures` in layers/{0}/layer.toml, or remove them from layers/{name}/layer.toml",
                        m.name
                    );
                }
            }
        }
        Ok(Made {
            source: Source::Merge { members: members.to_vec() },
            installer: Installer::default(),
            images: BTreeMap::new(),
            slim: file.slim.unwrap_or(SlimLevel::None),
            exclude: file.exclude.clone(),
            requires,
        })
    }
}

/// What a layer's source decides (pip installs it, or it merges other layers' zips): how
/// its files are made, and what it needs at run time.
struct Made {
    source: Source,
    installer: Installer,
    images: BTreeMap<(Runtime, Arch), String>,
    slim: SlimLevel,
    exclude: Vec<String>,
    requires: Vec<String>,
}

/// The runtimes or the architectures a layer is built for: its layer.toml's list, else
/// layers.toml's, else the one default (each list was checked, and its repeats dropped, as
/// its file was read).
fn targets<T: Target>(layer: &Option<Vec<T>>, defaults: &Option<Vec<T>>) -> Result<Vec<T>> {
    match layer.as_ref().or(defaults.as_ref()) {
        Some(list) => Ok(list.clone()),
        None => Ok(vec![T::parse(T::DEFAULT)?]),
    }
}

/// `[images]` in layers.toml: every key must be `RUNTIME-ARCH` of a known runtime and
/// architecture.
pub(super) fn check_image_keys(images: &BTreeMap<String, String>) -> Result<()> {
    for key in images.keys() {
        image_key(key, "layers.toml: [images]")?;
    }
    Ok(())
}

/// The target of a per-target image table's key, `RUNTIME-ARCH`; `at` names the file (and
/// line) and the table in the error.
pub(super) fn image_key(key: &str, at: &str) -> Result<(Runtime, Arch)> {
    let shown = clip(key);
    let (r, a) = key.rsplit_once('-').with_context(|| {
        format!("invalid config in {at} key `{shown}` must be RUNTIME-ARCH, e.g. python3.12-x86_64")
    })?;
    let r = Runtime::parse(r).with_context(|| format!("invalid config in {at} key `{shown}`"))?;
    let a = Arch::parse(a).with_context(|| format!("invalid config in {at} key `{shown}`"))?;
    Ok((r, a))
}

fn validate_excludes(name: &str, patterns: &[String]) -> Result<()> {
    for pat in patterns {
        check_exclude(pat).with_context(|| format!("invalid config for layer {name}"))?;
    }
    Ok(())
}

/// An `exclude` glob is relative to `python/`: one that is absolute or climbs out with
/// `..` can match nothing, so it is refused instead of silently doing nothing.
pub(super) fn check_exclude(pat: &str) -> Result<()> {
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

/// Fills `{runtime}` (python3.12), `{python}` (3.12) and `{arch}` (x86_64) into an image
/// reference template.
pub fn expand_image(template: &str, r: Runtime, a: Arch) -> String {
    template.replace("{runtime}", r.id).replace("{python}", &format!("3.{}", r.minor)).replace("{arch}", a.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config_error, repo_with};

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
    fn targets_listed_twice_are_built_once_in_the_order_first_listed() {
        let (_d, repo) = repo_with(&[
            ("layers.toml", "[defaults]\narchitectures = [\"arm64\", \"x86_64\", \"arm64\"]\n"),
            ("layers/a/requirements.txt", "six==1.16.0\n"),
            ("layers/a/layer.toml", "runtimes = [\"python3.13\", \"python3.12\", \"python3.13\"]\n"),
            ("layers/b/requirements.txt", "six==1.16.0\n"),
        ]);
        let cfg = RepoConfig::load(&repo).unwrap();
        let a = cfg.layer(&repo, "a").unwrap();
        let ids: Vec<&str> = a.runtimes.iter().map(|r| r.id).collect();
        assert_eq!(
            (ids.as_slice(), a.architectures.as_slice()),
            (&["python3.13", "python3.12"][..], &[Arch::Arm64, Arch::X86_64][..])
        );
        let b = cfg.layer(&repo, "b").unwrap();
        assert_eq!(b.runtimes, [Runtime::parse("python3.13").unwrap()], "the default runtime");
        assert_eq!(b.targets().len(), 2);
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

        // A run reads each layer.toml once: a file changed since is read by the next run.
        std::fs::write(d.path().join("layers/m/layer.toml"), "merge = [\"a\"]\nbuilder = \"pip\"\n").unwrap();
        let err = format!("{:#}", RepoConfig::load(&repo).unwrap().layer(&repo, "m").unwrap_err());
        assert!(err.contains("layers/m/layer.toml") && err.contains("`builder`"), "{err}");
        std::fs::write(d.path().join("layers/m/layer.toml"), "merge = [\"a\"]\ninstaller = \"pip\"\n").unwrap();
        let err = format!("{:#}", RepoConfig::load(&repo).unwrap().layer(&repo, "m").unwrap_err());
        assert!(err.contains("layers/m/layer.toml") && err.contains("`installer`"), "{err}");
        std::fs::write(d.path().join("layers/m/layer.toml"), "merge = [\"a\"]\narchitectures = [\"arm64\"]\n").unwrap();
        let err = format!("{:#}", RepoConfig::load(&repo).unwrap().layer(&repo, "m").unwrap_err());
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
}
