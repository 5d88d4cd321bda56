//! The output layer seen from outside: `--color`, NO_COLOR and CLICOLOR_FORCE, `-q`, `-v`
//! (command lines with secrets redacted), JSON on stdout unaffected by any of them,
//! summary lines, and tables that stay aligned with long layer names.

use crate::common;

use common::{Fixture, Run, TestEnv};

const ESC: &str = "\x1b[";

fn run_env(f: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = f.cmd(args);
    c.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE").env_remove("CLICOLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().unwrap(), args)
}

/// A fixture whose layer `six` is built (so later runs are quick and `up-to-date`).
fn built(env: &TestEnv) -> Fixture {
    let f = Fixture::new(env, &[("six", "six==1.16.0\n")]);
    f.run(&["layer", "six"]).ok();
    f
}

#[test]
fn colour_only_when_asked_or_on_a_terminal_and_never_on_stdout() {
    let env = require_docker!("colour_only_when_asked_or_on_a_terminal_and_never_on_stdout");
    let f = built(&env);
    let always = run_env(&f, &["layer", "six", "--json", "--color", "always"], &[]).ok();
    assert!(always.stderr.contains(ESC), "--color always gave no colour:\n{}", always.stderr);
    assert!(always.stderr.contains("up-to-date"), "{}", always.stderr);
    assert!(!always.stdout.contains(ESC), "colour on stdout:\n{}", always.stdout);
    // Not a terminal (stderr is a pipe here): no colour unless forced.
    let auto = run_env(&f, &["layer", "six"], &[]).ok();
    assert!(!auto.stderr.contains(ESC), "colour on a pipe:\n{}", auto.stderr);
    let never = run_env(&f, &["layer", "six", "--color", "never"], &[("CLICOLOR_FORCE", "1")]).ok();
    assert!(!never.stderr.contains(ESC), "--color never gave colour:\n{}", never.stderr);
    let no_color = run_env(&f, &["layer", "six"], &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]).ok();
    assert!(!no_color.stderr.contains(ESC), "NO_COLOR gave colour:\n{}", no_color.stderr);
    let forced = run_env(&f, &["layer", "six"], &[("CLICOLOR_FORCE", "1")]).ok();
    assert!(forced.stderr.contains(ESC), "CLICOLOR_FORCE gave no colour:\n{}", forced.stderr);
    // Errors are coloured too, and still one `error:` line without colour.
    let err = run_env(&f, &["layer", "missing", "--color", "always"], &[]);
    assert!(err.stderr.contains(&format!("{ESC}1;31merror:")), "{}", err.stderr);
}

#[test]
fn quiet_prints_only_errors_and_json() {
    let env = require_docker!("quiet_prints_only_errors_and_json");
    let f = built(&env);
    f.write("layers/loose/requirements.txt", "six\n");
    let run = f.run(&["-q", "layer", "six", "--json"]).ok();
    assert_eq!(run.stderr, "", "-q printed more than errors");
    assert_eq!(run.json()[0]["status"], "up-to-date", "{}", run.stdout);
    // A warning (an unpinned requirement) is not an error: -q hides it; the build's error
    // (a layer that does not exist) is shown.
    let run = f.run(&["layer", "loose", "missing", "--quiet", "--json"]);
    assert!(!run.stderr.contains("warning:") && !run.stderr.contains("built"), "{}", run.stderr);
    let run = run.fails_with(&["missing"]);
    assert!(run.stderr.lines().all(|l| l.starts_with("error:")), "{}", run.stderr);
    assert!(run.json().iter().any(|u| u["layer"] == "loose"), "{}", run.stdout);
    // Without -q the same run shows the warning, the status lines and the summary.
    let loud = f.run(&["layer", "loose", "missing"]);
    assert!(loud.stderr.contains("warning:") && loud.stderr.contains("up-to-date 1"), "{}", loud.stderr);
}

#[test]
fn verbose_shows_the_docker_command_but_never_a_password() {
    let env = require_docker!("verbose_shows_the_docker_command_but_never_a_password");
    let f = Fixture::new(&env, &[("six", "six==1.17.0\n")]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let index = format!("https://user:s3cret@127.0.0.1:{port}/simple");
    let run = run_env(
        &f,
        &["-v", "layer", "six"],
        &[("PIP_INDEX_URL", index.as_str()), ("PIP_DEFAULT_TIMEOUT", "2"), ("PIP_RETRIES", "0")],
    );
    assert_eq!(run.code, Some(1), "the index answers nothing, so the build fails:\n{}", run.stderr);
    let docker_run = run
        .stderr
        .lines()
        .find(|l| l.starts_with("running") && l.contains(" --rm --name xtask-build-"))
        .unwrap_or_else(|| panic!("-v shows no `docker run` line:\n{}", run.stderr));
    assert!(docker_run.contains("-e PIP_INDEX_URL -"), "{docker_run}");
    // pip, or uv (the default installer) through a script in the image, run in the run's
    // build container.
    let docker_exec = run
        .stderr
        .lines()
        .find(|l| l.starts_with("running") && l.contains(" exec -w "))
        .unwrap_or_else(|| panic!("-v shows no `docker exec` line:\n{}", run.stderr));
    assert!(
        (docker_exec.contains(" pip install") || docker_exec.contains("exec /xtask-uv/uv"))
            && docker_exec.contains(" install -r requirements.txt"),
        "{docker_exec}"
    );
    // The installer's own output is shown as it comes (it names the index), the password never.
    assert!(run.stderr.contains(&format!("127.0.0.1:{port}")), "pip's output is not shown:\n{}", run.stderr);
    assert!(!run.stderr.contains("s3cret"), "the password is shown:\n{}", run.stderr);
    // Without -v, no command line.
    let plain = run_env(&f, &["layer", "six"], &[("PIP_INDEX_URL", index.as_str()), ("PIP_RETRIES", "0")]);
    assert!(!plain.stderr.contains("xtask-build-") && !plain.stderr.contains("running"), "{}", plain.stderr);
}

#[test]
fn json_is_the_same_whatever_the_output_flags() {
    let env = require_docker!("json_is_the_same_whatever_the_output_flags");
    let f = built(&env);
    for args in [&["layer", "six", "--json"][..], &["list", "--json"]] {
        let plain = f.run(args).ok().stdout;
        assert!(!plain.is_empty());
        for flags in [&["-q"][..], &["-v"], &["--color", "always"], &["--color", "never"]] {
            let all: Vec<&str> = flags.iter().chain(args).copied().collect();
            let out = run_env(&f, &all, &[("CLICOLOR_FORCE", "1")]).ok().stdout;
            assert_eq!(out, plain, "`xtask {}` changed stdout", all.join(" "));
        }
    }
}

#[test]
fn layer_all_ends_with_a_summary_line() {
    let env = require_docker!("layer_all_ends_with_a_summary_line");
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n"), ("idna", "idna==3.10\n")]);
    let first = f.run(&["layer", "--all"]).ok();
    assert_eq!(first.stderr.lines().last(), Some("built 2, up-to-date 0, failed 0"), "{}", first.stderr);
    assert_eq!(first.stderr.matches("building").count(), 2, "`building` once per unit:\n{}", first.stderr);
    f.write("layers/idna/requirements.txt", "idna==3.9\n");
    let second = f.run(&["layer", "--all"]).ok();
    assert_eq!(second.stderr.lines().last(), Some("built 1, up-to-date 1, failed 0"), "{}", second.stderr);
    // Sizes are human (KiB for these small layers), and one file is not "1 files".
    assert!(second.stderr.contains(" KiB zip, ") && !second.stderr.contains(" 1 files"), "{}", second.stderr);
}

#[test]
fn a_long_layer_name_keeps_the_table_aligned() {
    // No docker: `list` only plans.
    let env = TestEnv { image: "unused".into(), endpoint: None };
    let long = "a-layer-name-much-longer-than-twenty-characters";
    let f = Fixture::new(&env, &[("six", "six==1.16.0\n"), (long, "idna==3.10\n")]);
    f.write("layers/broken/requirements.txt", "six==1.16.0\n");
    f.write("layers/broken/layer.toml", "runtimes = [\"python2.7\"]\n");
    let run = f.run(&["list"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    let header = lines.iter().position(|l| l.contains("RUNTIME")).unwrap_or_else(|| panic!("{}", run.stderr));
    let column = lines[header].find("RUNTIME").unwrap();
    let rows: Vec<&str> = lines[header + 1..].iter().copied().filter(|l| !l.starts_with("error:")).collect();
    assert_eq!(rows.len(), 2, "{}", run.stderr);
    for row in &rows {
        assert_eq!(row.find("python3.13"), Some(column), "misaligned:\n{}", run.stderr);
    }
    assert!(rows.iter().any(|r| r.contains(long)), "{}", run.stderr);
    // A layer whose config is broken is an error line after the table, not a row of it.
    let error = lines.last().unwrap();
    assert!(error.starts_with("error: layer broken:") && error.contains("python2.7"), "{}", run.stderr);
}
