//! Progress on stderr: a spinner while a long step runs, hidden when stderr is not a
//! terminal so logs and `--json` pipelines stay clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").unwrap());
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}
