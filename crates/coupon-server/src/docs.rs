//! The OpenAPI 3.1 document, generated from the handlers' annotations, and Swagger UI served from
//! assets compiled into the binary (nothing is fetched at build or run time).

use std::sync::OnceLock;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::extract::Path;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "coupond", description = "Self-hosted coupon service: books of codes that users claim, lock for checkout and redeem."),
    paths(
        routes::books::create, routes::books::show, routes::books::update, routes::books::upload,
        routes::books::generate, routes::books::search,
        routes::pool::list, routes::pool::import, routes::pool::remove,
        routes::codes::assign, routes::codes::assign_code, routes::codes::lock, routes::codes::unlock,
        routes::codes::redeem, routes::codes::validate,
        routes::users::coupons, routes::health::live, routes::health::ready,
        routes::catalog::list,
        routes::redemptions::rollback, routes::redemptions::of_book, routes::redemptions::of_user,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    tags((name = "books", description = "Coupon books (campaigns) and their codes; admin only, search for anyone signed in"),
         (name = "codes", description = "Claim, lock, unlock, redeem and validate codes"),
         (name = "users", description = "What a user holds"),
         (name = "redemptions", description = "Redemption history, by book and by user, and rollbacks"),
         (name = "health", description = "Liveness and readiness"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

pub async fn openapi() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serializes"));
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str()).into_response()
}

const UI_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>coupond API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.onload = () => { window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#ui" }); };</script>
</body></html>"##;

pub async fn ui() -> Html<&'static str> {
    Html(UI_PAGE)
}

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "swagger-ui-bundle.js" => (
            include_bytes!("../vendor/swagger-ui/swagger-ui-bundle.js"),
            "text/javascript",
        ),
        "swagger-ui.css" => (include_bytes!("../vendor/swagger-ui/swagger-ui.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API is a contract: a change to the document must be deliberate and reviewed.
    /// `UPDATE_OPENAPI=1 cargo test -p coupon-server` rewrites `docs/openapi.json`.
    #[test]
    fn openapi_document_matches_the_snapshot() {
        let current = ApiDoc::openapi().to_pretty_json().unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let snapshot = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            snapshot == current,
            "docs/openapi.json is out of date: run UPDATE_OPENAPI=1 cargo test -p coupon-server"
        );
    }

    /// Schema bounds are literals (utoipa takes no constants): they must be the limits the domain
    /// enforces.
    #[test]
    fn schema_bounds_are_the_domain_limits() {
        use coupon_core::amount::MAX_AMOUNT;
        use coupon_core::book::MAX_SUPPLY;
        use coupon_core::draft::{MAX_CLAIM_TTL, MAX_LIMIT, MAX_LOCK_TTL};
        use coupon_core::metadata::{MAX_KEY, MAX_KEYS, MAX_VALUE};
        use coupon_core::redemption::MAX_REASON;
        use coupon_core::user::MAX_USER_ID;
        use serde_json::{json, Value};

        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let bounds = |schema: &str, field: &str| {
            let p = &schemas[schema]["properties"][field];
            (p["minimum"].clone(), p["maximum"].clone())
        };
        let limit = (json!(1), json!(MAX_LIMIT));
        for field in [
            "max_codes_per_user",
            "max_redemptions_per_user",
            "max_redemptions_per_code",
            "claims_per_user_per_day",
        ] {
            assert_eq!(bounds("NewBook", field), limit, "{field}");
        }
        assert_eq!(bounds("NewBook", "total_codes"), (json!(1), json!(MAX_SUPPLY)));
        assert_eq!(bounds("NewBook", "claim_ttl_seconds"), (json!(1), json!(MAX_CLAIM_TTL)));
        assert_eq!(bounds("NewBook", "lock_ttl_seconds"), (json!(1), json!(MAX_LOCK_TTL)));
        let amount = (json!(0), json!(MAX_AMOUNT));
        assert_eq!(bounds("Discount", "max_discount"), amount);
        assert_eq!(bounds("Discount", "min_order_amount"), amount);
        assert_eq!(bounds("RedeemRequestBody", "order_amount"), amount);
        let generate = &schemas["GenerateCodes"]["properties"]["count"];
        assert_eq!(generate["maximum"], json!(MAX_SUPPLY));
        for body in [
            "AssignRequest",
            "AssignCodeBody",
            "ForUser",
            "UnlockRequestBody",
            "RedeemRequestBody",
        ] {
            let user_id = &schemas[body]["properties"]["user_id"];
            assert_eq!(
                (&user_id["minLength"], &user_id["maxLength"]),
                (&json!(1), &json!(MAX_USER_ID)),
                "{body}"
            );
        }
        let validate: &Vec<Value> = doc["paths"]["/coupons/validate/{code}"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let param = |name: &str| &validate.iter().find(|p| p["name"] == name).unwrap()["schema"];
        assert_eq!(param("order_amount")["maximum"], json!(MAX_AMOUNT));
        assert_eq!(param("user_id")["maxLength"], json!(MAX_USER_ID));

        let metadata = &schemas["Metadata"];
        assert_eq!(metadata["maxProperties"], json!(MAX_KEYS));
        assert_eq!(metadata["propertyNames"]["minLength"], json!(1));
        assert_eq!(metadata["propertyNames"]["maxLength"], json!(MAX_KEY));
        assert_eq!(metadata["additionalProperties"]["maxLength"], json!(MAX_VALUE));
        assert_eq!(
            schemas["RollbackRequestBody"]["properties"]["reason"]["maxLength"],
            json!(MAX_REASON)
        );
        let page = (json!(1), json!(crate::routes::page::MAX_PAGE));
        for (path, method) in [
            ("/coupons", "get"),
            ("/coupons/search", "get"),
            ("/coupons/{book_id}/redemptions", "get"),
            ("/users/{user_id}/redemptions", "get"),
        ] {
            let params: &Vec<Value> = doc["paths"][path][method]["parameters"].as_array().unwrap();
            let limit = &params.iter().find(|p| p["name"] == "limit").unwrap()["schema"];
            assert_eq!((limit["minimum"].clone(), limit["maximum"].clone()), page, "{path}");
        }
    }
}
