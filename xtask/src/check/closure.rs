//! The dependency closure: every `Requires-Dist` of the distributions a layer ships, and
//! transitively of those it uses from the layers it requires, must be satisfied by the
//! layer and those layers together, for the runtime and architecture it targets.
//!
//! Requirements (PEP 508), markers, versions and specifiers (PEP 440) and names (PEP 503)
//! are handled by hand here rather than with `pep508_rs`, which pulls in regex, url and the
//! ICU crates (about 58 crates to compile). The evaluator agrees with Python's `packaging`
//! on version order and specifiers, except for the simplifications listed below.
//!
//! - Marker environment (Lambda's Linux CPython): `python_version` = `3.X`,
//!   `python_full_version` and `implementation_version` = `3.X.0` (the patch level of the
//!   runtime is not known ahead; real markers test minor versions), `os_name` = `posix`,
//!   `sys_platform` = `linux`, `platform_system` = `Linux`, `platform_machine` = `x86_64` /
//!   `aarch64`, `platform_python_implementation` = `CPython`, `implementation_name` =
//!   `cpython`. `platform_release` and `platform_version` are unknown: every comparison
//!   with them is false. The version variables compare as PEP 440 versions, others as
//!   strings.
//! - Extras: a requirement whose marker needs `extra == "x"` counts only when `x` is active
//!   for its distribution (pip's rule: the marker holds with no extra or with an active
//!   one). An entry `name[x,y]` of `extras` activates `x` and `y` for distribution `name`
//!   (what follows `]`, such as `==2.3.3`, is ignored, so requirements.txt lines can be
//!   passed as they are); a bare name `x` activates `x` for every distribution of the
//!   layer; other entries activate nothing. Extras a requirement names (`foo[bar]>=1`) are
//!   activated for `foo`.
//! - When a name is shipped twice, the layer under check wins, then the first of
//!   `provided`. An installed version is checked with pre-releases allowed (as `pip check`).
//! - Lenient where it cannot judge: a requirement or marker that does not parse is skipped;
//!   a `name @ url` requirement is satisfied by any version; a wildcard (`==1.2.*`) matches
//!   on epoch and release only.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::runtime::{Arch, Runtime};

/// One installed distribution, read from `<name>-<ver>.dist-info/METADATA`.
#[derive(Debug, Clone)]
pub struct Dist {
    pub name: String,
    pub version: String,
    /// The raw `Requires-Dist` values.
    pub requires: Vec<String>,
    /// The layer that ships it.
    pub layer: String,
}

/// A requirement that nothing satisfies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsatisfied {
    /// The distribution whose requirement fails, e.g. `pandas`.
    pub dist: String,
    /// The layer shipping it.
    pub layer: String,
    /// The requirement as written, without marker, e.g. `numpy>=1.26.0`.
    pub requirement: String,
    /// The normalised name of the required distribution, e.g. `numpy`.
    pub name: String,
    /// `(version, layer)` when present with a version that does not match; `None` when missing.
    pub found: Option<(String, String)>,
}

/// Every distribution installed in `python_dir` (the `python/` folder of a layer), tagged
/// with `layer`, sorted by normalised name.
pub fn read_dists(python_dir: &Path, layer: &str) -> Result<Vec<Dist>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(python_dir).with_context(|| format!("cannot read {}", python_dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", python_dir.display()))?;
        if !entry.file_name().to_string_lossy().ends_with(".dist-info") {
            continue;
        }
        let path = entry.path().join("METADATA");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        out.extend(parse_metadata(&text, layer));
    }
    out.sort_by_key(|d| normalise(&d.name));
    Ok(out)
}

/// The `Name`, `Version` and `Requires-Dist` headers of a METADATA file. Headers end at the
/// first blank line; a line starting with white space continues the previous header.
fn parse_metadata(text: &str, layer: &str) -> Option<Dist> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let values = |key: &'static str| headers.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.trim().to_string());
    Some(Dist {
        name: values("name").next()?,
        version: values("version").next()?,
        requires: values("requires-dist").collect(),
        layer: layer.to_string(),
    })
}

/// Checks that every requirement of every dist in `own` (the layer under check) — and
/// transitively of the dists that satisfy them in `provided` (the layers it requires) — is
/// satisfied by `own` ∪ `provided`. Markers and `extras` follow the rules of the module doc.
/// Sorted and deduplicated.
pub fn closure(own: &[Dist], provided: &[Dist], runtime: Runtime, arch: Arch, extras: &[String]) -> Vec<Unsatisfied> {
    let env = Env::new(runtime, arch);
    let all: Vec<&Dist> = own.iter().chain(provided).collect();
    let mut index = HashMap::new();
    for (i, d) in all.iter().enumerate() {
        index.entry(normalise(&d.name)).or_insert(i);
    }
    let mut work = Work::default();
    (0..own.len()).for_each(|i| work.push(i, ""));
    for (scope, extra) in requested_extras(extras) {
        match scope {
            None => (0..own.len()).for_each(|i| work.push(i, &extra)),
            Some(name) => {
                if let Some(&j) = index.get(&name) {
                    work.push(j, "");
                    work.push(j, &extra);
                }
            }
        }
    }
    let mut out = Vec::new();
    while let Some((i, extra)) = work.queue.pop() {
        let dist = all[i];
        for req in dist.requires.iter().filter_map(|r| Requirement::parse(r)) {
            if !req.applies(&env, &extra) {
                continue;
            }
            let unsatisfied = |found| Unsatisfied {
                dist: dist.name.clone(),
                layer: dist.layer.clone(),
                requirement: req.text.clone(),
                name: req.name.clone(),
                found,
            };
            let Some(&j) = index.get(&req.name) else {
                out.push(unsatisfied(None));
                continue;
            };
            let dep = all[j];
            if !req.specs.iter().all(|s| s.contains(&dep.version)) {
                out.push(unsatisfied(Some((dep.version.clone(), dep.layer.clone()))));
            }
            if j >= own.len() {
                work.push(j, "");
            }
            req.extras.iter().for_each(|x| work.push(j, x));
        }
    }
    out.sort_by(|a, b| {
        (&a.dist, &a.layer, &a.requirement, &a.name, &a.found).cmp(&(
            &b.dist,
            &b.layer,
            &b.requirement,
            &b.name,
            &b.found,
        ))
    });
    out.dedup();
    out
}

/// The (distribution index, extra) pairs still to check, each once; `""` is no extra.
#[derive(Default)]
struct Work {
    queue: Vec<(usize, String)>,
    seen: HashSet<(usize, String)>,
}

impl Work {
    fn push(&mut self, i: usize, extra: &str) {
        if self.seen.insert((i, extra.to_string())) {
            self.queue.push((i, extra.to_string()));
        }
    }
}

/// The extras asked for: `(Some(dist), extra)` from `dist[extra,..]`, `(None, extra)` from a
/// bare extra name.
fn requested_extras(extras: &[String]) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for e in extras.iter().map(|e| e.trim()) {
        if let Some((name, rest)) = e.split_once('[') {
            let inner = rest.split_once(']').map_or(rest, |(inner, _)| inner);
            let names = inner.split(',').map(str::trim).filter(|x| !x.is_empty());
            out.extend(names.map(|x| (Some(normalise(name)), normalise(x))));
        } else if !e.is_empty() && e.chars().all(is_name_char) {
            out.push((None, normalise(e)));
        }
    }
    out
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// PEP 503: lower case, runs of `-`, `_` and `.` become one `-`.
fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// One parsed `Requires-Dist` value.
struct Requirement {
    /// Normalised name.
    name: String,
    /// As written, without the marker.
    text: String,
    extras: Vec<String>,
    /// Empty for any version (also the URL form).
    specs: Vec<Spec>,
    marker: Option<String>,
}

impl Requirement {
    /// `name [extras] (specifiers) ; marker` (parentheses optional) or `name [extras] @ url ; marker`.
    fn parse(line: &str) -> Option<Requirement> {
        let (head, marker) = split_marker(line);
        let head = head.trim();
        let end = head.find(|c| !is_name_char(c)).unwrap_or(head.len());
        if end == 0 {
            return None;
        }
        let mut rest = head[end..].trim_start();
        let mut extras = Vec::new();
        if let Some(r) = rest.strip_prefix('[') {
            let (inner, after) = r.split_once(']')?;
            extras = inner.split(',').map(str::trim).filter(|e| !e.is_empty()).map(normalise).collect();
            rest = after.trim_start();
        }
        let specs = if rest.starts_with('@') {
            Vec::new()
        } else {
            let rest = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')).unwrap_or(rest);
            rest.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Spec::parse).collect::<Option<_>>()?
        };
        let marker = marker.map(|m| m.trim().to_string());
        Some(Requirement { name: normalise(&head[..end]), text: head.to_string(), extras, specs, marker })
    }

    /// Whether the marker holds with no extra, or with `extra` when it is not empty.
    fn applies(&self, env: &Env, extra: &str) -> bool {
        let holds = |x: &str| self.marker.as_deref().is_none_or(|m| Marker::eval(m, env, x).unwrap_or(false));
        holds("") || (!extra.is_empty() && holds(extra))
    }
}

/// Splits `head ; marker`. In the URL form the `;` must follow white space, as a URL may
/// contain `;`.
fn split_marker(line: &str) -> (&str, Option<&str>) {
    let url = line.split(';').next().unwrap_or_default().contains('@');
    let at = line.char_indices().find(|&(i, c)| c == ';' && (!url || line[..i].ends_with(char::is_whitespace)));
    match at {
        Some((i, _)) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    }
}

/// The marker environment of one runtime and architecture.
struct Env {
    python_version: String,
    python_full_version: String,
    machine: &'static str,
}

const VERSION_VARS: &[&str] = &["python_version", "python_full_version", "implementation_version"];

impl Env {
    fn new(runtime: Runtime, arch: Arch) -> Env {
        let machine = match arch {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "aarch64",
        };
        Env {
            python_version: format!("3.{}", runtime.minor),
            python_full_version: format!("3.{}.0", runtime.minor),
            machine,
        }
    }

    /// The value of a marker variable (legacy dotted names accepted): `Some(None)` when it is
    /// not known ahead, `None` when the name is no marker variable.
    fn var(&self, name: &str, extra: &str) -> Option<Option<String>> {
        let value = match name.replace('.', "_").as_str() {
            "python_version" => self.python_version.as_str(),
            "python_full_version" | "implementation_version" => &self.python_full_version,
            "os_name" => "posix",
            "sys_platform" => "linux",
            "platform_system" => "Linux",
            "platform_machine" => self.machine,
            "platform_python_implementation" | "python_implementation" => "CPython",
            "implementation_name" => "cpython",
            "extra" => extra,
            "platform_release" | "platform_version" => return Some(None),
            _ => return None,
        };
        Some(Some(value.to_string()))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Str(String),
    Word(String),
    Op(String),
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let class = |c: char| {
        if "=!<>~".contains(c) {
            0
        } else if is_name_char(c) {
            1
        } else {
            2
        }
    };
    let cs: Vec<char> = s.chars().collect();
    let (mut i, mut out) = (0, Vec::new());
    while i < cs.len() {
        let (start, c) = (i, cs[i]);
        i += 1;
        match c {
            _ if c.is_whitespace() => {}
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            '\'' | '"' => {
                let end = i + cs[i..].iter().position(|&q| q == c)?;
                out.push(Tok::Str(cs[i..end].iter().collect()));
                i = end + 1;
            }
            _ => {
                let k = class(c);
                if k == 2 {
                    return None;
                }
                while i < cs.len() && class(cs[i]) == k {
                    i += 1;
                }
                let w: String = cs[start..i].iter().collect();
                out.push(if k == 0 { Tok::Op(w) } else { Tok::Word(w) });
            }
        }
    }
    Some(out)
}

/// A recursive-descent evaluator of PEP 508 markers; `None` when the marker does not parse.
struct Marker<'a> {
    toks: Vec<Tok>,
    pos: usize,
    env: &'a Env,
    extra: &'a str,
}

impl Marker<'_> {
    fn eval(src: &str, env: &Env, extra: &str) -> Option<bool> {
        let mut m = Marker { toks: tokenize(src)?, pos: 0, env, extra };
        let v = m.or()?;
        (m.pos == m.toks.len()).then_some(v)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, tok: Tok) -> bool {
        let hit = self.toks.get(self.pos) == Some(&tok);
        self.pos += usize::from(hit);
        hit
    }

    fn or(&mut self) -> Option<bool> {
        let mut v = self.and()?;
        while self.eat(Tok::Word("or".into())) {
            v |= self.and()?;
        }
        Some(v)
    }

    fn and(&mut self) -> Option<bool> {
        let mut v = self.atom()?;
        while self.eat(Tok::Word("and".into())) {
            v &= self.atom()?;
        }
        Some(v)
    }

    fn atom(&mut self) -> Option<bool> {
        if self.eat(Tok::Open) {
            let v = self.or()?;
            return self.eat(Tok::Close).then_some(v);
        }
        let lhs = self.next()?;
        let op = match self.next()? {
            Tok::Op(o) => o,
            Tok::Word(w) if w == "in" => w,
            Tok::Word(w) if w == "not" && self.eat(Tok::Word("in".into())) => "not in".into(),
            _ => return None,
        };
        let rhs = self.next()?;
        self.compare(lhs, &op, rhs)
    }

    fn compare(&self, lhs: Tok, op: &str, rhs: Tok) -> Option<bool> {
        let var = [&lhs, &rhs].into_iter().find_map(|t| match t {
            Tok::Word(w) => Some(w.replace('.', "_")),
            _ => None,
        });
        let value = |t: Tok| match t {
            Tok::Str(s) => Some(Some(s)),
            Tok::Word(w) => self.env.var(&w, self.extra),
            _ => None,
        };
        let (Some(l), Some(r)) = (value(lhs)?, value(rhs)?) else { return Some(false) };
        Some(compare_values(&var.unwrap_or_default(), &l, op, &r))
    }
}

fn compare_values(var: &str, l: &str, op: &str, r: &str) -> bool {
    let (l, r) = if var == "extra" { (normalise(l), normalise(r)) } else { (l.to_string(), r.to_string()) };
    match op {
        "in" => r.contains(&l),
        "not in" => !r.contains(&l),
        _ if VERSION_VARS.contains(&var) => match Spec::parse(&format!("{op}{r}")) {
            Some(spec) => spec.contains(&l),
            None => compare_strings(&l, op, &r),
        },
        _ => compare_strings(&l, op, &r),
    }
}

fn compare_strings(l: &str, op: &str, r: &str) -> bool {
    match op {
        "==" | "===" => l == r,
        "!=" => l != r,
        "<" => l < r,
        "<=" => l <= r,
        ">" => l > r,
        ">=" => l >= r,
        _ => false,
    }
}

/// A PEP 440 version. Ordering and equality ignore trailing zeros of the release.
#[derive(Debug, Clone)]
struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// (1 = a, 2 = b, 3 = rc, number).
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<Local>,
}

/// A segment of a local version: numbers sort after strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Local {
    Str(String),
    Num(u64),
}

/// What versions sort by: base, pre-release, post-release, dev release (none sorts last), local.
type Key<'a> = ((u64, &'a [u64]), (u8, u64), Option<u64>, (bool, u64), &'a [Local]);

const PRE: &[(&str, u8)] =
    &[("preview", 3), ("alpha", 1), ("beta", 2), ("pre", 3), ("rc", 3), ("a", 1), ("b", 2), ("c", 3)];

impl Version {
    fn parse(s: &str) -> Option<Version> {
        let s = s.trim().to_ascii_lowercase();
        let (public, local) = match s.split_once('+') {
            Some((p, l)) => (p, Some(l)),
            None => (s.as_str(), None),
        };
        let public = public.strip_prefix('v').unwrap_or(public);
        let (epoch, rest) = match public.split_once('!') {
            Some((e, r)) => (e.parse().ok()?, r),
            None => (0, public),
        };
        let mut c = Cursor { s: rest.as_bytes(), i: 0 };
        let mut release = vec![c.number()?];
        while c.at(0) == Some(b'.') && c.at(1).is_some_and(|b| b.is_ascii_digit()) {
            c.i += 1;
            release.push(c.number()?);
        }
        let pre = c.label(PRE).map(|k| (k, c.implicit_number()));
        let post = if c.at(0) == Some(b'-') && c.at(1).is_some_and(|b| b.is_ascii_digit()) {
            c.i += 1;
            c.number()
        } else {
            c.label(&[("post", 0), ("rev", 0), ("r", 0)]).map(|_| c.implicit_number())
        };
        let dev = c.label(&[("dev", 0)]).map(|_| c.implicit_number());
        if c.i != c.s.len() {
            return None;
        }
        let local = match local {
            None => Vec::new(),
            Some(l) => l.split(['.', '-', '_']).map(Local::parse).collect::<Option<_>>()?,
        };
        Some(Version { epoch, release, pre, post, dev, local })
    }

    fn base(&self) -> (u64, &[u64]) {
        let n = self.release.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
        (self.epoch, &self.release[..n])
    }

    fn key(&self) -> Key<'_> {
        let pre = match (self.pre, self.post, self.dev) {
            (Some(p), _, _) => p,
            (None, None, Some(_)) => (0, 0), // 1.0.dev0 sorts before 1.0a0.
            _ => (4, 0),
        };
        (self.base(), pre, self.post, (self.dev.is_none(), self.dev.unwrap_or(0)), &self.local)
    }

    fn public(&self) -> Version {
        Version { local: Vec::new(), ..self.clone() }
    }

    fn is_pre(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    /// Whether the release starts with `prefix` (padded with zeros), in the same epoch.
    fn has_prefix(&self, epoch: u64, prefix: &[u64]) -> bool {
        self.epoch == epoch && prefix.iter().enumerate().all(|(i, p)| self.release.get(i).copied().unwrap_or(0) == *p)
    }
}

impl Local {
    fn parse(seg: &str) -> Option<Local> {
        if seg.is_empty() || !seg.chars().all(|c| c.is_ascii_alphanumeric()) {
            None
        } else if seg.chars().all(|c| c.is_ascii_digit()) {
            seg.parse().ok().map(Local::Num)
        } else {
            Some(Local::Str(seg.to_string()))
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn at(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.i + ahead).copied()
    }

    fn number(&mut self) -> Option<u64> {
        let n = self.s[self.i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let v = std::str::from_utf8(&self.s[self.i..self.i + n]).ok()?.parse().ok()?;
        self.i += n;
        Some(v)
    }

    fn skip_separator(&mut self) {
        if matches!(self.at(0), Some(b'.' | b'-' | b'_')) {
            self.i += 1;
        }
    }

    /// An optional separator and one of `labels`, giving the label's value; the position is
    /// unchanged when none matches.
    fn label(&mut self, labels: &[(&str, u8)]) -> Option<u8> {
        let start = self.i;
        self.skip_separator();
        match labels.iter().find(|(l, _)| self.s[self.i..].starts_with(l.as_bytes())) {
            Some((l, v)) => {
                self.i += l.len();
                Some(*v)
            }
            None => {
                self.i = start;
                None
            }
        }
    }

    /// An optional separator and a number, 0 when there is none (`1.0a` is `1.0a0`).
    fn implicit_number(&mut self) -> u64 {
        let start = self.i;
        self.skip_separator();
        self.number().unwrap_or_else(|| {
            self.i = start;
            0
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    EqPrefix,
    NePrefix,
    Lt,
    Le,
    Gt,
    Ge,
    Compatible,
}

/// One version specifier, e.g. `>=1.26.0`, `==1.2.*` or `===foo`.
#[derive(Debug, Clone)]
enum Spec {
    Arbitrary(String),
    Cmp(Op, Version),
}

const OPS: &[(&str, Option<Op>)] = &[
    ("===", None),
    ("~=", Some(Op::Compatible)),
    ("==", Some(Op::Eq)),
    ("!=", Some(Op::Ne)),
    ("<=", Some(Op::Le)),
    (">=", Some(Op::Ge)),
    ("<", Some(Op::Lt)),
    (">", Some(Op::Gt)),
];

impl Spec {
    fn parse(s: &str) -> Option<Spec> {
        let s = s.trim();
        let (sym, op) = OPS.iter().find(|(sym, _)| s.starts_with(sym))?;
        let v = s[sym.len()..].trim();
        let Some(mut op) = *op else { return Some(Spec::Arbitrary(v.to_string())) };
        let v = match v.strip_suffix(".*") {
            Some(prefix) if matches!(op, Op::Eq | Op::Ne) => {
                op = if op == Op::Eq { Op::EqPrefix } else { Op::NePrefix };
                prefix
            }
            _ => v,
        };
        let version = Version::parse(v)?;
        (op != Op::Compatible || version.release.len() >= 2).then_some(Spec::Cmp(op, version))
    }

    /// Whether the installed `candidate` version matches (pre-releases allowed).
    fn contains(&self, candidate: &str) -> bool {
        let (op, s) = match self {
            Spec::Arbitrary(raw) => return candidate.trim().eq_ignore_ascii_case(raw),
            Spec::Cmp(op, s) => (*op, s),
        };
        let Some(v) = Version::parse(candidate) else { return false };
        let equal = || if s.local.is_empty() { v.public() == *s } else { v == *s };
        match op {
            Op::Eq => equal(),
            Op::Ne => !equal(),
            Op::EqPrefix => v.has_prefix(s.epoch, &s.release),
            Op::NePrefix => !v.has_prefix(s.epoch, &s.release),
            Op::Le => v.public() <= *s,
            Op::Ge => v.public() >= *s,
            Op::Compatible => v.public() >= *s && v.has_prefix(s.epoch, &s.release[..s.release.len() - 1]),
            Op::Lt => {
                // `<1.0` excludes the pre-releases of 1.0.
                let excluded = !s.is_pre() && v.is_pre() && v.base() == s.base();
                v < *s && !excluded
            }
            Op::Gt => {
                // `>1.0` excludes the post-releases and local versions of 1.0.
                let excluded = v.base() == s.base() && ((s.post.is_none() && v.post.is_some()) || !v.local.is_empty());
                v > *s && !excluded
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PANDAS: &[&str] = &[
        "numpy>=1.22.4; python_version < \"3.11\"",
        "numpy>=1.23.2; python_version == \"3.11\"",
        "numpy>=1.26.0; python_version >= \"3.12\"",
        "python-dateutil>=2.8.2",
        "pytz>=2020.1",
        "tzdata>=2022.7",
        "hypothesis>=6.46.1; extra == \"test\"",
        "pytest>=7.3.2; extra == \"test\"",
        "pyarrow>=10.0.1; extra == \"pyarrow\"",
        "bottleneck>=1.3.6; extra == \"performance\"",
        "numba>=0.56.4; extra == \"performance\"",
        "numexpr>=2.8.4; extra == \"performance\"",
        "PyQt5>=5.15.9; extra == \"clipboard\"",
        "tzdata>=2022.7; extra == \"all\"",
    ];

    fn dist(name: &str, version: &str, requires: &[&str], layer: &str) -> Dist {
        let requires = requires.iter().map(|r| r.to_string()).collect();
        Dist { name: name.into(), version: version.into(), requires, layer: layer.into() }
    }

    fn pandas_layer() -> Vec<Dist> {
        vec![
            dist("pandas", "2.3.3", PANDAS, "pandas"),
            dist("python-dateutil", "2.9.0.post0", &["six>=1.5"], "pandas"),
            dist("six", "1.17.0", &[], "pandas"),
            dist("pytz", "2025.2", &[], "pandas"),
            dist("tzdata", "2025.2", &[], "pandas"),
        ]
    }

    fn check(own: &[Dist], provided: &[Dist], runtime: &str, arch: Arch, extras: &[&str]) -> Vec<Unsatisfied> {
        let extras: Vec<String> = extras.iter().map(|e| e.to_string()).collect();
        closure(own, provided, Runtime::parse(runtime).unwrap(), arch, &extras)
    }

    fn missing(dist: &str, layer: &str, requirement: &str, name: &str) -> Unsatisfied {
        Unsatisfied {
            dist: dist.into(),
            layer: layer.into(),
            requirement: requirement.into(),
            name: name.into(),
            found: None,
        }
    }

    fn names(u: &[Unsatisfied]) -> Vec<&str> {
        u.iter().map(|u| u.name.as_str()).collect()
    }

    #[test]
    fn pandas_without_numpy_reports_the_requirement_of_the_runtime() {
        let own = pandas_layer();
        let want = |req| vec![missing("pandas", "pandas", req, "numpy")];
        assert_eq!(check(&own, &[], "python3.13", Arch::X86_64, &[]), want("numpy>=1.26.0"));
        assert_eq!(check(&own, &[], "python3.11", Arch::Arm64, &[]), want("numpy>=1.23.2"));
        assert_eq!(check(&own, &[], "python3.10", Arch::X86_64, &[]), want("numpy>=1.22.4"));
    }

    #[test]
    fn numpy_from_a_required_layer_conflicts_or_satisfies() {
        let own = pandas_layer();
        let old = [dist("numpy", "1.24.0", &[], "numpy")];
        let conflict = Unsatisfied {
            found: Some(("1.24.0".into(), "numpy".into())),
            ..missing("pandas", "pandas", "numpy>=1.26.0", "numpy")
        };
        assert_eq!(check(&own, &old, "python3.13", Arch::X86_64, &[]), vec![conflict]);
        assert_eq!(check(&own, &old, "python3.11", Arch::X86_64, &[]), vec![]);
        let new = [dist("NumPy", "2.3.5", &[], "numpy")];
        assert_eq!(check(&own, &new, "python3.13", Arch::X86_64, &[]), vec![]);
    }

    #[test]
    fn requirements_of_provided_dists_are_followed_once_and_only_when_used() {
        let own = [dist("app", "1", &["B>=1", "Zope.Interface (>=5)", "b"], "app")];
        let provided = [
            dist("b", "2.0", &["c>=1", "b"], "base"),
            dist("zope_interface", "6.0", &[], "base"),
            dist("unused", "1", &["e"], "base"),
        ];
        let got = check(&own, &provided, "python3.12", Arch::X86_64, &[]);
        assert_eq!(got, vec![missing("b", "base", "c>=1", "c")]);
    }

    #[test]
    fn markers_follow_the_architecture_and_linux() {
        let reqs = [
            "arm-only; platform_machine == \"aarch64\"",
            "x86-only; platform_machine == 'x86_64'",
            "win; sys_platform == \"win32\"",
            "nt; os_name == \"nt\" or platform_release >= \"5\"",
            "linux; python_version >= \"3.8\" and (sys_platform == \"linux\" and platform_python_implementation == 'CPython')",
            "reversed; \"3.12\" <= python_version and 'linux' in sys_platform and implementation_name not in 'pypy'",
            "py314; python_full_version >= \"3.14.0\"",
        ];
        let own = [dist("x", "1", &reqs, "x")];
        assert_eq!(names(&check(&own, &[], "python3.12", Arch::Arm64, &[])), ["arm-only", "linux", "reversed"]);
        assert_eq!(
            names(&check(&own, &[], "python3.14", Arch::X86_64, &[])),
            ["linux", "py314", "reversed", "x86-only"]
        );
    }

    #[test]
    fn extras_count_only_when_asked_for() {
        let own = pandas_layer();
        let numpy = [dist("numpy", "2.3.5", &[], "numpy")];
        assert_eq!(check(&own, &numpy, "python3.13", Arch::X86_64, &["pandas==2.3.3"]), vec![]);
        let perf = ["bottleneck", "numba", "numexpr"];
        assert_eq!(names(&check(&own, &numpy, "python3.13", Arch::X86_64, &["pandas[performance]==2.3.3"])), perf);
        assert_eq!(names(&check(&own, &numpy, "python3.13", Arch::X86_64, &["Performance"])), perf);
        assert_eq!(names(&check(&own, &numpy, "python3.13", Arch::X86_64, &["numpy[performance]"])), [] as [&str; 0]);
        // An extra a requirement names is followed into the required layer.
        let app = [dist("app", "1", &["pandas[test]>=2"], "app")];
        let mut provided = pandas_layer();
        provided.extend(numpy);
        let got = check(&app, &provided, "python3.13", Arch::X86_64, &[]);
        assert_eq!(
            got,
            vec![
                missing("pandas", "pandas", "hypothesis>=6.46.1", "hypothesis"),
                missing("pandas", "pandas", "pytest>=7.3.2", "pytest")
            ]
        );
    }

    #[test]
    fn requirement_forms() {
        let r = Requirement::parse("foo[Bar, baz]>=1,<2; extra == \"baz\"").unwrap();
        assert_eq!(
            (r.name.as_str(), r.text.as_str(), r.extras.len(), r.specs.len()),
            ("foo", "foo[Bar, baz]>=1,<2", 2, 2)
        );
        assert_eq!(r.marker.as_deref(), Some("extra == \"baz\""));
        let r = Requirement::parse("numpy (>=1.22.4)").unwrap();
        assert_eq!((r.text.as_str(), r.specs.len(), r.marker), ("numpy (>=1.22.4)", 1, None));
        let r = Requirement::parse("pkg @ https://x/y;z.whl ; os_name == 'posix'").unwrap();
        assert_eq!((r.text.as_str(), r.specs.len()), ("pkg @ https://x/y;z.whl", 0));
        assert!(Requirement::parse(">=1").is_none() && Requirement::parse("foo >= nonsense!").is_none());
        assert_eq!(normalise("Python__Dateutil.-x"), "python-dateutil-x");
    }

    #[test]
    fn pep440_ordering_and_spellings() {
        let order: Vec<_> =
            "0.9 1.0.dev0 1.0a1.dev1 1.0a1 1.0b2 1.0rc1 1.0 1.0+abc 1.0+5 1.0.post1.dev0 1.0.post1 1.1 1!0.1"
                .split(' ')
                .collect();
        for w in order.windows(2) {
            assert!(Version::parse(w[0]).unwrap() < Version::parse(w[1]).unwrap(), "{} < {}", w[0], w[1]);
        }
        let same =
            "1.0=1.0.0 1.0alpha1=1.0a1 1.0-Beta.2=1.0b2 1.0c1=1.0rc1 1.0pre1=1.0rc1 1.0-1=1.0.post1 1.0r=1.0.post0";
        for (a, b) in same.split(' ').chain(["v1.0.DEV=1.0.dev0"]).filter_map(|p| p.split_once('=')) {
            assert_eq!(Version::parse(a).unwrap(), Version::parse(b).unwrap(), "{a} == {b}");
        }
        for bad in ["", "1.0foo", "a1", "1.0+", "1..0", "1.0_1"] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn specifiers() {
        // (specifier, versions it contains, versions it does not).
        let table = [
            ("~=2.2", "2.2 2.9.1", "2.1 3.0"),
            ("~=1.4.5", "1.4.5 1.4.9", "1.4.4 1.5"),
            ("==1.2.*", "1.2 1.2.7 1.2rc1", "1.3 1.20"),
            ("!=1.2.*", "1.20 1.3", "1.2 1.2.7"),
            ("==1.0", "1.0.0 1.0+local", "1.0.1 1.0rc1"),
            ("==1.0+a", "1.0+a", "1.0 1.0+b"),
            ("!=1.0", "1.0.1", "1.0.0"),
            ("<1.0", "0.9 0.9rc1", "1.0rc1 1.0.dev0 1.0"),
            ("<1.0rc2", "1.0rc1", "1.0rc2 1.0"),
            (">1.0", "1.0.1 1.1a1", "1.0.post1 1.0+x 1.0"),
            (">1.0.post1", "1.0.post2", "1.0.post1"),
            ("<=1.0", "1.0+x 0.1", "1.0.1"),
            (">=1.26.0", "2.3.5 1.26", "1.26.0rc1 1.24.0"),
            ("===1.0", "1.0", "1.0.0"),
            ("==1!1.0", "1!1.0", "1.0"),
        ];
        for (spec, yes, no) in table {
            let s = Spec::parse(spec).unwrap();
            yes.split(' ').for_each(|v| assert!(s.contains(v), "{v} in {spec}"));
            no.split(' ').for_each(|v| assert!(!s.contains(v), "{v} not in {spec}"));
        }
        assert!(Spec::parse("~=1").is_none() && Spec::parse("=>1").is_none());
        let r = Requirement::parse("x>=1.0, !=1.5.*, <2").unwrap();
        let ok = |v| r.specs.iter().all(|s| s.contains(v));
        assert!(ok("1.4") && !ok("1.5.2") && !ok("2.0") && !ok("0.9"));
    }

    #[test]
    fn marker_grammar_errors_skip_the_requirement() {
        let env = Env::new(Runtime::parse("python3.13").unwrap(), Arch::X86_64);
        for bad in
            ["python_version >=", "(os_name == 'posix'", "foo == 'x'", "os_name == 'posix' or", "os_name = 'posix"]
        {
            assert_eq!(Marker::eval(bad, &env, ""), None, "{bad}");
        }
        assert_eq!(Marker::eval("os.name == 'posix' and platform_version != 'x'", &env, ""), Some(false));
        assert_eq!(Marker::eval("python_version == '3.*' and python_version > '3.9'", &env, ""), Some(true));
    }

    #[test]
    fn read_dists_parses_headers_up_to_the_first_blank_line() {
        let d = tempfile::tempdir().unwrap();
        let write = |dir: &str, text: &str| {
            std::fs::create_dir(d.path().join(dir)).unwrap();
            std::fs::write(d.path().join(dir).join("METADATA"), text).unwrap();
        };
        write("b-1.0.dist-info", "Metadata-Version: 2.1\nName: B\nVersion: 1.0\nRequires-Dist: c>=1;\n  extra == \"x\"\nRequires-Dist: d\n\nRequires-Dist: body\n");
        write("a_pkg-2.dist-info", "Name: a_pkg\r\nVersion: 2\r\n");
        std::fs::create_dir(d.path().join("broken.dist-info")).unwrap();
        std::fs::create_dir(d.path().join("a_pkg")).unwrap();
        let dists = read_dists(d.path(), "base").unwrap();
        let got: Vec<_> =
            dists.iter().map(|d| (d.name.as_str(), d.version.as_str(), d.requires.clone(), d.layer.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a_pkg", "2", vec![], "base"),
                ("B", "1.0", vec!["c>=1; extra == \"x\"".to_string(), "d".into()], "base")
            ]
        );
        assert!(read_dists(&d.path().join("missing"), "x").unwrap_err().to_string().contains("cannot read"));
    }
}
