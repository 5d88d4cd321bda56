//! The repo checks itself, over both crates (xtask and xtask-aws): formatting, module
//! docs, one printer, one home for Python packaging knowledge, with a message that says how
//! to fix.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The crates' sources, from the repo root: every check below covers each of them.
const SOURCES: &[&str] = &["xtask/src", "xtask-aws/src"];

/// Every `.rs` file under the folders (from the repo root) `dirs`, each folder holding some.
fn rust_files_under(dirs: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in dirs {
        let before = files.len();
        crate::common::rust_files(&root().join(dir), &mut files);
        assert!(files.len() > before, "no .rs file under {dir}: the check is blind");
    }
    files.sort();
    files
}

#[test]
fn every_module_opens_with_a_doc_line_saying_what_it_is_for() {
    let files = rust_files_under(&[SOURCES, &["xtask/tests", "xtask-aws/tests"]].concat());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "start these files with a `//!` line saying what they are for: {missing:?}");
}

#[test]
fn code_is_formatted() {
    let out = std::process::Command::new(env!("CARGO")).args(["fmt", "--all", "--check"]).current_dir(root()).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("not installed") => {
            eprintln!("rustfmt is not installed: formatting not checked (rustup component add rustfmt)")
        }
        Ok(o) => panic!("run `cargo fmt` and commit the result:\n{}", String::from_utf8_lossy(&o.stdout)),
        Err(e) => panic!("cannot run cargo fmt: {e}"),
    }
}

/// The CLI surface is reviewed like code: `cargo xtask --help` and each subcommand's help
/// are kept in xtask/tests/it/snapshots/help.txt.
#[test]
fn help_text_matches_the_snapshot() {
    let exe = env!("CARGO_BIN_EXE_xtask");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(exe).args(args).env("COLUMNS", "100").output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let top = run(&["--help"]);
    let mut text = format!("$ cargo xtask --help\n{top}");
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    for c in &commands {
        text.push_str(&format!("\n$ cargo xtask {c} --help\n{}", run(&[c, "--help"])));
    }
    let path = root().join("xtask/tests/it/snapshots/help.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == text,
        "the CLI's help changed: review it, then run `UPDATE_SNAPSHOTS=1 cargo test -p xtask --test it tidy` and commit xtask/tests/it/snapshots/help.txt"
    );
}

/// Every line the tool writes goes through `xtask/src/output.rs` (colour, `--quiet`,
/// `--verbose`, stdout kept for JSON): no `println!`, `eprintln!`, `print!` or `eprint!`
/// anywhere else in either crate's sources (unit tests, in `#[cfg(test)]` modules, excepted).
#[test]
fn only_the_output_module_prints() {
    let files = rust_files_under(SOURCES);
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root()).unwrap().display().to_string();
        if rel == "xtask/src/output.rs" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        // Depth of braces inside a `#[cfg(test)] mod`, counted roughly (braces in strings
        // and chars count too, which the test modules here keep balanced).
        let mut test_depth: Option<i32> = None;
        let mut prev = "";
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if prev.trim() == "#[cfg(test)]" && code.starts_with("mod ") {
                test_depth = Some(0);
            }
            prev = line;
            if let Some(d) = test_depth.as_mut() {
                *d += code.matches('{').count() as i32 - code.matches('}').count() as i32;
                if *d <= 0 && code.contains('}') {
                    test_depth = None;
                }
                continue;
            }
            if code.starts_with("//") {
                continue;
            }
            let code = code.split(" // ").next().unwrap_or(code);
            if ["println!", "eprintln!", "print!", "eprint!"].iter().any(|m| {
                code.match_indices(m)
                    .any(|(at, _)| at == 0 || !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
            }) {
                found.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "print through xtask's output module (status, warn, note, error, line, json, stdout, Table) instead:\n{}",
        found.join("\n")
    );
}

/// Python packaging knowledge lives in `src/python/` (and the machine name of an arch in
/// `Arch::machine`): a second copy of name normalisation, requirement-name extraction,
/// METADATA parsing, provider lookup or the arch's machine name elsewhere fails here.
#[test]
fn packaging_knowledge_has_one_home() {
    // (telltale, what it is a copy of, where that lives). Matched case-insensitively on
    // code lines (comments are skipped).
    let telltales: &[(&str, &str, &str)] = &[
        ("fn normalise(", "PEP 503 name normalisation", "python::normalise"),
        (".replace('_', \"-\")", "PEP 503 name normalisation", "python::normalise"),
        (".replace(['_', '.']", "PEP 503 name normalisation", "python::normalise"),
        ("'-' | '_' | '.'", "PEP 503 name normalisation", "python::normalise"),
        ("fn requirement_name(", "requirement-name extraction", "python::requirement_name"),
        ("\"-_.\"", "requirement-name extraction", "python::requirement_name"),
        ("requires-dist", "METADATA parsing", "python::read_dists / python::installed"),
        ("provides-extra", "METADATA parsing", "python::read_dists / python::installed"),
        ("strip_prefix(\"name:\")", "METADATA parsing", "python::read_dists / python::installed"),
        ("fn parse_metadata(", "METADATA parsing", "python::read_dists / python::installed"),
        ("\"aarch64\"", "the arch's machine name", "Arch::machine in runtime.rs"),
        ("fn wheel_arch(", "the arch's machine name", "Arch::machine in runtime.rs"),
    ];
    let files = rust_files_under(SOURCES);
    let mut copies = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("xtask/src/python/") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let lower = code.to_ascii_lowercase();
            for (telltale, what, home) in telltales {
                if lower.contains(telltale)
                    && !(rel == "xtask/src/runtime.rs" && *home == "Arch::machine in runtime.rs")
                {
                    copies.push(format!("{rel}:{}: {what} (`{telltale}`): use {home}", n + 1));
                }
            }
        }
        // "Which layer provides X": reading every layer's requirements.txt.
        if rel != "xtask/src/repo.rs" && text.contains(".layer_names()") && text.contains("join(\"requirements.txt\")")
        {
            copies.push(format!("{rel}: a provider lookup (layer_names + requirements.txt): use python::providers"));
        }
    }
    assert!(
        copies.is_empty(),
        "Python packaging knowledge has one home, xtask/src/python/; found copies:\n{}",
        copies.join("\n")
    );
}
