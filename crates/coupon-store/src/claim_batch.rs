//! What both backends share in deciding a batch of claims: grouping it by book, and the counter
//! changes its granted claims make.

use std::collections::BTreeMap;

use coupon_core::CouponError;
use uuid::Uuid;

use crate::Claimed;

/// A claim waiting for its book's turn in a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// Its place in the batch.
    pub index: usize,
    /// For `assign/{code}`: the id of the named code's instance 0.
    pub named: Option<i64>,
}

/// Groups a batch's claims by book, in book-id order (the order their rows are locked), given each
/// request's book and named code (`None` when the named code does not exist, answered here).
pub(crate) fn by_book(
    targets: &[Option<(Uuid, Option<i64>)>],
    answers: &mut [Option<Result<Claimed, CouponError>>],
) -> BTreeMap<Uuid, Vec<Pending>> {
    let mut books: BTreeMap<Uuid, Vec<Pending>> = BTreeMap::new();
    for (index, target) in targets.iter().enumerate() {
        match target {
            Some((book, named)) => books.entry(*book).or_default().push(Pending { index, named: *named }),
            None => answers[index] = Some(Err(CouponError::NotFound("code"))),
        }
    }
    books
}

/// How many claims each user was granted, in user-id order: the counters a batch moves. Each
/// granted claim adds one code held and one claim today.
pub(crate) fn granted_per_user<'a>(claimers: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, i64)> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for user in claimers {
        *counts.entry(user).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}
