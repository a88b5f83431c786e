//! The OpenAPI 3.1 document, generated from the handlers' annotations and completed here with
//! what they cannot say (the answers every route shares, headers, the rules between fields).
//! `links` adds the links between operations; `serve` serves the document and Swagger UI, from
//! assets compiled into the binary (nothing is fetched at build or run time).

mod links;
mod serve;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes;
use crate::wire::WebhookUrls;
use links::Links;

pub use serve::{asset, openapi, ui};

#[derive(OpenApi)]
#[openapi(
    info(title = "coupond", description = "Self-hosted coupon service: books of codes that users claim, lock for checkout and redeem."),
    paths(
        routes::books::create, routes::books::show, routes::books::update, routes::books::upload,
        routes::books::generate, routes::books::search,
        routes::pool::list, routes::pool::import, routes::pool::remove,
        routes::claims::assign, routes::claims::assign_code, routes::lock::lock, routes::lock::unlock,
        routes::redeem::redeem, routes::redeem::validate,
        routes::users::coupons, routes::health::live, routes::health::ready,
        routes::catalog::list,
        routes::rollback::rollback, routes::redemptions::of_book, routes::redemptions::of_user,
        routes::events::list,
        routes::webhooks::create, routes::webhooks::list, routes::webhooks::show, routes::webhooks::delete,
        routes::webhooks::deliveries, routes::webhooks::retry,
    ),
    components(schemas(crate::error::Problem, crate::wire::DiscountType)),
    modifiers(&BearerAuth, &Answers, &Links, &BookRules, &RequestIds),
    tags((name = "books", description = "Coupon books (campaigns) and their codes; admin only, search for anyone signed in"),
         (name = "codes", description = "Claim, lock, unlock, redeem and validate codes"),
         (name = "users", description = "What a user holds"),
         (name = "redemptions", description = "Redemption history, by book and by user, and rollbacks"),
         (name = "events", description = "What happened, written with each change: the feed, for consumers that pull; admin only"),
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

/// The answers every operation but health may give besides its own: 413 for a body over the
/// limit, 429 when throttled, 503 when the service sheds load; each a problem+json, the two
/// last with when to come back.
struct Answers;

/// Operations whose every body field is optional: they take no body at all (read as `{}`).
const OPTIONAL_BODIES: [&str; 6] = ["assign_code", "lock", "unlock", "redeem", "rollback", "update"];

impl Modify for Answers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let seconds = |description: &str| {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                .description(Some(description))
                .build()
        };
        let problem = |description: &str| {
            ResponseBuilder::new().description(description).content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
        };
        let retry = "Seconds to wait before trying again.";
        let limited = problem(
            "rate_limited: the caller's request budget is spent; or too_many_failed_lookups: too \
             many codes tried that do not exist (admins are exempt from that budget)",
        )
        .header("Retry-After", seconds(retry))
        .header("RateLimit-Limit", seconds("Requests the budget holds."))
        .header("RateLimit-Remaining", seconds("Requests left in the budget."))
        .header("RateLimit-Reset", seconds("Seconds until the budget is full again."))
        .build();
        let unavailable = problem("overloaded or unavailable: the service sheds load, or its database does not answer")
            .header("Retry-After", seconds(retry))
            .build();
        let too_large = problem("payload_too_large: the body is over the limit").build();
        let components = doc.components.get_or_insert_with(Default::default);
        components.responses.insert("TooLarge".into(), RefOr::T(too_large));
        components.responses.insert("Throttled".into(), RefOr::T(limited));
        components.responses.insert("Unavailable".into(), RefOr::T(unavailable));
        let answer = |name: &str| RefOr::Ref(Ref::new(format!("#/components/responses/{name}")));
        for (path, item) in doc.paths.paths.iter_mut() {
            if path == "/healthz" || path == "/readyz" {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                if OPTIONAL_BODIES.contains(&operation.operation_id.as_deref().unwrap_or_default()) {
                    if let Some(body) = operation.request_body.as_mut() {
                        body.required = Some(Required::False);
                    }
                }
                let responses = &mut operation.responses.responses;
                if operation.request_body.is_some() {
                    responses.entry("413".into()).or_insert_with(|| answer("TooLarge"));
                }
                responses.insert("429".into(), answer("Throttled"));
                responses.insert("503".into(), answer("Unavailable"));
            }
        }
    }
}

/// `NewBook` with the rules between its fields (`NewBook::mode_rules`).
struct BookRules;

impl Modify for BookRules {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let schemas = &mut doc.components.get_or_insert_with(Default::default).schemas;
        let fields = schemas.remove("NewBook").expect("NewBook is in the document");
        let whole = AllOfBuilder::new()
            .item(fields)
            .item(crate::wire::NewBook::mode_rules())
            .description(Some("`POST /coupons`: a book as an admin describes it."));
        schemas.insert("NewBook".into(), whole.into());
    }
}

/// `X-Request-Id` on every answer: `telemetry::observe`, the outermost layer, sets it on each.
struct RequestIds;

impl Modify for RequestIds {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let header = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(crate::telemetry::MAX_REQUEST_ID)),
            )
            .description(Some(
                "The request's id, as in the server's log: the request's own X-Request-Id if it \
                 was printable ASCII of at most 200 characters, else a new UUID.",
            ))
            .build();
        let operations = doc.paths.paths.values_mut().flat_map(|item| {
            [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ]
        });
        let inline = operations
            .flatten()
            .flat_map(|op| op.responses.responses.values_mut())
            .filter_map(|r| match r {
                RefOr::T(response) => Some(response),
                RefOr::Ref(_) => None,
            });
        let shared = doc
            .components
            .iter_mut()
            .flat_map(|c| c.responses.values_mut())
            .filter_map(|r| match r {
                RefOr::T(response) => Some(response),
                RefOr::Ref(_) => None,
            });
        for response in inline.chain(shared) {
            response.headers.insert("X-Request-Id".into(), header.clone());
        }
    }
}

/// The document as served. utoipa 5.5 writes a link's fields in snake case (`operation_id`,
/// `request_body`); OpenAPI spells them in camel case, so they are renamed here.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    let operations = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut());
    let responses = operations
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses").and_then(|r| r.as_object_mut()))
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let links = response.get_mut("links").and_then(|l| l.as_object_mut());
        for link in links
            .into_iter()
            .flat_map(|l| l.values_mut())
            .filter_map(|l| l.as_object_mut())
        {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(snake) {
                    link.insert(camel.to_owned(), v);
                }
            }
        }
    }
    doc
}

/// The document a server serves: the one above, with the webhook URL pattern of its own
/// destinations (which literal addresses it accepts depends on the networks its operator allowed).
pub fn served(urls: &WebhookUrls) -> serde_json::Value {
    let mut doc = document();
    doc["components"]["schemas"]["NewEndpoint"]["properties"]["url"]["pattern"] = urls.pattern().into();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API is a contract: a change to the document must be deliberate and reviewed.
    /// `UPDATE_OPENAPI=1 cargo test -p coupon-server` rewrites `docs/openapi.json`.
    #[test]
    fn openapi_document_matches_the_snapshot() {
        let current = serde_json::to_string_pretty(&document()).unwrap() + "\n";
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

        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let bounds = |schema: &str, field: &str| {
            // NewBook is its fields and the rules between them.
            let fields = match &schemas[schema]["allOf"] {
                Value::Array(all) => &all[0],
                _ => &schemas[schema],
            };
            let p = &fields["properties"][field];
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
        let kinds = schemas["Discount"]["oneOf"].as_array().unwrap();
        assert_eq!(kinds.len(), 2, "a schema per discount type");
        for kind in kinds {
            let p = |field: &str| {
                let p = &kind["properties"][field];
                (p["minimum"].clone(), p["maximum"].clone())
            };
            assert_eq!(p("max_discount"), amount);
            assert_eq!(p("min_order_amount"), amount);
        }
        assert_eq!(kinds[1]["properties"]["value"]["maximum"], json!(MAX_AMOUNT));
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
