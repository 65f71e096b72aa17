//! The fault-injection suite: an upstream API or the database misbehaves in every way
//! we know of, and each time the sync fails (or leaves out what it must) with an error
//! that names what went wrong and where, keeps what was committed, writes nothing half,
//! and converges to the same records and series as an undisturbed run once the fault is
//! gone.
//!
//! The upstream faults hit page 2 of Stripe's charges (page 1 is committed by then);
//! the database faults cut a PostgreSQL connection mid-sync (through a loopback proxy)
//! and fill the disk under a SQLite file (a small tmpfs, which needs root).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use scorekeeper::sources::http::RetryPolicy;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

/// The cursor value that asks for page 2 of the charges fixtures.
const PAGE_2_AFTER: &str = "ch_3Pq3AbCdEfGhIjKlMn";

/// Everything a sync leaves behind that matters: records byte for byte, cursors, and
/// every stored measure value.
#[derive(Debug, PartialEq)]
struct Snapshot {
    records: Vec<(String, String, String)>,
    cursors: Vec<(String, Option<String>)>,
    values: Vec<(String, i64, Option<f64>)>,
}

const RECORDS_SQL: &str = "SELECT s.stream, r.key, r.data FROM records r JOIN streams s ON s.id = r.stream_id ORDER BY s.stream, r.key";
const CURSORS_SQL: &str = "SELECT stream, cursor FROM streams ORDER BY stream";
const VALUES_SQL: &str = "SELECT m.name, v.period_start, v.value FROM measure_values v JOIN measures m ON m.id = v.measure_id ORDER BY m.name, v.period_start";

/// The three queries of a [`Snapshot`] on a pool of either backend.
macro_rules! read_snapshot {
    ($pool:expr) => {
        Snapshot {
            records: sqlx::query_as(RECORDS_SQL)
                .fetch_all(&$pool)
                .await
                .expect("records"),
            cursors: sqlx::query_as(CURSORS_SQL)
                .fetch_all(&$pool)
                .await
                .expect("cursors"),
            values: sqlx::query_as(VALUES_SQL)
                .fetch_all(&$pool)
                .await
                .expect("values"),
        }
    };
}

/// Reads the snapshot through a connection of its own.
async fn snapshot(url: &str) -> Snapshot {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open sqlite");
        let snapshot = read_snapshot!(pool);
        pool.close().await;
        snapshot
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("open postgres");
        let snapshot = read_snapshot!(pool);
        pool.close().await;
        snapshot
    }
}

/// Retries as in the other tests, with a shorter attempt timeout for the slow-API case
/// (still long enough for a loaded test machine: the slow answer takes four times it).
fn policy() -> RetryPolicy {
    RetryPolicy {
        request_timeout: Duration::from_secs(2),
        ..fast_retries()
    }
}

async fn services_for(database_url: &str, stripe_url: &str) -> Services {
    services_with(database_url, stripe_url, fast_retries()).await
}

async fn services_with(database_url: &str, stripe_url: &str, policy: RetryPolicy) -> Services {
    scorekeeper::tls::install_crypto_provider();
    let settings = settings(&stripe_config(database_url, stripe_url, ""), GOOD_KEY);
    Services::prepare_with(settings, policy)
        .await
        .expect("services start")
}

/// Every sync in this file ends by itself within this bound.
async fn sync(services: &Services) -> SourceReport {
    tokio::time::timeout(Duration::from_secs(60), sync_source(services, "stripe"))
        .await
        .expect("the sync ends by itself")
}

fn charges_error(report: &SourceReport) -> String {
    let charges = report
        .streams
        .iter()
        .find(|stream| stream.stream == "charges")
        .expect("charges report");
    charges.error.clone().unwrap_or_default()
}

/// Mounts page 1 of the charges and the refunds as the API answers them.
async fn mount_healthy_start(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(fixture_response("stripe/charges_page_1.json"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds"))
        .respond_with(fixture_response("stripe/refunds.json"))
        .mount(server)
        .await;
}

/// Mounts page 2 of the charges answered by `response`.
async fn mount_page_2(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(query_param("starting_after", PAGE_2_AFTER))
        .respond_with(response)
        .mount(server)
        .await;
}

/// The state an undisturbed run reaches: the reference every faulty run must converge to.
async fn undisturbed() -> Snapshot {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount_healthy_start(&stripe).await;
    mount_page_2(&stripe, fixture_response("stripe/charges_page_2.json")).await;
    let services = services_for(&db.url, &stripe.uri()).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    services.store.close().await;
    snapshot(&db.url).await
}

/// One upstream fault on page 2 of the charges.
struct UpstreamFault {
    name: &'static str,
    response: ResponseTemplate,
    /// Fragments the user-visible error must contain (besides the URL).
    says: &'static [&'static str],
}

fn upstream_faults() -> Vec<UpstreamFault> {
    let page_2 = fixture("stripe/charges_page_2.json");
    let page_1 = fixture("stripe/charges_page_1.json");
    let json = |body: String| ResponseTemplate::new(200).set_body_raw(body, "application/json");
    vec![
        UpstreamFault {
            name: "a 429 storm",
            response: ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_raw(
                    r#"{"error":{"type":"rate_limit_error","message":"Too many requests"}}"#,
                    "application/json",
                ),
            says: &["gave up after 3 attempts", "HTTP 429", "Too many requests"],
        },
        UpstreamFault {
            name: "a 503",
            response: ResponseTemplate::new(503).set_body_string("upstream overloaded"),
            says: &[
                "gave up after 3 attempts",
                "HTTP 503",
                "upstream overloaded",
            ],
        },
        UpstreamFault {
            name: "a response slower than the timeout",
            response: fixture_response("stripe/charges_page_2.json")
                .set_delay(Duration::from_secs(8)),
            says: &["timed out"],
        },
        UpstreamFault {
            name: "a truncated body",
            response: json(page_2[..page_2.len() / 2].to_string()),
            says: &["truncated body"],
        },
        UpstreamFault {
            name: "malformed JSON",
            response: json(r#"{"object": "list", "has_more": false, "data": [}"#.to_string()),
            says: &["malformed"],
        },
        UpstreamFault {
            name: "a list that became an object",
            response: json(
                page_2
                    .replacen(r#""data": ["#, r#""data": {"items": ["#, 1)
                    .replacen("\n  ]\n}", "\n  ]}\n}", 1),
            ),
            says: &["at `data`: invalid type: map, expected a sequence"],
        },
        UpstreamFault {
            name: "a cursor field that changed type",
            response: json(
                page_2.replace(r#""created": 1773576000"#, r#""created": "last Sunday""#),
            ),
            says: &["item 0 (ch_3Pq2AbCdEfGhIjKlMn) has no integer `created`"],
        },
        UpstreamFault {
            name: "a page that repeats the previous cursor",
            response: json(page_1),
            says: &["repeated the previous page's cursor"],
        },
        UpstreamFault {
            name: "an HTML page instead of JSON",
            response: ResponseTemplate::new(200)
                .set_body_raw("<html><body>Gateway login</body></html>", "text/html"),
            says: &["malformed", "the answer is text/html, not JSON"],
        },
    ]
}

#[tokio::test]
async fn every_upstream_fault_fails_the_sync_clearly_and_loses_nothing() {
    let reference = undisturbed().await;
    for db in TestDb::all().await {
        for fault in upstream_faults() {
            let db_here = match db.backend {
                "sqlite" => TestDb::sqlite(),
                _ => TestDb::postgres().await.expect("postgres"),
            };
            let stripe = MockServer::start().await;
            mount_healthy_start(&stripe).await;
            mount_page_2(&stripe, fault.response).await;
            let services = services_with(&db_here.url, &stripe.uri(), policy()).await;
            let report = sync(&services).await;
            let error = charges_error(&report);
            eprintln!("{} ({}): {error}", fault.name, db.backend);
            assert!(!report.is_success(), "{}: the sync must fail", fault.name);
            for fragment in fault.says.iter().chain(&["/v1/charges", "starting_after="]) {
                assert!(
                    error.contains(fragment),
                    "{} ({}): {fragment:?} missing from {error:?}",
                    fault.name,
                    db.backend
                );
            }
            // Page 1 and the refunds are kept with their cursors; nothing of page 2.
            let after_fault = snapshot(&db_here.url).await;
            let keys: Vec<&str> = after_fault
                .records
                .iter()
                .filter(|(stream, _, _)| stream == "charges")
                .map(|(_, key, _)| key.as_str())
                .collect();
            assert_eq!(keys.len(), 3, "{}: page 1 only: {keys:?}", fault.name);
            assert!(!keys.contains(&"ch_3Pq2AbCdEfGhIjKlMn"), "{}", fault.name);
            let charges_cursor = after_fault
                .cursors
                .iter()
                .find(|(stream, _)| stream == "charges")
                .and_then(|(_, cursor)| cursor.clone())
                .expect("page 1's cursor is saved");
            assert!(charges_cursor.contains(PAGE_2_AFTER), "{charges_cursor}");

            // The fault is gone: the next sync resumes at page 2 and ends where an
            // undisturbed run ends.
            stripe.reset().await;
            mount_healthy_start(&stripe).await;
            mount_page_2(&stripe, fixture_response("stripe/charges_page_2.json")).await;
            let report = sync(&services).await;
            assert!(report.is_success(), "{}: {report:?}", fault.name);
            services.store.close().await;
            let recovered = snapshot(&db_here.url).await;
            assert_eq!(recovered.records, reference.records, "{}", fault.name);
            assert_eq!(recovered.values, reference.values, "{}", fault.name);
        }
    }
}

#[tokio::test]
async fn a_field_that_changes_type_leaves_the_record_out_of_the_measure_and_says_so() {
    let reference = undisturbed().await;
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount_healthy_start(&stripe).await;
    // The API starts sending `amount` as an object: the record is stored as sent, the
    // revenue leaves it out (and the log says which record and measure), the customer
    // count, which does not read the amount, still counts it.
    let page_2 = fixture("stripe/charges_page_2.json");
    assert_eq!(page_2.matches(r#""amount": 3000,"#).count(), 1);
    let changed = page_2.replace(
        r#""amount": 3000,"#,
        r#""amount": {"value": 3000, "currency": "eur"},"#,
    );
    mount_page_2(
        &stripe,
        ResponseTemplate::new(200).set_body_raw(changed, "application/json"),
    )
    .await;
    let services = services_for(&db.url, &stripe.uri()).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    let charges = &report.streams[0];
    assert_eq!(charges.stream, "charges");
    // Only the revenue reads the amount: one problem, one record left out of it.
    assert_eq!(charges.record_problems, 1, "{charges:?}");
    let changed_state = snapshot(&db.url).await;
    assert_eq!(changed_state.records.len(), reference.records.len());
    assert_ne!(changed_state.values, reference.values);

    // The API goes back to numbers: the record counts again, as if nothing happened.
    stripe.reset().await;
    mount_healthy_start(&stripe).await;
    mount_page_2(&stripe, fixture_response("stripe/charges_page_2.json")).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    services.store.close().await;
    let recovered = snapshot(&db.url).await;
    assert_eq!(recovered.records, reference.records);
    assert_eq!(recovered.values, reference.values);
}

/// A TCP server on loopback that reads each request and resets the connection.
async fn resetting_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let handle = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buffer)).await;
            // Linger zero: close sends RST instead of FIN.
            let _ = socket.set_zero_linger();
            drop(socket);
        }
    });
    (address, handle)
}

#[tokio::test]
async fn connection_resets_fail_the_sync_and_change_nothing() {
    for db in TestDb::all().await {
        let stripe = MockServer::start().await;
        mount_healthy_start(&stripe).await;
        mount_page_2(&stripe, fixture_response("stripe/charges_page_2.json")).await;
        let services = services_for(&db.url, &stripe.uri()).await;
        assert!(sync(&services).await.is_success());
        services.store.close().await;
        let before = snapshot(&db.url).await;

        // The same account, but every connection is reset after the request is sent.
        let (address, server) = resetting_server().await;
        let services = services_for(&db.url, &format!("http://{address}")).await;
        let report = sync(&services).await;
        let error = charges_error(&report);
        eprintln!("connection reset ({}): {error}", db.backend);
        assert!(!report.is_success());
        assert!(
            error.contains(&address.to_string()) && error.contains("/v1/charges"),
            "{error}"
        );
        services.store.close().await;
        server.abort();
        assert_eq!(snapshot(&db.url).await, before, "{}", db.backend);
    }
}

/// A loopback TCP proxy in front of a database server that the test can cut, as if the
/// server went down: open connections are dropped and the port refuses new ones until
/// the proxy is restored on the same port.
struct CuttableProxy {
    address: SocketAddr,
    target: SocketAddr,
    cut: Arc<tokio::sync::Notify>,
    accepting: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl CuttableProxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = Self {
            address: listener.local_addr().expect("address"),
            target,
            cut: Arc::new(tokio::sync::Notify::new()),
            accepting: std::sync::Mutex::new(None),
        };
        proxy.accept_on(listener);
        proxy
    }

    fn accept_on(&self, listener: TcpListener) {
        let (target, cut) = (self.target, self.cut.clone());
        let handle = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let cut = cut.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        *self.accepting.lock().expect("not poisoned") = Some(handle);
    }

    /// Drops every connection and closes the port.
    fn cut(&self) {
        if let Some(handle) = self.accepting.lock().expect("not poisoned").take() {
            handle.abort();
        }
        self.cut.notify_waiters();
    }

    /// Listens on the same port again.
    async fn restore(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "rebind {}: {error}",
                        self.address
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.accept_on(listener);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// `postgres://user@host:port/db?x` → (host:port, the URL with `proxy` as host:port).
fn through_proxy(url: &str, proxy: SocketAddr) -> (SocketAddr, String) {
    let rest = url.split_once("://").expect("scheme").1;
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..host_end];
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (format!("{userinfo}@"), host_port),
        None => (String::new(), authority),
    };
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    let target: SocketAddr = host_port
        .parse()
        .unwrap_or_else(|_| panic!("the PostgreSQL test URL needs a numeric host: {host_port}"));
    let proxied = format!("postgres://{userinfo}{proxy}{}", &rest[host_end..]);
    (target, proxied)
}

#[tokio::test]
async fn the_database_going_away_mid_sync_fails_it_and_nothing_is_half_written() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let reference = undisturbed().await;
    let (target, _) = through_proxy(&db.url, "127.0.0.1:1".parse().expect("address"));
    let proxy = CuttableProxy::start(target).await;
    let (_, proxied_url) = through_proxy(&db.url, proxy.address);

    let stripe = MockServer::start().await;
    mount_healthy_start(&stripe).await;
    // Page 2 is slow; the database goes away while the engine waits for it.
    mount_page_2(
        &stripe,
        fixture_response("stripe/charges_page_2.json").set_delay(Duration::from_millis(800)),
    )
    .await;
    let services = services_for(&proxied_url, &stripe.uri()).await;
    let sync_task = {
        let services = services.clone();
        tokio::spawn(async move {
            let source = &services.settings.sources["stripe"];
            tokio::time::timeout(
                Duration::from_secs(60),
                services.engine.sync_source(
                    source,
                    scorekeeper::sources::engine::Trigger::Manual,
                    &tokio_util::sync::CancellationToken::new(),
                ),
            )
            .await
            .expect("the sync ends by itself")
        })
    };
    // Wait (bounded) until page 2 is asked for: page 1 is fetched and waits in the
    // engine's batch, to be committed with page 2. Then the database goes away.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let requests = stripe.received_requests().await.unwrap_or_default();
        if requests.iter().any(|request| {
            request
                .url
                .query()
                .unwrap_or_default()
                .contains("starting_after")
        }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "page 2 was never requested"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.cut();
    let outcome = sync_task.await.expect("sync task");
    let message = match &outcome {
        Ok(report) => charges_error(report),
        Err(error) => error.to_string(),
    };
    eprintln!("database gone mid-sync: {message}");
    assert!(
        outcome.as_ref().map_or(true, |report| !report.is_success()),
        "the sync must fail: {outcome:?}"
    );
    assert!(message.contains("database"), "{message}");
    let during = snapshot(&db.url).await;
    let charges: Vec<_> = during
        .records
        .iter()
        .filter(|(stream, _, _)| stream == "charges")
        .collect();
    // The batch of pages 1 and 2 never committed: no charge and no cursor, as before.
    assert!(charges.is_empty(), "nothing half-written: {charges:?}");
    assert!(
        during
            .cursors
            .iter()
            .all(|(stream, cursor)| stream != "charges" || cursor.is_none()),
        "{:?}",
        during.cursors
    );

    // The database is back: the next sync converges.
    proxy.restore().await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    services.store.close().await;
    let recovered = snapshot(&db.url).await;
    assert_eq!(recovered.records, reference.records);
    assert_eq!(recovered.values, reference.values);
}

/// Mounts a small tmpfs (root only) and returns its folder, or `None` with the reason
/// printed. In CI (root) the mount must work.
fn small_filesystem(size: &str) -> Option<(tempfile::TempDir, MountGuard)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .status();
    match status {
        Ok(status) if status.success() => {
            let guard = MountGuard(dir.path().to_path_buf());
            Some((dir, guard))
        }
        other => {
            assert!(
                std::env::var("CI").is_err(),
                "CI runs as root and must be able to mount a tmpfs: {other:?}"
            );
            eprintln!("skipping the disk-full test: cannot mount a tmpfs ({other:?})");
            None
        }
    }
}

/// Unmounts on drop.
struct MountGuard(std::path::PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while file.write_all(&small).is_ok() {}
    let _ = file.sync_all();
}

#[tokio::test]
async fn a_full_disk_fails_the_sync_clearly_without_corrupting_the_database() {
    let Some((dir, _mount)) = small_filesystem("8m") else {
        return;
    };
    let reference = undisturbed().await;
    let url = format!("sqlite://{}", dir.path().join("scorekeeper.db").display());
    let stripe = MockServer::start().await;
    mount_healthy_start(&stripe).await;
    mount_page_2(&stripe, ResponseTemplate::new(503)).await;
    let services = services_for(&url, &stripe.uri()).await;
    // Page 1 goes in while there is room.
    assert!(!sync(&services).await.is_success());
    services.store.close().await;
    let before = snapshot(&url).await;
    assert_eq!(before.records.len(), 4, "page 1 and the refund");

    // The disk fills up; page 2 cannot be written.
    let services = services_for(&url, &stripe.uri()).await;
    // Move the log into the database file and empty it, so the next write needs new
    // space (an emptied log is otherwise reused in place).
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .expect("checkpoint");
    pool.close().await;
    let filler = dir.path().join("filler");
    fill(&filler);
    stripe.reset().await;
    mount_healthy_start(&stripe).await;
    mount_page_2(&stripe, fixture_response("stripe/charges_page_2.json")).await;
    let outcome = sync_outcome(&services).await;
    eprintln!("disk full: {outcome}");
    assert!(outcome.contains("full"), "{outcome}");

    // Nothing half-written, and the file is sound.
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .expect("integrity check");
    assert_eq!(check, "ok");
    pool.close().await;
    assert_eq!(snapshot(&url).await, before);

    // Room again: the next sync of the same process (no restart) converges.
    std::fs::remove_file(&filler).expect("remove filler");
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    services.store.close().await;
    let recovered = snapshot(&url).await;
    assert_eq!(recovered.records, reference.records);
    assert_eq!(recovered.values, reference.values);
}

/// The sync's error as the user sees it, whether a stream failed or the run itself.
async fn sync_outcome(services: &Services) -> String {
    let source = &services.settings.sources["stripe"];
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        services.engine.sync_source(
            source,
            scorekeeper::sources::engine::Trigger::Manual,
            &tokio_util::sync::CancellationToken::new(),
        ),
    )
    .await
    .expect("the sync ends by itself");
    match outcome {
        Ok(report) => {
            assert!(!report.is_success(), "the sync must fail: {report:?}");
            charges_error(&report)
        }
        Err(error) => error.to_string(),
    }
}

const BINARY: &str = env!("CARGO_BIN_EXE_scorekeeper");

/// `scorekeeper sync` on `config_text` (with `[database]` replaced by `database_toml`),
/// started with its stderr piped.
fn spawn_sync(dir: &tempfile::TempDir, config_text: &str) -> tokio::process::Child {
    let path = dir.path().join("scorekeeper.toml");
    std::fs::write(&path, config_text).expect("write config");
    tokio::process::Command::new(BINARY)
        .arg("--config")
        .arg(&path)
        .arg("sync")
        .env("TEST_STRIPE_KEY", GOOD_KEY)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs")
}

/// The config of [`stripe_config`] with a `connect_timeout` for the database.
fn config_with_patience(database_url: &str, stripe_url: &str, patience: &str) -> String {
    stripe_config(database_url, stripe_url, "").replacen(
        &format!("url = \"{database_url}\""),
        &format!("url = \"{database_url}\"\nconnect_timeout = \"{patience}\""),
        1,
    )
}

#[tokio::test]
async fn an_unreachable_database_at_startup_is_retried_with_a_log_line_then_fails() {
    // A loopback port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address");
    let url = format!("postgres://scorekeeper:db-password-77@{closed}/scorekeeper");
    let dir = tempfile::tempdir().expect("temp dir");
    let child = spawn_sync(
        &dir,
        &config_with_patience(&url, "http://127.0.0.1:9", "2s"),
    );
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("gives up within the bound")
        .expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Cannot reach the database yet; retrying"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "cannot connect to the database at postgres://scorekeeper:***@{closed}/scorekeeper"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("db-password-77"), "{stderr}");
}

#[tokio::test]
async fn a_database_that_comes_up_during_the_retries_is_used() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (target, _) = through_proxy(&db.url, "127.0.0.1:1".parse().expect("address"));
    let proxy = CuttableProxy::start(target).await;
    proxy.cut();
    let (_, proxied_url) = through_proxy(&db.url, proxy.address);
    let stripe = MockServer::start().await;
    mount_healthy_start(&stripe).await;
    mount_page_2(&stripe, fixture_response("stripe/charges_page_2.json")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_sync(
        &dir,
        &config_with_patience(&proxied_url, &stripe.uri(), "60s"),
    );
    // Wait (bounded) for the first retry line, then bring the database back.
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let retried = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Cannot reach the database yet; retrying") {
                return true;
            }
        }
        false
    })
    .await
    .expect("a retry line within the bound");
    assert!(retried, "the binary logged a retry before giving up");
    proxy.restore().await;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the sync ends")
        .expect("status");
    assert!(status.success(), "{status:?}");
    let synced = snapshot(&db.url).await;
    assert_eq!(synced.records, undisturbed().await.records);
}
