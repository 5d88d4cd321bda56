//! Reads a layer's `requirements.txt`: the normalised lines that go into the fingerprint,
//! and the requirements that are not pinned (their builds are not reproducible).

use std::path::Path;

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// Non-empty lines without comments and surrounding blanks, in file order.
    pub lines: Vec<String>,
    /// The requirements not pinned with `==` or `===` (nor given by URL).
    pub unpinned: Vec<String>,
}

impl Requirements {
    pub fn read(layer_dir: &Path, layer: &str) -> Result<Requirements> {
        let path = layer_dir.join("requirements.txt");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("layer {layer} has no requirements.txt: create layers/{layer}/requirements.txt with one `package==version` per line")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read layers/{layer}/requirements.txt")),
        };
        Requirements::parse(&text, layer)
    }

    pub fn parse(text: &str, layer: &str) -> Result<Requirements> {
        let mut lines = Vec::new();
        let mut unpinned = Vec::new();
        // Backslash continuations join lines, as pip does.
        let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
        for raw in joined.lines() {
            let line = strip_comment(raw).split_whitespace().collect::<Vec<_>>().join(" ");
            if line.is_empty() {
                continue;
            }
            if let Some(opt) = ["-r", "--requirement", "-c", "--constraint", "-e", "--editable"]
                .iter()
                .find(|o| line == **o || line.starts_with(&format!("{o} ")) || line.starts_with(&format!("{o}=")))
            {
                bail!(
                    "layers/{layer}/requirements.txt: `{opt}` is not supported (only requirements.txt is sent to the build); list the packages themselves: `{line}`"
                );
            }
            if !line.starts_with('-') && !is_pinned(&line) {
                unpinned.push(line.clone());
            }
            lines.push(line);
        }
        if !lines.iter().any(|l| !l.starts_with('-')) {
            bail!("layers/{layer}/requirements.txt lists no package: add one `package==version` per line");
        }
        Ok(Requirements { lines, unpinned })
    }

    /// The canonical text hashed into the fingerprint: the order of `--no-deps` installs
    /// does not matter, so lines are sorted.
    pub fn normalised(&self) -> String {
        let mut l = self.lines.clone();
        l.sort();
        l.join("\n")
    }
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

fn is_pinned(req: &str) -> bool {
    let spec = req.split(';').next().unwrap_or(req);
    if spec.contains(" @ ") || spec.contains("://") {
        return true;
    }
    // Exactly one specifier, `==` or `===`, with no wildcard.
    let spec = spec.split(" --").next().unwrap_or(spec);
    let ops = spec.matches("==").count();
    ops == 1 && !spec.contains(',') && !spec.contains('*') && !spec.contains("!=")
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
    fn empty_and_file_references_are_errors() {
        let e = Requirements::parse("# nothing\n\n", "x").unwrap_err().to_string();
        assert!(e.contains("layers/x/requirements.txt lists no package"), "{e}");
        let e = Requirements::parse("-r other.txt\n", "x").unwrap_err().to_string();
        assert!(e.contains("`-r` is not supported"), "{e}");
    }
}
