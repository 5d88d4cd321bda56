//! Stage: lock. Resolves what a layer wants (`requirements.in`, or `pyproject.toml`
//! `[project] dependencies` with an optional `uv.lock`) into the `requirements.txt` builds
//! install with `pip --no-deps`: every package of the closure pinned `==` with its
//! hashes, for every runtime and architecture the layer targets, minus what the layers it
//! `requires` provide (their pins constrain the resolution). The header records the
//! inputs' hash, the targets and the resolver, so a stale lock is seen without resolving.
//!
//! Resolution runs uv once per target (`uv pip compile --python-version
//! --python-platform --only-binary :all: -o pylock.toml`, whose file list holds only
//! the wheels installable on that target), in parallel, then merges:
//! a package every target resolves to the same version is one line with the union of
//! the hashes; a package whose version differs between targets (or that only some
//! targets need) gets one line per version with a marker naming its targets.

pub mod provided;
pub mod uv;
pub mod via;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::config::RepoConfig;
use crate::python::Requirement;
use crate::quote::clip;
use crate::repo::Repo;
use crate::requirements_txt::Requirements;
use crate::runtime::{Arch, Runtime};

/// What the team writes: the file a lock starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `requirements.in`: top-level requirements, loose specifiers allowed.
    RequirementsIn,
    /// `pyproject.toml` `[project] dependencies`, with `uv.lock`'s versions when present.
    Pyproject { uv_lock: bool },
}

impl Source {
    fn describe(&self) -> &'static str {
        match self {
            Source::RequirementsIn => "requirements.in",
            Source::Pyproject { uv_lock: false } => "pyproject.toml",
            Source::Pyproject { uv_lock: true } => "pyproject.toml and uv.lock",
        }
    }

    /// The file the top-level requirements come from, as `# via` lines name it.
    pub fn file(&self) -> &'static str {
        match self {
            Source::RequirementsIn => "requirements.in",
            Source::Pyproject { .. } => "pyproject.toml",
        }
    }
}

/// Everything a lock of one layer depends on, read once.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub layer: String,
    pub dir: PathBuf,
    pub source: Source,
    /// The top-level requirements, one per line, comments dropped.
    pub requirements: Vec<String>,
    /// Pins of the layers it requires (transitively): (layer, normalised name, line).
    pub provided: Vec<(String, String, String)>,
    pub targets: Vec<(Runtime, Arch)>,
    /// sha256 of the requirements, the required layers' pins, uv.lock and the targets.
    pub hash: String,
}

/// Whether a layer is locked from an input file: `requirements.in`, or `pyproject.toml`
/// unless a hand-written requirements.txt is beside it (a local package the layer
/// installs from `./` has a pyproject.toml too, and that layer keeps working as before).
pub fn source_of(dir: &Path) -> Option<Source> {
    let hand_written =
        || std::fs::read_to_string(dir.join("requirements.txt")).is_ok_and(|t| read_header(&t).inputs.is_none());
    if dir.join("requirements.in").is_file() {
        Some(Source::RequirementsIn)
    } else if dir.join("pyproject.toml").is_file() && !hand_written() {
        Some(Source::Pyproject { uv_lock: dir.join("uv.lock").is_file() })
    } else {
        None
    }
}

/// Reads the inputs of layer `name`; `None` when it has no lock input (a hand-written
/// requirements.txt, which is used as it is).
pub fn inputs(repo: &Repo, config: &RepoConfig, name: &str) -> Result<Option<Inputs>> {
    let layer = config.layer(repo, name)?;
    let Some(source) = source_of(&layer.dir) else { return Ok(None) };
    let mut hasher = Sha256::new();
    let requirements = match &source {
        Source::RequirementsIn => {
            let text = std::fs::read_to_string(layer.dir.join("requirements.in"))
                .with_context(|| format!("cannot read layers/{name}/requirements.in"))?;
            parse_in(&text, name)?
        }
        Source::Pyproject { uv_lock } => {
            let deps = pyproject_dependencies(&layer.dir, name)?;
            if *uv_lock {
                let lock = std::fs::read(layer.dir.join("uv.lock"))
                    .with_context(|| format!("cannot read layers/{name}/uv.lock"))?;
                hasher.update(b"uv.lock\0");
                hasher.update(&lock);
            }
            deps
        }
    };
    hasher.update(b"requirements\0");
    for r in &requirements {
        hasher.update(r.as_bytes());
        hasher.update(b"\n");
    }
    let provided = provided_pins(repo, config, name)?;
    hasher.update(b"provided\0");
    for (layer, _, line) in &provided {
        hasher.update(format!("{layer}: {line}\n").as_bytes());
    }
    let targets = layer.targets();
    hasher.update(b"targets\0");
    hasher.update(targets_text(&targets).as_bytes());
    Ok(Some(Inputs {
        layer: name.to_string(),
        dir: layer.dir.clone(),
        source,
        requirements,
        provided,
        targets,
        hash: hex(&hasher.finalize()),
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn targets_text(targets: &[(Runtime, Arch)]) -> String {
    targets.iter().map(|(r, a)| format!("{r}-{a}")).collect::<Vec<_>>().join(" ")
}

/// Why a `name @ url` requirement is refused, and what to do instead.
const DIRECT_URL: &str = "direct URL requirements cannot be locked: put the wheel in the layer folder and name it in a hand-written requirements.txt (`./name-1.0-py3-none-any.whl`)";

/// The requirements of a requirements.in: one PEP 508 requirement per line; includes,
/// constraints, editables and other pip options are refused naming the line.
fn parse_in(text: &str, layer: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = match raw.find(" #").or_else(|| raw.trim_start().starts_with('#').then_some(0)) {
            Some(at) => &raw[..at],
            None => raw,
        };
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            continue;
        }
        if line.starts_with('-') {
            bail!(
                "layers/{layer}/requirements.in:{}: `{}` is not supported: requirements.in lists packages by name (no -r, -c, -e or other pip options)",
                i + 1,
                clip(&line)
            );
        }
        match Requirement::parse(&line) {
            None => bail!(
                "layers/{layer}/requirements.in:{}: `{}` is not a requirement (`name`, `name>=1.2`, `name[extra]`)",
                i + 1,
                clip(&line)
            ),
            Some(r) if r.is_direct_url() => {
                bail!("layers/{layer}/requirements.in:{}: `{}`: {DIRECT_URL}", i + 1, clip(&line))
            }
            Some(_) => {}
        }
        out.push(line);
    }
    if out.is_empty() {
        bail!("layers/{layer}/requirements.in lists no package: add one requirement per line");
    }
    Ok(out)
}

/// `[project] dependencies` of the layer's pyproject.toml.
fn pyproject_dependencies(dir: &Path, layer: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("pyproject.toml"))
        .with_context(|| format!("cannot read layers/{layer}/pyproject.toml"))?;
    let value: toml::Table = toml::from_str(&text).with_context(|| format!("layers/{layer}/pyproject.toml"))?;
    let deps = value
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
        .with_context(|| format!("layers/{layer}/pyproject.toml has no `[project] dependencies` list"))?;
    let mut out = Vec::new();
    for d in deps {
        let s = d.as_str().with_context(|| format!("layers/{layer}/pyproject.toml: dependencies must be strings"))?;
        match Requirement::parse(s) {
            None => bail!("layers/{layer}/pyproject.toml: `{}` is not a requirement", clip(s)),
            Some(r) if r.is_direct_url() => {
                bail!("layers/{layer}/pyproject.toml: `{}`: {DIRECT_URL}", clip(s))
            }
            Some(_) => {}
        }
        out.push(s.trim().to_string());
    }
    if out.is_empty() {
        bail!("layers/{layer}/pyproject.toml lists no dependency");
    }
    Ok(out)
}

/// The pins of every layer `name` requires, transitively: they are constraints of its
/// resolution and are left out of its requirements.txt.
fn provided_pins(repo: &Repo, config: &RepoConfig, name: &str) -> Result<Vec<(String, String, String)>> {
    let mut layers = crate::requires::closure(repo, config, name)?;
    layers.sort();
    let mut out = Vec::new();
    for l in layers {
        let dir = config.layer(repo, &l)?.dir;
        let reqs = Requirements::read(&dir, &l).with_context(|| format!("layer {l}, required by {name}"))?;
        for line in &reqs.lines {
            let req = line.split(" --").next().unwrap_or(line).trim();
            if let Some(r) = Requirement::parse(req).filter(|r| r.is_pinned()) {
                out.push((l.clone(), r.name.clone(), req.to_string()));
            }
        }
    }
    Ok(out)
}

/// What a lock's header says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Header {
    inputs: Option<String>,
    targets: Option<String>,
}

fn read_header(text: &str) -> Header {
    let mut h = Header::default();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(v) = line.strip_prefix("# inputs: sha256:") {
            h.inputs = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("# targets: ") {
            h.targets = Some(v.trim().to_string());
        }
    }
    h
}

/// Whether requirements.txt is the lock of the current inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// No lock input: requirements.txt is written by hand.
    NotLocked,
    Current,
    /// Why it is stale.
    Stale(String),
}

impl Freshness {
    /// The one-line error for a stale lock, `None` when it is not stale.
    pub fn error(&self, layer: &str) -> Option<String> {
        match self {
            Freshness::Stale(why) => {
                Some(format!("layers/{layer}/requirements.txt is stale ({why}): run `cargo xtask lock {layer}`"))
            }
            _ => None,
        }
    }
}

/// Compares requirements.txt's header with the inputs, offline (no resolver run).
pub fn freshness(repo: &Repo, config: &RepoConfig, name: &str) -> Result<Freshness> {
    let Some(inputs) = inputs(repo, config, name)? else { return Ok(Freshness::NotLocked) };
    let text = match std::fs::read_to_string(inputs.dir.join("requirements.txt")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Freshness::Stale("it does not exist".into()));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read layers/{name}/requirements.txt")),
    };
    let h = read_header(&text);
    Ok(if h.inputs.is_none() {
        Freshness::Stale("it has no lock header".into())
    } else if h.inputs.as_deref() != Some(inputs.hash.as_str()) {
        if h.targets.as_deref() != Some(targets_text(&inputs.targets).as_str()) {
            Freshness::Stale("the layer's runtimes or architectures changed".into())
        } else {
            Freshness::Stale(format!("{} or a required layer's pins changed", inputs.source.describe()))
        }
    } else {
        Freshness::Current
    })
}

/// How to treat the versions already locked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Resolve every package afresh (`--upgrade`).
    pub upgrade: bool,
    /// Resolve these packages afresh, keep the others (`--upgrade-package`).
    pub upgrade_packages: Vec<String>,
}

/// A resolved lock, not written yet.
#[derive(Debug, Clone)]
pub struct Locked {
    /// The whole new requirements.txt.
    pub text: String,
    /// How many packages it pins.
    pub packages: usize,
    /// Whether it differs from the requirements.txt on disk.
    pub changed: bool,
    /// Every (package, version) it pins, sorted.
    pub pins: BTreeSet<(String, String)>,
}

/// One package version as one target resolved it.
#[derive(Debug, Clone)]
struct Pin {
    name: String,
    version: String,
    hashes: BTreeSet<String>,
    /// The marker of the line it was read from (an existing lock), if any.
    marker: Option<String>,
}

/// Resolves the inputs for every target. Nothing is written.
pub fn resolve(inputs: &Inputs, uv: &Path, runner: &uv::Runner, opts: &Options) -> Result<Locked> {
    let tmp = tempfile::Builder::new().prefix("xtask-lock-").tempdir()?;
    std::fs::write(tmp.path().join("requirements.in"), inputs.requirements.join("\n") + "\n")?;
    let mut constraints: Vec<String> = inputs.provided.iter().map(|(_, _, line)| line.clone()).collect();
    if inputs.source == (Source::Pyproject { uv_lock: true }) {
        constraints.extend(uv_lock_pins(inputs, uv, runner)?);
    }
    std::fs::write(tmp.path().join("constraints.txt"), constraints.join("\n") + "\n")?;
    let existing = std::fs::read_to_string(inputs.dir.join("requirements.txt")).ok();

    let results: Vec<Result<(Vec<Pin>, via::Vias)>> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .targets
            .iter()
            .enumerate()
            .map(|(i, (runtime, arch))| {
                let tmp = tmp.path();
                let existing = existing.as_deref();
                s.spawn(move || compile(inputs, uv, runner, opts, tmp, i, *runtime, *arch, existing))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("uv thread panicked")))).collect()
    });
    let mut per_target = Vec::new();
    let mut vias = Vec::new();
    for r in results {
        let (pins, v) = r?;
        per_target.push(pins);
        vias.push(v);
    }
    let packages = per_target.iter().flatten().map(|p| p.name.as_str()).collect::<BTreeSet<_>>().len();
    // Requirements that the required layers do not provide must give at least one
    // package on every target: an empty result is uv failing quietly, not a lock.
    let provided: BTreeSet<&str> = inputs.provided.iter().map(|(_, name, _)| name.as_str()).collect();
    let own =
        inputs.requirements.iter().filter_map(|r| Requirement::parse(r)).any(|r| !provided.contains(r.name.as_str()));
    if own {
        for (pins, (runtime, arch)) in per_target.iter().zip(&inputs.targets) {
            if pins.is_empty() {
                bail!(
                    "uv resolved layers/{}/{} to no package for {runtime} {arch}: nothing was written (check `{}` and the index)",
                    inputs.layer,
                    inputs.source.describe(),
                    uv.display()
                );
            }
        }
    }
    let text = render(inputs, &per_target, &vias);
    let changed = existing.as_deref() != Some(text.as_str());
    let pins = per_target.iter().flatten().map(|p| (p.name.clone(), p.version.clone())).collect();
    Ok(Locked { text, packages, changed, pins })
}

/// `uv export` of the layer's uv.lock: the locked versions, used as constraints so the
/// resolution keeps them.
fn uv_lock_pins(inputs: &Inputs, uv: &Path, runner: &uv::Runner) -> Result<Vec<String>> {
    // uv export reads the project folder: a copy in a scratch folder the runner can see.
    let work = tempfile::Builder::new().prefix("xtask-uv-export-").tempdir()?;
    for f in ["pyproject.toml", "uv.lock"] {
        std::fs::copy(inputs.dir.join(f), work.path().join(f))
            .with_context(|| format!("cannot read layers/{}/{f}", inputs.layer))?;
    }
    let out = work.path().join("exported.txt");
    let args: Vec<String> =
        ["export", "--frozen", "--no-hashes", "--no-header", "--no-annotate", "--no-emit-project", "--quiet"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--project".into(), work.path().display().to_string(), "-o".into(), out.display().to_string()])
            .collect();
    let (ok, stderr) = runner.run(uv, work.path(), &args, "export")?;
    if !ok {
        bail!("cannot read layers/{}/uv.lock (uv export): {}", inputs.layer, one_line(&stderr));
    }
    Ok(std::fs::read_to_string(&out)
        .context("uv export wrote nothing")?
        .lines()
        .map(|l| l.trim().trim_end_matches('\\').trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('-'))
        .collect())
}

/// One `uv pip compile` for one target, written as `pylock.toml` (which names each file,
/// so only the wheels installable on the target are hashed); the existing lock is its
/// starting point (uv keeps its versions unless told to upgrade).
#[allow(clippy::too_many_arguments)]
fn compile(
    inputs: &Inputs,
    uv: &Path,
    runner: &uv::Runner,
    opts: &Options,
    tmp: &Path,
    i: usize,
    runtime: Runtime,
    arch: Arch,
    existing: Option<&str>,
) -> Result<(Vec<Pin>, via::Vias)> {
    let dir = tmp.join(format!("target-{i}"));
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("pylock.toml");
    if let Some(text) = existing.filter(|_| !opts.upgrade) {
        // Unparsable old locks only lose their preferences.
        if let Ok(pins) = parse_pins(text) {
            std::fs::write(&out, preferences(&pins))?;
        }
    }
    let path = |p: &Path| p.display().to_string();
    let mut args: Vec<String> = vec!["pip".into(), "compile".into(), path(&tmp.join("requirements.in"))];
    args.extend(["-o".into(), path(&out)]);
    args.extend(["--python-version".into(), format!("3.{}", runtime.minor)]);
    args.extend(["--python-platform".into(), uv::python_platform(runtime, arch)]);
    args.extend(["--only-binary", ":all:", "--no-header", "--quiet"].map(String::from));
    args.extend(["-c".into(), path(&tmp.join("constraints.txt"))]);
    for (_, name, _) in &inputs.provided {
        args.extend(["--no-emit-package".into(), name.clone()]);
    }
    if opts.upgrade {
        args.push("--upgrade".into());
    }
    for p in &opts.upgrade_packages {
        args.extend(["--upgrade-package".into(), p.clone()]);
    }
    let (ok, stderr) = runner.run(uv, tmp, &args, &format!("compile-{i}"))?;
    if !ok {
        let mut why = one_line(&stderr);
        for (layer, pkg, line) in &inputs.provided {
            if why.contains(pkg.as_str()) {
                why.push_str(&format!(" (`{line}` is the pin of layer {layer}, which this layer requires)"));
                break;
            }
        }
        bail!("cannot lock layer {} for {runtime} {arch}: {why}", inputs.layer);
    }
    let unreadable = || format!("uv ({}) locking layers/{} for {runtime} {arch}", uv.display(), inputs.layer);
    let text = std::fs::read_to_string(&out).with_context(|| format!("{}: it wrote no pylock.toml", unreadable()))?;
    let pins = parse_pylock(&text).with_context(unreadable)?;
    let vias = via::annotate(inputs, uv, runner, tmp, &dir, runtime, arch, &pins)?;
    Ok((pins, vias))
}

/// The versions of an existing lock as a minimal pylock.toml, which uv reads as its
/// preferences (each with its marker, so a version locked for one target only stays so).
fn preferences(pins: &[Pin]) -> String {
    let mut text = String::from("lock-version = \"1.0\"\ncreated-by = \"xtask\"\n");
    // A JSON string is a valid TOML basic string.
    let quote = |v: &str| serde_json::to_string(v).unwrap_or_default();
    for p in pins {
        text.push_str(&format!("\n[[packages]]\nname = {}\nversion = {}\n", quote(&p.name), quote(&p.version)));
        if let Some(m) = &p.marker {
            text.push_str(&format!("marker = {}\n", quote(m)));
        }
    }
    text
}

/// The packages of uv's pylock.toml, with the sha256 of each file it lists.
fn parse_pylock(text: &str) -> Result<Vec<Pin>> {
    let lock: toml::Table =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("its pylock.toml is not TOML ({})", e.message().trim()))?;
    let mut out = Vec::new();
    for p in lock.get("packages").and_then(|p| p.as_array()).into_iter().flatten() {
        let field = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            bail!("uv's pylock.toml has a package without name or version");
        };
        let mut hashes = BTreeSet::new();
        let files = p.get("wheels").and_then(|w| w.as_array()).into_iter().flatten().chain(p.get("sdist"));
        for f in files {
            if let Some(h) = f.get("hashes").and_then(|h| h.get("sha256")).and_then(|h| h.as_str()) {
                hashes.insert(format!("sha256:{h}"));
            }
        }
        if hashes.is_empty() {
            bail!("uv found no file with a sha256 for {name}=={version}: its index must publish hashes");
        }
        out.push(Pin { name: crate::python::normalise(&name), version, hashes, marker: None });
    }
    Ok(out)
}

/// uv's error as one line: the first sentence of its cause, else its first line.
fn one_line(stderr: &str) -> String {
    let all: Vec<&str> = stderr.lines().collect();
    let start = all.iter().position(|l| l.starts_with("error:")).unwrap_or(0);
    let lines = &all[start..];
    let text = match lines.iter().position(|l| l.trim_start().starts_with("cause:")) {
        Some(at) => {
            let mut s = String::new();
            for l in &lines[at..] {
                if l.trim().is_empty() {
                    break;
                }
                s.push_str(l.trim().trim_start_matches("cause:").trim());
                s.push(' ');
            }
            s
        }
        None => lines.iter().find(|l| !l.trim().is_empty()).map(|l| l.to_string()).unwrap_or_default(),
    };
    let text = text.trim().trim_start_matches("error:").trim().to_string();
    let sentence = match text.find(". ") {
        Some(at) => text[..=at].to_string(),
        None => text,
    };
    clip(&sentence).to_string()
}

/// The pins of a requirements.txt this stage wrote (an existing lock).
fn parse_pins(text: &str) -> Result<Vec<Pin>> {
    let mut out = Vec::new();
    let joined = text.replace("\\\n", " ");
    for line in joined.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        let mut words = Vec::new();
        let mut hashes = BTreeSet::new();
        for w in line.split_whitespace() {
            match w.strip_prefix("--hash=") {
                Some(h) => {
                    hashes.insert(h.to_string());
                }
                None => words.push(w),
            }
        }
        let req = words.join(" ");
        let r = Requirement::parse(&req).with_context(|| format!("`{}` is not a requirement", clip(&req)))?;
        let version = r.pinned_version().with_context(|| format!("`{}` is not pinned", clip(&req)))?;
        let marker = req.split_once(';').map(|(_, m)| m.trim().to_string()).filter(|m| !m.is_empty());
        out.push(Pin { name: r.name.clone(), version, hashes, marker });
    }
    Ok(out)
}

/// The requirements.txt: header, then every package sorted by name, each version once
/// with the union of the targets' hashes and a marker when not every target has it, and
/// the union of the targets' reasons (`# via`).
fn render(inputs: &Inputs, per_target: &[Vec<Pin>], vias: &[via::Vias]) -> String {
    // name -> version -> (the targets resolving to it, the union of their hashes, reasons)
    type Versions = BTreeMap<String, (BTreeSet<usize>, BTreeSet<String>, BTreeSet<String>)>;
    let mut merged: BTreeMap<String, Versions> = BTreeMap::new();
    for (i, pins) in per_target.iter().enumerate() {
        for p in pins {
            let e = merged.entry(p.name.clone()).or_default().entry(p.version.clone()).or_default();
            e.0.insert(i);
            e.1.extend(p.hashes.iter().cloned());
            e.2.extend(vias.get(i).and_then(|v| v.get(&p.name)).into_iter().flatten().cloned());
        }
    }
    let root = inputs.source.file();
    let name = &inputs.layer;
    let mut text = format!(
        "# Locked by `cargo xtask lock {name}` from {src}: edit that and run the command\n\
         # again instead of editing this file.\n\
         # inputs: sha256:{hash}\n\
         # targets: {targets}\n\
         # resolver: uv {uv}\n",
        src = inputs.source.describe(),
        hash = inputs.hash,
        targets = targets_text(&inputs.targets),
        uv = uv::UV_VERSION,
    );
    let provided: BTreeSet<String> = inputs.provided.iter().map(|(l, p, _)| format!("{p} (layer {l})")).collect();
    if !provided.is_empty() {
        text.push_str(&format!(
            "# provided by required layers: {}\n",
            provided.into_iter().collect::<Vec<_>>().join(", ")
        ));
        // Which of them this layer needs, and why.
        let names: BTreeSet<&str> = inputs.provided.iter().map(|(_, p, _)| p.as_str()).collect();
        for name in names {
            let reasons: BTreeSet<String> = vias.iter().filter_map(|v| v.get(name)).flatten().cloned().collect();
            if !reasons.is_empty() {
                text.push_str(&format!("{}{name} via {}\n", via::PROVIDED_VIA, via::join(&reasons, root)));
            }
        }
    }
    for (pkg, versions) in merged {
        for (version, (targets, hashes, reasons)) in versions {
            text.push_str(&format!("{pkg}=={version}"));
            if targets.len() < inputs.targets.len() {
                let chosen: Vec<(Runtime, Arch)> = targets.iter().map(|i| inputs.targets[*i]).collect();
                text.push_str(&format!(" ; {}", marker(&inputs.targets, &chosen)));
            }
            for h in hashes {
                text.push_str(&format!(" \\\n    --hash={h}"));
            }
            text.push('\n');
            if !reasons.is_empty() {
                text.push_str(&format!("    # via {}\n", via::join(&reasons, root)));
            }
        }
    }
    text
}

/// A PEP 508 marker true on the `chosen` targets and false on the other ones.
fn marker(all: &[(Runtime, Arch)], chosen: &[(Runtime, Arch)]) -> String {
    let py = |r: &Runtime| format!("python_version == \"3.{}\"", r.minor);
    let machine = |a: &Arch| format!("platform_machine == \"{}\"", a.machine());
    let runtimes: BTreeSet<Runtime> = chosen.iter().map(|t| t.0).collect();
    let arches: BTreeSet<Arch> = chosen.iter().map(|t| t.1).collect();
    let full = |r: &BTreeSet<Runtime>, a: &BTreeSet<Arch>| {
        r.iter().flat_map(|r| a.iter().map(move |a| (*r, *a))).all(|t| chosen.contains(&t))
    };
    let all_arches: BTreeSet<Arch> = all.iter().map(|t| t.1).collect();
    let all_runtimes: BTreeSet<Runtime> = all.iter().map(|t| t.0).collect();
    if arches == all_arches && full(&runtimes, &arches) {
        return runtimes.iter().map(py).collect::<Vec<_>>().join(" or ");
    }
    if runtimes == all_runtimes && full(&runtimes, &arches) {
        return arches.iter().map(machine).collect::<Vec<_>>().join(" or ");
    }
    chosen.iter().map(|(r, a)| format!("({} and {})", py(r), machine(a))).collect::<Vec<_>>().join(" or ")
}

/// The names a layer's lock pins today and its inputs ask for (normalised): what
/// `--upgrade-package` may name.
pub fn known_packages(inputs: &Inputs) -> BTreeSet<String> {
    let existing = std::fs::read_to_string(inputs.dir.join("requirements.txt")).unwrap_or_default();
    let pinned = parse_pins(&existing).unwrap_or_default().into_iter().map(|p| p.name);
    let wanted = inputs.requirements.iter().filter_map(|r| Requirement::parse(r)).map(|r| r.name);
    pinned.chain(wanted).collect()
}

/// Locks layer `name` (`cargo xtask lock NAME`): resolves its inputs and writes
/// requirements.txt when it changes. `None` for a layer without lock inputs.
pub fn lock_layer(
    repo: &Repo,
    config: &RepoConfig,
    name: &str,
    uv: &Path,
    runner: &uv::Runner,
    opts: &Options,
) -> Result<Locked> {
    let inputs = inputs(repo, config, name)?
        .with_context(|| format!("layer {name} has no requirements.in or pyproject.toml: nothing to lock"))?;
    let locked = resolve(&inputs, uv, runner, opts)?;
    if locked.changed {
        write(&inputs, &locked)?;
    }
    Ok(locked)
}

/// Writes the lock atomically: a temp file beside requirements.txt (removed on Ctrl-C),
/// renamed over it.
pub fn write(inputs: &Inputs, locked: &Locked) -> Result<()> {
    let dest = inputs.dir.join("requirements.txt");
    let tmp = crate::package::write_temp(&dest, locked.text.as_bytes())?;
    // A reviewed file like any other: the old lock's mode, else 0644.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&dest).map(|m| m.permissions().mode()).unwrap_or(0o644);
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode & 0o777))?;
    std::fs::rename(tmp.path(), &dest)
        .with_context(|| format!("cannot write layers/{}/requirements.txt", inputs.layer))?;
    tmp.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_in_refuses_options_naming_the_line() {
        assert_eq!(parse_in("# c\nrequests>=2  # web\n\npandas[aws]\n", "l").unwrap(), ["requests>=2", "pandas[aws]"]);
        let e = parse_in("six\n-e .\n", "l").unwrap_err().to_string();
        assert!(e.starts_with("layers/l/requirements.in:2: `-e .` is not supported"), "{e}");
        assert!(parse_in("-r other.txt\n", "l").unwrap_err().to_string().contains("`-r other.txt`"));
    }

    #[test]
    fn pins_are_parsed_with_their_hashes() {
        let pins = parse_pins("certifi==2024.8.30 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\nidna==3.10 \\\n    --hash=sha256:cc\n").unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!(
            (pins[0].name.as_str(), pins[0].version.as_str(), pins[0].hashes.len()),
            ("certifi", "2024.8.30", 2)
        );
    }

    #[test]
    fn pylock_files_become_hashes_and_old_locks_become_preferences() {
        let pins = parse_pylock(
            "lock-version = \"1.0\"\n[[packages]]\nname = \"Charset_Normalizer\"\nversion = \"3.5.3\"\nwheels = [\n  { url = \"https://x/a.whl\", hashes = { sha256 = \"aa\" } },\n  { url = \"https://x/b.whl\", hashes = { sha256 = \"bb\" } },\n]\n",
        )
        .unwrap();
        assert_eq!((pins[0].name.as_str(), pins[0].hashes.len()), ("charset-normalizer", 2));
        let old = parse_pins("# h\nsix==1.17.0 ; python_version == \"3.11\" \\\n    --hash=sha256:aa\n").unwrap();
        let prefs = preferences(&old);
        assert!(
            prefs.contains("name = \"six\"\nversion = \"1.17.0\"\nmarker = \"python_version == \\\"3.11\\\"\"\n"),
            "{prefs}"
        );
        assert!(toml::from_str::<toml::Table>(&prefs).is_ok());
    }

    #[test]
    fn a_pyproject_beside_a_hand_written_requirements_txt_is_not_a_lock_input() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(source_of(d.path()), None);
        std::fs::write(d.path().join("pyproject.toml"), "[project]\n").unwrap();
        assert_eq!(source_of(d.path()), Some(Source::Pyproject { uv_lock: false }));
        std::fs::write(d.path().join("requirements.txt"), "./\n").unwrap();
        assert_eq!(source_of(d.path()), None);
        std::fs::write(d.path().join("requirements.txt"), "# inputs: sha256:ab\nsix==1\n").unwrap();
        assert_eq!(source_of(d.path()), Some(Source::Pyproject { uv_lock: false }));
        std::fs::write(d.path().join("requirements.in"), "six\n").unwrap();
        assert_eq!(source_of(d.path()), Some(Source::RequirementsIn));
    }

    #[test]
    fn markers_name_only_what_differs() {
        let r = |id| Runtime::parse(id).unwrap();
        let all = [
            (r("python3.11"), Arch::X86_64),
            (r("python3.11"), Arch::Arm64),
            (r("python3.13"), Arch::X86_64),
            (r("python3.13"), Arch::Arm64),
        ];
        assert_eq!(marker(&all, &all[..2]), "python_version == \"3.11\"");
        assert_eq!(marker(&all, &[all[1], all[3]]), "platform_machine == \"aarch64\"");
        assert_eq!(marker(&all, &all[..1]), "(python_version == \"3.11\" and platform_machine == \"x86_64\")");
    }

    #[test]
    fn uv_errors_become_one_line() {
        let e = "error: No solution found when resolving dependencies\n  cause: Because nope was not found in the package registry and you require nope, we can conclude that your requirements are unsatisfiable.\n";
        assert_eq!(one_line(e), "Because nope was not found in the package registry and you require nope, we can conclude that your requirements are unsatisfiable.");
    }
}
