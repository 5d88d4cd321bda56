//! Lambda's size limits for layers, checked before anything is written to dist/.

use anyhow::{bail, Result};

/// The most a function and all its layers may unzip to: 250 MiB.
pub const UNZIPPED_LIMIT: u64 = 262_144_000;
/// The largest zip a direct (non-S3) upload accepts: 50 MiB.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

/// The share of the 250 MiB budget a layer uses, in percent.
pub fn budget_share(unzipped: u64) -> f64 {
    unzipped as f64 * 100.0 / UNZIPPED_LIMIT as f64
}

/// Bytes per top-level entry of `python_dir` (a package, module or dist-info), largest
/// first, and their total.
pub fn measure(python_dir: &std::path::Path) -> Result<(u64, Vec<(String, u64)>)> {
    let mut sizes = Vec::new();
    for e in std::fs::read_dir(python_dir)? {
        let e = e?;
        let (_, bytes) = crate::slim::tree_size(&e.path())?;
        sizes.push((e.file_name().to_string_lossy().into_owned(), bytes));
    }
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok((sizes.iter().map(|s| s.1).sum(), sizes))
}

/// Fails when the layer alone exceeds the unzipped limit, naming the largest top-level
/// packages. Run before packaging, so an oversized layer fails fast.
pub fn check_unzipped(unzipped: u64, largest: &[(String, u64)]) -> Result<()> {
    if unzipped > UNZIPPED_LIMIT {
        let top: Vec<String> = largest.iter().take(5).map(|(n, b)| format!("{n} {}", mib(*b))).collect();
        bail!(
            "layer unzips to {} ({unzipped} bytes), over Lambda's limit of 250 MiB ({UNZIPPED_LIMIT} bytes) for a function and all its layers; largest: {}; split it into smaller layers, raise slimming, or add excludes",
            mib(unzipped),
            top.join(", ")
        );
    }
    Ok(())
}

/// Notes on a zip that is within the limits but worth knowing about.
pub fn notes(zipped: u64) -> Vec<String> {
    let mut notes = Vec::new();
    if zipped > DIRECT_UPLOAD_LIMIT {
        notes.push(format!(
            "zip is {}, over the 50 MiB direct-upload limit: it must be published through S3 (publish always does)",
            mib(zipped)
        ));
    }
    notes
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_limit_names_largest_packages() {
        let largest = vec![("pandas".to_string(), 200_000_000), ("numpy".to_string(), 70_000_000)];
        let err = check_unzipped(UNZIPPED_LIMIT + 1, &largest).unwrap_err().to_string();
        assert!(err.contains("250 MiB") && err.contains("pandas 190.7 MiB") && err.contains("numpy"), "{err}");
        check_unzipped(UNZIPPED_LIMIT, &largest).unwrap();
    }

    #[test]
    fn big_zip_gets_an_s3_note() {
        assert_eq!(notes(DIRECT_UPLOAD_LIMIT + 1).len(), 1);
        assert!(notes(DIRECT_UPLOAD_LIMIT).is_empty());
        assert!((budget_share(UNZIPPED_LIMIT / 4) - 25.0).abs() < 1e-9);
    }
}
