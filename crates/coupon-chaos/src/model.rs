//! What the clients know from acknowledged answers (who holds which code, which locks are theirs,
//! which redemptions exist), used only to choose plausible operations. The checker never reads it:
//! it judges from the history and the database alone.

use std::collections::HashMap;

use rand::seq::IndexedRandom;
use rand::Rng;

use crate::books::Book;
use crate::history::Outcome;
use crate::operation::{Actor, Kind, Op};

/// How often each kind is chosen, out of the sum.
const MIX: [(Kind, u32); 9] = [
    (Kind::Claim, 22),
    (Kind::ClaimCode, 5),
    (Kind::Lock, 14),
    (Kind::Unlock, 7),
    (Kind::Redeem, 18),
    (Kind::Rollback, 7),
    (Kind::Generate, 1),
    (Kind::Validate, 10),
    (Kind::List, 8),
];

/// Codes added to the open book by one `generate`: small, so its supply grows through a long run.
const GENERATE: i64 = 10;

struct Holding {
    book: usize,
    code: String,
    redeemed: bool,
}

struct Redeemed {
    id: String,
    user: String,
    book: usize,
    code: String,
}

pub struct Model {
    users: Vec<String>,
    books: Vec<Book>,
    /// Per book, the codes a named claim picks from (a shared book's is its one code).
    named: Vec<Vec<String>>,
    held: HashMap<String, Vec<Holding>>,
    locks: HashMap<(String, String), String>,
    redemptions: Vec<Redeemed>,
}

impl Model {
    pub fn new(users: Vec<String>, books: Vec<Book>, named: Vec<Vec<String>>) -> Model {
        Model {
            users,
            books,
            named,
            held: HashMap::new(),
            locks: HashMap::new(),
            redemptions: Vec::new(),
        }
    }

    /// The next operation: a kind from the mix, on what the chosen user holds when it needs that.
    /// A write carries `key`.
    pub fn next(&self, id: u64, key: String, rng: &mut impl Rng) -> Op {
        let mut op = self.choose(id, &key, rng);
        op.key = op.kind.writes().then_some(key);
        op
    }

    fn choose(&self, id: u64, key: &str, rng: &mut impl Rng) -> Op {
        let user = self.users.choose(rng).expect("users").clone();
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut pick = rng.random_range(0..total);
        let kind = MIX
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or(Kind::Claim, |(k, _)| *k);
        let actor = match rng.random_range(0..10) {
            0..5 => Actor::User,
            5..9 => Actor::Service,
            _ => Actor::Admin,
        };
        let mut op = Op::new(id, kind, actor, &user);
        let holding = self.holding(&user, rng);
        match kind {
            Kind::Claim => return self.claim(op, rng),
            Kind::ClaimCode => {
                let book = rng.random_range(0..self.books.len());
                let Some(code) = self.named[book].choose(rng) else {
                    return self.claim(op, rng);
                };
                op.book = Some(self.books[book].id.clone());
                op.code = Some(code.clone());
            }
            Kind::Lock | Kind::Validate => {
                let Some(h) = holding else { return self.claim(op, rng) };
                op.book = Some(self.books[h.book].id.clone());
                op.code = Some(h.code.clone());
                if kind == Kind::Validate {
                    op.amount = Some(rng.random_range(500..=40_000));
                }
            }
            Kind::Unlock => {
                let Some(h) = holding else { return self.claim(op, rng) };
                op.book = Some(self.books[h.book].id.clone());
                op.code = Some(h.code.clone());
                let lock = self.locks.get(&(user.clone(), h.code.clone()));
                op.lock_id = lock.filter(|_| rng.random_bool(0.5)).cloned();
            }
            Kind::Redeem => {
                let Some(h) = holding else { return self.claim(op, rng) };
                op.book = Some(self.books[h.book].id.clone());
                op.code = Some(h.code.clone());
                op.order_id = Some(format!("order-{key}"));
                op.amount = Some(rng.random_range(500..=40_000));
                let lock = self.locks.get(&(user.clone(), h.code.clone()));
                op.lock_id = lock.filter(|_| rng.random_bool(0.9)).cloned();
            }
            Kind::Rollback => {
                let Some(r) = self.redemptions.choose(rng) else {
                    return self.claim(op, rng);
                };
                op.actor = if rng.random_bool(0.8) {
                    Actor::Service
                } else {
                    Actor::Admin
                };
                op.user = r.user.clone();
                op.book = Some(self.books[r.book].id.clone());
                op.code = Some(r.code.clone());
                op.redemption = Some(r.id.clone());
            }
            Kind::Generate => {
                let Some(book) = self.books.iter().find(|b| b.grows) else {
                    return self.claim(op, rng);
                };
                op.actor = Actor::Admin;
                op.book = Some(book.id.clone());
                op.count = Some(GENERATE);
            }
            Kind::List => {}
        }
        op
    }

    /// A claim of any code, most often of the open book: the others are soon at their limits.
    fn claim(&self, mut op: Op, rng: &mut impl Rng) -> Op {
        op.kind = Kind::Claim;
        let open = self.books.iter().find(|b| b.grows).filter(|_| rng.random_bool(0.7));
        op.book = open.or_else(|| self.books.choose(rng)).map(|b| b.id.clone());
        op.code = None;
        op
    }

    /// One of the user's codes, an unredeemed one most of the time.
    fn holding(&self, user: &str, rng: &mut impl Rng) -> Option<&Holding> {
        let held = self.held.get(user)?;
        let fresh: Vec<&Holding> = held.iter().filter(|h| !h.redeemed).collect();
        if !fresh.is_empty() && rng.random_bool(0.8) {
            return fresh.choose(rng).copied();
        }
        held.choose(rng)
    }

    fn book_index(&self, id: Option<&str>) -> Option<usize> {
        self.books.iter().position(|b| Some(b.id.as_str()) == id)
    }

    /// Learns from an answer.
    pub fn learn(&mut self, op: &Op, outcome: &Outcome) {
        let Some(book) = self.book_index(op.book.as_deref()) else {
            return;
        };
        let answer = match outcome {
            Outcome::Ok(answer) => answer,
            Outcome::Fail(answer) if answer.error.as_deref() == Some("already_redeemed") => {
                if let Some(code) = &op.code {
                    self.mark(&op.user, code, true);
                }
                return;
            }
            _ => return,
        };
        // A claim of any code learns its code from the answer.
        let Some(code) = op.code.clone().or_else(|| answer.code.clone()) else {
            return;
        };
        let key = (op.user.clone(), code.clone());
        match op.kind {
            Kind::Claim | Kind::ClaimCode => self.held.entry(op.user.clone()).or_default().push(Holding {
                book,
                code,
                redeemed: false,
            }),
            Kind::Lock => {
                if let Some(lock) = &answer.lock_id {
                    self.locks.insert(key, lock.clone());
                }
            }
            Kind::Unlock => {
                self.locks.remove(&key);
            }
            Kind::Redeem => {
                self.locks.remove(&key);
                self.mark(&op.user, &code, true);
                if let Some(id) = &answer.redemption_id {
                    self.redemptions.push(Redeemed {
                        id: id.clone(),
                        user: op.user.clone(),
                        book,
                        code,
                    });
                }
            }
            Kind::Rollback => self.mark(&op.user, &code, false),
            Kind::Generate | Kind::Validate | Kind::List => {}
        }
    }

    fn mark(&mut self, user: &str, code: &str, redeemed: bool) {
        if let Some(h) = self
            .held
            .get_mut(user)
            .and_then(|held| held.iter_mut().find(|h| h.code == code && h.redeemed != redeemed))
        {
            h.redeemed = redeemed;
        }
    }
}
