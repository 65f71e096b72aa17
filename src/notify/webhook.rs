//! Webhook delivery: scorekeeper's versioned JSON body signed per Standard Webhooks, or a
//! Slack incoming-webhook message (rendered by `notify::slack`), posted once per call and
//! classified into an [`Outcome`]. Retrying, backoff and giving up belong to the
//! dispatcher; this module never loops, never sleeps and never stores anything.
//!
//! Signing follows the Standard Webhooks specification 1.0.0
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>,
//! <https://www.standardwebhooks.com>):
//! - headers `webhook-id` (the notification id, the same on every retry, for receivers to
//!   de-duplicate), `webhook-timestamp` (integer Unix seconds of *this attempt*) and
//!   `webhook-signature`, a space-delimited list of `v1,<base64 HMAC-SHA256>` entries (we
//!   send one);
//! - the signed content is `{webhook-id}.{webhook-timestamp}.{body}` over the exact body
//!   bytes sent (minified JSON, never re-serialized after signing);
//! - the secret is `whsec_` + base64 of 24 to 64 random bytes; the key is the decoded bytes;
//! - 2xx is success; 3xx is a failure (redirects are not followed: the URL should be
//!   updated instead); 410 Gone disables the endpoint; 429, 502 and 504 ask for throttling
//!   and `Retry-After` is honoured; a request timeout between 15 and 30 s is recommended.
//!
//! The test vector in the unit tests is the one of the specification's reference Python
//! library (`libraries/python/tests/test_webhooks.py`, `test_sign_function`).
//!
//! The Slack format follows Slack's incoming webhooks and Block Kit references:
//! <https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks> (a POST of
//! `{"text", "blocks"}` as `application/json`, `text` being the notification fallback),
//! <https://docs.slack.dev/reference/block-kit/blocks> (at most 50 blocks per message),
//! <https://docs.slack.dev/reference/block-kit/blocks/section-block> (text at most 3000
//! characters), <https://docs.slack.dev/reference/block-kit/blocks/header-block>
//! (plain text at most 150 characters),
//! <https://docs.slack.dev/reference/block-kit/block-elements/button-element> (text at
//! most 75 characters, `url` at most 3000), and
//! <https://docs.slack.dev/messaging/formatting-message-text> (`&`, `<` and `>` escaped as
//! HTML entities in mrkdwn). Slack answers `200 ok`, or 400 `invalid_payload`, 403
//! `action_prohibited`, 404 `channel_not_found`, 410 `channel_is_archived`, 500
//! `rollup_error` (<https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks>),
//! and 429 with `Retry-After` past about one message per second; the generic
//! classification below handles all of them.
//!
//! Errors name the receiver by its origin only (`https://hooks.example.com`): a webhook
//! URL's path is often a credential itself (Slack's is). The signing secret is used only
//! inside [`sign`] and never formatted.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, USER_AGENT};
use serde::Serialize;
use sha2::Sha256;

use super::{
    AlertEvent, DigestLine, ForecastRef, MeasureRef, Notification, NotificationKind, Outcome,
    PeriodRef, SCHEMA_VERSION, SourceRef, TargetRef, webhook_secret_bytes,
};
use crate::config::WebhookFormat;
use crate::secret::Secret;

/// How long one delivery attempt may take, connection included. The specification
/// recommends 15 to 30 s so receivers have time to process and acknowledge.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The User-Agent of every delivery.
pub const USER_AGENT_VALUE: &str = concat!("scorekeeper/", env!("CARGO_PKG_VERSION"));

/// At most this much of a receiver's answer is read, and at most `EXCERPT_CHARS` of it
/// end up in an error.
const ANSWER_LIMIT: usize = 4096;
const EXCERPT_CHARS: usize = 200;

/// A client for webhook deliveries: rustls, no redirects (a 3xx is a failure that names
/// the new location; following it could post the notification to another host), the
/// User-Agent and [`TIMEOUT`]. [`send`] sets the User-Agent and timeout per request as
/// well, but only the client can refuse redirects: always deliver through this one.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT_VALUE)
        .connect_timeout(Duration::from_secs(10))
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The Standard Webhooks signature of one attempt: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` keyed with the secret's decoded bytes.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).expect("HMAC-SHA256 accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let signature = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(signature)
    )
}

/// The body posted for `notification`: scorekeeper's versioned JSON (schema
/// [`SCHEMA_VERSION`], documented in README "Webhook notifications"), or a Slack message.
/// Minified; the exact string is what gets signed and sent.
pub fn body(notification: &Notification, format: WebhookFormat) -> String {
    match format {
        WebhookFormat::Standard => standard_body(notification),
        WebhookFormat::Slack => super::slack::message(notification).to_string(),
    }
}

/// Posts `notification` to `url` once and says what happened. `client` must come from
/// [`client`] (no redirects). The `webhook-timestamp` is this attempt's wall-clock time;
/// the `webhook-id` is the notification's id. Never panics; cancelling the future drops
/// the request in flight (the dispatcher then treats the delivery as not done).
pub async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    secret: Option<&Secret>,
    format: WebhookFormat,
    notification: &Notification,
) -> Outcome {
    let receiver = origin(url);
    let body = body(notification, format);
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(url.clone())
        .timeout(TIMEOUT)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header("webhook-id", notification.id.as_str())
        .header("webhook-timestamp", timestamp.to_string());
    if let Some(secret) = secret {
        let Some(key) = webhook_secret_bytes(secret) else {
            return Outcome::Failed {
                error: format!(
                    "webhook {receiver}: the secret is not a Standard Webhooks secret (\"whsec_\" followed by base64 of 24 to 64 bytes); nothing was sent"
                ),
            };
        };
        request = request.header(
            "webhook-signature",
            sign(&key, &notification.id, timestamp, &body),
        );
    }
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(error) => {
            return Outcome::Retry {
                error: format!(
                    "webhook {receiver}: {}",
                    crate::sources::http::describe_reqwest_error(&error)
                ),
                after: None,
            };
        }
    };
    if origin(response.url()) != receiver {
        // Only a client that follows redirects gets here; `client()` never does.
        return Outcome::Failed {
            error: format!(
                "webhook {receiver}: the HTTP client followed a redirect to {}; deliver through notify::webhook::client(), which does not",
                origin(response.url())
            ),
        };
    }
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let headers = response.headers().clone();
    let answer = excerpt(&read_answer(response).await);
    classify(&receiver, status, &headers, &answer)
}

/// The outcome of a non-2xx answer.
fn classify(receiver: &str, status: StatusCode, headers: &HeaderMap, answer: &str) -> Outcome {
    let said = if answer.is_empty() {
        format!("webhook {receiver} answered {status}")
    } else {
        format!("webhook {receiver} answered {status}: {answer}")
    };
    if status.is_redirection() {
        let location = headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| url_without_query(receiver, text));
        let fix = match location {
            Some(location) => format!(
                "redirects are not followed; if {location} is the new address, set the channel's url to it"
            ),
            None => {
                "redirects are not followed; set the channel's url to the receiver's final address"
                    .to_string()
            }
        };
        return Outcome::Failed {
            error: format!("webhook {receiver} answered {status}: {fix}"),
        };
    }
    match status.as_u16() {
        410 => Outcome::Gone {
            error: format!(
                "{said}; the receiver no longer accepts deliveries: the channel stays disabled until its configuration changes"
            ),
        },
        408 | 429 => Outcome::Retry {
            error: said,
            after: crate::sources::http::retry_after(headers),
        },
        _ if status.is_server_error() => Outcome::Retry {
            error: said,
            after: crate::sources::http::retry_after(headers),
        },
        _ => Outcome::Failed { error: said },
    }
}

/// Up to [`ANSWER_LIMIT`] bytes of the answer; a broken body reads as what arrived.
async fn read_answer(mut response: reqwest::Response) -> Vec<u8> {
    let mut answer = Vec::new();
    while answer.len() < ANSWER_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    answer.truncate(ANSWER_LIMIT);
    answer
}

/// A one-line excerpt of a receiver's answer: whitespace collapsed, control characters
/// dropped, at most [`EXCERPT_CHARS`] characters.
fn excerpt(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let words: Vec<&str> = text.split_whitespace().collect();
    let line: String = words
        .join(" ")
        .chars()
        .filter(|character| !character.is_control())
        .collect();
    truncate(&line, EXCERPT_CHARS)
}

/// `scheme://host[:port]`: how errors name a receiver without its (often secret) path.
fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// A redirect target, resolved against the receiver, without its query and fragment.
fn url_without_query(receiver: &str, location: &str) -> Option<String> {
    let base = reqwest::Url::parse(receiver).ok()?;
    let mut target = base.join(location).ok()?;
    target.set_query(None);
    target.set_fragment(None);
    Some(target.to_string())
}

/// `text` cut to `max` characters, the last one an ellipsis when cut.
pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

// ---------------------------------------------------------------------------------------
// The standard body, schema version 1. Every key is always present (null when it does not
// apply), in this order. Adding a key is compatible; renaming, removing or changing the
// meaning of one needs a new SCHEMA_VERSION.

#[derive(Serialize)]
struct WireBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u32,
    id: &'a str,
    timestamp: &'a str,
    scorecard: &'a str,
    timezone: &'a str,
    dashboard_url: Option<&'a str>,
    data: WireData<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireData<'a> {
    Alerts {
        alerts: Vec<WireAlert<'a>>,
    },
    Digest {
        since: Option<&'a str>,
        lines: Vec<WireLine<'a>>,
    },
}

#[derive(Serialize)]
struct WireAlert<'a> {
    event: &'static str,
    measure: Option<WireMeasure<'a>>,
    source: Option<WireSource<'a>>,
    period: Option<WirePeriod<'a>>,
    value: Option<f64>,
    target: Option<WireTarget<'a>>,
    status: &'a str,
    previous_status: Option<&'a str>,
    forecast: Option<WireForecast<'a>>,
    since: &'a str,
    at: &'a str,
}

#[derive(Serialize)]
struct WireLine<'a> {
    measure: WireMeasure<'a>,
    period: WirePeriod<'a>,
    value: Option<f64>,
    target: Option<WireTarget<'a>>,
    status: &'a str,
    previous_status: Option<&'a str>,
    forecast: Option<WireForecast<'a>>,
}

#[derive(Serialize)]
struct WireMeasure<'a> {
    id: &'a str,
    name: &'a str,
    perspective: &'a str,
    unit: Option<&'a str>,
    owner: Option<&'a str>,
}

#[derive(Serialize)]
struct WireSource<'a> {
    name: &'a str,
    kind: &'a str,
    last_success_at: Option<&'a str>,
    last_error: Option<&'a str>,
}

#[derive(Serialize)]
struct WirePeriod<'a> {
    label: &'a str,
    start: &'a str,
    end: &'a str,
    complete: bool,
}

#[derive(Serialize)]
struct WireTarget<'a> {
    value: f64,
    direction: &'a str,
    warn: Option<f64>,
}

#[derive(Serialize)]
struct WireForecast<'a> {
    value: f64,
    status: &'a str,
    method: &'a str,
    elapsed: f64,
}

impl<'a> WireMeasure<'a> {
    fn new(measure: &'a MeasureRef) -> Self {
        Self {
            id: &measure.id,
            name: &measure.name,
            perspective: &measure.perspective,
            unit: measure.unit.as_deref(),
            owner: measure.owner.as_deref(),
        }
    }
}

impl<'a> WireSource<'a> {
    fn new(source: &'a SourceRef) -> Self {
        Self {
            name: &source.name,
            kind: &source.kind,
            last_success_at: source.last_success_at.as_deref(),
            last_error: source.last_error.as_deref(),
        }
    }
}

impl<'a> WirePeriod<'a> {
    fn new(period: &'a PeriodRef) -> Self {
        Self {
            label: &period.label,
            start: &period.start,
            end: &period.end,
            complete: period.complete,
        }
    }
}

impl<'a> WireTarget<'a> {
    fn new(target: &'a TargetRef) -> Self {
        Self {
            value: target.value,
            direction: &target.direction,
            warn: target.warn,
        }
    }
}

impl<'a> WireForecast<'a> {
    fn new(forecast: &'a ForecastRef) -> Self {
        Self {
            value: forecast.value,
            status: &forecast.status,
            method: &forecast.method,
            elapsed: forecast.elapsed,
        }
    }
}

impl<'a> WireAlert<'a> {
    fn new(alert: &'a AlertEvent) -> Self {
        Self {
            event: alert.event.as_str(),
            measure: alert.measure.as_ref().map(WireMeasure::new),
            source: alert.source.as_ref().map(WireSource::new),
            period: alert.period.as_ref().map(WirePeriod::new),
            value: alert.value,
            target: alert.target.as_ref().map(WireTarget::new),
            status: &alert.status,
            previous_status: alert.previous_status.as_deref(),
            forecast: alert.forecast.as_ref().map(WireForecast::new),
            since: &alert.since,
            at: &alert.at,
        }
    }
}

impl<'a> WireLine<'a> {
    fn new(line: &'a DigestLine) -> Self {
        Self {
            measure: WireMeasure::new(&line.measure),
            period: WirePeriod::new(&line.period),
            value: line.value,
            target: line.target.as_ref().map(WireTarget::new),
            status: &line.status,
            previous_status: line.previous_status.as_deref(),
            forecast: line.forecast.as_ref().map(WireForecast::new),
        }
    }
}

/// The `type` of a notification kind.
fn event_type(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Alerts => "scorekeeper.alerts",
        NotificationKind::Digest => "scorekeeper.digest",
        NotificationKind::Test => "scorekeeper.test",
    }
}

fn standard_body(notification: &Notification) -> String {
    let data = match notification.kind {
        NotificationKind::Alerts | NotificationKind::Test => WireData::Alerts {
            alerts: notification.alerts.iter().map(WireAlert::new).collect(),
        },
        NotificationKind::Digest => WireData::Digest {
            since: notification
                .digest
                .as_ref()
                .and_then(|digest| digest.since.as_deref()),
            lines: notification
                .digest
                .iter()
                .flat_map(|digest| digest.lines.iter().map(WireLine::new))
                .collect(),
        },
    };
    let wire = WireBody {
        kind: event_type(notification.kind),
        version: SCHEMA_VERSION,
        id: &notification.id,
        timestamp: &notification.created_at,
        scorecard: &notification.scorecard,
        timezone: &notification.timezone,
        dashboard_url: notification.dashboard_url.as_deref(),
        data,
    };
    serde_json::to_string(&wire)
        .expect("the body holds only strings, numbers, booleans and nulls, which always serialize")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::notify::Digest;

    /// The example of README "Webhook notifications": one measure firing, one forecast to
    /// miss, one stale source.
    pub(in crate::notify) fn example_alerts() -> Notification {
        Notification {
            id: "msg_2h6x9k4mzq8r1t7v3w5b0c2d4f".to_string(),
            kind: NotificationKind::Alerts,
            scorecard: "Acme Coffee".to_string(),
            timezone: "Europe/Berlin".to_string(),
            created_at: "2026-03-09T08:00:03+01:00".to_string(),
            dashboard_url: Some("https://scorecard.acme.example/".to_string()),
            alerts: vec![
                AlertEvent {
                    event: crate::notify::EventKind::Firing,
                    measure: Some(MeasureRef {
                        id: "mrr".to_string(),
                        name: "Monthly recurring revenue".to_string(),
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
                },
                AlertEvent {
                    event: crate::notify::EventKind::Forecast,
                    measure: Some(MeasureRef {
                        id: "first_reply_hours".to_string(),
                        name: "First reply time".to_string(),
                        perspective: "customer".to_string(),
                        unit: Some("h".to_string()),
                        owner: None,
                    }),
                    source: None,
                    period: Some(PeriodRef {
                        label: "2026-03".to_string(),
                        start: "2026-03-01T00:00:00+01:00".to_string(),
                        end: "2026-04-01T00:00:00+02:00".to_string(),
                        complete: false,
                    }),
                    value: Some(4.6),
                    target: Some(TargetRef {
                        value: 4.0,
                        direction: "down".to_string(),
                        warn: Some(5.0),
                    }),
                    status: "amber".to_string(),
                    previous_status: None,
                    forecast: Some(ForecastRef {
                        value: 5.4,
                        status: "red".to_string(),
                        method: "trend".to_string(),
                        elapsed: 0.26,
                    }),
                    since: "2026-03-09T08:00:00+01:00".to_string(),
                    at: "2026-03-09T08:00:00+01:00".to_string(),
                },
                AlertEvent {
                    event: crate::notify::EventKind::Stale,
                    measure: None,
                    source: Some(SourceRef {
                        name: "stripe".to_string(),
                        kind: "stripe".to_string(),
                        last_success_at: Some("2026-03-09T04:00:00+01:00".to_string()),
                        last_error: Some(
                            "stripe.charges: 401 Unauthorized: Invalid API Key provided"
                                .to_string(),
                        ),
                    }),
                    period: None,
                    value: None,
                    target: None,
                    status: "stale".to_string(),
                    previous_status: None,
                    forecast: None,
                    since: "2026-03-09T06:00:00+01:00".to_string(),
                    at: "2026-03-09T08:00:00+01:00".to_string(),
                },
            ],
            digest: None,
        }
    }

    /// A digest of two measures, one changed since the previous digest.
    pub(in crate::notify) fn example_digest() -> Notification {
        let alerts = example_alerts();
        let mrr = alerts.alerts[0].clone();
        let reply = alerts.alerts[1].clone();
        Notification {
            id: "msg_5n1p7q3r9s2t8v4w6x0y1z3a5b".to_string(),
            kind: NotificationKind::Digest,
            created_at: "2026-03-09T08:00:00+01:00".to_string(),
            alerts: Vec::new(),
            digest: Some(Digest {
                since: Some("2026-03-02T08:00:00+01:00".to_string()),
                lines: vec![
                    DigestLine {
                        measure: mrr.measure.expect("the example has a measure"),
                        period: mrr.period.expect("the example has a period"),
                        value: mrr.value,
                        target: mrr.target,
                        status: mrr.status,
                        previous_status: mrr.previous_status,
                        forecast: None,
                    },
                    DigestLine {
                        measure: reply.measure.expect("the example has a measure"),
                        period: reply.period.expect("the example has a period"),
                        value: reply.value,
                        target: reply.target,
                        status: reply.status,
                        previous_status: None,
                        forecast: reply.forecast,
                    },
                ],
            }),
            ..alerts
        }
    }

    const EXAMPLE_ALERTS_V1: &str = concat!(
        r#"{"type":"scorekeeper.alerts","version":1,"id":"msg_2h6x9k4mzq8r1t7v3w5b0c2d4f","timestamp":"2026-03-09T08:00:03+01:00","scorecard":"Acme Coffee","timezone":"Europe/Berlin","dashboard_url":"https://scorecard.acme.example/""#,
        r#","data":{"alerts":["#,
        r#"{"event":"firing","measure":{"id":"mrr","name":"Monthly recurring revenue","perspective":"financial","unit":"EUR","owner":"finance"},"source":null"#,
        r#","period":{"label":"2026-02","start":"2026-02-01T00:00:00+01:00","end":"2026-03-01T00:00:00+01:00","complete":true}"#,
        r#","value":41200.0,"target":{"value":50000.0,"direction":"up","warn":45000.0}"#,
        r#","status":"red","previous_status":"amber","forecast":null"#,
        r#","since":"2026-03-02T06:00:00+01:00","at":"2026-03-09T08:00:00+01:00"},"#,
        r#"{"event":"forecast","measure":{"id":"first_reply_hours","name":"First reply time","perspective":"customer","unit":"h","owner":null},"source":null"#,
        r#","period":{"label":"2026-03","start":"2026-03-01T00:00:00+01:00","end":"2026-04-01T00:00:00+02:00","complete":false}"#,
        r#","value":4.6,"target":{"value":4.0,"direction":"down","warn":5.0}"#,
        r#","status":"amber","previous_status":null,"forecast":{"value":5.4"#,
        r#","status":"red","method":"trend","elapsed":0.26}"#,
        r#","since":"2026-03-09T08:00:00+01:00","at":"2026-03-09T08:00:00+01:00"},"#,
        r#"{"event":"stale","measure":null,"source":{"name":"stripe","kind":"stripe","last_success_at":"2026-03-09T04:00:00+01:00","last_error":"stripe.charges: 401 Unauthorized: Invalid API Key provided"}"#,
        r#","period":null"#,
        r#","value":null,"target":null"#,
        r#","status":"stale","previous_status":null,"forecast":null"#,
        r#","since":"2026-03-09T06:00:00+01:00","at":"2026-03-09T08:00:00+01:00"}]}}"#,
    );

    const EXAMPLE_DIGEST_V1: &str = concat!(
        r#"{"type":"scorekeeper.digest","version":1,"id":"msg_5n1p7q3r9s2t8v4w6x0y1z3a5b","timestamp":"2026-03-09T08:00:00+01:00","scorecard":"Acme Coffee","timezone":"Europe/Berlin","dashboard_url":"https://scorecard.acme.example/""#,
        r#","data":{"since":"2026-03-02T08:00:00+01:00","lines":["#,
        r#"{"measure":{"id":"mrr","name":"Monthly recurring revenue","perspective":"financial","unit":"EUR","owner":"finance"}"#,
        r#","period":{"label":"2026-02","start":"2026-02-01T00:00:00+01:00","end":"2026-03-01T00:00:00+01:00","complete":true}"#,
        r#","value":41200.0,"target":{"value":50000.0,"direction":"up","warn":45000.0}"#,
        r#","status":"red","previous_status":"amber","forecast":null},"#,
        r#"{"measure":{"id":"first_reply_hours","name":"First reply time","perspective":"customer","unit":"h","owner":null}"#,
        r#","period":{"label":"2026-03","start":"2026-03-01T00:00:00+01:00","end":"2026-04-01T00:00:00+02:00","complete":false}"#,
        r#","value":4.6,"target":{"value":4.0,"direction":"down","warn":5.0}"#,
        r#","status":"amber","previous_status":null,"forecast":{"value":5.4"#,
        r#","status":"red","method":"trend","elapsed":0.26}}]}}"#,
    );

    #[test]
    fn standard_body_v1_of_the_example_alerts_is_pinned() {
        assert_eq!(
            body(&example_alerts(), WebhookFormat::Standard),
            EXAMPLE_ALERTS_V1
        );
    }

    #[test]
    fn standard_body_v1_of_the_example_digest_is_pinned() {
        assert_eq!(
            body(&example_digest(), WebhookFormat::Standard),
            EXAMPLE_DIGEST_V1
        );
    }

    #[test]
    fn test_notifications_have_their_own_type_and_the_alerts_shape() {
        let mut notification = example_alerts();
        notification.kind = NotificationKind::Test;
        notification.alerts.truncate(1);
        notification.alerts[0].event = crate::notify::EventKind::Test;
        let parsed: serde_json::Value =
            serde_json::from_str(&body(&notification, WebhookFormat::Standard))
                .expect("the body is JSON");
        assert_eq!(parsed["type"], "scorekeeper.test");
        assert_eq!(parsed["version"], 1);
        assert_eq!(parsed["data"]["alerts"][0]["event"], "test");
    }

    #[test]
    fn signs_the_standard_webhooks_reference_vector() {
        // libraries/python/tests/test_webhooks.py, test_sign_function, in the specification's
        // repository.
        let key = webhook_secret_bytes(&Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .expect("the vector's secret is a valid secret");
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // Any change to id, timestamp or body changes the signature.
        assert_ne!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265331,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("test header values are ASCII"));
        }
        map
    }

    #[test]
    fn answers_are_classified_per_the_specification() {
        let receiver = "https://hooks.example.com";
        let retry = |status: u16, pairs: &[(&'static str, &str)]| {
            classify(
                receiver,
                StatusCode::from_u16(status).expect("a valid status"),
                &headers(pairs),
                "busy",
            )
        };
        for (status, pairs, after) in [
            (408, &[][..], None),
            (
                429,
                &[("retry-after", "7")][..],
                Some(Duration::from_secs(7)),
            ),
            (500, &[][..], None),
            (502, &[][..], None),
            (
                503,
                &[("retry-after", "120")][..],
                Some(Duration::from_secs(120)),
            ),
            (504, &[][..], None),
        ] {
            match retry(status, pairs) {
                Outcome::Retry { error, after: got } => {
                    assert_eq!(got, after, "{status}");
                    assert!(error.contains(&status.to_string()), "{error}");
                    assert!(error.contains("busy"), "{error}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        match retry(410, &[]) {
            Outcome::Gone { error } => assert!(error.contains("410 Gone"), "{error}"),
            other => panic!("{other:?}"),
        }
        for status in [400, 401, 403, 404, 413, 422] {
            match retry(status, &[]) {
                Outcome::Failed { error } => {
                    assert!(
                        error.starts_with(&format!("webhook {receiver} answered {status}")),
                        "{error}"
                    );
                    assert!(error.ends_with(": busy"), "{error}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn redirects_fail_naming_the_location_without_its_query() {
        let outcome = classify(
            "https://hooks.example.com",
            StatusCode::PERMANENT_REDIRECT,
            &headers(&[("location", "https://new.example.net/hook?token=abc")]),
            "",
        );
        let Outcome::Failed { error } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(error.contains("308 Permanent Redirect"), "{error}");
        assert!(error.contains("https://new.example.net/hook"), "{error}");
        assert!(!error.contains("token=abc"), "{error}");
        assert!(error.contains("set the channel's url"), "{error}");
        // A relative location is resolved against the receiver.
        let outcome = classify(
            "https://hooks.example.com",
            StatusCode::FOUND,
            &headers(&[("location", "/v2/hook")]),
            "",
        );
        assert!(
            matches!(&outcome, Outcome::Failed { error } if error.contains("https://hooks.example.com/v2/hook")),
            "{outcome:?}"
        );
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b"  invalid_payload\n\n  \t"), "invalid_payload");
        assert_eq!(excerpt(b""), "");
        let long = excerpt("é".repeat(1000).as_bytes());
        assert_eq!(long.chars().count(), EXCERPT_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn errors_name_the_receiver_by_origin_only() {
        let url = reqwest::Url::parse("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
            .expect("a valid URL");
        assert_eq!(origin(&url), "https://hooks.slack.com");
    }
}
