//! `/api/v1` handlers and the one error type they return.
//!
//! Errors are JSON with a stable shape: `{"error": {"code": "...", "message": "..."}}`.
//! 4xx messages say what was wrong; 5xx messages stay generic and the details go to the
//! log inside the request's span.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::scorecard::{self, ScorecardView, SeriesPoint};

/// The body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's stable code and its message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: programs branch on it, never on the message.
    pub code: ErrorCode,
    /// For people: what was wrong and where (4xx), or a generic line (5xx: the details
    /// are in the server log, inside the request's span).
    pub message: String,
}

/// The kind of an error; each goes with one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a bad path segment, query or body.
    BadRequest,
    /// 401: no bearer token, or not the configured `api_token`.
    Unauthorized,
    /// 403: write endpoints are off (no `server.api_token` configured).
    Forbidden,
    /// 404: no such measure, source or endpoint.
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409: the source is syncing now.
    Busy,
    /// 413: the request body is larger than the server accepts.
    PayloadTooLarge,
    /// 500: something failed inside; see the server log.
    Internal,
    /// 503: a read request found no answer within its time limit; try again.
    Timeout,
}

/// An API error with its HTTP status.
#[derive(Debug)]
pub enum ApiError {
    /// 400 with what was wrong.
    BadRequest(String),
    /// 401 with what to send; answered with `WWW-Authenticate: Bearer`.
    Unauthorized(&'static str),
    /// 403 with why.
    Forbidden(&'static str),
    /// 404 with what was not found.
    NotFound(String),
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409 with what is busy.
    Busy(String),
    /// 413: the body is over [`super::BODY_LIMIT`].
    PayloadTooLarge,
    /// 500; the detail is logged, not returned.
    Internal(String),
    /// 503: a read request took longer than its limit (whole seconds).
    Timeout(u64),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
            }
            ApiError::Unauthorized(message) => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                message.to_string(),
            ),
            ApiError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                message.to_string(),
            ),
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, ErrorCode::NotFound, message),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "this path does not take this method; see /api/v1/openapi.json".to_string(),
            ),
            ApiError::Busy(message) => (StatusCode::CONFLICT, ErrorCode::Busy, message),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!(
                    "the request body is larger than {} bytes",
                    super::BODY_LIMIT
                ),
            ),
            ApiError::Timeout(seconds) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Timeout,
                format!("no answer within {seconds} s; try again"),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "Request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "internal error; see the server log".to_string(),
                )
            }
        };
        let body = Json(ErrorBody {
            error: ErrorDetail { code, message },
        });
        if status == StatusCode::UNAUTHORIZED {
            (
                status,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                body,
            )
                .into_response()
        } else {
            (status, body).into_response()
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(format!("path: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(format!("query: {}", rejection.body_text()))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// The whole scorecard.
///
/// Every perspective with its measures, in configuration order: each measure's judged
/// period (the one its status is read from) and the running period, with value, target
/// and status.
#[utoipa::path(
    get,
    path = "/api/v1/scorecard",
    tag = "scorecard",
    responses(
        (status = 200, description = "The scorecard", body = ScorecardView),
        (status = 500, description = "The database failed; see the server log", body = ErrorBody),
    )
)]
pub async fn scorecard(State(state): State<AppState>) -> Result<Response, ApiError> {
    // Built from the store at most once per sync and minute (the values change only when
    // a sync finishes, the judged periods when the calendar turns), so a busy dashboard
    // or scraper costs one build, not one per request.
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

/// A body already serialized to JSON.
pub(super) fn json_response(body: axum::body::Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Query of the series endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// The first day (`YYYY-MM-DD`); the series starts with the period containing it.
    /// Default: the measure's first stored period (an empty list when it has none).
    #[param(format = Date)]
    from: Option<String>,
    /// The last day (`YYYY-MM-DD`); the series ends with the period containing it.
    /// Default: the current period.
    #[param(format = Date)]
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

/// One measure's series.
///
/// One point per period from `from` to `to`, oldest first (at most 10,000 points): the
/// period's label and start, the value (`null` without data), the target and the status.
/// A `from` after `to` gives an empty list.
#[utoipa::path(
    get,
    path = "/api/v1/measures/{id}/series",
    tag = "scorecard",
    params(
        ("id" = String, Path, description = "The measure's id (its key under `[measures]`)"),
        SeriesQuery,
    ),
    responses(
        (status = 200, description = "The series, oldest period first", body = Vec<SeriesPoint>),
        (status = 400, description = "`from` or `to` is not a date, or the query or path is malformed", body = ErrorBody),
        (status = 404, description = "No measure with this id", body = ErrorBody),
        (status = 500, description = "The database failed; see the server log", body = ErrorBody),
    )
)]
pub async fn series(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let Query(query) = query?;
    let measure = state
        .catalog
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no measure \"{id}\"")))?;
    let from = parse_date("from", query.from.as_deref())?;
    let to = parse_date("to", query.to.as_deref())?;
    // Cached per request like the scorecard (rebuilt after a sync or when the minute
    // turns).
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
    ApiError::NotFound("no such endpoint; see /api/v1/openapi.json".into())
}

/// A path that exists, with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
