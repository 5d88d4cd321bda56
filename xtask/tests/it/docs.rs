//! The README and the guide in docs/ hold together: every relative link reaches a file
//! (and a `#anchor` a heading of it, by GitHub's slug rules), every `cargo xtask COMMAND`
//! the README shows is a command of `cargo xtask --help`, its command list says what the
//! help says, and every doc page a message of the tool cites, with the section it names,
//! exists. No docker or emulator needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// README.md and every page of docs/, from the repo root.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            pages.push(e.path());
        }
    }
    pages.sort();
    assert!(pages.len() > 5, "docs/ holds almost no page: the check is blind ({pages:?})");
    pages
}

/// The lines of a Markdown text outside fenced code blocks, with their line numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The lines inside fenced code blocks.
fn code(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            out.push(line);
        }
    }
    out
}

/// GitHub's anchor of a heading: lower-case, spaces to `-`, punctuation (anything but
/// letters, digits, `-` and `_`) dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a page: its headings' slugs, a repeated one numbered `-1`, `-2`, ... as
/// GitHub does.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose(text) {
        let Some(heading) = line.strip_prefix('#').map(|h| h.trim_start_matches('#')) else { continue };
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let mut anchor = base.clone();
        let mut n = 0;
        while !seen.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
    }
    seen
}

/// The targets of the inline links `[text](target)` of a line, outside code spans.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => in_code = !in_code,
            b']' if !in_code && bytes.get(i + 1) == Some(&b'(') => {
                if let Some(end) = line[i + 2..].find(')') {
                    out.push(line[i + 2..i + 2 + end].to_string());
                    i += 2 + end;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Why a link of `page` to `target` does not resolve, if it does not.
fn broken(page: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, anchor) = match target.split_once('#') {
        Some((f, a)) => (f, Some(a)),
        None => (target, None),
    };
    let file = if file.is_empty() { page.to_path_buf() } else { page.parent().unwrap().join(file) };
    if !file.exists() {
        return Some(format!("{target}: no file {}", file.display()));
    }
    let anchor = anchor?;
    if file.extension().is_none_or(|x| x != "md") {
        return None;
    }
    let have = anchors(&std::fs::read_to_string(&file).unwrap());
    (!have.contains(anchor)).then(|| format!("{target}: no heading with the anchor #{anchor} (it has: {have:?})"))
}

#[test]
fn every_relative_link_of_the_readme_and_the_guide_resolves() {
    let mut checked = 0;
    let mut bad = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for (n, line) in prose(&text) {
            for target in link_targets(line) {
                checked += 1;
                if let Some(why) = broken(&page, &target) {
                    bad.push(format!("{}:{n}: {why}", page.strip_prefix(root()).unwrap().display()));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} links found: the link scan is blind");
    assert!(bad.is_empty(), "fix these links (file, or heading anchor):\n{}", bad.join("\n"));
}

#[test]
fn the_readme_links_every_page_of_the_guide() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let linked: BTreeSet<String> =
        prose(&readme).iter().flat_map(|(_, l)| link_targets(l)).map(|t| t.split('#').next().unwrap().into()).collect();
    let missing: Vec<String> = pages()
        .iter()
        .filter_map(|p| p.strip_prefix(root()).unwrap().to_str().map(str::to_string))
        .filter(|p| p.starts_with("docs/") && !linked.contains(p))
        .collect();
    assert!(missing.is_empty(), "link these pages from the README's Guide list: {missing:?}");
}

/// The subcommands `cargo xtask --help` lists, each with its one-line description (a
/// visible alias's ` [aliases: ...]` left out).
fn help_commands() -> Vec<(String, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands: Vec<(String, String)> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let (name, about) = l.trim().split_once(' ')?;
            let about = about.trim();
            let about = about.split(" [aliases: ").next().unwrap();
            Some((name.to_string(), about.to_string()))
        })
        .filter(|(name, _)| name != "help")
        .collect();
    assert!(commands.len() > 5, "no command list in `cargo xtask --help`:\n{help}");
    commands
}

/// The subcommand a `cargo xtask ...` command line names (global flags before it skipped).
fn subcommand(line: &str) -> Option<String> {
    let rest = &line[line.find("cargo xtask ")? + "cargo xtask ".len()..];
    let mut words = rest.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "--repo" | "--color" => {
                words.next();
            }
            w if w.starts_with('-') => {}
            w => return Some(w.to_string()),
        }
    }
    None
}

#[test]
fn every_command_the_readme_shows_is_one_of_cargo_xtask_help() {
    let help = help_commands();
    let known = |c: &str| help.iter().any(|(name, _)| name == c);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let shown: Vec<String> = code(&readme).into_iter().filter_map(subcommand).collect();
    assert!(shown.len() >= 4, "the README's code blocks show almost no `cargo xtask` command: {shown:?}");
    let unknown: Vec<&String> = shown.iter().filter(|c| !known(c)).collect();
    assert!(
        unknown.is_empty(),
        "the README's quick start runs commands `cargo xtask --help` does not list: {unknown:?}"
    );

    // The command list: one row per command, saying what the help says.
    let mut rows = 0;
    let mut wrong = Vec::new();
    for (_, line) in prose(&readme) {
        let Some(row) = line.strip_prefix("| `cargo xtask ") else { continue };
        let Some((name, about)) = row.split_once("` | ") else { continue };
        let about = about.trim_end_matches('|').trim();
        rows += 1;
        match help.iter().find(|(n, _)| n == name) {
            None => wrong.push(format!("{name}: not a command of `cargo xtask --help`")),
            Some((_, said)) if said != about => {
                wrong.push(format!("{name}: the help says \"{said}\", the README \"{about}\""))
            }
            Some(_) => {}
        }
    }
    assert!(rows >= 4, "the README has no command list (rows `| `cargo xtask NAME` | what it does |`)");
    assert!(wrong.is_empty(), "the README's command list differs from `cargo xtask --help`:\n{}", wrong.join("\n"));
}

/// The pages the text of a source file cites, each with the text right after the citation:
/// `docs/PAGE.md` (the repo's docs/, not a folder of that name inside some path) and `the
/// README`.
fn citations(text: &str) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("docs/") {
        if text[..at].ends_with(|c: char| c == '/' || c.is_alphanumeric()) {
            continue;
        }
        let rest = &text[at..];
        let end = rest.find(|c: char| !(c.is_alphanumeric() || "/._-".contains(c))).unwrap_or(rest.len());
        let page = rest[..end].trim_end_matches('.');
        if page.ends_with(".md") {
            out.push((page.to_string(), &rest[page.len()..]));
        }
    }
    for (at, cite) in text.match_indices("the README") {
        out.push(("README.md".to_string(), &text[at + cite.len()..]));
    }
    out
}

/// A message of the tool that sends the reader to a page (`see docs/PAGE.md: "Section"`,
/// `see the README: "Section"`) names a page that exists and, when it quotes a section,
/// one of that page's headings.
#[test]
fn every_doc_page_a_message_cites_exists_with_its_section() {
    let mut files = Vec::new();
    for dir in ["xtask/src", "xtask-aws/src"] {
        crate::common::rust_files(&root().join(dir), &mut files);
    }
    let mut cited = 0;
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (page, after) in citations(&text) {
            cited += 1;
            let Ok(doc) = std::fs::read_to_string(root().join(&page)) else {
                bad.push(format!("{}: {page} does not exist", f.display()));
                continue;
            };
            // `PAGE: \"Section\"` in a Rust string literal.
            if let Some(section) = after.strip_prefix(": \\\"").and_then(|s| s.split("\\\"").next()) {
                if !anchors(&doc).contains(&slug(section)) {
                    bad.push(format!("{}: {page} has no section \"{section}\"", f.display()));
                }
            }
        }
    }
    assert!(cited > 0, "no message cites a docs/ page: the scan is blind");
    assert!(bad.is_empty(), "messages cite pages or sections that are gone:\n{}", bad.join("\n"));
}

#[test]
fn slugs_follow_githubs_rules() {
    assert_eq!(
        slug("Fork this repo: from fork to first production layer"),
        "fork-this-repo-from-fork-to-first-production-layer"
    );
    assert_eq!(slug("Credentials in CI: `XTASK_AWS_CREDENTIALS=env`"), "credentials-in-ci-xtask_aws_credentialsenv");
    assert_eq!(
        slug("1. The buckets (once, with administrator credentials)"),
        "1-the-buckets-once-with-administrator-credentials"
    );
    let twice = anchors("# A\n\n## Use it\n\n```sh\n# not a heading\n```\n\n## Use it\n");
    assert_eq!(twice, ["a", "use-it", "use-it-1"].into_iter().map(String::from).collect());
}
