//! Names derived from a unit and a deploy profile: the Lambda layer name, the bucket of
//! a region, the S3 key of a zip, and the layer version's Description (which carries the
//! build fingerprint that change detection reads back).

use anyhow::{bail, Result};

use crate::config::Profile;
use crate::python::{self, Package};
use crate::runtime::{Arch, Runtime};

/// Lambda's limit on a layer name.
const MAX_LAYER_NAME: usize = 140;
/// Lambda's limit on a layer version's Description, in characters.
pub const MAX_DESCRIPTION: usize = 256;
/// What marks the fingerprint inside a Description.
const FP_TAG: &str = "fp:";

/// The Lambda layer name of a unit: the profile's template with `{layer}`, `{py}`
/// (py312), `{runtime}` (python3.12) and `{arch}` filled in. Characters Lambda rejects
/// (anything but letters, digits, `-` and `_`, e.g. the dot of `python3.12`) become `-`.
pub fn layer_name(template: &str, layer: &str, runtime: Runtime, arch: Arch) -> Result<String> {
    let filled = template
        .replace("{layer}", layer)
        .replace("{py}", &runtime.tag())
        .replace("{runtime}", runtime.id)
        .replace("{arch}", arch.as_str());
    if filled.contains('{') || filled.contains('}') {
        bail!("invalid layer_name `{template}` in layers.toml: known placeholders are {{layer}}, {{py}}, {{runtime}} and {{arch}}");
    }
    let name: String =
        filled.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    if name.is_empty() || name.len() > MAX_LAYER_NAME {
        bail!("layer name `{name}` (from layer_name `{template}` in layers.toml) must be 1 to {MAX_LAYER_NAME} characters");
    }
    Ok(name)
}

/// The SSM parameter a unit's newest ARN is written to: the profile's `ssm_parameter`
/// template (checked when layers.toml is read) with the placeholders filled in.
pub fn ssm_parameter(template: &str, layer: &str, runtime: Runtime, arch: Arch) -> String {
    template
        .replace("{layer}", layer)
        .replace("{py}", &runtime.tag())
        .replace("{runtime}", runtime.id)
        .replace("{arch}", arch.as_str())
}

/// The bucket used in `region`: `{region}` in the profile's bucket is filled in, because
/// Lambda reads a layer's zip only from a bucket in the layer's own region.
pub fn bucket(profile: &Profile, region: &str) -> String {
    profile.bucket.replace("{region}", region)
}

/// Checking a profile is the config's (`config/profile.rs`); named here too for the
/// callers that check a profile before naming what it publishes.
pub use crate::config::check_profile;

/// The content-addressed S3 key of a zip: `PREFIX/<layer name>/<sha256 hex>.zip`.
pub fn s3_key(prefix: &str, layer_name: &str, sha256_hex: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{layer_name}/{sha256_hex}.zip")
    } else {
        format!("{prefix}/{layer_name}/{sha256_hex}.zip")
    }
}

/// The S3 key of a zip's SBOM: beside it, `<sha256 hex>.cdx.json`.
pub fn sbom_key(zip_key: &str) -> String {
    format!("{}.cdx.json", zip_key.strip_suffix(".zip").unwrap_or(zip_key))
}

/// The packages named in requirements.txt, with the versions that were installed, e.g.
/// `pandas==2.2.3`; dependencies pulled in by them are left out.
pub fn main_packages(requirement_lines: &[String], installed: &[Package]) -> Vec<String> {
    let wanted: Vec<String> = requirement_lines.iter().filter_map(|l| python::requirement_name(l)).collect();
    installed
        .iter()
        .filter(|p| wanted.contains(&python::normalise(&p.name)))
        .map(|p| format!("{}=={}", p.name, p.version))
        .collect()
}

/// The Description of a layer version: the layer's own description, its main packages,
/// and `fp:<fingerprint>`, at most 256 characters; the fingerprint is never cut off.
pub fn description(layer_description: Option<&str>, packages: &[String], fingerprint: &str) -> String {
    let tail = format!("{FP_TAG}{fingerprint}");
    let mut head: Vec<String> = Vec::new();
    if let Some(d) = layer_description.map(str::trim).filter(|d| !d.is_empty()) {
        head.push(d.to_string());
    }
    if !packages.is_empty() {
        head.push(packages.join(" "));
    }
    let head = head.join(" | ");
    let room = MAX_DESCRIPTION.saturating_sub(tail.chars().count() + 3);
    if head.is_empty() {
        tail
    } else if head.chars().count() <= room {
        format!("{head} | {tail}")
    } else {
        let cut: String = head.chars().take(room.saturating_sub(3)).collect();
        format!("{}... | {tail}", cut.trim_end())
    }
}

/// Whether a published Description carries this fingerprint.
pub fn has_fingerprint(description: &str, fingerprint: &str) -> bool {
    description.split_whitespace().any(|w| w.strip_prefix(FP_TAG) == Some(fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(id: &str) -> Runtime {
        Runtime::parse(id).unwrap()
    }

    #[test]
    fn layer_names_fill_the_template_and_map_rejected_characters() {
        assert_eq!(
            layer_name("{layer}-{py}-{arch}", "pandas", py("python3.12"), Arch::X86_64).unwrap(),
            "pandas-py312-x86_64"
        );
        assert_eq!(
            layer_name("team.{layer}-{runtime}", "np", py("python3.13"), Arch::Arm64).unwrap(),
            "team-np-python3-13"
        );
        let err = layer_name("{layer}-{python}", "np", py("python3.13"), Arch::Arm64).unwrap_err().to_string();
        assert!(err.contains("{python}") && err.contains("{layer}"), "{err}");
        assert!(layer_name(&"x".repeat(141), "np", py("python3.13"), Arch::Arm64).is_err());
    }

    #[test]
    fn keys_are_content_addressed_under_the_prefix() {
        assert_eq!(s3_key("layers/", "six-py311-x86_64", "ab"), "layers/six-py311-x86_64/ab.zip");
        assert_eq!(s3_key("", "six-py311-x86_64", "ab"), "six-py311-x86_64/ab.zip");
        assert_eq!(sbom_key("layers/six-py311-x86_64/ab.zip"), "layers/six-py311-x86_64/ab.cdx.json");
    }

    #[test]
    fn a_region_fills_in_its_bucket() {
        let p: Profile = toml::from_str("regions = [\"eu-west-1\", \"us-east-1\"]\nbucket = \"b-{region}\"\n").unwrap();
        assert_eq!(bucket(&p, "us-east-1"), "b-us-east-1");
        assert_eq!(bucket(&p, "eu-west-1"), "b-eu-west-1");
    }

    #[test]
    fn main_packages_are_the_requirements_with_installed_versions() {
        let lines =
            vec!["Typing_Extensions>=4".to_string(), "six==1.16.0".to_string(), "--no-binary :all:".to_string()];
        let installed = vec![
            Package { name: "idna".into(), version: "3.10".into() },
            Package { name: "six".into(), version: "1.16.0".into() },
            Package { name: "typing-extensions".into(), version: "4.12.2".into() },
        ];
        assert_eq!(main_packages(&lines, &installed), vec!["six==1.16.0", "typing-extensions==4.12.2"]);
    }

    #[test]
    fn description_keeps_the_fingerprint_within_256_characters() {
        let fp = "f".repeat(64);
        let d = description(Some("Data frames"), &["pandas==2.2.3".into()], &fp);
        assert_eq!(d, format!("Data frames | pandas==2.2.3 | fp:{fp}"));
        assert!(has_fingerprint(&d, &fp) && !has_fingerprint(&d, "fff"));
        let long = description(Some(&"é".repeat(400)), &["a==1".into()], &fp);
        assert!(long.chars().count() <= MAX_DESCRIPTION, "{}", long.chars().count());
        assert!(has_fingerprint(&long, &fp), "{long}");
        assert_eq!(description(None, &[], &fp), format!("fp:{fp}"));
    }
}
