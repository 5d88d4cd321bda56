//! The work of one unit in one region once change detection has run: settle an
//! unchanged version (sharing, manifest), or upload, register, verify, share and record a
//! new one. Each job ends as one [`Row`]; its failure never stops the other jobs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};

use super::plan::{self, Newest};
use super::register::{self, Request, Sharing};
use super::{naming, ssm, upload, Row, Status};
use crate::aws::Clients;
use crate::aws::{bucket, Session};
use crate::records;
use crate::s3lock::{Lock, Locks};
use xtask::config::Profile;
use xtask::failure::Failure;
use xtask::profile::changes;
use xtask::profile::manifest::{self, Entry, Recorder};
use xtask::report::BuildReport;
use xtask::runtime::Arch;
use xtask::unit::{self, Context, Unit};

/// A unit's zip in dist/ and the Description its versions get.
#[derive(Debug, Clone)]
pub struct Build {
    pub report: BuildReport,
    pub zip: PathBuf,
    pub description: String,
}

/// Builds a unit, or reuses the current build in dist/.
pub fn build(ctx: &Context, u: &Unit) -> Result<Build> {
    let report = unit::build(ctx, u, false)?.report().clone();
    let packages = naming::main_packages(&u.requirements.lines, &report.packages);
    let description = naming::description(u.layer.description.as_deref(), &packages, &u.fingerprint);
    Ok(Build { report, zip: u.paths.zip.clone(), description })
}

/// What change detection decided for one unit in one region.
pub enum Work {
    /// The newest version carries the local fingerprint.
    Settle(Newest),
    /// Changed or new: the newest version, if any, and the local build.
    Publish(Option<Newest>, Box<Build>),
    /// Detection or the build failed.
    Failed(Failure),
}

/// What every job of a run shares: the profile, whether this is a dry run, the
/// manifest, each region's bucket check (made once, by the first upload that needs it)
/// and the publish locks the run holds.
pub struct Shared {
    profile: Profile,
    dry_run: bool,
    recorder: Arc<Recorder>,
    buckets: HashMap<String, tokio::sync::OnceCell<std::result::Result<(), Failure>>>,
    locks: HashMap<String, Arc<Lock>>,
}

impl Shared {
    pub fn new(session: &Session, dry_run: bool, recorder: Arc<Recorder>, locks: &Locks) -> Shared {
        let buckets = session.profile.regions.iter().map(|r| (r.clone(), tokio::sync::OnceCell::new())).collect();
        Shared { profile: session.profile.clone(), dry_run, recorder, buckets, locks: locks.held.clone() }
    }

    /// Fails unless this run holds the region's publish lock right now.
    fn ensure_locked(&self, region: &str) -> Result<()> {
        match self.locks.get(region) {
            Some(l) => l.ensure_held(),
            None => anyhow::bail!("publishing in {region} without its publish lock: this is a bug in cargo xtask"),
        }
    }

    fn bucket(&self, region: &str) -> String {
        naming::bucket(&self.profile, region)
    }

    async fn check_bucket(&self, c: &Clients) -> Result<()> {
        let region = &c.target.region;
        let bucket = self.bucket(region);
        let cell = self.buckets.get(region).context("region of no client")?;
        let res = cell.get_or_init(|| async { bucket::check(c, &bucket).await.map_err(Failure::new) }).await;
        res.clone().map_err(anyhow::Error::from)
    }
}

/// One unit in one region.
pub struct Job {
    layer: String,
    runtime: String,
    arch: Arch,
    layer_name: String,
    fingerprint: String,
    license: Option<String>,
    clients: Clients,
    sharing: Sharing,
    work: Work,
    shared: Arc<Shared>,
    /// The region's last run stopped half-way: look for a version it published without a
    /// record before publishing (`records::unfinished_key`).
    look_first: bool,
    /// The SSM parameter the newest ARN goes to, when the profile has `ssm_parameter`.
    ssm_parameter: Option<String>,
}

impl Job {
    pub fn new(
        u: &Unit,
        layer_name: String,
        clients: Clients,
        sharing: Sharing,
        work: Work,
        shared: Arc<Shared>,
        look_first: bool,
    ) -> Job {
        Job {
            layer: u.layer.name.clone(),
            runtime: u.runtime.id.to_string(),
            arch: u.arch,
            layer_name,
            fingerprint: u.fingerprint.clone(),
            license: u.layer.license.clone(),
            clients,
            sharing,
            ssm_parameter: shared
                .profile
                .ssm_parameter
                .as_deref()
                .map(|t| naming::ssm_parameter(t, &u.layer.name, u.runtime, u.arch)),
            work,
            shared,
            look_first,
        }
    }

    fn region(&self) -> &str {
        &self.clients.target.region
    }

    /// Does the work; the row says how it went (`cmd/publish.rs` prints it).
    pub async fn run(self) -> Row {
        let res = match &self.work {
            Work::Failed(e) => Err(anyhow::Error::from(e.clone())),
            Work::Settle(n) => self.settle(n, format!("fingerprint matches version {}", n.version)).await,
            Work::Publish(newest, b) => self.publish(newest.as_ref(), b).await,
        };
        res.unwrap_or_else(|e| Row { error: Some(format!("{e:#}")), ..self.row(Status::Failed) })
    }

    fn row(&self, status: Status) -> Row {
        Row {
            layer: self.layer.clone(),
            runtime: Some(self.runtime.clone()),
            arch: Some(self.arch.as_str().to_string()),
            region: Some(self.region().to_string()),
            layer_name: Some(self.layer_name.clone()),
            status,
            version: None,
            arn: None,
            code_sha256: None,
            error: None,
            detail: None,
            changes: None,
        }
    }

    fn entry(
        &self,
        version: i64,
        arn: &str,
        code_sha256: &str,
        published_at: String,
        sbom_key: Option<String>,
    ) -> Entry {
        Entry {
            layer: self.layer.clone(),
            runtime: self.runtime.clone(),
            arch: self.arch.as_str().to_string(),
            region: self.region().to_string(),
            layer_name: self.layer_name.clone(),
            version,
            layer_version_arn: arn.to_string(),
            code_sha256: code_sha256.to_string(),
            fingerprint: self.fingerprint.clone(),
            published_at,
            sbom_key,
            ssm_parameter: None,
        }
    }

    /// Writes the newest ARN to the unit's SSM parameter, when the profile has one and the
    /// entry does not say it was written; the entry to record then says so.
    async fn put_parameter(&self, mut entry: Entry) -> Result<Entry> {
        if let Some(name) = self.ssm_parameter.as_ref().filter(|n| entry.ssm_parameter.as_ref() != Some(*n)) {
            ssm::put(&self.clients, name, &entry.layer_version_arn).await?;
            entry.ssm_parameter = Some(name.clone());
        }
        Ok(entry)
    }

    /// The newest version stays: make sure it is shared as configured and recorded.
    async fn settle(&self, n: &Newest, why: String) -> Result<Row> {
        let recorded = self
            .shared
            .recorder
            .get(&self.layer, &self.runtime, self.arch.as_str(), self.region())
            .filter(|e| e.layer_version_arn == n.arn);
        let code = match (&recorded, &n.code_sha256) {
            (Some(e), _) => e.code_sha256.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => plan::code_sha256(&self.clients, &self.layer_name, n.version).await?,
        };
        if !self.shared.dry_run {
            register::share(&self.clients, &self.layer_name, n.version, &self.sharing, false).await?;
            let entry = recorded.clone().unwrap_or_else(|| {
                let sbom_key = n.record.as_ref().map(|r| r.key.clone());
                self.entry(n.version, &n.arn, &code, manifest::from_lambda_date(&n.created), sbom_key)
            });
            let entry = self.put_parameter(entry).await?;
            if recorded.as_ref() != Some(&entry) {
                self.shared.recorder.record(entry)?;
            }
        }
        Ok(Row {
            version: Some(n.version),
            arn: Some(n.arn.clone()),
            code_sha256: Some(code),
            detail: Some(why),
            ..self.row(Status::Unchanged)
        })
    }

    /// Uploads, publishes, records (in S3, then in the manifest) and shares a new version:
    /// three calls when nothing fails (`PutObject` of the zip, `PublishLayerVersion`,
    /// `PutObject` of the record), plus the sharing the layer asks for.
    async fn publish(&self, newest: Option<&Newest>, b: &Build) -> Result<Row> {
        let local = &b.report.code_sha256;
        let mut remote = None;
        if let Some(n) = newest {
            let code = match &n.code_sha256 {
                Some(c) => c.clone(),
                None => plan::code_sha256(&self.clients, &self.layer_name, n.version).await?,
            };
            if &code == local {
                let mut n = n.clone();
                n.code_sha256 = Some(code);
                return self.settle(&n, format!("same content as version {}", n.version)).await;
            }
            remote = Some(code);
        }
        let bucket = self.shared.bucket(self.region());
        let key = naming::s3_key(&self.shared.profile.prefix, &self.layer_name, &b.report.sha256);
        self.shared.check_bucket(&self.clients).await?;
        if self.shared.dry_run {
            let next = newest.map_or(1, |n| n.version + 1);
            let mut detail = format!("would upload s3://{bucket}/{key} and publish version {next}");
            let changes = match newest {
                Some(n) => {
                    let prefix = &self.shared.profile.prefix;
                    let held = records::held(
                        &self.clients,
                        &bucket,
                        prefix,
                        &self.layer_name,
                        n.record.as_ref(),
                        remote.as_deref(),
                    )
                    .await;
                    let local_packages: Vec<(String, String)> =
                        b.report.packages.iter().map(|p| (p.name.clone(), p.version.clone())).collect();
                    held.map(|h| changes::diff(&h, &local_packages, Some(b.report.unzipped_bytes)))
                }
                None => None,
            };
            if let Some(c) = &changes {
                detail.push_str(&format!(" (against version {}: {c})", newest.map_or(0, |n| n.version)));
            }
            return Ok(Row {
                code_sha256: Some(local.clone()),
                detail: Some(detail),
                changes,
                ..self.row(Status::Planned)
            });
        }
        self.shared.ensure_locked(self.region())?;
        upload::upload(&self.clients, &bucket, &key, &b.zip, b.report.zipped_bytes).await?;
        let req = Request {
            layer_name: self.layer_name.clone(),
            bucket: bucket.clone(),
            key,
            runtimes: vec![self.runtime.clone()],
            arch: self.arch.as_str().to_string(),
            license: self.license.clone().or_else(|| xtask::sbom::license_info(&b.report)),
            description: b.description.clone(),
            fingerprint: self.fingerprint.clone(),
            code_sha256: local.clone(),
        };
        let after = newest.map_or(0, |n| n.version);
        let found = match self.look_first {
            true => register::find(&self.clients, &req, after).await,
            false => None,
        };
        let (p, status, detail) = match found {
            Some(p) => {
                let why = format!("version {} was published by a run that stopped before recording it", p.version);
                (p, Status::Unchanged, Some(why))
            }
            None => {
                self.shared.ensure_locked(self.region())?;
                (register::publish(&self.clients, &req, after).await?, Status::Published, None)
            }
        };
        if let Err(e) = register::verify(&p, local) {
            return Err(register::withdraw(&self.clients, &req, &p, e).await);
        }
        let after = |what: &str| format!("published {} but could not {what}; a rerun finishes it", p.arn);
        // The record first: it is what the next run reads, whatever happens to this one.
        let published_at = manifest::now_rfc3339();
        let record_key =
            records::key(&self.shared.profile.prefix, &self.layer_name, p.version, &self.fingerprint, &b.report.sha256);
        let facts = records::Published {
            arn: &p.arn,
            region: self.region(),
            code_sha256: &p.code_sha256,
            published_at: &published_at,
        };
        let body = records::body(Some(xtask::sbom::cyclonedx(&b.report)), &facts);
        records::write(&self.clients, &bucket, &record_key, body).await.with_context(|| after("record it"))?;
        let entry = self.entry(p.version, &p.arn, &p.code_sha256, published_at, Some(record_key));
        let (entry, parameter) = match self.put_parameter(entry.clone()).await {
            Ok(e) => (e, Ok(())),
            Err(e) => (entry, Err(e)),
        };
        self.shared.recorder.record(entry).with_context(|| after("record it in the manifest"))?;
        parameter.with_context(|| after("write its SSM parameter"))?;
        register::share(&self.clients, &self.layer_name, p.version, &self.sharing, true)
            .await
            .with_context(|| after("share it"))?;
        Ok(Row {
            version: Some(p.version),
            arn: Some(p.arn),
            code_sha256: Some(p.code_sha256),
            detail,
            ..self.row(status)
        })
    }
}
