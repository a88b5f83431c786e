//! The admin CLI (`coupond books`, `codes`, `redemptions`) against the real `coupond serve`, on
//! SQLite and on PostgreSQL: its tables and `--json`, its exit codes, and a round trip of a million
//! codes through `codes import` and `codes export`.

// The helpers every test binary of coupond shares.
#[path = "../common/mod.rs"]
mod common;
mod server;

/// Each test body, once per backend: `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use coupon_store::testing::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
        }
    )*};
}

mod books;
mod codes;
mod exit_codes;
mod redemptions;
