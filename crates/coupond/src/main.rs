//! The coupond binary: `serve`, `migrate`, `token`, `config`, `bench` and `chaos`, around the library crates,
//! and the admin commands (`books`, `codes`, `redemptions`) that drive a running server over HTTP.
//! `serve` also runs the event relay (relay/), where the store's outbox meets `coupon_relay`'s
//! transport.

mod admin;
mod config;
mod purge;
mod relay;
mod secret;
mod tokens;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use coupon_core::{Clock, SystemClock};
use coupon_server::{AppState, Claims, Limits, Metrics, Services};
use coupon_store::{Background, PoolConfig, Strategy};
use tokio::net::TcpListener;

use crate::config::{ClaimStrategy, Config, JwtAlgorithm, LogFormat, RoleArg};

#[derive(Debug, Parser)]
#[command(name = "coupond", version, about = "Self-hosted coupon service")]
struct Cli {
    // A heading of their own, so that the admin commands' help shows these apart from their own.
    #[command(flatten, next_help_heading = "Server settings")]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (applies migrations first).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Print a token signed with the server's HS256 secret (with rs256 or es256, tokens come from
    /// the identity provider).
    Token {
        /// The subject: a user id, or a name for a service or admin.
        #[arg(long)]
        sub: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Lifetime, e.g. 90s, 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = config::parse_ttl)]
        ttl: i64,
    },
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Load-test coupond servers started from this binary, then check the invariants in the database.
    #[command(subcommand)]
    Bench(coupon_bench::Bench),
    /// Run coupond servers from this binary on a throwaway database while injecting faults, then
    /// check the database against every acknowledged answer (exits non-zero on a violation).
    Chaos(coupon_chaos::Chaos),
    #[command(flatten)]
    Admin(admin::Admin),
}

/// The command line as parsed, with the admin commands' exit codes in their help.
fn command() -> clap::Command {
    admin::document(Cli::command())
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    if let Command::Admin(admin) = cli.command {
        return admin::run(admin);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Token { sub, role, ttl } => {
            if cli.config.jwt_algorithm != JwtAlgorithm::Hs256 {
                let algorithm = coupon_server::TokenAlgorithm::from(cli.config.jwt_algorithm);
                bail!("{algorithm} tokens come from the identity provider: coupond signs HS256 tokens only");
            }
            let secret = secret::load(&cli.config)?;
            let exp = (SystemClock.now().millis() / 1000).saturating_add(ttl);
            println!(
                "{}",
                secret.sign(&Claims {
                    sub,
                    role: role.into(),
                    exp
                })
            );
            Ok(())
        }
        Command::Config => {
            println!("{}", cli.config.describe());
            Ok(())
        }
        Command::Migrate => runtime()?.block_on(async {
            init_tracing(cli.config.log_format);
            coupon_store::migrate(&cli.config.database_url)
                .await
                .context("migrating the database")?;
            tracing::info!(database = %cli.config.redacted_database_url(), "migrations applied");
            Ok(())
        }),
        Command::Serve => runtime()?.block_on(serve(cli.config)),
        Command::Bench(bench) => runtime()?.block_on(coupon_bench::run(bench)),
        Command::Chaos(chaos) => runtime()?.block_on(coupon_chaos::run(chaos)),
        Command::Admin(_) => unreachable!("run by admin::run"),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COUPOND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The relay that carries events out: webhooks, and NATS when configured.
fn event_relay(config: &Config, state: &AppState) -> anyhow::Result<relay::Relay> {
    let settings = relay::RelayConfig {
        webhook: coupon_relay::WebhookOptions {
            timeout: config.webhook_timeout,
            destinations: destinations(config),
            ..Default::default()
        },
        backoff: coupon_relay::Backoff {
            max_attempts: config.webhook_max_attempts,
            ..Default::default()
        },
        retention: config.event_retention,
        ..Default::default()
    };
    let nats = config
        .nats_url
        .clone()
        .map(|url| (url, coupon_relay::StreamConfig::default()));
    let store = Arc::new(state.coupons.store().clone());
    relay::Relay::new(store, state.clock.clone(), settings, nats).context("starting the event relay")
}

fn destinations(config: &Config) -> coupon_relay::Destinations {
    coupon_relay::Destinations::allowing(config.webhook_allow_networks.iter().copied())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_tracing(config.log_format);
    let tokens = tokens::load(&config)?;
    let url = config.database_url.as_str();
    let pool = PoolConfig {
        size: config.db_pool_size.into(),
        acquire_timeout: config.db_acquire_timeout,
    };
    let strategy = match config.claim_strategy {
        ClaimStrategy::Batched => Strategy::Batched,
        ClaimStrategy::Naive => Strategy::Naive,
    };
    let throttle = coupon_server::Throttle::new(config.throttle()?).map_err(anyhow::Error::msg)?;
    if !throttle.connect().await {
        tracing::warn!("Redis is unreachable: throttling counts in memory until it answers");
    }
    let background = Background::new();
    let coupons = coupon_store::open(url, pool, strategy, &background)
        .await
        .with_context(|| format!("opening {}", config.redacted_database_url()))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    // The process's one recorder: the store's and the server's series all land in it.
    let recorder = coupon_server::telemetry::install_recorder().context("installing the metrics recorder")?;
    let mut metrics = Metrics::new(recorder).with_token(config.metrics_token.clone());
    let metrics_listener = match config.metrics_listen {
        Some(addr) => {
            metrics = metrics.apart();
            let bound = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr} for /metrics"))?;
            Some(bound)
        }
        None => None,
    };
    let metrics_at = match &metrics_listener {
        Some(bound) => bound.local_addr()?,
        None => listener.local_addr()?,
    };
    tracing::info!(
        listen = %listener.local_addr()?,
        metrics = %metrics_at,
        database = %config.redacted_database_url(),
        strategy = ?config.claim_strategy,
        tokens = %tokens.algorithm(),
        "coupond serving"
    );
    if config.jwt_algorithm != JwtAlgorithm::Hs256 && config.jwt_audience.is_none() {
        tracing::warn!("no --jwt-audience: every token that names an audience will be refused");
    }
    let state = AppState::from(Services {
        coupons,
        clock: Arc::new(SystemClock),
        tokens,
        throttle,
        background,
        limits: Limits {
            request_timeout: config.request_timeout,
            header_read_timeout: config.header_read_timeout,
            max_concurrent_requests: config.max_concurrent_requests as usize,
            ..Limits::default()
        },
        metrics: Some(metrics),
        webhook_urls: coupon_server::wire::WebhookUrls::new(&destinations(&config)),
    });
    if let Some(bound) = metrics_listener {
        coupon_server::serve_metrics(bound, state.clone());
    }
    event_relay(&config, &state)?.start(&state.background);
    purge::start(
        state.coupons.clone(),
        state.clock.clone(),
        config.idempotency_retention,
        &state.background,
    );
    coupon_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("coupond stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        super::command().debug_assert();
    }
}
