//! Throughput benchmark: `scorekeeper sync` from a Stripe-shaped API into SQLite, beside a
//! bare "floor" client that does only the unavoidable work.
//!
//! Run with `cargo bench --bench sync -- [N ...] [--rebuild-limit=SECONDS]` (default N = 100000
//! 1000000). Cargo builds the `scorekeeper` binary in the same (release-like) profile before it
//! runs this bench; its path comes from `CARGO_BIN_EXE_scorekeeper`.
//!
//! For each N the bench:
//!
//! 1. starts the sandbox ([`scorekeeper::demo::sandbox::stripe`]) serving N synthetic charges
//!    (~1.25 KB each, pages of 100, Stripe's `starting_after` cursor pagination) in a separate
//!    process (this executable re-run with `--serve N PORTFILE`), so the server's CPU is not
//!    counted in the client's figures; it is reported in its own column;
//! 2. writes a config with one Stripe source (`charges` only) and one monthly `sum` measure,
//!    and runs `scorekeeper --config <file> sync` under `/usr/bin/time -v`: wall time,
//!    user + system CPU and peak RSS of the whole process, startup and recompute included;
//! 3. checks that the database holds exactly N records;
//! 4. runs the floor client (this executable with `--floor PORT DBPATH`, see [`floor`]) the
//!    same way against a fresh server: one keep-alive connection, fetch a page, parse it into
//!    raw objects and their ids, upsert them with the store's SQLite settings (WAL,
//!    `synchronous = NORMAL`, one `BEGIN IMMEDIATE` transaction and one multi-row upsert per
//!    page), nothing else;
//! 5. times the recompute of the monthly `sum` over the N stored records through the library:
//!    (b) every period marked dirty through `Tx::mark_dirty`, then `recompute_dirty`: the pure
//!    SQL aggregation of the stored inputs; then (a) a definition change (same meaning,
//!    different `where` text) that makes `Catalog::prepare` clear every input and derive it
//!    again from the stored JSON, then `recompute_dirty`. Both must give the sync's values.
//!    (a) is stopped after `--rebuild-limit=SECONDS` (default 120) and then reports how many
//!    records it had gone through.
//!
//! Temporary databases go under `$TMPDIR` (a real disk, not tmpfs, for honest figures) and
//! are removed afterwards; a 1,000,000-record run needs about 3 GB free at its peak.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

use scorekeeper::demo::sandbox::stripe::{self as stripe_sandbox, StripeData};
use scorekeeper::recompute::{self, Catalog};
use scorekeeper::store::Store;

/// The sandbox's key (not a real Stripe key).
const API_KEY: &str = "sk_test_scorekeeper_bench";
/// The charges are spread evenly over 2024 and 2025: 24 monthly periods.
const DATA_START: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z
const DATA_END: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
/// The measure the bench syncs and recomputes.
const MEASURE: &str = "gross_revenue";
/// Its `where` as synced, and a text with the same meaning that forces a rebuild.
const WHERE_SYNC: &str = "status == 'succeeded'";
const WHERE_REBUILD: &str = "'succeeded' == status";
/// Budgets from the issue (checked at N >= 1,000,000).
const BUDGET_RECORDS_PER_S: f64 = 20_000.0;
const BUDGET_RSS_MB: f64 = 100.0;
const BUDGET_RECOMPUTE: Duration = Duration::from_secs(2);
/// The rebuild is stopped after this long (`--rebuild-limit=SECONDS`).
const DEFAULT_REBUILD_LIMIT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--serve") => serve_mode(&args[1..]),
        Some("--floor") => floor_mode(&args[1..]),
        _ => orchestrate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Orchestration
// ---------------------------------------------------------------------------------------------

/// One measured run of a client.
struct Row {
    n: u64,
    tool: &'static str,
    usage: Usage,
    server_cpu_s: f64,
}

/// What `/usr/bin/time -v` and a stopwatch say about one process.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    wall_s: f64,
    cpu_s: f64,
    max_rss_mb: f64,
}

/// The recompute timings for one N.
struct RecomputeTimes {
    n: u64,
    periods: usize,
    rebuild: Rebuild,
    mark_dirty: Duration,
    aggregate_only: Duration,
}

/// How the rebuild after a definition change went.
enum Rebuild {
    /// Finished: `Catalog::prepare` (clear and re-derive), then `recompute_dirty`.
    Done {
        rebuild: Duration,
        aggregate: Duration,
    },
    /// Still running at the time limit, having gone through this many records.
    Stopped { after: Duration, records: u64 },
}

impl Rebuild {
    fn describe(&self) -> String {
        match self {
            Rebuild::Done { rebuild, aggregate } => format!(
                "{:.2} s, then aggregate {:.3} s",
                rebuild.as_secs_f64(),
                aggregate.as_secs_f64()
            ),
            Rebuild::Stopped { after, records } => format!(
                "stopped after {:.0} s with {records} records done",
                after.as_secs_f64()
            ),
        }
    }
}

fn orchestrate(args: &[String]) -> anyhow::Result<()> {
    let mut rebuild_limit = DEFAULT_REBUILD_LIMIT;
    for arg in args
        .iter()
        .filter_map(|arg| arg.strip_prefix("--rebuild-limit="))
    {
        rebuild_limit = Duration::from_secs(arg.parse().context("--rebuild-limit=SECONDS")?);
    }
    // `cargo bench` passes `--bench`; other flags are ignored too.
    let sizes: Vec<u64> = args
        .iter()
        .filter(|arg| !arg.starts_with('-'))
        .map(|arg| {
            arg.replace(['_', ','], "")
                .parse()
                .with_context(|| format!("N must be a whole number, not {arg:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_scorekeeper"));
    ensure!(
        binary.exists(),
        "{} is missing: run this through `cargo bench --bench sync`, which builds it",
        binary.display()
    );
    ensure!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time (GNU time) is needed for CPU and peak RSS"
    );
    let me = std::env::current_exe().context("locating the bench executable")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let mut rows = Vec::new();
    let mut recomputes = Vec::new();
    for &n in &sizes {
        let dir = tempfile::Builder::new()
            .prefix("scorekeeper-bench-")
            .tempdir()
            .context("creating a temporary folder")?;
        let dir = dir.path();
        eprintln!(
            "== N = {n} (in {}; load average {})",
            dir.display(),
            load_average()
        );

        // scorekeeper sync, end to end.
        let server = Server::start(&me, n, dir, "sync")?;
        let sync_config = write_config(dir, "sync.toml", server.port, WHERE_SYNC)?;
        let mut command = Command::new(&binary);
        command
            .arg("--config")
            .arg(&sync_config)
            .arg("sync")
            .env("NO_COLOR", "1");
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let (usage, output) = run_timed(command, dir, "scorekeeper")?;
        let server_cpu_s = server.stop()?;
        for line in output.lines().filter(|line| !line.trim().is_empty()) {
            eprintln!("   scorekeeper: {line}");
        }
        let database = dir.join("bench.db");
        let stored = runtime.block_on(count_records(&database))?;
        ensure!(
            stored == n,
            "scorekeeper sync stored {stored} records, expected {n}"
        );
        eprintln!("   scorekeeper sync: {n} records in {:.2} s", usage.wall_s);
        rows.push(Row {
            n,
            tool: "scorekeeper sync",
            usage,
            server_cpu_s,
        });

        // The floor client against a fresh server.
        let server = Server::start(&me, n, dir, "floor")?;
        let floor_db = dir.join("floor.db");
        let mut command = Command::new(&me);
        command
            .arg("--floor")
            .arg(server.port.to_string())
            .arg(&floor_db);
        let (usage, _) = run_timed(command, dir, "floor")?;
        let server_cpu_s = server.stop()?;
        let stored = runtime.block_on(count_records(&floor_db))?;
        ensure!(
            stored == n,
            "the floor client stored {stored} records, expected {n}"
        );
        eprintln!(
            "   floor client: {n} records in {:.2} s (load average now {})",
            usage.wall_s,
            load_average()
        );
        rows.push(Row {
            n,
            tool: "floor client",
            usage,
            server_cpu_s,
        });
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("floor.db{suffix}")));
        }

        // Recompute over the stored records (the library never contacts the source here).
        let rebuild_config = write_config(dir, "rebuild.toml", 9, WHERE_REBUILD)?;
        let times = runtime.block_on(measure_recompute(
            &sync_config,
            &rebuild_config,
            n,
            rebuild_limit,
        ))?;
        eprintln!(
            "   recompute: aggregate of every period {:.3} s; rebuild {}",
            times.aggregate_only.as_secs_f64(),
            times.rebuild.describe()
        );
        recomputes.push(times);
    }
    print_report(&rows, &recomputes);
    println!(
        "(load average at the end: {}; the machine has {} CPUs)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

/// The sandbox in its own process, under `/usr/bin/time` so its CPU can be reported.
struct Server {
    child: Child,
    port: u16,
    stats: PathBuf,
}

impl Server {
    fn start(me: &Path, n: u64, dir: &Path, label: &str) -> anyhow::Result<Server> {
        let port_file = dir.join(format!("server-{label}.port"));
        let stats = dir.join(format!("server-{label}.time"));
        let child = Command::new("/usr/bin/time")
            .arg("-v")
            .arg("-o")
            .arg(&stats)
            .arg(me)
            .arg("--serve")
            .arg(n.to_string())
            .arg(&port_file)
            .stdin(Stdio::piped())
            .spawn()
            .context("starting the sandbox server")?;
        let mut server = Server {
            child,
            port: 0,
            stats,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                server.port = port;
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("the sandbox server exited early: {status}");
            }
            ensure!(
                Instant::now() < deadline,
                "the sandbox server did not report its port within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes the server's stdin (its signal to stop) and returns its CPU seconds.
    fn stop(mut self) -> anyhow::Result<f64> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill().context("stopping the sandbox server")?;
                self.child.wait()?;
                bail!("the sandbox server did not stop within 20 s of its stdin closing");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let stats = std::fs::read_to_string(&self.stats)
            .context("reading the server's /usr/bin/time output")?;
        Ok(parse_time(&stats)?.cpu_s)
    }
}

/// Runs `command` under `/usr/bin/time -v`; returns its usage and its stdout + stderr.
fn run_timed(command: Command, dir: &Path, label: &str) -> anyhow::Result<(Usage, String)> {
    let stats = dir.join(format!("{label}.time"));
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-v")
        .arg("-o")
        .arg(&stats)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    let started = Instant::now();
    let output = timed
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {label} under /usr/bin/time"))?;
    let wall = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success(),
        "{label} failed ({}):\n{text}",
        output.status
    );
    let stats = std::fs::read_to_string(&stats).context("reading /usr/bin/time's output")?;
    let mut usage = parse_time(&stats)?;
    usage.wall_s = wall.as_secs_f64();
    Ok((usage, text))
}

/// CPU (user + system) and peak RSS from `/usr/bin/time -v` output.
fn parse_time(stats: &str) -> anyhow::Result<Usage> {
    let field = |name: &str| -> anyhow::Result<f64> {
        stats
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix(name)?
                    .trim()
                    .strip_prefix(':')?
                    .trim()
                    .parse()
                    .ok()
            })
            .ok_or_else(|| anyhow!("no \"{name}\" in /usr/bin/time output:\n{stats}"))
    };
    Ok(Usage {
        wall_s: 0.0,
        cpu_s: field("User time (seconds)")? + field("System time (seconds)")?,
        max_rss_mb: field("Maximum resident set size (kbytes)")? / 1024.0,
    })
}

/// The 1-, 5- and 15-minute load averages: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

fn write_config(dir: &Path, name: &str, port: u16, filter: &str) -> anyhow::Result<PathBuf> {
    let database = dir.join("bench.db");
    let text = format!(
        r#"# Written by benches/sync.rs.
[database]
url = "sqlite://{database}"

[server]
listen = "127.0.0.1:0"

[scorecard]
name = "Sync benchmark"
timezone = "UTC"

[sources.stripe]
kind = "stripe"
schedule = "0 0 0 * * *"
base_url = "http://127.0.0.1:{port}"
api_key = "{API_KEY}"
streams = ["charges"]
start_date = "2023-12-01"

[measures.{MEASURE}]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "created"
where = "{filter}"
value = "amount / 100"
aggregate = "sum"
"#,
        database = database.display(),
    );
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The store's SQLite settings (src/store/sqlite.rs), for the floor client and the checks.
fn sqlite_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
}

async fn count_records(path: &Path) -> anyhow::Result<u64> {
    let mut connection =
        SqliteConnection::connect_with(&sqlite_options(path).create_if_missing(false))
            .await
            .with_context(|| format!("opening {}", path.display()))?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    Ok(count as u64)
}

/// Times (b) the aggregation of every period of the synced inputs, then (a) the rebuild of
/// the measure's inputs from the stored records after a definition change, stopped after
/// `limit`; checks that both give the synced values.
async fn measure_recompute(
    sync_config: &Path,
    rebuild_config: &Path,
    n: u64,
    limit: Duration,
) -> anyhow::Result<RecomputeTimes> {
    let load = |path: &Path| scorekeeper::config::load(path).map_err(|error| anyhow!("{error}"));
    let (settings, rebuild_settings) = (load(sync_config)?, load(rebuild_config)?);
    let store = Store::connect(&settings.database.url).await?;

    // (b) The definition is unchanged: binding the measures rebuilds nothing.
    let catalog = Catalog::prepare(&store, &settings).await?;
    let measure_id = catalog
        .get(MEASURE)
        .ok_or_else(|| anyhow!("{MEASURE} is not in the catalog"))?
        .id;
    let synced = store.values(measure_id, i64::MIN, i64::MAX).await?;
    ensure!(
        !synced.is_empty(),
        "the sync stored no values for {MEASURE}"
    );
    let started = Instant::now();
    let mut tx = store.begin().await?;
    let periods = tx.input_periods(measure_id).await?;
    let dirty: Vec<(i64, i64)> = periods.iter().map(|period| (measure_id, *period)).collect();
    tx.mark_dirty(&dirty).await?;
    tx.commit().await?;
    let mark_dirty = started.elapsed();
    let started = Instant::now();
    let written =
        recompute::recompute_dirty(&store, &catalog, chrono::Utc::now().timestamp()).await?;
    let aggregate_only = started.elapsed();
    ensure!(
        written == periods.len(),
        "recompute wrote {written} values for {} dirty periods",
        periods.len()
    );
    same_values(
        &synced,
        &store.values(measure_id, i64::MIN, i64::MAX).await?,
        "after the aggregate",
    )?;

    // (a) Same meaning, new `where` text: every input is cleared and derived again.
    let started = Instant::now();
    let prepared = tokio::time::timeout(limit, Catalog::prepare(&store, &rebuild_settings)).await;
    let rebuild = started.elapsed();
    let rebuild = match prepared {
        Ok(catalog) => {
            let catalog = catalog?;
            let started = Instant::now();
            recompute::recompute_dirty(&store, &catalog, chrono::Utc::now().timestamp()).await?;
            let aggregate = started.elapsed();
            same_values(
                &synced,
                &store.values(measure_id, i64::MIN, i64::MAX).await?,
                "after the rebuild",
            )?;
            Rebuild::Done { rebuild, aggregate }
        }
        Err(_) => {
            // The rebuild walks the records in id order: count those up to the last one done.
            let sql = "SELECT COUNT(*) FROM records WHERE id <= (SELECT COALESCE(MAX(record_id), 0) FROM measure_inputs WHERE measure_id = $1)";
            let mut connection = store_connection(sync_config).await?;
            let done: i64 = sqlx::query_scalar(sql)
                .bind(measure_id)
                .fetch_one(&mut connection)
                .await?;
            connection.close().await?;
            Rebuild::Stopped {
                after: rebuild,
                records: done as u64,
            }
        }
    };
    store.close().await;
    Ok(RecomputeTimes {
        n,
        periods: periods.len(),
        rebuild,
        mark_dirty,
        aggregate_only,
    })
}

/// A plain connection to the bench database (for counts the library has no query for).
async fn store_connection(config: &Path) -> anyhow::Result<SqliteConnection> {
    let database = config
        .parent()
        .ok_or_else(|| anyhow!("config without a folder"))?
        .join("bench.db");
    Ok(SqliteConnection::connect_with(&sqlite_options(&database).create_if_missing(false)).await?)
}

fn same_values(
    expected: &[(i64, Option<f64>)],
    actual: &[(i64, Option<f64>)],
    when: &str,
) -> anyhow::Result<()> {
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
        (a, b) => a == b,
    };
    let same = expected.len() == actual.len()
        && expected
            .iter()
            .zip(actual)
            .all(|((p, a), (q, b))| p == q && close(*a, *b));
    ensure!(
        same,
        "{MEASURE} differs {when}: synced {expected:?}, recomputed {actual:?}"
    );
    Ok(())
}

fn print_report(rows: &[Row], recomputes: &[RecomputeTimes]) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nSync of N Stripe charges into SQLite (WAL, synchronous=NORMAL); server in its own process"
    );
    let _ = writeln!(
        out,
        "{:>9}  {:<17} {:>10} {:>8} {:>7} {:>9} {:>9} {:>12}",
        "N", "tool", "records/s", "wall s", "CPU s", "RSS MB", "vs floor", "server CPU s"
    );
    for row in rows {
        let floor = rows
            .iter()
            .find(|other| other.n == row.n && other.tool == "floor client");
        let rate = row.n as f64 / row.usage.wall_s;
        let ratio = floor.map_or(f64::NAN, |floor| {
            rate / (floor.n as f64 / floor.usage.wall_s)
        });
        let _ = writeln!(
            out,
            "{:>9}  {:<17} {:>10.0} {:>8.2} {:>7.2} {:>9.1} {:>9.2} {:>12.2}",
            row.n,
            row.tool,
            rate,
            row.usage.wall_s,
            row.usage.cpu_s,
            row.usage.max_rss_mb,
            ratio,
            row.server_cpu_s
        );
    }
    let _ = writeln!(
        out,
        "(records/s = N / wall time of the whole process; vs floor = records/s ÷ the floor's records/s)"
    );

    let _ = writeln!(
        out,
        "\nRecompute of the monthly sum (library, in the bench process)"
    );
    let _ = writeln!(
        out,
        "{:>9}  {:>7}  {:>16}  {:>16}  rebuild from records after a definition change",
        "records", "periods", "mark all dirty s", "aggregate all s"
    );
    for times in recomputes {
        let _ = writeln!(
            out,
            "{:>9}  {:>7}  {:>16.3}  {:>16.3}  {}",
            times.n,
            times.periods,
            times.mark_dirty.as_secs_f64(),
            times.aggregate_only.as_secs_f64(),
            times.rebuild.describe()
        );
    }

    let mut checks = Vec::new();
    for row in rows
        .iter()
        .filter(|row| row.tool == "scorekeeper sync" && row.n >= 1_000_000)
    {
        let rate = row.n as f64 / row.usage.wall_s;
        checks.push((
            format!(
                "{} records/s >= {BUDGET_RECORDS_PER_S:.0} at N = {}",
                rate as u64, row.n
            ),
            rate >= BUDGET_RECORDS_PER_S,
        ));
        checks.push((
            format!(
                "peak RSS {:.1} MB < {BUDGET_RSS_MB:.0} MB at N = {}",
                row.usage.max_rss_mb, row.n
            ),
            row.usage.max_rss_mb < BUDGET_RSS_MB,
        ));
    }
    let synced: Vec<&Row> = rows
        .iter()
        .filter(|row| row.tool == "scorekeeper sync")
        .collect();
    if let (Some(small), Some(large)) = (
        synced.iter().min_by_key(|row| row.n),
        synced.iter().max_by_key(|row| row.n),
    ) && large.n >= 10 * small.n
    {
        let growth = large.usage.max_rss_mb - small.usage.max_rss_mb;
        // Two sizes cannot tell a warm-up (allocator, caches) from growth: run a larger N too.
        checks.push((
            format!("peak RSS grows {growth:+.1} MB from N = {} to N = {} (flat: within 10 MB; compare a larger N to tell warm-up from growth)", small.n, large.n),
            growth <= 10.0,
        ));
    }
    for times in recomputes.iter().filter(|times| times.n >= 1_000_000) {
        let ok = matches!(times.rebuild, Rebuild::Done { rebuild, aggregate } if rebuild + aggregate < BUDGET_RECOMPUTE);
        checks.push((
            format!(
                "rebuild from records {} < {:.0} s over {} records",
                times.rebuild.describe(),
                BUDGET_RECOMPUTE.as_secs_f64(),
                times.n
            ),
            ok,
        ));
        checks.push((
            format!(
                "aggregate only {:.3} s < {:.0} s over {} records",
                times.aggregate_only.as_secs_f64(),
                BUDGET_RECOMPUTE.as_secs_f64(),
                times.n
            ),
            times.aggregate_only < BUDGET_RECOMPUTE,
        ));
    }
    if !checks.is_empty() {
        let _ = writeln!(out, "\nBudgets (issue): ");
        for (what, ok) in checks {
            let _ = writeln!(out, "  {} {what}", if ok { "PASS" } else { "MISS" });
        }
    }
    print!("{out}");
}

// ---------------------------------------------------------------------------------------------
// `--serve N PORTFILE`: the sandbox
// ---------------------------------------------------------------------------------------------

/// Serves N synthetic charges on 127.0.0.1 (a free port, written to PORTFILE) until stdin closes.
fn serve_mode(args: &[String]) -> anyhow::Result<()> {
    let [n, port_file] = args else {
        bail!("usage: --serve N PORTFILE")
    };
    let n: u64 = n.parse().context("N")?;
    let port_file = PathBuf::from(port_file);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        // Write then rename, so the orchestrator never reads half a number.
        let partial = port_file.with_extension("partial");
        std::fs::write(&partial, port.to_string())?;
        std::fs::rename(&partial, &port_file)?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let on_eof = shutdown.clone();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            on_eof.cancel();
        });
        let data = Arc::new(tokio::sync::RwLock::new(StripeData::synthetic_charges(
            n, DATA_START, DATA_END,
        )));
        stripe_sandbox::serve(listener, data, API_KEY.to_string(), shutdown).await?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// `--floor PORT DBPATH`: the floor client
// ---------------------------------------------------------------------------------------------

fn floor_mode(args: &[String]) -> anyhow::Result<()> {
    let [port, database] = args else {
        bail!("usage: --floor PORT DBPATH")
    };
    let port = u16::from_str(port).context("PORT")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let records = runtime.block_on(floor(port, Path::new(database)))?;
    println!("floor client: {records} records");
    Ok(())
}

/// A list page, its objects left as raw JSON text.
#[derive(Deserialize)]
struct ListPage<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    has_more: bool,
}

/// The one field the floor reads from an object.
#[derive(Deserialize)]
struct Keyed<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

/// The least a sync must do: one keep-alive connection; fetch a page, parse it into raw
/// objects and their ids, upsert them in one transaction; follow `starting_after`.
/// Sequential on purpose: this is the simple loop the engine is compared with.
async fn floor(port: u16, database: &Path) -> anyhow::Result<u64> {
    scorekeeper::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()?;
    let mut connection = SqliteConnection::connect_with(&sqlite_options(database)).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, key TEXT UNIQUE, data TEXT)",
    )
    .execute(&mut connection)
    .await?;
    let base = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/v1/charges?limit=100"))?;
    let authorization = format!("Bearer {API_KEY}");
    let mut after: Option<String> = None;
    let mut total = 0u64;
    loop {
        let mut url = base.clone();
        if let Some(id) = &after {
            url.query_pairs_mut().append_pair("starting_after", id);
        }
        let response = client
            .get(url)
            .header(reqwest::header::AUTHORIZATION, &authorization)
            .send()
            .await?
            .error_for_status()?;
        let body = response.bytes().await?;
        let page: ListPage = serde_json::from_slice(&body).context("parsing a page")?;
        let rows = page
            .data
            .iter()
            .map(|raw| Ok((serde_json::from_str::<Keyed>(raw.get())?.id, raw.get())))
            .collect::<Result<Vec<(Cow<str>, &str)>, serde_json::Error>>()
            .context("reading an object's id")?;
        if !rows.is_empty() {
            let mut tx = connection.begin_with("BEGIN IMMEDIATE").await?;
            let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO records (key, data) ");
            query.push_values(&rows, |mut row, (key, data)| {
                row.push_bind(key.as_ref()).push_bind(*data);
            });
            query.push(" ON CONFLICT (key) DO UPDATE SET data = excluded.data");
            query.build().execute(&mut *tx).await?;
            tx.commit().await?;
        }
        total += rows.len() as u64;
        if !page.has_more {
            break;
        }
        let last = rows
            .last()
            .ok_or_else(|| anyhow!("has_more is true but the page is empty"))?;
        after = Some(last.0.to_string());
    }
    connection.close().await?;
    Ok(total)
}
