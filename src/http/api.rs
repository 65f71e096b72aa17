//! `/api/v1` handlers and the one error type they return.
//!
//! Errors are JSON with a stable shape: `{"error": {"code": "...", "message": "..."}}`.
//! 4xx messages say what was wrong; 5xx messages stay generic and the details go to the
//! log inside the request's span.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::scorecard::{self, ScorecardView, SeriesPoint};

/// An API error with its HTTP status.
#[derive(Debug)]
pub enum ApiError {
    /// 404 with what was not found.
    NotFound(String),
    /// 400 with what was wrong.
    BadRequest(String),
    /// 500; the detail is logged, not returned.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, "not_found", message),
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, "bad_request", message),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "Request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log".to_string(),
                )
            }
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// `GET /api/v1/scorecard`: built from the store at most once per sync and minute (the
/// values change only when a sync finishes, the judged periods when the calendar turns),
/// so a busy dashboard or scraper costs one build, not one per request.
pub async fn scorecard(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let key = (state.engine.generation(), now.timestamp() / 60);
    let mut cache = state.scorecard_cache.lock().await;
    if let Some((generation, minute, body)) = cache.as_ref()
        && (*generation, *minute) == key
    {
        return Ok(json_response(body.clone()));
    }
    let view: ScorecardView =
        scorecard::build(&state.store, &state.settings, &state.catalog, now).await?;
    let body = axum::body::Bytes::from(
        serde_json::to_vec(&view).map_err(|error| ApiError::Internal(error.to_string()))?,
    );
    *cache = Some((key.0, key.1, body.clone()));
    Ok(json_response(body))
}

fn json_response(body: axum::body::Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Query of the series endpoint.
#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    from: Option<String>,
    to: Option<String>,
}

fn parse_date(name: &str, text: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    text.map(|text| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ApiError::BadRequest(format!("{name}: \"{text}\" is not a date (YYYY-MM-DD)"))
        })
    })
    .transpose()
}

/// `GET /api/v1/measures/{id}/series?from=&to=`: cached per request like the
/// scorecard (rebuilt after a sync or when the minute turns).
pub async fn series(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<SeriesQuery>,
) -> Result<Response, ApiError> {
    let measure = state
        .catalog
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no measure \"{id}\"")))?;
    let from = parse_date("from", query.from.as_deref())?;
    let to = parse_date("to", query.to.as_deref())?;
    let now = chrono::Utc::now();
    let key = (state.engine.generation(), now.timestamp() / 60);
    let request = format!("{id}|{from:?}|{to:?}");
    {
        let cache = state.series_cache.lock().await;
        if cache.key == key
            && let Some(body) = cache.bodies.get(&request)
        {
            return Ok(json_response(body.clone()));
        }
    }
    let points: Vec<SeriesPoint> =
        scorecard::series(&state.store, &state.catalog, measure, from, to, now).await?;
    let body = axum::body::Bytes::from(
        serde_json::to_vec(&points).map_err(|error| ApiError::Internal(error.to_string()))?,
    );
    let mut cache = state.series_cache.lock().await;
    if cache.key != key || cache.bodies.len() >= super::SERIES_CACHE_ENTRIES {
        cache.key = key;
        cache.bodies.clear();
    }
    cache.bodies.insert(request, body.clone());
    Ok(json_response(body))
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}
