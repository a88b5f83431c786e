//! Publishing against a real NATS with JetStream: the machine's at 127.0.0.1:4222 (or
//! `TEST_NATS_URL`) if JetStream answers there, else a `nats-server` this test starts and stops.
//! Each test uses its own stream and subject prefix and deletes the stream at the end.

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use coupon_relay::{Jetstream, NatsError, Outgoing, StreamConfig};
use futures::StreamExt;
use uuid::Uuid;

const INSTALL_HINT: &str =
    "install Debian's NATS server (`apt-get install -y nats-server`), or point TEST_NATS_URL at a NATS server with JetStream";

/// A `nats-server` started for the test, killed when dropped.
struct LocalServer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `nats-server -js` on a free port with `extra` arguments; fails the test, saying how to
/// fix it, when there is no binary or it does not come up.
async fn start_server(extra: &[&str]) -> (String, LocalServer) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("could not start nats-server ({err}): {INSTALL_HINT}"));
    let server = LocalServer { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not listen on {port} within 10 s: {INSTALL_HINT}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (format!("nats://127.0.0.1:{port}"), server)
}

async fn answers_jetstream(url: &str) -> bool {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url);
    let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(3), connect).await else {
        return false;
    };
    // The raw account-info request rather than `query_account`: async-nats 0.51 cannot parse the
    // answer of the NATS 2.9 that Debian ships, though streams and publishing work with it.
    let info = tokio::time::timeout(Duration::from_secs(3), client.request("$JS.API.INFO", Bytes::new())).await;
    let Ok(Ok(reply)) = info else {
        return false;
    };
    let reply = String::from_utf8_lossy(&reply.payload);
    reply.contains("account_info_response") && !reply.contains(r#""error""#)
}

/// A NATS with JetStream: the machine's, or one of our own.
async fn nats() -> (String, Option<LocalServer>) {
    let url = std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    if answers_jetstream(&url).await {
        return (url, None);
    }
    let (url, server) = start_server(&[]).await;
    assert!(
        answers_jetstream(&url).await,
        "the nats-server started for the test has no JetStream"
    );
    (url, Some(server))
}

/// A stream and subject prefix of this test's own.
fn unique_config() -> StreamConfig {
    let tag = Uuid::now_v7().simple().to_string();
    StreamConfig {
        stream: format!("COUPOND_EVENTS_TEST_{tag}"),
        subject_prefix: format!("coupondtest.{tag}.events"),
        ..StreamConfig::default()
    }
}

/// Runs `body` with a fresh stream config, then deletes the stream whether or not `body` panicked.
async fn with_stream<F, Fut>(body: F)
where
    F: FnOnce(String, StreamConfig) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (url, _server) = nats().await;
    let config = unique_config();
    let outcome = tokio::spawn(body(url.clone(), config.clone())).await;
    let admin = jetstream::new(async_nats::connect(&url).await.unwrap());
    // Absent if the body failed before making it.
    let _ = admin.delete_stream(&config.stream).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

fn events(types: &[&'static str], count: usize) -> Vec<Outgoing<'static>> {
    (0..count)
        .map(|i| {
            let id = Uuid::now_v7();
            let event_type = types[i % types.len()];
            Outgoing {
                id,
                event_type,
                body: Bytes::from(format!(r#"{{"id":"{id}","type":"{event_type}","n":{i}}}"#)),
            }
        })
        .collect()
}

async fn stream_messages(url: &str, stream: &str) -> u64 {
    let admin = jetstream::new(async_nats::connect(url).await.unwrap());
    admin
        .get_stream(stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

#[tokio::test]
async fn a_batch_is_stored_once_each_on_its_subject_and_a_republish_is_deduplicated() {
    with_stream(|url, config| async move {
        // A window smaller than the batch, so the pipeline refills as acks come back.
        let config = StreamConfig {
            max_in_flight: 64,
            ..config
        };
        let relay = Jetstream::connect(&url, config.clone()).await.unwrap();
        let batch = events(&["code.claimed", "code.redeemed", "redemption.rolled_back"], 300);

        let acks = relay.publish(&batch).await.unwrap();
        assert_eq!(acks.len(), batch.len());
        assert!(acks.iter().all(|ack| !ack.duplicate));
        let sequences: Vec<u64> = acks.iter().map(|ack| ack.sequence).collect();
        assert_eq!(
            sequences,
            (1..=300).collect::<Vec<u64>>(),
            "stored in the slice's order"
        );
        assert_eq!(stream_messages(&url, &config.stream).await, 300);

        // Read back through a consumer: subject, payload and message id of each, in order.
        let admin = jetstream::new(async_nats::connect(&url).await.unwrap());
        let stream = admin.get_stream(&config.stream).await.unwrap();
        let reader = stream.create_consumer(consumer::pull::Config::default()).await.unwrap();
        let mut messages = reader.fetch().max_messages(300).messages().await.unwrap();
        let mut read = Vec::new();
        while read.len() < 300 {
            let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
            let message = next
                .expect("the consumer stalled")
                .expect("the batch ended early")
                .unwrap();
            read.push(message);
        }
        for (message, event) in read.iter().zip(&batch) {
            assert_eq!(
                message.subject.as_str(),
                format!("{}.{}", config.subject_prefix, event.event_type)
            );
            assert_eq!(message.payload, event.body);
            let id = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get("Nats-Msg-Id"))
                .unwrap();
            assert_eq!(id.as_str(), event.id.to_string());
        }

        // The same ids again (a worker retrying after a lost ack): nothing new is stored.
        let again = relay.publish(&batch).await.unwrap();
        assert!(again.iter().all(|ack| ack.duplicate), "{again:?}");
        assert_eq!(again.iter().map(|ack| ack.sequence).collect::<Vec<_>>(), sequences);
        assert_eq!(stream_messages(&url, &config.stream).await, 300);

        // A batch mixing old and new ids stores only the new ones.
        let fresh = events(&["code.claimed"], 2);
        let mixed = [batch[0].clone(), fresh[0].clone(), batch[1].clone(), fresh[1].clone()];
        let acks = relay.publish(&mixed).await.unwrap();
        assert_eq!(
            acks.iter().map(|ack| ack.duplicate).collect::<Vec<_>>(),
            [true, false, true, false]
        );
        assert_eq!(stream_messages(&url, &config.stream).await, 302);
        assert!(relay.publish(&[]).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn reconnecting_finds_the_stream_and_a_stream_for_other_subjects_is_refused() {
    with_stream(|url, config| async move {
        let first = Jetstream::connect(&url, config.clone()).await.unwrap();
        first.publish(&events(&["code.claimed"], 3)).await.unwrap();
        let second = Jetstream::connect(&url, config.clone()).await.unwrap();
        assert_eq!(
            second.publish(&events(&["code.claimed"], 1)).await.unwrap()[0].sequence,
            4
        );

        let elsewhere = StreamConfig {
            subject_prefix: config.subject_prefix.replacen("coupondtest.", "coupondother.", 1),
            ..config.clone()
        };
        let err = Jetstream::connect(&url, elsewhere).await.unwrap_err();
        assert!(matches!(err, NatsError::StreamSubjects { .. }), "{err}");
    })
    .await;
}

#[tokio::test]
async fn an_event_type_that_is_not_a_subject_publishes_nothing() {
    with_stream(|url, config| async move {
        let relay = Jetstream::connect(&url, config.clone()).await.unwrap();
        let mut batch = events(&["code.claimed"], 3);
        batch[2].event_type = "code.*";
        let err = relay.publish(&batch).await.unwrap_err();
        assert!(matches!(&err, NatsError::InvalidEventType(t) if t == "code.*"), "{err}");
        assert_eq!(stream_messages(&url, &config.stream).await, 0);
    })
    .await;
}

#[tokio::test]
async fn bad_configuration_is_refused_before_connecting() {
    for config in [
        StreamConfig {
            subject_prefix: "coupond.>".to_owned(),
            ..StreamConfig::default()
        },
        StreamConfig {
            subject_prefix: String::new(),
            ..StreamConfig::default()
        },
        StreamConfig {
            stream: "COUPOND.EVENTS".to_owned(),
            ..StreamConfig::default()
        },
    ] {
        let err = Jetstream::connect("nats://127.0.0.1:1", config.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, NatsError::Config(_)), "{config:?}: {err}");
    }
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error_that_hides_the_credentials() {
    let port = free_port();
    let url = format!("nats://relay:hunter2@127.0.0.1:{port}");
    let err = Jetstream::connect(&url, unique_config()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, NatsError::Connect { .. }), "{text}");
    assert!(text.contains(&format!("nats://***@127.0.0.1:{port}")), "{text}");
    assert!(
        !text.contains("hunter2") && !format!("{err:?}").contains("hunter2"),
        "{err:?}"
    );
}

#[tokio::test]
async fn credentials_in_the_url_authenticate_and_wrong_ones_are_refused_without_being_shown() {
    let (url, _server) = start_server(&["--user", "relay", "--pass", "s3cr@t:pw"]).await;
    let with = |userinfo: &str| url.replacen("nats://", &format!("nats://{userinfo}@"), 1);
    let config = unique_config();

    let relay = Jetstream::connect(&with("relay:s3cr%40t%3Apw"), config.clone())
        .await
        .unwrap();
    assert!(!relay.publish(&events(&["code.claimed"], 1)).await.unwrap()[0].duplicate);

    let err = Jetstream::connect(&with("relay:wrong-pw"), config).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, NatsError::Connect { .. }), "{text}");
    assert!(text.contains("***@127.0.0.1") && !text.contains("wrong-pw"), "{text}");
    // The server is ours and goes away with its store directory: no stream to delete.
}
