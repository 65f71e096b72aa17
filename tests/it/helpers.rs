//! Test harness: a fresh database per test (a temp SQLite file, or a uniquely named
//! PostgreSQL database dropped afterwards), a wiremock server per SaaS API, and
//! `spawn_app`, which starts the real app through the same entry point as `main`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use scorekeeper::app::{self, RunOptions, Services};
use scorekeeper::config::{self, Settings};
use scorekeeper::sources::http::RetryPolicy;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The environment variable that enables the PostgreSQL tests.
pub const POSTGRES_URL_VAR: &str = "SCOREKEEPER_TEST_POSTGRES_URL";
/// The Stripe key the mocks accept.
pub const GOOD_KEY: &str = "sk_test_good_4242";

/// Retries that keep tests fast but still exercise backoff.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(3),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
    }
}

/// A database for one test.
pub struct TestDb {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Connection URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    drop_postgres: Option<(String, String)>,
}

impl TestDb {
    /// A new SQLite file in a temp folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            backend: "sqlite",
            url,
            _dir: Some(dir),
            drop_postgres: None,
        }
    }

    /// A new, uniquely named PostgreSQL database, or `None` (with the reason printed)
    /// when `SCOREKEEPER_TEST_POSTGRES_URL` is unset. In CI a skip is a failure.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            assert!(
                std::env::var("CI").is_err(),
                "{POSTGRES_URL_VAR} must be set in CI: the PostgreSQL tests may not be skipped there"
            );
            eprintln!("skipping the PostgreSQL half of this test: {POSTGRES_URL_VAR} is not set");
            return None;
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sk_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("connect to the PostgreSQL test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .expect("create the test database");
        admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(Self {
            backend: "postgres",
            url,
            _dir: None,
            drop_postgres: Some((admin_url, name)),
        })
    }

    /// SQLite always, and PostgreSQL when configured.
    pub async fn all() -> Vec<Self> {
        let mut dbs = vec![Self::sqlite()];
        dbs.extend(Self::postgres().await);
        dbs
    }
}

/// `postgres://u@h:5432/db?x` with the database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(base, query)| (base, Some(query)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.drop_postgres.take() else {
            return;
        };
        // Drop runs outside async code paths; use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A scorecard over a Stripe source at `stripe_url` syncing charges and refunds, with
/// the measures the tests check, plus `extra` TOML.
pub fn stripe_config(database_url: &str, stripe_url: &str, extra: &str) -> String {
    format!(
        "{}{REFUND_MEASURES}{extra}",
        charges_config(database_url, stripe_url, &["charges", "refunds"])
    )
}

/// Measures over the refunds stream.
const REFUND_MEASURES: &str = r#"
[measures.refunds]
perspective = "financial"
period = "month"
from = "stripe.refunds"
time = "created"
where = "status == 'succeeded'"
value = "amount / 100.0"
aggregate = "sum"

[measures.net_revenue]
name = "Net revenue"
perspective = "financial"
period = "month"
formula = "gross_revenue - refunds"
target = { value = 60, direction = "up", warn = 50 }
"#;

/// A scorecard over the given Stripe streams with the charge measures only.
pub fn charges_config(database_url: &str, stripe_url: &str, streams: &[&str]) -> String {
    let streams: Vec<String> = streams
        .iter()
        .map(|stream| format!("\"{stream}\""))
        .collect();
    let streams = streams.join(", ");
    format!(
        r#"
[database]
url = "{database_url}"

[server]
listen = "127.0.0.1:0"

[scorecard]
name = "Test Bakery"
timezone = "Europe/Berlin"
currency = "EUR"

[sources.stripe]
kind = "stripe"
schedule = "0 0 3 * * *"
start_date = "2026-01-01"
base_url = "{stripe_url}"
api_key = "${{TEST_STRIPE_KEY}}"
streams = [{streams}]

[measures.gross_revenue]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "created"
where = "status == 'succeeded'"
value = "amount / 100"
aggregate = "sum"

[measures.customers]
perspective = "customer"
period = "month"
from = "stripe.charges"
time = "created"
where = "status == 'succeeded'"
value = "customer"
aggregate = "count_distinct"
"#
    )
}

/// Loads a configuration text with `TEST_STRIPE_KEY` set to `key`.
pub fn settings(text: &str, key: &str) -> Settings {
    let env = BTreeMap::from([("TEST_STRIPE_KEY".to_string(), key.to_string())]);
    config::load_str(text, "test.toml", &env)
        .unwrap_or_else(|error| panic!("test configuration: {error}"))
}

/// The fixture file's text.
pub fn fixture(relative: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A JSON response from a fixture.
pub fn fixture_response(relative: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixture(relative), "application/json")
}

/// The `created[gte]` of a first sync with `start_date = 2026-01-01` in Berlin.
pub const START_GTE: &str = "1767222000";

/// Mounts Stripe's two charge pages and the refunds page, each expected `times` times.
pub async fn mount_stripe_fixtures(server: &MockServer, times: u64) {
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(header(
            "authorization",
            format!("Bearer {GOOD_KEY}").as_str(),
        ))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(fixture_response("stripe/charges_page_1.json"))
        .expect(times)
        .named("charges page 1")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
        .respond_with(fixture_response("stripe/charges_page_2.json"))
        .expect(times)
        .named("charges page 2")
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(fixture_response("stripe/refunds.json"))
        .expect(times)
        .named("refunds")
        .mount(server)
        .await;
}

/// The daemon, started through `app::run` on 127.0.0.1:0.
pub struct TestApp {
    /// Where the HTTP server listens.
    pub address: SocketAddr,
    /// The connected services (store, engine, catalog).
    pub services: Services,
    /// Cancelling it stops the app.
    pub shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// GETs a path and returns status and JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("http://{}{path}", self.address))
            .await
            .expect("request to the app");
        let status = response.status().as_u16();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {text}"));
        (status, body)
    }

    /// Stops the app and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("app stops within the drain deadline")
            .expect("app task")
            .expect("app result");
    }
}

/// Prepares services for `settings` with fast retries.
pub async fn services(settings: Settings) -> Services {
    scorekeeper::tls::install_crypto_provider();
    Services::prepare_with(settings, fast_retries())
        .await
        .expect("services start")
}

/// Starts the app. Binds before spawning, so the address is ready when this returns.
pub async fn spawn_app(settings: Settings) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    let services = services(settings).await;
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app::run(
        services.clone(),
        listener,
        RunOptions::default(),
        shutdown.clone(),
    ));
    TestApp {
        address,
        services,
        shutdown,
        handle,
    }
}

/// One measure's series as (label, value) pairs.
pub async fn series(services: &Services, measure: &str) -> Vec<(String, Option<f64>)> {
    let bound = services.catalog.get(measure).expect("measure exists");
    let from = chrono::NaiveDate::from_ymd_opt(2026, 3, 1);
    let to = chrono::NaiveDate::from_ymd_opt(2026, 4, 30);
    scorekeeper::scorecard::series(
        &services.store,
        &services.catalog,
        bound,
        from,
        to,
        chrono::Utc::now(),
    )
    .await
    .expect("series")
    .into_iter()
    .map(|point| (point.period, point.value))
    .collect()
}

/// Syncs the named source now, as `scorekeeper sync --source NAME` does.
pub async fn sync_source(
    services: &Services,
    name: &str,
) -> scorekeeper::sources::engine::SourceReport {
    let source = &services.settings.sources[name];
    services
        .engine
        .sync_source(
            source,
            scorekeeper::sources::engine::Trigger::Manual,
            &CancellationToken::new(),
        )
        .await
        .expect("sync runs")
}

/// Answers the first GET of `url_path` with a 429 carrying `Retry-After` and `body`, then
/// lets the other mocks answer. Expected exactly once: the count is an assertion.
pub async fn mount_rate_limited_once(
    server: &MockServer,
    url_path: &str,
    retry_after: &str,
    body: &str,
) {
    Mock::given(method("GET"))
        .and(path(url_path))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", retry_after)
                .set_body_string(body),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .named("429 once")
        .mount(server)
        .await;
}
