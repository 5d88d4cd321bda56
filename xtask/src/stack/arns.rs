//! Which layer version each layer of a stack attaches: read from the profile's committed
//! manifest, `published/<profile>.json` (no AWS call), for the stack's runtime and
//! architecture in one region of the profile.

use anyhow::{bail, Result};

use crate::config::Profile;
use crate::profile::manifest::Manifest;
use crate::runtime::{Arch, Runtime};

/// What the manifest says about one layer of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    /// Published: the version to attach. `stale` when the local build's fingerprint
    /// differs from the published one (the layer changed since it was published).
    Published { arn: String, version: i64, stale: bool },
    /// Not in the manifest for this runtime, architecture and region.
    Missing,
}

/// The region ARNs are read for: `--region` (which must be one of the profile's), else
/// the profile's first.
pub fn region(profile_name: &str, profile: &Profile, explicit: Option<&str>) -> Result<String> {
    match explicit {
        Some(r) if profile.regions.iter().any(|p| p == r) => Ok(r.to_string()),
        Some(r) => bail!(
            "region {r} is not one of profile `{profile_name}`'s regions ({}): pick one of them with --region",
            profile.regions.join(", ")
        ),
        None => match profile.regions.first() {
            Some(r) => Ok(r.clone()),
            None => bail!("profile `{profile_name}` in layers.toml has no regions: set e.g. regions = [\"eu-west-1\"]"),
        },
    }
}

/// The publication of each `(layer, local fingerprint)`, in the order given.
pub fn lookup(
    manifest: &Manifest,
    layers: &[(String, Option<String>)],
    runtime: Runtime,
    arch: Arch,
    region: &str,
) -> Vec<(String, Publication)> {
    layers
        .iter()
        .map(|(layer, fingerprint)| {
            let p = match manifest.get(layer, runtime.id, arch.as_str(), region) {
                Some(e) => Publication::Published {
                    arn: e.layer_version_arn.clone(),
                    version: e.version,
                    stale: fingerprint.as_ref().is_some_and(|f| *f != e.fingerprint),
                },
                None => Publication::Missing,
            };
            (layer.clone(), p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::manifest::Entry;

    fn entry(layer: &str, fingerprint: &str) -> Entry {
        Entry {
            layer: layer.into(),
            runtime: "python3.13".into(),
            arch: "x86_64".into(),
            region: "eu-west-1".into(),
            layer_name: format!("{layer}-py313-x86_64"),
            version: 2,
            layer_version_arn: format!("arn:aws:lambda:eu-west-1:123456789012:layer:{layer}-py313-x86_64:2"),
            code_sha256: "x".into(),
            fingerprint: fingerprint.into(),
            published_at: "2025-01-01T00:00:00Z".into(),
            sbom_key: None,
            ssm_parameter: None,
        }
    }

    #[test]
    fn published_missing_and_stale_layers() {
        let m = Manifest { profile: "staging".into(), layers: vec![entry("numpy", "f1"), entry("pandas", "f2")] };
        let py = Runtime::parse("python3.13").unwrap();
        let layers = vec![
            ("numpy".to_string(), Some("f1".to_string())),
            ("pandas".to_string(), Some("new".to_string())),
            ("six".to_string(), None),
        ];
        let got = lookup(&m, &layers, py, Arch::X86_64, "eu-west-1");
        assert_eq!(
            got[0].1,
            Publication::Published { arn: entry("numpy", "").layer_version_arn, version: 2, stale: false }
        );
        assert!(matches!(got[1].1, Publication::Published { stale: true, .. }));
        assert_eq!(got[2].1, Publication::Missing);
        assert!(lookup(&m, &layers[..1], py, Arch::Arm64, "eu-west-1")[0].1 == Publication::Missing);
        assert!(lookup(&m, &layers[..1], py, Arch::X86_64, "us-east-1")[0].1 == Publication::Missing);
    }

    #[test]
    fn region_defaults_to_the_first_and_must_belong_to_the_profile() {
        let p: Profile = toml::from_str("regions = [\"eu-west-1\", \"us-east-1\"]\nbucket = \"b-{region}\"\n").unwrap();
        assert_eq!(region("staging", &p, None).unwrap(), "eu-west-1");
        assert_eq!(region("staging", &p, Some("us-east-1")).unwrap(), "us-east-1");
        let err = region("staging", &p, Some("ap-south-1")).unwrap_err().to_string();
        assert!(err.contains("ap-south-1") && err.contains("eu-west-1, us-east-1"), "{err}");
    }
}
