//! What operators do day to day: roll redemptions back, read histories, list books and codes,
//! take codes out of a pool, and keep their own metadata on books, claims and redemptions.

use std::collections::BTreeMap;
use std::sync::Arc;

use coupon_core::{BookStatus, CodeState, CouponError, Metadata, Redemption, Rollback, Timestamp};
use coupon_store::{
    CodeQuery, NotRemoved, RedemptionQuery, RedemptionsOf, RollbackRequest, Scope, SearchQuery, StoreError,
};
use futures::future::join_all;
use serde_json::json;
use uuid::Uuid;

use crate::{answer, at, redeem_req, user_id, Ctx};

fn meta(pairs: &[(&str, &str)]) -> Metadata {
    let entries: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Metadata::new(entries).unwrap()
}

fn rollback_req(id: Uuid, reason: Option<&str>, now: Timestamp) -> RollbackRequest {
    RollbackRequest {
        redemption_id: id,
        rollback: Rollback::new(reason.map(Into::into), meta(&[("ticket", "T-1")]), now).unwrap(),
        key: None,
    }
}

impl Ctx {
    pub async fn rollback(&self, id: Uuid, now: Timestamp) -> Result<Redemption, CouponError> {
        answer(
            self.store
                .rollback(rollback_req(id, Some("payment declined"), now), now)
                .await,
        )
    }

    /// Every redemption of the book, newest first, through the pages.
    pub async fn history(&self, of: RedemptionsOf) -> Vec<Redemption> {
        let (mut all, mut after) = (Vec::new(), None);
        loop {
            let query = RedemptionQuery {
                of: of.clone(),
                limit: 2,
                after,
            };
            let page = self.store.redemptions(query).await.unwrap();
            all.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return all,
            }
        }
    }
}

pub async fn rollbacks_give_the_use_back(cx: Ctx) {
    let book = cx
        .book(json!({"max_redemptions_per_user": 1, "claim_ttl_seconds": 60}))
        .await;
    cx.store
        .add_codes(book.id, vec!["BACK".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    let mut req = redeem_req("BACK", "alice", Some("o1"), Some(5000), None);
    req.metadata = meta(&[("order_channel", "web")]);
    let first = cx.redeem(req.clone(), at(10)).await.unwrap();
    assert_eq!(cx.stats(book.id, at(11)).await.total_discount_applied, 500);

    // Past the claim's TTL: the code would lapse the moment it is unredeemed, so its claim starts afresh.
    let undone = cx.rollback(first.redemption_id, at(100)).await.unwrap();
    let rollback = undone.rollback.clone().expect("rolled back");
    assert_eq!(
        (rollback.rolled_back_at, rollback.reason.as_deref()),
        (at(100), Some("payment declined"))
    );
    assert_eq!(undone.metadata, meta(&[("order_channel", "web")]));
    let stats = cx.stats(book.id, at(101)).await;
    assert_eq!(
        (
            stats.total_redeemed,
            stats.total_redemptions,
            stats.total_discount_applied
        ),
        (0, 0, 0)
    );
    assert_eq!((stats.total_assigned, stats.available), (1, 0));
    let (code, _) = cx.store.user_codes("alice").await.unwrap().remove(0);
    assert_eq!(code.state(&book, at(101)), CodeState::Active);
    assert_eq!(code.claim_expires_at, Some(at(160)));

    // Repeated, it answers the rollback as it was and counts once.
    assert_eq!(cx.rollback(first.redemption_id, at(120)).await.unwrap(), undone);
    assert_eq!(cx.stats(book.id, at(121)).await.total_redemptions, 0);

    // The same order redeems again: a new redemption, within the user's limit of one.
    let lock = cx.lock("BACK", "alice", at(130)).await.unwrap();
    req.lock_id = Some(lock.lock_id);
    let again = cx.redeem(req.clone(), at(131)).await.unwrap();
    assert_ne!(again.redemption_id, first.redemption_id);
    assert_eq!(again.rollback, None);
    assert_eq!(
        cx.redeem(req, at(132)).await.unwrap(),
        again,
        "a repeat answers the new one"
    );
    let history = cx.history(RedemptionsOf::Book(book.id)).await;
    assert_eq!(history, vec![again.clone(), undone]);
    assert_eq!(cx.stats(book.id, at(133)).await.total_redemptions, 1);

    assert_eq!(
        cx.rollback(Uuid::now_v7(), at(140)).await.unwrap_err(),
        CouponError::NotFound("redemption")
    );
}

pub async fn concurrent_rollbacks_count_once(cx: Ctx) {
    let book = cx.book(json!({"max_redemptions_per_user": 1})).await;
    cx.store
        .add_codes(book.id, vec!["ONCE".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    let redemption = cx
        .redeem(redeem_req("ONCE", "alice", Some("o1"), Some(1000), None), at(1))
        .await
        .unwrap();
    let cx = Arc::new(cx);
    let tasks = (0..20).map(|_| {
        let cx = cx.clone();
        tokio::spawn(async move { cx.rollback(redemption.redemption_id, at(2)).await })
    });
    let answers: Vec<Redemption> = join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert!(answers.iter().all(|a| a == &answers[0] && a.rollback.is_some()));
    let stats = cx.stats(book.id, at(3)).await;
    assert_eq!((stats.total_redeemed, stats.total_redemptions), (0, 0));
    // The user's count dropped once, not twenty times: one redemption is allowed again, not two.
    cx.redeem(redeem_req("ONCE", "alice", Some("o2"), Some(1000), None), at(4))
        .await
        .unwrap();
    let other = cx.book(json!({"max_redemptions_per_user": 1})).await;
    assert_eq!(cx.stats(other.id, at(4)).await.total_redemptions, 0);
}

/// Rollbacks of a code's redemptions race new redemptions of it; whatever the order, the code's
/// uses, the book's counts and the history agree, and the code's limit holds.
pub async fn rollbacks_racing_redemptions_keep_counts_exact(cx: Ctx) {
    let book = cx.book(json!({"max_redemptions_per_code": 3})).await;
    cx.store
        .add_codes(book.id, vec!["RACE".into()], at(0), None)
        .await
        .unwrap();
    cx.claim(&book, "alice", at(0)).await.unwrap();
    let cx = Arc::new(cx);
    let mut order = 0;
    for round in 0..4 {
        let live: Vec<Uuid> = cx
            .history(RedemptionsOf::Book(book.id))
            .await
            .into_iter()
            .filter(|r| r.rollback.is_none())
            .map(|r| r.redemption_id)
            .collect();
        let now = at(10 + round);
        let rollbacks = live.into_iter().map(|id| {
            let cx = cx.clone();
            tokio::spawn(async move { cx.rollback(id, now).await.map(drop) })
        });
        let redeems = (0..4).map(|_| {
            order += 1;
            let (cx, order) = (cx.clone(), format!("o{order}"));
            tokio::spawn(async move {
                let req = redeem_req("RACE", "alice", Some(&order), Some(1000), None);
                cx.redeem(req, now).await.map(drop)
            })
        });
        let answers = join_all(rollbacks.chain(redeems).collect::<Vec<_>>()).await;
        for answer in answers {
            match answer.unwrap() {
                Ok(()) | Err(CouponError::AlreadyRedeemed) => {}
                Err(e) => panic!("unexpected refusal: {e:?}"),
            }
        }
        let history = cx.history(RedemptionsOf::Book(book.id)).await;
        let live = history.iter().filter(|r| r.rollback.is_none()).count() as i64;
        let (code, _) = cx.store.user_codes("alice").await.unwrap().remove(0);
        let stats = cx.stats(book.id, now).await;
        assert!(live <= 3, "round {round}: {live} live redemptions of a code allowed 3");
        assert_eq!(code.redemptions, live, "round {round}: the code's uses");
        assert_eq!(stats.total_redemptions, live, "round {round}: the book's count");
        assert_eq!(stats.total_redeemed, i64::from(live == 3), "round {round}");
    }
}

pub async fn histories_page_newest_first(cx: Ctx) {
    let (one, two) = (
        cx.book(json!({"max_codes_per_user": null})).await,
        cx.book(json!({"max_codes_per_user": null})).await,
    );
    cx.store
        .add_codes(one.id, vec!["A1".into(), "A2".into(), "A3".into()], at(0), None)
        .await
        .unwrap();
    cx.store
        .add_codes(two.id, vec!["B1".into(), "B2".into()], at(0), None)
        .await
        .unwrap();
    let mut expected_alice = Vec::new();
    let mut expected_one = Vec::new();
    for (i, (book, user)) in [
        (&one, "alice"),
        (&one, "bob"),
        (&two, "alice"),
        (&one, "alice"),
        (&two, "bob"),
    ]
    .into_iter()
    .enumerate()
    {
        let claimed = cx.claim(book, user, at(i as i64)).await.unwrap();
        let req = redeem_req(&claimed.code.code, user, Some("o"), None, None);
        let r = cx.redeem(req, at(100 + i as i64)).await.unwrap();
        if user == "alice" {
            expected_alice.insert(0, r.clone());
        }
        if book.id == one.id {
            expected_one.insert(0, r);
        }
    }
    assert_eq!(cx.history(RedemptionsOf::Book(one.id)).await, expected_one);
    assert_eq!(cx.history(RedemptionsOf::User(user_id("alice"))).await, expected_alice);
    assert!(cx.history(RedemptionsOf::User(user_id("nobody"))).await.is_empty());
    let unknown = RedemptionQuery {
        of: RedemptionsOf::Book(Uuid::now_v7()),
        limit: 10,
        after: None,
    };
    assert!(matches!(
        cx.store.redemptions(unknown).await,
        Err(StoreError::Rejected(CouponError::NotFound("coupon book")))
    ));
}

pub async fn admins_list_every_book(cx: Ctx) {
    let live = cx.book(json!({"name": "Live"})).await;
    let paused = cx.book(json!({"name": "Paused", "status": "paused"})).await;
    let over = cx
        .book(json!({"name": "Over", "expires_at": "2026-06-01T12:00:00.500Z"}))
        .await;
    let later = cx
        .book(json!({"name": "Later", "starts_at": "2027-01-01T00:00:00Z"}))
        .await;
    let list = |scope| {
        let store = &cx.store;
        async move {
            let query = SearchQuery {
                scope,
                limit: 10,
                ..Default::default()
            };
            let page = store.search_books(query, at(10)).await.unwrap();
            page.items.into_iter().map(|b| b.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(Scope::All(None)).await,
        vec![later.id, over.id, paused.id, live.id]
    );
    assert_eq!(list(Scope::All(Some(BookStatus::Paused))).await, vec![paused.id]);
    assert_eq!(
        list(Scope::All(Some(BookStatus::Active))).await,
        vec![later.id, over.id, live.id]
    );
    assert_eq!(
        list(Scope::Live).await,
        vec![live.id],
        "customers see what they may claim"
    );
}

pub async fn codes_are_listed_by_state(cx: Ctx) {
    let book = cx
        .book(json!({"max_codes_per_user": null, "claim_ttl_seconds": 60, "expires_at": "2026-06-01T13:00:00Z"}))
        .await;
    let codes: Vec<String> = ["C1", "C2", "C3", "C4", "C5"].map(String::from).to_vec();
    cx.store.add_codes(book.id, codes.clone(), at(0), None).await.unwrap();
    for code in ["C1", "C2", "C3", "C4"] {
        cx.claim_code(code, "alice", at(0)).await.unwrap();
    }
    cx.lock("C2", "alice", at(50)).await.unwrap();
    cx.redeem(redeem_req("C3", "alice", None, None, None), at(50))
        .await
        .unwrap();
    // At 70 s: C1 lapsed (available), C2 locked, C3 redeemed, C4 lapsed, C5 never claimed.
    let listed = |state: Option<CodeState>, now: Timestamp| {
        let store = &cx.store;
        async move {
            let (mut all, mut after) = (Vec::new(), None);
            loop {
                let query = CodeQuery {
                    book_id: book.id,
                    state,
                    limit: 2,
                    after,
                };
                let (book, page) = store.codes(query, now).await.unwrap();
                all.extend(page.items.into_iter().map(|c| (c.code.clone(), c.state(&book, now))));
                match page.next {
                    Some(next) => after = Some(next),
                    None => return all,
                }
            }
        }
    };
    let now = at(70);
    let all = listed(None, now).await;
    let names: Vec<&str> = all.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["C1", "C2", "C3", "C4", "C5"], "in the order they were added");
    for state in [
        CodeState::Available,
        CodeState::Active,
        CodeState::Locked,
        CodeState::Redeemed,
        CodeState::Expired,
    ] {
        let expected: Vec<_> = all.iter().filter(|(_, s)| *s == state).cloned().collect();
        assert_eq!(listed(Some(state), now).await, expected, "{state:?}");
    }
    assert_eq!(listed(Some(CodeState::Locked), now).await.len(), 1);
    assert_eq!(listed(Some(CodeState::Available), now).await.len(), 3);
    // Once the book is over, every code not redeemed is expired.
    let over = at(3601);
    assert_eq!(listed(Some(CodeState::Expired), over).await.len(), 4);
    assert!(listed(Some(CodeState::Available), over).await.is_empty());
    assert_eq!(
        listed(Some(CodeState::Redeemed), over).await,
        vec![("C3".into(), CodeState::Redeemed)]
    );
}

pub async fn unclaimed_codes_leave_the_pool(cx: Ctx) {
    let book = cx
        .book(json!({"total_codes": 5, "claim_ttl_seconds": 60, "max_codes_per_user": null}))
        .await;
    let codes: Vec<String> = ["R1", "R2", "R3", "R4", "R5"].map(String::from).to_vec();
    cx.store.add_codes(book.id, codes, at(0), None).await.unwrap();
    cx.claim_code("R2", "alice", at(0)).await.unwrap();
    cx.claim_code("R3", "alice", at(0)).await.unwrap();
    cx.redeem(redeem_req("R3", "alice", None, None, None), at(1))
        .await
        .unwrap();
    // R4: redeemed, rolled back, then lapsed back into the pool: free, but history refers to it.
    cx.claim_code("R4", "bob", at(0)).await.unwrap();
    let r = cx
        .redeem(redeem_req("R4", "bob", None, None, None), at(1))
        .await
        .unwrap();
    cx.rollback(r.redemption_id, at(2)).await.unwrap();
    // Carol's claim returns the lapsed R2 and R4 to the pool and is dealt the first, R2.
    assert_eq!(cx.claim(&book, "carol", at(100)).await.unwrap().code.code, "R2");
    let named = ["R5", "R5", "R1", "R3", "NOPE", "R4", "R2"].map(String::from).to_vec();
    let removed = cx.store.remove_codes(book.id, named, at(0), None).await.unwrap();
    assert_eq!(removed.removed, 2, "R5 (named twice) and R1");
    assert_eq!(
        removed.not_removed,
        [
            ("R3", NotRemoved::Redeemed),
            ("NOPE", NotRemoved::Unknown),
            ("R4", NotRemoved::HasHistory),
            ("R2", NotRemoved::Held),
        ]
        .map(|(c, why)| (c.to_owned(), why))
    );
    let stats = cx.stats(book.id, at(101)).await;
    assert_eq!((stats.total_generated, stats.available), (3, 1));
    // The cap stays: the room the removed codes left takes replacements.
    let replacements: Vec<String> = (0..removed.removed).map(|i| format!("NEW{i}")).collect();
    cx.store.add_codes(book.id, replacements, at(0), None).await.unwrap();
    assert_eq!(
        cx.claim_code("R5", "dave", at(102)).await.unwrap_err(),
        CouponError::NotFound("code")
    );
    let shared = cx
        .book(json!({"code_mode": "shared", "code": "ALLOFUS", "total_codes": 3}))
        .await;
    let refused = cx
        .store
        .remove_codes(shared.id, vec!["ALLOFUS".into()], at(0), None)
        .await;
    assert!(matches!(refused, Err(StoreError::Rejected(CouponError::SharedBook))));
}

pub async fn metadata_is_kept_where_it_was_given(cx: Ctx) {
    let mut spec =
        crate::book_spec::new_book(&json!({"name": "Tagged", "discount": {"type": "percentage", "value": 10}}));
    spec.metadata = meta(&[("campaign", "spring")]);
    let book = cx
        .store
        .create_book(spec.into_draft(Uuid::now_v7(), at(0)).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        cx.store.book(book.id).await.unwrap().metadata,
        meta(&[("campaign", "spring")])
    );
    let patch = coupon_core::BookPatch {
        metadata: Some(meta(&[("owner", "ops")])),
        ..Default::default()
    };
    cx.store.update_book(book.id, patch, at(1), None).await.unwrap();
    assert_eq!(
        cx.store.book(book.id).await.unwrap().metadata,
        meta(&[("owner", "ops")])
    );

    cx.store
        .add_codes(book.id, vec!["META".into()], at(0), None)
        .await
        .unwrap();
    let claim = coupon_store::ClaimRequest {
        target: coupon_store::ClaimTarget::Book(book.id),
        user_id: user_id("alice"),
        metadata: meta(&[("crm", "42")]),
        key: None,
    };
    let claimed = answer(cx.store.claim(claim, at(2)).await).unwrap();
    assert_eq!(claimed.code.metadata, meta(&[("crm", "42")]));
    let (held, _) = cx.store.user_codes("alice").await.unwrap().remove(0);
    assert_eq!(held.metadata, meta(&[("crm", "42")]));

    let mut req = redeem_req("META", "alice", Some("o1"), None, None);
    req.metadata = meta(&[("pos", "till-3")]);
    let r = cx.redeem(req, at(3)).await.unwrap();
    let undone = cx.rollback(r.redemption_id, at(4)).await.unwrap();
    let listed = cx.history(RedemptionsOf::User(user_id("alice"))).await;
    assert_eq!(listed, vec![undone.clone()]);
    assert_eq!(listed[0].metadata, meta(&[("pos", "till-3")]));
    assert_eq!(
        listed[0].rollback.as_ref().unwrap().metadata,
        meta(&[("ticket", "T-1")])
    );
}
