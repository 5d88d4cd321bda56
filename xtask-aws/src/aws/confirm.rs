//! Asking before a write: `--yes`, or a word typed at a terminal (a profile's name to
//! write to a profile marked `confirm`, `unlock` to remove a publish lock); without a
//! terminal, the refusal says which flag to pass.

use std::fmt::Display;
use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Result};

use xtask::config::Profile;

/// Refuses a write to a profile marked `confirm` unless `--yes` was given or, on a
/// terminal, the user types the profile's name.
pub fn profile(name: &str, profile: &Profile, yes: bool) -> Result<()> {
    if !profile.confirm {
        return Ok(());
    }
    typed(
        yes,
        name,
        format_args!("profile `{name}` writes to {}; type `{name}` to continue: ", profile.regions.join(", ")),
        format!("profile `{name}` needs confirmation: pass --yes to write to it (nothing was written)"),
    )
}

/// Goes on with `yes`, or when `word` is typed at a terminal after `prompt`; otherwise
/// fails with `refusal`.
pub fn typed(yes: bool, word: &str, prompt: impl Display, refusal: String) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        bail!(refusal);
    }
    xtask::output::prompt(prompt);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != word {
        bail!(refusal);
    }
    Ok(())
}
