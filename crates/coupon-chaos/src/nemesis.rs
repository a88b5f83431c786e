//! The nemesis: one fault at a time, about one every `--fault-every`, each chosen at random among
//! those that apply to the backend, undone before the next (a killed server is started again, a
//! slow network made fast, a full disk emptied), and the failover once, halfway, when asked for.
//! Kinds are drawn from a shuffled bag, each once per round, so a short run sees every one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;

use crate::fleet::Fleet;
use crate::history::History;
use crate::http::now_ms;
use crate::postgres::Cluster;
use crate::proxy::Proxy;
use crate::volume::Volume;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL of a server, started again a moment later.
    Kill,
    /// `pg_ctl restart -m immediate`: PostgreSQL crashes and recovers.
    PgRestart,
    /// 50–300 ms added to every chunk through the proxy, for 2–6 s.
    Latency,
    /// Every proxied connection reset at once.
    Drop,
    /// SQLite's volume filled for 2–5 s.
    DiskFull,
    /// SQLite's database and WAL immutable for 2–5 s.
    ReadOnly,
    /// The primary stopped hard, the synchronous standby promoted.
    Failover,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::PgRestart => "pg-restart",
            Fault::Latency => "latency",
            Fault::Drop => "drop",
            Fault::DiskFull => "disk-full",
            Fault::ReadOnly => "read-only",
            Fault::Failover => "failover",
        }
    }
}

/// The failover as it happened (ms since the epoch).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Failover {
    pub stopped_at: i64,
    pub promoted_at: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct Faults {
    pub counts: BTreeMap<&'static str, u32>,
    /// Faults that could not be applied or undone, with why.
    pub failures: Vec<String>,
    pub failover: Option<Failover>,
}

/// What the nemesis can reach.
pub struct Nemesis {
    pub fleet: Arc<Fleet>,
    pub cluster: Option<Arc<Mutex<Cluster>>>,
    pub proxies: Vec<Arc<Proxy>>,
    pub volume: Option<Arc<Mutex<Volume>>>,
    /// The SQLite database and its WAL, for `read-only`.
    pub sqlite_files: Vec<PathBuf>,
    pub history: History,
    pub rng: StdRng,
    pub every: Duration,
    pub kinds: Vec<Fault>,
}

impl Nemesis {
    /// Injects faults until `until`, or until `stop` says so (an interrupted run); the failover at
    /// `failover_at`, if given.
    pub async fn run(
        mut self,
        until: Instant,
        mut failover_at: Option<Instant>,
        mut stop: watch::Receiver<bool>,
    ) -> Faults {
        let mut faults = Faults::default();
        let mut next_kill = 0;
        let mut bag: Vec<Fault> = Vec::new();
        loop {
            let gap = self.every.mul_f64(self.rng.random_range(0.5..1.5));
            let mut wake = (Instant::now() + gap).min(until);
            if let Some(at) = failover_at {
                wake = wake.min(at);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            if Instant::now() >= until {
                break;
            }
            let fault = match failover_at {
                Some(at) if Instant::now() >= at => {
                    failover_at = None;
                    Fault::Failover
                }
                _ => {
                    if bag.is_empty() {
                        bag = self.kinds.clone();
                        bag.shuffle(&mut self.rng);
                    }
                    match bag.pop() {
                        Some(kind) => kind,
                        None => continue,
                    }
                }
            };
            let target = if fault == Fault::Kill {
                next_kill = (next_kill + 1) % self.fleet.len();
                next_kill
            } else {
                0
            };
            match self.inject(fault, target, &mut faults).await {
                Ok(()) => *faults.counts.entry(fault.name()).or_insert(0) += 1,
                Err(e) => {
                    self.history.fault(fault.name(), "error", format!("{e:#}"));
                    faults.failures.push(format!("{}: {e:#}", fault.name()));
                }
            }
        }
        faults
    }

    async fn inject(&mut self, fault: Fault, target: usize, faults: &mut Faults) -> anyhow::Result<()> {
        let history = self.history.clone();
        let name = fault.name();
        match fault {
            Fault::Kill => {
                history.fault(name, "start", format!("server {target}"));
                self.fleet.kill(target);
                self.pause(300, 2000).await;
                self.fleet.revive(target).await?;
                history.fault(name, "end", format!("server {target} ready"));
            }
            Fault::PgRestart => {
                history.fault(name, "start", "pg_ctl restart -m immediate");
                let cluster = self.cluster()?;
                blocking(move || lock(&cluster).crash_restart()).await?;
                history.fault(name, "end", "PostgreSQL accepts connections");
            }
            Fault::Latency => {
                let delay = Duration::from_millis(self.rng.random_range(50..=300));
                history.fault(name, "start", format!("{delay:?} per chunk"));
                self.proxies.iter().for_each(|p| p.set_delay(delay));
                self.pause(2000, 6000).await;
                self.proxies.iter().for_each(|p| p.set_delay(Duration::ZERO));
                history.fault(name, "end", "no delay");
            }
            Fault::Drop => {
                history.fault(name, "start", "every proxied connection reset");
                self.proxies.iter().for_each(|p| p.reset_all());
            }
            Fault::DiskFull => {
                let volume = self.volume()?;
                let v = volume.clone();
                let ballast = blocking(move || lock(&v).fill()).await?;
                history.fault(name, "start", format!("{ballast} bytes of ballast"));
                self.pause(2000, 5000).await;
                lock(&volume).drain();
                history.fault(name, "end", "ballast removed");
            }
            Fault::ReadOnly => {
                let volume = self.volume()?;
                let files = self.sqlite_files.clone();
                lock(&volume).freeze(&files)?;
                history.fault(name, "start", "chattr +i on the database and its WAL");
                self.pause(2000, 5000).await;
                lock(&volume).thaw();
                history.fault(name, "end", "chattr -i");
            }
            Fault::Failover => {
                let cluster = self.cluster()?;
                let stopped_at = now_ms();
                history.fault(
                    name,
                    "start",
                    "pg_ctl stop -m immediate on the primary, promote the standby",
                );
                let took = blocking(move || lock(&cluster).fail_over()).await?;
                let promoted_at = now_ms();
                faults.failover = Some(Failover {
                    stopped_at,
                    promoted_at,
                });
                history.fault(name, "end", format!("standby promoted after {took:?}"));
            }
        }
        Ok(())
    }

    async fn pause(&mut self, min_ms: u64, max_ms: u64) {
        tokio::time::sleep(Duration::from_millis(self.rng.random_range(min_ms..=max_ms))).await;
    }

    fn cluster(&self) -> anyhow::Result<Arc<Mutex<Cluster>>> {
        self.cluster
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no PostgreSQL cluster"))
    }

    fn volume(&self) -> anyhow::Result<Arc<Mutex<Volume>>> {
        self.volume.clone().ok_or_else(|| anyhow::anyhow!("no volume"))
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a command-line step (pg_ctl, filling a disk) off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}
