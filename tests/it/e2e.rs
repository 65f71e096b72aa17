//! End to end: the compiled binary against wiremock, checked from outside (exit codes,
//! stdout, the HTTP API).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::{Datelike, TimeZone};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_scorekeeper");

/// Runs the binary with a config file and the test key; returns (exit code, stdout, stderr).
async fn scorekeeper(config: &Path, key: &str, args: &[&str]) -> (i32, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(BINARY)
            .arg("--config")
            .arg(config)
            .args(args)
            .env("TEST_STRIPE_KEY", key)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("the command finishes within a minute")
    .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("scorekeeper.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test]
async fn sync_then_series_prints_monthly_net_revenue_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    mount_stripe_fixtures(&stripe, 1).await;
    let database = format!("sqlite://{}", dir.path().join("sk.db").display());
    let config = write_config(&dir, &stripe_config(&database, &stripe.uri(), ""));

    let (code, stdout, stderr) = scorekeeper(&config, GOOD_KEY, &["sync"]).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("stripe.charges: 5 records (5 new or changed), 2 pages"),
        "{stdout}"
    );

    let (code, stdout, stderr) = scorekeeper(
        &config,
        GOOD_KEY,
        &[
            "series",
            "net_revenue",
            "--from",
            "2026-03-01",
            "--to",
            "2026-04-30",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let series: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(
        series,
        serde_json::json!([
            {"period": "2026-03", "start": "2026-03-01T00:00:00+01:00", "value": 50.0, "target": 60.0, "status": "amber"},
            {"period": "2026-04", "start": "2026-04-01T00:00:00+02:00", "value": 52.5, "target": 60.0, "status": "amber"}
        ])
    );
    let (code, stdout, _) = scorekeeper(
        &config,
        GOOD_KEY,
        &[
            "series",
            "gross_revenue",
            "--from",
            "2026-03-01",
            "--to",
            "2026-04-30",
            "--format",
            "csv",
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "period,start,value,target,status\n2026-03,2026-03-01T00:00:00+01:00,50,,none\n2026-04,2026-04-01T00:00:00+02:00,62.5,,none\n"
    );
    stripe.verify().await;
}

#[tokio::test]
async fn bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = stripe_config("sqlite://unused.db", "http://127.0.0.1:9", "")
        .replace("0 0 3 * * *", "0 0 3 * *");
    let config = write_config(&dir, &text);
    let (code, _, stderr) = scorekeeper(&config, GOOD_KEY, &["check"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("sources.stripe.schedule: invalid cron expression \"0 0 3 * *\""),
        "{stderr}"
    );
    assert!(!dir.path().join("unused.db").exists(), "nothing ran");
    let (code, _, stderr) = scorekeeper(&config, GOOD_KEY, &["series", "net_revenue"]).await;
    assert_eq!(code, 2, "every command validates first: {stderr}");
}

#[tokio::test]
async fn a_failed_sync_exits_1_and_names_the_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("stripe/error_invalid_key.json"), "application/json"),
        )
        .mount(&stripe)
        .await;
    let database = format!("sqlite://{}", dir.path().join("sk.db").display());
    let config = write_config(&dir, &stripe_config(&database, &stripe.uri(), ""));
    let (code, stdout, stderr) = scorekeeper(&config, "sk_test_wrong_secret_9876", &["sync"]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("stripe.charges: FAILED: unauthorized"),
        "{stdout}"
    );
    assert!(
        stderr.contains("sync failed for source(s): stripe"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("sk_test_wrong_secret_9876")
            && !stderr.contains("sk_test_wrong_secret_9876"),
        "the key never shows"
    );
}

/// Charges in the previous and the current month (Berlin), so the scorecard's judged
/// period (the last complete month for sums) has known values whatever today is.
fn charges_around_now() -> (String, f64, f64) {
    let berlin = chrono_tz::Europe::Berlin;
    let now = chrono::Utc::now().with_timezone(&berlin);
    let this_month = berlin
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .earliest()
        .expect("midnight exists");
    let last_month = this_month - chrono::Months::new(1);
    let at = |start: chrono::DateTime<chrono_tz::Tz>, hours: i64| {
        (start + chrono::Duration::hours(hours)).timestamp()
    };
    let charges = [
        ("ch_now", at(this_month, 2), 4200, "succeeded"),
        ("ch_b", at(last_month, 50), 3000, "succeeded"),
        ("ch_a", at(last_month, 10), 2500, "succeeded"),
        ("ch_f", at(last_month, 5), 9900, "failed"),
    ];
    let data: Vec<String> = charges
        .iter()
        .map(|(id, created, amount, status)| format!(r#"{{"id":"{id}","object":"charge","created":{created},"amount":{amount},"currency":"eur","status":"{status}","customer":"cus_1"}}"#))
        .collect();
    (
        format!(
            r#"{{"object":"list","url":"/v1/charges","has_more":false,"data":[{}]}}"#,
            data.join(",")
        ),
        55.0,
        42.0,
    )
}

#[tokio::test]
async fn run_serves_the_scorecard_on_a_random_port_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    let (charges, last_month_total, this_month_total) = charges_around_now();
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(charges, "application/json"))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"object":"list","has_more":false,"data":[]}"#,
            "application/json",
        ))
        .mount(&stripe)
        .await;
    let database = format!("sqlite://{}", dir.path().join("sk.db").display());
    // Every second, so the first sync starts at once.
    let text = stripe_config(&database, &stripe.uri(), "").replace("0 0 3 * * *", "* * * * * *");
    let config = write_config(&dir, &text);

    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(&config)
        .args(["--log-format", "json", "run"])
        .env("TEST_STRIPE_KEY", GOOD_KEY)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the daemon");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = Vec::new();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            log.push(line.clone());
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["message"] == "Scorekeeper running" {
                return event["address"]
                    .as_str()
                    .expect("address field")
                    .to_string();
            }
        }
        panic!("the daemon exited before it was running: {log:#?}");
    })
    .await
    .expect("the daemon starts within 30 s");
    // Keep draining stderr so the daemon never blocks on a full pipe.
    let drain = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });

    scorekeeper::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let scorecard = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(response) = client
                .get(format!("http://{address}/api/v1/scorecard"))
                .send()
                .await
            {
                let body: serde_json::Value =
                    serde_json::from_str(&response.text().await.unwrap_or_default())
                        .unwrap_or_default();
                let gross = body["perspectives"][0]["measures"]
                    .as_array()
                    .and_then(|measures| {
                        measures
                            .iter()
                            .find(|m| m["id"] == "gross_revenue")
                            .cloned()
                    });
                if gross.as_ref().is_some_and(|gross| {
                    gross["current"]["value"] == serde_json::json!(this_month_total)
                }) {
                    return body;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the scorecard shows synced values within 30 s");

    let financial = &scorecard["perspectives"][0];
    assert_eq!(financial["id"], "financial");
    let measure = |id: &str| {
        financial["measures"]
            .as_array()
            .expect("measures")
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .expect("measure present")
    };
    let net = measure("net_revenue");
    assert_eq!(net["evaluate"], "complete");
    assert_eq!(net["judged"]["value"], serde_json::json!(last_month_total));
    assert_eq!(net["judged"]["target"], serde_json::json!(60.0));
    assert_eq!(net["judged"]["status"], "amber");
    assert_eq!(
        measure("gross_revenue")["judged"]["value"],
        serde_json::json!(last_month_total)
    );
    let perspectives: Vec<&str> = scorecard["perspectives"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        perspectives,
        ["financial", "customer", "internal", "learning"]
    );
    let health = client
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(health.status().as_u16(), 200);
    let page = client
        .get(format!("http://{address}/"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    // The dashboard is a static page that reads the API above (browser.rs renders it).
    assert!(
        page.contains("<script type=\"module\" src=\"/assets/")
            && page.contains("id=\"perspectives\""),
        "{page}"
    );

    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits within 10 s of SIGTERM")
        .expect("wait");
    assert_eq!(exit.code(), Some(0));
    let rest = drain.await.expect("drain");
    assert!(
        rest.iter().any(|line| line.contains("Stopped")),
        "{rest:#?}"
    );
    assert!(
        !rest.iter().any(|line| line.contains("drain deadline")),
        "every task stopped by itself: {rest:#?}"
    );
    assert!(
        !log.iter().chain(&rest).any(|line| line.contains(GOOD_KEY)),
        "the API key never appears in the log"
    );
}

#[tokio::test]
async fn check_connect_tries_each_source_and_reports_the_api_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(wiremock::matchers::query_param("limit", "1"))
        .and(wiremock::matchers::header(
            "authorization",
            format!("Bearer {GOOD_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"object":"list","has_more":false,"data":[]}"#,
            "application/json",
        ))
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("stripe/error_invalid_key.json"), "application/json"),
        )
        .with_priority(10)
        .mount(&stripe)
        .await;
    let database = format!("sqlite://{}", dir.path().join("sk.db").display());
    let config = write_config(&dir, &stripe_config(&database, &stripe.uri(), ""));
    let (code, stdout, stderr) = scorekeeper(&config, GOOD_KEY, &["check", "--connect"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("configuration ok: 1 source(s), 4 measure(s)")
            && stdout.contains("stripe: ok"),
        "{stdout}"
    );
    let (code, stdout, _) =
        scorekeeper(&config, "sk_test_wrong_1111", &["check", "--connect"]).await;
    assert_eq!(code, 1);
    assert!(
        stdout.contains(
            "stripe: FAILED: unauthorized (HTTP 401: Invalid API Key provided: sk_test_****_bad)"
        ),
        "{stdout}"
    );
    assert!(
        !dir.path().join("sk.db").exists(),
        "check never opens the database"
    );
    stripe.verify().await;
}

#[tokio::test]
async fn backfill_prints_progress_per_stream_and_names_unknown_sources() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    mount_stripe_fixtures(&stripe, 1).await;
    let database = format!("sqlite://{}", dir.path().join("sk.db").display());
    let config = write_config(&dir, &stripe_config(&database, &stripe.uri(), ""));
    let (code, stdout, stderr) = scorekeeper(
        &config,
        GOOD_KEY,
        &["backfill", "--source", "stripe", "--since", "2025-11-01"],
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Not a terminal: plain lines, the last one per stream with its end.
    assert!(
        stderr.contains("stripe.charges: 2 pages, 5 records") && stderr.contains("(done)"),
        "{stderr}"
    );
    assert!(stderr.contains("stripe.refunds: 1 pages"), "{stderr}");
    assert!(
        stdout.contains("backfill of stripe from 2025-11-01 done"),
        "{stdout}"
    );
    stripe.verify().await;

    let (code, _, stderr) = scorekeeper(
        &config,
        GOOD_KEY,
        &["backfill", "--source", "nope", "--since", "2025-11-01"],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no source \"nope\" (sources: stripe)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_connect_says_which_account_setting_to_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A Zendesk answering 404 (a wrong subdomain lands on someone else's help center or
    // none), and a Pipedrive host that does not answer at all.
    let zendesk = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("Not Found"))
        .mount(&zendesk)
        .await;
    let config = write_config(
        &dir,
        &format!(
            r#"
[database]
url = "sqlite://{}/sk.db"

[scorecard]
name = "Check"
timezone = "UTC"

[sources.support]
kind = "zendesk"
schedule = "0 0 * * * *"
subdomain = "acme"
base_url = "{}"
email = "agent@example.com"
api_token = "${{TEST_STRIPE_KEY}}"

[sources.crm]
kind = "pipedrive"
schedule = "0 0 * * * *"
company_domain = "acme"
base_url = "http://127.0.0.1:9"
api_token = "${{TEST_STRIPE_KEY}}"
"#,
            dir.path().display(),
            zendesk.uri()
        ),
    );
    let (code, stdout, stderr) =
        scorekeeper(&config, "secret-token-5555", &["check", "--connect"]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("support: FAILED: HTTP 404")
            && stdout.contains("127.0.0.1 does not know this address: check subdomain"),
        "{stdout}"
    );
    assert!(
        stdout.contains("crm: FAILED:")
            && stdout.contains("cannot reach 127.0.0.1: check company_domain"),
        "{stdout}"
    );
    assert!(!stdout.contains("secret-token-5555") && !stderr.contains("secret-token-5555"));
}

/// The product check of the alerts issue, through the binary: a measure driven off
/// target by an upstream change alerts once, signed, within the sync that saw the change;
/// the recovery is told after the sync that sees it; `alerts` lists the state and the
/// deliveries; `notify test` goes through the same channel.
#[tokio::test]
async fn an_upstream_change_alerts_once_signed_and_recovers_through_sync() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = crate::delivery::Receiver::start(listener, &[]).await;
    // Ten 100 EUR charges in the previous month (Berlin): on target (1,000).
    let berlin = chrono_tz::Europe::Berlin;
    let now = chrono::Utc::now().with_timezone(&berlin);
    let this_month = berlin
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .expect("a month start");
    let last_month = this_month - chrono::Duration::days(20);
    let charges = |failed: usize| {
        let data: Vec<serde_json::Value> = (0..10)
            .map(|index| {
                serde_json::json!({
                    "id": format!("ch_e2e_{index}"), "object": "charge", "amount": 10000,
                    "created": last_month.timestamp() + index as i64 * 3600,
                    "currency": "eur", "customer": "cus_1",
                    "status": if index < failed { "failed" } else { "succeeded" }
                })
            })
            .collect();
        serde_json::json!({"object": "list", "url": "/v1/charges", "has_more": false, "data": data})
            .to_string()
    };
    let stripe = MockServer::start().await;
    let mount = |failed: usize| {
        let stripe = &stripe;
        let body = charges(failed);
        async move {
            stripe.reset().await;
            Mock::given(method("GET"))
                .and(path("/v1/charges"))
                .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
                .mount(stripe)
                .await;
        }
    };
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let config = write_config(
        &dir,
        &format!(
            r#"
[database]
url = "sqlite://{}/sk.db"

[scorecard]
name = "E2E Bakery"
timezone = "Europe/Berlin"

[sources.stripe]
kind = "stripe"
schedule = "0 0 3 * * *"
base_url = "{}"
api_key = "${{TEST_STRIPE_KEY}}"
streams = ["charges"]
lookback = "90d"

[measures.revenue]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "created"
where = "status == 'succeeded'"
value = "amount / 100"
aggregate = "sum"
target = {{ value = 1000, direction = "up", warn = 900 }}
forecast = false

[notify.hook]
kind = "webhook"
url = "http://{}/hook"
secret = "{secret}"
"#,
            dir.path().display(),
            stripe.uri(),
            receiver.address
        ),
    );
    mount(0).await;
    let (code, stdout, stderr) = scorekeeper(&config, GOOD_KEY, &["sync"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(receiver.received().is_empty(), "on target: nothing to tell");

    // Upstream, three charges turn out failed: 700 EUR, red. The next sync tells it.
    mount(3).await;
    let (code, _, stderr) = scorekeeper(&config, GOOD_KEY, &["sync"]).await;
    assert_eq!(code, 0, "{stderr}");
    let received = receiver.received();
    assert_eq!(received.len(), 1, "once");
    let message = &received[0];
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64");
    let expected = scorekeeper::notify::webhook::sign(
        &key,
        &message.id,
        message.timestamp.parse().expect("unix seconds"),
        &message.body,
    );
    assert!(
        message
            .signature
            .split(' ')
            .any(|signature| signature == expected),
        "signed: {} vs {expected}",
        message.signature
    );
    let body: serde_json::Value = serde_json::from_str(&message.body).expect("JSON");
    assert_eq!(body["type"], "scorekeeper.alerts");
    assert_eq!(body["data"]["alerts"][0]["event"], "firing");
    assert_eq!(body["data"]["alerts"][0]["value"], 700.0);

    // A sync without change tells nothing more.
    let (code, _, _) = scorekeeper(&config, GOOD_KEY, &["sync"]).await;
    assert_eq!(code, 0);
    assert_eq!(receiver.received().len(), 1);

    // Upstream recovers: the resolution goes out.
    mount(0).await;
    let (code, _, _) = scorekeeper(&config, GOOD_KEY, &["sync"]).await;
    assert_eq!(code, 0);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let body: serde_json::Value = serde_json::from_str(&received[1].body).expect("JSON");
    assert_eq!(body["data"]["alerts"][0]["event"], "resolved");

    let (code, stdout, _) = scorekeeper(&config, GOOD_KEY, &["alerts"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("measure:revenue") && stdout.contains("delivered"),
        "{stdout}"
    );
    let (code, stdout, _) = scorekeeper(&config, GOOD_KEY, &["notify", "test", "hook"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("hook: test message msg_") && stdout.contains("delivered"),
        "{stdout}"
    );
    assert_eq!(receiver.received().len(), 3);
    let (code, _, stderr) = scorekeeper(&config, GOOD_KEY, &["notify", "test", "nope"]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no channel \"nope\" (channels: hook)"),
        "{stderr}"
    );
}

/// Starts `scorekeeper run` and waits until a JSON log line satisfies `until`; returns the
/// child (still running) and the lines read. Every wait is bounded.
async fn run_until(
    config: &Path,
    until: impl Fn(&serde_json::Value) -> bool,
) -> (tokio::process::Child, Vec<String>) {
    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(config)
        .args(["--log-format", "json", "run"])
        .env("TEST_STRIPE_KEY", GOOD_KEY)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the daemon");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            log.push(line.clone());
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if until(&event) {
                return;
            }
        }
        panic!("the daemon exited early: {log:#?}");
    })
    .await
    .unwrap_or_else(|_| panic!("the awaited log line within 60 s: {log:#?}"));
    // Keep draining stderr so the daemon never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, log)
}

/// `kill -9` after a notification was written and its first delivery failed: the next
/// start delivers it, once.
#[tokio::test]
async fn a_notification_survives_kill_9_and_goes_out_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"object":"list","url":"/v1/charges","has_more":false,"data":[]}"#,
            "application/json",
        ))
        .mount(&stripe)
        .await;
    // A port nobody listens on yet: the receiver is down at first.
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address").port()
    };
    let config = write_config(
        &dir,
        &format!(
            r#"
[database]
url = "sqlite://{}/sk.db"

[server]
listen = "127.0.0.1:0"

[scorecard]
name = "Kill Bakery"
timezone = "Europe/Berlin"

[sources.stripe]
kind = "stripe"
schedule = "* * * * * *"
base_url = "{}"
api_key = "${{TEST_STRIPE_KEY}}"
streams = ["charges"]

[measures.revenue]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "created"
value = "amount / 100"
aggregate = "sum"
target = {{ value = 1000, direction = "up" }}
forecast = false

[notify.hook]
kind = "webhook"
url = "http://127.0.0.1:{port}/hook"
"#,
            dir.path().display(),
            stripe.uri()
        ),
    );
    // The daemon syncs within a second; last month's revenue (nothing: 0) is red; the
    // receiver is down, so the first attempt fails. Kill it right after that attempt is
    // recorded.
    let (mut daemon, _) = run_until(&config, |event| {
        event["message"] == "Notification not delivered"
    })
    .await;
    daemon.start_kill().expect("kill -9");
    daemon.wait().await.expect("killed");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the receiver comes back");
    let receiver = crate::delivery::Receiver::start(listener, &[]).await;
    let (mut daemon, _) = run_until(&config, |event| {
        event["message"] == "Notification delivered"
    })
    .await;
    daemon.start_kill().expect("stop");
    daemon.wait().await.expect("stopped");
    let received = receiver.received();
    assert_eq!(received.len(), 1, "delivered once after the restart");
    let body: serde_json::Value = serde_json::from_str(&received[0].body).expect("JSON");
    assert_eq!(body["data"]["alerts"][0]["event"], "firing");
}
