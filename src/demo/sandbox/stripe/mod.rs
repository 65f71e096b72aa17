//! A Stripe-compatible API on loopback, for `scorekeeper demo` and the sync benchmark.
//!
//! This module owns the data the sandbox serves ([`StripeData`]) and the HTTP surface that
//! serves it ([`router`], [`serve`]): the list (and retrieve) endpoints of charges, refunds,
//! invoices, subscriptions and balance transactions, with Stripe's bearer authentication, cursor
//! pagination, `created[...]` filters and error shapes. It follows
//! <https://docs.stripe.com/api/pagination>, <https://docs.stripe.com/api/charges/list>,
//! <https://docs.stripe.com/api/refunds/list>, <https://docs.stripe.com/api/invoices/list>,
//! <https://docs.stripe.com/api/subscriptions/list>,
//! <https://docs.stripe.com/api/balance_transactions/list> and <https://docs.stripe.com/api/errors>.
//!
//! Data comes in two forms. [`StripeData::bakery`] stores a small bakery's year as pre-serialized
//! JSON, so a page is a concatenation of strings. [`StripeData::synthetic_charges`] stores nothing
//! per object: each charge is computed from its index when a page asks for it, its id encodes the
//! index, and a page costs O(page) whatever the list's length.
//!
//! It must not read a clock (callers pass `now`), spawn tasks of its own, listen beyond the
//! listener it is given, or build `serde_json::Value` trees on the request path.
//!
//! The children split the work. `lists` holds each list (stored or synthetic) and cuts pages,
//! `query` parses list query strings, `error` shapes Stripe's errors, and `shapes` writes JSON
//! text. The two generators, `bakery` and `synthetic`, fill the lists and share their random
//! customers and card declines through `draws`. This root keeps the public surface
//! ([`RESOURCES`], [`StripeData`], [`serve`], [`router`]) and the HTTP handlers with their
//! bearer check.

mod bakery;
mod draws;
mod error;
mod lists;
mod query;
mod shapes;
mod synthetic;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use error::{StripeError, json_response};
use lists::{List, StoredObject};
use query::ListQuery;
use synthetic::SyntheticCharges;

/// The list resources the sandbox serves, as they appear in `/v1/<name>` and in
/// [`StripeData::upsert`].
pub const RESOURCES: [&str; 5] = [
    "charges",
    "refunds",
    "invoices",
    "subscriptions",
    "balance_transactions",
];

/// Seconds in a day: the bakery's calendar and the tests count in days.
const DAY: i64 = 86_400;

/// [`RESOURCES`] as a type. The discriminant is the name's index in [`RESOURCES`] and the
/// list's slot in [`StripeData`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resource {
    Charges,
    Refunds,
    Invoices,
    Subscriptions,
    BalanceTransactions,
}

impl Resource {
    const ALL: [Resource; 5] = [
        Resource::Charges,
        Resource::Refunds,
        Resource::Invoices,
        Resource::Subscriptions,
        Resource::BalanceTransactions,
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|resource| resource.name() == name)
    }

    fn slot(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        RESOURCES[self.slot()]
    }

    /// The noun Stripe uses in "No such ...: 'id'" messages.
    fn noun(self) -> &'static str {
        match self {
            Resource::Charges => "charge",
            Resource::Refunds => "refund",
            Resource::Invoices => "invoice",
            Resource::Subscriptions => "subscription",
            Resource::BalanceTransactions => "balance transaction",
        }
    }

    /// Top-level string fields that the list endpoint accepts as equality filters.
    fn filter_fields(self) -> &'static [&'static str] {
        match self {
            Resource::Charges => &["customer", "payment_intent"],
            Resource::Refunds => &["charge", "payment_intent"],
            Resource::Invoices => &["customer", "subscription", "status"],
            Resource::Subscriptions => &["customer", "status"],
            Resource::BalanceTransactions => &["type", "source"],
        }
    }
}

/// What the sandbox serves for each resource: stored JSON objects, or (for charges in the
/// benchmark form) a generator.
///
/// Cloning copies the stored JSON; a synthetic list clones in O(1).
#[derive(Clone, Default)]
pub struct StripeData {
    lists: [List; 5],
}

impl std::fmt::Debug for StripeData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for resource in Resource::ALL {
            map.entry(&resource.name(), &self.lists[resource.slot()].len());
        }
        map.finish()
    }
}

impl StripeData {
    /// No objects at all: every list is empty.
    pub fn empty() -> StripeData {
        StripeData::default()
    }

    /// A bakery over the 12 months before `now`: ~30-60 charges a day with seasonality, ~5% failed, ~2% refunded (refund objects created days after their charge, charges marked refunded/amount_refunded), a few hundred subscriptions (coffee-club) with invoices, balance transactions for charges and refunds. Deterministic for a seed.
    ///
    /// Besides the one-off web orders, each paid subscription invoice has its charge (and
    /// failed attempts have failed charges), and balance transactions include weekly payouts.
    /// Every object is created before `now`. Invoice `period_start`/`period_end` are the billed
    /// month (Stripe itself reports the previous period there for renewals).
    /// It takes about a second in a debug build (0.2 s in release) and holds ~33 MB of JSON.
    ///
    /// # Panics
    ///
    /// Only if `now` lies within a year of the earliest or latest date chrono can represent.
    pub fn bakery(now: DateTime<Utc>, seed: u64) -> StripeData {
        bakery::generate(now, seed)
    }

    /// `n` charges generated on the fly from their index (no per-object storage), ~1.25 KB each, spread evenly between `start` and `end`, all other resources empty. For benchmarks.
    ///
    /// Charge `i` (0-based, oldest first) is created at `start + (end - start) * i / n` and has
    /// the id `ch_bench` followed by `i` in 16 digits. About 3.5% are failed and 1.5% refunded.
    /// `n` is capped at 10^16; `end` before `start` puts every charge at `start`.
    pub fn synthetic_charges(n: u64, start: i64, end: i64) -> StripeData {
        let mut data = StripeData::empty();
        data.lists[Resource::Charges.slot()] =
            List::Synthetic(SyntheticCharges::new(n, start, end));
        data
    }

    /// Replace/insert one object (used by tests to simulate an upstream change such as a charge refunded later); only needed for the stored (non-synthetic) form.
    ///
    /// The object keeps its place in list order by its `created` and `id`.
    ///
    /// # Panics
    ///
    /// If `resource` is not one of [`RESOURCES`], if `object` has no string `id` or no integer
    /// `created`, or if the resource is served by [`StripeData::synthetic_charges`]' generator.
    pub fn upsert(&mut self, resource: &str, object: Value) {
        let resource = Resource::parse(resource)
            .unwrap_or_else(|| panic!("unknown Stripe resource {resource:?}"));
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .expect("an upserted Stripe object has a string id");
        let created = object
            .get("created")
            .and_then(Value::as_i64)
            .expect("an upserted Stripe object has an integer created");
        let attrs = resource
            .filter_fields()
            .iter()
            .filter_map(|field| {
                object
                    .get(*field)
                    .and_then(Value::as_str)
                    .map(|value| (*field, Box::from(value)))
            })
            .collect();
        let stored = StoredObject {
            created,
            id: id.into(),
            json: object.to_string().into(),
            attrs,
        };
        match &mut self.lists[resource.slot()] {
            List::Stored(list) => list.upsert(stored),
            List::Synthetic(_) => panic!("synthetic {} cannot be upserted", resource.name()),
        }
    }

    /// How many objects `resource` holds (`None` for a name not in [`RESOURCES`]).
    pub fn len(&self, resource: &str) -> Option<u64> {
        Resource::parse(resource).map(|resource| self.lists[resource.slot()].len())
    }

    /// One object by id, parsed (`None` if the resource or the id is unknown). Meant for tests
    /// that change an object and [`upsert`](StripeData::upsert) it back.
    pub fn get(&self, resource: &str, id: &str) -> Option<Value> {
        let list = &self.lists[Resource::parse(resource)?.slot()];
        let index = list.index_of(id)?;
        let mut json = String::new();
        list.write(index, &mut json);
        serde_json::from_str(&json).ok()
    }

    /// Every object of `resource` as JSON text, newest first (list order). Meant for tests and
    /// fixtures; for a synthetic list of millions this is as large as it sounds.
    pub fn objects(&self, resource: &str) -> Vec<String> {
        let Some(resource) = Resource::parse(resource) else {
            return Vec::new();
        };
        let list = &self.lists[resource.slot()];
        (0..list.len())
            .rev()
            .map(|index| {
                let mut json = String::new();
                list.write(index, &mut json);
                json
            })
            .collect()
    }
}

#[derive(Clone)]
struct AppState {
    data: Arc<RwLock<StripeData>>,
    api_key: Arc<str>,
}

/// Serves the Stripe-compatible API on `listener` until `shutdown` is cancelled (graceful).
///
/// After cancellation no new connection is accepted, requests in flight finish, idle
/// keep-alive connections are closed, and the future returns once every connection is gone.
///
/// # Errors
///
/// None in practice: axum sleeps and retries when accepting a connection fails, so this
/// returns `Ok(())` after shutdown; the `io::Result` is axum's own signature.
pub async fn serve(
    listener: tokio::net::TcpListener,
    data: Arc<RwLock<StripeData>>,
    api_key: String,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(data, api_key))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// axum Router for the same API (so callers can mount it beside other sandboxes).
///
/// Routes: `GET /v1/{resource}` (list) and `GET /v1/{resource}/{id}` (retrieve) for each of
/// [`RESOURCES`]; anything else is Stripe's 404 "Unrecognized request URL". Every request,
/// including unknown ones, first needs `Authorization: Bearer <api_key>`.
pub fn router(data: Arc<RwLock<StripeData>>, api_key: String) -> Router {
    let state = AppState {
        data,
        api_key: Arc::from(api_key),
    };
    Router::new()
        .route("/v1/{resource}", get(list))
        .route("/v1/{resource}/{id}", get(retrieve))
        .fallback(unrecognized)
        .method_not_allowed_fallback(unrecognized)
        .with_state(state)
}

async fn list(
    State(state): State<AppState>,
    Path(resource): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, StripeError> {
    authorize(&headers, &state.api_key)?;
    let resource = Resource::parse(&resource)
        .ok_or_else(|| StripeError::unrecognized_url(&Method::GET, &format!("/v1/{resource}")))?;
    let query = ListQuery::parse(resource, raw_query.as_deref().unwrap_or(""))?;
    // Readers share the lock; an upsert waits for the pages being written.
    let body = state.data.read().await.list_page(resource, &query)?;
    Ok(json_response(StatusCode::OK, body))
}

async fn retrieve(
    State(state): State<AppState>,
    Path((resource, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, StripeError> {
    authorize(&headers, &state.api_key)?;
    let resource = Resource::parse(&resource).ok_or_else(|| {
        StripeError::unrecognized_url(&Method::GET, &format!("/v1/{resource}/{id}"))
    })?;
    let body = state.data.read().await.retrieve(resource, &id)?;
    Ok(json_response(StatusCode::OK, body))
}

async fn unrecognized(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> StripeError {
    match authorize(&headers, &state.api_key) {
        Err(error) => error,
        Ok(()) => StripeError::unrecognized_url(&method, uri.path()),
    }
}

/// Checks `Authorization: Bearer <key>` against the sandbox's key, as Stripe does.
fn authorize(headers: &HeaderMap, api_key: &str) -> Result<(), StripeError> {
    let provided = headers.get(header::AUTHORIZATION).map(|value| {
        let value = value.to_str().unwrap_or("").trim();
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value)
            .trim()
    });
    match provided {
        None | Some("") => Err(StripeError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). \
             See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."
                .to_owned(),
        )),
        Some(key) if constant_time_eq(key.as_bytes(), api_key.as_bytes()) => Ok(()),
        Some(key) => Err(StripeError::unauthorized(format!("Invalid API Key provided: {}", mask_key(key)))),
    }
}

/// Compares without stopping at the first difference (only the length leaks).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Stripe's way of naming a wrong key: its kind prefix, stars and the last four characters
/// (none for a key too short to hide the rest).
fn mask_key(key: &str) -> String {
    const PREFIXES: [&str; 6] = [
        "sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_",
    ];
    let prefix = PREFIXES
        .iter()
        .find(|prefix| key.starts_with(**prefix))
        .copied()
        .unwrap_or("");
    let rest = &key[prefix.len()..];
    let chars = rest.chars().count();
    if chars < 8 {
        return format!("{prefix}****");
    }
    let tail: String = rest.chars().skip(chars - 4).collect();
    format!("{prefix}****{tail}")
}
