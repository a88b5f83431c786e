//! Who may do what, at a glance: every route of the router for each kind of caller (nobody, user
//! A, user B, a service, an admin), with the status the policy promises. A refusal writes nothing
//! and shows B nothing of A's; a route the router serves without a row here fails the test. Then
//! the bodies: none of them lets a caller set what the server owns (ids, owners, states, counters).

use std::collections::BTreeSet;

use coupon_server::Role;
use coupon_store::testing::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::App;

/// The matrix is about who may do what; it runs with throttling off, whose buckets would refuse
/// its fixtures' many claims by one user (throttling has tests of its own).
async fn unthrottled(backend: Backend) -> App {
    App::spawn_throttled(backend, coupon_server::Throttle::disabled()).await
}

const ROLES: [&str; 5] = ["anonymous", "user A", "user B", "service", "admin"];
const ANON: usize = 0;
const USER_A: usize = 1;
const USER_B: usize = 2;
const SERVICE: usize = 3;
const ADMIN: usize = 4;
/// Users A and B, as the placeholders `{A}` and `{B}` name them.
const A: &str = "alice";
const B: &str = "bob";

/// What a row sends: nothing, a JSON body, or a text file (the import).
#[derive(Clone, Copy)]
enum Sent {
    Nothing,
    Json(&'static str),
    Text(&'static str),
}
use Sent::{Json as J, Nothing as N, Text as T};

/// One request in every role: method, the route as `router()` names it, the path sent and its
/// body (placeholders filled from a fresh `Fixture`), and the status for each of `ROLES`.
type Row = (&'static str, &'static str, &'static str, Sent, [u16; 5]);

/// The policy. Admins manage books and their codes; a service (a checkout backend) and an admin act
/// for any user they name and roll redemptions back; a user acts only for itself (403 naming
/// another, 403 `not_assigned_to_user` on another's code); health, metrics and docs are public.
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    // method  route                                          path sent                                      body                                                          anon  A    B    svc  admin
    ("POST",  "/coupons",                                     "/coupons",                                    J(r#"{"name": "New {n}", "discount": {"type": "percentage", "value": 5}}"#),
                                                                                                                                                                           [401, 403, 403, 403, 201]),
    ("GET",   "/coupons",                                     "/coupons",                                    N,                                                            [401, 403, 403, 403, 200]),
    ("GET",   "/coupons/search",                              "/coupons/search",                             N,                                                            [401, 200, 200, 200, 200]),
    ("POST",  "/coupons/codes",                               "/coupons/codes",                              J(r#"{"coupon_book_id": "{book}", "codes": ["M{n}-NEW"]}"#),  [401, 403, 403, 403, 201]),
    ("GET",   "/coupons/{book_id}",                           "/coupons/{book}",                             N,                                                            [401, 403, 403, 403, 200]),
    ("PATCH", "/coupons/{book_id}",                           "/coupons/{book}",                             J(r#"{"name": "Renamed"}"#),                                  [401, 403, 403, 403, 200]),
    ("POST",  "/coupons/{book_id}/codes/generate",            "/coupons/{book}/codes/generate",              J(r#"{"count": 1, "pattern": "G{n}-*****"}"#),                [401, 403, 403, 403, 201]),
    ("GET",   "/coupons/{book_id}/codes",                     "/coupons/{book}/codes",                       N,                                                            [401, 403, 403, 403, 200]),
    ("POST",  "/coupons/{book_id}/codes/import",              "/coupons/{book}/codes/import",                T("M{n}-IMPORTED\n"),                                         [401, 403, 403, 403, 201]),
    ("POST",  "/coupons/{book_id}/codes/remove",              "/coupons/{book}/codes/remove",                J(r#"{"codes": ["{spare}"]}"#),                               [401, 403, 403, 403, 200]),
    ("GET",   "/coupons/{book_id}/redemptions",               "/coupons/{book}/redemptions",                 N,                                                            [401, 403, 403, 403, 200]),
    ("POST",  "/coupons/assign",                              "/coupons/assign",                             J(r#"{"coupon_book_id": "{book}", "user_id": "{A}"}"#),       [401, 201, 403, 201, 201]),
    ("POST",  "/coupons/assign",                              "/coupons/assign",                             J(r#"{"coupon_book_id": "{book}"}"#),                         [401, 201, 201, 201, 201]),
    ("POST",  "/coupons/assign/{code}",                       "/coupons/assign/{free}",                      J(r#"{"user_id": "{A}"}"#),                                   [401, 201, 403, 201, 201]),
    ("POST",  "/coupons/assign/{code}",                       "/coupons/assign/{held}",                      J("{}"),                                                      [401, 409, 409, 409, 409]),
    ("POST",  "/coupons/lock/{code}",                         "/coupons/lock/{held}",                        J(r#"{"user_id": "{A}"}"#),                                   [401, 200, 403, 200, 200]),
    ("POST",  "/coupons/lock/{code}",                         "/coupons/lock/{held}",                        J("{}"),                                                      [401, 200, 403, 403, 403]),
    ("POST",  "/coupons/unlock/{code}",                       "/coupons/unlock/{locked}",                    J(r#"{"user_id": "{A}"}"#),                                   [401, 200, 403, 200, 200]),
    ("POST",  "/coupons/unlock/{code}",                       "/coupons/unlock/{locked}",                    J(r#"{"lock_id": "{lock}"}"#),                                [401, 200, 403, 403, 403]),
    ("POST",  "/coupons/redeem/{code}",                       "/coupons/redeem/{held}",                      J(r#"{"user_id": "{A}", "order_id": "o-{n}", "order_amount": 1000}"#),
                                                                                                                                                                           [401, 200, 403, 200, 200]),
    // A's lock id and A's order id do not make the code B's, nor answer B with A's redemption.
    ("POST",  "/coupons/redeem/{code}",                       "/coupons/redeem/{locked}",                    J(r#"{"lock_id": "{lock}", "order_amount": 1000}"#),          [401, 200, 403, 403, 403]),
    ("POST",  "/coupons/redeem/{code}",                       "/coupons/redeem/{used}",                      J(r#"{"order_id": "{order}", "order_amount": 1000}"#),        [401, 200, 403, 403, 403]),
    ("GET",   "/coupons/validate/{code}",                     "/coupons/validate/{held}?user_id={A}",        N,                                                            [401, 200, 403, 200, 200]),
    // A dry run for whoever asks: `valid: false` for all but A, and nothing of A's in it.
    ("GET",   "/coupons/validate/{code}",                     "/coupons/validate/{locked}?lock_id={lock}",   N,                                                            [401, 200, 200, 200, 200]),
    ("POST",  "/coupons/redemptions/{redemption_id}/rollback", "/coupons/redemptions/{redemption}/rollback", J(r#"{"reason": "payment declined"}"#),                       [401, 403, 403, 200, 200]),
    ("GET",   "/users/{user_id}/coupons",                     "/users/{A}/coupons",                          N,                                                            [401, 200, 403, 200, 200]),
    ("GET",   "/users/{user_id}/coupons",                     "/users/me/coupons",                           N,                                                            [401, 200, 200, 200, 200]),
    // Whose codes before which: another user's path is a 403 whatever the query.
    ("GET",   "/users/{user_id}/coupons",                     "/users/{A}/coupons?status=bogus",             N,                                                            [401, 400, 403, 400, 400]),
    // Query parameters a route does not take change nothing: `me` is still the caller.
    ("GET",   "/users/{user_id}/coupons",                     "/users/me/coupons?user_id={A}",               N,                                                            [401, 200, 200, 200, 200]),
    ("GET",   "/users/{user_id}/redemptions",                 "/users/{A}/redemptions",                      N,                                                            [401, 200, 403, 200, 200]),
    ("GET",   "/users/{user_id}/redemptions",                 "/users/me/redemptions",                       N,                                                            [401, 200, 200, 200, 200]),
    // Every user's claims and redemptions are in the feed: admins only.
    ("GET",   "/events",                                      "/events?limit=5",                             N,                                                            [401, 403, 403, 403, 200]),
    // Webhook endpoints and their deliveries, with their secrets: admins only (unknown ids are 404s).
    ("POST",  "/webhooks",                                    "/webhooks",                                   J(r#"{"url": "http://crm.example:9/m{n}", "events": ["*"]}"#), [401, 403, 403, 403, 201]),
    ("GET",   "/webhooks",                                    "/webhooks",                                   N,                                                            [401, 403, 403, 403, 200]),
    ("GET",   "/webhooks/{webhook_id}",                       "/webhooks/018f0000-0000-7000-8000-000000000000", N,                                                         [401, 403, 403, 403, 404]),
    ("DELETE", "/webhooks/{webhook_id}",                      "/webhooks/018f0000-0000-7000-8000-000000000000", N,                                                         [401, 403, 403, 403, 404]),
    ("GET",   "/webhooks/{webhook_id}/deliveries",            "/webhooks/018f0000-0000-7000-8000-000000000000/deliveries", N,                                              [401, 403, 403, 403, 404]),
    ("POST",  "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
                                                              "/webhooks/018f0000-0000-7000-8000-000000000000/deliveries/018f0000-0000-7000-8000-000000000001/retry", N,
                                                                                                                                                                           [401, 403, 403, 403, 404]),
    ("GET",   "/healthz",                                     "/healthz",                                    N,                                                            [200, 200, 200, 200, 200]),
    ("GET",   "/readyz",                                      "/readyz",                                     N,                                                            [200, 200, 200, 200, 200]),
    // Prometheus' scrape: open unless a metrics token is configured (a test of its own).
    ("GET",   "/metrics",                                     "/metrics",                                    N,                                                            [200, 200, 200, 200, 200]),
    ("GET",   "/openapi.json",                                "/openapi.json",                               N,                                                            [200, 200, 200, 200, 200]),
    ("GET",   "/docs",                                        "/docs",                                       N,                                                            [200, 200, 200, 200, 200]),
    ("GET",   "/docs/{file}",                                 "/docs/swagger-ui.css",                        N,                                                            [200, 200, 200, 200, 200]),
];

/// A book as the matrix needs it: a free code, a spare one (nobody ever held it), and three of
/// A's: one held, one held and locked, one held and redeemed. Codes are numbered by fixture, so
/// fixtures never share one.
struct Fixture {
    n: usize,
    book: String,
    free: String,
    spare: String,
    held: String,
    locked: String,
    used: String,
    lock: String,
    order: String,
    redemption: String,
}

impl Fixture {
    async fn new(app: &App, n: usize) -> Fixture {
        let book = app
            .book(json!({"name": format!("Matrix {n}"), "max_codes_per_user": null}))
            .await;
        let code = |what: &str| format!("M{n}-{what}");
        let (free, spare) = (code("FREE"), code("SPARE"));
        let (held, locked, used) = (code("ALICE-HELD"), code("ALICE-LOCKED"), code("ALICE-USED"));
        app.upload(&book, &[&free, &spare, &held, &locked, &used]).await;
        let alice = app.user(A);
        for code in [&held, &locked, &used] {
            let r = app.post(&format!("/coupons/assign/{code}"), &alice, json!({})).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
        let lock = app.post(&format!("/coupons/lock/{locked}"), &alice, json!({})).await;
        assert_eq!(lock.status, StatusCode::OK, "{}", lock.body);
        let order = format!("alice-order-{n}");
        let redeemed = app
            .post(
                &format!("/coupons/redeem/{used}"),
                &alice,
                json!({"order_id": order, "order_amount": 1000}),
            )
            .await;
        assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.body);
        Fixture {
            n,
            book,
            free,
            spare,
            held,
            locked,
            used,
            lock: lock.body["lock_id"].as_str().unwrap().to_owned(),
            order,
            redemption: redeemed.body["redemption_id"].as_str().unwrap().to_owned(),
        }
    }

    /// `template` with its placeholders filled.
    fn fill(&self, template: &str) -> String {
        [
            ("{n}", self.n.to_string()),
            ("{book}", self.book.clone()),
            ("{free}", self.free.clone()),
            ("{spare}", self.spare.clone()),
            ("{held}", self.held.clone()),
            ("{locked}", self.locked.clone()),
            ("{used}", self.used.clone()),
            ("{lock}", self.lock.clone()),
            ("{order}", self.order.clone()),
            ("{redemption}", self.redemption.clone()),
            ("{A}", A.to_owned()),
            ("{B}", B.to_owned()),
        ]
        .iter()
        .fold(template.to_owned(), |s, (from, to)| s.replace(from, to))
    }

    /// What only A, a service and an admin may see.
    fn secrets(&self) -> [String; 6] {
        [
            self.held.clone(),
            self.locked.clone(),
            self.used.clone(),
            self.lock.clone(),
            self.order.clone(),
            self.redemption.clone(),
        ]
    }
}

/// Sends one cell's request; answers its status and its body as text.
async fn send(app: &App, method: &str, path: &str, token: Option<&str>, body: Option<(&str, String)>) -> (u16, String) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.http.request(method, format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((content_type, body)) = body {
        req = req.header("content-type", content_type).body(body);
    }
    let res = req.send().await.expect("the server answers");
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Every (method, route) `router()` serves, read from its source, so a route added there without
/// a row in `MATRIX` fails the test.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/lib.rs");
    let router = src.split("pub fn router(").nth(1).expect("lib.rs has router()");
    let router = router.split(".route_layer(").next().unwrap();
    let mut routes = BTreeSet::new();
    for call in router.split(".route(").skip(1) {
        let path = call.split('"').nth(1).expect("a route's path is a literal");
        let methods: Vec<_> = ["get", "post", "put", "patch", "delete"]
            .into_iter()
            .filter(|m| {
                call.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0 || !matches!(call.as_bytes()[i - 1], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_')
                })
            })
            .collect();
        assert!(!methods.is_empty(), "no method read for {path}");
        for m in methods {
            routes.insert((m.to_uppercase(), path.to_owned()));
        }
    }
    routes
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

pub async fn authorization_matrix_of_every_route_and_role(backend: Backend) {
    let app = unthrottled(backend).await;
    // The routes, once: the router's, each with a row, and every documented one among them.
    let routes = router_routes();
    let in_matrix: BTreeSet<_> = MATRIX
        .iter()
        .map(|(method, route, ..)| (method.to_string(), route.to_string()))
        .collect();
    assert_eq!(
        in_matrix, routes,
        "the matrix has a row for each route of router(), no more"
    );
    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let route = (method.to_uppercase(), path.clone());
            assert!(routes.contains(&route), "{route:?} is documented and in the matrix");
        }
    }

    let tokens = [
        None,
        Some(app.user(A)),
        Some(app.user(B)),
        Some(app.token("checkout", Role::Service)),
        Some(app.admin()),
    ];
    let mut fixtures = 0;
    let mut secrets: Vec<String> = Vec::new();
    let mut checked = BTreeSet::new();
    for &(method, route, path, body, expected) in MATRIX {
        fixtures += 1;
        let mut fx = Fixture::new(&app, fixtures).await;
        secrets.extend(fx.secrets());
        let before = app.snapshot().await;
        // Refusals first, on the row's fixture; each permitted write gets a fixture of its own.
        let (refused, permitted): (Vec<usize>, Vec<usize>) = (0..ROLES.len()).partition(|&r| !is_success(expected[r]));
        let mut used = false;
        for role in refused.into_iter().chain(permitted) {
            let allowed = is_success(expected[role]);
            if allowed && used {
                fixtures += 1;
                fx = Fixture::new(&app, fixtures).await;
                secrets.extend(fx.secrets());
            }
            let sent = match body {
                Sent::Nothing => None,
                Sent::Json(b) => Some(("application/json", fx.fill(b))),
                Sent::Text(t) => Some(("text/plain", fx.fill(t))),
            };
            let target = fx.fill(path);
            let (status, text) = send(&app, method, &target, tokens[role].as_deref(), sent).await;
            let cell = format!("{method} {target} as {}", ROLES[role]);
            assert_eq!(status, expected[role], "{cell}: {text}");
            if allowed {
                used |= method != "GET";
            } else {
                assert!(app.snapshot().await == before, "{cell} is refused and writes nothing");
            }
            if role == ANON || role == USER_B {
                for secret in &secrets {
                    assert!(!text.contains(secret.as_str()), "{cell} shows A's {secret}: {text}");
                }
            }
            checked.insert((method, route, role));
        }
    }
    assert_eq!(checked.len(), routes.len() * ROLES.len());
    println!(
        "authorization matrix: {} routes x {} roles = {} cells ({} requests in {} rows)",
        routes.len(),
        ROLES.len(),
        checked.len(),
        MATRIX.len() * ROLES.len(),
        MATRIX.len()
    );
}

/// Bodies the server would take, and the fields each must refuse: ids, owners, states, counters
/// and times are the server's to set. `discount.x` is a field of the nested discount.
#[rustfmt::skip]
const SERVER_OWNED: &[(&str, &str, usize, &str, &[&str])] = &[
    // method  path                                 as       body                                                           refused fields
    ("POST",  "/coupons",                           ADMIN, r#"{"name": "Owned", "discount": {"type": "percentage", "value": 5}}"#,
        &["id", "coupon_book_id", "created_at", "updated_at", "claimed_count", "redeemed_count", "total_generated",
          "available", "user_id", "owner", "discount.discount_applied"]),
    ("PATCH", "/coupons/{book}",                    ADMIN, r#"{"name": "Renamed"}"#,
        &["id", "coupon_book_id", "created_at", "updated_at", "code_mode", "code", "total_codes", "discount",
          "max_codes_per_user", "claimed_count", "redeemed_count", "user_id"]),
    ("POST",  "/coupons/codes",                     ADMIN, r#"{"coupon_book_id": "{book}", "codes": ["M{n}-X"]}"#,
        &["status", "owner", "assigned_to", "user_id", "claimed_at", "redemptions"]),
    ("POST",  "/coupons/{book}/codes/generate",     ADMIN, r#"{"count": 1, "pattern": "O{n}-*****"}"#,
        &["coupon_book_id", "status", "owner", "codes"]),
    ("POST",  "/coupons/{book}/codes/remove",       ADMIN, r#"{"codes": ["{spare}"]}"#,
        &["coupon_book_id", "status", "force"]),
    ("POST",  "/coupons/assign",                    USER_A, r#"{"coupon_book_id": "{book}"}"#,
        &["code", "status", "owner", "assigned_to", "claimed_at", "claim_expires_at", "redemptions"]),
    ("POST",  "/coupons/assign/{free}",             USER_A, "{}",
        &["coupon_book_id", "status", "owner", "assigned_to", "claimed_at", "claim_expires_at"]),
    ("POST",  "/coupons/lock/{held}",               USER_A, "{}",
        &["lock_id", "locked_until", "status", "owner"]),
    ("POST",  "/coupons/unlock/{locked}",           USER_A, "{}",
        &["status", "owner", "locked_until"]),
    ("POST",  "/coupons/redeem/{held}",             USER_A, r#"{"order_id": "o-{n}", "order_amount": 1000}"#,
        &["redemption_id", "discount_applied", "final_price", "status", "redeemed_at", "coupon_book_id", "redemptions"]),
    ("POST",  "/coupons/redemptions/{redemption}/rollback", SERVICE, r#"{"reason": "refund"}"#,
        &["user_id", "redemption_id", "rolled_back_at", "status", "code"]),
];

/// A plausible value for a field a body must not carry.
fn value_for(field: &str) -> Value {
    match field {
        "id" | "coupon_book_id" | "redemption_id" | "lock_id" => json!("018f0000-0000-7000-8000-000000000000"),
        "status" => json!("redeemed"),
        "owner" | "assigned_to" | "user_id" => json!(B),
        f if f.ends_with("_at") => json!("2026-06-01T12:00:00Z"),
        "code" => json!("STOLEN"),
        "codes" => json!(["STOLEN"]),
        "discount" => json!({"type": "percentage", "value": 100}),
        "force" => json!(true),
        _ => json!(99),
    }
}

pub async fn matrix_bodies_cannot_set_what_the_server_owns(backend: Backend) {
    let app = unthrottled(backend).await;
    let tokens = [
        String::new(),
        app.user(A),
        app.user(B),
        app.token("checkout", Role::Service),
        app.admin(),
    ];
    let mut refused = 0;
    for (i, &(method, path, role, body, fields)) in SERVER_OWNED.iter().enumerate() {
        let fx = Fixture::new(&app, i + 1).await;
        let before = app.snapshot().await;
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let path = fx.fill(path);
        let base: Value = serde_json::from_str(&fx.fill(body)).unwrap();
        for field in fields {
            let mut sent = base.clone();
            let (object, name) = match field.split_once('.') {
                Some((outer, inner)) => (&mut sent[outer], inner),
                None => (&mut sent, *field),
            };
            object.as_object_mut().unwrap().insert(name.to_owned(), value_for(name));
            let r = app.call(method.clone(), &path, Some(&tokens[role]), Some(sent)).await;
            r.assert_invalid(&format!("unknown field `{name}`"));
            assert!(
                app.snapshot().await == before,
                "{method} {path} with {field} writes nothing"
            );
            refused += 1;
        }
        // Without them the body is taken: only the added field was at fault.
        let fine = app.call(method.clone(), &path, Some(&tokens[role]), Some(base)).await;
        assert!(fine.status.is_success(), "{method} {path}: {}", fine.body);
    }
    let fx = Fixture::new(&app, SERVER_OWNED.len() + 1).await;
    let before = app.snapshot().await;
    // The import takes a file, not JSON: a JSON body with an owner in it is not read at all.
    let import = app
        .post(
            &format!("/coupons/{}/codes/import", fx.book),
            &tokens[ADMIN],
            json!({"codes": ["M1-JSON"], "owner": B}),
        )
        .await;
    assert_eq!(
        (import.status, import.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    assert!(app.snapshot().await == before, "a refused import writes nothing");
    println!(
        "{refused} server-owned fields refused across {} bodies",
        SERVER_OWNED.len()
    );
}
