//! The scheduler: one task per source, woken by the source's cron schedule (six
//! fields, seconds first, evaluated in UTC).
//!
//! A source never runs twice at once: its task runs each sync to the end before it
//! looks at the schedule again, so a sync that outlasts its next tick skips that tick
//! (logged), and runs from other triggers take the same per-source lock.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::SourceConfig;
use crate::sources::engine::{Engine, SyncOptions, Trigger};

/// One lock per source, shared by every trigger.
#[derive(Clone, Default)]
pub struct SourceLocks(Arc<HashMap<String, Arc<Mutex<()>>>>);

impl SourceLocks {
    /// A lock for each named source.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a String>) -> Self {
        Self(Arc::new(
            names
                .into_iter()
                .map(|name| (name.clone(), Arc::new(Mutex::new(()))))
                .collect(),
        ))
    }

    /// The source's lock, if the source exists.
    pub fn get(&self, name: &str) -> Option<Arc<Mutex<()>>> {
        self.0.get(name).cloned()
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
    let lock = locks
        .get(&source.name)
        .expect("a lock exists for every configured source");
    let (schedule, trigger, options) = match (job, &source.reconcile) {
        (Job::Sync, _) => (&source.schedule, Trigger::Schedule, SyncOptions::default()),
        (Job::Reconcile, Some(reconcile)) => (
            &reconcile.schedule,
            Trigger::Reconcile,
            SyncOptions {
                reconcile: true,
                ..SyncOptions::default()
            },
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
        let Ok(_guard) = lock.try_lock() else {
            tracing::info!(source = %source.name, "Sync still running from another trigger; skipping this tick");
            continue;
        };
        match engine
            .sync_source_with(&source, trigger, &cancel, &options)
            .await
        {
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
