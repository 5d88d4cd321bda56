//! The dependency closure: every `Requires-Dist` of the distributions a layer ships, and
//! transitively of those it uses from the layers it requires, must be satisfied by the
//! layer and those layers together, for the runtime and architecture it targets.
//! Requirements, markers, versions and names come from [`crate::python`]; the marker
//! environment is described there.
//!
//! - Extras: a requirement whose marker needs `extra == "x"` counts only when `x` is active
//!   for its distribution (pip's rule: the marker holds with no extra or with an active
//!   one). An entry `name[x,y]` of `extras` activates `x` and `y` for distribution `name`
//!   (what follows `]`, such as `==2.3.3`, is ignored, so requirements.txt lines can be
//!   passed as they are); a bare name `x` activates `x` for every distribution of the
//!   layer; other entries activate nothing. Extras a requirement names (`foo[bar]>=1`) are
//!   activated for `foo`.
//! - When a name is shipped twice, the layer under check wins, then the first of
//!   `provided`. An installed version is checked with pre-releases allowed (as `pip check`).
//! - Lenient where it cannot judge: a requirement that is not valid PEP 508 is skipped; a
//!   `name @ url` requirement is satisfied by any version.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::python::{is_name_char, normalise, Dist, Env, Requirement};
use crate::runtime::{Arch, Runtime};

/// A requirement that nothing satisfies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsatisfied {
    /// The distribution whose requirement fails, e.g. `pandas`.
    pub dist: String,
    /// The layer shipping it.
    pub layer: String,
    /// The requirement as written, without marker, e.g. `numpy>=1.26.0`.
    pub requirement: String,
    /// The normalised name of the required distribution, e.g. `numpy`.
    pub name: String,
    /// `(version, layer)` when present with a version that does not match; `None` when missing.
    pub found: Option<(String, String)>,
}

/// Checks that every requirement of every dist in `own` (the layer under check) — and
/// transitively of the dists that satisfy them in `provided` (the layers it requires) — is
/// satisfied by `own` ∪ `provided`. Markers and `extras` follow the rules of the module doc.
/// Sorted and deduplicated.
pub fn closure(own: &[Dist], provided: &[Dist], runtime: Runtime, arch: Arch, extras: &[String]) -> Vec<Unsatisfied> {
    let env = Env::new(runtime, arch);
    let all: Vec<&Dist> = own.iter().chain(provided).collect();
    let mut index = HashMap::new();
    for (i, d) in all.iter().enumerate() {
        index.entry(normalise(&d.name)).or_insert(i);
    }
    let mut work = Work::default();
    (0..own.len()).for_each(|i| work.push(i, ""));
    for (scope, extra) in requested_extras(extras) {
        match scope {
            None => (0..own.len()).for_each(|i| work.push(i, &extra)),
            Some(name) => {
                if let Some(&j) = index.get(&name) {
                    work.push(j, "");
                    work.push(j, &extra);
                }
            }
        }
    }
    let mut out = Vec::new();
    while let Some((i, extra)) = work.queue.pop() {
        let dist = all[i];
        for req in dist.requires.iter().filter_map(|r| Requirement::parse(r)) {
            if !req.applies(&env, &extra) {
                continue;
            }
            let unsatisfied = |found| Unsatisfied {
                dist: dist.name.clone(),
                layer: dist.layer.clone(),
                requirement: req.text.clone(),
                name: req.name.clone(),
                found,
            };
            let Some(&j) = index.get(&req.name) else {
                out.push(unsatisfied(None));
                continue;
            };
            let dep = all[j];
            if !req.allows(&dep.version) {
                out.push(unsatisfied(Some((dep.version.clone(), dep.layer.clone()))));
            }
            if j >= own.len() {
                work.push(j, "");
            }
            req.extras.iter().for_each(|x| work.push(j, x));
        }
    }
    out.sort_by(|a, b| {
        (&a.dist, &a.layer, &a.requirement, &a.name, &a.found).cmp(&(
            &b.dist,
            &b.layer,
            &b.requirement,
            &b.name,
            &b.found,
        ))
    });
    out.dedup();
    out
}

/// The (distribution index, extra) pairs still to check, each once; `""` is no extra.
#[derive(Default)]
struct Work {
    queue: Vec<(usize, String)>,
    seen: HashSet<(usize, String)>,
}

impl Work {
    fn push(&mut self, i: usize, extra: &str) {
        if self.seen.insert((i, extra.to_string())) {
            self.queue.push((i, extra.to_string()));
        }
    }
}

/// The extras asked for: `(Some(dist), extra)` from `dist[extra,..]`, `(None, extra)` from a
/// bare extra name.
fn requested_extras(extras: &[String]) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for e in extras.iter().map(|e| e.trim()) {
        if let Some((name, rest)) = e.split_once('[') {
            let inner = rest.split_once(']').map_or(rest, |(inner, _)| inner);
            let names = inner.split(',').map(str::trim).filter(|x| !x.is_empty());
            out.extend(names.map(|x| (Some(normalise(name)), normalise(x))));
        } else if !e.is_empty() && e.chars().all(is_name_char) {
            out.push((None, normalise(e)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PANDAS: &[&str] = &[
        "numpy>=1.22.4; python_version < \"3.11\"",
        "numpy>=1.23.2; python_version == \"3.11\"",
        "numpy>=1.26.0; python_version >= \"3.12\"",
        "python-dateutil>=2.8.2",
        "pytz>=2020.1",
        "tzdata>=2022.7",
        "hypothesis>=6.46.1; extra == \"test\"",
        "pytest>=7.3.2; extra == \"test\"",
        "pyarrow>=10.0.1; extra == \"pyarrow\"",
        "bottleneck>=1.3.6; extra == \"performance\"",
        "numba>=0.56.4; extra == \"performance\"",
        "numexpr>=2.8.4; extra == \"performance\"",
        "PyQt5>=5.15.9; extra == \"clipboard\"",
        "tzdata>=2022.7; extra == \"all\"",
    ];

    fn dist(name: &str, version: &str, requires: &[&str], layer: &str) -> Dist {
        let requires = requires.iter().map(|r| r.to_string()).collect();
        Dist { name: name.into(), version: version.into(), requires, layer: layer.into(), license: None }
    }

    fn pandas_layer() -> Vec<Dist> {
        vec![
            dist("pandas", "2.3.3", PANDAS, "pandas"),
            dist("python-dateutil", "2.9.0.post0", &["six>=1.5"], "pandas"),
            dist("six", "1.17.0", &[], "pandas"),
            dist("pytz", "2025.2", &[], "pandas"),
            dist("tzdata", "2025.2", &[], "pandas"),
        ]
    }

    fn check(own: &[Dist], provided: &[Dist], runtime: &str, arch: Arch, extras: &[&str]) -> Vec<Unsatisfied> {
        let extras: Vec<String> = extras.iter().map(|e| e.to_string()).collect();
        closure(own, provided, Runtime::parse(runtime).unwrap(), arch, &extras)
    }

    fn missing(dist: &str, layer: &str, requirement: &str, name: &str) -> Unsatisfied {
        Unsatisfied {
            dist: dist.into(),
            layer: layer.into(),
            requirement: requirement.into(),
            name: name.into(),
            found: None,
        }
    }

    fn names(u: &[Unsatisfied]) -> Vec<&str> {
        u.iter().map(|u| u.name.as_str()).collect()
    }

    #[test]
    fn pandas_without_numpy_reports_the_requirement_of_the_runtime() {
        let own = pandas_layer();
        let want = |req| vec![missing("pandas", "pandas", req, "numpy")];
        assert_eq!(check(&own, &[], "python3.13", Arch::X86_64, &[]), want("numpy>=1.26.0"));
        assert_eq!(check(&own, &[], "python3.11", Arch::Arm64, &[]), want("numpy>=1.23.2"));
        assert_eq!(check(&own, &[], "python3.10", Arch::X86_64, &[]), want("numpy>=1.22.4"));
    }

    #[test]
    fn numpy_from_a_required_layer_conflicts_or_satisfies() {
        let own = pandas_layer();
        let old = [dist("numpy", "1.24.0", &[], "numpy")];
        let conflict = Unsatisfied {
            found: Some(("1.24.0".into(), "numpy".into())),
            ..missing("pandas", "pandas", "numpy>=1.26.0", "numpy")
        };
        assert_eq!(check(&own, &old, "python3.13", Arch::X86_64, &[]), vec![conflict]);
        assert_eq!(check(&own, &old, "python3.11", Arch::X86_64, &[]), vec![]);
        let new = [dist("NumPy", "2.3.5", &[], "numpy")];
        assert_eq!(check(&own, &new, "python3.13", Arch::X86_64, &[]), vec![]);
    }

    #[test]
    fn requirements_of_provided_dists_are_followed_once_and_only_when_used() {
        let own = [dist("app", "1", &["B>=1", "Zope.Interface (>=5)", "b"], "app")];
        let provided = [
            dist("b", "2.0", &["c>=1", "b"], "base"),
            dist("zope_interface", "6.0", &[], "base"),
            dist("unused", "1", &["e"], "base"),
        ];
        let got = check(&own, &provided, "python3.12", Arch::X86_64, &[]);
        assert_eq!(got, vec![missing("b", "base", "c>=1", "c")]);
    }

    #[test]
    fn markers_follow_the_architecture_and_linux() {
        let reqs = [
            "arm-only; platform_machine == \"aarch64\"",
            "x86-only; platform_machine == 'x86_64'",
            "win; sys_platform == \"win32\"",
            "nt; os_name == \"nt\" or platform_release >= \"5\"",
            "linux; python_version >= \"3.8\" and (sys_platform == \"linux\" and platform_python_implementation == 'CPython')",
            "reversed; \"3.12\" <= python_version and 'linux' in sys_platform and implementation_name not in 'pypy'",
            "py314; python_full_version >= \"3.14.0\"",
        ];
        let own = [dist("x", "1", &reqs, "x")];
        assert_eq!(names(&check(&own, &[], "python3.12", Arch::Arm64, &[])), ["arm-only", "linux", "reversed"]);
        assert_eq!(
            names(&check(&own, &[], "python3.14", Arch::X86_64, &[])),
            ["linux", "py314", "reversed", "x86-only"]
        );
    }

    #[test]
    fn extras_count_only_when_asked_for() {
        let own = pandas_layer();
        let numpy = [dist("numpy", "2.3.5", &[], "numpy")];
        assert_eq!(check(&own, &numpy, "python3.13", Arch::X86_64, &["pandas==2.3.3"]), vec![]);
        let perf = ["bottleneck", "numba", "numexpr"];
        assert_eq!(names(&check(&own, &numpy, "python3.13", Arch::X86_64, &["pandas[performance]==2.3.3"])), perf);
        assert_eq!(names(&check(&own, &numpy, "python3.13", Arch::X86_64, &["Performance"])), perf);
        assert_eq!(names(&check(&own, &numpy, "python3.13", Arch::X86_64, &["numpy[performance]"])), [] as [&str; 0]);
        // An extra a requirement names is followed into the required layer.
        let app = [dist("app", "1", &["pandas[test]>=2"], "app")];
        let mut provided = pandas_layer();
        provided.extend(numpy);
        let got = check(&app, &provided, "python3.13", Arch::X86_64, &[]);
        assert_eq!(
            got,
            vec![
                missing("pandas", "pandas", "hypothesis>=6.46.1", "hypothesis"),
                missing("pandas", "pandas", "pytest>=7.3.2", "pytest")
            ]
        );
    }
}
