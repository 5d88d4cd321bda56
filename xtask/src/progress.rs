//! Progress on stderr: a spinner while a long step runs, shown only on a terminal and
//! never with `--quiet` or `--verbose` (where the step's output is shown live instead), so
//! logs and `--json` pipelines stay clean. Lines written meanwhile go above it.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// The spinner on screen, if any: `output` writes its lines through [`suspend`].
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// A spinner that is cleared when dropped.
pub struct Spinner {
    bar: ProgressBar,
}

/// Starts a spinner showing `msg`, or a hidden one where none belongs.
pub fn spinner(msg: String) -> Spinner {
    let shown = std::io::stderr().is_terminal() && !crate::output::is_quiet() && !crate::output::is_verbose();
    if !shown {
        return Spinner { bar: ProgressBar::hidden() };
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap());
    bar.set_message(msg);
    bar.enable_steady_tick(Duration::from_millis(120));
    *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
    Spinner { bar }
}

impl Spinner {
    pub fn finish_and_clear(self) {}
}

impl Drop for Spinner {
    fn drop(&mut self) {
        // One spinner runs at a time (long steps run one after the other).
        if !self.bar.is_hidden() {
            *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.bar.finish_and_clear();
    }
}

/// Runs `write` with the spinner, if one is on screen, out of the way.
pub fn suspend(write: impl FnOnce()) {
    let bar = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(b) => b.suspend(write),
        None => write(),
    }
}
