//! `/healthz` (the process answers) and `/readyz` (the database answers and every
//! migration is applied).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alive {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// The database answers and every migration is applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// `sqlite` or `postgres`.
    database: &'static str,
}

/// Not ready to serve.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotReady {
    /// Always `not ready`.
    #[schema(example = "not ready")]
    status: &'static str,
    /// Why.
    reason: &'static str,
}

/// Liveness.
///
/// The process answers; no IO.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Alive))
)]
pub async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// Readiness.
///
/// Ready when the database is reachable and every migration is applied.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "The database is unreachable or not migrated", body = NotReady),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.is_ready().await {
        Json(Ready {
            status: "ready",
            database: state.store.backend_name(),
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(NotReady {
                status: "not ready",
                reason: "database unreachable or migrations not applied",
            }),
        )
            .into_response()
    }
}
