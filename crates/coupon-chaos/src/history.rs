//! The history: every operation as JSON lines, `invoke` when it is sent and `ok`, `fail` or
//! `unknown` when it ends (and again when an unknown one is resolved after the run), with the
//! faults between them. The checker reads the operations' final outcomes (`Finished`); the file is
//! for people, and for tools that want to replay a run's reasoning.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::operation::{Answer, Op};

/// How an operation ended, as far as its client knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx.
    Ok(Answer),
    /// A definite refusal (a 4xx that is not "try again").
    Fail(Answer),
    /// No definite answer: the client gave up, or the run ended.
    Unknown,
}

/// An operation's end: its outcome, and every definite answer its key ever got (its own, a twin's
/// sent at the same time to another instance, a replay asked for afterwards, the resolution of an
/// unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub op: Op,
    pub outcome: Outcome,
    pub answers: Vec<Answer>,
    /// It was unknown when its client gave up, and was retried with its key after the run.
    pub was_unknown: bool,
    /// When the attempt that got its answer was sent (ms since the epoch); for the failover window.
    pub answered_attempt_at: Option<i64>,
}

impl Finished {
    pub fn ok(&self) -> Option<&Answer> {
        match &self.outcome {
            Outcome::Ok(answer) => Some(answer),
            _ => None,
        }
    }

    pub fn unknown(&self) -> bool {
        self.outcome == Outcome::Unknown
    }
}

/// One attempt, briefly: where it went and what came back (`503 unavailable`, `connect: …`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub instance: usize,
    pub at: i64,
    pub result: String,
}

/// A line of the history file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Invoke {
        time: String,
        #[serde(flatten)]
        op: Op,
    },
    Ok {
        time: String,
        #[serde(flatten)]
        op: Op,
        answer: Answer,
        attempts: Vec<Attempt>,
        /// Answered by the retry after the run of an operation that was unknown.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resolved: bool,
    },
    Fail {
        time: String,
        #[serde(flatten)]
        op: Op,
        answer: Answer,
        attempts: Vec<Attempt>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resolved: bool,
    },
    Unknown {
        time: String,
        #[serde(flatten)]
        op: Op,
        attempts: Vec<Attempt>,
        /// Still unknown after the retry that followed the run.
        #[serde(default, rename = "final", skip_serializing_if = "std::ops::Not::not")]
        last: bool,
    },
    /// Another answer for an operation's key: its twin's, or a replay asked for.
    Again {
        time: String,
        op: u64,
        key: String,
        answer: Answer,
        why: String,
    },
    Fault {
        time: String,
        fault: String,
        /// `start` or `end`.
        phase: String,
        detail: String,
    },
}

/// The time as a history line shows it.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The history's writer: lines go through a channel to one task that owns the file.
#[derive(Clone)]
pub struct History {
    lines: mpsc::UnboundedSender<Line>,
}

pub struct HistoryFile {
    task: JoinHandle<anyhow::Result<()>>,
}

impl History {
    pub fn create(path: &Path) -> anyhow::Result<(History, HistoryFile)> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let (lines, mut rx) = mpsc::unbounded_channel::<Line>();
        let task = tokio::task::spawn_blocking(move || {
            let mut out = BufWriter::new(file);
            while let Some(line) = rx.blocking_recv() {
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(())
        });
        Ok((History { lines }, HistoryFile { task }))
    }

    pub fn write(&self, line: Line) {
        // Only after the file task failed; its error is reported when the file is closed.
        let _ = self.lines.send(line);
    }

    pub fn fault(&self, fault: &str, phase: &str, detail: impl Into<String>) {
        self.write(Line::Fault {
            time: time(crate::http::now_ms()),
            fault: fault.to_owned(),
            phase: phase.to_owned(),
            detail: detail.into(),
        });
    }
}

impl HistoryFile {
    /// Waits for every line to be written; every `History` handle must be dropped first.
    pub async fn close(self) -> anyhow::Result<()> {
        self.task.await.context("the history writer panicked")?
    }
}
