//! `coupond books`: list, show, create, pause, resume, archive.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use reqwest::{header, Method};
use serde_json::{json, Value};

use super::client::{field, Client};
use super::output::{answer, print, print_json};
use super::table::{cell, record, Table};
use super::Failure;

#[derive(Debug, Subcommand)]
pub enum BooksCommand {
    /// List books, newest first (every page, unless --limit).
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// Words that must all appear in the name, description or tags.
        #[arg(long)]
        query: Option<String>,
        /// At most this many books.
        #[arg(long, value_parser = super::positive)]
        limit: Option<u64>,
    },
    /// A book and the counts over its codes.
    Show { book_id: String },
    /// Create a book from the JSON body of `POST /coupons` in FILE (`-` for stdin); prints its id.
    Create { file: PathBuf },
    /// Stop new claims; held codes may still be locked and redeemed.
    Pause { book_id: String },
    /// Take claims again.
    Resume { book_id: String },
    /// Stop everything but reads, for good.
    Archive { book_id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Status {
    Active,
    Paused,
    Archived,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Paused => "paused",
            Status::Archived => "archived",
        }
    }
}

pub async fn run(client: &Client, command: BooksCommand) -> Result<(), Failure> {
    match command {
        BooksCommand::List { status, query, limit } => {
            let mut q = Vec::new();
            if let Some(s) = status {
                q.push(("status", s.as_str().to_owned()));
            }
            if let Some(text) = query {
                q.push(("q", text));
            }
            let (books, next) = client
                .list(&["coupons"], &q, "results", limit.map(|l| l as usize))
                .await?;
            if client.json {
                return print_json(&json!({"results": books, "next_cursor": next}));
            }
            print(&books_table(&books))
        }
        BooksCommand::Show { book_id } => {
            let book = client.get(&["coupons", &book_id], &[]).await?;
            if client.json {
                return print_json(&book);
            }
            print(&show(&book))
        }
        BooksCommand::Create { file } => {
            let body = super::read_input(&file).await?;
            let request = client
                .request(Method::POST, client.url(&["coupons"]))
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
            let book = client.json(request).await?;
            let id = field(&book, "coupon_book_id")?;
            answer(client.json, &book, || cell(Some(id)))
        }
        BooksCommand::Pause { book_id } => set_status(client, &book_id, Status::Paused).await,
        BooksCommand::Resume { book_id } => set_status(client, &book_id, Status::Active).await,
        BooksCommand::Archive { book_id } => set_status(client, &book_id, Status::Archived).await,
    }
}

async fn set_status(client: &Client, book_id: &str, status: Status) -> Result<(), Failure> {
    let book = client
        .send_json(
            Method::PATCH,
            &["coupons", book_id],
            &json!({"status": status.as_str()}),
        )
        .await?;
    answer(client.json, &book, || {
        format!("{} {}", cell(book.get("coupon_book_id")), cell(book.get("status")))
    })
}

fn books_table(books: &[Value]) -> String {
    let mut table = Table::new(&["ID", "NAME", "STATUS", "MODE", "DISCOUNT", "CODES", "EXPIRES"]).right(&["CODES"]);
    for b in books {
        table.row(vec![
            cell(b.get("coupon_book_id")),
            cell(b.get("name")),
            cell(b.get("status")),
            cell(b.get("code_mode")),
            discount(b.get("discount")),
            cell(b.get("total_codes")),
            cell(b.get("expires_at")),
        ]);
    }
    table.render()
}

/// `15%`, `500 USD`: the value in the book's terms (amounts in minor units, as the API has them).
fn discount(d: Option<&Value>) -> String {
    let Some(d) = d else { return "-".into() };
    let value = cell(d.get("value"));
    let mut text = match d.get("type").and_then(Value::as_str) {
        Some("percentage") => format!("{value}%"),
        _ => match d.get("currency").and_then(Value::as_str) {
            Some(c) => format!("{value} {c}"),
            None => value,
        },
    };
    if let Some(max) = d.get("max_discount").filter(|v| !v.is_null()) {
        text.push_str(&format!(" (max {max})"));
    }
    if let Some(min) = d.get("min_order_amount").filter(|v| !v.is_null()) {
        text.push_str(&format!(" (orders from {min})"));
    }
    text
}

/// The fields people look for first; any others the server sends follow, so nothing is hidden.
const SHOWN_FIRST: [&str; 20] = [
    "coupon_book_id",
    "name",
    "description",
    "status",
    "category",
    "tags",
    "code_mode",
    "code",
    "code_pattern",
    "total_codes",
    "starts_at",
    "expires_at",
    "max_codes_per_user",
    "max_redemptions_per_user",
    "max_redemptions_per_code",
    "claims_per_user_per_day",
    "claim_ttl_seconds",
    "lock_ttl_seconds",
    "created_at",
    "updated_at",
];

fn show(book: &Value) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for key in SHOWN_FIRST {
        if key == "status" {
            fields.push(("discount", discount(book.get("discount"))));
        }
        if let Some(v) = book.get(key) {
            fields.push((key, cell(Some(v))));
        }
    }
    if let Some(obj) = book.as_object() {
        for (k, v) in obj {
            if !SHOWN_FIRST.contains(&k.as_str()) && k != "discount" && k != "stats" {
                fields.push((k, cell(Some(v))));
            }
        }
    }
    let mut text = record(&fields);
    if let Some(stats) = book.get("stats").and_then(Value::as_object) {
        text.push_str("\nstats\n");
        let stats: Vec<(&str, String)> = stats.iter().map(|(k, v)| (k.as_str(), cell(Some(v)))).collect();
        for line in record(&stats).lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discounts_read_as_people_say_them() {
        assert_eq!(
            discount(Some(
                &json!({"type": "percentage", "value": 15, "max_discount": 3000, "min_order_amount": null})
            )),
            "15% (max 3000)"
        );
        assert_eq!(
            discount(Some(&json!({"type": "fixed_amount", "value": 500, "currency": "USD"}))),
            "500 USD"
        );
    }
}
