//! `/healthz` (the process answers) and `/readyz` (the database answers and every
//! migration is applied).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// Cheap liveness: no IO.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 when the database is reachable and migrated, 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.store.is_ready().await {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": state.store.backend_name()})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "not ready", "reason": "database unreachable or migrations not applied"}),
            ),
        )
    }
}
