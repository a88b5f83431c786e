//! The checker on small histories: a clean one passes, and each kind of fault it exists to catch
//! (a lost acknowledgement, a double effect, two answers for one key, a broken limit, a missing
//! event, wrong stats) is flagged.

use std::collections::HashMap;

use serde_json::json;

use super::check;
use crate::books::Book;
use crate::history::{Finished, Outcome};
use crate::operation::{Actor, Answer, Kind, Op};
use crate::snapshot::{BookRow, CodeRow, CounterRow, EventRow, KeyRow, RedemptionRow, Snapshot, Stats};

const BOOK: &str = "b1";

struct Case {
    ops: Vec<Finished>,
    snap: Snapshot,
    books: Vec<Book>,
}

fn op(id: u64, kind: Kind, actor: Actor, user: &str) -> Op {
    Op {
        key: Some(format!("k{id}")),
        book: Some(BOOK.into()),
        ..Op::new(id, kind, actor, user)
    }
}

/// An operation that ended with `body` answered `status`, and the key record it left.
fn answered(op: Op, status: u16, body: serde_json::Value, recorded: bool, snap: &mut Snapshot) -> Finished {
    let text = body.to_string();
    let answer = Answer::read(status, text.as_bytes(), false, 0, 1_000);
    if recorded {
        snap.keys.insert(
            (op.scope().to_owned(), op.key.clone().unwrap()),
            KeyRow {
                status: status.into(),
                body: text,
            },
        );
    }
    Finished {
        op,
        outcome: if status < 300 {
            Outcome::Ok(answer.clone())
        } else {
            Outcome::Fail(answer.clone())
        },
        answers: vec![answer],
        was_unknown: false,
        answered_attempt_at: Some(900),
    }
}

fn event(kind: &str, code: &str, user: &str, data: serde_json::Value) -> EventRow {
    EventRow {
        kind: kind.into(),
        book: Some(BOOK.into()),
        code: Some(code.into()),
        user: Some(user.into()),
        data,
    }
}

fn code(id: i64, text: &str, owner: Option<&str>) -> CodeRow {
    CodeRow {
        id,
        book: BOOK.into(),
        code: text.into(),
        instance: 0,
        status: if owner.is_some() { "active" } else { "available" }.into(),
        owner: owner.map(Into::into),
        locked_until: None,
        redemptions: 0,
    }
}

/// u1 claims C1, redeems it, the checkout rolls that back, u2 is refused a lock on it, u1 locks
/// and unlocks it: every effect in place, every event written, every key recorded.
fn clean() -> Case {
    let mut snap = Snapshot {
        now: 2_000,
        books: vec![BookRow {
            id: BOOK.into(),
            shared: false,
            total_codes: Some(3),
            generated: 3,
            pool: 2,
            max_codes_per_user: Some(1),
            max_redemptions_per_code: 1,
        }],
        codes: vec![code(1, "C1", Some("u1")), code(2, "C2", None), code(3, "C3", None)],
        redemptions: vec![RedemptionRow {
            id: "r1".into(),
            code_id: 1,
            book: BOOK.into(),
            code: "C1".into(),
            user: "u1".into(),
            order_id: Some("o2".into()),
            discount: Some(100),
            rolled_back: true,
        }],
        events: vec![
            event("code.claimed", "C1", "u1", json!({"assigned_code": "C1"})),
            event("code.redeemed", "C1", "u1", json!({"redemption_id": "r1"})),
            event("redemption.rolled_back", "C1", "u1", json!({"redemption_id": "r1"})),
            event("code.locked", "C1", "u1", json!({"lock_id": "l1"})),
            event("code.unlocked", "C1", "u1", json!({"code": "C1"})),
        ],
        counters: vec![CounterRow {
            book: BOOK.into(),
            user: "u1".into(),
            held: 1,
            redeemed: 0,
        }],
        stats: HashMap::from([(
            BOOK.to_owned(),
            Stats {
                total_generated: 3,
                total_assigned: 1,
                available: 2,
                ..Stats::default()
            },
        )]),
        ..Snapshot::default()
    };
    let s = &mut snap;
    let redeem = Op {
        code: Some("C1".into()),
        order_id: Some("o2".into()),
        ..op(2, Kind::Redeem, Actor::User, "u1")
    };
    let rollback = Op {
        code: Some("C1".into()),
        redemption: Some("r1".into()),
        ..op(3, Kind::Rollback, Actor::Service, "u1")
    };
    let on_c1 = |id, kind, user: &str| Op {
        code: Some("C1".into()),
        ..op(id, kind, Actor::User, user)
    };
    let ops = vec![
        answered(
            op(1, Kind::Claim, Actor::User, "u1"),
            201,
            json!({"assigned_code": "C1", "user_id": "u1"}),
            true,
            s,
        ),
        answered(
            redeem,
            200,
            json!({"status": "redeemed", "redemption_id": "r1", "code": "C1"}),
            true,
            s,
        ),
        answered(
            rollback,
            200,
            json!({"status": "rolled_back", "redemption_id": "r1", "code": "C1"}),
            true,
            s,
        ),
        answered(
            on_c1(4, Kind::Lock, "u2"),
            403,
            json!({"code": "not_assigned_to_user"}),
            false,
            s,
        ),
        answered(
            on_c1(5, Kind::Lock, "u1"),
            200,
            json!({"status": "locked", "code": "C1", "lock_id": "l1"}),
            true,
            s,
        ),
        answered(
            on_c1(6, Kind::Unlock, "u1"),
            200,
            json!({"status": "active", "code": "C1"}),
            true,
            s,
        ),
    ];
    let books = vec![Book {
        label: "test",
        id: BOOK.into(),
        shared_code: None,
        grows: false,
        initial: 3,
    }];
    Case { ops, snap, books }
}

fn violations(case: &Case) -> Vec<&'static str> {
    let verdict = check(&case.ops, &case.snap, &case.books);
    for v in &verdict.violations {
        eprintln!("[{}] {}", v.check, v.detail);
    }
    verdict.violations.iter().map(|v| v.check).collect()
}

fn unknown(id: u64, kind: Kind, user: &str) -> Finished {
    Finished {
        op: op(id, kind, Actor::User, user),
        outcome: Outcome::Unknown,
        answers: Vec::new(),
        was_unknown: true,
        answered_attempt_at: None,
    }
}

/// u1 also holds C2: the database's side of a claim that acted twice.
fn second_code_for_u1(case: &mut Case) {
    case.snap.codes[1] = code(2, "C2", Some("u1"));
    case.snap.books[0].pool = 1;
    case.snap.counters[0].held = 2;
    case.snap.events.push(event("code.claimed", "C2", "u1", json!({})));
    let stats = case.snap.stats.get_mut(BOOK).unwrap();
    stats.total_assigned = 2;
    stats.available = 1;
}

#[test]
fn a_clean_history_passes() {
    assert_eq!(violations(&clean()), Vec::<&str>::new());
}

#[test]
fn a_lost_acknowledged_claim_is_flagged() {
    let mut case = clean();
    case.snap.codes[0] = code(1, "C1", None);
    assert!(violations(&case).contains(&"lost claim"));
}

#[test]
fn a_claim_that_acted_twice_is_flagged_unless_an_unknown_claim_explains_it() {
    let mut case = clean();
    case.snap.books[0].max_codes_per_user = None;
    second_code_for_u1(&mut case);
    assert_eq!(violations(&case), vec!["unacknowledged claim"]);
    case.ops.push(unknown(7, Kind::Claim, "u1"));
    assert_eq!(violations(&case), Vec::<&str>::new());
}

#[test]
fn a_limit_exceeded_is_flagged() {
    let mut case = clean();
    second_code_for_u1(&mut case);
    let mut claim = case.ops[0].clone();
    let body = json!({"assigned_code": "C2", "user_id": "u1"}).to_string();
    claim.op.id = 8;
    claim.op.key = Some("k8".into());
    claim.outcome = Outcome::Ok(Answer::read(201, body.as_bytes(), false, 0, 1));
    claim.answers = vec![claim.ok().unwrap().clone()];
    case.snap
        .keys
        .insert(("u1".into(), "k8".into()), KeyRow { status: 201, body });
    case.ops.push(claim);
    assert_eq!(violations(&case), vec!["codes per user"]);
}

#[test]
fn an_oversold_book_is_flagged() {
    let mut case = clean();
    case.snap.books[0].total_codes = Some(2);
    assert!(violations(&case).contains(&"oversold"));
}

#[test]
fn two_answers_for_one_key_are_flagged() {
    let mut case = clean();
    let refused = Answer::read(409, br#"{"code":"out_of_stock"}"#, false, 1, 5_000);
    case.ops[0].answers.push(refused);
    assert_eq!(violations(&case), vec!["answered both ways"]);
}

#[test]
fn only_a_refusal_from_memory_may_come_before_an_acknowledgement() {
    let mut case = clean();
    // A claim answered from the engine's memory (sold out) is not recorded: a retry runs afresh.
    let from_memory = Answer::read(409, br#"{"code":"out_of_stock"}"#, false, 0, 500);
    case.ops[0].answers.insert(0, from_memory);
    assert_eq!(violations(&case), Vec::<&str>::new());
    let mut case = clean();
    let recorded = Answer::read(409, br#"{"code":"user_limit_reached"}"#, false, 0, 500);
    case.ops[0].answers.insert(0, recorded);
    assert_eq!(violations(&case), vec!["answered both ways"]);
}

#[test]
fn two_first_hand_acknowledgements_are_flagged() {
    let mut case = clean();
    let again = case.ops[0].answers[0].clone();
    case.ops[0].answers.push(again.clone());
    assert_eq!(violations(&case), vec!["acted twice"]);
    case.ops[0].answers[1].replayed = true;
    assert_eq!(violations(&case), Vec::<&str>::new());
}

#[test]
fn a_key_record_that_contradicts_the_answer_is_flagged() {
    let mut case = clean();
    // The client was refused, but the key's record says the lock took effect.
    case.snap.keys.insert(
        ("u2".into(), "k4".into()),
        KeyRow {
            status: 200,
            body: json!({"status": "locked"}).to_string(),
        },
    );
    assert_eq!(violations(&case), vec!["key record"]);
    let mut case = clean();
    case.snap.keys.remove(&("u1".into(), "k1".into()));
    assert_eq!(violations(&case), vec!["key record"]);
}

#[test]
fn lost_rollbacks_and_redemptions_are_flagged() {
    let mut case = clean();
    case.snap.redemptions[0].rolled_back = false;
    let found = violations(&case);
    assert!(found.contains(&"lost rollback"), "{found:?}");
    let mut case = clean();
    case.snap.redemptions.clear();
    let found = violations(&case);
    assert!(found.contains(&"lost redemption"), "{found:?}");
}

#[test]
fn missing_and_extra_events_are_flagged() {
    let mut case = clean();
    case.snap.events.retain(|e| e.kind != "code.locked");
    assert_eq!(violations(&case), vec!["lock events"]);
    let mut case = clean();
    case.snap.events.push(event("code.unlocked", "C1", "u1", json!({})));
    assert_eq!(violations(&case), vec!["unlock events"]);
    let mut case = clean();
    case.snap
        .events
        .push(event("code.locked", "C1", "u1", json!({"lock_id": "l9"})));
    assert_eq!(violations(&case), vec!["unacknowledged lock"]);
}

#[test]
fn stats_that_are_not_a_recount_are_flagged() {
    let mut case = clean();
    case.snap.stats.get_mut(BOOK).unwrap().total_assigned = 2;
    assert_eq!(violations(&case), vec!["stats"]);
}
