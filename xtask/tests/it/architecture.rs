//! The structure docs/ARCHITECTURE.md draws, checked from the source: the import graph
//! flows one way, `cmd -> (stack | publish) -> check -> unit -> stages -> config and
//! leaf modules`, so no module reaches up to one above it, and modules of one rank use
//! each other in no cycle. The xtask-aws crate's modules (named `aws:...` here) rank in
//! the same order, and reach xtask's through `xtask::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and its rank: a module may use modules of its own rank or below,
/// never above, and no group of modules may use each other in a cycle (see
/// [`KNOWN_CYCLES`]). xtask-aws's modules are named `aws:NAME`. A new module must be placed
/// here (the test names it); one line each, highest rank first.
const RANKS: &[(&str, u8, &str)] = &[
    ("main", 7, "the xtask binary: hands the AWS commands to xtask-aws"),
    ("lib", 7, "the xtask crate root: declares the modules"),
    ("aws:main", 7, "the xtask-aws binary: runs the AWS commands"),
    ("cli", 6, "the command line and the dispatch of one invocation"),
    ("cmd", 6, "subcommands: parse, select, call one operation, print"),
    ("aws:cmd", 6, "the subcommands that call AWS"),
    ("stack", 5, "operations on stacks"),
    ("aws:publish", 5, "publishing to a deploy profile, and its status"),
    ("aws:rollout", 5, "operations on the functions attaching the layers"),
    ("aws:prune", 5, "deleting a profile's old layer versions"),
    ("aws:bootstrap", 5, "creating a profile's buckets"),
    ("check", 4, "checks of built units"),
    ("schedule", 4, "many units at once, dependencies first"),
    ("aws:s3lock", 4, "the publish lock of a profile, an object in each region's bucket"),
    ("aws:records", 4, "what was published: one record per layer version in the region's bucket"),
    ("profile", 3, "a deploy profile's layer names and manifest (no AWS)"),
    ("aws:aws", 3, "the one AWS session: clients, SDK config, identity, confirmation"),
    ("unit", 3, "plan and build one unit through the stages"),
    ("build", 2, "stage: install"),
    ("slim", 2, "stage: slim"),
    ("limits", 2, "stage: Lambda's limits"),
    ("package", 2, "stage: zip"),
    ("report", 2, "stage: record in dist/"),
    ("sizes", 2, "stage: per-package sizes"),
    ("sbom", 2, "stage: the CycloneDX SBOM"),
    ("fingerprint", 2, "stage inputs' identity"),
    ("lockfile", 2, "stage: resolve requirements.in into a hashed requirements.txt"),
    ("config", 1, "layers.toml and layer.toml"),
    ("repo", 1, "leaf"),
    ("runtime", 1, "leaf"),
    ("requirements_txt", 1, "leaf: a layer's requirements.txt"),
    ("python", 1, "leaf"),
    ("docker_cli", 1, "leaf: the docker CLI"),
    ("interrupt", 1, "leaf"),
    ("progress", 1, "leaf"),
    ("output", 1, "leaf"),
    ("quote", 1, "leaf"),
    ("overlap", 1, "leaf"),
    ("failure", 1, "leaf"),
    ("process", 1, "leaf: running programs"),
    ("unit_id", 1, "leaf: which unit a row speaks of"),
    ("settings", 1, "leaf: the environment, read once"),
    ("requires", 1, "the requires graph of the layers"),
    ("origin", 1, "leaf: which checkout a binary was compiled from"),
    ("suggest", 1, "leaf"),
];

/// Uses between modules of one rank that close a cycle today, each (from, to, why): the
/// cycle check leaves out these edges, so any other cycle fails, and an entry whose edge
/// is gone fails too (remove it then). Fix one by moving the shared part down a rank.
const KNOWN_CYCLES: &[(&str, &str, &str)] = &[
    // build <-> lockfile: the builders run the pinned uv (build -> lockfile), and
    // lockfile/uv.rs takes the pip and uv cache folders the builders own
    // (build::pip_cache_dir, uv_cache_dir).
    ("lockfile", "build", "the cache folders: they belong below both"),
    // output <-> progress: output pauses the spinners to write a line (progress::suspend),
    // and progress.rs asks output whether `-q`/`-v` are on (output::is_quiet, is_verbose).
    ("progress", "output", "the verbosity: it belongs below both"),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The two crates' sources: (folder, the prefix of its modules' names in RANKS, its path
/// from the repo root).
fn crates() -> [(PathBuf, &'static str, &'static str); 2] {
    [
        (src(), "", "xtask/src"),
        (Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask-aws/src"), "aws:", "xtask-aws/src"),
    ]
}

/// The top-level module a file belongs to: `cmd/layer.rs` -> `cmd`, `unit.rs` -> `unit`.
fn module_of(rel: &Path) -> String {
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// Every `crate::NAME` a file mentions (in `use` lines and in paths), with its line.
fn crate_refs(text: &str) -> Vec<(usize, String)> {
    path_refs(text, "crate::")
}

/// Every `PREFIXNAME` a file mentions, e.g. `xtask::unit`, with its line.
fn path_refs(text: &str, prefix: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue; // `$crate::`, `my_crate::`
            }
            let name: String =
                code[at + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push((i + 1, name));
            }
        }
    }
    out
}

/// One use of a module by another: (from, to, where: `file:line`).
type Edge = (String, String, String);

/// Every use of one top-level module by another, over both crates; files of modules
/// without a rank are listed in the second part, every module found in the third.
fn module_edges() -> (Vec<Edge>, Vec<String>, BTreeSet<String>) {
    let ranks: BTreeMap<&str, u8> = RANKS.iter().map(|(m, r, _)| (*m, *r)).collect();
    let (mut edges, mut unplaced, mut modules) = (Vec::new(), Vec::new(), BTreeSet::new());
    for (dir, prefix, shown) in crates() {
        let mut files = Vec::new();
        crate::common::rust_files(&dir, &mut files);
        files.sort();
        for f in &files {
            let rel = f.strip_prefix(&dir).unwrap();
            let from = format!("{prefix}{}", module_of(rel));
            modules.insert(from.clone());
            if !ranks.contains_key(from.as_str()) {
                unplaced.push(format!("{shown}/{}: module `{from}`", rel.display()));
                continue;
            }
            let text = std::fs::read_to_string(f).unwrap();
            let own = crate_refs(&text).into_iter().map(|(l, m)| (l, format!("{prefix}{m}")));
            // xtask-aws reaches xtask's modules by name; xtask cannot reach xtask-aws.
            let lib = path_refs(&text, "xtask::").into_iter().filter(|_| !prefix.is_empty());
            for (line, to) in own.chain(lib) {
                if to == from {
                    continue;
                }
                let at = format!("{shown}/{}:{line}", rel.display());
                if !ranks.contains_key(to.as_str()) {
                    unplaced.push(format!("{at}: module `{to}`"));
                    continue;
                }
                edges.push((from.clone(), to, at));
            }
        }
    }
    (edges, unplaced, modules)
}

#[test]
fn the_import_graph_flows_one_way() {
    let ranks: BTreeMap<&str, u8> = RANKS.iter().map(|(m, r, _)| (*m, *r)).collect();
    let (edges, unplaced, modules) = module_edges();
    let upward: Vec<String> = edges
        .iter()
        .filter(|(from, to, _)| ranks[to.as_str()] > ranks[from.as_str()])
        .map(|(from, to, at)| {
            format!(
                "{at}: `{from}` (rank {}) uses `{to}` (rank {}), a module above it",
                ranks[from.as_str()],
                ranks[to.as_str()]
            )
        })
        .collect();
    assert!(edges.len() > 100, "the scan found only {} cross-module references: it is blind", edges.len());
    let mut listed = BTreeSet::new();
    let twice: Vec<&str> = RANKS.iter().map(|(m, _, _)| *m).filter(|m| !listed.insert(*m)).collect();
    assert!(twice.is_empty(), "listed twice in RANKS: {twice:?}");
    let gone: Vec<&str> = RANKS.iter().map(|(m, _, _)| *m).filter(|m| !modules.contains(*m)).collect();
    assert!(
        gone.is_empty(),
        "RANKS lists modules that no longer exist: remove them (and from docs/ARCHITECTURE.md): {gone:?}"
    );
    assert!(
        unplaced.is_empty(),
        "modules without a rank: place each in RANKS in xtask/tests/it/architecture.rs (and docs/ARCHITECTURE.md):\n{}",
        unplaced.join("\n")
    );
    assert!(
        upward.is_empty(),
        "imports against the flow cmd -> (stack | publish) -> check -> unit -> stages -> config/leaf: move the code down, or return data up instead:\n{}",
        upward.join("\n")
    );
}

/// The groups of modules that reach each other (strongly connected, more than one module),
/// each with its edges, sorted; `graph` maps a module to the modules it uses.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    // Reachability by depth-first search from every module (a few dozen modules).
    let reach = |start: &str| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![start.to_string()]);
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    let mut groups: Vec<BTreeSet<String>> = Vec::new();
    for (m, r) in &reaches {
        if groups.iter().any(|g| g.contains(*m)) || !r.contains(*m) {
            continue;
        }
        let group: BTreeSet<String> =
            r.iter().filter(|other| reaches.get(other).is_some_and(|back| back.contains(*m))).cloned().collect();
        groups.push(group);
    }
    groups
}

#[test]
fn modules_of_one_rank_use_each_other_in_no_cycle() {
    let (edges, _, _) = module_edges();
    let known = |from: &str, to: &str| KNOWN_CYCLES.iter().any(|(f, t, _)| *f == from && *t == to);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to, _) in edges.iter().filter(|(from, to, _)| !known(from, to)) {
        graph.entry(from.clone()).or_default().insert(to.clone());
    }
    let found: Vec<String> = cycles(&graph)
        .iter()
        .map(|group| {
            let inside: Vec<String> = edges
                .iter()
                .filter(|(from, to, _)| group.contains(from) && group.contains(to) && !known(from, to))
                .map(|(from, to, at)| format!("    {at}: `{from}` uses `{to}`"))
                .collect();
            format!("{}:\n{}", group.iter().cloned().collect::<Vec<_>>().join(" <-> "), inside.join("\n"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "modules that use each other: move what they share into a module below both (or, for one that \
         exists today, name it in KNOWN_CYCLES in xtask/tests/it/architecture.rs):\n{}",
        found.join("\n")
    );
    let stale: Vec<String> = KNOWN_CYCLES
        .iter()
        .filter(|(from, to, _)| !edges.iter().any(|(f, t, _)| f == from && t == to))
        .map(|(from, to, why)| format!("`{from}` no longer uses `{to}` ({why})"))
        .collect();
    assert!(stale.is_empty(), "remove these from KNOWN_CYCLES:\n{}", stale.join("\n"));
}

#[test]
fn the_cycle_check_finds_a_cycle_and_only_the_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")].iter().fold(BTreeMap::new(), |mut g, (f, t)| {
            g.entry(f.to_string()).or_insert_with(BTreeSet::new).insert(t.to_string());
            g
        });
    let abc: BTreeSet<String> = ["a", "b", "c"].iter().map(|m| m.to_string()).collect();
    assert_eq!(cycles(&graph), [abc]);
}

#[test]
fn the_scan_sees_references_and_ignores_comments() {
    let refs =
        crate_refs("use crate::unit::{self};\n// crate::cmd in a comment\nlet x = crate::check::run::x(); $crate::y\n");
    assert_eq!(refs, [(1, "unit".to_string()), (3, "check".to_string())]);
}

/// The type arguments of every `Result<...>` in `text`, split at top-level commas.
fn result_args(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("Result<") {
            let (mut depth, mut args, mut cur) = (1, Vec::new(), String::new());
            for c in code[at + 7..].chars() {
                match c {
                    '<' | '(' => depth += 1,
                    '>' | ')' => depth -= 1,
                    ',' if depth == 1 => {
                        args.push(cur.trim().to_string());
                        cur.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                cur.push(c);
            }
            args.push(cur.trim().to_string());
            out.push((i + 1, args));
        }
    }
    out
}

/// Errors are errors: a `Result<_, String>` loses the cause chain and invites matching on
/// text; use `anyhow::Result` (or a typed error where code branches on the kind).
#[test]
fn no_result_carries_a_string_error() {
    let mut found = Vec::new();
    for (dir, _, shown) in crates() {
        let mut files = Vec::new();
        crate::common::rust_files(&dir, &mut files);
        for f in &files {
            for (line, args) in result_args(&std::fs::read_to_string(f).unwrap()) {
                if args.len() == 2 && args[1] == "String" {
                    found.push(format!("{shown}/{}:{line}", f.strip_prefix(&dir).unwrap().display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "Result<_, String> here: return anyhow::Result instead:\n{}", found.join("\n"));
    assert_eq!(
        result_args("fn f() -> Result<BTreeMap<String, String>> {}\nfn g() -> std::result::Result<(), String>"),
        [(1, vec!["BTreeMap<String, String>".to_string()]), (2, vec!["()".to_string(), "String".to_string()])]
    );
}
