//! Rows to domain values, written once for both backends: each backend's row type implements
//! `Fields` (columns by name), and the columns are those `crate::statements` selects.

use coupon_core::rules::Holdings;
use coupon_core::{
    Book, BookStats, BookStatus, CodeInstance, CodeMode, Discount, Metadata, Policies, Redemption, Rollback,
    StoredStatus, Timestamp,
};
use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::backend::Fields;
use crate::StoreError;

/// A column's name under a prefix (`""` for none).
struct Named<'p>(&'p str);

impl Named<'_> {
    fn col<'a>(&self, name: &'a str) -> Cow<'a, str> {
        if self.0.is_empty() {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(format!("{}{name}", self.0))
        }
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {value:?}"))
}

/// A book from its `BOOK_COLUMNS`, each name under `prefix`.
pub(crate) fn book(r: &impl Fields, prefix: &str) -> Result<Book, StoreError> {
    let n = Named(prefix);
    let tags_json = r.string(&n.col("tags"))?;
    let tags: Vec<String> = serde_json::from_str(&tags_json).map_err(|_| corrupt("tags", &tags_json))?;
    let discount_type = r.string(&n.col("discount_type"))?;
    let discount = Discount::from_stored(
        &discount_type,
        r.i64(&n.col("discount_value"))?,
        r.string(&n.col("currency"))?,
        r.opt_i64(&n.col("max_discount"))?,
        r.opt_i64(&n.col("min_order_amount"))?,
    )
    .ok_or_else(|| corrupt("discount_type", &discount_type))?;
    let status = r.string(&n.col("status"))?;
    let mode = r.string(&n.col("code_mode"))?;
    let ts = |c: &str| r.i64(&n.col(c)).map(Timestamp::from_millis);
    let opt_ts = |c: &str| Ok::<_, StoreError>(r.opt_i64(&n.col(c))?.map(Timestamp::from_millis));
    Ok(Book {
        id: r.uuid(&n.col("id"))?,
        name: r.string(&n.col("name"))?,
        description: r.string(&n.col("description"))?,
        category: r.opt_string(&n.col("category"))?,
        tags,
        discount,
        starts_at: opt_ts("starts_at")?,
        expires_at: opt_ts("expires_at")?,
        status: BookStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        code_mode: CodeMode::parse(&mode).ok_or_else(|| corrupt("code_mode", &mode))?,
        code: r.opt_string(&n.col("shared_code"))?,
        code_pattern: r.opt_string(&n.col("code_pattern"))?,
        total_codes: r.opt_i64(&n.col("total_codes"))?,
        low_stock_threshold: r.opt_i64(&n.col("low_stock_threshold"))?,
        policies: Policies {
            max_codes_per_user: r.opt_i64(&n.col("max_codes_per_user"))?,
            max_redemptions_per_user: r.opt_i64(&n.col("max_redemptions_per_user"))?,
            max_redemptions_per_code: r.i64(&n.col("max_redemptions_per_code"))?,
            claims_per_user_per_day: r.opt_i64(&n.col("claims_per_user_per_day"))?,
            claim_ttl_seconds: r.opt_i64(&n.col("claim_ttl_seconds"))?,
            lock_ttl_seconds: r.i64(&n.col("lock_ttl_seconds"))?,
        },
        metadata: metadata(r, &n.col("metadata"))?,
        created_at: ts("created_at")?,
        updated_at: ts("updated_at")?,
    })
}

/// Metadata from its JSON column; none (a code in the pool) reads as empty.
pub(crate) fn metadata(r: &impl Fields, col: &str) -> Result<Metadata, StoreError> {
    // Most rows carry none: every claim of a flash sale reads its code back.
    let json = match r.opt_string(col)? {
        None => return Ok(Metadata::default()),
        Some(json) if json == EMPTY => return Ok(Metadata::default()),
        Some(json) => json,
    };
    let entries: BTreeMap<String, String> = serde_json::from_str(&json).map_err(|_| corrupt(col, &json))?;
    Metadata::new(entries).map_err(|_| corrupt(col, &json))
}

const EMPTY: &str = "{}";

/// Metadata as its column holds it.
pub(crate) fn metadata_json(metadata: &Metadata) -> String {
    if metadata.is_empty() {
        return EMPTY.to_owned();
    }
    serde_json::to_string(metadata.entries()).expect("a map of strings serializes")
}

/// A code instance from its `CODE_COLUMNS`.
pub(crate) fn code(r: &impl Fields) -> Result<CodeInstance, StoreError> {
    let status = r.string("status")?;
    let opt_ts = |c: &str| Ok::<_, StoreError>(r.opt_i64(c)?.map(Timestamp::from_millis));
    Ok(CodeInstance {
        id: r.i64("id")?,
        book_id: r.uuid("book_id")?,
        code: r.string("code")?,
        instance: r.i64("instance")?,
        status: StoredStatus::parse(&status).ok_or_else(|| corrupt("code status", &status))?,
        owner: r.opt_string("owner")?,
        claimed_at: opt_ts("claimed_at")?,
        claim_expires_at: opt_ts("claim_expires_at")?,
        lock_id: r.opt_uuid("lock_id")?,
        locked_until: opt_ts("locked_until")?,
        redemptions: r.i64("redemptions")?,
        metadata: metadata(r, "metadata")?,
    })
}

/// A user's counters from `HOLDINGS_COLUMNS`; none yet (a missing row of a join) reads as zero.
pub(crate) fn holdings(r: &impl Fields) -> Result<Holdings, StoreError> {
    let Some(held) = r.opt_i64("held")? else {
        return Ok(Holdings::default());
    };
    Ok(Holdings {
        held,
        day: r.i64("day")?,
        day_claims: r.i64("day_claims")?,
        redeemed: r.i64("redeemed")?,
    })
}

/// Book stats from the counts of `Q::BookStats`.
pub(crate) fn stats(r: &impl Fields) -> Result<BookStats, StoreError> {
    Ok(BookStats::from_counts(
        r.i64("instances")?,
        r.i64("redeemed")?,
        r.i64("locked")?,
        r.i64("active")?,
        r.i64("redemptions")?,
        r.i64("discount_applied")?,
    ))
}

pub(crate) fn redemption(r: &impl Fields) -> Result<Redemption, StoreError> {
    Ok(Redemption {
        redemption_id: r.uuid("id")?,
        code: r.string("code")?,
        coupon_book_id: r.uuid("book_id")?,
        user_id: r.string("user_id")?,
        order_id: r.opt_string("order_id")?,
        order_amount: r.opt_i64("order_amount")?,
        discount_applied: r.opt_i64("discount_applied")?,
        final_price: r.opt_i64("final_price")?,
        redeemed_at: Timestamp::from_millis(r.i64("redeemed_at")?),
        metadata: metadata(r, "metadata")?,
        rollback: match r.opt_i64("rolled_back_at")? {
            None => None,
            Some(at) => Some(Rollback {
                rolled_back_at: Timestamp::from_millis(at),
                reason: r.opt_string("rollback_reason")?,
                metadata: metadata(r, "rollback_metadata")?,
            }),
        },
    })
}

/// The words of a free-text query, lower-cased, with everything else dropped, so that user input
/// is never read as full-text query syntax on either backend. Every word must match.
pub(crate) fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}
