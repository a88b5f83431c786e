//! `coupond bench`: load against real coupond processes, measured from outside, and the
//! invariants checked in the database afterwards.
//!
//! `flash-sale` (issue 3) runs, against one database: a no-op floor (`/healthz`), a book claimed the
//! moment it is created on the fresh database and again after `ANALYZE`, a baseline server with one
//! transaction per request, the flash sale on the default server (claims while stock lasts, then
//! out_of_stock answers), a read mix, the redemption of every claim, and optionally a crowd of idle
//! connections.

mod claim;
mod client;
mod cold;
mod database;
mod events;
mod progress;
mod reads;
mod redeem;
mod report;
mod server;
mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use rand::distr::{Alphanumeric, SampleString};

use crate::claim::{ClaimLoad, ClaimOutcome};
use crate::client::{token, Target};
use crate::cold::ColdLoad;
use crate::database::BenchDatabase;
use crate::redeem::RedeemLoad;
use crate::report::{Phase, Ratios, Report};
use crate::server::{usage, Server, Settings, Strategy};
use crate::verify::SoldBook;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// A flash sale: one book, many users claiming at once, then reads and redemptions; invariants
    /// checked in the database afterwards (exits non-zero if one fails).
    FlashSale(FlashSale),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone, Args)]
pub struct FlashSale {
    /// The database the servers run on.
    #[arg(long, value_enum, default_value_t = Backend::Postgres)]
    pub backend: Backend,
    /// A PostgreSQL server's maintenance database: the bench database is created and dropped through it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub pg_url: String,
    /// The PostgreSQL database created for the run (dropped first if present, and at the end).
    #[arg(long, default_value = "coupond_bench")]
    pub db_name: String,
    /// Codes in the flash-sale book, and in the baseline's.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub codes: u64,
    /// Users, each claiming once.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub users: u64,
    /// Concurrent keep-alive connections, each sending one request at a time.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: u32,
    /// Seconds of `GET /healthz`.
    #[arg(long, default_value_t = 5)]
    pub noop_secs: u64,
    /// Seconds for the baseline's claims, and again for its redeems.
    #[arg(long, default_value_t = 10)]
    pub naive_secs: u64,
    /// Seconds of the read mix.
    #[arg(long, default_value_t = 10)]
    pub read_secs: u64,
    /// The servers' PostgreSQL pool size (COUPOND_DB_POOL_SIZE).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub pool_size: u16,
    /// The servers' log filter (COUPOND_LOG), e.g. `coupon_store=debug` to see batch sizes.
    #[arg(long, default_value = "warn")]
    pub server_log: String,
    /// The servers' throttling (COUPOND_THROTTLE): `off` measures what the buckets cost.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub server_throttle: String,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// At the end, hold this many idle keep-alive connections and read the server's memory (0: skip).
    #[arg(long, default_value_t = 0)]
    pub idle_connections: usize,
    /// Codes in a separate book created from a pattern on the default server, timed (0: skip).
    #[arg(long, default_value_t = 1_000_000)]
    pub generate: u64,
    /// Codes in each of two books created from a pattern and claimed the moment they exist, by as
    /// many users over every connection: first on the fresh database, then after ANALYZE (0: skip).
    #[arg(long, default_value_t = 100_000)]
    pub cold_codes: u64,
    /// During the flash sale, a webhook receiver on 127.0.0.1 subscribed to every event: the delay
    /// from each claim's event to its receipt, and the outbox backlog at its peak.
    #[arg(long)]
    pub webhook: bool,
    /// Every claim of the flash sale (and of the baseline) carries an `Idempotency-Key`, so a
    /// retry after a lost answer is answered rather than repeated: what the keys cost.
    #[arg(long)]
    pub idempotency_keys: bool,
}

pub async fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::FlashSale(args) => flash_sale(args).await,
    }
}

async fn flash_sale(args: FlashSale) -> anyhow::Result<()> {
    // Thousands of sockets on both ends; the servers inherit the raised limit.
    let open_files = rlimit::increase_nofile_limit(u64::MAX).context("raising the open files limit")?;
    // The server needs a descriptor per connection as we do, and a few hundred besides.
    let sockets = args.connections as u64 + args.idle_connections as u64;
    if sockets + 512 > open_files {
        bail!(
            "{sockets} connections need more open files than the limit of {open_files} allows: \
             use fewer, or raise the hard limit (ulimit -Hn)"
        );
    }
    let db = BenchDatabase::create(args.backend, &args.pg_url, &args.db_name).await?;
    let report = sale(&args, &db).await;
    let removed = db.remove().await;
    let report = report?;
    removed?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    if !report.passed {
        bail!("invariant checks failed");
    }
    Ok(())
}

async fn sale(args: &FlashSale, db: &BenchDatabase) -> anyhow::Result<Report> {
    let connections = args.connections as usize;
    let secret = Alphanumeric.sample_string(&mut rand::rng(), 48);
    let (admin_token, service_token) = (
        token(&secret, "bench-admin", "admin")?,
        token(&secret, "bench", "service")?,
    );
    let database_url = db.url();
    let settings = |strategy| Settings {
        database_url: &database_url,
        jwt_secret: &secret,
        data_dir: db.data_dir(),
        pool_size: args.pool_size,
        strategy,
        log: &args.server_log,
        throttle: &args.server_throttle,
    };
    let mut phases = Vec::new();

    progress::note("starting coupond serve");
    let server = Server::start(&settings(Strategy::Batched)).await?;
    let admin = Target::new(server.addr(), &admin_token)?;
    let service = Target::new(server.addr(), &service_token)?;

    let bar = progress::bar(report::NOOP, None);
    let started = server.process().begin();
    let clock = Instant::now();
    let noop = reads::noop(&service, connections, secs(args.noop_secs), &bar).await;
    let seconds = clock.elapsed().as_secs_f64();
    phases.push(Phase::new(
        report::NOOP,
        &noop,
        seconds,
        usage(started, server.process().sample()),
    ));
    bar.finish_and_clear();

    // Before anything else writes: the cold sale must find the database as a new deployment would.
    let cold = if args.cold_codes > 0 {
        let sales = cold::run(&ColdLoad {
            admin: &admin,
            service: &service,
            server: server.process(),
            db,
            connections,
            codes: args.cold_codes,
        })
        .await?;
        phases.push(sales.cold.phase.clone());
        phases.push(sales.warm.phase.clone());
        Some(sales)
    } else {
        None
    };

    let generation = if args.generate > 0 {
        progress::note(&format!("creating a book of {} pattern codes", args.generate));
        let clock = Instant::now();
        claim::create_book(&admin, "Generated", "GN", args.generate).await?;
        Some(report::Generation {
            codes: args.generate,
            seconds: clock.elapsed().as_secs_f64(),
        })
    } else {
        None
    };

    progress::note("starting the baseline server (COUPOND_CLAIM_STRATEGY=naive)");
    let baseline = Server::start(&settings(Strategy::Naive)).await?;
    let baseline_service = Target::new(baseline.addr(), &service_token)?;
    progress::note(&format!("creating the baseline book of {} codes", args.codes));
    let naive_book = claim::create_book(
        &Target::new(baseline.addr(), &admin_token)?,
        "Baseline",
        "NV",
        args.codes,
    )
    .await?;
    let bar = progress::bar(report::NAIVE_CLAIM, None);
    let naive = claim::run(ClaimLoad {
        target: baseline_service.clone(),
        connections,
        book: naive_book.clone(),
        user_prefix: "n",
        users: args.users,
        deadline: Some(Instant::now() + secs(args.naive_secs)),
        stop_when_sold_out: true,
        keyed: args.idempotency_keys,
        server: baseline.process(),
        progress: bar.clone(),
    })
    .await;
    bar.finish_and_clear();
    phases.push(Phase::new(
        report::NAIVE_CLAIM,
        &naive.claimed,
        naive.claim_seconds,
        usage(naive.started, naive.sold_out.or(naive.ended)),
    ));
    let naive_claims = Arc::new(naive.claims);
    let bar = progress::bar(report::NAIVE_REDEEM, Some(naive_claims.len() as u64));
    let started = baseline.process().begin();
    let (naive_redeems, seconds) = redeem::run(RedeemLoad {
        target: baseline_service,
        connections,
        claims: naive_claims.clone(),
        deadline: Some(Instant::now() + secs(args.naive_secs)),
        progress: bar.clone(),
    })
    .await;
    phases.push(Phase::new(
        report::NAIVE_REDEEM,
        &naive_redeems,
        seconds,
        usage(started, baseline.process().sample()),
    ));
    bar.finish_and_clear();
    baseline.stop().await?;

    let receiver = if args.webhook {
        progress::note("starting the webhook receiver");
        Some(events::Receiver::start(&admin).await?)
    } else {
        None
    };
    progress::note(&format!("creating the flash-sale book of {} codes", args.codes));
    let book = claim::create_book(&admin, "Flash sale", "FS", args.codes).await?;
    if let Some(receiver) = &receiver {
        receiver.time_claims_of(&book);
    }
    let bar = progress::bar(report::CLAIM, Some(args.users));
    let flash = claim::run(ClaimLoad {
        target: service.clone(),
        connections,
        book: book.clone(),
        user_prefix: "u",
        users: args.users,
        deadline: None,
        stop_when_sold_out: false,
        keyed: args.idempotency_keys,
        server: server.process(),
        progress: bar.clone(),
    })
    .await;
    bar.finish_and_clear();
    phases.extend(sale_phases(&flash));
    let claims = Arc::new(flash.claims);
    let events = match receiver {
        Some(receiver) => {
            progress::note("waiting for the last claim events");
            Some(receiver.drain(claims.len() as u64, secs(300)).await?)
        }
        None => None,
    };

    let bar = progress::bar(report::READ, None);
    let started = server.process().begin();
    let clock = Instant::now();
    let reads = reads::read_mix(&service, connections, &claims, secs(args.read_secs), &bar).await;
    let seconds = clock.elapsed().as_secs_f64();
    phases.push(Phase::new(
        report::READ,
        &reads,
        seconds,
        usage(started, server.process().sample()),
    ));
    bar.finish_and_clear();

    let bar = progress::bar(report::REDEEM, Some(claims.len() as u64));
    let started = server.process().begin();
    let (redeems, seconds) = redeem::run(RedeemLoad {
        target: service.clone(),
        connections,
        claims: claims.clone(),
        deadline: None,
        progress: bar.clone(),
    })
    .await;
    phases.push(Phase::new(
        report::REDEEM,
        &redeems,
        seconds,
        usage(started, server.process().sample()),
    ));
    bar.finish_and_clear();

    let idle = if args.idle_connections > 0 {
        let bar = progress::bar("idle", Some(args.idle_connections as u64));
        let idle = reads::idle_connections(&service, args.idle_connections, server.process(), &bar).await;
        bar.finish_and_clear();
        Some(idle)
    } else {
        None
    };
    server.stop().await?;

    progress::note("checking invariants in the database");
    let conn = db.connect().await?;
    let mut checks = verify::check(
        &conn,
        &SoldBook {
            label: "flash sale",
            id: &book,
            claims: &claims,
            redeems: redeems.answers(),
            claimed_exactly: Some(args.codes.min(args.users)),
        },
    )
    .await?;
    checks.extend(
        verify::check(
            &conn,
            &SoldBook {
                label: "baseline",
                id: &naive_book,
                claims: &naive_claims,
                redeems: naive_redeems.answers(),
                claimed_exactly: None,
            },
        )
        .await?,
    );
    for (label, sale) in cold
        .iter()
        .flat_map(|c| [("cold sale", &c.cold), ("warm sale", &c.warm)])
    {
        checks.extend(
            verify::check(
                &conn,
                &SoldBook {
                    label,
                    id: &sale.book,
                    claims: &sale.claims,
                    redeems: 0,
                    claimed_exactly: Some(args.cold_codes),
                },
            )
            .await?,
        );
    }
    drop(conn);

    let errors = phases.iter().map(|p| p.errors).sum::<u64>() + idle.as_ref().map_or(0, |i| i.errors);
    Ok(Report {
        backend: match args.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        },
        codes: args.codes,
        users: args.users,
        connections,
        pool_size: args.pool_size,
        ratios: Ratios::of(&phases),
        phases,
        claims_acknowledged: claims.len() as u64,
        out_of_stock_answers: flash.out_of_stock.answers(),
        redeems_acknowledged: redeems.answers(),
        naive_claims_acknowledged: naive_claims.len() as u64,
        naive_redeems_acknowledged: naive_redeems.answers(),
        errors,
        idle_connections: idle,
        events,
        generation,
        cold_sale: cold.as_ref().map(|c| report::ColdSale {
            codes: args.cold_codes,
            analyze_seconds: c.analyze_seconds,
        }),
        passed: checks.iter().all(|c| c.passed),
        checks,
    })
}

/// The flash sale as two phases: claims while stock lasts, then the out_of_stock answers. The
/// server's CPU is split where the first out_of_stock arrived.
fn sale_phases(sale: &ClaimOutcome) -> [Phase; 2] {
    let sold_out_or_end = sale.sold_out.or(sale.ended);
    [
        Phase::new(
            report::CLAIM,
            &sale.claimed,
            sale.claim_seconds,
            usage(sale.started, sold_out_or_end),
        ),
        Phase::new(
            report::OUT_OF_STOCK,
            &sale.out_of_stock,
            sale.out_of_stock_seconds,
            sale.sold_out.and_then(|s| usage(Some(s), sale.ended)),
        ),
    ]
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
