//! A campaign sold the moment it is published: a book whose codes are generated from a pattern,
//! claimed by every connection as soon as `POST /coupons` returns. The cold sale runs first, on a
//! database whose planner has seen nothing yet (no other book, nothing analyzed by the bench); the
//! warm sale repeats it with an `ANALYZE` of the whole database between creating its book and
//! claiming it, as autovacuum would have run a minute after publication, so the two differ by the
//! planner's statistics and little else.

use std::sync::Arc;
use std::time::Instant;

use crate::claim::{self, Claim, ClaimLoad};
use crate::client::Target;
use crate::database::BenchDatabase;
use crate::progress;
use crate::report::{self, Phase};
use crate::server::{usage, Process};

pub struct ColdLoad<'a> {
    pub admin: &'a Arc<Target>,
    pub service: &'a Arc<Target>,
    pub server: Process,
    pub db: &'a BenchDatabase,
    pub connections: usize,
    /// Codes in each book, and as many users, each claiming once.
    pub codes: u64,
}

/// One of the two sales: its book, the claims acknowledged, and its phase.
pub struct Sale {
    pub book: String,
    pub claims: Vec<Claim>,
    pub phase: Phase,
}

pub struct ColdSales {
    pub cold: Sale,
    pub warm: Sale,
    pub analyze_seconds: f64,
}

pub async fn run(load: &ColdLoad<'_>) -> anyhow::Result<ColdSales> {
    let (cold, _) = sale(load, report::COLD_CLAIM, "Cold sale", "CS", "c", false).await?;
    let (warm, analyze_seconds) = sale(load, report::WARM_CLAIM, "Warm sale", "WS", "w", true).await?;
    Ok(ColdSales {
        cold,
        warm,
        analyze_seconds,
    })
}

async fn sale(
    load: &ColdLoad<'_>,
    phase: &'static str,
    name: &str,
    code_prefix: &str,
    user_prefix: &'static str,
    analyze: bool,
) -> anyhow::Result<(Sale, f64)> {
    progress::note(&format!("creating the {phase} book of {} pattern codes", load.codes));
    let book = claim::create_book(load.admin, name, code_prefix, load.codes).await?;
    let mut analyze_seconds = 0.0;
    if analyze {
        progress::note("running ANALYZE");
        let clock = Instant::now();
        load.db.analyze().await?;
        analyze_seconds = clock.elapsed().as_secs_f64();
    }
    let bar = progress::bar(phase, Some(load.codes));
    // As many users as codes: the last claim sells the book out, and no out_of_stock answer, cheap
    // as those are, dilutes the figure.
    let outcome = claim::run(ClaimLoad {
        target: load.service.clone(),
        connections: load.connections,
        book: book.clone(),
        user_prefix,
        users: load.codes,
        deadline: None,
        stop_when_sold_out: true,
        // What keys cost is measured on the warm sale; the cold one measures the planner.
        keyed: false,
        server: load.server,
        progress: bar.clone(),
    })
    .await;
    bar.finish_and_clear();
    let phase = Phase::new(
        phase,
        &outcome.claimed,
        outcome.claim_seconds,
        usage(outcome.started, outcome.sold_out.or(outcome.ended)),
    );
    Ok((
        Sale {
            book,
            claims: outcome.claims,
            phase,
        },
        analyze_seconds,
    ))
}
