//! The rest of `/api/v1`: the measures, alerts and sources read by the dashboard and
//! other tools, and the two write endpoints (`POST /api/v1/sources/{name}/sync`,
//! `POST /api/v1/alerts/{id}/silence`) behind the bearer `api_token`.
//!
//! Write endpoints answer 401 without the right `Authorization: Bearer <api_token>`
//! (compared in constant time), and 403 when no `api_token` is configured at all (they
//! are off until the owner sets one).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::AppState;
use super::api::{ApiError, ErrorBody};
use crate::config::{Evaluate, Hold, MeasureKind};
use crate::scheduler::Busy;
use crate::sources::engine::{SyncOptions, Trigger};
use crate::store::{AlertRow, DeliveryRow, HistoryRow};

/// Equal bytes, in time that depends only on the lengths: the token's value cannot be
/// found one byte at a time from response times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the bearer token of a write request: 403 when no `api_token` is configured
/// (writes are off), 401 without a bearer token or with another one.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.settings.server.api_token else {
        return Err(ApiError::Forbidden(
            "write endpoints are off: set server.api_token to enable them",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        None => Err(ApiError::Unauthorized(
            "send the api_token as \"Authorization: Bearer <token>\"",
        )),
        Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized(
            "the token is not the configured api_token",
        )),
    }
}

/// One measure as configured.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeasureInfo {
    /// The measure's id (its key under `[measures]`).
    id: String,
    /// Display name.
    name: String,
    /// The perspective it belongs to.
    perspective: crate::config::Perspective,
    /// The length of its periods.
    period: crate::measures::period::PeriodKind,
    /// Unit shown after values, if configured.
    unit: Option<String>,
    /// `records` (aggregated from a stream) or `formula` (computed from other measures).
    kind: &'static str,
    /// `source.stream` the records come from; `null` for formulas.
    from: Option<String>,
    /// The measures a formula reads; empty for records measures.
    formula_inputs: Vec<String>,
    /// The target, if any.
    target: Option<crate::status::Target>,
    /// The owner (routes alerts to channels with this owner).
    owner: Option<String>,
    /// The objective this measure belongs to.
    objective: Option<String>,
    /// The statuses that fire an alert (`red`, `amber`).
    alert_on: Vec<&'static str>,
    /// `complete` or `current` when configured: which period alerts judge.
    evaluate: Option<&'static str>,
    /// How long a status must last before it fires (`3 evaluations`, `2h`).
    hold: Option<String>,
    /// The level the value must pass back over to resolve.
    recovery: Option<f64>,
    /// True when period-end forecasts may fire early alerts.
    forecast: bool,
}

/// Every configured measure.
///
/// In configuration order, with where its values come from, its target and its alert
/// settings.
#[utoipa::path(
    get,
    path = "/api/v1/measures",
    tag = "scorecard",
    responses((status = 200, description = "The configured measures", body = Vec<MeasureInfo>))
)]
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
                perspective: measure.perspective,
                period: measure.period,
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
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    /// The alert's key: `measure:<id>`, `forecast:<id>` or `stale:<source>`.
    alert: String,
    /// `measure`, `forecast` or `stale`.
    kind: String,
    /// The measure or source it is about.
    subject: String,
    /// `ok`, `pending`, `firing` or `no_data`.
    state: String,
    /// The status at the last evaluation: `green`, `amber`, `red` or `none` (projected
    /// for forecasts), `stale` or `ok` for stale alerts.
    status: Option<String>,
    /// When the alert entered its state (RFC 3339).
    #[schema(format = DateTime)]
    since: Option<String>,
    /// The value last judged.
    value: Option<f64>,
    /// Until when the subject is silenced (RFC 3339); `null` when it is not.
    #[schema(format = DateTime)]
    silenced_until: Option<String>,
}

/// Alert states, recent history and deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsView {
    /// Every alert's current state.
    alerts: Vec<AlertView>,
    /// The latest 100 alert events, newest first.
    history: Vec<HistoryRow>,
    /// The latest 100 delivery attempts, newest first.
    deliveries: Vec<DeliveryRow>,
}

fn rfc3339(seconds: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(seconds, 0).map(|time| time.to_rfc3339())
}

/// Alert states, history and deliveries.
///
/// Every alert's state with its silence, the latest 100 alert events and the latest 100
/// delivery attempts.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "alerts",
    responses(
        (status = 200, description = "States, history and deliveries", body = AlertsView),
        (status = 500, description = "The database failed; see the server log", body = ErrorBody),
    )
)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// The source's name (its key under `[sources]`).
    name: String,
    /// Its kind (preset): `stripe`, `zendesk`, `http`, ...
    kind: &'static str,
    /// Its cron schedule (six fields, seconds first).
    schedule: String,
    /// The next scheduled sync (RFC 3339).
    #[schema(format = DateTime)]
    next_run: Option<String>,
    /// Each configured stream's sync state.
    streams: Vec<StreamView>,
    /// The latest sync run; `null` before the first.
    last_run: Option<crate::store::SyncRun>,
}

/// One stream's sync state.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    /// The stream's name.
    stream: String,
    /// Records stored.
    records: i64,
    /// The last sync's end (RFC 3339).
    #[schema(format = DateTime)]
    last_sync_at: Option<String>,
    /// The last successful sync's end (RFC 3339).
    #[schema(format = DateTime)]
    last_success_at: Option<String>,
    /// The last sync's error; `null` when it succeeded.
    last_error: Option<String>,
}

/// Every source with its sync state.
///
/// Per source: kind, schedule, next run, each stream's records and last sync (with its
/// error), and the latest run.
#[utoipa::path(
    get,
    path = "/api/v1/sources",
    tag = "sources",
    responses(
        (status = 200, description = "The configured sources", body = Vec<SourceView>),
        (status = 500, description = "The database failed; see the server log", body = ErrorBody),
    )
)]
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

/// The report of a sync started through the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncResult {
    /// The source synced.
    source: String,
    /// The sync run's id (as in `last_run.id` of `/api/v1/sources`).
    run_id: i64,
    /// True when every stream succeeded.
    success: bool,
    /// Per stream.
    streams: Vec<SyncedStream>,
}

/// One stream's part of a sync.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncedStream {
    /// The stream's name.
    stream: String,
    /// Records received.
    records: u64,
    /// Records new or changed (unchanged ones are not rewritten).
    changed: u64,
    /// Pages fetched.
    pages: u64,
    /// The stream's error; `null` when it succeeded.
    error: Option<String>,
}

/// Sync a source now.
///
/// Runs the source's sync at once, under the same lock as its schedule (never beside a
/// scheduled sync of it), and answers with the report when it is done. A failing
/// upstream is a report with `success: false`, not an error. Needs the bearer `api_token`.
#[utoipa::path(
    post,
    path = "/api/v1/sources/{name}/sync",
    tag = "sources",
    params(("name" = String, Path, description = "The source's name (its key under `[sources]`)")),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The sync ran; its report", body = SyncResult),
        (status = 400, description = "The path is malformed", body = ErrorBody),
        (status = 401, description = "No bearer token, or not the configured `api_token`", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Write endpoints are off: no `server.api_token` is configured", body = ErrorBody),
        (status = 404, description = "No source with this name", body = ErrorBody),
        (status = 409, description = "The source is syncing now; try again when it is done", body = ErrorBody),
        (status = 500, description = "The database failed; see the server log", body = ErrorBody),
    )
)]
pub async fn sync(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<SyncResult>, ApiError> {
    authorize(&state, &headers)?;
    let Path(name) = name?;
    let Some(source) = state.settings.sources.get(&name) else {
        return Err(ApiError::NotFound(format!("no source \"{name}\"")));
    };
    // The same guard as the schedule's: the in-process lock and the source's lease, so a
    // manual sync never runs beside a scheduled one here or on another replica.
    let guard = match state.locks.try_acquire(&name, None).await {
        Ok(guard) => guard,
        Err(busy @ (Busy::Here { .. } | Busy::Elsewhere { .. } | Busy::TickDone { .. })) => {
            return Err(ApiError::Busy(busy.to_string()));
        }
        Err(Busy::Unknown { .. }) => {
            return Err(ApiError::NotFound(format!("no source \"{name}\"")));
        }
        Err(error @ Busy::Store { .. }) => return Err(ApiError::Internal(error.to_string())),
    };
    let report = guard
        .sync(
            &state.engine,
            source,
            Trigger::Manual,
            &CancellationToken::new(),
            &SyncOptions::default(),
        )
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(Json(SyncResult {
        source: name,
        run_id: report.run_id,
        success: report.is_success(),
        streams: report
            .streams
            .into_iter()
            .map(|stream| SyncedStream {
                stream: stream.stream,
                records: stream.records,
                changed: stream.changed,
                pages: stream.pages,
                error: stream.error,
            })
            .collect(),
    }))
}

/// Body of the silence endpoint.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SilenceBody {
    /// How long, from now: one to four parts separated by single spaces, each a whole
    /// number (up to 4 digits) and a unit from seconds to years: `30m`, `12h`, `3d`,
    /// `1h 30m`, `2weeks`.
    #[serde(rename = "for")]
    #[schema(
        example = "3d",
        pattern = "^[0-9]{1,4}(seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)( [0-9]{1,4}(seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)){0,3}$"
    )]
    duration: String,
}

/// The units of a silence's length (humantime's spellings from seconds to years), as in
/// the `pattern` of [`SilenceBody`].
const SILENCE_UNITS: [&str; 31] = [
    "seconds", "second", "secs", "sec", "s", "minutes", "minute", "mins", "min", "m", "hours",
    "hour", "hrs", "hr", "h", "days", "day", "d", "weeks", "week", "wks", "wk", "w", "months",
    "month", "M", "years", "year", "yrs", "yr", "y",
];

/// The length of a silence, when `text` follows the documented grammar (the schema's
/// `pattern`): a narrower language than humantime's, so that every string the document
/// allows is accepted and every other one refused, and no length overflows a date.
fn silence_length(text: &str) -> Option<std::time::Duration> {
    let parts: Vec<&str> = text.split(' ').collect();
    let well_formed = (1..=4).contains(&parts.len())
        && parts.iter().all(|part| {
            let digits = part.bytes().take_while(u8::is_ascii_digit).count();
            (1..=4).contains(&digits) && SILENCE_UNITS.contains(&&part[digits..])
        });
    if !well_formed {
        return None;
    }
    humantime::parse_duration(text).ok()
}

/// The silence now in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct Silenced {
    /// The measure or source silenced.
    subject: String,
    /// Until when (RFC 3339).
    #[schema(format = DateTime)]
    silenced_until: String,
}

/// Silence a measure's or source's alerts.
///
/// Alerts about the measure (or the source's stale alert) are not sent until the silence
/// ends; their state machine keeps running, and events still reach the history marked
/// `silenced`. A new silence replaces the old one. Needs the bearer `api_token`.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/silence",
    tag = "alerts",
    params(("id" = String, Path, description = "A measure's id or a source's name")),
    request_body(content = SilenceBody, description = "How long", content_type = "application/json"),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "Silenced", body = Silenced),
        (status = 400, description = "The body is not `{\"for\": \"<duration>\"}`, the duration does not parse, or the path is malformed", body = ErrorBody),
        (status = 401, description = "No bearer token, or not the configured `api_token`", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "Write endpoints are off: no `server.api_token` is configured", body = ErrorBody),
        (status = 404, description = "No measure or source with this id", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 500, description = "The database failed; see the server log", body = ErrorBody),
    )
)]
pub async fn silence(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<SilenceBody>, JsonRejection>,
) -> Result<Json<Silenced>, ApiError> {
    authorize(&state, &headers)?;
    let Path(id) = id?;
    let Json(body) = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(format!(
                "expected a JSON body {{\"for\": \"3d\"}}: {}",
                rejection.body_text()
            ))
        }
    })?;
    if state.settings.measure(&id).is_none() && !state.settings.sources.contains_key(&id) {
        return Err(ApiError::NotFound(format!("no measure or source \"{id}\"")));
    }
    let length = silence_length(&body.duration).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "for: \"{}\" is not a length such as 30m, 12h, 3d or 1h 30m (whole numbers, units from seconds to years)",
            body.duration
        ))
    })?;
    let now = Utc::now().timestamp();
    let until = now.saturating_add(i64::try_from(length.as_secs()).unwrap_or(i64::MAX));
    let Some(silenced_until) = rfc3339(until) else {
        return Err(ApiError::BadRequest(format!(
            "for: \"{}\" is too long",
            body.duration
        )));
    };
    state.store.silence(&id, until, now).await?;
    Ok(Json(Silenced {
        subject: id,
        silenced_until,
    }))
}

/// The strategy map with its evidence.
///
/// Objectives, cause → effect links, and behind each link the lagged correlation of the
/// driver's and the effect's measures over the stored history (lags 0 to `max_lag`
/// periods); a pair with fewer than `min_periods` overlapping periods has `best: null`
/// (not enough data).
#[utoipa::path(
    get,
    path = "/api/v1/strategy-map",
    tag = "scorecard",
    responses(
        (status = 200, description = "The strategy map", body = crate::strategy::StrategyMap),
        (status = 500, description = "The database failed; see the server log", body = ErrorBody),
    )
)]
pub async fn strategy_map(
    State(state): State<AppState>,
) -> Result<Json<crate::strategy::StrategyMap>, ApiError> {
    Ok(Json(
        crate::strategy::build(&state.store, &state.settings, &state.catalog, Utc::now()).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::{SILENCE_UNITS, SilenceBody, constant_time_eq, silence_length};

    #[test]
    fn silence_lengths_follow_the_documented_pattern() {
        for (text, seconds) in [
            ("3d", 3 * 86_400),
            ("30m", 1_800),
            ("1h 30m", 5_400),
            ("2weeks", 14 * 86_400),
            ("0s", 0),
            ("9999y 9999y 9999y 9999y", 4 * 9_999 * 31_557_600),
        ] {
            assert_eq!(
                silence_length(text).map(|length| length.as_secs()),
                Some(seconds),
                "{text}"
            );
        }
        for text in [
            "",
            "3",
            "d",
            "3 d",
            "3d ",
            " 3d",
            "3d  1h",
            "12345d",
            "1.5h",
            "3ms",
            "3x",
            "-3d",
            "1s 1s 1s 1s 1s",
        ] {
            assert_eq!(silence_length(text), None, "{text:?}");
        }
        // The schema's pattern names the same units.
        let document = serde_json::to_value(<SilenceBody as utoipa::PartialSchema>::schema())
            .expect("a schema");
        let pattern = document["properties"]["for"]["pattern"]
            .as_str()
            .expect("a pattern");
        let units = format!("({})", SILENCE_UNITS.join("|"));
        assert_eq!(
            pattern,
            format!("^[0-9]{{1,4}}{units}( [0-9]{{1,4}}{units}){{0,3}}$")
        );
    }

    #[test]
    fn tokens_compare_by_value_and_length() {
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokem"));
        assert!(!constant_time_eq(b"secret", b"secret-token"));
        assert!(constant_time_eq(b"", b""));
    }
}
