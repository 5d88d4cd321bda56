//! Integration tests of the team pipeline: `.github/workflows/layers.yml` passes
//! actionlint; its matrix comes from `cargo xtask changed --json` in the shape the workflow
//! reads; `changed` reports exactly the units whose inputs changed; the `--runtime` /
//! `--arch` filters one matrix job relies on; CI credentials from the environment
//! (`XTASK_AWS_CREDENTIALS=env`); and IAM policies in docs/iam/ that grant every AWS call
//! the tool makes and nothing more.
//!
//! Most of these need neither docker nor the emulator (`changed` is offline); the ones that
//! publish say so with `require_emulator!`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fixture, Run, TestEnv};
use serde_json::Value;

/// The repo this test belongs to (the template itself, not a fixture).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

const WORKFLOW: &str = ".github/workflows/layers.yml";

/// A fixture for commands that run neither docker nor AWS: `changed`, `list`, and flag
/// validation. Its profiles point at an address nothing answers on.
fn offline_fixture(layers: &[(&str, &str)]) -> Fixture {
    Fixture::new(&TestEnv { image: "unused/offline:never-pulled".into(), endpoint: None }, layers)
}

/// Replaces `from` (which must be there) in the fixture's layers.toml.
fn edit_layers_toml(f: &Fixture, from: &str, to: &str) {
    let path = f.path("layers.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "no `{from}` in layers.toml:\n{text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// Runs the fixture's xtask with extra environment variables (`None` removes one).
fn run_with(f: &Fixture, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let mut c = f.cmd(args);
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    Run::from(c.output().unwrap(), args)
}

/// The one line `changed --json` prints, parsed; fails unless it is exactly one line.
fn matrix(run: &Run) -> Value {
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "`xtask {}` must print exactly one line on stdout:\n{}", run.args, run.stdout);
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
}

/// `layer runtime arch` of every matrix entry, in order.
fn units(matrix: &Value) -> Vec<String> {
    matrix["include"]
        .as_array()
        .unwrap_or_else(|| panic!("no `include` list in {matrix}"))
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["layer"].as_str().unwrap(),
                e["runtime"].as_str().unwrap(),
                e["arch"].as_str().unwrap()
            )
        })
        .collect()
}

/// Writes `published/<profile>.json` recording every unit of the fixture (fingerprints
/// from `list --json`) in each region, as a publish would have; `skip` units are left out.
fn write_manifest(f: &Fixture, profile: &str, regions: &[&str], skip: &[&str]) {
    let mut layers = Vec::new();
    for u in f.run(&["list", "--json"]).ok().json() {
        let (layer, runtime, arch) =
            (u["layer"].as_str().unwrap(), u["runtime"].as_str().unwrap(), u["arch"].as_str().unwrap());
        if skip.contains(&format!("{layer} {runtime} {arch}").as_str()) {
            continue;
        }
        let name = format!("{layer}-{}-{arch}", runtime.replace("python", "py").replace('.', ""));
        for region in regions {
            layers.push(serde_json::json!({
                "layer": layer, "runtime": runtime, "arch": arch, "region": region, "layer_name": name, "version": 1,
                "layer_version_arn": format!("arn:aws:lambda:{region}:123456789012:layer:{name}:1"),
                "code_sha256": "AAAA", "fingerprint": u["fingerprint"], "published_at": "2024-05-01T10:00:00Z",
            }));
        }
    }
    let text = serde_json::to_string_pretty(&serde_json::json!({"profile": profile, "layers": layers})).unwrap();
    f.write(&format!("published/{profile}.json"), &text);
}

fn not_run(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOT RUN: {test} {why}");
}

fn integration_required() -> bool {
    std::env::var_os("XTASK_REQUIRE_INTEGRATION").is_some() || std::env::var_os("CI").is_some()
}

// ---------------------------------------------------------------------------------------
// The workflow

#[test]
fn workflow_passes_actionlint() {
    let name = "workflow_passes_actionlint";
    let Some(actionlint) = std::env::var_os("XTASK_ACTIONLINT").filter(|v| !v.is_empty()) else {
        if integration_required() {
            panic!("{name} needs actionlint: run `scripts/test.sh` (scripts/test-env.sh installs it and sets XTASK_ACTIONLINT)");
        }
        return not_run(name, "needs actionlint; run `scripts/test.sh` to run it");
    };
    let lint = |args: &[&str], stdin: Option<&str>| {
        let mut c = Command::new(&actionlint);
        c.current_dir(root()).arg("-no-color").args(args);
        c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", actionlint.to_string_lossy()));
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, report) = lint(&[WORKFLOW], None);
    assert!(ok, "actionlint found problems in {WORKFLOW}:\n{report}");

    // The linter really lints: a job output that does not exist is caught.
    let broken = read(WORKFLOW).replace("needs.plan.outputs.matrix", "needs.plan.outputs.matrixx");
    let (ok, report) = lint(&["-stdin-filename", WORKFLOW, "-"], Some(&broken));
    assert!(!ok && report.contains("matrixx"), "actionlint did not catch an undefined job output:\n{report}");
}

#[test]
fn workflow_matrix_is_what_changed_json_prints() {
    let wf = read(WORKFLOW);
    // The plan job asks `changed` for the matrix and counts its entries; the build job
    // takes it whole and is skipped when it is empty (GitHub rejects an empty matrix).
    for needle in [
        "cargo xtask changed --profile",
        "--json)",
        "echo \"matrix=$matrix\"",
        "jq '.include | length'",
        "matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}",
        "if: needs.plan.outputs.count != '0'",
        // `--locked`: CI builds and checks what the pull request committed, never a re-lock.
        "cargo xtask layer \"$LAYER\" --runtime \"$RUNTIME\" --arch \"$ARCH\" --locked",
        "cargo xtask check \"$LAYER\" --runtime \"$RUNTIME\" --arch \"$ARCH\" --locked",
    ] {
        assert!(
            wf.contains(needle),
            "{WORKFLOW} no longer contains `{needle}`: keep the workflow and this test in step"
        );
    }
    // Every `matrix.KEY` the workflow reads.
    let keys: BTreeSet<String> = wf
        .match_indices("matrix.")
        .map(|(i, _)| wf[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>())
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(
        keys.iter().map(String::as_str).collect::<Vec<_>>(),
        ["arch", "layer", "runtime"],
        "matrix keys the workflow reads"
    );

    let f = offline_fixture(&[("six", "six==1.16.0\n"), ("idna", "idna==3.10\n")]);
    f.write("layers/idna/layer.toml", "architectures = [\"x86_64\", \"arm64\"]\n");
    let run = f.run(&["changed", "--profile", "staging", "--json"]).ok();
    let m = matrix(&run);
    assert_eq!(m.as_object().unwrap().keys().collect::<Vec<_>>(), ["include"], "{m}");
    let include = m["include"].as_array().unwrap();
    assert_eq!(include.len(), 3, "{m}");
    for entry in include {
        for key in &keys {
            assert!(
                entry[key].is_string(),
                "matrix entry {entry} lacks `{key}`, which {WORKFLOW} reads as matrix.{key}"
            );
        }
    }
    assert_eq!(units(&m), ["idna python3.13 arm64", "idna python3.13 x86_64", "six python3.13 x86_64"]);
    assert!(run.stderr.contains("3 of 3 units changed"), "{}", run.stderr);

    // Nothing changed: an empty list, which the workflow's count turns into skipped jobs.
    write_manifest(&f, "staging", &["us-east-1"], &[]);
    let run = f.run(&["changed", "--json"]).ok();
    assert_eq!(run.stdout, "{\"include\":[]}\n");
}

#[test]
fn workflow_publishes_through_one_job_per_profile_with_least_permissions() {
    let wf = read(WORKFLOW);
    // A job is its header line and every line after it indented deeper (or blank).
    let job = |name: &str| -> String {
        let start = wf.find(&format!("\n  {name}:\n")).unwrap_or_else(|| panic!("no job `{name}` in {WORKFLOW}")) + 1;
        let lines: Vec<&str> = wf[start..]
            .lines()
            .enumerate()
            .take_while(|(i, l)| *i == 0 || l.is_empty() || l.starts_with("   "))
            .map(|(_, l)| l)
            .collect();
        lines.join("\n")
    };
    assert!(
        wf.contains("permissions:\n  contents: read\n"),
        "the workflow's default permissions must be `contents: read`"
    );
    for (name, profile, role) in [
        ("publish-staging", "staging", "AWS_ROLE_STAGING"),
        ("publish-production", "production", "AWS_ROLE_PRODUCTION"),
    ] {
        let j = job(name);
        for needle in [
            format!("group: publish-{profile}"),
            "cancel-in-progress: false".to_string(),
            "id-token: write".to_string(),
            "contents: write".to_string(),
            format!("role-to-assume: ${{{{ vars.{role} }}}}"),
            "XTASK_AWS_CREDENTIALS: env".to_string(),
            format!("PROFILE: {profile}"),
            "cargo xtask publish-all --profile \"$PROFILE\"".to_string(),
            "git push origin HEAD:refs/heads/main".to_string(),
        ] {
            assert!(j.contains(&needle), "job {name} lacks `{needle}`:\n{j}");
        }
        assert!(
            !j.contains("strategy:"),
            "job {name} must be one job: publishers in a matrix would race on the manifest"
        );
    }
    assert!(
        job("publish-production").contains("environment: production"),
        "production must go through the `production` environment"
    );
    assert!(job("publish-production").contains("--yes"));
    for name in ["plan", "build", "sizes"] {
        let j = job(name);
        assert!(
            !j.contains("id-token") && !j.contains("contents: write"),
            "job {name} must not get AWS or write rights:\n{j}"
        );
    }
    assert!(job("sizes").contains("pull-requests: write"));

    // Every repository variable the workflow reads is explained in the set-up guide.
    let guide = read("docs/github-actions.md");
    for (i, _) in wf.match_indices("vars.") {
        let var: String = wf[i + 5..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        assert!(guide.contains(&var), "docs/github-actions.md does not explain the variable {var}");
    }
}

// ---------------------------------------------------------------------------------------
// `changed`

#[test]
fn changed_reports_exactly_the_units_whose_inputs_changed() {
    let f = offline_fixture(&[("six", "six==1.16.0\n"), ("idna", "idna==3.10\n"), ("certifi", "certifi==2024.8.30\n")]);
    f.write("layers/idna/layer.toml", "runtimes = [\"python3.12\", \"python3.13\"]\n");
    let all =
        ["certifi python3.13 x86_64", "idna python3.12 x86_64", "idna python3.13 x86_64", "six python3.13 x86_64"];

    // No manifest yet: everything is new.
    let run = f.run(&["changed", "--json"]).ok();
    assert_eq!(units(&matrix(&run)), all);
    assert!(run.stderr.contains("new: not in the manifest"), "{}", run.stderr);

    // A clean repo: nothing, and the human summary on stderr says so.
    write_manifest(&f, "staging", &["us-east-1"], &[]);
    let run = f.run(&["changed", "--json"]).ok();
    assert_eq!(units(&matrix(&run)), Vec::<String>::new());
    assert!(run.stderr.contains("0 of 4 units changed"), "{}", run.stderr);
    let human = f.run(&["changed"]).ok();
    assert!(human.stdout.is_empty(), "without --json nothing goes to stdout:\n{}", human.stdout);

    // One requirement changes: exactly that layer's unit.
    f.write("layers/six/requirements.txt", "six==1.17.0\n");
    let run = f.run(&["changed", "--json"]).ok();
    assert_eq!(units(&matrix(&run)), ["six python3.13 x86_64"]);
    assert!(run.stderr.contains("fingerprint differs in us-east-1"), "{}", run.stderr);

    // A layer setting that decides the zip (slimming) changes both units of that layer.
    f.write("layers/idna/layer.toml", "runtimes = [\"python3.12\", \"python3.13\"]\nslim = \"aggressive\"\n");
    let run = f.run(&["changed", "--json"]).ok();
    assert_eq!(units(&matrix(&run)), ["idna python3.12 x86_64", "idna python3.13 x86_64", "six python3.13 x86_64"]);

    // Names narrow the question; other profiles have their own manifest.
    let run = f.run(&["changed", "six", "certifi", "--json"]).ok();
    assert_eq!(units(&matrix(&run)), ["six python3.13 x86_64"]);
    let run = f.run(&["changed", "--profile", "production", "--json"]).ok();
    assert_eq!(units(&matrix(&run)).len(), 4, "nothing is in production's manifest");

    // A unit missing from one region of the profile is changed; the others are not.
    write_manifest(&f, "staging", &["us-east-1"], &[]);
    edit_layers_toml(
        &f,
        "[profiles.staging]\nregions = [\"us-east-1\"]\nbucket = \"",
        "[profiles.staging]\nregions = [\"us-east-1\", \"eu-west-1\"]\nbucket = \"{region}-",
    );
    write_manifest(&f, "staging", &["us-east-1", "eu-west-1"], &["certifi python3.13 x86_64"]);
    let manifest = std::fs::read_to_string(f.path("published/staging.json")).unwrap();
    let mut v: Value = serde_json::from_str(&manifest).unwrap();
    v["layers"].as_array_mut().unwrap().retain(|e| !(e["layer"] == "six" && e["region"] == "eu-west-1"));
    f.write("published/staging.json", &v.to_string());
    let run = f.run(&["changed", "--json"]).ok();
    assert_eq!(units(&matrix(&run)), ["certifi python3.13 x86_64", "six python3.13 x86_64"]);
    assert!(run.stderr.contains("not published in eu-west-1"), "{}", run.stderr);
}

#[test]
fn changed_errors_are_one_line_and_print_no_matrix() {
    let f = offline_fixture(&[("six", "six==1.16.0\n")]);
    f.run(&["changed", "--profile", "prod", "--json"])
        .fails_with(&["unknown profile `prod`", "local, production, staging"]);
    f.write("published/staging.json", "{not json");
    let run = f.run(&["changed", "--json"]).fails_with(&["invalid manifest", "published/staging.json"]);
    assert!(run.stdout.is_empty(), "a failed `changed` must print no matrix:\n{}", run.stdout);
    std::fs::remove_file(f.path("published/staging.json")).unwrap();
    f.write("layers/broken/layer.toml", "slimm = \"safe\"\n");
    f.write("layers/broken/requirements.txt", "idna==3.10\n");
    let run = f.run(&["changed", "--json"]).fails_with(&["slimm"]);
    assert!(run.stdout.is_empty(), "a repo with a broken layer must print no matrix:\n{}", run.stdout);
}

// ---------------------------------------------------------------------------------------
// Unit filters

#[test]
fn unit_filters_are_validated_by_every_command_that_builds_or_publishes() {
    let f = offline_fixture(&[("six", "six==1.16.0\n")]);
    for cmd in [&["layer", "six"][..], &["check", "six"], &["publish", "six"], &["publish-all"]] {
        let with = |extra: &[&'static str]| -> Vec<&'static str> { [cmd, extra].concat() };
        f.run(&with(&["--runtime", "python2.7"]))
            .fails_with(&["unknown runtime `python2.7`", "python3.12, python3.13"]);
        f.run(&with(&["--arch", "mips"])).fails_with(&["unknown architecture `mips`", "x86_64, arm64"]);
        // A valid value that no unit has: an error, not a silent "nothing to do".
        f.run(&with(&["--runtime", "python3.12", "--arch", "arm64"]))
            .fails_with(&["no unit of six matches --runtime python3.12 --arch arm64"]);
    }
}

/// The CI path end to end against the emulator: a deploy profile with an `aws_profile`
/// that does not exist on the runner, credentials from the environment, one runtime
/// published through the filters, then `changed` (offline and `--remote`) lists the rest.
#[test]
fn ci_publishes_one_unit_with_environment_credentials_then_changed_lists_the_rest() {
    let env = require_emulator!("ci_publishes_one_unit_with_environment_credentials_then_changed_lists_the_rest");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    let prefix = format!("w{}", common::unique_suffix());
    edit_layers_toml(&f, "[profiles.staging]\n", &format!("[profiles.staging]\naws_profile = \"no-such-profile-on-ci\"\nlayer_name = \"{prefix}-{{layer}}-{{py}}-{{arch}}\"\n"));
    // python3.12 cannot be built with the test image (Python 3.13): only a filter lets a
    // run over this layer succeed.
    f.write("layers/six/layer.toml", "runtimes = [\"python3.12\", \"python3.13\"]\n");
    let ci = [("XTASK_AWS_CREDENTIALS", Some("env"))];

    // Without the switch, the named AWS profile alone is used, and it does not exist.
    run_with(&f, &["bootstrap"], &[]).fails_with(&["no-such-profile-on-ci"]);
    // With it but no keys in the environment: say what is missing.
    run_with(&f, &["bootstrap"], &[("XTASK_AWS_CREDENTIALS", Some("env")), ("AWS_ACCESS_KEY_ID", None)])
        .fails_with(&["XTASK_AWS_CREDENTIALS=env", "AWS_ACCESS_KEY_ID"]);
    run_with(&f, &["bootstrap"], &[("XTASK_AWS_CREDENTIALS", Some("yes"))])
        .fails_with(&["invalid XTASK_AWS_CREDENTIALS=yes"]);
    run_with(&f, &["bootstrap"], &ci).ok();

    // What one matrix job runs.
    let built =
        run_with(&f, &["layer", "six", "--runtime", "python3.13", "--arch", "x86_64", "--json"], &ci).ok().json();
    assert_eq!(built.len(), 1, "{built:?}");
    assert_eq!((built[0]["runtime"].as_str(), built[0]["status"].as_str()), (Some("python3.13"), Some("built")));
    let checked = run_with(&f, &["check", "six", "--runtime", "python3.13", "--json"], &ci).ok().json();
    assert_eq!(checked.len(), 1, "{checked:?}");
    assert_eq!((checked[0]["runtime"].as_str(), checked[0]["status"].as_str()), (Some("python3.13"), Some("pass")));

    // The publish job (here narrowed to the unit that builds): it reuses the dist/ build.
    let published = run_with(&f, &["publish-all", "--runtime", "python3.13", "--json"], &ci).ok();
    let rows = published.json();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["runtime"].as_str(), rows[0]["status"].as_str()), (Some("python3.13"), Some("published")));
    assert!(
        !published.stderr.contains("AWS_ACCESS_KEY_ID is ignored"),
        "environment credentials were reported as ignored:\n{}",
        published.stderr
    );
    assert!(!published.stderr.contains("building"), "the publish rebuilt a current dist/ build:\n{}", published.stderr);

    // Offline and remote agree: only the unit that was not published.
    let offline = run_with(&f, &["changed", "--json"], &ci).ok();
    assert_eq!(units(&matrix(&offline)), ["six python3.12 x86_64"]);
    let remote = run_with(&f, &["changed", "--remote", "--json"], &ci).ok();
    assert_eq!(units(&matrix(&remote)), ["six python3.12 x86_64"]);
    assert!(remote.stderr.contains("compared with AWS"), "{}", remote.stderr);

    // A changed requirement: both, offline and remote.
    f.write("layers/six/requirements.txt", "six==1.17.0\n");
    let both = ["six python3.12 x86_64", "six python3.13 x86_64"];
    assert_eq!(units(&matrix(&run_with(&f, &["changed", "--json"], &ci).ok())), both);
    assert_eq!(units(&matrix(&run_with(&f, &["changed", "--remote", "--json"], &ci).ok())), both);
}

// ---------------------------------------------------------------------------------------
// IAM

/// Every SDK operation the tool may call, and the IAM actions it needs. A call that is
/// not in this table fails `iam_policies_grant_every_aws_call_and_nothing_more`: add it
/// here and to the policy in docs/iam/ (and the table in docs/github-actions.md).
const SDK_TO_IAM: &[(&str, &[&str])] = &[
    // S3
    ("head_bucket", &["s3:ListBucket"]),
    ("create_bucket", &["s3:CreateBucket"]),
    ("put_public_access_block", &["s3:PutBucketPublicAccessBlock"]),
    ("put_bucket_encryption", &["s3:PutEncryptionConfiguration"]),
    ("put_object", &["s3:PutObject"]),
    // The publish records (`.records/` under the prefix), one listing per region.
    ("list_objects_v2", &["s3:ListBucket"]),
    // The publish lock: read, and removed when released.
    ("get_object", &["s3:GetObject"]),
    ("delete_object", &["s3:DeleteObject"]),
    // Lambda (PublishLayerVersion reads the zip from S3 with the caller's rights)
    ("list_layer_versions", &["lambda:ListLayerVersions"]),
    // Every layer's newest version, one listing per region; the region's code storage.
    ("list_layers", &["lambda:ListLayers"]),
    ("get_account_settings", &["lambda:GetAccountSettings"]),
    ("get_layer_version", &["lambda:GetLayerVersion"]),
    ("publish_layer_version", &["lambda:PublishLayerVersion", "s3:GetObject"]),
    ("add_layer_version_permission", &["lambda:AddLayerVersionPermission"]),
    ("get_layer_version_policy", &["lambda:GetLayerVersionPolicy"]),
    ("delete_layer_version", &["lambda:DeleteLayerVersion"]),
    // Functions: `usage`, `rollout`, and `prune` (which keeps what a function attaches).
    // Attaching a layer version needs GetLayerVersion on it.
    ("list_functions", &["lambda:ListFunctions"]),
    ("get_function", &["lambda:GetFunction"]),
    ("get_function_configuration", &["lambda:GetFunctionConfiguration"]),
    ("update_function_configuration", &["lambda:UpdateFunctionConfiguration", "lambda:GetLayerVersion"]),
    // SSM: a profile with `ssm_parameter` writes each unit's newest ARN.
    ("put_parameter", &["ssm:PutParameter"]),
    // STS: GetCallerIdentity needs no permission.
    ("get_caller_identity", &[]),
];

/// Files whose calls are the bootstrap role's.
const BOOTSTRAP_FILES: &[&str] = &["bootstrap.rs"];

/// The policies whose role makes the calls of a file: `rollout/` is the rollout role's
/// (`usage`, `rollout`), except `rollout/usage.rs`, whose function and layer listing `prune`
/// (the publisher's) uses too; the publish lock (`s3lock/mod.rs`, and the bucket check
/// before it in `aws/bucket.rs`) is taken by rollout too; every other file is the
/// publisher's.
fn roles_of(file: &str) -> &'static [&'static str] {
    if BOOTSTRAP_FILES.contains(&file) {
        &["docs/iam/bootstrap-policy.json"]
    } else if file == "rollout/usage.rs" || file == "s3lock/mod.rs" || file == "aws/bucket.rs" {
        &["docs/iam/rollout-policy.json", "docs/iam/publisher-policy.json"]
    } else if file.starts_with("rollout/") {
        &["docs/iam/rollout-policy.json"]
    } else {
        &["docs/iam/publisher-policy.json"]
    }
}

/// One SDK call found in the source.
#[derive(Debug)]
struct Call {
    file: String,
    line: usize,
    op: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `.s3.OP(`, `.lambda.OP(`, `.sts.OP(` and `.ssm.OP(` in xtask-aws/src (the client fields of
/// `aws::Clients`, line breaks allowed between). A client field used any other
/// way (bound to a variable, passed along) is an error: the scan could not see its calls.
fn sdk_calls() -> (Vec<Call>, Vec<String>) {
    let src = root().join("xtask-aws/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let (mut calls, mut problems) = (Vec::new(), Vec::new());
    for path in files {
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        let b = text.as_bytes();
        let line_of = |i: usize| text[..i].matches('\n').count() + 1;
        for client in ["s3", "lambda", "sts", "ssm"] {
            let needle = format!(".{client}");
            for (i, _) in text.match_indices(&needle) {
                let after = i + needle.len();
                if b.get(after).is_some_and(|&c| ident(c)) {
                    continue; // `.s3something`
                }
                let mut j = after;
                while b.get(j).is_some_and(|c| c.is_ascii_whitespace()) {
                    j += 1;
                }
                let op_start = j + 1;
                let mut k = op_start;
                while b.get(k).is_some_and(|&c| ident(c)) {
                    k += 1;
                }
                if b.get(j) == Some(&b'.') && k > op_start && b.get(k) == Some(&b'(') {
                    calls.push(Call { file: rel.clone(), line: line_of(i), op: text[op_start..k].to_string() });
                } else {
                    problems.push(format!(
                        "xtask-aws/src/{rel}:{}: `.{client}` is used other than as `.{client}.OPERATION(..)`",
                        line_of(i)
                    ));
                }
            }
        }
        for client in ["aws_sdk_s3::Client", "aws_sdk_lambda::Client", "aws_sdk_sts::Client"] {
            if text.contains(client) && rel != "aws/mod.rs" {
                problems
                    .push(format!("xtask-aws/src/{rel} names {client}: SDK clients live in aws/mod.rs `Clients` only"));
            }
        }
    }
    (calls, problems)
}

/// Every action a policy document allows.
fn allowed_actions(policy: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for st in policy["Statement"].as_array().expect("a policy has a Statement list") {
        assert_eq!(st["Effect"], "Allow", "{st}");
        match &st["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(list) => out.extend(list.iter().map(|a| a.as_str().unwrap().to_string())),
            other => panic!("unexpected Action {other}"),
        }
    }
    out
}

fn policy(rel: &str) -> Value {
    let v: Value = serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"));
    assert_eq!(v["Version"], "2012-10-17", "{rel}");
    v
}

#[test]
fn iam_policies_grant_every_aws_call_and_nothing_more() {
    let table: BTreeMap<&str, &[&str]> = SDK_TO_IAM.iter().copied().collect();
    let (calls, problems) = sdk_calls();
    assert!(problems.is_empty(), "the SDK-call scan cannot see every call:\n{}", problems.join("\n"));
    let unknown: Vec<String> = calls
        .iter()
        .filter(|c| !table.contains_key(c.op.as_str()))
        .map(|c| format!("xtask-aws/src/{}:{}: {}", c.file, c.line, c.op))
        .collect();
    assert!(
        unknown.is_empty(),
        "SDK operations without an IAM action in SDK_TO_IAM (add each to the table and grant it in docs/iam/):\n{}",
        unknown.join("\n")
    );
    // The scan finds the calls this test knows the tool makes (it is not blind).
    let found: BTreeSet<&str> = calls.iter().map(|c| c.op.as_str()).collect();
    for op in [
        "publish_layer_version",
        "put_object",
        "list_objects_v2",
        "list_layer_versions",
        "put_parameter",
        "create_bucket",
        "get_caller_identity",
    ] {
        assert!(found.contains(op), "the scan no longer finds `{op}`: {found:?}");
    }

    let mut needed: BTreeMap<&str, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for c in &calls {
        for role in roles_of(&c.file) {
            for action in table[c.op.as_str()] {
                needed
                    .entry(role)
                    .or_default()
                    .entry(action.to_string())
                    .or_default()
                    .push(format!("{} ({}:{})", c.op, c.file, c.line));
            }
        }
    }
    assert!(needed.contains_key("docs/iam/rollout-policy.json"), "the scan finds no call of rollout/: {needed:?}");
    for (rel, need) in &needed {
        let granted = allowed_actions(&policy(rel));
        let missing: Vec<String> = need
            .iter()
            .filter(|(a, _)| !granted.contains(*a))
            .map(|(a, why)| format!("{a} for {}", why.join(", ")))
            .collect();
        assert!(missing.is_empty(), "{rel} lacks actions the tool needs:\n{}", missing.join("\n"));
        let extra: Vec<&String> = granted.iter().filter(|a| !need.contains_key(*a)).collect();
        assert!(extra.is_empty(), "{rel} grants actions no call needs (least rights): {extra:?}");
    }

    // Placeholders the set-up guide tells to replace.
    let publisher = read("docs/iam/publisher-policy.json");
    for p in ["BUCKET", "PREFIX", "REGION", "ACCOUNT_ID"] {
        assert!(publisher.contains(p), "publisher-policy.json lacks the placeholder {p}");
    }
    assert!(publisher.contains("arn:aws:s3:::BUCKET/PREFIX/*"), "object rights must be limited to the prefix");
    // The rollout role updates only the functions a team names (a name prefix).
    let rollout = policy("docs/iam/rollout-policy.json");
    for st in rollout["Statement"].as_array().unwrap() {
        let actions = st["Action"].to_string();
        if actions.contains("UpdateFunctionConfiguration") {
            assert_eq!(st["Resource"], "arn:aws:lambda:REGION:ACCOUNT_ID:function:FUNCTION_PREFIX*", "{st}");
        }
        if st["Resource"] == "*" {
            assert_eq!(st["Action"], "lambda:ListFunctions", "only ListFunctions cannot be limited to resources: {st}");
        }
    }
}

#[test]
fn trust_policy_admits_only_github_oidc_for_one_subject() {
    let v = policy("docs/iam/trust-policy.json");
    let st = &v["Statement"][0];
    assert_eq!(v["Statement"].as_array().unwrap().len(), 1);
    assert_eq!(st["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        st["Principal"]["Federated"],
        "arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com"
    );
    let eq = &st["Condition"]["StringEquals"];
    assert_eq!(eq["token.actions.githubusercontent.com:aud"], "sts.amazonaws.com");
    assert_eq!(
        eq["token.actions.githubusercontent.com:sub"], "repo:OWNER/REPO:SUBJECT",
        "the subject must be exact, no wildcard"
    );
    let guide = read("docs/github-actions.md");
    for subject in ["ref:refs/heads/main", "environment:production"] {
        assert!(guide.contains(subject), "docs/github-actions.md does not give the subject {subject}");
    }
}
