//! `coupond redemptions`: a book's or a user's redemptions, and rolling one back.

use clap::{ArgGroup, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{answer, print, print_json};
use super::table::{cell, Table};
use super::Failure;

#[derive(Debug, Subcommand)]
pub enum RedemptionsCommand {
    /// Redemptions of a book or of a user, newest first (every page, unless --limit).
    #[command(group(ArgGroup::new("whose").required(true).args(["book", "user"])))]
    List {
        /// The book's redemptions.
        #[arg(long, value_name = "BOOK_ID")]
        book: Option<String>,
        /// The user's redemptions.
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
        /// At most this many redemptions.
        #[arg(long, value_parser = super::positive)]
        limit: Option<u64>,
    },
    /// Undo a redemption: the code may be redeemed again and the user's counts give it back.
    Rollback {
        redemption_id: String,
        /// Why, kept with the redemption.
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn run(client: &Client, command: RedemptionsCommand) -> Result<(), Failure> {
    match command {
        RedemptionsCommand::List { book, user, limit } => {
            let segments = match (&book, &user) {
                (Some(b), _) => ["coupons", b.as_str(), "redemptions"],
                (None, Some(u)) => ["users", u.as_str(), "redemptions"],
                (None, None) => unreachable!("clap requires --book or --user"),
            };
            let (items, next) = client
                .list(&segments, &[], "redemptions", limit.map(|l| l as usize))
                .await?;
            if client.json {
                return print_json(&json!({"redemptions": items, "next_cursor": next}));
            }
            print(&table(&items))
        }
        RedemptionsCommand::Rollback { redemption_id, reason } => {
            let mut body = json!({});
            if let Some(r) = reason {
                body["reason"] = json!(r);
            }
            let url = ["coupons", "redemptions", redemption_id.as_str(), "rollback"];
            let r = client.send_json(Method::POST, &url, &body).await?;
            answer(client.json, &r, || {
                format!(
                    "redemption {} of {} is {}",
                    cell(r.get("redemption_id")),
                    cell(r.get("code")),
                    cell(r.get("status"))
                )
            })
        }
    }
}

fn table(redemptions: &[Value]) -> String {
    let mut t = Table::new(&[
        "REDEMPTION ID",
        "CODE",
        "USER",
        "ORDER",
        "AMOUNT",
        "DISCOUNT",
        "FINAL",
        "REDEEMED AT",
        "STATUS",
    ])
    .right(&["AMOUNT", "DISCOUNT", "FINAL"]);
    for r in redemptions {
        t.row(vec![
            cell(r.get("redemption_id")),
            cell(r.get("code")),
            cell(r.get("user_id")),
            cell(r.get("order_id")),
            cell(r.get("order_amount")),
            cell(r.get("discount_applied")),
            cell(r.get("final_price")),
            cell(r.get("redeemed_at")),
            cell(r.get("status")),
        ]);
    }
    t.render()
}
