//! `published/<profile>.json`: what is published where, committed by the team. Sorted by
//! layer, runtime, architecture and region, pretty-printed, rewritten atomically after
//! every successful publish so that a run that stops half-way still records its part.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::package::write_atomically;

/// One published layer version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub layer: String,
    pub runtime: String,
    pub arch: String,
    pub region: String,
    pub layer_name: String,
    pub version: i64,
    pub layer_version_arn: String,
    pub code_sha256: String,
    pub fingerprint: String,
    /// RFC 3339, UTC.
    pub published_at: String,
}

impl Entry {
    fn key(&self) -> (&str, &str, &str, &str) {
        (&self.layer, &self.runtime, &self.arch, &self.region)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub profile: String,
    pub layers: Vec<Entry>,
}

impl Manifest {
    /// `published/<profile>.json`.
    pub fn path(published_dir: &Path, profile: &str) -> PathBuf {
        published_dir.join(format!("{profile}.json"))
    }

    /// The manifest at `path`, or an empty one when there is none yet.
    pub fn load(path: &Path, profile: &str) -> Result<Manifest> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Manifest { profile: profile.to_string(), layers: Vec::new() });
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| {
            format!(
                "invalid manifest {}: fix it or restore it from git (`git checkout -- {}`)",
                path.display(),
                path.display()
            )
        })
    }

    pub fn get(&self, layer: &str, runtime: &str, arch: &str, region: &str) -> Option<&Entry> {
        self.layers.iter().find(|e| e.key() == (layer, runtime, arch, region))
    }

    /// Inserts or replaces the entry of the same unit and region; false when unchanged.
    pub fn upsert(&mut self, entry: Entry) -> bool {
        match self.layers.iter_mut().find(|e| e.key() == entry.key()) {
            Some(e) if *e == entry => false,
            Some(e) => {
                *e = entry;
                true
            }
            None => {
                self.layers.push(entry);
                true
            }
        }
    }

    /// Stable text: sorted, pretty, ending with a newline.
    pub fn to_text(&self) -> String {
        let mut m = self.clone();
        m.layers.sort_by(|a, b| a.key().cmp(&b.key()));
        serde_json::to_string_pretty(&m).expect("a manifest always serialises") + "\n"
    }
}

/// The manifest of one run, shared by the concurrent publishes and saved after each change.
pub struct Recorder {
    path: PathBuf,
    manifest: Mutex<Manifest>,
}

impl Recorder {
    pub fn open(published_dir: &Path, profile: &str) -> Result<Recorder> {
        let path = Manifest::path(published_dir, profile);
        let manifest = Manifest::load(&path, profile)?;
        Ok(Recorder { path, manifest: Mutex::new(manifest) })
    }

    pub fn get(&self, layer: &str, runtime: &str, arch: &str, region: &str) -> Option<Entry> {
        self.manifest.lock().unwrap_or_else(|e| e.into_inner()).get(layer, runtime, arch, region).cloned()
    }

    /// Records one entry and rewrites the file when that changed anything.
    pub fn record(&self, entry: Entry) -> Result<()> {
        let mut m = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        if !m.upsert(entry) {
            return Ok(());
        }
        let dir = self.path.parent().context("manifest path has no folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        write_atomically(&self.path, m.to_text().as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// Now, as RFC 3339 in UTC to the second: `2024-05-01T10:00:00Z`.
pub fn now_rfc3339() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since 1970 as RFC 3339 in UTC.
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let date = crate::runtime::civil_from_days(days);
    format!("{date}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Lambda's CreatedDate (`2024-05-01T10:00:00.123+0000`) as RFC 3339 UTC to the second;
/// anything else is kept as it is.
pub fn from_lambda_date(created: &str) -> String {
    let utc = created.ends_with("+0000") || created.ends_with('Z') || created.ends_with("+00:00");
    match created.get(..19) {
        Some(head) if utc && head.as_bytes().get(10) == Some(&b'T') => format!("{head}Z"),
        _ => created.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(layer: &str, region: &str, version: i64) -> Entry {
        Entry {
            layer: layer.into(),
            runtime: "python3.12".into(),
            arch: "x86_64".into(),
            region: region.into(),
            layer_name: format!("{layer}-py312-x86_64"),
            version,
            layer_version_arn: format!("arn:aws:lambda:{region}:123456789012:layer:{layer}-py312-x86_64:{version}"),
            code_sha256: "abc=".into(),
            fingerprint: "ff".into(),
            published_at: "2024-05-01T10:00:00Z".into(),
        }
    }

    #[test]
    fn text_is_sorted_and_stable_whatever_the_order_of_records() {
        let mut a = Manifest { profile: "staging".into(), layers: vec![] };
        let mut b = a.clone();
        for e in [entry("pandas", "us-east-1", 1), entry("numpy", "eu-west-1", 2), entry("numpy", "eu-central-1", 1)] {
            a.upsert(e);
        }
        for e in [entry("numpy", "eu-central-1", 1), entry("pandas", "us-east-1", 1), entry("numpy", "eu-west-1", 2)] {
            b.upsert(e);
        }
        assert_eq!(a.to_text(), b.to_text());
        let text = a.to_text();
        assert!(text.find("eu-central-1").unwrap() < text.find("eu-west-1").unwrap() && text.ends_with("}\n"));
        assert!(!a.upsert(entry("pandas", "us-east-1", 1)));
        assert!(a.upsert(entry("pandas", "us-east-1", 2)));
        assert_eq!(a.layers.len(), 3);
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_text(), text);
    }

    #[test]
    fn recorder_writes_the_file_and_a_missing_file_is_empty() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("published");
        let r = Recorder::open(&dir, "local").unwrap();
        r.record(entry("six", "us-east-1", 1)).unwrap();
        let m = Manifest::load(&Manifest::path(&dir, "local"), "local").unwrap();
        assert_eq!(m.layers, vec![entry("six", "us-east-1", 1)]);
        assert_eq!(
            Recorder::open(&dir, "local").unwrap().get("six", "python3.12", "x86_64", "us-east-1").unwrap().version,
            1
        );
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(1_764_244_799), "2025-11-27T11:59:59Z");
        assert_eq!(from_lambda_date("2024-05-01T10:00:00.123+0000"), "2024-05-01T10:00:00Z");
        assert_eq!(from_lambda_date("yesterday"), "yesterday");
        assert!(now_rfc3339().ends_with('Z'));
    }
}
