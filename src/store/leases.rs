//! Leases and exclusive sections: how several replicas on one PostgreSQL database share
//! the work without doing it twice.
//!
//! A source's lease is one row of `leases`: a holder (the replica id of one process) and
//! an expiry on the database's clock (`now()`), so replicas whose clocks disagree still
//! agree on who holds it. Taking it is one `INSERT … ON CONFLICT DO UPDATE … WHERE`
//! statement, which PostgreSQL runs atomically per row: of two replicas racing for the
//! same lease, exactly one gets a row back. A scheduled take also names its tick and
//! succeeds only when the row's last tick is older, so a replica that wakes late does not
//! run a tick another replica already ran.
//!
//! An exclusive section is a transaction-scoped advisory lock held on its own
//! connection: whoever holds it reads, decides and commits before releasing it, so the
//! next holder reads what the previous one wrote. It dies with its connection, so a
//! replica killed inside it never blocks the others.
//!
//! On SQLite every call here is a no-op that grants: a SQLite database serves one process
//! (see [`super::ProcessLock`]), and within a process the scheduler's own locks suffice.

use std::time::Duration;

use sqlx::{Postgres, Row, Transaction};

use super::{Backend, Store, StoreError};

/// Which scheduled job a tick belongs to (each keeps its own last tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickJob {
    /// The source's `schedule`.
    Sync,
    /// Its `reconcile_schedule`.
    Reconcile,
}

/// What came of trying to take a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseTake {
    /// This replica holds it now.
    Taken,
    /// Another replica holds it and its lease has not expired.
    Held {
        /// The holder's replica id.
        holder: String,
    },
    /// The tick was already taken (by another replica, or by this one before a restart).
    TickDone,
}

/// A lease row as stored (for `/api/v1/sources`, logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The holder's replica id; `None` when released.
    pub holder: Option<String>,
    /// True while the holder's lease has not expired (by the database's clock).
    pub live: bool,
    /// The last scheduled sync tick taken (unix seconds).
    pub sync_tick: Option<i64>,
    /// The last reconcile tick taken.
    pub reconcile_tick: Option<i64>,
}

/// Keys of the advisory locks behind [`Store::exclusive`]. Fixed numbers, so every
/// replica (and every version of the program) names the same lock.
#[derive(Debug, Clone, Copy)]
pub enum Section {
    /// `alerts::evaluate` and the digests: read states, decide, write states and outbox.
    Alerts,
    /// `recompute_dirty`: read dirty marks and inputs, write values, clear the marks.
    Recompute,
}

impl Section {
    pub(super) fn key(self) -> i64 {
        // "sk" followed by a number: unlikely to collide with another program's keys in
        // the same database (sqlx's migrator uses a CRC of the database name).
        match self {
            Section::Alerts => 0x736b_0000_0001,
            Section::Recompute => 0x736b_0000_0002,
        }
    }
}

/// An exclusive section held until [`Exclusive::release`] (or drop, which rolls its
/// transaction back when the connection is next used or closed).
pub struct Exclusive {
    tx: Option<Transaction<'static, Postgres>>,
}

impl Exclusive {
    /// Ends the section, releasing the lock at once.
    pub async fn release(self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx {
            tx.rollback().await?;
        }
        Ok(())
    }
}

/// How long a replica waits for an exclusive section before giving up (an evaluation
/// takes well under a second; this only bounds a stuck holder).
const SECTION_WAIT: &str = "SET LOCAL lock_timeout = '60s'";

impl Store {
    /// True when several processes may share this database (PostgreSQL): leases matter.
    pub fn is_shared(&self) -> bool {
        matches!(self.pool, Backend::Postgres(_))
    }

    /// Takes `source`'s lease for `holder` for `ttl`, unless another replica holds a live
    /// lease, or (with `tick`) the job's last tick is not older than this one. Taking it
    /// also closes the source's runs left open by a replica that died mid-sync (the lease
    /// proves nobody is running them).
    pub async fn take_lease(
        &self,
        source: &str,
        holder: &str,
        ttl: Duration,
        tick: Option<(TickJob, i64)>,
        now: i64,
    ) -> Result<LeaseTake, StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(LeaseTake::Taken);
        };
        let sync_tick = tick.and_then(|(job, tick)| (job == TickJob::Sync).then_some(tick));
        let reconcile_tick =
            tick.and_then(|(job, tick)| (job == TickJob::Reconcile).then_some(tick));
        // One statement: PostgreSQL locks the conflicting row, evaluates the WHERE on its
        // latest version and either updates it or returns nothing, so two replicas
        // racing for the same lease cannot both win.
        let take = "INSERT INTO leases (source, holder, expires_at, taken_at, sync_tick, reconcile_tick) \
                    VALUES ($1, $2, now() + make_interval(secs => $3), now(), $4, $5) \
                    ON CONFLICT (source) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
                    taken_at = excluded.taken_at, \
                    sync_tick = COALESCE(excluded.sync_tick, leases.sync_tick), \
                    reconcile_tick = COALESCE(excluded.reconcile_tick, leases.reconcile_tick) \
                    WHERE (leases.holder IS NULL OR leases.expires_at <= now()) \
                    AND (excluded.sync_tick IS NULL OR leases.sync_tick IS NULL OR leases.sync_tick < excluded.sync_tick) \
                    AND (excluded.reconcile_tick IS NULL OR leases.reconcile_tick IS NULL OR leases.reconcile_tick < excluded.reconcile_tick) \
                    RETURNING holder";
        let close = "UPDATE sync_runs SET finished_at = $2, result = 'failed', \
                     error = 'interrupted: the replica running this sync stopped' \
                     WHERE source = $1 AND result IS NULL";
        let mut tx = pool.begin().await?;
        let taken = sqlx::query(take)
            .bind(source)
            .bind(holder)
            .bind(ttl.as_secs_f64())
            .bind(sync_tick)
            .bind(reconcile_tick)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            let closed = sqlx::query(close)
                .bind(source)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            if closed > 0 {
                tracing::warn!(
                    source,
                    runs = closed,
                    "Took over a source whose previous sync stopped mid-way; marked that run failed (its committed pages stay)"
                );
            }
            return Ok(LeaseTake::Taken);
        }
        tx.rollback().await?;
        // Only to say why: the decision above was atomic; this read may be a moment later.
        Ok(match self.lease(source).await? {
            Some(LeaseRow {
                holder: Some(holder),
                live: true,
                ..
            }) => LeaseTake::Held { holder },
            _ => LeaseTake::TickDone,
        })
    }

    /// Extends `holder`'s lease on `source` to `ttl` from now. False when the lease is no
    /// longer this holder's (it expired and another replica took it).
    pub async fn renew_lease(
        &self,
        source: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(true);
        };
        let sql = "UPDATE leases SET expires_at = now() + make_interval(secs => $3) \
                   WHERE source = $1 AND holder = $2";
        let renewed = sqlx::query(sql)
            .bind(source)
            .bind(holder)
            .bind(ttl.as_secs_f64())
            .execute(pool)
            .await?
            .rows_affected();
        Ok(renewed == 1)
    }

    /// Releases `holder`'s lease on `source` (nothing happens if it is no longer its).
    pub async fn release_lease(&self, source: &str, holder: &str) -> Result<(), StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(());
        };
        let sql =
            "UPDATE leases SET holder = NULL, expires_at = NULL WHERE source = $1 AND holder = $2";
        sqlx::query(sql)
            .bind(source)
            .bind(holder)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// The lease row of `source`, if one was ever taken (always `None` on SQLite).
    pub async fn lease(&self, source: &str) -> Result<Option<LeaseRow>, StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let sql = "SELECT holder, COALESCE(expires_at > now(), false), sync_tick, reconcile_tick \
                   FROM leases WHERE source = $1";
        let row = sqlx::query(sql).bind(source).fetch_optional(pool).await?;
        row.map(|row| {
            Ok(LeaseRow {
                holder: row.try_get(0)?,
                live: row.try_get(1)?,
                sync_tick: row.try_get(2)?,
                reconcile_tick: row.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Makes every pending outbox message due at `now` (SQLite, at the start of the one
    /// process that holds the file): a claim left by a process that died mid-delivery
    /// would otherwise hold its message back for the whole claim. A retry waiting out
    /// its backoff is tried once more at once too, which a restart may well do. Returns
    /// how many messages were released; on PostgreSQL, where a claim may belong to a live
    /// replica, nothing is touched and claims lapse by themselves.
    pub async fn release_outbox_claims(&self, now: i64) -> Result<u64, StoreError> {
        let Backend::Sqlite(pool) = &self.pool else {
            return Ok(0);
        };
        let sql = "UPDATE outbox SET next_attempt_at = $1 WHERE status = 'pending' AND next_attempt_at > $1";
        Ok(sqlx::query(sql)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected())
    }

    /// Enters an exclusive section: waits (up to a minute) until no other replica is in
    /// it. Release it with [`Exclusive::release`] after the section's writes committed.
    pub async fn exclusive(&self, section: Section) -> Result<Exclusive, StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(Exclusive { tx: None });
        };
        let mut tx = pool.begin().await?;
        sqlx::query(SECTION_WAIT).execute(&mut *tx).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(section.key())
            .execute(&mut *tx)
            .await?;
        Ok(Exclusive { tx: Some(tx) })
    }
}
