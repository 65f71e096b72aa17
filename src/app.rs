//! Wiring: Settings → Store → catalog → engine → scheduler and HTTP server.
//!
//! This is the only module that spawns long-lived tasks (through one `TaskTracker`),
//! and it owns the shutdown order: cancel the root token → tasks stop at their next
//! wait point (a page in flight commits) → wait up to the drain deadline → close the
//! database pool.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::http::{self, AppState};
use crate::notify::dispatch::Dispatcher;
use crate::recompute::{self, Catalog};
use crate::scheduler::{self, SourceLocks};
use crate::shutdown;
use crate::sources::engine::{Engine, Trigger};
use crate::sources::http::{HttpClient, RetryPolicy};
use crate::store::Store;

/// Everything a command needs, connected and prepared.
#[derive(Clone)]
pub struct Services {
    /// The configuration.
    pub settings: Arc<Settings>,
    /// The database.
    pub store: Store,
    /// Bound measures.
    pub catalog: Arc<Catalog>,
    /// The sync engine.
    pub engine: Engine,
    /// One lock per source, and the sources' leases.
    pub locks: SourceLocks,
    /// Delivers the outbox.
    pub dispatcher: Dispatcher,
    /// The SQLite database held for this process (`Access::Exclusive`), until the last
    /// clone of these services is dropped.
    _process_lock: Option<Arc<crate::store::ProcessLock>>,
}

/// How a command uses the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Syncs and delivers (`run`, `demo`, `sync`, `backfill`): holds a SQLite database for
    /// this process, so a second such process on the same file is refused with an error
    /// naming it, and closes the sync runs a crash left open.
    Exclusive,
    /// Like `Exclusive` without the SQLite lock: the caller keeps to one process (tests,
    /// benchmarks, embedding).
    Unlocked,
    /// Reads beside a running daemon (`scorecard`, `series`, `alerts`): takes no lock and
    /// closes no run (they may be the daemon's, in progress).
    Shared,
}

impl Services {
    /// Connects to the database (applying migrations), binds the measures (rebuilding
    /// those whose definition changed) and recomputes any period left dirty by a crash.
    /// Holds a SQLite database for this process ([`Access::Exclusive`]).
    pub async fn prepare(settings: Settings) -> anyhow::Result<Self> {
        Self::open(settings, RetryPolicy::default(), Access::Exclusive).await
    }

    /// Like [`Services::prepare`] with an explicit retry policy (tests shorten the waits),
    /// without the SQLite process lock ([`Access::Unlocked`]).
    pub async fn prepare_with(settings: Settings, policy: RetryPolicy) -> anyhow::Result<Self> {
        Self::open(settings, policy, Access::Unlocked).await
    }

    /// Connects with the given retry policy and access.
    pub async fn open(
        settings: Settings,
        policy: RetryPolicy,
        access: Access,
    ) -> anyhow::Result<Self> {
        // The lock comes first: a second process must not even migrate or recompute.
        let process_lock = match access {
            Access::Exclusive => Store::lock_process(&settings.database.url)?.map(Arc::new),
            Access::Unlocked | Access::Shared => None,
        };
        let store =
            Store::connect_patiently(&settings.database.url, settings.database.connect_timeout)
                .await
                .context("opening the database")?;
        let now = chrono::Utc::now().timestamp();
        let abandoned = match access {
            Access::Exclusive | Access::Unlocked => store
                .close_abandoned_runs(now)
                .await
                .context("closing interrupted sync runs")?,
            Access::Shared => 0,
        };
        if access == Access::Exclusive {
            // This process holds the SQLite file: every outbox claim is a dead process's.
            let released = store
                .release_outbox_claims(now)
                .await
                .context("releasing outbox claims")?;
            if released > 0 {
                tracing::info!(
                    messages = released,
                    "Pending notifications are due again after a restart"
                );
            }
        }
        if abandoned > 0 {
            tracing::warn!(
                runs = abandoned,
                "Found sync runs interrupted by a stop; marked them failed (their committed pages stay)"
            );
        }
        let catalog = Catalog::prepare(&store, &settings)
            .await
            .context("binding measures to the database")?;
        let catalog = Arc::new(catalog);
        recompute::recompute_dirty(&store, &catalog, now)
            .await
            .context("recomputing measures")?;
        let http = HttpClient::new(policy).context("building the HTTP client")?;
        let engine = Engine::new(store.clone(), http, catalog.clone());
        let locks = SourceLocks::new(
            settings.sources.keys(),
            store.clone(),
            scheduler::replica_id(),
            settings.database.lease_ttl,
        );
        let settings = Arc::new(settings);
        let dispatcher = Dispatcher::new(store.clone(), settings.clone())
            .context("building the notification client")?;
        Ok(Self {
            settings,
            store,
            catalog,
            engine,
            locks,
            dispatcher,
            _process_lock: process_lock,
        })
    }

    /// The state the HTTP handlers read.
    pub fn app_state(&self) -> AppState {
        AppState {
            store: self.store.clone(),
            settings: self.settings.clone(),
            catalog: self.catalog.clone(),
            engine: self.engine.clone(),
            locks: self.locks.clone(),
            scorecard_cache: Arc::default(),
            series_cache: Arc::default(),
            // Replaced by the server's own token in `http::serve`.
            draining: CancellationToken::new(),
        }
    }
}

/// Options of the daemon.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Sync every source once right away instead of waiting for the first tick (demo).
    pub sync_at_start: bool,
}

/// Runs the daemon on `listener` until `shutdown` is cancelled (by a signal, or by the
/// caller), then drains. Returns when every task has stopped or the deadline passed.
pub async fn run(
    services: Services,
    listener: TcpListener,
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let address = listener
        .local_addr()
        .context("reading the listen address")?;

    // The signal listener is not tracked: after the first signal it keeps waiting for a
    // second one (exit at once) during the drain, so the drain must not wait for it.
    let signals = tokio::spawn(shutdown::listen(shutdown.clone()));
    let server_token = shutdown.child_token();
    let state = services.app_state();
    tracker.spawn(async move {
        if let Err(error) = http::serve(listener, state, server_token).await {
            tracing::error!(error = %error, "HTTP server stopped");
        }
    });

    for source in services.settings.sources.values() {
        let engine = services.engine.clone();
        let locks = services.locks.clone();
        let source = source.clone();
        let token = shutdown.child_token();
        if source.reconcile.is_some() {
            tracker.spawn(scheduler::run(
                engine.clone(),
                source.clone(),
                scheduler::Job::Reconcile,
                locks.clone(),
                token.clone(),
            ));
        }
        if options.sync_at_start {
            tracker.spawn(async move {
                sync_now(&engine, &source, &locks, &token).await;
                scheduler::run(engine, source, scheduler::Job::Sync, locks, token).await;
            });
        } else {
            tracker.spawn(scheduler::run(
                engine,
                source,
                scheduler::Job::Sync,
                locks,
                token,
            ));
        }
    }
    // Alerts: evaluated after every sync and every minute (stale sources and running
    // periods age without a sync); what they enqueue wakes the dispatcher.
    let outbox_wake = Arc::new(tokio::sync::Notify::new());
    {
        let services = services.clone();
        let wake = outbox_wake.clone();
        let token = shutdown.child_token();
        tracker.spawn(async move { alert_loop(services, wake, token).await });
    }
    tracker.spawn(
        services
            .dispatcher
            .clone()
            .run(outbox_wake, shutdown.child_token()),
    );
    tracing::info!(%address, sources = services.settings.sources.len(), measures = services.catalog.measures().len(), database = services.store.backend_name(), replica = services.locks.replica(), "Scorekeeper running");

    shutdown.cancelled().await;
    tracker.close();
    if tokio::time::timeout(shutdown::DRAIN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            deadline_s = shutdown::DRAIN_DEADLINE.as_secs(),
            "Tasks did not stop before the drain deadline; exiting anyway"
        );
    }
    signals.abort();
    services.store.close().await;
    tracing::info!("Stopped");
    Ok(())
}

/// How often alerts are evaluated without a sync.
const EVALUATE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Evaluates alerts after each sync and every [`EVALUATE_EVERY`] until `cancel` fires.
async fn alert_loop(services: Services, wake: Arc<tokio::sync::Notify>, cancel: CancellationToken) {
    let mut synced = services.engine.subscribe();
    loop {
        match evaluate_alerts(&services).await {
            Ok(messages) if messages > 0 => wake.notify_one(),
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error, "Evaluating alerts failed; retrying at the next sync")
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            // A closed channel (the engine gone) is not a sync: wait for the timer then.
            Ok(()) = synced.changed() => {}
            () = tokio::time::sleep(EVALUATE_EVERY) => {}
        }
    }
}

/// Evaluates every alert and due digest once; returns the outbox messages enqueued.
///
/// Replicas evaluate one at a time (an exclusive section on PostgreSQL): each reads the
/// alert states after the previous one committed its transitions, so a transition is
/// decided, recorded and sent once, however many replicas evaluate.
pub async fn evaluate_alerts(services: &Services) -> Result<usize, crate::store::StoreError> {
    let section = services
        .store
        .exclusive(crate::store::Section::Alerts)
        .await?;
    // Read the clock inside the section: the previous holder's `now` is not later.
    let now = chrono::Utc::now();
    let evaluation =
        crate::alerts::evaluate(&services.store, &services.settings, &services.catalog, now)
            .await?;
    let digests = crate::alerts::digest::enqueue_due(
        &services.store,
        &services.settings,
        &services.catalog,
        now,
    )
    .await?;
    section.release().await?;
    for event in &evaluation.events {
        tracing::info!(event = event.event.as_str(), measure = event.measure.as_ref().map(|m| m.id.as_str()), source = event.source.as_ref().map(|s| s.name.as_str()), status = %event.status, "Alert");
    }
    Ok(evaluation.messages + digests)
}

/// Syncs one source right away, under its guard (skipped when it is syncing elsewhere).
async fn sync_now(
    engine: &Engine,
    source: &crate::config::SourceConfig,
    locks: &SourceLocks,
    cancel: &CancellationToken,
) {
    let guard = match locks.try_acquire(&source.name, None).await {
        Ok(guard) => guard,
        Err(busy) => {
            tracing::info!(source = %source.name, reason = %busy, "Not syncing at start");
            return;
        }
    };
    let outcome = guard
        .sync(
            engine,
            source,
            Trigger::Manual,
            cancel,
            &crate::sources::engine::SyncOptions::default(),
        )
        .await;
    if let Err(error) = outcome {
        tracing::error!(source = %source.name, error = %error, "Sync failed");
    }
}
