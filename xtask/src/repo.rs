//! Where things live in a layer repo: `layers/`, `dist/`, `published/`, and the checks
//! that keep a layer name from escaping its folder.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The file that marks a layer repo's root.
pub const MARKER: &str = "layers.toml";

/// The variable that names the layer repo when `--repo` is not given.
pub const REPO_VAR: &str = "XTASK_REPO";

/// Where the repo's path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Flag,
    Env,
    Cwd,
}

/// The root of a layer repo and the folders inside it.
#[derive(Debug, Clone)]
pub struct Repo {
    pub root: PathBuf,
}

impl Repo {
    /// The layer repo to act on: `--repo DIR` (or `XTASK_REPO`), else the current
    /// directory; either way the nearest folder at or above it that holds `layers.toml`,
    /// as git and cargo find theirs. Never the folder this binary was compiled in: with a
    /// shared target directory one binary serves several clones, and each must act on its
    /// own layers. Says which repo it chose when that is not the obvious one.
    pub fn find(explicit: Option<&Path>) -> Result<Repo> {
        let from_env = crate::settings::var_os(REPO_VAR).map(PathBuf::from);
        let (start, source) = match (explicit, from_env) {
            (Some(p), _) => (p.to_path_buf(), Source::Flag),
            (None, Some(p)) => (p, Source::Env),
            (None, None) => (std::env::current_dir().context("cannot read the current directory")?, Source::Cwd),
        };
        let start = start.canonicalize().with_context(|| format!("repo folder {} does not exist", start.display()))?;
        let root = start.ancestors().find(|d| d.join(MARKER).is_file()).with_context(|| match source {
            Source::Cwd => format!(
                "not inside a layer repo: no {MARKER} in {} or any folder above it; cd into your layer repo or pass --repo DIR",
                start.display()
            ),
            Source::Flag => format!("{} is not a layer repo: no {MARKER} in it or any folder above it", start.display()),
            Source::Env => format!(
                "{REPO_VAR}={} is not a layer repo: no {MARKER} in it or any folder above it; fix or unset {REPO_VAR}",
                start.display()
            ),
        })?;
        let repo = Repo { root: root.to_path_buf() };
        if let Some(note) = repo.note(source) {
            crate::output::note(note);
        }
        Ok(repo)
    }

    /// Why the chosen repo may surprise: it came from the environment, or it is not the
    /// checkout this binary was built from (so `layers/` differs from that checkout's).
    fn note(&self, source: Source) -> Option<String> {
        let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(|p| p.canonicalize().ok());
        match source {
            Source::Env => Some(format!("layer repo {} (from {REPO_VAR})", self.root.display())),
            Source::Cwd if built_in.as_deref().is_some_and(|b| b != self.root && b.join(MARKER).is_file()) => {
                Some(format!(
                    "layer repo {} (the one you are in; this binary was built from {})",
                    self.root.display(),
                    built_in.unwrap().display()
                ))
            }
            _ => None,
        }
    }

    /// The repo at exactly `path` (tests make throw-away repos this way).
    #[cfg(test)]
    pub fn at(path: &Path) -> Result<Repo> {
        let root = path.canonicalize().with_context(|| format!("repo folder {} does not exist", path.display()))?;
        Ok(Repo { root })
    }

    /// The repo as committed at git `reference`, unpacked (`git archive`) into
    /// `dist/.compare/<commit>/` and kept there, so its builds stay cached for the next
    /// comparison with the same commit.
    pub fn at_git_ref(&self, reference: &str) -> Result<Repo> {
        let what = format!("read the repo at {reference}");
        let git = |args: &[&str]| -> Result<String> {
            Ok(String::from_utf8_lossy(&crate::process::git(&self.root, args, &what)?).trim().to_string())
        };
        let commit = git(&["rev-parse", "--verify", &format!("{reference}^{{commit}}")]).with_context(|| {
            format!("`{reference}` is not a commit of the git repo holding {}", self.root.display())
        })?;
        let prefix = git(&["rev-parse", "--show-prefix"])?;
        let dir = self.dist_dir().join(".compare").join(&commit[..12.min(commit.len())]);
        if !dir.join(MARKER).is_file() {
            let partial = dir.with_extension("partial");
            let _ = std::fs::remove_dir_all(&partial);
            std::fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
            let archive =
                crate::process::git(&self.root, &["archive", "--format=tar", &format!("{commit}:{prefix}")], &what)?;
            let mut tar = std::process::Command::new("tar")
                .arg("-x")
                .arg("-C")
                .arg(&partial)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .context("cannot run tar")?;
            use std::io::Write;
            tar.stdin.take().expect("piped").write_all(&archive)?;
            if !tar.wait()?.success() {
                bail!("cannot unpack {reference} into {}", partial.display());
            }
            if !partial.join(MARKER).is_file() {
                let _ = std::fs::remove_dir_all(&partial);
                bail!("{reference} has no {MARKER} at {}", if prefix.is_empty() { "the repo root" } else { &prefix });
            }
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&partial, &dir)?;
        }
        Ok(Repo { root: dir })
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn dist_dir(&self) -> PathBuf {
        self.root.join("dist")
    }

    pub fn published_dir(&self) -> PathBuf {
        self.root.join("published")
    }

    /// The folder of layer `name`, which must exist.
    pub fn layer_dir(&self, name: &str) -> Result<PathBuf> {
        validate_layer_name(name)?;
        let dir = self.layers_dir().join(name);
        if !dir.is_dir() {
            let known = self.layer_names().unwrap_or_default();
            let list = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            match crate::suggest::closest(name, known.iter().map(String::as_str)) {
                Some(close) => bail!(
                    "unknown layer `{name}`: did you mean `{close}`? (known layers: {list}; or create it with `cargo xtask new {name}`)"
                ),
                None => bail!(
                    "unknown layer `{name}`: no folder layers/{name}/ (known layers: {list}); create it with `cargo xtask new {name}`"
                ),
            }
        }
        Ok(dir)
    }

    /// Every layer: the folders of `layers/` that hold a `requirements.txt` (or the
    /// `requirements.in` or `pyproject.toml` it is locked from), sorted. A
    /// folder that holds one but whose name is not a valid layer name is skipped with a
    /// warning (once per run) naming the folder and the rule.
    pub fn layer_names(&self) -> Result<Vec<String>> {
        let dir = self.layers_dir();
        let mut names = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A layer not locked yet (requirements.in or pyproject.toml only) is a layer too,
            // and so is a folder with only a layer.toml: building it says what is missing.
            if !["requirements.txt", "requirements.in", "pyproject.toml", "layer.toml"]
                .iter()
                .any(|f| entry.path().join(f).is_file())
            {
                continue;
            }
            match validate_layer_name(&name) {
                Ok(()) => names.push(name),
                Err(e) => warn_skipped_folder(&name, &e),
            }
        }
        names.sort();
        Ok(names)
    }

    /// A path shown to the user: relative to the repo root when inside it.
    pub fn display(&self, p: &Path) -> String {
        p.strip_prefix(&self.root).unwrap_or(p).display().to_string()
    }
}

/// Warns, once per folder and run, that a folder holding a requirements.txt is not a layer.
fn warn_skipped_folder(name: &str, why: &anyhow::Error) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned.iter().any(|w| w == name) {
        warned.push(name.to_string());
        crate::output::warn(format_args!(
            "layers/{}/ is skipped, it is not a layer: {why}; rename the folder",
            crate::quote::clip(name)
        ));
    }
}

/// A layer name: 1 to 64 ASCII letters, digits, `-` and `_`, starting with a letter or
/// digit. Nothing else, so a name can never climb out of `layers/` or `dist/`, and always
/// fits a Lambda layer name once runtime and architecture are appended.
pub fn validate_layer_name(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 64 || !ok_chars || !ok_start {
        bail!(
            "invalid layer name `{}`: use 1 to 64 letters, digits, `-` or `_`, starting with a letter or digit",
            crate::quote::clip(name)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_skip_folders_with_invalid_names_and_folders_without_requirements() {
        let d = tempfile::tempdir().unwrap();
        for folder in ["good", "a b", ".hidden", "ünï", "notes"] {
            std::fs::create_dir_all(d.path().join("layers").join(folder)).unwrap();
            if folder != "notes" {
                std::fs::write(d.path().join("layers").join(folder).join("requirements.txt"), "six==1.16.0\n").unwrap();
            }
        }
        let repo = Repo::at(d.path()).unwrap();
        assert_eq!(repo.layer_names().unwrap(), ["good"]);
    }

    #[test]
    fn layer_names_cannot_escape() {
        for good in ["numpy", "pandas-2", "my_layer", "A1"] {
            validate_layer_name(good).unwrap();
        }
        for bad in ["", "..", "../etc", "a/b", "-x", "_x", ".hidden", "a b", "ä", &"x".repeat(65)] {
            let err = validate_layer_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid layer name"), "{bad}: {err}");
        }
    }
}
