//! The one retry and timeout policy of every AWS call, and how a failure is classed.
//!
//! AWS throttles (Lambda 429 TooManyRequestsException, S3 503 SlowDown), loses answers
//! and stalls connections. Every client gets:
//! - the SDK's **adaptive** retry mode (exponential backoff with jitter, plus a client-side
//!   rate limiter per region that slows down once AWS throttles), with [`MAX_ATTEMPTS`]
//!   attempts instead of the default 3;
//! - a **connect** timeout, a **read** timeout per attempt (no byte for that long is a
//!   stall: the attempt fails and is retried), an **attempt** timeout and an **operation**
//!   timeout, the total time budget of one call with all its retries, so a call never
//!   waits past the publish lock's lease renewals and never hangs.
//!
//! The read timeout is [`TIMEOUT_VAR`] seconds (default 30): raise it on a slow link, tests
//! lower it. The other timeouts derive from it.
//!
//! PublishLayerVersion is the exception: a retry after a lost answer would publish a
//! duplicate, so the SDK does not retry it ([`no_retries`]); `publish/register.rs` retries
//! only what [`took_no_effect`] and adopts what a lost answer published.

use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// The variable that sets the read timeout of one attempt, in seconds.
pub const TIMEOUT_VAR: &str = "XTASK_AWS_TIMEOUT";
/// The read timeout without [`TIMEOUT_VAR`].
const DEFAULT_READ: Duration = Duration::from_secs(30);
/// Attempts per call (the first included) for the calls the SDK retries.
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The timeouts of a session, from [`TIMEOUT_VAR`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// No byte of an answer for this long: the attempt stalled.
    pub read: Duration,
}

impl Timeouts {
    pub fn from_env() -> Result<Timeouts> {
        Timeouts::parse(xtask::settings::var(TIMEOUT_VAR))
    }

    fn parse(value: Option<&str>) -> Result<Timeouts> {
        let read = match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => DEFAULT_READ,
            Some(v) => {
                v.parse::<f64>().ok().filter(|s| (0.1..=3600.0).contains(s)).map(Duration::from_secs_f64).with_context(
                    || format!("invalid {TIMEOUT_VAR}={v}: use a number of seconds from 0.1 to 3600 (default 30)"),
                )?
            }
        };
        Ok(Timeouts { read })
    }

    /// Connecting takes at most this long (a third of the read timeout, 1 to 10 s).
    pub fn connect(&self) -> Duration {
        (self.read / 3).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }

    /// One attempt of an ordinary call (lists, small reads and writes).
    pub fn attempt(&self) -> Duration {
        self.read * 2
    }

    /// One call with all its retries: the budget after which it gives up.
    pub fn operation(&self) -> Duration {
        self.read * 10
    }

    /// One attempt of PublishLayerVersion, which copies the zip from S3 before it answers.
    pub fn publish(&self) -> Duration {
        self.read * 4
    }

    /// One upload of `bytes`: the ordinary attempt plus the time at 256 KiB/s, the slowest
    /// link this assumes; the budget allows three such attempts.
    pub fn upload(&self, bytes: u64) -> (Duration, Duration) {
        let attempt = self.attempt() + Duration::from_secs(bytes / (256 * 1024));
        (attempt, attempt * 3)
    }

    /// The configuration every client starts from.
    pub fn config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect())
            .read_timeout(self.read)
            .operation_attempt_timeout(self.attempt())
            .operation_timeout(self.operation())
            .build()
    }
}

/// The first call of a session (who the credentials are): an endpoint that cannot be
/// reached at all is said at once, after the SDK's standard 3 attempts, not after the
/// patience that throttling deserves.
pub fn first_contact() -> aws_sdk_sts::config::Builder {
    aws_sdk_sts::config::Builder::default().retry_config(RetryConfig::standard().with_max_attempts(3))
}

/// The retry configuration of every client.
pub fn retry_config() -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(MAX_BACKOFF)
}

/// PublishLayerVersion's configuration: no SDK retries (see the module doc) and a longer
/// attempt, since Lambda copies the zip before it answers.
pub fn no_retries(t: &Timeouts) -> aws_sdk_lambda::config::Builder {
    aws_sdk_lambda::config::Builder::default().retry_config(RetryConfig::disabled()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(t.connect())
            .read_timeout(t.publish())
            .operation_attempt_timeout(t.publish())
            .operation_timeout(t.publish())
            .build(),
    )
}

/// An upload's configuration: the attempt and budget grow with the file's size.
pub fn upload(t: &Timeouts, bytes: u64) -> aws_sdk_s3::config::Builder {
    let (attempt, budget) = t.upload(bytes);
    aws_sdk_s3::config::Builder::default().timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(t.connect())
            .read_timeout(t.read.max(attempt / 2))
            .operation_attempt_timeout(attempt)
            .operation_timeout(budget)
            .build(),
    )
}

/// The error codes AWS throttles with.
const THROTTLED: &[&str] =
    &["Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded"];

/// Whether AWS refused the call for its rate: it did not take effect.
pub fn is_throttled<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    matches!(err, SdkError::ServiceError(_)) && err.code().is_some_and(|c| THROTTLED.contains(&c))
}

/// Whether a failure may pass if tried again: no answer, a timeout, throttling, or a
/// server error.
pub fn is_transient<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => {
            d.is_io() || d.is_timeout() || (d.is_other() && !super::is_credentials_error(&super::chain(err)))
        }
        SdkError::ServiceError(_) => is_throttled(err) || super::status(err).is_some_and(|s| s >= 500),
        _ => false,
    }
}

/// Whether a failed call certainly did not take effect, so sending it again cannot do it
/// twice: AWS throttled it, or the connection was never made. A lost answer, a timeout
/// after sending, or a server error may have taken effect.
pub fn took_no_effect<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(_) => is_throttled(err),
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            let detail = super::chain(err).to_ascii_lowercase();
            detail.contains("connection refused") || detail.contains("client error (connect)")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_derive_from_one_setting() {
        let t = Timeouts::parse(None).unwrap();
        assert_eq!(t.read, DEFAULT_READ);
        assert_eq!((t.connect(), t.attempt(), t.operation()), (Duration::from_secs(10), t.read * 2, t.read * 10));
        let fast = Timeouts::parse(Some(" 1.5 ")).unwrap();
        assert_eq!((fast.read, fast.connect()), (Duration::from_millis(1500), Duration::from_secs(1)));
        let (attempt, budget) = t.upload(256 * 1024 * 100);
        assert_eq!(
            (attempt, budget),
            (t.attempt() + Duration::from_secs(100), (t.attempt() + Duration::from_secs(100)) * 3)
        );
        for bad in ["0", "abc", "-1", "99999"] {
            let err = Timeouts::parse(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(&format!("{TIMEOUT_VAR}={bad}")), "{err}");
        }
    }

    #[test]
    fn the_retry_mode_is_adaptive_with_more_attempts() {
        let r = retry_config();
        assert_eq!(r.mode(), aws_sdk_s3::config::retry::RetryMode::Adaptive);
        assert_eq!(r.max_attempts(), MAX_ATTEMPTS);
    }
}
