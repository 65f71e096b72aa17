//! The command line: clap types, and what each command does.
//!
//! Exit codes: 0 success; 1 a runtime failure (a source failed to sync, the database
//! is unreachable); 2 bad configuration or usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::app::{self, RunOptions, Services};
use crate::config::{self, ConfigError, Settings};
use crate::scorecard::{self, SeriesPoint};
use crate::sources::SourceError;
use crate::sources::engine::{Progress, ProgressFn, SyncOptions, Trigger};
use crate::sources::http::{HttpClient, RetryPolicy};
use crate::sources::presets;
use crate::telemetry::LogFormat;
use crate::templates;

/// Keeps a Balanced Scorecard current: syncs SaaS data into measures and judges them against targets.
#[derive(Debug, Parser)]
#[command(name = "scorekeeper", version, about)]
pub struct Cli {
    /// Configuration file [default: $SCOREKEEPER_CONFIG, else config/scorekeeper.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats of the scorecard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableOrJson {
    /// Aligned text.
    Table,
    /// JSON.
    Json,
}

/// Output formats of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeriesFormat {
    /// Aligned text.
    Table,
    /// A JSON array of {period, start, value, target, status}.
    Json,
    /// CSV with a header row.
    Csv,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: scheduler and HTTP server; stops gracefully on SIGTERM/ctrl-c.
    Run,
    /// Run the daemon against a built-in sandbox with realistic data (SQLite under ./data).
    Demo,
    /// Sync now (all sources or one), recompute; exit 1 if a source failed.
    Sync {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Run the deletion reconciliation instead (sources with reconcile_window): re-read
        /// the window and remove records that vanished upstream.
        #[arg(long)]
        reconcile: bool,
    },
    /// Re-pull a source's history from a date (resumable), with a progress line per stream.
    Backfill {
        /// The source to re-pull.
        #[arg(long)]
        source: String,
        /// First day to re-pull (YYYY-MM-DD, in the scorecard's time zone).
        #[arg(long)]
        since: NaiveDate,
    },
    /// Alert states and recent deliveries; `alerts silence MEASURE --for 3d` silences one.
    Alerts {
        /// What to do (default: list).
        #[command(subcommand)]
        action: Option<AlertsAction>,
    },
    /// Notification channels: `notify test CHANNEL` sends a test message.
    Notify {
        /// What to do.
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Validate the configuration; --connect also tries every source's credentials.
    Check {
        /// Send one cheap request per source.
        #[arg(long)]
        connect: bool,
    },
    /// Current status of every measure, grouped by perspective.
    Scorecard {
        /// Output format.
        #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
    },
    /// One measure's time series.
    Series {
        /// Measure id (the key under [measures]).
        measure: String,
        /// First day (YYYY-MM-DD); its period is included.
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last day (YYYY-MM-DD); its period is included.
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SeriesFormat::Table)]
        format: SeriesFormat,
    },
    /// Write a starter scorecard configuration for the sources named.
    Init {
        /// The starter: online-shop, subscription or services.
        #[arg(long)]
        template: String,
        /// Source kinds, comma separated (stripe,shopify,zendesk,...).
        #[arg(long, value_delimiter = ',', required = true)]
        sources: Vec<String>,
        /// Where to write it ("-" for stdout) [default: the --config path]
        #[arg(long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// `scorekeeper alerts ...`.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Keep a measure's (or a source's stale) alerts from notifying for a while; the state
    /// machine keeps running.
    Silence {
        /// Measure id (or source name for its stale alert).
        subject: String,
        /// How long: 30m, 12h, 3d ...
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
    },
}

/// `scorekeeper notify ...`.
#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// Send a test message through one channel and print the result.
    Test {
        /// The channel (the key under [notify]).
        channel: String,
    },
}

/// How a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Bad configuration or usage: exit 2.
    Config(ConfigError),
    /// Bad usage with a message: exit 2.
    Usage(String),
    /// Something failed at run time: exit 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Runtime(error)
    }
}

impl Failure {
    /// Prints the failure to stderr and gives the exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Config(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
            Failure::Usage(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
            Failure::Runtime(error) => {
                eprintln!("error: {}", chain_text(&error));
                ExitCode::from(1)
            }
        }
    }
}

/// The error and its causes joined by `: ` like `{:#}`, leaving out a cause whose text is
/// already part of the message (our errors and sqlx's repeat their source in their own
/// text, so `{:#}` would print it two or three times).
fn chain_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Services for a command that reads beside a running daemon (and takes no lock).
async fn shared(settings: Settings) -> anyhow::Result<Services> {
    Services::open(
        settings,
        crate::sources::http::RetryPolicy::default(),
        app::Access::Shared,
    )
    .await
}

fn load(cli: &Cli) -> Result<Settings, Failure> {
    let path = config::config_path(cli.config.as_deref());
    config::load(&path).map_err(Failure::Config)
}

/// Runs the parsed command.
pub async fn execute(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Run => {
            let settings = load(&cli)?;
            let listen = settings.server.listen;
            // Prepared first: a second daemon on the same SQLite file is refused for that
            // reason, not for the port the first one already holds.
            let services = Services::prepare(settings).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding the HTTP server to {listen}"))?;
            app::run(
                services,
                listener,
                RunOptions::default(),
                CancellationToken::new(),
            )
            .await?;
            Ok(())
        }
        Command::Demo => crate::demo::run(cli.config.as_deref()).await,
        Command::Sync { source, reconcile } => {
            sync(load(&cli)?, source.as_deref(), *reconcile).await
        }
        Command::Init {
            template,
            sources,
            output,
            force,
        } => {
            let path = output
                .clone()
                .unwrap_or_else(|| config::config_path(cli.config.as_deref()));
            init(template, sources, &path, *force).await
        }
        Command::Backfill { source, since } => backfill(load(&cli)?, source, *since).await,
        Command::Alerts { action } => alerts(load(&cli)?, action.as_ref()).await,
        Command::Notify {
            action: NotifyAction::Test { channel },
        } => notify_test(load(&cli)?, channel).await,
        Command::Check { connect } => check(load(&cli)?, *connect).await,
        Command::Scorecard { format } => {
            let services = shared(load(&cli)?).await?;
            let view = scorecard::build(
                &services.store,
                &services.settings,
                &services.catalog,
                chrono::Utc::now(),
            )
            .await
            .context("reading the scorecard")?;
            let mut out = std::io::stdout().lock();
            match format {
                TableOrJson::Json => writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&view).context("encoding JSON")?
                ),
                TableOrJson::Table => {
                    writeln!(out, "{} ({})", view.name, view.timezone).and_then(|()| {
                        for perspective in &view.perspectives {
                            writeln!(out, "\n{}", perspective.title)?;
                            for measure in &perspective.measures {
                                writeln!(
                                    out,
                                    "  {:<36} {:<9} {:>14} {:>14}  {}",
                                    measure.name,
                                    measure.judged.period,
                                    show(measure.judged.value),
                                    show(measure.judged.target),
                                    measure.judged.status.as_str()
                                )?;
                            }
                        }
                        Ok(())
                    })
                }
            }
            .context("writing to stdout")?;
            Ok(())
        }
        Command::Series {
            measure,
            from,
            to,
            format,
        } => {
            let services = shared(load(&cli)?).await?;
            let Some(bound) = services.catalog.get(measure) else {
                let known: Vec<&str> = services
                    .catalog
                    .measures()
                    .iter()
                    .map(|m| m.config.id.as_str())
                    .collect();
                return Err(Failure::Usage(format!(
                    "no measure \"{measure}\" (measures: {})",
                    known.join(", ")
                )));
            };
            let points = scorecard::series(
                &services.store,
                &services.catalog,
                bound,
                *from,
                *to,
                chrono::Utc::now(),
            )
            .await
            .context("reading the series")?;
            print_series(&points, *format).context("writing to stdout")?;
            Ok(())
        }
    }
}

/// `scorekeeper init`: writes the starter to `path` (stdout for `-`), never over an
/// existing file unless `force`.
async fn init(template: &str, sources: &[String], path: &Path, force: bool) -> Result<(), Failure> {
    let today = chrono::Local::now().date_naive();
    let starter = templates::generate(template, sources, today)
        .map_err(|error| Failure::Usage(error.to_string()))?;
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(starter.text.as_bytes())
            .context("writing to stdout")?;
        return Ok(());
    }
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(parent)
            .await
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(path).await {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::Usage(format!(
                "{} exists already; pass --force to replace it, or --output PATH to write elsewhere",
                path.display()
            )));
        }
        other => other.with_context(|| format!("creating {}", path.display()))?,
    };
    {
        use tokio::io::AsyncWriteExt;
        file.write_all(starter.text.as_bytes())
            .await
            .with_context(|| format!("writing {}", path.display()))?;
        file.flush()
            .await
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "wrote {}: {} measures, {} objectives from {}",
        path.display(),
        starter.measures,
        starter.objectives,
        sources.join(", ")
    );
    if !starter.env.is_empty() {
        let names: Vec<&str> = starter.env.iter().map(|(name, _)| *name).collect();
        println!("set {} (see the top of the file)", names.join(", "));
    }
    println!(
        "replace the \"your-...\" placeholders, then run: scorekeeper check --config {}",
        path.display()
    );
    Ok(())
}

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |value| format!("{value:.2}"))
}

fn print_series(points: &[SeriesPoint], format: SeriesFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        SeriesFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(points)?)?,
        SeriesFormat::Csv => {
            writeln!(out, "period,start,value,target,status")?;
            for point in points {
                let cell = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
                writeln!(
                    out,
                    "{},{},{},{},{}",
                    point.period,
                    point.start,
                    cell(point.value),
                    cell(point.target),
                    point.status.as_str()
                )?;
            }
        }
        SeriesFormat::Table => {
            for point in points {
                writeln!(
                    out,
                    "{:<11} {:>16} {:>14}  {}",
                    point.period,
                    show(point.value),
                    show(point.target),
                    point.status.as_str()
                )?;
            }
        }
    }
    Ok(())
}

/// A usage error naming the configured sources, unless `name` is one of them.
fn known_source(settings: &Settings, name: &str) -> Result<(), Failure> {
    if settings.sources.contains_key(name) {
        return Ok(());
    }
    let known: Vec<&str> = settings.sources.keys().map(String::as_str).collect();
    Err(Failure::Usage(format!(
        "no source \"{name}\" (sources: {})",
        known.join(", ")
    )))
}

/// Prints each stream's progress to stderr: one line rewritten in place on a terminal,
/// a plain line every few seconds (and at the end) otherwise.
fn progress_printer() -> std::sync::Arc<ProgressFn> {
    use std::io::IsTerminal;
    const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let terminal = std::io::stderr().is_terminal();
    let last = std::sync::Mutex::new(std::time::Instant::now());
    std::sync::Arc::new(move |progress: &Progress<'_>| {
        let seconds = progress.elapsed.as_secs_f64();
        let line = format!(
            "{}.{}: {} pages, {} records, {:.0} records/s, {seconds:.0} s",
            progress.source,
            progress.stream,
            progress.pages,
            progress.records,
            progress.records as f64 / seconds.max(0.001),
        );
        let mut stderr = std::io::stderr().lock();
        if terminal {
            let _ = write!(stderr, "\r\x1b[2K{line}");
            if let Some(end) = progress.end {
                let _ = writeln!(stderr, " ({end})");
            }
        } else {
            let mut last = last.lock().expect("never poisoned: no panics while held");
            if progress.end.is_some() || last.elapsed() >= EVERY {
                *last = std::time::Instant::now();
                let end = progress
                    .end
                    .map(|end| format!(" ({end})"))
                    .unwrap_or_default();
                let _ = writeln!(stderr, "{line}{end}");
            }
        }
        let _ = stderr.flush();
    })
}

async fn backfill(settings: Settings, name: &str, since: NaiveDate) -> Result<(), Failure> {
    known_source(&settings, name)?;
    let start = crate::measures::period::PeriodKind::Day
        .start_of_date(since, settings.scorecard.timezone)
        .with_timezone(&chrono::Utc);
    if start > chrono::Utc::now() {
        return Err(Failure::Usage(format!("--since {since} is in the future")));
    }
    let services = Services::prepare(settings).await?;
    let cancel = CancellationToken::new();
    let signal = tokio::spawn(crate::shutdown::listen(cancel.clone()));
    let source = services.settings.sources[name].clone();
    let options = SyncOptions {
        since: Some(start),
        progress: Some(progress_printer()),
        reconcile: false,
    };
    let guard = match services.locks.try_acquire(name, None).await {
        Ok(guard) => guard,
        Err(busy) => {
            signal.abort();
            services.store.close().await;
            return Err(Failure::Runtime(anyhow::anyhow!("{busy}")));
        }
    };
    let report = guard
        .sync(
            &services.engine,
            &source,
            Trigger::Backfill,
            &cancel,
            &options,
        )
        .await
        .with_context(|| format!("backfilling source {name}"));
    signal.abort();
    services.store.close().await;
    let report = report?;
    if report.cancelled {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "backfill of {name} interrupted; run the same command again to continue where it stopped"
        )));
    }
    let failed: Vec<String> = report
        .streams
        .iter()
        .filter_map(|stream| {
            stream
                .error
                .as_ref()
                .map(|error| format!("{}.{}: {error}", name, stream.stream))
        })
        .collect();
    if failed.is_empty() {
        println!(
            "backfill of {name} from {since} done: {} records",
            report
                .streams
                .iter()
                .map(|stream| stream.records)
                .sum::<u64>()
        );
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "backfill failed (run the same command again to continue): {}",
            failed.join("; ")
        )))
    }
}

async fn sync(settings: Settings, only: Option<&str>, reconcile: bool) -> Result<(), Failure> {
    if let Some(name) = only {
        known_source(&settings, name)?;
        if reconcile && settings.sources[name].reconcile.is_none() {
            return Err(Failure::Usage(format!(
                "source \"{name}\" has no reconcile_window; set one to reconcile it"
            )));
        }
    }
    let options = SyncOptions {
        reconcile,
        ..SyncOptions::default()
    };
    let trigger = if reconcile {
        Trigger::Reconcile
    } else {
        Trigger::Manual
    };
    let services = Services::prepare(settings).await?;
    let cancel = CancellationToken::new();
    let signal = tokio::spawn(crate::shutdown::listen(cancel.clone()));
    let mut failed = Vec::new();
    for source in services
        .settings
        .sources
        .values()
        .filter(|source| only.is_none_or(|name| name == source.name))
        .filter(|source| !reconcile || source.reconcile.is_some())
    {
        // The schedule's guard: never beside a sync of this source on another replica.
        let guard = match services.locks.try_acquire(&source.name, None).await {
            Ok(guard) => guard,
            Err(busy) => {
                println!("{}: SKIPPED: {busy}", source.name);
                failed.push(source.name.clone());
                continue;
            }
        };
        let report = guard
            .sync(&services.engine, source, trigger, &cancel, &options)
            .await;
        let report = report.with_context(|| format!("syncing source {}", source.name))?;
        for stream in &report.streams {
            match &stream.error {
                None if reconcile => println!(
                    "{}.{}: {} records re-read ({} new or changed), {} removed as vanished upstream",
                    source.name, stream.stream, stream.records, stream.changed, stream.removed
                ),
                None => println!(
                    "{}.{}: {} records ({} new or changed), {} pages",
                    source.name, stream.stream, stream.records, stream.changed, stream.pages
                ),
                Some(error) => println!("{}.{}: FAILED: {error}", source.name, stream.stream),
            }
        }
        if !report.is_success() {
            failed.push(source.name.clone());
        }
    }
    // Alerts judge what was just synced; what they enqueue goes out now (bounded), and
    // whatever is left is delivered by the daemon or the next `sync`.
    if !cancel.is_cancelled() {
        app::evaluate_alerts(&services)
            .await
            .context("evaluating alerts")?;
        deliver_due(&services, &cancel).await;
    }
    // After a first signal the listener waits for a second one; it must not hold the exit.
    signal.abort();
    services.store.close().await;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "sync failed for source(s): {}",
            failed.join(", ")
        )))
    }
}

/// What to fix when a source's probe fails in a way its message does not explain: an
/// unreachable host or an address the API does not know usually means a wrong account
/// setting.
fn connect_hint(source: &crate::config::SourceConfig, error: &SourceError) -> Option<String> {
    use crate::config::SourceKind;
    let setting = match source.kind {
        SourceKind::Zendesk => "subdomain",
        SourceKind::Shopify => "shop",
        SourceKind::Freshdesk | SourceKind::Talentlms => "domain",
        SourceKind::Pipedrive => "company_domain",
        SourceKind::QuickBooks => "realm_id",
        SourceKind::Xero => "tenant_id",
        SourceKind::Csv => "path or url",
        _ => "base_url",
    };
    let host = source.base_url.host_str().unwrap_or("the API");
    match error {
        SourceError::RetriesExhausted { last, .. } => connect_hint(source, last),
        SourceError::Transient { .. } => Some(format!(
            "cannot reach {host}: check {setting} (and base_url if set) and the network"
        )),
        SourceError::Http { status: 404, .. } => Some(format!(
            "{host} does not know this address: check {setting} (and base_url if set)"
        )),
        SourceError::Malformed { .. } => Some(format!(
            "{host} answered with something that is not this API: check {setting} (and base_url if set)"
        )),
        _ => None,
    }
}

/// How long `sync` keeps delivering due notifications before it leaves the rest to the
/// next run.
const DELIVER_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Delivers due outbox messages for up to [`DELIVER_FOR`].
async fn deliver_due(services: &Services, cancel: &CancellationToken) {
    let deadline = tokio::time::Instant::now() + DELIVER_FOR;
    while tokio::time::Instant::now() < deadline && !cancel.is_cancelled() {
        match services.dispatcher.run_once(chrono::Utc::now()).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error, "Delivering notifications failed");
                return;
            }
        }
    }
}

async fn alerts(settings: Settings, action: Option<&AlertsAction>) -> Result<(), Failure> {
    let services = shared(settings).await?;
    let now = chrono::Utc::now();
    let tz = services.settings.scorecard.timezone;
    let show = |seconds: i64| {
        chrono::DateTime::from_timestamp(seconds, 0)
            .map(|time| time.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    if let Some(AlertsAction::Silence { subject, duration }) = action {
        let known = services.settings.measure(subject).is_some()
            || services.settings.sources.contains_key(subject);
        if !known {
            return Err(Failure::Usage(format!(
                "no measure or source \"{subject}\""
            )));
        }
        let length = humantime::parse_duration(duration).map_err(|error| {
            Failure::Usage(format!(
                "--for {duration}: {error} (examples: 30m, 12h, 3d)"
            ))
        })?;
        let until = now.timestamp() + length.as_secs() as i64;
        services
            .store
            .silence(subject, until, now.timestamp())
            .await
            .context("saving the silence")?;
        println!(
            "{subject}: silenced until {} (alerts keep being evaluated)",
            show(until)
        );
        services.store.close().await;
        return Ok(());
    }
    let states = services
        .store
        .alert_states()
        .await
        .context("reading alert states")?;
    let silences: std::collections::HashMap<String, i64> = services
        .store
        .silences(now.timestamp())
        .await
        .context("reading silences")?
        .into_iter()
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<32} {:<9} {:<8} {:<17} value",
        "alert", "state", "status", "since"
    )
    .context("writing")?;
    for row in &states {
        let silenced = silences
            .get(&row.subject)
            .map(|until| format!("  (silenced until {})", show(*until)))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<32} {:<9} {:<8} {:<17} {}{silenced}",
            row.alert,
            row.state,
            row.status.as_deref().unwrap_or("-"),
            show(row.since),
            row.value
                .map(|value| value.to_string())
                .unwrap_or_else(|| "-".into()),
        )
        .context("writing")?;
    }
    let deliveries = services
        .store
        .deliveries(20)
        .await
        .context("reading deliveries")?;
    if !deliveries.is_empty() {
        writeln!(out, "\nrecent deliveries:").context("writing")?;
        for delivery in deliveries {
            writeln!(
                out,
                "{}  {:<16} {} attempt {} {}{}",
                show(delivery.at),
                delivery.channel,
                delivery.message,
                delivery.attempt,
                delivery.result,
                delivery
                    .error
                    .map(|error| format!(": {error}"))
                    .unwrap_or_default()
            )
            .context("writing")?;
        }
    }
    drop(out);
    services.store.close().await;
    Ok(())
}

async fn notify_test(settings: Settings, name: &str) -> Result<(), Failure> {
    let Some(channel) = settings.notify.get(name).cloned() else {
        let known: Vec<&str> = settings.notify.keys().map(String::as_str).collect();
        return Err(Failure::Usage(format!(
            "no channel \"{name}\" (channels: {})",
            if known.is_empty() {
                "none configured".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let now = chrono::Utc::now();
    let notification = crate::notify::Notification {
        alerts: vec![crate::notify::AlertEvent {
            event: crate::notify::EventKind::Test,
            measure: None,
            source: None,
            period: None,
            value: None,
            target: None,
            status: "test".into(),
            previous_status: None,
            forecast: None,
            since: now.to_rfc3339(),
            at: now.to_rfc3339(),
        }],
        ..crate::notify::Notification::new(crate::notify::NotificationKind::Test, &settings, now)
    };
    let store = crate::store::Store::connect_patiently(
        &settings.database.url,
        settings.database.connect_timeout,
    )
    .await
    .context("opening the database")?;
    let dispatcher =
        crate::notify::dispatch::Dispatcher::new(store.clone(), std::sync::Arc::new(settings))
            .context("building the notification client")?;
    let outcome = dispatcher.deliver(&channel, &notification).await;
    store.close().await;
    match outcome {
        crate::notify::Outcome::Delivered => {
            println!("{name}: test message {} delivered", notification.id);
            Ok(())
        }
        crate::notify::Outcome::Retry { error, .. }
        | crate::notify::Outcome::Failed { error }
        | crate::notify::Outcome::Gone { error } => Err(Failure::Runtime(anyhow::anyhow!(
            "{name}: test message not delivered: {error}"
        ))),
    }
}

async fn check(settings: Settings, connect: bool) -> Result<(), Failure> {
    println!(
        "configuration ok: {} source(s), {} measure(s), {} objective(s); database {}",
        settings.sources.len(),
        settings.measures.len(),
        settings.objectives.len(),
        crate::secret::redact_url(settings.database.url.expose())
    );
    if !connect {
        return Ok(());
    }
    let http = HttpClient::new(RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    })
    .context("building the HTTP client")?;
    let cancel = CancellationToken::new();
    let mut failed = 0;
    // OAuth2 sources keep rotated refresh tokens in the database, so checking them
    // needs it; the others do not touch it.
    let store = if settings
        .sources
        .values()
        .any(|source| source.oauth.is_some())
    {
        Some(
            crate::store::Store::connect_patiently(
                &settings.database.url,
                settings.database.connect_timeout,
            )
            .await
            .context("opening the database (it keeps OAuth2 tokens)")?,
        )
    } else {
        None
    };
    for source in settings.sources.values() {
        let preset = presets::preset(source.kind);
        let auth = match (&source.oauth, &store) {
            (Some(oauth), Some(store)) => {
                crate::sources::oauth::access_token(store, &http, &source.name, oauth, false).await
            }
            _ => preset.auth(source),
        };
        let outcome = match auth {
            Ok(auth) => {
                http.send(&preset.probe(source), &auth, &cancel, |headers, body| {
                    preset.check_probe(source, headers, body)
                })
                .await
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => println!("{}: ok", source.name),
            Err(error) => {
                failed += 1;
                let hint = connect_hint(source, &error)
                    .map(|hint| format!("; {hint}"))
                    .unwrap_or_default();
                println!("{}: FAILED: {error}{hint}", source.name);
            }
        }
    }
    if failed > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{failed} source(s) could not connect"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn chain_text_prints_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let error = anyhow::Error::new(crate::store::StoreError::Connect {
            url: "postgres://u:***@h/db".into(),
            source: sqlx::Error::Io(io),
        })
        .context("opening the database");
        assert_eq!(
            super::chain_text(&error),
            "opening the database: cannot connect to the database at postgres://u:***@h/db: error communicating with database: Connection refused"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::chain_text(&plain), "outer: inner");
    }
}
