//! The publish lock: one per deploy profile and region, an object in that region's bucket
//! (`PREFIX/.locks/PROFILE/REGION.json`) taken and renewed with S3 conditional writes, so
//! two runs (two terminals, a laptop and CI) never publish to one profile at once.
//!
//! - Taking it is a PutObject with `If-None-Match: *`: exactly one writer succeeds.
//! - It holds who/where/when/run and a lease; the holder renews it (PutObject with
//!   `If-Match` on the ETag it wrote) every third of the lease. A lock whose lease has run
//!   out (its holder crashed or was killed), or whose ETag a waiter saw unchanged for a
//!   whole lease (so clocks need not agree), is taken over with `If-Match` on its ETag:
//!   again exactly one waiter wins.
//! - Releasing is a DeleteObject with `If-Match`, so a run never removes a lock that is
//!   no longer its own; `cargo xtask unlock` does the same for a lock left behind.
//! - A holder that cannot renew in time, or finds its ETag replaced, has lost the lock:
//!   [`Lock::ensure_held`] then stops every further publish of the run.
//!
//! `regions.rs` takes it in every region a run writes to ([`lock_regions`], [`Locks`]).

mod regions;

pub use regions::{lock_regions, Locks};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::aws::{self, Clients};
use xtask::profile::manifest;

/// How long a lock lives without renewal, unless `XTASK_LOCK_LEASE` (seconds) says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// The variable that sets the lease, for slow links and for tests.
pub const LEASE_VAR: &str = "XTASK_LOCK_LEASE";

/// How a run waits for and holds the lock.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long to wait for another run's lock before giving up.
    pub timeout: Duration,
    /// How long the lock lives without renewal.
    pub lease: Duration,
}

impl Settings {
    /// `timeout` from `--lock-timeout`, the lease from [`LEASE_VAR`] or [`DEFAULT_LEASE`].
    pub fn new(timeout: Duration) -> Result<Settings> {
        let lease = match xtask::settings::var(LEASE_VAR) {
            Some(v) if !v.trim().is_empty() => {
                let secs: u64 = v.trim().parse().ok().filter(|s| (1..=3600).contains(s)).with_context(|| {
                    format!("invalid {LEASE_VAR}={v}: use a number of seconds from 1 to 3600 (default 60)")
                })?;
                Duration::from_secs(secs)
            }
            _ => DEFAULT_LEASE,
        };
        Ok(Settings { timeout, lease })
    }

    fn poll(&self) -> Duration {
        (self.lease / 4).clamp(Duration::from_millis(250), Duration::from_secs(2))
    }
}

/// What the lock object holds: who took it, where, when, for which run, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@host`.
    pub who: String,
    pub pid: u32,
    /// This run: the CI run when there is one (`github run 123 attempt 1`), else a random id.
    pub run: String,
    /// What the holder is doing, e.g. `publish-all`.
    pub command: String,
    /// RFC 3339, UTC.
    pub since: String,
    /// Seconds since 1970 (the holder's clock) when the lease runs out without renewal.
    pub expires_at: i64,
}

impl Holder {
    /// This process, about to run `command`.
    pub fn me(command: &str) -> Holder {
        let user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|k| xtask::settings::var(k).map(str::to_string))
            .or_else(|| {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata("/proc/self").ok().map(|m| format!("uid{}", m.uid()))
            })
            .unwrap_or_else(|| "unknown".into());
        let host = xtask::process::hostname();
        let run = match (xtask::settings::var("GITHUB_RUN_ID"), xtask::settings::var("GITHUB_RUN_ATTEMPT")) {
            (Some(id), Some(attempt)) => format!("github run {id} attempt {attempt}"),
            (Some(id), _) => format!("github run {id}"),
            _ => random_id(),
        };
        Holder {
            who: format!("{user}@{host}"),
            pid: std::process::id(),
            run,
            command: command.to_string(),
            since: manifest::now_rfc3339(),
            expires_at: 0,
        }
    }

    /// One line for messages: `alice@laptop (pid 42, run 1a2b, publish-all) since T`.
    pub fn describe(&self) -> String {
        format!("{} (pid {}, run {}, `{}`) since {}", self.who, self.pid, self.run, self.command, self.since)
    }

    /// Seconds until the lease runs out (negative: how long ago it did), by our clock.
    pub fn lease_left(&self) -> i64 {
        self.expires_at - now_secs()
    }

    fn expired(&self) -> bool {
        self.lease_left() < 0
    }
}

/// Where one lock lives.
#[derive(Debug, Clone)]
pub struct Place {
    pub profile: String,
    pub region: String,
    pub bucket: String,
    pub key: String,
}

impl Place {
    pub fn new(profile: &str, region: &str, bucket: &str, prefix: &str) -> Place {
        let prefix = prefix.trim_matches('/');
        let key = if prefix.is_empty() {
            format!(".locks/{profile}/{region}.json")
        } else {
            format!("{prefix}/.locks/{profile}/{region}.json")
        };
        Place { profile: profile.into(), region: region.into(), bucket: bucket.into(), key }
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn name(&self) -> String {
        format!("the publish lock of profile `{}` in {}", self.profile, self.region)
    }
}

/// A lock this run holds; renewed in the background until released.
pub struct Lock {
    place: Place,
    clients: Clients,
    state: Arc<Mutex<Held>>,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

/// The ETag this run last wrote, and until when the lease is surely ours.
struct Held {
    etag: String,
    valid_until: Instant,
}

/// What an attempt to write the lock object gave.
enum Put {
    Written(String),
    /// Someone else's write came first (412 or 409).
    Conflict,
}

/// Takes the lock at `place`, waiting for another holder up to `settings.timeout`; `say`
/// prints a line for the user (who holds it, that the run waits, that it took over).
pub async fn acquire(
    c: &Clients,
    place: &Place,
    me: &Holder,
    settings: Settings,
    say: &(dyn Fn(String) + Sync),
) -> Result<Lock> {
    let start = Instant::now();
    let deadline = start + settings.timeout;
    // The ETag we last saw another holder at, and since when we have seen it unchanged.
    let mut seen: Option<(String, Instant)> = None;
    let mut announced: Option<String> = None;
    loop {
        let mine = Holder {
            since: manifest::now_rfc3339(),
            expires_at: now_secs() + settings.lease.as_secs() as i64,
            ..me.clone()
        };
        if let Put::Written(etag) = put(c, place, &mine, Condition::Absent).await? {
            if let Some(lock) = confirm(c, place, &etag, mine, settings).await? {
                return Ok(lock);
            }
            continue;
        }
        let Some((holder, etag)) = read(c, place).await? else {
            continue; // released between our write and our read: try again at once
        };
        let unchanged_for = match &seen {
            Some((e, since)) if *e == etag => since.elapsed(),
            _ => {
                seen = Some((etag.clone(), Instant::now()));
                Duration::ZERO
            }
        };
        if holder.expired() || unchanged_for > settings.lease {
            if let Put::Written(new) = put(c, place, &mine, Condition::Is(etag.clone())).await? {
                say(format!(
                    "took over {} from {}: its lease ran out without renewal",
                    place.name(),
                    holder.describe()
                ));
                if let Some(lock) = confirm(c, place, &new, mine, settings).await? {
                    return Ok(lock);
                }
            }
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            bail!(
                "{} ({}) is held by {}; gave up after {} s (--lock-timeout): wait for that run to finish and rerun, or if it is gone, remove the lock with `cargo xtask unlock --profile {}`",
                place.name(),
                place.url(),
                holder.describe(),
                settings.timeout.as_secs(),
                place.profile
            );
        }
        if announced.as_deref() != Some(etag.as_str()) {
            say(format!(
                "waiting for {}: held by {}, lease ends in {} s; giving up after {} s (--lock-timeout)",
                place.name(),
                holder.describe(),
                holder.lease_left().max(0),
                deadline.saturating_duration_since(now).as_secs()
            ));
            announced = Some(etag);
        }
        tokio::time::sleep(settings.poll().min(deadline - now)).await;
    }
}

/// Reads back a lock just written: it is ours only if the object still carries our ETag
/// (defence against a store whose conditional writes are not atomic).
async fn confirm(c: &Clients, place: &Place, etag: &str, me: Holder, settings: Settings) -> Result<Option<Lock>> {
    let written_at = Instant::now();
    match read(c, place).await? {
        Some((_, now)) if now == etag => {}
        _ => return Ok(None),
    }
    let state = Arc::new(Mutex::new(Held { etag: etag.to_string(), valid_until: written_at + settings.lease }));
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = tokio::spawn(renew(c.clone(), place.clone(), me, state.clone(), lost.clone(), settings));
    Ok(Some(Lock { place: place.clone(), clients: c.clone(), state, lost, renewer }))
}

/// Renews the lease every third of it until the lock is released or lost.
async fn renew(
    c: Clients,
    place: Place,
    me: Holder,
    state: Arc<Mutex<Held>>,
    lost: Arc<AtomicBool>,
    settings: Settings,
) {
    loop {
        tokio::time::sleep(settings.lease / 3).await;
        let etag = state.lock().unwrap_or_else(|e| e.into_inner()).etag.clone();
        let next = Holder { expires_at: now_secs() + settings.lease.as_secs() as i64, ..me.clone() };
        let attempt = Instant::now();
        match put(&c, &place, &next, Condition::Is(etag)).await {
            Ok(Put::Written(etag)) => {
                *state.lock().unwrap_or_else(|e| e.into_inner()) = Held { etag, valid_until: attempt + settings.lease };
            }
            Ok(Put::Conflict) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A failed renewal is tried again; the lease tells whether the lock still holds.
            Err(_) => {}
        }
    }
}

impl Lock {
    /// Fails once the lock is no longer surely this run's: its ETag was replaced, or the
    /// lease ran out without a renewal.
    pub fn ensure_held(&self) -> Result<()> {
        let expired = Instant::now() >= self.state.lock().unwrap_or_else(|e| e.into_inner()).valid_until;
        if self.lost.load(Ordering::SeqCst) || expired {
            bail!(
                "lost {} ({}): it could not be renewed in time or another run took it over; nothing more is published by this run, rerun it",
                self.place.name(),
                self.place.url()
            );
        }
        Ok(())
    }

    /// Stops renewing and removes the lock object if it is still the one this run wrote.
    pub async fn release(self) -> Result<()> {
        self.renewer.abort();
        let etag = self.state.lock().unwrap_or_else(|e| e.into_inner()).etag.clone();
        remove(&self.clients, &self.place, &etag).await
    }

    /// A function that releases the lock from any thread, with its own runtime: what
    /// Ctrl-C runs before the process exits.
    pub fn releaser(&self) -> impl FnOnce() + Send + 'static {
        let (c, place, state) = (self.clients.clone(), self.place.clone(), self.state.clone());
        move || {
            let etag = state.lock().unwrap_or_else(|e| e.into_inner()).etag.clone();
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                let _ = rt.block_on(tokio::time::timeout(Duration::from_secs(5), remove(&c, &place, &etag)));
            }
        }
    }
}

/// What the lock object must be for a write to go ahead.
enum Condition {
    /// No object: `If-None-Match: *`.
    Absent,
    /// The object with this ETag: `If-Match`.
    Is(String),
}

async fn put(c: &Clients, place: &Place, holder: &Holder, cond: Condition) -> Result<Put> {
    let body = serde_json::to_vec_pretty(holder).expect("a holder always serialises");
    let req = c.s3.put_object().bucket(&place.bucket).key(&place.key).content_type("application/json");
    let req = match cond {
        Condition::Absent => req.if_none_match("*"),
        Condition::Is(etag) => req.if_match(etag),
    };
    match req.body(ByteStream::from(body)).send().await {
        Ok(out) => Ok(Put::Written(out.e_tag().unwrap_or_default().to_string())),
        // 412: the condition failed; 409: a concurrent conditional write won; 404: the
        // object we meant to replace is gone.
        Err(e) if matches!(aws::status(&e), Some(412 | 409 | 404)) => Ok(Put::Conflict),
        Err(e) => Err(c.target.explain(&format!("cannot write {} ({})", place.name(), place.url()), e)),
    }
}

/// The lock object and its ETag, or `None` when there is none.
pub async fn read(c: &Clients, place: &Place) -> Result<Option<(Holder, String)>> {
    let Some((found, etag)) = inspect(c, place).await? else { return Ok(None) };
    match found {
        Found::Lock(holder) => Ok(Some((holder, etag))),
        Found::Foreign { error, .. } => Err(error).with_context(|| {
            format!(
                "{} ({}) is not a lock this tool wrote; if no run is publishing, remove it with `cargo xtask unlock --profile {}`",
                place.name(),
                place.url(),
                place.profile
            )
        }),
    }
}

/// What the object at a lock's key holds.
#[derive(Debug)]
pub enum Found {
    /// A lock this tool wrote.
    Lock(Holder),
    /// Anything else (another tool's object, a truncated write, garbage): its bytes, as
    /// text where they are not UTF-8, and why it is no lock.
    Foreign { raw: String, error: serde_json::Error },
}

/// The object at the lock's key, whatever it holds, and its ETag; `None` when there is
/// none. `unlock` shows and removes what [`read`] refuses.
pub async fn inspect(c: &Clients, place: &Place) -> Result<Option<(Found, String)>> {
    let what = || format!("cannot read {} ({})", place.name(), place.url());
    let out = match c.s3.get_object().bucket(&place.bucket).key(&place.key).send().await {
        Ok(o) => o,
        Err(e) if matches!(aws::status(&e), Some(404)) => return Ok(None),
        Err(e) => return Err(c.target.explain(&what(), e)),
    };
    let etag = out.e_tag().unwrap_or_default().to_string();
    let bytes = out.body.collect().await.with_context(what)?.into_bytes();
    let found = match serde_json::from_slice(&bytes) {
        Ok(holder) => Found::Lock(holder),
        Err(error) => Found::Foreign { raw: String::from_utf8_lossy(&bytes).into_owned(), error },
    };
    Ok(Some((found, etag)))
}

/// Deletes the lock object if it still has `etag`.
pub async fn remove(c: &Clients, place: &Place, etag: &str) -> Result<()> {
    match c.s3.delete_object().bucket(&place.bucket).key(&place.key).if_match(etag).send().await {
        Ok(_) => Ok(()),
        Err(e) if matches!(aws::status(&e), Some(412 | 409 | 404)) => {
            bail!("{} ({}) changed hands: it was not removed", place.name(), place.url())
        }
        Err(e) => Err(c.target.explain(&format!("cannot remove {} ({})", place.name(), place.url()), e)),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// 12 hex digits that differ between runs: the time, the process and a stack address hashed.
fn random_id() -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let local = 0u8;
    let seed = format!("{nanos}-{}-{:p}", std::process::id(), &local);
    let digest = Sha256::digest(seed.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_lives_beside_the_zips_one_per_profile_and_region() {
        assert_eq!(Place::new("staging", "eu-west-1", "b", "layers/").key, "layers/.locks/staging/eu-west-1.json");
        assert_eq!(Place::new("prod", "us-east-1", "b", "").key, ".locks/prod/us-east-1.json");
    }

    #[test]
    fn a_holder_names_itself_and_run_ids_differ() {
        let h = Holder::me("publish-all");
        assert!(h.who.contains('@') && h.describe().contains("`publish-all`"), "{h:?}");
        assert_ne!(random_id(), random_id());
        assert!(Holder { expires_at: 0, ..h.clone() }.expired());
        assert!(!Holder { expires_at: now_secs() + 60, ..h }.expired());
    }

    #[test]
    fn polling_is_bounded_by_the_lease() {
        let s = |lease| Settings { timeout: Duration::from_secs(1), lease: Duration::from_secs(lease) };
        assert_eq!(s(1).poll(), Duration::from_millis(250));
        assert_eq!(s(60).poll(), Duration::from_secs(2));
    }
}
