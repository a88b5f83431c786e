//! The errors a coupon operation can end in. Each has a stable machine code that clients switch on;
//! the HTTP layer maps them to statuses in one place.

use std::fmt;

/// A request that cannot be carried out as asked: bad input or a rule of the book that forbids it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponError {
    #[error("{0}")]
    Invalid(InvalidInput),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the code is not assigned to this user")]
    NotAssignedToUser,
    #[error("the coupon book is not active")]
    BookInactive,
    #[error("the coupon book's validity window has not started")]
    NotStarted,
    #[error("the coupon book has expired")]
    Expired,
    #[error("the user holds as many codes of this book as it allows")]
    UserLimitReached,
    #[error("the user has claimed as many codes of this book today as it allows")]
    DailyLimitReached,
    #[error("the coupon book has no code left to hand out")]
    OutOfStock,
    #[error("the code belongs to another user")]
    CodeTaken,
    #[error("the code is held by a checkout lock")]
    Locked,
    #[error("the code holds no lock")]
    NotLocked,
    #[error("the code has been redeemed as often as it allows")]
    AlreadyRedeemed,
    #[error("the order amount is below the book's minimum")]
    MinOrderNotMet,
    // Well-formed requests that the book as stored refuses: the request alone was not at fault.
    #[error("this book has a minimum order amount, so order_amount is required")]
    OrderAmountRequired,
    #[error("a shared book has one code; codes are not added to it or removed from it")]
    SharedBook,
    /// The book's room: how many codes it holds, of how many, and how many more were asked for.
    #[error("the book holds {held} of its {total} codes; {adding} more would exceed total_codes")]
    TotalCodesExceeded { held: i64, total: i64, adding: i64 },
    #[error("expires_at would fall before the book's starts_at")]
    WindowConflict,
}

impl CouponError {
    /// The stable machine code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            CouponError::Invalid(_) => "invalid_request",
            CouponError::NotFound(_) => "not_found",
            CouponError::NotAssignedToUser => "not_assigned_to_user",
            CouponError::BookInactive => "book_inactive",
            CouponError::NotStarted => "not_started",
            CouponError::Expired => "expired",
            CouponError::UserLimitReached => "user_limit_reached",
            CouponError::DailyLimitReached => "daily_limit_reached",
            CouponError::OutOfStock => "out_of_stock",
            CouponError::CodeTaken => "code_taken",
            CouponError::Locked => "locked",
            CouponError::NotLocked => "not_locked",
            CouponError::AlreadyRedeemed => "already_redeemed",
            CouponError::MinOrderNotMet => "min_order_not_met",
            CouponError::OrderAmountRequired => "order_amount_required",
            CouponError::SharedBook => "shared_book",
            CouponError::TotalCodesExceeded { .. } => "total_codes_exceeded",
            CouponError::WindowConflict => "window_conflict",
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CouponError::Invalid(InvalidInput {
            field,
            message: message.into(),
        })
    }
}

/// Which field of a request was wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
