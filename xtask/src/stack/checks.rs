//! The checks a stack passes before anything is deployed: at most 5 layers, the layers
//! plus the function within Lambda's 250 MiB unzipped, every requirement met within the
//! stack, paths shipped twice (and which copy wins), every layer built for the stack's
//! runtime and architecture. Each check is one [`Check`]; the functions here are pure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::closure;
use crate::limits::{mib, UNZIPPED_LIMIT};
use crate::overlap::Group;
use crate::python::{self, Dist};
use crate::runtime::{Arch, Runtime};

/// The most layers one function can attach.
pub const MAX_LAYERS: usize = 5;

/// At most this many overlap groups are listed; the rest are counted.
const MAX_GROUPS_SHOWN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// Deployable, but worth knowing (paths shipped twice).
    Warn,
    Fail,
    /// The check did not run (what it needs is missing): no verdict; the summary says why.
    #[serde(rename = "not_run")]
    NotRun,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::NotRun => "-",
        }
    }
}

/// One check's verdict, a one-line summary and detail lines.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub verdict: Verdict,
    pub summary: String,
    pub details: Vec<String>,
}

impl Check {
    fn new(check: &'static str, verdict: Verdict, summary: String, details: Vec<String>) -> Check {
        Check { check, verdict, summary, details }
    }
}

/// `262144000` as `262,144,000`.
pub fn digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: u64) -> String {
    format!("{} ({} bytes)", mib(n), digits(n))
}

/// At most [`MAX_LAYERS`] layers. `merged_into` names the merged layer they become.
pub fn count(stack: &str, layers: usize, merged_into: Option<&str>) -> Check {
    match merged_into {
        Some(m) => Check::new(
            "layers",
            Verdict::Pass,
            format!("{layers} layers merged into 1 ({m}), within Lambda's {MAX_LAYERS}"),
            vec![],
        ),
        None => {
            layer_count(layers, &format!("merge them into one with `cargo xtask stack {stack} --merge {stack}-merged`"))
        }
    }
}

/// At most [`MAX_LAYERS`] layers on one function; `fix` says what to do when over.
pub fn layer_count(layers: usize, fix: &str) -> Check {
    if layers > MAX_LAYERS {
        Check::new(
            "layers",
            Verdict::Fail,
            format!(
                "{layers} layers, over Lambda's limit of {MAX_LAYERS} per function (by {}): {fix}",
                layers - MAX_LAYERS
            ),
            vec![],
        )
    } else {
        Check::new("layers", Verdict::Pass, format!("{layers} of Lambda's {MAX_LAYERS} layers"), vec![])
    }
}

/// The layers' unzipped sizes plus the function's own within [`UNZIPPED_LIMIT`], with the
/// headroom (or the excess) in MiB and bytes.
pub fn budget(sizes: &[(String, u64)], function_bytes: u64) -> Check {
    budget_of(
        sizes,
        function_bytes,
        "function code (`function_bytes`)",
        "drop or split a layer, slim them (`slim`, `exclude`), or lower `function_bytes`",
    )
}

/// [`budget`] for a function whose own code size is known (`label` says where it comes
/// from); `fix` says what to do when over.
pub fn budget_of(sizes: &[(String, u64)], function_bytes: u64, label: &str, fix: &str) -> Check {
    let layers = sizes.iter().fold(0u64, |t, (_, b)| t.saturating_add(*b));
    let total = layers.saturating_add(function_bytes);
    let sum = format!(
        "layers {} + function {} = {} of 250 MiB ({} bytes)",
        mib(layers),
        mib(function_bytes),
        bytes(total),
        digits(UNZIPPED_LIMIT)
    );
    let details = sizes
        .iter()
        .map(|(n, b)| format!("{n}: {} ({:.1}% of 250 MiB)", bytes(*b), *b as f64 * 100.0 / UNZIPPED_LIMIT as f64))
        .chain(std::iter::once(format!("{label}: {}", bytes(function_bytes))))
        .collect();
    if total > UNZIPPED_LIMIT {
        let over = total - UNZIPPED_LIMIT;
        Check::new("size", Verdict::Fail, format!("{sum}: over Lambda's limit by {}; {fix}", bytes(over)), details)
    } else {
        Check::new("size", Verdict::Pass, format!("{sum}: headroom {}", bytes(UNZIPPED_LIMIT - total)), details)
    }
}

/// Every layer is built for the stack's target; `off_target` says why each other one is not.
pub fn targets(runtime: Runtime, arch: Arch, off_target: Vec<String>) -> Check {
    targets_for(&format!("{runtime} {arch}"), off_target)
}

/// [`targets`] for any target, e.g. a function's runtime and architecture as Lambda names
/// them (`nodejs22.x arm64`).
pub fn targets_for(target: &str, off_target: Vec<String>) -> Check {
    if off_target.is_empty() {
        Check::new("targets", Verdict::Pass, format!("every layer is built for {target}"), vec![])
    } else {
        Check::new(
            "targets",
            Verdict::Fail,
            format!("{} layer(s) not built for {target}", off_target.len()),
            off_target,
        )
    }
}

/// A check that could not run as such, e.g. a layer whose contents cannot be read.
pub fn failed(check: &'static str, summary: String, details: Vec<String>) -> Check {
    Check::new(check, Verdict::Fail, summary, details)
}

/// A check that did not run, with why: `not run: WHY`, and no verdict.
pub fn not_run(check: &'static str, why: &str) -> Check {
    Check::new(check, Verdict::NotRun, format!("not run: {why}"), vec![])
}

/// A failed check turned into a warning, with why (what the check could not see).
pub fn softened(mut c: Check, why: &str) -> Check {
    if c.verdict == Verdict::Fail {
        c.verdict = Verdict::Warn;
        c.summary = format!("{} ({why})", c.summary);
    }
    c
}

/// Every requirement of every distribution of the stack met by the stack as a whole:
/// Lambda unpacks every layer into `/opt`, so any layer may provide any other's needs.
/// `members` are (layer, its distributions) in stack order; where two layers ship the same
/// distribution the later one's files win, so its version is the one checked.
/// `requires` are (layer, layer it requires) pairs from layer.toml missing from the stack.
/// `provider` names a layer of the repo that ships a missing distribution.
pub fn closure(
    members: &[(String, Vec<Dist>)],
    missing_requires: &[(String, String)],
    runtime: Runtime,
    arch: Arch,
    provider: &dyn Fn(&str) -> Option<String>,
) -> Check {
    let own: Vec<Dist> = members.iter().rev().flat_map(|(_, d)| d.iter().cloned()).collect();
    let mut details = Vec::new();
    for (layer, required) in missing_requires {
        details.push(format!("layer {layer} requires layer {required} (layers/{layer}/layer.toml), which is not in the stack: add it before {layer}"));
    }
    for u in closure::closure(&own, &[], runtime, arch, &[]) {
        details.push(match &u.found {
            Some((version, by)) => format!(
                "{} (layer {}) requires {}, but layer {by} provides {} {version}",
                u.dist, u.layer, u.requirement, u.name
            ),
            None => {
                let fix = match provider(&u.name) {
                    Some(l) => format!(": add layer {l} to the stack (it provides {})", u.name),
                    None => format!(": add a layer that provides {} to the stack", u.name),
                };
                format!(
                    "{} (layer {}) requires {}, which no layer of the stack provides{fix}",
                    u.dist, u.layer, u.requirement
                )
            }
        });
    }
    if details.is_empty() {
        Check::new(
            "closure",
            Verdict::Pass,
            format!("every requirement of the {} distributions is met within the stack", own.len()),
            vec![],
        )
    } else {
        Check::new(
            "closure",
            Verdict::Fail,
            format!("{} requirement(s) not met within the stack", details.len()),
            details,
        )
    }
}

/// Paths shipped by more than one layer, grouped, with the copy that wins; and
/// distributions shipped in several versions (both dist-info folders end up in `/opt`).
pub fn overlaps(groups: &[Group], members: &[(String, Vec<Dist>)], merged: bool) -> Check {
    let mut details: Vec<String> = groups.iter().take(MAX_GROUPS_SHOWN).map(Group::describe).collect();
    if groups.len() > MAX_GROUPS_SHOWN {
        details.push(format!("... and {} more groups", groups.len() - MAX_GROUPS_SHOWN));
    }
    let mut versions: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (layer, dists) in members {
        for d in dists {
            versions.entry(python::normalise(&d.name)).or_default().push((layer.clone(), d.version.clone()));
        }
    }
    // One distribution in two versions is an error: their files mix in /opt/python (the
    // later layer's files win path by path, the earlier one's other files stay), which is
    // neither version. The same version twice is only wasted bytes: a warning.
    let mut mixed = Vec::new();
    for (name, shipped) in &versions {
        if shipped.len() < 2 {
            continue;
        }
        let list: Vec<String> = shipped.iter().map(|(l, v)| format!("layer {l} has {v}")).collect();
        if shipped.iter().any(|(_, v)| *v != shipped[0].1) {
            mixed.push(format!("{name}: {}", list.join(", ")));
        } else {
            let layers: Vec<&str> = shipped.iter().map(|(l, _)| l.as_str()).collect();
            details.push(format!(
                "distribution {name} {} is shipped by layers {}: wasted bytes",
                shipped[0].1,
                layers.join(", ")
            ));
        }
    }
    let paths: usize = groups.iter().map(|g| g.paths.len()).sum();
    let differing: usize = groups.iter().map(|g| g.differing).sum();
    let how = if merged {
        "the merge keeps the later layer's copy"
    } else {
        "Lambda extracts layers in order into /opt, so the later layer's copy wins"
    };
    if !mixed.is_empty() {
        let summary = format!(
            "{} shipped in two versions, whose files would mix in /opt/python: {}; fix: let one layer `requires` the other (and lock it again), or pin the same version in both",
            crate::output::count(mixed.len(), "distribution"),
            mixed.join("; ")
        );
        return Check::new("overlap", Verdict::Fail, summary, details);
    }
    if paths == 0 && details.is_empty() {
        return Check::new("overlap", Verdict::Pass, "no path is shipped by two layers".into(), vec![]);
    }
    Check::new(
        "overlap",
        Verdict::Warn,
        format!("{paths} path(s) shipped by more than one layer, {differing} with different content; {how}"),
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py313() -> Runtime {
        Runtime::parse("python3.13").unwrap()
    }

    fn dist(name: &str, version: &str, requires: &[&str], layer: &str) -> Dist {
        Dist {
            name: name.into(),
            version: version.into(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
            layer: layer.into(),
            license: None,
        }
    }

    #[test]
    fn budget_shows_headroom_and_the_excess_in_bytes() {
        let ok = budget(&[("numpy".into(), 100_000_000), ("pandas".into(), 150_000_000)], 5 * 1024 * 1024);
        assert_eq!(ok.verdict, Verdict::Pass);
        // 262,144,000 - 250,000,000 - 5,242,880 = 6,901,120
        assert!(
            ok.summary.contains("255,242,880 bytes") && ok.summary.contains("headroom 6.6 MiB (6,901,120 bytes)"),
            "{}",
            ok.summary
        );
        assert_eq!(ok.details.len(), 3);
        let over = budget(&[("six".into(), 1000)], 262_144_000);
        assert_eq!(over.verdict, Verdict::Fail);
        assert!(
            over.summary.contains("over Lambda's limit by 0.0 MiB (1,000 bytes)")
                && over.summary.contains("262,145,000 bytes"),
            "{}",
            over.summary
        );
        assert_eq!(budget(&[], UNZIPPED_LIMIT).verdict, Verdict::Pass);
        assert_eq!(budget(&[("x".into(), u64::MAX)], u64::MAX).verdict, Verdict::Fail);
        assert_eq!(digits(0), "0");
        assert_eq!(digits(999), "999");
        assert_eq!(digits(1000), "1,000");
    }

    #[test]
    fn more_than_five_layers_fail_and_suggest_a_merge() {
        assert_eq!(count("s", 5, None).verdict, Verdict::Pass);
        let c = count("s", 7, None);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(
            c.summary.contains("7 layers")
                && c.summary.contains("limit of 5")
                && c.summary.contains("--merge s-merged"),
            "{}",
            c.summary
        );
        assert_eq!(count("s", 7, Some("m")).verdict, Verdict::Pass);
    }

    #[test]
    fn closure_spans_the_whole_stack_and_the_later_copy_of_a_dist_counts() {
        let members = vec![
            ("numpy".to_string(), vec![dist("numpy", "2.3.5", &[], "numpy")]),
            (
                "pandas".to_string(),
                vec![
                    dist("pandas", "2.3.3", &["numpy>=1.26", "tzdata>=2022.7"], "pandas"),
                    dist("tzdata", "2025.2", &[], "pandas"),
                ],
            ),
        ];
        let none = |_: &str| None;
        assert_eq!(closure(&members, &[], py313(), Arch::X86_64, &none).verdict, Verdict::Pass);
        // Order does not matter for the closure: every layer is in /opt.
        let reversed: Vec<_> = members.iter().rev().cloned().collect();
        assert_eq!(closure(&reversed, &[], py313(), Arch::X86_64, &none).verdict, Verdict::Pass);
        let c = closure(&members[1..], &[], py313(), Arch::X86_64, &|n| (n == "numpy").then(|| "numpy".to_string()));
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(
            c.details[0].contains("requires numpy>=1.26, which no layer of the stack provides: add layer numpy"),
            "{:?}",
            c.details
        );
        // A later layer shipping an older numpy shadows the earlier one.
        let mut shadowed = members.clone();
        shadowed.push(("old".into(), vec![dist("numpy", "1.0", &[], "old")]));
        let c = closure(&shadowed, &[], py313(), Arch::X86_64, &none);
        assert!(c.details[0].contains("but layer old provides numpy 1.0"), "{:?}", c.details);
        let c = closure(&members, &[("pandas".into(), "tz".into())], py313(), Arch::X86_64, &none);
        assert!(c.details[0].contains("layer pandas requires layer tz"), "{:?}", c.details);
    }

    #[test]
    fn a_distribution_in_two_versions_is_an_error_and_in_one_version_a_warning() {
        let members = vec![
            ("a".to_string(), vec![dist("six", "1.16.0", &[], "a")]),
            ("b".to_string(), vec![dist("Six", "1.17.0", &[], "b")]),
        ];
        let c = overlaps(&[], &members, false);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.summary.contains("six: layer a has 1.16.0, layer b has 1.17.0"), "{}", c.summary);
        assert_eq!(overlaps(&[], &members[..1], false).verdict, Verdict::Pass);
        let same = vec![members[0].clone(), ("c".to_string(), vec![dist("six", "1.16.0", &[], "c")])];
        let c = overlaps(&[], &same, false);
        assert_eq!(c.verdict, Verdict::Warn);
        assert!(c.details[0].contains("six 1.16.0 is shipped by layers a, c: wasted bytes"), "{:?}", c.details);
    }
}
