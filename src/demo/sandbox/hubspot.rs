//! A HubSpot CRM API (v3) on loopback: the bakery's supply-contract and catering deals
//! (see [`super::books`]).
//!
//! Serves what the `hubspot` preset reads, as HubSpot documents it:
//! - A private app's access token as `Authorization: Bearer`; without a valid one, 401
//!   `{"status": "error", "message": ..., "correlationId": ..., "category":
//!   "INVALID_AUTHENTICATION"}`:
//!   <https://developers.hubspot.com/docs/apps/legacy-apps/private-apps/overview>,
//!   <https://developers.hubspot.com/docs/api-reference/error-handling>
//! - `POST /crm/v3/objects/deals/search`: `filterGroups` (ORed, at most 5) of `filters`
//!   (ANDed, at most 6 a group, 18 in all) with `EQ`, `NEQ`, `LT`, `LTE`, `GT`, `GTE`,
//!   `BETWEEN`, `IN`, `NOT_IN`, `HAS_PROPERTY`, `NOT_HAS_PROPERTY` (date properties
//!   compared as epoch milliseconds); one sort rule; `query` over the deal name; `limit`
//!   (10 by default, at most 200); `after` (the offset from the previous page's
//!   `paging.next.after`); paging beyond 10,000 results answers 400; bodies of at most
//!   3,000 characters; `properties` returned as strings (null when unset; only the
//!   requested ones, else search's defaults); the answer `{"total", "results", "paging"}`:
//!   <https://developers.hubspot.com/docs/api-reference/latest/crm/search-the-crm>
//! - `GET /crm/v3/objects/deals` (the preset's probe): `limit` (10 by default, at most
//!   100), `after`, `properties` (comma-separated), `paging.next.link`, and the
//!   `X-HubSpot-RateLimit-*` headers search answers do not carry:
//!   <https://developers.hubspot.com/docs/api-reference/latest/crm/objects/deals/guide>,
//!   <https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines>
//! - Deal properties by internal name (`dealstage` values of the default pipeline,
//!   `hs_is_closed_won`, `hs_closed_amount`, `closed_lost_reason`, ...):
//!   <https://knowledge.hubspot.com/crm-deals/hubspots-default-deal-properties>
//!
//! Not served: archived deals (none exist), associations, and the search endpoint's
//! 5-requests-a-second limit (the sandbox never answers 429).

use std::cmp::Ordering;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::books::{Books, Deal, Offer};
use super::{HUBSPOT_ACCESS_TOKEN, Scenario, constant_time_eq, origin, query_pairs};

const LIST_PATH: &str = "crm/v3/objects/deals";
const MAX_SEARCH_LIMIT: usize = 200;
const MAX_LIST_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 10;
/// Results one search query may page through.
const SEARCH_RESULT_CAP: usize = 10_000;
const MAX_BODY: usize = 3_000;
const MAX_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 6;
const MAX_FILTERS: usize = 18;

/// What search returns without `properties`.
const SEARCH_DEFAULTS: [&str; 8] = [
    "dealname",
    "amount",
    "closedate",
    "pipeline",
    "dealstage",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
];
/// What the list endpoint returns without `properties`.
const LIST_DEFAULTS: [&str; 7] = [
    "dealname",
    "amount",
    "closedate",
    "pipeline",
    "dealstage",
    "createdate",
    "hs_lastmodifieddate",
];
/// Properties holding instants (compared and sorted as epoch milliseconds).
const DATE_PROPERTIES: [&str; 3] = ["closedate", "createdate", "hs_lastmodifieddate"];

/// One deal as HubSpot stores it: its properties as strings (absent when unset).
struct Stored {
    id: u64,
    created_ms: i64,
    modified_ms: i64,
    properties: Map<String, Value>,
}

/// The CRM's deals, by id.
pub struct HubSpotData {
    deals: Vec<Stored>,
}

/// Unix milliseconds as HubSpot writes instants: `2026-03-10T15:00:02.311Z`.
fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn stored(deal: &Deal) -> Stored {
    let amount = deal.amount as f64;
    let closed = deal.closed();
    let won = deal.won();
    let mut properties = Map::new();
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            properties.insert(name.to_string(), Value::String(value));
        }
    };
    set("dealname", Some(deal.name.clone()));
    set("amount", Some(number(amount)));
    set("amount_in_home_currency", Some(number(amount)));
    set("deal_currency_code", Some("EUR".into()));
    set("dealstage", Some(deal.stage.into()));
    set("pipeline", Some("default".into()));
    set(
        "dealtype",
        Some(
            match deal.offer {
                Offer::Supply => "newbusiness",
                Offer::Catering => "existingbusiness",
            }
            .into(),
        ),
    );
    set("closedate", Some(iso_ms(deal.close * 1000)));
    set("createdate", Some(iso_ms(deal.created_ms)));
    set("hs_lastmodifieddate", Some(iso_ms(deal.modified_ms)));
    set("hs_object_id", Some(deal.id.to_string()));
    set("hs_is_closed", Some(closed.to_string()));
    set("hs_is_closed_won", Some(won.to_string()));
    set(
        "hs_deal_stage_probability",
        Some(format!("{:.1}", deal.probability)),
    );
    set(
        "hs_forecast_amount",
        Some(number(amount * deal.probability)),
    );
    set(
        "hs_closed_amount",
        Some(number(if won { amount } else { 0.0 })),
    );
    set("hubspot_owner_id", Some(deal.owner.to_string()));
    set("closed_lost_reason", deal.lost_reason.map(str::to_string));
    set(
        "days_to_close",
        closed.then(|| ((deal.close * 1000 - deal.created_ms) / 86_400_000).to_string()),
    );
    set(
        "description",
        Some(match deal.offer {
            Offer::Supply => format!("Monthly deliveries to {}", deal.customer),
            Offer::Catering => format!("Catering for {}", deal.customer),
        }),
    );
    Stored {
        id: deal.id,
        created_ms: deal.created_ms,
        modified_ms: deal.modified_ms,
        properties,
    }
}

impl HubSpotData {
    /// The deals of the bakery's books.
    pub fn bakery(scenario: &Scenario) -> HubSpotData {
        let books = Books::bakery(scenario);
        HubSpotData {
            deals: books.deals.iter().map(stored).collect(),
        }
    }

    /// How many deals it holds.
    pub fn len(&self) -> usize {
        self.deals.len()
    }

    /// True when there is no deal.
    pub fn is_empty(&self) -> bool {
        self.deals.is_empty()
    }

    /// How many are won, lost and open.
    pub fn outcomes(&self) -> (usize, usize, usize) {
        let stage = |deal: &Stored| {
            deal.properties
                .get("dealstage")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let won = self
            .deals
            .iter()
            .filter(|deal| stage(deal) == "closedwon")
            .count();
        let lost = self
            .deals
            .iter()
            .filter(|deal| stage(deal) == "closedlost")
            .count();
        (won, lost, self.deals.len() - won - lost)
    }
}

/// The routes, under the caller's prefix.
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(HubSpotData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<HubSpotData>) -> Router {
    Router::new()
        .route("/crm/v3/objects/deals/search", post(search))
        .route("/crm/v3/objects/deals", get(list))
        .fallback(not_found)
        .with_state(data)
}

/// A correlation id, as HubSpot puts on every error (fixed: the sandbox keeps no log).
const CORRELATION_ID: &str = "5b1e3c7a-0d5e-4b8e-9b7a-2f4c1d6e8a90";

fn error(status: StatusCode, category: &str, message: &str) -> Response {
    super::json(
        status,
        json!({
            "status": "error",
            "message": message,
            "correlationId": CORRELATION_ID,
            "category": category,
        })
        .to_string(),
    )
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

fn authorize(headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(token.trim().as_bytes(), HUBSPOT_ACCESS_TOKEN.as_bytes()) {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        ))
    }
}

async fn not_found(headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
}

/// The deal as an API object with `wanted` properties (null when unset).
fn object(deal: &Stored, wanted: &[String]) -> Value {
    let mut properties = Map::new();
    for name in wanted {
        // HubSpot always returns these three, and leaves unknown names out.
        let value = deal.properties.get(name).cloned().unwrap_or(Value::Null);
        if value.is_null() && !KNOWN.contains(&name.as_str()) {
            continue;
        }
        properties.insert(name.clone(), value);
    }
    for always in ["createdate", "hs_lastmodifieddate", "hs_object_id"] {
        if let Some(value) = deal.properties.get(always) {
            properties
                .entry(always.to_string())
                .or_insert_with(|| value.clone());
        }
    }
    json!({
        "id": deal.id.to_string(),
        "properties": properties,
        "createdAt": iso_ms(deal.created_ms),
        "updatedAt": iso_ms(deal.modified_ms),
        "archived": false,
    })
}

/// Every deal property the portal defines (set or not on a given deal).
const KNOWN: [&str; 21] = [
    "dealname",
    "amount",
    "amount_in_home_currency",
    "deal_currency_code",
    "dealstage",
    "pipeline",
    "dealtype",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
    "hs_is_closed",
    "hs_is_closed_won",
    "hs_deal_stage_probability",
    "hs_forecast_amount",
    "hs_closed_amount",
    "hubspot_owner_id",
    "closed_won_reason",
    "closed_lost_reason",
    "days_to_close",
    "description",
];

/// A property's value as a comparable key: epoch milliseconds for dates, a number when
/// it reads as one, else the text.
#[derive(PartialEq, PartialOrd)]
enum Key {
    Number(f64),
    Text(String),
}

fn key_of(property: &str, text: &str) -> Key {
    if DATE_PROPERTIES.contains(&property)
        && let Ok(time) = chrono::DateTime::parse_from_rfc3339(text)
    {
        return Key::Number(time.timestamp_millis() as f64);
    }
    match text.parse::<f64>() {
        Ok(number) => Key::Number(number),
        Err(_) => Key::Text(text.to_lowercase()),
    }
}

fn compare(left: &Key, right: &Key) -> Option<Ordering> {
    match (left, right) {
        (Key::Number(a), Key::Number(b)) => a.partial_cmp(b),
        (Key::Text(a), Key::Text(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// A filter value as text (HubSpot takes strings, and numbers or booleans as such).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// One filter, checked and ready to apply.
struct Filter {
    property: String,
    operator: String,
    values: Vec<String>,
}

impl Filter {
    fn parse(value: &Value) -> Result<Filter, String> {
        let property = value
            .get("propertyName")
            .and_then(Value::as_str)
            .ok_or("a filter has no propertyName")?
            .to_string();
        let operator = value
            .get("operator")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the filter on {property} has no operator"))?
            .to_string();
        let one = |name: &str| {
            value
                .get(name)
                .and_then(text_of)
                .ok_or_else(|| format!("the {operator} filter on {property} needs `{name}`"))
        };
        let values = match operator.as_str() {
            "HAS_PROPERTY" | "NOT_HAS_PROPERTY" => Vec::new(),
            "EQ" | "NEQ" | "LT" | "LTE" | "GT" | "GTE" | "CONTAINS_TOKEN" => vec![one("value")?],
            "BETWEEN" => vec![one("value")?, one("highValue")?],
            "IN" | "NOT_IN" => value
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("the {operator} filter on {property} needs `values`"))?
                .iter()
                .map(|item| text_of(item).unwrap_or_default())
                .collect(),
            other => {
                return Err(format!(
                    "Invalid operator {other} on {property}: use EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY or CONTAINS_TOKEN"
                ));
            }
        };
        Ok(Filter {
            property,
            operator,
            values,
        })
    }

    fn matches(&self, deal: &Stored) -> bool {
        let stored = deal.properties.get(&self.property).and_then(Value::as_str);
        let Some(stored) = stored else {
            return self.operator == "NOT_HAS_PROPERTY" || self.operator == "NEQ";
        };
        let here = key_of(&self.property, stored);
        let against = |text: &str| {
            // A date property's filter value is epoch milliseconds (or an instant).
            let key = key_of(&self.property, text);
            compare(&here, &key)
        };
        let first = self.values.first().map(String::as_str).unwrap_or_default();
        match self.operator.as_str() {
            "HAS_PROPERTY" => true,
            "NOT_HAS_PROPERTY" => false,
            "EQ" => against(first) == Some(Ordering::Equal),
            "NEQ" => against(first) != Some(Ordering::Equal),
            "LT" => against(first) == Some(Ordering::Less),
            "LTE" => matches!(against(first), Some(Ordering::Less | Ordering::Equal)),
            "GT" => against(first) == Some(Ordering::Greater),
            "GTE" => matches!(against(first), Some(Ordering::Greater | Ordering::Equal)),
            "BETWEEN" => {
                matches!(against(first), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(
                        against(self.values.get(1).map(String::as_str).unwrap_or_default()),
                        Some(Ordering::Less | Ordering::Equal)
                    )
            }
            "IN" => self
                .values
                .iter()
                .any(|value| against(value) == Some(Ordering::Equal)),
            "NOT_IN" => self
                .values
                .iter()
                .all(|value| against(value) != Some(Ordering::Equal)),
            "CONTAINS_TOKEN" => stored
                .to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .any(|token| token == first.to_lowercase().trim_matches('*')),
            _ => false,
        }
    }
}

/// The search request, checked.
struct Search {
    groups: Vec<Vec<Filter>>,
    sort: Option<(String, bool)>,
    query: Option<String>,
    properties: Vec<String>,
    limit: usize,
    after: usize,
}

fn parse_search(body: &str) -> Result<Search, String> {
    let value: Value = serde_json::from_str(body).map_err(|error| {
        format!(
            "Invalid input JSON on line {}, column {}: {error}",
            error.line(),
            error.column()
        )
    })?;
    let mut groups = Vec::new();
    let mut count = 0;
    if let Some(list) = value.get("filterGroups").and_then(Value::as_array) {
        if list.len() > MAX_GROUPS {
            return Err(format!(
                "Too many filter groups ({}): at most {MAX_GROUPS}",
                list.len()
            ));
        }
        for group in list {
            let filters = group
                .get("filters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if filters.len() > MAX_FILTERS_PER_GROUP {
                return Err(format!(
                    "Too many filters in a group ({}): at most {MAX_FILTERS_PER_GROUP}",
                    filters.len()
                ));
            }
            count += filters.len();
            groups.push(
                filters
                    .iter()
                    .map(Filter::parse)
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
    }
    if count > MAX_FILTERS {
        return Err(format!("Too many filters ({count}): at most {MAX_FILTERS}"));
    }
    let sorts = value
        .get("sorts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if sorts.len() > 1 {
        return Err("Only one sort rule is allowed".into());
    }
    let sort = match sorts.first() {
        None => None,
        // The short form: "createdate" or "-createdate".
        Some(Value::String(text)) => Some(match text.strip_prefix('-') {
            Some(name) => (name.to_string(), true),
            None => (text.clone(), false),
        }),
        Some(rule) => {
            let name = rule
                .get("propertyName")
                .and_then(Value::as_str)
                .ok_or("a sort rule has no propertyName")?;
            let descending = match rule.get("direction").and_then(Value::as_str) {
                None | Some("ASCENDING") => false,
                Some("DESCENDING") => true,
                Some(other) => {
                    return Err(format!(
                        "Invalid sort direction {other}: ASCENDING or DESCENDING"
                    ));
                }
            };
            Some((name.to_string(), descending))
        }
    };
    let limit = match value.get("limit") {
        None | Some(Value::Null) => DEFAULT_LIMIT,
        Some(limit) => match limit.as_u64() {
            Some(limit) if (1..=MAX_SEARCH_LIMIT as u64).contains(&limit) => limit as usize,
            _ => {
                return Err(format!(
                    "limit must be between 1 and {MAX_SEARCH_LIMIT}, got {limit}"
                ));
            }
        },
    };
    let after = match value.get("after") {
        None | Some(Value::Null) => 0,
        Some(after) => text_of(after)
            .and_then(|text| text.parse::<usize>().ok())
            .ok_or_else(|| format!("after must be a number, got {after}"))?,
    };
    let properties = match value.get("properties").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.iter().filter_map(text_of).collect(),
        _ => SEARCH_DEFAULTS
            .iter()
            .map(|name| name.to_string())
            .collect(),
    };
    let query = value
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    Ok(Search {
        groups,
        sort,
        query,
        properties,
        limit,
        after,
    })
}

async fn search(
    State(data): State<Arc<HubSpotData>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    if body.chars().count() > MAX_BODY {
        return invalid(&format!(
            "The request body has {} characters: search requests are limited to {MAX_BODY}",
            body.chars().count()
        ));
    }
    let request = match parse_search(&body) {
        Ok(request) => request,
        Err(message) => return invalid(&message),
    };
    if request.after >= SEARCH_RESULT_CAP {
        return invalid(&format!(
            "Paging beyond {SEARCH_RESULT_CAP} results is not supported (after = {}): narrow the filters instead",
            request.after
        ));
    }
    let mut matching: Vec<&Stored> = data
        .deals
        .iter()
        .filter(|deal| {
            request.groups.is_empty()
                || request
                    .groups
                    .iter()
                    .any(|group| group.iter().all(|filter| filter.matches(deal)))
        })
        .filter(|deal| {
            request.query.as_deref().is_none_or(|query| {
                deal.properties
                    .get("dealname")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.to_lowercase().contains(query))
            })
        })
        .collect();
    if let Some((property, descending)) = &request.sort {
        let key = |deal: &Stored| {
            deal.properties
                .get(property)
                .and_then(Value::as_str)
                .map(|text| key_of(property, text))
        };
        matching.sort_by(|a, b| {
            // Unset values sort last either way; ties keep the id order.
            let order = match (key(a), key(b)) {
                (Some(x), Some(y)) => {
                    let order = compare(&x, &y).unwrap_or(Ordering::Equal);
                    if *descending { order.reverse() } else { order }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            order.then(a.id.cmp(&b.id))
        });
    }
    let start = request.after.min(matching.len());
    let end = (start + request.limit).min(matching.len());
    let results: Vec<Value> = matching[start..end]
        .iter()
        .map(|deal| object(deal, &request.properties))
        .collect();
    let mut answer = json!({"total": matching.len(), "results": results});
    if end < matching.len() {
        answer["paging"] = json!({"next": {"after": end.to_string()}});
    }
    super::json(StatusCode::OK, answer.to_string())
}

fn with_limits(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-hubspot-ratelimit-daily", "250000"),
        ("x-hubspot-ratelimit-daily-remaining", "249999"),
        ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
        ("x-hubspot-ratelimit-max", "190"),
        ("x-hubspot-ratelimit-remaining", "189"),
        ("x-hubspot-ratelimit-secondly", "19"),
        ("x-hubspot-ratelimit-secondly-remaining", "18"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn list(
    State(data): State<Arc<HubSpotData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers) {
        return with_limits(refused);
    }
    let query = query_pairs(raw.as_deref());
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let limit = match param("limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIST_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return with_limits(invalid(&format!(
                "limit must be between 1 and {MAX_LIST_LIMIT}"
            )));
        }
    };
    // `after` is the id of the first deal of the page.
    let after = match param("after").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(after)) => after,
        Some(Err(_)) => return with_limits(invalid("after must be a deal id")),
    };
    let properties: Vec<String> = match param("properties") {
        Some(list) if !list.is_empty() => list.split(',').map(str::to_string).collect(),
        _ => LIST_DEFAULTS.iter().map(|name| name.to_string()).collect(),
    };
    let start = data.deals.partition_point(|deal| deal.id < after);
    let end = (start + limit).min(data.deals.len());
    let results: Vec<Value> = data.deals[start..end]
        .iter()
        .map(|deal| object(deal, &properties))
        .collect();
    let mut answer = json!({"results": results});
    if let Some(next) = data.deals.get(end) {
        // The sandbox mounts this API under /hubspot.
        let link = format!(
            "{}/hubspot/{LIST_PATH}?{}",
            origin(&headers),
            super::query_string(&[("limit", limit.to_string()), ("after", next.id.to_string())])
        );
        answer["paging"] = json!({"next": {"after": next.id.to_string(), "link": link}});
    }
    with_limits(super::json(StatusCode::OK, answer.to_string()))
}
