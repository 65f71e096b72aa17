//! SQLite connection setup: the file is created if missing (with its folder), WAL mode,
//! `synchronous = NORMAL` (durable across process crashes; a power loss may lose the
//! last commits but never corrupts), a busy timeout, and write transactions that take
//! the write lock up front (`BEGIN IMMEDIATE`) so two writers never deadlock mid-way.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqlitePool, Transaction};

use super::StoreError;

/// How long a connection waits for another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Statements slower than this are logged as warnings. A statement's time includes its
/// wait for the write lock, and several sources committing at once (every source syncs at
/// startup) routinely wait a second or two: that is queueing, not a problem worth a
/// warning. Waits near the busy timeout are.
const SLOW_STATEMENT: Duration = Duration::from_secs(5);

/// Opens (creating if missing) the SQLite database at `url`.
pub(super) async fn connect(url: &str) -> Result<SqlitePool, StoreError> {
    let connect_error = |source| StoreError::Connect {
        url: url.to_string(),
        source,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(connect_error)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
    let path = options.get_filename();
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder).map_err(|error| connect_error(sqlx::Error::Io(error)))?;
    }
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(connect_error)
}

/// Begins a transaction that holds SQLite's write lock from its first statement.
pub(super) async fn begin_immediate(
    pool: &SqlitePool,
) -> Result<Transaction<'static, Sqlite>, StoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}
