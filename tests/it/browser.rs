//! The dashboard in a real browser: headless Chromium (Debian's `chromium` package),
//! driven over the DevTools protocol by `tests/browser.py` (Python's standard library
//! only), loads the page from the daemon on a loopback port after a demo sync.
//!
//! Checked: all four perspectives and every configured measure, each with the status
//! `/api/v1/scorecard` gives it; one arrow per strategy-map link, carrying its evidence;
//! a measure's chart (target line, bands, alert history) by click and by keyboard; a
//! sync that changes a measure re-renders it without a reload; every request stays on
//! the daemon's origin, with no script error or policy violation; no horizontal overflow
//! at phone width; one printed page. The
//! screenshots and the PDF stay under the build folder for a person to look at.
//!
//! Without Chromium the test prints why it skips, unless `SCOREKEEPER_TEST_BROWSER=1`
//! (CI), where a missing browser is a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use scorekeeper::demo;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestApp, spawn_app, sync_source};

/// Set to 1 where the browser test must run (CI installs Chromium).
const REQUIRE_VAR: &str = "SCOREKEEPER_TEST_BROWSER";
/// The write endpoints' token in this test.
const TOKEN: &str = "browser-test-token";

/// The Chromium binary: `SCOREKEEPER_TEST_CHROMIUM`, else `chromium` or
/// `chromium-browser` on the PATH.
fn find_chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("SCOREKEEPER_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The DevTools driver process: one JSON command per line in, one JSON answer out.
struct Driver {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Driver {
    async fn start(chromium: &Path, profile: &Path, log: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser.py");
        let mut child = tokio::process::Command::new("python3")
            .arg(script)
            .arg(chromium)
            .arg(profile)
            .arg(log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python3 tests/browser.py");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut driver = Self {
            child,
            stdin,
            stdout,
        };
        let ready = driver.answer("start").await;
        assert_eq!(ready["ready"], true, "{ready}");
        driver
    }

    async fn answer(&mut self, what: &str) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(90), self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer from the browser within 90 s"))
            .expect("read the driver's answer")
            .unwrap_or_else(|| panic!("{what}: the driver exited (see its log)"));
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("{what}: {error}: {line}"))
    }

    /// Sends a command and returns its `value`; fails the test on an error.
    async fn send(&mut self, command: Value) -> Value {
        let what = command.to_string();
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("write to the driver");
        self.stdin.flush().await.expect("flush the driver's stdin");
        let answer = self.answer(&what).await;
        assert_eq!(answer["ok"], true, "{what}: {}", answer["error"]);
        answer["value"].clone()
    }

    async fn eval(&mut self, expression: &str) -> Value {
        self.send(json!({"cmd": "eval", "expression": expression}))
            .await
    }

    async fn wait(&mut self, expression: &str) -> Value {
        self.send(json!({"cmd": "wait", "expression": expression, "timeout": 30}))
            .await
    }

    async fn quit(mut self) {
        self.send(json!({"cmd": "quit"})).await;
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the driver exits within 20 s")
            .expect("driver status");
        assert!(status.success(), "driver exit: {status}");
    }
}

/// Pages in a PDF written by Chromium (its page tree's `/Count`).
fn pdf_pages(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    let count: usize = text
        .split("/Count ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert_eq!(pages, count, "page objects and the page tree disagree");
    count
}

/// The demo scorecard (the embedded `config/demo.toml` against the sandbox), plus a CSV
/// source the test can change and a measure over it whose name and unit look like markup.
async fn demo_app(dir: &Path, sandbox: std::net::SocketAddr) -> TestApp {
    let config = format!(
        r#"{demo}
[sources.counter]
kind = "csv"
schedule = "0 0 3 1 1 *"
path = "{csv}"
key = ["day"]
columns = {{ day = "date", visitors = "number" }}

[measures.counter_visitors]
name = "Counter <b>visitors</b> & \"friends\""
perspective = "customer"
period = "month"
unit = "<i>people</i>"
from = "counter.rows"
time = "day"
value = "visitors"
aggregate = "sum"
evaluate = "current"
target = {{ value = 500, direction = "up", warn = 300 }}
"#,
        demo = demo::DEMO_CONFIG,
        csv = dir.join("counter.csv").display(),
    );
    let path = dir.join("demo.toml");
    std::fs::write(&path, config).expect("write the config");
    let env = BTreeMap::from([
        (
            "SCOREKEEPER__DATABASE__URL".to_string(),
            format!("sqlite://{}", dir.join("demo.db").display()),
        ),
        (
            "SCOREKEEPER__SERVER__API_TOKEN".to_string(),
            TOKEN.to_string(),
        ),
    ]);
    let settings = demo::load_config(Some(&path), sandbox, &env)
        .unwrap_or_else(|error| panic!("demo configuration: {error}"));
    spawn_app(settings).await
}

/// The first and second day of the current month in the scorecard's zone.
fn this_month() -> (String, String) {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let month = today.format("%Y-%m").to_string();
    (format!("{month}-01"), format!("{month}-02"))
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium_shows_the_demo_scorecard_map_chart_and_live_updates() {
    let Some(chromium) = find_chromium() else {
        assert!(
            std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
            "{REQUIRE_VAR}=1 but no chromium on the PATH (apt-get install chromium)"
        );
        eprintln!(
            "skipping the browser test: no chromium on the PATH (apt-get install chromium, or set SCOREKEEPER_TEST_CHROMIUM)"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).expect("create the screenshot folder");
    let dir = tempfile::tempdir().expect("temp dir");
    let (first_day, second_day) = this_month();
    std::fs::write(
        dir.path().join("counter.csv"),
        format!("day,visitors\n{first_day},100\n"),
    )
    .expect("write the CSV");

    // The demo: the sandbox APIs on loopback, the daemon over them, one sync of each source.
    let sandbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the sandbox");
    let sandbox_address = sandbox_listener.local_addr().expect("sandbox address");
    let sandbox_stop = CancellationToken::new();
    let sandbox = tokio::spawn(demo::sandbox::serve(
        sandbox_listener,
        demo::sandbox::router(chrono::Utc::now(), demo::SANDBOX_SEED),
        sandbox_stop.clone(),
    ));
    let app = demo_app(dir.path(), sandbox_address).await;
    let names: Vec<String> = app.services.settings.sources.keys().cloned().collect();
    for name in &names {
        let report =
            tokio::time::timeout(Duration::from_secs(120), sync_source(&app.services, name))
                .await
                .unwrap_or_else(|_| panic!("{name}: the demo sync takes under 120 s"));
        assert!(report.is_success(), "{name}: {report:?}");
    }
    // The daemon's alert loop judges the measures after the syncs: wait for its history.
    let alerts = eventually(
        "alert history after the demo sync",
        Duration::from_secs(30),
        || async {
            let (_, alerts) = app.get_json("/api/v1/alerts").await;
            (!alerts["history"].as_array()?.is_empty()).then_some(alerts)
        },
    )
    .await;
    let (_, scorecard) = app.get_json("/api/v1/scorecard").await;
    let (_, map) = app.get_json("/api/v1/strategy-map").await;
    let expected_status: BTreeMap<String, String> = scorecard["perspectives"]
        .as_array()
        .expect("perspectives")
        .iter()
        .flat_map(|perspective| perspective["measures"].as_array().expect("measures"))
        .map(|measure| {
            (
                measure["id"].as_str().expect("id").to_string(),
                measure["judged"]["status"]
                    .as_str()
                    .expect("status")
                    .to_string(),
            )
        })
        .collect();
    let configured: BTreeSet<String> = app
        .services
        .settings
        .measures
        .iter()
        .map(|measure| measure.id.clone())
        .collect();
    assert_eq!(
        expected_status.keys().cloned().collect::<BTreeSet<_>>(),
        configured
    );

    let mut browser = Driver::start(
        &chromium,
        &dir.path().join("profile"),
        &shots.join("chromium.log"),
    )
    .await;
    let origin = format!("http://{}", app.address);
    browser
        .send(json!({"cmd": "viewport", "width": 1280, "height": 900}))
        .await;
    browser
        .send(json!({"cmd": "navigate", "url": format!("{origin}/")}))
        .await;
    browser
        .wait("document.documentElement.dataset.ready === '1'")
        .await;

    // All four perspectives, every measure with the API's status.
    let perspectives = browser
        .eval("[...document.querySelectorAll('.perspective')].map(p => [p.dataset.perspective, p.querySelector('h3').textContent])")
        .await;
    assert_eq!(
        perspectives,
        json!([
            ["financial", "Financial"],
            ["customer", "Customer"],
            ["internal", "Internal process"],
            ["learning", "Learning & growth"]
        ])
    );
    let rendered = browser
        .eval("Object.fromEntries([...document.querySelectorAll('[data-measure]')].map(m => [m.dataset.measure, m.dataset.status]))")
        .await;
    let rendered: BTreeMap<String, String> =
        serde_json::from_value(rendered).expect("measure statuses");
    assert_eq!(rendered, expected_status, "rendered vs /api/v1/scorecard");
    let statuses: BTreeSet<&str> = rendered.values().map(String::as_str).collect();
    assert!(
        statuses.contains("red") && statuses.contains("green"),
        "the demo shows several statuses: {statuses:?}"
    );
    // Each light says its status in words too.
    let words = browser
        .eval("[...document.querySelectorAll('[data-measure]')].every(m => m.querySelector('.light').textContent.trim().length > 2)")
        .await;
    assert_eq!(words, true);

    // Names and units are text, never markup.
    let escaped = browser
        .eval("(() => { const m = document.querySelector('[data-measure=counter_visitors]'); return [m.querySelector('.m-name').textContent, m.querySelector('.m-value').textContent, m.querySelectorAll('b, i').length]; })()")
        .await;
    assert_eq!(
        escaped,
        json!([
            "Counter <b>visitors</b> & \"friends\"",
            "100 <i>people</i>",
            0
        ])
    );
    assert_eq!(expected_status["counter_visitors"], "red");

    // The strategy map: one arrow per link, each with its evidence.
    let links = map["links"].as_array().expect("links");
    assert!(!links.is_empty());
    let arrows = browser
        .eval("[...document.querySelectorAll('.strategy-map .arrow')].map(a => [a.dataset.driver, a.dataset.effect, a.dataset.evidence])")
        .await;
    let arrows: Vec<(String, String, String)> = serde_json::from_value(arrows).expect("arrows");
    assert_eq!(arrows.len(), links.len(), "one arrow per link");
    let mut expected_arrows: Vec<(String, String, String)> = links
        .iter()
        .map(|link| {
            let evidence = match &link["best"]["best"] {
                Value::Null => "not enough data".to_string(),
                best => format!(
                    "r={:.2} · lag {} · n={}",
                    best["coefficient"].as_f64().expect("r"),
                    best["lag"],
                    best["periods"]
                ),
            };
            (
                link["driver"].as_str().expect("driver").to_string(),
                link["effect"].as_str().expect("effect").to_string(),
                evidence,
            )
        })
        .collect();
    let mut sorted_arrows = arrows.clone();
    sorted_arrows.sort();
    expected_arrows.sort();
    assert_eq!(sorted_arrows, expected_arrows);
    assert!(
        expected_arrows
            .iter()
            .any(|(_, _, text)| text.starts_with("r=")),
        "the demo has evidence on some links"
    );
    let labels = browser
        .eval("[...document.querySelectorAll('.strategy-map .arrow-label')].map(t => t.textContent).sort()")
        .await;
    let mut evidence: Vec<String> = expected_arrows.iter().map(|(_, _, t)| t.clone()).collect();
    evidence.sort();
    assert_eq!(
        labels,
        json!(evidence),
        "each arrow's evidence is written on the map"
    );
    let boxes = browser
        .eval("document.querySelectorAll('.strategy-map .objective').length")
        .await;
    assert_eq!(
        boxes,
        json!(map["objectives"].as_array().expect("objectives").len())
    );

    // A red measure with alert history: its chart opens on a click.
    let keys_of = |measure: &str| -> BTreeSet<String> {
        alerts["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .filter(|alert| alert["subject"] == measure)
            .map(|alert| alert["alert"].as_str().expect("key").to_string())
            .collect()
    };
    let history_of = |measure: &str| {
        let keys = keys_of(measure);
        alerts["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter(|row| keys.contains(row["alert"].as_str().unwrap_or("")))
            .count()
    };
    let (chosen, events) = expected_status
        .iter()
        .filter(|(id, status)| status.as_str() == "red" && id.as_str() != "counter_visitors")
        .map(|(id, _)| (id.clone(), history_of(id)))
        .find(|(_, events)| *events > 0)
        .expect("a red measure with alert history in the demo");
    browser
        .eval(&format!(
            "document.querySelector('[data-measure=\"{chosen}\"]').click(); true"
        ))
        .await;
    browser
        .wait(&format!(
            "document.getElementById('detail').open && document.getElementById('detail').dataset.measure === '{chosen}'"
        ))
        .await;
    let chart = browser
        .eval("(() => { const d = document.getElementById('detail'); return { hash: location.hash, target: d.querySelectorAll('.chart .target-line').length, bands: [...d.querySelectorAll('.chart .band')].map(b => b.dataset.band), points: d.querySelectorAll('.chart .point').length, events: d.querySelectorAll('.alert-event').length, label: d.querySelector('.chart').getAttribute('aria-label') }; })()")
        .await;
    assert_eq!(chart["hash"], format!("#measure={chosen}"));
    assert_eq!(chart["target"], 1, "{chart}");
    assert!(
        chart["bands"]
            .as_array()
            .expect("bands")
            .contains(&json!("red")),
        "{chart}"
    );
    assert!(chart["points"].as_u64().unwrap_or(0) >= 2, "{chart}");
    assert_eq!(
        chart["events"],
        json!(events),
        "the measure's alert history: {chart}"
    );
    browser
        .send(json!({"cmd": "screenshot", "path": shots.join("chart.png"), "full_page": false}))
        .await;
    browser
        .eval("document.getElementById('detail-close').click(); true")
        .await;
    browser
        .wait("!document.getElementById('detail').open && location.hash === ''")
        .await;

    // By keyboard: Enter on a focused measure opens it; Escape closes it.
    browser
        .eval("document.querySelector('[data-measure=counter_visitors]').focus(); true")
        .await;
    browser.send(json!({"cmd": "key", "key": "Enter"})).await;
    browser
        .wait("document.getElementById('detail').dataset.measure === 'counter_visitors'")
        .await;
    let title = browser
        .eval("document.getElementById('detail-title').textContent")
        .await;
    assert_eq!(title, "Counter <b>visitors</b> & \"friends\"");
    browser.send(json!({"cmd": "key", "key": "Escape"})).await;
    browser
        .wait("!document.getElementById('detail').open")
        .await;

    // Live: a sync that changes the measure re-renders it, and the page is not reloaded.
    let renders = browser
        .eval("window.loadedOnce = 'still here'; Number(document.documentElement.dataset.renders)")
        .await;
    std::fs::write(
        dir.path().join("counter.csv"),
        format!("day,visitors\n{first_day},100\n{second_day},450\n"),
    )
    .expect("append to the CSV");
    let sync = reqwest::Client::new()
        .post(format!("{origin}/api/v1/sources/counter/sync"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST sync");
    assert_eq!(sync.status(), 200);
    let (_, after) = app.get_json("/api/v1/scorecard").await;
    let counter = after["perspectives"][1]["measures"]
        .as_array()
        .expect("customer measures")
        .iter()
        .find(|measure| measure["id"] == "counter_visitors")
        .expect("counter measure")
        .clone();
    assert_eq!(counter["judged"]["status"], "green", "{counter}");
    browser
        .wait(
            "document.querySelector('[data-measure=counter_visitors]').dataset.status === 'green'",
        )
        .await;
    let live = browser
        .eval("[window.loadedOnce, document.querySelector('[data-measure=counter_visitors] .m-value').textContent, Number(document.documentElement.dataset.renders)]")
        .await;
    assert_eq!(live[0], "still here", "the page was not reloaded");
    assert_eq!(live[1], "550 <i>people</i>");
    assert!(
        live[2].as_u64() > renders.as_u64(),
        "re-rendered: {live} after {renders}"
    );

    // Screenshots: desktop, then a phone (no horizontal overflow), then print.
    browser
        .send(json!({"cmd": "screenshot", "path": shots.join("dashboard.png")}))
        .await;
    browser
        .send(json!({"cmd": "viewport", "width": 390, "height": 844, "mobile": true, "scale": 2}))
        .await;
    browser
        .wait("document.querySelector('.strategy-map').viewBox.baseVal.width < 400")
        .await;
    let overflow = browser
        .eval("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        .await;
    assert_eq!(
        overflow,
        json!([390, 390]),
        "no horizontal overflow at 390 px"
    );
    let columns = browser
        .eval("getComputedStyle(document.getElementById('perspectives')).gridTemplateColumns.split(' ').length")
        .await;
    assert_eq!(columns, 1, "perspectives stack on a phone");
    browser
        .send(json!({"cmd": "screenshot", "path": shots.join("dashboard-phone.png")}))
        .await;
    browser
        .send(json!({"cmd": "viewport", "width": 1280, "height": 900}))
        .await;
    browser
        .wait("document.querySelector('.strategy-map').viewBox.baseVal.width > 1000")
        .await;
    let pdf_path = shots.join("dashboard.pdf");
    browser.send(json!({"cmd": "pdf", "path": pdf_path})).await;
    let pdf = std::fs::read(&pdf_path).expect("read the PDF");
    assert_eq!(pdf_pages(&pdf), 1, "the dashboard prints on one page");

    // Every request the page made went to the daemon's own origin.
    let requests = browser.send(json!({"cmd": "requests"})).await;
    let requests: Vec<String> = serde_json::from_value(requests).expect("request URLs");
    assert!(
        requests.iter().any(|url| url.ends_with("/api/v1/events")),
        "{requests:?}"
    );
    let elsewhere: Vec<&String> = requests
        .iter()
        .filter(|url| !url.starts_with(&format!("{origin}/")))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "requests off the origin: {elsewhere:?}"
    );
    // No script error, failed load or Content-Security-Policy violation on the way.
    let problems = browser.send(json!({"cmd": "problems"})).await;
    assert_eq!(problems, json!([]), "the page reported problems");

    // A chart has its own address: a fresh load of /#measure=ID opens it.
    browser
        .send(json!({"cmd": "navigate", "url": "about:blank"}))
        .await;
    browser
        .send(json!({"cmd": "navigate", "url": format!("{origin}/#measure=net_revenue")}))
        .await;
    browser
        .wait("document.getElementById('detail').open && document.getElementById('detail-title').textContent === 'Net revenue'")
        .await;

    browser.quit().await;
    for name in [
        "dashboard.png",
        "dashboard-phone.png",
        "chart.png",
        "dashboard.pdf",
    ] {
        println!("kept {}", shots.join(name).display());
    }
    app.stop().await;
    sandbox_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), sandbox).await;
}
