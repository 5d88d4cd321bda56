//! Trust in the config and the layer folder: config that would be silently wrong, local
//! files outside the layer folder, links out of the repo, invalid folder names, huge input
//! quoted in messages, and what a refused or interrupted build leaves in dist/.

use crate::common;

use std::process::Command;

use common::{files_under, write_data_wheel, zip_names, Fixture};

/// Replaces `from` with `to` in the fixture's layers.toml (which must contain it).
fn edit_layers_toml(f: &Fixture, from: &str, to: &str) {
    let text = std::fs::read_to_string(f.path("layers.toml")).unwrap();
    assert!(text.contains(from), "no `{from}` in layers.toml:\n{text}");
    f.write("layers.toml", &text.replacen(from, to, 1));
}

/// The line of the fixture's layers.toml that contains `needle`, as `layers.toml:N`.
fn layers_toml_line(f: &Fixture, needle: &str) -> String {
    let text = std::fs::read_to_string(f.path("layers.toml")).unwrap();
    let n = text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no `{needle}`")) + 1;
    format!("layers.toml:{n}")
}

#[test]
fn silently_wrong_layer_config_is_a_one_line_error_naming_key_file_line_and_valid_values() {
    let env = require_docker!("silently_wrong_layer_config");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    for (toml, needles) in [
        ("description = \"x\"\nruntimes = []\n", &["layers/six/layer.toml:2", "`runtimes` is empty", "python3.13"][..]),
        ("architectures = []\n", &["layers/six/layer.toml:1", "`architectures` is empty", "x86_64, arm64"]),
        ("slim = 3\n", &["layers/six/layer.toml:1", "`slim` must be one of \"none\", \"safe\", \"aggressive\""]),
        ("\nbuilder = \"podman\"\n", &["layers/six/layer.toml:2", "`builder` must be one of \"docker\", \"pip\""]),
        ("architectures = [\"amd64\"]\n", &["layers/six/layer.toml:1", "`architectures`", "x86_64, arm64"]),
        ("exclude = [\"../../**\"]\n", &["layers/six/layer.toml:1", "`exclude` pattern `../../**`", "climbs out"]),
        ("exclude = [\"six.py\",\n  \"/**\"]\n", &["layers/six/layer.toml:1", "`exclude` pattern `/**`", "absolute"]),
    ] {
        f.write("layers/six/layer.toml", toml);
        let run = f.run(&["layer", "six"]).fails_with(needles);
        assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", run.stderr);
        assert!(!f.path("dist/six").exists(), "{toml}: dist/six must not be written");
    }
    std::fs::remove_file(f.path("layers/six/layer.toml")).unwrap();

    // The same keys in [defaults] are reported against layers.toml, with their line.
    edit_layers_toml(&f, "runtimes = [\"python3.13\"]", "runtimes = []");
    let at = layers_toml_line(&f, "runtimes = []");
    f.run(&["layer", "six"]).fails_with(&[&at, "`runtimes` is empty"]);
    edit_layers_toml(&f, "runtimes = []", "runtimes = [\"python3.13\"]\nslim = \"maximal\"");
    let at = layers_toml_line(&f, "slim = \"maximal\"");
    f.run(&["layer", "six"]).fails_with(&[&at, "`slim` must be one of", "\"maximal\""]);
    assert!(!f.path("dist/six").exists());
}

#[test]
fn bad_region_and_bucket_names_are_refused_before_any_request() {
    let env = require_docker!("bad_region_and_bucket");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    let original = std::fs::read_to_string(f.path("layers.toml")).unwrap();
    edit_layers_toml(
        &f,
        "[profiles.staging]\nregions = [\"us-east-1\"]",
        "[profiles.staging]\nregions = [\"us-east-11\"]",
    );
    let at = layers_toml_line(&f, "us-east-11");
    f.run(&["changed", "--profile", "staging"]).fails_with(&[
        &at,
        "[profiles.staging] `regions`",
        "`us-east-11` is not an AWS region name",
        "eu-west-1",
    ]);
    f.write("layers.toml", &original);
    let bucket_line = original.lines().find(|l| l.starts_with("bucket = ") && l.ends_with("-prod\"")).unwrap();
    let upper = bucket_line.replace("bucket = \"it-", "bucket = \"It-");
    edit_layers_toml(&f, bucket_line, &upper);
    let at = layers_toml_line(&f, "bucket = \"It-");
    f.run(&["changed", "--profile", "production"]).fails_with(&[
        &at,
        "[profiles.production] `bucket`",
        "is not a valid S3 bucket name",
        "uppercase",
        "3 to 63 lowercase letters",
    ]);
}

#[test]
fn a_production_profile_without_confirm_and_a_guarded_profile_with_an_emulator_warn() {
    let env = require_docker!("unguarded_profiles_warn");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    // The fixture's production profile has confirm = true and an emulator endpoint.
    let text = std::fs::read_to_string(f.path("layers.toml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let prod = lines.iter().position(|l| *l == "[profiles.production]").unwrap();
    let endpoint = prod + 1 + lines[prod..].iter().position(|l| l.starts_with("endpoint_url")).unwrap();
    let run = f.run(&["changed", "--profile", "production"]).ok();
    let warning = run
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: profile production has confirm = true but `endpoint_url`"))
        .unwrap_or_else(|| panic!("no warning:\n{}", run.stderr));
    assert!(
        warning.contains(&format!("layers.toml:{endpoint}"))
            && warning.contains("emulator endpoint is set on a guarded profile"),
        "{warning}"
    );
    // Staging is not guarded: an emulator there is no surprise.
    let run = f.run(&["changed", "--profile", "staging"]).ok();
    assert!(!run.stderr.contains("warning: profile"), "{}", run.stderr);

    edit_layers_toml(&f, "confirm = true", "confirm = false");
    let at = layers_toml_line(&f, "confirm = false");
    let run = f.run(&["changed", "--profile", "production"]).ok();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("warning: profile production")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].starts_with(&format!("warning: profile production has confirm = false ({at})")),
        "{}",
        warnings[0]
    );
}

#[test]
fn an_exclude_that_empties_the_layer_fails_the_build_naming_it() {
    let env = require_docker!("exclude_empties_layer");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    f.write("layers/six/layer.toml", "exclude = [\"*.txt\", \"**\"]\n");
    let run =
        f.run(&["layer", "six"]).fails_with(&["six python3.13 x86_64", "would be empty", "`exclude` pattern `**`"]);
    assert!(!run.stderr.lines().find(|l| l.starts_with("error:")).unwrap().contains("*.txt"), "{}", run.stderr);
    assert!(!f.path("dist/six").exists(), "an empty layer must not be written");
}

#[test]
fn a_local_file_outside_the_layer_folder_is_refused_naming_the_line() {
    let env = require_docker!("local_file_outside");
    let f = Fixture::new(&env, &[]);
    std::fs::create_dir_all(f.path("shared")).unwrap();
    let wheel = write_data_wheel(&f.path("shared"), "shared", 1, 16, 1);
    let abs = f.path(&format!("shared/{wheel}"));
    for line in [
        format!("../../shared/{wheel}"),
        abs.display().to_string(),
        format!("shared @ file://{}", abs.display()),
        format!("file://{}", abs.display()),
    ] {
        f.write("layers/loc/requirements.txt", &format!("six==1.16.0\n{line}\n"));
        f.run(&["layer", "loc"]).fails_with(&[
            "layers/loc/requirements.txt:2",
            "outside the layer folder",
            &format!("`./{wheel}`"),
        ]);
        assert!(!f.path("dist/loc").exists());
    }
    // A link inside the folder that leads outside it is outside too.
    std::os::unix::fs::symlink(&abs, f.path(&format!("layers/loc/{wheel}"))).unwrap();
    f.write("layers/loc/requirements.txt", &format!("./{wheel}\n"));
    f.run(&["layer", "loc"]).fails_with(&["layers/loc/requirements.txt:1", "outside the layer folder"]);
}

#[test]
fn a_local_wheel_in_the_layer_folder_is_pinned_by_its_content() {
    let env = require_docker!("local_wheel_pinned");
    let f = Fixture::new(&env, &[]);
    std::fs::create_dir_all(f.path("layers/loc/wheels")).unwrap();
    let wheel = write_data_wheel(&f.path("layers/loc/wheels"), "localpkg", 2, 64, 1);
    f.write("layers/loc/requirements.txt", &format!("./wheels/{wheel}\n"));
    let run = f.run(&["layer", "loc", "--json"]).ok();
    assert!(!run.stderr.contains("not pinned"), "a local wheel is pinned by its content:\n{}", run.stderr);
    assert_eq!(run.json()[0]["status"], "built");
    // uv notes where a local wheel came from (`uv_cache.json`): an install record, slimmed.
    let names = zip_names(&f.path("dist/loc/loc-py313-x86_64.zip"));
    assert!(names.iter().any(|n| n == "python/localpkg-1.0.dist-info/METADATA"), "{names:?}");
    let records: Vec<&String> =
        names.iter().filter(|n| n.ends_with(".dist-info/uv_cache.json") || n.ends_with("/INSTALLER")).collect();
    assert!(records.is_empty(), "install records in the zip: {records:?}");
    let first = run.json()[0]["fingerprint"].clone();
    assert_eq!(f.run(&["layer", "loc", "--json"]).ok().json()[0]["status"], "up-to-date");
    write_data_wheel(&f.path("layers/loc/wheels"), "localpkg", 2, 64, 2);
    let run = f.run(&["layer", "loc", "--json"]).ok();
    assert_eq!(run.json()[0]["status"], "built", "a changed wheel must rebuild");
    assert_ne!(run.json()[0]["fingerprint"], first);
}

#[test]
fn layer_folders_with_invalid_names_are_warned_about_once() {
    let env = require_docker!("invalid_folder_names");
    let f = Fixture::new(
        &env,
        &[
            ("six", "six==1.16.0\n"),
            ("my layer", "six==1.16.0\n"),
            (".hidden", "six==1.16.0\n"),
            ("ünï", "six==1.16.0\n"),
        ],
    );
    std::fs::create_dir_all(f.path("layers/.git-like")).unwrap();
    std::fs::create_dir_all(f.path("layers/notes")).unwrap();
    let run = f.run(&["list"]).ok();
    for folder in ["my layer", ".hidden", "ünï"] {
        let warnings: Vec<&str> =
            run.stderr.lines().filter(|l| l.starts_with(&format!("warning: layers/{folder}/ is skipped"))).collect();
        assert_eq!(warnings.len(), 1, "{folder}:\n{}", run.stderr);
        assert!(warnings[0].contains("invalid layer name") && warnings[0].contains("starting with a letter or digit"));
    }
    assert!(!run.stderr.contains("notes") && !run.stderr.contains(".git-like"), "{}", run.stderr);
    // Selecting every layer warns once too, and builds the valid one.
    let run = f.run(&["layer", "--all"]).ok();
    assert_eq!(run.stderr.matches("warning: layers/my layer/ is skipped").count(), 1, "{}", run.stderr);
}

#[test]
fn a_requirements_txt_or_layer_toml_linked_from_outside_the_repo_is_refused() {
    let env = require_docker!("linked_outside");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n")]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret-token-line\n").unwrap();
    std::fs::create_dir_all(f.path("layers/leak")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), f.path("layers/leak/requirements.txt")).unwrap();
    let run =
        f.run(&["layer", "leak"]).fails_with(&["layers/leak/requirements.txt is a link", "outside the layer repo"]);
    assert!(!run.stderr.contains("secret-token-line"), "{}", run.stderr);
    std::fs::write(outside.path().join("layer.toml"), "description = \"secret-token-line\"\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("layer.toml"), f.path("layers/six/layer.toml")).unwrap();
    f.run(&["layer", "six"]).fails_with(&["layers/six/layer.toml is a link", "outside the layer repo"]);
    // A link that stays inside the repo is fine.
    std::fs::remove_file(f.path("layers/six/layer.toml")).unwrap();
    std::fs::remove_file(f.path("layers/leak/requirements.txt")).unwrap();
    std::os::unix::fs::symlink("../six/requirements.txt", f.path("layers/leak/requirements.txt")).unwrap();
    f.run(&["list"]).ok();
}

#[test]
fn a_huge_requirement_line_is_cut_in_warnings_and_errors() {
    let env = require_docker!("huge_line");
    let f = Fixture::new(&env, &[]);
    let huge = "x".repeat(10 << 20);
    f.write("layers/big/requirements.txt", &format!("six==1.16.0\n{huge}\n"));
    let run = f.run(&["list"]).ok();
    assert!(run.stderr.len() < 4096, "{} bytes of stderr", run.stderr.len());
    assert!(run.stderr.contains("is not pinned") && run.stderr.contains("…"), "{}", run.stderr);
    f.write("layers/big/requirements.txt", &format!("six==1.16.0\n-r {huge}\n"));
    let run = f.run(&["layer", "big"]).fails_with(&["layers/big/requirements.txt:2", "`-r` is not supported", "…"]);
    assert!(run.stderr.len() < 4096, "{} bytes of stderr", run.stderr.len());
    f.write("layers/big/requirements.txt", "six==1.16.0\n");
    f.write("layers/big/layer.toml", &format!("runtimes = [\"{huge}\"]\n"));
    let run = f.run(&["layer", "big"]).fails_with(&["layers/big/layer.toml:1", "unknown runtime", "…"]);
    assert!(run.stderr.len() < 4096, "{} bytes of stderr", run.stderr.len());
}

#[test]
fn an_over_limit_refusal_leaves_no_dist_folder() {
    let env = require_docker!("over_limit_leaves_nothing");
    let f = Fixture::new(&env, &[]);
    std::fs::create_dir_all(f.path("layers/huge")).unwrap();
    let wheel = write_data_wheel(&f.path("layers/huge"), "hugepkg", 26, 10 << 20, 1);
    f.write("layers/huge/requirements.txt", &format!("./{wheel}\n"));
    f.run(&["layer", "huge"]).fails_with(&["over Lambda's limit of 250 MiB", "hugepkg"]);
    assert!(!f.path("dist/huge").exists(), "the refused build left {:?}", files_under(&f.path("dist")));
    assert!(files_under(&f.path("dist")).is_empty(), "{:?}", files_under(&f.path("dist")));
}

#[test]
fn ctrl_c_while_zipping_exits_130_and_leaves_nothing() {
    let env = require_docker!("ctrl_c_while_zipping");
    let f = Fixture::new(&env, &[]);
    std::fs::create_dir_all(f.path("layers/many")).unwrap();
    // 8000 incompressible files, 125 MiB: zipping them takes seconds, and removing them
    // (what Ctrl-C does) takes long enough for the zipping to fail on a removed file first.
    const FILES: usize = 8000;
    let wheel = write_data_wheel(&f.path("layers/many"), "manypkg", FILES, 16 << 10, 1);
    f.write("layers/many/requirements.txt", &format!("./{wheel}\n"));
    f.write("layers/many/layer.toml", "slim = \"none\"\n");
    let mut child = f.cmd(&["layer", "many"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let name_prefix = format!("xtask-build-{}-", child.id());
    let running = || {
        let ps = Command::new("docker").args(["ps", "-a", "--format", "{{.Names}}"]).output().unwrap();
        String::from_utf8_lossy(&ps.stdout).lines().any(|l| l.starts_with(&name_prefix))
    };
    // Wait for pip's container to come and go: the tree is installed, packaging follows.
    let started = std::time::Instant::now();
    let mut seen = false;
    loop {
        let now = running();
        if seen && !now {
            break;
        }
        seen |= now;
        assert!(started.elapsed().as_secs() < 120, "the build container never came and went");
        assert!(child.try_wait().unwrap().is_none(), "the build ended before it could be interrupted");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Packaging reads python/ from dist/.work while it compresses.
    let work = f.path("dist/.work");
    let started = std::time::Instant::now();
    while files_under(&work).iter().filter(|p| p.ends_with(".bin")).count() < FILES {
        assert!(started.elapsed().as_secs() < 10, "no installed tree in {}", work.display());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(child.try_wait().unwrap().is_none(), "zipping ended before it could be interrupted");
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!stderr.contains("cannot read"), "the interrupt's own cleanup reported as a failure:\n{stderr}");
    assert!(files_under(&f.path("dist")).is_empty(), "left in dist/: {:?}", files_under(&f.path("dist")));
    assert!(!f.path("dist/many").exists());
}
