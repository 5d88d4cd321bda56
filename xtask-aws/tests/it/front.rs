//! The front of the emulator (`aws-front`) through the real SDK clients: pages with real
//! markers, lagging lists, throttling the SDK retries, lost and stalled answers, and exact
//! counts of the calls by operation. The front runs in this process, one per test, in
//! front of the shared emulator; each test names its layers uniquely.

use std::io::Write;
use std::time::{Duration, Instant};

use aws_front::{Fault, Faults, Front, Rule};
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LayerVersionContentInput;

use crate::common::unique_suffix;
use crate::emulator::{http_client, Emulator};

/// The emulator directly and through a new front of it.
struct Setup {
    front: Front,
    /// The SDK clients through the front (default retry policy).
    via: Emulator,
    /// The SDK clients straight to the emulator, to set up and to read back.
    emu: Emulator,
    layer: String,
}

fn setup(endpoint: &str) -> Setup {
    let front = Front::start(endpoint).expect("start aws-front");
    let via = Emulator::new(&front.url(), "us-east-1");
    Setup { via, emu: Emulator::new(endpoint, "us-east-1"), layer: format!("front{}", unique_suffix()), front }
}

fn zip() -> Blob {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file("python/front_probe.py", zip::write::SimpleFileOptions::default()).unwrap();
    z.write_all(b"X = 1\n").unwrap();
    Blob::new(z.finish().unwrap().into_inner())
}

/// Publishes a version of `layer` through `client`; its number.
fn publish(e: &Emulator, client: &aws_sdk_lambda::Client, layer: &str) -> Result<i64, String> {
    let content = LayerVersionContentInput::builder().zip_file(zip()).build();
    e.rt.block_on(client.publish_layer_version().layer_name(layer).content(content).send())
        .map(|o| o.version())
        .map_err(|e| format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)))
}

/// Every version of `layer` as ListLayerVersions pages them through `e`, in order.
fn listed_versions(e: &Emulator, layer: &str) -> Vec<i64> {
    let mut versions = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..100 {
        let out =
            e.rt.block_on(e.lambda.list_layer_versions().layer_name(layer).set_marker(marker.clone()).send()).unwrap();
        versions.extend(out.layer_versions().iter().map(|v| v.version()));
        marker = out.next_marker().map(str::to_string);
        if marker.is_none() {
            return versions;
        }
    }
    panic!("ListLayerVersions of {layer} did not end after 100 pages: {versions:?}");
}

/// The version ListLayers shows for `layer` (None: the layer is not listed).
fn listed_latest(e: &Emulator, layer: &str) -> Option<i64> {
    let out = e.rt.block_on(e.lambda.list_layers().send()).unwrap();
    out.layers()
        .iter()
        .find(|l| l.layer_name() == Some(layer))
        .map(|l| l.latest_matching_version().expect("a listed layer has its latest version").version())
}

#[test]
fn list_layer_versions_in_pages_of_two_returns_every_version_once() {
    let env = require_emulator!("front::list_layer_versions_in_pages_of_two_returns_every_version_once");
    let s = setup(env.endpoint.as_deref().unwrap());
    for _ in 0..5 {
        publish(&s.emu, &s.emu.lambda, &s.layer).unwrap();
    }
    s.front.set(Faults { page_size: Some(2), ..Faults::default() });
    assert_eq!(listed_versions(&s.via, &s.layer), [5, 4, 3, 2, 1]);
    assert_eq!(s.front.counts().op("lambda:ListLayerVersions"), 3, "{:?}", s.front.counts());
    // The SDK's own paginator follows the markers too.
    let pages = s.via.rt.block_on(async {
        let mut p = s.via.lambda.list_layer_versions().layer_name(&s.layer).into_paginator().send();
        let mut n = 0;
        while let Some(page) = p.next().await {
            assert!(page.unwrap().layer_versions().len() <= 2);
            n += 1;
        }
        n
    });
    assert_eq!(pages, 3);
}

#[test]
fn a_version_published_through_the_front_is_listed_after_the_lag() {
    let env = require_emulator!("front::a_version_published_through_the_front_is_listed_after_the_lag");
    let s = setup(env.endpoint.as_deref().unwrap());
    let lag = 3.0;
    s.front.set(Faults { list_lag_seconds: lag, ..Faults::default() });
    publish(&s.emu, &s.emu.lambda, &s.layer).unwrap();
    let published = Instant::now();
    assert_eq!(publish(&s.via, &s.via.lambda, &s.layer), Ok(2));
    let fresh = format!("{}-fresh", s.layer);
    assert_eq!(publish(&s.via, &s.via.lambda, &fresh), Ok(1));

    assert_eq!(listed_versions(&s.via, &s.layer), [1], "version 2 is hidden from ListLayerVersions");
    assert_eq!(listed_latest(&s.via, &s.layer), Some(1), "ListLayers shows the version before");
    assert_eq!(listed_latest(&s.via, &fresh), None, "a layer with only hidden versions is not listed");
    assert_eq!(listed_versions(&s.emu, &s.layer), [2, 1], "the emulator has it");
    // Not lagged: GetLayerVersion reads its own write.
    assert_eq!(s.via.version(&s.layer, 2).version(), 2);

    let wait = Duration::from_secs_f64(lag + 0.2).saturating_sub(published.elapsed());
    std::thread::sleep(wait);
    assert_eq!(listed_versions(&s.via, &s.layer), [2, 1], "listed {lag} s after its publish");
    assert_eq!(listed_latest(&s.via, &s.layer), Some(2));
    assert_eq!(listed_latest(&s.via, &fresh), Some(1));
}

#[test]
fn a_throttle_every_fifth_call_is_retried_by_the_sdk() {
    let env = require_emulator!("front::a_throttle_every_fifth_call_is_retried_by_the_sdk");
    let s = setup(env.endpoint.as_deref().unwrap());
    publish(&s.emu, &s.emu.lambda, &s.layer).unwrap();
    s.front.set(Faults {
        rules: vec![Rule::new("lambda:ListLayerVersions", Fault::Throttle).every(5)],
        ..Faults::default()
    });
    for _ in 0..10 {
        assert_eq!(listed_versions(&s.via, &s.layer), [1]);
    }
    // Calls 5 and 10 throttled, each retried once: 10 answers in 12 calls.
    let c = s.front.counts();
    assert_eq!((c.op("lambda:ListLayerVersions"), c.fault("throttle"), c.total), (12, 2, 12), "{c:?}");
}

#[test]
fn a_lost_publish_fails_client_side_but_the_version_exists() {
    let env = require_emulator!("front::a_lost_publish_fails_client_side_but_the_version_exists");
    let s = setup(env.endpoint.as_deref().unwrap());
    s.front.set(Faults {
        rules: vec![Rule::new("lambda:PublishLayerVersion", Fault::Lose).times(1)],
        ..Faults::default()
    });
    // As xtask publishes: no retries for PublishLayerVersion.
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client())
        .region(Region::new("us-east-1"))
        .endpoint_url(s.front.url())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .build();
    let once = aws_sdk_lambda::Client::from_conf(conf);
    let err = publish(&s.via, &once, &s.layer).unwrap_err();
    assert!(!err.contains("service error"), "the answer was lost, not an error answer: {err}");
    assert_eq!(s.emu.versions(&s.layer), [1], "the lost call took effect");
    // The rule is spent: the next publish is answered.
    assert_eq!(publish(&s.via, &once, &s.layer), Ok(2));
    let c = s.front.counts();
    assert_eq!((c.op("lambda:PublishLayerVersion"), c.fault("lose")), (2, 1), "{c:?}");
}

#[test]
fn a_stall_shorter_than_the_timeout_is_slow_and_the_counts_are_exact() {
    let env = require_emulator!("front::a_stall_shorter_than_the_timeout_is_slow_and_the_counts_are_exact");
    let s = setup(env.endpoint.as_deref().unwrap());
    publish(&s.emu, &s.emu.lambda, &s.layer).unwrap();
    s.front.set(Faults {
        rules: vec![Rule::new("lambda:GetLayerVersion", Fault::Stall { seconds: 0.8 })],
        ..Faults::default()
    });
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client())
        .region(Region::new("us-east-1"))
        .endpoint_url(s.front.url())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .timeout_config(TimeoutConfig::builder().read_timeout(Duration::from_secs(5)).build())
        .build();
    let lambda = aws_sdk_lambda::Client::from_conf(conf);
    let start = Instant::now();
    let out = s.via.rt.block_on(lambda.get_layer_version().layer_name(&s.layer).version_number(1).send()).unwrap();
    let took = start.elapsed();
    assert_eq!(out.version(), 1);
    assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(listed_versions(&s.via, &s.layer), [1]);
    let c = s.front.counts();
    let ops: Vec<(&str, u64)> = c.operations.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(ops, [("lambda:GetLayerVersion", 1), ("lambda:ListLayerVersions", 1)]);
    assert_eq!((c.total, c.fault("stall"), c.regions["us-east-1"]), (2, 1, 2), "{c:?}");
    s.front.reset();
    assert_eq!(s.front.counts().total, 0);
}
