//! Model-based tests: random sequences of claims, locks, unlocks, redemptions, rollbacks, book
//! changes and clock moves against each backend, alone and behind the claim engine, each answer
//! compared with an in-memory model of the documented rules, and the database's own counts
//! compared with the model's after every step. A failure shrinks to a minimal sequence.
//!
//! `MODEL_CASES` overrides the number of sequences per variant; `MODEL_SEED` replays a run (each
//! variant prints its seed on its summary line).

/// Its files live in `model/`.
mod model {
    pub mod check;
    pub mod ops;
    pub mod requests;
    pub mod rules;
    pub mod run;
    pub mod sequence;
    pub mod world;
}

use coupon_store::testing::Backend;
use model::run;

/// Operations per sequence at most (a sequence draws its length up to this).
const MAX_OPS: usize = 50;

/// One test per backend and strategy, each with its own database.
macro_rules! variant {
    ($name:ident, $backend:ident, $batched:expr, $cases:expr) => {
        #[test]
        fn $name() {
            run::run(run::Variant {
                name: stringify!($name),
                backend: Backend::$backend,
                batched: $batched,
                cases: $cases,
                max_ops: MAX_OPS,
            });
        }
    };
}

// A PostgreSQL commit costs about three times a SQLite one here: the counts keep the four
// variants to about a minute on two cores.
variant!(sqlite_naive, Sqlite, false, 800);
variant!(postgres_naive, Postgres, false, 400);
variant!(sqlite_batched, Sqlite, true, 800);
variant!(postgres_batched, Postgres, true, 400);
