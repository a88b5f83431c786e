//! What the reads take and give: a code as one user sees it, searches, and lists a page at a
//! time by keyset.

use coupon_core::discount::DiscountType;
use coupon_core::rules::Holdings;
use coupon_core::{Book, BookStatus, CodeInstance, CodeState, Redemption, Timestamp, UserId};
use uuid::Uuid;

/// Whose redemptions to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedemptionsOf {
    Book(Uuid),
    User(UserId),
}

#[derive(Debug, Clone)]
pub struct RedemptionQuery {
    pub of: RedemptionsOf,
    pub limit: u32,
    /// Continue after this (redeemed_at, id): the list runs newest first.
    pub after: Option<(Timestamp, Uuid)>,
}

/// A book's codes, a page at a time in the order they were added.
#[derive(Debug, Clone)]
pub struct CodeQuery {
    pub book_id: Uuid,
    /// Only codes in this state at `now`.
    pub state: Option<CodeState>,
    pub limit: u32,
    /// Continue after this position.
    pub after: Option<i64>,
}

/// A code as one user sees it: the instance that user would lock or redeem.
#[derive(Debug, Clone)]
pub struct CodeView {
    pub book: Book,
    pub code: CodeInstance,
    pub holdings: Holdings,
}

/// Which books a search looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// What customers may claim: active books inside their window.
    #[default]
    Live,
    /// Every book, whatever its window, in one status or any (the admin's listing).
    All(Option<BookStatus>),
}

#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub scope: Scope,
    pub text: Option<String>,
    pub category: Option<String>,
    pub discount_type: Option<DiscountType>,
    pub limit: u32,
    /// Continue after this (created_at, id).
    pub after: Option<(Timestamp, Uuid)>,
}

/// One page of a list, and where the next one starts (none on the last page).
#[derive(Debug, Clone)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

impl<T, K> Page<T, K> {
    /// A page from a query that asked for `limit + 1` rows: the extra row says there is more, and
    /// the next page starts after the key of this page's last item.
    pub(crate) fn from_overfetch(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(key)
        } else {
            None
        };
        Page { items, next }
    }
}

pub type SearchPage = Page<Book, (Timestamp, Uuid)>;
pub type RedemptionPage = Page<Redemption, (Timestamp, Uuid)>;
pub type CodePage = Page<CodeInstance, i64>;
