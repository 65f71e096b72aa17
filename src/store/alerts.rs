//! The SQL of alerts: their states and history, silences, the outbox and its delivery
//! attempts, disabled channels and digests. Same rules as the rest of the store: one SQL
//! text for both backends, except where the backends really differ (claiming due
//! messages: PostgreSQL skips rows another replica has locked).

use sqlx::Row;

use super::{Backend, Store, StoreError, Tx};

/// An alert's stored state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// `measure:<id>`, `forecast:<id>`, `stale:<source>`.
    pub alert: String,
    /// measure | forecast | stale
    pub kind: String,
    /// Measure id or source name.
    pub subject: String,
    /// ok | pending | firing | no_data
    pub state: String,
    /// The status at the last evaluation.
    pub status: Option<String>,
    /// When the state began.
    pub since: i64,
    /// Consecutive bad evaluations while pending.
    pub pending_count: i64,
    /// The judged period at the last evaluation.
    pub period_start: Option<i64>,
    /// The value at the last evaluation.
    pub value: Option<f64>,
    /// The last firing or reminder notification.
    pub last_notified: Option<i64>,
    /// Last evaluation.
    pub updated_at: i64,
}

/// One event of an alert's history.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct HistoryRow {
    /// The alert's key: `measure:<id>`, `forecast:<id>` or `stale:<source>`.
    pub alert: String,
    /// When it happened, in Unix seconds.
    pub at: i64,
    /// What happened: `firing`, `reminder`, `resolved`, `forecast`, `forecast_resolved`,
    /// `stale`, `stale_resolved`, `no_data`, `no_data_resolved`.
    pub event: String,
    /// The status then.
    pub status: Option<String>,
    /// The value then.
    pub value: Option<f64>,
    /// The start of the judged period, in Unix seconds.
    pub period_start: Option<i64>,
    /// True when a silence kept it from being sent.
    pub silenced: bool,
    /// The id of the outbox message carrying it (`msg_…`); `null` when nothing was sent.
    pub message: Option<String>,
}

/// An outbox message.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// `msg_…`.
    pub id: String,
    /// The channel name.
    pub channel: String,
    /// alerts | digest | test
    pub kind: String,
    /// The notification as JSON.
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Not sent before.
    pub not_before: i64,
    /// Next attempt (or the claim of a dispatcher).
    pub next_attempt_at: i64,
    /// Attempts made.
    pub attempts: i64,
    /// pending | delivered | failed | expired
    pub status: String,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    pub finished_at: Option<i64>,
    /// Give up after this.
    pub expires_at: i64,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    /// The outbox message's id (`msg_…`).
    pub message: String,
    /// Its channel (the key under `[notify]`).
    pub channel: String,
    /// 1-based attempt number.
    pub attempt: i64,
    /// When it was made, in Unix seconds.
    pub at: i64,
    /// `delivered`, `retry`, `failed`, `gone` or `expired`.
    pub result: String,
    /// What went wrong; `null` when delivered.
    pub error: Option<String>,
}

/// A source's sync health, for stale alerts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceHealth {
    /// The last successful sync's end.
    pub last_success: Option<i64>,
    /// The first sync's start (a source that never succeeded is stale from then).
    pub first_run: Option<i64>,
    /// The latest sync's error, if it failed.
    pub last_error: Option<String>,
}

const ALERT_COLUMNS: &str = "alert, kind, subject, state, status, since, pending_count, period_start, value, last_notified, updated_at";
const OUTBOX_COLUMNS: &str = "id, channel, kind, body, created_at, not_before, next_attempt_at, attempts, status, last_error, finished_at, expires_at";

fn alert_row<R: Row>(row: &R) -> Result<AlertRow, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(AlertRow {
        alert: row.try_get(0)?,
        kind: row.try_get(1)?,
        subject: row.try_get(2)?,
        state: row.try_get(3)?,
        status: row.try_get(4)?,
        since: row.try_get(5)?,
        pending_count: row.try_get(6)?,
        period_start: row.try_get(7)?,
        value: row.try_get(8)?,
        last_notified: row.try_get(9)?,
        updated_at: row.try_get(10)?,
    })
}

fn outbox_row<R: Row>(row: &R) -> Result<OutboxRow, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(OutboxRow {
        id: row.try_get(0)?,
        channel: row.try_get(1)?,
        kind: row.try_get(2)?,
        body: row.try_get(3)?,
        created_at: row.try_get(4)?,
        not_before: row.try_get(5)?,
        next_attempt_at: row.try_get(6)?,
        attempts: row.try_get(7)?,
        status: row.try_get(8)?,
        last_error: row.try_get(9)?,
        finished_at: row.try_get(10)?,
        expires_at: row.try_get(11)?,
    })
}

/// Upper bounds (seconds) of the sync duration histogram in `/metrics`.
pub const DURATION_BUCKETS: [i64; 8] = [1, 5, 15, 60, 300, 900, 3600, 14400];

/// Figures for `/metrics`, read from the database.
#[derive(Debug, Default, Clone)]
pub struct MetricsSnapshot {
    /// (source, result) → finished sync runs.
    pub runs: Vec<(String, String, i64)>,
    /// source → records received by finished runs.
    pub records: Vec<(String, i64)>,
    /// source → (cumulative count per bucket of [`DURATION_BUCKETS`], count, sum seconds).
    pub durations: Vec<(String, Vec<i64>, i64, i64)>,
    /// (source, stream) → stored records.
    pub stored: Vec<(String, String, i64)>,
    /// outbox status → messages.
    pub outbox: Vec<(String, i64)>,
    /// (channel, result) → delivery attempts.
    pub deliveries: Vec<(String, String, i64)>,
}

impl Store {
    /// The figures `/metrics` serves.
    pub async fn metrics(&self) -> Result<MetricsSnapshot, StoreError> {
        let runs = "SELECT source, result, COUNT(*) FROM sync_runs WHERE result IS NOT NULL GROUP BY source, result ORDER BY source, result";
        let records = "SELECT source, CAST(SUM(records) AS BIGINT) FROM sync_runs WHERE finished_at IS NOT NULL GROUP BY source ORDER BY source";
        let buckets: String = DURATION_BUCKETS
            .iter()
            .map(|bound| format!("CAST(SUM(CASE WHEN finished_at - started_at <= {bound} THEN 1 ELSE 0 END) AS BIGINT), "))
            .collect();
        let durations = format!(
            "SELECT source, {buckets}COUNT(*), CAST(SUM(finished_at - started_at) AS BIGINT) FROM sync_runs \
             WHERE finished_at IS NOT NULL GROUP BY source ORDER BY source"
        );
        let stored = "SELECT s.source, s.stream, COUNT(r.id) FROM streams s LEFT JOIN records r ON r.stream_id = s.id \
                      GROUP BY s.source, s.stream ORDER BY s.source, s.stream";
        let outbox = "SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status";
        let deliveries = "SELECT o.channel, d.result, COUNT(*) FROM deliveries d JOIN outbox o ON o.id = d.message \
                          GROUP BY o.channel, d.result ORDER BY o.channel, d.result";
        dispatch!(&self.pool, |pool| {
            let mut snapshot = MetricsSnapshot::default();
            for row in sqlx::query(runs).fetch_all(pool).await? {
                snapshot
                    .runs
                    .push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
            }
            for row in sqlx::query(records).fetch_all(pool).await? {
                snapshot.records.push((
                    row.try_get(0)?,
                    row.try_get::<Option<i64>, _>(1)?.unwrap_or(0),
                ));
            }
            for row in sqlx::query(sqlx::AssertSqlSafe(durations.clone()))
                .fetch_all(pool)
                .await?
            {
                let counts = (0..DURATION_BUCKETS.len())
                    .map(|index| {
                        row.try_get::<Option<i64>, _>(index + 1)
                            .map(|value| value.unwrap_or(0))
                    })
                    .collect::<Result<Vec<i64>, _>>()?;
                let count: i64 = row.try_get(DURATION_BUCKETS.len() + 1)?;
                let sum: Option<i64> = row.try_get(DURATION_BUCKETS.len() + 2)?;
                snapshot
                    .durations
                    .push((row.try_get(0)?, counts, count, sum.unwrap_or(0)));
            }
            for row in sqlx::query(stored).fetch_all(pool).await? {
                snapshot
                    .stored
                    .push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
            }
            for row in sqlx::query(outbox).fetch_all(pool).await? {
                snapshot.outbox.push((row.try_get(0)?, row.try_get(1)?));
            }
            for row in sqlx::query(deliveries).fetch_all(pool).await? {
                snapshot
                    .deliveries
                    .push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
            }
            Ok(snapshot)
        })
    }

    /// Every alert's state.
    pub async fn alert_states(&self) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alert_states ORDER BY alert");
        dispatch!(&self.pool, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| alert_row(row).map_err(StoreError::from))
                .collect()
        })
    }

    /// The latest history events, newest first.
    pub async fn alert_history(&self, limit: i64) -> Result<Vec<HistoryRow>, StoreError> {
        let sql = "SELECT alert, at, event, status, value, period_start, silenced, message FROM alert_history ORDER BY id DESC LIMIT $1";
        dispatch!(&self.pool, |pool| {
            let rows = sqlx::query(sql).bind(limit).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(HistoryRow {
                        alert: row.try_get(0)?,
                        at: row.try_get(1)?,
                        event: row.try_get(2)?,
                        status: row.try_get(3)?,
                        value: row.try_get(4)?,
                        period_start: row.try_get(5)?,
                        silenced: row.try_get::<i64, _>(6)? != 0,
                        message: row.try_get(7)?,
                    })
                })
                .collect()
        })
    }

    /// Silences still running at `now`: (subject, until).
    pub async fn silences(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = "SELECT subject, until FROM silences WHERE until > $1 ORDER BY subject";
        dispatch!(&self.pool, |pool| {
            let rows = sqlx::query(sql).bind(now).fetch_all(pool).await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        })
    }

    /// Silences `subject` until `until` (replacing an earlier silence).
    pub async fn silence(&self, subject: &str, until: i64, now: i64) -> Result<(), StoreError> {
        let sql = "INSERT INTO silences (subject, until, created_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (subject) DO UPDATE SET until = excluded.until, created_at = excluded.created_at";
        dispatch!(&self.pool, |pool| {
            sqlx::query(sql)
                .bind(subject)
                .bind(until)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A source's sync health from its runs.
    pub async fn source_health(&self, source: &str) -> Result<SourceHealth, StoreError> {
        let sql = "SELECT \
                   (SELECT MAX(finished_at) FROM sync_runs WHERE source = $1 AND result = 'success'), \
                   (SELECT MIN(started_at) FROM sync_runs WHERE source = $1), \
                   (SELECT error FROM sync_runs WHERE source = $1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1)";
        dispatch!(&self.pool, |pool| {
            let row = sqlx::query(sql).bind(source).fetch_one(pool).await?;
            Ok(SourceHealth {
                last_success: row.try_get(0)?,
                first_run: row.try_get(1)?,
                last_error: row.try_get(2)?,
            })
        })
    }

    /// Claims up to `limit` messages due at `now` for delivery: their next attempt moves
    /// to `claim_until`, so another dispatcher (another replica) leaves them alone until
    /// then, and a dispatcher that dies mid-delivery leaves them to be retried after.
    pub async fn claim_due(
        &self,
        now: i64,
        claim_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let pick = "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
                    AND not_before <= $1 ORDER BY next_attempt_at, created_at LIMIT $3";
        match &self.pool {
            Backend::Sqlite(pool) => {
                // One process per SQLite file: the write lock of the statement is the claim.
                let sql = format!(
                    "UPDATE outbox SET next_attempt_at = $2 WHERE id IN ({pick}) RETURNING {OUTBOX_COLUMNS}"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(now)
                    .bind(claim_until)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| outbox_row(row).map_err(StoreError::from))
                    .collect()
            }
            Backend::Postgres(pool) => {
                let sql = format!(
                    "UPDATE outbox SET next_attempt_at = $2 WHERE id IN ({pick} FOR UPDATE SKIP LOCKED) RETURNING {OUTBOX_COLUMNS}"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(now)
                    .bind(claim_until)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| outbox_row(row).map_err(StoreError::from))
                    .collect()
            }
        }
    }

    /// Records one delivery attempt and the message's new state, in one transaction.
    pub async fn record_attempt(
        &self,
        message: &OutboxRow,
        at: i64,
        result: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let insert = "INSERT INTO deliveries (message, attempt, at, result, error) VALUES ($1, $2, $3, $4, $5)";
        let update = "UPDATE outbox SET attempts = $2, status = $3, last_error = $4, next_attempt_at = $5, finished_at = $6 WHERE id = $1";
        dispatch!(&mut tx.tx, |tx| {
            sqlx::query(insert)
                .bind(&message.id)
                .bind(message.attempts)
                .bind(at)
                .bind(result)
                .bind(error)
                .execute(&mut **tx)
                .await?;
            sqlx::query(update)
                .bind(&message.id)
                .bind(message.attempts)
                .bind(&message.status)
                .bind(&message.last_error)
                .bind(message.next_attempt_at)
                .bind(message.finished_at)
                .execute(&mut **tx)
                .await?;
        });
        tx.commit().await
    }

    /// The latest delivery attempts, newest first.
    pub async fn deliveries(&self, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        let sql = "SELECT d.message, o.channel, d.attempt, d.at, d.result, d.error FROM deliveries d \
                   JOIN outbox o ON o.id = d.message ORDER BY d.id DESC LIMIT $1";
        dispatch!(&self.pool, |pool| {
            let rows = sqlx::query(sql).bind(limit).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(DeliveryRow {
                        message: row.try_get(0)?,
                        channel: row.try_get(1)?,
                        attempt: row.try_get(2)?,
                        at: row.try_get(3)?,
                        result: row.try_get(4)?,
                        error: row.try_get(5)?,
                    })
                })
                .collect()
        })
    }

    /// One outbox message by id.
    pub async fn outbox_message(&self, id: &str) -> Result<Option<OutboxRow>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
        dispatch!(&self.pool, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.map(|row| outbox_row(&row).map_err(StoreError::from))
                .transpose()
        })
    }

    /// Every outbox message of a channel, oldest first (tests and `scorekeeper alerts`).
    pub async fn outbox_of(&self, channel: &str) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE channel = $1 ORDER BY created_at, id"
        );
        dispatch!(&self.pool, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(channel)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| outbox_row(row).map_err(StoreError::from))
                .collect()
        })
    }

    /// The channel's disabled target and reason, when a receiver answered 410 Gone.
    pub async fn disabled_channel(
        &self,
        name: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let sql = "SELECT target, reason FROM channels WHERE name = $1 AND disabled_at IS NOT NULL";
        dispatch!(&self.pool, |pool| {
            let row = sqlx::query(sql).bind(name).fetch_optional(pool).await?;
            row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .transpose()
        })
    }

    /// Disables a channel's `target` (410 Gone) until the configuration names another.
    pub async fn disable_channel(
        &self,
        name: &str,
        target: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO channels (name, disabled_at, reason, target) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (name) DO UPDATE SET disabled_at = excluded.disabled_at, reason = excluded.reason, target = excluded.target";
        dispatch!(&self.pool, |pool| {
            sqlx::query(sql)
                .bind(name)
                .bind(now)
                .bind(reason)
                .bind(target)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The last digest of a channel: when, and the statuses then (JSON).
    pub async fn last_digest(&self, channel: &str) -> Result<Option<(i64, String)>, StoreError> {
        let sql = "SELECT sent_at, statuses FROM digests WHERE channel = $1";
        dispatch!(&self.pool, |pool| {
            let row = sqlx::query(sql).bind(channel).fetch_optional(pool).await?;
            row.map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .transpose()
        })
    }
}

impl Tx {
    /// Inserts or replaces an alert's state.
    pub async fn save_alert(&mut self, row: &AlertRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO alert_states ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (alert) DO UPDATE SET kind = excluded.kind, subject = excluded.subject, state = excluded.state, \
             status = excluded.status, since = excluded.since, pending_count = excluded.pending_count, \
             period_start = excluded.period_start, value = excluded.value, last_notified = excluded.last_notified, \
             updated_at = excluded.updated_at"
        );
        dispatch!(&mut self.tx, |tx| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&row.alert)
                .bind(&row.kind)
                .bind(&row.subject)
                .bind(&row.state)
                .bind(&row.status)
                .bind(row.since)
                .bind(row.pending_count)
                .bind(row.period_start)
                .bind(row.value)
                .bind(row.last_notified)
                .bind(row.updated_at)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Appends a history event.
    pub async fn add_history(&mut self, row: &HistoryRow) -> Result<(), StoreError> {
        let sql = "INSERT INTO alert_history (alert, at, event, status, value, period_start, silenced, message) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        dispatch!(&mut self.tx, |tx| {
            sqlx::query(sql)
                .bind(&row.alert)
                .bind(row.at)
                .bind(&row.event)
                .bind(&row.status)
                .bind(row.value)
                .bind(row.period_start)
                .bind(i64::from(row.silenced))
                .bind(&row.message)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// The channel's message still waiting for its group (never attempted, not due yet),
    /// which new alerts join instead of starting another message.
    pub async fn waiting_message(
        &mut self,
        channel: &str,
        now: i64,
    ) -> Result<Option<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE channel = $1 AND kind = 'alerts' AND status = 'pending' \
             AND attempts = 0 AND not_before > $2 ORDER BY created_at DESC LIMIT 1"
        );
        dispatch!(&mut self.tx, |tx| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(channel)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
            row.map(|row| outbox_row(&row).map_err(StoreError::from))
                .transpose()
        })
    }

    /// When the channel's latest alert message was created (for the group interval).
    pub async fn last_message_at(&mut self, channel: &str) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MAX(not_before) FROM outbox WHERE channel = $1 AND kind = 'alerts'";
        dispatch!(&mut self.tx, |tx| {
            Ok(sqlx::query_scalar(sql)
                .bind(channel)
                .fetch_one(&mut **tx)
                .await?)
        })
    }

    /// Replaces a waiting message's body (alerts joined its group).
    pub async fn update_body(&mut self, id: &str, body: &str) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET body = $2 WHERE id = $1";
        dispatch!(&mut self.tx, |tx| {
            sqlx::query(sql)
                .bind(id)
                .bind(body)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Inserts a new outbox message.
    pub async fn enqueue(&mut self, row: &OutboxRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        dispatch!(&mut self.tx, |tx| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&row.id)
                .bind(&row.channel)
                .bind(&row.kind)
                .bind(&row.body)
                .bind(row.created_at)
                .bind(row.not_before)
                .bind(row.next_attempt_at)
                .bind(row.attempts)
                .bind(&row.status)
                .bind(&row.last_error)
                .bind(row.finished_at)
                .bind(row.expires_at)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Records a digest sent (in the transaction that enqueues it).
    pub async fn save_digest(
        &mut self,
        channel: &str,
        sent_at: i64,
        statuses: &str,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO digests (channel, sent_at, statuses) VALUES ($1, $2, $3) \
                   ON CONFLICT (channel) DO UPDATE SET sent_at = excluded.sent_at, statuses = excluded.statuses";
        dispatch!(&mut self.tx, |tx| {
            sqlx::query(sql)
                .bind(channel)
                .bind(sent_at)
                .bind(statuses)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }
}
