//! The operations a sequence is made of, and how they are drawn: the reference state machine
//! knows only what generation needs (the world, the clock, how many code texts exist); what the
//! service answers is predicted by `rules::Model` as the sequence runs.

use proptest::prelude::*;
use proptest::sample::select;
use proptest_state_machine::ReferenceStateMachine;

use super::rules::BookStatus;
use super::world::{world, World, DAY, HOUR, MINUTE, SECOND, T0};

/// A code a request names: one of a book's code texts (a shared book has one), or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Book, and the code text at that position in the order they were named.
    Slot(usize, usize),
    Unknown,
}

/// Who a checkout request is for, and the code it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A code someone owns, in any book, by position (modulo how many are owned), for its owner:
    /// the usual checkout. With none owned, the first user and the first book's code at that
    /// position.
    Held(usize),
    /// A code under a live lock, by position, for its owner; with none, as `Held`.
    Locked(usize),
    /// Any user and any code.
    As(usize, Code),
}

/// The lock id a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockRef {
    None,
    /// The last lock id handed out for the code, by whoever locked it.
    Latest,
    /// The first one: stale once the code was locked again.
    First,
    /// One the service never handed out.
    Fresh,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Any code of the book.
    Claim {
        book: usize,
        user: usize,
    },
    /// Any code of a book that does not exist.
    ClaimElsewhere {
        user: usize,
    },
    ClaimCode {
        user: usize,
        code: Code,
    },
    Lock {
        target: Target,
    },
    Unlock {
        target: Target,
        lock: LockRef,
    },
    Redeem {
        target: Target,
        /// One of a few order ids, so that orders repeat.
        order: Option<u8>,
        amount: Option<i64>,
        lock: LockRef,
    },
    /// The redemption at this position (modulo how many were made) in the order they were
    /// made, failed ones excluded; `None` names none that exists.
    Rollback {
        pick: Option<usize>,
    },
    /// Uploads `fresh` new code texts to the book, and one that exists already (in it or in the
    /// other book) when `again` names it.
    AddCodes {
        book: usize,
        fresh: usize,
        again: Option<Code>,
    },
    /// Takes codes out of the book's pool, each if nobody holds it and no redemption refers to it.
    RemoveCodes {
        book: usize,
        codes: Vec<Code>,
    },
    SetStatus {
        book: usize,
        status: BookStatus,
    },
    /// Moves the end of the book's window to this long after now (negative: before now), or
    /// removes it.
    SetExpiry {
        book: usize,
        after: Option<i64>,
    },
    /// Moves the clock forward by this many milliseconds.
    Advance(i64),
}

impl Op {
    /// What the summary counts it as.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Claim { .. } | Op::ClaimElsewhere { .. } | Op::ClaimCode { .. } => "claim",
            Op::Lock { .. } => "lock",
            Op::Unlock { .. } => "unlock",
            Op::Redeem { .. } => "redeem",
            Op::Rollback { .. } => "rollback",
            Op::AddCodes { .. } => "upload",
            Op::RemoveCodes { .. } => "remove",
            Op::SetStatus { .. } | Op::SetExpiry { .. } => "patch",
            Op::Advance(_) => "clock",
        }
    }
}

/// What generation knows as a sequence is drawn.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One or two books, their users shared.
    pub worlds: Vec<World>,
    pub users: usize,
    /// Milliseconds after `T0`.
    pub clock: i64,
    /// Per book, the code texts named so far in a unique book (uploaded at the start and later).
    pub slots: Vec<usize>,
    /// Per book, the end of the window last asked for (a hint for clock moves, not a prediction).
    pub expires: Vec<Option<i64>>,
}

pub struct Reference;

/// A code for a claim by name, or for an upload to repeat.
fn code(plan: &Plan) -> BoxedStrategy<Code> {
    let slots = plan.slots.clone();
    let known = (0..plan.worlds.len())
        .prop_flat_map(move |book| (Just(book), 0..slots[book]))
        .prop_map(|(book, slot)| Code::Slot(book, slot));
    prop_oneof![20 => known, 1 => Just(Code::Unknown)].boxed()
}

/// Mostly a code's owner, so that checkouts get somewhere; `locked` weighs codes under a lock.
fn target(plan: &Plan, locked: u32) -> BoxedStrategy<Target> {
    prop_oneof![
        locked => (0usize..8).prop_map(Target::Locked),
        3 => (0usize..8).prop_map(Target::Held),
        1 => (0..plan.users, code(plan)).prop_map(|(user, code)| Target::As(user, code)),
    ]
    .boxed()
}

fn lock_ref() -> impl Strategy<Value = LockRef> {
    prop_oneof![
        3 => Just(LockRef::None),
        4 => Just(LockRef::Latest),
        1 => Just(LockRef::First),
        1 => Just(LockRef::Fresh),
    ]
}

fn amount() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        1 => Just(None),
        6 => select(vec![0i64, 1, 999, 1000, 4999, 5000, 12_345, 100_000]).prop_map(Some),
    ]
}

/// Clock moves that land on the edges the rules care about (a lock's or a claim's end, the
/// window's end, UTC midnight), just before or after them, or anywhere.
fn advance(plan: &Plan) -> BoxedStrategy<i64> {
    let mut edges = Vec::new();
    for (w, expires) in plan.worlds.iter().zip(&plan.expires) {
        edges.push(SECOND * w.lock_ttl);
        edges.extend(w.claim_ttl.map(|t| SECOND * t));
        let ahead = [w.starts_at, *expires];
        edges.extend(
            ahead
                .into_iter()
                .flatten()
                .filter(|t| *t > plan.clock)
                .map(|t| t - plan.clock),
        );
    }
    let midnight = DAY - (T0 + plan.clock).rem_euclid(DAY);
    edges.push(midnight);
    let near = (select(edges), -1i64..=1).prop_map(|(edge, by)| (edge + by).max(1));
    prop_oneof![
        6 => near,
        6 => select(vec![1i64, SECOND, 30 * SECOND, MINUTE]),
        1 => select(vec![HOUR, 6 * HOUR, DAY]),
        1 => 1i64..2 * DAY,
    ]
    .boxed()
}

impl ReferenceStateMachine for Reference {
    type State = Plan;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Plan> {
        let worlds = prop_oneof![3 => prop::collection::vec(world(), 1), 1 => prop::collection::vec(world(), 2)];
        (worlds, 3usize..=4)
            .prop_map(|(mut worlds, users)| {
                for w in &mut worlds {
                    w.users = users;
                }
                Plan {
                    clock: 0,
                    slots: worlds.iter().map(|w| if w.shared { 1 } else { w.supply }).collect(),
                    expires: worlds.iter().map(|w| w.expires_at).collect(),
                    worlds,
                    users,
                }
            })
            .boxed()
    }

    fn transitions(plan: &Plan) -> BoxedStrategy<Op> {
        let (books, users) = (0..plan.worlds.len(), 0..plan.users);
        let claims = prop_oneof![
            14 => (books.clone(), users.clone()).prop_map(|(book, user)| Op::Claim { book, user }),
            1 => users.clone().prop_map(|user| Op::ClaimElsewhere { user }),
            5 => (users, code(plan)).prop_map(|(user, code)| Op::ClaimCode { user, code }),
        ];
        let checkout = prop_oneof![
            10 => target(plan, 0).prop_map(|target| Op::Lock { target }),
            6 => (target(plan, 4), lock_ref()).prop_map(|(target, lock)| Op::Unlock { target, lock }),
            14 => (target(plan, 2), prop::option::of(0u8..3), amount(), lock_ref()).prop_map(
                |(target, order, amount, lock)| Op::Redeem { target, order, amount, lock }
            ),
            5 => prop_oneof![10 => any::<usize>().prop_map(Some), 1 => Just(None)]
                .prop_map(|pick| Op::Rollback { pick }),
        ];
        let status = prop_oneof![
            5 => Just(BookStatus::Active),
            4 => Just(BookStatus::Paused),
            1 => Just(BookStatus::Archived),
        ];
        let admin = prop_oneof![
            2 => (books.clone(), 1usize..=3, prop::option::of(code(plan)))
                .prop_map(|(book, fresh, again)| Op::AddCodes { book, fresh, again }),
            1 => (books.clone(), prop::collection::vec(code(plan), 1..=2))
                .prop_map(|(book, codes)| Op::RemoveCodes { book, codes }),
            2 => (books.clone(), status).prop_map(|(book, status)| Op::SetStatus { book, status }),
            1 => (books, prop::option::of(select(vec![-MINUTE, MINUTE, HOUR, DAY])))
                .prop_map(|(book, after)| Op::SetExpiry { book, after }),
        ];
        prop_oneof![
            20 => claims,
            35 => checkout,
            5 => admin,
            10 => advance(plan).prop_map(Op::Advance),
        ]
        .boxed()
    }

    fn apply(mut plan: Plan, op: &Op) -> Plan {
        match op {
            Op::Advance(ms) => plan.clock += ms,
            Op::AddCodes { book, fresh, .. } => plan.slots[*book] += fresh,
            Op::SetExpiry { book, after } => plan.expires[*book] = after.map(|d| plan.clock + d),
            _ => {}
        }
        plan
    }

    /// Shrinking may drop a book, a user, the upload that named a code text, or a clock move an
    /// edge was measured from: later operations must still name what exists and move forward.
    fn preconditions(plan: &Plan, op: &Op) -> bool {
        let book = |b: &usize| *b < plan.worlds.len();
        let user = |u: &usize| *u < plan.users;
        let named = |code: &Code| match code {
            Code::Slot(b, slot) => book(b) && *slot < plan.slots[*b],
            Code::Unknown => true,
        };
        let aimed = |target: &Target| match target {
            Target::Held(_) | Target::Locked(_) => true,
            Target::As(u, code) => user(u) && named(code),
        };
        match op {
            Op::Claim { book: b, user: u } => book(b) && user(u),
            Op::ClaimElsewhere { user: u } => user(u),
            Op::ClaimCode { user: u, code } => user(u) && named(code),
            Op::Lock { target } | Op::Unlock { target, .. } | Op::Redeem { target, .. } => aimed(target),
            Op::AddCodes { book: b, again, .. } => book(b) && again.as_ref().is_none_or(named),
            Op::RemoveCodes { book: b, codes } => book(b) && codes.iter().all(named),
            Op::SetStatus { book: b, .. } | Op::SetExpiry { book: b, .. } => book(b),
            Op::Advance(ms) => *ms > 0,
            Op::Rollback { .. } => true,
        }
    }
}
