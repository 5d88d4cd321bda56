//! The CycloneDX 1.6 JSON SBOM written beside each zip (`<unit>.cdx.json`): the layer as
//! the metadata component, with the zip's sha256, and one component per installed
//! distribution with its `pkg:pypi` purl, licence and the sha256 of the archive pip
//! installed it from. Made from the build report only, so
//! the same build gives the same bytes (no timestamp; the serial number derives from the
//! zip's hash).

use serde_json::{json, Value};

use crate::report::BuildReport;
use crate::sizes::PackageSize;

/// `pkg:pypi/<normalised name>@<version>` (the purl spec's pypi type: lower case, `_` -> `-`).
pub fn purl(name: &str, version: &str) -> String {
    format!("pkg:pypi/{}@{}", crate::python::normalise(name), version)
}

/// The SBOM of a built unit.
pub fn cyclonedx(report: &BuildReport) -> Value {
    let hex = &report.sha256;
    let serial =
        format!("urn:uuid:{}-{}-5{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32]);
    let components: Vec<Value> =
        report.package_sizes.iter().filter(|p| p.name != crate::sizes::UNATTRIBUTED).map(component).collect();
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "tools": { "components": [{ "type": "application", "name": "cargo xtask", "version": env!("CARGO_PKG_VERSION") }] },
            "component": {
                "type": "library",
                "bom-ref": format!("layer:{}-{}-{}", report.unit.layer, report.unit.runtime, report.unit.arch.as_str()),
                "name": report.unit.layer,
                "version": report.fingerprint,
                "description": format!("AWS Lambda layer for {} {}", report.unit.runtime, report.unit.arch.as_str()),
                "hashes": [{ "alg": "SHA-256", "content": hex }],
                "properties": [
                    { "name": "xtask:zip", "value": report.zip },
                    { "name": "xtask:unzipped_bytes", "value": report.unzipped_bytes.to_string() }
                ]
            }
        },
        "components": components,
    })
}

/// Lambda's limit on a layer version's `LicenseInfo`.
const LICENSE_INFO_LIMIT: usize = 512;

/// The `LicenseInfo` of a layer that sets no `license`: its packages' licences joined
/// with AND when each is an SPDX expression and the whole fits in 512 characters, else
/// `various` (the SBOM lists each); `None` when no package names a licence.
pub fn license_info(report: &BuildReport) -> Option<String> {
    let mut ids: Vec<&str> = report.package_sizes.iter().filter_map(|p| p.license.as_deref()).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return None;
    }
    if !ids.iter().all(|l| is_spdx_expression(l)) {
        return Some("various".into());
    }
    let parts: Vec<String> =
        ids.iter().map(|l| if l.contains(' ') && ids.len() > 1 { format!("({l})") } else { l.to_string() }).collect();
    let joined = parts.join(" AND ");
    Some(if joined.len() <= LICENSE_INFO_LIMIT { joined } else { "various".into() })
}

fn component(p: &PackageSize) -> Value {
    let purl = purl(&p.name, &p.version);
    let mut c = json!({
        "type": "library",
        "bom-ref": purl,
        "name": p.name,
        "version": p.version,
        "purl": purl,
        "properties": [{ "name": "xtask:unzipped_bytes", "value": p.bytes.to_string() }],
    });
    if let Some(l) = &p.license {
        c["licenses"] = json!([license(l)]);
    }
    if let Some(h) = &p.sha256 {
        c["hashes"] = json!([{ "alg": "SHA-256", "content": h }]);
    }
    c
}

/// An SPDX expression as `expression`; anything else (a classifier's name, free text) as
/// a named licence.
fn license(l: &str) -> Value {
    if is_spdx_expression(l) {
        json!({ "expression": l })
    } else {
        json!({ "license": { "name": l } })
    }
}

/// A licence text that reads as an SPDX expression: ids made of letters, digits, `.`,
/// `-` and `+`, joined by AND / OR / WITH and parentheses. No list of ids is checked.
pub fn is_spdx_expression(l: &str) -> bool {
    let words: Vec<&str> =
        l.split(|c: char| c.is_whitespace() || c == '(' || c == ')').filter(|w| !w.is_empty()).collect();
    !words.is_empty()
        && words.iter().any(|w| !matches!(*w, "AND" | "OR" | "WITH"))
        && words.iter().all(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | ':')))
        && !words.iter().any(|w| w.eq_ignore_ascii_case("license"))
        && words.windows(2).all(|p| matches!(p[0], "AND" | "OR" | "WITH") || matches!(p[1], "AND" | "OR" | "WITH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx_expressions_are_told_from_licence_names() {
        assert!(is_spdx_expression("MIT"));
        assert!(is_spdx_expression("BSD-3-Clause AND (MIT OR Apache-2.0)"));
        assert!(!is_spdx_expression("MIT License"));
        assert!(!is_spdx_expression("Dual License"));
        assert!(!is_spdx_expression(""));
        assert_eq!(purl("Typing_Extensions", "4.1"), "pkg:pypi/typing-extensions@4.1");
    }

    #[test]
    fn license_info_joins_spdx_ids_within_512_characters_else_various() {
        let report = |licenses: &[Option<&str>]| {
            let mut r: BuildReport = serde_json::from_value(serde_json::json!({
                "layer": "l", "runtime": "python3.13", "arch": "x86_64", "zip": "z", "sha256": "00", "code_sha256": "",
                "zipped_bytes": 0, "unzipped_bytes": 0, "budget_percent": 0.0, "file_count": 0, "packages": [],
                "fingerprint": "f", "slim": {"level": "safe", "removed": []}, "builder": "docker", "image": "i",
                "duration_secs": 0.0
            }))
            .unwrap();
            r.package_sizes = licenses
                .iter()
                .enumerate()
                .map(|(i, l)| PackageSize {
                    name: format!("p{i}"),
                    version: "1".into(),
                    bytes: 0,
                    files: 0,
                    layer_percent: 0.0,
                    budget_percent: 0.0,
                    license: l.map(String::from),
                    slimmed_bytes: 0,
                    sha256: None,
                    folders: vec![],
                })
                .collect();
            license_info(&r)
        };
        assert_eq!(
            report(&[Some("MIT"), Some("Apache-2.0 OR MIT"), Some("MIT"), None]).as_deref(),
            Some("(Apache-2.0 OR MIT) AND MIT")
        );
        assert_eq!(report(&[Some("MIT")]).as_deref(), Some("MIT"));
        assert_eq!(report(&[Some("MIT"), Some("BSD License")]).as_deref(), Some("various"));
        let many: Vec<String> = (0..100).map(|i| format!("LicenseRef-x{i}")).collect();
        assert_eq!(report(&many.iter().map(|l| Some(l.as_str())).collect::<Vec<_>>()).as_deref(), Some("various"));
        assert_eq!(report(&[None]), None);
    }
}
