//! A Pipedrive API v2 on loopback: the bakery's catering and wholesale deals.
//!
//! Serves what the `pipedrive` preset reads, as Pipedrive documents it:
//! - The API token as the `api_token` query parameter (or the `x-api-token` header); without
//!   a valid one, 401 `{"success": false, "error": "unauthorized access", "errorCode": 401}`:
//!   <https://pipedrive.readme.io/docs/core-api-concepts-authentication>
//! - `GET /api/v2/deals`: `updated_since` / `updated_until` (RFC 3339), `status` (`open`,
//!   `won`, `lost`, `deleted`; every deal not deleted by default), `sort_by` (`id` by
//!   default, `update_time`, `add_time`), `sort_direction` (`asc` by default):
//!   <https://developers.pipedrive.com/docs/api/v1/Deals#getDeals>
//! - Cursor pagination: `limit` (100 by default, 500 at most) and `cursor`, the next one in
//!   `additional_data.next_cursor` (null on the last page):
//!   <https://pipedrive.readme.io/docs/core-api-concepts-pagination>
//! - Rate-limit headers `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset`:
//!   <https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting>
//!
//! The data: about 250 deals over the year (weddings, corporate catering, café supply
//! contracts), each closed within a few weeks: a bit over half won, the rest lost with a
//! reason, the newest still open; a few deleted ones that only `status=deleted` lists.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::{
    PIPEDRIVE_API_TOKEN, Scenario, base64_decode, base64_encode, constant_time_eq,
    during_opening_hours, parse_time, poisson, query_pairs, utc,
};

const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 100;
const DAY: i64 = 86_400;

/// One deal and the fields it is listed by.
struct Deal {
    id: i64,
    added: i64,
    updated: i64,
    status: &'static str,
    json: String,
}

/// The CRM's deals, by id.
pub struct PipedriveData {
    deals: Vec<Deal>,
}

/// Kinds of deal: title, lowest and highest value in euros.
const KINDS: [(&str, i64, i64); 4] = [
    ("Wedding cake and dessert table", 600, 2_400),
    ("Corporate breakfast catering", 300, 1_500),
    ("Weekly bread supply contract", 1_500, 8_000),
    ("Event pastry buffet", 400, 2_000),
];
const LOST_REASONS: [&str; 4] = [
    "Price too high",
    "Chose another bakery",
    "Event cancelled",
    "No answer after quote",
];
/// Pipeline stages: qualified, quote sent, tasting, negotiation.
const STAGES: [i64; 4] = [1, 2, 3, 4];

impl PipedriveData {
    /// The bakery's deals over the scenario's year.
    pub fn bakery(scenario: &Scenario) -> PipedriveData {
        let mut rng = scenario.rng(0x70697065);
        let now = scenario.now;
        let mut deals = Vec::new();
        for day in scenario.days() {
            for _ in 0..poisson(&mut rng, 0.7 * scenario.seasonality(day)) {
                let added = during_opening_hours(&mut rng, day);
                if added > now - 3_600 {
                    continue;
                }
                let id = deals.len() as i64 + 1;
                let (kind, low, high) = KINDS[rng.usize(..KINDS.len())];
                let value = (low + rng.i64(0..=high - low)) / 10 * 10;
                let org = 7_000 + rng.i64(0..60);
                let closes = added + rng.i64(5 * DAY..40 * DAY);
                let roll = rng.f64();
                let stage = STAGES[rng.usize(..STAGES.len())];
                let deleted = rng.f64() < 0.02;
                let (status, close_time, stage_id, lost_reason) = if closes > now {
                    ("open", None, stage, None)
                } else if roll < 0.58 {
                    ("won", Some(closes), 4, None)
                } else {
                    let reason = LOST_REASONS[rng.usize(..LOST_REASONS.len())];
                    ("lost", Some(closes), stage, Some(reason))
                };
                let status = if deleted { "deleted" } else { status };
                let stage_changed =
                    close_time.unwrap_or(added + (closes - added).min(now - added) / 2);
                let updated = close_time.unwrap_or(stage_changed).min(now - 60);
                let deal = json!({
                    "id": id,
                    "title": format!("{kind} - Org {org}"),
                    "creator_user_id": 21_001,
                    "owner_id": 21_001 + rng.i64(0..2),
                    "person_id": 15_000 + id,
                    "org_id": org,
                    "pipeline_id": 1,
                    "stage_id": stage_id,
                    "value": value,
                    "currency": "EUR",
                    "add_time": utc(added),
                    "update_time": utc(updated),
                    "stage_change_time": utc(stage_changed.min(now - 60)),
                    "is_deleted": deleted,
                    "is_archived": false,
                    "archive_time": null,
                    "status": status,
                    "probability": null,
                    "lost_reason": lost_reason,
                    "visible_to": 3,
                    "close_time": close_time.map(utc),
                    "won_time": (status == "won").then(|| close_time.map(utc)),
                    "lost_time": (status == "lost").then(|| close_time.map(utc)),
                    "expected_close_date": chrono::DateTime::from_timestamp(closes, 0).unwrap_or_default().format("%Y-%m-%d").to_string(),
                    "label_ids": [],
                    "origin": "ManuallyCreated",
                    "origin_id": null,
                    "channel": null,
                    "channel_id": null,
                    "acv": null,
                    "arr": null,
                    "mrr": null,
                });
                deals.push(Deal {
                    id,
                    added,
                    updated,
                    status,
                    json: deal.to_string(),
                });
            }
        }
        PipedriveData { deals }
    }

    /// How many deals it holds (deleted ones included).
    pub fn len(&self) -> usize {
        self.deals.len()
    }

    /// True when there is no deal.
    pub fn is_empty(&self) -> bool {
        self.deals.is_empty()
    }
}

/// The routes, under the caller's prefix.
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(PipedriveData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<PipedriveData>) -> Router {
    Router::new()
        .route("/api/v2/deals", get(deals))
        .fallback(not_found)
        .with_state(data)
}

fn with_limits(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from_static("80"));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("79"));
    headers.insert("x-ratelimit-reset", HeaderValue::from_static("2"));
    response
}

fn failure(status: StatusCode, error: &str, code: &str) -> Response {
    with_limits(super::json(
        status,
        json!({"success": false, "error": error, "code": code, "errorCode": status.as_u16(), "error_info": "Please check developers.pipedrive.com"}).to_string(),
    ))
}

fn authorize(query: &[(String, String)], headers: &HeaderMap) -> Result<(), Response> {
    let token = query
        .iter()
        .find(|(name, _)| name == "api_token")
        .map(|(_, value)| value.as_bytes())
        .or_else(|| headers.get("x-api-token").map(|value| value.as_bytes()))
        .unwrap_or_default();
    if constant_time_eq(token, PIPEDRIVE_API_TOKEN.as_bytes()) {
        Ok(())
    } else {
        Err(with_limits(super::json(
            StatusCode::UNAUTHORIZED,
            r#"{"success":false,"error":"unauthorized access","errorCode":401,"error_info":"Please check developers.pipedrive.com"}"#.to_string(),
        )))
    }
}

async fn not_found(RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&query_pairs(raw.as_deref()), &headers) {
        return refused;
    }
    failure(StatusCode::NOT_FOUND, "Unknown method .", "NOT_FOUND")
}

/// The opaque cursor: the sort key and id of the last deal of the page.
fn cursor(key: i64, id: i64) -> String {
    base64_encode(json!({"k": key, "id": id}).to_string().as_bytes())
}

fn read_cursor(text: &str) -> Option<(i64, i64)> {
    let value: serde_json::Value = serde_json::from_slice(&base64_decode(text)?).ok()?;
    Some((value.get("k")?.as_i64()?, value.get("id")?.as_i64()?))
}

async fn deals(
    State(data): State<Arc<PipedriveData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query_pairs(raw.as_deref());
    if let Err(refused) = authorize(&query, &headers) {
        return refused;
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let invalid = |message: String| {
        failure(
            StatusCode::BAD_REQUEST,
            &message,
            "ERR_SCHEMA_VALIDATION_FAILED",
        )
    };
    let limit = match param("limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return invalid(format!(
                "Validation failed: limit: Parameter 'limit' must be an integer between 1 and {MAX_LIMIT}"
            ));
        }
    };
    let mut bounds = [i64::MIN, i64::MAX];
    for (index, name) in ["updated_since", "updated_until"].into_iter().enumerate() {
        if let Some(text) = param(name) {
            match parse_time(text) {
                Some(time) => bounds[index] = time,
                None => {
                    return invalid(format!(
                        "Validation failed: {name}: must be an RFC 3339 date-time"
                    ));
                }
            }
        }
    }
    let status = param("status");
    if let Some(wanted) = status
        && !matches!(wanted, "open" | "won" | "lost" | "deleted")
    {
        return invalid(
            "Validation failed: status: must be one of open, won, lost, deleted".into(),
        );
    }
    let sort_by = param("sort_by").unwrap_or("id");
    if !matches!(sort_by, "id" | "update_time" | "add_time") {
        return invalid(
            "Validation failed: sort_by: must be one of id, update_time, add_time".into(),
        );
    }
    let descending = match param("sort_direction").unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        _ => return invalid("Validation failed: sort_direction: must be asc or desc".into()),
    };
    let key = |deal: &Deal| match sort_by {
        "update_time" => deal.updated,
        "add_time" => deal.added,
        _ => deal.id,
    };
    let mut matching: Vec<&Deal> = data
        .deals
        .iter()
        .filter(|deal| match status {
            None => deal.status != "deleted",
            Some(wanted) => deal.status == wanted,
        })
        .filter(|deal| deal.updated >= bounds[0] && deal.updated < bounds[1])
        .collect();
    matching.sort_by_key(|deal| (key(deal), deal.id));
    if descending {
        matching.reverse();
    }
    let start = match param("cursor") {
        None => 0,
        Some(text) => match read_cursor(text) {
            Some(position) => matching.partition_point(|deal| {
                let here = (key(deal), deal.id);
                if descending {
                    here >= position
                } else {
                    here <= position
                }
            }),
            None => return invalid("Validation failed: cursor: invalid cursor".into()),
        },
    };
    let end = (start + limit).min(matching.len());
    let page = &matching[start..end];
    let next = match page.last() {
        Some(last) if end < matching.len() => json!(cursor(key(last), last.id)),
        _ => serde_json::Value::Null,
    };
    let mut body = String::from(r#"{"success":true,"data":["#);
    for (index, deal) in page.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&deal.json);
    }
    body.push_str(&format!(
        r#"],"additional_data":{{"next_cursor":{next}}}}}"#
    ));
    with_limits(super::json(StatusCode::OK, body))
}
