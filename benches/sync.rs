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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, PgConnection, QueryBuilder, Sqlite, SqliteConnection};

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
    backend: &'static str,
    tool: &'static str,
    usage: Usage,
    server_cpu_s: f64,
}

/// A re-sync after a full sync, with nothing changed upstream.
struct Resync {
    n: u64,
    lookback: &'static str,
    requests: u64,
    wall_s: f64,
}

/// The daemon from start to ready, then idle.
struct Daemon {
    records: u64,
    startup: Duration,
    idle_rss_mb: f64,
    stop: Duration,
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
    /// One period marked dirty (what a changed record does) and recomputed.
    one_period: Duration,
    /// Records stored in that period.
    one_period_records: u64,
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
    let mut postgres = std::env::var("SCOREKEEPER_BENCH_POSTGRES_URL").ok();
    for arg in args {
        if let Some(seconds) = arg.strip_prefix("--rebuild-limit=") {
            rebuild_limit =
                Duration::from_secs(seconds.parse().context("--rebuild-limit=SECONDS")?);
        } else if let Some(url) = arg.strip_prefix("--postgres=") {
            postgres = Some(url.to_string());
        }
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

    let mut report = Report::default();
    {
        // The daemon on a fresh, empty database.
        let dir = tempfile::Builder::new()
            .prefix("scorekeeper-bench-")
            .tempdir()
            .context("creating a temporary folder")?;
        let database = sqlite_url(&dir.path().join("bench.db"));
        report
            .daemons
            .push(measure_daemon(&binary, dir.path(), &database, 0)?);
    }
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
        let database = sqlite_url(&dir.join("bench.db"));

        // scorekeeper sync, end to end, then the floor client against a fresh server.
        let sync_config = bench_sync(&me, &binary, dir, n, &database, "sqlite", &mut report)?;
        let stored = runtime.block_on(count_records(&dir.join("bench.db")))?;
        ensure!(
            stored == n,
            "scorekeeper sync stored {stored} records, expected {n}"
        );
        let floor_db = dir.join("floor.db");
        bench_floor(
            &me,
            dir,
            n,
            "sqlite",
            &floor_db.display().to_string(),
            &mut report,
        )?;
        let stored = runtime.block_on(count_records(&floor_db))?;
        ensure!(
            stored == n,
            "the floor client stored {stored} records, expected {n}"
        );
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("floor.db{suffix}")));
        }

        // Re-syncs with nothing changed upstream: with the preset's lookback (30 days of
        // charges read again, to see charges that changed since) and without.
        for lookback in ["30d", "0s"] {
            report
                .resyncs
                .push(bench_resync(&me, &binary, dir, n, &database, lookback)?);
        }

        // The daemon on this database: startup to ready, idle memory, stop. (Before the
        // recompute below, which leaves another measure definition stored: a daemon
        // started after it would rebuild every input first.)
        report
            .daemons
            .push(measure_daemon(&binary, dir, &database, n)?);

        // Recompute over the stored records (the library never contacts the source here).
        let rebuild_config = write_config(dir, "rebuild.toml", 9, WHERE_REBUILD, &database, "")?;
        let times = runtime.block_on(measure_recompute(
            &sync_config,
            &rebuild_config,
            n,
            rebuild_limit,
        ))?;
        eprintln!(
            "   recompute: one period {:.1} ms; aggregate of every period {:.3} s; rebuild {}",
            times.one_period.as_secs_f64() * 1000.0,
            times.aggregate_only.as_secs_f64(),
            times.rebuild.describe()
        );
        report.recomputes.push(times);

        // The same sync into PostgreSQL, beside the floor client writing to PostgreSQL.
        if let Some(admin_url) = &postgres {
            let (url, name) = runtime.block_on(create_postgres_database(admin_url, n))?;
            let outcome = (|| -> anyhow::Result<()> {
                bench_sync(&me, &binary, dir, n, &url, "postgres", &mut report)?;
                let stored = runtime.block_on(count_postgres_records(&url))?;
                ensure!(
                    stored == n,
                    "scorekeeper sync stored {stored} records in PostgreSQL, expected {n}"
                );
                runtime.block_on(reset_postgres_database(admin_url, &name))?;
                bench_floor(&me, dir, n, "postgres", &url, &mut report)?;
                let stored = runtime.block_on(count_postgres_records(&url))?;
                ensure!(
                    stored == n,
                    "the floor client stored {stored} records in PostgreSQL, expected {n}"
                );
                Ok(())
            })();
            runtime.block_on(drop_postgres_database(admin_url, &name))?;
            outcome?;
        }
    }
    print_report(&report);
    println!(
        "(load average at the end: {}; the machine has {} CPUs)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

/// Everything measured, for the printed report.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    recomputes: Vec<RecomputeTimes>,
    resyncs: Vec<Resync>,
    daemons: Vec<Daemon>,
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Times `scorekeeper sync` of N charges into `database`; returns its config's path.
fn bench_sync(
    me: &Path,
    binary: &Path,
    dir: &Path,
    n: u64,
    database: &str,
    backend: &'static str,
    report: &mut Report,
) -> anyhow::Result<PathBuf> {
    let server = Server::start(me, n, dir, &format!("sync-{backend}"))?;
    let config = write_config(
        dir,
        &format!("sync-{backend}.toml"),
        server.port,
        WHERE_SYNC,
        database,
        "",
    )?;
    let (usage, output) = run_timed(sync_command(binary, &config), dir, "scorekeeper")?;
    let stats = server.stop()?;
    for line in output.lines().filter(|line| !line.trim().is_empty()) {
        eprintln!("   scorekeeper: {line}");
    }
    eprintln!(
        "   scorekeeper sync ({backend}): {n} records in {:.2} s",
        usage.wall_s
    );
    report.rows.push(Row {
        n,
        backend,
        tool: "scorekeeper sync",
        usage,
        server_cpu_s: stats.cpu_s,
    });
    Ok(config)
}

fn sync_command(binary: &Path, config: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(config)
        .arg("sync")
        .env("NO_COLOR", "1");
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    command
}

/// Times the floor client writing N charges to `target` (a SQLite path or a PostgreSQL URL).
fn bench_floor(
    me: &Path,
    dir: &Path,
    n: u64,
    backend: &'static str,
    target: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let server = Server::start(me, n, dir, &format!("floor-{backend}"))?;
    let mut command = Command::new(me);
    command
        .arg("--floor")
        .arg(server.port.to_string())
        .arg(target);
    let (usage, _) = run_timed(command, dir, "floor")?;
    let stats = server.stop()?;
    eprintln!(
        "   floor client ({backend}): {n} records in {:.2} s (load average now {})",
        usage.wall_s,
        load_average()
    );
    report.rows.push(Row {
        n,
        backend,
        tool: "floor client",
        usage,
        server_cpu_s: stats.cpu_s,
    });
    Ok(())
}

/// A second `scorekeeper sync` with the source's `lookback` set, against a fresh server
/// serving the same charges: requests made and wall time.
fn bench_resync(
    me: &Path,
    binary: &Path,
    dir: &Path,
    n: u64,
    database: &str,
    lookback: &'static str,
) -> anyhow::Result<Resync> {
    let server = Server::start(me, n, dir, &format!("resync-{lookback}"))?;
    let config = write_config(
        dir,
        &format!("resync-{lookback}.toml"),
        server.port,
        WHERE_SYNC,
        database,
        &format!("lookback = \"{lookback}\"\n"),
    )?;
    let (usage, _) = run_timed(sync_command(binary, &config), dir, "resync")?;
    let stats = server.stop()?;
    eprintln!(
        "   re-sync without change (lookback {lookback}): {} requests in {:.2} s",
        stats.requests, usage.wall_s
    );
    Ok(Resync {
        n,
        lookback,
        requests: stats.requests,
        wall_s: usage.wall_s,
    })
}

/// Starts `scorekeeper run` on `database`, times it to its first `200` from `/readyz`,
/// reads its resident memory after a few idle seconds, and times its stop on SIGTERM.
fn measure_daemon(
    binary: &Path,
    dir: &Path,
    database: &str,
    records: u64,
) -> anyhow::Result<Daemon> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = write_config(dir, "daemon.toml", 9, WHERE_SYNC, database, "")?;
    let text = std::fs::read_to_string(&config)?.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&config, text)?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting scorekeeper run")?;
    let ready = loop {
        if http_status(port, "/readyz") == Some(200) {
            break started.elapsed();
        }
        if let Some(status) = child.try_wait()? {
            bail!("scorekeeper run exited before it was ready: {status}");
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            bail!("scorekeeper run was not ready within 60 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    std::thread::sleep(Duration::from_secs(5));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .context("reading the daemon's /proc status")?;
    let rss_kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{}/status", child.id()))?;
    let stopping = Instant::now();
    let signalled = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    ensure!(signalled.success(), "kill -TERM failed");
    loop {
        if let Some(status) = child.try_wait()? {
            ensure!(
                status.success(),
                "scorekeeper run exited with {status} on SIGTERM"
            );
            break;
        }
        if stopping.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            bail!("scorekeeper run did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let daemon = Daemon {
        records,
        startup: ready,
        idle_rss_mb: rss_kb / 1024.0,
        stop: stopping.elapsed(),
    };
    eprintln!(
        "   daemon on {records} records: ready in {:.0} ms, idle RSS {:.1} MB, stopped in {:.0} ms",
        daemon.startup.as_secs_f64() * 1000.0,
        daemon.idle_rss_mb,
        daemon.stop.as_secs_f64() * 1000.0
    );
    Ok(daemon)
}

/// The status code of a GET on loopback, or `None` if nothing answers (yet).
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Creates a uniquely named PostgreSQL database; returns its URL and name.
async fn create_postgres_database(admin_url: &str, n: u64) -> anyhow::Result<(String, String)> {
    let name = format!("sk_bench_{}_{n}", std::process::id());
    let mut admin = PgConnection::connect(admin_url)
        .await
        .context("connecting to the PostgreSQL server (--postgres)")?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\""
    )))
    .execute(&mut admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(base, query)| (base, Some(query)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    let url = match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    };
    Ok((url, name))
}

/// Empties the database for the next client (drop and create again).
async fn reset_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    drop_postgres_database(admin_url, name).await?;
    let mut admin = PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

async fn drop_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

async fn count_postgres_records(url: &str) -> anyhow::Result<u64> {
    let mut connection = PgConnection::connect(url).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    Ok(count as u64)
}

/// The sandbox in its own process, under `/usr/bin/time` so its CPU can be reported.
struct Server {
    child: Child,
    port: u16,
    port_file: PathBuf,
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
            port_file: port_file.clone(),
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

    /// Closes the server's stdin (its signal to stop) and returns its CPU seconds and the
    /// requests it answered.
    fn stop(mut self) -> anyhow::Result<ServerStats> {
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
        let requests = std::fs::read_to_string(self.port_file.with_extension("requests"))
            .context("reading the server's request count")?
            .trim()
            .parse()
            .context("the server's request count")?;
        Ok(ServerStats {
            cpu_s: parse_time(&stats)?.cpu_s,
            requests,
        })
    }
}

/// What the sandbox server reports when it stops.
struct ServerStats {
    cpu_s: f64,
    requests: u64,
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

/// Writes a config with one Stripe source (`extra` is added to its table) and the measure.
fn write_config(
    dir: &Path,
    name: &str,
    port: u16,
    filter: &str,
    database: &str,
    extra: &str,
) -> anyhow::Result<PathBuf> {
    let text = format!(
        r#"# Written by benches/sync.rs.
[database]
url = "{database}"

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
{extra}
[measures.{MEASURE}]
perspective = "financial"
period = "month"
from = "stripe.charges"
time = "created"
where = "{filter}"
value = "amount / 100"
aggregate = "sum"
"#
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

    // One changed record dirties its period (old and new, the same here): the write marks
    // it, the recompute aggregates that period again from its stored inputs.
    let period = *periods
        .last()
        .ok_or_else(|| anyhow!("the sync stored no periods"))?;
    let started = Instant::now();
    let mut tx = store.begin().await?;
    tx.mark_dirty(&[(measure_id, period)]).await?;
    tx.commit().await?;
    let written =
        recompute::recompute_dirty(&store, &catalog, chrono::Utc::now().timestamp()).await?;
    let one_period = started.elapsed();
    ensure!(
        written == 1,
        "recompute wrote {written} values for one dirty period"
    );
    let one_period_records: i64 = {
        let mut connection = store_connection(sync_config).await?;
        let count = sqlx::query_scalar(
            "SELECT COUNT(*) FROM measure_inputs WHERE measure_id = $1 AND period_start = $2",
        )
        .bind(measure_id)
        .bind(period)
        .fetch_one(&mut connection)
        .await?;
        connection.close().await?;
        count
    };
    same_values(
        &synced,
        &store.values(measure_id, i64::MIN, i64::MAX).await?,
        "after the one-period recompute",
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
        one_period,
        one_period_records: one_period_records as u64,
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

/// Budgets of the production issue.
const BUDGET_FLOOR_RATIO: f64 = 0.90;
const BUDGET_ONE_PERIOD: Duration = Duration::from_millis(50);
const BUDGET_RESYNC_REQUESTS: u64 = 2;
const BUDGET_IDLE_RSS_MB: f64 = 40.0;
const BUDGET_STARTUP: Duration = Duration::from_millis(300);

fn print_report(report: &Report) {
    let Report {
        rows,
        recomputes,
        resyncs,
        daemons,
    } = report;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nSync of N Stripe charges (SQLite: WAL, synchronous=NORMAL); server in its own process"
    );
    let _ = writeln!(
        out,
        "{:>9}  {:<9} {:<17} {:>10} {:>8} {:>7} {:>9} {:>9} {:>12}",
        "N",
        "backend",
        "tool",
        "records/s",
        "wall s",
        "CPU s",
        "RSS MB",
        "vs floor",
        "server CPU s"
    );
    let floor_ratio = |row: &Row| {
        rows.iter()
            .find(|other| {
                other.n == row.n && other.backend == row.backend && other.tool == "floor client"
            })
            .map_or(f64::NAN, |floor| {
                (row.n as f64 / row.usage.wall_s) / (floor.n as f64 / floor.usage.wall_s)
            })
    };
    for row in rows {
        let _ = writeln!(
            out,
            "{:>9}  {:<9} {:<17} {:>10.0} {:>8.2} {:>7.2} {:>9.1} {:>9.2} {:>12.2}",
            row.n,
            row.backend,
            row.tool,
            row.n as f64 / row.usage.wall_s,
            row.usage.wall_s,
            row.usage.cpu_s,
            row.usage.max_rss_mb,
            floor_ratio(row),
            row.server_cpu_s
        );
    }
    let _ = writeln!(
        out,
        "(records/s = N / wall time of the whole process; vs floor = records/s ÷ the floor's records/s on the same backend)"
    );

    let _ = writeln!(out, "\nRe-sync with nothing changed upstream (SQLite)");
    let _ = writeln!(
        out,
        "{:>9}  {:>8}  {:>8}  {:>7}",
        "N", "lookback", "requests", "wall s"
    );
    for resync in resyncs {
        let _ = writeln!(
            out,
            "{:>9}  {:>8}  {:>8}  {:>7.2}",
            resync.n, resync.lookback, resync.requests, resync.wall_s
        );
    }

    let _ = writeln!(
        out,
        "\nRecompute of the monthly sum (library, in the bench process)"
    );
    let _ = writeln!(
        out,
        "{:>9}  {:>7}  {:>20}  {:>16}  {:>16}  rebuild from records after a definition change",
        "records", "periods", "one period ms (recs)", "mark all dirty s", "aggregate all s"
    );
    for times in recomputes {
        let _ = writeln!(
            out,
            "{:>9}  {:>7}  {:>20}  {:>16.3}  {:>16.3}  {}",
            times.n,
            times.periods,
            format!(
                "{:.1} ({})",
                times.one_period.as_secs_f64() * 1000.0,
                times.one_period_records
            ),
            times.mark_dirty.as_secs_f64(),
            times.aggregate_only.as_secs_f64(),
            times.rebuild.describe()
        );
    }

    let _ = writeln!(out, "\nThe daemon (`scorekeeper run`, SQLite, one source)");
    let _ = writeln!(
        out,
        "{:>9}  {:>16}  {:>12}  {:>16}",
        "records", "start → ready ms", "idle RSS MB", "SIGTERM → exit ms"
    );
    for daemon in daemons {
        let _ = writeln!(
            out,
            "{:>9}  {:>16.0}  {:>12.1}  {:>16.0}",
            daemon.records,
            daemon.startup.as_secs_f64() * 1000.0,
            daemon.idle_rss_mb,
            daemon.stop.as_secs_f64() * 1000.0
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
                "{} records/s >= {BUDGET_RECORDS_PER_S:.0} at N = {} ({})",
                rate as u64, row.n, row.backend
            ),
            rate >= BUDGET_RECORDS_PER_S,
        ));
        if row.backend == "sqlite" {
            let ratio = floor_ratio(row);
            checks.push((
                format!(
                    "{ratio:.2} of the floor client >= {BUDGET_FLOOR_RATIO:.2} at N = {} (sqlite)",
                    row.n
                ),
                ratio >= BUDGET_FLOOR_RATIO,
            ));
        }
        checks.push((
            format!(
                "peak RSS {:.1} MB < {BUDGET_RSS_MB:.0} MB at N = {} ({})",
                row.usage.max_rss_mb, row.n, row.backend
            ),
            row.usage.max_rss_mb < BUDGET_RSS_MB,
        ));
    }
    for backend in ["sqlite", "postgres"] {
        let synced: Vec<&Row> = rows
            .iter()
            .filter(|row| row.tool == "scorekeeper sync" && row.backend == backend)
            .collect();
        if let (Some(small), Some(large)) = (
            synced.iter().min_by_key(|row| row.n),
            synced.iter().max_by_key(|row| row.n),
        ) && large.n >= 10 * small.n
        {
            let growth = large.usage.max_rss_mb - small.usage.max_rss_mb;
            // Two sizes cannot tell a warm-up (allocator, caches) from growth: run a larger N too.
            checks.push((
                format!("peak RSS grows {growth:+.1} MB from N = {} to N = {} ({backend}; flat: within 10 MB)", small.n, large.n),
                growth <= 10.0,
            ));
        }
    }
    for resync in resyncs.iter().filter(|resync| resync.lookback == "0s") {
        checks.push((
            format!(
                "re-sync without change: {} requests <= {BUDGET_RESYNC_REQUESTS} at N = {} (lookback 0s)",
                resync.requests, resync.n
            ),
            resync.requests <= BUDGET_RESYNC_REQUESTS,
        ));
    }
    for times in recomputes.iter().filter(|times| times.n >= 1_000_000) {
        checks.push((
            format!(
                "one changed period recomputed in {:.1} ms < {} ms with {} records stored",
                times.one_period.as_secs_f64() * 1000.0,
                BUDGET_ONE_PERIOD.as_millis(),
                times.n
            ),
            times.one_period < BUDGET_ONE_PERIOD,
        ));
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
                "aggregate of every period {:.3} s < {:.0} s over {} records",
                times.aggregate_only.as_secs_f64(),
                BUDGET_RECOMPUTE.as_secs_f64(),
                times.n
            ),
            times.aggregate_only < BUDGET_RECOMPUTE,
        ));
    }
    for daemon in daemons {
        checks.push((
            format!(
                "daemon ready in {:.0} ms < {} ms on SQLite ({} records)",
                daemon.startup.as_secs_f64() * 1000.0,
                BUDGET_STARTUP.as_millis(),
                daemon.records
            ),
            daemon.startup < BUDGET_STARTUP,
        ));
        checks.push((
            format!(
                "daemon idle RSS {:.1} MB < {BUDGET_IDLE_RSS_MB:.0} MB ({} records)",
                daemon.idle_rss_mb, daemon.records
            ),
            daemon.idle_rss_mb < BUDGET_IDLE_RSS_MB,
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
        let requests = Arc::new(AtomicU64::new(0));
        let router = stripe_sandbox::router(data, API_KEY.to_string()).layer(
            axum::middleware::from_fn_with_state(requests.clone(), count_request),
        );
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        std::fs::write(
            port_file.with_extension("requests"),
            requests.load(Ordering::Relaxed).to_string(),
        )?;
        Ok(())
    })
}

/// Counts every request the sandbox answers.
async fn count_request(
    axum::extract::State(requests): axum::extract::State<Arc<AtomicU64>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    requests.fetch_add(1, Ordering::Relaxed);
    next.run(request).await
}

// ---------------------------------------------------------------------------------------------
// `--floor PORT DBPATH`: the floor client
// ---------------------------------------------------------------------------------------------

fn floor_mode(args: &[String]) -> anyhow::Result<()> {
    let [port, target] = args else {
        bail!("usage: --floor PORT DBPATH|POSTGRES_URL")
    };
    let port = u16::from_str(port).context("PORT")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let records = runtime.block_on(async {
        let store = if target.starts_with("postgres") {
            FloorStore::Postgres(PgConnection::connect(target).await?)
        } else {
            FloorStore::Sqlite(
                SqliteConnection::connect_with(&sqlite_options(Path::new(target))).await?,
            )
        };
        floor(port, store).await
    })?;
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
async fn floor(port: u16, mut store: FloorStore) -> anyhow::Result<u64> {
    scorekeeper::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()?;
    store.create_table().await?;
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
            store.upsert(&rows).await?;
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
    store.close().await?;
    Ok(total)
}

/// Where the floor client writes: the store's SQLite settings, or PostgreSQL.
enum FloorStore {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// The floor's upsert, the same text on both backends.
const FLOOR_UPSERT_TAIL: &str = " ON CONFLICT (key) DO UPDATE SET data = excluded.data";

impl FloorStore {
    async fn create_table(&mut self) -> anyhow::Result<()> {
        match self {
            FloorStore::Sqlite(connection) => {
                sqlx::query("CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, key TEXT UNIQUE, data TEXT)")
                    .execute(connection)
                    .await?;
            }
            FloorStore::Postgres(connection) => {
                sqlx::query("CREATE TABLE IF NOT EXISTS records (id BIGSERIAL PRIMARY KEY, key TEXT UNIQUE, data TEXT)")
                    .execute(connection)
                    .await?;
            }
        }
        Ok(())
    }

    /// One transaction and one multi-row upsert per page.
    async fn upsert(&mut self, rows: &[(Cow<'_, str>, &str)]) -> anyhow::Result<()> {
        match self {
            FloorStore::Sqlite(connection) => {
                let mut tx = connection.begin_with("BEGIN IMMEDIATE").await?;
                let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO records (key, data) ");
                query.push_values(rows, |mut row, (key, data)| {
                    row.push_bind(key.as_ref()).push_bind(*data);
                });
                query.push(FLOOR_UPSERT_TAIL);
                query.build().execute(&mut *tx).await?;
                tx.commit().await?;
            }
            FloorStore::Postgres(connection) => {
                // Columns as arrays (UNNEST), the fastest plain way to upsert a page in
                // PostgreSQL, as the store does.
                let (keys, data): (Vec<&str>, Vec<&str>) =
                    rows.iter().map(|(key, data)| (key.as_ref(), *data)).unzip();
                let mut tx = connection.begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO records (key, data) SELECT * FROM UNNEST($1::text[], $2::text[]){FLOOR_UPSERT_TAIL}"
                )))
                .bind(keys)
                .bind(data)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            FloorStore::Sqlite(connection) => connection.close().await?,
            FloorStore::Postgres(connection) => connection.close().await?,
        }
        Ok(())
    }
}
