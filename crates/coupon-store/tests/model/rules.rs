//! The second opinion: the documented behaviour of one book, its codes and its users, kept in
//! memory and written from the README and the architecture notes, not from `coupon_core::rules`.
//! Each request is decided here first (the refusal's code, or what success must look like); once
//! the service has answered, the model takes the service's choice where the documents leave one
//! (which free code a claim deals) and moves on.

use uuid::Uuid;

use super::world::{Off, World, DAY, SECOND};

/// A refusal, as `CouponError::code()` names it.
pub type Refusal = &'static str;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookStatus {
    Active,
    Paused,
    Archived,
}

/// One code instance: a unique book's code, or one instance of a shared book's code.
#[derive(Debug, Clone)]
pub struct Instance {
    pub text: String,
    pub instance: i64,
    /// Who claimed it last, until the claim is given back to the pool; a lapsed claim keeps its
    /// owner until a claim on the book returns it.
    pub owner: Option<usize>,
    pub claimed_at: Option<i64>,
    pub claim_expires: Option<i64>,
    /// Lock id and the instant it stops holding.
    pub lock: Option<(Uuid, i64)>,
    /// Redemptions not rolled back.
    pub uses: i64,
}

#[derive(Debug, Clone)]
pub struct Redemption {
    pub id: Uuid,
    pub instance: usize,
    pub user: usize,
    pub order: Option<String>,
    pub amount: Option<i64>,
    /// Discount applied and final price, when an amount was given.
    pub applied: Option<(i64, i64)>,
    pub at: i64,
    pub rolled_back: Option<i64>,
}

/// How a redeem is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// The order was redeemed with this code already: that redemption (an index) is the answer.
    Repeat(usize),
    /// A new redemption of this instance, with the discount applied and the final price.
    New(usize, Option<(i64, i64)>),
}

/// What the book's admin view counts at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub generated: i64,
    pub assigned: i64,
    pub locked: i64,
    pub redeemed: i64,
    pub redemptions: i64,
    pub discount: i64,
    pub available: i64,
}

pub struct Model {
    pub world: World,
    pub status: BookStatus,
    pub starts: Option<i64>,
    pub expires: Option<i64>,
    pub codes: Vec<Instance>,
    /// Per user, when each of their claims on the book was made (lapsed ones too).
    pub claims: Vec<Vec<i64>>,
    pub redemptions: Vec<Redemption>,
}

impl Model {
    /// The book as created, active, with its initial codes (or shared instances) and its window.
    pub fn new(world: &World, texts: &[String], starts: Option<i64>, expires: Option<i64>) -> Self {
        let codes = texts
            .iter()
            .enumerate()
            .map(|(i, text)| Instance {
                text: text.clone(),
                instance: if world.shared { i as i64 } else { 0 },
                owner: None,
                claimed_at: None,
                claim_expires: None,
                lock: None,
                uses: 0,
            })
            .collect();
        Model {
            world: world.clone(),
            status: BookStatus::Active,
            starts,
            expires,
            codes,
            claims: vec![Vec::new(); world.users],
            redemptions: Vec::new(),
        }
    }

    // ---- derived state ----

    /// A code is used up once redeemed as often as the book allows per code.
    pub fn used_up(&self, i: usize) -> bool {
        self.codes[i].uses >= self.world.max_uses
    }

    pub fn live_lock(&self, i: usize, now: i64) -> Option<Uuid> {
        self.codes[i].lock.filter(|(_, until)| *until > now).map(|(id, _)| id)
    }

    /// An unredeemed claim past its end, with no live lock, has lapsed (ends are exclusive).
    pub fn lapsed(&self, i: usize, now: i64) -> bool {
        let c = &self.codes[i];
        c.owner.is_some()
            && c.uses == 0
            && c.claim_expires.is_some_and(|end| end <= now)
            && self.live_lock(i, now).is_none()
    }

    pub fn holder(&self, i: usize, now: i64) -> Option<usize> {
        if self.lapsed(i, now) {
            None
        } else {
            self.codes[i].owner
        }
    }

    /// Codes a claim may be dealt now.
    pub fn free(&self, now: i64) -> Vec<usize> {
        (0..self.codes.len())
            .filter(|&i| self.holder(i, now).is_none())
            .collect()
    }

    fn held_by(&self, user: usize, now: i64) -> i64 {
        (0..self.codes.len())
            .filter(|&i| self.holder(i, now) == Some(user))
            .count() as i64
    }

    pub fn claims_today(&self, user: usize, now: i64) -> i64 {
        let today = now.div_euclid(DAY);
        self.claims[user].iter().filter(|t| t.div_euclid(DAY) == today).count() as i64
    }

    pub fn live_redemptions(&self, user: usize) -> i64 {
        self.redemptions
            .iter()
            .filter(|r| r.user == user && r.rolled_back.is_none())
            .count() as i64
    }

    pub fn counts(&self, now: i64) -> Counts {
        let n = self.codes.len();
        let redeemed = (0..n).filter(|&i| self.used_up(i)).count() as i64;
        let active = (0..n)
            .filter(|&i| !self.used_up(i) && self.holder(i, now).is_some())
            .count() as i64;
        let locked = (0..n)
            .filter(|&i| !self.used_up(i) && self.codes[i].owner.is_some() && self.live_lock(i, now).is_some())
            .count() as i64;
        let live = self.redemptions.iter().filter(|r| r.rolled_back.is_none());
        let assigned = active + redeemed;
        Counts {
            generated: n as i64,
            assigned,
            locked,
            redeemed,
            redemptions: live.clone().count() as i64,
            discount: live.map(|r| r.applied.map_or(0, |(d, _)| d)).sum(),
            available: n as i64 - assigned,
        }
    }

    // ---- the book ----

    fn window(&self, now: i64) -> Result<(), Refusal> {
        if self.starts.is_some_and(|s| now < s) {
            return Err("not_started");
        }
        // The end of the window is inclusive.
        if self.expires.is_some_and(|e| now > e) {
            return Err("expired");
        }
        Ok(())
    }

    /// New claims need an active book inside its window.
    fn claimable(&self, now: i64) -> Result<(), Refusal> {
        if self.status != BookStatus::Active {
            return Err("book_inactive");
        }
        self.window(now)
    }

    /// Locks and redemptions: paused books still serve what is held; archived ones nothing.
    fn usable(&self, now: i64) -> Result<(), Refusal> {
        if self.status == BookStatus::Archived {
            return Err("book_inactive");
        }
        self.window(now)
    }

    pub fn index(&self, text: &str, instance: i64) -> Option<usize> {
        self.codes.iter().position(|c| c.text == text && c.instance == instance)
    }

    // ---- claims ----

    /// A claim that got past the book's checks first returns the book's lapsed claims to the
    /// pool (documented under "Time"): from then on they have no owner.
    fn return_lapsed(&mut self, now: i64) {
        for i in 0..self.codes.len() {
            if self.lapsed(i, now) {
                let c = &mut self.codes[i];
                c.owner = None;
                c.claimed_at = None;
                c.claim_expires = None;
                c.lock = None;
            }
        }
    }

    /// Limits in their documented order: codes held, then claims today.
    fn limits(&self, user: usize, now: i64) -> Result<(), Refusal> {
        if self
            .world
            .max_codes_per_user
            .is_some_and(|max| self.held_by(user, now) >= max)
        {
            return Err("user_limit_reached");
        }
        if self
            .world
            .claims_per_day
            .is_some_and(|max| self.claims_today(user, now) >= max)
        {
            return Err("daily_limit_reached");
        }
        Ok(())
    }

    /// A claim of any code of the book: the codes it may be dealt, or its refusal.
    pub fn claim_any(&mut self, user: usize, now: i64) -> Result<Vec<usize>, Refusal> {
        self.claimable(now)?;
        self.return_lapsed(now);
        self.limits(user, now)?;
        let free = self.free(now);
        if free.is_empty() {
            return Err("out_of_stock");
        }
        Ok(free)
    }

    /// A claim of a named code: that code, or in a shared book any free instance of its code.
    pub fn claim_named(&mut self, user: usize, text: &str, now: i64) -> Result<Vec<usize>, Refusal> {
        let Some(i) = self.codes.iter().position(|c| c.text == text) else {
            return Err("not_found");
        };
        if self.world.shared {
            return self.claim_any(user, now);
        }
        self.claimable(now)?;
        self.return_lapsed(now);
        self.limits(user, now)?;
        if self.holder(i, now).is_some() {
            return Err("code_taken");
        }
        Ok(vec![i])
    }

    pub fn grant(&mut self, i: usize, user: usize, now: i64) {
        let ttl = self.world.claim_ttl;
        let c = &mut self.codes[i];
        assert_eq!(c.uses, 0, "a code back in the pool has no live redemption");
        c.owner = Some(user);
        c.claimed_at = Some(now);
        c.claim_expires = ttl.map(|t| now + t * SECOND);
        c.lock = None;
        self.claims[user].push(now);
    }

    // ---- checkout ----

    /// The instance a lock, unlock or redeem acts on: the code, or in a shared book the
    /// instance the user owns (else the first, which tells why it is not theirs).
    fn find(&self, user: usize, text: &str) -> Result<usize, Refusal> {
        let mut named = (0..self.codes.len()).filter(|&i| self.codes[i].text == text);
        let first = named.clone().next().ok_or("not_found")?;
        Ok(named.find(|&i| self.codes[i].owner == Some(user)).unwrap_or(first))
    }

    /// The user's own, not used up.
    fn held(&self, i: usize, user: usize, now: i64) -> Result<(), Refusal> {
        if self.holder(i, now) != Some(user) {
            return Err("not_assigned_to_user");
        }
        if self.used_up(i) {
            return Err("already_redeemed");
        }
        Ok(())
    }

    pub fn lock(&self, user: usize, text: &str, now: i64) -> Result<usize, Refusal> {
        let i = self.find(user, text)?;
        self.usable(now)?;
        self.held(i, user, now)?;
        if self.live_lock(i, now).is_some() {
            return Err("locked");
        }
        Ok(i)
    }

    pub fn locked(&mut self, i: usize, id: Uuid, now: i64) -> i64 {
        let until = now + self.world.lock_ttl * SECOND;
        self.codes[i].lock = Some((id, until));
        until
    }

    /// Releasing a hold needs a live one, and the caller's lock id if it names one. Only an
    /// archived book refuses it: a hold may be let go outside the window.
    pub fn unlock(&self, user: usize, text: &str, lock: Option<Uuid>, now: i64) -> Result<usize, Refusal> {
        let i = self.find(user, text)?;
        if self.status == BookStatus::Archived {
            return Err("book_inactive");
        }
        self.held(i, user, now)?;
        match self.live_lock(i, now) {
            None => Err("not_locked"),
            Some(live) if lock.is_some_and(|id| id != live) => Err("locked"),
            Some(_) => Ok(i),
        }
    }

    pub fn unlocked(&mut self, i: usize) {
        self.codes[i].lock = None;
    }

    pub fn redeem(
        &self,
        user: usize,
        text: &str,
        order: Option<&str>,
        amount: Option<i64>,
        lock: Option<Uuid>,
        now: i64,
    ) -> Result<Redeemed, Refusal> {
        let i = self.find(user, text)?;
        // A repeated order is answered with its redemption before anything else is checked.
        if let Some(order) = order {
            let prior = self.redemptions.iter().position(|r| {
                r.user == user
                    && r.rolled_back.is_none()
                    && r.order.as_deref() == Some(order)
                    && self.codes[r.instance].text == text
            });
            if let Some(r) = prior {
                return Ok(Redeemed::Repeat(r));
            }
        }
        self.usable(now)?;
        self.held(i, user, now)?;
        // A live lock is passed only by its own id; without a live lock any id (or none) will do.
        if self.live_lock(i, now).is_some_and(|live| lock != Some(live)) {
            return Err("locked");
        }
        if self
            .world
            .max_user_redemptions
            .is_some_and(|max| self.live_redemptions(user) >= max)
        {
            return Err("user_limit_reached");
        }
        let applied = match amount {
            Some(amount) => Some(self.discount(amount)?),
            None if self.world.min_order.is_some() => return Err("order_amount_required"),
            None => None,
        };
        Ok(Redeemed::New(i, applied))
    }

    /// The discount on an order: percentages round down, never more than the cap nor the order.
    fn discount(&self, amount: i64) -> Result<(i64, i64), Refusal> {
        if self.world.min_order.is_some_and(|min| amount < min) {
            return Err("min_order_not_met");
        }
        let raw = match self.world.off {
            Off::Percent(bp) => amount * bp / 10_000,
            Off::Fixed(off) => off,
        };
        let off = raw.min(self.world.max_discount.unwrap_or(i64::MAX)).min(amount);
        Ok((off, amount - off))
    }

    /// A new redemption: the code is used once more and its hold is over.
    #[allow(clippy::too_many_arguments)]
    pub fn redeemed(
        &mut self,
        id: Uuid,
        i: usize,
        user: usize,
        order: Option<&str>,
        amount: Option<i64>,
        applied: Option<(i64, i64)>,
        now: i64,
    ) {
        self.codes[i].uses += 1;
        self.codes[i].lock = None;
        self.redemptions.push(Redemption {
            id,
            instance: i,
            user,
            order: order.map(Into::into),
            amount,
            applied,
            at: now,
            rolled_back: None,
        });
    }

    /// A rollback of the redemption at `r`: `Ok(true)` undoes it, `Ok(false)` answers the rollback
    /// it had already. Allowed whatever the book's status or window.
    pub fn rollback(&self, r: usize) -> Result<bool, Refusal> {
        Ok(self.redemptions[r].rolled_back.is_none())
    }

    /// The use goes back to the code and to the user's count. A claim with a TTL starts afresh
    /// from the rollback if it would end sooner (the service extends any earlier end, not only one
    /// that has passed; the documents speak only of the latter).
    pub fn rolled_back(&mut self, r: usize, now: i64) {
        self.redemptions[r].rolled_back = Some(now);
        let ttl = self.world.claim_ttl;
        let c = &mut self.codes[self.redemptions[r].instance];
        c.uses -= 1;
        if let (Some(ttl), Some(end)) = (ttl, c.claim_expires) {
            c.claim_expires = Some(end.max(now + ttl * SECOND));
        }
    }

    // ---- the admin's side ----

    /// An upload: how many codes go in and which are reported as duplicates (repeats within the
    /// upload, and codes that exist already, here or in another book), or the refusal.
    pub fn add_codes(
        &self,
        texts: &[String],
        elsewhere: impl Fn(&str) -> bool,
    ) -> Result<(usize, Vec<String>), Refusal> {
        if self.status == BookStatus::Archived {
            return Err("book_inactive");
        }
        if self.world.shared {
            return Err("shared_book");
        }
        let mut fresh: Vec<&String> = Vec::new();
        let mut duplicates = Vec::new();
        for text in texts {
            if fresh.contains(&text) || self.codes.iter().any(|c| &c.text == text) || elsewhere(text) {
                duplicates.push(text.clone());
            } else {
                fresh.push(text);
            }
        }
        if self
            .world
            .cap
            .is_some_and(|cap| (self.codes.len() + fresh.len()) as i64 > cap)
        {
            return Err("total_codes_exceeded");
        }
        Ok((fresh.len(), duplicates))
    }

    /// The new codes of an upload join the book.
    pub fn added(&mut self, texts: &[String]) {
        for text in texts {
            if !self.codes.iter().any(|c| &c.text == text) {
                self.codes.push(Instance {
                    text: text.clone(),
                    instance: 0,
                    owner: None,
                    claimed_at: None,
                    claim_expires: None,
                    lock: None,
                    uses: 0,
                });
            }
        }
    }

    /// A removal: the codes that leave (by position) and, in the order named, why the others
    /// stay. Only a code in the pool leaves, and only if no redemption (a rolled-back one) refers
    /// to it; a lapsed claim not yet returned still holds its code.
    #[allow(clippy::type_complexity)]
    pub fn remove_codes(&self, texts: &[String]) -> Result<(Vec<usize>, Vec<(String, &'static str)>), Refusal> {
        if self.status == BookStatus::Archived {
            return Err("book_inactive");
        }
        if self.world.shared {
            return Err("shared_book");
        }
        let (mut leave, mut stay) = (Vec::new(), Vec::new());
        let mut named: Vec<&String> = Vec::new();
        for text in texts {
            if named.contains(&text) {
                continue;
            }
            named.push(text);
            let why = match self.index(text, 0) {
                None => "unknown",
                Some(i) if self.used_up(i) => "redeemed",
                Some(i) if self.codes[i].owner.is_some() => "held",
                Some(i) if self.redemptions.iter().any(|r| r.instance == i) => "has_history",
                Some(i) => {
                    leave.push(i);
                    continue;
                }
            };
            stay.push((text.clone(), why));
        }
        Ok((leave, stay))
    }

    /// The codes at these positions leave the book.
    pub fn removed(&mut self, mut leave: Vec<usize>) {
        leave.sort_unstable_by(|a, b| b.cmp(a));
        for i in leave {
            self.codes.remove(i);
            for r in &mut self.redemptions {
                assert_ne!(r.instance, i, "a removed code has no redemption");
                if r.instance > i {
                    r.instance -= 1;
                }
            }
        }
    }

    /// A patch of status or window end: an archived book takes none, and a window may not end
    /// before it starts.
    pub fn patch(&self, expires: Option<Option<i64>>) -> Result<(), Refusal> {
        if self.status == BookStatus::Archived {
            return Err("book_inactive");
        }
        if let (Some(Some(end)), Some(start)) = (expires, self.starts) {
            if end < start {
                return Err("window_conflict");
            }
        }
        Ok(())
    }
}
