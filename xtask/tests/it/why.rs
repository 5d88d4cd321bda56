//! Layers stay atomic and say why a package is in them: `new`/`lock` name the packages
//! another layer already ships and `--requires auto` leaves them out; `why` reads the
//! `# via` lines the lock records (the real pinned uv against the real index).

use crate::common;

use common::{Fixture, Run};

fn lock_of(f: &Fixture, layer: &str) -> String {
    std::fs::read_to_string(f.path(&format!("layers/{layer}/requirements.txt"))).unwrap()
}

/// The package names a lock pins.
fn pinned(lock: &str) -> Vec<String> {
    lock.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphanumeric()))
        .map(|l| l.split("==").next().unwrap().to_string())
        .collect()
}

#[test]
fn new_warns_of_packages_another_layer_ships_and_requires_auto_leaves_them_out() {
    let env = require_docker!("why_new_requires_auto");
    let f = Fixture::new(&env, &[]);
    f.write("layers/base/requirements.in", "idna\n");
    f.run(&["lock", "base"]).ok();
    // Without --requires: the layer bundles idna, and the warning gives the exact command.
    let run = f.run(&["new", "web", "requests"]).ok();
    assert!(pinned(&lock_of(&f, "web")).contains(&"idna".to_string()), "{}", lock_of(&f, "web"));
    assert!(
        run.stderr.contains("layers/web: idna ")
            && run.stderr.contains("is provided by layer `base`: add `--requires base` to keep layers atomic"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`cargo xtask lock web --requires auto` (adds base to its requires)"),
        "{}",
        run.stderr
    );
    // The command it names: requires set, idna left out, no warning left.
    let run = f.run(&["lock", "web", "--requires", "auto"]).ok();
    assert!(!run.stderr.contains("warning:"), "{}", run.stderr);
    let web = lock_of(&f, "web");
    let names = pinned(&web);
    assert!(names.contains(&"requests".to_string()) && !names.contains(&"idna".to_string()), "{web}");
    assert!(web.contains("# provided by required layers: idna (layer base)\n#   idna via requests\n"), "{web}");
    let toml = std::fs::read_to_string(f.path("layers/web/layer.toml")).unwrap();
    assert!(toml.contains("\nrequires = [\"base\"] # layers attached before this one"), "{toml}");
    f.run(&["lock", "web", "--check"]).ok();
    // `new --requires auto` does it in one go: web ships requests and requires base (idna),
    // so requiring web alone covers both; six is nobody's and stays.
    let run = f.run(&["new", "web2", "requests", "six", "--requires", "auto"]).ok();
    assert!(!run.stderr.contains("warning:"), "{}", run.stderr);
    assert_eq!(pinned(&lock_of(&f, "web2")), ["six"], "{}", lock_of(&f, "web2"));
    let toml = std::fs::read_to_string(f.path("layers/web2/layer.toml")).unwrap();
    assert!(toml.contains("\nrequires = [\"web\"]"), "{toml}");
    // Never a cycle: base is required by web, so nothing it could require qualifies.
    let run = f.run(&["lock", "base", "--requires", "auto"]).ok();
    assert!(run.stderr.contains("no other layer provides a package of layer base"), "{}", run.stderr);
    // An explicit name is checked first: a typo names the closest layer and creates nothing.
    f.run(&["new", "web3", "requests", "--requires", "bsae"])
        .fails_with(&["--requires bsae: unknown layer `bsae`: did you mean `base`?"]);
    assert!(!f.path("layers/web3").exists());
    f.run(&["lock", "base", "--requires", "web"]).fails_with(&["layer web requires base already"]);
}

#[test]
fn why_shows_each_chain_and_the_required_layer_providing_a_package() {
    let env = require_docker!("why_chains");
    let f = Fixture::new(&env, &[]);
    f.write("layers/base/requirements.in", "idna\nsix\n");
    f.write("layers/web/requirements.in", "requests>=2\n");
    f.write("layers/web/layer.toml", "requires = [\"base\"]\n");
    f.run(&["lock", "--all"]).ok();
    let web = lock_of(&f, "web");
    let version = |pkg: &str| {
        let line = web.lines().find(|l| l.starts_with(&format!("{pkg}=="))).unwrap_or_else(|| panic!("{pkg}: {web}"));
        line.split("==").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
    };
    let (requests, urllib3) = (version("requests"), version("urllib3"));
    // Transitive: the chain from requirements.in, with its line as written.
    let run = f.run(&["why", "web", "URLLib3"]).ok();
    assert!(run.stderr.contains(&format!("layers/web python3.13 x86_64: urllib3 {urllib3}\n")), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("  requests=={requests} (requirements.in: requests>=2) -> urllib3=={urllib3}\n")),
        "{}",
        run.stderr
    );
    // Direct.
    let run = f.run(&["why", "web", "requests"]).ok();
    assert!(run.stderr.contains(&format!("  requests=={requests} (requirements.in: requests>=2)\n")), "{}", run.stderr);
    // From the required layer: which layer provides it, and the chain that needs it.
    let run = f.run(&["why", "web", "idna", "--json"]).ok();
    assert!(run.stderr.contains(", from required layer `base`\n"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("  requests=={requests} (requirements.in: requests>=2) -> idna==")),
        "{}",
        run.stderr
    );
    let json = run.json();
    assert_eq!(json.len(), 1, "{}", run.stdout);
    assert_eq!((&json[0]["layer"], &json[0]["provided_by"]), (&"web".into(), &"base".into()), "{}", run.stdout);
    let chain = json[0]["chains"][0].as_array().unwrap();
    assert_eq!(chain.iter().map(|n| n["name"].as_str().unwrap()).collect::<Vec<_>>(), ["requests", "idna"]);
    assert_eq!(chain[1]["layer"], "base", "{}", run.stdout);
    // Not in the layer: one line, non-zero, naming the required layer that ships it.
    f.run(&["why", "web", "six"]).fails_with(&[
        "no package six in layer web: nothing it locks needs it; layer `base`, which web requires, ships six",
    ]);
    f.run(&["why", "web", "requestz"]).fails_with(&["no package requestz in layer web: did you mean `requests`?"]);
    f.run(&["why", "wbe", "idna"]).fails_with(&["unknown layer `wbe`: did you mean `web`?"]);
    // A lock written before reasons were recorded: still current for `lock --check`, and
    // `why` says how to get them; `lock` adds them and changes nothing else.
    let old: String = web
        .lines()
        .filter(|l| !l.trim_start().starts_with("# via ") && !l.starts_with("#   "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(old, web);
    f.write("layers/web/requirements.txt", &old);
    let run = f.run(&["lock", "web", "--check"]).ok();
    assert!(run.stderr.contains("records no reasons yet"), "{}", run.stderr);
    f.run(&["why", "web", "idna"]).fails_with(&["records no reasons", "run `cargo xtask lock web`"]);
    f.run(&["lock", "web"]).ok();
    assert_eq!(lock_of(&f, "web"), web);
}

/// Every error above is one line.
#[test]
fn why_errors_are_one_line() {
    let env = require_docker!("why_one_line");
    let f = Fixture::new(&env, &[("hand", "six==1.17.0\n")]);
    let run = Run::from(f.cmd(&["why", "hand", "six"]).output().unwrap(), &["why"]);
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.starts_with("note:")).collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].starts_with("error: layer hand has a hand-written requirements.txt"), "{}", run.stderr);
}
