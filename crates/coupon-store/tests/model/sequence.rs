//! One sequence against the service: each operation is decided by the model first, sent, and
//! its answer compared with the prediction; then the model follows the service's answer.

use std::collections::HashMap;
use std::rc::Rc;

use coupon_core::{CouponError, Redemption, Timestamp};
use coupon_store::{Claimed, StoreError};
use proptest_state_machine::StateMachineTest;
use uuid::Uuid;

use super::check;
use super::ops::{Code, LockRef, Op, Plan, Reference, Target};
use super::requests::{
    claim_code_req, claim_req, expiry_patch, lock_req, redeem_req, rollback_req, status_patch, unlock_req,
};
use super::rules::{BookStatus, Model, Redeemed, Refusal};
use super::run::{shared, Shared};
use super::world::{T0, USERS};

/// A book of the sequence and the model of it.
pub struct Booked {
    pub id: Uuid,
    pub model: Model,
}

/// The books of one sequence, their models, and what the service handed out.
pub struct Sequence {
    pub shared: Rc<Shared>,
    pub books: Vec<Booked>,
    /// Names this sequence's code texts, unique in the database.
    tag: usize,
    /// Milliseconds since the epoch.
    pub now: i64,
    /// Lock ids handed out, per code text, oldest first.
    locks: HashMap<String, Vec<Uuid>>,
    /// Redemptions in the order they were made: their book, and their place in its model.
    redemptions: Vec<(usize, usize)>,
    /// Who the current request is for and what it names, for failure messages: an operation
    /// picks them from the state it meets.
    asked: String,
}

/// A request's own answer; any other failure of the store fails the sequence.
fn answer<T>(outcome: Result<T, StoreError>) -> Result<T, CouponError> {
    match outcome {
        Ok(v) => Ok(v),
        Err(StoreError::Rejected(e)) => Err(e),
        Err(e) => panic!("the store failed: {e}"),
    }
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// `ok`, or the refusal's code.
fn outcome<T>(got: &Result<T, CouponError>) -> &'static str {
    match got {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

impl Sequence {
    fn user(&self, u: usize) -> &'static str {
        USERS[u]
    }

    /// The text of a unique book's code `slot`.
    fn slot(&self, book: usize, slot: usize) -> String {
        format!("C{}-{book}-{slot}", self.tag)
    }

    /// The code text a request names.
    fn text(&self, code: Code) -> String {
        match code {
            Code::Unknown => format!("NONE-{}", self.tag),
            Code::Slot(book, _) if self.books[book].model.world.shared => format!("S{}-{book}", self.tag),
            Code::Slot(book, slot) => self.slot(book, slot),
        }
    }

    /// The book that has a code of this text.
    fn locate(&self, text: &str) -> Option<usize> {
        (self.books.iter()).position(|b| b.model.codes.iter().any(|c| c.text == text))
    }

    /// The user a checkout request is for, and the text it names.
    fn aim(&self, target: Target) -> (usize, String) {
        let codes = || {
            self.books
                .iter()
                .flat_map(|b| b.model.codes.iter().enumerate().map(move |c| (b, c)))
        };
        let locked: Vec<(usize, &str)> = codes()
            .filter(|(b, (i, _))| b.model.live_lock(*i, self.now).is_some())
            .map(|(_, (_, c))| (c.owner.expect("a locked code has an owner"), c.text.as_str()))
            .collect();
        let owned: Vec<(usize, &str)> = codes()
            .filter_map(|(_, (_, c))| c.owner.map(|u| (u, c.text.as_str())))
            .collect();
        let pick = |list: &[(usize, &str)], k: usize| (list[k % list.len()].0, list[k % list.len()].1.to_owned());
        match target {
            Target::As(user, code) => (user, self.text(code)),
            Target::Locked(k) if !locked.is_empty() => pick(&locked, k),
            Target::Held(k) | Target::Locked(k) if !owned.is_empty() => pick(&owned, k),
            Target::Held(k) | Target::Locked(k) => match self.books[0].model.codes.as_slice() {
                [] => (0, self.text(Code::Unknown)),
                codes => (0, codes[k % codes.len()].text.clone()),
            },
        }
    }

    fn lock_id(&self, text: &str, lock: LockRef) -> Option<Uuid> {
        let issued = self.locks.get(text);
        match lock {
            LockRef::None => None,
            LockRef::Latest => Some(issued.and_then(|l| l.last().copied()).unwrap_or_else(Uuid::now_v7)),
            LockRef::First => Some(issued.and_then(|l| l.first().copied()).unwrap_or_else(Uuid::now_v7)),
            LockRef::Fresh => Some(Uuid::now_v7()),
        }
    }

    /// Notes who the request is for and what it names.
    fn ask(&mut self, user: usize, what: &str) {
        self.asked = format!("{} on {what}", self.user(user));
    }

    /// Fails the sequence unless the answer is the predicted one (`ok` or a refusal's code),
    /// and counts it.
    fn expect<T: std::fmt::Debug>(&self, op: &Op, predicted: Result<(), Refusal>, got: &Result<T, CouponError>) {
        let predicted = predicted.err().unwrap_or("ok");
        assert_eq!(
            outcome(got),
            predicted,
            "{op:?} ({}) at T0+{} ms: the model predicts {predicted}, the service answered {got:?}",
            self.asked,
            self.now - T0
        );
        self.shared.tally(op.kind(), predicted);
    }

    /// A claim of any code of `book`, or of the code `named`.
    fn claim(&mut self, op: &Op, user: usize, book: usize, named: Option<String>) {
        let now = self.now;
        let what = named.clone().unwrap_or_else(|| format!("book {book}"));
        self.ask(user, &what);
        let (b, predicted, req) = match named {
            Some(text) => match self.locate(&text) {
                None => (book, Err("not_found"), claim_code_req(&text, self.user(user))),
                Some(b) => {
                    let predicted = self.books[b].model.claim_named(user, &text, now);
                    (b, predicted, claim_code_req(&text, self.user(user)))
                }
            },
            None => {
                let predicted = self.books[book].model.claim_any(user, now);
                (book, predicted, claim_req(self.books[book].id, self.user(user)))
            }
        };
        let named = matches!(req.target, coupon_store::ClaimTarget::Code(_));
        let got = answer(self.shared.block_on(self.shared.service.claim(req, at(now))));
        // With the claim engine a sold-out book answers from memory, where a user at a limit hears
        // `out_of_stock` too (README, `POST /coupons/assign`).
        let from_memory = self.shared.batched
            && !named
            && matches!(predicted, Err("user_limit_reached" | "daily_limit_reached"))
            && self.books[b].model.free(now).is_empty()
            && matches!(got, Err(CouponError::OutOfStock));
        if from_memory {
            self.shared.tally(op.kind(), "out_of_stock");
            return;
        }
        self.expect(op, predicted.as_ref().map(drop).map_err(|e| *e), &got);
        if let (Ok(free), Ok(claimed)) = (predicted, got) {
            let i = self.claimed(op, b, &free, user, &claimed);
            self.books[b].model.grant(i, user, now);
        }
    }

    /// Checks what a claim was dealt: a code of the book that was free, now the claimer's.
    fn claimed(&self, op: &Op, b: usize, free: &[usize], user: usize, got: &Claimed) -> usize {
        let (now, book) = (self.now, &self.books[b]);
        let c = &got.code;
        let i = (book.model.index(&c.code, c.instance))
            .unwrap_or_else(|| panic!("{op:?}: dealt {} #{}, which the book does not have", c.code, c.instance));
        assert!(
            free.contains(&i),
            "{op:?}: dealt {} #{}, which was not free",
            c.code,
            c.instance
        );
        assert_eq!(got.book.id, book.id);
        assert_eq!(c.owner.as_deref(), Some(self.user(user)), "{op:?}: the claimer owns it");
        assert_eq!(c.status, coupon_core::StoredStatus::Active);
        assert_eq!(c.claimed_at, Some(at(now)));
        let ends = book.model.world.claim_ttl.map(|t| at(now + t * 1000));
        assert_eq!(c.claim_expires_at, ends, "{op:?}: the claim's end");
        assert_eq!(c.redemptions, 0);
        assert!(
            c.locked_until.is_none_or(|u| u <= at(now)),
            "{op:?}: dealt under a live lock"
        );
        i
    }

    fn lock(&mut self, op: &Op, target: Target) {
        let (now, (user, text)) = (self.now, self.aim(target));
        self.ask(user, &text);
        let b = self.locate(&text);
        let predicted = b.map_or(Err("not_found"), |b| self.books[b].model.lock(user, &text, now));
        let req = lock_req(&text, self.user(user));
        let got = answer(self.shared.block_on(self.shared.service.lock(req, at(now))));
        self.expect(op, predicted.map(drop), &got);
        if let (Some(b), Ok(i), Ok(locked)) = (b, predicted, got) {
            let until = self.books[b].model.locked(i, locked.lock_id, now);
            assert_eq!((locked.code.as_str(), locked.locked_until), (text.as_str(), at(until)));
            self.locks.entry(text).or_default().push(locked.lock_id);
        }
    }

    fn unlock(&mut self, op: &Op, target: Target, lock: LockRef) {
        let (now, (user, text)) = (self.now, self.aim(target));
        self.ask(user, &text);
        let lock_id = self.lock_id(&text, lock);
        let b = self.locate(&text);
        let predicted = b.map_or(Err("not_found"), |b| {
            self.books[b].model.unlock(user, &text, lock_id, now)
        });
        let req = unlock_req(&text, self.user(user), lock_id);
        let got = answer(self.shared.block_on(self.shared.service.unlock(req, at(now))));
        self.expect(op, predicted.map(drop), &got);
        if let (Some(b), Ok(i)) = (b, predicted) {
            self.books[b].model.unlocked(i);
        }
    }

    fn redeem(&mut self, op: &Op, target: Target, order: Option<u8>, amount: Option<i64>, lock: LockRef) {
        let (now, (user, text)) = (self.now, self.aim(target));
        self.ask(user, &text);
        let lock_id = self.lock_id(&text, lock);
        let order = order.map(|o| format!("order-{o}"));
        let b = self.locate(&text);
        let predicted = b.map_or(Err("not_found"), |b| {
            (self.books[b].model).redeem(user, &text, order.as_deref(), amount, lock_id, now)
        });
        let req = redeem_req(&text, self.user(user), order.as_deref(), amount, lock_id);
        let got = answer(self.shared.block_on(self.shared.service.redeem(req, at(now))));
        self.expect(op, predicted.map(drop), &got);
        let (Some(b), Ok(predicted), Ok(got)) = (b, predicted, got) else {
            return;
        };
        match predicted {
            Redeemed::Repeat(r) => self.same_redemption(op, b, r, &got),
            Redeemed::New(i, applied) => {
                let seen = (
                    got.code.as_str(),
                    got.coupon_book_id,
                    got.user_id.as_str(),
                    got.order_id.as_deref(),
                    got.order_amount,
                    got.discount_applied.zip(got.final_price),
                    got.redeemed_at,
                    got.rollback.is_some(),
                );
                let promised = (
                    text.as_str(),
                    self.books[b].id,
                    self.user(user),
                    order.as_deref(),
                    amount,
                    applied,
                    at(now),
                    false,
                );
                assert_eq!(seen, promised, "{op:?}: the new redemption");
                assert_eq!(got.discount_applied.is_some(), amount.is_some());
                let model = &mut self.books[b].model;
                model.redeemed(got.redemption_id, i, user, order.as_deref(), amount, applied, now);
                self.redemptions.push((b, model.redemptions.len() - 1));
            }
        }
    }

    /// A redemption answered again is the one the model recorded.
    fn same_redemption(&self, op: &Op, b: usize, r: usize, got: &Redemption) {
        let model = &self.books[b].model;
        let m = &model.redemptions[r];
        let seen = (
            got.redemption_id,
            got.code.as_str(),
            got.user_id.as_str(),
            got.order_id.as_deref(),
            got.order_amount,
            got.discount_applied.zip(got.final_price),
            got.redeemed_at,
        );
        let recorded = (
            m.id,
            model.codes[m.instance].text.as_str(),
            self.user(m.user),
            m.order.as_deref(),
            m.amount,
            m.applied,
            at(m.at),
        );
        assert_eq!(seen, recorded, "{op:?}: the redemption answered again");
        let rolled_back = got.rollback.as_ref().map(|r| r.rolled_back_at);
        assert_eq!(rolled_back, m.rolled_back.map(at), "{op:?}: its rollback");
    }

    fn rollback(&mut self, op: &Op, pick: Option<usize>) {
        let now = self.now;
        let count = self.redemptions.len();
        let made = pick.filter(|_| count > 0).map(|p| self.redemptions[p % count]);
        let id = made.map_or_else(Uuid::now_v7, |(b, r)| self.books[b].model.redemptions[r].id);
        self.asked = format!("redemption {id}");
        let predicted = made.map_or(Err("not_found"), |(b, r)| self.books[b].model.rollback(r));
        let got = answer(
            self.shared
                .block_on(self.shared.service.rollback(rollback_req(id, at(now)), at(now))),
        );
        self.expect(op, predicted.map(drop), &got);
        if let (Ok(undo), Some((b, r))) = (predicted, made) {
            if undo {
                self.books[b].model.rolled_back(r, now);
            }
            self.same_redemption(op, b, r, got.as_ref().expect("predicted to succeed"));
        }
    }

    fn add_codes(&mut self, op: &Op, plan: &Plan, b: usize, fresh: usize, again: Option<Code>) {
        let slots = plan.slots[b];
        let mut texts: Vec<String> = (slots - fresh..slots).map(|s| self.slot(b, s)).collect();
        texts.extend(again.filter(|c| *c != Code::Unknown).map(|c| self.text(c)));
        self.asked = format!("book {b}: {texts:?}");
        let elsewhere = |text: &str| self.locate(text).is_some_and(|other| other != b);
        let predicted = self.books[b].model.add_codes(&texts, elsewhere);
        let call = self
            .shared
            .service
            .add_codes(self.books[b].id, texts.clone(), at(self.now), None);
        let got = answer(self.shared.block_on(call));
        self.expect(op, predicted.as_ref().map(drop).map_err(|e| *e), &got);
        if let (Ok((inserted, mut duplicates)), Ok(mut added)) = (predicted, got) {
            duplicates.sort();
            added.duplicates.sort();
            assert_eq!(
                (added.inserted as usize, added.duplicates),
                (inserted, duplicates),
                "{op:?}"
            );
            let fresh: Vec<String> = texts.into_iter().filter(|t| self.locate(t).is_none()).collect();
            self.books[b].model.added(&fresh);
        }
    }

    fn remove_codes(&mut self, op: &Op, b: usize, codes: &[Code]) {
        let texts: Vec<String> = codes.iter().map(|c| self.text(*c)).collect();
        self.asked = format!("book {b}: {texts:?}");
        let predicted = self.books[b].model.remove_codes(&texts);
        let call = self
            .shared
            .service
            .remove_codes(self.books[b].id, texts, at(self.now), None);
        let got = answer(self.shared.block_on(call));
        self.expect(op, predicted.as_ref().map(drop).map_err(|e| *e), &got);
        if let (Ok((leave, stay)), Ok(removed)) = (predicted, got) {
            let kept: Vec<(String, &str)> = (removed.not_removed.into_iter())
                .map(|(text, why)| (text, why.as_str()))
                .collect();
            assert_eq!((removed.removed as usize, kept), (leave.len(), stay), "{op:?}");
            self.books[b].model.removed(leave);
        }
    }

    fn set_status(&mut self, op: &Op, b: usize, to: BookStatus) {
        self.asked = format!("book {b}");
        let predicted = self.books[b].model.patch(None);
        let stored = match to {
            BookStatus::Active => coupon_core::BookStatus::Active,
            BookStatus::Paused => coupon_core::BookStatus::Paused,
            BookStatus::Archived => coupon_core::BookStatus::Archived,
        };
        let call = (self.shared.service).update_book(self.books[b].id, status_patch(stored), at(self.now), None);
        let got = answer(self.shared.block_on(call));
        self.expect(op, predicted, &got);
        if let Ok(book) = got {
            assert_eq!(book.status, stored, "{op:?}");
            self.books[b].model.status = to;
        }
    }

    fn set_expiry(&mut self, op: &Op, b: usize, after: Option<i64>) {
        self.asked = format!("book {b}");
        let end = after.map(|d| self.now + d);
        let predicted = self.books[b].model.patch(Some(end));
        let call = (self.shared.service).update_book(self.books[b].id, expiry_patch(end.map(at)), at(self.now), None);
        let got = answer(self.shared.block_on(call));
        self.expect(op, predicted, &got);
        if let Ok(book) = got {
            assert_eq!(book.expires_at, end.map(at), "{op:?}");
            self.books[b].model.expires = end;
        }
    }
}

impl StateMachineTest for Sequence {
    type SystemUnderTest = Sequence;
    type Reference = Reference;

    /// The plan's books in the variant's database, with their codes.
    fn init_test(plan: &Plan) -> Sequence {
        let shared = shared();
        let tag = shared.next_sequence();
        let books = (plan.worlds.iter().enumerate())
            .map(|(b, world)| {
                let shared_code = format!("S{tag}-{b}");
                let draft = world.draft(world.shared.then(|| shared_code.clone()));
                let (starts, expires) = (draft.book.starts_at, draft.book.expires_at);
                let book =
                    answer(shared.block_on(shared.service.create_book(draft, None))).expect("the book is created");
                let texts: Vec<String> = if world.shared {
                    vec![shared_code; world.supply]
                } else {
                    let texts: Vec<String> = (0..world.supply).map(|s| format!("C{tag}-{b}-{s}")).collect();
                    let add = shared.service.add_codes(book.id, texts.clone(), at(T0), None);
                    let added = shared.block_on(add).expect("the codes are added");
                    assert_eq!(added.inserted as usize, world.supply);
                    texts
                };
                let (starts, expires) = (starts.map(Timestamp::millis), expires.map(Timestamp::millis));
                Booked {
                    id: book.id,
                    model: Model::new(world, &texts, starts, expires),
                }
            })
            .collect();
        Sequence {
            shared,
            books,
            tag,
            now: T0,
            locks: HashMap::new(),
            redemptions: Vec::new(),
            asked: String::new(),
        }
    }

    fn apply(mut seq: Sequence, plan: &Plan, op: Op) -> Sequence {
        seq.asked.clear();
        match op {
            Op::Claim { book, user } => seq.claim(&op, user, book, None),
            Op::ClaimElsewhere { user } => {
                seq.asked = "a book that does not exist".into();
                let req = claim_req(Uuid::now_v7(), seq.user(user));
                let got = answer(seq.shared.block_on(seq.shared.service.claim(req, at(seq.now))));
                seq.expect(&op, Err("not_found"), &got);
            }
            Op::ClaimCode { user, code } => {
                let text = seq.text(code);
                seq.claim(&op, user, 0, Some(text));
            }
            Op::Lock { target } => seq.lock(&op, target),
            Op::Unlock { target, lock } => seq.unlock(&op, target, lock),
            Op::Redeem {
                target,
                order,
                amount,
                lock,
            } => seq.redeem(&op, target, order, amount, lock),
            Op::Rollback { pick } => seq.rollback(&op, pick),
            Op::AddCodes { book, fresh, again } => seq.add_codes(&op, plan, book, fresh, again),
            Op::RemoveCodes { book, ref codes } => seq.remove_codes(&op, book, codes),
            Op::SetStatus { book, status } => seq.set_status(&op, book, status),
            Op::SetExpiry { book, after } => seq.set_expiry(&op, book, after),
            Op::Advance(ms) => {
                seq.now += ms;
                seq.shared.tally(op.kind(), "ok");
            }
        }
        assert_eq!(seq.now, T0 + plan.clock, "the sequence and its plan keep one clock");
        seq
    }

    fn check_invariants(seq: &Sequence, _plan: &Plan) {
        for book in &seq.books {
            check::stats(&seq.shared, book, seq.now);
        }
    }

    fn teardown(seq: Sequence, _plan: Plan) {
        for book in &seq.books {
            check::codes(&seq.shared, book, seq.now);
            check::holdings(&seq.shared, book, seq.now);
            check::history(&seq.shared, book);
        }
    }
}
