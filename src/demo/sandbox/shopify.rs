//! A Shopify Admin REST API on loopback: the bakery's web shop (order ahead, pick up or have
//! it delivered in Lyon).
//!
//! Serves what the `shopify` preset reads, as Shopify documents it:
//! - Authentication with the `X-Shopify-Access-Token` header; a wrong or missing token is 401
//!   `{"errors": "[API] Invalid API key or access token (unrecognized login or wrong
//!   password)"}`: <https://shopify.dev/docs/api/admin-rest#authentication>
//! - `GET /admin/api/{version}/orders.json` for any `YYYY-MM` version (or `unstable`):
//!   `status` (`open` by default, `closed`, `cancelled`, `any`), `limit` (50 by default, 250
//!   at most), `updated_at_min` / `updated_at_max` / `created_at_min` / `created_at_max`,
//!   newest first: <https://shopify.dev/docs/api/admin-rest/latest/resources/order#get-orders?status=any>
//! - Cursor pagination in the `Link` header (`rel="next"`, `rel="previous"`) with an opaque
//!   `page_info` that carries the first request's filters; a request with `page_info` may
//!   add only `limit` and `fields`: <https://shopify.dev/docs/api/admin-rest/usage/pagination>
//! - `X-Shopify-Shop-Api-Call-Limit` on every answer (the leaky bucket; the sandbox never
//!   runs it dry): <https://shopify.dev/docs/api/usage/rate-limits>
//!
//! The data: about 600 orders over the year, busier at Christmas and Epiphany, from a pool
//! of customers of whom many come back; a few cancelled (refunded or voided), a few partly
//! refunded, and some handed over only partly fulfilled (an item sold out), more often when
//! the kitchen is stretched. Money fields are strings, as Shopify sends them.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::{
    Person, SHOPIFY_ACCESS_TOKEN, Scenario, base64_decode, base64_encode, constant_time_eq,
    during_opening_hours, lyon, origin, parse_time, poisson, query_pairs, query_string,
};

/// The largest page Shopify serves.
const MAX_LIMIT: usize = 250;
const DEFAULT_LIMIT: usize = 50;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// One order and the fields it is listed and filtered by.
struct Order {
    id: i64,
    created: i64,
    updated: i64,
    closed: bool,
    cancelled: bool,
    json: String,
}

/// The shop's orders, oldest first.
pub struct ShopifyData {
    orders: Vec<Order>,
}

/// Products: title, SKU, price in cents, and the month it is sold in (0: all year).
const PRODUCTS: [(&str, &str, i64, u32); 9] = [
    ("Sourdough loaf", "SD-1", 650, 0),
    ("Croissant box (6)", "CR-6", 900, 0),
    ("Pain au chocolat box (6)", "PC-6", 1_020, 0),
    ("Apple tart", "TA-1", 1_800, 0),
    ("Birthday cake", "BC-1", 3_500, 0),
    ("Coffee beans 500 g", "CB-5", 1_400, 0),
    ("Brioche", "BR-1", 750, 0),
    ("Galette des rois", "GR-1", 2_400, 1),
    ("Buche de Noel", "BN-1", 3_200, 12),
];

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl ShopifyData {
    /// The web shop's orders over the scenario's year.
    pub fn bakery(scenario: &Scenario) -> ShopifyData {
        use chrono::Datelike;
        let mut rng = scenario.rng(0x73686f70);
        let now = scenario.now;
        let mut customers: Vec<(i64, Person, i64)> = Vec::new();
        let mut orders = Vec::new();
        for day in scenario.days() {
            let month = chrono::DateTime::from_timestamp(day, 0)
                .unwrap_or_default()
                .month();
            for _ in 0..poisson(&mut rng, 1.7 * scenario.seasonality(day)) {
                let created = during_opening_hours(&mut rng, day);
                if created > now - HOUR {
                    continue;
                }
                let number = 1_001 + orders.len() as i64;
                let id = 5_800_000_000 + number * 1_031;
                // Returning customers place almost half of the orders.
                let customer = if !customers.is_empty() && rng.f64() < 0.45 {
                    rng.usize(..customers.len())
                } else {
                    let index = customers.len();
                    let person = Person::generate(&mut rng, index);
                    customers.push((7_300_000_000 + index as i64 * 17, person, created));
                    index
                };
                let mut lines = Vec::new();
                let mut subtotal = 0;
                for line in 0..1 + rng.usize(..3) {
                    let available: Vec<_> = PRODUCTS
                        .iter()
                        .filter(|product| product.3 == 0 || product.3 == month)
                        .collect();
                    let (title, sku, price, _) = available[rng.usize(..available.len())];
                    let quantity = 1 + rng.i64(0..3);
                    subtotal += price * quantity;
                    lines.push(json!({
                        "id": id * 10 + line as i64,
                        "title": title,
                        "name": title,
                        "sku": sku,
                        "quantity": quantity,
                        "price": money(*price),
                        "fulfillable_quantity": 0,
                        "product_id": 8_100_000_000_i64 + sku.len() as i64 * 1_000 + *price,
                        "requires_shipping": true,
                        "taxable": true,
                        "gift_card": false,
                        "total_discount": "0.00",
                    }));
                }
                let club = rng.f64() < 0.1;
                let discount = if club { subtotal / 10 } else { 0 };
                let delivery = rng.f64() < 0.4;
                let shipping = if delivery { 490 } else { 0 };
                let total = subtotal - discount + shipping;
                let tax = total * 55 / 1_055;

                let mut updated = created + 30;
                let mut financial = "paid";
                let mut fulfillment: Option<&str> = None;
                let mut fulfillments = Vec::new();
                let mut refunds = Vec::new();
                let mut current_total = total;
                let mut cancelled_at = None;
                let mut cancel_reason = None;
                let mut closed_at = None;
                let strain = scenario.strain(created);
                if rng.f64() < 0.04 {
                    let at = (created + rng.i64(HOUR..20 * HOUR)).min(now - 60);
                    let reason = ["customer", "inventory", "declined"][rng.usize(..3)];
                    financial = if reason == "declined" {
                        "voided"
                    } else {
                        "refunded"
                    };
                    cancelled_at = Some(at);
                    cancel_reason = Some(reason);
                    closed_at = Some(at);
                    current_total = 0;
                    updated = at;
                } else {
                    let handed_over = created + rng.i64(2 * HOUR..30 * HOUR);
                    if handed_over <= now {
                        let partial = rng.f64() < 0.03 + 0.08 * strain;
                        fulfillment = Some(if partial { "partial" } else { "fulfilled" });
                        fulfillments.push(json!({
                            "id": id + 7,
                            "order_id": id,
                            "status": "success",
                            "created_at": lyon(handed_over),
                            "updated_at": lyon(handed_over),
                            "service": "manual",
                            "tracking_company": if delivery { Some("Coursier Lyon") } else { None },
                            "name": format!("#{number}.1"),
                        }));
                        updated = handed_over;
                        if !partial {
                            closed_at = Some(handed_over);
                        }
                        let refunded_at = handed_over + rng.i64(DAY..3 * DAY);
                        if rng.f64() < 0.04 && refunded_at <= now {
                            let amount = (subtotal / 3).max(100);
                            current_total -= amount;
                            financial = "partially_refunded";
                            refunds.push(json!({
                                "id": id + 11,
                                "order_id": id,
                                "created_at": lyon(refunded_at),
                                "processed_at": lyon(refunded_at),
                                "note": "Damaged on delivery",
                                "restock": false,
                                "transactions": [{"id": id + 13, "kind": "refund", "status": "success", "amount": money(amount), "currency": "EUR"}],
                            }));
                            updated = refunded_at;
                        }
                    }
                }
                let (customer_id, person, since) = &customers[customer];
                let discount_codes = if club {
                    json!([{"code": "CLUB10", "amount": money(discount), "type": "percentage"}])
                } else {
                    json!([])
                };
                let shipping_lines = if delivery {
                    json!([{"id": id + 3, "title": "Local delivery", "code": "LOCAL", "price": money(shipping)}])
                } else {
                    json!([])
                };
                let amounts = json!({
                    "discount_codes": discount_codes,
                    "total_line_items_price": money(subtotal),
                    "subtotal_price": money(subtotal - discount),
                    "total_discounts": money(discount),
                    "total_tax": money(tax),
                    "total_price": money(total),
                    "current_total_price": money(current_total),
                    "current_subtotal_price": money((current_total - shipping).max(0)),
                    "current_total_tax": money(current_total * 55 / 1_055),
                    "current_total_discounts": money(discount),
                    "total_weight": 0,
                    "shipping_lines": shipping_lines,
                });
                let customer_json = json!({
                        "id": customer_id,
                        "admin_graphql_api_id": format!("gid://shopify/Customer/{customer_id}"),
                        "email": person.email,
                        "first_name": person.first,
                        "last_name": person.last,
                        "created_at": lyon(*since),
                        "updated_at": lyon(*since),
                        "state": "enabled",
                        "verified_email": true,
                        "tax_exempt": false,
                        "currency": "EUR",
                        "tags": "",
                        "note": null,
                        "phone": null,
                });
                let mut order = json!({
                    "id": id,
                    "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
                    "name": format!("#{number}"),
                    "number": number - 1_000,
                    "order_number": number,
                    "confirmation_number": format!("BKR{:06}", id % 1_000_000),
                    "token": format!("{:032x}", id.wrapping_mul(2_654_435_761)),
                    "email": person.email,
                    "contact_email": person.email,
                    "created_at": lyon(created),
                    "updated_at": lyon(updated),
                    "processed_at": lyon(created),
                    "cancelled_at": cancelled_at.map(lyon),
                    "cancel_reason": cancel_reason,
                    "closed_at": closed_at.map(lyon),
                    "confirmed": true,
                    "test": false,
                    "currency": "EUR",
                    "presentment_currency": "EUR",
                    "financial_status": financial,
                    "fulfillment_status": fulfillment,
                    "source_name": "web",
                    "taxes_included": true,
                    "buyer_accepts_marketing": club,
                    "tags": if club { "coffee-club" } else { "" },
                    "note": null,
                    "line_items": lines,
                    "fulfillments": fulfillments,
                    "refunds": refunds,
                    "customer": customer_json,
                });
                if let (Some(order), serde_json::Value::Object(amounts)) =
                    (order.as_object_mut(), amounts)
                {
                    order.extend(amounts);
                }
                orders.push(Order {
                    id,
                    created,
                    updated,
                    closed: closed_at.is_some(),
                    cancelled: cancelled_at.is_some(),
                    json: order.to_string(),
                });
            }
        }
        ShopifyData { orders }
    }

    /// How many orders the shop holds.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// True when the shop has no order.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

/// The routes, under the caller's prefix.
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(ShopifyData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<ShopifyData>) -> Router {
    Router::new()
        .route("/admin/api/{version}/orders.json", get(orders))
        .fallback(not_found)
        .with_state(data)
}

fn errors(status: StatusCode, errors: serde_json::Value) -> Response {
    let mut response = super::json(status, json!({ "errors": errors }).to_string());
    response.headers_mut().insert(
        "x-shopify-shop-api-call-limit",
        HeaderValue::from_static("1/40"),
    );
    response
}

fn authorize(headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get("x-shopify-access-token")
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    if constant_time_eq(token, SHOPIFY_ACCESS_TOKEN.as_bytes()) {
        Ok(())
    } else {
        Err(errors(
            StatusCode::UNAUTHORIZED,
            json!("[API] Invalid API key or access token (unrecognized login or wrong password)"),
        ))
    }
}

async fn not_found(headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    errors(StatusCode::NOT_FOUND, json!("Not Found"))
}

/// The filters of one listing; `page_info` carries them from page to page.
#[derive(Clone, serde::Serialize, serde::Deserialize, Default)]
struct Filters {
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_max: Option<i64>,
    /// Orders with an id below this one (the page after); above it going back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_id: Option<i64>,
}

impl Filters {
    fn matches(&self, order: &Order) -> bool {
        let status = match self.status.as_str() {
            "any" => true,
            "closed" => order.closed,
            "cancelled" => order.cancelled,
            _ => !order.closed && !order.cancelled,
        };
        status
            && self.updated_min.is_none_or(|min| order.updated >= min)
            && self.updated_max.is_none_or(|max| order.updated <= max)
            && self.created_min.is_none_or(|min| order.created >= min)
            && self.created_max.is_none_or(|max| order.created <= max)
    }

    fn token(&self) -> String {
        base64_encode(
            serde_json::to_string(self)
                .expect("plain fields always serialize")
                .as_bytes(),
        )
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string()
    }
}

fn read_filters(query: &[(String, String)]) -> Result<Filters, Response> {
    let mut filters = Filters {
        status: "open".into(),
        ..Filters::default()
    };
    for (name, value) in query {
        let time = || {
            parse_time(value).ok_or_else(|| {
                errors(
                    StatusCode::BAD_REQUEST,
                    json!({ name.as_str(): ["is not a valid date-time (ISO 8601)"] }),
                )
            })
        };
        match name.as_str() {
            "status" if matches!(value.as_str(), "open" | "closed" | "cancelled" | "any") => {
                filters.status = value.clone();
            }
            "status" => {
                return Err(errors(
                    StatusCode::BAD_REQUEST,
                    json!({"status": ["must be one of open, closed, cancelled, any"]}),
                ));
            }
            "updated_at_min" => filters.updated_min = Some(time()?),
            "updated_at_max" => filters.updated_max = Some(time()?),
            "created_at_min" => filters.created_min = Some(time()?),
            "created_at_max" => filters.created_max = Some(time()?),
            _ => {}
        }
    }
    Ok(filters)
}

async fn orders(
    State(data): State<Arc<ShopifyData>>,
    Path(version): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    let well_formed = version == "unstable"
        || (version.len() == 7
            && version.as_bytes()[4] == b'-'
            && version
                .bytes()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit()));
    if !well_formed {
        return errors(StatusCode::NOT_FOUND, json!("Not Found"));
    }
    let query = query_pairs(raw.as_deref());
    let limit = match query.iter().find(|(name, _)| name == "limit") {
        None => DEFAULT_LIMIT,
        Some((_, text)) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => {
                return errors(
                    StatusCode::BAD_REQUEST,
                    json!({"limit": [format!("must be between 1 and {MAX_LIMIT}")]}),
                );
            }
        },
    };
    let filters = match query.iter().find(|(name, _)| name == "page_info") {
        Some((_, token)) => {
            if let Some((other, _)) = query
                .iter()
                .find(|(name, _)| !matches!(name.as_str(), "page_info" | "limit" | "fields"))
            {
                return errors(
                    StatusCode::BAD_REQUEST,
                    json!({"page_info": [format!("cannot be combined with {other}: only limit and fields may accompany page_info")]}),
                );
            }
            match base64_decode(token).and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
                Some(filters) => filters,
                None => {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        json!({"page_info": ["Invalid value."]}),
                    );
                }
            }
        }
        None => match read_filters(&query) {
            Ok(filters) => filters,
            Err(response) => return response,
        },
    };

    // Newest first (by id), the page cut after `before_id` or before `after_id`.
    let matching: Vec<&Order> = data
        .orders
        .iter()
        .rev()
        .filter(|order| filters.matches(order))
        .collect();
    let (start, end) = match (filters.before_id, filters.after_id) {
        (Some(before), _) => {
            let start = matching.partition_point(|order| order.id >= before);
            (start, (start + limit).min(matching.len()))
        }
        (None, Some(after)) => {
            let end = matching.partition_point(|order| order.id > after);
            (end.saturating_sub(limit), end)
        }
        (None, None) => (0, limit.min(matching.len())),
    };
    let page = &matching[start..end];
    let path = format!(
        "{}/shopify/admin/api/{version}/orders.json",
        origin(&headers)
    );
    let link = |filters: Filters, rel: &str| {
        format!(
            "<{path}?{}>; rel=\"{rel}\"",
            query_string(&[("limit", limit.to_string()), ("page_info", filters.token())])
        )
    };
    let mut links = Vec::new();
    if let (true, Some(first)) = (start > 0, page.first()) {
        links.push(link(
            Filters {
                before_id: None,
                after_id: Some(first.id),
                ..filters.clone()
            },
            "previous",
        ));
    }
    if let (true, Some(last)) = (end < matching.len(), page.last()) {
        links.push(link(
            Filters {
                before_id: Some(last.id),
                after_id: None,
                ..filters.clone()
            },
            "next",
        ));
    }
    let mut body = String::from(r#"{"orders":["#);
    for (index, order) in page.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&order.json);
    }
    body.push_str("]}");
    let mut response = super::json(StatusCode::OK, body);
    let response_headers = response.headers_mut();
    response_headers.insert(
        "x-shopify-shop-api-call-limit",
        HeaderValue::from_static("1/40"),
    );
    if let Ok(value) = HeaderValue::from_str(&version) {
        response_headers.insert("x-shopify-api-version", value);
    }
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        response_headers.insert(header::LINK, value);
    }
    response
}
