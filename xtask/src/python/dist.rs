//! Installed distributions: the core metadata of `*.dist-info/METADATA` (headers are
//! case-insensitive, a line starting with white space continues the previous one, the body
//! starts at the first blank line), and the distributions installed in a tree.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::name::normalise;

/// One installed distribution, read from `<name>-<ver>.dist-info/METADATA`.
#[derive(Debug, Clone)]
pub struct Dist {
    pub name: String,
    pub version: String,
    /// The raw `Requires-Dist` values.
    pub requires: Vec<String>,
    /// The layer that ships it.
    pub layer: String,
    /// Its licence: `License-Expression`, else a one-line `License`, else the licence
    /// classifiers (`MIT License`), joined with ` OR `.
    pub license: Option<String>,
}

/// A distribution's name and version, as the build report lists them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
}

impl Dist {
    /// The `Name`, `Version` and `Requires-Dist` headers of a METADATA file; `None` without
    /// a name or version.
    pub fn parse(text: &str, layer: &str) -> Option<Dist> {
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = headers.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let values =
            |key: &'static str| headers.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.trim().to_string());
        Some(Dist {
            name: values("name").next()?,
            version: values("version").next()?,
            requires: values("requires-dist").collect(),
            layer: layer.to_string(),
            license: license(
                &values("license-expression").collect::<Vec<_>>(),
                &values("license").collect::<Vec<_>>(),
                &values("classifier").collect::<Vec<_>>(),
            ),
        })
    }
}

/// A distribution's licence from its METADATA headers (core metadata 2.4 first).
fn license(expression: &[String], license: &[String], classifiers: &[String]) -> Option<String> {
    let usable = |v: &&String| !v.is_empty() && !v.eq_ignore_ascii_case("UNKNOWN");
    if let Some(e) = expression.iter().find(usable) {
        return Some(e.clone());
    }
    // `License` sometimes holds the whole licence text: only a short one names it.
    if let Some(l) = license.iter().find(usable).filter(|l| l.len() <= 100 && !l.contains('\n')) {
        return Some(l.clone());
    }
    let from_classifiers: Vec<&str> = classifiers
        .iter()
        .filter(|c| c.starts_with("License ::"))
        .filter_map(|c| c.rsplit("::").next().map(str::trim))
        .filter(|c| *c != "OSI Approved")
        .collect();
    (!from_classifiers.is_empty()).then(|| from_classifiers.join(" OR "))
}

/// Every distribution installed directly in `python_dir` (the `python/` folder of a
/// layer), tagged with `layer`, sorted by normalised name. A `.dist-info` folder without
/// METADATA, or whose METADATA has no name or version, is skipped.
pub fn read_dists(python_dir: &Path, layer: &str) -> Result<Vec<Dist>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(python_dir).with_context(|| format!("cannot read {}", python_dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", python_dir.display()))?;
        if !entry.file_name().to_string_lossy().ends_with(".dist-info") {
            continue;
        }
        let path = entry.path().join("METADATA");
        // Old distributions may have a body in another encoding than UTF-8: it is never read.
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        out.extend(Dist::parse(&text, layer));
    }
    out.sort_by_key(|d| normalise(&d.name));
    Ok(out)
}

/// The name and version of every distribution installed in `python_dir`, sorted.
pub fn installed(python_dir: &Path) -> Result<Vec<Package>> {
    let mut out: Vec<Package> =
        read_dists(python_dir, "")?.into_iter().map(|d| Package { name: d.name, version: d.version }).collect();
    out.sort();
    Ok(out)
}

/// The sha256 of each archive pip installed, by normalised distribution name, from pip's
/// install report (`--report`): `install[].download_info.archive_info.hashes.sha256`, or
/// its older `hash = "sha256=..."`. Empty when there is no report (a merged layer) or pip
/// did not know a hash.
pub fn installed_hashes(report: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(report) else { return out };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { return out };
    for item in json["install"].as_array().into_iter().flatten() {
        let Some(name) = item["metadata"]["name"].as_str() else { continue };
        let archive = &item["download_info"]["archive_info"];
        let sha = archive["hashes"]["sha256"]
            .as_str()
            .map(str::to_string)
            .or_else(|| archive["hash"].as_str().and_then(|h| h.strip_prefix("sha256=")).map(str::to_string));
        if let Some(sha) = sha.filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) {
            out.insert(normalise(name), sha.to_ascii_lowercase());
        }
    }
    out
}

/// The sha256 of each distribution's archive as far as a hashed requirements.txt tells
/// it (for installers that make no report, as uv): a requirement line whose marker holds
/// in `env` and that allows exactly one `--hash=sha256:` gives it. A line with several
/// (a lock for several targets lists each target's wheel) names no one archive: left out.
/// `lines` are requirements.txt's logical lines, options after the requirement.
pub fn locked_hashes(lines: &[String], env: &super::Env) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for line in lines {
        let (req, options) = line.split_once(" --").map_or((line.as_str(), ""), |(r, o)| (r, o));
        let Some(r) = super::Requirement::parse(req) else { continue };
        if !r.applies(env, "") {
            continue;
        }
        let hashes: std::collections::BTreeSet<String> = format!("--{options}")
            .split_whitespace()
            .filter_map(|o| o.strip_prefix("--hash=sha256:").or_else(|| o.strip_prefix("--hash=sha256=")))
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
            .collect();
        if hashes.len() == 1 {
            out.insert(normalise(&r.name), hashes.into_iter().next().unwrap_or_default());
        }
    }
    out
}

/// The wheel tags of each distribution installed in `python_dir`, by normalised name:
/// (version, the `Tag:` lines of its `*.dist-info/WHEEL`). Distributions without a WHEEL
/// file are left out.
pub fn installed_wheel_tags(
    python_dir: &Path,
) -> std::collections::BTreeMap<String, (String, std::collections::BTreeSet<String>)> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(python_dir).into_iter().flatten().flatten() {
        let dir = e.file_name().to_string_lossy().into_owned();
        let Some((name, version)) = dir.strip_suffix(".dist-info").and_then(|d| d.split_once('-')) else { continue };
        let Ok(wheel) = std::fs::read_to_string(e.path().join("WHEEL")) else { continue };
        let tags = wheel.lines().filter_map(|l| l.strip_prefix("Tag:")).map(|t| t.trim().to_string()).collect();
        out.insert(normalise(name), (version.to_string(), tags));
    }
    out
}

/// The tags a wheel file name's tag part stands for (`cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64`,
/// optionally after a build tag): every combination of its dotted python, abi and
/// platform parts, as the WHEEL file lists them.
pub fn expand_wheel_tags(tags: &str) -> std::collections::BTreeSet<String> {
    let parts: Vec<&str> = tags.split('-').collect();
    let mut out = std::collections::BTreeSet::new();
    if parts.len() < 3 {
        return out;
    }
    let [py, abi, plat] = [parts[parts.len() - 3], parts[parts.len() - 2], parts[parts.len() - 1]];
    for p in py.split('.') {
        for a in abi.split('.') {
            for pl in plat.split('.') {
                out.insert(format!("{p}-{a}-{pl}"));
            }
        }
    }
    out
}

/// The parts of pip's install report (`--report`) this tool reads, for an installer that
/// makes none: the Python version and each archive's sha256, read back by
/// [`installed_hashes`].
pub fn install_report(python_version: &str, hashes: &std::collections::BTreeMap<String, String>) -> serde_json::Value {
    let install: Vec<serde_json::Value> = hashes
        .iter()
        .map(|(name, sha)| {
            serde_json::json!({
                "metadata": { "name": name },
                "download_info": { "archive_info": { "hashes": { "sha256": sha } } }
            })
        })
        .collect();
    serde_json::json!({ "environment": { "python_version": python_version }, "install": install })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_dists_parses_headers_up_to_the_first_blank_line() {
        let d = tempfile::tempdir().unwrap();
        let write = |dir: &str, text: &str| {
            std::fs::create_dir(d.path().join(dir)).unwrap();
            std::fs::write(d.path().join(dir).join("METADATA"), text).unwrap();
        };
        write("b-1.0.dist-info", "Metadata-Version: 2.1\nName: B\nVersion: 1.0\nRequires-Dist: c>=1;\n  extra == \"x\"\nProvides-Extra: x\nrequires-dist: d\n\nRequires-Dist: body\n");
        write("a_pkg-2.dist-info", "name: a_pkg\r\nVERSION: 2\r\n");
        std::fs::create_dir(d.path().join("c-3.dist-info")).unwrap();
        std::fs::write(d.path().join("c-3.dist-info/METADATA"), b"Name: c\nVersion: 3\n\nCaf\xe9 in Latin-1\n")
            .unwrap();
        std::fs::create_dir(d.path().join("broken.dist-info")).unwrap();
        std::fs::create_dir(d.path().join("a_pkg")).unwrap();
        let dists = read_dists(d.path(), "base").unwrap();
        let got: Vec<_> =
            dists.iter().map(|d| (d.name.as_str(), d.version.as_str(), d.requires.clone(), d.layer.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a_pkg", "2", vec![], "base"),
                ("B", "1.0", vec!["c>=1; extra == \"x\"".to_string(), "d".into()], "base"),
                ("c", "3", vec![], "base")
            ]
        );
        assert!(read_dists(&d.path().join("missing"), "x").unwrap_err().to_string().contains("cannot read"));
    }

    #[test]
    fn licence_from_expression_then_license_then_classifiers() {
        let l = |t: &str| Dist::parse(t, "").unwrap().license;
        assert_eq!(l("Name: a\nVersion: 1\nLicense-Expression: MIT\nLicense: BSD\n").as_deref(), Some("MIT"));
        assert_eq!(l("Name: a\nVersion: 1\nLicense: BSD 3-Clause\n").as_deref(), Some("BSD 3-Clause"));
        assert_eq!(
            l("Name: a\nVersion: 1\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\nClassifier: Topic :: X\n").as_deref(),
            Some("MIT License")
        );
        assert_eq!(l("Name: a\nVersion: 1\n"), None);
    }

    #[test]
    fn installed_lists_name_and_version_from_headers_only() {
        let d = tempfile::tempdir().unwrap();
        let di = d.path().join("six-1.16.0.dist-info");
        std::fs::create_dir(&di).unwrap();
        std::fs::write(di.join("METADATA"), "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\nName: not-this\n")
            .unwrap();
        std::fs::create_dir(d.path().join("broken.dist-info")).unwrap();
        assert_eq!(installed(d.path()).unwrap(), vec![Package { name: "six".into(), version: "1.16.0".into() }]);
    }

    #[test]
    fn installed_hashes_come_from_pips_report() {
        let d = tempfile::tempdir().unwrap();
        let report = d.path().join("pip-report.json");
        let sha = "a".repeat(64);
        std::fs::write(
            &report,
            format!(
                r#"{{"install": [
                    {{"metadata": {{"name": "Six", "version": "1.17.0"}}, "download_info": {{"archive_info": {{"hashes": {{"sha256": "{sha}"}}}}}}}},
                    {{"metadata": {{"name": "idna", "version": "3.10"}}, "download_info": {{"archive_info": {{"hash": "sha256={sha}"}}}}}},
                    {{"metadata": {{"name": "local", "version": "1"}}, "download_info": {{"dir_info": {{}}}}}}
                ]}}"#
            ),
        )
        .unwrap();
        let h = installed_hashes(&report);
        assert_eq!(h.get("six"), Some(&sha));
        assert_eq!(h.get("idna"), Some(&sha));
        assert_eq!(h.len(), 2);
        assert!(installed_hashes(&d.path().join("none.json")).is_empty());
    }

    #[test]
    fn wheel_tags_are_read_and_expanded_as_the_wheel_file_lists_them() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("typing_extensions-4.1.dist-info")).unwrap();
        std::fs::write(
            d.path().join("typing_extensions-4.1.dist-info/WHEEL"),
            "Wheel-Version: 1.0\nTag: py2-none-any\nTag: py3-none-any\n",
        )
        .unwrap();
        std::fs::create_dir(d.path().join("nowheel-1.dist-info")).unwrap();
        let t = installed_wheel_tags(d.path());
        assert_eq!(t.len(), 1);
        let (version, tags) = &t["typing-extensions"];
        assert_eq!(version, "4.1");
        assert_eq!(tags, &expand_wheel_tags("py2.py3-none-any"));
        let m = expand_wheel_tags("1-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64");
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            ["cp313-cp313-manylinux_2_27_x86_64", "cp313-cp313-manylinux_2_28_x86_64"]
        );
        assert!(expand_wheel_tags("any").is_empty());
    }

    #[test]
    fn locked_hashes_name_the_one_archive_a_line_allows_on_the_target() {
        let (a, b) = ("a".repeat(64), "B".repeat(64));
        let lines: Vec<String> = [
            format!("Six==1.17.0 --hash=sha256:{a}"),
            format!("numpy==2.3.5 --hash=sha256:{a} --hash=sha256:{b}"),
            format!("tzdata==2025.2 ; python_version < \"3.12\" --hash=sha256:{a}"),
            format!("tzdata==2025.3 ; python_version >= \"3.12\" --hash=sha256:{b}"),
            "idna==3.10".to_string(),
            "--hash=sha256:short".to_string(),
        ]
        .into();
        let env = crate::python::Env::new(
            crate::runtime::Runtime::parse("python3.13").unwrap(),
            crate::runtime::Arch::X86_64,
        );
        let h = locked_hashes(&lines, &env);
        assert_eq!(h.get("six"), Some(&a));
        assert_eq!(h.get("tzdata"), Some(&"b".repeat(64)));
        assert_eq!(h.len(), 2, "{h:?}");

        let d = tempfile::tempdir().unwrap();
        let report = d.path().join("pip-report.json");
        std::fs::write(&report, install_report("3.13", &h).to_string()).unwrap();
        assert_eq!(installed_hashes(&report), h);
    }
}
