//! Progress bars on stderr, for the transfers that take long (import, export). Hidden when stderr
//! is not a terminal, so logs and pipes never receive them.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Bytes sent of `total` (a file), or bytes so far (stdin).
pub fn bytes(total: Option<u64>, what: &'static str) -> ProgressBar {
    let bar = match total {
        _ if !std::io::stderr().is_terminal() => return ProgressBar::hidden(),
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::no_length().with_style(
            ProgressStyle::with_template("{prefix} {spinner} {bytes} {bytes_per_sec} {msg}").expect("a valid template"),
        ),
    };
    bar.set_prefix(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
