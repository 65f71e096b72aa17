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
        // A COMMIT that fails on a full disk makes SQLite roll the transaction back by
        // itself, but sqlx still counts the connection as inside it and refuses every
        // later `BEGIN IMMEDIATE` on it ("begin_with at non-zero transaction depth"), so
        // the daemon would fail on that connection until restarted. An idle connection is
        // never inside a transaction: one that says it is gets closed instead of used.
        .before_acquire(|connection, _| {
            Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(connection)) })
        })
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

/// A SQLite database held by this process for its lifetime: an exclusive lock on a
/// sidecar file (`<database>.lock`). The operating system drops the lock when the
/// process ends, however it ends (`kill -9` included), so a stale lock never blocks a
/// restart. The file itself stays; it is empty but for the holder's pid.
#[derive(Debug)]
pub struct ProcessLock {
    _file: std::fs::File,
}

/// Where the process lock of the SQLite database at `url` lives; `None` for an
/// in-memory database.
fn lock_path(url: &str) -> Result<Option<(std::path::PathBuf, std::path::PathBuf)>, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?;
    let database = options.get_filename().to_path_buf();
    if url.contains(":memory:") || database.as_os_str().is_empty() {
        return Ok(None);
    }
    let mut lock = database.clone().into_os_string();
    lock.push(".lock");
    Ok(Some((database, lock.into())))
}

/// Locks the SQLite database at `url` for this process, or fails naming the file when
/// another process holds it.
pub(super) fn lock_process(url: &str) -> Result<Option<ProcessLock>, StoreError> {
    use std::io::{Read, Seek, Write};
    let connect_error = |source| StoreError::Connect {
        url: url.to_string(),
        source,
    };
    let Some((database, path)) = lock_path(url).map_err(connect_error)? else {
        return Ok(None);
    };
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        std::fs::create_dir_all(folder).map_err(|error| connect_error(sqlx::Error::Io(error)))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| connect_error(sqlx::Error::Io(error)))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StoreError::InUse {
                database: database.display().to_string(),
                holder: if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("process {holder}")
                },
            });
        }
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(connect_error(sqlx::Error::Io(error)));
        }
    }
    // Only for the error message of the next process that tries: who holds it.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| write!(file, "{}", std::process::id()))
        .and_then(|()| file.flush());
    Ok(Some(ProcessLock { _file: file }))
}
