//! Integration tests of `cargo xtask publish`, `publish-all`, `status` and `bootstrap`: the
//! real binary against the S3 + Lambda + STS emulator (moto in server mode) that
//! `scripts/test.sh` starts, checked through the real Lambda SDK client.
//!
//! The emulator is shared by every test (and by every run of the suite), so each test
//! gives its layers a unique name prefix through the profiles' `layer_name`.

use crate::common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::emulator::Emulator;
use crate::repo::Repo;
use common::{Run, TestEnv};
use serde_json::Value;

/// A [`Repo`] whose layer names start with `t`; no bucket yet (some tests make it).
fn repo(env: &TestEnv, layers: &[(&str, &str)]) -> Repo {
    Repo::new(env, layers, "t")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

/// (layer, status) of every row, in output order.
fn statuses(rows: &[Value]) -> Vec<(String, String)> {
    rows.iter().map(|r| (s(r, "layer").to_string(), s(r, "status").to_string())).collect()
}

fn row<'a>(rows: &'a [Value], layer: &str) -> &'a Value {
    rows.iter().find(|r| r["layer"] == layer).unwrap_or_else(|| panic!("no row for {layer} in {rows:?}"))
}

impl Repo {
    /// The build report in dist/ of a row's unit.
    fn dist_report(&self, row: &Value) -> Value {
        let tag = s(row, "runtime").replace("python", "py").replace('.', "");
        let layer = s(row, "layer");
        let text = std::fs::read_to_string(self.f.path(&format!("dist/{layer}/{layer}-{tag}-{}.json", s(row, "arch"))))
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The manifest lists exactly `layers`, each at the newest version the emulator holds,
    /// with its ARN and CodeSha256, sorted, in stable text.
    fn assert_manifest_matches(&self, profile: &str, layers: &[&str]) {
        let m = self.manifest(profile);
        assert_eq!(m["profile"], profile);
        let entries = m["layers"].as_array().unwrap();
        let names: Vec<&str> = entries.iter().map(|e| s(e, "layer")).collect();
        assert_eq!(names, layers, "manifest layers (sorted):\n{m:#}");
        let emu = &self.emu;
        for e in entries {
            let name = s(e, "layer_name");
            let newest = *emu.versions(name).last().unwrap();
            assert_eq!(e["version"], newest, "{name}: manifest is not at the newest version\n{m:#}");
            let v = emu.version(name, newest);
            assert_eq!(v.layer_version_arn(), Some(s(e, "layer_version_arn")));
            assert_eq!(v.content().unwrap().code_sha256(), Some(s(e, "code_sha256")));
            assert!(v.description().unwrap().contains(&format!("fp:{}", s(e, "fingerprint"))), "{v:?}");
            let at = s(e, "published_at");
            assert!(at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "not RFC 3339 UTC: {at}");
        }
    }
}

#[test]
fn publish_creates_version_1_then_nothing_then_only_the_changed_layer() {
    let env = require_emulator!("publish_creates_version_1_then_nothing_then_only_the_changed_layer");
    let r = repo(&env, &[("six", "six==1.16.0\n"), ("idna", "idna==3.10\n")]);
    r.f.write(
        "layers/idna/layer.toml",
        "description = \"Internationalized domain names\"\nlicense = \"BSD-3-Clause\"\n",
    );
    let boot = r.f.run(&["bootstrap", "--json"]).ok().json();
    let bucket = s(&boot[0], "bucket").to_string();
    let emu = &r.emu;

    let dry = r.f.run(&["publish-all", "--dry-run", "--json"]).ok();
    assert_eq!(statuses(&dry.json()), [("idna".into(), "planned".into()), ("six".into(), "planned".into())]);
    assert!(!r.f.path("published").exists(), "a dry run wrote the manifest");
    assert!(emu.layers_named(&r.prefix).is_empty(), "a dry run published");

    let first = r.f.run(&["publish-all", "--json"]).ok();
    let rows = first.json();
    assert_eq!(statuses(&rows), [("idna".into(), "published".into()), ("six".into(), "published".into())]);
    for (row, license) in [(row(&rows, "six"), "MIT"), (row(&rows, "idna"), "BSD-3-Clause")] {
        let name = s(row, "layer_name");
        assert_eq!(row["version"], 1);
        assert_eq!(emu.versions(name), [1]);
        let v = emu.version(name, 1);
        let runtimes: Vec<&str> = v.compatible_runtimes().iter().map(|r| r.as_str()).collect();
        assert_eq!(runtimes, [s(row, "runtime")]);
        let archs: Vec<&str> = v.compatible_architectures().iter().map(|a| a.as_str()).collect();
        assert_eq!(archs, ["x86_64"]);
        assert_eq!(v.license_info(), Some(license));
        let local = r.dist_report(row);
        assert_eq!(v.content().unwrap().code_sha256(), Some(s(&local, "code_sha256")));
        assert_eq!(row["code_sha256"], local["code_sha256"]);
        let description = v.description().unwrap();
        assert!(
            description.len() <= 256 && description.contains(&format!("fp:{}", s(&local, "fingerprint"))),
            "{description}"
        );
        assert!(first.stderr.contains(s(row, "arn")), "the ARN is not printed:\n{}", first.stderr);
    }
    let idna_description = emu.version(s(row(&rows, "idna"), "layer_name"), 1).description().unwrap().to_string();
    assert!(idna_description.starts_with("Internationalized domain names | idna==3.10 | fp:"), "{idna_description}");
    r.assert_manifest_matches("staging", &["idna", "six"]);
    assert!(!r.f.path("published/.staging.journal").exists(), "the run left its journal unfolded");
    // Each version's record is its SBOM, naming the version, at the key the manifest says.
    for e in r.manifest("staging")["layers"].as_array().unwrap() {
        let local = r.dist_report(e);
        let key = s(e, "sbom_key");
        let tail = format!(
            "/.records/{}/0000000001.{}.{}.cdx.json",
            s(e, "layer_name"),
            s(&local, "fingerprint"),
            s(&local, "sha256")
        );
        assert!(key.ends_with(&tail), "{e}");
        let got = emu.rt.block_on(emu.s3.get_object().bucket(&bucket).key(key).send());
        let body =
            emu.rt.block_on(got.unwrap_or_else(|e| panic!("no record at s3://{bucket}/{key}: {e:?}")).body.collect());
        let sbom: serde_json::Value = serde_json::from_slice(&body.unwrap().into_bytes()).unwrap();
        assert_eq!(sbom["bomFormat"], "CycloneDX");
        assert_eq!(sbom["metadata"]["properties"][0]["value"], e["layer_version_arn"], "{sbom}");
        assert!(sbom["components"].as_array().is_some_and(|c| !c.is_empty()), "{sbom}");
    }
    let manifest_text = std::fs::read_to_string(r.f.path("published/staging.json")).unwrap();

    let second = r.f.run(&["publish-all", "--json"]).ok();
    assert_eq!(statuses(&second.json()), [("idna".into(), "unchanged".into()), ("six".into(), "unchanged".into())]);
    assert!(!second.stderr.contains("building"), "an unchanged layer was built:\n{}", second.stderr);
    assert_eq!(
        std::fs::read_to_string(r.f.path("published/staging.json")).unwrap(),
        manifest_text,
        "an unchanged run rewrote the manifest"
    );

    r.f.write("layers/six/requirements.txt", "six==1.17.0\n");
    let third = r.f.run(&["publish-all", "--json"]).ok();
    let rows3 = third.json();
    assert_eq!(statuses(&rows3), [("idna".into(), "unchanged".into()), ("six".into(), "published".into())]);
    assert_eq!(row(&rows3, "six")["version"], 2);
    assert_eq!(emu.versions(s(row(&rows3, "six"), "layer_name")), [1, 2]);
    assert_eq!(emu.versions(s(row(&rows3, "idna"), "layer_name")), [1]);
    r.assert_manifest_matches("staging", &["idna", "six"]);

    let status = r.f.run(&["status", "--json"]).ok();
    for st in status.json() {
        assert_eq!(st["status"], "unchanged", "{st}");
        assert_eq!(st["arn"], row(&rows3, s(&st, "layer"))["arn"]);
    }
    r.f.write("layers/idna/requirements.txt", "idna==3.9\n");
    let changed = r.f.run(&["status", "--json"]).ok().json();
    assert_eq!(row(&changed, "idna")["status"], "changed");
    assert_eq!(row(&changed, "six")["status"], "unchanged");
}

#[test]
fn same_content_under_a_new_fingerprint_publishes_nothing() {
    let env = require_emulator!("same_content_under_a_new_fingerprint_publishes_nothing");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.f.run(&["bootstrap"]).ok();
    r.f.run(&["publish", "six"]).ok();
    // The layer's description is part of the fingerprint but not of the zip: the content
    // check (CodeSha256 of the newest version) must find it unchanged.
    r.f.write("layers/six/layer.toml", "description = \"Python 2 and 3 compatibility\"\n");
    let run = r.f.run(&["publish", "six", "--json"]).ok();
    let rows = run.json();
    assert_eq!(statuses(&rows), [("six".into(), "unchanged".into())]);
    assert!(s(&rows[0], "detail").contains("same content as version 1"), "{}", rows[0]);
    assert_eq!(r.emu.versions(s(&rows[0], "layer_name")), [1]);
}

#[test]
fn public_layer_is_shared_on_the_new_version_and_a_private_one_has_no_policy() {
    let env = require_emulator!("public_layer_is_shared_on_the_new_version_and_a_private_one_has_no_policy");
    let r = repo(&env, &[("pub", "six==1.16.0\n"), ("priv", "idna==3.10\n")]);
    r.f.write("layers/pub/layer.toml", "public = true\n");
    r.f.run(&["bootstrap", "--profile", "local"]).ok();
    let emu = &r.emu;
    let rows = r.f.run(&["publish-all", "--profile", "local", "--json"]).ok().json();
    let (pub_name, priv_name) =
        (s(row(&rows, "pub"), "layer_name").to_string(), s(row(&rows, "priv"), "layer_name").to_string());
    assert_public(&emu.policy(&pub_name, 1).expect("the public layer has no policy"));
    assert_eq!(emu.policy(&priv_name, 1), None, "the private layer has a policy");

    // The version just published is the one shared, not version 1.
    r.f.write("layers/pub/requirements.txt", "six==1.17.0\n");
    let rows = r.f.run(&["publish", "pub", "--profile", "local", "--json"]).ok().json();
    assert_eq!(rows[0]["version"], 2);
    assert_public(&emu.policy(&pub_name, 2).expect("version 2 is not shared"));
    // A rerun does not add the statement twice.
    r.f.run(&["publish", "pub", "--profile", "local"]).ok();
    assert_eq!(emu.policy(&pub_name, 2).unwrap()["Statement"].as_array().unwrap().len(), 1);
}

fn assert_public(policy: &Value) {
    let st = &policy["Statement"].as_array().unwrap()[0];
    assert_eq!(st["Principal"], "*", "{policy}");
    assert_eq!(st["Action"], "lambda:GetLayerVersion", "{policy}");
    assert_eq!(st["Effect"], "Allow", "{policy}");
}

#[test]
fn public_layer_stays_private_where_the_profile_disallows_it() {
    let env = require_emulator!("public_layer_stays_private_where_the_profile_disallows_it");
    let r = repo(&env, &[("pub", "six==1.16.0\n")]);
    r.f.write("layers/pub/layer.toml", "public = true\n");
    r.f.run(&["bootstrap"]).ok();
    let run = r.f.run(&["publish", "pub", "--json"]).ok();
    assert!(run.stderr.contains("does not allow public sharing"), "{}", run.stderr);
    assert_eq!(r.emu.policy(s(&run.json()[0], "layer_name"), 1), None);
}

#[test]
fn production_without_yes_refuses_and_writes_nothing() {
    let env = require_emulator!("production_without_yes_refuses_and_writes_nothing");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.f.run(&["bootstrap", "--profile", "production"]).fails_with(&["production", "--yes"]);
    r.f.run(&["publish", "six", "--profile", "production"]).fails_with(&["production", "--yes"]);
    let run = r.f.run(&["publish-all", "--profile", "production", "--json"]).fails_with(&["production", "--yes"]);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", run.stderr);
    assert!(!r.f.path("published").exists() && !r.f.path("dist").exists(), "something was written");
    assert!(r.emu.layers_named(&r.prefix).is_empty(), "something was published");
    // Staging, the default, was never touched either; with --yes production works.
    r.f.run(&["bootstrap", "--profile", "production", "--yes"]).ok();
    let rows = r.f.run(&["publish", "six", "--profile", "production", "--yes", "--json"]).ok().json();
    assert_eq!(rows[0]["status"], "published");
    assert!(r.f.path("published/production.json").exists() && !r.f.path("published/staging.json").exists());
}

#[test]
fn unknown_profile_is_one_line_naming_the_known_ones() {
    let env = require_emulator!("unknown_profile_is_one_line_naming_the_known_ones");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.f.run(&["publish", "six", "--profile", "prod"]).fails_with(&[
        "unknown profile `prod`",
        "staging",
        "production",
        "local",
    ]);
}

#[test]
fn ambient_aws_profile_and_region_do_not_redirect() {
    let env = require_emulator!("ambient_aws_profile_and_region_do_not_redirect");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.f.set_profile_key("staging", "aws_profile = \"layers-it\"");
    // The fixture points AWS_CONFIG_FILE at this path. The ambient profile cannot produce
    // credentials at all, and names another region.
    r.f.write(
        "aws-config-absent",
        "[profile layers-it]\naws_access_key_id = testing\naws_secret_access_key = testing\n\n\
         [profile elsewhere]\ncredential_process = false\nregion = eu-central-1\n",
    );
    let ambient = |args: &[&str]| {
        let mut c = r.f.cmd(args);
        c.env("AWS_PROFILE", "elsewhere").env("AWS_REGION", "eu-central-1").env("AWS_DEFAULT_REGION", "eu-central-1");
        c.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
        Run::from(c.output().unwrap(), args)
    };
    ambient(&["bootstrap"]).ok();
    let run = ambient(&["publish", "six", "--json"]).ok();
    assert!(
        run.stderr.contains("AWS_PROFILE=elsewhere is ignored")
            && run.stderr.contains("AWS_REGION=eu-central-1 is ignored"),
        "{}",
        run.stderr
    );
    let row = &run.json()[0];
    assert!(s(row, "arn").starts_with("arn:aws:lambda:us-east-1:"), "{row}");
    assert_eq!(r.emu.versions(s(row, "layer_name")), [1]);
    assert_eq!(Emulator::new(&r.endpoint, "eu-central-1").versions(s(row, "layer_name")), Vec::<i64>::new());
}

#[test]
fn wrong_account_id_refuses_naming_both_accounts() {
    let env = require_emulator!("wrong_account_id_refuses_naming_both_accounts");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.f.run(&["bootstrap"]).ok();
    r.f.set_profile_key("staging", "account_id = \"111122223333\"");
    r.f.run(&["publish-all"]).fails_with(&["wrong AWS account", "111122223333", "123456789012"]);
    assert!(!r.f.path("published").exists() && !r.f.path("dist").exists(), "something was written");
    assert!(r.emu.layers_named(&r.prefix).is_empty(), "something was published");
}

#[test]
fn missing_bucket_and_unreachable_endpoint_are_one_line_errors() {
    let env = require_emulator!("missing_bucket_and_unreachable_endpoint_are_one_line_errors");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    r.f.run(&["publish", "six"]).fails_with(&["does not exist", "cargo xtask bootstrap --profile staging"]);
    assert!(r.emu.layers_named(&r.prefix).is_empty());
    let text = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
    std::fs::write(r.f.path("layers.toml"), text.replace(&r.endpoint, "http://127.0.0.1:9")).unwrap();
    r.f.run(&["publish", "six"]).fails_with(&[
        "cannot reach the endpoint http://127.0.0.1:9",
        "emulator running",
        "docs/publishing.md",
    ]);
}

#[test]
fn two_regions_get_a_bucket_and_a_version_each() {
    let env = require_emulator!("two_regions_get_a_bucket_and_a_version_each");
    let r = repo(&env, &[("six", "six==1.16.0\n")]);
    let add_profile = |name: &str, bucket: &str| {
        let text = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
        let profile = format!(
            "\n[profiles.{name}]\nregions = [\"us-east-1\", \"eu-west-1\"]\nbucket = \"{bucket}\"\nendpoint_url = \"{}\"\nlayer_name = \"{}-{{layer}}-{{py}}-{{arch}}\"\n",
            r.endpoint, r.prefix
        );
        std::fs::write(r.f.path("layers.toml"), text + &profile).unwrap();
    };
    add_profile("multi", &format!("{}-{{region}}", r.prefix));
    add_profile("onebucket", &r.prefix);
    r.f.run(&["bootstrap", "--profile", "onebucket"]).fails_with(&["bucket per region", "{region}"]);

    let created = r.f.run(&["bootstrap", "--profile", "multi", "--json"]).ok().json();
    let buckets: Vec<(&str, &str, bool)> =
        created.iter().map(|b| (s(b, "region"), s(b, "bucket"), b["created"] == true)).collect();
    let (east, west) = (format!("{}-us-east-1", r.prefix), format!("{}-eu-west-1", r.prefix));
    assert_eq!(buckets, [("us-east-1", east.as_str(), true), ("eu-west-1", west.as_str(), true)]);
    let again = r.f.run(&["bootstrap", "--profile", "multi", "--json"]).ok().json();
    assert!(again.iter().all(|b| b["created"] == false), "{again:?}");

    let rows = r.f.run(&["publish", "six", "--profile", "multi", "--json"]).ok().json();
    let regions: Vec<(&str, &str)> = rows.iter().map(|r| (s(r, "region"), s(r, "status"))).collect();
    assert_eq!(regions, [("eu-west-1", "published"), ("us-east-1", "published")]);
    for row in &rows {
        let region = s(row, "region");
        assert!(s(row, "arn").starts_with(&format!("arn:aws:lambda:{region}:")), "{row}");
        assert_eq!(Emulator::new(&r.endpoint, region).versions(s(row, "layer_name")), [1]);
    }
    let m = r.manifest("multi");
    let regions: Vec<&str> = m["layers"].as_array().unwrap().iter().map(|e| s(e, "region")).collect();
    assert_eq!(regions, ["eu-west-1", "us-east-1"]);
}

#[test]
fn connection_cut_mid_publish_all_then_a_rerun_converges_without_duplicates() {
    let env = require_emulator!("connection_cut_mid_publish_all_then_a_rerun_converges_without_duplicates");
    let r = repo(&env, &[("a", "six==1.16.0\n"), ("b", "idna==3.10\n"), ("c", "six==1.17.0\n")]);
    r.f.run(&["bootstrap"]).ok();
    let upstream: SocketAddr = r.endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(upstream);
    let text = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
    std::fs::write(r.f.path("layers.toml"), text.replace(&r.endpoint, &proxy.endpoint())).unwrap();

    // The first PublishLayerVersion reaches the emulator, its answer never comes back,
    // and the connection stays down for the rest of the run.
    let first = r.f.run(&["publish-all", "--jobs", "1", "--json"]);
    assert_ne!(first.code, Some(0), "the cut went unnoticed:\n{}", first.stderr);
    assert!(proxy.was_cut(), "the proxy never saw a publish:\n{}", first.stderr);
    let rows = first.json();
    assert!(rows.iter().all(|r| r["status"] == "failed"), "{rows:?}");
    // The cut one says its answer was lost; the others that the connection (or, with it,
    // the publish lock) is gone.
    let connection = |e: &str| {
        e.contains("cannot reach the endpoint")
            || e.contains("lost the connection to the endpoint")
            || e.contains("lost the publish lock")
    };
    assert!(rows.iter().all(|r| connection(s(r, "error"))), "{rows:?}");
    assert!(rows.iter().any(|r| s(r, "error").contains("its answer was lost")), "{rows:?}");

    proxy.restore();
    let second = r.f.run(&["publish-all", "--json"]).ok();
    let rows = second.json();
    let emu = &r.emu;
    for row in &rows {
        assert_eq!(emu.versions(s(row, "layer_name")), [1], "duplicate versions for {row}");
    }
    // The version whose answer was lost is adopted as it is, not published again.
    assert_eq!(rows.iter().filter(|r| r["status"] == "unchanged").count(), 1, "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "unchanged" || r["status"] == "published"), "{rows:?}");
    r.assert_manifest_matches("staging", &["a", "b", "c"]);
    let third = r.f.run(&["publish-all", "--json"]).ok();
    assert!(third.json().iter().all(|r| r["status"] == "unchanged"), "{}", third.stdout);
}

/// A loopback TCP proxy to the emulator that the test controls: it forwards until the
/// first PublishLayerVersion request passes, then drops every answer and, shortly after,
/// every connection, and refuses new ones until [`Proxy::restore`].
struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    /// Set when the trigger request passed: answers are dropped, new connections refused.
    tripped: AtomicBool,
    /// Whether the trigger is armed.
    armed: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        state.armed.store(true, Ordering::SeqCst);
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if st.tripped.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                st.conns.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (c2, s2, st1, st2) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap(), st.clone(), st.clone());
                std::thread::spawn(move || pump(client, s2, st1, true));
                std::thread::spawn(move || pump(server, c2, st2, false));
            }
        });
        Proxy { addr, state }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn was_cut(&self) -> bool {
        self.state.tripped.load(Ordering::SeqCst)
    }

    fn restore(&self) {
        self.state.armed.store(false, Ordering::SeqCst);
        self.state.tripped.store(false, Ordering::SeqCst);
    }
}

impl ProxyState {
    fn trip(self: &Arc<Self>) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.tripped.store(true, Ordering::SeqCst);
            let st = self.clone();
            std::thread::spawn(move || {
                // Long enough for the rest of the request to reach the emulator.
                std::thread::sleep(Duration::from_millis(500));
                for c in st.conns.lock().unwrap().drain(..) {
                    let _ = c.shutdown(Shutdown::Both);
                }
            });
        }
    }
}

/// Copies one direction of a connection. Requests are scanned line by line for
/// `POST .../layers/NAME/versions`; answers are dropped once the proxy tripped.
fn pump(mut from: TcpStream, mut to: TcpStream, st: Arc<ProxyState>, request: bool) {
    let mut buf = [0u8; 16 * 1024];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if request {
            for &b in &buf[..n] {
                if b == b'\n' {
                    let l = String::from_utf8_lossy(&line);
                    if l.starts_with("POST /2018-10-31/layers/") && l.contains("/versions HTTP/") {
                        st.trip();
                    }
                    line.clear();
                } else if line.len() < 4096 {
                    line.push(b);
                }
            }
        } else if st.tripped.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[test]
fn a_unit_that_fails_its_checks_is_refused_and_no_check_overrides() {
    let env = require_emulator!("a_unit_that_fails_its_checks_is_refused_and_no_check_overrides");
    // pandas without its numpy layer: the closure and the import check both fail.
    let r = repo(
        &env,
        &[
            ("pd", "pandas==2.3.3\npython-dateutil==2.9.0.post0\npytz==2025.2\ntzdata==2025.2\nsix==1.17.0\n"),
            ("six", "six==1.16.0\n"),
        ],
    );
    r.f.run(&["bootstrap"]).ok();
    let run = r.f.run(&["publish-all", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let rows = run.json();
    assert_eq!(statuses(&rows), [("pd".into(), "failed".into()), ("six".into(), "published".into())]);
    let err = s(row(&rows, "pd"), "error");
    assert!(err.contains("refused") && err.contains("numpy") && err.contains("--no-check"), "{err}");
    assert!(r.emu.layers_named(&format!("{}-pd-", r.prefix)).is_empty(), "a failing unit was published");

    let forced = r.f.run(&["publish", "pd", "--no-check", "--json"]).ok();
    assert_eq!(statuses(&forced.json()), [("pd".into(), "published".into())]);
}

#[test]
fn dry_run_and_status_say_which_packages_and_how_much_size_a_publish_changes() {
    let env = require_emulator!("dry_run_and_status_say_which_packages_and_how_much_size_a_publish_changes");
    let r = repo(&env, &[("web", "six==1.16.0\nidna==3.10\n")]);
    r.f.run(&["bootstrap"]).ok();
    r.f.run(&["publish-all"]).ok();
    std::fs::write(r.f.path("layers/web/requirements.in"), "six==1.17.0\ncertifi==2024.8.30\n").unwrap();
    r.f.run(&["lock", "web"]).ok();

    // Before building: status reads the lock's pins against the published SBOM.
    let status = r.f.run(&["status", "--json"]).ok();
    let rows = status.json();
    let changes = &row(&rows, "web")["changes"]["packages"];
    let expect = serde_json::json!([
        { "name": "certifi", "from": null, "to": "2024.8.30" },
        { "name": "idna", "from": "3.10", "to": null },
        { "name": "six", "from": "1.16.0", "to": "1.17.0" }
    ]);
    assert_eq!(*changes, expect, "{rows:?}");
    let text = r.f.run(&["status"]).ok().stderr;
    assert!(text.contains("+certifi 2024.8.30, -idna 3.10, six 1.16.0 -> 1.17.0"), "{text}");

    // The dry run builds and adds the size.
    let dry = r.f.run(&["publish-all", "--dry-run", "--json"]).ok().json();
    let web = row(&dry, "web");
    assert_eq!(s(web, "status"), "planned");
    assert_eq!(web["changes"]["packages"], expect, "{web}");
    assert!(web["changes"]["published_bytes"].as_u64().is_some() && web["changes"]["local_bytes"].as_u64().is_some());
    assert!(
        s(web, "detail")
            .contains("(against version 1: +certifi 2024.8.30, -idna 3.10, six 1.16.0 -> 1.17.0; unzipped "),
        "{web}"
    );
    assert_eq!(r.emu.versions(s(web, "layer_name")), [1], "a dry run published");
}
