//! The publish lock of a deploy profile in each of the regions a run writes to: taken in
//! the profile's region order (so two runs never wait for each other in a circle), after
//! the region's bucket is checked, each released on Ctrl-C too. Publish, rollout and prune
//! take it; `mod.rs` is the lock object of one region.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::{acquire, Holder, Lock, Place, Settings};
use crate::aws::{bucket, Session};
use xtask::profile::naming;

/// The profile's publish lock in every region (`only`: in these regions), taken in the
/// profile's region order (so two runs never wait for each other in a circle), each
/// released on Ctrl-C too. Publish, rollout and prune take it.
pub async fn lock_regions(session: &Session, timeout: Duration, only: Option<&BTreeSet<String>>) -> Result<Locks> {
    let settings = Settings::new(timeout)?;
    let command: Vec<String> = std::env::args().skip(1).collect();
    let me = Holder::me(&xtask::quote::clip_to(&command.join(" "), 120));
    let say = |line: String| xtask::output::status("lock", line);
    let mut locks = Locks { held: HashMap::new(), _on_interrupt: Vec::new() };
    for c in &session.clients {
        let region = &c.target.region;
        if only.is_some_and(|o| !o.contains(region)) || locks.held.contains_key(region) {
            continue;
        }
        let place =
            Place::new(&session.name, region, &naming::bucket(&session.profile, region), &session.profile.prefix);
        let taken = match bucket::check(c, &place.bucket).await {
            Ok(()) => acquire(c, &place, &me, settings, &say).await,
            Err(e) => Err(e),
        };
        match taken {
            Ok(held) => {
                locks._on_interrupt.push(xtask::interrupt::on_interrupt(held.releaser()));
                locks.held.insert(region.clone(), Arc::new(held));
            }
            Err(e) => {
                locks.release().await;
                return Err(e);
            }
        }
    }
    Ok(locks)
}

/// The locks a run holds, by region.
pub struct Locks {
    pub held: HashMap<String, Arc<Lock>>,
    _on_interrupt: Vec<xtask::interrupt::OnInterrupt>,
}

impl Locks {
    pub fn none() -> Locks {
        Locks { held: HashMap::new(), _on_interrupt: Vec::new() }
    }

    /// Releases every lock; a lock that cannot be released only warns (its lease ends).
    pub async fn release(self) {
        for (region, l) in self.held {
            let Ok(l) = Arc::try_unwrap(l) else { continue };
            if let Err(e) = l.release().await {
                xtask::output::warn(format_args!(
                    "could not release the publish lock in {region} ({e:#}); it expires with its lease"
                ));
            }
        }
    }
}
