//! The newest ARNs in SSM Parameter Store (a profile's `ssm_parameter`), as Powertools
//! publishes its layers': written on publish, backfilled once for versions recorded before
//! the setting, no SSM call when nothing changed, and `stack --ssm` printing references
//! SAM, Terraform and the CDK resolve. Through the front, to count the calls.

use aws_front::Front;
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;

use crate::emulator::http_client;
use crate::repo::Repo;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no string `{key}` in {v}"))
}

/// The value of an SSM parameter in the emulator's us-east-1, if there is one.
fn parameter(endpoint: &str, name: &str) -> Option<String> {
    let conf = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .http_client(http_client())
        .build();
    let client = aws_sdk_ssm::Client::from_conf(conf);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let got = rt.block_on(client.get_parameter().name(name).send()).ok()?;
    got.parameter().and_then(|p| p.value()).map(str::to_string)
}

#[test]
fn the_newest_arns_go_to_ssm_once_and_stack_prints_references() {
    let env = require_emulator!("the_newest_arns_go_to_ssm_once_and_stack_prints_references");
    let r = Repo::new(&env, &[("a", "six==1.16.0\n"), ("b", "idna==3.10\n")], "m");
    r.f.run(&["bootstrap"]).ok();
    let front = Front::start(&r.endpoint).expect("start aws-front");
    let text = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
    std::fs::write(r.f.path("layers.toml"), text.replace(&r.endpoint, &front.url())).unwrap();
    r.f.stack("api", "layers = [\"a\", \"b\"]\nruntime = \"python3.13\"\n");

    // Published before the profile has ssm_parameter: nothing in SSM.
    let rows = r.f.run(&["publish-all", "--json"]).ok().json();
    assert_eq!(front.counts().op("ssm:PutParameter"), 0);
    r.f.run(&["stack", "api", "--ssm"]).fails_with(&["--ssm", "has no ssm_parameter", "ssm_parameter = "]);

    // The setting: the next run writes each unit's parameter once, publishing nothing.
    let template = format!("/{}/{{layer}}/{{py}}/{{arch}}", r.prefix);
    r.f.set_profile_key("staging", &format!("ssm_parameter = \"{template}\""));
    front.reset();
    let again = r.f.run(&["publish-all", "--json"]).ok().json();
    assert!(again.iter().all(|row| row["status"] == "unchanged"), "{again:?}");
    let counts = front.counts();
    assert_eq!((counts.op("ssm:PutParameter"), counts.op("lambda:PublishLayerVersion")), (2, 0), "{counts:?}");
    for row in &rows {
        let name = format!("/{}/{}/py313/x86_64", r.prefix, s(row, "layer"));
        assert_eq!(parameter(&r.endpoint, &name).as_deref(), Some(s(row, "arn")), "{name}");
    }
    let manifest = r.manifest("staging");
    assert!(manifest["layers"].as_array().unwrap().iter().all(|e| e["ssm_parameter"].is_string()), "{manifest:#}");

    // Nothing new: no SSM call.
    front.reset();
    r.f.run(&["publish-all"]).ok();
    assert_eq!(front.counts().op("ssm:PutParameter"), 0);

    // A new version of one layer moves its parameter.
    std::fs::write(r.f.path("layers/a/requirements.in"), "six==1.17.0\n").unwrap();
    r.f.run(&["lock", "a"]).ok();
    front.reset();
    let moved = r.f.run(&["publish-all", "--json"]).ok().json();
    let a = moved.iter().find(|row| row["layer"] == "a").unwrap();
    assert_eq!((s(a, "status"), a["version"].as_i64()), ("published", Some(2)), "{moved:?}");
    assert_eq!(front.counts().op("ssm:PutParameter"), 1);
    let name_a = format!("/{}/a/py313/x86_64", r.prefix);
    assert_eq!(parameter(&r.endpoint, &name_a).as_deref(), Some(s(a, "arn")));

    // References instead of ARNs, in the formats that resolve them.
    let sam = r.f.run(&["stack", "api", "--ssm", "--format", "sam"]).ok().stdout;
    assert!(sam.contains(&format!("  - \"{{{{resolve:ssm:{name_a}}}}}\"\n")), "{sam}");
    let tf = r.f.run(&["stack", "api", "--ssm", "--format", "terraform"]).ok().stdout;
    assert!(tf.contains(&format!("data \"aws_ssm_parameter\" \"layer_1\" {{\n  name = \"{name_a}\"\n}}")), "{tf}");
    let cdk: Value = serde_json::from_str(&r.f.run(&["stack", "api", "--ssm", "--format", "cdk"]).ok().stdout).unwrap();
    assert_eq!(cdk["layerVersionArnParameters"][0], name_a.as_str());
}

#[test]
fn an_ssm_parameter_template_that_names_no_unit_is_refused() {
    let env = require_emulator!("an_ssm_parameter_template_that_names_no_unit_is_refused");
    let r = Repo::new(&env, &[("a", "six==1.16.0\n")], "m");
    r.f.set_profile_key("staging", "ssm_parameter = \"/layers/{layer}\"");
    r.f.run(&["list"]).fails_with(&["layers.toml", "ssm_parameter", "{arch}"]);
}
