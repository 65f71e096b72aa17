//! Store: the only module that speaks SQL.
//!
//! The backend is chosen once, from the URL scheme: SQLite (`sqlite://`, the embedded
//! default) or PostgreSQL (`postgres://`). The rest of the program sees one [`Store`]
//! type and one transaction type, [`Tx`]. Both backends run the same SQL text: sqlx
//! accepts `$1`-style placeholders on SQLite too, so a query is written once and the
//! [`dispatch!`] macro compiles it for each pool type. What really differs (DDL, pragmas,
//! connection setup) lives in `migrations/<backend>/`, `sqlite.rs` and `postgres.rs`.
//!
//! Writes that must agree share a transaction: a page of records, their measure inputs,
//! the dirty periods they touched and the stream's cursor are committed together.

mod leases;
mod postgres;
mod sqlite;

pub use leases::{Exclusive, LeaseRow, LeaseTake, Section, TickJob};
pub use sqlite::ProcessLock;
use std::time::Duration;

use sqlx::{Postgres, QueryBuilder, Row, Sqlite, Transaction};

use crate::secret::Secret;

/// Rows per multi-row statement. SQLite allows 32,766 bound variables per statement;
/// six columns × 500 rows stays far below, and PostgreSQL's limit of 65,535 too.
const ROWS_PER_STATEMENT: usize = 500;

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        /// The URL with its password redacted.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed to apply.
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// The database holds something this program did not write.
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    /// Another process holds the SQLite database (SQLite serves one process).
    #[error(
        "the SQLite database {database} is in use by {holder}: SQLite serves one scorekeeper process at a time; \
         stop that process first (a running daemon syncs on request: POST /api/v1/sources/NAME/sync), \
         or use PostgreSQL (database.url = \"postgres://...\") to run several replicas"
    )]
    InUse {
        /// The database file.
        database: String,
        /// Who holds it (`process 1234`).
        holder: String,
    },
}

impl StoreError {
    /// True when the database could not be reached at all (connection refused or reset,
    /// a timeout), as opposed to reached and refusing (bad password, unknown database).
    pub fn is_unreachable(&self) -> bool {
        let driver = match self {
            Self::Connect { source, .. } | Self::Query(source) => source,
            Self::Migrate(sqlx::migrate::MigrateError::Execute(source)) => source,
            _ => return false,
        };
        matches!(driver, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
    }
}

/// A connection pool on one of the two backends.
#[derive(Clone, Debug)]
enum Backend<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// Runs the same code against whichever backend `$target` holds. The body is compiled
/// once per backend, so `$conn` has the concrete pool or transaction type in each arm.
macro_rules! dispatch {
    ($target:expr, |$conn:ident| $body:expr) => {
        match $target {
            Backend::Sqlite($conn) => $body,
            Backend::Postgres($conn) => $body,
        }
    };
}

mod alerts;
pub use alerts::{
    AlertRow, DURATION_BUCKETS, DeliveryRow, HistoryRow, MetricsSnapshot, OutboxRow, SourceHealth,
};

/// The database handle shared by every part of the program (cheap to clone).
#[derive(Clone, Debug)]
pub struct Store {
    pool: Backend<sqlx::SqlitePool, sqlx::PgPool>,
}

/// An open write transaction. Dropping it without [`Tx::commit`] rolls it back.
pub struct Tx {
    tx: Backend<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>,
}

/// A stream's saved state.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamState {
    /// Storage id.
    pub id: i64,
    /// The preset's cursor, as saved with the last committed page.
    pub cursor: Option<String>,
    /// Last finished sync of the stream, unix seconds.
    pub last_sync_at: Option<i64>,
    /// Last successful sync, unix seconds.
    pub last_success_at: Option<i64>,
    /// Error of the last sync, if it failed.
    pub last_error: Option<String>,
    /// Start of a backfill in progress (unix seconds), until the stream syncs to its end.
    pub backfill_since: Option<i64>,
}

/// A stored record's id, key and JSON text.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Storage id.
    pub id: i64,
    /// Primary key in the API.
    pub key: String,
    /// The API's JSON object as text.
    pub data: String,
}

/// One measure input row.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRow {
    /// Measure storage id.
    pub measure_id: i64,
    /// Period start, unix seconds.
    pub period_start: i64,
    /// Record storage id.
    pub record_id: i64,
    /// Event time, unix milliseconds.
    pub event_time: i64,
    /// Numeric value.
    pub num: Option<f64>,
    /// Text value.
    pub txt: Option<String>,
}

/// The newest OAuth2 tokens of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthTokens {
    /// The configured refresh token this chain started from.
    pub seed: Secret,
    /// The newest refresh token.
    pub refresh_token: Secret,
    /// The access token that came with it.
    pub access_token: Option<Secret>,
    /// Expiry of the access token, unix seconds.
    pub expires_at: Option<i64>,
}

/// One finished or running sync of a source.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SyncRun {
    /// The run's id.
    pub id: i64,
    /// Source name.
    pub source: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// When it started, in Unix seconds.
    pub started_at: i64,
    /// When it ended, in Unix seconds; `null` while running.
    pub finished_at: Option<i64>,
    /// `success`, `failed` or `cancelled`; `null` while running.
    pub result: Option<String>,
    /// Records stored.
    pub records: i64,
    /// Pages fetched.
    pub pages: i64,
    /// The error when it failed.
    pub error: Option<String>,
}

/// How one measure period is aggregated in SQL, when it can be.
#[derive(Debug, Clone, Copy)]
pub enum SqlAggregate {
    /// `COUNT(*)`
    Count,
    /// `SUM(num)`
    Sum,
    /// `AVG(num)`
    Avg,
    /// `MIN(num)`
    Min,
    /// `MAX(num)`
    Max,
}

impl Store {
    /// Opens the database named by `url`, creating a SQLite file if missing, and applies
    /// pending migrations.
    pub async fn connect(url: &Secret) -> Result<Self, StoreError> {
        let text = url.expose();
        let pool = if text.starts_with("sqlite:") {
            Backend::Sqlite(sqlite::connect(text).await?)
        } else {
            Backend::Postgres(postgres::connect(text).await?)
        };
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// [`Store::connect`], retrying for up to `patience` while the database cannot be
    /// reached (refused, reset, timed out: a server still starting), with a log line per
    /// wait. Other failures (bad password, unknown database, a migration error) end at once,
    /// and so does every SQLite failure: a local file does not come up later.
    pub async fn connect_patiently(url: &Secret, patience: Duration) -> Result<Self, StoreError> {
        if url.expose().starts_with("sqlite:") {
            return Self::connect(url).await;
        }
        let deadline = tokio::time::Instant::now() + patience;
        let mut wait = Duration::from_millis(250);
        loop {
            match Self::connect(url).await {
                Ok(store) => return Ok(store),
                Err(error) if error.is_unreachable() => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return Err(error);
                    }
                    let wait_now = wait.min(left);
                    tracing::warn!(
                        retry_in = ?wait_now,
                        gives_up_in = ?left,
                        error = %error,
                        "Cannot reach the database yet; retrying"
                    );
                    tokio::time::sleep(wait_now).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Holds a SQLite database for this process until the returned lock is dropped, or
    /// fails with [`StoreError::InUse`] naming the file when another process holds it.
    /// `None` for PostgreSQL, which any number of processes share.
    pub fn lock_process(url: &Secret) -> Result<Option<ProcessLock>, StoreError> {
        let text = url.expose();
        if text.starts_with("sqlite:") {
            sqlite::lock_process(text)
        } else {
            Ok(None)
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Backend::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Backend::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.pool {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// True when the database answers and every embedded migration is applied.
    pub async fn is_ready(&self) -> bool {
        let expected = match &self.pool {
            Backend::Sqlite(_) => sqlx::migrate!("migrations/sqlite").iter().count(),
            Backend::Postgres(_) => sqlx::migrate!("migrations/postgres").iter().count(),
        } as i64;
        let sql = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
        let applied: Result<i64, sqlx::Error> =
            dispatch!(&self.pool, |pool| sqlx::query_scalar(sql)
                .fetch_one(pool)
                .await);
        applied.is_ok_and(|applied| applied >= expected)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        dispatch!(&self.pool, |pool| pool.close().await)
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let tx = match &self.pool {
            Backend::Sqlite(pool) => Backend::Sqlite(sqlite::begin_immediate(pool).await?),
            Backend::Postgres(pool) => Backend::Postgres(pool.begin().await?),
        };
        Ok(Tx { tx })
    }

    /// The saved state of a stream, creating its row on first use.
    pub async fn stream_state(
        &self,
        source: &str,
        stream: &str,
    ) -> Result<StreamState, StoreError> {
        let insert = "INSERT INTO streams (source, stream) VALUES ($1, $2) ON CONFLICT (source, stream) DO NOTHING";
        let select = "SELECT id, cursor, last_sync_at, last_success_at, last_error, backfill_since FROM streams WHERE source = $1 AND stream = $2";
        dispatch!(&self.pool, |pool| {
            sqlx::query(insert)
                .bind(source)
                .bind(stream)
                .execute(pool)
                .await?;
            let row = sqlx::query(select)
                .bind(source)
                .bind(stream)
                .fetch_one(pool)
                .await?;
            Ok(StreamState {
                id: row.try_get(0)?,
                cursor: row.try_get(1)?,
                last_sync_at: row.try_get(2)?,
                last_success_at: row.try_get(3)?,
                last_error: row.try_get(4)?,
                backfill_since: row.try_get(5)?,
            })
        })
    }

    /// Records the end of a stream's sync. `complete` (the stream was read to its end)
    /// sets the last success, clears the error and ends a backfill in progress; a
    /// cancelled sync is neither a success nor a failure.
    pub async fn finish_stream_sync(
        &self,
        stream_id: i64,
        now: i64,
        error: Option<&str>,
        complete: bool,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE streams SET last_sync_at = $1, last_error = $2, \
                   last_success_at = CASE WHEN $4 THEN $1 ELSE last_success_at END, \
                   backfill_since = CASE WHEN $4 THEN NULL ELSE backfill_since END WHERE id = $3";
        dispatch!(&self.pool, |pool| {
            sqlx::query(sql)
                .bind(now)
                .bind(error)
                .bind(stream_id)
                .bind(complete)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Starts a backfill of a stream from `since`: the saved cursor is dropped and the
    /// start remembered, in one statement, so a crash at any point leaves either the old
    /// state or a backfill that the next sync continues.
    pub async fn start_backfill(&self, stream_id: i64, since: i64) -> Result<(), StoreError> {
        let sql = "UPDATE streams SET cursor = NULL, backfill_since = $1 WHERE id = $2";
        dispatch!(&self.pool, |pool| {
            sqlx::query(sql)
                .bind(since)
                .bind(stream_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Number of stored records of a stream.
    pub async fn record_count(&self, stream_id: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM records WHERE stream_id = $1";
        Ok(dispatch!(&self.pool, |pool| sqlx::query_scalar(sql)
            .bind(stream_id)
            .fetch_one(pool)
            .await?))
    }

    /// Records of a stream with ids above `after_id`, in id order, at most `limit`.
    pub async fn records_after(
        &self,
        stream_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        // The unary `+` keeps SQLite from using the (stream_id, key) index here: with it,
        // every batch would read and sort the whole stream (quadratic over a rebuild);
        // without it, SQLite walks the rowid range in order. PostgreSQL reads it as the
        // same column and plans it on the primary key.
        let sql = "SELECT id, key, data FROM records WHERE +stream_id = $1 AND id > $2 ORDER BY id LIMIT $3";
        dispatch!(&self.pool, |pool| {
            let rows = sqlx::query(sql)
                .bind(stream_id)
                .bind(after_id)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(StoredRecord {
                        id: row.try_get(0)?,
                        key: row.try_get(1)?,
                        data: row.try_get(2)?,
                    })
                })
                .collect()
        })
    }

    /// Registers the configured measures: returns each measure's storage id and whether
    /// its definition changed since the inputs were computed (new measures count as changed).
    pub async fn register_measure(
        &self,
        name: &str,
        definition: &str,
    ) -> Result<(i64, bool), StoreError> {
        let select = "SELECT id, definition FROM measures WHERE name = $1";
        let insert = "INSERT INTO measures (name, definition) VALUES ($1, $2) RETURNING id";
        dispatch!(&self.pool, |pool| {
            let existing = sqlx::query(select).bind(name).fetch_optional(pool).await?;
            match existing {
                Some(row) => {
                    let id: i64 = row.try_get(0)?;
                    let stored: String = row.try_get(1)?;
                    Ok((id, stored != definition))
                }
                None => {
                    let id: i64 = sqlx::query_scalar(insert)
                        .bind(name)
                        .bind(definition)
                        .fetch_one(pool)
                        .await?;
                    Ok((id, true))
                }
            }
        })
    }

    /// The periods with a stored value for a measure, ascending.
    pub async fn value_periods(&self, measure_id: i64) -> Result<Vec<i64>, StoreError> {
        let sql =
            "SELECT period_start FROM measure_values WHERE measure_id = $1 ORDER BY period_start";
        Ok(dispatch!(&self.pool, |pool| sqlx::query_scalar(sql)
            .bind(measure_id)
            .fetch_all(pool)
            .await?))
    }

    /// A measure's stored values with `from <= period_start < to`, ascending.
    pub async fn values(
        &self,
        measure_id: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Option<f64>)>, StoreError> {
        let sql = "SELECT period_start, value FROM measure_values \
                   WHERE measure_id = $1 AND period_start >= $2 AND period_start < $3 ORDER BY period_start";
        dispatch!(&self.pool, |pool| {
            let rows = sqlx::query(sql)
                .bind(measure_id)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        })
    }

    /// The first period with a stored value of a measure.
    pub async fn first_value_period(&self, measure_id: i64) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MIN(period_start) FROM measure_values WHERE measure_id = $1";
        Ok(dispatch!(&self.pool, |pool| sqlx::query_scalar(sql)
            .bind(measure_id)
            .fetch_one(pool)
            .await?))
    }

    /// Starts a sync run row; returns its id.
    pub async fn start_run(
        &self,
        source: &str,
        trigger: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let sql =
            "INSERT INTO sync_runs (source, trigger, started_at) VALUES ($1, $2, $3) RETURNING id";
        Ok(dispatch!(&self.pool, |pool| sqlx::query_scalar(sql)
            .bind(source)
            .bind(trigger)
            .bind(now)
            .fetch_one(pool)
            .await?))
    }

    /// The newest OAuth2 tokens of `source`, if any were saved.
    pub async fn oauth_tokens(&self, source: &str) -> Result<Option<OAuthTokens>, StoreError> {
        let sql = "SELECT seed, refresh_token, access_token, expires_at FROM oauth_tokens WHERE source = $1";
        dispatch!(&self.pool, |pool| {
            let row = sqlx::query(sql).bind(source).fetch_optional(pool).await?;
            row.map(|row| {
                Ok(OAuthTokens {
                    seed: Secret::new(row.try_get::<String, _>(0)?),
                    refresh_token: Secret::new(row.try_get::<String, _>(1)?),
                    access_token: row.try_get::<Option<String>, _>(2)?.map(Secret::new),
                    expires_at: row.try_get(3)?,
                })
            })
            .transpose()
        })
    }

    /// Saves the newest OAuth2 tokens of `source` in one statement (committed on return).
    pub async fn save_oauth_tokens(
        &self,
        source: &str,
        tokens: &OAuthTokens,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO oauth_tokens (source, seed, refresh_token, access_token, expires_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source) DO UPDATE SET \
                   seed = excluded.seed, refresh_token = excluded.refresh_token, \
                   access_token = excluded.access_token, expires_at = excluded.expires_at, \
                   updated_at = excluded.updated_at";
        dispatch!(&self.pool, |pool| {
            sqlx::query(sql)
                .bind(source)
                .bind(tokens.seed.expose())
                .bind(tokens.refresh_token.expose())
                .bind(tokens.access_token.as_ref().map(Secret::expose))
                .bind(tokens.expires_at)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Finishes a sync run row.
    pub async fn finish_run(
        &self,
        run_id: i64,
        now: i64,
        result: &str,
        records: i64,
        pages: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE sync_runs SET finished_at = $1, result = $2, records = $3, pages = $4, error = $5 WHERE id = $6";
        dispatch!(&self.pool, |pool| {
            sqlx::query(sql)
                .bind(now)
                .bind(result)
                .bind(records)
                .bind(pages)
                .bind(error)
                .bind(run_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The latest sync run of each source.
    pub async fn latest_runs(&self) -> Result<Vec<SyncRun>, StoreError> {
        let sql = "SELECT id, source, trigger, started_at, finished_at, result, records, pages, error FROM sync_runs \
                   WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY source) ORDER BY source";
        dispatch!(&self.pool, |pool| {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(SyncRun {
                        id: row.try_get(0)?,
                        source: row.try_get(1)?,
                        trigger: row.try_get(2)?,
                        started_at: row.try_get(3)?,
                        finished_at: row.try_get(4)?,
                        result: row.try_get(5)?,
                        records: row.try_get(6)?,
                        pages: row.try_get(7)?,
                        error: row.try_get(8)?,
                    })
                })
                .collect()
        })
    }

    /// Marks runs left without a result (the process died mid-sync) as failed. On
    /// PostgreSQL a run whose source's lease is live belongs to another replica that is
    /// still syncing, and stays open.
    pub async fn close_abandoned_runs(&self, now: i64) -> Result<u64, StoreError> {
        let sql = "UPDATE sync_runs SET finished_at = $1, result = 'failed', error = 'interrupted: the process stopped during this sync' \
                   WHERE result IS NULL";
        let shared = "UPDATE sync_runs SET finished_at = $1, result = 'failed', error = 'interrupted: the process stopped during this sync' \
                      WHERE result IS NULL AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.source = sync_runs.source \
                      AND leases.holder IS NOT NULL AND leases.expires_at > now())";
        Ok(match &self.pool {
            Backend::Sqlite(pool) => sqlx::query(sql)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected(),
            Backend::Postgres(pool) => sqlx::query(shared)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected(),
        })
    }
}

impl Tx {
    /// Commits every write of this transaction at once.
    pub async fn commit(self) -> Result<(), StoreError> {
        dispatch!(self.tx, |tx| tx.commit().await?);
        Ok(())
    }

    /// Ends the transaction without writing, releasing its locks at once (a dropped
    /// transaction is rolled back only when its connection is next used).
    pub async fn rollback(self) -> Result<(), StoreError> {
        dispatch!(self.tx, |tx| tx.rollback().await?);
        Ok(())
    }

    /// The stored versions of the records with these keys (those that exist).
    pub async fn existing_records(
        &mut self,
        stream_id: i64,
        keys: &[&str],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut found = Vec::new();
        if let Backend::Postgres(tx) = &mut self.tx {
            // One array parameter instead of a parameter per key: PostgreSQL plans a
            // statement with thousands of parameters slowly on every execution.
            let sql = "SELECT id, key, data FROM records WHERE stream_id = $1 AND key = ANY($2)";
            for row in sqlx::query(sql)
                .bind(stream_id)
                .bind(keys)
                .fetch_all(&mut **tx)
                .await?
            {
                found.push(StoredRecord {
                    id: row.try_get(0)?,
                    key: row.try_get(1)?,
                    data: row.try_get(2)?,
                });
            }
            return Ok(found);
        }
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            dispatch!(&mut self.tx, |tx| {
                let mut query =
                    QueryBuilder::new("SELECT id, key, data FROM records WHERE stream_id = ");
                query.push_bind(stream_id).push(" AND key IN (");
                let mut list = query.separated(", ");
                for key in chunk {
                    list.push_bind(*key);
                }
                query.push(")");
                for row in query.build().fetch_all(&mut **tx).await? {
                    found.push(StoredRecord {
                        id: row.try_get(0)?,
                        key: row.try_get(1)?,
                        data: row.try_get(2)?,
                    });
                }
            });
        }
        Ok(found)
    }

    /// Inserts or replaces records by (stream, key); returns (id, key) of each.
    pub async fn upsert_records(
        &mut self,
        stream_id: i64,
        records: &[(&str, &str)],
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let mut ids = Vec::with_capacity(records.len());
        if let Backend::Postgres(tx) = &mut self.tx {
            // Columns as arrays, rows by UNNEST: see `existing_records`.
            let (keys, data): (Vec<&str>, Vec<&str>) = records.iter().copied().unzip();
            let sql = "INSERT INTO records (stream_id, key, data) \
                       SELECT $1, key, data FROM UNNEST($2::text[], $3::text[]) AS page (key, data) \
                       ON CONFLICT (stream_id, key) DO UPDATE SET data = excluded.data RETURNING id, key";
            for row in sqlx::query(sql)
                .bind(stream_id)
                .bind(keys)
                .bind(data)
                .fetch_all(&mut **tx)
                .await?
            {
                ids.push((row.try_get(0)?, row.try_get(1)?));
            }
            return Ok(ids);
        }
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            dispatch!(&mut self.tx, |tx| {
                let mut query = QueryBuilder::new("INSERT INTO records (stream_id, key, data) ");
                query.push_values(chunk, |mut row, (key, data)| {
                    row.push_bind(stream_id).push_bind(*key).push_bind(*data);
                });
                query.push(" ON CONFLICT (stream_id, key) DO UPDATE SET data = excluded.data RETURNING id, key");
                for row in query.build().fetch_all(&mut **tx).await? {
                    ids.push((row.try_get(0)?, row.try_get(1)?));
                }
            });
        }
        Ok(ids)
    }

    /// Deletes records and their measure inputs; returns the (measure, period) pairs the
    /// inputs belonged to (to mark dirty), without duplicates.
    pub async fn remove_records(&mut self, ids: &[i64]) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut touched = std::collections::BTreeSet::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            dispatch!(&mut self.tx, |tx| {
                let mut query =
                    QueryBuilder::new("DELETE FROM measure_inputs WHERE record_id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(") RETURNING measure_id, period_start");
                for row in query.build().fetch_all(&mut **tx).await? {
                    touched.insert((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?));
                }
                let mut query = QueryBuilder::new("DELETE FROM records WHERE id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                query.build().execute(&mut **tx).await?;
            });
        }
        Ok(touched.into_iter().collect())
    }

    /// Removes measure inputs by (measure, period, record).
    pub async fn delete_inputs(&mut self, keys: &[(i64, i64, i64)]) -> Result<(), StoreError> {
        let sql = "DELETE FROM measure_inputs WHERE measure_id = $1 AND period_start = $2 AND record_id = $3";
        for (measure_id, period_start, record_id) in keys {
            dispatch!(&mut self.tx, |tx| {
                sqlx::query(sql)
                    .bind(measure_id)
                    .bind(period_start)
                    .bind(record_id)
                    .execute(&mut **tx)
                    .await?;
            });
        }
        Ok(())
    }

    /// Removes every input and value of a measure (its definition changed).
    pub async fn clear_measure(&mut self, measure_id: i64) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM measure_inputs WHERE measure_id = $1",
            "DELETE FROM measure_values WHERE measure_id = $1",
            "DELETE FROM dirty_periods WHERE measure_id = $1",
        ] {
            dispatch!(&mut self.tx, |tx| {
                sqlx::query(sql).bind(measure_id).execute(&mut **tx).await?;
            });
        }
        // An empty definition never matches a configured one: if the process stops
        // before the rebuild finishes, the next start clears and rebuilds again.
        self.set_definition(measure_id, "").await
    }

    /// Records the definition the stored inputs of a measure were computed with.
    pub async fn set_definition(
        &mut self,
        measure_id: i64,
        definition: &str,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE measures SET definition = $1 WHERE id = $2";
        dispatch!(&mut self.tx, |tx| {
            sqlx::query(sql)
                .bind(definition)
                .bind(measure_id)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Inserts or replaces measure inputs.
    pub async fn upsert_inputs(&mut self, rows: &[InputRow]) -> Result<(), StoreError> {
        if let Backend::Postgres(tx) = &mut self.tx {
            if rows.is_empty() {
                return Ok(());
            }
            // Columns as arrays, rows by UNNEST: see `existing_records`.
            let sql = "INSERT INTO measure_inputs (measure_id, period_start, record_id, event_time, num, txt) \
                       SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::float8[], $6::text[]) \
                       ON CONFLICT (measure_id, period_start, record_id) DO UPDATE \
                       SET event_time = excluded.event_time, num = excluded.num, txt = excluded.txt";
            sqlx::query(sql)
                .bind(rows.iter().map(|row| row.measure_id).collect::<Vec<i64>>())
                .bind(
                    rows.iter()
                        .map(|row| row.period_start)
                        .collect::<Vec<i64>>(),
                )
                .bind(rows.iter().map(|row| row.record_id).collect::<Vec<i64>>())
                .bind(rows.iter().map(|row| row.event_time).collect::<Vec<i64>>())
                .bind(rows.iter().map(|row| row.num).collect::<Vec<Option<f64>>>())
                .bind(
                    rows.iter()
                        .map(|row| row.txt.as_deref())
                        .collect::<Vec<Option<&str>>>(),
                )
                .execute(&mut **tx)
                .await?;
            return Ok(());
        }
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            dispatch!(&mut self.tx, |tx| {
                let mut query = QueryBuilder::new(
                    "INSERT INTO measure_inputs (measure_id, period_start, record_id, event_time, num, txt) ",
                );
                query.push_values(chunk, |mut row, input| {
                    row.push_bind(input.measure_id)
                        .push_bind(input.period_start)
                        .push_bind(input.record_id)
                        .push_bind(input.event_time)
                        .push_bind(input.num)
                        .push_bind(input.txt.as_deref());
                });
                query.push(
                    " ON CONFLICT (measure_id, period_start, record_id) DO UPDATE \
                     SET event_time = excluded.event_time, num = excluded.num, txt = excluded.txt",
                );
                query.build().execute(&mut **tx).await?;
            });
        }
        Ok(())
    }

    /// Marks (measure, period) pairs for recompute.
    pub async fn mark_dirty(&mut self, periods: &[(i64, i64)]) -> Result<(), StoreError> {
        // In key order and once each: the upsert below may touch a row only once per
        // statement (PostgreSQL), and marks are locked in the order a recompute locks them
        // (see `dirty_periods`), so the two never deadlock.
        let periods: Vec<(i64, i64)> = periods
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in periods.chunks(ROWS_PER_STATEMENT) {
            dispatch!(&mut self.tx, |tx| {
                let mut query =
                    QueryBuilder::new("INSERT INTO dirty_periods (measure_id, period_start) ");
                query.push_values(chunk, |mut row, (measure_id, period_start)| {
                    row.push_bind(*measure_id).push_bind(*period_start);
                });
                // An update, not DO NOTHING: it locks an existing mark until this
                // transaction commits, so a concurrent recompute (which locks the marks it
                // reads, see `dirty_periods`) cannot clear it while these inputs are still
                // uncommitted and unread.
                query.push(" ON CONFLICT (measure_id, period_start) DO UPDATE SET period_start = excluded.period_start");
                query.build().execute(&mut **tx).await?;
            });
        }
        Ok(())
    }

    /// Saves a stream's cursor (in the transaction of the records it follows).
    pub async fn save_cursor(
        &mut self,
        stream_id: i64,
        cursor: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE streams SET cursor = $1 WHERE id = $2";
        dispatch!(&mut self.tx, |tx| {
            sqlx::query(sql)
                .bind(cursor)
                .bind(stream_id)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Writes measure values and clears the dirty marks they answer.
    pub async fn write_values(
        &mut self,
        values: &[(i64, i64, Option<f64>)],
        now: i64,
    ) -> Result<(), StoreError> {
        for chunk in values.chunks(ROWS_PER_STATEMENT) {
            dispatch!(&mut self.tx, |tx| {
                let mut query = QueryBuilder::new(
                    "INSERT INTO measure_values (measure_id, period_start, value, updated_at) ",
                );
                query.push_values(chunk, |mut row, (measure_id, period_start, value)| {
                    row.push_bind(*measure_id)
                        .push_bind(*period_start)
                        .push_bind(*value)
                        .push_bind(now);
                });
                query.push(
                    " ON CONFLICT (measure_id, period_start) DO UPDATE \
                     SET value = excluded.value, updated_at = excluded.updated_at",
                );
                query.build().execute(&mut **tx).await?;
            });
        }
        Ok(())
    }

    /// Clears dirty marks.
    pub async fn clear_dirty(&mut self, periods: &[(i64, i64)]) -> Result<(), StoreError> {
        let sql = "DELETE FROM dirty_periods WHERE measure_id = $1 AND period_start = $2";
        for (measure_id, period_start) in periods {
            dispatch!(&mut self.tx, |tx| {
                sqlx::query(sql)
                    .bind(measure_id)
                    .bind(period_start)
                    .execute(&mut **tx)
                    .await?;
            });
        }
        Ok(())
    }

    /// All dirty (measure, period) pairs, locked until this transaction ends.
    ///
    /// On PostgreSQL the marks are read `FOR UPDATE`: a writer marking one of them again
    /// waits until this transaction has cleared it and committed, then marks it afresh,
    /// so inputs committed after this transaction read them are never left without a
    /// mark. The rows are locked in key order, the order writers mark them in, so the
    /// two never deadlock. SQLite's write lock (`BEGIN IMMEDIATE`) already excludes
    /// every other writer.
    pub async fn dirty_periods(&mut self) -> Result<Vec<(i64, i64)>, StoreError> {
        let sql =
            "SELECT measure_id, period_start FROM dirty_periods ORDER BY measure_id, period_start";
        let locking = "SELECT measure_id, period_start FROM dirty_periods ORDER BY measure_id, period_start FOR UPDATE";
        let sql = match &self.tx {
            Backend::Sqlite(_) => sql,
            Backend::Postgres(_) => locking,
        };
        dispatch!(&mut self.tx, |tx| {
            let rows = sqlx::query(sql).fetch_all(&mut **tx).await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        })
    }

    /// Holds `section` until this transaction ends (PostgreSQL; SQLite's write lock
    /// already serializes every write transaction).
    pub async fn lock_section(&mut self, section: Section) -> Result<(), StoreError> {
        if let Backend::Postgres(tx) = &mut self.tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(section.key())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Aggregates one period of a measure's inputs in SQL. `None` when it has no inputs
    /// (and the aggregate is not a count).
    pub async fn aggregate_inputs(
        &mut self,
        measure_id: i64,
        period_start: i64,
        aggregate: SqlAggregate,
    ) -> Result<Option<f64>, StoreError> {
        let sql = match aggregate {
            SqlAggregate::Count => {
                "SELECT CAST(COUNT(*) AS DOUBLE PRECISION) FROM measure_inputs WHERE measure_id = $1 AND period_start = $2"
            }
            SqlAggregate::Sum => {
                "SELECT SUM(num) FROM measure_inputs WHERE measure_id = $1 AND period_start = $2"
            }
            SqlAggregate::Avg => {
                "SELECT AVG(num) FROM measure_inputs WHERE measure_id = $1 AND period_start = $2"
            }
            SqlAggregate::Min => {
                "SELECT MIN(num) FROM measure_inputs WHERE measure_id = $1 AND period_start = $2"
            }
            SqlAggregate::Max => {
                "SELECT MAX(num) FROM measure_inputs WHERE measure_id = $1 AND period_start = $2"
            }
        };
        Ok(dispatch!(&mut self.tx, |tx| sqlx::query_scalar(sql)
            .bind(measure_id)
            .bind(period_start)
            .fetch_one(&mut **tx)
            .await?))
    }

    /// Every input of one measure period.
    pub async fn period_inputs(
        &mut self,
        measure_id: i64,
        period_start: i64,
    ) -> Result<Vec<InputRow>, StoreError> {
        let sql = "SELECT record_id, event_time, num, txt FROM measure_inputs WHERE measure_id = $1 AND period_start = $2";
        dispatch!(&mut self.tx, |tx| {
            let rows = sqlx::query(sql)
                .bind(measure_id)
                .bind(period_start)
                .fetch_all(&mut **tx)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(InputRow {
                        measure_id,
                        period_start,
                        record_id: row.try_get(0)?,
                        event_time: row.try_get(1)?,
                        num: row.try_get(2)?,
                        txt: row.try_get(3)?,
                    })
                })
                .collect()
        })
    }

    /// A measure's stored value for one period: `None` when no row exists.
    pub async fn value_at(
        &mut self,
        measure_id: i64,
        period_start: i64,
    ) -> Result<Option<Option<f64>>, StoreError> {
        let sql = "SELECT value FROM measure_values WHERE measure_id = $1 AND period_start = $2";
        Ok(dispatch!(&mut self.tx, |tx| sqlx::query_scalar(sql)
            .bind(measure_id)
            .bind(period_start)
            .fetch_optional(&mut **tx)
            .await?))
    }

    /// Every period that has inputs for a measure.
    pub async fn input_periods(&mut self, measure_id: i64) -> Result<Vec<i64>, StoreError> {
        let sql = "SELECT DISTINCT period_start FROM measure_inputs WHERE measure_id = $1";
        Ok(dispatch!(&mut self.tx, |tx| sqlx::query_scalar(sql)
            .bind(measure_id)
            .fetch_all(&mut **tx)
            .await?))
    }
}

#[cfg(test)]
mod tests;
