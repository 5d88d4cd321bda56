//! Progress on stderr: a spinner while a long step runs, one line per step running at
//! once (units built in parallel each show theirs), shown only on a terminal and never
//! with `--quiet` or `--verbose` (where the step's output is shown live instead), so logs
//! and `--json` pipelines stay clean. Lines written meanwhile go above the spinners.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Where every spinner is drawn; `output` writes its lines through [`suspend`].
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(MultiProgress::new)
}

/// How many spinners are on screen.
static SHOWN: AtomicUsize = AtomicUsize::new(0);

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
    let bar = multi().add(ProgressBar::new_spinner());
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap());
    bar.set_message(msg);
    bar.enable_steady_tick(Duration::from_millis(120));
    SHOWN.fetch_add(1, Ordering::SeqCst);
    Spinner { bar }
}

impl Spinner {
    pub fn finish_and_clear(self) {}
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if !self.bar.is_hidden() {
            self.bar.finish_and_clear();
            multi().remove(&self.bar);
            SHOWN.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Runs `write` with the spinners, if any are on screen, out of the way.
pub fn suspend(write: impl FnOnce()) {
    if SHOWN.load(Ordering::SeqCst) > 0 {
        multi().suspend(write)
    } else {
        write()
    }
}
