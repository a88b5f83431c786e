//! A code as one user sees it: the instance they would act on, their counters in its book, and
//! every code they have owned. Lock, unlock and redeem find their code here; validation and a
//! user's coupons read it.

use coupon_core::rules::Holdings;
use coupon_core::{Book, CodeInstance, CodeText, CouponError};
use uuid::Uuid;

use super::Decided;
use crate::backend::Tx;
use crate::rows;
use crate::statements::Q;
use crate::{CodeView, StoreError};

read!(ViewCode { code: CodeText, user_id: String, lock_id: Option<Uuid> } -> CodeView =
    |tx, s| view(tx, &s.code, &s.user_id, s.lock_id).await);
read!(UserCodes { user_id: String } -> Vec<(CodeInstance, Book)> = |tx, s| of_user(tx, &s.user_id).await);

/// The instance of `code` that `user` acts on, locked: one they own (the one under `lock_id`
/// first), else instance 0 so the rules can tell why it is not theirs. An unknown code is the
/// request's refusal.
pub(crate) async fn find_for_user<T: Tx>(
    tx: &T,
    code: &CodeText,
    user: &str,
    lock_id: Option<Uuid>,
) -> Decided<CodeInstance> {
    let code = code.as_str().into();
    let owned = Q::FindOwned {
        code,
        user: user.into(),
        lock_id: lock_id.into(),
    };
    let row = match tx.first(owned).await? {
        Some(row) => row,
        None => match tx.first(Q::CodeZero { code }).await? {
            Some(row) => row,
            None => return Ok(Err(CouponError::NotFound("code"))),
        },
    };
    Ok(Ok(rows::code(&row)?))
}

/// The user's counters in the book (zero if none yet), their row locked if it exists.
pub(crate) async fn holdings<T: Tx>(tx: &T, book_id: Uuid, user: &str) -> Result<Holdings, StoreError> {
    let counters = Q::Holdings {
        book_id: book_id.into(),
        user: user.into(),
    };
    match tx.first(counters).await? {
        Some(row) => rows::holdings(&row),
        None => Ok(Holdings::default()),
    }
}

/// The code as `user` sees it, with its book and the user's counters.
async fn view<T: Tx>(tx: &T, code: &CodeText, user: &str, lock_id: Option<Uuid>) -> Result<CodeView, StoreError> {
    let row = tx
        .first(Q::CodeView {
            code: code.as_str().into(),
            user: user.into(),
            lock_id: lock_id.into(),
        })
        .await?
        .ok_or(StoreError::not_found("code"))?;
    Ok(CodeView {
        code: rows::code(&row)?,
        book: rows::book(&row, "b_")?,
        holdings: rows::holdings(&row)?,
    })
}

/// Every code the user has owned, with its book.
async fn of_user<T: Tx>(tx: &T, user: &str) -> Result<Vec<(CodeInstance, Book)>, StoreError> {
    let rows = tx.query(Q::UserCodes { user: user.into() }).await?;
    rows.iter()
        .map(|r| Ok((rows::code(r)?, rows::book(r, "b_")?)))
        .collect()
}
