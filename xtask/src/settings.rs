//! Every environment variable the tool reads, in one table, read once at start into one
//! immutable snapshot (as uv's settings and ripgrep's LowArgs -> HiArgs do): later stages
//! ask [`var`] and never the environment itself, so a run sees one consistent setting
//! from start to end and a new variable is documented where it is added. The table of
//! docs/environment.md lists the same names (a tidy test checks both ways).
//! Command-line flags and the config files are resolved by `cli.rs` and `config.rs`.
//!
//! Not read by this tool, so not here: what the AWS SDK reads itself (`AWS_ACCESS_KEY_ID`,
//! `AWS_CONFIG_FILE`, ...; see docs/github-actions.md) and what pip, uv and docker read in
//! their own processes.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::sync::OnceLock;

/// One variable: its name and what it sets.
pub struct Var {
    pub name: &'static str,
    pub what: &'static str,
}

/// Every variable the tool reads.
pub const VARS: &[Var] = &[
    Var {
        name: "XTASK_REPO",
        what: "the layer repo to act on (else the one around the current folder; `--repo` wins)",
    },
    Var { name: "XTASK_PIP_CACHE", what: "pip's download and wheel cache (default `~/.cache/lambda-layers/pip`)" },
    Var { name: "XTASK_UV_CACHE", what: "uv's cache (default `~/.cache/lambda-layers/uv-cache`)" },
    Var { name: "XTASK_UV", what: "a uv binary to lock with instead of the pinned one the tool fetches" },
    Var { name: "XTASK_UV_STATIC", what: "a static (musl) uv binary for build containers instead of the fetched one" },
    Var { name: "XTASK_PIP_PYTHON", what: "the host Python the pip builder runs (default `python3`)" },
    Var { name: "XTASK_AWS_BIN", what: "the binary that runs the AWS commands instead of this checkout's xtask-aws" },
    Var {
        name: "XTASK_AWS_CREDENTIALS",
        what:
            "`env`: use the AWS keys in the environment (CI after an OIDC login) instead of the profile's `aws_profile`",
    },
    Var { name: "XTASK_LOCK_LEASE", what: "the publish lock's lease in seconds (default 60)" },
    Var {
        name: "XTASK_AWS_TIMEOUT",
        what: "seconds an AWS call may go without an answer before it is retried (default 30; the other timeouts derive from it)",
    },
    Var {
        name: "XTASK_ROLLOUT_WAIT",
        what: "how long `rollout` waits for one function's update in progress, in seconds (default 300)",
    },
    Var { name: "XTASK_BENCH_ENDPOINT", what: "the emulator `cargo xtask bench` publishes to" },
    Var {
        name: "XTASK_REBUILT_FROM_CHECKOUT",
        what: "internal: set on the rerun after a binary compiled in another checkout was compiled again",
    },
    Var { name: "DOCKER", what: "the docker CLI to run (default `docker` on `PATH`)" },
    Var { name: "PATH", what: "where `docker`, `python3` and `strip` are looked for" },
    Var { name: "HOME", what: "the default cache and state folders" },
    Var {
        name: "XDG_CACHE_HOME",
        what: "the cache folder (default `~/.cache`): uv, pip and uv's caches under `lambda-layers/`",
    },
    Var {
        name: "XDG_STATE_HOME",
        what: "the state folder (default `~/.local/state`): the packer key under `lambda-layers/`",
    },
    Var { name: "UV_CACHE_DIR", what: "where a host uv keeps its cache, when set" },
    Var {
        name: "PIP_INDEX_URL",
        what: "the package index, passed to pip and (as `UV_INDEX_URL`) to uv, on the host and in containers",
    },
    Var { name: "PIP_EXTRA_INDEX_URL", what: "extra indexes (`UV_EXTRA_INDEX_URL` for uv)" },
    Var { name: "PIP_TRUSTED_HOST", what: "hosts trusted without TLS (`UV_INSECURE_HOST` for uv)" },
    Var { name: "PIP_CERT", what: "the CA bundle for TLS (mounted into containers; `SSL_CERT_FILE` for uv)" },
    Var { name: "PIP_DEFAULT_TIMEOUT", what: "network timeout (`UV_HTTP_TIMEOUT` for uv)" },
    Var { name: "PIP_RETRIES", what: "network retries (`UV_HTTP_RETRIES` for uv)" },
    Var { name: "UV_INDEX_URL", what: "uv's own index setting: kept when set (PIP_INDEX_URL does not override it)" },
    Var { name: "UV_EXTRA_INDEX_URL", what: "as UV_INDEX_URL" },
    Var { name: "UV_INSECURE_HOST", what: "as UV_INDEX_URL" },
    Var { name: "SSL_CERT_FILE", what: "as UV_INDEX_URL (PIP_CERT wins)" },
    Var { name: "UV_HTTP_TIMEOUT", what: "as UV_INDEX_URL" },
    Var { name: "UV_HTTP_RETRIES", what: "as UV_INDEX_URL" },
    Var {
        name: "HTTP_PROXY",
        what: "the proxy, passed into build containers (also `HTTPS_PROXY`, `NO_PROXY` and the lowercase forms)",
    },
    Var { name: "HTTPS_PROXY", what: "as HTTP_PROXY" },
    Var { name: "NO_PROXY", what: "as HTTP_PROXY" },
    Var { name: "http_proxy", what: "as HTTP_PROXY" },
    Var { name: "https_proxy", what: "as HTTP_PROXY" },
    Var { name: "no_proxy", what: "as HTTP_PROXY" },
    Var { name: "NO_COLOR", what: "no colour (as `--color never`)" },
    Var { name: "CLICOLOR", what: "`0`: no colour" },
    Var { name: "TERM", what: "`dumb`: no colour" },
    Var { name: "CLICOLOR_FORCE", what: "colour even when not on a terminal (as `--color always`)" },
    Var { name: "AWS_PROFILE", what: "only warned about: a deploy profile names its own AWS profile" },
    Var { name: "AWS_REGION", what: "only warned about: a deploy profile names its regions" },
    Var { name: "AWS_DEFAULT_REGION", what: "as AWS_REGION" },
    Var {
        name: "AWS_ACCESS_KEY_ID",
        what: "only warned about when a deploy profile names its own AWS profile (used with XTASK_AWS_CREDENTIALS=env)",
    },
    Var { name: "AWS_ENDPOINT_URL", what: "only warned about: a deploy profile's `endpoint_url` decides the endpoint" },
    Var { name: "USER", what: "who holds a publish lock, as shown to others (else LOGNAME, USERNAME, the uid)" },
    Var { name: "LOGNAME", what: "as USER" },
    Var { name: "USERNAME", what: "as USER" },
    Var { name: "HOSTNAME", what: "the host a publish lock names when /proc has none" },
    Var { name: "GITHUB_RUN_ID", what: "the CI run a publish lock names" },
    Var { name: "GITHUB_RUN_ATTEMPT", what: "as GITHUB_RUN_ID" },
    Var {
        name: "CARGO",
        what: "set by cargo: the AWS commands are then compiled and run through `cargo run -p xtask-aws`",
    },
    Var { name: "CARGO_MANIFEST_DIR", what: "set by cargo at run time: the checkout the binaries must come from" },
    Var { name: "CARGO_TARGET_DIR", what: "the target folder cargo builds into, passed on to the xtask-aws build" },
    Var { name: "RUSTC", what: "the compiler cargo uses, passed on to the xtask-aws build" },
];

static ENV: OnceLock<BTreeMap<&'static str, OsString>> = OnceLock::new();

fn env() -> &'static BTreeMap<&'static str, OsString> {
    ENV.get_or_init(|| VARS.iter().filter_map(|v| std::env::var_os(v.name).map(|x| (v.name, x))).collect())
}

/// Reads the environment once; `cli::main` calls it first (any later read uses the
/// same snapshot).
pub fn init() {
    env();
}

/// The value of `name`, when set and not empty. `name` must be in [`VARS`] (the
/// self-check test finds every literal name read; one that is not listed reads as unset
/// rather than stopping a run).
pub fn var_os(name: &str) -> Option<&'static OsStr> {
    env().get(name).map(OsString::as_os_str).filter(|v| !v.is_empty())
}

/// Whether `name` is one of [`VARS`] (for the tests of modules that read names from a
/// table of their own, e.g. the pip settings passed into containers).
pub fn is_listed(name: &str) -> bool {
    VARS.iter().any(|v| v.name == name)
}

/// [`var_os`] as text (a value that is not UTF-8 counts as unset).
pub fn var(name: &str) -> Option<&'static str> {
    var_os(name)?.to_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_listed_once_with_what_it_does() {
        let mut names: Vec<&str> = VARS.iter().map(|v| v.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a variable is listed twice");
        assert!(VARS.iter().all(|v| !v.what.is_empty()));
    }
}

#[cfg(test)]
mod self_check {
    use super::VARS;
    use std::path::Path;

    /// No source file of either crate reads the environment but this one, and
    /// docs/environment.md documents exactly the variables listed here.
    #[test]
    fn the_environment_is_read_here_only_and_the_docs_list_every_variable() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut readers = Vec::new();
        for dir in ["xtask/src", "xtask-aws/src"] {
            for entry in walkdir::WalkDir::new(root.join(dir)).into_iter().flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("settings.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(path).unwrap();
                if text.contains("env::var(") || text.contains("env::var_os(") || text.contains("env::vars(") {
                    readers.push(path.display().to_string());
                }
            }
        }
        assert!(readers.is_empty(), "read the environment through settings::var instead: {readers:?}");
        // Every name read through settings is listed (a literal after `var(` / `var_os(`,
        // and the tables of names read in a loop).
        let listed = |n: &str| VARS.iter().any(|v| v.name == n);
        for dir in ["xtask/src", "xtask-aws/src"] {
            for entry in walkdir::WalkDir::new(root.join(dir)).into_iter().flatten() {
                if entry.path().extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(entry.path()).unwrap();
                for call in ["settings::var(\"", "settings::var_os(\""] {
                    for (at, _) in text.match_indices(call) {
                        let name: String = text[at + call.len()..].chars().take_while(|c| *c != '"').collect();
                        assert!(listed(&name), "{}: {name} is read but not listed in VARS", entry.path().display());
                    }
                }
            }
        }
        for name in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "TERM", "USER", "LOGNAME", "USERNAME"] {
            assert!(listed(name), "{name} is read but not listed in VARS");
        }
        let page = std::fs::read_to_string(root.join("docs/environment.md")).unwrap();
        for v in VARS {
            assert!(page.contains(&format!("| `{}` |", v.name)), "docs/environment.md's table lacks {}", v.name);
        }
        let listed = page.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(listed, VARS.len(), "docs/environment.md's table lists a variable settings.rs does not read");
    }
}
