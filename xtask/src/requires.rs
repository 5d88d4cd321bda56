//! `requires`: the layers attached before a layer at run time. The one walk of that
//! graph, used by planning (the freshness gate locks them first, the checks attach them)
//! and by the lock (their pins are its constraints).

use anyhow::{bail, Result};

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
