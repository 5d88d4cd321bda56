//! Stacks (`[stacks.NAME]` in `layers.toml`): the layers one function attaches, in order,
//! for one runtime and architecture, checked and resolved into [`StackConfig`] as the file
//! is read. Building and checking a stack is `stack/`'s.

use std::ops::Range;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::schema::{ConfigText, StackFile};
use super::RepoConfig;
use crate::runtime::{Arch, Runtime};

/// The size a stack leaves for the function's own code when `function_bytes` is not set.
pub const DEFAULT_FUNCTION_BYTES: u64 = 5 * 1024 * 1024;

/// A stack: the layers one function attaches, in order, for one runtime and architecture,
/// and the unzipped size the function's own code needs.
#[derive(Debug, Clone, Serialize)]
pub struct StackConfig {
    pub name: String,
    pub layers: Vec<String>,
    #[serde(serialize_with = "ser_runtime")]
    pub runtime: Runtime,
    pub arch: Arch,
    pub function_bytes: u64,
}

fn ser_runtime<S: serde::Serializer>(r: &Runtime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(r.id)
}

impl RepoConfig {
    /// The stack called `name`, or an error listing the ones that exist.
    pub fn stack(&self, name: &str) -> Result<&StackConfig> {
        self.stacks.get(name).with_context(|| {
            let known: Vec<&str> = self.stacks.keys().map(String::as_str).collect();
            format!(
                "unknown stack `{name}`: layers.toml defines {}; declare it as [stacks.{name}]",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })
    }
}

/// Checks one `[stacks.NAME]` table and applies its defaults.
pub(super) fn resolve_stack(name: &str, s: StackFile, src: &ConfigText) -> Result<StackConfig> {
    let at = format!("invalid config in layers.toml: [stacks.{name}]");
    if crate::repo::validate_layer_name(name).is_err() {
        bail!("invalid config in layers.toml: stack name `{name}`: use 1 to 64 letters, digits, `-` or `_`, starting with a letter or digit");
    }
    if s.layers.is_empty() {
        bail!("{at}: `layers` is empty; list the layers the function attaches, in order, e.g. [\"numpy\", \"pandas\"]");
    }
    for (i, l) in s.layers.iter().enumerate() {
        crate::repo::validate_layer_name(l).with_context(|| format!("{at}: `layers`"))?;
        if s.layers[..i].contains(l) {
            bail!("{at}: `layers` lists {l} twice");
        }
    }
    let key_at = |key: &str, span: Range<usize>| format!("invalid config in {}: [stacks.{name}] `{key}`", src.at(span));
    let runtime = Runtime::parse(s.runtime.get_ref()).with_context(|| key_at("runtime", s.runtime.span()))?;
    let arch = match &s.arch {
        Some(a) => Arch::parse(a.get_ref()).with_context(|| key_at("arch", a.span()))?,
        None => Arch::X86_64,
    };
    Ok(StackConfig {
        name: name.to_string(),
        layers: s.layers,
        runtime,
        arch,
        function_bytes: s.function_bytes.unwrap_or(DEFAULT_FUNCTION_BYTES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::repo_with;

    #[test]
    fn stacks_resolve_with_defaults_and_bad_ones_are_one_line_errors() {
        let (_d, repo) = repo_with(&[(
            "layers.toml",
            "[stacks.analytics]\nlayers = [\"numpy\", \"pandas\"]\nruntime = \"python3.13\"\n\n[stacks.small]\nlayers = [\"six\"]\nruntime = \"python3.12\"\narch = \"arm64\"\nfunction_bytes = 1000\n",
        )]);
        let cfg = RepoConfig::load(&repo).unwrap();
        let a = cfg.stack("analytics").unwrap();
        assert_eq!(a.layers, ["numpy", "pandas"]);
        assert_eq!((a.runtime.id, a.arch, a.function_bytes), ("python3.13", Arch::X86_64, 5 * 1024 * 1024));
        let s = cfg.stack("small").unwrap();
        assert_eq!((s.runtime.id, s.arch, s.function_bytes), ("python3.12", Arch::Arm64, 1000));
        let err = cfg.stack("big").unwrap_err().to_string();
        assert!(err.contains("unknown stack `big`") && err.contains("analytics, small"), "{err}");

        for (text, needles) in [
            (
                "[stacks.x]\nlayers = [\"a\"]\nruntime = \"python3.13\"\nfunction_mb = 3\n",
                &["layers.toml:4", "function_mb"][..],
            ),
            ("[stacks.x]\nlayers = [\"a\"]\n", &["layers.toml", "runtime"]),
            (
                "[stacks.x]\nlayers = [\"a\"]\nruntime = \"python2.7\"\n",
                &["layers.toml:3", "[stacks.x] `runtime`", "python2.7", "python3.13"],
            ),
            (
                "[stacks.x]\nlayers = [\"a\"]\nruntime = \"python3.13\"\narch = \"amd64\"\n",
                &["layers.toml:4", "[stacks.x] `arch`", "amd64", "arm64"],
            ),
            ("[stacks.x]\nlayers = []\nruntime = \"python3.13\"\n", &["[stacks.x]", "`layers` is empty"]),
            ("[stacks.x]\nlayers = [\"a\", \"a\"]\nruntime = \"python3.13\"\n", &["[stacks.x]", "a twice"]),
            ("[stacks.x]\nlayers = [\"../a\"]\nruntime = \"python3.13\"\n", &["[stacks.x]", "../a"]),
            ("[stacks.\"a b\"]\nlayers = [\"a\"]\nruntime = \"python3.13\"\n", &["stack name `a b`"]),
        ] {
            let (_d, repo) = repo_with(&[("layers.toml", text)]);
            let err = format!("{:#}", RepoConfig::load(&repo).unwrap_err());
            assert!(!err.contains('\n'), "{err}");
            for n in needles {
                assert!(err.contains(n), "`{n}` not in: {err}");
            }
        }
    }
}
