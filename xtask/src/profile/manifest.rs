//! `published/<profile>.json`: what is published where, committed by the team. Sorted by
//! layer, runtime, architecture and region, pretty-printed, rewritten atomically.
//!
//! A publish run records each version as it is published by appending it to the journal
//! beside the manifest ([`journal`]: one synced line, whatever the size of the manifest),
//! and folds the journal into the manifest once at the end ([`Recorder::finish`]): one
//! write per run instead of one per version. A run killed before that leaves its journal,
//! which every reader applies ([`Manifest::load`]) and the next recorder folds, so a
//! version recorded is never lost.
//!
//! Two runs may record into one file at once (two terminals, a laptop and CI): appending
//! and folding take one file lock beside the manifest; a fold reads the file again, merges
//! the journal into what is there (per unit and region, the newest version wins) and
//! replaces the file, so no run ever drops another's record. Every entry is validated on
//! load, the journal's too: its ARN must name the entry's own region, layer name and
//! version, in the profile's account, so a hand-edited ARN never reaches `stack` or
//! `changed`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{journal, naming};
use crate::config::Profile;
use crate::package::write_atomically;
use crate::runtime::{Arch, Runtime};

/// One published layer version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub layer: String,
    pub runtime: String,
    pub arch: String,
    pub region: String,
    pub layer_name: String,
    pub version: i64,
    pub layer_version_arn: String,
    pub code_sha256: String,
    pub fingerprint: String,
    /// RFC 3339, UTC.
    pub published_at: String,
    /// The S3 key of the CycloneDX SBOM uploaded beside the zip (absent in entries
    /// published before SBOMs existed, or recorded without a build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_key: Option<String>,
    /// The SSM parameter this version's ARN was written to (the profile's
    /// `ssm_parameter`), once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter: Option<String>,
}

impl Entry {
    fn key(&self) -> (&str, &str, &str, &str) {
        (&self.layer, &self.runtime, &self.arch, &self.region)
    }

    /// Unit and region, owned: the key of an index.
    fn owned_key(&self) -> Key {
        (self.layer.clone(), self.runtime.clone(), self.arch.clone(), self.region.clone())
    }
}

/// Layer, runtime, architecture, region.
type Key = (String, String, String, String);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub profile: String,
    pub layers: Vec<Entry>,
}

impl Manifest {
    /// `published/<profile>.json`.
    pub fn path(published_dir: &Path, profile: &str) -> PathBuf {
        published_dir.join(format!("{profile}.json"))
    }

    /// The manifest at `path`, or an empty one when there is none yet, with the entries of
    /// its journal applied (a run killed before it folded them). Read only. Every entry is
    /// validated (see [`Manifest::validate`]); `expect` is the profile's settings when the
    /// caller knows them, so the layer names and the account are checked too.
    pub fn load(path: &Path, profile: &str, expect: Option<&Profile>) -> Result<Manifest> {
        // The journal first: a fold writes its entries into the manifest before removing
        // it, so in this order a fold in between loses none of them.
        let journal = journal::path(path);
        let pending = journal::read(&journal, profile)?;
        let mut m = Manifest::load_file(path, profile, expect)?;
        if m.merge(pending) {
            if let Err(e) = m.validate(profile, expect) {
                bail!("invalid journal {}: {e:#}; {}", journal.display(), journal_hint(&journal, profile));
            }
        }
        Ok(m)
    }

    /// The manifest file alone, validated.
    fn load_file(path: &Path, profile: &str, expect: Option<&Profile>) -> Result<Manifest> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Manifest { profile: profile.to_string(), layers: Vec::new() });
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let m: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("invalid manifest {}: {}", path.display(), repair_hint(path, profile)))?;
        if let Err(e) = m.validate(profile, expect) {
            bail!("invalid manifest {}: {e:#}; {}", path.display(), repair_hint(path, profile));
        }
        Ok(m)
    }

    /// Checks that the file is this profile's and that every entry's ARN is the one
    /// Lambda would have given it: `arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION`
    /// with the entry's region, layer name and version; the layer name is the one the
    /// profile's `layer_name` gives the unit, and every entry names one account (the
    /// profile's `account_id` when set).
    pub fn validate(&self, profile: &str, expect: Option<&Profile>) -> Result<()> {
        if self.profile != profile {
            bail!("it says \"profile\": \"{}\" but is the manifest of profile `{profile}`", self.profile);
        }
        // The account every entry must name, and where that account was first seen.
        let mut account: Option<(String, String)> =
            expect.and_then(|p| p.account_id.clone()).map(|a| (a, "the profile's account_id".to_string()));
        for e in &self.layers {
            let unit = format!("entry {} {} {} {}", e.layer, e.runtime, e.arch, e.region);
            let arn = Arn::parse(&e.layer_version_arn).with_context(|| {
                format!("{unit}: `{}` is not a layer version ARN", crate::quote::clip(&e.layer_version_arn))
            })?;
            let mismatch = |what: &str, arn_has: &str, entry_has: &str| {
                anyhow::anyhow!(
                    "{unit}: its ARN `{}` names {what} {arn_has}, but the entry says {entry_has}",
                    e.layer_version_arn
                )
            };
            if arn.region != e.region {
                return Err(mismatch("region", arn.region, &e.region));
            }
            if arn.name != e.layer_name {
                return Err(mismatch("layer", arn.name, &e.layer_name));
            }
            if arn.version != e.version {
                return Err(mismatch("version", &arn.version.to_string(), &e.version.to_string()));
            }
            if let Some(p) = expect {
                let expected = expected_layer_name(p, e).with_context(|| unit.clone())?;
                if expected != e.layer_name {
                    bail!(
                        "{unit}: layer `{}` is not the name layer_name in layers.toml gives it (`{expected}`)",
                        e.layer_name
                    );
                }
            }
            match &account {
                Some((a, source)) if a != arn.account => {
                    bail!("{unit}: its ARN is in account {}, but {source} is account {a}", arn.account);
                }
                Some(_) => {}
                None => account = Some((arn.account.to_string(), unit.clone())),
            }
        }
        Ok(())
    }

    pub fn get(&self, layer: &str, runtime: &str, arch: &str, region: &str) -> Option<&Entry> {
        self.layers.iter().find(|e| e.key() == (layer, runtime, arch, region))
    }

    /// Inserts or replaces the entry of the same unit and region; false when unchanged.
    /// An entry never replaces one of a newer version (a concurrent run recorded it).
    pub fn upsert(&mut self, entry: Entry) -> bool {
        match self.layers.iter_mut().find(|e| e.key() == entry.key()) {
            Some(e) if *e == entry || e.version > entry.version => false,
            Some(e) => {
                *e = entry;
                true
            }
            None => {
                self.layers.push(entry);
                true
            }
        }
    }

    /// [`Manifest::upsert`] of every entry in order, in time linear in both; false when
    /// nothing changed.
    pub fn merge(&mut self, entries: impl IntoIterator<Item = Entry>) -> bool {
        let mut at: HashMap<Key, usize> = self.layers.iter().enumerate().map(|(i, e)| (e.owned_key(), i)).collect();
        let mut changed = false;
        for entry in entries {
            match at.get(&entry.owned_key()) {
                Some(&i) if self.layers[i] == entry || self.layers[i].version > entry.version => {}
                Some(&i) => {
                    self.layers[i] = entry;
                    changed = true;
                }
                None => {
                    at.insert(entry.owned_key(), self.layers.len());
                    self.layers.push(entry);
                    changed = true;
                }
            }
        }
        changed
    }

    /// Stable text: sorted, pretty, ending with a newline.
    pub fn to_text(&self) -> String {
        let mut m = self.clone();
        m.layers.sort_by(|a, b| a.key().cmp(&b.key()));
        serde_json::to_string_pretty(&m).expect("a manifest always serialises") + "\n"
    }
}

/// The parts of a layer version ARN.
struct Arn<'a> {
    region: &'a str,
    account: &'a str,
    name: &'a str,
    version: i64,
}

impl<'a> Arn<'a> {
    fn parse(arn: &'a str) -> Option<Arn<'a>> {
        let parts: Vec<&str> = arn.split(':').collect();
        let [prefix, partition, service, region, account, kind, name, version] = parts.as_slice() else {
            return None;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ok = *prefix == "arn"
            && partition.starts_with("aws")
            && *service == "lambda"
            && !region.is_empty()
            && account.len() == 12
            && digits(account)
            && *kind == "layer"
            && !name.is_empty()
            && digits(version);
        if !ok {
            return None;
        }
        Some(Arn { region, account, name, version: version.parse().ok()? })
    }
}

/// The layer name the profile gives an entry's unit.
fn expected_layer_name(p: &Profile, e: &Entry) -> Result<String> {
    naming::layer_name(&p.layer_name, &e.layer, Runtime::parse(&e.runtime)?, Arch::parse(&e.arch)?)
}

/// How to repair a manifest: restore it from git when git tracks it; otherwise (the
/// git-ignored `local.json`) delete it, and the next publish records what is live again.
fn repair_hint(path: &Path, profile: &str) -> String {
    let tracked = path.parent().is_some_and(|dir| {
        let path = path.to_string_lossy();
        crate::process::git(dir, &["ls-files", "--error-unmatch", "--", &path], "tell whether git tracks the manifest")
            .is_ok()
    });
    if tracked {
        format!("fix it or restore it from git (`git checkout -- {}`)", path.display())
    } else {
        format!(
            "fix it, or delete it and run `cargo xtask publish-all --profile {profile}`, which records what is published again without publishing anything unchanged"
        )
    }
}

/// How to repair a journal whose entries do not validate.
fn journal_hint(journal: &Path, profile: &str) -> String {
    format!(
        "fix or delete that entry's line in {}, then run `cargo xtask publish-all --profile {profile}`, which records again what is published",
        journal.display()
    )
}

/// The manifest of one run, shared by the concurrent publishes: each record is a line of
/// the journal, [`Recorder::finish`] folds them into the manifest (see the module doc).
pub struct Recorder {
    path: PathBuf,
    journal: PathBuf,
    profile: String,
    /// The manifest as opened plus what this run recorded, by unit and region. Its lock
    /// also takes this process's records one at a time: threads that each opened the lock
    /// file would otherwise wait for each other by polling.
    entries: Mutex<HashMap<Key, Entry>>,
    /// Why the file lock could not be had, once it could not: the run's other records fail
    /// at once instead of each waiting in turn.
    gave_up: Mutex<Option<String>>,
    /// How many times this recorder wrote the manifest file (tests count them).
    manifest_writes: AtomicUsize,
}

impl Recorder {
    /// The recorder of profile `name`. A journal a killed run left is folded first.
    pub fn open(published_dir: &Path, name: &str, profile: &Profile) -> Result<Recorder> {
        let path = Manifest::path(published_dir, name);
        let r = Recorder {
            journal: journal::path(&path),
            path,
            profile: name.to_string(),
            entries: Mutex::new(HashMap::new()),
            gave_up: Mutex::new(None),
            manifest_writes: AtomicUsize::new(0),
        };
        if r.journal.exists() {
            r.fold()?;
        }
        let manifest = Manifest::load(&r.path, name, Some(profile))?;
        *r.entries() = manifest.layers.into_iter().map(|e| (e.owned_key(), e)).collect();
        Ok(r)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `published/<profile>.json`.
    pub fn manifest_path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, layer: &str, runtime: &str, arch: &str, region: &str) -> Option<Entry> {
        self.entries().get(&(layer.into(), runtime.into(), arch.into(), region.into())).cloned()
    }

    /// Records one entry: under the file lock, appends it to the journal and syncs it.
    /// Nothing is written when it is recorded already (or a newer version is).
    pub fn record(&self, entry: Entry) -> Result<()> {
        let mut entries = self.entries();
        if entries.get(&entry.owned_key()).is_some_and(|e| *e == entry || e.version > entry.version) {
            return Ok(());
        }
        let dir = self.path.parent().context("manifest path has no folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let _lock = self.lock()?;
        if !self.path.exists() {
            // The first version of a profile: the manifest exists from now on, so whoever
            // lists published/*.json (prune) finds the profile and reads its journal.
            let empty = Manifest { profile: self.profile.clone(), layers: Vec::new() };
            self.write_manifest(&empty)?;
        }
        journal::append(&self.journal, &entry)?;
        entries.insert(entry.owned_key(), entry);
        Ok(())
    }

    /// Folds the journal into the manifest in one write: every version recorded so far
    /// (this run's, and any other run's not folded yet) is in the manifest file after it.
    /// Idempotent; on failure the versions stay in the journal, which readers apply and
    /// the next run folds.
    pub fn finish(&self) -> Result<()> {
        let _records = self.entries();
        self.fold().with_context(|| {
            format!(
                "could not write the versions recorded into {}: they stay in {}, which the next publish folds into it",
                self.path.display(),
                self.journal.display()
            )
        })
    }

    /// Under the file lock: reads the manifest again, merges the journal in, replaces the
    /// manifest when that changed anything, then removes the journal.
    fn fold(&self) -> Result<()> {
        if !self.journal.exists() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let pending = journal::read(&self.journal, &self.profile)?;
        let mut m = Manifest::load_file(&self.path, &self.profile, None)?;
        if m.merge(pending) {
            if let Err(e) = m.validate(&self.profile, None) {
                bail!(
                    "invalid journal {}: {e:#}; {}",
                    self.journal.display(),
                    journal_hint(&self.journal, &self.profile)
                );
            }
            self.write_manifest(&m)?;
        }
        journal::remove(&self.journal)
    }

    fn write_manifest(&self, m: &Manifest) -> Result<()> {
        write_atomically(&self.path, m.to_text().as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.manifest_writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The file lock; once it could not be had, every later call fails at once.
    fn lock(&self) -> Result<FileLock> {
        if let Some(why) = self.gave_up.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            bail!(why);
        }
        FileLock::take(&self.path, FILE_LOCK_WAIT).inspect_err(|e| {
            *self.gave_up.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{e:#}"));
        })
    }
}

/// How long a run waits for another run's lock on a manifest or rollout record: their
/// writes take milliseconds, so a longer wait is a stopped or stuck run. Well inside the
/// publish lock's lease (60 s), which the waiting run holds meanwhile.
pub const FILE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// An exclusive lock on `.NAME.lock` beside a file, held until dropped. The lock file
/// stays: removing it would let two runs lock two different files of the same name. Its
/// holder writes who it is into it (`pid 123 on host since 2026-12-03T10:00:00Z`), which a
/// waiting run shows.
pub struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    /// Takes the lock, waiting at most `wait` for another holder, saying who it is.
    pub fn take(path: &Path, wait: std::time::Duration) -> Result<FileLock> {
        use std::io::{Read, Seek, Write};
        let name = path.file_name().context("lock path has no file name")?.to_string_lossy();
        let lock = path.with_file_name(format!(".{name}.lock"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock)
            .with_context(|| format!("cannot open {}", lock.display()))?;
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", lock.display()));
                }
            }
            let mut holder = String::new();
            let _ = file.rewind().and_then(|_| file.read_to_string(&mut holder));
            let holder = describe_holder(holder.trim());
            if started.elapsed() >= wait {
                bail!(
                    "{} is locked by another run ({holder}); gave up after {} s: let that run finish, or end it (its lock goes with it), then rerun",
                    lock.display(),
                    wait.as_secs()
                );
            }
            if !said {
                crate::output::note(format_args!(
                    "waiting for {} (up to {} s): held by {holder}",
                    lock.display(),
                    wait.as_secs()
                ));
                said = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let me = format!("pid {} on {} since {}\n", std::process::id(), crate::process::hostname(), now_rfc3339());
        // Who holds it is a courtesy to the next run: a failed write does not stop this one.
        let _ = file.set_len(0).and_then(|_| file.rewind()).and_then(|_| file.write_all(me.as_bytes()));
        Ok(FileLock { _file: file })
    }
}

/// The holder a lock file names, and whether that process is stopped (Ctrl-Z) when it
/// runs on this machine.
fn describe_holder(text: &str) -> String {
    if text.is_empty() {
        return "a process that did not say who it is".into();
    }
    let text = crate::quote::clip(text.lines().next().unwrap_or_default());
    let pid = text.strip_prefix("pid ").and_then(|r| r.split(' ').next()).and_then(|p| p.parse::<u32>().ok());
    let local = text.contains(&format!(" on {} since", crate::process::hostname()));
    let stat = pid.filter(|_| local).and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok());
    // The state follows the command name in parentheses: `123 (xtask-aws) T ...`.
    let state = stat.as_deref().and_then(|s| s.rsplit_once(") ")).and_then(|(_, rest)| rest.chars().next());
    match (state, pid) {
        (Some('T' | 't'), Some(p)) => {
            format!("{text}, which is stopped: resume it (`fg`, or `kill -CONT {p}`) or end it")
        }
        _ => text,
    }
}

/// Now, as RFC 3339 in UTC to the second: `2024-05-01T10:00:00Z`.
pub fn now_rfc3339() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since 1970 as RFC 3339 in UTC.
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let date = crate::runtime::civil_from_days(days);
    format!("{date}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Lambda's CreatedDate (`2024-05-01T10:00:00.123+0000`) as RFC 3339 UTC to the second;
/// anything else is kept as it is.
pub fn from_lambda_date(created: &str) -> String {
    let utc = created.ends_with("+0000") || created.ends_with('Z') || created.ends_with("+00:00");
    match created.get(..19) {
        Some(head) if utc && head.as_bytes().get(10) == Some(&b'T') => format!("{head}Z"),
        _ => created.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(layer: &str, region: &str, version: i64) -> Entry {
        Entry {
            layer: layer.into(),
            runtime: "python3.12".into(),
            arch: "x86_64".into(),
            region: region.into(),
            layer_name: format!("{layer}-py312-x86_64"),
            version,
            layer_version_arn: format!("arn:aws:lambda:{region}:123456789012:layer:{layer}-py312-x86_64:{version}"),
            code_sha256: "abc=".into(),
            fingerprint: "ff".into(),
            published_at: "2024-05-01T10:00:00Z".into(),
            sbom_key: None,
            ssm_parameter: None,
        }
    }

    #[test]
    fn text_is_sorted_and_stable_whatever_the_order_of_records() {
        let mut a = Manifest { profile: "staging".into(), layers: vec![] };
        let mut b = a.clone();
        for e in [entry("pandas", "us-east-1", 1), entry("numpy", "eu-west-1", 2), entry("numpy", "eu-central-1", 1)] {
            a.upsert(e);
        }
        for e in [entry("numpy", "eu-central-1", 1), entry("pandas", "us-east-1", 1), entry("numpy", "eu-west-1", 2)] {
            b.upsert(e);
        }
        assert_eq!(a.to_text(), b.to_text());
        let text = a.to_text();
        assert!(text.find("eu-central-1").unwrap() < text.find("eu-west-1").unwrap());
        assert!(text.starts_with("{\n") && text.ends_with("}\n"));
        assert!(!a.upsert(entry("pandas", "us-east-1", 1)));
        assert!(a.upsert(entry("pandas", "us-east-1", 2)));
        assert_eq!(a.layers.len(), 3);
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_text(), text);
    }

    fn profile(account_id: Option<&str>) -> Profile {
        let mut text = "regions = [\"us-east-1\"]\nbucket = \"b\"\n".to_string();
        if let Some(a) = account_id {
            text.push_str(&format!("account_id = \"{a}\"\n"));
        }
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn recorder_writes_the_file_and_a_missing_file_is_empty() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("published");
        let r = Recorder::open(&dir, "local", &profile(None)).unwrap();
        r.record(entry("six", "us-east-1", 1)).unwrap();
        let m = Manifest::load(&Manifest::path(&dir, "local"), "local", None).unwrap();
        assert_eq!(m.layers, vec![entry("six", "us-east-1", 1)]);
        // The first record of a profile makes its (empty) manifest, so that whoever lists
        // published/*.json (prune) finds the profile before the journal is folded.
        let placeholder = std::fs::read_to_string(Manifest::path(&dir, "local")).unwrap();
        assert_eq!(placeholder, Manifest { profile: "local".into(), layers: vec![] }.to_text());
        r.finish().unwrap();
        let text = std::fs::read_to_string(Manifest::path(&dir, "local")).unwrap();
        assert_eq!(text, Manifest { profile: "local".into(), layers: vec![entry("six", "us-east-1", 1)] }.to_text());
        assert_eq!(
            Recorder::open(&dir, "local", &profile(None))
                .unwrap()
                .get("six", "python3.12", "x86_64", "us-east-1")
                .unwrap()
                .version,
            1
        );
    }

    #[test]
    fn two_recorders_of_one_file_keep_each_others_records_and_the_newest_version() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("published");
        let (a, b) = (
            Recorder::open(&dir, "local", &profile(None)).unwrap(),
            Recorder::open(&dir, "local", &profile(None)).unwrap(),
        );
        a.record(entry("six", "us-east-1", 2)).unwrap();
        b.record(entry("idna", "us-east-1", 1)).unwrap();
        // b never saw version 2 of six: its older record must not replace it.
        b.record(entry("six", "us-east-1", 1)).unwrap();
        let want = {
            let mut want = Manifest { profile: "local".into(), layers: vec![] };
            want.upsert(entry("six", "us-east-1", 2));
            want.upsert(entry("idna", "us-east-1", 1));
            want.to_text()
        };
        let m = Manifest::load(&Manifest::path(&dir, "local"), "local", None).unwrap();
        assert_eq!(m.to_text(), want);
        b.finish().unwrap();
        a.finish().unwrap();
        assert_eq!(std::fs::read_to_string(Manifest::path(&dir, "local")).unwrap(), want);
    }

    /// `published/` in a fresh folder, with a manifest holding one entry already.
    fn seeded() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("published");
        std::fs::create_dir_all(&dir).unwrap();
        let mut m = Manifest { profile: "local".into(), layers: vec![] };
        m.upsert(entry("seed", "us-east-1", 1));
        std::fs::write(Manifest::path(&dir, "local"), m.to_text()).unwrap();
        (d, dir)
    }

    fn many(n: usize) -> Vec<Entry> {
        (0..n).map(|i| entry(&format!("l{i:05}"), "us-east-1", 1)).collect()
    }

    #[test]
    fn a_record_appends_to_the_journal_and_finish_writes_the_manifest_once_whatever_the_count() {
        for n in [100, 400, 1600] {
            let (_d, dir) = seeded();
            let path = Manifest::path(&dir, "local");
            let before = std::fs::read_to_string(&path).unwrap();
            let r = Recorder::open(&dir, "local", &profile(None)).unwrap();
            let started = std::time::Instant::now();
            for e in many(n) {
                r.record(e).unwrap();
            }
            let per_record = started.elapsed().as_micros() / n as u128;
            // Structural: the records never touched the manifest; finish wrote it once.
            assert_eq!(r.manifest_writes.load(Ordering::Relaxed), 0, "records wrote the manifest at n = {n}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
            let started = std::time::Instant::now();
            r.finish().unwrap();
            let finish = started.elapsed().as_micros();
            assert_eq!(r.manifest_writes.load(Ordering::Relaxed), 1, "finish wrote the manifest once at n = {n}");
            r.finish().unwrap();
            assert_eq!(r.manifest_writes.load(Ordering::Relaxed), 1, "a second finish writes nothing");
            assert!(!journal::path(&path).exists());
            let m = Manifest::load_file(&path, "local", None).unwrap();
            assert_eq!(m.layers.len(), n + 1);
            let mut want = Manifest { profile: "local".into(), layers: vec![entry("seed", "us-east-1", 1)] };
            want.merge(many(n));
            assert_eq!(std::fs::read_to_string(&path).unwrap(), want.to_text());
            println!("n = {n:>4}: {per_record} us per record, finish {finish} us");
        }
    }

    #[test]
    fn a_killed_recorders_journal_is_read_by_load_and_folded_by_the_next_open() {
        let (_d, dir) = seeded();
        let path = Manifest::path(&dir, "local");
        let before = std::fs::read_to_string(&path).unwrap();
        let r = Recorder::open(&dir, "local", &profile(None)).unwrap();
        r.record(entry("six", "us-east-1", 1)).unwrap();
        r.record(entry("idna", "eu-west-1", 4)).unwrap();
        drop(r); // killed: no finish
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        let mut want = Manifest { profile: "local".into(), layers: vec![] };
        want.merge([entry("seed", "us-east-1", 1), entry("six", "us-east-1", 1), entry("idna", "eu-west-1", 4)]);
        let loaded = Manifest::load(&path, "local", Some(&profile(None))).unwrap();
        assert_eq!(loaded.to_text(), want.to_text());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "load never writes");

        let next = Recorder::open(&dir, "local", &profile(None)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), want.to_text());
        assert!(!journal::path(&path).exists());
        assert_eq!(next.get("idna", "python3.12", "x86_64", "eu-west-1").unwrap().version, 4);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_corrupt_or_invalid_one_is_named() {
        let (_d, dir) = seeded();
        let path = Manifest::path(&dir, "local");
        let j = journal::path(&path);
        let r = Recorder::open(&dir, "local", &profile(None)).unwrap();
        r.record(entry("six", "us-east-1", 1)).unwrap();
        let good = std::fs::read_to_string(&j).unwrap();
        // Killed mid-append: the start of a line, without its newline.
        std::fs::write(&j, format!("{good}{}", &good[..good.len() / 2])).unwrap();
        let m = Manifest::load(&path, "local", None).unwrap();
        assert_eq!(m.layers.len(), 2, "the torn line is ignored");
        r.finish().unwrap();
        assert_eq!(Manifest::load_file(&path, "local", None).unwrap().layers.len(), 2);

        std::fs::write(&j, format!("{good}not json\n{good}")).unwrap();
        let err = format!("{:#}", Manifest::load(&path, "local", None).unwrap_err());
        assert!(err.contains(&format!("invalid journal {} line 2", j.display())), "{err}");
        let err = format!("{:#}", Recorder::open(&dir, "local", &profile(None)).err().unwrap());
        assert!(err.contains("line 2"), "{err}");

        let mut bad = entry("evil", "us-east-1", 1);
        bad.version = 2;
        std::fs::write(&j, serde_json::to_string(&bad).unwrap() + "\n").unwrap();
        let err = format!("{:#}", Manifest::load(&path, "local", None).unwrap_err());
        assert!(err.starts_with(&format!("invalid journal {}: entry evil", j.display())), "{err}");
        let err = format!("{:#}", r.finish().unwrap_err());
        assert!(err.contains(&format!("into {}: they stay in {}", path.display(), j.display())), "{err}");
        assert!(err.contains("entry evil"), "{err}");
        assert!(j.exists(), "a journal that cannot be folded stays");
    }

    #[test]
    fn two_recorders_in_two_threads_keep_every_entry() {
        let (_d, dir) = seeded();
        let (a, b) = (
            Recorder::open(&dir, "local", &profile(None)).unwrap(),
            Recorder::open(&dir, "local", &profile(None)).unwrap(),
        );
        let entries = many(100);
        std::thread::scope(|s| {
            for (r, half) in [(&a, &entries[..50]), (&b, &entries[50..])] {
                s.spawn(move || {
                    for e in half {
                        r.record(e.clone()).unwrap();
                    }
                    r.finish().unwrap();
                });
            }
        });
        let mut want = Manifest { profile: "local".into(), layers: vec![entry("seed", "us-east-1", 1)] };
        want.merge(entries);
        assert_eq!(std::fs::read_to_string(Manifest::path(&dir, "local")).unwrap(), want.to_text());
        assert!(!journal::path(&Manifest::path(&dir, "local")).exists());
    }

    #[test]
    fn entries_whose_arn_does_not_match_are_refused() {
        let ok = Manifest { profile: "local".into(), layers: vec![entry("six", "us-east-1", 3)] };
        ok.validate("local", Some(&profile(Some("123456789012")))).unwrap();
        let tamper = |f: &dyn Fn(&mut Entry)| {
            let mut m = ok.clone();
            f(&mut m.layers[0]);
            m
        };
        let cases: Vec<(Manifest, Option<Profile>, &str)> = vec![
            (
                tamper(&|e| e.layer_version_arn = "arn:aws:lambda:us-east-1:123456789012:layer:evil-layer:3".into()),
                None,
                "names layer evil-layer",
            ),
            (
                tamper(&|e| {
                    e.layer_version_arn = "arn:aws:lambda:eu-west-1:123456789012:layer:six-py312-x86_64:3".into()
                }),
                None,
                "names region eu-west-1",
            ),
            (tamper(&|e| e.version = 4), None, "names version 3"),
            (tamper(&|e| e.layer_version_arn = "evil".into()), None, "is not a layer version ARN"),
            (ok.clone(), Some(profile(Some("999999999999"))), "is in account 123456789012"),
            (
                tamper(&|e| {
                    e.layer_name = "evil-layer".into();
                    e.layer_version_arn = "arn:aws:lambda:us-east-1:123456789012:layer:evil-layer:3".into();
                }),
                Some(profile(None)),
                "is not the name layer_name",
            ),
        ];
        for (m, p, want) in cases {
            let err = format!("{:#}", m.validate("local", p.as_ref()).unwrap_err());
            assert!(err.contains(want) && err.starts_with("entry six python3.12 x86_64"), "{want}: {err}");
        }
        let mut two = ok.clone();
        let mut other = entry("idna", "us-east-1", 1);
        other.layer_version_arn = "arn:aws:lambda:us-east-1:999999999999:layer:idna-py312-x86_64:1".into();
        two.layers.push(other);
        let err = format!("{:#}", two.validate("local", None).unwrap_err());
        assert!(err.contains("account 999999999999, but entry six"), "{err}");
        assert!(ok.validate("staging", None).unwrap_err().to_string().contains("profile `staging`"));
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(1_764_244_799), "2025-11-27T11:59:59Z");
        assert_eq!(from_lambda_date("2024-05-01T10:00:00.123+0000"), "2024-05-01T10:00:00Z");
        assert_eq!(from_lambda_date("yesterday"), "yesterday");
        assert!(now_rfc3339().ends_with('Z'));
    }
}
