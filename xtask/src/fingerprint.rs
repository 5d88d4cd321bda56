//! The fingerprint of a build's inputs: if it matches the one recorded in dist/ (or in a
//! published layer's description), the build would produce the same layer.

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use crate::config::{Installer, LayerConfig, SlimLevel, Source};
use crate::requirements_txt::Requirements;
use crate::runtime::{Arch, Runtime};

/// Bump when a change to the tool changes what a build produces from the same inputs
/// (slimming rules, packaging, pip flags), so every layer is rebuilt once.
pub const RECIPE_VERSION: u32 = 1;

/// Hex SHA-256 over everything that decides the bytes of one unit's zip.
pub fn compute(layer: &LayerConfig, reqs: &Requirements, runtime: Runtime, arch: Arch, image: &str) -> Result<String> {
    let mut h = Sha256::new();
    let mut field = |k: &str, v: &str| {
        h.update(k.as_bytes());
        h.update([0]);
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    };
    field("recipe", &RECIPE_VERSION.to_string());
    field("layer", &layer.name);
    field("runtime", runtime.id);
    field("arch", arch.as_str());
    field("image", image);
    // A merged layer hashes as "Docker", as it did when it was planned as a docker layer
    // whose image names its members: its fingerprint, and so what is published, is stable.
    let builder = match &layer.source {
        Source::Pip { builder } => format!("{builder:?}"),
        Source::Merge { .. } => "Docker".into(),
    };
    field("builder", &builder);
    field("slim", &format!("{:?}", layer.slim));
    // The installer counts only where it changes the zip: uv and pip install the same
    // files with the same bytes, and differ only in what `slim` (safe and aggressive)
    // removes before zipping: install records (INSTALLER says `uv`, RECORD) and console
    // script launchers in bin/. So a layer slimmed `safe`/`aggressive` keeps its
    // fingerprint (and published versions) whichever installs it; one kept whole
    // (`slim = "none"`) is fingerprinted with uv as the installer. pip adds no field: every
    // fingerprint from before uv stays what it was.
    if layer.installer == Installer::Uv && layer.slim == SlimLevel::None && matches!(layer.source, Source::Pip { .. }) {
        field("installer", "uv");
    }
    field("exclude", &layer.exclude.join("\n"));
    field("license", layer.license.as_deref().unwrap_or(""));
    field("description", layer.description.as_deref().unwrap_or(""));
    field("requirements", &reqs.normalised());
    // Other files of the layer folder (local wheels a requirement points at) count by
    // content; requirements.txt and layer.toml are already counted through their meaning,
    // and requirements.in through requirements.txt, its lock (a comment edited there
    // rebuilds nothing; a stale lock is refused by `check` and `changed`).
    for e in WalkDir::new(&layer.dir).sort_by_file_name().min_depth(1) {
        let e = e.with_context(|| format!("cannot read {}", layer.dir.display()))?;
        let rel = e.path().strip_prefix(&layer.dir).unwrap();
        let counted = ["requirements.txt", "layer.toml", "requirements.in"].iter().any(|f| rel == Path::new(f));
        if !e.file_type().is_file() || counted {
            continue;
        }
        let digest =
            Sha256::digest(std::fs::read(e.path()).with_context(|| format!("cannot read {}", e.path().display()))?);
        field(&format!("file:{}", rel.display()), &hex(&digest));
    }
    Ok(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Builder, SlimLevel};

    fn layer(dir: &Path) -> LayerConfig {
        LayerConfig {
            name: "l".into(),
            dir: dir.to_path_buf(),
            description: None,
            license: None,
            runtimes: vec![],
            architectures: vec![],
            source: crate::config::Source::Pip { builder: Builder::Docker },
            installer: crate::config::Installer::Uv,
            images: Default::default(),
            slim: SlimLevel::Safe,
            exclude: vec![],
            public: false,
            share_with_accounts: vec![],
            share_with_organization: None,
            requires: vec![],
            check_images: Default::default(),
        }
    }

    #[test]
    fn changes_with_every_input_and_only_then() {
        let d = tempfile::tempdir().unwrap();
        let l = layer(d.path());
        let r = Requirements::parse("a==1\nb==2\n", "l").unwrap();
        let r312 = Runtime::parse("python3.12").unwrap();
        let base = compute(&l, &r, r312, Arch::X86_64, "img").unwrap();
        assert_eq!(
            base,
            compute(&l, &Requirements::parse("b==2\n# c\na==1", "l").unwrap(), r312, Arch::X86_64, "img").unwrap()
        );
        assert_ne!(
            base,
            compute(&l, &Requirements::parse("a==1\nb==3\n", "l").unwrap(), r312, Arch::X86_64, "img").unwrap()
        );
        assert_ne!(base, compute(&l, &r, Runtime::parse("python3.13").unwrap(), Arch::X86_64, "img").unwrap());
        assert_ne!(base, compute(&l, &r, r312, Arch::Arm64, "img").unwrap());
        assert_ne!(base, compute(&l, &r, r312, Arch::X86_64, "img2").unwrap());
        let mut l2 = layer(d.path());
        l2.slim = SlimLevel::None;
        assert_ne!(base, compute(&l2, &r, r312, Arch::X86_64, "img").unwrap());
        std::fs::write(d.path().join("vendored.whl"), "x").unwrap();
        assert_ne!(base, compute(&l, &r, r312, Arch::X86_64, "img").unwrap());
    }

    #[test]
    fn the_installer_counts_only_for_uv_when_nothing_is_slimmed() {
        let d = tempfile::tempdir().unwrap();
        let r = Requirements::parse("a==1\n", "l").unwrap();
        let r313 = Runtime::parse("python3.13").unwrap();
        let fp = |installer, slim| {
            let mut l = layer(d.path());
            l.installer = installer;
            l.slim = slim;
            compute(&l, &r, r313, Arch::X86_64, "img").unwrap()
        };
        use crate::config::Installer::{Pip, Uv};
        for slim in [SlimLevel::Safe, SlimLevel::Aggressive] {
            assert_eq!(fp(Uv, slim), fp(Pip, slim), "{slim:?}");
        }
        assert_ne!(fp(Uv, SlimLevel::None), fp(Pip, SlimLevel::None));
        // What this tool computed before it knew uv (commit 60d6afd): pip adds nothing.
        assert_eq!(fp(Pip, SlimLevel::Safe), GOLDEN_SAFE);
        assert_eq!(fp(Pip, SlimLevel::None), GOLDEN_NONE);
    }

    const GOLDEN_SAFE: &str = "74c25fbc719797d67263d9c2d5be19740f8e617eb13a296cab4cdac44ae6e454";
    const GOLDEN_NONE: &str = "524b74233d36c04be97872f50ab6bb986ec027c4af1b791afd809e550163a7f1";
}
