//! The admin CLI: `books`, `codes` and `redemptions`, run against a coupond server over its HTTP
//! API (never against the database, so the server's rules and authorization apply to operators
//! as to every other client). Tables for people, `--json` for scripts, and an exit code per kind of
//! failure (see [`EXIT_CODES`]).

mod books;
mod client;
mod codes;
mod output;
mod progress;
mod redemptions;
mod table;

use std::fmt;
use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use books::BooksCommand;
pub use codes::CodesCommand;
pub use redemptions::RedemptionsCommand;

use client::Client;

/// The exit codes, as `--help` and the README show them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a local file could not be read or written
  2  usage error (bad arguments, no token)
  3  authentication or authorization refused (401, 403)
  4  not found (404)
  5  refused by a rule of the book or code (409)
  6  bad input (400, 413, 415 and other 4xx)
  7  server error (5xx) or an answer that could not be read
  8  the server cannot be reached";

/// How to reach the server; every admin command takes these, before or after its subcommand.
#[derive(Debug, Args)]
pub struct Remote {
    /// The coupond server's base URL.
    #[arg(long, env = "COUPOND_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// An admin bearer token, e.g. from `coupond token --sub ops --role admin`. Never printed.
    #[arg(long, env = "COUPOND_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<Token>,
    /// Print the server's JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A bearer token whose `Debug` does not show it.
#[derive(Clone)]
pub struct Token(String);

impl std::str::FromStr for Token {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // `$(coupond token ...)` keeps no newline, but a file read into the variable may.
        let t = s.trim();
        if t.is_empty() {
            return Err("the token is empty".into());
        }
        Ok(Token(t.to_owned()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[derive(Debug, Args)]
pub struct Books {
    #[command(flatten, next_help_heading = "Connection")]
    remote: Remote,
    #[command(subcommand)]
    command: BooksCommand,
}

#[derive(Debug, Args)]
pub struct Codes {
    #[command(flatten, next_help_heading = "Connection")]
    remote: Remote,
    #[command(subcommand)]
    command: CodesCommand,
}

#[derive(Debug, Args)]
pub struct Redemptions {
    #[command(flatten, next_help_heading = "Connection")]
    remote: Remote,
    #[command(subcommand)]
    command: RedemptionsCommand,
}

/// One admin command, whichever group it is in.
#[derive(Debug, Subcommand)]
pub enum Admin {
    /// Coupon books: list, show, create, pause, resume, archive.
    #[command(subcommand_required = true, after_help = EXIT_CODES)]
    Books(Books),
    /// A book's codes: generate, import, export, remove.
    #[command(subcommand_required = true, after_help = EXIT_CODES)]
    Codes(Codes),
    /// Redemptions: list a book's or a user's, roll one back.
    #[command(subcommand_required = true, after_help = EXIT_CODES)]
    Redemptions(Redemptions),
}

/// Adds the exit codes to the help of every admin subcommand (`books list --help` too), so the
/// text is written once.
pub fn document(cli: clap::Command) -> clap::Command {
    let mut cli = cli.after_help(format!("Admin commands (books, codes, redemptions):\n{EXIT_CODES}"));
    for group in ["books", "codes", "redemptions"] {
        cli = cli.mut_subcommand(group, |g| {
            let names: Vec<String> = g.get_subcommands().map(|c| c.get_name().to_owned()).collect();
            names
                .iter()
                .fold(g, |g, name| g.mut_subcommand(name, |c| c.after_help(EXIT_CODES)))
        });
    }
    cli
}

/// Runs an admin command and says how it ended.
pub fn run(admin: Admin) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Failure::Local(format!("starting the runtime: {e}")).report(),
    };
    let done = runtime.block_on(async {
        match admin {
            Admin::Books(b) => books::run(&connect(&b.remote)?, b.command).await,
            Admin::Codes(c) => codes::run(&connect(&c.remote)?, c.command).await,
            Admin::Redemptions(r) => redemptions::run(&connect(&r.remote)?, r.command).await,
        }
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn connect(remote: &Remote) -> Result<Client, Failure> {
    let Some(token) = &remote.token else {
        return Err(Failure::Usage(
            "no token: pass --token or set COUPOND_TOKEN (e.g. from `coupond token --sub ops --role admin`)".into(),
        ));
    };
    Client::new(&remote.server, token.0.clone(), remote.json)
}

/// Why an admin command failed; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// A local file could not be read or written.
    Local(String),
    Usage(String),
    /// The server answered with an error status: its problem `code` and `detail`.
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    /// The server answered something that is not the contract (or a 5xx).
    Unreadable(String),
    Unreachable(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Local(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Refused { status, .. } => match status {
                401 | 403 => 3,
                404 => 4,
                409 => 5,
                500.. => 7,
                400..=499 => 6,
                _ => 7,
            },
            Failure::Unreadable(_) => 7,
            Failure::Unreachable(_) => 8,
        }
    }

    fn report(self) -> ExitCode {
        eprintln!("error: {self}");
        ExitCode::from(self.exit_code())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Local(m) | Failure::Usage(m) | Failure::Unreadable(m) | Failure::Unreachable(m) => f.write_str(m),
            Failure::Refused { status, code, detail } => write!(f, "{code} ({status}): {detail}"),
        }
    }
}

/// A count or a limit: a whole number from 1.
fn positive(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number from 1".into()),
    }
}

/// Reads a small input (a JSON body, a list of codes) whole: FILE, or stdin for `-`.
async fn read_input(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    use tokio::io::AsyncReadExt;
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        tokio::io::stdin()
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Failure::Local(format!("reading stdin: {e}")))?;
        return Ok(bytes);
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| Failure::Local(format!("reading {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> u8 {
        Failure::Refused {
            status,
            code: "x".into(),
            detail: "y".into(),
        }
        .exit_code()
    }

    #[test]
    fn each_kind_of_failure_has_its_exit_code() {
        assert_eq!([refused(401), refused(403)], [3, 3]);
        assert_eq!(refused(404), 4);
        assert_eq!(refused(409), 5);
        assert_eq!([refused(400), refused(413), refused(415), refused(422)], [6, 6, 6, 6]);
        assert_eq!([refused(500), refused(503)], [7, 7]);
        assert_eq!(Failure::Unreadable("x".into()).exit_code(), 7);
        assert_eq!(Failure::Unreachable("x".into()).exit_code(), 8);
        assert_eq!(Failure::Usage("x".into()).exit_code(), 2);
        assert_eq!(Failure::Local("x".into()).exit_code(), 1);
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token: Token = "eyJ.secret.sig\n".parse().unwrap();
        assert_eq!(token.0, "eyJ.secret.sig");
        assert!(!format!("{token:?}").contains("secret"));
    }
}
