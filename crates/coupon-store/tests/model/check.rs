//! What the database says through the service's reads, against the model: the book's stats after
//! every operation; every code row, every user's counters and the redemption history at the end
//! of a sequence.

use super::requests::{all_codes, all_redemptions};
use coupon_core::{CodeText, StoredStatus, Timestamp};

use super::rules::Counts;
use super::run::Shared;
use super::sequence::Booked;
use super::world::DAY;

/// The admin's stats equal the model's counts, and never show more assigned than exist.
pub fn stats(shared: &Shared, book: &Booked, now: i64) {
    let (m, at) = (&book.model, Timestamp::from_millis(now));
    let (_, s) = shared
        .block_on(shared.service.book_with_stats(book.id, at))
        .expect("the book's stats");
    let got = Counts {
        generated: s.total_generated,
        assigned: s.total_assigned,
        locked: s.total_locked,
        redeemed: s.total_redeemed,
        redemptions: s.total_redemptions,
        discount: s.total_discount_applied,
        available: s.available,
    };
    assert_eq!(got, m.counts(now), "the book's stats");
    assert!(got.available >= 0 && got.locked <= got.assigned, "{got:?}");
    if let Some(cap) = m.world.cap.filter(|_| !m.world.shared) {
        assert!(got.generated <= cap, "over supply: {got:?}");
    }
}

/// Every code row as stored: its one owner, status, uses, claim and live lock, as the model has
/// them (a lapsed claim keeps its owner until a claim on the book returns it, in both).
pub fn codes(shared: &Shared, book: &Booked, now: i64) {
    let m = &book.model;
    let (_, page) = shared
        .block_on(shared.service.codes(all_codes(book.id), Timestamp::from_millis(now)))
        .expect("the book's codes");
    assert_eq!(page.items.len(), m.codes.len(), "the book's codes");
    for row in &page.items {
        let i = m
            .index(&row.code, row.instance)
            .unwrap_or_else(|| panic!("{} #{} is not the model's", row.code, row.instance));
        let c = &m.codes[i];
        let status = match c.owner {
            None => StoredStatus::Available,
            Some(_) if m.used_up(i) => StoredStatus::Redeemed,
            Some(_) => StoredStatus::Active,
        };
        let live_lock = row
            .lock_id
            .filter(|_| row.locked_until.is_some_and(|u| u.millis() > now));
        let seen = (
            row.owner.as_deref(),
            row.status,
            row.redemptions,
            row.claimed_at.map(Timestamp::millis),
            row.claim_expires_at.map(Timestamp::millis),
            live_lock,
        );
        let modelled = (
            c.owner.map(|u| m.world.user(u)),
            status,
            c.uses,
            c.claimed_at,
            c.claim_expires,
            m.live_lock(i, now),
        );
        assert_eq!(seen, modelled, "{} #{}", row.code, row.instance);
    }
    // One owner per code is the schema's; a user never holds more than the book allows.
    for user in 0..m.world.users {
        let held = m.codes.iter().filter(|c| c.owner == Some(user)).count() as i64;
        let live = (0..m.codes.len()).filter(|&i| m.holder(i, now) == Some(user)).count() as i64;
        assert!(
            m.world.max_codes_per_user.is_none_or(|max| live <= max),
            "{} holds {held}",
            m.world.user(user)
        );
    }
}

/// Each user's counters in the book: codes held (lapsed ones until returned), claims today and
/// live redemptions.
pub fn holdings(shared: &Shared, book: &Booked, now: i64) {
    let m = &book.model;
    // The counters are read through a code of the book: one with none left has nothing to show.
    let Some(first) = m.codes.first() else {
        return;
    };
    let code = CodeText::parse(&first.text).expect("a valid code");
    let today = now.div_euclid(DAY);
    for user in 0..m.world.users {
        let name = m.world.user(user);
        let view = shared
            .block_on(shared.service.code_view(&code, name, None))
            .expect("the code as the user sees it");
        let h = view.holdings;
        let claims_today = if h.day == today { h.day_claims } else { 0 };
        let seen = (h.held, claims_today, h.redeemed);
        let modelled = (
            m.codes.iter().filter(|c| c.owner == Some(user)).count() as i64,
            m.claims_today(user, now),
            m.live_redemptions(user),
        );
        assert_eq!(seen, modelled, "{name}'s counters (held, claims today, redeemed)");
    }
}

/// The book's redemption history, rolled-back ones included, newest first: each as the model
/// recorded it.
pub fn history(shared: &Shared, book: &Booked) {
    let m = &book.model;
    let page = shared
        .block_on(shared.service.redemptions(all_redemptions(book.id)))
        .expect("the book's redemptions");
    assert!(
        page.next.is_none(),
        "a sequence makes fewer redemptions than a page holds"
    );
    let newest_first = page.items.windows(2).all(|w| w[0].redeemed_at >= w[1].redeemed_at);
    assert!(newest_first, "the history runs newest first");
    let mut seen: Vec<_> = (page.items.iter())
        .map(|r| {
            let rolled_back = r.rollback.as_ref().map(|b| b.rolled_back_at.millis());
            let applied = r.discount_applied.zip(r.final_price);
            (
                r.redemption_id,
                r.code.clone(),
                r.redeemed_at.millis(),
                applied,
                rolled_back,
            )
        })
        .collect();
    let mut recorded: Vec<_> = (m.redemptions.iter())
        .map(|r| (r.id, m.codes[r.instance].text.clone(), r.at, r.applied, r.rolled_back))
        .collect();
    seen.sort();
    recorded.sort();
    assert_eq!(seen, recorded, "the book's redemption history");
}
