//! The scheduler: one task per source, woken by the source's cron schedule (six
//! fields, seconds first, evaluated in UTC), and the locks every sync runs under.
//!
//! A source never syncs twice at once, in this process or across replicas. Every
//! trigger (schedule, reconcile schedule, `POST /api/v1/sources/{name}/sync`, the CLI)
//! first takes the source's [`SourceLocks`] guard: the in-process lock, then the source's
//! lease in the database (a no-op on SQLite, which serves one process). A scheduled tick
//! also names itself, so of several replicas waking at the same tick exactly one runs it
//! and a replica that wakes late does not run it again. While the sync runs the lease is
//! renewed every third of its TTL; a replica that loses it (it stalled past the TTL and
//! another replica took over) cancels its sync at the next page. When the sync ends the
//! lease is released. A replica that dies stops renewing: its lease expires and the next
//! tick runs on another replica, from the last committed cursor.
//!
//! A sync that outlasts its next tick skips that tick (logged): the task runs each sync to
//! the end before it looks at the schedule again, and other replicas see a live lease.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;

use crate::config::SourceConfig;
use crate::sources::SourceError;
use crate::sources::engine::{Engine, SourceReport, SyncOptions, Trigger};
use crate::store::{LeaseTake, Store, StoreError, TickJob};

/// A name for this process among replicas: the host (`HOSTNAME`, a pod's name under
/// Kubernetes), the pid and a random part, so a restarted process never mistakes an
/// earlier lease of its predecessor for its own.
pub fn replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "replica".to_string());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Why a source's guard was not granted.
#[derive(Debug, thiserror::Error)]
pub enum Busy {
    /// This process is syncing the source now.
    #[error("source \"{name}\" is syncing now; try again when it is done")]
    Here {
        /// The source's name.
        name: String,
    },
    /// Another replica holds the source's lease.
    #[error(
        "source \"{name}\" is syncing on another replica ({holder}); try again when it is done"
    )]
    Elsewhere {
        /// The source's name.
        name: String,
        /// The other replica's id.
        holder: String,
    },
    /// This scheduled tick already ran (on another replica).
    #[error("this tick of source \"{name}\" already ran on another replica")]
    TickDone {
        /// The source's name.
        name: String,
    },
    /// The source is not configured.
    #[error("no source \"{name}\"")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The lease could not be read or written.
    #[error("cannot take the lease of source \"{name}\": {error}")]
    Store {
        /// The source's name.
        name: String,
        /// The database's error.
        error: StoreError,
    },
}

/// One lock per source in this process, plus the source's lease in the database; shared
/// by every trigger.
#[derive(Clone)]
pub struct SourceLocks {
    locks: Arc<HashMap<String, Arc<Mutex<()>>>>,
    store: Store,
    replica: Arc<str>,
    ttl: Duration,
}

impl std::fmt::Debug for SourceLocks {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SourceLocks")
            .field("replica", &self.replica)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SourceLocks {
    /// A lock for each named source, with leases in `store` held by `replica` for `ttl`.
    pub fn new<'a>(
        names: impl IntoIterator<Item = &'a String>,
        store: Store,
        replica: String,
        ttl: Duration,
    ) -> Self {
        Self {
            locks: Arc::new(
                names
                    .into_iter()
                    .map(|name| (name.clone(), Arc::new(Mutex::new(()))))
                    .collect(),
            ),
            store,
            replica: replica.into(),
            ttl,
        }
    }

    /// This process's replica id (the holder written into leases).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Takes `source`'s guard without waiting: its in-process lock, then its lease (for
    /// a scheduled run, only if `tick` has not run yet).
    pub async fn try_acquire(
        &self,
        source: &str,
        tick: Option<(TickJob, i64)>,
    ) -> Result<SourceGuard, Busy> {
        let Some(lock) = self.locks.get(source) else {
            return Err(Busy::Unknown {
                name: source.to_string(),
            });
        };
        let Ok(local) = lock.clone().try_lock_owned() else {
            return Err(Busy::Here {
                name: source.to_string(),
            });
        };
        let now = Utc::now().timestamp();
        match self
            .store
            .take_lease(source, &self.replica, self.ttl, tick, now)
            .await
        {
            Ok(LeaseTake::Taken) => Ok(SourceGuard {
                source: source.to_string(),
                locks: self.clone(),
                _local: local,
            }),
            Ok(LeaseTake::Held { holder }) => Err(Busy::Elsewhere {
                name: source.to_string(),
                holder,
            }),
            Ok(LeaseTake::TickDone) => Err(Busy::TickDone {
                name: source.to_string(),
            }),
            Err(error) => Err(Busy::Store {
                name: source.to_string(),
                error,
            }),
        }
    }
}

/// A source held by this process: nobody else syncs it until [`SourceGuard::release`]
/// (or, should this process die, until its lease expires).
pub struct SourceGuard {
    source: String,
    locks: SourceLocks,
    _local: OwnedMutexGuard<()>,
}

impl SourceGuard {
    /// Runs `work` while renewing the lease every third of its TTL. `work` gets a child of
    /// `cancel` that is also cancelled when the lease is lost (renewal refused because
    /// another replica took it, or impossible until two thirds of the TTL passed), so the
    /// sync stops at its next page instead of running beside another replica's.
    pub async fn hold<T, F>(
        &self,
        cancel: &CancellationToken,
        work: impl FnOnce(CancellationToken) -> F,
    ) -> T
    where
        F: Future<Output = T>,
    {
        let token = cancel.child_token();
        let work = work(token.clone());
        let store = &self.locks.store;
        if !store.is_shared() {
            return work.await;
        }
        tokio::pin!(work);
        let every = self.locks.ttl / 3;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renewed = tokio::time::Instant::now();
        let mut lost = false;
        loop {
            tokio::select! {
                biased;
                output = &mut work => return output,
                _ = heartbeat.tick(), if !lost => {}
            }
            // The renewal is awaited here, between polls of `work`: a sync waits a few
            // milliseconds at most, and its fetch task runs on meanwhile.
            match store
                .renew_lease(&self.source, &self.locks.replica, self.locks.ttl)
                .await
            {
                Ok(true) => renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(source = %self.source, "Lost the source's lease (it expired and another replica took it); stopping this sync");
                    lost = true;
                    token.cancel();
                }
                Err(error) if renewed.elapsed() >= every * 2 => {
                    tracing::error!(source = %self.source, error = %error, "Cannot renew the source's lease before it expires; stopping this sync");
                    lost = true;
                    token.cancel();
                }
                Err(error) => {
                    tracing::warn!(source = %self.source, error = %error, "Cannot renew the source's lease; trying again")
                }
            }
        }
    }

    /// Syncs `source` under this guard ([`SourceGuard::hold`]), then releases it: the one
    /// way every trigger (schedule, reconcile, the API, the command line) runs a sync.
    pub async fn sync(
        self,
        engine: &Engine,
        source: &SourceConfig,
        trigger: Trigger,
        cancel: &CancellationToken,
        options: &SyncOptions,
    ) -> Result<SourceReport, SourceError> {
        let outcome = self
            .hold(cancel, |token| async move {
                engine
                    .sync_source_with(source, trigger, &token, options)
                    .await
            })
            .await;
        self.release().await;
        outcome
    }

    /// Releases the lease (another replica may take it at once) and the in-process lock.
    pub async fn release(self) {
        if let Err(error) = self
            .locks
            .store
            .release_lease(&self.source, &self.locks.replica)
            .await
        {
            // It expires by itself; until then the source waits.
            tracing::warn!(source = %self.source, error = %error, "Cannot release the source's lease; it will expire");
        }
    }
}

/// The ticks of `schedule` strictly after `after` and at or before `now`: the ticks a
/// sync that ran from `after` to `now` overlapped.
pub fn missed_ticks(schedule: &cron::Schedule, after: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    schedule
        .after(&after)
        .take_while(|tick| *tick <= now)
        .take(10_000)
        .count()
}

/// What a scheduler loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// The source's incremental sync, on `schedule`.
    Sync,
    /// Its deletion reconciliation, on `reconcile_schedule`.
    Reconcile,
}

/// Runs `job` of `source` on its schedule until `cancel` fires.
pub async fn run(
    engine: Engine,
    source: SourceConfig,
    job: Job,
    locks: SourceLocks,
    cancel: CancellationToken,
) {
    let (schedule, trigger, options, tick_job) = match (job, &source.reconcile) {
        (Job::Sync, _) => (
            &source.schedule,
            Trigger::Schedule,
            SyncOptions::default(),
            TickJob::Sync,
        ),
        (Job::Reconcile, Some(reconcile)) => (
            &reconcile.schedule,
            Trigger::Reconcile,
            SyncOptions {
                reconcile: true,
                ..SyncOptions::default()
            },
            TickJob::Reconcile,
        ),
        (Job::Reconcile, None) => return,
    };
    loop {
        let now = Utc::now();
        let Some(tick) = schedule.after(&now).next() else {
            tracing::warn!(source = %source.name, ?job, "Schedule has no future tick; it will not run again");
            return;
        };
        let wait = (tick - now).to_std().unwrap_or_default();
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let guard = match locks
            .try_acquire(&source.name, Some((tick_job, tick.timestamp())))
            .await
        {
            Ok(guard) => guard,
            Err(Busy::Here { .. }) => {
                tracing::info!(source = %source.name, ?job, "Sync still running from another trigger; skipping this tick");
                continue;
            }
            Err(Busy::Elsewhere { holder, .. }) => {
                tracing::info!(source = %source.name, ?job, holder = %holder, "Source is syncing on another replica; skipping this tick");
                continue;
            }
            Err(Busy::TickDone { .. }) => {
                tracing::debug!(source = %source.name, ?job, tick = %tick, "Tick already run by another replica");
                continue;
            }
            Err(error) => {
                tracing::error!(source = %source.name, ?job, error = %error, "Cannot take the source's lease; skipping this tick");
                continue;
            }
        };
        let outcome = guard
            .sync(&engine, &source, trigger, &cancel, &options)
            .await;
        match outcome {
            Ok(report) if report.is_success() || report.cancelled => {}
            // The stream errors were logged where they happened; count the run once.
            Ok(report) => {
                tracing::warn!(source = %source.name, sync_id = report.run_id, "Sync finished with failed streams; retrying at the next tick")
            }
            Err(error) => {
                tracing::error!(source = %source.name, error = %error, "Sync failed; retrying at the next tick")
            }
        }
        let skipped = missed_ticks(schedule, tick, Utc::now());
        if skipped > 0 {
            tracing::warn!(source = %source.name, skipped, "Sync outlasted its next tick; skipped overlapping ticks");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn overlapping_ticks_are_counted() {
        let schedule = cron::Schedule::from_str("0 */15 * * * *").expect("valid");
        let start = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let cases = [(5, 0), (15, 1), (20, 1), (46, 3)];
        for (minutes, expected) in cases {
            let now = start + chrono::Duration::minutes(minutes);
            assert_eq!(
                missed_ticks(&schedule, start, now),
                expected,
                "{minutes} minutes"
            );
        }
    }
}
