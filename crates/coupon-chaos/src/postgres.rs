//! Throwaway PostgreSQL: a primary (and, for failover, a synchronous standby made with
//! `pg_basebackup -R`) in a temporary directory, on free ports, run with Debian's binaries as the
//! `postgres` user when the harness is root (initdb refuses root), stopped when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;

/// Where Debian keeps each version's server binaries.
const VERSIONS: &str = "/usr/lib/postgresql";
/// The database coupond runs on.
pub const DATABASE: &str = "chaos";

/// One PostgreSQL server of the cluster.
struct Node {
    name: &'static str,
    dir: PathBuf,
    port: u16,
    log: PathBuf,
    running: bool,
}

pub struct Cluster {
    bin: PathBuf,
    root: TempDir,
    as_postgres: bool,
    nodes: Vec<Node>,
    /// The node that takes writes: 0, or the promoted standby after a failover.
    primary: usize,
}

impl Cluster {
    /// Starts a primary, and a synchronous standby when `standby`; creates the database.
    pub fn start(standby: bool) -> anyhow::Result<Cluster> {
        let bin = binaries()?;
        let as_postgres = is_root();
        let root = tempfile::Builder::new()
            .prefix("coupond-chaos-pg-")
            .tempdir()
            .context("creating the cluster's directory")?;
        if as_postgres {
            run(Command::new("chown").args(["postgres:postgres"]).arg(root.path()))?;
        }
        let mut cluster = Cluster {
            bin,
            root,
            as_postgres,
            nodes: Vec::new(),
            primary: 0,
        };
        cluster.nodes.push(cluster.node("primary")?);
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.dir(0),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        cluster.configure(0)?;
        cluster.pg_ctl(0, "start")?;
        if standby {
            cluster.nodes.push(cluster.node("standby")?);
            let port = cluster.nodes[0].port.to_string();
            cluster.pg(
                "pg_basebackup",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-D",
                    &cluster.dir(1),
                    "-R",
                    "-X",
                    "stream",
                ],
            )?;
            cluster.configure(1)?;
            cluster.pg_ctl(1, "start")?;
            // Set only now, on the primary alone: the standby, once promoted, must not wait for one.
            cluster.sql(0, "ALTER SYSTEM SET synchronous_standby_names = '*'")?;
            cluster.sql(0, "SELECT pg_reload_conf()")?;
            cluster.wait_synchronous()?;
        }
        cluster.sql(0, &format!("CREATE DATABASE {DATABASE}"))?;
        Ok(cluster)
    }

    fn node(&self, name: &'static str) -> anyhow::Result<Node> {
        Ok(Node {
            name,
            dir: self.root.path().join(name),
            port: crate::fleet::free_port()?.port(),
            log: self.root.path().join(format!("{name}.log")),
            running: false,
        })
    }

    fn dir(&self, node: usize) -> String {
        self.nodes[node].dir.display().to_string()
    }

    /// Settings in `postgresql.conf`, so every restart keeps them (later lines win).
    fn configure(&self, node: usize) -> anyhow::Result<()> {
        let n = &self.nodes[node];
        let conf = n.dir.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).context("reading postgresql.conf")?;
        text.push_str(&format!(
            "\n# coupond chaos\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 400\nsynchronous_commit = on\n",
            n.port,
            self.root.path().display()
        ));
        fs::write(&conf, text).context("writing postgresql.conf")?;
        Ok(())
    }

    fn pg_ctl(&mut self, node: usize, action: &str) -> anyhow::Result<()> {
        let (dir, log) = (self.dir(node), self.nodes[node].log.display().to_string());
        let mut args = vec!["-D", &dir, "-l", &log, "-w", "-t", "120"];
        match action {
            "restart" | "stop" => args.extend(["-m", "immediate"]),
            _ => {}
        }
        args.push(action);
        self.pg("pg_ctl", &args)?;
        self.nodes[node].running = action != "stop";
        Ok(())
    }

    /// `pg_ctl restart -m immediate` of the primary: a crash and its recovery.
    pub fn crash_restart(&mut self) -> anyhow::Result<()> {
        self.pg_ctl(self.primary, "restart")
    }

    /// Stops the primary hard and promotes the standby; the new primary runs alone.
    pub fn fail_over(&mut self) -> anyhow::Result<Duration> {
        if self.nodes.len() < 2 || self.primary != 0 {
            bail!("no standby to fail over to");
        }
        let started = Instant::now();
        self.pg_ctl(0, "stop")?;
        self.pg_ctl(1, "promote")?;
        self.primary = 1;
        Ok(started.elapsed())
    }

    /// Every node's port, primary first: what the proxies forward to.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The database, directly (not through a proxy): for checking it.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{DATABASE}",
            self.nodes[self.primary].port
        )
    }

    /// Makes sure the node taking writes runs (after a fault that failed half-way).
    pub fn heal(&mut self) -> anyhow::Result<()> {
        if !self.nodes[self.primary].running {
            self.pg_ctl(self.primary, "start")?;
        }
        Ok(())
    }

    /// Copies the servers' logs next to the history.
    pub fn keep_logs(&self, out: &Path) {
        for n in &self.nodes {
            let _ = fs::copy(&n.log, out.join(format!("postgres-{}.log", n.name)));
        }
    }

    fn wait_synchronous(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.sql(0, "SELECT sync_state FROM pg_stat_replication")?;
            if state.trim() == "sync" {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the standby did not become synchronous (sync_state {state:?})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn sql(&self, node: usize, sql: &str) -> anyhow::Result<String> {
        let port = self.nodes[node].port.to_string();
        self.pg(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-XAtq",
                "-c",
                sql,
            ],
        )
    }

    /// Runs one of PostgreSQL's programs, as `postgres` when we are root; its stdout.
    fn pg(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(self.root.path());
        run(&mut command).with_context(|| format!("{program} {}", args.join(" ")))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            if self.nodes[node].running {
                let _ = self.pg_ctl(node, "stop");
            }
        }
    }
}

/// The newest installed version's `bin` directory (`/usr/lib/postgresql/15/bin` on Debian 12).
fn binaries() -> anyhow::Result<PathBuf> {
    let newest = fs::read_dir(VERSIONS)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|v| Path::new(VERSIONS).join(v.to_string()).join("bin/initdb").exists())
        .max();
    match newest {
        Some(v) => Ok(Path::new(VERSIONS).join(v.to_string()).join("bin")),
        None => bail!("PostgreSQL's server binaries are missing ({VERSIONS}/*/bin): apt-get install postgresql"),
    }
}

/// Runs a command to its end; its stdout, or an error with its stderr.
fn run(command: &mut Command) -> anyhow::Result<String> {
    let out = command.output().with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{} ({}): {}",
            command.get_program().to_string_lossy(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this process runs as root (uid 0), from /proc.
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(1).map(|uid| uid == "0")
        })
        .unwrap_or(false)
}
