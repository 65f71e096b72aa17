//! PostgreSQL connection setup. The URL is never shown with its password.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::StoreError;

/// Connects to PostgreSQL at `url`.
pub(super) async fn connect(url: &str) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|source| StoreError::Connect {
            url: crate::secret::redact_url(url),
            source,
        })
}
