//! One function's update: UpdateFunctionConfiguration with the new layer list, made safe
//! against Lambda as it really behaves.
//!
//! - **An update in progress is waited for.** A function whose `State` is `Pending` or
//!   whose `LastUpdateStatus` is `InProgress` refuses another update (409
//!   ResourceConflictException, "An update is in progress"; the API documents no other
//!   meaning of a 409 for this call), and the SDK does not retry a 409. So before the
//!   call, and again after a 409, GetFunctionConfiguration is
//!   polled (1 s doubling to 8 s) until the function is idle, then the call is made
//!   with the function's fresh RevisionId, only while it still holds the list the
//!   rollout planned from.
//! - **An update counts only once Lambda reports it `Successful`.** As the AWS CLI waiter
//!   `function-updated-v2` does (GetFunction every second, at most 300 times: `Successful`
//!   is done, `Failed` is a failure, `InProgress` is polled again), the function is polled
//!   after the call until `LastUpdateStatus` is `Successful`. Lambda keeps invoking the old
//!   configuration during the update and may still end it `Failed`; reporting `updated`
//!   before that would be a false success. `Failed` is never waited for: it is an error
//!   with the reason Lambda gives.
//! - **A failed call is reconciled before it is reported.** A lost answer (the call took
//!   effect, the client saw the connection drop), a 412 on the SDK's retry of it (the
//!   RevisionId moved with the first attempt), or a 409 after it: the function is read
//!   back, and when it holds exactly the list this rollout set (ARNs in order) and Lambda
//!   reports the update done, it is updated, "confirmed after" the error.
//!
//! Every wait of one function shares one bound, [`DEFAULT_WAIT`] (300 s, the bound of
//! `function-updated-v2`), or `XTASK_ROLLOUT_WAIT` seconds ([`WAIT_VAR`], for tests),
//! announced once per function by a note saying what it waits for. The SDK's own retries
//! of UpdateFunctionConfiguration (a lost answer, a 5xx, throttling) stay on: the call is
//! idempotent (the same list), and the RevisionId keeps a retry from overwriting a change.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;

use crate::aws::Clients;
use crate::rollout::list;

/// How long one function may take, all its waits together, unless [`WAIT_VAR`] says.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// The variable that sets the bound in seconds (tests set a short one).
pub const WAIT_VAR: &str = "XTASK_ROLLOUT_WAIT";
/// The first pause between two polls; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(8);

/// The bound of one function's waits: [`WAIT_VAR`] or [`DEFAULT_WAIT`].
pub fn wait_bound() -> Result<Duration> {
    match xtask::settings::var(WAIT_VAR) {
        Some(v) if !v.trim().is_empty() => {
            let secs: u64 = v.trim().parse().ok().filter(|s| (1..=3600).contains(s)).with_context(|| {
                format!(
                    "invalid {WAIT_VAR}={}: use a number of seconds from 1 to 3600 (default {})",
                    xtask::quote::clip(v),
                    DEFAULT_WAIT.as_secs()
                )
            })?;
            Ok(Duration::from_secs(secs))
        }
        _ => Ok(DEFAULT_WAIT),
    }
}

/// One function to write.
#[derive(Debug, Clone)]
pub struct Write {
    pub client: usize,
    pub region: String,
    pub function: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// What GetFunctionConfiguration says about a function, as far as an update cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    pub layers: Vec<String>,
    pub revision: Option<String>,
    /// `State`: `Active`, `Pending`, `Inactive`, `Failed`.
    pub state: Option<String>,
    /// `LastUpdateStatus`: `Successful`, `InProgress`, `Failed`.
    pub last_update: Option<String>,
    /// Lambda's reason for a `Failed` update or state: `reason (code)`.
    pub reason: Option<String>,
}

/// Whether the function can take an update, from [`Observed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No update in progress.
    Idle,
    /// `State` `Pending` or `LastUpdateStatus` `InProgress`: wait.
    Busy,
    /// Lambda reports the last update, or the function, `Failed`: the reason.
    Failed(String),
}

impl Observed {
    pub fn from_output(c: &GetFunctionConfigurationOutput) -> Observed {
        let both = |reason: Option<&str>, code: Option<&str>| match (reason, code) {
            (None, None) => None,
            (r, c) => Some(format!("{} ({})", r.unwrap_or("no reason given"), c.unwrap_or("no code"))),
        };
        let failed_update = c.last_update_status().is_some_and(|s| s.as_str() == "Failed");
        Observed {
            layers: c.layers().iter().map(|l| l.arn().unwrap_or_default().to_string()).collect(),
            revision: c.revision_id().map(str::to_string),
            state: c.state().map(|s| s.as_str().to_string()),
            last_update: c.last_update_status().map(|s| s.as_str().to_string()),
            reason: if failed_update {
                both(c.last_update_status_reason(), c.last_update_status_reason_code().map(|r| r.as_str()))
            } else {
                both(c.state_reason(), c.state_reason_code().map(|r| r.as_str()))
            },
        }
    }

    /// Busy while `Pending` or `InProgress` (an emulator may report no `LastUpdateStatus`:
    /// then the state alone decides); `Failed` is never waited for.
    pub fn phase(&self) -> Phase {
        let reason = || self.reason.clone().unwrap_or_else(|| "no reason given".into());
        match (self.last_update.as_deref(), self.state.as_deref()) {
            (Some("InProgress"), _) | (_, Some("Pending")) => Phase::Busy,
            (Some("Failed"), _) => Phase::Failed(format!("Lambda reports its last update Failed: {}", reason())),
            (_, Some("Failed")) => Phase::Failed(format!("Lambda reports its state Failed: {}", reason())),
            _ => Phase::Idle,
        }
    }
}

/// Before a call: what to do with the function as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// An update is in progress: wait.
    Wait,
    /// Make the call with this RevisionId.
    Call(Option<String>),
    /// It already holds the new list (an earlier call whose answer was lost): nothing to do.
    Holds,
    /// Do not write: the one-line reason.
    Refuse(String),
}

/// What to do before a call, from the function as it is now and its planned lists.
pub fn before_call(now: &Observed, w: &Write) -> Before {
    match now.phase() {
        Phase::Busy => Before::Wait,
        Phase::Failed(why) => Before::Refuse(format!(
            "{why}; its layers were not changed: fix the function, then run the rollout again"
        )),
        Phase::Idle if now.layers == w.after => Before::Holds,
        Phase::Idle if now.layers != w.before => Before::Refuse(format!(
            "it changed while the rollout waited: it attaches {}, not {} as planned; not changed, run the rollout again",
            list(&now.layers),
            list(&w.before)
        )),
        Phase::Idle => Before::Call(now.revision.clone()),
    }
}

/// After a call (`error`: why it failed, None when it was answered OK): what the function
/// as it is now makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// Lambda is still applying an update: wait.
    Wait,
    /// The function holds the new list and Lambda reports it done; with how it was
    /// confirmed when the call itself failed.
    Updated(Option<String>),
    /// The one-line reason.
    Failed(String),
}

/// The verdict on a function after its call: updated only when it holds exactly the
/// rollout's list (ARNs in order) and no update is in progress or failed.
pub fn after_call(now: &Observed, w: &Write, error: Option<&str>) -> After {
    match now.phase() {
        Phase::Busy => After::Wait,
        Phase::Failed(why) => After::Failed(why),
        Phase::Idle if now.layers == w.after => After::Updated(error.map(|e| format!("confirmed after {e}"))),
        Phase::Idle => After::Failed(match error {
            Some(e) => e.to_string(),
            None => format!(
                "it attaches {}, not what the rollout set ({}): another change won; run the rollout again",
                list(&now.layers),
                list(&w.after)
            ),
        }),
    }
}

/// Whether a failed UpdateFunctionConfiguration is worth waiting for and calling again: a
/// 409 ResourceConflictException, which for this operation means "another operation is in
/// progress" (the API reference's only meaning of it here; AWS's message says "An update
/// is in progress for resource" or "The function is currently in the following state:
/// Pending"). The SDK does not retry it; the wait is bounded like every other.
pub fn in_progress(code: Option<&str>) -> bool {
    code == Some("ResourceConflictException")
}

/// The polls of one function: its deadline, the growing pause, and the note said once.
struct Waiter<'a> {
    c: &'a Clients,
    w: &'a Write,
    bound: Duration,
    deadline: Instant,
    pause: Duration,
    noted: bool,
}

impl Waiter<'_> {
    async fn read(&self) -> Result<Observed> {
        let out =
            self.c.lambda.get_function_configuration().function_name(&self.w.function).send().await.map_err(|e| {
                self.c.target.explain(&format!("cannot read function {} in {}", self.w.function, self.w.region), e)
            })?;
        Ok(Observed::from_output(&out))
    }

    /// Sleeps before the next poll; false when the bound is reached. `what` is the note
    /// (said once per function): what the rollout waits for.
    async fn pause(&mut self, what: &str) -> bool {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if !self.noted {
            self.noted = true;
            xtask::output::note(format_args!(
                "waiting for function {} ({}): {what} (up to {} s)",
                self.w.function,
                self.w.region,
                self.bound.as_secs()
            ));
        }
        tokio::time::sleep(self.pause.min(left)).await;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }

    /// The error of a function still busy at the bound, before its layers were written.
    fn still_busy(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "cannot update the layers of function {} in {}: an update of it was still in progress after {} s, so its layers were not changed; wait for it (`aws lambda wait function-updated-v2 --function-name {} --region {}`), then run the rollout again",
            self.w.function,
            self.w.region,
            self.bound.as_secs(),
            self.w.function,
            self.w.region
        )
    }
}

/// Writes `w.after` to the function and waits until Lambda reports it done: `Ok(None)`
/// updated, `Ok(Some(how))` updated as confirmed after a failed call, `Err` one line
/// naming the function and what to do (the function may hold either list).
pub async fn update(c: &Clients, w: &Write, bound: Duration) -> Result<Option<String>> {
    let mut waiter = Waiter { c, w, bound, deadline: Instant::now() + bound, pause: FIRST_PAUSE, noted: false };
    let name = format!("function {} in {}", w.function, w.region);
    // The last failed call, for a function found holding the new list anyway.
    let mut error: Option<String> = None;
    loop {
        let now = waiter.read().await?;
        let revision = match before_call(&now, w) {
            Before::Call(revision) => revision,
            Before::Holds => break,
            Before::Refuse(why) => anyhow::bail!("cannot update the layers of {name}: {why}"),
            Before::Wait => {
                if waiter.pause("an update is in progress").await {
                    continue;
                }
                if error.is_some() {
                    // A call was made: what the function holds decides, below.
                    break;
                }
                return Err(waiter.still_busy());
            }
        };
        let call = c
            .lambda
            .update_function_configuration()
            .function_name(&w.function)
            .set_layers(Some(w.after.clone()))
            .set_revision_id(revision)
            .send()
            .await;
        match call {
            Ok(_) => break,
            Err(e) => {
                let conflict = in_progress(e.code());
                error = Some(c.target.explain("UpdateFunctionConfiguration failed", e).to_string());
                if !conflict {
                    break;
                }
                // Someone's update (or this rollout's own first attempt, whose answer was
                // lost) is in progress: wait, read the function again, then decide.
                if !waiter.pause("an update is in progress (UpdateFunctionConfiguration answered 409)").await {
                    break;
                }
            }
        }
    }
    // The call took effect or failed: the function as Lambda reports it decides.
    waiter.pause = FIRST_PAUSE;
    loop {
        let now = match waiter.read().await {
            Ok(now) => now,
            Err(read) => match &error {
                Some(e) => {
                    anyhow::bail!("cannot update the layers of {name}: {e} (and reading it back failed: {read:#})")
                }
                None => return Err(read),
            },
        };
        match after_call(&now, w, error.as_deref()) {
            After::Updated(how) => return Ok(how),
            After::Failed(why) => anyhow::bail!("cannot update the layers of {name}: {why}"),
            After::Wait => {
                if !waiter.pause("Lambda is applying the new layers").await {
                    anyhow::bail!(
                        "{name}: Lambda still reports the update InProgress after {} s; it may hold either list: check it with `aws lambda wait function-updated-v2 --function-name {} --region {}`, then `cargo xtask usage`",
                        bound.as_secs(),
                        w.function,
                        w.region
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write() -> Write {
        Write {
            client: 0,
            region: "us-east-1".into(),
            function: "f".into(),
            before: vec!["x:1".into(), "a:1".into()],
            after: vec!["x:1".into(), "a:2".into()],
        }
    }

    fn seen(layers: &[&str], state: &str, last: Option<&str>) -> Observed {
        Observed {
            layers: layers.iter().map(|s| s.to_string()).collect(),
            revision: Some("r2".into()),
            state: Some(state.into()),
            last_update: last.map(str::to_string),
            reason: Some("the role is gone (InvalidRole)".into()),
        }
    }

    #[test]
    fn pending_or_in_progress_is_busy_failed_is_never_waited_for() {
        assert_eq!(seen(&[], "Active", Some("Successful")).phase(), Phase::Idle);
        assert_eq!(seen(&[], "Inactive", Some("Successful")).phase(), Phase::Idle);
        assert_eq!(seen(&[], "Active", None).phase(), Phase::Idle, "an emulator reports no LastUpdateStatus");
        assert_eq!(seen(&[], "Active", Some("InProgress")).phase(), Phase::Busy);
        assert_eq!(seen(&[], "Pending", Some("Successful")).phase(), Phase::Busy);
        let Phase::Failed(why) = seen(&[], "Active", Some("Failed")).phase() else { panic!() };
        assert!(why.contains("last update Failed: the role is gone (InvalidRole)"), "{why}");
        let Phase::Failed(why) = seen(&[], "Failed", None).phase() else { panic!() };
        assert!(why.contains("state Failed"), "{why}");
    }

    #[test]
    fn before_a_call_the_function_must_be_idle_and_still_hold_the_planned_list() {
        let w = write();
        assert_eq!(
            before_call(&seen(&["x:1", "a:1"], "Active", Some("Successful")), &w),
            Before::Call(Some("r2".into()))
        );
        assert_eq!(before_call(&seen(&["x:1", "a:1"], "Pending", None), &w), Before::Wait);
        assert_eq!(before_call(&seen(&["x:1", "a:1"], "Active", Some("InProgress")), &w), Before::Wait);
        // A lost first attempt: the function holds the new list already.
        assert_eq!(before_call(&seen(&["x:1", "a:2"], "Active", Some("Successful")), &w), Before::Holds);
        // The same ARNs in another order are not the planned list.
        let Before::Refuse(why) = before_call(&seen(&["a:1", "x:1"], "Active", Some("Successful")), &w) else {
            panic!()
        };
        assert!(why.contains("changed while the rollout waited") && why.contains("a:1, x:1"), "{why}");
        let Before::Refuse(why) = before_call(&seen(&["x:1", "a:1"], "Active", Some("Failed")), &w) else { panic!() };
        assert!(why.contains("InvalidRole") && why.contains("fix the function"), "{why}");
    }

    #[test]
    fn after_a_call_a_function_holding_the_new_list_is_updated_even_when_the_call_failed() {
        let w = write();
        let lost = "UpdateFunctionConfiguration failed: lost the connection";
        let done = seen(&["x:1", "a:2"], "Active", Some("Successful"));
        assert_eq!(after_call(&done, &w, None), After::Updated(None));
        assert_eq!(after_call(&done, &w, Some(lost)), After::Updated(Some(format!("confirmed after {lost}"))));
        // Still applying: wait, even when it holds the new list (not a success yet).
        assert_eq!(after_call(&seen(&["x:1", "a:2"], "Active", Some("InProgress")), &w, Some(lost)), After::Wait);
        // The call did not take effect: the call's error.
        assert_eq!(
            after_call(&seen(&["x:1", "a:1"], "Active", Some("Successful")), &w, Some(lost)),
            After::Failed(lost.into())
        );
        // Not in the same order: not what the rollout set.
        let After::Failed(why) = after_call(&seen(&["a:2", "x:1"], "Active", Some("Successful")), &w, None) else {
            panic!()
        };
        assert!(why.contains("not what the rollout set (x:1, a:2)"), "{why}");
        // Lambda ended the update Failed: its reason, even with the new list.
        let After::Failed(why) = after_call(&seen(&["x:1", "a:2"], "Active", Some("Failed")), &w, None) else {
            panic!()
        };
        assert!(why.contains("InvalidRole"), "{why}");
    }

    #[test]
    fn only_a_conflict_is_waited_for_and_called_again() {
        assert!(in_progress(Some("ResourceConflictException")));
        // A 412 (the RevisionId moved: the SDK's retry of a call that took effect) is
        // reconciled, not called again; a 5xx or a lost answer was the SDK's to retry.
        assert!(!in_progress(Some("PreconditionFailedException")));
        assert!(!in_progress(Some("ServiceException")));
        assert!(!in_progress(None));
    }
}
