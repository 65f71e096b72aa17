//! A Zendesk Support API on loopback: the bakery's web-shop help desk.
//!
//! Serves what the `zendesk` preset reads, as Zendesk documents it:
//! - API token authentication, HTTP Basic with `{email}/token:{api_token}`; anything else is
//!   401 `{"error": "Couldn't authenticate you"}`:
//!   <https://developer.zendesk.com/api-reference/introduction/security-and-auth/#api-token>
//! - `GET /api/v2/incremental/tickets/cursor.json`: `start_time` (unix seconds) on the first
//!   request, then `cursor` = the previous `after_cursor`; `per_page` up to 1,000; tickets in
//!   the order they last changed; `after_cursor` on every page (also the last, to resume
//!   from later) and `end_of_stream` once nothing newer is left:
//!   <https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/>,
//!   <https://developer.zendesk.com/documentation/ticketing/managing-tickets/using-the-incremental-export-api>
//! - `GET /api/v2/ticket_metrics` and `GET /api/v2/satisfaction_ratings` (filters
//!   `start_time`, `end_time`, `score`) with cursor pagination: `page[size]` (100 at most),
//!   `page[after]`, and `meta.has_more` / `meta.after_cursor` / `links.next`:
//!   <https://developer.zendesk.com/api-reference/introduction/pagination/>,
//!   <https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_metrics/>,
//!   <https://developer.zendesk.com/api-reference/ticketing/ticket-management/satisfaction_ratings/>
//!
//! The data: about 400 tickets over the year (more in December), replied to and solved more
//! slowly while the team is under strain ([`Scenario::strain`]), some re-opened after they
//! were solved (`reopens` in the metrics, and open again when that happened lately), and a
//! satisfaction survey on most solved tickets: mostly `good`, with a dip during the shortage.
//! Offset pagination (requests without `page[size]`) is not served.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::{
    Person, Scenario, ZENDESK_API_TOKEN, ZENDESK_EMAIL, base64_decode, base64_encode,
    basic_credentials, constant_time_eq, during_opening_hours, origin, poisson, query_pairs,
    query_string, utc,
};

/// Largest page of the incremental export.
const EXPORT_MAX: usize = 1_000;
/// Largest page of cursor-paginated lists.
const LIST_MAX: usize = 100;
const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;

/// One stored object and the keys it is listed by.
struct Stored {
    id: i64,
    /// Tickets: `updated_at`; ratings: `created_at`; metrics: unused.
    time: i64,
    /// Ratings: the score, for the `score` filter.
    score: &'static str,
    json: String,
}

/// The help desk's tickets, their metrics and satisfaction ratings.
pub struct ZendeskData {
    /// In export order: by `updated_at`, then id.
    tickets: Vec<Stored>,
    /// By id.
    metrics: Vec<Stored>,
    /// By id.
    ratings: Vec<Stored>,
}

const SUBJECTS: [(&str, &str, &str); 8] = [
    ("Order #{n} arrived late", "delivery", "incident"),
    (
        "Allergen information for the hazelnut cake",
        "allergens",
        "question",
    ),
    ("Change my coffee-club delivery day", "coffee_club", "task"),
    ("Refund for a crushed birthday cake", "refund", "problem"),
    ("Do you have gluten-free bread?", "products", "question"),
    ("Wrong item in order #{n}", "delivery", "incident"),
    ("Invoice for my company order #{n}", "billing", "question"),
    ("Opening hours on public holidays", "shop", "question"),
];
const BAD_REASONS: [&str; 3] = [
    "The issue took too long to resolve",
    "The issue was not resolved",
    "The agent's knowledge is unsatisfactory",
];
const AGENTS: [i64; 3] = [361_000_101, 361_000_102, 361_000_103];
const GROUP: i64 = 360_009_001;

impl ZendeskData {
    /// The bakery's help desk over the scenario's year.
    pub fn bakery(scenario: &Scenario) -> ZendeskData {
        let mut rng = scenario.rng(0x7a656e);
        let now = scenario.now;
        let mut tickets = Vec::new();
        let mut metrics = Vec::new();
        // Ratings get their ids once all are known, in the order they were given.
        let mut ratings: Vec<(i64, i64, &'static str, serde_json::Value)> = Vec::new();
        let mut next_id = 1_001;
        for day in scenario.days() {
            for _ in 0..poisson(&mut rng, 1.1 * scenario.seasonality(day)) {
                let created = during_opening_hours(&mut rng, day);
                if created > now - HOUR {
                    continue;
                }
                let id = next_id;
                next_id += 1;
                let strain = scenario.strain(created);
                let requester = Person::generate(&mut rng, id as usize);
                let requester_id = 380_000_000 + id;
                let assignee = AGENTS[rng.usize(..AGENTS.len())];
                let (subject, tag, kind) = SUBJECTS[rng.usize(..SUBJECTS.len())];
                let subject = subject.replace("{n}", &(4_000 + id).to_string());
                let channel = ["email", "web", "email", "chat"][rng.usize(..4)];

                // Minutes from creation to each step; the strain stretches all of them.
                let reply = ((35.0 * (1.0 + 2.4 * strain) * (0.3 + 1.4 * rng.f64())) as i64).max(2);
                let first_resolution =
                    reply + ((90.0 + 1_400.0 * rng.f64()) * (1.0 + strain)) as i64;
                let replied_at = created + reply * MINUTE;
                let first_solved_at = created + first_resolution * MINUTE;
                // A re-opened ticket counts only once the customer has written back.
                let reopened_at = first_solved_at + rng.i64(2 * HOUR..48 * HOUR);
                let reopened = rng.f64() < 0.05 + 0.12 * strain && reopened_at <= now;
                let reopens = i64::from(reopened);
                let solved_at = if reopened {
                    reopened_at + (600 + rng.i64(0..4_000)) * MINUTE
                } else {
                    first_solved_at
                };
                let full_resolution = (solved_at - created) / MINUTE;
                let is_solved = solved_at <= now;
                let closed = is_solved && solved_at + 4 * 24 * HOUR <= now;
                let status = if replied_at > now {
                    "new"
                } else if is_solved {
                    if closed { "closed" } else { "solved" }
                } else if rng.bool() {
                    "open"
                } else {
                    "pending"
                };
                let mut updated = match status {
                    "new" => created,
                    "open" | "pending" if reopens > 0 => reopened_at,
                    "open" | "pending" => replied_at,
                    _ => solved_at,
                };

                // The survey goes out when the ticket is solved; most customers answer.
                let mut rating_json = serde_json::Value::Null;
                if is_solved && rng.f64() < 0.75 {
                    let answered = created_rating_time(&mut rng, solved_at, now);
                    let (score, at) = match answered {
                        Some(at) => {
                            let bad = rng.f64() < 0.06 + 0.3 * scenario.strain(solved_at);
                            (if bad { "bad" } else { "good" }, at)
                        }
                        None => ("offered", solved_at),
                    };
                    let reason =
                        (score == "bad").then(|| BAD_REASONS[rng.usize(..BAD_REASONS.len())]);
                    let comment = match score {
                        "good" if rng.f64() < 0.3 => Some("Thank you, very kind!"),
                        "bad" => Some("I waited far too long for an answer."),
                        _ => None,
                    };
                    updated = updated.max(at);
                    rating_json = json!({"score": score, "comment": comment, "reason": reason});
                    ratings.push((
                        at,
                        id,
                        score,
                        json!({
                            "assignee_id": assignee,
                            "group_id": GROUP,
                            "requester_id": requester_id,
                            "ticket_id": id,
                            "score": score,
                            "comment": comment,
                            "reason": reason,
                            "created_at": utc(at),
                            "updated_at": utc(at),
                        }),
                    ));
                }
                if closed {
                    updated = updated.max(solved_at + 4 * 24 * HOUR).min(now - MINUTE);
                }

                let ticket = json!({
                    "id": id,
                    "url": format!("https://demo-bakery.zendesk.com/api/v2/tickets/{id}.json"),
                    "external_id": null,
                    "via": {"channel": channel},
                    "created_at": utc(created),
                    "updated_at": utc(updated),
                    "generated_timestamp": updated,
                    "type": kind,
                    "subject": subject,
                    "raw_subject": subject,
                    "priority": if tag == "refund" { "high" } else { "normal" },
                    "status": status,
                    "requester_id": requester_id,
                    "submitter_id": requester_id,
                    "assignee_id": (status != "new").then_some(assignee),
                    "organization_id": null,
                    "group_id": GROUP,
                    "tags": [tag],
                    "custom_fields": [],
                    "satisfaction_rating": rating_json,
                    "is_public": true,
                    "via_followup_source_id": null,
                    "followup_ids": [],
                    "brand_id": 360_000_001,
                    "allow_channelback": false,
                    "has_incidents": false,
                    "email_cc_ids": [],
                    "requester": {"name": format!("{} {}", requester.first, requester.last), "email": requester.email},
                });
                // Metrics count only what has happened by now.
                // The team learns: fewer tickets need a second reply as the year goes on.
                let progress = (created - scenario.start) as f64 / (now - scenario.start) as f64;
                let extra_reply = i64::from(rng.f64() < 0.7 - 0.35 * progress);
                let happened = |at: i64, minutes: i64| {
                    (at <= now).then(|| json!({"calendar": minutes, "business": business(minutes)}))
                };
                let metric = json!({
                    "id": 9_000_000 + id,
                    "ticket_id": id,
                    "url": format!("https://demo-bakery.zendesk.com/api/v2/ticket_metrics/{}.json", 9_000_000 + id),
                    "group_stations": 1,
                    "assignee_stations": 1 + i64::from(reopens > 0 && rng.f64() < 0.3),
                    "reopens": reopens,
                    "replies": if replied_at <= now { 1 + reopens + extra_reply } else { 0 },
                    "assignee_updated_at": utc(created + 10 * MINUTE),
                    "requester_updated_at": utc(created),
                    "status_updated_at": utc(updated),
                    "initially_assigned_at": utc(created + 10 * MINUTE),
                    "assigned_at": utc(created + 10 * MINUTE),
                    "solved_at": is_solved.then(|| utc(solved_at)),
                    "latest_comment_added_at": utc(updated),
                    "reply_time_in_minutes": happened(replied_at, reply).unwrap_or(json!({"calendar": null, "business": null})),
                    "first_resolution_time_in_minutes": happened(first_solved_at, first_resolution).unwrap_or(json!({"calendar": null, "business": null})),
                    "full_resolution_time_in_minutes": if is_solved { json!({"calendar": full_resolution, "business": business(full_resolution)}) } else { json!({"calendar": null, "business": null}) },
                    "agent_wait_time_in_minutes": {"calendar": null, "business": null},
                    "requester_wait_time_in_minutes": {"calendar": null, "business": null},
                    "on_hold_time_in_minutes": {"calendar": 0, "business": 0},
                    "created_at": utc(created),
                    "updated_at": utc(updated),
                });
                tickets.push(Stored {
                    id,
                    time: updated,
                    score: "",
                    json: ticket.to_string(),
                });
                metrics.push(Stored {
                    id: 9_000_000 + id,
                    time: updated,
                    score: "",
                    json: metric.to_string(),
                });
            }
        }
        tickets.sort_by_key(|ticket| (ticket.time, ticket.id));
        ratings.sort_by_key(|(at, ticket, _, _)| (*at, *ticket));
        let ratings = ratings
            .into_iter()
            .enumerate()
            .map(|(index, (at, _, score, mut value))| {
                let id = 502_000 + index as i64;
                value["id"] = json!(id);
                value["url"] = json!(format!(
                    "https://demo-bakery.zendesk.com/api/v2/satisfaction_ratings/{id}.json"
                ));
                Stored {
                    id,
                    time: at,
                    score,
                    json: value.to_string(),
                }
            })
            .collect();
        ZendeskData {
            tickets,
            metrics,
            ratings,
        }
    }

    /// How many tickets, ticket metrics and satisfaction ratings it holds.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.tickets.len(), self.metrics.len(), self.ratings.len())
    }
}

/// When a customer answers the survey sent at `solved_at`: most within a day and a half,
/// some never (`None`, the rating stays `offered`).
fn created_rating_time(rng: &mut fastrand::Rng, solved_at: i64, now: i64) -> Option<i64> {
    let at = solved_at + rng.i64(HOUR..36 * HOUR);
    (rng.f64() < 0.7 && at <= now - MINUTE).then_some(at)
}

/// Business minutes of a calendar span: opening hours are about half the day.
fn business(calendar: i64) -> i64 {
    if calendar <= 8 * 60 {
        calendar
    } else {
        8 * 60 + (calendar - 8 * 60) / 2
    }
}

/// The routes, under the caller's prefix.
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(ZendeskData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<ZendeskData>) -> Router {
    Router::new()
        .route("/api/v2/incremental/tickets/cursor.json", get(export))
        .route("/api/v2/ticket_metrics", get(ticket_metrics))
        .route("/api/v2/satisfaction_ratings", get(satisfaction_ratings))
        .fallback(not_found)
        .with_state(data)
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    super::json(
        status,
        json!({"error": error, "description": description}).to_string(),
    )
}

fn authorize(headers: &HeaderMap) -> Result<(), Response> {
    let expected_user = format!("{ZENDESK_EMAIL}/token");
    match basic_credentials(headers) {
        Some((user, password))
            if constant_time_eq(user.as_bytes(), expected_user.as_bytes())
                && constant_time_eq(password.as_bytes(), ZENDESK_API_TOKEN.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(super::json(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"Couldn't authenticate you"}"#.to_string(),
        )),
    }
}

async fn not_found(headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    error(StatusCode::NOT_FOUND, "InvalidEndpoint", "Not found")
}

fn export_cursor(time: i64, id: i64) -> String {
    base64_encode(format!("{time}.0||{id}|").as_bytes())
}

fn read_export_cursor(text: &str) -> Option<(i64, i64)> {
    let decoded = String::from_utf8(base64_decode(text)?).ok()?;
    let (time, rest) = decoded.split_once(".0||")?;
    let id = rest.strip_suffix('|')?;
    Some((time.parse().ok()?, id.parse().ok()?))
}

fn parse_size(value: Option<&String>, max: usize, name: &str) -> Result<usize, Response> {
    match value {
        None => Ok(max.min(100)),
        Some(text) => match text.parse::<usize>() {
            Ok(size) if (1..=max).contains(&size) => Ok(size),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidPaginationParameter",
                &format!("{name} must be a number between 1 and {max}"),
            )),
        },
    }
}

async fn export(
    State(data): State<Arc<ZendeskData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    let query = query_pairs(raw.as_deref());
    let param = |name: &str| query.iter().find(|(key, _)| key == name).map(|(_, v)| v);
    let size = match parse_size(param("per_page"), EXPORT_MAX, "per_page") {
        Ok(size) => size,
        Err(response) => return response,
    };
    // The position is exclusive: tickets after (updated_at, id).
    let after = match (param("cursor"), param("start_time")) {
        (Some(cursor), _) => match read_export_cursor(cursor) {
            Some(position) => position,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPaginationParameter",
                    "cursor is invalid",
                );
            }
        },
        (None, Some(start)) => match start.parse::<i64>() {
            Ok(start) => (start, i64::MIN),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidValue",
                    "start_time must be a unix timestamp",
                );
            }
        },
        (None, None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidValue",
                "start_time or cursor is required",
            );
        }
    };
    let first = data
        .tickets
        .partition_point(|ticket| (ticket.time, ticket.id) <= after);
    let page = &data.tickets[first..(first + size).min(data.tickets.len())];
    let end_of_stream = first + page.len() >= data.tickets.len();
    let after_cursor = page.last().map_or_else(
        || export_cursor(after.0, after.1.max(0)),
        |last| export_cursor(last.time, last.id),
    );
    let before_cursor = page
        .first()
        .map(|first| export_cursor(first.time, first.id - 1));
    let base = format!(
        "{}/zendesk/api/v2/incremental/tickets/cursor.json",
        origin(&headers)
    );
    let mut body = String::from(r#"{"tickets":["#);
    push_joined(&mut body, page);
    body.push_str(&format!(
        r#"],"after_url":{},"after_cursor":{},"before_url":{},"before_cursor":{},"end_of_stream":{end_of_stream}}}"#,
        json!(format!("{base}?{}", query_string(&[("cursor", after_cursor.clone())]))),
        json!(after_cursor),
        json!(before_cursor.as_ref().map(|cursor| format!("{base}?{}", query_string(&[("cursor", cursor.clone())])))),
        json!(before_cursor),
    ));
    super::json(StatusCode::OK, body)
}

fn push_joined(body: &mut String, objects: &[Stored]) {
    for (index, object) in objects.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&object.json);
    }
}

fn list_cursor(id: i64) -> String {
    base64_encode(json!({"o": "id", "v": id}).to_string().as_bytes())
}

fn read_list_cursor(text: &str) -> Option<i64> {
    let decoded: serde_json::Value = serde_json::from_slice(&base64_decode(text)?).ok()?;
    decoded.get("v")?.as_i64()
}

/// One page of a cursor-paginated list, `objects` already filtered and in id order.
fn list_page(
    name: &str,
    objects: &[&Stored],
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Response {
    let param = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let size = match parse_size(param("page[size]"), LIST_MAX, "page[size]") {
        Ok(size) => size,
        Err(response) => return response,
    };
    let first = match param("page[after]") {
        None => 0,
        Some(cursor) => match read_list_cursor(cursor) {
            Some(after) => objects.partition_point(|object| object.id <= after),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPaginationParameter",
                    "page[after] is not a valid cursor",
                );
            }
        },
    };
    let page = &objects[first..(first + size).min(objects.len())];
    let has_more = first + page.len() < objects.len();
    let after_cursor = page.last().map(|last| list_cursor(last.id));
    let before_cursor = page.first().map(|first| list_cursor(first.id - 1));
    let next = match (&after_cursor, has_more) {
        (Some(cursor), true) => {
            // The next link repeats the request's filters with the new position.
            let mut pairs: Vec<(&str, String)> = query
                .iter()
                .filter(|(key, _)| key != "page[after]")
                .map(|(key, value)| (key.as_str(), value.clone()))
                .collect();
            pairs.push(("page[after]", cursor.clone()));
            Some(format!(
                "{}/zendesk/api/v2/{name}?{}",
                origin(headers),
                query_string(&pairs)
            ))
        }
        _ => None,
    };
    let mut body = format!(r#"{{"{name}":["#);
    for (index, object) in page.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&object.json);
    }
    body.push_str(&format!(
        r#"],"meta":{{"has_more":{has_more},"after_cursor":{},"before_cursor":{}}},"links":{{"next":{},"prev":null}}}}"#,
        json!(after_cursor),
        json!(before_cursor),
        json!(next),
    ));
    super::json(StatusCode::OK, body)
}

async fn ticket_metrics(
    State(data): State<Arc<ZendeskData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    let query = query_pairs(raw.as_deref());
    let all: Vec<&Stored> = data.metrics.iter().collect();
    list_page("ticket_metrics", &all, &query, &headers)
}

async fn satisfaction_ratings(
    State(data): State<Arc<ZendeskData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    let query = query_pairs(raw.as_deref());
    let mut bounds = [i64::MIN, i64::MAX];
    for (index, name) in ["start_time", "end_time"].into_iter().enumerate() {
        if let Some((_, value)) = query.iter().find(|(key, _)| key == name) {
            match value.parse() {
                Ok(time) => bounds[index] = time,
                Err(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidValue",
                        &format!("{name} must be a unix timestamp"),
                    );
                }
            }
        }
    }
    let score = query
        .iter()
        .find(|(key, _)| key == "score")
        .map(|(_, value)| value.as_str());
    let matching: Vec<&Stored> = data
        .ratings
        .iter()
        .filter(|rating| rating.time >= bounds[0] && rating.time < bounds[1])
        .filter(|rating| match score {
            None => true,
            Some("received") => matches!(rating.score, "good" | "bad"),
            Some(wanted) => rating.score == wanted,
        })
        .collect();
    list_page("satisfaction_ratings", &matching, &query, &headers)
}
