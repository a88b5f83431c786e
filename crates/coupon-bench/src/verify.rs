//! After the load: the invariants money depends on, read straight from the database, and every
//! answer the server acknowledged found there.

use std::collections::HashMap;

use serde::Serialize;

use crate::claim::Claim;
use crate::database::Connection;

/// A book the bench sold, and what the server acknowledged for it.
pub struct SoldBook<'a> {
    pub label: &'static str,
    pub id: &'a str,
    pub claims: &'a [Claim],
    pub redeems: u64,
    /// How many codes must have an owner, when every user was run through.
    pub claimed_exactly: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub book: &'static str,
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

pub async fn check(db: &Connection, book: &SoldBook<'_>) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let mut check = |name, passed, detail: String| {
        checks.push(Check {
            book: book.label,
            name,
            passed,
            detail,
        })
    };
    let id = book.id;
    let count = |sql: &'static str| async move { Ok::<_, anyhow::Error>(db.scalar(sql, id).await?.unwrap_or(0)) };

    let claimed = count("SELECT count(*) FROM codes WHERE book_id = {book} AND owner IS NOT NULL").await?;
    if let Some(expected) = book.claimed_exactly {
        check(
            "exactly min(codes, users) codes claimed",
            claimed == expected as i64,
            format!("{claimed} codes have an owner, expected {expected}"),
        );
    }

    let per_user = db
        .scalar("SELECT max_codes_per_user FROM books WHERE id = {book}", id)
        .await?;
    let most_held = count(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM codes \
         WHERE book_id = {book} AND owner IS NOT NULL GROUP BY owner) AS held",
    )
    .await?;
    check(
        "no user over max_codes_per_user",
        per_user.is_none_or(|limit| most_held <= limit),
        format!("most held by one user {most_held}, limit {}", limit_text(per_user)),
    );

    let twice = count(
        "SELECT count(*) FROM (SELECT code FROM codes \
         WHERE book_id = {book} AND owner IS NOT NULL GROUP BY code HAVING count(*) > 1) AS twice",
    )
    .await?;
    check(
        "no code owned twice",
        twice == 0,
        format!("{twice} code texts with more than one owner"),
    );

    let overused = count(
        "SELECT count(*) FROM codes c JOIN books b ON b.id = c.book_id \
         WHERE c.book_id = {book} AND c.redemptions > b.max_redemptions_per_code",
    )
    .await?;
    check(
        "no code over max_redemptions_per_code",
        overused == 0,
        format!("{overused} codes redeemed too often"),
    );

    let per_user_redemptions = db
        .scalar("SELECT max_redemptions_per_user FROM books WHERE id = {book}", id)
        .await?;
    let over_limit = count(
        "SELECT count(*) FROM user_books u JOIN books b ON b.id = u.book_id \
         WHERE u.book_id = {book} AND u.redeemed > b.max_redemptions_per_user",
    )
    .await?;
    check(
        "no user over max_redemptions_per_user",
        over_limit == 0,
        format!(
            "{over_limit} users over the limit ({})",
            limit_text(per_user_redemptions)
        ),
    );

    let recorded = count("SELECT count(*) FROM redemptions WHERE book_id = {book}").await?;
    check(
        "one redemption record per acknowledged redeem",
        recorded == book.redeems as i64,
        format!("{recorded} records, {} redeems acknowledged", book.redeems),
    );

    let owners: HashMap<String, String> = db
        .pairs(
            "SELECT code, owner FROM codes WHERE book_id = {book} AND owner IS NOT NULL",
            id,
        )
        .await?
        .into_iter()
        .collect();
    let lost = book
        .claims
        .iter()
        .filter(|c| owners.get(&c.code) != Some(&c.user))
        .count();
    check(
        "every acknowledged claim is its code's owner",
        lost == 0,
        format!("{lost} of {} acknowledged claims missing", book.claims.len()),
    );

    Ok(checks)
}

fn limit_text(limit: Option<i64>) -> String {
    limit.map_or_else(|| "none set".to_owned(), |l| l.to_string())
}
