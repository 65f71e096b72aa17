//! Several replicas on one PostgreSQL database, one process per SQLite file, and crash
//! safety: leases in the store, and the compiled binary killed with SIGKILL at random
//! points or stopped with SIGTERM, checked against an uninterrupted run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Datelike, TimeZone};
use scorekeeper::app::{Access, Services};
use scorekeeper::store::{LeaseRow, LeaseTake, Store, TickJob};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_scorekeeper");
const PAGE: usize = 100;

// ---------------------------------------------------------------------------------------
// Store level.

async fn postgres_store(test: &str) -> Option<(TestDb, Store)> {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipping {test}: {POSTGRES_URL_VAR} is not set");
        return None;
    };
    let store = Store::connect(&scorekeeper::secret::Secret::new(db.url.clone()))
        .await
        .expect("connect");
    Some((db, store))
}

#[tokio::test]
async fn a_lease_has_one_holder_until_released_or_expired_and_each_tick_runs_once() {
    let Some((_db, store)) = postgres_store("the lease test").await else {
        return;
    };
    let ttl = Duration::from_secs(30);
    let tick = |t| Some((TickJob::Sync, t));
    assert_eq!(
        store
            .take_lease("stripe", "a", ttl, tick(100), 0)
            .await
            .expect("take"),
        LeaseTake::Taken
    );
    // Held: neither a later tick nor a manual sync gets it.
    for attempt in [tick(102), None] {
        assert_eq!(
            store
                .take_lease("stripe", "b", ttl, attempt, 0)
                .await
                .expect("take"),
            LeaseTake::Held { holder: "a".into() }
        );
    }
    // Another source's lease is its own.
    assert_eq!(
        store
            .take_lease("zendesk", "b", ttl, tick(100), 0)
            .await
            .expect("take"),
        LeaseTake::Taken
    );
    assert!(store.renew_lease("stripe", "a", ttl).await.expect("renew"));
    assert!(
        !store.renew_lease("stripe", "b", ttl).await.expect("renew"),
        "not b's"
    );
    // Releasing by someone else changes nothing.
    store.release_lease("stripe", "b").await.expect("release");
    assert_eq!(
        store.lease("stripe").await.expect("read"),
        Some(LeaseRow {
            holder: Some("a".into()),
            live: true,
            sync_tick: Some(100),
            reconcile_tick: None
        })
    );
    store.release_lease("stripe", "a").await.expect("release");
    // Released: a tick already run stays run, a later one is taken; a manual sync would be.
    assert_eq!(
        store
            .take_lease("stripe", "b", ttl, tick(100), 0)
            .await
            .expect("take"),
        LeaseTake::TickDone
    );
    assert_eq!(
        store
            .take_lease("stripe", "b", ttl, tick(99), 0)
            .await
            .expect("take"),
        LeaseTake::TickDone,
        "a replica that wakes late does not run an older tick"
    );
    assert_eq!(
        store
            .take_lease("stripe", "b", ttl, tick(102), 0)
            .await
            .expect("take"),
        LeaseTake::Taken
    );
    store.release_lease("stripe", "b").await.expect("release");
    // The reconcile schedule keeps its own ticks.
    assert_eq!(
        store
            .take_lease("stripe", "a", ttl, Some((TickJob::Reconcile, 100)), 0)
            .await
            .expect("take"),
        LeaseTake::Taken
    );
    let row = store.lease("stripe").await.expect("read").expect("row");
    assert_eq!((row.sync_tick, row.reconcile_tick), (Some(102), Some(100)));
    store.release_lease("stripe", "a").await.expect("release");
    assert_eq!(
        store
            .take_lease("stripe", "c", ttl, None, 0)
            .await
            .expect("take"),
        LeaseTake::Taken,
        "a manual sync takes a free lease without touching the ticks"
    );
    let row = store.lease("stripe").await.expect("read").expect("row");
    assert_eq!((row.sync_tick, row.reconcile_tick), (Some(102), Some(100)));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_holder_cannot_renew_it() {
    let Some((_db, store)) = postgres_store("the lease expiry test").await else {
        return;
    };
    let short = Duration::from_millis(300);
    let ttl = Duration::from_secs(30);
    assert_eq!(
        store
            .take_lease("stripe", "dead", short, None, 0)
            .await
            .expect("take"),
        LeaseTake::Taken
    );
    // The dead replica left a run open.
    let run = store
        .start_run("stripe", "schedule", 10)
        .await
        .expect("run");
    assert!(matches!(
        store
            .take_lease("stripe", "b", ttl, None, 0)
            .await
            .expect("take"),
        LeaseTake::Held { .. }
    ));
    // A replica starting now leaves the run alone: its lease is live.
    assert_eq!(store.close_abandoned_runs(20).await.expect("close"), 0);
    // Expiry is judged by the database's clock; poll it (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store
        .lease("stripe")
        .await
        .expect("read")
        .expect("row")
        .live
    {
        assert!(tokio::time::Instant::now() < deadline, "the lease expires");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        store
            .take_lease("stripe", "b", ttl, None, 30)
            .await
            .expect("take"),
        LeaseTake::Taken
    );
    assert!(
        !store
            .renew_lease("stripe", "dead", ttl)
            .await
            .expect("renew")
    );
    let runs = store.latest_runs().await.expect("runs");
    assert_eq!(runs[0].id, run);
    assert_eq!(
        runs[0].result.as_deref(),
        Some("failed"),
        "closed by the takeover"
    );
    assert_eq!(runs[0].finished_at, Some(30));
}

#[tokio::test]
async fn of_many_replicas_racing_for_one_tick_exactly_one_wins() {
    let Some((db, store)) = postgres_store("the lease race test").await else {
        return;
    };
    let ttl = Duration::from_secs(30);
    for tick in [1000, 1002, 1004] {
        let mut racers = Vec::new();
        for replica in 0..8 {
            // A store (pool) per replica, as separate processes would have.
            let url = scorekeeper::secret::Secret::new(db.url.clone());
            racers.push(tokio::spawn(async move {
                let store = Store::connect(&url).await.expect("connect");
                let outcome = store
                    .take_lease(
                        "stripe",
                        &format!("r{replica}"),
                        ttl,
                        Some((TickJob::Sync, tick)),
                        0,
                    )
                    .await
                    .expect("take");
                store.close().await;
                outcome
            }));
        }
        let mut winners = 0;
        for racer in racers {
            match racer.await.expect("racer") {
                LeaseTake::Taken => winners += 1,
                LeaseTake::Held { .. } | LeaseTake::TickDone => {}
            }
        }
        assert_eq!(winners, 1, "tick {tick}");
        let holder = store
            .lease("stripe")
            .await
            .expect("read")
            .expect("row")
            .holder
            .expect("held");
        store
            .release_lease("stripe", &holder)
            .await
            .expect("release");
    }
}

/// Two replicas evaluate alerts at the same moment: the firing is decided, recorded and
/// enqueued once.
#[tokio::test]
async fn two_replicas_evaluating_at_once_fire_an_alert_once() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipping the concurrent evaluation test: {POSTGRES_URL_VAR} is not set");
        return;
    };
    let stripe = MockServer::start().await;
    mount_charges(&stripe, 3, Duration::ZERO, 0).await;
    let text = daemon_config(
        &db.url,
        &stripe.uri(),
        "0 0 3 * * *",
        Some("http://127.0.0.1:9/hook"),
    );
    let first = services(settings(&text, GOOD_KEY)).await;
    assert!(sync_source(&first, "stripe").await.is_success());
    let second = services(settings(&text, GOOD_KEY)).await;
    for round in 0..3 {
        let (a, b) = tokio::join!(
            scorekeeper::app::evaluate_alerts(&first),
            scorekeeper::app::evaluate_alerts(&second)
        );
        let enqueued = a.expect("evaluate") + b.expect("evaluate");
        assert_eq!(enqueued, usize::from(round == 0), "round {round}");
    }
    let history = first.store.alert_history(100).await.expect("history");
    let firing: Vec<_> = history.iter().filter(|row| row.event == "firing").collect();
    assert_eq!(firing.len(), 1, "{history:?}");
    assert_eq!(
        first.store.outbox_of("hook").await.expect("outbox").len(),
        1
    );
}

/// A replica that stalls past its lease and finds it taken by another stops its sync at
/// the next page instead of running beside the new holder.
#[tokio::test]
async fn a_replica_that_loses_its_lease_stops_its_sync() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipping the lost-lease test: {POSTGRES_URL_VAR} is not set");
        return;
    };
    let stripe = MockServer::start().await;
    mount_charges(&stripe, 30, Duration::from_millis(300), 0).await;
    let text = daemon_config(&db.url, &stripe.uri(), "0 0 3 * * *", None);
    let services = services(settings(&text, GOOD_KEY)).await;
    let guard = services
        .locks
        .try_acquire("stripe", None)
        .await
        .expect("the lease is free");
    let thief = {
        let url = db.url.clone();
        let stripe = &stripe;
        async move {
            // Once the sync is under way, another replica takes the lease (as if it had
            // expired while this one stalled).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while stripe.received_requests().await.unwrap_or_default().len() < 2 {
                assert!(tokio::time::Instant::now() < deadline, "the sync starts");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            query(&url, "UPDATE leases SET holder = 'thief' RETURNING holder").await
        }
    };
    let source = &services.settings.sources["stripe"];
    let engine = &services.engine;
    let cancel = tokio_util::sync::CancellationToken::new();
    let (report, stolen) = tokio::join!(
        guard.hold(&cancel, |token| async move {
            engine
                .sync_source(
                    source,
                    scorekeeper::sources::engine::Trigger::Manual,
                    &token,
                )
                .await
        }),
        thief
    );
    assert_eq!(stolen, [["thief"]]);
    let report = report.expect("sync runs");
    assert!(report.cancelled, "stopped: {report:?}");
    let fetched = stripe.received_requests().await.unwrap_or_default().len();
    assert!(fetched < 30, "not every page was fetched: {fetched}");
    guard.release().await;
    let row = services
        .store
        .lease("stripe")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        row.holder.as_deref(),
        Some("thief"),
        "releasing leaves another's lease alone"
    );
}

// ---------------------------------------------------------------------------------------
// SQLite: one process per file.

#[tokio::test]
async fn a_second_process_on_one_sqlite_file_is_refused_naming_the_file() {
    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount_charges(&stripe, 1, Duration::ZERO, 0).await;
    let text = daemon_config(&db.url, &stripe.uri(), "0 0 3 * * *", None);
    let open = |access| {
        let settings = settings(&text, GOOD_KEY);
        async move { Services::open(settings, fast_retries(), access).await }
    };
    let first = open(Access::Exclusive)
        .await
        .expect("the first process opens it");
    let refused = open(Access::Exclusive)
        .await
        .err()
        .expect("the second is refused");
    let message = format!("{refused:#}");
    let file = db.url.trim_start_matches("sqlite://");
    assert!(
        message.contains(&format!(
            "the SQLite database {file} is in use by process {}",
            std::process::id()
        )) && message.contains("use PostgreSQL"),
        "{message}"
    );
    // Readers work beside it.
    let reader = open(Access::Shared).await.expect("a reader opens it");
    reader.store.close().await;
    first.store.close().await;
    drop(first);
    let again = open(Access::Exclusive)
        .await
        .expect("free once the first has gone");
    again.store.close().await;
}

#[tokio::test]
async fn the_binary_refuses_a_second_daemon_on_one_sqlite_file_but_reads_beside_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    mount_charges(&stripe, 2, Duration::ZERO, 0).await;
    let database = dir.path().join("sk.db");
    let url = format!("sqlite://{}", database.display());
    let config = write(
        &dir,
        &daemon_config(&url, &stripe.uri(), "* * * * * *", None),
    );
    let mut daemon = Daemon::start(&config, "replica-a").await;
    daemon
        .wait_for(
            |event| event["message"] == "Stream synced",
            Duration::from_secs(30),
        )
        .await;

    for command in [
        &["run"][..],
        &["sync"],
        &["backfill", "--source", "stripe", "--since", "2026-01-01"],
    ] {
        let (code, _, stderr) = run_command(&config, command).await;
        assert_eq!(code, 1, "{command:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the SQLite database {} is in use by process {}",
                database.display(),
                daemon.pid
            )) && stderr.contains("use PostgreSQL"),
            "{command:?}: {stderr}"
        );
    }
    let (code, stdout, stderr) = run_command(&config, &["scorecard", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"revenue\""), "{stdout}");
    let (code, _, stderr) = run_command(&config, &["series", "revenue"]).await;
    assert_eq!(code, 0, "{stderr}");
    let status = daemon.terminate().await;
    assert_eq!(status.code(), Some(0));
    let runs = query(
        &url,
        "SELECT COUNT(*) FROM sync_runs WHERE result = 'failed'",
    )
    .await;
    assert_eq!(
        runs,
        [["0"]],
        "the readers closed none of the daemon's runs"
    );
    // Gone: the next process gets the file.
    let (code, _, stderr) = run_command(&config, &["sync"]).await;
    assert_eq!(code, 0, "{stderr}");
}

// ---------------------------------------------------------------------------------------
// Two replicas, one PostgreSQL database.

#[tokio::test]
async fn two_replicas_run_each_tick_once_and_the_survivor_finishes_after_kill_9() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipping the two-replica test: {POSTGRES_URL_VAR} is not set");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    let pages = 3;
    mount_charges(&stripe, pages, Duration::from_millis(200), 0).await;
    let config = write(
        &dir,
        &daemon_config(&db.url, &stripe.uri(), "*/2 * * * * *", None),
    );
    let mut replicas = vec![
        Daemon::start(&config, "replica-a").await,
        Daemon::start(&config, "replica-b").await,
    ];

    // Several ticks; then a moment with no run open, so the counts are of whole runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (runs, requests) = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "four runs within a minute"
        );
        let before = query(&db.url, RUNS).await;
        let requests = page_requests(&stripe).await;
        let after = query(&db.url, RUNS).await;
        let open = after.iter().any(|run| run[1] == "open");
        if before == after && !open && after.len() >= 4 {
            break (after, requests);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(runs.iter().all(|run| run[1] == "success"), "{runs:?}");
    let ticks: BTreeSet<&String> = runs.iter().map(|run| &run[0]).collect();
    assert_eq!(
        ticks.len(),
        runs.len(),
        "one run per tick, never two: {runs:?}"
    );
    let expected: BTreeMap<usize, usize> = (0..pages).map(|page| (page, runs.len())).collect();
    assert_eq!(requests, expected, "every page once per tick");

    // Upstream changes every charge, and pages get slow: kill the replica holding the
    // lease while it is inside the sync.
    stripe.reset().await;
    mount_charges(&stripe, pages, Duration::from_millis(1500), 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let holder = loop {
        assert!(tokio::time::Instant::now() < deadline, "a slow sync starts");
        let held = query(
            &db.url,
            "SELECT holder FROM leases WHERE source = 'stripe' AND expires_at > now()",
        )
        .await;
        let open = query(
            &db.url,
            "SELECT COUNT(*) FROM sync_runs WHERE result IS NULL",
        )
        .await;
        if !stripe
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
            && open == [["1"]]
            && let Some(row) = held.first()
        {
            break row[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let victim = replicas
        .iter()
        .position(|replica| holder.starts_with(&format!("{}-{}-", replica.name, replica.pid)))
        .unwrap_or_else(|| panic!("the holder {holder} is one of the replicas"));
    let mut killed = replicas.remove(victim);
    killed.kill9().await;
    let survivor = &mut replicas[0];
    let survivor_id = survivor
        .wait_for(
            |event| event["message"] == "Scorekeeper running",
            Duration::from_secs(1),
        )
        .await["replica"]
        .as_str()
        .expect("replica id")
        .to_string();
    let (took_over, _) = survivor
        .wait_from(
            0,
            |event| {
                event["message"].as_str().is_some_and(|message| {
                    message.starts_with("Took over a source whose previous sync stopped mid-way")
                })
            },
            Duration::from_secs(60),
        )
        .await;
    survivor
        .wait_from(
            took_over,
            |event| event["message"] == "Stream synced" && event["pages"] == pages,
            Duration::from_secs(60),
        )
        .await;
    let holder_now = query(
        &db.url,
        "SELECT COALESCE(holder, '') FROM leases WHERE source = 'stripe'",
    )
    .await;
    assert!(
        holder_now[0][0].is_empty() || holder_now[0][0] == survivor_id,
        "{holder_now:?}"
    );
    survivor.terminate().await;

    // Every charge once, in its changed version, and the series from exactly those.
    let stored = query(&db.url, "SELECT key, data FROM records ORDER BY key").await;
    assert_eq!(stored.len(), pages * PAGE);
    for (index, row) in stored.iter().enumerate() {
        let record: serde_json::Value = serde_json::from_str(&row[1]).expect("JSON");
        assert_eq!(record, charge(index, 1), "{}", row[0]);
    }
    let total: f64 = (0..pages * PAGE)
        .map(|index| amount(index, 1) as f64 / 100.0)
        .sum();
    let value = query(
        &db.url,
        "SELECT CAST(v.value AS TEXT) FROM measure_values v JOIN measures m ON m.id = v.measure_id WHERE m.name = 'revenue'",
    )
    .await;
    assert_eq!(value.len(), 1);
    let value: f64 = value[0][0].parse().expect("number");
    assert!((value - total).abs() < 1e-6, "{value} vs {total}");
    let interrupted = query(
        &db.url,
        "SELECT COUNT(*) FROM sync_runs WHERE error LIKE 'interrupted%'",
    )
    .await;
    assert_eq!(
        interrupted,
        [["1"]],
        "the killed replica's run is closed as interrupted"
    );
}

/// (tick second, success | failed | cancelled | open) of every scheduled run.
const RUNS: &str = "SELECT CAST(started_at AS TEXT), COALESCE(result, 'open') FROM sync_runs WHERE trigger = 'schedule' ORDER BY id";

// ---------------------------------------------------------------------------------------
// Crash safety and graceful shutdown.

/// `kill -9` at seeded random moments of a long first sync (inside slow pages, between
/// them, at batch commits, during recompute, alert evaluation and a slow delivery), then a
/// restart that runs to the end: the records, the series and the delivered notifications
/// equal those of an uninterrupted run.
#[tokio::test]
async fn kill_9_at_random_points_converges_to_the_uninterrupted_run() {
    for db in TestDb::all().await {
        crash_and_compare(db).await;
    }
}

async fn crash_and_compare(db: TestDb) {
    let seed = std::env::var("SCOREKEEPER_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!(
        "crash test on {}: seed {seed} (set SCOREKEEPER_TEST_SEED to replay)",
        db.backend
    );
    let mut random = fastrand::Rng::with_seed(seed);
    let pages = 25;
    let reference_db = match db.backend {
        "sqlite" => TestDb::sqlite(),
        _ => TestDb::postgres().await.expect("configured"),
    };
    let reference = full_run(&reference_db, pages, &mut None).await;
    let mut kills = Some((&mut random, 4));
    let crashed = full_run(&db, pages, &mut kills).await;
    assert_eq!(crashed.records.len(), pages * PAGE, "seed {seed}");
    assert_eq!(crashed.records, reference.records, "records, seed {seed}");
    assert_eq!(crashed.values, reference.values, "series, seed {seed}");
    assert_eq!(
        crashed.delivered, reference.delivered,
        "notifications, seed {seed}"
    );
    assert!(!reference.delivered.is_empty(), "the run alerts");
}

/// What a run leaves behind.
struct Outcome {
    records: Vec<Vec<String>>,
    values: Vec<Vec<String>>,
    /// Per distinct webhook-id, the alert events it carried (event, measure, value),
    /// sorted (a multiset: a notification decided twice would show twice).
    delivered: Vec<Vec<(String, String, String)>>,
}

/// Runs the daemon on `db` until the source synced to its end and the outbox is empty;
/// with `kills`, first kills it that many times at random moments of the first sync.
async fn full_run(
    db: &TestDb,
    pages: usize,
    kills: &mut Option<(&mut fastrand::Rng, usize)>,
) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let stripe = MockServer::start().await;
    mount_charges(&stripe, pages, Duration::from_millis(120), 0).await;
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&hook)
        .await;
    let config = write(
        &dir,
        &daemon_config(
            &db.url,
            &stripe.uri(),
            "* * * * * *",
            Some(&format!("{}/hook", hook.uri())),
        ),
    );
    if let Some((random, count)) = kills {
        for kill in 0..*count {
            let mut daemon = Daemon::start(&config, "crash").await;
            // Anywhere in the first sync (about 3 s of slow pages, two batch commits, the
            // recompute) or the slow delivery after it.
            let at = Duration::from_millis(random.u64(100..5_500));
            tokio::time::sleep(at).await;
            println!("kill {kill} after {} ms", at.as_millis());
            daemon.kill9().await;
        }
    }
    let mut daemon = Daemon::start(&config, "final").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run completes within 4 minutes"
        );
        let done = query(
            &db.url,
            "SELECT COUNT(*) FROM sync_runs WHERE result = 'success'",
        )
        .await;
        let pending = query(
            &db.url,
            "SELECT COUNT(*) FROM outbox WHERE status <> 'delivered'",
        )
        .await;
        let sent = query(&db.url, "SELECT COUNT(*) FROM outbox").await;
        if done[0][0] != "0" && pending[0][0] == "0" && sent[0][0] != "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    daemon.terminate().await;
    let mut delivered = BTreeMap::new();
    for request in hook.received_requests().await.unwrap_or_default() {
        let id = request
            .headers
            .get("webhook-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        let events: Vec<(String, String, String)> = body["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|alert| {
                (
                    alert["event"].to_string(),
                    alert["measure"]["id"].to_string(),
                    alert["value"].to_string(),
                )
            })
            .collect();
        // At least once: a message cut off by a kill goes again, with the same id.
        delivered.insert(id, events);
    }
    Outcome {
        records: query(&db.url, "SELECT key, data FROM records ORDER BY key").await,
        values: query(
            &db.url,
            "SELECT m.name, CAST(v.period_start AS TEXT), CAST(v.value AS TEXT) FROM measure_values v \
             JOIN measures m ON m.id = v.measure_id ORDER BY 1, 2",
        )
        .await,
        delivered: {
            let mut messages: Vec<_> = delivered.into_values().collect();
            messages.sort();
            messages
        },
    }
}

/// SIGTERM while a page is in flight: the page completes and is committed with its
/// cursor, and the daemon exits (status 0) within 10 s.
#[tokio::test]
async fn sigterm_commits_the_page_in_flight_and_exits() {
    for db in TestDb::all().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let stripe = MockServer::start().await;
        // Larger than a batch, so nothing would commit before the end without the stop.
        mount_charges(&stripe, 20, Duration::from_millis(1500), 0).await;
        let config = write(
            &dir,
            &daemon_config(&db.url, &stripe.uri(), "* * * * * *", None),
        );
        let mut daemon = Daemon::start(&config, "term").await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let in_flight = loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the third page is requested"
            );
            let requests = stripe.received_requests().await.unwrap_or_default().len();
            if requests >= 3 {
                break requests;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let status = daemon.terminate().await;
        assert_eq!(status.code(), Some(0), "{}", db.backend);
        let stored = query(&db.url, "SELECT COUNT(*) FROM records").await;
        assert_eq!(
            stored,
            [[(in_flight * PAGE).to_string()]],
            "{}: every page fetched, the one in flight included, is committed",
            db.backend
        );
        let cursor = query(
            &db.url,
            "SELECT COUNT(*) FROM streams WHERE cursor IS NOT NULL",
        )
        .await;
        assert_eq!(cursor, [["1"]], "{}: with its cursor", db.backend);
        let runs = query(&db.url, "SELECT result FROM sync_runs").await;
        assert_eq!(runs, [["cancelled"]], "{}", db.backend);
        assert!(
            daemon
                .log()
                .iter()
                .all(|line| !line.contains("drain deadline")),
            "{}: every task stopped by itself",
            db.backend
        );
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// The start of the previous month in Berlin: every charge falls in that month.
fn last_month() -> i64 {
    let berlin = chrono_tz::Europe::Berlin;
    let now = chrono::Utc::now().with_timezone(&berlin);
    let this_month = berlin
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .earliest()
        .expect("midnight exists");
    (this_month - chrono::Months::new(1)).timestamp()
}

fn amount(index: usize, version: u32) -> i64 {
    100 + (index % 7) as i64 + i64::from(version) * 1000
}

/// Charge `index` as upstream sends it in `version`.
fn charge(index: usize, version: u32) -> serde_json::Value {
    serde_json::json!({
        "id": format!("ch_{index:05}"), "object": "charge",
        "created": last_month() + index as i64 * 60,
        "amount": amount(index, version), "currency": "eur", "customer": format!("cus_{}", index % 13),
        "status": "succeeded"
    })
}

/// Serves `pages` pages of 100 charges (Stripe's `starting_after` paging), each answered
/// after `delay`.
async fn mount_charges(server: &MockServer, pages: usize, delay: Duration, version: u32) {
    for page in 0..pages {
        let data: Vec<serde_json::Value> = (page * PAGE..(page + 1) * PAGE)
            .map(|index| charge(index, version))
            .collect();
        let body = serde_json::json!({"object": "list", "url": "/v1/charges", "has_more": page + 1 < pages, "data": data});
        let mock = Mock::given(method("GET")).and(path("/v1/charges"));
        let mock = if page == 0 {
            mock.and(query_param_is_missing("starting_after"))
        } else {
            mock.and(query_param(
                "starting_after",
                format!("ch_{:05}", page * PAGE - 1),
            ))
        };
        mock.respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(body.to_string(), "application/json")
                .set_delay(delay),
        )
        .mount(server)
        .await;
    }
}

/// Requests received per page.
async fn page_requests(server: &MockServer) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let after = request
            .url
            .query_pairs()
            .find(|(key, _)| key == "starting_after")
            .and_then(|(_, value)| value.trim_start_matches("ch_").parse::<usize>().ok());
        let page = after.map_or(0, |last| (last + 1) / PAGE);
        *counts.entry(page).or_default() += 1;
    }
    counts
}

fn daemon_config(database: &str, stripe: &str, schedule: &str, hook: Option<&str>) -> String {
    let notify = hook.map_or(String::new(), |url| {
        format!("\n[notify.hook]\nkind = \"webhook\"\nurl = \"{url}\"\n")
    });
    format!(
        r#"
[database]
url = "{database}"
lease_ttl = "3s"

[server]
listen = "127.0.0.1:0"

[scorecard]
name = "Replica Bakery"
timezone = "Europe/Berlin"

[sources.stripe]
kind = "stripe"
schedule = "{schedule}"
base_url = "{stripe}"
api_key = "${{TEST_STRIPE_KEY}}"
streams = ["charges"]
lookback = "90d"

[measures.revenue]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "created"
value = "amount / 100"
aggregate = "sum"
target = {{ value = 100000000, direction = "up" }}
forecast = false

[measures.customers]
perspective = "customer"
period = "month"
from = "stripe.charges"
time = "created"
value = "customer"
aggregate = "count_distinct"
{notify}"#
    )
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("scorekeeper.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs a one-shot command; returns (exit code, stdout, stderr).
async fn run_command(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(BINARY)
            .arg("--config")
            .arg(config)
            .args(args)
            .env("TEST_STRIPE_KEY", GOOD_KEY)
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

/// Every row of `sql` with each column as text (NULL as an empty string; cast other
/// types to text in the SQL).
async fn query(url: &str, sql: &'static str) -> Vec<Vec<String>> {
    macro_rules! rows {
        ($pool:expr) => {{
            use sqlx::Row;
            let pool = $pool;
            let rows = sqlx::query(sql).fetch_all(&pool).await.expect("query");
            pool.close().await;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|index| {
                            row.try_get::<Option<String>, _>(index)
                                .map(Option::unwrap_or_default)
                                .or_else(|_| {
                                    row.try_get::<Option<i64>, _>(index).map(|number| {
                                        number.map(|n| n.to_string()).unwrap_or_default()
                                    })
                                })
                                .unwrap_or_else(|error| panic!("{sql}: column {index}: {error}"))
                        })
                        .collect()
                })
                .collect()
        }};
    }
    if url.starts_with("sqlite:") {
        rows!(sqlx::SqlitePool::connect(url).await.expect("open SQLite"))
    } else {
        rows!(
            sqlx::PgPool::connect(url)
                .await
                .expect("connect PostgreSQL")
        )
    }
}

/// `scorekeeper run` as a child process, its JSON log collected.
struct Daemon {
    name: String,
    pid: u32,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Daemon {
    /// Starts the daemon with `HOSTNAME=name` (the start of its replica id) and waits
    /// (bounded) until it is running.
    async fn start(config: &Path, name: &str) -> Self {
        let mut child = Command::new(BINARY)
            .arg("--config")
            .arg(config)
            .args(["--log-format", "json", "run"])
            .env("TEST_STRIPE_KEY", GOOD_KEY)
            .env("HOSTNAME", name)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the daemon");
        let pid = child.id().expect("running");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let reader = {
            let log = log.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().expect("not poisoned").push(line);
                }
            })
        };
        let mut daemon = Self {
            name: name.to_string(),
            pid,
            child,
            log,
            reader,
        };
        daemon
            .wait_for(
                |event| event["message"] == "Scorekeeper running",
                Duration::from_secs(60),
            )
            .await;
        daemon
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().expect("not poisoned").clone()
    }

    /// The first log event satisfying `until`, waiting up to `limit`.
    async fn wait_for(
        &mut self,
        until: impl Fn(&serde_json::Value) -> bool,
        limit: Duration,
    ) -> serde_json::Value {
        self.wait_from(0, until, limit).await.1
    }

    /// The first log event from line `from` on satisfying `until`, with its line number,
    /// waiting up to `limit`.
    async fn wait_from(
        &mut self,
        from: usize,
        until: impl Fn(&serde_json::Value) -> bool,
        limit: Duration,
    ) -> (usize, serde_json::Value) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let found = self
                .log()
                .iter()
                .enumerate()
                .skip(from)
                .find_map(|(index, line)| {
                    let event: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                    until(&event).then_some((index, event))
                });
            if let Some(found) = found {
                return found;
            }
            if tokio::time::Instant::now() >= deadline
                || self.child.try_wait().ok().flatten().is_some()
            {
                panic!(
                    "{}: the awaited log line did not come: {:#?}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn kill9(&mut self) {
        self.child.start_kill().expect("kill -9");
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("killed within 10 s")
            .expect("wait");
    }

    /// SIGTERM; the exit status, which must come within 10 s.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} exits within 10 s of SIGTERM", self.name))
            .expect("wait");
        // The log is complete once the pipe closes.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
        exit
    }
}
