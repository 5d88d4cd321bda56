//! `layers.local.toml`: this machine's settings, beside `layers.toml`, git-ignored and
//! optional, read once per run with it ([`RepoConfig::load`]) so every command agrees
//! without flags.
//!
//! It holds only what differs from one machine to another: the build and check images
//! (a registry mirror, the stand-in image of `scripts/try-local.sh`), this machine's AWS
//! profile name for a deploy profile, and where an emulator profile's emulator listens.
//! Nothing that changes what a layer is (requirements, names, targets, slimming) and no
//! new profile: those are reviewed in the committed files.
//!
//! Precedence of an image: `--image`/`--check-image` > `layers.local.toml` (`[images]` /
//! `[check_images]` for the target, then `image` / `check_image`) > the committed files
//! (layer.toml, then layers.toml's `[images]` and `[defaults]`) > the built-in default.
//! Like the flags, a local image replaces a layer's own `image` too.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use toml::Spanned;

use super::layer::image_key;
use super::schema::{parse_toml, ConfigText, LocalFile};
use super::{Profile, RepoConfig};
use crate::quote::clip;
use crate::repo::Repo;
use crate::runtime::{Arch, Runtime};

/// The file's name, beside `layers.toml`.
pub const LOCAL_FILE: &str = "layers.local.toml";

/// What `layers.local.toml` sets, checked; empty when there is no such file.
#[derive(Debug, Default)]
pub(super) struct Local {
    image: Option<String>,
    check_image: Option<String>,
    images: BTreeMap<(Runtime, Arch), String>,
    check_images: BTreeMap<(Runtime, Arch), String>,
    /// What it sets, one line each (`build image python3.13-x86_64 = IMAGE`).
    pub(super) shown: Vec<String>,
}

impl Local {
    /// This machine's build image template for a target, if it sets one.
    pub(super) fn image(&self, r: Runtime, a: Arch) -> Option<&str> {
        self.images.get(&(r, a)).or(self.image.as_ref()).map(String::as_str)
    }

    /// This machine's check image template for a target, if it sets one.
    pub(super) fn check_image(&self, r: Runtime, a: Arch) -> Option<&str> {
        self.check_images.get(&(r, a)).or(self.check_image.as_ref()).map(String::as_str)
    }
}

/// Reads `layers.local.toml` when there is one, and applies its profile settings to
/// `profiles` (the committed ones), adding a warning where a guard no longer guards.
pub(super) fn load(
    repo: &Repo,
    profiles: &mut BTreeMap<String, Profile>,
    warnings: &mut BTreeMap<String, Vec<String>>,
) -> Result<Local> {
    let path = repo.root.join(LOCAL_FILE);
    if !path.exists() {
        return Ok(Local::default());
    }
    let (file, src): (LocalFile, ConfigText) = parse_toml(&path, LOCAL_FILE)?;
    let mut local = Local { image: file.image, check_image: file.check_image, ..Local::default() };
    if let Some(i) = &local.image {
        local.shown.push(format!("build image = {}", clip(i)));
    }
    for (key, image) in &file.images {
        let target = image_key(key, &format!("{}: [images]", src.at(image.span())))?;
        local.shown.push(format!("build image {key} = {}", clip(image.get_ref())));
        local.images.insert(target, image.get_ref().clone());
    }
    if let Some(i) = &local.check_image {
        local.shown.push(format!("check image = {}", clip(i)));
    }
    for (key, image) in &file.check_images {
        let target = image_key(key, &format!("{}: [check_images]", src.at(image.span())))?;
        local.shown.push(format!("check image {key} = {}", clip(image.get_ref())));
        local.check_images.insert(target, image.get_ref().clone());
    }
    for (name, p) in file.profiles {
        let at = format!("invalid config in {}: [profiles.{name}]", src.at(p.span()));
        let Some(profile) = profiles.get_mut(&name) else {
            let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
            bail!(
                "{at} is not a profile of layers.toml (it defines {}): {LOCAL_FILE} only sets this machine's `aws_profile` or `endpoint_url` of one",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            );
        };
        let p = p.into_inner();
        if let Some(aws) = p.aws_profile {
            local.shown.push(format!("profile {name}: aws_profile = {}", clip(&aws)));
            profile.aws_profile = Some(aws);
        }
        if let Some(url) = p.endpoint_url {
            endpoint(&name, profile, url, &src, &mut local.shown, warnings)?;
        }
    }
    Ok(local)
}

/// Moves an emulator profile's endpoint. A profile that publishes to AWS stays so: its
/// records (`published/NAME.json`) are committed, and must not name an emulator's layers.
fn endpoint(
    name: &str,
    profile: &mut Profile,
    url: Spanned<String>,
    src: &ConfigText,
    shown: &mut Vec<String>,
    warnings: &mut BTreeMap<String, Vec<String>>,
) -> Result<()> {
    let at = src.at(url.span());
    if profile.endpoint_url.is_none() {
        bail!(
            "invalid config in {at}: [profiles.{name}] `endpoint_url`: profile {name} publishes to AWS (no `endpoint_url` in layers.toml); {LOCAL_FILE} may move an emulator profile's endpoint, not send an AWS profile to an emulator"
        );
    }
    let url = url.into_inner();
    if profile.confirm {
        warnings.entry(name.to_string()).or_default().push(format!(
            "profile {name} has confirm = true but {at} sets `endpoint_url` = \"{}\": its writes go to that emulator",
            clip(&url)
        ));
    }
    shown.push(format!("profile {name}: endpoint_url = {}", clip(&url)));
    profile.endpoint_url = Some(url);
    Ok(())
}

impl RepoConfig {
    /// What `layers.local.toml` sets, one line each (`build image python3.13-x86_64 =
    /// IMAGE`); empty without the file.
    pub fn local_settings(&self) -> &[String] {
        &self.local.shown
    }

    /// Notes what `layers.local.toml` sets, one line each (`-v` at every load; `list`).
    pub fn note_local_settings(&self) {
        for line in self.local_settings() {
            crate::output::note(format_args!("{LOCAL_FILE}: {line}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::repo_with;

    fn image_of(files: &[(&str, &str)]) -> (String, String) {
        let (_d, repo) = repo_with(files);
        let cfg = RepoConfig::load(&repo).unwrap();
        let l = cfg.layer(&repo, "a").unwrap();
        let t = (Runtime::parse("python3.13").unwrap(), Arch::X86_64);
        (l.images[&t].clone(), l.check_images[&t].clone())
    }

    #[test]
    fn local_images_beat_the_committed_ones_per_target_first() {
        let committed = "[defaults]\nimage = \"team:{runtime}\"\ncheck_image = \"team-check\"\n[images]\n\"python3.13-x86_64\" = \"team-313\"\n";
        let layer = "image = \"layer-own\"\n";
        let base = [
            ("layers.toml", committed),
            ("layers/a/requirements.txt", "six==1.16.0\n"),
            ("layers/a/layer.toml", layer),
        ];
        assert_eq!(image_of(&base), ("layer-own".into(), "team-check".into()), "no local file");
        let mut files = base.to_vec();
        files.push((LOCAL_FILE, "image = \"mine:{runtime}-{arch}\"\ncheck_image = \"mine-check:{python}\"\n"));
        assert_eq!(image_of(&files), ("mine:python3.13-x86_64".into(), "mine-check:3.13".into()));
        files.pop();
        files.push((
            LOCAL_FILE,
            "image = \"mine\"\n[images]\n\"python3.13-x86_64\" = \"mine-313\"\n[check_images]\n\"python3.13-x86_64\" = \"c-313\"\n\"python3.12-arm64\" = \"c-312\"\n",
        ));
        assert_eq!(image_of(&files), ("mine-313".into(), "c-313".into()));
    }

    #[test]
    fn local_settings_are_listed_and_profiles_get_this_machines_endpoint() {
        let (_d, repo) = repo_with(&[
            ("layers.toml", "[profiles.local]\nregions = [\"us-east-1\"]\nbucket = \"b-local\"\nendpoint_url = \"http://127.0.0.1:5077\"\n[profiles.staging]\nregions = [\"eu-west-1\"]\nbucket = \"b-staging\"\naws_profile = \"team\"\n"),
            (LOCAL_FILE, "check_image = \"c\"\n[profiles.local]\nendpoint_url = \"http://127.0.0.1:4566\"\n[profiles.staging]\naws_profile = \"me\"\n"),
        ]);
        let cfg = RepoConfig::load(&repo).unwrap();
        assert_eq!(cfg.profiles["local"].endpoint_url.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(cfg.profiles["staging"].aws_profile.as_deref(), Some("me"));
        assert_eq!(
            cfg.local_settings(),
            [
                "check image = c",
                "profile local: endpoint_url = http://127.0.0.1:4566",
                "profile staging: aws_profile = me"
            ]
        );
    }

    #[test]
    fn what_the_local_file_may_not_set_is_a_one_line_error_naming_file_and_line() {
        let profiles = "[profiles.staging]\nregions = [\"eu-west-1\"]\nbucket = \"b-staging\"\n";
        for (local, needles) in [
            (
                "image = \"x\"\nrequirements = [\"six\"]\n",
                &[
                    "layers.local.toml:2",
                    "unknown field `requirements`",
                    "`image`, `check_image`, `images`, `check_images`, `profiles`",
                ][..],
            ),
            (
                "[profiles.staging]\nbucket = \"other\"\n",
                &["layers.local.toml:2", "unknown field `bucket`", "expected `aws_profile` or `endpoint_url`"],
            ),
            (
                "\n[profiles.prod]\naws_profile = \"x\"\n",
                &["layers.local.toml:2", "[profiles.prod] is not a profile of layers.toml (it defines staging)"],
            ),
            (
                "[profiles.staging]\n\nendpoint_url = \"http://x\"\n",
                &["layers.local.toml:3", "profile staging publishes to AWS"],
            ),
            (
                "[images]\n\"python3.13\" = \"x\"\n",
                &["layers.local.toml:2", "[images] key `python3.13` must be RUNTIME-ARCH"],
            ),
            (
                "[check_images]\n\"python2.7-x86_64\" = \"x\"\n",
                &["layers.local.toml:2", "[check_images] key `python2.7-x86_64`"],
            ),
        ] {
            let (_d, repo) = repo_with(&[("layers.toml", profiles), (LOCAL_FILE, local)]);
            let err = format!("{:#}", RepoConfig::load(&repo).unwrap_err());
            assert!(!err.contains('\n'), "{err}");
            for n in needles {
                assert!(err.contains(n), "`{n}` not in: {err}");
            }
        }
    }
}
