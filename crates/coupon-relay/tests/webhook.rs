//! One delivery attempt against a real receiver on 127.0.0.1: what it gets, and what each kind of
//! answer (or none) becomes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use coupon_relay::signature::DEFAULT_TOLERANCE;
use coupon_relay::{verify, Attempt, Destinations, Failure, Outcome, Outgoing, Secret, WebhookOptions, Webhooks};
use uuid::Uuid;

const NOW: i64 = 1_767_225_600;

/// What the receiver saw of one delivery it accepted.
#[derive(Debug, Clone)]
struct Received {
    peer: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Receiver {
    secret: Secret,
    received: Arc<Mutex<Vec<Received>>>,
}

/// Answers 200 only to a request whose signature verifies, as a careful receiver would.
async fn accept(
    State(receiver): State<Receiver>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let signature = headers
        .get("coupond-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Err(err) = verify(&receiver.secret, signature, &body, NOW, DEFAULT_TOLERANCE) {
        return (StatusCode::BAD_REQUEST, err.to_string()).into_response();
    }
    receiver.received.lock().unwrap().push(Received { peer, headers, body });
    (StatusCode::OK, "thanks").into_response()
}

/// Starts the receiver on a free port and returns its base URL.
async fn start_receiver(secret: Secret) -> (String, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/ok", post(accept))
        .route("/fail", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route("/gone", post(|| async { StatusCode::GONE }))
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                StatusCode::OK
            }),
        )
        .route("/redirect", post(|| async { (StatusCode::FOUND, [(LOCATION, "/ok")]) }))
        .route(
            "/chatty",
            post(|| async { (StatusCode::ACCEPTED, "x".repeat(1 << 20)) }),
        )
        .with_state(Receiver {
            secret,
            received: received.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    (base, received)
}

fn event(id: Uuid) -> Outgoing<'static> {
    Outgoing {
        id,
        event_type: "code.claimed",
        body: Bytes::from(format!(r#"{{"id":"{id}","type":"code.claimed"}}"#)),
    }
}

/// A client that may reach the receivers here, on loopback.
fn client(timeout: Duration) -> Webhooks {
    Webhooks::new(WebhookOptions {
        timeout,
        destinations: Destinations::allowing(["127.0.0.0/8".parse().unwrap()]),
        ..WebhookOptions::default()
    })
    .unwrap()
}

fn failure(attempt: &Attempt) -> &Failure {
    match &attempt.outcome {
        Outcome::Failed(failure) => failure,
        Outcome::Delivered { .. } => panic!("expected a failure, got {attempt:?}"),
    }
}

#[tokio::test]
async fn a_2xx_is_delivered_with_every_header_and_the_body_as_signed() {
    let secret = Secret::generate();
    let (base, received) = start_receiver(secret.clone()).await;
    let webhooks = client(Duration::from_secs(5));
    let (first, second) = (event(Uuid::now_v7()), event(Uuid::now_v7()));

    let attempt = webhooks.deliver(&format!("{base}/ok"), &secret, &first, NOW).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 }, "{attempt:?}");
    assert!(attempt.is_delivered());
    assert_eq!((attempt.status(), attempt.error()), (Some(200), None));
    assert!(attempt.latency < Duration::from_secs(5));
    let again = webhooks.deliver(&format!("{base}/ok"), &secret, &second, NOW).await;
    assert!(again.is_delivered(), "{again:?}");

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    let header = |i: usize, name: &str| received[i].headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header(0, "content-type"), "application/json");
    assert_eq!(header(0, "coupond-event-id"), first.id.to_string());
    assert_eq!(header(0, "coupond-event-type"), "code.claimed");
    assert_eq!(
        header(0, "user-agent"),
        format!("coupond/{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(header(0, "coupond-signature").starts_with(&format!("t={NOW},v1=")));
    assert_eq!(received[0].body, first.body);
    assert_eq!(header(1, "coupond-event-id"), second.id.to_string());
    // The pooled keep-alive connection carried both.
    assert_eq!(received[0].peer, received[1].peer);
}

/// By default nothing internal is reached: not a loopback receiver named by its address, nor by a
/// name that resolves to it, nor by the IPv6 form of its address. Allowing its network lets it in.
#[tokio::test]
async fn internal_receivers_are_sent_nothing_unless_their_network_is_allowed() {
    let secret = Secret::generate();
    let (base, received) = start_receiver(secret.clone()).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let public_only = Webhooks::new(WebhookOptions::default()).unwrap();
    let (by_address, by_name) = (format!("{base}/ok"), format!("http://localhost:{port}/ok"));
    for url in [&by_address, &by_name, &format!("http://[::ffff:127.0.0.1]:{port}/ok")] {
        let attempt = public_only.deliver(url, &secret, &event(Uuid::now_v7()), NOW).await;
        assert_eq!(failure(&attempt), &Failure::Internal, "{url}: {attempt:?}");
        assert!(attempt.error().unwrap().contains("internal"), "{attempt:?}");
    }
    assert!(received.lock().unwrap().is_empty(), "the receiver was sent nothing");

    let allowed = client(Duration::from_secs(5));
    for url in [&by_address, &by_name] {
        let attempt = allowed.deliver(url, &secret, &event(Uuid::now_v7()), NOW).await;
        assert!(attempt.is_delivered(), "{url}: {attempt:?}");
    }
    assert_eq!(received.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver() {
    let (base, received) = start_receiver(Secret::generate()).await;
    let attempt = client(Duration::from_secs(5))
        .deliver(&format!("{base}/ok"), &Secret::generate(), &event(Uuid::now_v7()), NOW)
        .await;
    assert_eq!(attempt.outcome, Outcome::Failed(Failure::Status(400)));
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_non_2xx_fails_with_its_status() {
    let secret = Secret::generate();
    let (base, _) = start_receiver(secret.clone()).await;
    let webhooks = client(Duration::from_secs(5));
    let attempt = webhooks
        .deliver(&format!("{base}/fail"), &secret, &event(Uuid::now_v7()), NOW)
        .await;
    assert_eq!(attempt.outcome, Outcome::Failed(Failure::Status(500)));
    assert_eq!(
        (attempt.status(), attempt.error().as_deref()),
        (Some(500), Some("HTTP 500"))
    );
    let gone = webhooks
        .deliver(&format!("{base}/gone"), &secret, &event(Uuid::now_v7()), NOW)
        .await;
    assert_eq!(gone.outcome, Outcome::Failed(Failure::Status(410)));
}

#[tokio::test]
async fn a_redirect_fails_and_is_not_followed() {
    let secret = Secret::generate();
    let (base, received) = start_receiver(secret.clone()).await;
    let attempt = client(Duration::from_secs(5))
        .deliver(&format!("{base}/redirect"), &secret, &event(Uuid::now_v7()), NOW)
        .await;
    assert_eq!(attempt.outcome, Outcome::Failed(Failure::Status(302)), "{attempt:?}");
    assert_eq!(
        attempt.error().as_deref(),
        Some("HTTP 302 (redirects are not followed)")
    );
    assert!(received.lock().unwrap().is_empty(), "the redirect's target was reached");
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_fails_with_timeout() {
    let secret = Secret::generate();
    let (base, _) = start_receiver(secret.clone()).await;
    let timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let attempt = client(timeout)
        .deliver(&format!("{base}/slow"), &secret, &event(Uuid::now_v7()), NOW)
        .await;
    assert_eq!(
        attempt.outcome,
        Outcome::Failed(Failure::Timeout(timeout)),
        "{attempt:?}"
    );
    assert_eq!(attempt.error().as_deref(), Some("timed out after 300ms"));
    assert_eq!(attempt.status(), None);
    // It gave up near the timeout, not when the receiver finally answered (30 s).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_closed_port_fails_with_connection_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let attempt = client(Duration::from_secs(5))
        .deliver(
            &format!("http://127.0.0.1:{port}/hook?token=abc"),
            &Secret::generate(),
            &event(Uuid::now_v7()),
            NOW,
        )
        .await;
    assert_eq!(
        attempt.outcome,
        Outcome::Failed(Failure::ConnectionRefused),
        "{attempt:?}"
    );
    assert_eq!(attempt.error().as_deref(), Some("connection refused"));
}

#[tokio::test]
async fn a_large_response_body_is_cut_and_still_delivered() {
    let secret = Secret::generate();
    let (base, _) = start_receiver(secret.clone()).await;
    let attempt = client(Duration::from_secs(5))
        .deliver(&format!("{base}/chatty"), &secret, &event(Uuid::now_v7()), NOW)
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 202 });
}

#[tokio::test]
async fn an_unusable_url_or_event_type_fails_without_a_request() {
    let secret = Secret::generate();
    let webhooks = client(Duration::from_secs(5));
    for url in ["not a url", "ftp://127.0.0.1/hook", ""] {
        let attempt = webhooks.deliver(url, &secret, &event(Uuid::now_v7()), NOW).await;
        assert!(matches!(failure(&attempt), Failure::Invalid(_)), "{url:?}: {attempt:?}");
        assert!(!attempt.error().unwrap().contains(url) || url.is_empty());
    }
    let bad_type = Outgoing {
        event_type: "code\nclaimed",
        ..event(Uuid::now_v7())
    };
    let attempt = webhooks.deliver("http://127.0.0.1:9/", &secret, &bad_type, NOW).await;
    assert_eq!(
        attempt.outcome,
        Outcome::Failed(Failure::Invalid("the event type is not a valid header value"))
    );
}

#[tokio::test]
async fn a_failed_tls_handshake_fails_to_connect() {
    // https:// to a plain-HTTP receiver: the handshake fails, deterministically and offline.
    let secret = Secret::generate();
    let (base, received) = start_receiver(secret.clone()).await;
    let url = format!("{}/ok?token=do_not_print_me", base.replacen("http://", "https://", 1));
    let attempt = client(Duration::from_secs(5))
        .deliver(&url, &secret, &event(Uuid::now_v7()), NOW)
        .await;
    let text = attempt.error().unwrap();
    assert!(matches!(failure(&attempt), Failure::Connect(_)), "{attempt:?}");
    assert!(text.starts_with("could not connect: "), "{text}");
    assert!(
        !text.contains("do_not_print_me") && !text.contains("127.0.0.1"),
        "{text}"
    );
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn failure_texts_never_hold_the_secret_or_the_url() {
    let secret = Secret::new("whsec_do_not_print_me");
    // Whatever this resolver does with a name that cannot exist (fail at once, or time out),
    // the text shown to an admin names neither the secret nor the URL.
    let attempt = client(Duration::from_secs(2))
        .deliver(
            "http://no-such-host.invalid/hook?token=do_not_print_me",
            &secret,
            &event(Uuid::now_v7()),
            NOW,
        )
        .await;
    let text = attempt.error().unwrap();
    assert!(
        !text.contains("do_not_print_me") && !text.contains("no-such-host"),
        "{text}"
    );
    assert!(!format!("{attempt:?}").contains("do_not_print_me"), "{attempt:?}");
}
