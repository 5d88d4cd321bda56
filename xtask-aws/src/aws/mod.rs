//! The one AWS session of a command: a deploy profile's settings and the S3, Lambda and
//! STS clients of each of its regions ([`Session`]), the SDK configuration they share (HTTP
//! client, credentials, and the retry and timeout policy of `policy.rs`), and SDK errors turned into one-line messages that say what
//! to fix ([`Target::explain`]). `identity.rs` checks whose credentials these are,
//! `confirm.rs` asks before a write, `bucket.rs` checks a region's bucket.
//!
//! The deploy profile alone decides where requests go: its `aws_profile` (credentials from
//! that profile only, never from ambient keys), its regions (set explicitly, so
//! `AWS_REGION` is ignored) and its `endpoint_url` (or none, so `AWS_ENDPOINT_URL` is
//! ignored too).
//!
//! One explicit exception, for CI: `XTASK_AWS_CREDENTIALS=env` takes the credentials from
//! the environment variables alone (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, as `aws-actions/configure-aws-credentials` sets them after an OIDC
//! login), whatever `aws_profile` says; regions and endpoint still come from the profile.

pub mod bucket;
pub mod confirm;
pub mod identity;
pub mod policy;
pub mod storage;

pub use policy::{is_transient, Timeouts};

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};

use xtask::config::Profile;
use xtask::profile::naming;
use xtask::unit::{Context, Unit};

/// The variable that switches credentials to the environment (see the module doc).
pub const CREDENTIALS_VAR: &str = "XTASK_AWS_CREDENTIALS";

/// Where the credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// As the deploy profile says: its `aws_profile`, or the default chain without one.
    Profile,
    /// `XTASK_AWS_CREDENTIALS=env`: the `AWS_*` environment variables and nothing else.
    Environment,
}

impl CredentialSource {
    /// From `XTASK_AWS_CREDENTIALS`: unset, empty or `profile`, or `env`.
    pub fn from_env() -> anyhow::Result<CredentialSource> {
        CredentialSource::parse(xtask::settings::var(CREDENTIALS_VAR))
    }

    fn parse(value: Option<&str>) -> anyhow::Result<CredentialSource> {
        match value.map(str::trim) {
            None | Some("" | "profile") => Ok(CredentialSource::Profile),
            Some("env") => Ok(CredentialSource::Environment),
            Some(other) => anyhow::bail!(
                "invalid {CREDENTIALS_VAR}={other}: use `env` (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY only) or `profile` (the deploy profile's aws_profile, the default)"
            ),
        }
    }
}

/// Where requests of one region go, for error messages.
#[derive(Debug, Clone)]
pub struct Target {
    /// The deploy profile's name in layers.toml.
    pub profile: String,
    /// The AWS profile credentials come from (none with `XTASK_AWS_CREDENTIALS=env`).
    pub aws_profile: Option<String>,
    pub source: CredentialSource,
    pub endpoint: Option<String>,
    pub region: String,
    /// Whether the profile needs `--yes` to write (`confirm = true`).
    pub confirm: bool,
}

/// The S3, Lambda and STS clients of one region.
#[derive(Debug, Clone)]
pub struct Clients {
    pub target: Target,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub sts: aws_sdk_sts::Client,
    /// SSM Parameter Store: where a profile with `ssm_parameter` writes the newest ARNs.
    pub ssm: aws_sdk_ssm::Client,
    /// The session's timeouts, for the calls that override them (`policy.rs`).
    pub timeouts: Timeouts,
}

impl Clients {
    pub async fn new(
        profile_name: &str,
        profile: &Profile,
        region: &str,
        source: CredentialSource,
        timeouts: Timeouts,
    ) -> Clients {
        let sdk = sdk_config(profile, region, source, &timeouts).await;
        let endpoint = profile.endpoint_url.clone();
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk);
        s3.set_endpoint_url(endpoint.clone());
        s3.set_force_path_style(Some(endpoint.is_some()));
        let mut lambda = aws_sdk_lambda::config::Builder::from(&sdk);
        lambda.set_endpoint_url(endpoint.clone());
        let mut sts = aws_sdk_sts::config::Builder::from(&sdk);
        sts.set_endpoint_url(endpoint.clone());
        let mut ssm = aws_sdk_ssm::config::Builder::from(&sdk);
        ssm.set_endpoint_url(endpoint.clone());
        Clients {
            target: Target {
                profile: profile_name.to_string(),
                aws_profile: profile.aws_profile.clone().filter(|_| source == CredentialSource::Profile),
                source,
                endpoint,
                region: region.to_string(),
                confirm: profile.confirm,
            },
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
            timeouts,
        }
    }
}

/// Runs the AWS part of a command: the one place a command crosses into async (each
/// `cmd/*.rs` calls it once). Blocking work inside it (builds, checks, prompts, file
/// locks) runs on this thread while the runtime's workers keep the publish lock renewed.
pub fn run<T>(command: impl Future<Output = Result<T>>) -> Result<T> {
    let rt =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    rt.block_on(command)
}

/// One deploy profile ready to use: its settings and the clients of each of its regions.
pub struct Session {
    pub name: String,
    pub profile: Profile,
    pub clients: Vec<Clients>,
}

impl Session {
    /// Resolves the profile (an unknown one is an error listing the known ones), warns
    /// about ambient AWS settings it overrides, and makes the clients.
    pub async fn open(ctx: &Context, name: &str) -> Result<Session> {
        let profile = ctx.config.profile(name)?.clone();
        naming::check_profile(name, &profile)?;
        let source = CredentialSource::from_env()?;
        let timeouts = Timeouts::from_env()?;
        for w in ambient_warnings(name, &profile, source) {
            ctx.warn_once(w);
        }
        let mut clients = Vec::new();
        for region in &profile.regions {
            clients.push(Clients::new(name, &profile, region, source, timeouts).await);
        }
        Ok(Session { name: name.to_string(), profile, clients })
    }
}

/// Runs futures at most `jobs` at a time, started in the order given, and returns their
/// outputs in that order.
pub async fn bounded<T, F>(jobs: usize, futures: Vec<F>) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    bounded_with(jobs, futures, Arc::new(|f: F| f)).await
}

/// [`bounded`] over `items`, each one's future made by `make` only when it may start: a
/// future not yet started holds no memory (an async publish job's state is kilobytes, and
/// a run may hold thousands of targets).
async fn bounded_with<I, T, F, M>(jobs: usize, items: Vec<I>, make: Arc<M>) -> Vec<T>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
    M: Fn(I) -> F + Send + Sync + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut handles = Vec::with_capacity(items.len());
    for item in items {
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let make = make.clone();
        handles.push(tokio::spawn(async move {
            let _permit = permit;
            make(item).await
        }));
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("a publish task panicked"));
    }
    out
}

/// Runs `make(item)` for `(region, item)` pairs with at most `jobs` in flight per region,
/// the regions in parallel, and returns the outputs in the order given; each future is
/// made when it may start. Bounding each region, not the whole run, keeps every region's
/// request rate under AWS's per-region limits while a run over many regions still
/// finishes in the time of one.
pub async fn bounded_per_region<I, T, F, M>(jobs: usize, items: Vec<(usize, I)>, make: M) -> Vec<T>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
    M: Fn(I) -> F + Send + Sync + 'static,
{
    let n = items.len();
    let make = Arc::new(make);
    let mut regions: std::collections::BTreeMap<usize, Vec<(usize, I)>> = std::collections::BTreeMap::new();
    for (i, (region, item)) in items.into_iter().enumerate() {
        regions.entry(region).or_default().push((i, item));
    }
    let drivers: Vec<_> = regions
        .into_values()
        .map(|list| {
            let make = make.clone();
            let (at, items): (Vec<usize>, Vec<I>) = list.into_iter().unzip();
            async move { at.into_iter().zip(bounded_with(jobs, items, make).await).collect::<Vec<_>>() }
        })
        .collect();
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for (i, t) in bounded(drivers.len(), drivers).await.into_iter().flatten() {
        out[i] = Some(t);
    }
    out.into_iter().map(|t| t.expect("every future ran")).collect()
}

/// Plans every named layer; a layer that cannot be planned (a cycle in its `requires`
/// included) is named at once and returned with its error.
pub fn plan_units(ctx: &Context, names: &[String]) -> (Vec<Unit>, Vec<(String, anyhow::Error)>) {
    let (mut units, mut failed) = (Vec::new(), Vec::new());
    for name in names {
        match xtask::unit::plan(ctx, name) {
            Ok(u) => units.extend(u),
            Err(e) => {
                xtask::output::error(format_args!("{e:#}"));
                failed.push((name.clone(), e));
            }
        }
    }
    (units, failed)
}

/// Every layer of the repo planned, for a command that must know all their published
/// names (what it keeps or moves depends on them): a layer that cannot be planned stops
/// it, and `nothing` says what was not done (`deleted`, `changed`).
pub fn plan_repo(ctx: &Context, nothing: &str) -> Result<Vec<Unit>> {
    let names = ctx.repo.layer_names()?;
    let (units, failed) = plan_units(ctx, &names);
    if !failed.is_empty() {
        anyhow::bail!("{} layer(s) cannot be planned (see above), so their published names are unknown: fix them first (nothing was {nothing})", failed.len());
    }
    Ok(units)
}

/// The HTTP client of every SDK client: the SDK's default one (hyper 1 + rustls, HTTP/1.1
/// and HTTP/2 by ALPN, the platform's native trust roots via rustls-native-certs, so
/// `SSL_CERT_FILE` and the system store work, proxies from `HTTPS_PROXY`/`NO_PROXY` as
/// the default does with the latest behavior version), with ring instead of aws-lc as
/// rustls' crypto: the SDK's `default-https-client` feature is off because aws-lc's C
/// build dominates a first compile. Plain `http://` endpoints (emulators) work too.
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// The shared SDK settings of one region. With `aws_profile`, credentials come from that
/// profile of the shared config files (SSO and credential_process included) and from
/// nowhere else. Without it, the default chain runs with the `default` profile (not
/// `AWS_PROFILE`); against an emulator, keys from the environment or dummy ones are used.
/// With [`CredentialSource::Environment`], only the environment's keys are used.
async fn sdk_config(profile: &Profile, region: &str, source: CredentialSource, timeouts: &Timeouts) -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(policy::retry_config())
        .timeout_config(timeouts.config())
        .region(Region::new(region.to_string()));
    let loader = match (&profile.aws_profile, &profile.endpoint_url) {
        _ if source == CredentialSource::Environment => loader
            .profile_name("default")
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new()),
        (Some(p), _) => loader.profile_name(p).credentials_provider(
            // Its own provider config, as the builder's default, but with our HTTP client
            // for SSO, STS and IMDS (there is no default one: see `https_client`).
            ProfileFileCredentialsProvider::builder()
                .configure(&ProviderConfig::without_region().with_http_client(https_client()))
                .profile_name(p)
                .build(),
        ),
        (None, Some(_)) => loader.profile_name("default").credentials_provider(
            CredentialsProviderChain::first_try(
                "Environment",
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            )
            .or_else("Emulator", Credentials::new("emulator", "emulator", None, None, "emulator")),
        ),
        (None, None) => loader.profile_name("default"),
    };
    loader.load().await
}

impl Target {
    /// Who is calling, for messages: `profile staging (AWS profile layers-staging)`.
    pub fn who(&self) -> String {
        match (&self.aws_profile, self.source) {
            (_, CredentialSource::Environment) => {
                format!("profile `{}` (credentials from the environment, {CREDENTIALS_VAR}=env)", self.profile)
            }
            (Some(p), _) => format!("profile `{}` (AWS profile `{p}`)", self.profile),
            (None, _) => format!("profile `{}`", self.profile),
        }
    }

    /// The command that creates the profile's buckets, `--yes` included when it needs it.
    pub fn bootstrap_command(&self) -> String {
        let yes = if self.confirm { " --yes" } else { "" };
        format!("cargo xtask bootstrap --profile {}{yes}", self.profile)
    }

    /// Where requests go: the endpoint, or AWS in the region.
    pub fn place(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("the endpoint {e}"),
            None => format!("AWS in {}", self.region),
        }
    }

    /// What to run when credentials are missing or expired.
    fn login_hint(&self) -> String {
        if self.source == CredentialSource::Environment {
            return format!(
                "{CREDENTIALS_VAR}=env takes credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN only: set them (in GitHub Actions with aws-actions/configure-aws-credentials) or unset {CREDENTIALS_VAR}"
            );
        }
        match &self.aws_profile {
            Some(p) => {
                format!("run `aws sso login --profile {p}` (or configure the AWS profile `{p}` in ~/.aws/config)")
            }
            None => format!(
                "set aws_profile for profile `{}` in layers.toml, or provide credentials in the environment",
                self.profile
            ),
        }
    }

    /// Turns an SDK error into one line: `what`, then why and what to do about it.
    pub fn explain<E>(&self, what: &str, err: SdkError<E, HttpResponse>) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let detail = chain(&err);
        let reason = match &err {
            SdkError::TimeoutError(_) => format!("{} did not answer in time; {}", self.place(), self.network_hint()),
            SdkError::DispatchFailure(_) if is_credentials_error(&detail) => self.credentials_reason(&detail),
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
                format!("cannot reach {}; {} ({detail})", self.place(), self.network_hint())
            }
            SdkError::DispatchFailure(d) if d.is_other() => {
                format!("lost the connection to {}; {} ({detail})", self.place(), self.network_hint())
            }
            SdkError::ServiceError(_) => self.service_reason(err.code(), err.message(), status(&err), &detail),
            _ => detail.clone(),
        };
        anyhow::anyhow!("{what}: {reason}")
    }

    fn network_hint(&self) -> &'static str {
        if self.endpoint.is_some() {
            "is the emulator running? (see docs/publishing.md: \"Try it without AWS\")"
        } else {
            "check the network connection"
        }
    }

    fn credentials_reason(&self, detail: &str) -> String {
        let lower = detail.to_ascii_lowercase();
        let what =
            if lower.contains("sso") { "the SSO session is missing or expired" } else { "no usable AWS credentials" };
        format!("{what}: {} ({detail})", self.login_hint())
    }

    fn service_reason(&self, code: Option<&str>, message: Option<&str>, status: Option<u16>, detail: &str) -> String {
        let message = message.map(one_line).unwrap_or_else(|| detail.to_string());
        match code.unwrap_or("") {
            "Throttling" | "ThrottlingException" | "TooManyRequestsException" | "SlowDown" | "RequestLimitExceeded" => {
                format!("throttled by AWS beyond the SDK's retries; rerun later or lower --jobs ({message})")
            }
            "ExpiredToken" | "ExpiredTokenException" | "TokenRefreshRequired" => {
                format!("the credentials of {} have expired: {}", self.who(), self.login_hint())
            }
            "InvalidClientTokenId" | "UnrecognizedClientException" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
                format!("the credentials of {} were rejected: {} ({message})", self.who(), self.login_hint())
            }
            "AccessDenied" | "AccessDeniedException" | "Forbidden" => {
                format!("access denied to {}; grant its role this permission ({message})", self.who())
            }
            "" if status == Some(403) => format!("access denied to {}", self.who()),
            "" => format!("HTTP {} from {} ({message})", status.unwrap_or(0), self.place()),
            code => format!("{code}: {message}"),
        }
    }
}

/// The HTTP status of a service error, when there was a response.
pub fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

pub(crate) fn is_credentials_error(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    ["credential", "sso", "profile file", "could not find profile", "not defined"].iter().any(|k| lower.contains(k))
}

/// The messages of an error and its sources, joined by `: `, skipping any a previous one
/// already contains (the SDK's `DisplayErrorContext` adds a Debug dump we do not want).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let msg = one_line(&e.to_string());
        if !msg.is_empty() && !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Collapses white space, so a multi-line SDK message stays on the error's one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Warnings for ambient settings the deploy profile overrides.
pub fn ambient_warnings(profile_name: &str, profile: &Profile, source: CredentialSource) -> Vec<String> {
    let env = |k: &str| xtask::settings::var(k).map(str::to_string);
    let mut out = Vec::new();
    if let Some(v) = env("AWS_PROFILE").filter(|_| source == CredentialSource::Profile) {
        if profile.aws_profile.as_deref() != Some(v.as_str()) {
            let uses =
                profile.aws_profile.as_deref().map(|p| format!("AWS profile `{p}`")).unwrap_or("no AWS profile".into());
            out.push(format!("AWS_PROFILE={v} is ignored: deploy profile `{profile_name}` uses {uses}"));
        }
    }
    for k in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(v) = env(k) {
            if !profile.regions.contains(&v) {
                out.push(format!(
                    "{k}={v} is ignored: deploy profile `{profile_name}` publishes to {}",
                    profile.regions.join(", ")
                ));
            }
        }
    }
    if profile.aws_profile.is_some() && source == CredentialSource::Profile && env("AWS_ACCESS_KEY_ID").is_some() {
        out.push(format!(
            "AWS_ACCESS_KEY_ID is ignored: deploy profile `{profile_name}` takes its credentials from its AWS profile"
        ));
    }
    if let Some(v) = env("AWS_ENDPOINT_URL") {
        if profile.endpoint_url.as_deref() != Some(v.as_str()) {
            out.push(format!("AWS_ENDPOINT_URL={v} is ignored: only endpoint_url in layers.toml is used"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bounded_per_region_makes_each_future_when_it_may_start_and_keeps_the_order() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        // made: futures made and not yet finished, per region; the most seen at once.
        let made: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
        let most: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
        let items: Vec<(usize, usize)> = (0..300).map(|i| (i % 3, i)).collect();
        let (m, w) = (made.clone(), most.clone());
        let out = bounded_per_region(4, items, move |i: usize| {
            let r = i % 3;
            let now = m[r].fetch_add(1, SeqCst) + 1;
            w[r].fetch_max(now, SeqCst);
            let m = m.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                m[r].fetch_sub(1, SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(out, (0..300).map(|i| i * 2).collect::<Vec<_>>());
        for r in 0..3 {
            let most = most[r].load(SeqCst);
            assert!((1..=4).contains(&most), "region {r}: {most} futures made at once, at most 4 may be");
        }
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
    }

    #[test]
    fn credential_source_is_explicit() {
        assert_eq!(CredentialSource::parse(None).unwrap(), CredentialSource::Profile);
        assert_eq!(CredentialSource::parse(Some("")).unwrap(), CredentialSource::Profile);
        assert_eq!(CredentialSource::parse(Some("env")).unwrap(), CredentialSource::Environment);
        let err = CredentialSource::parse(Some("1")).unwrap_err().to_string();
        assert!(err.contains("XTASK_AWS_CREDENTIALS=1") && err.contains("`env`"), "{err}");
    }

    #[test]
    fn credential_failures_are_recognised() {
        assert!(is_credentials_error("dispatch failure: other: failed to load credentials: the SSO token has expired"));
        assert!(!is_credentials_error("dispatch failure: io error: connection refused"));
    }
}

#[cfg(test)]
mod settings_check {
    #[test]
    fn the_ambient_aws_variables_it_warns_about_are_listed_settings() {
        let text = include_str!("mod.rs");
        let body = &text[text.find("pub fn ambient_warnings").unwrap()..];
        let body = &body[..body.find("\n}\n").unwrap()];
        let mut found = 0;
        for (at, _) in body.match_indices("\"AWS_") {
            let name: String = body[at + 1..].chars().take_while(|c| *c != '"').collect();
            if !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                continue; // a message, not a name
            }
            assert!(xtask::settings::is_listed(&name), "{name} is read but not in settings::VARS");
            found += 1;
        }
        assert!(found >= 4, "the scan is blind");
    }
}
