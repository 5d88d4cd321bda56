//! What publishing a unit would change against its published version: the distributions
//! whose versions differ (added, removed, `requests 2.32.3 -> 2.33.1`) and the size, from
//! the published version's SBOM (CycloneDX: its `components`, and the layer's
//! `xtask:unzipped_bytes`) and the local lock or build. Pure; the SBOM is fetched by
//! xtask-aws (`publish -- dry-run`, `status`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::python::normalise;

/// One distribution that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub name: String,
    /// The published version; `None` when the distribution is new.
    pub from: Option<String>,
    /// The local version; `None` when the distribution goes away.
    pub to: Option<String>,
}

/// The differences of a unit from its published version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// By normalised name.
    pub packages: Vec<Change>,
    /// Unzipped bytes of the published version, when its SBOM says.
    pub published_bytes: Option<u64>,
    /// Unzipped bytes of the local build, when there is one.
    pub local_bytes: Option<u64>,
}

/// What a published version holds, read from its SBOM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Normalised name -> (name as written, version).
    pub packages: BTreeMap<String, (String, String)>,
    pub unzipped_bytes: Option<u64>,
}

impl Held {
    /// From a CycloneDX document as `xtask::sbom` writes it; `None` when it is not one.
    pub fn from_sbom(doc: &serde_json::Value) -> Option<Held> {
        if doc["bomFormat"] != "CycloneDX" {
            return None;
        }
        let mut packages = BTreeMap::new();
        for c in doc["components"].as_array().into_iter().flatten() {
            if let (Some(n), Some(v)) = (c["name"].as_str(), c["version"].as_str()) {
                packages.insert(normalise(n), (n.to_string(), v.to_string()));
            }
        }
        let props = doc["metadata"]["component"]["properties"].as_array().cloned().unwrap_or_default();
        let unzipped_bytes = props
            .iter()
            .find(|p| p["name"] == "xtask:unzipped_bytes")
            .and_then(|p| p["value"].as_str())
            .and_then(|v| v.parse().ok());
        Some(Held { packages, unzipped_bytes })
    }
}

/// The differences between `published` and the local `(name, version)` pairs.
pub fn diff(published: &Held, local: &[(String, String)], local_bytes: Option<u64>) -> Changes {
    let local: BTreeMap<String, (String, String)> =
        local.iter().map(|(n, v)| (normalise(n), (n.clone(), v.clone()))).collect();
    let mut packages = Vec::new();
    for (key, (name, from)) in &published.packages {
        match local.get(key) {
            Some((_, to)) if to == from => {}
            Some((_, to)) => {
                packages.push(Change { name: name.clone(), from: Some(from.clone()), to: Some(to.clone()) })
            }
            None => packages.push(Change { name: name.clone(), from: Some(from.clone()), to: None }),
        }
    }
    for (key, (name, to)) in &local {
        if !published.packages.contains_key(key) {
            packages.push(Change { name: name.clone(), from: None, to: Some(to.clone()) });
        }
    }
    packages.sort_by_key(|c| normalise(&c.name));
    Changes { packages, published_bytes: published.unzipped_bytes, local_bytes }
}

/// The `name==version` pins of a locked requirements.txt (hash lines and markers aside).
pub fn pins(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let spec = l.split([';', ' ', '\\']).next()?.trim();
            let (name, version) = spec.split_once("==")?;
            let name = name.split('[').next()?.trim();
            (!name.is_empty() && !version.is_empty()).then(|| (name.to_string(), version.trim().to_string()))
        })
        .collect()
}

impl std::fmt::Display for Changes {
    /// `requests 2.32.3 -> 2.33.1, +idna 3.10, -six 1.16.0; unzipped 12.3 -> 13.5 MiB`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .packages
            .iter()
            .map(|c| match (&c.from, &c.to) {
                (Some(a), Some(b)) => format!("{} {a} -> {b}", c.name),
                (None, Some(b)) => format!("+{} {b}", c.name),
                (Some(a), None) => format!("-{} {a}", c.name),
                (None, None) => c.name.clone(),
            })
            .collect();
        let packages = if parts.is_empty() { "same package versions".to_string() } else { parts.join(", ") };
        write!(f, "{packages}")?;
        if let (Some(a), Some(b)) = (self.published_bytes, self.local_bytes) {
            let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
            let delta = b as f64 - a as f64;
            write!(f, "; unzipped {:.1} -> {:.1} MiB ({:+.1} MiB)", mib(a), mib(b), delta / (1024.0 * 1024.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn held() -> Held {
        let doc = json!({
            "bomFormat": "CycloneDX",
            "metadata": { "component": { "properties": [{ "name": "xtask:unzipped_bytes", "value": "10485760" }] } },
            "components": [
                { "name": "requests", "version": "2.32.3" },
                { "name": "six", "version": "1.16.0" },
                { "name": "Charset_Normalizer", "version": "3.4.0" }
            ]
        });
        Held::from_sbom(&doc).unwrap()
    }

    #[test]
    fn changed_added_and_removed_packages_and_the_size() {
        let local = vec![
            ("requests".to_string(), "2.33.1".to_string()),
            ("charset-normalizer".to_string(), "3.4.0".to_string()),
            ("idna".to_string(), "3.10".to_string()),
        ];
        let c = diff(&held(), &local, Some(12 * 1024 * 1024));
        assert_eq!(
            c.packages,
            vec![
                Change { name: "idna".into(), from: None, to: Some("3.10".into()) },
                Change { name: "requests".into(), from: Some("2.32.3".into()), to: Some("2.33.1".into()) },
                Change { name: "six".into(), from: Some("1.16.0".into()), to: None },
            ]
        );
        assert_eq!(
            c.to_string(),
            "+idna 3.10, requests 2.32.3 -> 2.33.1, -six 1.16.0; unzipped 10.0 -> 12.0 MiB (+2.0 MiB)"
        );
        let same = diff(&held(), &[], None);
        assert_eq!(same.packages.len(), 3);
        assert!(Held::from_sbom(&json!({"not": "a bom"})).is_none());
    }

    #[test]
    fn pins_are_read_from_a_locked_file() {
        let lines: Vec<String> = [
            "requests==2.33.1 \\",
            "    --hash=sha256:abc",
            "pywin32==306 ; sys_platform == 'win32'",
            "extra[socks]==1.0",
            "# comment",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = pins(&lines);
        assert_eq!(p[0], ("requests".to_string(), "2.33.1".to_string()));
        assert_eq!(p[1], ("pywin32".to_string(), "306".to_string()));
        assert_eq!(p[2], ("extra".to_string(), "1.0".to_string()));
        assert_eq!(p.len(), 3);
    }
}
