//! The behaviour suite every backend must pass: each case runs unchanged against a fresh SQLite
//! file and a fresh PostgreSQL database.

mod batches;
mod book_spec;
mod books;
mod claims;
mod concurrency;
mod engine;
mod events;
mod idempotency;
mod operations;
mod redemptions;
mod refusals;
mod webhooks;

use coupon_core::{Amount, Book, BookStats, CodeText, CouponError, OrderId, Redemption, Timestamp, UserId};
use coupon_store::testing::{Backend, TestDb};
use coupon_store::{
    Background, ClaimRequest, ClaimTarget, Claimed, Coupons, LockRequest, Locked, RedeemRequest, Store, StoreError,
    UnlockRequest,
};
use serde_json::json;
use uuid::Uuid;

/// 2026-06-01T12:00:00Z: the suite's clock starts here and moves only when a case moves it.
pub const T0: i64 = 1_780_315_200_000;

pub fn at(seconds_after_t0: i64) -> Timestamp {
    Timestamp::from_millis(T0 + seconds_after_t0 * 1000)
}

pub struct Ctx {
    /// The per-request service, as the HTTP layer calls it.
    pub store: Coupons,
    /// The store behind it, as the claim engine and the relay reach it (`ClaimBatches`,
    /// `CheckoutBatches`, `Outbox`).
    pub backend: Store,
    pub db: TestDb,
}

impl Ctx {
    /// Creates a book from its JSON description (name and discount filled in when absent).
    pub async fn book(&self, spec: serde_json::Value) -> Book {
        self.try_book(spec).await.expect("book created")
    }

    pub async fn try_book(&self, spec: serde_json::Value) -> Result<Book, coupon_store::StoreError> {
        let mut v = json!({"name": "Summer sale", "discount": {"type": "percentage", "value": 10}});
        v.as_object_mut().unwrap().extend(spec.as_object().unwrap().clone());
        let draft = book_spec::new_book(&v)
            .into_draft(Uuid::now_v7(), at(0))
            .expect("valid book");
        self.store.create_book(draft, None).await
    }

    pub async fn stats(&self, book_id: Uuid, now: Timestamp) -> BookStats {
        self.store.book_with_stats(book_id, now).await.expect("stats").1
    }

    pub async fn claim(&self, book: &Book, user: &str, now: Timestamp) -> Result<Claimed, CouponError> {
        let req = ClaimRequest {
            target: ClaimTarget::Book(book.id),
            user_id: user_id(user),
            metadata: Default::default(),
            key: None,
        };
        answer(self.store.claim(req, now).await)
    }

    pub async fn claim_code(&self, code: &str, user: &str, now: Timestamp) -> Result<Claimed, CouponError> {
        let req = ClaimRequest {
            target: ClaimTarget::Code(CodeText::parse(code).unwrap()),
            user_id: user_id(user),
            metadata: Default::default(),
            key: None,
        };
        answer(self.store.claim(req, now).await)
    }

    pub async fn lock(&self, code: &str, user: &str, now: Timestamp) -> Result<Locked, CouponError> {
        let req = LockRequest {
            code: CodeText::parse(code).unwrap(),
            user_id: user_id(user),
            key: None,
        };
        answer(self.store.lock(req, now).await)
    }

    pub async fn unlock(
        &self,
        code: &str,
        user: &str,
        lock_id: Option<Uuid>,
        now: Timestamp,
    ) -> Result<(), CouponError> {
        let req = UnlockRequest {
            code: CodeText::parse(code).unwrap(),
            user_id: user_id(user),
            lock_id,
            key: None,
        };
        answer(self.store.unlock(req, now).await)
    }

    pub async fn redeem(&self, req: RedeemRequest, now: Timestamp) -> Result<Redemption, CouponError> {
        answer(self.store.redeem(req, now).await)
    }
}

pub fn user_id(user: &str) -> UserId {
    UserId::parse(user).expect("a valid user id")
}

/// A request's own answer; a failure of the store fails the test.
pub fn answer<T>(outcome: Result<T, StoreError>) -> Result<T, CouponError> {
    match outcome {
        Ok(v) => Ok(v),
        Err(StoreError::Rejected(e)) => Err(e),
        Err(e) => panic!("the store failed: {e}"),
    }
}

pub fn redeem_req(
    code: &str,
    user: &str,
    order: Option<&str>,
    amount: Option<i64>,
    lock_id: Option<Uuid>,
) -> RedeemRequest {
    RedeemRequest {
        code: CodeText::parse(code).unwrap(),
        user_id: user_id(user),
        order_id: order.map(|o| OrderId::parse(o).unwrap()),
        order_amount: amount.map(|a| Amount::parse("order_amount", a).unwrap()),
        lock_id,
        metadata: Default::default(),
        key: None,
    }
}

/// One transaction per request.
async fn ctx(backend: Backend) -> Ctx {
    let db = TestDb::new(backend).await;
    let backend = db.store().await;
    Ctx {
        store: Coupons::naive(backend.clone()),
        backend,
        db,
    }
}

/// Requests batched by the claim engine, as the server runs it.
async fn engine(backend: Backend) -> Ctx {
    let db = TestDb::new(backend).await;
    let backend = db.store().await;
    Ctx {
        store: Coupons::batched(backend.clone(), backend.clone(), &Background::new()).expect("engine starts"),
        backend,
        db,
    }
}

/// Generates module `$name`: one test per case, each on a fresh `$make(Backend::$backend)`.
macro_rules! variant {
    ($name:ident, $make:ident, $backend:ident, $($module:ident :: $case:ident),*) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$module::$case(super::$make(coupon_store::testing::Backend::$backend).await).await
                }
            )*
        }
    };
}

/// Cases every store passes: both backends, alone and behind the claim engine.
macro_rules! suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        variant!(sqlite, ctx, Sqlite, $($module::$case),*);
        variant!(postgres, ctx, Postgres, $($module::$case),*);
        variant!(engine_sqlite, engine, Sqlite, $($module::$case),*);
        variant!(engine_postgres, engine, Postgres, $($module::$case),*);
    };
}

// How one backend decides a batch it is given (the engine forms batches of its own).
variant!(
    sqlite_batches,
    ctx,
    Sqlite,
    batches::returned_codes_are_dealt_before_new_ones,
    batches::a_batch_answers_as_one_request_at_a_time,
    batches::codes_taken_by_name_ahead_of_the_cursor_are_skipped,
    batches::a_redemption_batch_never_uses_a_code_twice
);
variant!(
    postgres_batches,
    ctx,
    Postgres,
    batches::returned_codes_are_dealt_before_new_ones,
    batches::a_batch_answers_as_one_request_at_a_time,
    batches::codes_taken_by_name_ahead_of_the_cursor_are_skipped,
    batches::a_redemption_batch_never_uses_a_code_twice
);

suite!(
    idempotency::a_keyed_claim_acts_once,
    idempotency::a_keyed_claim_on_a_sold_out_book_is_recorded,
    books::pattern_books_have_their_codes_at_creation,
    books::uploads_report_duplicates_and_respect_the_cap,
    books::generation_respects_the_cap_and_the_pattern,
    books::shared_codes_are_unique_across_books,
    books::patches_change_status_and_window,
    books::search_finds_active_books_newest_first,
    claims::claims_follow_the_book_and_user_limits,
    claims::daily_limits_reset_at_utc_midnight,
    claims::a_specific_code_is_claimed_once,
    claims::shared_books_hand_out_instances,
    claims::paused_archived_and_out_of_window_books_refuse_claims,
    claims::lapsed_claims_return_to_the_pool,
    claims::a_live_lock_keeps_a_claim_from_lapsing,
    claims::a_batch_answers_each_request,
    claims::codes_claimed_by_name_leave_the_returned_queue,
    redemptions::locks_guard_redemptions,
    redemptions::unlock_needs_a_live_lock,
    redemptions::repeated_redemptions_count_once,
    redemptions::redemption_limits_hold,
    redemptions::codes_usable_several_times,
    redemptions::stats_follow_the_lifecycle,
    concurrency::concurrent_claims_never_oversell,
    concurrency::concurrent_redemptions_of_one_code_succeed_once,
    concurrency::concurrent_claims_by_one_user_respect_the_limit,
    concurrency::concurrent_repeats_of_one_redemption_count_once,
    concurrency::random_concurrent_traffic_keeps_every_invariant,
    refusals::refused_requests_change_no_row,
    operations::rollbacks_give_the_use_back,
    operations::concurrent_rollbacks_count_once,
    operations::rollbacks_racing_redemptions_keep_counts_exact,
    operations::histories_page_newest_first,
    operations::admins_list_every_book,
    operations::codes_are_listed_by_state,
    operations::unclaimed_codes_leave_the_pool,
    operations::metadata_is_kept_where_it_was_given,
    events::every_change_writes_its_event,
    events::a_batch_writes_its_events_at_once,
    events::stock_alerts_come_once_per_crossing,
    events::lapsed_claims_are_announced,
    events::concurrent_writers_never_make_the_feed_skip,
    webhooks::events_fan_out_once_to_subscribed_endpoints,
    webhooks::a_new_endpoint_starts_with_new_events,
);

/// Out-of-order commits happen where transactions write at once: PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_commit_is_not_skipped() {
    events::a_late_commit_is_not_skipped().await
}

/// The engine's own cases, each on both backends.
macro_rules! engine_cases {
    ($($case:ident),* $(,)?) => {
        mod engine_only {
            $(
                mod $case {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn sqlite() {
                        crate::engine::$case(coupon_store::testing::Backend::Sqlite).await
                    }
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn postgres() {
                        crate::engine::$case(coupon_store::testing::Backend::Postgres).await
                    }
                }
            )*
        }
    };
}

engine_cases!(
    concurrent_claims_share_commits,
    a_failed_batch_is_retried_request_by_request,
    sold_out_books_are_answered_from_memory,
    lapsed_claims_reopen_a_sold_out_book,
    a_rollback_reopens_a_sold_out_book,
    shutdown_answers_every_queued_request,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_instance_restocks_a_sold_out_book() {
    engine::another_instance_restocks_a_sold_out_book().await
}

/// Several instances starting at once against one fresh PostgreSQL database all migrate it safely.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_migrate_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let starts = (0..4).map(|_| coupon_store::connect(&db.url, 2));
    for store in futures::future::join_all(starts).await {
        store.expect("every instance starts").ping().await.unwrap();
    }
}

/// A load of many codes is followed by fresh planner statistics on PostgreSQL, so a sale that starts
/// the moment the book exists is not planned as if the codes table were empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_loads_refresh_the_planner_statistics() {
    let cx = ctx(Backend::Postgres).await;
    let (client, conn) = tokio_postgres::connect(&cx.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let estimate = || async {
        let row = client
            .query_one("SELECT reltuples::bigint FROM pg_class WHERE relname = 'codes'", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    cx.book(json!({"code_pattern": "SMALL-*****", "total_codes": 100}))
        .await;
    assert_eq!(estimate().await, -1, "a small load leaves the statistics alone");
    cx.book(json!({"code_pattern": "BIG-*******", "total_codes": 12_000}))
        .await;
    assert!(estimate().await >= 12_000, "the planner knows of the new codes");

    // A load in parts (an import) refreshes once, after its last part.
    let book = cx.book(json!({})).await;
    let part: Vec<String> = (0..15_000).map(|i| format!("PART-{i}")).collect();
    cx.store.add_codes_part(book.id, part, at(0)).await.unwrap();
    assert!(estimate().await < 20_000, "no refresh while the load goes on");
    cx.store
        .add_codes(book.id, vec!["LAST".into()], at(0), None)
        .await
        .unwrap();
    assert!(estimate().await >= 27_000, "the last part refreshes");
}
