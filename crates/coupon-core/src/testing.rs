//! Books for the unit tests of this crate.

use uuid::Uuid;

use crate::{Book, BookDraft, CouponError, Discount, DiscountKind, NewBook, Timestamp};

pub fn ten_percent() -> Discount {
    Discount::new(
        DiscountKind::Percentage { basis_points: 1000 },
        "USD".into(),
        None,
        None,
    )
    .unwrap()
}

/// The draft of a book named "S" with 10 % off, as `edit` changes it, created at 0.
pub fn draft(edit: impl FnOnce(&mut NewBook)) -> Result<BookDraft, CouponError> {
    let mut new = NewBook::new("S", ten_percent());
    edit(&mut new);
    new.into_draft(Uuid::nil(), Timestamp::from_millis(0))
}

pub fn book(edit: impl FnOnce(&mut NewBook)) -> Book {
    draft(edit).expect("a valid book").book
}
