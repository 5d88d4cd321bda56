//! `published/<profile>-rollouts.json`: every rollout of a profile, newest last: when, how
//! it was asked for, and per function its layer list before and after. `rollout --undo`
//! restores the `before` lists of the last one that is not an `--undo` itself; `prune`
//! keeps the versions they name.
//! Written before the first update (every function `pending`) and again with the outcome,
//! atomically and under a lock; committed with the manifests.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use xtask::package::write_atomically;
use xtask::profile::manifest::FileLock;

/// One function moved by a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moved {
    pub region: String,
    pub function: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
    /// `successful` (Lambda reports the update `Successful` and the function holds
    /// `after`); `failed` with the reason (the function may hold either list); `pending`,
    /// written before the update and left by a run that stopped during it; or `skipped`
    /// (`--undo`): not restored, with the reason (it changed since the rollout).
    pub status: String,
    /// Why it failed or was skipped; for a `successful` one, how it was confirmed when
    /// the update call itself failed (`confirmed after ...`: a lost answer, a 409).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// RFC 3339, UTC.
    pub at: String,
    /// What was asked: `--stack NAME`, `--function F`, `--all-outdated`, `--undo`.
    pub how: String,
    pub functions: Vec<Moved>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub profile: String,
    pub rollouts: Vec<Rollout>,
}

/// The status of a function the rollout moved.
pub const SUCCESSFUL: &str = "successful";
/// The status of a function the rollout could not move (or could not confirm).
pub const FAILED: &str = "failed";

/// The file name suffix that marks a rollout record in `published/` (not a manifest).
pub const SUFFIX: &str = "-rollouts";

impl Record {
    /// `published/<profile>-rollouts.json`.
    pub fn path(published_dir: &Path, profile: &str) -> PathBuf {
        published_dir.join(format!("{profile}{SUFFIX}.json"))
    }

    /// The record at `path`, or an empty one.
    pub fn load(path: &Path, profile: &str) -> Result<Record> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Record { profile: profile.to_string(), rollouts: Vec::new() })
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let r: Record = serde_json::from_str(&text).with_context(|| {
            format!("invalid rollout record {}: restore it with `git checkout -- {}`", path.display(), path.display())
        })?;
        if r.profile != profile {
            bail!(
                "invalid rollout record {}: it says \"profile\": \"{}\" but is profile `{profile}`'s",
                path.display(),
                r.profile
            );
        }
        Ok(r)
    }

    /// Appends a rollout and rewrites the file atomically, under a lock beside it (as the
    /// manifest is written), so two rollouts at once both stay recorded.
    pub fn append(path: &Path, profile: &str, rollout: Rollout) -> Result<()> {
        Record::update(path, profile, |r| r.rollouts.push(rollout))
    }

    /// Replaces the rollout recorded at `at` with `how` (the one [`Record::append`] wrote
    /// before its writes, as `pending`) by its outcome; appends it when it is gone.
    pub fn finish(path: &Path, profile: &str, rollout: Rollout) -> Result<()> {
        Record::update(path, profile, |r| {
            // The same second and request may be another run's (two rollouts at once): the
            // pending entry is the one naming the same functions and lists.
            let same = |x: &Rollout| {
                x.at == rollout.at
                    && x.how == rollout.how
                    && x.functions.len() == rollout.functions.len()
                    && x.functions.iter().zip(&rollout.functions).all(|(a, b)| {
                        (&a.region, &a.function, &a.before, &a.after) == (&b.region, &b.function, &b.before, &b.after)
                            && (a.status == "pending" || (a.status == "skipped" && b.status == "skipped"))
                    })
            };
            match r.rollouts.iter_mut().rev().find(|x| same(x)) {
                Some(x) => *x = rollout,
                None => r.rollouts.push(rollout),
            }
        })
    }

    fn update(path: &Path, profile: &str, change: impl FnOnce(&mut Record)) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let _lock = FileLock::take(path, xtask::profile::manifest::FILE_LOCK_WAIT)?;
        let mut r = Record::load(path, profile)?;
        change(&mut r);
        let text = serde_json::to_string_pretty(&r).expect("a record always serialises") + "\n";
        write_atomically(path, text.as_bytes())
    }

    /// The rollout `--undo` restores: the last one that is not itself an `--undo`. So a
    /// second `--undo`, or a retry of one that failed part-way, finishes restoring it
    /// instead of re-applying it to the functions already restored.
    pub fn undoable(&self) -> Option<&Rollout> {
        self.rollouts.iter().rev().find(|r| !r.how.starts_with("--undo"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollouts_append_and_the_last_is_read_back() {
        let d = tempfile::tempdir().unwrap();
        let path = Record::path(&d.path().join("published"), "staging");
        assert!(path.ends_with("published/staging-rollouts.json"));
        assert!(Record::load(&path, "staging").unwrap().undoable().is_none());
        let moved = Moved {
            region: "us-east-1".into(),
            function: "f".into(),
            before: vec!["a:1".into()],
            after: vec!["a:2".into()],
            status: "pending".into(),
            reason: None,
        };
        for how in ["--all-outdated", "--undo"] {
            let r = Rollout { at: "2025-01-01T00:00:00Z".into(), how: how.into(), functions: vec![moved.clone()] };
            Record::append(&path, "staging", r).unwrap();
        }
        let ok = Moved { status: "successful".into(), ..moved.clone() };
        let done = Rollout { at: "2025-01-01T00:00:00Z".into(), how: "--undo".into(), functions: vec![ok.clone()] };
        Record::finish(&path, "staging", done).unwrap();
        let r = Record::load(&path, "staging").unwrap();
        assert_eq!(r.rollouts.len(), 2);
        assert_eq!((r.rollouts[1].functions[0].status.as_str(), r.rollouts[0].functions.len()), ("successful", 1));
        assert_eq!(r.rollouts.last().unwrap().how, "--undo");
        assert_eq!(r.undoable().unwrap().how, "--all-outdated");
        let err = format!("{:#}", Record::load(&path, "production").unwrap_err());
        assert!(err.contains("profile `production`"), "{err}");
    }

    #[test]
    fn two_rollouts_in_the_same_second_each_finish_their_own_entry() {
        let d = tempfile::tempdir().unwrap();
        let path = Record::path(d.path(), "staging");
        let moved = |f: &str, status: &str| Moved {
            region: "us-east-1".into(),
            function: f.into(),
            before: vec!["a:1".into()],
            after: vec!["a:2".into()],
            status: status.into(),
            reason: None,
        };
        let at = "2025-01-01T00:00:00Z";
        let r = |f: &str, status: &str| Rollout {
            at: at.into(),
            how: "--all-outdated".into(),
            functions: vec![moved(f, status)],
        };
        Record::append(&path, "staging", r("x", "pending")).unwrap();
        Record::append(&path, "staging", r("y", "pending")).unwrap();
        Record::finish(&path, "staging", r("x", "successful")).unwrap();
        Record::finish(&path, "staging", r("y", "failed")).unwrap();
        let got = Record::load(&path, "staging").unwrap();
        let statuses: Vec<(&str, &str)> =
            got.rollouts.iter().map(|r| (r.functions[0].function.as_str(), r.functions[0].status.as_str())).collect();
        assert_eq!(statuses, [("x", "successful"), ("y", "failed")]);
    }
}
