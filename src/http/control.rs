//! The rest of `/api/v1`: the measures, alerts and sources read by the dashboard and
//! other tools, and the two write endpoints (`POST /api/v1/sources/{name}/sync`,
//! `POST /api/v1/alerts/{id}/silence`) behind the bearer `api_token`.
//!
//! Write endpoints answer 401 without the right `Authorization: Bearer <api_token>`
//! (compared in constant time), and 403 when no `api_token` is configured at all (they
//! are off until the owner sets one).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::api::ApiError;
use crate::config::{Evaluate, Hold, MeasureKind};
use crate::scheduler::Busy;
use crate::sources::engine::Trigger;
use crate::store::{AlertRow, DeliveryRow, HistoryRow};

/// Equal bytes, in time that depends only on the lengths: the token's value cannot be
/// found one byte at a time from response times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a write request is refused.
enum Denied {
    /// No `api_token` is configured: writes are off.
    Off,
    /// No bearer token was sent.
    Missing,
    /// Another token was sent.
    Wrong,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Denied::Off => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "write endpoints are off: set server.api_token to enable them",
            ),
            Denied::Missing => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the api_token as \"Authorization: Bearer <token>\"",
            ),
            Denied::Wrong => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the token is not the configured api_token",
            ),
        };
        let body = Json(json!({"error": {"code": code, "message": message}}));
        if status == StatusCode::UNAUTHORIZED {
            (status, [("www-authenticate", "Bearer")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

/// Checks the bearer token of a write request.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Denied> {
    let Some(token) = &state.settings.server.api_token else {
        return Err(Denied::Off);
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        None => Err(Denied::Missing),
        Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => Ok(()),
        Some(_) => Err(Denied::Wrong),
    }
}

/// One measure as configured.
#[derive(Debug, Serialize)]
pub struct MeasureInfo {
    id: String,
    name: String,
    perspective: &'static str,
    period: &'static str,
    unit: Option<String>,
    kind: &'static str,
    from: Option<String>,
    formula_inputs: Vec<String>,
    target: Option<crate::status::Target>,
    owner: Option<String>,
    objective: Option<String>,
    alert_on: Vec<&'static str>,
    evaluate: Option<&'static str>,
    hold: Option<String>,
    recovery: Option<f64>,
    forecast: bool,
}

/// `GET /api/v1/measures`
pub async fn measures(State(state): State<AppState>) -> Json<Vec<MeasureInfo>> {
    let list = state
        .settings
        .measures
        .iter()
        .map(|measure| {
            let (kind, from, formula_inputs) = match &measure.kind {
                MeasureKind::Records(records) => (
                    "records",
                    Some(format!("{}.{}", records.source, records.stream)),
                    Vec::new(),
                ),
                MeasureKind::Formula { inputs, .. } => ("formula", None, inputs.clone()),
            };
            MeasureInfo {
                id: measure.id.clone(),
                name: measure.name.clone(),
                perspective: measure.perspective.as_str(),
                period: measure.period.as_str(),
                unit: measure.unit.clone(),
                kind,
                from,
                formula_inputs,
                target: measure.target,
                owner: measure.owner.clone(),
                objective: measure.objective.clone(),
                alert_on: measure
                    .alert
                    .on
                    .iter()
                    .map(|status| status.as_str())
                    .collect(),
                evaluate: measure.alert.evaluate.map(|evaluate| match evaluate {
                    Evaluate::Complete => "complete",
                    Evaluate::Current => "current",
                }),
                hold: measure.alert.hold.map(|hold| match hold {
                    Hold::Evaluations(count) => format!("{count} evaluations"),
                    Hold::Duration(duration) => humantime::format_duration(duration).to_string(),
                }),
                recovery: measure.alert.recovery,
                forecast: measure.alert.forecast,
            }
        })
        .collect();
    Json(list)
}

/// An alert's state as served.
#[derive(Debug, Serialize)]
pub struct AlertView {
    alert: String,
    kind: String,
    subject: String,
    state: String,
    status: Option<String>,
    since: Option<String>,
    value: Option<f64>,
    silenced_until: Option<String>,
}

/// `GET /api/v1/alerts`: states, recent history and deliveries.
#[derive(Debug, Serialize)]
pub struct AlertsView {
    alerts: Vec<AlertView>,
    history: Vec<HistoryRow>,
    deliveries: Vec<DeliveryRow>,
}

fn rfc3339(seconds: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(seconds, 0).map(|time| time.to_rfc3339())
}

/// `GET /api/v1/alerts`
pub async fn alerts(State(state): State<AppState>) -> Result<Json<AlertsView>, ApiError> {
    let now = Utc::now().timestamp();
    let silences: std::collections::HashMap<String, i64> =
        state.store.silences(now).await?.into_iter().collect();
    let rows: Vec<AlertRow> = state.store.alert_states().await?;
    let alerts = rows
        .into_iter()
        .map(|row| AlertView {
            silenced_until: silences.get(&row.subject).and_then(|until| rfc3339(*until)),
            since: rfc3339(row.since),
            alert: row.alert,
            kind: row.kind,
            subject: row.subject,
            state: row.state,
            status: row.status,
            value: row.value,
        })
        .collect();
    Ok(Json(AlertsView {
        alerts,
        history: state.store.alert_history(100).await?,
        deliveries: state.store.deliveries(100).await?,
    }))
}

/// One source as served.
#[derive(Debug, Serialize)]
pub struct SourceView {
    name: String,
    kind: &'static str,
    schedule: String,
    next_run: Option<String>,
    streams: Vec<StreamView>,
    last_run: Option<crate::store::SyncRun>,
}

/// One stream's sync state.
#[derive(Debug, Serialize)]
pub struct StreamView {
    stream: String,
    records: i64,
    last_sync_at: Option<String>,
    last_success_at: Option<String>,
    last_error: Option<String>,
}

/// `GET /api/v1/sources`
pub async fn sources(State(state): State<AppState>) -> Result<Json<Vec<SourceView>>, ApiError> {
    let runs = state.store.latest_runs().await?;
    let mut list = Vec::new();
    for source in state.settings.sources.values() {
        let mut streams = Vec::new();
        for stream in &source.streams {
            let stream_state = state.store.stream_state(&source.name, stream).await?;
            streams.push(StreamView {
                stream: stream.clone(),
                records: state.store.record_count(stream_state.id).await?,
                last_sync_at: stream_state.last_sync_at.and_then(rfc3339),
                last_success_at: stream_state.last_success_at.and_then(rfc3339),
                last_error: stream_state.last_error,
            });
        }
        list.push(SourceView {
            name: source.name.clone(),
            kind: source.kind.as_str(),
            schedule: source.schedule_text.clone(),
            next_run: source
                .schedule
                .after(&Utc::now())
                .next()
                .map(|tick| tick.to_rfc3339()),
            streams,
            last_run: runs.iter().find(|run| run.source == source.name).cloned(),
        });
    }
    Ok(Json(list))
}

/// `POST /api/v1/sources/{name}/sync`: syncs the source now (under its lock, so never
/// beside a scheduled sync of it) and answers with the report; 409 while it is syncing.
pub async fn sync(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied.into_response();
    }
    let Some(source) = state.settings.sources.get(&name) else {
        return ApiError::NotFound(format!("no source \"{name}\"")).into_response();
    };
    // The same guard as the schedule's: the in-process lock and the source's lease, so a
    // manual sync never runs beside a scheduled one here or on another replica.
    let guard = match state.locks.try_acquire(&name, None).await {
        Ok(guard) => guard,
        Err(busy @ (Busy::Here { .. } | Busy::Elsewhere { .. } | Busy::TickDone { .. })) => {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": {"code": "busy", "message": busy.to_string()}})),
            )
                .into_response();
        }
        Err(Busy::Unknown { .. }) => {
            return ApiError::NotFound(format!("no source \"{name}\"")).into_response();
        }
        Err(error @ Busy::Store { .. }) => {
            return ApiError::Internal(error.to_string()).into_response();
        }
    };
    let engine = &state.engine;
    let outcome = guard
        .hold(&CancellationToken::new(), |token| async move {
            engine.sync_source(source, Trigger::Manual, &token).await
        })
        .await;
    guard.release().await;
    match outcome {
        Ok(report) => {
            let streams: Vec<serde_json::Value> = report
                .streams
                .iter()
                .map(|stream| {
                    json!({"stream": stream.stream, "records": stream.records, "changed": stream.changed,
                           "pages": stream.pages, "error": stream.error})
                })
                .collect();
            Json(json!({"source": name, "run_id": report.run_id, "success": report.is_success(), "streams": streams}))
                .into_response()
        }
        Err(error) => ApiError::Internal(error.to_string()).into_response(),
    }
}

/// Body of the silence endpoint.
#[derive(Debug, Deserialize)]
pub struct SilenceBody {
    /// How long: `30m`, `12h`, `3d`.
    #[serde(rename = "for")]
    duration: String,
}

/// `POST /api/v1/alerts/{id}/silence` with `{"for": "3d"}`: silences a measure's (or a
/// source's stale) alerts; the state machine keeps running.
pub async fn silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<SilenceBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied.into_response();
    }
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return ApiError::BadRequest(format!(
                "expected a JSON body {{\"for\": \"3d\"}}: {}",
                rejection.body_text()
            ))
            .into_response();
        }
    };
    if state.settings.measure(&id).is_none() && !state.settings.sources.contains_key(&id) {
        return ApiError::NotFound(format!("no measure or source \"{id}\"")).into_response();
    }
    let length = match humantime::parse_duration(&body.duration) {
        Ok(length) => length,
        Err(error) => {
            return ApiError::BadRequest(format!(
                "for: \"{}\": {error} (examples: 30m, 12h, 3d)",
                body.duration
            ))
            .into_response();
        }
    };
    let now = Utc::now().timestamp();
    let until = now + length.as_secs() as i64;
    match state.store.silence(&id, until, now).await {
        Ok(()) => Json(json!({"subject": id, "silenced_until": rfc3339(until)})).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// `GET /api/v1/strategy-map`: objectives, cause → effect links and the lagged
/// correlation behind each (see [`crate::strategy`]).
pub async fn strategy_map(
    State(state): State<AppState>,
) -> Result<Json<crate::strategy::StrategyMap>, ApiError> {
    Ok(Json(
        crate::strategy::build(&state.store, &state.settings, &state.catalog, Utc::now()).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_by_value_and_length() {
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokem"));
        assert!(!constant_time_eq(b"secret", b"secret-token"));
        assert!(constant_time_eq(b"", b""));
    }
}
