//! `cargo xtask bench`: the tool against the article's pipeline (scripts/article-pipeline.sh)
//! on the same machine, image and requirements, runs alternating, medians and ratios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::args::ImageArgs;
use crate::limits::mib;
use crate::output;
use crate::repo::Repo;
use crate::runtime::Runtime;

#[derive(clap::Args, Debug)]
#[command(mut_arg("image", |a| a.help("Build image for both sides (default: the configured image of the bench layer)")))]
pub struct Args {
    /// Runs of each case for each side (at least 3)
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[command(flatten)]
    pub image: ImageArgs,
    /// Layers whose requirements make up the bench layer
    #[arg(long, value_delimiter = ',', default_value = "numpy,pandas")]
    pub layers: Vec<String>,
    /// Runtime of the bench layer (must match the image's Python)
    #[arg(long, default_value = "python3.13", value_parser = crate::runtime::Runtime::parse)]
    pub runtime: Runtime,
    /// Layers for the publish-all no-op case (0 skips it)
    #[arg(long, default_value_t = 50)]
    pub publish_layers: usize,
    /// Measure the first compile of a fresh clone of HEAD instead (`cargo build` into an empty target folder)
    #[arg(long)]
    pub compile: bool,
    /// Emulator endpoint for the publish-all no-op case
    #[arg(long, env = "XTASK_BENCH_ENDPOINT", default_value = "http://127.0.0.1:5077")]
    pub endpoint: String,
}

struct Case {
    name: &'static str,
    article: Vec<Duration>,
    tool: Vec<Duration>,
    target: &'static str,
}

fn median(v: &[Duration]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|d| d.as_secs_f64()).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn timed(mut cmd: Command, what: &str) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{what} failed:\n{}", crate::process::fence_tail(&String::from_utf8_lossy(&out.stderr), 15));
    }
    Ok(took)
}

/// A layer's requirements as plain pins (`name==version`, no hashes), so the bench can
/// change one pin and both sides install the same list.
fn plain_pins(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let spec = line.split('#').next().unwrap_or("").trim().trim_end_matches('\\').trim();
        let spec = spec.split_whitespace().next().unwrap_or("");
        if spec.is_empty() || spec.starts_with('-') {
            continue;
        }
        out.push_str(spec);
        out.push('\n');
    }
    out
}

/// The requirements with six's pin moved to the other of two versions.
fn bump_six(reqs: &str) -> Result<String> {
    let (from, to) = if reqs.contains("six==1.17.0\n") {
        ("six==1.17.0\n", "six==1.16.0\n")
    } else if reqs.contains("six==1.16.0\n") {
        ("six==1.16.0\n", "six==1.17.0\n")
    } else {
        bail!("the one-pin bump changes six's pin: the bench layers must pin six==1.16.0 or six==1.17.0");
    };
    Ok(reqs.replacen(from, to, 1))
}

/// Ten single-package layers, small and medium, for `layer --all --jobs 1` vs `--jobs N`.
const PARALLEL_LAYERS: &[&str] = &[
    "six==1.17.0",
    "idna==3.10",
    "certifi==2024.8.30",
    "attrs==24.2.0",
    "packaging==24.1",
    "pyyaml==6.0.2",
    "charset-normalizer==3.4.0",
    "urllib3==2.2.3",
    "python-dateutil==2.9.0.post0",
    "markupsafe==3.0.2",
];

/// A throw-away layer repo with one layer per (name, requirements).
fn bench_repo(dir: &Path, layers: &[(&str, &str)], runtime: Runtime, image: &str) -> Result<()> {
    for (name, reqs) in layers {
        std::fs::create_dir_all(dir.join("layers").join(name))?;
        std::fs::write(dir.join("layers").join(name).join("requirements.txt"), reqs)?;
    }
    std::fs::write(
        dir.join("layers.toml"),
        format!("[defaults]\nruntimes = [\"{}\"]\nimage = \"{image}\"\n", runtime.id),
    )?;
    Ok(())
}

pub fn run(repo: Repo, args: &Args) -> Result<bool> {
    if args.runs < 3 {
        bail!("--runs must be at least 3");
    }
    if args.compile {
        return super::bench_compile::run(&repo, args.runs);
    }
    let runtime = args.runtime;
    let ctx = crate::unit::Context::new(repo.clone(), None)?.with_stale_lock(crate::unit::StaleLock::Ignore);
    let read_pins = |l: &str| -> Result<String> {
        let cfg = ctx.config.layer(&repo, l)?;
        let path = cfg.dir.join("requirements.txt");
        Ok(plain_pins(&std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?))
    };
    let mut reqs = String::new();
    for l in &args.layers {
        reqs.push_str(&read_pins(l)?);
    }
    let numpy_reqs = read_pins("numpy")?;
    bump_six(&reqs)?;
    let image = match &args.image.image {
        Some(i) => i.clone(),
        None => crate::config::expand_image(crate::config::DEFAULT_IMAGE, runtime, crate::runtime::Arch::X86_64),
    };
    let exe = std::env::current_exe()?;
    let script = repo.root.join("scripts/article-pipeline.sh");
    let scratch = tempfile::Builder::new().prefix("xtask-bench-").tempdir()?;
    let bench_repo_dir = scratch.path().join("repo");
    bench_repo(&bench_repo_dir, &[("bench", &reqs), ("numpy", &numpy_reqs)], runtime, &image)?;
    let bench_reqs = bench_repo_dir.join("layers/bench/requirements.txt");
    let article_zip = scratch.path().join("article.zip");
    let warm_cache = scratch.path().join("cache-warm");
    // Both installers' caches live under one folder, so "cold" empties both.
    let tool_in = |root: &Path, cache: &Path, sub: &[&str]| {
        let mut c = Command::new(&exe);
        c.arg("--repo").arg(root).args(sub);
        c.env("XTASK_PIP_CACHE", cache.join("pip")).env("XTASK_UV_CACHE", cache.join("uv"));
        c
    };
    let tool = |cache: &Path, layer: &str, extra: &[&str]| {
        let mut sub = vec!["layer", layer];
        sub.extend_from_slice(extra);
        tool_in(&bench_repo_dir, cache, &sub)
    };
    let article = |layer: &str| {
        let mut c = Command::new("bash");
        c.arg(&script).arg(&image).arg(bench_repo_dir.join("layers").join(layer)).arg(&article_zip);
        c
    };

    output::status(
        "bench",
        format_args!("{} runs per side, image {image}, layers {}", args.runs, args.layers.join("+")),
    );
    // Warm the shared caches once, with both pins of six; these runs are not measured.
    timed(tool(&warm_cache, "numpy", &["--force"]), "warm-up build")?;
    for _ in 0..2 {
        timed(tool(&warm_cache, "bench", &["--force"]), "warm-up build")?;
        std::fs::write(&bench_reqs, bump_six(&std::fs::read_to_string(&bench_reqs)?)?)?;
    }

    let mut cases = vec![
        Case { name: "cold build (empty caches)", article: vec![], tool: vec![], target: "<= 1.05x" },
        Case { name: "warm rebuild (forced, same inputs)", article: vec![], tool: vec![], target: "<= 0.15x" },
        Case { name: "one-pin bump (six's version changed)", article: vec![], tool: vec![], target: "<= 0.15x" },
        Case { name: "numpy alone, warm rebuild", article: vec![], tool: vec![], target: "<= 0.25x" },
        Case { name: "no-op (nothing changed)", article: vec![], tool: vec![], target: "< 0.05 s" },
        Case { name: "packaging alone (same tree)", article: vec![], tool: vec![], target: "<= 0.5x" },
    ];
    let tree = scratch.path().join("tree");
    for i in 0..args.runs {
        output::status("bench", format_args!("round {}/{}", i + 1, args.runs));
        // 1. cold: the article's pipeline has no cache at all; the tool gets empty ones.
        let cold = scratch.path().join(format!("cache-cold-{i}"));
        cases[0].article.push(timed(article("bench"), "article pipeline")?);
        cases[0].tool.push(timed(tool(&cold, "bench", &["--force"]), "cargo xtask layer (cold)")?);
        let _ = std::fs::remove_dir_all(&cold);
        // 2. warm rebuild: a build must run; the article's pipeline has no cache to be warm.
        cases[1].article.push(timed(article("bench"), "article pipeline")?);
        cases[1].tool.push(timed(tool(&warm_cache, "bench", &["--force"]), "cargo xtask layer (warm)")?);
        // 3. one pin changed: the tool sees a new fingerprint; the article rebuilds as always.
        std::fs::write(&bench_reqs, bump_six(&std::fs::read_to_string(&bench_reqs)?)?)?;
        cases[2].article.push(timed(article("bench"), "article pipeline")?);
        cases[2].tool.push(timed(tool(&warm_cache, "bench", &[]), "cargo xtask layer (one-pin bump)")?);
        // 4. numpy alone.
        cases[3].article.push(timed(article("numpy"), "article pipeline")?);
        cases[3].tool.push(timed(tool(&warm_cache, "numpy", &["--force"]), "cargo xtask layer numpy (warm)")?);
        // 5. no-op: the article's pipeline cannot tell, so it rebuilds.
        cases[4].article.push(timed(article("bench"), "article pipeline")?);
        cases[4].tool.push(timed(tool(&warm_cache, "bench", &[]), "cargo xtask layer (no-op)")?);
        // 6. packaging: the same installed tree, Info-ZIP vs the tool's packager.
        if i == 0 {
            let _ = std::fs::remove_dir_all(&tree);
            std::fs::create_dir_all(&tree)?;
            crate::unit::unzip_into(&article_zip, &tree)?;
        }
        let zip_out = scratch.path().join("infozip.zip");
        let _ = std::fs::remove_file(&zip_out);
        let mut z = Command::new("zip");
        z.current_dir(&tree).args(["-q", "-r"]).arg(&zip_out).arg("python");
        cases[5].article.push(timed(z, "zip -r")?);
        let start = Instant::now();
        let p = crate::package::package(&tree)?;
        std::fs::write(scratch.path().join("tool-pack.zip"), &p.bytes)?;
        cases[5].tool.push(start.elapsed());
    }
    let infozip_size = std::fs::metadata(scratch.path().join("infozip.zip"))?.len();
    let toolpack_size = std::fs::metadata(scratch.path().join("tool-pack.zip"))?.len();

    // 7. `layer --all` over ten layers with cold caches: one unit at a time vs N at once.
    let jobs = crate::schedule::default_jobs();
    let par_root = scratch.path().join("parallel-repo");
    let par_layers: Vec<(String, String)> =
        PARALLEL_LAYERS.iter().map(|p| (p.split("==").next().unwrap_or(p).to_string(), format!("{p}\n"))).collect();
    let par_refs: Vec<(&str, &str)> = par_layers.iter().map(|(n, r)| (n.as_str(), r.as_str())).collect();
    bench_repo(&par_root, &par_refs, runtime, &image)?;
    let (mut one, mut many) = (Vec::new(), Vec::new());
    let jobs_arg = jobs.to_string();
    for i in 0..args.runs {
        output::status("bench", format_args!("layer --all --jobs 1 vs --jobs {jobs}, round {}/{}", i + 1, args.runs));
        for (j, out) in [("1", &mut one), (jobs_arg.as_str(), &mut many)] {
            let cold = scratch.path().join(format!("cache-par-{i}-{j}"));
            out.push(timed(
                tool_in(&par_root, &cold, &["layer", "--all", "--force", "--jobs", j]),
                "cargo xtask layer --all",
            )?);
            let _ = std::fs::remove_dir_all(&cold);
        }
    }

    // 8. publish-all with nothing changed, N layers, against the emulator.
    let publish =
        if args.publish_layers > 0 { Some(bench_publish(&exe, scratch.path(), args, &image, runtime)?) } else { None };

    // Sizes and whether the outputs work (the last article run built the bench layer).
    let report = crate::report::read(&bench_repo_dir.join(format!("dist/bench/bench-{}-x86_64.json", runtime.tag())))?;
    let article_unzipped = unzipped_size(&article_zip)?;
    let article_zipped = std::fs::metadata(&article_zip)?.len();
    let tool_zip = bench_repo_dir.join(&report.zip);
    let (art_ok, art_fail) = import_check(&image, &article_zip, &tool_zip, scratch.path())?;
    let (tool_ok, tool_fail) = import_check(&image, &tool_zip, &tool_zip, scratch.path())?;

    // Print and write.
    let mut table = String::new();
    table.push_str(
        "| case | article pipeline (median s) | cargo xtask (median s) | ratio | target |\n|---|---|---|---|---|\n",
    );
    let mut cases_json = Vec::new();
    let secs = |v: &[Duration]| v.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>();
    for c in &cases {
        let (a, t) = (median(&c.article), median(&c.tool));
        table.push_str(&format!("| {} | {a:.2} | {t:.3} | {:.2}x | {} |\n", c.name, t / a, c.target));
        cases_json.push(json!({"case": c.name, "article_s": secs(&c.article),
            "tool_s": secs(&c.tool), "article_median_s": a, "tool_median_s": t, "ratio": t / a, "target": c.target}));
    }
    if let Some((runs, n)) = &publish {
        let m = median(runs);
        table.push_str(&format!("| publish-all no-op, {n} layers, emulator | - | {m:.3} | - | < 2 s |\n"));
        cases_json.push(json!({"case": format!("publish-all no-op ({n} layers)"), "tool_s": secs(runs), "tool_median_s": m, "target": "< 2 s"}));
    }
    let (m1, mn) = (median(&one), median(&many));
    table.push_str(&format!(
        "\n| layer --all, {} layers, cold caches | --jobs 1 (median s) | --jobs {jobs} (median s) | ratio |\n|---|---|---|---|\n| cargo xtask | {m1:.2} | {mn:.2} | {:.2}x |\n",
        PARALLEL_LAYERS.len(),
        mn / m1
    ));
    cases_json.push(json!({"case": format!("layer --all, {} layers, cold caches", PARALLEL_LAYERS.len()),
        "jobs_1_s": secs(&one), format!("jobs_{jobs}_s"): secs(&many), "jobs_1_median_s": m1, "jobs_n_median_s": mn, "jobs": jobs, "ratio": mn / m1}));
    table.push_str(&format!(
        "\n| output | zipped | unzipped | imports + importlib.metadata |\n|---|---|---|---|\n\
         | article pipeline | {} | {} | {art_ok} ok, {} failed |\n| cargo xtask (slim = safe) | {} | {} ({:.2}x) | {tool_ok} ok, {} failed |\n\
         | packaging: zip -r vs tool | {infozip_size} B | {toolpack_size} B ({:+.2}%) | |\n",
        mib(article_zipped),
        mib(article_unzipped),
        art_fail.len(),
        mib(report.zipped_bytes),
        mib(report.unzipped_bytes),
        report.unzipped_bytes as f64 / article_unzipped as f64,
        tool_fail.len(),
        (toolpack_size as f64 / infozip_size as f64 - 1.0) * 100.0,
    ));
    let machine = format!(
        "{} cores, {}, docker image {image}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        std::env::consts::ARCH
    );
    let result = json!({"machine": machine, "runs": args.runs, "layers": args.layers, "cases": cases_json,
        "sizes": {"article_zipped": article_zipped, "article_unzipped": article_unzipped, "tool_zipped": report.zipped_bytes,
                  "tool_unzipped": report.unzipped_bytes, "infozip_zip": infozip_size, "tool_packager_zip": toolpack_size},
        "imports": {"article_failures": art_fail, "tool_failures": tool_fail}});
    let out_dir = repo.dist_dir().join("bench");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("results.json"), serde_json::to_string_pretty(&result)?)?;
    std::fs::write(out_dir.join("results.md"), format!("Machine: {machine}\n\n{table}"))?;
    output::line(format_args!("\n{}", table.trim_end()));
    output::status("written", "dist/bench/results.json, dist/bench/results.md");
    output::json(&result)?;
    Ok(true)
}

fn unzipped_size(zip: &Path) -> Result<u64> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip)?)?;
    let mut total = 0;
    for i in 0..z.len() {
        total += z.by_index_raw(i)?.size();
    }
    Ok(total)
}

/// Imports every top-level module and reads every distribution's version, from `zip`
/// unpacked at /opt as Lambda does. Modules and distributions are listed from `reference`
/// (the tool's zip keeps the dist-info files that say what was installed).
fn import_check(image: &str, zip: &Path, reference: &Path, scratch: &Path) -> Result<(usize, Vec<String>)> {
    let dir = scratch.join(format!("import-{}", zip.file_stem().unwrap().to_string_lossy()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    crate::unit::unzip_into(zip, &dir)?;
    let refdir = scratch.join("import-reference");
    if !refdir.exists() {
        std::fs::create_dir_all(&refdir)?;
        crate::unit::unzip_into(reference, &refdir)?;
    }
    let mut modules = Vec::new();
    let mut dists = Vec::new();
    for e in std::fs::read_dir(refdir.join("python"))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".dist-info") {
            dists.push(stem.split('-').next().unwrap_or(stem).to_string());
            if let Ok(t) = std::fs::read_to_string(e.path().join("top_level.txt")) {
                modules.extend(t.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().to_string()));
            }
        }
    }
    modules.sort();
    modules.dedup();
    let code = format!(
        "import importlib, importlib.metadata as m, json\nfail=[]\nok=0\n\
         for mod in {modules:?}:\n    try: importlib.import_module(mod); ok+=1\n    except Exception as e: fail.append(f'import {{mod}}: {{e!r}}')\n\
         for d in {dists:?}:\n    try: m.version(d); ok+=1\n    except Exception as e: fail.append(f'version {{d}}: {{e!r}}')\n\
         print(json.dumps([ok, fail]))"
    );
    let out = Command::new(crate::settings::var("DOCKER").unwrap_or("docker"))
        .args(["run", "--rm", "-v"])
        .arg(format!("{}:/opt:ro", dir.display()))
        .args(["-e", "PYTHONPATH=/opt/python", "--entrypoint", "python3", image, "-c", &code])
        .output()?;
    if !out.status.success() {
        bail!("import check failed to run: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (ok, fail): (usize, Vec<String>) = serde_json::from_slice(&out.stdout)?;
    Ok((ok, fail))
}

/// `publish-all --profile local` with nothing changed, for `n` copies of a small layer:
/// one publish first (not measured), then the measured no-op runs.
fn bench_publish(
    exe: &Path,
    scratch: &Path,
    args: &Args,
    image: &str,
    runtime: crate::runtime::Runtime,
) -> Result<(Vec<Duration>, usize)> {
    let n = args.publish_layers;
    let root: PathBuf = scratch.join("publish-repo");
    for i in 0..n {
        let dir = root.join(format!("layers/small{i:02}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("requirements.txt"), "six==1.16.0\n")?;
    }
    std::fs::write(
        root.join("layers.toml"),
        format!(
            "[defaults]\nruntimes = [\"{}\"]\nimage = \"{image}\"\nbuilder = \"pip\"\n[profiles.local]\nregions = [\"us-east-1\"]\nbucket = \"bench-{}\"\nendpoint_url = \"{}\"\n",
            runtime.id,
            std::process::id(),
            args.endpoint
        ),
    )?;
    let cmd = |sub: &[&str]| {
        let mut c = Command::new(exe);
        c.arg("--repo").arg(&root).args(sub).args(["--profile", "local"]);
        c.env("AWS_ACCESS_KEY_ID", "bench").env("AWS_SECRET_ACCESS_KEY", "bench");
        c
    };
    output::status("bench", format_args!("publishing {n} layers to the emulator once (not measured)"));
    timed(cmd(&["bootstrap"]), "bootstrap")?;
    timed(cmd(&["publish-all", "--no-check"]), "publish-all (first)")?;
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(timed(cmd(&["publish-all"]), "publish-all (no-op)")?);
    }
    Ok((runs, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_lose_their_hashes_comments_and_options() {
        let text = "# locked\n--index-url https://x\nnumpy==2.3.5 \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\nsix==1.17.0  # via dateutil\n";
        assert_eq!(plain_pins(text), "numpy==2.3.5\nsix==1.17.0\n");
    }

    #[test]
    fn the_bump_moves_six_back_and_forth_and_needs_six() {
        let once = bump_six("numpy==2.3.5\nsix==1.17.0\n").unwrap();
        assert_eq!(once, "numpy==2.3.5\nsix==1.16.0\n");
        assert_eq!(bump_six(&once).unwrap(), "numpy==2.3.5\nsix==1.17.0\n");
        assert!(bump_six("numpy==2.3.5\n").is_err());
    }
}
