//! The HTTP client of the admin commands: the server's base URL and the bearer token, and the one
//! place where an answer becomes a [`Failure`] (its problem `code` and `detail`) or a value.

use std::error::Error as _;
use std::time::Duration;

use reqwest::{header, Method, RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;

use super::Failure;

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
    /// `--json`: print the server's JSON rather than tables.
    pub json: bool,
}

impl Client {
    pub fn new(server: &str, token: String, json: bool) -> Result<Client, Failure> {
        let base = Url::parse(server).map_err(|e| Failure::Usage(format!("--server {server:?}: {e}")))?;
        match base.scheme() {
            "http" => {}
            // The binary carries no TLS stack; a TLS-terminating proxy or an SSH tunnel reaches a
            // remote server.
            "https" => {
                return Err(Failure::Usage(format!(
                    "--server {server:?}: this build speaks plain HTTP only; reach a remote server \
                     through a tunnel to its HTTP port"
                )))
            }
            other => {
                return Err(Failure::Usage(format!(
                    "--server {server:?}: unsupported scheme {other:?}"
                )))
            }
        }
        if base.cannot_be_a_base() {
            return Err(Failure::Usage(format!("--server {server:?} is not a base URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("coupond-admin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Local(format!("building the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            token,
            json,
        })
    }

    /// The URL of a route below the base, each segment percent-encoded (a user id may hold `/`).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: a base URL")
            .pop_if_empty()
            .extend(segments);
        url
    }

    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// Sends the request; any status but 2xx is a [`Failure`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Failure> {
        let response = request.send().await.map_err(|e| transport(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(refused(response).await)
    }

    /// Sends the request and reads a JSON answer.
    pub async fn json(&self, request: RequestBuilder) -> Result<Value, Failure> {
        let response = self.send(request.header(header::ACCEPT, "application/json")).await?;
        read_json(response).await
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value, Failure> {
        self.json(self.request(Method::GET, self.url(segments)).query(query))
            .await
    }

    pub async fn send_json(&self, method: Method, segments: &[&str], body: &Value) -> Result<Value, Failure> {
        self.json(self.request(method, self.url(segments)).json(body)).await
    }
}

pub async fn read_json(response: Response) -> Result<Value, Failure> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| transport(&e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Failure::Unreadable(format!(
            "the server answered {status} with a body that is not JSON ({e}): {}",
            snippet(&bytes)
        ))
    })
}

/// A transport error: connecting (or timing out) means the server cannot be reached; anything
/// later means its answer could not be read.
pub fn transport(e: &reqwest::Error) -> Failure {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_connect() || e.is_timeout() {
        Failure::Unreachable(format!("cannot reach the server: {message}"))
    } else if e.is_builder() {
        Failure::Usage(message)
    } else {
        Failure::Unreadable(format!("the server's answer could not be read: {message}"))
    }
}

/// A non-2xx answer: the problem's `code` and `detail` when it is problem+json, else the status
/// and the start of the body.
async fn refused(response: Response) -> Failure {
    let status = response.status();
    let bytes = response.bytes().await.unwrap_or_default();
    let problem: Option<Value> = serde_json::from_slice(&bytes).ok();
    let field = |name: &str| {
        problem
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = field("code").unwrap_or_else(|| default_code(status).to_owned());
    let detail = field("detail")
        .or_else(|| field("title"))
        .unwrap_or_else(|| match snippet(&bytes) {
            s if s.is_empty() => status.canonical_reason().unwrap_or("no detail").to_owned(),
            s => s,
        });
    Failure::Refused {
        status: status.as_u16(),
        code,
        detail,
    }
}

fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        500.. => "server_error",
        _ => "http_error",
    }
}

/// The first line of a body, shortened, for a message.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// A string field of an answer, or a [`Failure`] saying the answer broke the contract.
pub fn field<'a>(value: &'a Value, name: &str) -> Result<&'a Value, Failure> {
    value
        .get(name)
        .ok_or_else(|| Failure::Unreadable(format!("the server's answer has no `{name}`")))
}

/// A page of a list: its items under `key`, and the cursor of the next page.
pub fn page(value: &Value, key: &str) -> Result<(Vec<Value>, Option<String>), Failure> {
    let items = field(value, key)?
        .as_array()
        .ok_or_else(|| Failure::Unreadable(format!("`{key}` in the server's answer is not a list")))?
        .clone();
    let next = value.get("next_cursor").and_then(Value::as_str).map(str::to_owned);
    Ok((items, next))
}

/// The largest page the list routes serve.
const PAGE: usize = 100;

impl Client {
    /// Every item of a paged list (following `next_cursor`), or the first `limit`. The cursor is
    /// that of the last page read: set when `limit` stopped the listing before its end.
    pub async fn list(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        key: &str,
        limit: Option<usize>,
    ) -> Result<(Vec<Value>, Option<String>), Failure> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let want = limit.map_or(PAGE, |l| (l - items.len()).min(PAGE));
            let mut q = query.to_vec();
            q.push(("limit", want.to_string()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let (mut got, next) = page(&self.get(segments, &q).await?, key)?;
            if got.is_empty() && next.is_some() {
                return Err(Failure::Unreadable(format!(
                    "the server answered an empty page of `{key}` with a next_cursor"
                )));
            }
            got.truncate(want);
            items.append(&mut got);
            cursor = next;
            let full = limit.is_some_and(|l| items.len() >= l);
            if cursor.is_none() || full {
                return Ok((items, cursor));
            }
        }
    }
}
