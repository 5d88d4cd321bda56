//! `layers.local.toml` seen by the AWS commands: publish-all and status agree on this
//! machine's build image and emulator endpoint without flags; a mistyped layer name
//! names the closest one in publish, status and usage too.

use serde_json::Value;

use crate::repo::Repo;

#[test]
fn publish_all_then_status_agree_on_the_local_image_and_endpoint() {
    let env = require_emulator!("publish_all_then_status_agree_on_the_local_image_and_endpoint");
    let r = Repo::new(&env, &[("six", "six==1.16.0\n")], "lo");
    // The committed files name an image that is not there and an endpoint nothing answers.
    let text = std::fs::read_to_string(r.f.path("layers.toml")).unwrap();
    let team = text
        .replace(&format!("image = \"{}\"", env.image), "image = \"layer-repo-test/absent-team-image:{runtime}\"")
        .replacen(&format!("endpoint_url = \"{}\"", r.endpoint), "endpoint_url = \"http://127.0.0.1:9\"", 1);
    assert!(!team.contains(&env.image) && team.contains("127.0.0.1:9"), "{team}");
    r.f.write("layers.toml", &team);
    r.f.write(
        "layers.local.toml",
        &format!(
            "image = \"{0}\"\ncheck_image = \"{0}\"\n\n[profiles.staging]\nendpoint_url = \"{1}\"\n",
            env.image, r.endpoint
        ),
    );
    r.f.run(&["bootstrap"]).ok();
    let published = r.f.run(&["publish-all", "--json"]).ok().json();
    assert_eq!(published[0]["status"], "published", "{published:?}");
    let status = r.f.run(&["status", "--json"]).ok().json();
    let rows: Vec<(&Value, &Value)> = status.iter().map(|s| (&s["layer"], &s["status"])).collect();
    assert_eq!(rows, [(&"six".into(), &"unchanged".into())], "{status:?}");
    let again = r.f.run(&["publish-all", "--json"]).ok();
    assert_eq!(again.json()[0]["status"], "unchanged", "{}", again.stderr);
    assert!(!again.stderr.contains("building"), "rebuilt:\n{}", again.stderr);
}

#[test]
fn a_mistyped_layer_names_the_closest_in_the_aws_commands() {
    let env = require_emulator!("a_mistyped_layer_names_the_closest_in_the_aws_commands");
    let r = Repo::new(&env, &[("pandas", "six==1.16.0\n")], "lo");
    for args in [&["publish", "pandsa"][..], &["status", "pandsa"], &["usage", "pandsa"]] {
        let run = r.f.run(args);
        assert_ne!(run.code, Some(0), "{}", run.stderr);
        assert!(run.stderr.contains("unknown layer `pandsa`: did you mean `pandas`?"), "{args:?}:\n{}", run.stderr);
    }
}
