//! A QuickBooks Online Accounting API (v3) on loopback: the bakery's own ledger, its
//! catering invoices and their payments, and the monthly Profit and Loss (see
//! [`super::books`]).
//!
//! Serves what the `quickbooks` preset reads, as Intuit documents it:
//! - `Authorization: Bearer <access token>` (the demo configures a fixed one instead of the
//!   OAuth2 refresh flow); without a valid one, 401 with the lower-case fault body
//!   (`{"fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200;
//!   statusCode=401", ...}], "type": "AUTHENTICATION"}}`); another company's realm id, 403
//!   `ApplicationAuthorizationFailed` (code 3100):
//!   <https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0>,
//!   <https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes>
//! - `GET /v3/company/{realmId}/query?query=...`: `SELECT * | COUNT(*) FROM Invoice |
//!   Payment [WHERE field op 'value' [AND ...]] [ORDERBY field [ASC|DESC]] [STARTPOSITION
//!   n] [MAXRESULTS n]` with `=`, `<`, `>`, `<=`, `>=`, `!=`, `IN`; positions from 1, 100
//!   entities a page by default and at most 1000; the answer `{"QueryResponse": {"Invoice":
//!   [...], "startPosition", "maxResults"}, "time"}`, `QueryResponse` empty when nothing
//!   matches; a statement it cannot read, 400 `ValidationFault` code 4000:
//!   <https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries>
//! - The invoice and payment objects (`MetaData.LastUpdatedTime` moves when a payment is
//!   applied, `Balance`, `LinkedTxn`):
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice>,
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/payment>
//! - `GET /v3/company/{realmId}/companyinfo/{realmId}` (the preset's probe):
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/companyinfo>
//! - `GET /v3/company/{realmId}/reports/ProfitAndLoss?start_date&end_date
//!   &summarize_column_by=Month` (or `Total`, the default; this fiscal year to date
//!   without dates): a column per month (`StartDate`/`EndDate` in its `MetaData`) and a
//!   `Total` column; `Income`, `COGS`, `Expenses` sections of account rows (the `Sales`
//!   parent account holds three sub-accounts), the summary-only `GrossProfit`,
//!   `NetOperatingIncome` and `NetIncome`; empty cells where nothing was posted, accounts
//!   without postings in the range left out:
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/report-entities/profitandloss>
//!
//! The books, on the accrual basis and net of VAT: income is the counter and web-shop
//! sales, the catering invoices served here and the wholesale invoices of the sandbox's
//! Xero, each on its invoice date; flour, butter and dairy, and packaging follow sales
//! (flour dearer for the last five months, more dairy wasted while the team is under
//! strain); rent, wages (seasonal staff in December, overtime under strain) and energy
//! (ovens and heating in winter) accrue daily.
//!
//! Not served: other entities and reports, XML (every answer is JSON whatever `Accept`
//! says), `minorversion` differences, and the throttles (the sandbox never answers 429).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Datelike, Months, NaiveDate};
use serde_json::{Value, json};

use super::books::{Books, CATERING_CUSTOMERS, Invoice, cents};
use super::{DAY, QUICKBOOKS_ACCESS_TOKEN, QUICKBOOKS_REALM_ID, Scenario, constant_time_eq, lyon};

const MAX_RESULTS: usize = 1000;
const DEFAULT_RESULTS: usize = 100;

/// An entity as stored: the fields queries filter and sort on, and its JSON.
struct Stored {
    id: i64,
    created: i64,
    updated: i64,
    txn_date: String,
    total: f64,
    json: Value,
}

/// One account of the chart with its postings per day (UTC midnight → euros).
struct Account {
    group: &'static str,
    parent: Option<(&'static str, &'static str)>,
    name: &'static str,
    id: &'static str,
    daily: BTreeMap<i64, f64>,
}

/// The company's invoices, payments and accounts.
pub struct QuickBooksData {
    invoices: Vec<Stored>,
    payments: Vec<Stored>,
    accounts: Vec<Account>,
    now: i64,
}

fn date(time: i64) -> String {
    chrono::DateTime::from_timestamp(time, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

fn naive(time: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(time, 0)
        .unwrap_or_default()
        .date_naive()
}

fn customer_ref(name: &str) -> Value {
    let id = CATERING_CUSTOMERS
        .iter()
        .position(|candidate| *candidate == name)
        .unwrap_or_default()
        + 1;
    json!({"value": id.to_string(), "name": name})
}

fn metadata(created: i64, updated: i64) -> Value {
    json!({"CreateTime": lyon(created), "LastUpdatedTime": lyon(updated)})
}

fn invoice_json(invoice: &Invoice, id: i64, payment: Option<i64>) -> Value {
    let mut lines: Vec<Value> = invoice
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            json!({
                "Id": (index + 1).to_string(),
                "LineNum": index + 1,
                "Description": line.description,
                "Amount": cents(line.amount),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": (9 + index).to_string(), "name": if index == 0 { "Catering" } else { "Service and delivery" }},
                    "UnitPrice": cents(line.amount),
                    "Qty": 1,
                    "TaxCodeRef": {"value": "5"},
                },
            })
        })
        .collect();
    lines.push(json!({"Amount": invoice.net(), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}));
    let paid = invoice.paid.is_some();
    json!({
        "AllowIPNPayment": false,
        "AllowOnlinePayment": false,
        "AllowOnlineCreditCardPayment": false,
        "AllowOnlineACHPayment": false,
        "domain": "QBO",
        "sparse": false,
        "Id": id.to_string(),
        "SyncToken": if paid { "1" } else { "0" },
        "MetaData": metadata(invoice.entered, invoice.updated()),
        "CustomField": [],
        "DocNumber": (1000 + invoice.number).to_string(),
        "TxnDate": date(invoice.date),
        "CurrencyRef": {"value": "EUR", "name": "Euro"},
        "LinkedTxn": payment.map_or_else(Vec::new, |payment| vec![json!({"TxnId": payment.to_string(), "TxnType": "Payment"})]),
        "Line": lines,
        "TxnTaxDetail": {"TotalTax": invoice.tax()},
        "CustomerRef": customer_ref(invoice.customer),
        "SalesTermRef": {"value": "2", "name": "Net 15"},
        "DueDate": date(invoice.due),
        "TotalAmt": invoice.total(),
        "ApplyTaxAfterDiscount": false,
        "PrintStatus": "NotSet",
        "EmailStatus": "EmailSent",
        "Balance": if paid { 0.0 } else { invoice.total() },
    })
}

/// The bakery's sales on each day (counter, catering and wholesale, net).
fn daily_sales(books: &Books) -> BTreeMap<i64, f64> {
    let mut sales: BTreeMap<i64, f64> = books.counter.iter().copied().collect();
    for invoice in books
        .catering
        .iter()
        .chain(books.supply.iter().filter(|invoice| !invoice.voided))
    {
        *sales.entry(invoice.date).or_default() += invoice.net();
    }
    sales
}

fn accounts(books: &Books, scenario: &Scenario) -> Vec<Account> {
    let by_invoice = |invoices: &[Invoice]| {
        let mut daily = BTreeMap::new();
        for invoice in invoices.iter().filter(|invoice| !invoice.voided) {
            *daily.entry(invoice.date).or_default() += invoice.net();
        }
        daily
    };
    let sales = daily_sales(books);
    let share = |rate: &dyn Fn(i64) -> f64| -> BTreeMap<i64, f64> {
        sales
            .iter()
            .map(|(day, amount)| (*day, amount * rate(*day)))
            .collect()
    };
    let flour_rise = scenario.now - 150 * DAY;
    let days: Vec<i64> = scenario.days().filter(|day| *day < scenario.now).collect();
    let accrue = |monthly: &dyn Fn(i64) -> f64| -> BTreeMap<i64, f64> {
        days.iter()
            .map(|day| (*day, monthly(*day) * 12.0 / 365.0))
            .collect()
    };
    let month = |day: i64| naive(day).month();
    let sales_parent = Some(("Sales", "79"));
    vec![
        Account {
            group: "Income",
            parent: sales_parent,
            name: "Bakery counter and web shop",
            id: "80",
            daily: books.counter.iter().copied().collect(),
        },
        Account {
            group: "Income",
            parent: sales_parent,
            name: "Catering",
            id: "81",
            daily: by_invoice(&books.catering),
        },
        Account {
            group: "Income",
            parent: sales_parent,
            name: "Wholesale",
            id: "82",
            daily: by_invoice(&books.supply),
        },
        Account {
            group: "COGS",
            parent: None,
            name: "Flour and grain",
            id: "90",
            daily: share(&|day| if day >= flour_rise { 0.155 } else { 0.13 }),
        },
        Account {
            group: "COGS",
            parent: None,
            name: "Butter, milk and eggs",
            id: "91",
            daily: share(&|day| 0.10 * (1.0 + 0.35 * scenario.strain(day))),
        },
        Account {
            group: "COGS",
            parent: None,
            name: "Packaging",
            id: "92",
            daily: share(&|_| 0.025),
        },
        Account {
            group: "Expenses",
            parent: None,
            name: "Rent or Lease",
            id: "60",
            daily: accrue(&|_| 4_200.0),
        },
        Account {
            group: "Expenses",
            parent: None,
            name: "Wages",
            id: "61",
            daily: accrue(&|day| {
                let seasonal = if month(day) == 12 { 2_500.0 } else { 0.0 };
                15_500.0 + seasonal + 3_300.0 * scenario.strain(day)
            }),
        },
        Account {
            group: "Expenses",
            parent: None,
            name: "Energy",
            id: "62",
            daily: accrue(&|day| {
                2_000.0
                    * match month(day) {
                        11 | 12 | 1 | 2 => 1.35,
                        6..=8 => 0.8,
                        _ => 1.0,
                    }
            }),
        },
    ]
}

impl QuickBooksData {
    /// The bakery's ledger over the scenario's year.
    pub fn bakery(scenario: &Scenario) -> QuickBooksData {
        let books = Books::bakery(scenario);
        // Payments in the order they were received, numbered from 5001.
        let mut paid: Vec<(usize, i64)> = books
            .catering
            .iter()
            .enumerate()
            .filter_map(|(index, invoice)| invoice.paid.map(|time| (index, time)))
            .collect();
        paid.sort_by_key(|(_, time)| *time);
        let payment_id = |index: usize| {
            paid.iter()
                .position(|(paid_index, _)| *paid_index == index)
                .map(|position| 5_001 + position as i64)
        };
        let invoices = books
            .catering
            .iter()
            .enumerate()
            .map(|(index, invoice)| {
                let id = 100 + invoice.number as i64;
                Stored {
                    id,
                    created: invoice.entered,
                    updated: invoice.updated(),
                    txn_date: date(invoice.date),
                    total: invoice.total(),
                    json: invoice_json(invoice, id, payment_id(index)),
                }
            })
            .collect();
        let payments = paid
            .iter()
            .enumerate()
            .map(|(position, (index, time))| {
                let invoice = &books.catering[*index];
                let id = 5_001 + position as i64;
                Stored {
                    id,
                    created: *time,
                    updated: *time,
                    txn_date: date(*time),
                    total: invoice.total(),
                    json: json!({
                        "CustomerRef": customer_ref(invoice.customer),
                        "DepositToAccountRef": {"value": "35"},
                        "TotalAmt": invoice.total(),
                        "UnappliedAmt": 0,
                        "ProcessPayment": false,
                        "domain": "QBO",
                        "sparse": false,
                        "Id": id.to_string(),
                        "SyncToken": "0",
                        "MetaData": metadata(*time, *time),
                        "TxnDate": date(*time),
                        "CurrencyRef": {"value": "EUR", "name": "Euro"},
                        "PaymentRefNum": format!("VIR-{}", 1000 + invoice.number),
                        "Line": [{
                            "Amount": invoice.total(),
                            "LinkedTxn": [{"TxnId": (100 + invoice.number).to_string(), "TxnType": "Invoice"}],
                        }],
                    }),
                }
            })
            .collect();
        QuickBooksData {
            invoices,
            payments,
            accounts: accounts(&books, scenario),
            now: scenario.now,
        }
    }

    /// How many invoices and payments it holds.
    pub fn counts(&self) -> (usize, usize) {
        (self.invoices.len(), self.payments.len())
    }

    /// The total posted to the accounts of `group` between two dates (inclusive).
    pub fn posted(&self, group: &str, from: NaiveDate, to: NaiveDate) -> f64 {
        self.accounts
            .iter()
            .filter(|account| account.group == group)
            .flat_map(|account| account.daily.iter())
            .filter(|(day, _)| (from..=to).contains(&naive(**day)))
            .map(|(_, amount)| amount)
            .sum()
    }
}

/// The routes, under the caller's prefix.
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(QuickBooksData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<QuickBooksData>) -> Router {
    Router::new()
        .route("/v3/company/{realm}/query", get(query))
        .route("/v3/company/{realm}/companyinfo/{id}", get(company_info))
        .route(
            "/v3/company/{realm}/reports/ProfitAndLoss",
            get(profit_and_loss),
        )
        .fallback(not_found)
        .with_state(data)
}

/// Intuit's answer time: the scenario's `now` in the company's zone, with milliseconds.
fn time(data: &QuickBooksData) -> String {
    let text = lyon(data.now);
    format!("{}.000{}", &text[..19], &text[19..])
}

fn fault(status: StatusCode, kind: &str, message: &str, detail: &str, code: &str) -> Response {
    super::json(
        status,
        json!({
            "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind},
            "time": "",
        })
        .to_string(),
    )
}

fn validation(detail: &str) -> Response {
    fault(
        StatusCode::BAD_REQUEST,
        "ValidationFault",
        "Error parsing query",
        detail,
        "4000",
    )
}

fn unsupported(detail: &str) -> Response {
    fault(
        StatusCode::BAD_REQUEST,
        "ValidationFault",
        "Request has invalid or unsupported property",
        detail,
        "2010",
    )
}

/// The token and the realm: 401 in Intuit's lower-case fault shape, 403 for a realm the
/// token was not granted.
fn authorize(headers: &HeaderMap, realm: &str) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(token.trim().as_bytes(), QUICKBOOKS_ACCESS_TOKEN.as_bytes()) {
        let body = json!({
            "warnings": null,
            "intuitObject": null,
            "fault": {
                "error": [{
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": "Token invalid",
                    "code": "3200",
                    "element": null,
                }],
                "type": "AUTHENTICATION",
            },
            "report": null,
            "queryResponse": [],
            "batchItemResponse": [],
            "attachableResponse": [],
            "syncErrorResponse": null,
            "requestId": null,
            "time": null,
            "status": null,
            "cdcresponse": [],
        });
        let mut response = super::json(StatusCode::UNAUTHORIZED, body.to_string());
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"Intuit\", error=\"invalid_token\""),
        );
        return Err(response);
    }
    if realm != QUICKBOOKS_REALM_ID {
        return Err(fault(
            StatusCode::FORBIDDEN,
            "AuthorizationFault",
            "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
            "",
            "3100",
        ));
    }
    Ok(())
}

async fn not_found(headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&headers, QUICKBOOKS_REALM_ID) {
        return refused;
    }
    (StatusCode::NOT_FOUND, "").into_response()
}

async fn company_info(
    State(data): State<Arc<QuickBooksData>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers, &realm) {
        return refused;
    }
    if id != realm {
        return fault(
            StatusCode::BAD_REQUEST,
            "ValidationFault",
            "Object Not Found",
            &format!(
                "Object Not Found : Something you're trying to use has been made inactive or is not found: CompanyInfo {id}"
            ),
            "610",
        );
    }
    let body = json!({
        "CompanyInfo": {
            "CompanyName": "Demo Bakery",
            "LegalName": "Demo Bakery SARL",
            "CompanyAddr": {"Id": "1", "Line1": "12 rue de la Republique", "City": "Lyon", "Country": "FR", "PostalCode": "69002"},
            "Country": "FR",
            "Email": {"Address": "owner@demo-bakery.example"},
            "FiscalYearStartMonth": "January",
            "SupportedLanguages": "fr",
            "domain": "QBO",
            "sparse": false,
            "Id": "1",
            "SyncToken": "3",
            "MetaData": {"CreateTime": lyon(data.now - 3 * 365 * DAY), "LastUpdatedTime": lyon(data.now - 40 * DAY)},
        },
        "time": time(&data),
    });
    super::json(StatusCode::OK, body.to_string())
}

// --- The query language ---------------------------------------------------------------

/// A token of a select statement: a word, a quoted literal, an operator or punctuation.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Literal(String),
    Symbol(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut literal = String::new();
            loop {
                match chars.next() {
                    Some('\\') => literal.extend(chars.next()),
                    Some('\'') => break,
                    Some(other) => literal.push(other),
                    None => return Err("QueryParserError: an unterminated quoted value".into()),
                }
            }
            tokens.push(Token::Literal(literal));
        } else if "<>=!".contains(c) {
            let mut symbol = String::from(c);
            chars.next();
            if chars.peek() == Some(&'=') || (c == '<' && chars.peek() == Some(&'>')) {
                symbol.extend(chars.next());
            }
            tokens.push(Token::Symbol(symbol));
        } else if c == ',' || c == '(' || c == ')' {
            chars.next();
            tokens.push(Token::Symbol(c.to_string()));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || "<>=!,()'".contains(c) {
                    break;
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

/// A field queries may filter and sort on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Field {
    Id,
    CreateTime,
    LastUpdatedTime,
    TxnDate,
    TotalAmt,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        match name.to_ascii_lowercase().as_str() {
            "id" => Some(Field::Id),
            "metadata.createtime" => Some(Field::CreateTime),
            "metadata.lastupdatedtime" => Some(Field::LastUpdatedTime),
            "txndate" => Some(Field::TxnDate),
            "totalamt" => Some(Field::TotalAmt),
            _ => None,
        }
    }

    /// The entity's value as a number (unix seconds for times; dates as text compare).
    fn value(self, entity: &Stored) -> Value {
        match self {
            Field::Id => json!(entity.id),
            Field::CreateTime => json!(entity.created),
            Field::LastUpdatedTime => json!(entity.updated),
            Field::TxnDate => json!(entity.txn_date),
            Field::TotalAmt => json!(entity.total),
        }
    }

    /// A literal in the field's terms.
    fn literal(self, text: &str) -> Result<Value, String> {
        let bad = || format!("QueryValidationError: value {text} is not valid for {self:?}");
        match self {
            Field::Id => text.parse::<i64>().map(|id| json!(id)).map_err(|_| bad()),
            Field::TotalAmt => text.parse::<f64>().map(|n| json!(n)).map_err(|_| bad()),
            Field::TxnDate => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|_| json!(text))
                .map_err(|_| bad()),
            Field::CreateTime | Field::LastUpdatedTime => {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|time| time.timestamp())
                    .or_else(|_| {
                        NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|day| {
                            day.and_hms_opt(0, 0, 0)
                                .map_or(0, |midnight| midnight.and_utc().timestamp())
                        })
                    })
                    .map(|seconds| json!(seconds))
                    .map_err(|_| bad())
            }
        }
    }
}

fn order(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64(), a.as_str(), b.as_str()) {
        (Some(x), Some(y), _, _) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        (_, _, Some(x), Some(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

struct Condition {
    field: Field,
    operator: String,
    values: Vec<Value>,
}

impl Condition {
    fn holds(&self, entity: &Stored) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let here = self.field.value(entity);
        let Some(first) = self.values.first() else {
            return false;
        };
        let cmp = order(&here, first);
        match self.operator.as_str() {
            "=" => cmp == Equal,
            "!=" | "<>" => cmp != Equal,
            "<" => cmp == Less,
            "<=" => cmp != Greater,
            ">" => cmp == Greater,
            ">=" => cmp != Less,
            "IN" => self.values.iter().any(|value| order(&here, value) == Equal),
            _ => false,
        }
    }
}

/// A parsed select statement.
struct Select {
    count: bool,
    entity: String,
    conditions: Vec<Condition>,
    order_by: Option<(Field, bool)>,
    start: usize,
    max: usize,
}

fn parse_select(text: &str) -> Result<Select, String> {
    let tokens = tokenize(text)?;
    let mut at = 0;
    let word = |at: usize| match tokens.get(at) {
        Some(Token::Word(word)) => Some(word.to_ascii_uppercase()),
        _ => None,
    };
    let encountered = |at: usize| match tokens.get(at) {
        Some(Token::Word(text) | Token::Literal(text) | Token::Symbol(text)) => {
            format!(
                "QueryParserError: Encountered \"{text}\" at position {}",
                at + 1
            )
        }
        None => "QueryParserError: Encountered <EOF>".to_string(),
    };
    if word(at).as_deref() != Some("SELECT") {
        return Err(encountered(at));
    }
    at += 1;
    let count = match (word(at).as_deref(), tokens.get(at)) {
        (Some("*"), _) => {
            at += 1;
            false
        }
        (Some("COUNT"), _) => {
            let star = [
                Token::Symbol("(".into()),
                Token::Word("*".into()),
                Token::Symbol(")".into()),
            ];
            if tokens.get(at + 1..at + 4) != Some(&star[..]) {
                return Err(encountered(at + 1));
            }
            at += 4;
            true
        }
        _ => return Err(encountered(at)),
    };
    if word(at).as_deref() != Some("FROM") {
        return Err(encountered(at));
    }
    let entity = match tokens.get(at + 1) {
        Some(Token::Word(name)) => name.clone(),
        _ => return Err(encountered(at + 1)),
    };
    at += 2;
    let mut select = Select {
        count,
        entity,
        conditions: Vec::new(),
        order_by: None,
        start: 1,
        max: DEFAULT_RESULTS,
    };
    if word(at).as_deref() == Some("WHERE") {
        at += 1;
        loop {
            let Some(Token::Word(name)) = tokens.get(at) else {
                return Err(encountered(at));
            };
            let field = Field::parse(name).ok_or_else(|| {
                format!("QueryValidationError: property '{name}' is not queryable")
            })?;
            let operator = match tokens.get(at + 1) {
                Some(Token::Symbol(symbol)) if symbol != "," && symbol != "(" && symbol != ")" => {
                    symbol.clone()
                }
                Some(Token::Word(word)) if word.eq_ignore_ascii_case("IN") => "IN".into(),
                _ => return Err(encountered(at + 1)),
            };
            at += 2;
            let mut values = Vec::new();
            if operator == "IN" {
                if tokens.get(at) != Some(&Token::Symbol("(".into())) {
                    return Err(encountered(at));
                }
                at += 1;
                loop {
                    match tokens.get(at) {
                        Some(Token::Literal(text)) => values.push(field.literal(text)?),
                        _ => return Err(encountered(at)),
                    }
                    at += 1;
                    match tokens.get(at) {
                        Some(Token::Symbol(symbol)) if symbol == "," => at += 1,
                        Some(Token::Symbol(symbol)) if symbol == ")" => {
                            at += 1;
                            break;
                        }
                        _ => return Err(encountered(at)),
                    }
                }
            } else {
                match tokens.get(at) {
                    Some(Token::Literal(text)) => values.push(field.literal(text)?),
                    _ => return Err(encountered(at)),
                }
                at += 1;
            }
            select.conditions.push(Condition {
                field,
                operator,
                values,
            });
            if word(at).as_deref() == Some("AND") {
                at += 1;
            } else {
                break;
            }
        }
    }
    if word(at).as_deref() == Some("ORDERBY") {
        let Some(Token::Word(name)) = tokens.get(at + 1) else {
            return Err(encountered(at + 1));
        };
        let field = Field::parse(name)
            .ok_or_else(|| format!("QueryValidationError: property '{name}' is not sortable"))?;
        at += 2;
        let descending = match word(at).as_deref() {
            Some("DESC") => {
                at += 1;
                true
            }
            Some("ASC") => {
                at += 1;
                false
            }
            _ => false,
        };
        select.order_by = Some((field, descending));
    }
    for (keyword, slot) in [("STARTPOSITION", 0), ("MAXRESULTS", 1)] {
        if word(at).as_deref() == Some(keyword) {
            let number = word(at + 1)
                .and_then(|text| text.parse::<usize>().ok())
                .filter(|number| *number >= 1)
                .ok_or_else(|| encountered(at + 1))?;
            if slot == 0 {
                select.start = number;
            } else {
                select.max = number.min(MAX_RESULTS);
            }
            at += 2;
        }
    }
    if at < tokens.len() {
        return Err(encountered(at));
    }
    Ok(select)
}

async fn query(
    State(data): State<Arc<QuickBooksData>>,
    Path(realm): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers, &realm) {
        return refused;
    }
    let params = super::query_pairs(raw.as_deref());
    let Some((_, text)) = params.iter().find(|(name, _)| name == "query") else {
        return validation("QueryParserError: no query");
    };
    let select = match parse_select(text) {
        Ok(select) => select,
        Err(detail) => return validation(&detail),
    };
    let (name, entities) = match select.entity.to_ascii_lowercase().as_str() {
        "invoice" => ("Invoice", &data.invoices),
        "payment" => ("Payment", &data.payments),
        _ => {
            return validation(&format!(
                "QueryValidationError: the sandbox's company serves Invoice and Payment, not {}",
                select.entity
            ));
        }
    };
    let mut matching: Vec<&Stored> = entities
        .iter()
        .filter(|entity| select.conditions.iter().all(|c| c.holds(entity)))
        .collect();
    if select.count {
        return super::json(
            StatusCode::OK,
            json!({"QueryResponse": {"totalCount": matching.len()}, "time": time(&data)})
                .to_string(),
        );
    }
    if let Some((field, descending)) = select.order_by {
        matching.sort_by(|a, b| {
            let by = order(&field.value(a), &field.value(b));
            let by = if descending { by.reverse() } else { by };
            by.then(a.id.cmp(&b.id))
        });
    }
    let start = (select.start - 1).min(matching.len());
    let end = (start + select.max).min(matching.len());
    let page: Vec<&Value> = matching[start..end]
        .iter()
        .map(|entity| &entity.json)
        .collect();
    let response = if page.is_empty() {
        json!({})
    } else {
        json!({name: page, "startPosition": select.start, "maxResults": page.len()})
    };
    super::json(
        StatusCode::OK,
        json!({"QueryResponse": response, "time": time(&data)}).to_string(),
    )
}

// --- The Profit and Loss report --------------------------------------------------------

fn money(amount: f64) -> String {
    let amount = cents(amount);
    if amount == 0.0 {
        String::new()
    } else {
        format!("{amount:.2}")
    }
}

fn cells(label: Value, amounts: &[f64]) -> Value {
    let mut cells = vec![label];
    cells.extend(
        amounts
            .iter()
            .map(|amount| json!({"value": money(*amount)})),
    );
    Value::Array(cells)
}

fn totals(amounts: &[f64]) -> Vec<String> {
    amounts
        .iter()
        .map(|amount| format!("{:.2}", cents(*amount)))
        .collect()
}

fn summary(label: &str, amounts: &[f64]) -> Value {
    let mut cells = vec![json!({"value": label})];
    cells.extend(
        totals(amounts)
            .into_iter()
            .map(|value| json!({"value": value})),
    );
    json!({"ColData": cells})
}

fn add(into: &mut [f64], amounts: &[f64], sign: f64) {
    for (sum, amount) in into.iter_mut().zip(amounts) {
        *sum += sign * amount;
    }
}

async fn profit_and_loss(
    State(data): State<Arc<QuickBooksData>>,
    Path(realm): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&headers, &realm) {
        return refused;
    }
    let params = super::query_pairs(raw.as_deref());
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let today = naive(data.now);
    let mut range = [
        NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today),
        today,
    ];
    for (index, name) in ["start_date", "end_date"].into_iter().enumerate() {
        if let Some(text) = param(name) {
            match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                Ok(day) => range[index] = day,
                Err(_) => {
                    return unsupported(&format!("{name}: \"{text}\" is not a date (yyyy-MM-dd)"));
                }
            }
        }
    }
    let [from, to] = range;
    if from > to {
        return unsupported(&format!("start_date {from} is after end_date {to}"));
    }
    let monthly = match param("summarize_column_by").unwrap_or("Total") {
        "Month" => true,
        "Total" => false,
        other => {
            return unsupported(&format!(
                "summarize_column_by={other}: the sandbox summarizes by Month or Total"
            ));
        }
    };
    // The columns: (first day, last day) of each month in the range, or the whole range.
    let mut spans = Vec::new();
    if monthly {
        let mut first = from;
        while first <= to {
            let next_month = first
                .with_day(1)
                .and_then(|day| day.checked_add_months(Months::new(1)))
                .unwrap_or(to + chrono::Duration::days(1));
            let last = (next_month - chrono::Duration::days(1)).min(to);
            spans.push((first, last));
            first = next_month;
        }
    }
    let mut columns = vec![
        json!({"ColTitle": "", "ColType": "Account", "MetaData": [{"Name": "ColKey", "Value": "account"}]}),
    ];
    for (first, last) in &spans {
        let title = first.format("%b %Y").to_string();
        columns.push(json!({
            "ColTitle": title,
            "ColType": "Money",
            "MetaData": [
                {"Name": "StartDate", "Value": first.to_string()},
                {"Name": "EndDate", "Value": last.to_string()},
                {"Name": "ColKey", "Value": title},
            ],
        }));
    }
    columns.push(json!({"ColTitle": "Total", "ColType": "Money", "MetaData": [{"Name": "ColKey", "Value": "total"}]}));
    let width = spans.len() + 1;
    // Each account's amounts per column, the total last.
    let amounts = |account: &Account| -> Vec<f64> {
        let mut out: Vec<f64> = spans
            .iter()
            .map(|(first, last)| {
                account
                    .daily
                    .iter()
                    .filter(|(day, _)| (*first..=*last).contains(&naive(**day)))
                    .map(|(_, amount)| amount)
                    .sum()
            })
            .collect();
        out.push(
            account
                .daily
                .iter()
                .filter(|(day, _)| (from..=to).contains(&naive(**day)))
                .map(|(_, amount)| amount)
                .sum(),
        );
        out
    };
    let mut rows = Vec::new();
    let mut group_totals: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (group, title) in [
        ("Income", "Income"),
        ("COGS", "Cost of Goods Sold"),
        ("Expenses", "Expenses"),
    ] {
        let mut section_total = vec![0.0; width];
        let mut section_rows = Vec::new();
        let mut parent_rows: Vec<Value> = Vec::new();
        let mut parent_total = vec![0.0; width];
        let mut parent = None;
        for account in data
            .accounts
            .iter()
            .filter(|account| account.group == group)
        {
            let values = amounts(account);
            if values.last().is_none_or(|total| cents(*total) == 0.0) {
                continue;
            }
            add(&mut section_total, &values, 1.0);
            let row = json!({"ColData": cells(json!({"value": account.name, "id": account.id}), &values), "type": "Data"});
            match account.parent {
                Some(found) => {
                    parent = Some(found);
                    add(&mut parent_total, &values, 1.0);
                    parent_rows.push(row);
                }
                None => section_rows.push(row),
            }
        }
        if let Some((name, id)) = parent {
            let blank = vec![0.0; width];
            section_rows.insert(
                0,
                json!({
                    "Header": {"ColData": cells(json!({"value": name, "id": id}), &blank)},
                    "Rows": {"Row": parent_rows},
                    "Summary": summary(&format!("Total {name}"), &parent_total),
                    "type": "Section",
                }),
            );
        }
        if !section_rows.is_empty() {
            let blank = vec![0.0; width];
            rows.push(json!({
                "Header": {"ColData": cells(json!({"value": title}), &blank)},
                "Rows": {"Row": section_rows},
                "Summary": summary(&format!("Total {title}"), &section_total),
                "type": "Section",
                "group": group,
            }));
        }
        group_totals.insert(group, section_total);
        if group == "COGS" {
            let mut gross = group_totals["Income"].clone();
            add(&mut gross, &group_totals["COGS"], -1.0);
            rows.push(json!({"Summary": summary("Gross Profit", &gross), "type": "Section", "group": "GrossProfit"}));
        }
    }
    let mut net = group_totals["Income"].clone();
    add(&mut net, &group_totals["COGS"], -1.0);
    add(&mut net, &group_totals["Expenses"], -1.0);
    rows.push(json!({"Summary": summary("Net Operating Income", &net), "type": "Section", "group": "NetOperatingIncome"}));
    rows.push(
        json!({"Summary": summary("Net Income", &net), "type": "Section", "group": "NetIncome"}),
    );
    let empty = rows.len() == 2;
    let report = json!({
        "Header": {
            "Time": time(&data),
            "ReportName": "ProfitAndLoss",
            "ReportBasis": "Accrual",
            "StartPeriod": from.to_string(),
            "EndPeriod": to.to_string(),
            "SummarizeColumnsBy": if monthly { "Month" } else { "Total" },
            "Currency": "EUR",
            "Option": [
                {"Name": "AccountingStandard", "Value": "IFRS"},
                {"Name": "NoReportData", "Value": empty.to_string()},
            ],
        },
        "Columns": {"Column": columns},
        "Rows": if empty { json!({}) } else { json!({"Row": rows}) },
    });
    super::json(StatusCode::OK, report.to_string())
}
