//! PostgreSQL connection setup. The URL is never shown with its password.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use super::StoreError;

/// Connects to PostgreSQL at `url`.
///
/// One plain connection is opened first: the pool would retry a refused connection until
/// its acquire timeout and then report only that it timed out, while a single attempt
/// fails at once with the reason (refused, unknown host, bad password), which
/// [`super::Store::connect_patiently`] needs to decide whether to wait and retry.
pub(super) async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let connect_error = |source| StoreError::Connect {
        url: crate::secret::redact_url(url),
        source,
    };
    let options = PgConnectOptions::from_str(url).map_err(connect_error)?;
    let first = tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect_with(&options),
    )
    .await
    .map_err(|_| connect_error(sqlx::Error::PoolTimedOut))?
    .map_err(connect_error)?;
    let _ = first.close().await;
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(connect_error)
}
