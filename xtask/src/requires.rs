//! `requires`: the layers attached before a layer at run time. The one walk of that
//! graph, used by planning (the freshness gate locks them first, the checks attach them)
//! and by the lock (their pins are its constraints).

use anyhow::{bail, Context, Result};

use crate::config::RepoConfig;
use crate::repo::Repo;

/// The layers `name` requires, transitively, dependencies first; a cycle is an error
/// naming it.
pub fn closure(repo: &Repo, config: &RepoConfig, name: &str) -> Result<Vec<String>> {
    fn visit(
        repo: &Repo,
        config: &RepoConfig,
        layer: &str,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        for r in config.layer(repo, layer)?.requires {
            if path.contains(&r) {
                bail!(
                    "layers {} -> {r} require each other in a cycle: fix `requires` in their layer.toml",
                    path.join(" -> ")
                );
            }
            if out.contains(&r) {
                continue;
            }
            path.push(r.clone());
            visit(repo, config, &r, path, out)?;
            path.pop();
            out.push(r);
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(repo, config, name, &mut vec![name.to_string()], &mut out)?;
    Ok(out)
}

/// Adds `add` to the `requires` of layer `name` in its layer.toml (kept: the layers it
/// requires already, in their order; then the new ones). The one-line `requires = [...]`
/// is rewritten in place, else the scaffold's commented `# requires = ...` line is
/// replaced, else the key is added before the first table. Returns the new list.
pub fn add(repo: &Repo, config: &RepoConfig, name: &str, add: &[String]) -> Result<Vec<String>> {
    let layer = config.layer(repo, name)?;
    for r in add {
        if r == name {
            bail!("--requires {r}: a layer cannot require itself");
        }
        repo.layer_dir(r).map_err(|e| anyhow::anyhow!("--requires {r}: {e:#}"))?;
        if closure(repo, config, r)?.iter().any(|l| l == name) {
            bail!("--requires {r}: layer {r} requires {name} already, so {name} cannot require it (a cycle)");
        }
    }
    let mut list = layer.requires.clone();
    for r in add {
        if !list.contains(r) {
            list.push(r.clone());
        }
    }
    let path = layer.dir.join("layer.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read layers/{name}/layer.toml")),
    };
    let value = format!("requires = [{}]", list.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", "));
    let edited = set_key(&text, &value).with_context(|| {
        format!("layers/{name}/layer.toml: its `requires` spans lines: add {} to it by hand", add.join(", "))
    })?;
    std::fs::write(&path, edited).with_context(|| format!("cannot write layers/{name}/layer.toml"))?;
    Ok(list)
}

/// `text` with its top-level `requires` line set to `line`; `None` when the key's value
/// spans lines.
fn set_key(text: &str, line: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let top = lines.iter().position(|l| l.trim_start().starts_with('[')).unwrap_or(lines.len());
    let is_key = |l: &str, prefix: &str| {
        l.trim_start()
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("requires"))
            .is_some_and(|r| r.trim_start().starts_with('='))
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if let Some(at) = lines[..top].iter().position(|l| is_key(l, "")) {
        if !lines[at].contains(']') {
            return None;
        }
        out[at] = line.to_string();
    } else if let Some(at) = lines[..top].iter().position(|l| is_key(l, "# ")) {
        // The scaffold's comment explains the key: keep it after the value.
        let why = lines[at].find("  #").map(|i| lines[at][i..].trim_start()).unwrap_or("");
        out[at] = if why.is_empty() { line.to_string() } else { format!("{line} {why}") };
    } else {
        out.insert(top, line.to_string());
    }
    Some(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::set_key;

    #[test]
    fn requires_is_set_in_place_or_added_before_tables() {
        let l = "requires = [\"numpy\"]";
        assert_eq!(set_key("a = 1\nrequires = []\n", l).unwrap(), "a = 1\nrequires = [\"numpy\"]\n");
        assert_eq!(
            set_key("# requires = []   # layers attached before\n", l).unwrap(),
            "requires = [\"numpy\"] # layers attached before\n"
        );
        assert_eq!(
            set_key("a = 1\n[images]\nx = \"y\"\n", l).unwrap(),
            "a = 1\nrequires = [\"numpy\"]\n[images]\nx = \"y\"\n"
        );
        assert_eq!(set_key("", l).unwrap(), "requires = [\"numpy\"]\n");
        assert!(set_key("requires = [\n  \"a\",\n]\n", l).is_none());
    }
}
