//! The HTTP server: router, shared state, body limits, graceful shutdown.
//!
//! `/healthz`, `/readyz`, `GET /api/v1/scorecard`, `/api/v1/measures`,
//! `/api/v1/measures/{id}/series`, `/api/v1/alerts`, `/api/v1/sources`, the write
//! endpoints `POST /api/v1/sources/{name}/sync` and `POST /api/v1/alerts/{id}/silence`
//! (bearer `api_token`), `/api/v1/openapi.json` (the OpenAPI document of all of these),
//! and the dashboard: `/`, its embedded assets and the events stream
//! `GET /api/v1/events` ([`dashboard`]). It binds to loopback unless the config says
//! otherwise. Unknown paths and methods answer with the API's JSON error.

mod api;
mod control;
mod dashboard;
mod health;
mod limits;
mod metrics;
pub mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::recompute::Catalog;
use crate::store::Store;

/// Largest request body accepted (the API takes no large uploads).
const BODY_LIMIT: usize = 64 * 1024;

/// What every handler can read.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The configuration.
    pub settings: Arc<Settings>,
    /// Bound measures.
    pub catalog: Arc<Catalog>,
    /// The sync engine (`POST /api/v1/sources/{name}/sync`).
    pub engine: crate::sources::engine::Engine,
    /// One lock per source, shared with the scheduler.
    pub locks: crate::scheduler::SourceLocks,
    /// The last `/api/v1/scorecard` body, with the sync generation and minute it was
    /// built at: rebuilt after a sync or when the minute turns (periods roll over).
    pub scorecard_cache: Arc<tokio::sync::Mutex<Option<(u64, i64, axum::body::Bytes)>>>,
    /// Series bodies by request (measure, from, to), valid for one sync generation and
    /// minute like the scorecard's; at most [`SERIES_CACHE_ENTRIES`].
    pub series_cache: Arc<tokio::sync::Mutex<SeriesCache>>,
    /// Cancelled when the server starts shutting down ([`serve`] sets it): responses
    /// that would otherwise stay open (the events stream) end on it.
    pub draining: CancellationToken,
}

/// Most series bodies kept at once (the cache is emptied when full).
pub const SERIES_CACHE_ENTRIES: usize = 256;

/// Cached series bodies of one (sync generation, minute).
#[derive(Debug, Default)]
pub struct SeriesCache {
    /// The generation and minute the entries belong to.
    pub key: (u64, i64),
    /// Bodies by `measure|from|to`.
    pub bodies: std::collections::HashMap<String, axum::body::Bytes>,
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/scorecard", get(api::scorecard))
        .route("/api/v1/measures", get(control::measures))
        .route("/api/v1/measures/{id}/series", get(api::series))
        .route("/api/v1/alerts", get(control::alerts))
        .route("/api/v1/alerts/{id}/silence", post(control::silence))
        .route("/api/v1/sources", get(control::sources))
        .route("/api/v1/strategy-map", get(control::strategy_map))
        .route("/api/v1/sources/{name}/sync", post(control::sync))
        .route("/", get(dashboard::page))
        .route("/assets/{version}/{file}", get(dashboard::asset))
        .route("/api/v1/events", get(dashboard::events))
        .route("/api/v1/openapi.json", get(openapi::document))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            limits::READ_TIMEOUT,
            limits::read_deadline,
        ))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = AppState {
        draining: shutdown.clone(),
        ..state
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
