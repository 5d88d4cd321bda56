//! Per-package sizes in the build report and `cargo xtask size` end to end: a real layer
//! built from PyPI wheels, its sizes summed against the zip, the treemap SVG parsed as XML.

use crate::common;

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

    // Licences from METADATA.
    let licence = |name: &str| sizes.iter().find(|p| p["name"] == name).unwrap()["license"].clone();
    assert_eq!(licence("idna"), "BSD License", "{sizes:?}");
    assert!(licence("numpy").as_str().is_some_and(|l| l.contains("BSD")), "{sizes:?}");

    // The CycloneDX 1.6 SBOM beside the zip validates with cyclonedx-python-lib and lists
    // every installed distribution.
    let sbom_path = f.path("dist/np/np-py313-x86_64.cdx.json");
    let python = std::env::var("XTASK_JSONSCHEMA_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\ne = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nif e is not None:\n    sys.exit(getattr(e.data, 'message', str(e)))",
        ])
        .arg(&sbom_path)
        .output()
        .unwrap();
    assert!(check.status.success(), "SBOM invalid: {}", String::from_utf8_lossy(&check.stderr));
    let sbom: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sbom_path).unwrap()).unwrap();
    assert_eq!(sbom["metadata"]["component"]["hashes"][0]["content"], r["sha256"]);
    let mut purls: Vec<String> =
        sbom["components"].as_array().unwrap().iter().map(|c| c["purl"].as_str().unwrap().to_string()).collect();
    let mut installed: Vec<String> = r["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("pkg:pypi/{}@{}", p["name"].as_str().unwrap().to_lowercase(), p["version"].as_str().unwrap()))
        .collect();
    purls.sort();
    installed.sort();
    assert_eq!(purls, installed);
    // Each component names the archive pip installed it from (pip's install report).
    for c in sbom["components"].as_array().unwrap() {
        let h = c["hashes"][0]["content"].as_str().unwrap_or_else(|| panic!("no sha256 for {c}"));
        assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()), "{c}");
    }

    let run = f.run(&["size", "np", "--json", "--top", "5"]).ok();
    let out = run.json();
    assert_eq!(out.len(), 1, "{}", run.stdout);
    assert_eq!(out[0]["packages"].as_array().unwrap().len(), sizes.len());
    assert_eq!(out[0]["headroom_bytes"].as_u64().unwrap(), 262_144_000 - r["unzipped_bytes"].as_u64().unwrap());
    assert!(run.stderr.contains("numpy.libs") && run.stderr.contains("left"), "{}", run.stderr);
    assert!(run.stderr.contains("LICENSE") && run.stderr.contains("BSD License"), "{}", run.stderr);
    let svg = f.path("dist/np/np-py313-x86_64.size.svg");
    assert_eq!(out[0]["svg"], "dist/np/np-py313-x86_64.size.svg");
    // Well-formed XML with one rectangle per package (labels: the next test).
    let check = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET\nns='{http://www.w3.org/2000/svg}'\nfor g in ET.parse(sys.argv[1]).getroot().iter(ns+'g'):\n    if g.get('class')=='package':\n        assert g.find(ns+'rect') is not None, g.get('data-name')\n        print(g.get('data-name'))",
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

#[test]
fn size_compare_against_a_git_ref_shows_the_bumped_packages_delta() {
    let env = require_docker!("size_compare");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(f.root())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "six 1.16.0"]);
    f.write("layers/six/requirements.txt", "six==1.17.0\n");
    let run = f.run(&["size", "six", "--compare", "HEAD", "--json"]).ok();
    let out = run.json();
    let c = &out[0]["compare"];
    assert_eq!(c["ref"], "HEAD");
    let six = &c["packages"][0];
    assert_eq!(six["name"], "six", "{c}");
    assert_eq!(six["version_before"], "1.16.0");
    assert_eq!(six["version"], "1.17.0");
    assert_eq!(
        six["delta_bytes"].as_i64().unwrap(),
        six["bytes"].as_i64().unwrap() - six["bytes_before"].as_i64().unwrap()
    );
    assert_eq!(
        out[0]["unzipped_bytes"].as_i64().unwrap() - c["unzipped_bytes_before"].as_i64().unwrap(),
        c["delta_bytes"].as_i64().unwrap()
    );
    assert!(run.stderr.contains("against HEAD") && run.stderr.contains("1.16.0"), "{}", run.stderr);
    // A ref that is not a commit is a one-line error.
    f.run(&["size", "six", "--compare", "no-such-ref"]).fails_with(&["no-such-ref", "not a commit"]);
}

/// Reads a treemap SVG as a person would, in Python's XML parser: prints one JSON object
/// with the packages and their folders, the reserved and free blocks' text, the legend's
/// lines, the blocks drawn without a label, and every label whose text colour contrasts
/// less than 4.5 with its block's fill (WCAG AA).
const READ_TREEMAP: &str = r#"
import json, sys, xml.etree.ElementTree as ET
ns = '{http://www.w3.org/2000/svg}'
root = ET.parse(sys.argv[1]).getroot()
def lum(h):
    def lin(c):
        c = int(c, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(h[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
def contrast(a, b):
    la, lb = lum(a), lum(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
out = {'packages': {}, 'reserved': [], 'free': [], 'legend': [], 'unlabelled': [], 'failures': [], 'title': ''}
for t in root.iter(ns + 'text'):
    if t.get('class') == 'title':
        out['title'] = t.text
for g in root.iter(ns + 'g'):
    kind = g.get('class')
    if kind == 'legend-entry':
        out['legend'].append(g.find(ns + 'text').text)
    if kind not in ('package', 'folder', 'reserved', 'free'):
        continue
    name = g.get('data-name') or g.get('data-path')
    fill = g.find(ns + 'rect').get('fill')
    texts = [t for t in g.findall(ns + 'text') if t.get('class') != 'marker']
    for t in texts:
        if contrast(t.get('fill'), fill) < 4.5:
            out['failures'].append(f"{name}: {t.text!r} {t.get('fill')} on {fill}")
    if not texts:
        out['unlabelled'].append(name)
    if kind == 'package':
        out['packages'][name] = [c.get('data-path') for c in g.findall(ns + 'g') if c.get('class') == 'folder']
    elif kind in ('reserved', 'free'):
        out[kind].append(' '.join(t.text for t in texts) or name)
print(json.dumps(out))
"#;

#[test]
fn the_treemap_shows_the_budget_with_required_layers_free_room_folders_and_a_legend() {
    let env = require_docker!("treemap_budget");
    let f = Fixture::new(&env, &[("np", "numpy==2.3.5\n"), ("six", "six==1.17.0\n")]);
    f.write("layers/np/layer.toml", "requires = [\"six\"]\n");
    let run = f.run(&["size", "np", "--json"]).ok();
    let out = &run.json()[0];
    let headroom = out["headroom_bytes"].as_u64().unwrap();
    let svg = f.path("dist/np/np-py313-x86_64.size.svg");
    let text = std::fs::read_to_string(&svg).unwrap();
    let python = std::env::var("XTASK_JSONSCHEMA_PYTHON").unwrap_or_else(|_| "python3".into());
    let read = std::process::Command::new(python).args(["-c", READ_TREEMAP]).arg(&svg).output().unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let map: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();

    // Two levels: numpy holds its folders.
    let folders: Vec<&str> = map["packages"]["numpy"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(folders.contains(&"numpy.libs") && folders.contains(&"numpy/_core"), "{folders:?}");
    // The required layer reserves its share; the rest of the 250 MiB is the free block.
    let six = out["required"][0]["unzipped_bytes"].as_u64().unwrap();
    assert_eq!(out["required"][0]["layer"], "six");
    assert_eq!(map["reserved"].as_array().unwrap().len(), 1, "{map}");
    let free = format!("free: {:.1} MiB of 250 MiB", headroom as f64 / 1_048_576.0);
    assert_eq!(map["free"][0], free, "{map}");
    assert!(map["title"].as_str().unwrap().contains("required six"), "{map}");
    // Every block without a label is in the legend with its size: six's few KiB at least.
    let legend: Vec<&str> = map["legend"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let unlabelled: Vec<&str> = map["unlabelled"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(unlabelled.contains(&"six (required layer)"), "{unlabelled:?}");
    for name in &unlabelled {
        assert!(legend.iter().any(|l| l.contains(&format!(" {name} "))), "{name} not in the legend {legend:?}");
    }
    let six_line = format!("six (required layer) {:.1} KiB", six as f64 / 1024.0);
    assert!(legend.iter().any(|l| l.ends_with(&six_line)), "{legend:?}");
    assert!(!text.contains('…'), "a cut label");
    assert_eq!(map["failures"], serde_json::json!([]), "labels that do not read");
    // The same build gives the same bytes.
    f.run(&["size", "np"]).ok();
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), text);
}
