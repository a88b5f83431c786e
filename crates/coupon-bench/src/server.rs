//! coupond servers under test: spawned from this very binary, waited on until ready, measured
//! through /proc, and stopped with SIGTERM.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper::StatusCode;
use serde::Serialize;

use crate::client::{Connection, Target};

/// Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every architecture we run on.
const TICKS_PER_SECOND: f64 = 100.0;

/// How the server runs claims and redeems (`COUPOND_CLAIM_STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Requests grouped into shared transactions: the server's default.
    Batched,
    /// One transaction per request: the baseline.
    Naive,
}

impl Strategy {
    fn as_env(self) -> &'static str {
        match self {
            Strategy::Batched => "batched",
            Strategy::Naive => "naive",
        }
    }
}

pub struct Settings<'a> {
    pub database_url: &'a str,
    pub jwt_secret: &'a str,
    pub data_dir: &'a Path,
    pub pool_size: u16,
    pub strategy: Strategy,
    /// The servers' log filter (COUPOND_LOG).
    pub log: &'a str,
    /// `on` or `off` (COUPOND_THROTTLE).
    pub throttle: &'a str,
}

/// A running `coupond serve`. Dropping it kills the process if it was not stopped.
pub struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    pub async fn start(settings: &Settings<'_>) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("finding the coupond binary")?;
        let addr = free_port()?;
        let mut command = Command::new(exe);
        // Only our settings: a COUPOND_* variable of the caller's shell must not reach the server.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("COUPOND_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .current_dir(settings.data_dir)
            .env("COUPOND_LISTEN", addr.to_string())
            .env("COUPOND_DATABASE_URL", settings.database_url)
            .env("COUPOND_JWT_SECRET", settings.jwt_secret)
            .env("COUPOND_DATA_DIR", settings.data_dir)
            .env("COUPOND_DB_POOL_SIZE", settings.pool_size.to_string())
            .env("COUPOND_CLAIM_STRATEGY", settings.strategy.as_env())
            .env("COUPOND_LOG", settings.log)
            .env("COUPOND_THROTTLE", settings.throttle)
            // The receiver of `--webhook` listens on loopback, which webhooks reach only when allowed.
            .env("COUPOND_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
            .stdin(Stdio::null())
            // The server logs to stdout, which belongs to the report (--json): send it to stderr.
            .stdout(Stdio::from(io::stderr()));
        let child = command.spawn().context("starting coupond serve")?;
        let mut server = Server { child, addr };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn process(&self) -> Process {
        Process(self.child.id())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let target = Target::new(self.addr, "")?;
        let mut connection = Connection::new(target);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("coupond serve exited before it was ready ({status})");
            }
            if let Ok(answer) = connection.get("/readyz").await {
                if answer.status == StatusCode::OK {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("coupond serve at {} was not ready within a minute", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, so the server drains and closes its database cleanly; SIGKILL if it hangs.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if sent.is_ok_and(|s| s.success()) {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if self.child.try_wait()?.is_some() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port nobody listens on now; the server binds it a moment later.
fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A server process as /proc shows it.
#[derive(Debug, Clone, Copy)]
pub struct Process(u32);

/// CPU time and peak memory at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    cpu_ticks: u64,
    peak_rss_bytes: u64,
    rss_bytes: u64,
}

/// What the server used over a phase.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub cpu_seconds: f64,
    /// Of one core: 200 means both cores of a two-core machine.
    pub cpu_percent: f64,
    pub peak_rss_bytes: u64,
}

impl Process {
    fn proc_path(self, file: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{file}", self.0))
    }

    pub fn sample(self) -> Option<Sample> {
        let at = Instant::now();
        let stat = std::fs::read_to_string(self.proc_path("stat")).ok()?;
        // The command name may hold spaces and parentheses: fields are counted after its last ')'.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5); the first after ')' is field 3.
        let cpu_ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(self.proc_path("status")).ok()?;
        Some(Sample {
            at,
            cpu_ticks,
            peak_rss_bytes: status_kib(&status, "VmHWM:")? * 1024,
            rss_bytes: status_kib(&status, "VmRSS:")? * 1024,
        })
    }

    /// Starts a new peak-RSS window, so each phase reports its own peak rather than the
    /// process's. Best effort: on kernels without it the peak covers the process's life.
    pub fn reset_peak(self) {
        let _ = std::fs::write(self.proc_path("clear_refs"), "5");
    }

    /// A sample that opens a phase: the peak is reset first.
    pub fn begin(self) -> Option<Sample> {
        self.reset_peak();
        self.sample()
    }
}

impl Sample {
    pub fn rss_bytes(&self) -> u64 {
        self.rss_bytes
    }

    pub fn peak_rss_bytes(&self) -> u64 {
        self.peak_rss_bytes
    }

    pub fn usage_since(&self, start: &Sample) -> Usage {
        let cpu_seconds = self.cpu_ticks.saturating_sub(start.cpu_ticks) as f64 / TICKS_PER_SECOND;
        let wall = self.at.duration_since(start.at).as_secs_f64();
        Usage {
            cpu_seconds,
            cpu_percent: if wall > 0.0 { 100.0 * cpu_seconds / wall } else { 0.0 },
            peak_rss_bytes: self.peak_rss_bytes,
        }
    }
}

/// Usage between two optional samples: none when /proc could not be read.
pub fn usage(start: Option<Sample>, end: Option<Sample>) -> Option<Usage> {
    Some(end?.usage_since(&start?))
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let me = Process(std::process::id());
        let sample = me.sample().expect("/proc is readable");
        assert!(sample.peak_rss_bytes >= sample.rss_bytes && sample.rss_bytes > 0);
    }

    #[test]
    fn reads_status_fields_in_kib() {
        assert_eq!(status_kib("Name:\tx\nVmHWM:\t  1234 kB\n", "VmHWM:"), Some(1234));
        assert_eq!(status_kib("Name:\tx\n", "VmHWM:"), None);
    }
}
