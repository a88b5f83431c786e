//! What a person watching the terminal sees while the bench runs; nothing when stderr is not one.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` requests, or a counter for phases that run for a time.
pub fn bar(phase: &'static str, len: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(len) => (
            ProgressBar::new(len),
            "{msg:<13} [{wide_bar}] {pos}/{len} {per_sec} {elapsed}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {msg:<13} {pos} requests {per_sec} {elapsed}",
        ),
    };
    let style = ProgressStyle::with_template(template).expect("a valid progress template");
    bar.set_style(style);
    bar.set_message(phase);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A line between phases, for the slow steps with no requests to count.
pub fn note(step: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{step}…");
    }
}
