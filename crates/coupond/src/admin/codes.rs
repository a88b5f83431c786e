//! `coupond codes`: generate, import (a CSV streamed as the request body), export (a CSV streamed
//! to a file or stdout), remove.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Subcommand;
use futures::{StreamExt, TryStreamExt};
use reqwest::{header, Method};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::client::{field, read_json, transport, Client};
use super::output::{answer, print, print_json};
use super::table::{cell, Table};
use super::{progress, Failure};

/// How many codes one remove request carries; a longer list is sent in several.
const REMOVE_BATCH: usize = 10_000;
/// Duplicates listed after an import (`--json` has the server's first 1000).
const DUPLICATES_SHOWN: usize = 20;

#[derive(Debug, Subcommand)]
pub enum CodesCommand {
    /// Draw new codes from a pattern into a unique-mode book.
    Generate {
        book_id: String,
        #[arg(long, value_parser = super::positive)]
        count: u64,
        /// `#` digit, `?` letter, `*` either, anything else literal; defaults to the book's pattern.
        #[arg(long)]
        pattern: Option<String>,
    },
    /// Upload codes from a CSV (first column the code; an optional `code` header), streamed from
    /// FILE or stdin (`-`, the default).
    Import {
        book_id: String,
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Write the book's codes as CSV, to stdout or --output (CSV either way; with --output and
    /// --json the summary is JSON).
    Export {
        book_id: String,
        /// Only codes in this state: available, active, locked, redeemed or expired.
        #[arg(long)]
        status: Option<String>,
        /// Write here instead of stdout; the file appears only once the export is complete.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Remove unclaimed codes, named as arguments and/or in --file (one code per line).
    #[command(arg_required_else_help = true)]
    Remove {
        book_id: String,
        codes: Vec<String>,
        /// A file of codes, one per line (`-` for stdin).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

pub async fn run(client: &Client, command: CodesCommand) -> Result<(), Failure> {
    match command {
        CodesCommand::Generate {
            book_id,
            count,
            pattern,
        } => {
            let mut body = json!({"count": count});
            if let Some(p) = pattern {
                body["pattern"] = json!(p);
            }
            let url = ["coupons", book_id.as_str(), "codes", "generate"];
            let answer_ = client.send_json(Method::POST, &url, &body).await?;
            let n = field(&answer_, "generated_codes_count")?;
            answer(client.json, &answer_, || format!("generated {n} codes"))
        }
        CodesCommand::Import { book_id, file } => import(client, &book_id, &file).await,
        CodesCommand::Export {
            book_id,
            status,
            output,
        } => export(client, &book_id, status, output.as_deref()).await,
        CodesCommand::Remove { book_id, codes, file } => remove(client, &book_id, codes, file.as_deref()).await,
    }
}

type Input = Box<dyn AsyncRead + Send + Unpin>;

/// FILE, or stdin for `-`, and its length when it is a regular file.
async fn open(path: &Path) -> Result<(Input, Option<u64>), Failure> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(tokio::io::stdin()), None));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Failure::Local(format!("opening {}: {e}", path.display())))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| Failure::Local(format!("reading {}: {e}", path.display())))?;
    let len = meta.is_file().then_some(meta.len());
    Ok((Box::new(file), len))
}

async fn import(client: &Client, book_id: &str, path: &Path) -> Result<(), Failure> {
    let (input, len) = open(path).await?;
    // A server that refuses a request before reading its body closes the connection under it, and
    // the upload then fails on a broken pipe rather than with the refusal. So the refusals known
    // before any byte is read (the token, the role, an unknown book) are asked for first.
    client.get(&["coupons", book_id], &[]).await?;
    let bar = progress::bytes(len, "import");
    // A read error ends the body; it is kept here so that it is reported as the local failure it
    // is, not as whatever the transport makes of a body that stopped.
    let read_error: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
    let stream = {
        let (bar, read_error) = (bar.clone(), read_error.clone());
        ReaderStream::with_capacity(input, 256 * 1024)
            .inspect_ok(move |chunk| {
                bar.inc(chunk.len() as u64);
                // The server answers once it has stored what it read.
                if Some(bar.position()) == len {
                    bar.set_message("sent; the server is storing the codes");
                }
            })
            .inspect_err(move |e| {
                *read_error.lock().expect("not poisoned") = Some(std::io::Error::new(e.kind(), e.to_string()))
            })
    };
    let mut request = client
        .request(Method::POST, client.url(&["coupons", book_id, "codes", "import"]))
        .header(header::CONTENT_TYPE, "text/csv")
        .header(header::ACCEPT, "application/json")
        .body(reqwest::Body::wrap_stream(stream));
    if let Some(len) = len {
        request = request.header(header::CONTENT_LENGTH, len);
    }
    let sent = client.send(request).await.map_err(|f| match f {
        Failure::Unreadable(m) => Failure::Unreadable(format!(
            "{m} (the server closed the connection while the file was sent: it may refuse a body this large)"
        )),
        other => other,
    });
    if let Some(e) = read_error.lock().expect("not poisoned").take() {
        bar.abandon();
        return Err(Failure::Local(format!("reading {}: {e}", path.display())));
    }
    let response = sent.inspect_err(|_| bar.abandon())?;
    let answer_ = read_json(response).await;
    bar.finish_and_clear();
    let answer_ = answer_?;
    if client.json {
        return print_json(&answer_);
    }
    let uploaded = field(&answer_, "uploaded_codes_count")?;
    let listed = answer_
        .get("duplicates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let duplicates = answer_
        .get("duplicates_count")
        .and_then(Value::as_u64)
        .unwrap_or(listed.len() as u64);
    let mut text = format!("uploaded {uploaded} codes, {duplicates} duplicates skipped\n");
    if !listed.is_empty() {
        let mut table = Table::new(&["DUPLICATE"]);
        for d in listed.iter().take(DUPLICATES_SHOWN) {
            table.row(vec![cell(Some(d))]);
        }
        text.push_str(&table.render());
        if duplicates > DUPLICATES_SHOWN as u64 {
            text.push_str(&format!(
                "… the first {DUPLICATES_SHOWN} shown; --json lists the server's first 1000\n"
            ));
        }
    }
    print(&text)
}

/// Where an export goes: stdout, or a file beside the destination that takes its name once every
/// byte is written, so that a failed export leaves no partial file behind.
enum Sink {
    Stdout(tokio::io::Stdout),
    File {
        file: tokio::fs::File,
        staged: Staged,
        path: PathBuf,
    },
}

/// The file an export is written to before it is complete; removed unless it was renamed.
struct Staged {
    path: PathBuf,
    kept: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Sink {
    async fn create(output: Option<&Path>) -> Result<Sink, Failure> {
        let Some(path) = output else {
            return Ok(Sink::Stdout(tokio::io::stdout()));
        };
        let name = path
            .file_name()
            .ok_or_else(|| Failure::Usage(format!("--output {}: not a file name", path.display())))?;
        // Created as any new file is (the umask applies), unlike a private temporary file.
        let staged = Staged {
            path: path.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id())),
            kept: false,
        };
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged.path)
            .await
            .map_err(|e| Failure::Local(format!("creating {}: {e}", staged.path.display())))?;
        Ok(Sink::File {
            file,
            staged,
            path: path.to_owned(),
        })
    }

    fn writer(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match self {
            Sink::Stdout(s) => s,
            Sink::File { file, .. } => file,
        }
    }

    fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "stdout".into(),
            Sink::File { path, .. } => path.display().to_string(),
        }
    }

    async fn finish(mut self) -> Result<(), Failure> {
        let name = self.name();
        let failed = |e: std::io::Error| Failure::Local(format!("writing {name}: {e}"));
        self.writer().flush().await.map_err(failed)?;
        if let Sink::File { file, mut staged, path } = self {
            file.sync_all().await.map_err(failed)?;
            tokio::fs::rename(&staged.path, &path).await.map_err(failed)?;
            staged.kept = true;
        }
        Ok(())
    }
}

async fn export(client: &Client, book_id: &str, status: Option<String>, output: Option<&Path>) -> Result<(), Failure> {
    let mut query = Vec::new();
    if let Some(s) = status {
        query.push(("status", s));
    }
    let request = client
        .request(Method::GET, client.url(&["coupons", book_id, "codes"]))
        .query(&query)
        .header(header::ACCEPT, "text/csv");
    let response = client.send(request).await?;
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !kind.starts_with("text/csv") {
        return Err(Failure::Unreadable(format!(
            "the server answered the export with {kind:?}, not text/csv"
        )));
    }
    let mut sink = Sink::create(output).await?;
    let bar = progress::bytes(None, "export");
    let (mut lines, mut last) = (0u64, b'\n');
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            bar.abandon();
            transport(&e)
        })?;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        last = *chunk.last().unwrap_or(&last);
        bar.inc(chunk.len() as u64);
        bar.set_message(format!("{} rows", lines.saturating_sub(1)));
        match sink.writer().write_all(&chunk).await {
            Ok(()) => {}
            // `| head`: the reader has all it wants.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && output.is_none() => {
                bar.finish_and_clear();
                return Ok(());
            }
            Err(e) => {
                bar.abandon();
                return Err(Failure::Local(format!("writing {}: {e}", sink.name())));
            }
        }
    }
    let rows = (lines + u64::from(last != b'\n')).saturating_sub(1);
    let name = sink.name();
    sink.finish().await?;
    bar.finish_and_clear();
    match output {
        Some(_) => answer(
            client.json,
            &json!({"exported_codes_count": rows, "output": name}),
            || format!("exported {rows} codes to {name}"),
        ),
        None => {
            if std::io::stderr().is_terminal() {
                eprintln!("exported {rows} codes");
            }
            Ok(())
        }
    }
}

async fn remove(client: &Client, book_id: &str, mut codes: Vec<String>, file: Option<&Path>) -> Result<(), Failure> {
    if let Some(path) = file {
        let text = super::read_input(path).await?;
        let text =
            String::from_utf8(text).map_err(|_| Failure::Local(format!("{} is not UTF-8 text", path.display())))?;
        codes.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
    }
    if codes.is_empty() {
        return Err(Failure::Usage("no codes to remove: name them, or pass --file".into()));
    }
    let (mut removed, mut not_removed) = (0u64, Vec::new());
    for batch in codes.chunks(REMOVE_BATCH) {
        let url = ["coupons", book_id, "codes", "remove"];
        let answer_ = client.send_json(Method::POST, &url, &json!({"codes": batch})).await?;
        removed += field(&answer_, "removed_count")?.as_u64().unwrap_or(0);
        if let Some(list) = answer_.get("not_removed").and_then(Value::as_array) {
            not_removed.extend(list.iter().cloned());
        }
    }
    let all = json!({"removed_count": removed, "not_removed": not_removed});
    if client.json {
        return print_json(&all);
    }
    let mut text = format!("removed {removed} codes\n");
    if !not_removed.is_empty() {
        let mut table = Table::new(&["NOT REMOVED", "REASON"]);
        for n in &not_removed {
            table.row(vec![cell(n.get("code")), cell(n.get("reason"))]);
        }
        text.push('\n');
        text.push_str(&table.render());
    }
    print(&text)
}
