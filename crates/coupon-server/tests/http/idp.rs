//! Tokens from an identity provider: RS256 and ES256 tokens signed with the TEST-ONLY keys of
//! tests/fixtures, verified against the key set (JWKS) or a PEM public key, with the algorithm
//! pinned, `iss` and `aud` required, 30 s of leeway on the server's clock, and the role read from a
//! `roles` array or a `scope` string.

use coupon_server::{RoleNames, TokenAlgorithm, TokenKeys, TokenRules, Tokens};
use coupon_store::testing::Backend;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{App, Reply};

const RS256_PRIVATE: &[u8] = include_bytes!("../fixtures/rs256-private.pem");
const RS256_PUBLIC: &[u8] = include_bytes!("../fixtures/rs256-public.pem");
const ES256_PRIVATE: &[u8] = include_bytes!("../fixtures/es256-private.pem");
const ES256_PUBLIC: &[u8] = include_bytes!("../fixtures/es256-public.pem");
const JWKS: &[u8] = include_bytes!("../fixtures/jwks.json");

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "coupond";

fn rules(role_claim: &str) -> TokenRules {
    TokenRules {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        leeway_seconds: 30,
        roles: RoleNames {
            claim: role_claim.into(),
            ..RoleNames::default()
        },
    }
}

/// RS256 verified against the key set, the role in a `roles` array.
pub async fn rs256_key_set(backend: Backend) -> App {
    let keys = TokenKeys::from_jwks(TokenAlgorithm::Rs256, JWKS).expect("the test key set loads");
    assert_eq!(keys.len(), 2, "both RSA keys, not the EC one");
    App::spawn_with_tokens(backend, Some(Tokens::new(keys, rules("roles")))).await
}

/// ES256 verified against the PEM public key, the role in the `scope` string.
pub async fn es256_pem(backend: Backend) -> App {
    let keys = TokenKeys::from_pem(TokenAlgorithm::Es256, ES256_PUBLIC).expect("the test key loads");
    App::spawn_with_tokens(backend, Some(Tokens::new(keys, rules("scope")))).await
}

/// Claims good for an hour of the server's clock, for alice as a user, with `changes` merged in
/// (a `null` removes the claim).
fn claims(app: &App, changes: Value) -> Value {
    let now = app.clock_now() / 1000;
    let mut claims = json!({
        "sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600,
        "roles": ["coupond:user"], "scope": "openid coupond:user",
    });
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(name),
            v => claims.as_object_mut().unwrap().insert(name.clone(), v.clone()),
        };
    }
    claims
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

fn rs256(kid: Option<&str>, claims: &Value) -> String {
    sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RS256_PRIVATE).unwrap(),
        kid,
        claims,
    )
}

fn es256(kid: Option<&str>, claims: &Value) -> String {
    sign(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(ES256_PRIVATE).unwrap(),
        kid,
        claims,
    )
}

async fn search(app: &App, token: &str) -> Reply {
    app.get("/coupons/search", token).await
}

/// A 401 that challenges with `invalid_token` and says `why`.
fn assert_refused(r: &Reply, why: &str, case: &str) {
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        "{case}: {}",
        r.body
    );
    let challenge = r
        .headers
        .get("www-authenticate")
        .map(|h| h.to_str().unwrap().to_owned());
    assert_eq!(
        challenge.as_deref(),
        Some(format!("Bearer realm=\"coupond\", error=\"invalid_token\", error_description=\"{why}\"").as_str()),
        "{case}"
    );
}

pub async fn rs256_tokens_from_a_key_set_are_accepted(app: App) {
    let good = claims(&app, json!({}));
    let named = search(&app, &rs256(Some("test-rs256"), &good)).await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.body);
    // Without a kid every RS256 key of the set is tried: the retired one first, then this one.
    assert_eq!(search(&app, &rs256(None, &good)).await.status, StatusCode::OK);
    let many = claims(&app, json!({"aud": ["billing", AUDIENCE]}));
    assert_eq!(search(&app, &rs256(None, &many)).await.status, StatusCode::OK);

    let unknown = search(&app, &rs256(Some("someone-else"), &good)).await;
    assert_refused(&unknown, "the token's key is not known", "unknown kid");
    let other = search(&app, &rs256(Some("test-rs256-retired"), &good)).await;
    assert_refused(&other, "the token's signature is not valid", "another key's kid");
    // The set's EC key is not an RS256 key: its kid selects nothing.
    let ec = search(&app, &rs256(Some("test-es256"), &good)).await;
    assert_refused(&ec, "the token's key is not known", "the EC key's kid");
}

pub async fn es256_tokens_from_a_pem_key_are_accepted(app: App) {
    let good = claims(&app, json!({}));
    let plain = search(&app, &es256(None, &good)).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    // A single PEM key has no id: a token's kid does not stop it being tried.
    assert_eq!(search(&app, &es256(Some("k1"), &good)).await.status, StatusCode::OK);
    let rsa = search(&app, &rs256(None, &good)).await;
    assert_refused(
        &rsa,
        "the token is not signed with the expected algorithm",
        "RS256 at an ES256 server",
    );
}

pub async fn refused_tokens_are_challenged(app: App) {
    let none = app.call(Method::GET, "/coupons/search", None, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.headers.get("www-authenticate").unwrap(),
        "Bearer realm=\"coupond\"",
        "no token: no error code"
    );
    let now = app.clock_now() / 1000;
    let good = rs256(Some("test-rs256"), &claims(&app, json!({})));

    let (head, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let as_admin = claims(&app, json!({"roles": ["coupond:admin"]}));
    let admin_body = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &as_admin,
        &EncodingKey::from_secret(b"x"),
    )
    .unwrap()
    .split('.')
    .nth(1)
    .unwrap()
    .to_owned();
    let tampered = format!("{head}.{admin_body}.{signature}");
    // The classic confusion: HS256 "signed" with the provider's public key as the shared secret.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RS256_PUBLIC),
        None,
        &claims(&app, json!({})),
    );
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{admin_body}.");
    let with = |changes: Value| rs256(Some("test-rs256"), &claims(&app, changes));

    let cases = [
        ("malformed", "not-a-jwt".to_owned(), "the token is not valid"),
        ("three dots of nothing", "..".to_owned(), "the token is not valid"),
        ("alg none", unsigned, "the token is not valid"),
        ("tampered", tampered, "the token's signature is not valid"),
        (
            "HS256 with the public key",
            confused,
            "the token is not signed with the expected algorithm",
        ),
        (
            "HS256 with coupond's test secret",
            app.user("alice"),
            "the token is not signed with the expected algorithm",
        ),
        (
            "ES256",
            es256(None, &claims(&app, json!({}))),
            "the token is not signed with the expected algorithm",
        ),
        ("expired", with(json!({"exp": now - 60})), "the token has expired"),
        (
            "not yet valid",
            with(json!({"nbf": now + 60})),
            "the token is not valid yet",
        ),
        ("no expiry", with(json!({"exp": null})), "the token has no expiry"),
        ("no subject", with(json!({"sub": null})), "the token has no subject"),
        (
            "wrong issuer",
            with(json!({"iss": "https://evil.example"})),
            "the token's issuer is not accepted",
        ),
        ("no issuer", with(json!({"iss": null})), "the token has no issuer"),
        (
            "wrong audience",
            with(json!({"aud": "billing"})),
            "the token's audience is not accepted",
        ),
        ("no audience", with(json!({"aud": null})), "the token has no audience"),
        (
            "an unknown role",
            with(json!({"roles": ["reader"]})),
            "the token grants no coupond role",
        ),
        (
            "no role",
            with(json!({"roles": null})),
            "the token grants no coupond role",
        ),
        (
            "a bad subject",
            with(json!({"sub": ""})),
            "the token's subject is not valid",
        ),
    ];
    for (case, token, why) in cases {
        assert_refused(&search(&app, &token).await, why, case);
    }
}

pub async fn leeway_forgives_small_clock_skew(app: App) {
    let now = app.clock_now() / 1000;
    let token = rs256(None, &claims(&app, json!({"exp": now + 60})));
    assert_eq!(search(&app, &token).await.status, StatusCode::OK);
    app.clock.advance_seconds(70);
    let late = search(&app, &token).await;
    assert_eq!(
        late.status,
        StatusCode::OK,
        "expired 10 s ago, within the leeway: {}",
        late.body
    );
    app.clock.advance_seconds(50);
    assert_refused(&search(&app, &token).await, "the token has expired", "expired 60 s ago");

    let now = app.clock_now() / 1000;
    let early = rs256(None, &claims(&app, json!({"nbf": now + 10})));
    assert_eq!(search(&app, &early).await.status, StatusCode::OK, "valid in 10 s");
    let too_early = rs256(None, &claims(&app, json!({"nbf": now + 60})));
    assert_refused(
        &search(&app, &too_early).await,
        "the token is not valid yet",
        "valid in 60 s",
    );
}

/// What the role a token grants may do: create a book (admin), read another user's coupons
/// (admin or service), or only search (user).
async fn assert_grants(app: &App, token: &str, role: &str) {
    let book = json!({"name": "IdP sale", "discount": {"type": "percentage", "value": 10}});
    let create = app.post("/coupons", token, book).await.status;
    let others = app.get("/users/bob/coupons", token).await.status;
    let expected = match role {
        "admin" => (StatusCode::CREATED, StatusCode::OK),
        "service" => (StatusCode::FORBIDDEN, StatusCode::OK),
        _ => (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
    };
    assert_eq!((create, others), expected, "{role}");
}

pub async fn roles_come_from_a_roles_array(app: App) {
    let token = |roles: Value| rs256(None, &claims(&app, json!({ "roles": roles })));
    assert_grants(&app, &token(json!(["reader", "coupond:admin", "user"])), "admin").await;
    assert_grants(&app, &token(json!(["coupond:service", "user"])), "service").await;
    assert_grants(&app, &token(json!(["user"])), "user").await;
    assert_grants(&app, &token(json!("service")), "service").await;
}

pub async fn roles_come_from_a_scope_string(app: App) {
    let token = |scope: &str| es256(None, &claims(&app, json!({ "scope": scope, "roles": null })));
    assert_grants(&app, &token("openid profile coupond:admin"), "admin").await;
    assert_grants(&app, &token("openid coupond:service"), "service").await;
    assert_grants(&app, &token("coupond:user email"), "user").await;
    let none = search(&app, &token("openid profile")).await;
    assert_refused(&none, "the token grants no coupond role", "only OpenID scopes");
}
