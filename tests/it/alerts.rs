//! Alert evaluation against a real database: states, grouped outbox messages, routing
//! by owner, silences, forecasts, stale sources, resolution and restarts.

use chrono::{DateTime, Utc};
use scorekeeper::app::Services;
use scorekeeper::notify::{EventKind, Notification};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

/// A Stripe list of succeeded 100 EUR charges created at `times` (unix seconds).
fn charges(times: &[i64]) -> String {
    charges_failing(times, 0)
}

/// Like [`charges`], with the first `failed` of them failed.
fn charges_failing(times: &[i64], failed: usize) -> String {
    let data: Vec<serde_json::Value> = times
        .iter()
        .enumerate()
        .map(|(index, created)| {
            serde_json::json!({
                "id": format!("ch_{index:04}_{created}"), "object": "charge", "amount": 10000,
                "created": created, "currency": "eur", "customer": format!("cus_{index}"),
                "status": if index < failed { "failed" } else { "succeeded" }
            })
        })
        .collect();
    serde_json::json!({"object": "list", "url": "/v1/charges", "has_more": false, "data": data})
        .to_string()
}

fn config(database_url: &str, stripe_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Alert Bakery"
timezone = "Europe/Berlin"

[sources.stripe]
kind = "stripe"
schedule = "0 0 3 * * *"
start_date = "2026-01-01"
base_url = "{stripe_url}"
api_key = "${{TEST_STRIPE_KEY}}"
streams = ["charges"]
stale_after = "1h"

[measures.revenue]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "created"
value = "amount / 100"
aggregate = "sum"
target = {{ value = 1000, direction = "up", warn = 800 }}
owner = "finance"

[measures.orders]
perspective = "customer"
period = "month"
from = "stripe.charges"
time = "created"
aggregate = "count"
target = {{ value = 10, direction = "up", warn = 8 }}
owner = "ops"

[notify.everyone]
kind = "webhook"
url = "http://127.0.0.1:9/hook"

[notify.finance]
kind = "webhook"
url = "http://127.0.0.1:9/finance"
owners = ["finance"]
"#
    )
}

fn berlin(text: &str) -> DateTime<Utc> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .expect("valid time")
        .and_local_timezone(chrono_tz::Europe::Berlin)
        .single()
        .expect("not in a DST gap")
        .with_timezone(&Utc)
}

/// April 2026: three charges; May: two so far (all 100 EUR).
fn spring() -> Vec<i64> {
    [
        "2026-04-03 10:00",
        "2026-04-12 10:00",
        "2026-04-25 10:00",
        "2026-05-02 10:00",
        "2026-05-07 10:00",
    ]
    .iter()
    .map(|text| berlin(text).timestamp())
    .collect()
}

async fn mount(server: &MockServer, times: &[i64]) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(charges(times), "application/json"))
        .mount(server)
        .await;
}

async fn messages(services: &Services, channel: &str) -> Vec<Notification> {
    services
        .store
        .outbox_of(channel)
        .await
        .expect("outbox")
        .iter()
        .map(|row| serde_json::from_str(&row.body).expect("a notification"))
        .collect()
}

fn events(notification: &Notification) -> Vec<(EventKind, String)> {
    notification
        .alerts
        .iter()
        .map(|alert| {
            let subject = alert
                .measure
                .as_ref()
                .map(|measure| measure.id.clone())
                .or_else(|| alert.source.as_ref().map(|source| source.name.clone()))
                .unwrap_or_default();
            (alert.event, subject)
        })
        .collect()
}

async fn evaluate(services: &Services, now: DateTime<Utc>) -> usize {
    scorekeeper::alerts::evaluate(&services.store, &services.settings, &services.catalog, now)
        .await
        .expect("evaluation")
        .messages
}

#[tokio::test]
async fn off_target_months_fire_once_grouped_per_channel_forecast_and_resolve() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        mount(&stripe, &spring()).await;
        let text = config(&db.url, &stripe.uri());
        let services = services(settings(&text, GOOD_KEY)).await;
        assert!(sync_source(&services, "stripe").await.is_success());

        // 11 May: April (complete) is red for both measures: one message per channel,
        // the finance channel only with the finance measure. Forecasts wait for a second
        // evaluation.
        let first = berlin("2026-05-11 10:00");
        assert_eq!(evaluate(&services, first).await, 2, "{}", db.backend);
        let everyone = messages(&services, "everyone").await;
        assert_eq!(everyone.len(), 1, "{}", db.backend);
        assert_eq!(
            events(&everyone[0]),
            [
                (EventKind::Firing, "orders".to_string()),
                (EventKind::Firing, "revenue".to_string())
            ]
        );
        let alert = &everyone[0].alerts[1];
        assert_eq!(alert.value, Some(300.0));
        assert_eq!(alert.status, "red");
        assert_eq!(
            alert.period.as_ref().map(|p| p.label.as_str()),
            Some("2026-04")
        );
        let finance = messages(&services, "finance").await;
        assert_eq!(
            events(&finance[0]),
            [(EventKind::Firing, "revenue".to_string())]
        );

        // Ten minutes later: nothing new for April; May (200 after ten days) projects
        // to about 620, red: both forecasts fire, again one message per channel.
        let second = first + chrono::Duration::minutes(10);
        assert_eq!(evaluate(&services, second).await, 2);
        let everyone = messages(&services, "everyone").await;
        assert_eq!(everyone.len(), 2);
        assert_eq!(
            events(&everyone[1]),
            [
                (EventKind::Forecast, "orders".to_string()),
                (EventKind::Forecast, "revenue".to_string())
            ]
        );
        let forecast = everyone[1].alerts[1].forecast.as_ref().expect("projection");
        assert_eq!(forecast.method, "pro_rata");
        assert_eq!(forecast.status, "red");
        let elapsed = forecast.elapsed;
        assert!(
            (forecast.value - 200.0 / elapsed).abs() < 1e-6,
            "{forecast:?}"
        );

        // A restart neither re-sends nor forgets.
        services.store.close().await;
        let services =
            scorekeeper::app::Services::prepare_with(settings(&text, GOOD_KEY), fast_retries())
                .await
                .expect("restart");
        assert_eq!(
            evaluate(&services, second + chrono::Duration::minutes(10)).await,
            0
        );
        assert_eq!(messages(&services, "everyone").await.len(), 2);

        // Seven late April charges arrive: April reaches 1,000 and resolves; orders (10)
        // too. Both resolutions go out together.
        let mut late = spring();
        late.extend((0..7).map(|day| berlin(&format!("2026-04-2{day} 12:00")).timestamp()));
        mount(&stripe, &late).await;
        assert!(sync_source(&services, "stripe").await.is_success());
        assert_eq!(
            evaluate(&services, second + chrono::Duration::minutes(20)).await,
            2
        );
        let everyone = messages(&services, "everyone").await;
        assert_eq!(
            events(everyone.last().expect("a message")),
            [
                (EventKind::Resolved, "orders".to_string()),
                (EventKind::Resolved, "revenue".to_string())
            ],
            "{}",
            db.backend
        );
        let history = services.store.alert_history(50).await.expect("history");
        assert!(
            history.iter().all(|row| row.message.is_some()),
            "{history:?}"
        );
        services.store.close().await;
    }
}

#[tokio::test]
async fn silences_keep_the_state_machine_running_but_send_nothing() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount(&stripe, &spring()).await;
    let services = services(settings(&config(&db.url, &stripe.uri()), GOOD_KEY)).await;
    assert!(sync_source(&services, "stripe").await.is_success());
    let now = berlin("2026-05-11 10:00");
    services
        .store
        .silence("orders", now.timestamp() + 3 * 86_400, now.timestamp())
        .await
        .expect("silence");
    evaluate(&services, now).await;
    let everyone = messages(&services, "everyone").await;
    assert_eq!(
        events(&everyone[0]),
        [(EventKind::Firing, "revenue".to_string())]
    );
    let states = services.store.alert_states().await.expect("states");
    let orders = states
        .iter()
        .find(|row| row.alert == "measure:orders")
        .expect("evaluated");
    assert_eq!(orders.state, "firing", "the machine ran");
    let history = services.store.alert_history(10).await.expect("history");
    assert!(
        history
            .iter()
            .any(|row| row.alert == "measure:orders" && row.silenced && row.message.is_none())
    );
}

#[tokio::test]
async fn a_source_without_a_successful_sync_for_stale_after_alerts_with_its_error() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("stripe/error_invalid_key.json"), "application/json"),
        )
        .mount(&stripe)
        .await;
    let services = services(settings(&config(&db.url, &stripe.uri()), "sk_test_revoked")).await;
    let started = Utc::now();
    assert!(!sync_source(&services, "stripe").await.is_success());
    // Within stale_after (1h) of the first attempt: nothing; past it: stale, naming
    // the source and the last error.
    evaluate(&services, started + chrono::Duration::minutes(30)).await;
    let stale = |notifications: &[Notification]| {
        notifications
            .iter()
            .flat_map(|n| n.alerts.iter())
            .filter(|alert| alert.event == EventKind::Stale)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(stale(&messages(&services, "everyone").await).is_empty());
    evaluate(&services, started + chrono::Duration::minutes(90)).await;
    let alerts = stale(&messages(&services, "everyone").await);
    assert_eq!(alerts.len(), 1);
    let source = alerts[0].source.as_ref().expect("the source");
    assert_eq!(source.name, "stripe");
    assert!(
        source
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("Invalid API Key")),
        "{source:?}"
    );
    // Nothing was ever synced: no measure is judged (an empty store is not a red month).
    assert!(
        messages(&services, "everyone")
            .await
            .iter()
            .flat_map(|n| n.alerts.iter())
            .all(|alert| alert.measure.is_none()),
        "only the stale source is told"
    );
    // The finance channel gets it too: finance owns a measure reading stripe.
    assert_eq!(stale(&messages(&services, "finance").await).len(), 1);
}

#[tokio::test]
async fn a_digest_reports_the_scorecard_and_what_changed_once_per_tick() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount(&stripe, &spring()).await;
    let text = config(&db.url, &stripe.uri()).replace(
        "[notify.everyone]",
        r#"[smtp]
host = "127.0.0.1"
port = 9
tls = "none"
from = "Scorekeeper <alerts@example.com>"

[notify.owner]
kind = "email"
to = ["owner@example.com"]
digest = "0 0 8 * * Mon"

[notify.everyone]"#,
    );
    let services = services(settings(&text, GOOD_KEY)).await;
    assert!(sync_source(&services, "stripe").await.is_success());
    let digest = |now| {
        let services = services.clone();
        async move {
            scorekeeper::alerts::digest::enqueue_due(
                &services.store,
                &services.settings,
                &services.catalog,
                now,
            )
            .await
            .expect("digest")
        }
    };
    // Sunday: the baseline. Monday 08:00 has passed by Monday 09:00: one digest; later
    // the same day: none; a week later: the next one.
    assert_eq!(digest(berlin("2026-05-10 12:00")).await, 0);
    assert_eq!(digest(berlin("2026-05-11 09:00")).await, 1);
    assert_eq!(digest(berlin("2026-05-11 15:00")).await, 0);
    let sent = messages(&services, "owner").await;
    assert_eq!(sent.len(), 1);
    let lines = &sent[0].digest.as_ref().expect("a digest").lines;
    let ids: Vec<&str> = lines.iter().map(|line| line.measure.id.as_str()).collect();
    assert_eq!(ids, ["revenue", "orders"], "financial first, then customer");
    assert!(lines.iter().all(|line| line.status == "red"));
    assert_eq!(digest(berlin("2026-05-18 09:00")).await, 1);
}

#[tokio::test]
async fn group_wait_gathers_later_alerts_and_group_interval_spaces_messages() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount(&stripe, &spring()).await;
    let text = config(&db.url, &stripe.uri()).replace(
        "url = \"http://127.0.0.1:9/hook\"",
        "url = \"http://127.0.0.1:9/hook\"\ngroup_wait = \"30s\"\ngroup_interval = \"5m\"",
    );
    let services = services(settings(&text, GOOD_KEY)).await;
    assert!(sync_source(&services, "stripe").await.is_success());
    let first = berlin("2026-05-11 10:00");
    evaluate(&services, first).await;
    // Ten seconds later the forecasts fire: they join the message still waiting.
    evaluate(&services, first + chrono::Duration::seconds(10)).await;
    let rows = services.store.outbox_of("everyone").await.expect("outbox");
    assert_eq!(rows.len(), 1, "one message");
    assert_eq!(rows[0].not_before, first.timestamp() + 30);
    let kinds: Vec<EventKind> = messages(&services, "everyone").await[0]
        .alerts
        .iter()
        .map(|alert| alert.event)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Firing,
            EventKind::Firing,
            EventKind::Forecast,
            EventKind::Forecast
        ]
    );
    // Recovery a minute later: a new message, held until the group interval after the
    // first one has passed.
    let mut late = spring();
    late.extend((0..7).map(|day| berlin(&format!("2026-04-2{day} 12:00")).timestamp()));
    mount(&stripe, &late).await;
    assert!(sync_source(&services, "stripe").await.is_success());
    evaluate(&services, first + chrono::Duration::seconds(60)).await;
    let rows = services.store.outbox_of("everyone").await.expect("outbox");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].not_before, first.timestamp() + 30 + 300);
    // The finance channel has no group settings: its messages go at once.
    let finance = services.store.outbox_of("finance").await.expect("outbox");
    assert!(finance.iter().all(|row| row.not_before == row.created_at));
}

#[tokio::test]
async fn a_month_hovering_at_the_threshold_does_not_flap() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    // April's eighth charge flips between failed and succeeded on every sync: revenue
    // hovers between 700 (red) and 800 (amber, but short of the 950 recovery level).
    let text = config(&db.url, &stripe.uri()).replace(
        "owner = \"finance\"",
        "owner = \"finance\"\nrecovery = 950\nforecast = false\nwhere = \"status == 'succeeded'\"",
    );
    let april: Vec<i64> = (0..8)
        .map(|day| berlin(&format!("2026-04-{:02} 10:00", day + 1)).timestamp())
        .collect();
    let services = services(settings(&text, GOOD_KEY)).await;
    let mut now = berlin("2026-05-11 10:00");
    for round in 0..6 {
        stripe.reset().await;
        Mock::given(method("GET"))
            .and(path("/v1/charges"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                charges_failing(&april, if round % 2 == 0 { 1 } else { 0 }),
                "application/json",
            ))
            .mount(&stripe)
            .await;
        assert!(sync_source(&services, "stripe").await.is_success());
        evaluate(&services, now).await;
        let revenue = services
            .store
            .alert_states()
            .await
            .expect("states")
            .into_iter()
            .find(|row| row.alert == "measure:revenue")
            .and_then(|row| row.value);
        assert_eq!(
            revenue,
            Some(if round % 2 == 0 { 700.0 } else { 800.0 }),
            "round {round}"
        );
        now += chrono::Duration::minutes(15);
    }
    let told: Vec<(EventKind, String)> = messages(&services, "finance")
        .await
        .iter()
        .flat_map(events)
        .collect();
    assert_eq!(
        told,
        [(EventKind::Firing, "revenue".to_string())],
        "700 red, 800 amber but short of the 950 recovery: one firing, no resolve/fire pairs"
    );
}
