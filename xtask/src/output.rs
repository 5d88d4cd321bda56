//! Every line the tool writes goes through here, as cargo's `Shell` and uv's `Printer` do:
//! status lines (a verb padded to one column, then the message), warnings, notes, errors
//! and tables sized to their content on stderr, coloured only where that is wanted; JSON
//! lines and other machine output on stdout, untouched by colour, `--quiet` or `--verbose`.
//!
//! `main` sets the run's settings once ([`init`]); stages return data and the command
//! files print it through these functions. Nothing else calls `println!` or `eprintln!`
//! (`xtask/tests/it/tidy.rs` checks that).

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

/// `--color`: when stderr gets ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// How much is written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verbosity {
    /// `-q`: errors only (and the machine output on stdout).
    Quiet,
    #[default]
    Normal,
    /// `-v`: also the commands run (secrets redacted) and their output, live.
    Verbose,
}

/// The settings of one run.
#[derive(Debug)]
struct Shell {
    color: bool,
    verbosity: Verbosity,
    /// Held while a line is written, so lines of concurrent jobs never interleave.
    lock: Mutex<()>,
}

static SHELL: OnceLock<Shell> = OnceLock::new();

/// Sets the run's settings; called once, by `main`, before anything is written.
pub fn init(color: ColorChoice, verbosity: Verbosity) {
    let color = use_color(
        color,
        |k| crate::settings::var_os(k).map(|v| v.to_string_lossy().into_owned()),
        || std::io::stderr().is_terminal(),
    );
    let _ = SHELL.set(Shell { color, verbosity, lock: Mutex::new(()) });
}

fn shell() -> &'static Shell {
    SHELL.get_or_init(|| Shell { color: false, verbosity: Verbosity::Normal, lock: Mutex::new(()) })
}

/// Whether colour is used: `--color always|never` decides; `auto` follows NO_COLOR (set
/// and not empty: no colour), then CLICOLOR_FORCE (set, not empty, not `0`: colour), then
/// CLICOLOR=0 (no colour), then whether stderr is a terminal other than `TERM=dumb`.
fn use_color(choice: ColorChoice, var: impl Fn(&str) -> Option<String>, terminal: impl Fn() -> bool) -> bool {
    let set = |k: &str| var(k).is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR") => false,
        ColorChoice::Auto if set("CLICOLOR_FORCE") && var("CLICOLOR_FORCE").as_deref() != Some("0") => true,
        ColorChoice::Auto if var("CLICOLOR").as_deref() == Some("0") => false,
        ColorChoice::Auto => terminal() && var("TERM").as_deref() != Some("dumb"),
    }
}

pub fn is_quiet() -> bool {
    shell().verbosity == Verbosity::Quiet
}

pub fn is_verbose() -> bool {
    shell().verbosity == Verbosity::Verbose
}

/// How a verb or a table cell is shown on a colour terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Work done or fine: green.
    Good,
    /// Needs a look: yellow.
    Warn,
    /// Failed: red.
    Bad,
    /// Information: cyan.
    Note,
    /// Headers: bold.
    Bold,
    Plain,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Good => "\x1b[1;32m",
            Style::Warn => "\x1b[1;33m",
            Style::Bad => "\x1b[1;31m",
            Style::Note => "\x1b[1;36m",
            Style::Bold => "\x1b[1m",
            Style::Plain => "",
        }
    }

    /// The style of a unit's status word.
    pub fn of_status(status: &str) -> Style {
        match status {
            "failed" | "error" | "FAIL" | "fail" | "missing" => Style::Bad,
            "skipped" | "SKIP" | "stale" | "changed" | "planned" | "delete" | "warn" | "not built" => Style::Warn,
            "unchanged" | "up-to-date" | "current" | "keep" | "exists" => Style::Note,
            _ => Style::Good,
        }
    }
}

/// `text` in `style` when colour is on.
fn paint(text: &str, style: Style) -> String {
    if shell().color && style != Style::Plain {
        format!("{}{text}\x1b[0m", style.code())
    } else {
        text.to_string()
    }
}

/// Writes one line to stderr (below a running spinner, if any).
fn write_err(line: &str) {
    let s = shell();
    let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
    crate::progress::suspend(|| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    });
}

/// The column status verbs are padded to.
const VERB_WIDTH: usize = 10;

/// `built      six python3.13 x86_64: ...`: a verb (green) padded to one column, then the
/// message. Not shown with `--quiet`.
pub fn status(verb: &str, msg: impl Display) {
    status_styled(verb, Style::of_status(verb), msg);
}

/// [`status`] with the verb's style chosen by the caller.
pub fn status_styled(verb: &str, style: Style, msg: impl Display) {
    if is_quiet() {
        return;
    }
    let pad = " ".repeat(VERB_WIDTH.saturating_sub(verb.chars().count()));
    write_err(&format!("{}{pad} {msg}", paint(verb, style)));
}

/// A human line without a verb (a heading, a hint). Not shown with `--quiet`.
pub fn line(msg: impl Display) {
    if !is_quiet() {
        write_err(&msg.to_string());
    }
}

/// A line under the one before it, indented by four spaces. Not shown with `--quiet`.
pub fn detail(msg: impl Display) {
    if !is_quiet() {
        write_err(&format!("    {msg}"));
    }
}

/// `warning: ...` (yellow). Not shown with `--quiet`.
pub fn warn(msg: impl Display) {
    if !is_quiet() {
        write_err(&format!("{} {msg}", paint("warning:", Style::Warn)));
    }
}

/// `note: ...` (cyan). Not shown with `--quiet`.
pub fn note(msg: impl Display) {
    if !is_quiet() {
        write_err(&format!("{} {msg}", paint("note:", Style::Note)));
    }
}

/// `error: ...` (red), always shown.
pub fn error(msg: impl Display) {
    write_err(&format!("{} {msg}", paint("error:", Style::Bad)));
}

/// A question at a terminal, without a newline, always shown (the run waits for it).
pub fn prompt(msg: impl Display) {
    let s = shell();
    let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{msg}");
    let _ = err.flush();
}

/// With `-v`: a command about to run, as a shell would show it, with any `user:password@`
/// in a URL redacted. (Values the user's environment gives a container are passed by
/// name only, `-e NAME`, so they are not on the command line to begin with.)
pub fn command(program: &str, args: &[String]) {
    if !is_verbose() {
        return;
    }
    let mut text = tag().map(|t| format!("[{t}] ")).unwrap_or_default();
    text.push_str(&shell_quote(program));
    for a in args {
        text.push(' ');
        text.push_str(&shell_quote(a));
    }
    status_styled("running", Style::Note, redact(&text));
}

/// With `-v`: one line of a running command's output, redacted, as it comes. `tag` names
/// the unit it belongs to when several build at once (see [`with_tag`]), so their
/// interleaved lines can be told apart.
pub fn live(tag: Option<&str>, line: &str) {
    if is_verbose() {
        let tag = tag.map(|t| format!("{} ", paint(&format!("[{t}]"), Style::Note))).unwrap_or_default();
        write_err(&format!("    {} {tag}{}", paint("│", Style::Note), redact(line.trim_end())));
    }
}

thread_local! {
    static TAG: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `tag` as this thread's tag for [`live`] lines (the scheduler tags each
/// unit's work when several run at once).
pub fn with_tag<T>(tag: Option<String>, f: impl FnOnce() -> T) -> T {
    let old = TAG.with(|t| t.replace(tag));
    let out = f();
    TAG.with(|t| *t.borrow_mut() = old);
    out
}

/// This thread's tag, for output read on other threads.
pub fn tag() -> Option<String> {
    TAG.with(|t| t.borrow().clone())
}

/// `arg` quoted for a POSIX shell when it needs it.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// `text` with the password of every `scheme://user:password@host` replaced by `****`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || "/?#'\"".contains(c)).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":****");
                    }
                    None => out.push_str("****"),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// One JSON value as one line on stdout.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    stdout(&format!("{}\n", serde_json::to_string(value)?));
    Ok(())
}

/// Machine output on stdout, as given. A closed pipe (`| head`) is not an error.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Which side of its column a table cell sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table on stderr whose columns are as wide as their widest cell; the last column is
/// never padded. Not shown with `--quiet`.
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<(Vec<String>, Style)>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            align: vec![Align::Left; header.len()],
            rows: Vec::new(),
        }
    }

    /// Aligns column `col` to the right (numbers).
    pub fn right(mut self, col: usize) -> Table {
        self.align[col] = Align::Right;
        self
    }

    /// A row; its first cell is shown in the style of its status word.
    pub fn row(&mut self, cells: Vec<String>) {
        let style = cells.first().map_or(Style::Plain, |c| Style::of_status(c));
        self.rows.push((cells, style));
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lines of the table, without colour.
    #[cfg(test)]
    pub fn lines(&self) -> Vec<String> {
        self.render(false)
    }

    fn render(&self, color: bool) -> Vec<String> {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (i, c) in cells.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String], first: Style, all: Style| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate().take(n) {
                let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
                let style = if i == 0 { first } else { all };
                let text = if color { paint(c, style) } else { c.clone() };
                if i > 0 {
                    out.push_str("  ");
                }
                match self.align[i] {
                    Align::Right => {
                        out.push_str(&pad);
                        out.push_str(&text);
                    }
                    Align::Left if i + 1 == n => out.push_str(&text),
                    Align::Left => {
                        out.push_str(&text);
                        out.push_str(&pad);
                    }
                }
            }
            out.trim_end().to_string()
        };
        let mut out = vec![line(&self.header, Style::Bold, Style::Bold)];
        for (cells, style) in &self.rows {
            out.push(line(cells, *style, Style::Plain));
        }
        out
    }

    /// Writes the table to stderr.
    pub fn print(&self) {
        if is_quiet() {
            return;
        }
        for l in self.render(shell().color) {
            write_err(&l);
        }
    }
}

/// A size for people: `812 B`, `14.2 KiB`, `3.4 MiB`, `1.1 GiB`.
pub fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.1} GiB", b / (KIB * KIB * KIB))
    }
}

/// `1 file`, `2 files`: `n` and `word`, made plural with `s` when `n` is not 1.
pub fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The summary line of a multi-unit command: `built 2, up-to-date 1, failed 0`.
pub fn summary(parts: &[(&str, usize)]) -> String {
    parts.iter().map(|(what, n)| format!("{what} {n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_plurals() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(14_540), "14.2 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count(0, "file"), "0 files");
        assert_eq!(summary(&[("built", 2), ("failed", 0)]), "built 2, failed 0");
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact("-e PIP_INDEX_URL=https://user:s3cret@pypi.example/simple x"),
            "-e PIP_INDEX_URL=https://user:****@pypi.example/simple x"
        );
        assert_eq!(redact("http://token@h:3128 and https://h/x"), "http://****@h:3128 and https://h/x");
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn colour_follows_the_flag_then_the_environment_then_the_terminal() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(use_color(ColorChoice::Always, env(&[("NO_COLOR", "1")]), || false));
        assert!(!use_color(ColorChoice::Never, env(&[("CLICOLOR_FORCE", "1")]), || true));
        assert!(!use_color(ColorChoice::Auto, env(&[("NO_COLOR", "1")]), || true));
        assert!(use_color(ColorChoice::Auto, env(&[("CLICOLOR_FORCE", "1")]), || false));
        assert!(!use_color(ColorChoice::Auto, env(&[("CLICOLOR_FORCE", "0")]), || false));
        assert!(use_color(ColorChoice::Auto, env(&[]), || true));
        assert!(!use_color(ColorChoice::Auto, env(&[("TERM", "dumb")]), || true));
        assert!(!use_color(ColorChoice::Auto, env(&[]), || false));
    }

    #[test]
    fn table_columns_fit_their_widest_cell() {
        let mut t = Table::new(&["STATUS", "LAYER", "VERSION", "ARN"]).right(2);
        t.row(vec!["published".into(), "a-very-long-layer-name-indeed".into(), "12".into(), "arn:1".into()]);
        t.row(vec!["failed".into(), "six".into(), "-".into(), "error: x".into()]);
        let lines = t.lines();
        assert_eq!(lines[0], "STATUS     LAYER                          VERSION  ARN");
        assert_eq!(lines[1], "published  a-very-long-layer-name-indeed       12  arn:1");
        assert_eq!(lines[2], "failed     six                                  -  error: x");
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("--platform"), "--platform");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
