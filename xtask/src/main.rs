//! The `cargo xtask` binary. It runs every command that needs no AWS itself and hands the
//! others (publish, status, rollout, ...; see `cli::Command::needs_aws`) to the xtask-aws
//! binary, which links the AWS SDK. So the first `cargo xtask` on a fresh clone compiles
//! no SDK, and the SDK is compiled once, by cargo, on the first AWS command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Result};
use xtask::cli;
use xtask::output;
use xtask::repo::Repo;

/// Names a binary to run the AWS commands with, instead of the xtask-aws of this checkout.
const AWS_BIN_VAR: &str = "XTASK_AWS_BIN";
/// The AWS half's package and binary.
const AWS_PACKAGE: &str = "xtask-aws";

fn main() -> ExitCode {
    cli::main(cli::Binary { package: "xtask", compiled_in: env!("CARGO_MANIFEST_DIR") }, &hand_to_aws)
}

/// Replaces this process with the xtask-aws binary, given the same arguments: its output,
/// exit status and Ctrl-C handling are then exactly its own.
fn hand_to_aws(_repo: Repo, _command: &cli::Command) -> Result<bool> {
    let mut child = aws_command()?;
    child.args(std::env::args_os().skip(1));
    let program = child.get_program().to_string_lossy().into_owned();
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = child.exec();
        bail!("cannot run {program}: {err}");
    }
    #[cfg(not(unix))]
    {
        let status = child.status().map_err(|e| anyhow::anyhow!("cannot run {program}: {e}"))?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// How to start the AWS half, in order: `XTASK_AWS_BIN`; under cargo (`cargo xtask`, which
/// sets `CARGO` and, at run time, `CARGO_MANIFEST_DIR` to the checkout being used),
/// `cargo run -p xtask-aws` in that checkout, so it is built when missing or older than
/// its sources, into the same target directory and profile as this binary; else the
/// `xtask-aws` binary beside this one. Never the checkout this binary was compiled in: with
/// a shared target directory that may be another copy, or gone.
fn aws_command() -> Result<Command> {
    if let Some(bin) = xtask::settings::var_os(AWS_BIN_VAR) {
        output::note(format_args!("the AWS commands run {} (from {AWS_BIN_VAR})", Path::new(&bin).display()));
        return Ok(Command::new(bin));
    }
    let exe = std::env::current_exe().ok();
    let sibling = exe.as_deref().and_then(Path::parent).map(|d| d.join(AWS_PACKAGE));
    let manifest = xtask::settings::var_os("CARGO_MANIFEST_DIR")
        .map(|d| Path::new(&d).join("../Cargo.toml"))
        .filter(|m| m.is_file() && m.with_file_name(AWS_PACKAGE).join("Cargo.toml").is_file());
    if let (Some(cargo), Some(manifest)) = (xtask::settings::var_os("CARGO"), manifest) {
        if !sibling.as_deref().is_some_and(Path::is_file) {
            output::note(format_args!(
                "the first AWS command compiles the {AWS_PACKAGE} binary (the AWS SDK): about a minute, once"
            ));
        }
        // The same toolchain as the cargo that built this binary, even when PATH changed.
        let rustc = Path::new(&cargo).with_file_name("rustc");
        let mut c = Command::new(cargo);
        if xtask::settings::var_os("RUSTC").is_none() && rustc.is_file() {
            c.env("RUSTC", rustc);
        }
        c.args(["run", "--quiet", "--package", AWS_PACKAGE, "--manifest-path"]).arg(&manifest);
        if let Some((target_dir, profile)) = exe.as_deref().and_then(build_place) {
            if xtask::settings::var_os("CARGO_TARGET_DIR").is_none() {
                c.env("CARGO_TARGET_DIR", target_dir);
            }
            if profile == "release" {
                c.arg("--release");
            }
        }
        c.arg("--");
        return Ok(c);
    }
    match sibling {
        Some(s) if s.is_file() => Ok(Command::new(s)),
        _ => bail!(
            "this command calls AWS, which the {AWS_PACKAGE} binary does: run it as `cargo xtask ...`, or build it with `cargo build -p {AWS_PACKAGE}` (or name one with {AWS_BIN_VAR})"
        ),
    }
}

/// `<target>/<profile dir>/xtask` -> (`<target>`, profile dir), for a binary cargo built.
fn build_place(exe: &Path) -> Option<(PathBuf, OsString)> {
    let dir = exe.parent()?;
    let profile = dir.file_name()?.to_os_string();
    let target = dir.parent()?;
    target.join("CACHEDIR.TAG").is_file().then(|| (target.to_path_buf(), profile))
}
