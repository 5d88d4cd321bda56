//! Which checkout a binary was compiled from. Under cargo (`cargo xtask`, `cargo run`),
//! `CARGO_MANIFEST_DIR` at run time names the checkout being used; the binary keeps the
//! one it was compiled in. They differ when a target directory is shared by several
//! copies of the repo (`build.target-dir`, worktrees, a CI cache) and cargo found the
//! binary compiled in another copy current (same file times, as a tar copy keeps):
//! the code that runs would be the other copy's. Then the sources of this checkout are
//! marked changed (their modification time set to now) and the command runs again
//! through cargo, which compiles them; if cargo still runs a foreign binary, the command
//! is refused with the fix.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

/// Set on the rerun: a second mismatch is refused instead of looping.
const REBUILT_VAR: &str = "XTASK_REBUILT_FROM_CHECKOUT";

/// The workspace's sources whose change makes cargo compile both binaries again.
const SOURCES: [&str; 3] = ["xtask/src/lib.rs", "xtask/src/main.rs", "xtask-aws/src/main.rs"];

/// Returns when the running binary of `package`, compiled in `compiled_in` (its
/// compile-time `CARGO_MANIFEST_DIR`), belongs to the checkout cargo runs it for (or it
/// does not run under cargo). Otherwise runs the command again, compiled from this
/// checkout, and exits with its status; or fails saying how to fix it.
pub fn ensure_compiled_here(compiled_in: &str, package: &str) -> Result<()> {
    let Some(here) = crate::settings::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else { return Ok(()) };
    let Some(cargo) = crate::settings::var_os("CARGO") else { return Ok(()) };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let compiled = Path::new(compiled_in);
    // Only this workspace's own crates are checked: `here` names one of its packages.
    if same(compiled, &here) || here.file_name() != compiled.file_name() {
        return Ok(());
    }
    let Some(root) = here.parent().filter(|r| r.join("Cargo.toml").is_file()) else { return Ok(()) };
    let fix =
        "run `cargo clean -p xtask -p xtask-aws`, or give this checkout its own target directory (CARGO_TARGET_DIR)";
    if crate::settings::var_os(REBUILT_VAR).is_some() {
        bail!(
            "the {package} binary cargo runs was compiled from {}, not from this checkout ({}), even after marking this checkout's sources changed: {fix}",
            compiled.display(),
            root.display()
        );
    }
    crate::output::note(format_args!(
        "the {package} binary in the shared target directory was compiled from {}, not from this checkout ({}): compiling it from this checkout",
        compiled.display(),
        root.display()
    ));
    let now = std::fs::FileTimes::new().set_modified(std::time::SystemTime::now());
    for s in SOURCES {
        let path = root.join(s);
        let touched = std::fs::File::options().append(true).open(&path).and_then(|f| f.set_times(now));
        if let Err(e) = touched {
            bail!("cannot mark {} changed ({e}) to compile this checkout's {package}: {fix}", path.display());
        }
    }
    let mut c = Command::new(cargo);
    c.args(["run", "--quiet", "--package", package, "--manifest-path"]).arg(root.join("Cargo.toml"));
    c.arg("--").args(std::env::args_os().skip(1)).env(REBUILT_VAR, "1");
    let status = c.status().map_err(|e| anyhow::anyhow!("cannot run cargo to compile {package}: {e}"))?;
    std::process::exit(status.code().unwrap_or(1));
}
