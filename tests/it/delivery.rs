//! The outbox and its dispatcher against a real HTTP receiver on loopback: retries until
//! delivered and never after, a receiver down then back, 410 Gone, 4xx, a restart between
//! enqueue and delivery.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, Utc};
use scorekeeper::app::Services;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::helpers::*;

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    pub(crate) timestamp: String,
    pub(crate) signature: String,
    pub(crate) body: String,
}

/// What the receiver saw.
type Seen = Arc<Mutex<Vec<Received>>>;

/// A webhook receiver answering the queued statuses in turn, then 200.
pub(crate) struct Receiver {
    pub(crate) address: SocketAddr,
    pub(crate) seen: Seen,
    stop: tokio_util::sync::CancellationToken,
}

impl Receiver {
    pub(crate) async fn start(listener: tokio::net::TcpListener, statuses: &[u16]) -> Self {
        let address = listener.local_addr().expect("address");
        let seen: Seen = Arc::default();
        let queue = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let app = {
            let seen = seen.clone();
            axum::Router::new().route(
                "/hook",
                axum::routing::post(move |headers: HeaderMap, body: String| {
                    let seen = seen.clone();
                    let queue = queue.clone();
                    async move {
                        let header = |name: &str| {
                            headers
                                .get(name)
                                .and_then(|value| value.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        seen.lock().expect("not poisoned").push(Received {
                            id: header("webhook-id"),
                            timestamp: header("webhook-timestamp"),
                            signature: header("webhook-signature"),
                            body,
                        });
                        let status = queue
                            .lock()
                            .expect("not poisoned")
                            .pop_front()
                            .unwrap_or(200);
                        StatusCode::from_u16(status).expect("valid status")
                    }
                }),
            )
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
        });
        Self {
            address,
            seen,
            stop,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.seen.lock().expect("not poisoned").clone()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|received| received.id.clone())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A scorecard whose revenue target no month meets, with a webhook to `hook`.
fn config(database_url: &str, stripe_url: &str, hook: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Delivery Bakery"
timezone = "Europe/Berlin"

[sources.stripe]
kind = "stripe"
schedule = "0 0 3 * * *"
start_date = "2026-01-01"
base_url = "{stripe_url}"
api_key = "${{TEST_STRIPE_KEY}}"
streams = ["charges"]

[measures.revenue]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "created"
where = "status == 'succeeded'"
value = "amount / 100"
aggregate = "sum"
target = {{ value = 100000, direction = "up", warn = 90000 }}
forecast = false

[notify.hook]
kind = "webhook"
url = "{hook}"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"#
    )
}

/// Services with one alert enqueued for the hook: last month's revenue is red.
async fn with_one_alert(db: &TestDb, hook: &str) -> (Services, MockServer) {
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(fixture_response("stripe/charges_page_2.json"))
        .mount(&stripe)
        .await;
    let services = services(settings(&config(&db.url, &stripe.uri(), hook), GOOD_KEY)).await;
    assert!(sync_source(&services, "stripe").await.is_success());
    // Last month's revenue (no charge synced falls in it: 0) misses 100,000.
    let evaluation = scorekeeper::alerts::evaluate(
        &services.store,
        &services.settings,
        &services.catalog,
        Utc::now(),
    )
    .await
    .expect("evaluation");
    assert_eq!(evaluation.messages, 1, "one alert message");
    (services, stripe)
}

/// Runs dispatcher rounds at `offsets` seconds from now (later rounds find the retries due).
async fn rounds(services: &Services, offsets: &[i64]) {
    for offset in offsets {
        services
            .dispatcher
            .run_once(Utc::now() + Duration::seconds(*offset))
            .await
            .expect("dispatch");
    }
}

async fn results(services: &Services) -> Vec<String> {
    let mut deliveries = services.store.deliveries(50).await.expect("deliveries");
    deliveries.reverse();
    for delivery in &deliveries {
        if let Some(error) = &delivery.error {
            eprintln!("attempt {} {}: {error}", delivery.attempt, delivery.result);
        }
    }
    deliveries.into_iter().map(|row| row.result).collect()
}

#[tokio::test]
async fn server_errors_are_retried_until_one_success_and_never_after() {
    for db in TestDb::all().await {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let receiver = Receiver::start(listener, &[500, 503]).await;
        let hook = format!("http://{}/hook", receiver.address);
        let (services, _stripe) = with_one_alert(&db, &hook).await;
        // Retries are 5 s then 10 s (±20 %) apart: rounds a minute ahead find them due.
        rounds(&services, &[0, 60, 120, 180, 240]).await;
        assert_eq!(
            results(&services).await,
            ["retry", "retry", "delivered"],
            "{}",
            db.backend
        );
        let ids = receiver.ids();
        assert_eq!(ids.len(), 3, "{}", db.backend);
        assert!(
            ids.iter().all(|id| id == &ids[0] && id.starts_with("msg_")),
            "one stable id: {ids:?}"
        );
        let message = &services.store.outbox_of("hook").await.expect("outbox")[0];
        assert_eq!(
            (message.status.as_str(), message.attempts),
            ("delivered", 3)
        );
        services.store.close().await;
    }
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_the_alert_when_it_comes_back() {
    let db = TestDb::sqlite();
    // Take a port, then free it: nothing listens there for the first attempts.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address").port()
    };
    let hook = format!("http://127.0.0.1:{port}/hook");
    let (services, _stripe) = with_one_alert(&db, &hook).await;
    rounds(&services, &[0, 60]).await;
    assert_eq!(results(&services).await, ["retry", "retry"]);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let receiver = Receiver::start(listener, &[]).await;
    rounds(&services, &[120, 180]).await;
    assert_eq!(results(&services).await, ["retry", "retry", "delivered"]);
    assert_eq!(receiver.ids().len(), 1);
}

#[tokio::test]
async fn gone_disables_the_channel_and_a_4xx_is_not_retried() {
    let db = TestDb::sqlite();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = Receiver::start(listener, &[410]).await;
    let hook = format!("http://{}/hook", receiver.address);
    let (services, _stripe) = with_one_alert(&db, &hook).await;
    rounds(&services, &[0, 60, 120]).await;
    assert_eq!(results(&services).await, ["gone"]);
    let (target, reason) = services
        .store
        .disabled_channel("hook")
        .await
        .expect("read")
        .expect("disabled");
    assert!(
        target.contains("/hook") && reason.contains("410 Gone"),
        "{reason}"
    );
    assert_eq!(receiver.ids().len(), 1, "never called again");

    let db = TestDb::sqlite();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = Receiver::start(listener, &[400]).await;
    let hook = format!("http://{}/hook", receiver.address);
    let (services, _stripe) = with_one_alert(&db, &hook).await;
    rounds(&services, &[0, 60, 120]).await;
    assert_eq!(results(&services).await, ["failed"]);
    assert_eq!(receiver.ids().len(), 1);
}

#[tokio::test]
async fn a_message_enqueued_before_a_restart_is_delivered_after_it() {
    let db = TestDb::sqlite();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = Receiver::start(listener, &[]).await;
    let hook = format!("http://{}/hook", receiver.address);
    let (services, stripe) = with_one_alert(&db, &hook).await;
    let text = config(&db.url, &stripe.uri(), &hook);
    // The process stops between the evaluation's commit and any delivery.
    services.store.close().await;
    drop(services);
    let restarted = crate::helpers::services(settings(&text, GOOD_KEY)).await;
    rounds(&restarted, &[0]).await;
    assert_eq!(results(&restarted).await, ["delivered"]);
    assert_eq!(receiver.ids().len(), 1);
}
