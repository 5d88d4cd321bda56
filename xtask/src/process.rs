//! Running the programs the tool drives (docker, uv, pip, python, git, strip, tar, cargo):
//! one home for how a command runs, is shown with `-v`, and fails. Every failure names
//! what the command was for (`what`), as cargo-dist's axoprocess does, so an error reads
//! "cannot run `git` (read layers/ at REF): ..." rather than a bare I/O error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result};

/// Runs a command and returns its exit status and its output (stdout, then stderr). With
/// `-v` the command line is shown first and its output line by line as it comes (both
/// redacted); otherwise a spinner saying `what` runs meanwhile (on a terminal).
pub fn capture(mut cmd: std::process::Command, what: String) -> Result<(std::process::ExitStatus, String)> {
    use std::io::BufRead;
    use std::process::Stdio;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    cmd.stdin(Stdio::null());
    if !crate::output::is_verbose() {
        let spinner = crate::progress::spinner(what);
        let out = cmd.output().with_context(|| format!("cannot run `{program}`"))?;
        spinner.finish_and_clear();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        return Ok((out.status, text));
    }
    crate::output::command(&program, &args);
    let tag = crate::output::tag();
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| format!("cannot run `{program}`"))?;
    let stream = |r: Box<dyn std::io::Read + Send>| {
        let tag = tag.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in std::io::BufReader::new(r).lines().map_while(std::result::Result::ok) {
                crate::output::live(tag.as_deref(), &line);
                text.push_str(&line);
                text.push('\n');
            }
            text
        })
    };
    let out = stream(Box::new(child.stdout.take().context("no stdout")?));
    let err = stream(Box::new(child.stderr.take().context("no stderr")?));
    let status = child.wait()?;
    let text = format!("{}{}", out.join().unwrap_or_default(), err.join().unwrap_or_default());
    Ok((status, text))
}

/// The last `n` lines of a program's output, indented and fenced, for error messages.
pub fn fence_tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    let mut out = String::from("    ┌──\n");
    for l in tail {
        out.push_str("    │ ");
        out.push_str(l.trim_end());
        out.push('\n');
    }
    out.push_str("    └──");
    out
}

/// `program` as a path if it names an executable, directly or through PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(crate::settings::var_os("PATH")?).map(|d| d.join(program)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Runs `cmd` to completion, capturing its output; an error names the program and `what`
/// it was run for. The exit status is the caller's to judge.
pub fn output(cmd: &mut Command, what: &str) -> Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().with_context(|| format!("cannot run `{program}` ({what})"))
}

/// `git -C dir ARGS...`, for `what`: its stdout when it succeeds, else a one-line error
/// with the last line git printed.
pub fn git(dir: &Path, args: &[&str], what: &str) -> Result<Vec<u8>> {
    let out = output(Command::new("git").arg("-C").arg(dir).args(args), what)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim();
        anyhow::bail!("git {} ({what}): {}", args.join(" "), crate::quote::clip(why));
    }
    Ok(out.stdout)
}

/// This machine's host name, as locks name their holder: the kernel's, else `HOSTNAME`,
/// else `unknown-host`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| crate::settings::var("HOSTNAME").map(str::to_string))
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}
