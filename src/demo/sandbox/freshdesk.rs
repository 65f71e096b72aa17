//! A Freshdesk API v2 on loopback: the bakery's wholesale help desk (the cafés and
//! restaurants it delivers to).
//!
//! Serves what the `freshdesk` preset reads, as Freshdesk documents it
//! (<https://developers.freshdesk.com/api/>, cited by anchor):
//! - HTTP Basic with the API key as the user and any password; otherwise 401
//!   `{"code": "invalid_credentials", ...}`: <https://developers.freshdesk.com/api/#authentication>
//! - `GET /api/v2/tickets`: `updated_since` (without it only tickets created in the last 30
//!   days), `order_by` (`created_at` by default, `updated_at`, `due_by`, `status`),
//!   `order_type` (`desc` by default), and no page past 300:
//!   <https://developers.freshdesk.com/api/#list_all_tickets>
//! - `GET /api/v2/surveys/satisfaction_ratings`: `created_since` (without it the last 30
//!   days); `ratings.default_question` on the three-point scale (103 happy, 100 neutral,
//!   -103 unhappy): <https://developers.freshdesk.com/api/#view_all_satisfaction_ratings>
//! - Pagination: bare JSON arrays, `per_page` (30 by default, 100 at most) and `page`; a
//!   `link` header with `rel="next"` while more follow: <https://developers.freshdesk.com/api/#pagination>
//! - Validation errors as `{"description": "Validation failed", "errors": [{"field", "message",
//!   "code"}]}`, and the `x-ratelimit-*` headers: <https://developers.freshdesk.com/api/#error>,
//!   <https://developers.freshdesk.com/api/#ratelimit>
//!
//! The data: about 220 tickets over the year from a dozen business customers; first
//! responses slower (and the first-response SLA missed, `fr_escalated`) while the team is
//! under strain, tickets resolved then closed two days later, and a survey answered on
//! about half of the resolved tickets: mostly happy, less so during the shortage.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::{
    FRESHDESK_API_KEY, Person, Scenario, basic_credentials, constant_time_eq, during_opening_hours,
    origin, parse_time, poisson, query_pairs, query_string, utc,
};

const MAX_PER_PAGE: usize = 100;
const DEFAULT_PER_PAGE: usize = 30;
const LAST_TICKET_PAGE: usize = 300;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// One stored object and the fields it is listed by.
struct Stored {
    id: i64,
    created: i64,
    updated: i64,
    due_by: i64,
    status: i64,
    json: String,
}

/// The wholesale desk's tickets and satisfaction ratings, each oldest first.
pub struct FreshdeskData {
    tickets: Vec<Stored>,
    ratings: Vec<Stored>,
    now: i64,
}

pub(super) const COMPANIES: [&str; 12] = [
    "Cafe des Terreaux",
    "Brasserie Bellecour",
    "Le Petit Bouchon",
    "Hotel Saint-Jean",
    "Cafe Croix-Rousse",
    "Restaurant La Fourchette",
    "Epicerie Monplaisir",
    "Creche Les Lucioles",
    "Cantine Confluence",
    "Bistrot du Rhone",
    "Salon de the Ainay",
    "Traiteur Part-Dieu",
];
const SUBJECTS: [(&str, &str); 7] = [
    ("Morning delivery missing croissants", "Incident"),
    ("Invoice does not match the delivery note", "Question"),
    ("Change our standing order for next week", "Question"),
    ("Bread arrived after opening time", "Problem"),
    ("Credit note for returned pastries", "Refund"),
    ("Allergen sheet for the new brioche", "Question"),
    ("Add sourdough to our weekly order", "Question"),
];

impl FreshdeskData {
    /// The wholesale desk over the scenario's year.
    pub fn bakery(scenario: &Scenario) -> FreshdeskData {
        let mut rng = scenario.rng(0x66726573);
        let now = scenario.now;
        let mut tickets = Vec::new();
        let mut ratings = Vec::new();
        let contacts: Vec<Person> = (0..COMPANIES.len() * 2)
            .map(|index| Person::generate(&mut rng, index))
            .collect();
        for day in scenario.days() {
            for _ in 0..poisson(&mut rng, 0.6 * scenario.seasonality(day)) {
                let created = during_opening_hours(&mut rng, day);
                if created > now - HOUR {
                    continue;
                }
                let id = tickets.len() as i64 + 1;
                let strain = scenario.strain(created);
                let contact = rng.usize(..contacts.len());
                let company = contact / 2;
                let (subject, kind) = SUBJECTS[rng.usize(..SUBJECTS.len())];
                let responder = 43_000_100 + rng.i64(0..3);
                let fr_due_by = created + 8 * HOUR;
                let due_by = created + 48 * HOUR;
                let responded = created
                    + ((60.0 * (1.0 + 2.5 * strain) * (0.3 + 1.6 * rng.f64())) * 60.0) as i64;
                let resolved =
                    responded + ((2.0 + 58.0 * rng.f64()) * (1.0 + strain) * 3_600.0) as i64;
                let closed = resolved + 2 * DAY;
                let status = if closed <= now {
                    5
                } else if resolved <= now {
                    4
                } else if responded <= now {
                    3
                } else {
                    2
                };
                let fr_escalated = responded.min(now) > fr_due_by;
                let is_escalated = resolved.min(now) > due_by;
                let mut updated = match status {
                    5 => closed,
                    4 => resolved,
                    3 => responded,
                    _ => created,
                };
                if status >= 4 && rng.f64() < 0.5 {
                    let at = resolved + rng.i64(2 * HOUR..2 * DAY);
                    if at < now {
                        let roll = rng.f64();
                        let unhappy = 0.05 + 0.25 * scenario.strain(resolved);
                        let score = if roll < unhappy {
                            -103
                        } else if roll < unhappy + 0.1 {
                            100
                        } else {
                            103
                        };
                        let feedback = match score {
                            103 if rng.bool() => Some("Quick and friendly, thank you."),
                            -103 => Some("It took far too long to sort out."),
                            _ => None,
                        };
                        let rating = json!({
                            "id": 43_009_000 + ratings.len() as i64,
                            "survey_id": 43_000_900,
                            "user_id": 43_000_001 + contact as i64,
                            "agent_id": responder,
                            "group_id": 43_000_010,
                            "ticket_id": id,
                            "feedback": feedback,
                            "ratings": {"default_question": score},
                            "created_at": utc(at),
                            "updated_at": utc(at),
                        });
                        ratings.push(Stored {
                            id: 43_009_000 + ratings.len() as i64,
                            created: at,
                            updated: at,
                            due_by: 0,
                            status: 0,
                            json: rating.to_string(),
                        });
                        updated = updated.max(at);
                    }
                }
                let source = [1, 1, 2, 3][rng.usize(..4)];
                let ticket = json!({
                    "id": id,
                    "subject": subject,
                    "status": status,
                    "priority": if kind == "Incident" { 3 } else { 1 + rng.i64(0..2) },
                    "source": source,
                    "type": kind,
                    "requester_id": 43_000_001 + contact as i64,
                    "responder_id": (status > 2).then_some(responder),
                    "group_id": 43_000_010,
                    "company_id": 43_000_500 + company as i64,
                    "product_id": null,
                    "email_config_id": 43_000_020,
                    "support_email": "wholesale@demo-bakery.example",
                    "fr_escalated": fr_escalated,
                    "is_escalated": is_escalated,
                    "nr_escalated": false,
                    "nr_due_by": null,
                    "spam": false,
                    "tags": [COMPANIES[company].to_ascii_lowercase().replace(' ', "-")],
                    "cc_emails": [],
                    "fwd_emails": [],
                    "reply_cc_emails": [],
                    "ticket_cc_emails": [],
                    "custom_fields": {},
                    "due_by": utc(due_by),
                    "fr_due_by": utc(fr_due_by),
                    "created_at": utc(created),
                    "updated_at": utc(updated),
                });
                tickets.push(Stored {
                    id,
                    created,
                    updated,
                    due_by,
                    status,
                    json: ticket.to_string(),
                });
            }
        }
        ratings.sort_by_key(|rating| (rating.created, rating.id));
        FreshdeskData {
            tickets,
            ratings,
            now,
        }
    }

    /// How many tickets and satisfaction ratings it holds.
    pub fn counts(&self) -> (usize, usize) {
        (self.tickets.len(), self.ratings.len())
    }
}

/// The routes, under the caller's prefix.
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(FreshdeskData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<FreshdeskData>) -> Router {
    Router::new()
        .route("/api/v2/tickets", get(tickets))
        .route("/api/v2/surveys/satisfaction_ratings", get(ratings))
        .fallback(not_found)
        .with_state(data)
}

fn with_limits(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-total", HeaderValue::from_static("400"));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("399"));
    headers.insert(
        "x-ratelimit-used-currentrequest",
        HeaderValue::from_static("1"),
    );
    response
}

fn invalid(field: &str, message: &str) -> Response {
    with_limits(super::json(
        StatusCode::BAD_REQUEST,
        json!({"description": "Validation failed", "errors": [{"field": field, "message": message, "code": "invalid_value"}]}).to_string(),
    ))
}

fn authorize(headers: &HeaderMap) -> Result<(), Response> {
    match basic_credentials(headers) {
        Some((key, _)) if constant_time_eq(key.as_bytes(), FRESHDESK_API_KEY.as_bytes()) => Ok(()),
        _ => Err(super::json(
            StatusCode::UNAUTHORIZED,
            r#"{"code":"invalid_credentials","message":"You have to be logged in to perform this action."}"#.to_string(),
        )),
    }
}

async fn not_found(headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    super::json(StatusCode::NOT_FOUND, String::new())
}

/// `per_page` and `page` of a request.
fn paging(query: &[(String, String)]) -> Result<(usize, usize), Response> {
    let mut per_page = DEFAULT_PER_PAGE;
    let mut page = 1;
    for (name, value) in query {
        match name.as_str() {
            "per_page" => match value.parse() {
                Ok(size) if (1..=MAX_PER_PAGE).contains(&size) => per_page = size,
                _ => {
                    return Err(invalid(
                        "per_page",
                        "It should be a Positive Integer less than or equal to 100",
                    ));
                }
            },
            "page" => match value.parse() {
                Ok(number) if number >= 1 => page = number,
                _ => return Err(invalid("page", "It should be a Positive Integer")),
            },
            _ => {}
        }
    }
    Ok((per_page, page))
}

/// The page of `matching` asked for, with its `link` header when more follow.
fn page_response(
    matching: &[&Stored],
    query: &[(String, String)],
    per_page: usize,
    page: usize,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    let start = (page - 1).saturating_mul(per_page).min(matching.len());
    let end = (start + per_page).min(matching.len());
    let mut body = String::from("[");
    for (index, object) in matching[start..end].iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&object.json);
    }
    body.push(']');
    let mut response = with_limits(super::json(StatusCode::OK, body));
    if end < matching.len() {
        let mut pairs: Vec<(&str, String)> = query
            .iter()
            .filter(|(name, _)| name != "page")
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        pairs.push(("page", (page + 1).to_string()));
        let link = format!(
            "<{}/freshdesk/{path}?{}>; rel=\"next\"",
            origin(headers),
            query_string(&pairs)
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

fn since(query: &[(String, String)], name: &str, default: i64) -> Result<i64, Response> {
    match query.iter().find(|(key, _)| key == name) {
        None => Ok(default),
        Some((_, value)) => parse_time(value).ok_or_else(|| {
            invalid(
                name,
                "It should be in the 'valid date time' format (YYYY-MM-DDTHH:MM:SSZ)",
            )
        }),
    }
}

async fn tickets(
    State(data): State<Arc<FreshdeskData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    let query = query_pairs(raw.as_deref());
    let (per_page, page) = match paging(&query) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    if page > LAST_TICKET_PAGE {
        return invalid(
            "page",
            "You cannot access tickets beyond the 300th page. Please provide a smaller page number.",
        );
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    // Without updated_since only the last 30 days' new tickets are listed.
    let updated_since = param("updated_since").is_some();
    let bound = match since(&query, "updated_since", data.now - 30 * DAY) {
        Ok(bound) => bound,
        Err(response) => return response,
    };
    let order_by = param("order_by").unwrap_or("created_at");
    if !matches!(order_by, "created_at" | "updated_at" | "due_by" | "status") {
        return invalid(
            "order_by",
            "It should be one of these values: 'created_at,due_by,updated_at,status'",
        );
    }
    let descending = match param("order_type").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        _ => return invalid("order_type", "It should be one of these values: 'asc,desc'"),
    };
    let mut matching: Vec<&Stored> = data
        .tickets
        .iter()
        .filter(|ticket| {
            if updated_since {
                ticket.updated >= bound
            } else {
                ticket.created >= bound
            }
        })
        .collect();
    matching.sort_by_key(|ticket| {
        let key = match order_by {
            "updated_at" => ticket.updated,
            "due_by" => ticket.due_by,
            "status" => ticket.status,
            _ => ticket.created,
        };
        (key, ticket.id)
    });
    if descending {
        matching.reverse();
    }
    page_response(
        &matching,
        &query,
        per_page,
        page,
        "api/v2/tickets",
        &headers,
    )
}

async fn ratings(
    State(data): State<Arc<FreshdeskData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    let query = query_pairs(raw.as_deref());
    let (per_page, page) = match paging(&query) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let bound = match since(&query, "created_since", data.now - 30 * DAY) {
        Ok(bound) => bound,
        Err(response) => return response,
    };
    let matching: Vec<&Stored> = data
        .ratings
        .iter()
        .filter(|rating| rating.created >= bound && rating.updated >= bound)
        .collect();
    page_response(
        &matching,
        &query,
        per_page,
        page,
        "api/v2/surveys/satisfaction_ratings",
        &headers,
    )
}
