//! Per-package sizes in the build report and `cargo xtask size` end to end: a real layer
//! built from PyPI wheels, its sizes summed against the zip, the treemap SVG parsed as XML.

mod common;

use common::Fixture;

#[test]
fn per_package_sizes_sum_to_the_unzipped_size_and_size_writes_a_labelled_treemap() {
    let env = require_docker!("per_package_sizes");
    let f = Fixture::new(&env, &[("np", "numpy==2.3.5\nidna==3.10\n")]);
    let run = f.run(&["layer", "np", "--json"]).ok();
    let r = &run.json()[0];
    let sizes = r["package_sizes"].as_array().expect("package_sizes in the report");
    let sum: u64 = sizes.iter().map(|p| p["bytes"].as_u64().unwrap()).sum();
    assert_eq!(sum, r["unzipped_bytes"].as_u64().unwrap(), "{sizes:?}");
    let names: Vec<&str> = sizes.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "numpy", "{names:?}");
    assert!(names.contains(&"idna"), "{names:?}");
    let numpy = &sizes[0];
    // Slimming removed numpy's tests, attributed to numpy from its RECORD.
    assert!(numpy["slimmed_bytes"].as_u64().unwrap() > 1_000_000, "{numpy}");
    let folders: Vec<&str> = numpy["folders"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(folders.contains(&"numpy.libs"), "{folders:?}");
    assert!(folders.iter().any(|f| f.starts_with("numpy/_core")), "{folders:?}");

    let run = f.run(&["size", "np", "--json", "--top", "5"]).ok();
    let out = run.json();
    assert_eq!(out.len(), 1, "{}", run.stdout);
    assert_eq!(out[0]["packages"].as_array().unwrap().len(), sizes.len());
    assert_eq!(out[0]["headroom_bytes"].as_u64().unwrap(), 262_144_000 - r["unzipped_bytes"].as_u64().unwrap());
    assert!(run.stderr.contains("numpy.libs") && run.stderr.contains("left"), "{}", run.stderr);
    let svg = f.path("dist/np/np-py313-x86_64.size.svg");
    assert_eq!(out[0]["svg"], "dist/np/np-py313-x86_64.size.svg");
    // Well-formed XML with one labelled rectangle per package.
    let python = std::env::var("XTASK_JSONSCHEMA_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET\nns='{http://www.w3.org/2000/svg}'\nfor g in ET.parse(sys.argv[1]).getroot().iter(ns+'g'):\n    if g.get('class')=='package':\n        assert g.find(ns+'rect') is not None and g.find(ns+'text').text, g.get('data-package')\n        print(g.get('data-package'))",
        ])
        .arg(&svg)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let mut labelled: Vec<String> = String::from_utf8_lossy(&check.stdout).lines().map(String::from).collect();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    labelled.sort();
    expected.sort();
    assert_eq!(labelled, expected);
}
