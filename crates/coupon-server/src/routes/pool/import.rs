//! Importing a file of codes so that bad input writes nothing and a million codes fit in little
//! memory: the body is spooled to an unnamed temporary file; pass 1 checks every line and counts
//! the codes; pass 2 reads them again in chunks, each added in a transaction of its own so claims
//! on the book go on between chunks (SQLite has one writer). File and CSV work runs on tokio's
//! blocking threads, never on the runtime's.

use std::fs::File;
use std::io::{Read, Seek};

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::RequestExt;
use coupon_core::book::MAX_SUPPLY;
use coupon_core::{CodeText, CouponError, Timestamp};
use coupon_store::{AddedCodes, Coupons};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{ImportedCodes, MAX_IMPORT_BYTES};
use crate::error::ApiError;
use crate::idempotency::{RequestKey, SentKey};

/// Codes per `add_codes` call, one transaction each.
const CHUNK: usize = 10_000;
/// Duplicates named in the answer; all are counted.
const SHOWN_DUPLICATES: usize = 1_000;

/// The body must be `text/csv` or `text/plain` (with any parameters, e.g. a charset).
pub fn check_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("text/csv" | "text/plain") => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType(
            "send the codes as text/csv or text/plain",
        )),
    }
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::Io(e)
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, ApiError> {
    r.map_err(|e| ApiError::Io(std::io::Error::other(e)))
}

/// Whether a body error is the route's size limit (`DefaultBodyLimit`), which axum reports as an
/// `http_body_util::LengthLimitError` somewhere down the error's sources.
fn is_over_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Writes the body to an unnamed temporary file (gone when closed) and returns it rewound, feeding
/// it to the request's digest on the way when it has an idempotency key.
pub async fn spool(req: Request, mut key: Option<&mut SentKey>) -> Result<File, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_IMPORT_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let file = joined(tokio::task::spawn_blocking(tempfile::tempfile).await)?.map_err(io)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut body = req.with_limited_body().into_body().into_data_stream();
    let mut bytes = 0_u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            if is_over_limit(&e) {
                ApiError::PayloadTooLarge
            } else {
                ApiError::invalid("body", e.to_string())
            }
        })?;
        bytes += chunk.len() as u64;
        if let Some(key) = key.as_deref_mut() {
            key.update(&chunk);
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    let mut file = file.into_std().await;
    joined(
        tokio::task::spawn_blocking(move || {
            file.rewind()?;
            Ok(file)
        })
        .await,
    )?
    .map_err(io)
    .inspect(|_| tracing::debug!(bytes, "import spooled"))
}

impl ImportedCodes {
    /// What the import answers once `added` is added too.
    fn with(&self, added: &AddedCodes) -> ImportedCodes {
        let mut all = self.clone();
        all.uploaded_codes_count += added.inserted;
        all.duplicates_count += added.duplicates.len() as u64;
        let room = SHOWN_DUPLICATES - all.duplicates.len();
        all.duplicates.extend(added.duplicates.iter().take(room).cloned());
        all
    }
}

/// Pass 1: checks every line and counts the codes; the file comes back rewound.
pub async fn count(file: File) -> Result<(File, u64), ApiError> {
    joined(
        tokio::task::spawn_blocking(move || {
            let mut file = file;
            let mut n = 0_u64;
            let mut first_bad = None;
            for code in Codes::new(&mut file) {
                match code {
                    Ok(_) => n += 1,
                    Err(Bad::Io(e)) => return Err(ApiError::Io(e)),
                    Err(Bad::Record { byte, why }) => {
                        first_bad = Some((byte, why));
                        break;
                    }
                }
                if n > MAX_SUPPLY as u64 {
                    return Err(ApiError::invalid(
                        "codes",
                        format!("a file holds at most {MAX_SUPPLY} codes"),
                    ));
                }
            }
            if let Some((byte, why)) = first_bad {
                file.rewind().map_err(io)?;
                let line = line_at(&mut file, byte).map_err(io)?;
                return Err(ApiError::invalid("codes", format!("line {line}: {why}")));
            }
            if n == 0 {
                return Err(ApiError::invalid("codes", "the file holds no codes"));
            }
            file.rewind().map_err(io)?;
            Ok((file, n))
        })
        .await,
    )?
}

/// Pass 2: adds the file's codes to the book a chunk at a time. A reader on a blocking thread
/// parses the next chunk while the current one is written. A key is recorded with the last chunk,
/// whose transaction ends the import, answering the whole import.
pub async fn add_all(
    coupons: &Coupons,
    book_id: Uuid,
    file: File,
    now: Timestamp,
    key: Option<RequestKey>,
) -> Result<ImportedCodes, ApiError> {
    let (chunks, mut next) = tokio::sync::mpsc::channel::<Result<Vec<String>, ApiError>>(1);
    let reader = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        for code in Codes::new(file) {
            match code {
                Ok(code) => chunk.push(code.into_string()),
                Err(e) => {
                    // Pass 1 read the same file without fault; this is a disk failing.
                    let e = match e {
                        Bad::Io(e) => ApiError::Io(e),
                        Bad::Record { why, .. } => ApiError::invalid("codes", why),
                    };
                    let _ = chunks.blocking_send(Err(e));
                    return;
                }
            }
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                if chunks.blocking_send(Ok(full)).is_err() {
                    return; // The writer stopped: it answers with its error.
                }
            }
        }
        if !chunk.is_empty() {
            let _ = chunks.blocking_send(Ok(chunk));
        }
    });
    let mut imported = ImportedCodes {
        uploaded_codes_count: 0,
        duplicates_count: 0,
        duplicates: Vec::new(),
    };
    // A chunk is held back until the next arrives, so the last one is known: the store's work
    // after a bulk load (fresh planner statistics) runs once, after it.
    let mut held: Option<Vec<String>> = None;
    loop {
        let chunk = next.recv().await.transpose()?;
        let added = match (held.take(), chunk) {
            (Some(part), Some(chunk)) => {
                held = Some(chunk);
                coupons.add_codes_part(book_id, part, now).await?
            }
            (Some(last), None) => {
                let before = imported.clone();
                let key = key
                    .clone()
                    .map(|k| k.answering(StatusCode::CREATED, move |added: &AddedCodes| before.with(added)));
                coupons.add_codes(book_id, last, now, key).await?
            }
            (None, Some(chunk)) => {
                held = Some(chunk);
                continue;
            }
            (None, None) => break,
        };
        imported = imported.with(&added);
    }
    joined(reader.await)?;
    Ok(imported)
}

/// The codes of an import file, each checked and canonical: the first field of each record. CSV
/// quoting is honoured, records may have any number of fields, blank records are skipped, and so
/// is a first record whose first field is `code` (any case), the header.
struct Codes<R> {
    reader: csv::Reader<R>,
    record: csv::StringRecord,
    before_first: bool,
}

impl<R: Read> Codes<R> {
    fn new(file: R) -> Self {
        Codes {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .buffer_capacity(64 * 1024)
                .from_reader(file),
            record: csv::StringRecord::new(),
            before_first: true,
        }
    }
}

/// Why the file cannot be read as codes.
enum Bad {
    /// The record starting at `byte` (after the end of the one before, as the CSV reader
    /// counts) is not a code.
    Record {
        byte: u64,
        why: String,
    },
    Io(std::io::Error),
}

impl<R: Read> Iterator for Codes<R> {
    type Item = Result<CodeText, Bad>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    let byte = e.position().map_or(0, |p| p.byte());
                    return Some(Err(match e.into_kind() {
                        csv::ErrorKind::Io(e) => Bad::Io(e),
                        csv::ErrorKind::Utf8 { .. } => Bad::Record {
                            byte,
                            why: "not valid UTF-8".into(),
                        },
                        other => Bad::Record {
                            byte,
                            why: format!("{other:?}"),
                        },
                    }));
                }
            }
            if self.record.iter().all(|field| field.trim().is_empty()) {
                continue;
            }
            let raw = &self.record[0];
            if std::mem::replace(&mut self.before_first, false) && raw.trim().eq_ignore_ascii_case("code") {
                continue;
            }
            return Some(CodeText::parse(raw).map_err(|e| Bad::Record {
                byte: self.record.position().map_or(0, |p| p.byte()),
                why: match e {
                    CouponError::Invalid(why) => why.message,
                    other => other.to_string(),
                },
            }));
        }
    }
}

/// The line (from 1) of the record whose reading starts at `byte`. The CSV reader's own line
/// count skips blank lines and counts `\r\n` oddly, so the lines are counted here, once, for the
/// error: the record's first character is the first after `byte` that ends no line.
fn line_at(r: impl Read, byte: u64) -> std::io::Result<u64> {
    let mut line = 1;
    for (pos, b) in std::io::BufReader::new(r).bytes().enumerate() {
        let b = b?;
        if pos as u64 >= byte && b != b'\n' && b != b'\r' {
            break;
        }
        if b == b'\n' {
            line += 1;
        }
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &[u8]) -> Vec<Result<String, String>> {
        Codes::new(text)
            .map(|c| match c {
                Ok(code) => Ok(code.into_string()),
                Err(Bad::Record { byte, why }) => Err(format!("line {}: {why}", line_at(text, byte).unwrap())),
                Err(Bad::Io(e)) => panic!("{e}"),
            })
            .collect()
    }

    #[test]
    fn reads_the_first_field_of_each_line() {
        let text = "Code,note\nabc-1,first\n\n\"A,B\"\n\"x_3\",\"a \"\"quoted\"\", note\"\r\n , \n  y-4  \n";
        assert_eq!(
            codes(text.as_bytes()),
            vec![
                Ok("ABC-1".into()),
                Err("line 4: a code may contain only letters, digits, '-' and '_'".into()),
                Ok("X_3".into()),
                Ok("Y-4".into()),
            ]
        );
        assert_eq!(codes(b"one\ntwo"), vec![Ok("ONE".into()), Ok("TWO".into())]);
    }

    #[test]
    fn names_the_line_whatever_came_before() {
        let bad = "a code may contain only letters, digits, '-' and '_'";
        assert_eq!(codes(b"A\n\n\nB C\n")[1], Err(format!("line 4: {bad}")));
        assert_eq!(codes(b"A\r\n\r\nB\r\nC!\r\n")[2], Err(format!("line 4: {bad}")));
        assert_eq!(
            codes(b"\"A\nB\"\nC\n")[0],
            Err("line 1: a code may contain only letters, digits, '-' and '_'".into())
        );
        assert_eq!(codes(b"\"A\nB\"\nC D\n")[1], Err(format!("line 3: {bad}")));
        assert_eq!(codes(b"A\nB\n\xff\n")[2], Err("line 3: not valid UTF-8".into()));
        assert_eq!(
            codes(b"a\n     \n\n-\n"),
            vec![Ok("A".into()), Ok("-".into())],
            "whitespace is blank"
        );
    }

    #[test]
    fn only_a_first_line_is_a_header() {
        assert_eq!(codes(b"\n\ncode\nCODE\n"), vec![Ok("CODE".into())]);
        assert_eq!(
            codes("\u{feff}code\nA\n".as_bytes()),
            vec![Ok("A".into())],
            "a byte-order mark"
        );
    }
}
