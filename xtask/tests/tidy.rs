//! The repo checks itself: formatting and module docs, with a message that says how to fix.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_opens_with_a_doc_line_saying_what_it_is_for() {
    let mut files = Vec::new();
    rust_files(&root().join("xtask/src"), &mut files);
    rust_files(&root().join("xtask/tests"), &mut files);
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
