//! The CycloneDX 1.6 JSON SBOM written beside each zip (`<unit>.cdx.json`): the layer as
//! the metadata component, with the zip's sha256, and one component per installed
//! distribution with its `pkg:pypi` purl and licence. Made from the build report only, so
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
                "bom-ref": format!("layer:{}-{}-{}", report.layer, report.runtime, report.arch.as_str()),
                "name": report.layer,
                "version": report.fingerprint,
                "description": format!("AWS Lambda layer for {} {}", report.runtime, report.arch.as_str()),
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
}
