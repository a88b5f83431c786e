//! A run from start to end: the stage and the servers, the books, the clients and the nemesis for
//! `--duration`, then healing, the unknowns resolved, the database read and checked, the summary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::attempt::{Policy, Tokens};
use crate::books::{self, Book};
use crate::fleet::{Fleet, Settings};
use crate::history::History;
use crate::http::Client;
use crate::model::Model;
use crate::nemesis::{Fault, Nemesis};
use crate::report::{self, Summary};
use crate::snapshot::{self, Stats};
use crate::stage::Stage;
use crate::workload::{self, ClientLog, Shared};
use crate::{check, settle, Backend, Chaos};

pub async fn run(args: Chaos) -> anyhow::Result<()> {
    if args.failover && args.backend != Backend::Postgres {
        bail!("--failover needs --backend postgres");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let out = out_dir(args.out.as_deref())?;
    eprintln!("coupond chaos: seed {seed}; history and logs in {}", out.display());
    let work = tempfile::Builder::new()
        .prefix("coupond-chaos-")
        .tempdir()
        .context("creating a working directory")?;
    let stage = Stage::build(args.backend, args.failover, work.path(), args.volume_mib).await?;
    let kinds = chosen_faults(&args.faults, &stage.faults())?;
    for skipped in &stage.skipped {
        eprintln!("skipped: {skipped}");
    }
    let secret = Alphanumeric.sample_string(&mut rand::rng(), 48);
    let settings = Settings {
        database_url: stage.database_url.clone(),
        jwt_secret: secret.clone(),
        pool_size: args.pool_size,
        request_timeout: args.server_timeout.clone(),
        acquire_timeout: "2s".into(),
        log: args.server_log.clone(),
    };
    let fleet = Arc::new(Fleet::start(settings, args.instances.into(), work.path(), &out).await?);
    let outcome = play(&args, seed, &out, &stage, &fleet, &secret, kinds).await;
    fleet.stop().await;
    stage.keep_logs(&out);
    drop(fleet);
    drop(stage);
    let summary = outcome?;
    print!("{}", summary.text());
    std::fs::write(out.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    if !summary.violations.is_empty() {
        bail!("{} violation(s); see {}", summary.violations.len(), out.display());
    }
    if !summary.passed {
        bail!("{} answer(s) were 500s; see {}", summary.server_errors, out.display());
    }
    Ok(())
}

async fn play(
    args: &Chaos,
    seed: u64,
    out: &Path,
    stage: &Stage,
    fleet: &Arc<Fleet>,
    secret: &str,
    kinds: Vec<Fault>,
) -> anyhow::Result<Summary> {
    let mut rng = StdRng::seed_from_u64(seed);
    let users: Vec<String> = (0..args.users).map(|i| format!("user-{i}")).collect();
    let tokens = Tokens::new(secret, &users)?;
    let attempt_timeout = args.attempt_timeout;
    let mut setup = Client::new(fleet.addrs(), attempt_timeout);
    let books = books::create(&mut setup, &tokens, &mut rng).await?;
    let named = named_codes(stage, &books).await?;

    let (history, history_file) = History::create(&out.join("history.jsonl"))?;
    let shared = Arc::new(Shared {
        model: Mutex::new(Model::new(users, books.clone(), named)),
        tokens,
        policy: Policy {
            attempts: args.attempts,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        },
        stop: AtomicBool::new(false),
        history: history.clone(),
        addrs: fleet.addrs(),
        attempt_timeout,
        seed,
        next_id: AtomicU64::new(1),
        done: AtomicU64::new(0),
        twins: args.twins,
        replays: args.replays,
    });
    let started = Instant::now();
    let until = started + args.duration;
    let clients: Vec<_> = (0..usize::from(args.clients))
        .map(|i| tokio::spawn(workload::client(i, shared.clone())))
        .collect();
    let nemesis = Nemesis {
        fleet: fleet.clone(),
        cluster: stage.cluster.clone(),
        proxies: stage.proxies.clone(),
        volume: stage.volume.clone(),
        sqlite_files: stage.sqlite_files(),
        history: history.clone(),
        rng: StdRng::seed_from_u64(seed.wrapping_add(1)),
        every: args.fault_every,
        kinds: if args.fault_every.is_zero() { Vec::new() } else { kinds },
    };
    let failover_at = args.failover.then(|| started + args.duration / 2);
    let (interrupt, interrupted) = tokio::sync::watch::channel(false);
    let nemesis = tokio::spawn(nemesis.run(until, failover_at, interrupted));

    watch(&shared, started, until).await;
    shared.stop.store(true, Ordering::Relaxed);
    let _ = interrupt.send(true);
    let faults = nemesis.await.context("the nemesis panicked")?;
    let mut log = ClientLog::default();
    for client in clients {
        let c = client.await.context("a client panicked")?;
        log.finished.extend(c.finished);
        log.server_errors.extend(c.server_errors);
    }
    let seconds = started.elapsed().as_secs_f64();

    eprintln!("healing: every fault undone, every server ready");
    stage.heal().await?;
    fleet.heal().await?;
    eprintln!("retrying the unknown operations with their keys");
    log.finished.sort_by_key(|f| f.op.id);
    let unknowns = settle::resolve(
        &shared,
        &mut log.finished,
        &mut log.server_errors,
        args.final_replays,
        &mut rng,
    )
    .await;

    eprintln!("reading the database");
    let stats = book_stats(&shared, &books).await?;
    let snap = snapshot::read(&stage.source(), stats).await?;
    let verdict = check::check(&log.finished, &snap, &books);
    drop(shared);
    drop(history);
    history_file.close().await?;

    let (operations, refusals, replayed_answers) = report::tally(&log.finished);
    let failover = faults.failover.and_then(|f| report::window(&log.finished, f));
    Ok(Summary {
        seed,
        backend: match args.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        },
        instances: args.instances.into(),
        clients: args.clients.into(),
        seconds,
        out: out.display().to_string(),
        operations,
        refusals,
        replayed_answers,
        faults,
        unknowns,
        server_errors: log.server_errors.len(),
        server_error_samples: report::samples(&log.server_errors, 10),
        failover,
        server_starts: fleet.starts(),
        passed: verdict.violations.is_empty() && (log.server_errors.is_empty() || args.tolerate_500),
        violations_by_check: verdict.by_check(),
        violations: verdict.violations,
    })
}

/// Waits for the end of the run (or Ctrl-C), printing progress every ten seconds.
async fn watch(shared: &Shared, started: Instant, until: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => return,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted: ending the run and checking what was done");
                return;
            }
            _ = tick.tick() => eprintln!(
                "{:>5.0} s: {} operations",
                started.elapsed().as_secs_f64(),
                shared.done.load(Ordering::Relaxed)
            ),
        }
    }
}

/// The codes named claims pick from: each unique book's codes as created, read from the database.
async fn named_codes(stage: &Stage, books: &[Book]) -> anyhow::Result<Vec<Vec<String>>> {
    let snap = snapshot::read(&stage.source(), HashMap::new()).await?;
    Ok(books
        .iter()
        .map(|b| match &b.shared_code {
            Some(code) => vec![code.clone()],
            None => snap
                .codes
                .iter()
                .filter(|c| c.book == b.id)
                .map(|c| c.code.clone())
                .collect(),
        })
        .collect())
}

/// Each book's stats as the API answers them (`GET /coupons/{id}`, as admin).
async fn book_stats(shared: &Shared, books: &[Book]) -> anyhow::Result<HashMap<String, Stats>> {
    let mut client = Client::new(shared.addrs.clone(), shared.attempt_timeout);
    let mut stats = HashMap::new();
    for book in books {
        let request = crate::operation::Request {
            post: false,
            target: format!("/coupons/{}", book.id),
            body: Vec::new(),
        };
        let reply = client
            .send(0, shared.tokens.admin(), None, &request)
            .await
            .map_err(anyhow::Error::msg)?;
        let body: serde_json::Value = serde_json::from_slice(&reply.body)?;
        let parsed: Stats = serde_json::from_value(body["stats"].clone())
            .with_context(|| format!("the stats of book {}: {body}", book.id))?;
        stats.insert(book.id.clone(), parsed);
    }
    Ok(stats)
}

fn chosen_faults(asked: &[String], possible: &[Fault]) -> anyhow::Result<Vec<Fault>> {
    if asked.is_empty() {
        return Ok(possible.to_vec());
    }
    asked
        .iter()
        .map(|name| {
            possible.iter().copied().find(|f| f.name() == name).with_context(|| {
                let names: Vec<&str> = possible.iter().map(|f| f.name()).collect();
                format!("fault {name:?} does not apply here (possible: {})", names.join(", "))
            })
        })
        .collect()
}

/// The output directory: as given (created), or a new one under the temporary directory, kept.
fn out_dir(asked: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match asked {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.to_path_buf()
        }
        None => tempfile::Builder::new()
            .prefix("coupond-chaos-out-")
            .tempdir()
            .context("creating the output directory")?
            .keep(),
    };
    Ok(dir)
}
