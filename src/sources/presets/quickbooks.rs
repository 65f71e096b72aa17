//! QuickBooks Online: invoices and payments through the query API, and the monthly
//! Profit and Loss report.
//!
//! Follows Intuit's developer documentation:
//! - OAuth2: `Authorization: Bearer <access token>` on
//!   `https://quickbooks.api.intuit.com/v3/company/{realmId}/...`; access tokens live an
//!   hour and are refreshed at `https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer`
//!   (the engine does that, see `sources::oauth`):
//!   <https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0>
//! - Query API: `GET /v3/company/{realmId}/query?query=<select statement>` with
//!   `SELECT * FROM Entity [WHERE ...] [ORDERBY ...] [STARTPOSITION n] [MAXRESULTS n]`;
//!   positions start at 1 and a page holds at most 1000 entities; `Accept:
//!   application/json` asks for JSON (XML is the default); the answer is
//!   `{"QueryResponse": {"Invoice": [...], "startPosition", "maxResults"}, "time"}` and
//!   `QueryResponse` is empty when nothing matches:
//!   <https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries>
//! - `MetaData.LastUpdatedTime` is filterable and sortable on transactions:
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice>,
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/payment>
//! - `minorversion=75`: Intuit retired the older minor versions in 2025:
//!   <https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/minor-versions>
//! - Profit and Loss: `GET /v3/company/{realmId}/reports/ProfitAndLoss?start_date&end_date
//!   &summarize_column_by=Month`: one column per month (its `MetaData` names `StartDate`
//!   and `EndDate`) plus a `total` column; rows are nested sections: top-level sections
//!   carry `group` (`Income`, `COGS`, `Expenses`, `OtherIncome`, `OtherExpenses`, and the
//!   summary-only `GrossProfit`, `NetOperatingIncome`, `NetOtherIncome`, `NetIncome`);
//!   `Data` rows are accounts; a section whose header names an account (it has an `id`) is
//!   a parent account with sub-accounts, and amounts in its header are the parent's own
//!   postings:
//!   <https://developer.intuit.com/app/developer/qbo/docs/api/accounting/report-entities/profitandloss>
//! - Errors: `{"Fault": {"Error": [{"Message", "Detail", "code"}], "type"}}`, also inside a
//!   200 answer; the shared client and this preset show `Message: Detail (code N)`:
//!   <https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes>
//! - Rate limits: 500 requests a minute per company (realm id), 10 a second per company
//!   and app, 10 concurrent requests; beyond them HTTP 429 without `Retry-After` (Intuit
//!   says to wait 60 seconds); the shared client backs off on its own:
//!   <https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles>
//!
//! Incremental sync of `invoices` and `payments`: the shared [`WalkCursor`] with the
//! position as the next `STARTPOSITION`, ordered by `MetaData.LastUpdatedTime`. A walk
//! reads entities updated since the newest `LastUpdatedTime` of the last complete walk
//! minus `lookback` (default one day; never before `start_date`; everything without
//! either), so a voided invoice (its amounts become 0) or a payment applied later comes
//! again and replaces its earlier version. A page shorter than 1000 ends the walk.
//! Deleted transactions do not appear in queries and stay stored as last seen (only the
//! ChangeDataCapture endpoint reports deletions). Known limit of position paging: an entity
//! updated during a walk moves to the end, shifting the ones after it back by one, so one
//! unchanged entity may be skipped on that walk; the next walk's `lookback` reads it again.
//!
//! `profit_and_loss`: one record per (account row, month column) — `account` (parent
//! accounts joined with `:` as in QuickBooks' fully qualified names), `account_id` (when
//! the report gives one), `group` (the top-level section), `month` (first day,
//! `YYYY-MM-DD`) and `amount` (a number; 0 for an empty cell) — keyed by
//! `(group, account, month)`. Only accounts carry amounts (no totals), so summing a group
//! gives the group's total. The first sync reads from `start_date`'s month (else the
//! last 12 months) to the end of the current month; every later sync re-reads the
//! current month and the three before it, or further back when `lookback` is longer
//! (recent months change until the books close). An account that vanished from a
//! re-read month (its postings moved or deleted) is written with amount 0: the cursor
//! remembers the account rows of the last report.

use crate::config::RecordFields;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{Datelike, Months, NaiveDate};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::walk::{Walk, WalkCursor};
use super::{Preset, PresetInfo, SyncWindow, endpoint};
use crate::config::SourceConfig;
use crate::records;
use crate::sources::http::{Auth, ParseError, intuit_fault};
use crate::sources::{Page, PageRequest, SourceError, fetched_records};

/// QuickBooks Online's description.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://quickbooks.api.intuit.com",
    streams: &["invoices", "payments", "profit_and_loss"],
    required: &["realm_id", "access_token_or_refresh"],
    default_lookback: Duration::from_secs(24 * 3600),
    token_url: Some("https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"),
};

/// The largest page of a query (`MAXRESULTS`).
const PAGE_SIZE: usize = 1000;
/// The API minor version every request names.
const MINOR_VERSION: &str = "75";
/// Closed months re-read by every sync after the first, besides the current one.
const REREAD_MONTHS: u32 = 3;
/// Months before the current one the first sync reads without `start_date`.
const FIRST_SYNC_MONTHS: u32 = 12;

/// Key fields of `profit_and_loss` records.
const PNL_KEY: &[&str] = &["group", "account", "month"];

/// The QuickBooks preset.
pub struct QuickBooks;

/// The entity a query stream reads; validation admits only the names in [`INFO`].
fn entity_of(stream: &str) -> &'static str {
    if stream == "payments" {
        "Payment"
    } else {
        "Invoice"
    }
}

/// `{base}/v3/company/{realm}/{tail...}`, the realm id as one escaped path segment.
fn company_url(source: &SourceConfig, tail: &[&str]) -> reqwest::Url {
    let realm = source.realm_id.as_deref().unwrap_or_default();
    let mut url = endpoint(&source.base_url, "v3/company/");
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(realm).extend(tail);
    }
    url
}

/// A GET that asks for JSON.
fn json_get(url: reqwest::Url, state: String) -> PageRequest {
    PageRequest::get(url, state).with_header("accept", "application/json")
}

/// Unix seconds as the query language's date-time literal.
fn query_time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// The select statement for `walk`'s next page.
fn select(entity: &str, walk: &Walk) -> Result<String, ParseError> {
    let position: usize = match walk.after.as_deref() {
        None => 1,
        Some(text) => text.parse().map_err(|_| {
            ParseError::malformed(format!(
                "internal cursor state: position \"{text}\" is not a number"
            ))
        })?,
    };
    let filter = walk.gte.map_or_else(String::new, |gte| {
        format!(" WHERE MetaData.LastUpdatedTime >= '{}'", query_time(gte))
    });
    Ok(format!(
        "SELECT * FROM {entity}{filter} ORDERBY MetaData.LastUpdatedTime STARTPOSITION {position} MAXRESULTS {PAGE_SIZE}"
    ))
}

fn query_request(
    source: &SourceConfig,
    entity: &str,
    walk: &Walk,
    state: String,
) -> Result<PageRequest, ParseError> {
    let mut url = company_url(source, &["query"]);
    url.query_pairs_mut()
        .append_pair("query", &select(entity, walk)?)
        .append_pair("minorversion", MINOR_VERSION);
    Ok(json_get(url, state))
}

/// A fault inside a 2xx answer: an authentication fault is a refusal of the token.
fn fault_error(value: &Value) -> Option<ParseError> {
    let message = intuit_fault(value)?;
    let kind = value
        .pointer("/Fault/type")
        .or_else(|| value.pointer("/fault/type"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some(if kind.starts_with("authentication") {
        ParseError::unauthorized(message)
    } else {
        ParseError::malformed(format!("QuickBooks fault: {message}"))
    })
}

/// `{"QueryResponse": {"Invoice": [...]}}`, or a fault.
#[derive(Deserialize)]
struct QueryBody<'a> {
    #[serde(rename = "QueryResponse", borrow, default)]
    response: Option<BTreeMap<String, &'a RawValue>>,
    #[serde(rename = "Fault", default)]
    fault: Option<Value>,
}

impl QuickBooks {
    fn parse_query(
        &self,
        source: &SourceConfig,
        stream: &str,
        request: &PageRequest,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let entity = entity_of(stream);
        let parsed: QueryBody = ParseError::parse_json(body)?;
        if let Some(fault) = parsed.fault {
            let wrapped = serde_json::json!({ "Fault": fault });
            return Err(fault_error(&wrapped)
                .unwrap_or_else(|| ParseError::malformed("QuickBooks fault without details")));
        }
        let response = parsed
            .response
            .ok_or_else(|| ParseError::malformed("expected a JSON object with `QueryResponse`"))?;
        let objects: Vec<&RawValue> = match response.get(entity) {
            None => Vec::new(),
            Some(raw) => serde_json::from_str(raw.get()).map_err(|error| {
                ParseError::malformed(format!("`QueryResponse.{entity}` is not a list: {error}"))
            })?,
        };
        let records = fetched_records(
            &objects,
            &["Id"],
            &source.record_fields(stream, &["MetaData.LastUpdatedTime"]),
        )?;
        let mut cursor = WalkCursor::from_state(&request.state)?;
        let mut walk = cursor.take_walk();
        for fetched in &records {
            let updated = records::event_time(
                records::field(&fetched.record, "MetaData.LastUpdatedTime"),
                chrono_tz::UTC,
            )
            .ok()
            .flatten()
            .ok_or_else(|| {
                ParseError::malformed(format!(
                    "{entity} {} has no readable `MetaData.LastUpdatedTime`",
                    fetched.key
                ))
            })?;
            walk.see(updated.timestamp());
        }
        if records.len() < PAGE_SIZE {
            cursor.finish(walk);
            return Ok(Page {
                records,
                cursor: cursor.encode(),
                next: None,
            });
        }
        let position = match walk.after.as_deref() {
            None => 1,
            Some(text) => text.parse::<usize>().unwrap_or(1),
        } + records.len();
        let walk = cursor.continue_after(walk, position.to_string()).clone();
        let state = cursor.encode();
        let next = query_request(source, entity, &walk, state.clone())?;
        Ok(Page {
            records,
            cursor: state,
            next: Some(next),
        })
    }
}

// ---------------------------------------------------------------------------
// profit_and_loss
// ---------------------------------------------------------------------------

/// One account row of the report, as remembered between syncs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct AccountRow {
    group: String,
    account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
}

/// The saved cursor of `profit_and_loss`: the account rows of the last report read.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PnlCursor {
    rows: Vec<AccountRow>,
}

/// The first day of `date`'s month.
fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).expect("every month has a first day")
}

/// The months one sync reads, from the first day of the first to the last day of the last.
fn report_range(first_sync: bool, window: &SyncWindow, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let current = month_start(today);
    let end = current
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(today);
    let start_date = window.start.map(|start| month_start(start.date_naive()));
    let from = if first_sync {
        start_date.unwrap_or_else(|| current - Months::new(FIRST_SYNC_MONTHS))
    } else {
        let lookback = chrono::Duration::from_std(window.lookback).unwrap_or_default();
        let by_lookback = month_start(today.checked_sub_signed(lookback).unwrap_or(NaiveDate::MIN));
        let reread = by_lookback.min(current - Months::new(REREAD_MONTHS));
        start_date.map_or(reread, |start| reread.max(start))
    };
    (from.min(current), end)
}

fn report_request(
    source: &SourceConfig,
    cursor: Option<&str>,
    window: &SyncWindow,
    today: NaiveDate,
) -> Result<PageRequest, SourceError> {
    let saved: PnlCursor = match cursor {
        None => PnlCursor::default(),
        Some(text) => {
            serde_json::from_str(text).map_err(|error| SourceError::BadCursor(error.to_string()))?
        }
    };
    let (from, to) = report_range(cursor.is_none(), window, today);
    let mut url = company_url(source, &["reports", "ProfitAndLoss"]);
    url.query_pairs_mut()
        .append_pair("start_date", &from.to_string())
        .append_pair("end_date", &to.to_string())
        .append_pair("summarize_column_by", "Month")
        .append_pair("minorversion", MINOR_VERSION);
    let state = serde_json::to_string(&saved).expect("plain fields always serialize");
    Ok(json_get(url, state))
}

/// The text of cell `index` of a `ColData` list.
fn cell(cells: &[Value], index: usize) -> Option<&str> {
    cells.get(index)?.get("value")?.as_str()
}

/// An amount cell: empty means no postings.
fn amount(text: &str, account: &str, month: NaiveDate) -> Result<f64, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0.0);
    }
    text.replace(',', "").parse().map_err(|_| {
        ParseError::malformed(format!(
            "profit and loss: the amount \"{text}\" of {account} in {month} is not a number"
        ))
    })
}

/// Collects the account rows of `rows` (nested report rows) into `out`, summing rows
/// that repeat, with `amounts` per month column.
fn collect_rows(
    rows: &[Value],
    group: Option<&str>,
    parents: &[String],
    columns: &[(usize, NaiveDate)],
    out: &mut BTreeMap<AccountRow, Vec<f64>>,
) -> Result<(), ParseError> {
    for row in rows {
        let group = row.get("group").and_then(Value::as_str).or(group);
        let mut add = |cells: &[Value], name: &str| -> Result<(), ParseError> {
            let Some(group) = group else {
                return Err(ParseError::malformed(format!(
                    "profit and loss: the row \"{name}\" is in no group"
                )));
            };
            let mut path = parents.to_vec();
            path.push(name.to_string());
            let account = path.join(":");
            let key = AccountRow {
                group: group.to_string(),
                account_id: cells
                    .first()
                    .and_then(|first| first.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                account,
            };
            let mut values = Vec::with_capacity(columns.len());
            for (index, month) in columns {
                values.push(amount(
                    cell(cells, *index).unwrap_or(""),
                    &key.account,
                    *month,
                )?);
            }
            let sums = out.entry(key).or_insert_with(|| vec![0.0; columns.len()]);
            for (sum, value) in sums.iter_mut().zip(values) {
                *sum += value;
            }
            Ok(())
        };
        if let Some(cells) = row.get("ColData").and_then(Value::as_array) {
            let name = cell(cells, 0).unwrap_or_default();
            add(cells, name)?;
            continue;
        }
        let header = row.pointer("/Header/ColData").and_then(Value::as_array);
        let mut nested = parents.to_vec();
        if let Some(cells) = header
            && cells.first().is_some_and(|first| first.get("id").is_some())
        {
            // A parent account: its header's amounts are its own postings.
            let name = cell(cells, 0).unwrap_or_default();
            let has_amounts = columns
                .iter()
                .any(|(index, _)| cell(cells, *index).is_some_and(|text| !text.trim().is_empty()));
            if has_amounts {
                add(cells, name)?;
            }
            nested.push(name.to_string());
        }
        if let Some(children) = row.pointer("/Rows/Row").and_then(Value::as_array) {
            collect_rows(children, group, &nested, columns, out)?;
        }
    }
    Ok(())
}

/// The month columns of the report: (cell index, first day of the month).
fn month_columns(report: &Value) -> Result<Vec<(usize, NaiveDate)>, ParseError> {
    let columns = report
        .pointer("/Columns/Column")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::malformed("profit and loss: no `Columns.Column` list"))?;
    let mut months = Vec::new();
    for (index, column) in columns.iter().enumerate() {
        let start = column
            .get("MetaData")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|meta| meta.get("Name").and_then(Value::as_str) == Some("StartDate"))
            .and_then(|meta| meta.get("Value"))
            .and_then(Value::as_str);
        if let Some(start) = start {
            let date = NaiveDate::parse_from_str(start, "%Y-%m-%d").map_err(|_| {
                ParseError::malformed(format!(
                    "profit and loss: column {index} starts on \"{start}\", not a date"
                ))
            })?;
            months.push((index, month_start(date)));
        }
    }
    Ok(months)
}

fn parse_report(request: &PageRequest, body: &[u8]) -> Result<Page, ParseError> {
    let report: Value = ParseError::parse_json(body)?;
    if let Some(error) = fault_error(&report) {
        return Err(error);
    }
    let previous: PnlCursor = serde_json::from_str(&request.state).map_err(|error| {
        ParseError::malformed(format!("internal cursor state unreadable: {error}"))
    })?;
    let columns = month_columns(&report)?;
    let mut rows = BTreeMap::new();
    if let Some(top) = report.pointer("/Rows/Row").and_then(Value::as_array) {
        collect_rows(top, None, &[], &columns, &mut rows)?;
    }
    // Rows of the last report missing now: their re-read months are written as 0.
    let current: BTreeSet<(String, String)> = rows
        .keys()
        .map(|row| (row.group.clone(), row.account.clone()))
        .collect();
    for row in previous.rows {
        if !current.contains(&(row.group.clone(), row.account.clone())) {
            rows.insert(row, vec![0.0; columns.len()]);
        }
    }
    let mut objects = Vec::with_capacity(rows.len() * columns.len());
    for (row, amounts) in &rows {
        for ((_, month), amount) in columns.iter().zip(amounts) {
            let mut record = serde_json::Map::new();
            record.insert("account".into(), row.account.clone().into());
            if let Some(id) = &row.account_id {
                record.insert("account_id".into(), id.clone().into());
            }
            record.insert("group".into(), row.group.clone().into());
            record.insert("month".into(), month.to_string().into());
            let rounded = (amount * 100.0).round() / 100.0;
            record.insert(
                "amount".into(),
                serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number),
            );
            objects.push(
                serde_json::value::to_raw_value(&record).expect("a JSON map always serializes"),
            );
        }
    }
    let refs: Vec<&RawValue> = objects.iter().map(AsRef::as_ref).collect();
    let records = fetched_records(&refs, PNL_KEY, &RecordFields::All)?;
    let cursor = PnlCursor {
        rows: rows
            .into_keys()
            .filter(|row| current.contains(&(row.group.clone(), row.account.clone())))
            .collect(),
    };
    Ok(Page {
        records,
        cursor: serde_json::to_string(&cursor).expect("plain fields always serialize"),
        next: None,
    })
}

impl Preset for QuickBooks {
    /// Invoices and payments walk on `MetaData.LastUpdatedTime`; the report is rebuilt
    /// by months, which says nothing about deleted rows.
    fn coverage(&self, _source: &SourceConfig, stream: &str) -> super::Coverage {
        if stream == "profit_and_loss" {
            super::Coverage::None
        } else {
            super::Coverage::Field("MetaData.LastUpdatedTime".into())
        }
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        source
            .access_token
            .clone()
            .map(Auth::Bearer)
            .ok_or_else(|| SourceError::Unauthorized {
                message:
                    "no access_token configured (nor client_id, client_secret and refresh_token)"
                        .into(),
            })
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        let realm = source.realm_id.as_deref().unwrap_or_default();
        let mut url = company_url(source, &["companyinfo", realm]);
        url.query_pairs_mut()
            .append_pair("minorversion", MINOR_VERSION);
        json_get(url, String::new())
    }

    fn check_probe(
        &self,
        _source: &SourceConfig,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), ParseError> {
        let value: Value = ParseError::parse_json(body)?;
        fault_error(&value).map_or(Ok(()), Err)
    }

    fn first_request(
        &self,
        source: &SourceConfig,
        stream: &str,
        cursor: Option<&str>,
        window: &SyncWindow,
    ) -> Result<PageRequest, SourceError> {
        if stream == "profit_and_loss" {
            // The report's last month is the current one: the one clock read of this preset.
            return report_request(source, cursor, window, chrono::Utc::now().date_naive());
        }
        let mut cursor = WalkCursor::parse(cursor)?;
        let walk = cursor.begin(window, true).clone();
        query_request(source, entity_of(stream), &walk, cursor.encode())
            .map_err(|error| SourceError::BadCursor(error.detail))
    }

    fn parse_page(
        &self,
        source: &SourceConfig,
        stream: &str,
        request: &PageRequest,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        if stream == "profit_and_loss" {
            parse_report(request, body)
        } else {
            self.parse_query(source, stream, request, body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::secret::Secret;
    use crate::sources::presets::test_source;

    fn source() -> SourceConfig {
        SourceConfig {
            access_token: Some(Secret::new("qbo-access")),
            realm_id: Some("9130350000000001".into()),
            ..test_source(SourceKind::QuickBooks, "https://quickbooks.api.intuit.com")
        }
    }

    fn window(start: Option<i64>, lookback_days: u64) -> SyncWindow {
        SyncWindow {
            start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            lookback: Duration::from_secs(lookback_days * 24 * 3600),
        }
    }

    fn query_of(request: &PageRequest) -> String {
        request
            .url
            .query_pairs()
            .find(|(name, _)| name == "query")
            .map(|(_, value)| value.into_owned())
            .expect("a query parameter")
    }

    fn invoice(id: usize, updated: &str) -> String {
        format!(
            r#"{{"Id":"{id}","TotalAmt":10.0,"TxnDate":"2026-03-01","MetaData":{{"CreateTime":"{updated}","LastUpdatedTime":"{updated}"}}}}"#
        )
    }

    #[test]
    fn invoices_page_by_start_position_until_a_short_page() {
        let source = source();
        let first = QuickBooks
            .first_request(&source, "invoices", None, &window(Some(1_767_225_600), 1))
            .expect("request");
        assert_eq!(
            first.url.path(),
            "/v3/company/9130350000000001/query",
            "{}",
            first.url
        );
        assert_eq!(
            query_of(&first),
            "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '2026-01-01T00:00:00+00:00' ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000"
        );
        assert!(first.url.as_str().ends_with("&minorversion=75"));
        assert_eq!(
            first.headers,
            vec![("accept".into(), "application/json".to_string())]
        );
        let full: Vec<String> = (1..=PAGE_SIZE)
            .map(|id| invoice(id, "2026-03-01T10:00:00-08:00"))
            .collect();
        let body = format!(
            r#"{{"QueryResponse":{{"Invoice":[{}],"startPosition":1,"maxResults":1000}},"time":"2026-03-05T10:00:00.000-08:00"}}"#,
            full.join(",")
        );
        let page = QuickBooks
            .parse_page(
                &source,
                "invoices",
                &first,
                &HeaderMap::new(),
                body.as_bytes(),
            )
            .expect("page");
        assert_eq!(page.records.len(), PAGE_SIZE);
        let next = page.next.expect("a full page: more follow");
        assert!(query_of(&next).ends_with("STARTPOSITION 1001 MAXRESULTS 1000"));
        assert_eq!(next.headers, first.headers);
        let last = format!(
            r#"{{"QueryResponse":{{"Invoice":[{}],"startPosition":1001,"maxResults":1}}}}"#,
            invoice(1001, "2026-03-02T10:00:00-08:00")
        );
        let end = QuickBooks
            .parse_page(
                &source,
                "invoices",
                &next,
                &HeaderMap::new(),
                last.as_bytes(),
            )
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"since":1772474400}"#);
        // The next walk starts a day (the lookback) before the newest LastUpdatedTime.
        let again = QuickBooks
            .first_request(&source, "invoices", Some(&end.cursor), &window(None, 1))
            .expect("request");
        assert!(
            query_of(&again).contains(">= '2026-03-01T18:00:00+00:00'"),
            "{}",
            query_of(&again)
        );
        // Nothing matched: QueryResponse is empty.
        let empty = QuickBooks
            .parse_page(
                &source,
                "payments",
                &again,
                &HeaderMap::new(),
                br#"{"QueryResponse":{},"time":"x"}"#,
            )
            .expect("page");
        assert!(empty.records.is_empty() && empty.next.is_none());
        assert_eq!(empty.cursor, r#"{"since":1772474400}"#);
    }

    #[test]
    fn faults_in_a_200_answer_are_errors_and_authentication_faults_refusals() {
        let source = source();
        let request = QuickBooks
            .first_request(&source, "payments", None, &window(None, 1))
            .expect("request");
        assert_eq!(
            query_of(&request),
            "SELECT * FROM Payment ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000"
        );
        let validation = br#"{"Fault":{"Error":[{"Message":"Error parsing query","Detail":"QueryParserError: Encountered \" <ID> \"ORDER\"","code":"4000"}],"type":"ValidationFault"},"time":"x"}"#;
        let error = QuickBooks
            .parse_page(&source, "payments", &request, &HeaderMap::new(), validation)
            .expect_err("fault");
        assert!(!error.unauthorized);
        assert!(
            error
                .detail
                .starts_with("QuickBooks fault: Error parsing query: QueryParserError"),
            "{}",
            error.detail
        );
        let auth = br#"{"Fault":{"Error":[{"Message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","Detail":"Token expired","code":"3200"}],"type":"AuthenticationFault"}}"#;
        let error = QuickBooks
            .parse_page(&source, "payments", &request, &HeaderMap::new(), auth)
            .expect_err("fault");
        assert!(error.unauthorized, "{}", error.detail);
        assert!(
            QuickBooks
                .check_probe(&source, &HeaderMap::new(), auth)
                .is_err()
        );
        assert!(
            QuickBooks
                .check_probe(
                    &source,
                    &HeaderMap::new(),
                    br#"{"CompanyInfo":{"CompanyName":"x"}}"#
                )
                .is_ok()
        );
        let stale = br#"{"QueryResponse":{"Payment":[{"Id":"1","MetaData":{}}]}}"#;
        let error = QuickBooks
            .parse_page(&source, "payments", &request, &HeaderMap::new(), stale)
            .expect_err("no time");
        assert!(
            error
                .detail
                .contains("Payment 1 has no readable `MetaData.LastUpdatedTime`"),
            "{}",
            error.detail
        );
    }

    #[test]
    fn report_months_first_sync_and_rereads() {
        let today = NaiveDate::from_ymd_opt(2026, 5, 17).expect("date");
        let jan = Some(1_767_225_600); // 2026-01-01
        let cases = [
            // first sync, start_date, lookback days → range
            (true, jan, 1, "2026-01-01", "2026-05-31"),
            (true, None, 1, "2025-05-01", "2026-05-31"),
            (false, None, 1, "2026-02-01", "2026-05-31"),
            (false, jan, 400, "2026-01-01", "2026-05-31"),
            (false, None, 400, "2025-04-01", "2026-05-31"),
            (false, Some(1_775_001_600), 1, "2026-04-01", "2026-05-31"), // start 2026-04-01
        ];
        for (first, start, lookback, from, to) in cases {
            let (got_from, got_to) = report_range(first, &window(start, lookback), today);
            assert_eq!(
                (got_from.to_string(), got_to.to_string()),
                (from.to_string(), to.to_string()),
                "first {first}, start {start:?}, lookback {lookback}"
            );
        }
        let request = report_request(&source(), None, &window(jan, 1), today).expect("request");
        assert_eq!(
            request.url.as_str(),
            "https://quickbooks.api.intuit.com/v3/company/9130350000000001/reports/ProfitAndLoss?start_date=2026-01-01&end_date=2026-05-31&summarize_column_by=Month&minorversion=75"
        );
        assert_eq!(request.state, r#"{"rows":[]}"#);
        assert!(matches!(
            report_request(&source(), Some("nope"), &window(jan, 1), today),
            Err(SourceError::BadCursor(_))
        ));
    }

    /// A trimmed monthly report: a parent account with own postings and sub-accounts,
    /// a negative leaf, an empty cell, summary-only groups and a total column.
    const REPORT: &str = r#"{
      "Header": {"ReportName": "ProfitAndLoss", "StartPeriod": "2026-03-01", "EndPeriod": "2026-04-30", "SummarizeColumnsBy": "Month", "Currency": "USD"},
      "Columns": {"Column": [
        {"ColTitle": "", "ColType": "Account", "MetaData": [{"Name": "ColKey", "Value": "account"}]},
        {"ColTitle": "Mar 2026", "ColType": "Money", "MetaData": [{"Name": "StartDate", "Value": "2026-03-01"}, {"Name": "EndDate", "Value": "2026-03-31"}, {"Name": "ColKey", "Value": "Mar 2026"}]},
        {"ColTitle": "Apr 2026", "ColType": "Money", "MetaData": [{"Name": "StartDate", "Value": "2026-04-01"}, {"Name": "EndDate", "Value": "2026-04-30"}, {"Name": "ColKey", "Value": "Apr 2026"}]},
        {"ColTitle": "Total", "ColType": "Money", "MetaData": [{"Name": "ColKey", "Value": "total"}]}
      ]},
      "Rows": {"Row": [
        {"Header": {"ColData": [{"value": "Income"}, {"value": ""}, {"value": ""}, {"value": ""}]},
         "Rows": {"Row": [
           {"Header": {"ColData": [{"value": "Landscaping Services", "id": "45"}, {"value": "220.00"}, {"value": ""}, {"value": "220.00"}]},
            "Rows": {"Row": [
              {"ColData": [{"value": "Plants and Soil", "id": "49"}, {"value": "150.00"}, {"value": "75.50"}, {"value": "225.50"}], "type": "Data"}
            ]},
            "Summary": {"ColData": [{"value": "Total Landscaping Services"}, {"value": "370.00"}, {"value": "75.50"}, {"value": "445.50"}]},
            "type": "Section"},
           {"ColData": [{"value": "Pest Control Services", "id": "54"}, {"value": "-65.00"}, {"value": "100.00"}, {"value": "35.00"}], "type": "Data"}
         ]},
         "Summary": {"ColData": [{"value": "Total Income"}, {"value": "305.00"}, {"value": "175.50"}, {"value": "480.50"}]},
         "type": "Section", "group": "Income"},
        {"Summary": {"ColData": [{"value": "Gross Profit"}, {"value": "305.00"}, {"value": "175.50"}, {"value": "480.50"}]}, "type": "Section", "group": "GrossProfit"},
        {"Header": {"ColData": [{"value": "Expenses"}, {"value": ""}, {"value": ""}, {"value": ""}]},
         "Rows": {"Row": [
           {"ColData": [{"value": "Rent or Lease", "id": "17"}, {"value": "900.00"}, {"value": "900.00"}, {"value": "1800.00"}], "type": "Data"}
         ]},
         "Summary": {"ColData": [{"value": "Total Expenses"}, {"value": "900.00"}, {"value": "900.00"}, {"value": "1800.00"}]},
         "type": "Section", "group": "Expenses"},
        {"Summary": {"ColData": [{"value": "Net Income"}, {"value": "-595.00"}, {"value": "-724.50"}, {"value": "-1319.50"}]}, "type": "Section", "group": "NetIncome"}
      ]}
    }"#;

    fn report_page(state: &str, body: &str) -> Page {
        let request = PageRequest::get(
            reqwest::Url::parse("https://quickbooks.api.intuit.com/x").expect("valid"),
            state.to_string(),
        );
        QuickBooks
            .parse_page(
                &source(),
                "profit_and_loss",
                &request,
                &HeaderMap::new(),
                body.as_bytes(),
            )
            .expect("page")
    }

    #[test]
    fn the_report_becomes_one_record_per_account_and_month() {
        let page = report_page(r#"{"rows":[]}"#, REPORT);
        assert!(page.next.is_none());
        let got: Vec<String> = page
            .records
            .iter()
            .map(|r| r.raw.get().to_string())
            .collect();
        assert_eq!(
            got,
            [
                r#"{"account":"Rent or Lease","account_id":"17","amount":900.0,"group":"Expenses","month":"2026-03-01"}"#,
                r#"{"account":"Rent or Lease","account_id":"17","amount":900.0,"group":"Expenses","month":"2026-04-01"}"#,
                r#"{"account":"Landscaping Services","account_id":"45","amount":220.0,"group":"Income","month":"2026-03-01"}"#,
                r#"{"account":"Landscaping Services","account_id":"45","amount":0.0,"group":"Income","month":"2026-04-01"}"#,
                r#"{"account":"Landscaping Services:Plants and Soil","account_id":"49","amount":150.0,"group":"Income","month":"2026-03-01"}"#,
                r#"{"account":"Landscaping Services:Plants and Soil","account_id":"49","amount":75.5,"group":"Income","month":"2026-04-01"}"#,
                r#"{"account":"Pest Control Services","account_id":"54","amount":-65.0,"group":"Income","month":"2026-03-01"}"#,
                r#"{"account":"Pest Control Services","account_id":"54","amount":100.0,"group":"Income","month":"2026-04-01"}"#,
            ]
        );
        assert_eq!(
            page.records[0].key,
            "Expenses\u{1f}Rent or Lease\u{1f}2026-03-01"
        );
        // Summed per group and month, the records give the report's own totals.
        let income_march: f64 = page
            .records
            .iter()
            .filter(|r| r.record["group"] == "Income" && r.record["month"] == "2026-03-01")
            .map(|r| r.record["amount"].as_f64().expect("number"))
            .sum();
        assert_eq!(income_march, 305.0);
        assert_eq!(
            page.cursor,
            r#"{"rows":[{"group":"Expenses","account":"Rent or Lease","account_id":"17"},{"group":"Income","account":"Landscaping Services","account_id":"45"},{"group":"Income","account":"Landscaping Services:Plants and Soil","account_id":"49"},{"group":"Income","account":"Pest Control Services","account_id":"54"}]}"#
        );
    }

    #[test]
    fn an_account_gone_from_the_report_is_written_as_zero_once() {
        let without_pest = REPORT.replace(
            r#"{"ColData": [{"value": "Pest Control Services", "id": "54"}, {"value": "-65.00"}, {"value": "100.00"}, {"value": "35.00"}], "type": "Data"}"#,
            r#"{"ColData": [{"value": "Lawn Care", "id": "55"}, {"value": ""}, {"value": "10.00"}, {"value": "10.00"}], "type": "Data"}"#,
        );
        let first = report_page(r#"{"rows":[]}"#, REPORT);
        let second = report_page(&first.cursor, &without_pest);
        let pest: Vec<&str> = second
            .records
            .iter()
            .filter(|r| r.record["account"] == "Pest Control Services")
            .map(|r| r.raw.get())
            .collect();
        assert_eq!(
            pest,
            [
                r#"{"account":"Pest Control Services","account_id":"54","amount":0.0,"group":"Income","month":"2026-03-01"}"#,
                r#"{"account":"Pest Control Services","account_id":"54","amount":0.0,"group":"Income","month":"2026-04-01"}"#,
            ]
        );
        assert!(!second.cursor.contains("Pest Control"), "{}", second.cursor);
        assert!(second.cursor.contains("Lawn Care"));
        let third = report_page(&second.cursor, &without_pest);
        assert!(
            third
                .records
                .iter()
                .all(|r| r.record["account"] != "Pest Control Services")
        );
    }

    #[test]
    fn broken_reports_name_what_is_wrong() {
        let cases = [
            (
                REPORT.replace(r#""150.00""#, r#""lots""#),
                "the amount \"lots\" of Landscaping Services:Plants and Soil in 2026-03-01 is not a number",
            ),
            (
                REPORT.replace(r#""Columns""#, r#""Kolumns""#),
                "no `Columns.Column` list",
            ),
            (
                REPORT.replace(
                    r#""type": "Section", "group": "Expenses""#,
                    r#""type": "Section""#,
                ),
                "the row \"Rent or Lease\" is in no group",
            ),
        ];
        for (body, expected) in cases {
            let request = PageRequest::get(
                reqwest::Url::parse("https://quickbooks.api.intuit.com/x").expect("valid"),
                r#"{"rows":[]}"#.into(),
            );
            let error = QuickBooks
                .parse_page(
                    &source(),
                    "profit_and_loss",
                    &request,
                    &HeaderMap::new(),
                    body.as_bytes(),
                )
                .expect_err(expected);
            assert!(error.detail.contains(expected), "{}", error.detail);
        }
    }

    #[test]
    fn auth_probe_and_escaped_realm() {
        match QuickBooks.auth(&source()).expect("auth") {
            Auth::Bearer(token) => assert_eq!(token.expose(), "qbo-access"),
            _ => panic!("expected a bearer token"),
        }
        let probe = QuickBooks.probe(&source());
        assert_eq!(
            probe.url.as_str(),
            "https://quickbooks.api.intuit.com/v3/company/9130350000000001/companyinfo/9130350000000001?minorversion=75"
        );
        let odd = SourceConfig {
            realm_id: Some("12/../34".into()),
            ..source()
        };
        assert_eq!(
            QuickBooks.probe(&odd).url.path(),
            "/v3/company/12%2F..%2F34/companyinfo/12%2F..%2F34"
        );
    }
}
