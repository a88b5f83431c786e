//! The stage a run plays on: the database (a PostgreSQL cluster behind one proxy per server, or a
//! SQLite file on its own volume) and the faults it allows. Dropped in order: proxies, then the
//! database, so nothing is left running or mounted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::nemesis::{lock, Fault};
use crate::postgres::{Cluster, DATABASE};
use crate::proxy::Proxy;
use crate::snapshot::Source;
use crate::volume::Volume;
use crate::Backend;

pub struct Stage {
    pub proxies: Vec<Arc<Proxy>>,
    pub cluster: Option<Arc<Mutex<Cluster>>>,
    pub volume: Option<Arc<Mutex<Volume>>>,
    /// The SQLite database file.
    pub sqlite: Option<PathBuf>,
    /// What the servers are given.
    pub database_url: String,
    /// Faults this stage cannot take, and why.
    pub skipped: Vec<String>,
}

impl Stage {
    pub async fn build(backend: Backend, failover: bool, dir: &Path, volume_mib: u64) -> anyhow::Result<Stage> {
        match backend {
            Backend::Postgres => {
                let cluster = tokio::task::spawn_blocking(move || Cluster::start(failover)).await??;
                let mut proxies = Vec::new();
                for port in cluster.ports() {
                    proxies.push(Arc::new(Proxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await?));
                }
                // With a standby, both proxies are listed: the driver takes the one that accepts writes.
                let hosts: Vec<String> = proxies.iter().map(|p| p.addr().to_string()).collect();
                let database_url = if failover {
                    format!(
                        "postgres://postgres@{}/{DATABASE}?target_session_attrs=read-write",
                        hosts.join(",")
                    )
                } else {
                    format!("postgres://postgres@{}/{DATABASE}", hosts[0])
                };
                Ok(Stage {
                    proxies,
                    cluster: Some(Arc::new(Mutex::new(cluster))),
                    volume: None,
                    sqlite: None,
                    database_url,
                    skipped: Vec::new(),
                })
            }
            Backend::Sqlite => {
                let mut skipped = Vec::new();
                let volume = match Volume::create(dir, volume_mib) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        skipped.push(format!("disk-full and read-only: no volume of its own ({e:#})"));
                        None
                    }
                };
                let db_dir = volume
                    .as_ref()
                    .map_or_else(|| dir.to_path_buf(), |v| v.path().to_path_buf());
                let file = db_dir.join("coupond.db");
                Ok(Stage {
                    proxies: Vec::new(),
                    cluster: None,
                    volume: volume.map(|v| Arc::new(Mutex::new(v))),
                    database_url: format!("sqlite://{}", file.display()),
                    sqlite: Some(file),
                    skipped,
                })
            }
        }
    }

    /// The faults that apply here.
    pub fn faults(&self) -> Vec<Fault> {
        let mut faults = vec![Fault::Kill];
        if self.cluster.is_some() {
            faults.extend([Fault::PgRestart, Fault::Latency, Fault::Drop]);
        }
        if self.volume.is_some() {
            faults.extend([Fault::DiskFull, Fault::ReadOnly]);
        }
        faults
    }

    /// The SQLite database and its WAL: what `read-only` freezes.
    pub fn sqlite_files(&self) -> Vec<PathBuf> {
        self.sqlite
            .iter()
            .flat_map(|db| [db.clone(), PathBuf::from(format!("{}-wal", db.display()))])
            .collect()
    }

    /// Undoes whatever fault is left: no delay, PostgreSQL running, the disk writable and free.
    pub async fn heal(&self) -> anyhow::Result<()> {
        for p in &self.proxies {
            p.set_delay(std::time::Duration::ZERO);
        }
        if let Some(volume) = &self.volume {
            lock(volume).heal();
        }
        if let Some(cluster) = self.cluster.clone() {
            tokio::task::spawn_blocking(move || lock(&cluster).heal()).await??;
        }
        Ok(())
    }

    /// Where the checker reads: the database itself, never through a proxy.
    pub fn source(&self) -> Source {
        match (&self.cluster, &self.sqlite) {
            (Some(cluster), _) => Source::Postgres(lock(cluster).url()),
            (None, Some(file)) => Source::Sqlite(file.clone()),
            (None, None) => unreachable!("a stage has a database"),
        }
    }

    pub fn keep_logs(&self, out: &Path) {
        if let Some(cluster) = &self.cluster {
            lock(cluster).keep_logs(out);
        }
    }
}
