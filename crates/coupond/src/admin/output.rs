//! Writing answers to stdout: JSON for scripts, text for people. A closed pipe (`| head`) ends the
//! output quietly rather than with a panic.

use std::io::{ErrorKind, Write};

use serde_json::Value;

use super::Failure;

pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Failure::Local(format!("writing to stdout: {e}"))),
        _ => Ok(()),
    }
}

pub fn print_json(value: &Value) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value serializes");
    text.push('\n');
    print(&text)
}

/// A line for people, or the server's JSON with `--json`.
pub fn answer(json: bool, value: &Value, line: impl FnOnce() -> String) -> Result<(), Failure> {
    if json {
        print_json(value)
    } else {
        print(&format!("{}\n", line()))
    }
}
