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

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Datelike, Months, NaiveTime, Utc};
use serde_json::Value;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

/// The list resources the sandbox serves, as they appear in `/v1/<name>` and in
/// [`StripeData::upsert`].
pub const RESOURCES: [&str; 5] = [
    "charges",
    "refunds",
    "invoices",
    "subscriptions",
    "balance_transactions",
];

const DAY: i64 = 86_400;
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
const ACCOUNT_NAME: &str = "Maison Rosier";
const RECEIPT_URL_PREFIX: &str =
    "https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8xUm9zaWVyQmFrZXJ5";

// ---------------------------------------------------------------------------------------------
// Resources and their storage
// ---------------------------------------------------------------------------------------------

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

/// One stored object: its sort key, its JSON text and the fields lists can filter on.
#[derive(Clone, Debug)]
struct StoredObject {
    created: i64,
    id: Box<str>,
    json: Box<str>,
    attrs: Vec<(&'static str, Box<str>)>,
}

/// Objects kept as JSON text, sorted by `(created, id)` ascending: the reverse of list order, so
/// that an index grows with time exactly as a synthetic index does and one page algorithm
/// serves both forms.
#[derive(Clone, Debug, Default)]
struct StoredList {
    objects: Vec<StoredObject>,
    created_by_id: HashMap<Box<str>, i64>,
}

impl StoredList {
    fn from_objects(mut objects: Vec<StoredObject>) -> Self {
        objects.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        objects.dedup_by(|later, earlier| later.id == earlier.id);
        let created_by_id = objects.iter().map(|o| (o.id.clone(), o.created)).collect();
        StoredList {
            objects,
            created_by_id,
        }
    }

    fn search(&self, created: i64, id: &str) -> Result<usize, usize> {
        self.objects
            .binary_search_by(|o| (o.created, &*o.id).cmp(&(created, id)))
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        let created = *self.created_by_id.get(id)?;
        self.search(created, id).ok()
    }

    fn upsert(&mut self, object: StoredObject) {
        if let Some(at) = self.index_of(&object.id) {
            self.objects.remove(at);
        }
        let at = match self.search(object.created, &object.id) {
            Ok(at) | Err(at) => at,
        };
        self.created_by_id.insert(object.id.clone(), object.created);
        self.objects.insert(at, object);
    }
}

/// Charges computed from their index: nothing is stored per object.
#[derive(Clone, Debug)]
struct SyntheticCharges {
    count: u64,
    start: i64,
    span: i64,
    card_year: i32,
}

/// Synthetic ids are `ch_bench` plus the index in 16 zero-padded digits, so that string order
/// is index order (ties in `created` then sort by id as Stripe's list order needs) and a cursor
/// decodes to its index without a lookup.
const SYNTHETIC_CHARGE_PREFIX: &str = "ch_bench";
const SYNTHETIC_INDEX_DIGITS: usize = 16;
const SYNTHETIC_MAX_COUNT: u64 = 10_000_000_000_000_000;
const SYNTHETIC_CUSTOMERS: u32 = 20_000;

impl SyntheticCharges {
    fn created(&self, index: u64) -> i64 {
        let offset = i128::from(self.span) * i128::from(index) / i128::from(self.count.max(1));
        self.start + offset as i64
    }

    fn index_of(&self, id: &str) -> Option<u64> {
        let digits = id.strip_prefix(SYNTHETIC_CHARGE_PREFIX)?;
        if digits.len() != SYNTHETIC_INDEX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|index| *index < self.count)
    }

    fn draw(index: u64) -> SyntheticDraw {
        let mut rng =
            fastrand::Rng::with_seed(index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0005_EED5);
        let customer = rng.u32(..SYNTHETIC_CUSTOMERS);
        let amount = i64::from(rng.u32(45..=950)) * 10;
        let roll = rng.u32(..1000);
        let failure = (roll < 35).then(|| Failure::pick(&mut rng));
        let amount_refunded = if (35..50).contains(&roll) { amount } else { 0 };
        let risk_score = risk_score(&mut rng, failure);
        let mut receipt_token = String::with_capacity(40);
        for _ in 0..40 {
            receipt_token.push(rng.alphanumeric());
        }
        SyntheticDraw {
            customer,
            amount,
            amount_refunded,
            failure,
            risk_score,
            receipt_token,
        }
    }

    fn customer_id(customer: u32) -> String {
        format!("cus_bench{customer:09}")
    }

    fn attr(&self, index: u64, field: &str) -> Option<String> {
        match field {
            "customer" => Some(Self::customer_id(Self::draw(index).customer)),
            "payment_intent" => Some(format!("pi_bench{index:016}")),
            _ => None,
        }
    }

    fn write(&self, index: u64, out: &mut String) {
        let draw = Self::draw(index);
        let mut customer_rng = fastrand::Rng::with_seed(u64::from(draw.customer) ^ 0xC057_0000);
        let customer = Customer::generate(
            &mut customer_rng,
            Self::customer_id(draw.customer),
            format!("pm_bench{:016}", draw.customer),
            self.card_year,
        );
        let id = format!("{SYNTHETIC_CHARGE_PREFIX}{index:016}");
        let balance_transaction = format!("txn_bench{index:016}");
        let payment_intent = format!("pi_bench{index:016}");
        let order_id = (100_000 + index).to_string();
        let description = format!("Order {order_id}");
        write_charge(
            out,
            &ChargeDoc {
                id: &id,
                amount: draw.amount,
                amount_refunded: draw.amount_refunded,
                created: self.created(index),
                failure: draw.failure,
                customer: &customer,
                description: &description,
                balance_transaction: draw
                    .failure
                    .is_none()
                    .then_some(balance_transaction.as_str()),
                payment_intent: &payment_intent,
                invoice: None,
                order_id: Some(&order_id),
                risk_score: draw.risk_score,
                receipt_token: &draw.receipt_token,
            },
        );
    }
}

struct SyntheticDraw {
    customer: u32,
    amount: i64,
    amount_refunded: i64,
    failure: Option<Failure>,
    risk_score: i64,
    receipt_token: String,
}

#[derive(Clone, Debug)]
enum List {
    Stored(StoredList),
    Synthetic(SyntheticCharges),
}

impl Default for List {
    fn default() -> Self {
        List::Stored(StoredList::default())
    }
}

impl List {
    fn len(&self) -> u64 {
        match self {
            List::Stored(list) => list.objects.len() as u64,
            List::Synthetic(synthetic) => synthetic.count,
        }
    }

    fn created(&self, index: u64) -> i64 {
        match self {
            List::Stored(list) => list.objects[index as usize].created,
            List::Synthetic(synthetic) => synthetic.created(index),
        }
    }

    fn index_of(&self, id: &str) -> Option<u64> {
        match self {
            List::Stored(list) => list.index_of(id).map(|index| index as u64),
            List::Synthetic(synthetic) => synthetic.index_of(id),
        }
    }

    fn attr(&self, index: u64, field: &str) -> Option<Cow<'_, str>> {
        match self {
            List::Stored(list) => list.objects[index as usize]
                .attrs
                .iter()
                .find(|(name, _)| *name == field)
                .map(|(_, value)| Cow::Borrowed(&**value)),
            List::Synthetic(synthetic) => synthetic.attr(index, field).map(Cow::Owned),
        }
    }

    fn write(&self, index: u64, out: &mut String) {
        match self {
            List::Stored(list) => out.push_str(&list.objects[index as usize].json),
            List::Synthetic(synthetic) => synthetic.write(index, out),
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
        let mut bakery = Bakery::new(now.timestamp(), now.year(), seed);
        bakery.one_off_orders();
        bakery.subscriptions();
        bakery.refunds();
        bakery.balance_transactions();
        bakery.into_data()
    }

    /// `n` charges generated on the fly from their index (no per-object storage), ~1.25 KB each, spread evenly between `start` and `end`, all other resources empty. For benchmarks.
    ///
    /// Charge `i` (0-based, oldest first) is created at `start + (end - start) * i / n` and has
    /// the id `ch_bench` followed by `i` in 16 digits. About 3.5% are failed and 1.5% refunded.
    /// `n` is capped at 10^16; `end` before `start` puts every charge at `start`.
    pub fn synthetic_charges(n: u64, start: i64, end: i64) -> StripeData {
        let card_year = DateTime::from_timestamp(start, 0).map_or(2026, |at| at.year());
        let mut data = StripeData::empty();
        data.lists[Resource::Charges.slot()] = List::Synthetic(SyntheticCharges {
            count: n.min(SYNTHETIC_MAX_COUNT - 1),
            start,
            span: end.saturating_sub(start).max(0),
            card_year,
        });
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

    /// The body of one list response, or the Stripe error to send instead.
    fn list_page(&self, resource: Resource, query: &ListQuery) -> Result<String, StripeError> {
        let list = &self.lists[resource.slot()];
        let len = list.len();
        // `created` is non-decreasing in the index, so the created range is an index range.
        let mut lo = query
            .created_min
            .map_or(0, |min| partition_point(len, |i| list.created(i) < min));
        let mut hi = query
            .created_max
            .map_or(len, |max| partition_point(len, |i| list.created(i) <= max));
        let backwards = match &query.cursor {
            Some(Cursor::StartingAfter(id)) => {
                let at = list.index_of(id).ok_or_else(|| {
                    StripeError::no_such(resource, id, "starting_after", StatusCode::BAD_REQUEST)
                })?;
                hi = hi.min(at);
                false
            }
            Some(Cursor::EndingBefore(id)) => {
                let at = list.index_of(id).ok_or_else(|| {
                    StripeError::no_such(resource, id, "ending_before", StatusCode::BAD_REQUEST)
                })?;
                lo = lo.max(at + 1);
                true
            }
            None => false,
        };
        let matches = |index: u64| {
            query
                .filters
                .iter()
                .all(|filter| filter.matches(list.attr(index, filter.field).as_deref()))
        };

        // Without filters every index matches, so the walk touches limit + 1 indexes: O(page).
        let mut picked = Vec::with_capacity(query.limit);
        let mut has_more = false;
        if backwards {
            // `ending_before` returns the objects just newer than the cursor, still newest
            // first; `has_more` then tells whether even newer ones exist.
            for index in lo..hi {
                if matches(index) {
                    if picked.len() == query.limit {
                        has_more = true;
                        break;
                    }
                    picked.push(index);
                }
            }
            picked.reverse();
        } else {
            for index in (lo..hi).rev() {
                if matches(index) {
                    if picked.len() == query.limit {
                        has_more = true;
                        break;
                    }
                    picked.push(index);
                }
            }
        }

        let mut body = String::with_capacity(96 + picked.len() * 1_400);
        body.push_str(r#"{"object":"list","data":["#);
        for (n, index) in picked.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            list.write(*index, &mut body);
        }
        body.push_str(r#"],"has_more":"#);
        body.push_str(if has_more { "true" } else { "false" });
        body.push_str(r#","url":"/v1/"#);
        body.push_str(resource.name());
        body.push_str("\"}");
        Ok(body)
    }

    fn retrieve(&self, resource: Resource, id: &str) -> Result<String, StripeError> {
        let list = &self.lists[resource.slot()];
        let index = list
            .index_of(id)
            .ok_or_else(|| StripeError::no_such(resource, id, "id", StatusCode::NOT_FOUND))?;
        let mut body = String::with_capacity(1_400);
        list.write(index, &mut body);
        Ok(body)
    }
}

/// The first index in `0..len` for which `is_before` is false (`is_before` must be monotone).
fn partition_point(len: u64, mut is_before: impl FnMut(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if is_before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

// ---------------------------------------------------------------------------------------------
// Query parsing
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Cursor {
    StartingAfter(String),
    EndingBefore(String),
}

/// `field` must (or, with `exclude`, must not) equal one of `values`.
#[derive(Debug, PartialEq, Eq)]
struct Filter {
    field: &'static str,
    values: Vec<String>,
    exclude: bool,
}

impl Filter {
    fn matches(&self, value: Option<&str>) -> bool {
        let hit = value.is_some_and(|value| self.values.iter().any(|wanted| wanted == value));
        hit != self.exclude
    }
}

#[derive(Debug, PartialEq, Eq)]
struct ListQuery {
    limit: usize,
    cursor: Option<Cursor>,
    /// Inclusive bounds on `created`.
    created_min: Option<i64>,
    created_max: Option<i64>,
    filters: Vec<Filter>,
}

const SUBSCRIPTION_STATUSES: [&str; 10] = [
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "trialing",
    "paused",
    "all",
    "ended",
];
const INVOICE_STATUSES: [&str; 5] = ["draft", "open", "paid", "uncollectible", "void"];

impl ListQuery {
    /// Parses a raw query string. axum's `Query` cannot map Stripe's bracketed keys
    /// (`created[gte]`), so keys and values are url-decoded here. Unknown parameters are
    /// ignored (real Stripe rejects them) so that clients sending `expand[]` and the like work.
    fn parse(resource: Resource, raw: &str) -> Result<ListQuery, StripeError> {
        let mut query = ListQuery {
            limit: DEFAULT_LIMIT,
            cursor: None,
            created_min: None,
            created_max: None,
            filters: Vec::new(),
        };
        let mut starting_after = None;
        let mut ending_before = None;
        let mut status = None;
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key);
            let value = percent_decode(value);
            match &*key {
                "limit" => {
                    let limit: i64 = parse_integer(&value, "limit")?;
                    if !(1..=MAX_LIMIT as i64).contains(&limit) {
                        return Err(StripeError::invalid(
                            "Invalid limit: must be between 1 and 100",
                            "limit",
                        ));
                    }
                    query.limit = limit as usize;
                }
                "starting_after" if !value.is_empty() => starting_after = Some(value.into_owned()),
                "ending_before" if !value.is_empty() => ending_before = Some(value.into_owned()),
                "created" => {
                    let at = parse_integer(&value, "created")?;
                    query.raise_min(at);
                    query.lower_max(at);
                }
                "created[gte]" => query.raise_min(parse_integer(&value, "created[gte]")?),
                "created[gt]" => {
                    query.raise_min(parse_integer(&value, "created[gt]")?.saturating_add(1))
                }
                "created[lte]" => query.lower_max(parse_integer(&value, "created[lte]")?),
                "created[lt]" => {
                    query.lower_max(parse_integer(&value, "created[lt]")?.saturating_sub(1))
                }
                "status" if matches!(resource, Resource::Subscriptions | Resource::Invoices) => {
                    status = Some(value.into_owned());
                }
                other => {
                    if let Some(field) = resource
                        .filter_fields()
                        .iter()
                        .find(|field| **field == other)
                    {
                        query.filters.push(Filter {
                            field,
                            values: vec![value.into_owned()],
                            exclude: false,
                        });
                    }
                }
            }
        }
        query.cursor = match (starting_after, ending_before) {
            (Some(_), Some(_)) => {
                return Err(StripeError::invalid(
                    "You may only specify one of these parameters: ending_before, starting_after.",
                    "starting_after",
                ));
            }
            (Some(id), None) => Some(Cursor::StartingAfter(id)),
            (None, Some(id)) => Some(Cursor::EndingBefore(id)),
            (None, None) => None,
        };
        match resource {
            // Stripe lists only subscriptions that have not ended unless asked for a status.
            Resource::Subscriptions => match status.as_deref() {
                None => query.filters.push(Filter {
                    field: "status",
                    values: ended_statuses(),
                    exclude: true,
                }),
                Some("all") => {}
                Some("ended") => query.filters.push(Filter {
                    field: "status",
                    values: ended_statuses(),
                    exclude: false,
                }),
                Some(status) if SUBSCRIPTION_STATUSES.contains(&status) => {
                    query.filters.push(Filter {
                        field: "status",
                        values: vec![status.to_owned()],
                        exclude: false,
                    });
                }
                Some(_) => {
                    return Err(StripeError::invalid(
                        format!(
                            "Invalid status: must be one of {}",
                            SUBSCRIPTION_STATUSES.join(", ")
                        ),
                        "status",
                    ));
                }
            },
            Resource::Invoices => match status {
                None => {}
                Some(status) if INVOICE_STATUSES.contains(&status.as_str()) => {
                    query.filters.push(Filter {
                        field: "status",
                        values: vec![status],
                        exclude: false,
                    });
                }
                Some(_) => {
                    return Err(StripeError::invalid(
                        format!(
                            "Invalid status: must be one of {}",
                            INVOICE_STATUSES.join(", ")
                        ),
                        "status",
                    ));
                }
            },
            _ => {}
        }
        Ok(query)
    }

    fn raise_min(&mut self, min: i64) {
        self.created_min = Some(self.created_min.map_or(min, |old| old.max(min)));
    }

    fn lower_max(&mut self, max: i64) {
        self.created_max = Some(self.created_max.map_or(max, |old| old.min(max)));
    }
}

fn ended_statuses() -> Vec<String> {
    vec!["canceled".to_owned(), "incomplete_expired".to_owned()]
}

fn parse_integer(value: &str, param: &str) -> Result<i64, StripeError> {
    value
        .trim()
        .parse()
        .map_err(|_| StripeError::invalid(format!("Invalid integer: {}", clip(value)), param))
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte; a broken
/// escape is kept as it is, and invalid UTF-8 becomes U+FFFD.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
            {
                (Some(high), Some(low)) => {
                    decoded.push(high << 4 | low);
                    i += 2;
                }
                _ => decoded.push(b'%'),
            },
            byte => decoded.push(byte),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// User text echoed in an error message, cut to a sane length.
fn clip(text: &str) -> &str {
    match text.char_indices().nth(100) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A Stripe error response: `{"error":{"code"?,"doc_url"?,"message","param"?,"type"}}`.
#[derive(Debug)]
struct StripeError {
    status: StatusCode,
    message: String,
    param: Option<String>,
    code: Option<&'static str>,
}

impl StripeError {
    fn invalid(message: impl Into<String>, param: &str) -> Self {
        StripeError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: Some(param.to_owned()),
            code: None,
        }
    }

    fn no_such(resource: Resource, id: &str, param: &str, status: StatusCode) -> Self {
        StripeError {
            status,
            message: format!("No such {}: '{}'", resource.noun(), clip(id)),
            param: Some(param.to_owned()),
            code: Some("resource_missing"),
        }
    }

    fn unauthorized(message: String) -> Self {
        StripeError {
            status: StatusCode::UNAUTHORIZED,
            message,
            param: None,
            code: None,
        }
    }

    fn unrecognized_url(method: &Method, path: &str) -> Self {
        StripeError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                clip(path)
            ),
            param: None,
            code: None,
        }
    }
}

impl IntoResponse for StripeError {
    fn into_response(self) -> Response {
        let mut error = serde_json::Map::new();
        if let Some(code) = self.code {
            error.insert("code".into(), code.into());
            error.insert(
                "doc_url".into(),
                format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )
                .into(),
            );
        }
        error.insert("message".into(), self.message.into());
        if let Some(param) = self.param {
            error.insert("param".into(), param.into());
        }
        error.insert("type".into(), "invalid_request_error".into());
        json_response(
            self.status,
            serde_json::json!({ "error": error }).to_string(),
        )
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// JSON writing
// ---------------------------------------------------------------------------------------------

/// Writes one JSON object straight into a string; keys are trusted literals, values escaped.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    fn close(self) {
        self.out.push('}');
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_str(self.out, value);
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.null(key),
        }
    }

    fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        let _ = write!(self.out, "{value}");
    }

    fn opt_int(&mut self, key: &str, value: Option<i64>) {
        match value {
            Some(value) => self.int(key, value),
            None => self.null(key),
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn null(&mut self, key: &str) {
        self.key(key);
        self.out.push_str("null");
    }

    /// A literal JSON value such as `{}` or `[]`.
    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    fn obj(&mut self, key: &str, fill: impl FnOnce(&mut Obj<'_>)) {
        self.key(key);
        let mut child = Obj::open(&mut *self.out);
        fill(&mut child);
        child.close();
    }

    /// An array holding exactly one object.
    fn array_of_one(&mut self, key: &str, fill: impl FnOnce(&mut Obj<'_>)) {
        self.key(key);
        self.out.push('[');
        let mut child = Obj::open(&mut *self.out);
        fill(&mut child);
        child.close();
        self.out.push(']');
    }
}

fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    if !value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(value);
    } else {
        for ch in value.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                ch if (ch as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", ch as u32);
                }
                ch => out.push(ch),
            }
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// Object shapes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    GenericDecline,
    InsufficientFunds,
    ExpiredCard,
    IncorrectCvc,
    ProcessingError,
    Blocked,
}

impl Failure {
    const ALL: [Failure; 6] = [
        Failure::GenericDecline,
        Failure::InsufficientFunds,
        Failure::ExpiredCard,
        Failure::IncorrectCvc,
        Failure::ProcessingError,
        Failure::Blocked,
    ];
    const WEIGHTS: [u32; 6] = [40, 25, 10, 10, 8, 7];

    fn pick(rng: &mut fastrand::Rng) -> Self {
        Self::ALL[weighted(rng, &Self::WEIGHTS)]
    }

    /// Renewals use a saved card, which Radar does not block.
    fn pick_renewal(rng: &mut fastrand::Rng) -> Self {
        Self::ALL[weighted(rng, &Self::WEIGHTS[..5])]
    }

    fn code(self) -> &'static str {
        match self {
            Failure::GenericDecline | Failure::InsufficientFunds | Failure::Blocked => {
                "card_declined"
            }
            Failure::ExpiredCard => "expired_card",
            Failure::IncorrectCvc => "incorrect_cvc",
            Failure::ProcessingError => "processing_error",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Failure::GenericDecline => "generic_decline",
            Failure::InsufficientFunds => "insufficient_funds",
            Failure::ExpiredCard => "expired_card",
            Failure::IncorrectCvc => "incorrect_cvc",
            Failure::ProcessingError => "processing_error",
            Failure::Blocked => "highest_risk_level",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Failure::GenericDecline | Failure::Blocked => "Your card was declined.",
            Failure::InsufficientFunds => "Your card has insufficient funds.",
            Failure::ExpiredCard => "Your card has expired.",
            Failure::IncorrectCvc => "Your card's security code is incorrect.",
            Failure::ProcessingError => {
                "An error occurred while processing your card. Try again in a little bit."
            }
        }
    }

    fn network_decline_code(self) -> Option<&'static str> {
        match self {
            Failure::GenericDecline => Some("05"),
            Failure::InsufficientFunds => Some("51"),
            Failure::ExpiredCard => Some("54"),
            Failure::IncorrectCvc => Some("N7"),
            Failure::ProcessingError => Some("96"),
            Failure::Blocked => None,
        }
    }

    fn seller_message(self) -> &'static str {
        match self {
            Failure::GenericDecline => {
                "The bank did not return any further details with this decline."
            }
            Failure::InsufficientFunds => {
                "The bank returned the decline code `insufficient_funds`."
            }
            Failure::ExpiredCard => "The bank returned the decline code `expired_card`.",
            Failure::IncorrectCvc => "The bank returned the decline code `incorrect_cvc`.",
            Failure::ProcessingError => "The bank returned the decline code `processing_error`.",
            Failure::Blocked => "Stripe blocked this payment as too risky.",
        }
    }
}

fn risk_score(rng: &mut fastrand::Rng, failure: Option<Failure>) -> i64 {
    i64::from(if failure == Some(Failure::Blocked) {
        rng.u32(80..=99)
    } else {
        rng.u32(2..=70)
    })
}

/// A paying customer with one saved card.
#[derive(Clone, Debug)]
struct Customer {
    id: String,
    name: String,
    email: String,
    phone: String,
    line1: String,
    city: &'static str,
    postal_code: &'static str,
    invoice_prefix: String,
    card_brand: &'static str,
    card_last4: String,
    card_exp_month: i64,
    card_exp_year: i64,
    card_funding: &'static str,
    card_country: &'static str,
    card_fingerprint: String,
    payment_method: String,
}

const FIRST_NAMES: [&str; 30] = [
    "Camille", "Louis", "Chloe", "Gabriel", "Lea", "Arthur", "Manon", "Jules", "Ines", "Hugo",
    "Sarah", "Lucas", "Emma", "Nathan", "Juliette", "Paul", "Alice", "Thomas", "Zoe", "Antoine",
    "Clara", "Maxime", "Lina", "Victor", "Jeanne", "Romain", "Elise", "Mathis", "Anais", "Bastien",
];
const LAST_NAMES: [&str; 30] = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "Andre",
    "Mercier",
    "Blanc",
    "Guerin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "Francois",
];
const STREETS: [&str; 15] = [
    "Rue de la Republique",
    "Rue Merciere",
    "Quai Saint-Antoine",
    "Rue Victor Hugo",
    "Cours Lafayette",
    "Rue Garibaldi",
    "Avenue Jean Jaures",
    "Rue Paul Bert",
    "Boulevard des Belges",
    "Rue Juliette Recamier",
    "Montee de la Grande Cote",
    "Rue du Boeuf",
    "Rue Duguesclin",
    "Cours Vitton",
    "Rue de Marseille",
];
const PLACES: [(&str, &str); 13] = [
    ("Lyon", "69001"),
    ("Lyon", "69002"),
    ("Lyon", "69003"),
    ("Lyon", "69004"),
    ("Lyon", "69005"),
    ("Lyon", "69006"),
    ("Lyon", "69007"),
    ("Lyon", "69008"),
    ("Lyon", "69009"),
    ("Villeurbanne", "69100"),
    ("Caluire-et-Cuire", "69300"),
    ("Oullins", "69600"),
    ("Ecully", "69130"),
];
const EMAIL_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];
const CARD_BRANDS: [(&str, u32); 3] = [("visa", 56), ("mastercard", 38), ("amex", 6)];
const CARD_COUNTRIES: [(&str, u32); 6] = [
    ("FR", 88),
    ("BE", 4),
    ("DE", 3),
    ("CH", 2),
    ("GB", 2),
    ("ES", 1),
];
const CARD_FUNDING: [(&str, u32); 3] = [("credit", 55), ("debit", 43), ("prepaid", 2)];

impl Customer {
    fn generate(
        rng: &mut fastrand::Rng,
        id: String,
        payment_method: String,
        card_year: i32,
    ) -> Customer {
        let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.usize(..LAST_NAMES.len())];
        let email = format!(
            "{}.{}{}@{}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase(),
            rng.u32(1..100),
            EMAIL_DOMAINS[rng.usize(..EMAIL_DOMAINS.len())]
        );
        let phone = format!("+336{:08}", rng.u32(..100_000_000));
        let line1 = format!(
            "{} {}",
            rng.u32(1..120),
            STREETS[rng.usize(..STREETS.len())]
        );
        let (city, postal_code) = PLACES[rng.usize(..PLACES.len())];
        let invoice_prefix = (0..8)
            .map(|_| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.usize(..36)]))
            .collect();
        let card_fingerprint = (0..16).map(|_| rng.alphanumeric()).collect();
        Customer {
            id,
            name: format!("{first} {last}"),
            email,
            phone,
            line1,
            city,
            postal_code,
            invoice_prefix,
            card_brand: pick_weighted(rng, &CARD_BRANDS),
            card_last4: format!("{:04}", rng.u32(..10_000)),
            card_exp_month: i64::from(rng.u32(1..=12)),
            card_exp_year: i64::from(card_year) + i64::from(rng.u32(1..=5)),
            card_funding: pick_weighted(rng, &CARD_FUNDING),
            card_country: pick_weighted(rng, &CARD_COUNTRIES),
            card_fingerprint,
            payment_method,
        }
    }
}

/// Everything a charge object shows; shared by the stored and the synthetic form so both have
/// the same shape.
///
/// The object carries the fields of <https://docs.stripe.com/api/charges/object> that a
/// connector reads, plus the common nested ones (billing details, outcome, card). Fields that
/// are always null for a shop like this (Connect transfers, application fees, shipping, review,
/// statement descriptors, 3-D Secure and wallet details) are left out, which keeps a charge at
/// about 1.25 KB, the size the benchmark assumes.
struct ChargeDoc<'a> {
    id: &'a str,
    amount: i64,
    amount_refunded: i64,
    created: i64,
    failure: Option<Failure>,
    customer: &'a Customer,
    description: &'a str,
    balance_transaction: Option<&'a str>,
    payment_intent: &'a str,
    invoice: Option<&'a str>,
    order_id: Option<&'a str>,
    risk_score: i64,
    receipt_token: &'a str,
}

fn write_charge(out: &mut String, charge: &ChargeDoc<'_>) {
    let failure = charge.failure;
    let paid = failure.is_none();
    let customer = charge.customer;
    let mut o = Obj::open(out);
    o.str("id", charge.id);
    o.str("object", "charge");
    o.int("amount", charge.amount);
    o.int("amount_captured", if paid { charge.amount } else { 0 });
    o.int("amount_refunded", charge.amount_refunded);
    o.opt_str("balance_transaction", charge.balance_transaction);
    o.obj("billing_details", |b| {
        b.obj("address", |a| {
            a.str("city", customer.city);
            a.str("country", "FR");
            a.str("line1", &customer.line1);
            a.null("line2");
            a.str("postal_code", customer.postal_code);
            a.null("state");
        });
        b.str("email", &customer.email);
        b.str("name", &customer.name);
        b.str("phone", &customer.phone);
    });
    o.bool("captured", paid);
    o.int("created", charge.created);
    o.str("currency", "eur");
    o.str("customer", &customer.id);
    o.str("description", charge.description);
    o.bool("disputed", false);
    o.opt_str("failure_code", failure.map(Failure::code));
    o.opt_str("failure_message", failure.map(Failure::message));
    o.opt_str("invoice", charge.invoice);
    o.bool("livemode", false);
    o.obj("metadata", |m| {
        if let Some(order_id) = charge.order_id {
            m.str("channel", "web");
            m.str("order_id", order_id);
        }
    });
    o.obj("outcome", |x| match failure {
        None => {
            x.str("network_status", "approved_by_network");
            x.null("reason");
            x.str(
                "risk_level",
                if charge.risk_score < 65 {
                    "normal"
                } else {
                    "elevated"
                },
            );
            x.int("risk_score", charge.risk_score);
            x.str("seller_message", "Payment complete.");
            x.str("type", "authorized");
        }
        Some(failure) => {
            let blocked = failure == Failure::Blocked;
            x.opt_str("network_decline_code", failure.network_decline_code());
            x.str(
                "network_status",
                if blocked {
                    "not_sent_to_network"
                } else {
                    "declined_by_network"
                },
            );
            x.str("reason", failure.reason());
            x.str("risk_level", if blocked { "highest" } else { "normal" });
            x.int("risk_score", charge.risk_score);
            x.str("seller_message", failure.seller_message());
            x.str(
                "type",
                if blocked {
                    "blocked"
                } else {
                    "issuer_declined"
                },
            );
        }
    });
    o.bool("paid", paid);
    o.str("payment_intent", charge.payment_intent);
    o.str("payment_method", &customer.payment_method);
    o.obj("payment_method_details", |p| {
        p.obj("card", |c| {
            c.str("brand", customer.card_brand);
            c.str("country", customer.card_country);
            c.int("exp_month", customer.card_exp_month);
            c.int("exp_year", customer.card_exp_year);
            c.str("fingerprint", &customer.card_fingerprint);
            c.str("funding", customer.card_funding);
            c.str("last4", &customer.card_last4);
            c.str("network", customer.card_brand);
        });
        p.str("type", "card");
    });
    o.str("receipt_email", &customer.email);
    o.key("receipt_url");
    if paid {
        o.out.push('"');
        o.out.push_str(RECEIPT_URL_PREFIX);
        o.out.push_str(charge.receipt_token);
        o.out.push('"');
    } else {
        o.out.push_str("null");
    }
    o.bool(
        "refunded",
        charge.amount_refunded > 0 && charge.amount_refunded >= charge.amount,
    );
    o.str("status", if paid { "succeeded" } else { "failed" });
    o.close();
}

// ---------------------------------------------------------------------------------------------
// The bakery
// ---------------------------------------------------------------------------------------------

const BASE_ORDERS_PER_DAY: f64 = 42.0;
/// January..December: quiet after the holidays and in August, busy at Easter and Christmas.
const MONTH_FACTOR: [f64; 12] = [
    0.9, 0.9, 0.95, 1.05, 1.0, 0.95, 0.9, 0.88, 0.97, 1.0, 1.08, 1.25,
];
/// Monday..Sunday.
const WEEKDAY_FACTOR: [f64; 7] = [0.88, 0.92, 0.95, 1.0, 1.08, 1.18, 1.0];
/// Order weight per UTC hour from 05:00 to 21:00 (06:00-22:00 in Lyon).
const HOUR_WEIGHTS: [u32; 17] = [2, 5, 8, 9, 7, 6, 6, 7, 6, 4, 4, 5, 7, 8, 6, 4, 2];
const DELIVERY_FEE: i64 = 390;

struct MenuItem {
    name: &'static str,
    price: i64,
    weight: u32,
    /// Bit `m` set: sold in month `m` (1 = January).
    months: u16,
}

const ALL_YEAR: u16 = 0b1_1111_1111_1110;
const fn month_bit(month: u32) -> u16 {
    1 << month
}

const MENU: [MenuItem; 17] = [
    MenuItem {
        name: "Sourdough loaf",
        price: 650,
        weight: 14,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Seeded rye loaf",
        price: 720,
        weight: 7,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Baguette tradition (2)",
        price: 290,
        weight: 12,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Croissant box (6)",
        price: 1080,
        weight: 12,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Pain au chocolat box (6)",
        price: 1200,
        weight: 10,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Cinnamon buns (4)",
        price: 1100,
        weight: 6,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Brioche Nanterre",
        price: 890,
        weight: 6,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Quiche lorraine",
        price: 1650,
        weight: 5,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Seasonal fruit tart",
        price: 2450,
        weight: 4,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Celebration cake",
        price: 4800,
        weight: 2,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Coffee beans 250 g",
        price: 1190,
        weight: 5,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Galette des rois",
        price: 2800,
        weight: 10,
        months: month_bit(1),
    },
    MenuItem {
        name: "Hot cross buns (6)",
        price: 990,
        weight: 6,
        months: month_bit(3) | month_bit(4),
    },
    MenuItem {
        name: "Strawberry tart",
        price: 2650,
        weight: 5,
        months: month_bit(5) | month_bit(6) | month_bit(7),
    },
    MenuItem {
        name: "Pumpkin loaf",
        price: 780,
        weight: 5,
        months: month_bit(10) | month_bit(11),
    },
    MenuItem {
        name: "Stollen",
        price: 1890,
        weight: 6,
        months: month_bit(11) | month_bit(12),
    },
    MenuItem {
        name: "Buche de Noel",
        price: 3900,
        weight: 8,
        months: month_bit(12),
    },
];

struct PriceRec {
    id: String,
    product: String,
    nickname: &'static str,
    amount: i64,
    created: i64,
}

const COFFEE_CLUB: [(&str, i64); 2] = [("Coffee Club Classic", 1900), ("Coffee Club Plus", 2900)];
const CANCEL_FEEDBACK: [&str; 5] = [
    "too_expensive",
    "unused",
    "switched_service",
    "other",
    "low_quality",
];

struct ChargeRec {
    id: String,
    created: i64,
    amount: i64,
    amount_refunded: i64,
    failure: Option<Failure>,
    customer: usize,
    description: String,
    balance_transaction: Option<String>,
    payment_intent: String,
    invoice: Option<String>,
    order_id: Option<String>,
    risk_score: i64,
    receipt_token: String,
}

struct NewCharge {
    created: i64,
    amount: i64,
    customer: usize,
    description: String,
    payment_intent: String,
    invoice: Option<String>,
    order_id: Option<String>,
    failure: Option<Failure>,
}

struct RefundRec {
    id: String,
    charge: usize,
    amount: i64,
    created: i64,
    reason: &'static str,
    balance_transaction: String,
    reference: String,
}

struct InvoiceRec {
    id: String,
    line_id: String,
    number: String,
    customer: usize,
    subscription: String,
    price: usize,
    created: i64,
    period: (i64, i64),
    amount_due: i64,
    amount_paid: i64,
    status: &'static str,
    attempt_count: i64,
    billing_reason: &'static str,
    charge: Option<String>,
    payment_intent: Option<String>,
    finalized_at: Option<i64>,
    paid_at: Option<i64>,
    voided_at: Option<i64>,
    trial: bool,
}

struct SubscriptionRec {
    id: String,
    item_id: String,
    customer: usize,
    price: usize,
    created: i64,
    anchor: i64,
    status: &'static str,
    trial: Option<(i64, i64)>,
    period: (i64, i64),
    canceled_at: Option<i64>,
    ended_at: Option<i64>,
    cancel_at: Option<i64>,
    cancel_at_period_end: bool,
    cancel_reason: Option<&'static str>,
    cancel_feedback: Option<&'static str>,
    latest_invoice: Option<String>,
}

struct TxnRec {
    id: String,
    amount: i64,
    fee: i64,
    created: i64,
    available_on: i64,
    kind: &'static str,
    source: String,
    description: Option<String>,
}

/// Builds the bakery's year; every random draw comes from one seeded generator in a fixed
/// order, so a seed always gives the same objects.
struct Bakery {
    rng: fastrand::Rng,
    now: i64,
    window_start: i64,
    ids: HashSet<String>,
    customers: Vec<Customer>,
    invoice_counts: Vec<u32>,
    prices: Vec<PriceRec>,
    charges: Vec<ChargeRec>,
    refunds: Vec<RefundRec>,
    invoices: Vec<InvoiceRec>,
    subscriptions: Vec<SubscriptionRec>,
    txns: Vec<TxnRec>,
}

impl Bakery {
    const CUSTOMERS: usize = 2_400;

    fn new(now: i64, year: i32, seed: u64) -> Bakery {
        let mut bakery = Bakery {
            rng: fastrand::Rng::with_seed(seed),
            now,
            window_start: now - 365 * DAY,
            ids: HashSet::new(),
            customers: Vec::with_capacity(Self::CUSTOMERS),
            invoice_counts: vec![0; Self::CUSTOMERS],
            prices: Vec::new(),
            charges: Vec::new(),
            refunds: Vec::new(),
            invoices: Vec::new(),
            subscriptions: Vec::new(),
            txns: Vec::new(),
        };
        for _ in 0..Self::CUSTOMERS {
            let id = bakery.new_id("cus_", 14);
            let payment_method = bakery.new_id("pm_", 24);
            let customer = Customer::generate(&mut bakery.rng, id, payment_method, year);
            bakery.customers.push(customer);
        }
        for (nickname, amount) in COFFEE_CLUB {
            let id = bakery.new_id("price_", 24);
            let product = bakery.new_id("prod_", 14);
            bakery.prices.push(PriceRec {
                id,
                product,
                nickname,
                amount,
                created: bakery.window_start - 30 * DAY,
            });
        }
        bakery
    }

    fn new_id(&mut self, prefix: &str, len: usize) -> String {
        loop {
            let mut id = String::with_capacity(prefix.len() + len);
            id.push_str(prefix);
            for _ in 0..len {
                id.push(self.rng.alphanumeric());
            }
            if self.ids.insert(id.clone()) {
                return id;
            }
        }
    }

    fn random_text(&mut self, len: usize) -> String {
        (0..len).map(|_| self.rng.alphanumeric()).collect()
    }

    fn add_charge(&mut self, new: NewCharge) -> String {
        let id = self.new_id("ch_", 24);
        let balance_transaction = new.failure.is_none().then(|| self.new_id("txn_", 24));
        let risk_score = risk_score(&mut self.rng, new.failure);
        let receipt_token = self.random_text(40);
        self.charges.push(ChargeRec {
            id: id.clone(),
            created: new.created,
            amount: new.amount,
            amount_refunded: 0,
            failure: new.failure,
            customer: new.customer,
            description: new.description,
            balance_transaction,
            payment_intent: new.payment_intent,
            invoice: new.invoice,
            order_id: new.order_id,
            risk_score,
            receipt_token,
        });
        id
    }

    /// Web orders: a daily count shaped by month, weekday and a year of growth.
    fn one_off_orders(&mut self) {
        let first_day = DateTime::from_timestamp(self.window_start, 0)
            .expect("now is a representable time")
            .date_naive();
        let last_day = DateTime::from_timestamp(self.now, 0)
            .expect("now is a representable time")
            .date_naive();
        let mut order_number = 18_000u32;
        let mut day = first_day;
        while day <= last_day {
            let day_start = day.and_time(NaiveTime::MIN).and_utc().timestamp();
            let progress =
                ((day_start - self.window_start) as f64 / (365 * DAY) as f64).clamp(0.0, 1.0);
            let factor = MONTH_FACTOR[day.month0() as usize]
                * WEEKDAY_FACTOR[day.weekday().num_days_from_monday() as usize]
                * (0.92 + 0.16 * progress)
                * (0.9 + 0.2 * self.rng.f64());
            let count = (BASE_ORDERS_PER_DAY * factor).round() as u32;
            for _ in 0..count {
                let hour = 5 + weighted(&mut self.rng, &HOUR_WEIGHTS) as i64;
                let created = day_start + hour * 3_600 + self.rng.i64(0..3_600);
                let customer = self.pick_regular();
                let failure = (self.rng.f64() < 0.05).then(|| Failure::pick(&mut self.rng));
                let (amount, items) = self.basket(day.month());
                if created < self.window_start || created >= self.now {
                    continue;
                }
                order_number += 1;
                let payment_intent = self.new_id("pi_", 24);
                self.add_charge(NewCharge {
                    created,
                    amount,
                    customer,
                    description: format!("Order {order_number}: {items}"),
                    payment_intent,
                    invoice: None,
                    order_id: Some(order_number.to_string()),
                    failure,
                });
            }
            day = day.succ_opt().expect("the calendar goes on past this year");
        }
    }

    /// Regulars order more: customer `i` is picked with a density falling like 1/sqrt(i).
    fn pick_regular(&mut self) -> usize {
        let u = self.rng.f64();
        ((u * u * self.customers.len() as f64) as usize).min(self.customers.len() - 1)
    }

    fn basket(&mut self, month: u32) -> (i64, String) {
        let available: Vec<&MenuItem> = MENU
            .iter()
            .filter(|item| item.months & month_bit(month) != 0)
            .collect();
        let weights: Vec<u32> = available.iter().map(|item| item.weight).collect();
        let lines = 1 + weighted(&mut self.rng, &[35, 35, 20, 10]);
        let mut amount = 0;
        let mut items = String::new();
        for line in 0..lines {
            let item = available[weighted(&mut self.rng, &weights)];
            let quantity = 1 + weighted(&mut self.rng, &[75, 20, 5]) as i64;
            amount += item.price * quantity;
            if line > 0 {
                items.push_str(", ");
            }
            let _ = write!(items, "{quantity} x {}", item.name);
        }
        if self.rng.f64() < 0.35 {
            amount += DELIVERY_FEE;
            items.push_str(", delivery");
        }
        (amount, items)
    }

    /// The coffee club: sign-ups grow through the year; some try it first, some leave.
    fn subscriptions(&mut self) {
        let first_midnight = midnight(self.window_start);
        for day in 0..=365 {
            let day_start = first_midnight + day * DAY;
            let rate = 0.45 + 0.9 * day as f64 / 365.0;
            let count = rate.floor() as u32 + u32::from(self.rng.f64() < rate.fract());
            for _ in 0..count {
                let created = day_start + self.rng.i64(7 * 3_600..22 * 3_600);
                let customer = self.rng.usize(..self.customers.len());
                let price = usize::from(self.rng.f64() < 0.4);
                let trial = self.rng.f64() < 0.2;
                if created < self.window_start || created >= self.now {
                    continue;
                }
                self.simulate_subscription(created, customer, price, trial);
            }
        }
    }

    fn new_invoice(
        &mut self,
        sub: &SubscriptionRec,
        created: i64,
        period: (i64, i64),
        amount: i64,
        billing_reason: &'static str,
    ) -> InvoiceRec {
        let id = self.new_id("in_", 24);
        let line_id = self.new_id("il_", 24);
        self.invoice_counts[sub.customer] += 1;
        let number = format!(
            "{}-{:04}",
            self.customers[sub.customer].invoice_prefix, self.invoice_counts[sub.customer]
        );
        InvoiceRec {
            id,
            line_id,
            number,
            customer: sub.customer,
            subscription: sub.id.clone(),
            price: sub.price,
            created,
            period,
            amount_due: amount,
            amount_paid: 0,
            status: "draft",
            attempt_count: 0,
            billing_reason,
            charge: None,
            payment_intent: None,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            trial: amount == 0,
        }
    }

    fn simulate_subscription(&mut self, created: i64, customer: usize, price: usize, trial: bool) {
        let id = self.new_id("sub_", 24);
        let item_id = self.new_id("si_", 14);
        let amount = self.prices[price].amount;
        let mut sub = SubscriptionRec {
            id,
            item_id,
            customer,
            price,
            created,
            anchor: created,
            status: "active",
            trial: None,
            period: (created, created),
            canceled_at: None,
            ended_at: None,
            cancel_at: None,
            cancel_at_period_end: false,
            cancel_reason: None,
            cancel_feedback: None,
            latest_invoice: None,
        };
        if trial {
            // A 14-day trial starts with a paid zero-amount invoice, as in Stripe.
            let trial_end = created + 14 * DAY;
            sub.trial = Some((created, trial_end));
            sub.anchor = trial_end;
            sub.period = (created, trial_end);
            let mut invoice = self.new_invoice(
                &sub,
                created,
                (created, trial_end),
                0,
                "subscription_create",
            );
            invoice.status = "paid";
            invoice.finalized_at = Some(created);
            invoice.paid_at = Some(created);
            sub.latest_invoice = Some(invoice.id.clone());
            self.invoices.push(invoice);
            if trial_end >= self.now {
                sub.status = "trialing";
                self.subscriptions.push(sub);
                return;
            }
        }
        let anchor =
            DateTime::from_timestamp(sub.anchor, 0).expect("the anchor lies within a year of now");
        let description = |first: bool| {
            if first {
                "Subscription creation"
            } else {
                "Subscription update"
            }
        };
        for k in 0u32.. {
            let period_start = add_months(anchor, k);
            let period_end = add_months(anchor, k + 1);
            if period_start >= self.now {
                break;
            }
            // Some members leave at a renewal; they asked during the month before.
            if k >= 1 && self.rng.f64() < 0.045 {
                let canceled_at = (period_start - self.rng.i64(DAY..20 * DAY)).max(sub.period.0);
                sub.status = "canceled";
                sub.canceled_at = Some(canceled_at);
                sub.ended_at = Some(period_start);
                sub.cancel_at = Some(period_start);
                sub.cancel_at_period_end = true;
                sub.cancel_reason = Some("cancellation_requested");
                sub.cancel_feedback =
                    Some(CANCEL_FEEDBACK[self.rng.usize(..CANCEL_FEEDBACK.len())]);
                break;
            }
            sub.period = (period_start, period_end);
            let first = k == 0 && sub.trial.is_none();
            let reason = if first {
                "subscription_create"
            } else {
                "subscription_cycle"
            };
            let mut invoice = self.new_invoice(
                &sub,
                period_start,
                (period_start, period_end),
                amount,
                reason,
            );
            // Renewal invoices stay drafts for an hour before Stripe finalizes and charges them.
            let attempt_at = period_start + if first { 2 } else { 3_600 };
            if attempt_at >= self.now {
                sub.latest_invoice = Some(invoice.id.clone());
                self.invoices.push(invoice);
                break;
            }
            let payment_intent = self.new_id("pi_", 24);
            invoice.payment_intent = Some(payment_intent.clone());
            invoice.finalized_at = Some(attempt_at);
            invoice.status = "open";
            invoice.attempt_count = 1;
            let failure = (self.rng.f64() < 0.04).then(|| Failure::pick_renewal(&mut self.rng));
            let charge = self.add_charge(NewCharge {
                created: attempt_at,
                amount,
                customer,
                description: description(first).to_owned(),
                payment_intent: payment_intent.clone(),
                invoice: Some(invoice.id.clone()),
                order_id: None,
                failure,
            });
            invoice.charge = Some(charge);
            let mut paid_at = failure.is_none().then_some(attempt_at);
            if failure.is_some() {
                // Smart Retries try again a few days later.
                let retry_at = attempt_at + 3 * DAY + self.rng.i64(0..3_600);
                let retry_failure =
                    (self.rng.f64() >= 0.6).then(|| Failure::pick_renewal(&mut self.rng));
                if retry_at < self.now {
                    invoice.attempt_count = 2;
                    let charge = self.add_charge(NewCharge {
                        created: retry_at,
                        amount,
                        customer,
                        description: description(first).to_owned(),
                        payment_intent,
                        invoice: Some(invoice.id.clone()),
                        order_id: None,
                        failure: retry_failure,
                    });
                    invoice.charge = Some(charge);
                    paid_at = retry_failure.is_none().then_some(retry_at);
                }
            }
            if let Some(paid_at) = paid_at {
                invoice.status = "paid";
                invoice.amount_paid = amount;
                invoice.paid_at = Some(paid_at);
            } else {
                // After two weeks of failed retries the invoice is voided and the
                // subscription canceled; before that the subscription is past due.
                let give_up_at = attempt_at + 14 * DAY;
                if give_up_at < self.now {
                    invoice.status = "void";
                    invoice.voided_at = Some(give_up_at);
                    sub.status = "canceled";
                    sub.canceled_at = Some(give_up_at);
                    sub.ended_at = Some(give_up_at);
                    sub.cancel_reason = Some("payment_failed");
                } else {
                    sub.status = "past_due";
                }
            }
            sub.latest_invoice = Some(invoice.id.clone());
            self.invoices.push(invoice);
            if sub.status != "active" {
                break;
            }
        }
        if sub.status == "active" && self.rng.f64() < 0.05 {
            // A member who asked to stop at the end of the month already paid for.
            let canceled_at = (self.now - self.rng.i64(DAY..10 * DAY)).max(sub.period.0);
            sub.cancel_at_period_end = true;
            sub.cancel_at = Some(sub.period.1);
            sub.canceled_at = Some(canceled_at);
            sub.cancel_reason = Some("cancellation_requested");
        }
        self.subscriptions.push(sub);
    }

    /// About 2% of paid web orders are refunded, in full or in part, days later.
    fn refunds(&mut self) {
        for charge in 0..self.charges.len() {
            let (created, amount, refundable) = {
                let c = &self.charges[charge];
                (
                    c.created,
                    c.amount,
                    c.failure.is_none() && c.order_id.is_some(),
                )
            };
            if !refundable || self.rng.f64() >= 0.022 {
                continue;
            }
            let refund_created = created + self.rng.i64(DAY..10 * DAY);
            let full = self.rng.f64() < 0.75;
            let share = self.rng.i64(30..=70);
            let reason = ["requested_by_customer", "duplicate", "fraudulent"]
                [weighted(&mut self.rng, &[80, 12, 8])];
            if refund_created >= self.now {
                continue;
            }
            let refund_amount = if full {
                amount
            } else {
                (amount * share / 100 / 10 * 10).clamp(100.min(amount), amount)
            };
            let id = self.new_id("re_", 24);
            let balance_transaction = self.new_id("txn_", 24);
            let reference = (0..23).map(|_| self.rng.digit(10)).collect();
            self.charges[charge].amount_refunded += refund_amount;
            self.refunds.push(RefundRec {
                id,
                charge,
                amount: refund_amount,
                created: refund_created,
                reason,
                balance_transaction,
                reference,
            });
        }
    }

    /// One transaction per paid charge and per refund, funds available after 7 days, and a
    /// payout every Monday of what became available during the week.
    fn balance_transactions(&mut self) {
        let mut txns = Vec::with_capacity(self.charges.len() + self.refunds.len() + 60);
        for charge in &self.charges {
            let Some(id) = &charge.balance_transaction else {
                continue;
            };
            let card_country = self.customers[charge.customer].card_country;
            txns.push(TxnRec {
                id: id.clone(),
                amount: charge.amount,
                fee: stripe_fee(charge.amount, card_country),
                created: charge.created,
                available_on: midnight(charge.created) + 7 * DAY,
                kind: "charge",
                source: charge.id.clone(),
                description: Some(charge.description.clone()),
            });
        }
        for refund in &self.refunds {
            let charge = &self.charges[refund.charge];
            txns.push(TxnRec {
                id: refund.balance_transaction.clone(),
                amount: -refund.amount,
                fee: 0,
                created: refund.created,
                available_on: midnight(refund.created),
                kind: "refund",
                source: refund.id.clone(),
                description: Some(format!("REFUND FOR CHARGE ({})", charge.description)),
            });
        }
        let mut available: Vec<(i64, i64)> = txns
            .iter()
            .map(|t| (t.available_on, t.amount - t.fee))
            .collect();
        available.sort_unstable();
        let first_midnight = midnight(self.window_start);
        // 1970-01-01 was a Thursday: day number 4 (mod 7) is a Monday.
        let mut monday =
            first_midnight + (4 - (first_midnight / DAY).rem_euclid(7)).rem_euclid(7) * DAY;
        let mut next = 0;
        while monday + 6 * 3_600 < self.now {
            let mut total = 0;
            while next < available.len() && available[next].0 <= monday {
                total += available[next].1;
                next += 1;
            }
            if total > 0 {
                let id = self.new_id("txn_", 24);
                let payout = self.new_id("po_", 24);
                txns.push(TxnRec {
                    id,
                    amount: -total,
                    fee: 0,
                    created: monday + 6 * 3_600,
                    available_on: monday,
                    kind: "payout",
                    source: payout,
                    description: Some("STRIPE PAYOUT".to_owned()),
                });
            }
            monday += 7 * DAY;
        }
        self.txns = txns;
    }

    fn into_data(self) -> StripeData {
        let mut data = StripeData::empty();
        let charges = self
            .charges
            .iter()
            .map(|charge| {
                let customer = &self.customers[charge.customer];
                let mut json = String::with_capacity(1_500);
                write_charge(
                    &mut json,
                    &ChargeDoc {
                        id: &charge.id,
                        amount: charge.amount,
                        amount_refunded: charge.amount_refunded,
                        created: charge.created,
                        failure: charge.failure,
                        customer,
                        description: &charge.description,
                        balance_transaction: charge.balance_transaction.as_deref(),
                        payment_intent: &charge.payment_intent,
                        invoice: charge.invoice.as_deref(),
                        order_id: charge.order_id.as_deref(),
                        risk_score: charge.risk_score,
                        receipt_token: &charge.receipt_token,
                    },
                );
                stored(
                    charge.created,
                    &charge.id,
                    json,
                    [
                        ("customer", &customer.id),
                        ("payment_intent", &charge.payment_intent),
                    ],
                )
            })
            .collect();
        let refunds = self
            .refunds
            .iter()
            .map(|refund| {
                let charge = &self.charges[refund.charge];
                let json = write_refund(refund, charge);
                stored(
                    refund.created,
                    &refund.id,
                    json,
                    [
                        ("charge", &charge.id),
                        ("payment_intent", &charge.payment_intent),
                    ],
                )
            })
            .collect();
        let invoices = self
            .invoices
            .iter()
            .map(|invoice| {
                let customer = &self.customers[invoice.customer];
                let json = write_invoice(invoice, customer, &self.prices[invoice.price]);
                stored(
                    invoice.created,
                    &invoice.id,
                    json,
                    [
                        ("customer", &customer.id),
                        ("subscription", &invoice.subscription),
                        ("status", invoice.status),
                    ],
                )
            })
            .collect();
        let subscriptions = self
            .subscriptions
            .iter()
            .map(|sub| {
                let customer = &self.customers[sub.customer];
                let json = write_subscription(sub, customer, &self.prices[sub.price]);
                stored(
                    sub.created,
                    &sub.id,
                    json,
                    [("customer", &customer.id), ("status", sub.status)],
                )
            })
            .collect();
        let txns = self
            .txns
            .iter()
            .map(|txn| {
                stored(
                    txn.created,
                    &txn.id,
                    write_txn(txn, self.now),
                    [("type", txn.kind), ("source", &txn.source)],
                )
            })
            .collect();
        for (resource, objects) in [
            (Resource::Charges, charges),
            (Resource::Refunds, refunds),
            (Resource::Invoices, invoices),
            (Resource::Subscriptions, subscriptions),
            (Resource::BalanceTransactions, txns),
        ] {
            data.lists[resource.slot()] = List::Stored(StoredList::from_objects(objects));
        }
        data
    }
}

fn stored<const N: usize>(
    created: i64,
    id: &str,
    json: String,
    attrs: [(&'static str, &str); N],
) -> StoredObject {
    StoredObject {
        created,
        id: id.into(),
        json: json.into(),
        attrs: attrs
            .into_iter()
            .map(|(field, value)| (field, Box::from(value)))
            .collect(),
    }
}

fn write_refund(refund: &RefundRec, charge: &ChargeRec) -> String {
    let mut json = String::with_capacity(700);
    let mut o = Obj::open(&mut json);
    o.str("id", &refund.id);
    o.str("object", "refund");
    o.int("amount", refund.amount);
    o.str("balance_transaction", &refund.balance_transaction);
    o.str("charge", &charge.id);
    o.int("created", refund.created);
    o.str("currency", "eur");
    o.obj("destination_details", |d| {
        d.obj("card", |c| {
            c.str("reference", &refund.reference);
            c.str("reference_status", "available");
            c.str("reference_type", "acquirer_reference_number");
            c.str("type", "refund");
        });
        d.str("type", "card");
    });
    o.raw("metadata", "{}");
    o.str("payment_intent", &charge.payment_intent);
    o.str("reason", refund.reason);
    o.null("receipt_number");
    o.null("source_transfer_reversal");
    o.str("status", "succeeded");
    o.null("transfer_reversal");
    o.close();
    json
}

fn write_invoice(invoice: &InvoiceRec, customer: &Customer, price: &PriceRec) -> String {
    let mut json = String::with_capacity(1_600);
    let mut o = Obj::open(&mut json);
    let finalized = invoice.finalized_at.is_some();
    o.str("id", &invoice.id);
    o.str("object", "invoice");
    o.str("account_country", "FR");
    o.str("account_name", ACCOUNT_NAME);
    o.int("amount_due", invoice.amount_due);
    o.int("amount_paid", invoice.amount_paid);
    o.int(
        "amount_remaining",
        if invoice.status == "void" {
            0
        } else {
            invoice.amount_due - invoice.amount_paid
        },
    );
    o.int("attempt_count", invoice.attempt_count);
    o.bool(
        "attempted",
        invoice.attempt_count > 0 || invoice.status == "paid",
    );
    o.bool("auto_advance", matches!(invoice.status, "draft" | "open"));
    o.str("billing_reason", invoice.billing_reason);
    o.opt_str("charge", invoice.charge.as_deref());
    o.str("collection_method", "charge_automatically");
    o.int("created", invoice.created);
    o.str("currency", "eur");
    o.str("customer", &customer.id);
    o.str("customer_email", &customer.email);
    o.str("customer_name", &customer.name);
    o.null("description");
    o.null("due_date");
    o.opt_int("ending_balance", finalized.then_some(0));
    o.obj("lines", |lines| {
        lines.str("object", "list");
        lines.array_of_one("data", |line| {
            line.str("id", &invoice.line_id);
            line.str("object", "line_item");
            line.int("amount", invoice.amount_due);
            line.str("currency", "eur");
            let description = if invoice.trial {
                format!("Trial period for {}", price.nickname)
            } else {
                format!(
                    "1 × {} (at €{}.{:02} / month)",
                    price.nickname,
                    price.amount / 100,
                    price.amount % 100
                )
            };
            line.str("description", &description);
            line.obj("period", |p| {
                p.int("end", invoice.period.1);
                p.int("start", invoice.period.0);
            });
            line.str("price", &price.id);
            line.bool("proration", false);
            line.int("quantity", 1);
            line.str("subscription", &invoice.subscription);
            line.str("type", "subscription");
        });
        lines.bool("has_more", false);
        lines.int("total_count", 1);
        lines.str("url", &format!("/v1/invoices/{}/lines", invoice.id));
    });
    o.bool("livemode", false);
    o.raw("metadata", "{}");
    o.opt_str("number", finalized.then_some(invoice.number.as_str()));
    o.bool("paid", invoice.status == "paid");
    o.opt_str("payment_intent", invoice.payment_intent.as_deref());
    o.int("period_end", invoice.period.1);
    o.int("period_start", invoice.period.0);
    o.opt_int("starting_balance", finalized.then_some(0));
    o.str("status", invoice.status);
    o.obj("status_transitions", |s| {
        s.opt_int("finalized_at", invoice.finalized_at);
        s.null("marked_uncollectible_at");
        s.opt_int("paid_at", invoice.paid_at);
        s.opt_int("voided_at", invoice.voided_at);
    });
    o.str("subscription", &invoice.subscription);
    o.int("subtotal", invoice.amount_due);
    o.null("tax");
    o.int("total", invoice.amount_due);
    o.close();
    json
}

fn write_subscription(sub: &SubscriptionRec, customer: &Customer, price: &PriceRec) -> String {
    let mut json = String::with_capacity(1_800);
    let mut o = Obj::open(&mut json);
    o.str("id", &sub.id);
    o.str("object", "subscription");
    o.null("application");
    o.null("application_fee_percent");
    o.int("billing_cycle_anchor", sub.anchor);
    o.opt_int("cancel_at", sub.cancel_at);
    o.bool("cancel_at_period_end", sub.cancel_at_period_end);
    o.opt_int("canceled_at", sub.canceled_at);
    o.obj("cancellation_details", |c| {
        c.null("comment");
        c.opt_str("feedback", sub.cancel_feedback);
        c.opt_str("reason", sub.cancel_reason);
    });
    o.str("collection_method", "charge_automatically");
    o.int("created", sub.created);
    o.str("currency", "eur");
    o.int("current_period_end", sub.period.1);
    o.int("current_period_start", sub.period.0);
    o.str("customer", &customer.id);
    o.null("days_until_due");
    o.str("default_payment_method", &customer.payment_method);
    o.null("description");
    o.null("discount");
    o.opt_int("ended_at", sub.ended_at);
    o.obj("items", |items| {
        items.str("object", "list");
        items.array_of_one("data", |item| {
            item.str("id", &sub.item_id);
            item.str("object", "subscription_item");
            item.int("created", sub.created);
            item.int("current_period_end", sub.period.1);
            item.int("current_period_start", sub.period.0);
            item.raw("metadata", "{}");
            item.obj("price", |p| {
                p.str("id", &price.id);
                p.str("object", "price");
                p.bool("active", true);
                p.str("billing_scheme", "per_unit");
                p.int("created", price.created);
                p.str("currency", "eur");
                p.bool("livemode", false);
                p.null("lookup_key");
                p.raw("metadata", "{}");
                p.str("nickname", price.nickname);
                p.str("product", &price.product);
                p.obj("recurring", |r| {
                    r.str("interval", "month");
                    r.int("interval_count", 1);
                    r.null("meter");
                    r.str("usage_type", "licensed");
                });
                p.str("tax_behavior", "inclusive");
                p.str("type", "recurring");
                p.int("unit_amount", price.amount);
                p.str("unit_amount_decimal", &price.amount.to_string());
            });
            item.int("quantity", 1);
            item.str("subscription", &sub.id);
            item.raw("tax_rates", "[]");
        });
        items.bool("has_more", false);
        items.int("total_count", 1);
        items.str(
            "url",
            &format!("/v1/subscription_items?subscription={}", sub.id),
        );
    });
    o.opt_str("latest_invoice", sub.latest_invoice.as_deref());
    o.bool("livemode", false);
    o.raw("metadata", "{}");
    o.null("pause_collection");
    o.int("quantity", 1);
    o.null("schedule");
    o.int("start_date", sub.created);
    o.str("status", sub.status);
    o.opt_int("trial_end", sub.trial.map(|t| t.1));
    o.opt_int("trial_start", sub.trial.map(|t| t.0));
    o.close();
    json
}

fn write_txn(txn: &TxnRec, now: i64) -> String {
    let mut json = String::with_capacity(700);
    let mut o = Obj::open(&mut json);
    o.str("id", &txn.id);
    o.str("object", "balance_transaction");
    o.int("amount", txn.amount);
    o.int("available_on", txn.available_on);
    o.int("created", txn.created);
    o.str("currency", "eur");
    o.opt_str("description", txn.description.as_deref());
    o.null("exchange_rate");
    o.int("fee", txn.fee);
    if txn.fee > 0 {
        o.array_of_one("fee_details", |f| {
            f.int("amount", txn.fee);
            f.null("application");
            f.str("currency", "eur");
            f.str("description", "Stripe processing fees");
            f.str("type", "stripe_fee");
        });
    } else {
        o.raw("fee_details", "[]");
    }
    o.int("net", txn.amount - txn.fee);
    o.str("reporting_category", txn.kind);
    o.str("source", &txn.source);
    o.str(
        "status",
        if txn.available_on <= now {
            "available"
        } else {
            "pending"
        },
    );
    o.str("type", txn.kind);
    o.close();
    json
}

/// Stripe's standard pricing for a French account: 1.5% + €0.25 for EEA cards, 2.5% + €0.25
/// for UK cards, 3.25% + €0.25 for other international cards (rounded to the cent).
fn stripe_fee(amount: i64, card_country: &str) -> i64 {
    let basis_points = match card_country {
        "GB" => 250,
        "CH" => 325,
        _ => 150,
    };
    (amount * basis_points + 5_000) / 10_000 + 25
}

fn midnight(timestamp: i64) -> i64 {
    timestamp - timestamp.rem_euclid(DAY)
}

fn add_months(start: DateTime<Utc>, months: u32) -> i64 {
    start
        .checked_add_months(Months::new(months))
        .expect("a year of monthly periods stays representable")
        .timestamp()
}

/// An index drawn with probability proportional to `weights[index]`.
fn weighted(rng: &mut fastrand::Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut roll = rng.u32(..total.max(1));
    for (index, weight) in weights.iter().enumerate() {
        if roll < *weight {
            return index;
        }
        roll -= weight;
    }
    weights.len() - 1
}

fn pick_weighted<T: Copy>(rng: &mut fastrand::Rng, choices: &[(T, u32)]) -> T {
    let total: u32 = choices.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.u32(..total.max(1));
    for (value, weight) in choices {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    choices[choices.len() - 1].0
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::OnceLock;
    use std::time::Duration;

    use chrono::TimeZone;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const KEY: &str = "sk_test_sandboxKey0123456789abcdef";

    fn bakery_now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0)
            .single()
            .expect("a valid instant")
    }

    /// Built once: the bakery takes a moment in a debug build.
    fn bakery() -> StripeData {
        static BAKERY: OnceLock<StripeData> = OnceLock::new();
        BAKERY
            .get_or_init(|| StripeData::bakery(bakery_now(), 7))
            .clone()
    }

    fn parse_all(data: &StripeData, resource: &str) -> Vec<Value> {
        data.objects(resource)
            .iter()
            .map(|json| serde_json::from_str(json).expect("stored JSON parses"))
            .collect()
    }

    struct TestServer {
        addr: SocketAddr,
        data: Arc<RwLock<StripeData>>,
        shutdown: CancellationToken,
        handle: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn spawn(data: StripeData) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let data = Arc::new(RwLock::new(data));
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(serve(
            listener,
            data.clone(),
            KEY.to_owned(),
            shutdown.clone(),
        ));
        TestServer {
            addr,
            data,
            shutdown,
            handle,
        }
    }

    /// One request over a fresh connection; returns the status and the parsed JSON body.
    async fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        key: Option<&str>,
    ) -> (u16, Value) {
        let exchange = async {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let auth = key
                .map(|key| format!("Authorization: Bearer {key}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
            );
            // tokio's io-util feature is not enabled, so use the readiness API directly.
            let mut sent = 0;
            while sent < head.len() {
                stream.writable().await.expect("writable");
                match stream.try_write(&head.as_bytes()[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("send request: {e}"),
                }
            }
            let mut response = Vec::new();
            let mut buf = vec![0; 64 * 1024];
            loop {
                stream.readable().await.expect("readable");
                match stream.try_read(&mut buf) {
                    Ok(0) => break response,
                    Ok(n) => response.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("read response: {e}"),
                }
            }
        };
        let response = tokio::time::timeout(Duration::from_secs(20), exchange)
            .await
            .expect("response within 20 s");
        let text = String::from_utf8(response).expect("UTF-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("a status code");
        (
            status,
            serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {body}")),
        )
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
        request(addr, "GET", path, Some(KEY)).await
    }

    /// Follows `starting_after` to the end; returns every object and the number of pages.
    async fn walk(addr: SocketAddr, resource: &str, query: &str) -> (Vec<Value>, usize) {
        let mut objects: Vec<Value> = Vec::new();
        for pages in 1..=1_000 {
            let cursor = objects
                .last()
                .map(|o| format!("&starting_after={}", o["id"].as_str().expect("id")))
                .unwrap_or_default();
            let (status, page) = get(addr, &format!("/v1/{resource}?{query}{cursor}")).await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["object"], "list");
            assert_eq!(page["url"], format!("/v1/{resource}"));
            let data = page["data"].as_array().expect("data array");
            objects.extend(data.iter().cloned());
            if page["has_more"] == false {
                return (objects, pages);
            }
            assert!(!data.is_empty(), "has_more with an empty page");
        }
        panic!("more than 1,000 pages");
    }

    fn assert_list_order(objects: &[Value]) {
        let keys: Vec<(i64, &str)> = objects
            .iter()
            .map(|o| {
                (
                    o["created"].as_i64().expect("created"),
                    o["id"].as_str().expect("id"),
                )
            })
            .collect();
        for pair in keys.windows(2) {
            assert!(
                pair[0] > pair[1],
                "not newest first: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    fn synthetic_id(index: u64) -> String {
        format!("ch_bench{index:016}")
    }

    #[tokio::test]
    async fn pagination_walks_every_bakery_object_once_newest_first() {
        let data = bakery();
        let server = spawn(data.clone()).await;
        for resource in RESOURCES {
            let query = if resource == "subscriptions" {
                "limit=100&status=all"
            } else {
                "limit=100"
            };
            let (objects, pages) = walk(server.addr, resource, query).await;
            let expected = data.len(resource).expect("a known resource");
            assert_eq!(objects.len() as u64, expected, "{resource}");
            assert_eq!(pages as u64, expected.div_ceil(100).max(1), "{resource}");
            let ids: HashSet<&str> = objects
                .iter()
                .map(|o| o["id"].as_str().expect("id"))
                .collect();
            assert_eq!(ids.len(), objects.len(), "{resource} repeats an id");
            assert_list_order(&objects);
        }
    }

    #[tokio::test]
    async fn synthetic_walk_of_1050_charges_takes_11_pages() {
        let start = 1_700_000_000;
        let server = spawn(StripeData::synthetic_charges(
            1_050,
            start,
            start + 30 * DAY,
        ))
        .await;
        let (objects, pages) = walk(server.addr, "charges", "limit=100").await;
        assert_eq!(pages, 11);
        assert_eq!(objects.len(), 1_050);
        let expected: Vec<String> = (0..1_050).rev().map(synthetic_id).collect();
        let ids: Vec<&str> = objects
            .iter()
            .map(|o| o["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, expected);
        assert_list_order(&objects);
        assert_eq!(objects.last().expect("objects")["created"], start);
    }

    #[tokio::test]
    async fn synthetic_ties_in_created_keep_id_order_across_pages() {
        // 500 charges within 10 seconds: ~50 share each second.
        let server = spawn(StripeData::synthetic_charges(
            500,
            1_700_000_000,
            1_700_000_010,
        ))
        .await;
        let (objects, pages) = walk(server.addr, "charges", "limit=7").await;
        assert_eq!((objects.len(), pages), (500, 72));
        assert_list_order(&objects);
    }

    #[tokio::test]
    async fn ending_before_returns_the_newer_neighbours_newest_first() {
        let server = spawn(StripeData::synthetic_charges(
            30,
            1_700_000_000,
            1_700_003_000,
        ))
        .await;
        let ids = |page: &Value| -> Vec<String> {
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|o| o["id"].as_str().expect("id").to_owned())
                .collect()
        };
        let (status, page) = get(
            server.addr,
            &format!("/v1/charges?limit=5&ending_before={}", synthetic_id(10)),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            ids(&page),
            (11..=15).rev().map(synthetic_id).collect::<Vec<_>>()
        );
        assert_eq!(page["has_more"], true);
        let (_, page) = get(
            server.addr,
            &format!("/v1/charges?limit=5&ending_before={}", synthetic_id(25)),
        )
        .await;
        assert_eq!(
            ids(&page),
            (26..=29).rev().map(synthetic_id).collect::<Vec<_>>()
        );
        assert_eq!(page["has_more"], false);
        let (_, page) = get(
            server.addr,
            &format!("/v1/charges?limit=5&starting_after={}", synthetic_id(10)),
        )
        .await;
        assert_eq!(
            ids(&page),
            (5..=9).rev().map(synthetic_id).collect::<Vec<_>>()
        );
        assert_eq!(page["has_more"], true);
    }

    #[tokio::test]
    async fn created_filters_bound_the_listing() {
        let start = 1_700_000_000;
        // Charge i is created at start + 60 i.
        let server = spawn(StripeData::synthetic_charges(1_000, start, start + 60_000)).await;
        let at = |i: i64| start + 60 * i;
        let (objects, pages) = walk(
            server.addr,
            "charges",
            &format!("limit=30&created[gte]={}&created[lt]={}", at(100), at(200)),
        )
        .await;
        assert_eq!((objects.len(), pages), (100, 4));
        assert_eq!(objects.first().expect("objects")["id"], synthetic_id(199));
        assert_eq!(objects.last().expect("objects")["id"], synthetic_id(100));
        // Encoded brackets, exclusive lower and inclusive upper bound.
        let (objects, _) = walk(
            server.addr,
            "charges",
            &format!(
                "limit=100&created%5Bgt%5D={}&created%5Blte%5D={}",
                at(100),
                at(200)
            ),
        )
        .await;
        assert_eq!(objects.len(), 100);
        assert_eq!(objects.first().expect("objects")["id"], synthetic_id(200));
        assert_eq!(objects.last().expect("objects")["id"], synthetic_id(101));
        let (status, page) = get(server.addr, &format!("/v1/charges?created={}", at(42))).await;
        assert_eq!(status, 200);
        assert_eq!(page["data"][0]["id"], synthetic_id(42));
        assert_eq!(page["data"].as_array().expect("data").len(), 1);
        let (status, page) = get(server.addr, "/v1/charges?created[gte]=soon").await;
        assert_eq!(status, 400);
        assert_eq!(page["error"]["param"], "created[gte]");

        // The stored form filters the same way.
        let data = bakery();
        let cut = bakery_now().timestamp() - 30 * DAY;
        let expected = parse_all(&data, "charges")
            .iter()
            .filter(|o| o["created"].as_i64().expect("created") >= cut)
            .count();
        let server = spawn(data).await;
        let (objects, _) = walk(
            server.addr,
            "charges",
            &format!("limit=100&created[gte]={cut}"),
        )
        .await;
        assert_eq!(objects.len(), expected);
        assert!(
            objects
                .iter()
                .all(|o| o["created"].as_i64().expect("created") >= cut)
        );
    }

    #[tokio::test]
    async fn limit_outside_1_to_100_is_rejected_naming_the_parameter() {
        let server = spawn(StripeData::synthetic_charges(
            250,
            1_700_000_000,
            1_700_100_000,
        ))
        .await;
        for bad in ["0", "101", "-3", "ten"] {
            let (status, body) = get(server.addr, &format!("/v1/charges?limit={bad}")).await;
            assert_eq!(status, 400, "limit={bad}");
            assert_eq!(body["error"]["type"], "invalid_request_error");
            assert_eq!(body["error"]["param"], "limit");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .expect("message")
                    .contains("limit")
                    || bad == "ten",
                "{body}"
            );
        }
        for (query, expected) in [
            ("", 10),
            ("?limit=1", 1),
            ("?limit=100", 100),
            ("?limit=37&expand[]=data.customer", 37),
        ] {
            let (status, body) = get(server.addr, &format!("/v1/charges{query}")).await;
            assert_eq!(status, 200, "{query}");
            assert_eq!(
                body["data"].as_array().expect("data").len(),
                expected,
                "{query}"
            );
            assert_eq!(body["has_more"], true);
        }
    }

    #[tokio::test]
    async fn wrong_or_missing_key_is_401_without_echoing_the_key() {
        let server = spawn(StripeData::synthetic_charges(
            5,
            1_700_000_000,
            1_700_000_500,
        ))
        .await;
        let wrong = "sk_test_wrongSecretValue9876";
        for path in ["/v1/charges", "/v1/nothing-here"] {
            let (status, body) = request(server.addr, "GET", path, Some(wrong)).await;
            assert_eq!(status, 401);
            assert_eq!(body["error"]["type"], "invalid_request_error");
            assert_eq!(
                body["error"]["message"],
                "Invalid API Key provided: sk_test_****9876"
            );
            assert!(!body.to_string().contains("wrongSecret"));
        }
        let (status, body) = request(server.addr, "GET", "/v1/charges", None).await;
        assert_eq!(status, 401);
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .starts_with("You did not provide an API key")
        );
        // A key that is too short to hide shows no characters at all.
        let (status, body) = request(server.addr, "GET", "/v1/charges", Some("abc")).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["message"], "Invalid API Key provided: ****");
        let (status, _) = request(server.addr, "GET", "/v1/charges", Some(KEY)).await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn unknown_cursor_is_400_no_such_object() {
        let server = spawn(bakery()).await;
        let (status, body) = get(server.addr, "/v1/charges?starting_after=ch_x").await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], "No such charge: 'ch_x'");
        assert_eq!(body["error"]["param"], "starting_after");
        assert_eq!(body["error"]["code"], "resource_missing");
        let (status, body) = get(
            server.addr,
            "/v1/balance_transactions?ending_before=txn_gone",
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"]["message"],
            "No such balance transaction: 'txn_gone'"
        );
        assert_eq!(body["error"]["param"], "ending_before");

        let server = spawn(StripeData::synthetic_charges(
            100,
            1_700_000_000,
            1_700_010_000,
        ))
        .await;
        for id in [
            synthetic_id(100),
            "ch_bench12".to_owned(),
            "ch_x".to_owned(),
        ] {
            let (status, body) =
                get(server.addr, &format!("/v1/charges?starting_after={id}")).await;
            assert_eq!(status, 400, "{id}");
            assert_eq!(body["error"]["message"], format!("No such charge: '{id}'"));
        }
        let (status, body) = get(
            server.addr,
            &format!(
                "/v1/charges?starting_after={0}&ending_before={0}",
                synthetic_id(5)
            ),
        )
        .await;
        assert_eq!(status, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .contains("only specify one")
        );
    }

    #[tokio::test]
    async fn retrieve_and_unknown_paths_answer_like_stripe() {
        let server = spawn(StripeData::synthetic_charges(
            100,
            1_700_000_000,
            1_700_010_000,
        ))
        .await;
        let (status, body) = get(server.addr, &format!("/v1/charges/{}", synthetic_id(42))).await;
        assert_eq!(status, 200);
        assert_eq!(body["id"], synthetic_id(42));
        let (status, body) = get(server.addr, "/v1/charges/ch_missing").await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["param"], "id");
        for (method, path) in [
            ("GET", "/v1/customers"),
            ("GET", "/v2/charges"),
            ("POST", "/v1/charges"),
        ] {
            let (status, body) = request(server.addr, method, path, Some(KEY)).await;
            assert_eq!(status, 404, "{method} {path}");
            let message = body["error"]["message"].as_str().expect("message");
            assert!(
                message.starts_with(&format!("Unrecognized request URL ({method}: {path})")),
                "{message}"
            );
        }
    }

    #[test]
    fn bakery_has_failed_and_refunded_charges_and_refunds_point_at_them() {
        let data = bakery();
        let now = bakery_now().timestamp();
        let charges = parse_all(&data, "charges");
        let by_id: HashMap<&str, &Value> = charges
            .iter()
            .map(|c| (c["id"].as_str().expect("id"), c))
            .collect();
        let failed = charges.iter().filter(|c| c["status"] == "failed").count();
        let rate = failed as f64 / charges.len() as f64;
        assert!((0.03..0.07).contains(&rate), "failed share {rate}");
        for charge in charges.iter().filter(|c| c["status"] == "failed") {
            assert!(
                charge["failure_code"].is_string() && charge["failure_message"].is_string(),
                "{charge}"
            );
            assert_eq!(charge["paid"], false);
            assert_eq!(charge["amount_captured"], 0);
            assert!(charge["balance_transaction"].is_null());
        }
        assert!(
            charges
                .iter()
                .all(|c| c["created"].as_i64().expect("created") < now)
        );
        assert!(charges.iter().all(|c| {
            c["customer"]
                .as_str()
                .expect("customer")
                .starts_with("cus_")
        }));

        let refunds = parse_all(&data, "refunds");
        let refund_rate = refunds.len() as f64 / (charges.len() - failed) as f64;
        assert!(
            (0.01..0.035).contains(&refund_rate),
            "refund share {refund_rate}"
        );
        let mut refunded_by_charge: HashMap<&str, i64> = HashMap::new();
        for refund in &refunds {
            let charge = by_id[refund["charge"].as_str().expect("charge")];
            assert_eq!(charge["status"], "succeeded");
            assert!(refund["created"].as_i64() > charge["created"].as_i64());
            assert!(refund["created"].as_i64().expect("created") < now);
            *refunded_by_charge
                .entry(refund["charge"].as_str().expect("charge"))
                .or_default() += refund["amount"].as_i64().expect("amount");
        }
        for charge in &charges {
            let refunded = refunded_by_charge
                .get(charge["id"].as_str().expect("id"))
                .copied()
                .unwrap_or(0);
            assert_eq!(charge["amount_refunded"], refunded, "{charge}");
            assert_eq!(
                charge["refunded"],
                refunded == charge["amount"].as_i64().expect("amount")
            );
        }
        assert!(charges.iter().any(|c| c["refunded"] == true));
        assert!(
            charges
                .iter()
                .any(|c| c["refunded"] == false && c["amount_refunded"].as_i64() > Some(0))
        );

        let txns = parse_all(&data, "balance_transactions");
        let sources: HashSet<&str> = txns
            .iter()
            .map(|t| t["source"].as_str().expect("source"))
            .collect();
        assert!(
            charges
                .iter()
                .filter(|c| c["status"] == "succeeded")
                .all(|c| sources.contains(c["id"].as_str().expect("id")))
        );
        assert!(
            refunds
                .iter()
                .all(|r| sources.contains(r["id"].as_str().expect("id")))
        );
        for txn in &txns {
            assert_eq!(
                txn["net"].as_i64(),
                Some(txn["amount"].as_i64().expect("amount") - txn["fee"].as_i64().expect("fee"))
            );
        }
        assert!(txns.iter().any(|t| t["type"] == "payout"));

        let subscriptions = parse_all(&data, "subscriptions");
        assert!(
            (200..700).contains(&subscriptions.len()),
            "{} subscriptions",
            subscriptions.len()
        );
        let statuses: HashSet<&str> = subscriptions
            .iter()
            .map(|s| s["status"].as_str().expect("status"))
            .collect();
        assert!(
            statuses.contains("active") && statuses.contains("canceled"),
            "{statuses:?}"
        );
        let subscription_ids: HashSet<&str> = subscriptions
            .iter()
            .map(|s| s["id"].as_str().expect("id"))
            .collect();
        let invoices = parse_all(&data, "invoices");
        assert!(
            invoices
                .iter()
                .all(|i| subscription_ids
                    .contains(i["subscription"].as_str().expect("subscription")))
        );
        let invoice_statuses: HashSet<&str> = invoices
            .iter()
            .map(|i| i["status"].as_str().expect("status"))
            .collect();
        assert!(
            invoice_statuses.contains("paid") && invoice_statuses.contains("void"),
            "{invoice_statuses:?}"
        );
        for invoice in invoices
            .iter()
            .filter(|i| i["status"] == "paid" && i["amount_paid"].as_i64() > Some(0))
        {
            let charge = by_id[invoice["charge"]
                .as_str()
                .expect("a paid invoice has a charge")];
            assert_eq!(charge["status"], "succeeded");
            assert_eq!(charge["amount"], invoice["amount_paid"]);
            assert_eq!(charge["invoice"], invoice["id"]);
        }
    }

    #[test]
    fn bakery_sells_30_to_60_orders_a_day_with_a_christmas_peak() {
        let data = bakery();
        let mut per_day: HashMap<i64, u32> = HashMap::new();
        let mut per_month = [0u32; 12];
        for charge in parse_all(&data, "charges")
            .iter()
            .filter(|c| c["metadata"]["order_id"].is_string())
        {
            let created = charge["created"].as_i64().expect("created");
            *per_day.entry(created.div_euclid(DAY)).or_default() += 1;
            per_month[DateTime::from_timestamp(created, 0).expect("time").month0() as usize] += 1;
        }
        let full_days: Vec<u32> = per_day
            .iter()
            .filter(|(day, _)| {
                **day * DAY > bakery_now().timestamp() - 364 * DAY
                    && (*day + 1) * DAY <= bakery_now().timestamp()
            })
            .map(|(_, n)| *n)
            .collect();
        let mean = full_days.iter().sum::<u32>() as f64 / full_days.len() as f64;
        assert!((35.0..55.0).contains(&mean), "mean {mean}");
        assert!(
            full_days.iter().all(|n| (20..=80).contains(n)),
            "{full_days:?}"
        );
        assert!(
            per_month[11] as f64 > per_month[7] as f64 * 1.2,
            "{per_month:?}"
        );
    }

    #[test]
    fn bakery_is_deterministic_for_a_seed() {
        let now = bakery_now();
        let first = StripeData::bakery(now, 7);
        let again = bakery();
        let other = StripeData::bakery(now, 8);
        for resource in RESOURCES {
            assert_eq!(
                first.objects(resource),
                again.objects(resource),
                "{resource}"
            );
        }
        assert_ne!(
            first.objects("charges")[..20],
            other.objects("charges")[..20]
        );
    }

    #[tokio::test]
    async fn subscriptions_hide_ended_ones_unless_status_asks() {
        let data = bakery();
        let all = parse_all(&data, "subscriptions");
        let canceled = all.iter().filter(|s| s["status"] == "canceled").count();
        let server = spawn(data).await;
        let (listed, _) = walk(server.addr, "subscriptions", "limit=100").await;
        assert_eq!(listed.len(), all.len() - canceled);
        assert!(listed.iter().all(|s| s["status"] != "canceled"));
        let (listed, _) = walk(server.addr, "subscriptions", "limit=100&status=canceled").await;
        assert_eq!(listed.len(), canceled);
        let (listed, _) = walk(server.addr, "subscriptions", "limit=100&status=active").await;
        assert!(!listed.is_empty() && listed.iter().all(|s| s["status"] == "active"));
        let (listed, _) = walk(server.addr, "subscriptions", "limit=100&status=all").await;
        assert_eq!(listed.len(), all.len());
        let (status, body) = get(server.addr, "/v1/subscriptions?status=sleeping").await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["param"], "status");
    }

    #[tokio::test]
    async fn equality_filters_select_matching_objects_in_both_forms() {
        let data = bakery();
        let refund = parse_all(&data, "refunds").remove(0);
        let charge = refund["charge"].as_str().expect("charge").to_owned();
        let server = spawn(data).await;
        let (refunds, _) = walk(
            server.addr,
            "refunds",
            &format!("limit=100&charge={charge}"),
        )
        .await;
        assert!(!refunds.is_empty() && refunds.iter().all(|r| r["charge"] == charge.as_str()));
        let (payouts, _) = walk(server.addr, "balance_transactions", "limit=100&type=payout").await;
        assert!(
            payouts.len() >= 50 && payouts.iter().all(|t| t["type"] == "payout"),
            "{} payouts",
            payouts.len()
        );

        let synthetic = StripeData::synthetic_charges(2_000, 1_700_000_000, 1_700_200_000);
        let customer = synthetic
            .get("charges", &synthetic_id(1_999))
            .expect("charge")["customer"]
            .as_str()
            .expect("customer")
            .to_owned();
        let server = spawn(synthetic).await;
        let (charges, _) = walk(
            server.addr,
            "charges",
            &format!("limit=10&customer={customer}"),
        )
        .await;
        assert!(!charges.is_empty() && charges.iter().all(|c| c["customer"] == customer.as_str()));
        assert_eq!(charges[0]["id"], synthetic_id(1_999));
    }

    #[test]
    fn synthetic_charge_is_about_1_25_kb_of_stripe_shaped_json() {
        let data = StripeData::synthetic_charges(5_000, 1_700_000_000, 1_731_536_000);
        let objects = data.objects("charges");
        let sizes: Vec<usize> = objects.iter().map(String::len).collect();
        let (min, max) = (sizes.iter().min().copied(), sizes.iter().max().copied());
        assert!(
            sizes.iter().all(|size| (1_100..=1_400).contains(size)),
            "sizes from {min:?} to {max:?}"
        );
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((1_150..=1_350).contains(&mean), "mean {mean}");
        let charges: Vec<Value> = objects
            .iter()
            .map(|json| serde_json::from_str(json).expect("valid JSON"))
            .collect();
        for charge in &charges {
            assert_eq!(charge["object"], "charge");
            assert_eq!(charge["currency"], "eur");
            assert_eq!(charge["livemode"], false);
            assert!(charge["amount"].as_i64() > Some(0));
            assert_eq!(charge["payment_method_details"]["type"], "card");
            assert_eq!(charge["billing_details"]["address"]["country"], "FR");
        }
        let failed = charges.iter().filter(|c| c["status"] == "failed").count();
        let refunded = charges.iter().filter(|c| c["refunded"] == true).count();
        assert!((100..300).contains(&failed), "{failed} failed");
        assert!((30..130).contains(&refunded), "{refunded} refunded");
        assert_eq!(
            data.objects("charges")[17],
            objects[17],
            "generated the same way twice"
        );
        assert_eq!(data.len("refunds"), Some(0));
    }

    #[tokio::test]
    async fn upsert_shows_in_next_listing() {
        let server = spawn(bakery()).await;
        let (_, page) = get(server.addr, "/v1/charges?limit=3").await;
        let mut charge = page["data"][2].clone();
        assert_eq!(charge["refunded"], false);
        let id = charge["id"].as_str().expect("id").to_owned();
        charge["refunded"] = true.into();
        charge["amount_refunded"] = charge["amount"].clone();
        let newest = page["data"][0]["created"].as_i64().expect("created");
        let refund = serde_json::json!({
            "id": "re_sandboxTestRefund", "object": "refund", "amount": charge["amount"], "charge": id,
            "created": newest + 60, "currency": "eur", "status": "succeeded", "reason": "requested_by_customer",
        });
        {
            let mut data = server.data.write().await;
            data.upsert("charges", charge);
            data.upsert("refunds", refund);
        }
        let (_, page) = get(server.addr, "/v1/charges?limit=3").await;
        assert_eq!(
            page["data"][2]["id"],
            id.as_str(),
            "the changed charge keeps its place"
        );
        assert_eq!(page["data"][2]["refunded"], true);
        let (_, page) = get(server.addr, &format!("/v1/refunds?limit=1&charge={id}")).await;
        assert_eq!(page["data"][0]["id"], "re_sandboxTestRefund");
        let (_, page) = get(server.addr, "/v1/refunds?limit=1").await;
        assert_eq!(
            page["data"][0]["id"], "re_sandboxTestRefund",
            "the newest refund lists first"
        );
        let before = server.data.read().await.len("refunds");
        server.data.write().await.upsert(
            "refunds",
            serde_json::json!({"id": "re_sandboxTestRefund", "created": 1}),
        );
        assert_eq!(
            server.data.read().await.len("refunds"),
            before,
            "an upsert replaces, never duplicates"
        );
        let (_, page) = get(server.addr, "/v1/refunds?limit=1").await;
        assert_ne!(
            page["data"][0]["id"], "re_sandboxTestRefund",
            "moved to its new created time"
        );
    }

    #[tokio::test]
    async fn serve_returns_once_shutdown_is_cancelled() {
        let server = spawn(StripeData::empty()).await;
        let (status, page) = get(server.addr, "/v1/invoices").await;
        assert_eq!(
            (status, page["has_more"].clone(), page["data"].clone()),
            (200, false.into(), serde_json::json!([]))
        );
        server.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), server.handle)
            .await
            .expect("stops within 10 s");
        assert!(result.expect("server task did not panic").is_ok());
        assert!(
            TcpStream::connect(server.addr).await.is_err(),
            "the listener is closed"
        );
    }

    #[test]
    fn query_keys_and_values_are_url_decoded() {
        for (raw, decoded) in [
            ("created%5Bgte%5D", "created[gte]"),
            ("a+b", "a b"),
            ("100%25", "100%"),
            ("bad%zz", "bad%zz"),
            ("end%4", "end%4"),
            ("plain", "plain"),
        ] {
            assert_eq!(percent_decode(raw), decoded, "{raw}");
        }
        let query = ListQuery::parse(
            Resource::Charges,
            "created%5Bgt%5D=10&created[lt]=20&limit=5&foo=bar&customer=cus_1",
        )
        .expect("valid");
        assert_eq!(
            (query.created_min, query.created_max, query.limit),
            (Some(11), Some(19), 5)
        );
        assert_eq!(
            query.filters,
            vec![Filter {
                field: "customer",
                values: vec!["cus_1".to_owned()],
                exclude: false
            }]
        );
    }

    #[test]
    fn a_wrong_key_is_masked_to_its_prefix_and_last_four() {
        assert_eq!(mask_key("sk_test_abcdefgh1234"), "sk_test_****1234");
        assert_eq!(mask_key("rk_live_abcdefgh5678"), "rk_live_****5678");
        assert_eq!(mask_key("sk_test_short"), "sk_test_****");
        assert_eq!(mask_key("whatever-token-9999"), "****9999");
    }
}
