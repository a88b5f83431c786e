//! The coupond servers under test: spawned from this very binary (`serve`), each on its own port
//! and data directory, sharing one JWT secret and one database; killed with SIGKILL and started
//! again on the same port; logging to a file each, next to the history.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::http::Client;
use crate::operation::Request;

/// What every server is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub jwt_secret: String,
    pub pool_size: u16,
    pub request_timeout: String,
    pub acquire_timeout: String,
    pub log: String,
}

struct Server {
    addr: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

pub struct Fleet {
    settings: Settings,
    servers: Vec<Mutex<Server>>,
}

/// How long a server has to answer `/readyz` after it was started.
const READY_WITHIN: Duration = Duration::from_secs(90);

impl Fleet {
    /// Starts `count` servers, one after the other (the first applies the migrations).
    pub async fn start(settings: Settings, count: usize, dir: &Path, logs: &Path) -> anyhow::Result<Fleet> {
        let mut servers = Vec::new();
        for i in 0..count {
            let data_dir = dir.join(format!("server-{i}"));
            std::fs::create_dir_all(&data_dir)?;
            std::fs::write(logs.join(format!("server-{i}.log")), "")?;
            servers.push(Mutex::new(Server {
                addr: free_port()?,
                data_dir,
                log: logs.join(format!("server-{i}.log")),
                child: None,
                starts: 0,
            }));
        }
        let fleet = Fleet { settings, servers };
        for i in 0..count {
            fleet.launch(i)?;
            fleet.ready(i, READY_WITHIN).await?;
        }
        Ok(fleet)
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| self.lock(s).addr).collect()
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    fn lock<'a>(&self, s: &'a Mutex<Server>) -> std::sync::MutexGuard<'a, Server> {
        s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn launch(&self, i: usize) -> anyhow::Result<()> {
        let mut server = self.lock(&self.servers[i]);
        let exe = std::env::current_exe().context("finding the coupond binary")?;
        // A restart appends to the log of the server it replaces (emptied when the run began).
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&server.log)
            .with_context(|| format!("opening {}", server.log.display()))?;
        let s = &self.settings;
        let mut command = Command::new(exe);
        // Only our settings: a COUPOND_* variable of the caller's shell must not reach the server.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("COUPOND_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .current_dir(&server.data_dir)
            .env("COUPOND_LISTEN", server.addr.to_string())
            .env("COUPOND_DATABASE_URL", &s.database_url)
            .env("COUPOND_JWT_SECRET", &s.jwt_secret)
            .env("COUPOND_DATA_DIR", &server.data_dir)
            .env("COUPOND_DB_POOL_SIZE", s.pool_size.to_string())
            .env("COUPOND_REQUEST_TIMEOUT", &s.request_timeout)
            .env("COUPOND_DB_ACQUIRE_TIMEOUT", &s.acquire_timeout)
            // No key may be purged while the run still checks it.
            .env("COUPOND_IDEMPOTENCY_RETENTION", "7d")
            // Hundreds of simulated users share one machine: buckets would only add 429s.
            .env("COUPOND_THROTTLE", "off")
            .env("COUPOND_LOG", &s.log)
            // The log is a file, read by people and grep: no colour codes.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        server.child = Some(command.spawn().context("starting coupond serve")?);
        server.starts += 1;
        Ok(())
    }

    /// Waits until the server answers `/readyz` with 200.
    pub async fn ready(&self, i: usize, within: Duration) -> anyhow::Result<()> {
        let addr = self.lock(&self.servers[i]).addr;
        let mut client = Client::new(vec![addr], Duration::from_secs(5));
        let probe = Request {
            post: false,
            target: "/readyz".into(),
            body: Vec::new(),
        };
        let deadline = Instant::now() + within;
        loop {
            {
                let mut server = self.lock(&self.servers[i]);
                if let Some(child) = server.child.as_mut() {
                    if let Some(status) = child.try_wait()? {
                        server.child = None;
                        bail!(
                            "coupond serve {i} exited before it was ready ({status}); see {}",
                            server.log.display()
                        );
                    }
                }
            }
            if let Ok(reply) = client.send(0, "", None, &probe).await {
                if reply.status.is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("coupond serve {i} at {addr} was not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no draining, no clean close of the database.
    pub fn kill(&self, i: usize) {
        let mut server = self.lock(&self.servers[i]);
        if let Some(mut child) = server.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a server that is not running (again), and waits until it is ready.
    pub async fn revive(&self, i: usize) -> anyhow::Result<()> {
        let running = {
            let mut server = self.lock(&self.servers[i]);
            match server.child.as_mut() {
                Some(child) => child.try_wait()?.is_none(),
                None => false,
            }
        };
        if !running {
            self.launch(i)?;
        }
        self.ready(i, READY_WITHIN).await
    }

    /// Every server running and ready, started again where needed (a few tries each).
    pub async fn heal(&self) -> anyhow::Result<()> {
        for i in 0..self.len() {
            let mut tries = 0;
            while let Err(e) = self.revive(i).await {
                tries += 1;
                if tries == 3 {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Ok(())
    }

    /// How many times each server was started.
    pub fn starts(&self) -> Vec<u32> {
        self.servers.iter().map(|s| self.lock(s).starts).collect()
    }

    /// SIGTERM to every server, SIGKILL to those that do not exit within 15 s.
    pub async fn stop(&self) {
        for s in &self.servers {
            if let Some(child) = self.lock(s).child.as_ref() {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for s in &self.servers {
            while !self.reaped(s, Instant::now() > deadline) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Whether the server has exited (and is waited for); killed first when `now` says so.
    fn reaped(&self, s: &Mutex<Server>, now: bool) -> bool {
        let mut server = self.lock(s);
        let Some(child) = server.child.as_mut() else {
            return true;
        };
        if now || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            server.child = None;
            return true;
        }
        false
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// A port nobody listens on now; the server binds it a moment later.
pub fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}
