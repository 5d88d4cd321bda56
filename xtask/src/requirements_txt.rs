//! Reads a layer's `requirements.txt`: the normalised lines that go into the fingerprint,
//! the requirements that are not pinned (their builds are not reproducible), and the local
//! files they name, which must be inside the layer folder.

use std::path::{Component, Path};

use anyhow::{bail, Context, Result};

use crate::quote::clip;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// Non-empty lines without comments and surrounding blanks, in file order.
    pub lines: Vec<String>,
    /// The requirements not pinned with `==` or `===` (nor given by URL or local file).
    pub unpinned: Vec<String>,
    /// The local files and folders the lines name (a wheel next to requirements.txt, a
    /// `--find-links` folder), with the line of requirements.txt that names each.
    pub local: Vec<(usize, String)>,
    /// Whether some requirement carries `--hash=`: pip then runs in hash-checking mode
    /// (`--require-hashes`), as for every file `cargo xtask lock` writes.
    pub hashed: bool,
}

impl Requirements {
    /// Reads and checks `requirements.txt` of the layer in `layer_dir` (`layers/<layer>`):
    /// it and every local file it names must be inside the repo, local files inside the
    /// layer folder itself (what a pull request reviews and the fingerprint covers).
    pub fn read(layer_dir: &Path, layer: &str) -> Result<Requirements> {
        let path = layer_dir.join("requirements.txt");
        let display = format!("layers/{layer}/requirements.txt");
        if path.symlink_metadata().is_ok() {
            let repo_root = layer_dir.parent().and_then(Path::parent).unwrap_or(layer_dir);
            crate::config::ensure_inside(&path, repo_root, &display)?;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if ["requirements.in", "pyproject.toml"].iter().any(|f| layer_dir.join(f).is_file()) {
                    bail!("layer {layer} is not locked yet: run `cargo xtask lock {layer}` to write layers/{layer}/requirements.txt");
                }
                bail!("layer {layer} has no requirements.txt: create layers/{layer}/requirements.txt with one `package==version` per line")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {display}")),
        };
        let reqs = Requirements::parse(&text, layer)?;
        for (line, file) in &reqs.local {
            check_local_file(layer_dir, layer, *line, file)?;
        }
        Ok(reqs)
    }

    pub fn parse(text: &str, layer: &str) -> Result<Requirements> {
        let mut lines = Vec::new();
        let mut unpinned = Vec::new();
        let mut local = Vec::new();
        for (n, raw) in logical_lines(text) {
            let line = strip_comment(&raw).split_whitespace().collect::<Vec<_>>().join(" ");
            if line.is_empty() {
                continue;
            }
            if let Some(opt) = ["-r", "--requirement", "-c", "--constraint", "-e", "--editable"]
                .iter()
                .find(|o| line == **o || line.starts_with(&format!("{o} ")) || line.starts_with(&format!("{o}=")))
            {
                bail!(
                    "layers/{layer}/requirements.txt:{n}: `{opt}` is not supported (only requirements.txt is sent to the build); list the packages themselves: `{}`",
                    clip(&line)
                );
            }
            let file = local_path(&line);
            if !line.starts_with('-') && file.is_none() && !is_pinned(&line) {
                unpinned.push(line.clone());
            }
            if let Some(f) = file {
                local.push((n, f));
            }
            lines.push(line);
        }
        if !lines.iter().any(|l| !l.starts_with('-')) {
            bail!("layers/{layer}/requirements.txt lists no package: add one `package==version` per line");
        }
        let hashed = lines.iter().any(|l| l.contains("--hash="));
        Ok(Requirements { lines, unpinned, local, hashed })
    }

    /// The canonical text hashed into the fingerprint: the order of `--no-deps` installs
    /// does not matter, so lines are sorted.
    pub fn normalised(&self) -> String {
        let mut l = self.lines.clone();
        l.sort();
        l.join("\n")
    }
}

/// The lines pip sees, each with the number of the line it starts on: a backslash at the
/// end of a line joins the next one, as pip does.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(body) = raw.strip_suffix('\\') {
            acc.push_str(body);
            acc.push(' ');
            pending = Some((start, acc));
        } else {
            acc.push_str(raw);
            out.push((start, acc));
        }
    }
    out.extend(pending);
    out
}

/// The local file or folder a requirement line names, if any: a path (`./x.whl`,
/// `../x.whl`, `/abs/x.whl`, `wheels/x.whl`, `x.whl`), a `file:` URL (also after
/// `name @`), or the folder of `--find-links`/`-f`.
fn local_path(line: &str) -> Option<String> {
    for opt in ["--find-links", "-f"] {
        if let Some(rest) = line.strip_prefix(opt) {
            let target = rest.trim_start_matches([' ', '=']).split_whitespace().next()?;
            if rest.starts_with([' ', '=']) {
                return match file_url_path(target) {
                    Some(p) => Some(p),
                    None if target.contains("://") => None,
                    None => Some(target.to_string()),
                };
            }
        }
    }
    if line.starts_with('-') {
        return None;
    }
    if let Some((_, url)) = line.split_once(" @ ") {
        return file_url_path(url.split([' ', ';']).next().unwrap_or(url));
    }
    let token = line.split([' ', ';']).next().unwrap_or(line);
    if let Some(p) = file_url_path(token) {
        return Some(p);
    }
    if token.contains("://") {
        return None;
    }
    // A path may carry extras, as in `./pkg.whl[socks]`.
    let path = match token.rsplit_once('[') {
        Some((p, extras)) if extras.ends_with(']') => p,
        _ => token,
    };
    const ARCHIVES: &[&str] = &[".whl", ".tar.gz", ".tgz", ".tar.bz2", ".zip"];
    let looks_like_path = path.starts_with(['.', '/', '~'])
        || path.contains('/')
        || path.contains('\\')
        || ARCHIVES.iter().any(|e| path.ends_with(e));
    looks_like_path.then(|| path.to_string())
}

/// The path of a `file:` URL (`file:///abs`, `file://localhost/abs`, `file:rel`).
fn file_url_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("file:")?;
    Some(match rest.strip_prefix("//") {
        Some(r) if r.starts_with('/') => r.to_string(),
        // `file://HOST/path`: the path part, absolute.
        Some(r) => r.find('/').map(|i| r[i..].to_string()).unwrap_or_else(|| format!("/{r}")),
        None => rest.to_string(),
    })
}

/// A local file named by line `line` must be inside the layer folder, also once links are
/// followed: a file elsewhere would be installed but neither reviewed nor fingerprinted.
fn check_local_file(layer_dir: &Path, layer: &str, line: usize, file: &str) -> Result<()> {
    let outside = || {
        let name = Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        anyhow::anyhow!(
            "layers/{layer}/requirements.txt:{line}: `{}` is outside the layer folder: a layer's files must be inside layers/{layer}/ (what a pull request reviews and the fingerprint covers); copy it there and name it `./{}`",
            clip(file),
            clip(&name)
        )
    };
    let path = Path::new(file);
    if path.is_absolute() || file.starts_with('~') {
        return Err(outside());
    }
    let mut depth: i64 = 0;
    for c in path.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return Err(outside()),
        }
        if depth < 0 {
            return Err(outside());
        }
    }
    let full = layer_dir.join(path);
    if let (Ok(real), Ok(dir)) = (full.canonicalize(), layer_dir.canonicalize()) {
        if !real.starts_with(&dir) {
            return Err(outside());
        }
    }
    Ok(())
}

/// Drops a `#` comment: at the start of a line, or after white space (pip's rule, which
/// keeps `#` inside URLs such as `pkg @ https://x/y.whl#sha256=...`).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// One exact version (`==` without wildcard, or `===`) or a URL; pip options after the
/// requirement (`--hash=...`) are ignored.
fn is_pinned(line: &str) -> bool {
    let req = line.split(" --").next().unwrap_or(line);
    // A bare URL is not PEP 508 but as pinned as `name @ url`.
    req.split(';').next().unwrap_or(req).contains("://")
        || crate::python::Requirement::parse(req).is_some_and(|r| r.is_pinned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_flags_unpinned() {
        let r = Requirements::parse(
            "# comment\n  pandas==2.2.3   # pinned\nsix>=1.0\n\ntzdata\nrequests[socks]==2.32.3 ; python_version >= '3.8'\npkg @ https://x/p.whl#sha256=ab\n--only-binary=:all:\nfoo==1.*\n",
            "l",
        )
        .unwrap();
        assert_eq!(r.lines[0], "pandas==2.2.3");
        assert_eq!(r.unpinned, vec!["six>=1.0", "tzdata", "foo==1.*"]);
        assert_eq!(r.lines.len(), 7);
    }

    #[test]
    fn order_and_spacing_do_not_change_the_normalised_text() {
        let a = Requirements::parse("b==1\na==2\n", "l").unwrap();
        let b = Requirements::parse("a==2   # x\n\n  b==1", "l").unwrap();
        assert_eq!(a.normalised(), b.normalised());
    }

    #[test]
    fn local_files_are_found_with_their_line_and_count_as_pinned() {
        let r = Requirements::parse(
            "six==1.16.0\n./wheels/a-1.0-py3-none-any.whl\nb-2.0-py3-none-any.whl\nc @ file:///srv/c.whl\n\\\n  ../d.whl\n--find-links=./more\nfile:e.whl\nrequests[socks]==2.32.3 ; python_version >= '3.8'\nf @ https://x/f.whl#sha256=ab\n",
            "l",
        )
        .unwrap();
        assert!(r.unpinned.is_empty(), "{:?}", r.unpinned);
        let local: Vec<(usize, &str)> = r.local.iter().map(|(n, f)| (*n, f.as_str())).collect();
        assert_eq!(
            local,
            [
                (2, "./wheels/a-1.0-py3-none-any.whl"),
                (3, "b-2.0-py3-none-any.whl"),
                (4, "/srv/c.whl"),
                (5, "../d.whl"),
                (7, "./more"),
                (8, "e.whl")
            ]
        );
    }

    #[test]
    fn local_files_outside_the_layer_folder_are_refused_naming_the_line() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path().join("layers/l");
        std::fs::create_dir_all(dir.join("wheels")).unwrap();
        std::fs::write(dir.join("wheels/a.whl"), "x").unwrap();
        std::fs::write(repo.path().join("outside.whl"), "x").unwrap();
        std::os::unix::fs::symlink(repo.path().join("outside.whl"), dir.join("linked.whl")).unwrap();
        check_local_file(&dir, "l", 1, "./wheels/a.whl").unwrap();
        check_local_file(&dir, "l", 1, "wheels/../wheels/a.whl").unwrap();
        for (bad, name) in [
            ("../../outside.whl", "outside.whl"),
            ("/tmp/x.whl", "x.whl"),
            ("wheels/../../x.whl", "x.whl"),
            ("~/x.whl", "x.whl"),
            ("./linked.whl", "linked.whl"),
        ] {
            let err = check_local_file(&dir, "l", 7, bad).unwrap_err().to_string();
            assert!(
                err.starts_with("layers/l/requirements.txt:7: `")
                    && err.contains("outside the layer folder")
                    && err.contains(&format!("`./{name}`")),
                "{bad}: {err}"
            );
        }
        std::fs::write(dir.join("requirements.txt"), "six==1.16.0\n\nfile:///srv/x.whl\n").unwrap();
        let err = Requirements::read(&dir, "l").unwrap_err().to_string();
        assert!(err.contains("requirements.txt:3") && err.contains("/srv/x.whl"), "{err}");
    }

    #[test]
    fn a_requirements_txt_linked_from_outside_the_repo_is_refused_and_long_lines_are_cut() {
        let repo = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = repo.path().join("layers/l");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(outside.path().join("secret.txt"), "secret-line\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.join("requirements.txt")).unwrap();
        let err = Requirements::read(&dir, "l").unwrap_err().to_string();
        assert!(err.contains("layers/l/requirements.txt is a link") && !err.contains("secret-line"), "{err}");
        let e = Requirements::parse(&format!("six==1\n-r {}\n", "x".repeat(10_000_000)), "x").unwrap_err().to_string();
        assert!(e.contains("requirements.txt:2") && e.len() < 1000, "{}", e.len());
    }

    #[test]
    fn empty_and_file_references_are_errors() {
        let e = Requirements::parse("# nothing\n\n", "x").unwrap_err().to_string();
        assert!(e.contains("layers/x/requirements.txt lists no package"), "{e}");
        let e = Requirements::parse("-r other.txt\n", "x").unwrap_err().to_string();
        assert!(e.contains("`-r` is not supported"), "{e}");
    }
}
