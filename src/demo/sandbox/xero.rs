//! A Xero Accounting API (2.0) on loopback: the ledger of the bakery's wholesale arm, its
//! monthly invoices to cafés, hotels and offices and their payments (see
//! [`super::books`]).
//!
//! Serves what the `xero` preset reads, as Xero documents it:
//! - `Authorization: Bearer <access token>` (the demo configures a fixed one instead of the
//!   OAuth2 refresh flow) and the organisation in `Xero-tenant-id`; a missing or wrong
//!   token gets 401 problem details (`{"Title": "Unauthorized", "Detail":
//!   "AuthenticationUnsuccessful", ...}`), a tenant the token was not granted 403
//!   (`"Detail": "AuthorizationUnsuccessful"`):
//!   <https://developer.xero.com/documentation/guides/oauth2/auth-flow/>,
//!   <https://developer.xero.com/documentation/api/accounting/responsecodes>
//! - `GET /api.xro/2.0/Invoices` and `GET /api.xro/2.0/Payments`: `If-Modified-Since` (UTC
//!   `yyyy-mm-ddThh:mm:ss`, or an HTTP date: only records whose `UpdatedDateUTC` is at or
//!   after it), `order` (`Field [ASC|DESC]`; 400 `QueryParseException` for a field the
//!   type lacks), `page` (from 1) and `pageSize` (100 by default, at most 1000) with the
//!   `pagination` block `{page, pageSize, pageCount, itemCount}`; without `page` every
//!   record, invoices without their line items:
//!   <https://developer.xero.com/documentation/api/accounting/invoices>,
//!   <https://developer.xero.com/documentation/api/accounting/payments>
//! - Dates as `/Date(1518685950940+0000)/` (UTC milliseconds) and the answer envelope
//!   (`Id`, `Status`, `ProviderName`, `DateTimeUTC`):
//!   <https://developer.xero.com/documentation/api/accounting/requests-and-responses>
//! - `GET /api.xro/2.0/Organisation` (the preset's probe):
//!   <https://developer.xero.com/documentation/api/accounting/organisation>
//! - The rate-limit headers `X-MinLimit-Remaining`, `X-DayLimit-Remaining` and
//!   `X-AppMinLimit-Remaining` on every answer:
//!   <https://developer.xero.com/documentation/guides/oauth2/limits/>
//!
//! Not served: `where` and `Statuses` filters (400), single records by id, XML (every
//! answer is JSON whatever `Accept` says), and the limits themselves (never 429).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::books::{Books, Invoice, uuid};
use super::{DAY, Scenario, XERO_ACCESS_TOKEN, XERO_TENANT_ID, constant_time_eq, query_pairs};

const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_PAGE_SIZE: usize = 100;

/// A record as stored: the fields lists sort and filter on, and its JSON (the full one
/// and, for invoices, the summary without line items).
struct Stored {
    updated_ms: i64,
    /// Sort keys by field name: numbers (times as milliseconds) or text.
    keys: BTreeMap<&'static str, Value>,
    full: Value,
    summary: Value,
}

/// The wholesale arm's organisation.
pub struct XeroData {
    invoices: Vec<Stored>,
    payments: Vec<Stored>,
    organisation_id: String,
    now: i64,
}

/// Unix milliseconds as Xero writes dates: `/Date(1518685950940+0000)/`.
fn xero_date(ms: i64) -> String {
    format!("/Date({ms}+0000)/")
}

fn date_string(time: i64) -> String {
    chrono::DateTime::from_timestamp(time, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT00:00:00")
        .to_string()
}

/// The day of `time` as Xero dates a transaction: UTC midnight, in milliseconds.
fn day_ms(time: i64) -> i64 {
    (time - time.rem_euclid(DAY)) * 1000
}

fn invoice_json(
    invoice: &Invoice,
    id: &str,
    contact: &Value,
    payment: Option<(&str, i64)>,
    line_ids: &[String],
) -> (Value, Value) {
    let (status, paid) = if invoice.voided {
        ("VOIDED", 0.0)
    } else if invoice.paid.is_some() {
        ("PAID", invoice.total())
    } else {
        ("AUTHORISED", 0.0)
    };
    let due = if invoice.voided {
        0.0
    } else {
        super::books::cents(invoice.total() - paid)
    };
    let month = chrono::DateTime::from_timestamp(invoice.date, 0)
        .unwrap_or_default()
        .format("%B %Y");
    let mut summary = json!({
        "Type": "ACCREC",
        "InvoiceID": id,
        "InvoiceNumber": format!("INV-{:04}", invoice.number),
        "Reference": format!("Deliveries {month}"),
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": due,
        "AmountPaid": paid,
        "AmountCredited": 0.0,
        "SentToContact": true,
        "CurrencyRate": 1.0,
        "IsDiscounted": false,
        "HasAttachments": false,
        "HasErrors": false,
        "Contact": contact,
        "DateString": date_string(invoice.date),
        "Date": xero_date(invoice.date * 1000),
        "DueDateString": date_string(invoice.due),
        "DueDate": xero_date(invoice.due * 1000),
        "Status": status,
        "LineAmountTypes": "Exclusive",
        "SubTotal": invoice.net(),
        "TotalTax": invoice.tax(),
        "Total": invoice.total(),
        "UpdatedDateUTC": xero_date(invoice.updated() * 1000),
        "CurrencyCode": "EUR",
    });
    if let Some((payment_id, time)) = payment {
        summary["FullyPaidOnDate"] = json!(xero_date(day_ms(time)));
        summary["Payments"] = json!([{
            "PaymentID": payment_id,
            "Date": xero_date(day_ms(time)),
            "Amount": paid,
            "Reference": format!("VIR INV-{:04}", invoice.number),
            "CurrencyRate": 1.0,
            "HasAccount": false,
            "HasValidationErrors": false,
        }]);
    }
    let mut full = summary.clone();
    full["LineItems"] = invoice
        .lines
        .iter()
        .zip(line_ids)
        .map(|(line, line_id)| {
            json!({
                "Description": line.description,
                "UnitAmount": line.amount,
                "TaxType": "OUTPUT",
                "TaxAmount": super::books::cents(line.amount * invoice.tax_rate),
                "LineAmount": line.amount,
                "AccountCode": "200",
                "Tracking": [],
                "Quantity": 1.0,
                "LineItemID": line_id,
            })
        })
        .collect();
    (full, summary)
}

impl XeroData {
    /// The wholesale ledger of the scenario's year.
    pub fn bakery(scenario: &Scenario) -> XeroData {
        let books = Books::bakery(scenario);
        let mut rng = scenario.rng(0x7865_726f);
        let organisation_id = uuid(&mut rng);
        let account_id = uuid(&mut rng);
        let mut contacts: BTreeMap<&str, Value> = BTreeMap::new();
        let mut invoices = Vec::new();
        let mut payments = Vec::new();
        for invoice in &books.supply {
            let contact = contacts
                .entry(invoice.customer)
                .or_insert_with(|| json!({"ContactID": uuid(&mut rng), "Name": invoice.customer}))
                .clone();
            let id = uuid(&mut rng);
            let line_ids: Vec<String> = invoice.lines.iter().map(|_| uuid(&mut rng)).collect();
            let payment = invoice.paid.map(|time| (uuid(&mut rng), time));
            let (full, summary) = invoice_json(
                invoice,
                &id,
                &contact,
                payment.as_ref().map(|(id, time)| (id.as_str(), *time)),
                &line_ids,
            );
            let mut keys = BTreeMap::new();
            keys.insert("UpdatedDateUTC", json!(invoice.updated() * 1000));
            keys.insert("Date", json!(invoice.date * 1000));
            keys.insert("DueDate", json!(invoice.due * 1000));
            keys.insert("InvoiceNumber", json!(format!("INV-{:04}", invoice.number)));
            keys.insert("Total", json!(invoice.total()));
            keys.insert("AmountDue", full["AmountDue"].clone());
            keys.insert("Status", full["Status"].clone());
            if let Some((payment_id, time)) = payment {
                let record = json!({
                    "PaymentID": payment_id,
                    "Date": xero_date(day_ms(time)),
                    "BankAmount": invoice.total(),
                    "Amount": invoice.total(),
                    "Reference": format!("VIR INV-{:04}", invoice.number),
                    "CurrencyRate": 1.0,
                    "PaymentType": "ACCRECPAYMENT",
                    "Status": "AUTHORISED",
                    "UpdatedDateUTC": xero_date(time * 1000),
                    "HasAccount": true,
                    "IsReconciled": time < scenario.now - 7 * DAY,
                    "Account": {"AccountID": account_id, "Code": "512"},
                    "Invoice": {
                        "Type": "ACCREC",
                        "InvoiceID": id,
                        "InvoiceNumber": format!("INV-{:04}", invoice.number),
                        "Contact": contact,
                    },
                });
                let mut keys = BTreeMap::new();
                keys.insert("UpdatedDateUTC", json!(time * 1000));
                keys.insert("Date", json!(day_ms(time)));
                keys.insert("Amount", json!(invoice.total()));
                payments.push(Stored {
                    updated_ms: time * 1000,
                    keys,
                    full: record.clone(),
                    summary: record,
                });
            }
            invoices.push(Stored {
                updated_ms: invoice.updated() * 1000,
                keys,
                full,
                summary,
            });
        }
        payments.sort_by_key(|payment| payment.updated_ms);
        XeroData {
            invoices,
            payments,
            organisation_id,
            now: scenario.now,
        }
    }

    /// How many invoices and payments it holds.
    pub fn counts(&self) -> (usize, usize) {
        (self.invoices.len(), self.payments.len())
    }
}

/// The routes, under the caller's prefix.
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(XeroData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<XeroData>) -> Router {
    Router::new()
        .route("/api.xro/2.0/Invoices", get(invoices))
        .route("/api.xro/2.0/Payments", get(payments))
        .route("/api.xro/2.0/Organisation", get(organisation))
        .fallback(not_found)
        .with_state(data)
}

fn with_limits(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-minlimit-remaining", HeaderValue::from_static("59"));
    headers.insert("x-daylimit-remaining", HeaderValue::from_static("4999"));
    headers.insert("x-appminlimit-remaining", HeaderValue::from_static("9999"));
    response
}

/// An instance id for problem details (fixed: the sandbox keeps no log).
const INSTANCE: &str = "0bb3b4bf-8b0b-4d53-9e65-2ea2b8c4f0a1";

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    with_limits(super::json(
        status,
        json!({
            "Type": null,
            "Title": title,
            "Status": status.as_u16(),
            "Detail": detail,
            "Instance": INSTANCE,
            "Extensions": {},
        })
        .to_string(),
    ))
}

fn bad_request(kind: &str, number: u32, message: &str) -> Response {
    with_limits(super::json(
        StatusCode::BAD_REQUEST,
        json!({"ErrorNumber": number, "Type": kind, "Message": message}).to_string(),
    ))
}

fn authorize(headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(token.trim().as_bytes(), XERO_ACCESS_TOKEN.as_bytes()) {
        let mut refused = problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AuthenticationUnsuccessful",
        );
        refused.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return Err(refused);
    }
    let tenant = headers
        .get("xero-tenant-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !tenant.trim().eq_ignore_ascii_case(XERO_TENANT_ID) {
        return Err(problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "AuthorizationUnsuccessful",
        ));
    }
    Ok(())
}

async fn not_found(headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    with_limits(super::json(
        StatusCode::NOT_FOUND,
        json!({"Title": "NotFound", "Status": 404, "Detail": "The resource you're looking for cannot be found"})
            .to_string(),
    ))
}

fn envelope(data: &XeroData) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("Id".into(), json!(INSTANCE));
    map.insert("Status".into(), json!("OK"));
    map.insert("ProviderName".into(), json!("Scorekeeper demo"));
    map.insert("DateTimeUTC".into(), json!(xero_date(data.now * 1000)));
    map
}

async fn organisation(State(data): State<Arc<XeroData>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&headers) {
        return refused;
    }
    let mut body = envelope(&data);
    body.insert(
        "Organisations".into(),
        json!([{
            "OrganisationID": data.organisation_id,
            "Name": "Demo Bakery Wholesale",
            "LegalName": "Demo Bakery Wholesale SAS",
            "PaysTax": true,
            "Version": "GLOBAL",
            "OrganisationType": "COMPANY",
            "BaseCurrency": "EUR",
            "CountryCode": "FR",
            "IsDemoCompany": false,
            "OrganisationStatus": "ACTIVE",
            "FinancialYearEndDay": 31,
            "FinancialYearEndMonth": 12,
            "DefaultSalesTax": "Tax Exclusive",
            "Timezone": "ROMANCESTANDARDTIME",
            "OrganisationEntityType": "COMPANY",
            "ShortCode": "!dB4k7",
            "LineOfBusiness": "Bakery wholesale",
            "CreatedDateUTC": xero_date((data.now - 3 * 365 * DAY) * 1000),
        }]),
    );
    with_limits(super::json(StatusCode::OK, Value::Object(body).to_string()))
}

/// `If-Modified-Since` as unix milliseconds: Xero's `yyyy-mm-ddThh:mm:ss` (UTC) or an HTTP
/// date.
fn modified_since(headers: &HeaderMap) -> Result<Option<i64>, String> {
    let Some(value) = headers.get(header::IF_MODIFIED_SINCE) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|time| time.and_utc().timestamp_millis())
        .or_else(|_| chrono::DateTime::parse_from_rfc2822(text).map(|time| time.timestamp_millis()))
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text).map(|time| time.timestamp_millis()))
        .map(Some)
        .map_err(|_| format!("If-Modified-Since \"{text}\" is not a date"))
}

fn list(
    data: &XeroData,
    records: &[Stored],
    field: &str,
    type_name: &str,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    if let Err(refused) = authorize(headers) {
        return refused;
    }
    let query = query_pairs(raw);
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    for unsupported in ["where", "Statuses", "IDs", "ContactIDs", "InvoiceNumbers"] {
        if param(unsupported).is_some() {
            return bad_request(
                "QueryParseException",
                16,
                &format!("The sandbox does not filter by `{unsupported}`"),
            );
        }
    }
    let since = match modified_since(headers) {
        Ok(since) => since,
        Err(message) => return bad_request("ValidationException", 10, &message),
    };
    let mut matching: Vec<&Stored> = records
        .iter()
        .filter(|record| since.is_none_or(|since| record.updated_ms >= since))
        .collect();
    if let Some(order) = param("order") {
        let mut words = order.split_whitespace();
        let name = words.next().unwrap_or_default();
        let descending = match words.next().map(str::to_ascii_uppercase).as_deref() {
            None | Some("ASC") => false,
            Some("DESC") => true,
            Some(other) => {
                return bad_request(
                    "QueryParseException",
                    16,
                    &format!("Unexpected '{other}' in order: use ASC or DESC"),
                );
            }
        };
        let Some(field_name) = records
            .first()
            .and_then(|record| {
                record
                    .keys
                    .keys()
                    .find(|key| key.eq_ignore_ascii_case(name))
            })
            .copied()
        else {
            return bad_request(
                "QueryParseException",
                16,
                &format!("No property or field '{name}' exists in type '{type_name}'"),
            );
        };
        matching.sort_by(|a, b| {
            let (x, y) = (&a.keys[field_name], &b.keys[field_name]);
            let by = match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                _ => x.as_str().cmp(&y.as_str()),
            };
            if descending { by.reverse() } else { by }
        });
    }
    let mut body = envelope(data);
    match param("page") {
        None => {
            let all: Vec<&Value> = matching.iter().map(|record| &record.summary).collect();
            body.insert(field.into(), json!(all));
        }
        Some(text) => {
            let Some(page) = text.parse::<usize>().ok().filter(|page| *page >= 1) else {
                return bad_request(
                    "ValidationException",
                    10,
                    &format!("page \"{text}\" is not a page number"),
                );
            };
            let size = match param("pageSize").map(str::parse::<usize>) {
                None => DEFAULT_PAGE_SIZE,
                Some(Ok(size)) if size >= 1 => size.min(MAX_PAGE_SIZE),
                Some(_) => {
                    return bad_request(
                        "ValidationException",
                        10,
                        "pageSize must be a number from 1 to 1000",
                    );
                }
            };
            let start = ((page - 1) * size).min(matching.len());
            let end = (start + size).min(matching.len());
            let items: Vec<&Value> = matching[start..end]
                .iter()
                .map(|record| &record.full)
                .collect();
            body.insert(
                "pagination".into(),
                json!({
                    "page": page,
                    "pageSize": size,
                    "pageCount": matching.len().div_ceil(size),
                    "itemCount": matching.len(),
                }),
            );
            body.insert(field.into(), json!(items));
        }
    }
    with_limits(super::json(StatusCode::OK, Value::Object(body).to_string()))
}

async fn invoices(
    State(data): State<Arc<XeroData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    list(
        &data,
        &data.invoices,
        "Invoices",
        "Invoice",
        raw.as_deref(),
        &headers,
    )
}

async fn payments(
    State(data): State<Arc<XeroData>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    list(
        &data,
        &data.payments,
        "Payments",
        "Payment",
        raw.as_deref(),
        &headers,
    )
}
