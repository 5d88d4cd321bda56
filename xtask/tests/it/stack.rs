//! Integration tests of `cargo xtask stack`'s checks (layer count, size with the
//! function's code, closure, overlaps): the real binary and real layers built in the local
//! build image. What a stack does with published layers (ARNs, a merged layer published,
//! prune) is in xtask-aws's tests (xtask-aws/tests/it/stack.rs).

use crate::common::{check_line, Fixture};

const NUMPY: &str = "numpy==2.3.5\n";
const PANDAS: &str = "pandas==2.3.3\npython-dateutil==2.9.0.post0\npytz==2025.2\ntzdata==2025.2\nsix==1.17.0\n";
const LIMIT: u64 = 262_144_000;

/// `262144000` as `262,144,000`, as the checks print byte counts.
fn digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn more_than_five_layers_and_an_over_budget_stack_fail_with_the_numbers() {
    let env = require_docker!("more_than_five_layers_and_an_over_budget_stack_fail_with_the_numbers");
    let layers: Vec<(String, &str)> = (1..=6).map(|i| (format!("l{i}"), "six==1.17.0\n")).collect();
    let refs: Vec<(&str, &str)> = layers.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    let f = Fixture::new(&env, &refs);
    f.stack("many", "layers = [\"l1\", \"l2\", \"l3\", \"l4\", \"l5\", \"l6\"]\nruntime = \"python3.13\"\n");
    f.stack("heavy", &format!("layers = [\"l1\"]\nruntime = \"python3.13\"\nfunction_bytes = {LIMIT}\n"));
    f.stack("fits", "layers = [\"l1\"]\nruntime = \"python3.13\"\n");

    let many = f.run(&["stack", "many"]);
    assert_eq!(many.code, Some(1), "{}", many.stderr);
    let line = check_line(&many.stderr, "layers");
    assert!(
        line.contains("FAIL")
            && line.contains("6 layers, over Lambda's limit of 5 per function (by 1)")
            && line.contains("--merge many-merged"),
        "{line}"
    );
    assert!(many.stdout.is_empty(), "nothing is published, so no ARNs: {}", many.stdout);

    let heavy = f.run(&["stack", "heavy"]);
    assert_eq!(heavy.code, Some(1), "{}", heavy.stderr);
    let six = f.unzipped("l1");
    let line = check_line(&heavy.stderr, "size");
    for needle in [
        "FAIL",
        &format!("({} bytes) of 250 MiB (262,144,000 bytes)", digits(six + LIMIT)),
        &format!("over Lambda's limit by 0.0 MiB ({} bytes)", digits(six)),
    ] {
        assert!(line.contains(needle), "`{needle}` not in: {line}");
    }
    assert!(heavy.stderr.contains(&format!("l1: 0.0 MiB ({} bytes)", digits(six))), "{}", heavy.stderr);

    let fits = f.run(&["stack", "fits"]);
    let line = check_line(&fits.stderr, "size");
    let headroom = LIMIT - six - 5 * 1024 * 1024;
    assert!(
        line.starts_with("  pass")
            && line.contains(&format!(
                "headroom {:.1} MiB ({} bytes)",
                headroom as f64 / 1_048_576.0,
                digits(headroom)
            )),
        "{line}"
    );
    for check in ["layers", "closure", "overlap", "targets"] {
        assert!(check_line(&fits.stderr, check).starts_with("  pass"), "{}", fits.stderr);
    }
}

#[test]
fn an_overlap_is_reported_with_the_layer_that_wins() {
    let env = require_docker!("an_overlap_is_reported_with_the_layer_that_wins");
    let f = Fixture::new(&env, &[("old", "six==1.16.0\n"), ("new", "six==1.17.0\n"), ("same", "six==1.17.0\n")]);
    f.stack("s", "layers = [\"new\", \"same\"]\nruntime = \"python3.13\"\narch = \"x86_64\"\n");
    f.stack("mixed", "layers = [\"old\", \"new\", \"same\"]\nruntime = \"python3.13\"\narch = \"x86_64\"\n");
    let run = f.run(&["stack", "s", "--no-arns"]).ok();
    let line = check_line(&run.stderr, "overlap");
    assert!(line.starts_with("  warn") && line.contains("later layer's copy wins"), "{line}");
    assert!(
        run.stderr.contains("python/six-1.17.0.dist-info/ (")
            && run.stderr.contains("shipped by new, same: identical copies"),
        "{}",
        run.stderr
    );
    // The same version twice is wasted bytes: a warning.
    assert!(
        run.stderr.contains("distribution six 1.17.0 is shipped by layers new, same: wasted bytes"),
        "{}",
        run.stderr
    );
    // An overlap is a warning, not a failure: the closure and the rest still pass.
    assert!(check_line(&run.stderr, "closure").starts_with("  pass"), "{}", run.stderr);

    // Two versions of one distribution mix their files in /opt/python: an error naming
    // both layers and versions.
    let run = f.run(&["stack", "mixed"]);
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    let line = check_line(&run.stderr, "overlap");
    assert!(
        line.starts_with("  FAIL")
            && line.contains("six: layer old has 1.16.0, layer new has 1.17.0, layer same has 1.17.0"),
        "{line}"
    );
    // six.py: three copies, the last two identical; `same` is extracted last and wins.
    assert!(
        run.stderr.contains("python/six.py shipped by old, new, same: different content: same wins"),
        "{}",
        run.stderr
    );
    // Nor can they be merged into one layer: refused before layers/combo is written.
    f.run(&["stack", "mixed", "--merge", "combo"])
        .fails_with(&["refused: cannot merge stack mixed into layer combo", "six: layer old has 1.16.0"]);
    assert!(!f.path("layers/combo").exists());
}

#[test]
fn a_stack_of_pandas_without_numpy_names_the_missing_package() {
    let env = require_docker!("a_stack_of_pandas_without_numpy_names_the_missing_package");
    let f = Fixture::new(&env, &[("numpy", NUMPY), ("pandas", PANDAS)]);
    f.stack("partial", "layers = [\"pandas\"]\nruntime = \"python3.13\"\n");
    f.stack("whole", "layers = [\"numpy\", \"pandas\"]\nruntime = \"python3.13\"\n");
    let run = f.run(&["stack", "partial"]);
    assert_eq!(run.code, Some(1));
    let line = check_line(&run.stderr, "closure");
    assert!(line.starts_with("  FAIL"), "{line}");
    assert!(
        run.stderr.contains("pandas (layer pandas) requires numpy>=")
            && run.stderr.contains("which no layer of the stack provides: add layer numpy to the stack"),
        "{}",
        run.stderr
    );
    // numpy was not needed for that verdict: only the stack's layers were built.
    assert!(!f.zip("numpy").exists());
    let whole = f.run(&["stack", "whole"]);
    assert!(check_line(&whole.stderr, "closure").starts_with("  pass"), "{}", whole.stderr);
    assert!(check_line(&whole.stderr, "overlap").starts_with("  pass"), "{}", whole.stderr);
}
