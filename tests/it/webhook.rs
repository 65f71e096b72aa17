//! Webhook delivery against a real HTTP receiver on loopback (axum): signatures checked by
//! two implementations independent of ours (the Standard Webhooks reference library for
//! Python, `standardwebhooks` from PyPI, run as a process; and a check written from the
//! specification with `ring`'s HMAC), the classification of the receiver's answers (500
//! then 200, 410, 400, 429 with Retry-After, a receiver that is down, a redirect to
//! another host), and the Slack message against Slack's documented shape.
//!
//! The Python check skips with a printed reason when `standardwebhooks` is not importable,
//! unless `SCOREKEEPER_TEST_REQUIRE_STANDARDWEBHOOKS=1` (set by `.ci/run`, which installs
//! the pinned package) says it must be there.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use scorekeeper::config::WebhookFormat;
use scorekeeper::notify::webhook::{self, USER_AGENT_VALUE};
use scorekeeper::notify::{
    AlertEvent, EventKind, MeasureRef, Notification, NotificationKind, Outcome, PeriodRef,
    TargetRef,
};
use scorekeeper::secret::Secret;
use tokio::io::AsyncWriteExt;

/// A Standard Webhooks secret (32 random bytes) used only by these tests.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD7aZ0u+1Vyfo=";
/// A path that stands for a credential in the URL (as in Slack's): never in an error.
const SECRET_PATH: &str = "/hooks/T0001/B0001/pathsecret42";
const REQUIRE_PYTHON: &str = "SCOREKEEPER_TEST_REQUIRE_STANDARDWEBHOOKS";

/// One request as the receiver got it.
#[derive(Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("the request has no {name} header"))
    }
}

/// What the receiver answers: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers from a script
/// (200 "ok" once the script is used up).
struct Receiver {
    base: String,
    state: ReceiverState,
}

impl Receiver {
    async fn start(answers: Vec<Answer>) -> Self {
        let state = ReceiverState::default();
        state
            .answers
            .lock()
            .expect("no test panicked while holding the lock")
            .extend(answers);
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{address}"),
            state,
        }
    }

    fn url(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("{}{SECRET_PATH}", self.base)).expect("a valid URL")
    }

    fn received(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .expect("no test panicked while holding the lock")
            .clone()
    }
}

async fn record(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> Response {
    state
        .received
        .lock()
        .expect("no test panicked while holding the lock")
        .push(Received {
            headers,
            body: body.to_vec(),
        });
    let answer = state
        .answers
        .lock()
        .expect("no test panicked while holding the lock")
        .pop_front();
    let (status, headers, body) = answer.unwrap_or((200, Vec::new(), "ok".to_string()));
    let mut response = (
        StatusCode::from_u16(status).expect("the script holds valid statuses"),
        body,
    )
        .into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("the script holds ASCII headers"));
    }
    response
}

fn notification() -> Notification {
    Notification {
        id: scorekeeper::notify::new_id(),
        kind: NotificationKind::Alerts,
        scorecard: "Acme Coffee & Tea".to_string(),
        timezone: "Europe/Berlin".to_string(),
        created_at: "2026-03-09T08:00:03+01:00".to_string(),
        dashboard_url: Some("https://scorecard.acme.example/".to_string()),
        alerts: vec![AlertEvent {
            event: EventKind::Firing,
            measure: Some(MeasureRef {
                id: "mrr".to_string(),
                name: "Monthly recurring revenue <EUR>".to_string(),
                perspective: "financial".to_string(),
                unit: Some("EUR".to_string()),
                owner: Some("finance".to_string()),
            }),
            source: None,
            period: Some(PeriodRef {
                label: "2026-02".to_string(),
                start: "2026-02-01T00:00:00+01:00".to_string(),
                end: "2026-03-01T00:00:00+01:00".to_string(),
                complete: true,
            }),
            value: Some(41200.0),
            target: Some(TargetRef {
                value: 50000.0,
                direction: "up".to_string(),
                warn: Some(45000.0),
            }),
            status: "red".to_string(),
            previous_status: Some("amber".to_string()),
            forecast: None,
            since: "2026-03-02T06:00:00+01:00".to_string(),
            at: "2026-03-09T08:00:00+01:00".to_string(),
        }],
        digest: None,
    }
}

fn client() -> reqwest::Client {
    webhook::client().expect("the webhook client builds")
}

/// The Standard Webhooks check written from the specification, with `ring`'s HMAC (not
/// the `hmac` crate scorekeeper signs with): the timestamp within 5 minutes, and one of
/// the space-separated `v1,` signatures matching, compared in constant time.
fn verify_with_ring(secret: &str, received: &Received) -> Result<(), String> {
    let timestamp: i64 = received
        .header("webhook-timestamp")
        .parse()
        .map_err(|_| "webhook-timestamp is not an integer".to_string())?;
    if (chrono::Utc::now().timestamp() - timestamp).abs() > 300 {
        return Err(format!(
            "webhook-timestamp {timestamp} is not within 5 minutes"
        ));
    }
    let key_bytes = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|error| format!("the secret is not base64: {error}"))?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    let mut signed = format!("{}.{timestamp}.", received.header("webhook-id")).into_bytes();
    signed.extend_from_slice(&received.body);
    let matched = received
        .header("webhook-signature")
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, signature)| {
            base64::engine::general_purpose::STANDARD
                .decode(signature)
                .ok()
        })
        .any(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok());
    if matched {
        Ok(())
    } else {
        Err("no v1 signature matches".to_string())
    }
}

/// Runs the reference library's `Webhook(secret).verify(body, headers)` in a Python
/// process. `None` when the library is not importable and not required (printed).
async fn verify_with_standardwebhooks(
    secret: &str,
    received: &Received,
) -> Option<Result<(), String>> {
    // Asked once per test process, so the skip is printed once.
    static IMPORTABLE: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    let importable = *IMPORTABLE
        .get_or_init(|| async {
            tokio::process::Command::new("python3")
                .args(["-c", "import standardwebhooks"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .is_ok_and(|status| status.success())
        })
        .await;
    if !importable {
        let required = std::env::var(REQUIRE_PYTHON).is_ok_and(|value| value == "1");
        assert!(
            !required,
            "{REQUIRE_PYTHON}=1 but `python3 -c 'import standardwebhooks'` fails: install it with `python3 -m pip install standardwebhooks==1.1.0`"
        );
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!(
            "skipping the standardwebhooks (Python) check: `import standardwebhooks` fails in python3; set {REQUIRE_PYTHON}=1 to make this a failure"
        ));
        return None;
    }
    const SCRIPT: &str = r#"
import base64, json, sys
from standardwebhooks.webhooks import Webhook
request = json.load(sys.stdin)
body = base64.b64decode(request["body"])
try:
    Webhook(request["secret"]).verify(body, request["headers"], json_parse=False)
except Exception as error:
    print(f"{type(error).__name__}: {error}")
    sys.exit(1)
print("verified")
"#;
    let input = serde_json::json!({
        "secret": secret,
        "headers": {
            "webhook-id": received.header("webhook-id"),
            "webhook-timestamp": received.header("webhook-timestamp"),
            "webhook-signature": received.header("webhook-signature"),
        },
        "body": base64::engine::general_purpose::STANDARD.encode(&received.body),
    });
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs (it imported standardwebhooks a moment ago)");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .expect("python3 reads its stdin");
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the Python check ends within a minute")
        .expect("python3 ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Some(if output.status.success() && said == "verified" {
        Ok(())
    } else {
        Err(said)
    })
}

#[tokio::test]
async fn signed_delivery_verifies_with_the_reference_library_and_from_the_spec() {
    let receiver = Receiver::start(Vec::new()).await;
    let notification = notification();
    let secret = Secret::new(SECRET);
    let outcome = webhook::send(
        &client(),
        &receiver.url(),
        Some(&secret),
        WebhookFormat::Standard,
        &notification,
    )
    .await;
    assert_eq!(outcome, Outcome::Delivered);

    let received = receiver.received();
    assert_eq!(received.len(), 1, "one POST per send");
    let request = &received[0];
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("user-agent"), USER_AGENT_VALUE);
    assert_eq!(request.header("webhook-id"), notification.id);
    assert_eq!(
        request.body,
        webhook::body(&notification, WebhookFormat::Standard).as_bytes(),
        "the body sent is the documented body, byte for byte"
    );
    let parsed: serde_json::Value =
        serde_json::from_slice(&request.body).expect("the body is JSON");
    assert_eq!(parsed["type"], "scorekeeper.alerts");
    assert_eq!(parsed["version"], 1);
    assert_eq!(parsed["id"], notification.id.as_str());
    assert_eq!(parsed["data"]["alerts"][0]["measure"]["id"], "mrr");

    verify_with_ring(SECRET, request).expect("the signature verifies from the spec");
    if let Some(result) = verify_with_standardwebhooks(SECRET, request).await {
        result.expect("the signature verifies with the standardwebhooks library");
    }

    // Both checks can fail: a changed body, a changed id or another secret is refused.
    let mut tampered = request.clone();
    tampered.body.extend_from_slice(b" ");
    let mut other_id = request.clone();
    other_id
        .headers
        .insert("webhook-id", "msg_someoneelse".parse().expect("ASCII"));
    let other_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for (secret, forged) in [
        (SECRET, &tampered),
        (SECRET, &other_id),
        (other_secret, request),
    ] {
        assert!(verify_with_ring(secret, forged).is_err());
        if let Some(result) = verify_with_standardwebhooks(secret, forged).await {
            let error = result.expect_err("the library refuses a forged delivery");
            assert!(error.contains("WebhookVerificationError"), "{error}");
        }
    }
}

#[tokio::test]
async fn server_error_then_success_is_a_retry_then_one_delivery_with_the_same_id() {
    let receiver = Receiver::start(vec![(500, Vec::new(), "database down".to_string())]).await;
    let notification = notification();
    let secret = Secret::new(SECRET);
    let first = webhook::send(
        &client(),
        &receiver.url(),
        Some(&secret),
        WebhookFormat::Standard,
        &notification,
    )
    .await;
    match &first {
        Outcome::Retry { error, after } => {
            assert!(error.contains("500 Internal Server Error"), "{error}");
            assert!(error.contains("database down"), "{error}");
            assert_eq!(*after, None);
        }
        other => panic!("{other:?}"),
    }
    let second = webhook::send(
        &client(),
        &receiver.url(),
        Some(&secret),
        WebhookFormat::Standard,
        &notification,
    )
    .await;
    assert_eq!(second, Outcome::Delivered);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].header("webhook-id"), notification.id);
    assert_eq!(received[1].header("webhook-id"), notification.id);
    assert_eq!(received[0].body, received[1].body);
    // Each attempt is signed for its own timestamp.
    verify_with_ring(SECRET, &received[1]).expect("the retry is signed");
}

/// Sends `notification()` with the secret to a receiver answering `answer` once.
async fn outcome_of(answer: Answer) -> Outcome {
    let receiver = Receiver::start(vec![answer]).await;
    let outcome = webhook::send(
        &client(),
        &receiver.url(),
        Some(&Secret::new(SECRET)),
        WebhookFormat::Standard,
        &notification(),
    )
    .await;
    assert_eq!(receiver.received().len(), 1, "{outcome:?}");
    let error = match &outcome {
        Outcome::Delivered => String::new(),
        Outcome::Retry { error, .. } | Outcome::Failed { error } | Outcome::Gone { error } => {
            error.clone()
        }
    };
    assert!(!error.contains(SECRET), "{error}");
    assert!(!error.contains("pathsecret42"), "{error}");
    outcome
}

#[tokio::test]
async fn gone_receiver_disables_the_channel() {
    let outcome = outcome_of((410, Vec::new(), "channel_is_archived".to_string())).await;
    match outcome {
        Outcome::Gone { error } => {
            assert!(error.contains("410 Gone"), "{error}");
            assert!(error.contains("channel_is_archived"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_request_fails_with_the_receivers_status_and_answer() {
    let outcome = outcome_of((
        400,
        vec![("content-type", "application/json".to_string())],
        format!(
            "{{\"error\": \"invalid_payload\",\n \"detail\": \"{}\"}}",
            "x".repeat(5000)
        ),
    ))
    .await;
    match outcome {
        Outcome::Failed { error } => {
            assert!(error.contains("400 Bad Request"), "{error}");
            assert!(error.contains("invalid_payload"), "{error}");
            assert!(error.chars().count() < 300, "a short excerpt: {error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rate_limited_receiver_is_retried_after_its_retry_after() {
    let outcome = outcome_of((
        429,
        vec![("retry-after", "7".to_string())],
        "slow down".to_string(),
    ))
    .await;
    match outcome {
        Outcome::Retry { error, after } => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            assert!(error.contains("429 Too Many Requests"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn receiver_that_is_down_is_retried() {
    // A port that was just free: nothing listens on it any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let address = listener
        .local_addr()
        .expect("a bound listener has an address");
    drop(listener);
    let url = reqwest::Url::parse(&format!("http://{address}{SECRET_PATH}")).expect("a valid URL");
    let outcome = webhook::send(
        &client(),
        &url,
        Some(&Secret::new(SECRET)),
        WebhookFormat::Standard,
        &notification(),
    )
    .await;
    match outcome {
        Outcome::Retry { error, after } => {
            assert_eq!(after, None);
            assert!(
                error.starts_with(&format!("webhook http://{address}: connection failed")),
                "{error}"
            );
            assert!(!error.contains("pathsecret42"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn redirect_to_another_host_is_not_followed() {
    let elsewhere = Receiver::start(Vec::new()).await;
    // The same server under another host name: a client that follows redirects reaches it.
    let port = elsewhere
        .base
        .rsplit(':')
        .next()
        .expect("the base has a port");
    let location = format!("http://localhost:{port}/captured");
    let redirecting = || {
        Receiver::start(vec![(
            307,
            vec![("location", format!("{location}?token=abc"))],
            String::new(),
        )])
    };

    let receiver = redirecting().await;
    let outcome = webhook::send(
        &client(),
        &receiver.url(),
        Some(&Secret::new(SECRET)),
        WebhookFormat::Standard,
        &notification(),
    )
    .await;
    match &outcome {
        Outcome::Failed { error } => {
            assert!(error.contains("307 Temporary Redirect"), "{error}");
            assert!(error.contains(&location), "{error}");
            assert!(!error.contains("token=abc"), "{error}");
            assert!(error.contains("set the channel's url"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        elsewhere.received().len(),
        0,
        "the redirect was not followed"
    );

    // Control: the same redirect, through a client that follows redirects, does reach the
    // other host, and send() still refuses to call that a delivery.
    scorekeeper::tls::install_crypto_provider();
    let following = reqwest::Client::builder()
        .build()
        .expect("a default client builds");
    let receiver = redirecting().await;
    let outcome = webhook::send(
        &following,
        &receiver.url(),
        Some(&Secret::new(SECRET)),
        WebhookFormat::Standard,
        &notification(),
    )
    .await;
    assert!(
        matches!(&outcome, Outcome::Failed { error } if error.contains("followed a redirect")),
        "{outcome:?}"
    );
    assert_eq!(elsewhere.received().len(), 1);
}

/// Checks a Slack incoming-webhook message against Slack's documented shape and limits:
/// `text` and `blocks` only; at most 50 blocks of known types; a header's plain text at
/// most 150 characters; a section's mrkdwn text at most 3000; a context's elements at most
/// 10; a button's plain text at most 75 and URL at most 3000.
fn assert_slack_message(message: &serde_json::Value) {
    let object = message.as_object().expect("the message is an object");
    for key in object.keys() {
        assert!(
            ["text", "blocks"].contains(&key.as_str()),
            "unexpected key {key}"
        );
    }
    let text = message["text"].as_str().expect("text is a string");
    assert!(!text.is_empty() && text.chars().count() <= 40_000);
    let blocks = message["blocks"].as_array().expect("blocks is an array");
    assert!(
        !blocks.is_empty() && blocks.len() <= 50,
        "{} blocks",
        blocks.len()
    );
    let chars = |value: &serde_json::Value| value.as_str().expect("a string").chars().count();
    for block in blocks {
        match block["type"].as_str().expect("every block has a type") {
            "header" => {
                assert_eq!(block["text"]["type"], "plain_text");
                assert!((1..=150).contains(&chars(&block["text"]["text"])));
            }
            "section" => {
                assert_eq!(block["text"]["type"], "mrkdwn");
                assert!((1..=3000).contains(&chars(&block["text"]["text"])));
            }
            "context" => {
                let elements = block["elements"].as_array().expect("context elements");
                assert!((1..=10).contains(&elements.len()));
                for element in elements {
                    assert_eq!(element["type"], "mrkdwn");
                }
            }
            "actions" => {
                let elements = block["elements"].as_array().expect("actions elements");
                assert!((1..=25).contains(&elements.len()));
                for element in elements {
                    assert_eq!(element["type"], "button");
                    assert_eq!(element["text"]["type"], "plain_text");
                    assert!((1..=75).contains(&chars(&element["text"]["text"])));
                    assert!((1..=3000).contains(&chars(&element["url"])));
                }
            }
            other => panic!("unexpected block type {other}"),
        }
    }
}

#[tokio::test]
async fn slack_format_posts_a_documented_incoming_webhook_message() {
    let receiver = Receiver::start(Vec::new()).await;
    let notification = notification();
    let outcome = webhook::send(
        &client(),
        &receiver.url(),
        None,
        WebhookFormat::Slack,
        &notification,
    )
    .await;
    assert_eq!(outcome, Outcome::Delivered);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.header("content-type"), "application/json");
    assert!(
        request.headers.get("webhook-signature").is_none(),
        "unsigned without a secret"
    );
    let message: serde_json::Value =
        serde_json::from_slice(&request.body).expect("the body is JSON");
    assert_slack_message(&message);
    let blocks = message["blocks"].as_array().expect("blocks is an array");
    assert_eq!(blocks[0]["text"]["text"], "Acme Coffee & Tea: 1 alert");
    let alert = blocks[1]["text"]["text"].as_str().expect("a section");
    assert!(
        alert.starts_with(":red_circle: *Monthly recurring revenue &lt;EUR&gt;* is *red*"),
        "{alert}"
    );
    assert!(
        alert.contains("Value *41,200 EUR* vs target *≥ 50,000 EUR*"),
        "{alert}"
    );
    assert_eq!(
        blocks.last().expect("blocks")["elements"][0]["url"],
        "https://scorecard.acme.example/"
    );

    // A digest with many measures, and a test message, keep the same shape.
    let mut digest = notification.clone();
    digest.kind = NotificationKind::Digest;
    digest.alerts.clear();
    let line = scorekeeper::notify::DigestLine {
        measure: notification.alerts[0].measure.clone().expect("a measure"),
        period: notification.alerts[0].period.clone().expect("a period"),
        value: Some(41200.0),
        target: notification.alerts[0].target.clone(),
        status: "red".to_string(),
        previous_status: None,
        forecast: None,
    };
    digest.digest = Some(scorekeeper::notify::Digest {
        since: None,
        lines: vec![line; 500],
    });
    assert_slack_message(
        &serde_json::from_str(&webhook::body(&digest, WebhookFormat::Slack)).expect("JSON"),
    );
    let mut test = notification.clone();
    test.kind = NotificationKind::Test;
    test.alerts[0].event = EventKind::Test;
    assert_slack_message(
        &serde_json::from_str(&webhook::body(&test, WebhookFormat::Slack)).expect("JSON"),
    );
}
