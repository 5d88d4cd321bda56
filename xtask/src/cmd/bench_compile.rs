//! `cargo xtask bench --compile`: what a team pays the first time it runs `cargo xtask`
//! in a fresh fork. The committed HEAD is cloned into a temporary folder, its crates are
//! fetched (not timed), then `cargo build -p xtask --timings` runs into an empty target
//! folder, `--runs` times; the median wall time, the CPU time summed over crates and the
//! crates that took longest (from cargo's timings report) are written to
//! `dist/bench/compile.{md,json}`. Each run then builds `xtask-aws` into the same target
//! folder: what the first AWS command (publish, status, ...) adds, once.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::output;
use crate::repo::Repo;

/// One cold build: its wall time and seconds per crate (build script and library added).
struct Build {
    wall_s: f64,
    /// The xtask-aws build after it (the SDK), into the same target folder.
    aws_wall_s: f64,
    crates: BTreeMap<String, f64>,
}

pub fn run(repo: &Repo, runs: usize) -> Result<bool> {
    let cargo = crate::settings::var("CARGO").unwrap_or("cargo").to_string();
    let scratch = tempfile::Builder::new().prefix("xtask-bench-compile-").tempdir()?;
    let clone = scratch.path().join("clone");
    run_ok(Command::new("git").args(["clone", "--quiet", "--no-hardlinks"]).arg(&repo.root).arg(&clone), "git clone")?;
    run_ok(Command::new(&cargo).arg("fetch").current_dir(&clone), "cargo fetch")?;
    let mut builds = Vec::new();
    for i in 0..runs {
        output::status("bench", format_args!("cold compile {}/{runs} of a fresh clone", i + 1));
        let target = scratch.path().join(format!("target-{i}"));
        let start = Instant::now();
        run_ok(
            Command::new(&cargo)
                .args(["build", "--quiet", "-p", "xtask", "--timings", "--offline"])
                .current_dir(&clone)
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTC_WRAPPER"),
            "cargo build",
        )?;
        let wall_s = start.elapsed().as_secs_f64();
        let html = std::fs::read_to_string(target.join("cargo-timings/cargo-timing.html"))
            .context("cargo wrote no timings report")?;
        let crates = crate_times(&html)?;
        output::status("bench", format_args!("then the AWS half {}/{runs}", i + 1));
        let start = Instant::now();
        run_ok(
            Command::new(&cargo)
                .args(["build", "--quiet", "-p", "xtask-aws", "--offline"])
                .current_dir(&clone)
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTC_WRAPPER"),
            "cargo build -p xtask-aws",
        )?;
        builds.push(Build { wall_s, aws_wall_s: start.elapsed().as_secs_f64(), crates });
        let _ = std::fs::remove_dir_all(&target);
    }
    let mut walls: Vec<f64> = builds.iter().map(|b| b.wall_s).collect();
    walls.sort_by(|a, b| a.total_cmp(b));
    let median = walls[walls.len() / 2];
    let mut aws_walls: Vec<f64> = builds.iter().map(|b| b.aws_wall_s).collect();
    aws_walls.sort_by(|a, b| a.total_cmp(b));
    let aws_median = aws_walls[aws_walls.len() / 2];
    // Per crate, the median over runs.
    let mut per_crate: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for b in &builds {
        for (name, s) in &b.crates {
            per_crate.entry(name).or_default().push(*s);
        }
    }
    let mut top: Vec<(&str, f64)> = per_crate
        .iter()
        .map(|(n, v)| {
            let mut v = v.clone();
            v.sort_by(|a, b| a.total_cmp(b));
            (*n, v[v.len() / 2])
        })
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let cpu: f64 = top.iter().map(|(_, s)| s).sum();
    let mut md = format!(
        "First compile of a fresh clone (`cargo build -p xtask`, empty target folder, crates already downloaded), {runs} runs, {} cores\n\n\
         | median wall | runs | crates | CPU time summed over crates |\n|---|---|---|---|\n| {median:.1} s | {} | {} | {cpu:.1} s |\n\n\
         The first AWS command (publish, status, ...) then compiles the xtask-aws binary and the AWS SDK once: \
         {aws_median:.1} s median more ({}).\n\n\
         | crate | seconds (median) |\n|---|---|\n",
        crate::schedule::default_jobs(),
        walls.iter().map(|w| format!("{w:.1}")).collect::<Vec<_>>().join(", "),
        top.len(),
        aws_walls.iter().map(|w| format!("{w:.1}")).collect::<Vec<_>>().join(", "),
    );
    for (name, s) in top.iter().take(10) {
        md.push_str(&format!("| {name} | {s:.1} |\n"));
    }
    let result = json!({"runs_s": walls, "median_s": median, "crates": top.len(), "cpu_s": cpu,
        "aws_runs_s": aws_walls, "aws_median_s": aws_median,
        "top": top.iter().take(10).map(|(n, s)| json!({"crate": n, "s": s})).collect::<Vec<_>>()});
    let out_dir = repo.dist_dir().join("bench");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("compile.json"), serde_json::to_string_pretty(&result)?)?;
    std::fs::write(out_dir.join("compile.md"), &md)?;
    output::line(format_args!("\n{}", md.trim_end()));
    output::status("written", "dist/bench/compile.json, dist/bench/compile.md");
    output::json(&result)?;
    Ok(true)
}

fn run_ok(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed:\n{}", crate::process::fence_tail(&String::from_utf8_lossy(&out.stderr), 15));
    }
    Ok(())
}

/// Seconds per crate from cargo's timings report (its `UNIT_DATA`: one entry per build
/// script run and per library or binary compiled).
fn crate_times(html: &str) -> Result<BTreeMap<String, f64>> {
    const START: &str = "const UNIT_DATA = ";
    let i = html.find(START).context("no UNIT_DATA in cargo's timings report")? + START.len();
    let j = i + html[i..].find(";\n").context("UNIT_DATA does not end")?;
    let units: Vec<serde_json::Value> = serde_json::from_str(&html[i..j]).context("UNIT_DATA is not JSON")?;
    let mut out = BTreeMap::new();
    for u in units {
        let name = u["name"].as_str().unwrap_or("?").to_string();
        *out.entry(name).or_insert(0.0) += u["duration"].as_f64().unwrap_or(0.0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_times_add_a_crates_build_script_and_library() {
        let html = "<script>\nconst UNIT_DATA = [{\"name\":\"ring\",\"target\":\" build-script\",\"duration\":1.5},\
                    {\"name\":\"ring\",\"target\":\"\",\"duration\":2.0},{\"name\":\"xtask\",\"duration\":3.25}];\nconst X = 1;";
        let t = crate_times(html).unwrap();
        assert_eq!(t["ring"], 3.5);
        assert_eq!(t["xtask"], 3.25);
        assert!(crate_times("no data").is_err());
    }
}
