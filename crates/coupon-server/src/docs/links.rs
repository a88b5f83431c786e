//! The links between operations in the OpenAPI document, for the readers that follow them.

use serde_json::json;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::RefOr;
use utoipa::Modify;

/// The links the stateful reader of the document (a client generator, a fuzzer) follows: from the
/// operations that make a book, a claim, a lock and a redemption to those that take its id or code.
pub(super) struct Links;

impl Links {
    const BOOK: &'static str = "$response.body#/coupon_book_id";

    fn add(doc: &mut utoipa::openapi::OpenApi, from: &str, status: &str, to: &str, link: LinkBuilder) {
        let operation = operation(doc, from);
        let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) else {
            panic!("{from} answers {status}");
        };
        response
            .links
            .insert(to.to_owned(), RefOr::T(link.operation_id(to).build()));
    }
}

fn operation<'a>(doc: &'a mut utoipa::openapi::OpenApi, id: &str) -> &'a mut Operation {
    doc.paths
        .paths
        .values_mut()
        .flat_map(|item| [&mut item.get, &mut item.post, &mut item.patch])
        .flatten()
        .find(|op| op.operation_id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no operation {id}"))
}

impl Modify for Links {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let link = LinkBuilder::new;
        for to in [
            "show",
            "update",
            "generate",
            "list_codes",
            "import_codes",
            "remove_codes",
            "book_redemptions",
        ] {
            Links::add(doc, "create", "201", to, link().parameter("book_id", Self::BOOK));
        }
        for to in ["upload", "assign"] {
            let body = json!({"coupon_book_id": Self::BOOK});
            Links::add(doc, "create", "201", to, link().request_body(Some(body)));
        }
        // Once codes are in, the book has something to claim.
        let book_in_body = json!({"coupon_book_id": "$request.body#/coupon_book_id"});
        Links::add(doc, "upload", "201", "assign", link().request_body(Some(book_in_body)));
        for from in ["generate", "import_codes"] {
            let book_in_path = json!({"coupon_book_id": "$request.path.book_id"});
            Links::add(doc, from, "201", "assign", link().request_body(Some(book_in_path)));
        }
        // A claim: its holder locks, unlocks, redeems and validates the code.
        for from in ["assign", "assign_code"] {
            let code = "$response.body#/assigned_code";
            let holder = json!({"user_id": "$response.body#/user_id"});
            for to in ["lock", "unlock", "redeem", "assign_code"] {
                Links::add(
                    doc,
                    from,
                    "201",
                    to,
                    link().parameter("code", code).request_body(Some(holder.clone())),
                );
            }
            let validate = link()
                .parameter("code", code)
                .parameter("user_id", "$response.body#/user_id");
            Links::add(doc, from, "201", "validate", validate);
            Links::add(
                doc,
                from,
                "201",
                "coupons",
                link().parameter("user_id", "$response.body#/user_id"),
            );
        }
        // A lock: redeeming or unlocking presents it.
        for to in ["redeem", "unlock"] {
            let body = json!({"lock_id": "$response.body#/lock_id", "user_id": "$request.body#/user_id"});
            Links::add(
                doc,
                "lock",
                "200",
                to,
                link()
                    .parameter("code", "$response.body#/code")
                    .request_body(Some(body)),
            );
        }
        let validate = link()
            .parameter("code", "$response.body#/code")
            .parameter("lock_id", "$response.body#/lock_id")
            .parameter("user_id", "$request.body#/user_id");
        Links::add(doc, "lock", "200", "validate", validate);
        // A redemption: rolled back, and found in both histories.
        for from in ["redeem", "rollback"] {
            let id = "$response.body#/redemption_id";
            Links::add(
                doc,
                from,
                "200",
                "user_redemptions",
                link().parameter("user_id", "$response.body#/user_id"),
            );
            Links::add(
                doc,
                from,
                "200",
                "book_redemptions",
                link().parameter("book_id", Self::BOOK),
            );
            if from == "redeem" {
                Links::add(doc, from, "200", "rollback", link().parameter("redemption_id", id));
            }
        }
        // After a rollback the use is back: the holder may redeem again.
        let again = link()
            .parameter("code", "$response.body#/code")
            .request_body(Some(json!({"user_id": "$response.body#/user_id"})));
        Links::add(doc, "rollback", "200", "redeem", again);
    }
}
