//! Runs the sequences of one variant (a backend, naive or batched): one database and one service
//! for all of its sequences, each sequence on books of its own, and a summary line at the end.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use coupon_store::testing::{Backend, TestDb};
use coupon_store::{Background, Coupons};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use super::ops::Reference;
use super::sequence::Sequence;

/// A backend and a strategy, and how many sequences of how many operations to run on it.
pub struct Variant {
    pub name: &'static str,
    pub backend: Backend,
    pub batched: bool,
    pub cases: u32,
    pub max_ops: usize,
}

/// What the sequences of one variant share. Fields drop in order: the service before its
/// database, the runtime last.
pub struct Shared {
    pub service: Coupons,
    pub batched: bool,
    background: Background,
    _db: TestDb,
    runtime: tokio::runtime::Runtime,
    sequences: Cell<usize>,
    pub ops: Cell<usize>,
    /// Answers by kind of operation and outcome (`ok` or the refusal's code).
    pub outcomes: RefCell<BTreeMap<(&'static str, &'static str), usize>>,
}

impl Shared {
    fn start(variant: &Variant) -> Shared {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let background = Background::new();
        let (db, service) = runtime.block_on(async {
            let db = TestDb::new(variant.backend).await;
            let store = db.store().await;
            let service = if variant.batched {
                Coupons::batched(store.clone(), store, &background).expect("the engine starts")
            } else {
                Coupons::naive(store)
            };
            (db, service)
        });
        Shared {
            service,
            batched: variant.batched,
            background,
            _db: db,
            runtime,
            sequences: Cell::new(0),
            ops: Cell::new(0),
            outcomes: RefCell::new(BTreeMap::new()),
        }
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// A number for the next sequence, which names its codes.
    pub fn next_sequence(&self) -> usize {
        let n = self.sequences.get() + 1;
        self.sequences.set(n);
        n
    }

    pub fn tally(&self, kind: &'static str, outcome: &'static str) {
        self.ops.set(self.ops.get() + 1);
        *self.outcomes.borrow_mut().entry((kind, outcome)).or_default() += 1;
    }

    /// `claim 120 (ok 40), ...; refused: out_of_stock 12, ...`
    fn summary(&self) -> String {
        let outcomes = self.outcomes.borrow();
        let mut kinds: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut refusals: BTreeMap<&str, usize> = BTreeMap::new();
        for (&(kind, outcome), &n) in outcomes.iter() {
            let k = kinds.entry(kind).or_default();
            k.0 += n;
            if outcome == "ok" {
                k.1 += n;
            } else {
                *refusals.entry(outcome).or_default() += n;
            }
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, (n, ok))| format!("{k} {n} (ok {ok})")).collect();
        let refusals: Vec<String> = refusals.iter().map(|(r, n)| format!("{r} {n}")).collect();
        format!("{}; refused: {}", kinds.join(", "), refusals.join(", "))
    }
}

impl Drop for Shared {
    /// The engine's work ends before its database goes.
    fn drop(&mut self) {
        self.runtime.block_on(self.background.shutdown());
    }
}

thread_local! {
    /// The variant running on this thread: `StateMachineTest::init_test` takes no context.
    static SHARED: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
}

pub fn shared() -> Rc<Shared> {
    SHARED.with(|s| s.borrow().clone().expect("a variant is running on this thread"))
}

/// Runs the variant's sequences; a failure panics with the smallest sequence shrinking found.
pub fn run(variant: Variant) {
    let cases = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(variant.cases);
    // A seed of its own per run (printed, and taken from MODEL_SEED when set) reproduces a failure.
    let seed: u64 = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let started = Instant::now();
    let shared = Rc::new(Shared::start(&variant));
    SHARED.with(|s| *s.borrow_mut() = Some(shared.clone()));
    let mut runner = TestRunner::new_with_rng(config.clone(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let strategy = Reference::sequential_strategy(1..=variant.max_ops);
    let result = runner.run(&strategy, |(plan, ops, seen)| {
        Sequence::test_sequential(config.clone(), plan, ops, seen);
        Ok(())
    });
    SHARED.with(|s| s.borrow_mut().take());
    // Straight to the process's stderr, past the test harness's capture: the line shows in every
    // run's log, passing or not.
    let line = format!(
        "model {}: {} sequences, {} operations in {:.1} s (seed {seed}): {}\n",
        variant.name,
        shared.sequences.get(),
        shared.ops.get(),
        started.elapsed().as_secs_f64(),
        shared.summary(),
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
    drop(shared);
    if let Err(e) = result {
        panic!(
            "{}: the service and the model disagree (seed {seed}): {e}",
            variant.name
        );
    }
}
