//! Xero: invoices and payments, through the Accounting API.
//!
//! Follows Xero's developer documentation:
//! - OAuth2: every call carries `Authorization: Bearer <access token>` and the organisation
//!   in the `Xero-tenant-id` header; access tokens live 30 minutes and are refreshed with
//!   the refresh-token grant at `https://identity.xero.com/connect/token` (the engine does
//!   that, see `sources::oauth`); each refresh returns a new refresh token:
//!   <https://developer.xero.com/documentation/guides/oauth2/auth-flow/#refreshing-access-and-refresh-tokens>
//! - JSON only with `Accept: application/json` (XML is the default); dates come as
//!   `/Date(1518685950940+0000)/` (UTC milliseconds), which `records::event_time` reads:
//!   <https://developer.xero.com/documentation/api/accounting/requests-and-responses>
//! - Invoices `GET /api.xro/2.0/Invoices` and payments `GET /api.xro/2.0/Payments`, both with
//!   the `If-Modified-Since` header (a UTC timestamp `yyyy-mm-ddThh:mm:ss`: only records
//!   created or modified since), `order`, `page` (from 1) and `pageSize` (up to 1000; 100
//!   without it); newer answers also carry `pagination {page, pageSize, pageCount, itemCount}`:
//!   <https://developer.xero.com/documentation/api/accounting/invoices>,
//!   <https://developer.xero.com/documentation/api/accounting/payments>,
//!   <https://github.com/XeroAPI/Xero-OpenAPI> (`pageSize` on both endpoints)
//! - Rate limits per organisation: 5 calls in progress, 60 a minute, 5000 a day, and 10,000
//!   a minute per app across organisations. Every answer reports what is left in
//!   `X-MinLimit-Remaining`, `X-DayLimit-Remaining` and `X-AppMinLimit-Remaining`; beyond a
//!   limit Xero answers 429 with `Retry-After` (seconds) and `X-Rate-Limit-Problem`
//!   (`minute`, `day`, `concurrent` or `appminute`). The shared client waits `Retry-After`
//!   (capped at its longest delay) and retries; a daily limit therefore fails the sync,
//!   which the next scheduled one repeats:
//!   <https://developer.xero.com/documentation/guides/oauth2/limits/>,
//!   <https://developer.xero.com/faq/limits>
//! - Errors: 401/403 bodies are problem details (`{"Title":"Unauthorized","Detail":
//!   "AuthenticationUnsuccessful"}`), validation errors carry `Message`; the shared client
//!   shows those: <https://developer.xero.com/documentation/api/accounting/responsecodes>
//!
//! Incremental sync: both streams are walked with the shared [`WalkCursor`] ordered by
//! `UpdatedDateUTC`. A walk asks for records modified since the newest `UpdatedDateUTC` of
//! the last complete walk minus `lookback` (default one day; never before `start_date`;
//! everything without either), so an invoice voided or paid later, or a payment recorded
//! late, comes again and replaces its earlier version. The position is the next page
//! number, saved after every committed page. A walk ends on the page the `pagination`
//! block calls the last, or, without that block, on a page shorter than the page size.
//!
//! Known limit of page-number lists: a record that changes during a walk moves to the end,
//! shifting the ones after it back, so one unchanged record may be skipped on that walk;
//! the next walk's `lookback` reads it again. Deleted invoices stay (status `DELETED`),
//! so `where = "Status != 'DELETED'"` leaves them out; deleted payments come with
//! `Status == 'DELETED'` as well.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::walk::{Walk, WalkCursor};
use super::{Preset, PresetInfo, SyncWindow, endpoint};
use crate::config::SourceConfig;
use crate::records;
use crate::sources::http::{Auth, ParseError};
use crate::sources::{Page, PageRequest, SourceError, fetched_records};

/// Xero's description.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://api.xero.com",
    streams: &["invoices", "payments"],
    required: &["tenant_id", "access_token_or_refresh"],
    default_lookback: Duration::from_secs(24 * 3600),
    token_url: Some("https://identity.xero.com/connect/token"),
};

/// The largest page Xero serves (`pageSize`).
const PAGE_SIZE: usize = 1000;

/// The Xero preset.
pub struct Xero;

/// How one stream is listed.
struct Stream {
    /// The list's path under the base URL.
    path: &'static str,
    /// The array of records in the answer.
    field: &'static str,
    /// The record's id.
    key: &'static str,
}

const INVOICES: Stream = Stream {
    path: "api.xro/2.0/Invoices",
    field: "Invoices",
    key: "InvoiceID",
};

const PAYMENTS: Stream = Stream {
    path: "api.xro/2.0/Payments",
    field: "Payments",
    key: "PaymentID",
};

/// The stream's listing; validation admits only the names in [`INFO`].
fn stream_of(name: &str) -> &'static Stream {
    if name == "payments" {
        &PAYMENTS
    } else {
        &INVOICES
    }
}

/// `{"Invoices": [...], "pagination": {...}}` (or `Payments`).
#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow, default)]
    #[serde(rename = "Invoices")]
    invoices: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    #[serde(rename = "Payments")]
    payments: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    page: u32,
    page_count: u32,
}

/// The page a walk's position names (the first page when none).
fn page_number(walk: &Walk) -> Result<u32, ParseError> {
    match walk.after.as_deref() {
        None => Ok(1),
        Some(text) => text.parse().map_err(|_| {
            ParseError::malformed(format!(
                "internal cursor state: page \"{text}\" is not a page number"
            ))
        }),
    }
}

/// The tenant header value; validation requires `tenant_id`.
fn tenant(source: &SourceConfig) -> String {
    source.tenant_id.clone().unwrap_or_default()
}

/// The request for `walk`'s next page.
fn list_request(
    source: &SourceConfig,
    stream: &Stream,
    walk: &Walk,
    state: String,
) -> Result<PageRequest, ParseError> {
    let page = page_number(walk)?;
    let mut url = endpoint(&source.base_url, stream.path);
    url.query_pairs_mut()
        .append_pair("page", &page.to_string())
        .append_pair("pageSize", &PAGE_SIZE.to_string())
        .append_pair("order", "UpdatedDateUTC ASC");
    let mut request = PageRequest::get(url, state)
        .with_header("xero-tenant-id", tenant(source))
        .with_header("accept", "application/json");
    if let Some(gte) = walk.gte {
        let since = chrono::DateTime::from_timestamp(gte, 0).unwrap_or_default();
        request = request.with_header(
            "if-modified-since",
            since.format("%Y-%m-%dT%H:%M:%S").to_string(),
        );
    }
    Ok(request)
}

impl Preset for Xero {
    /// Both lists walk on `If-Modified-Since` over `UpdatedDateUTC`.
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> super::Coverage {
        super::Coverage::Field("UpdatedDateUTC".into())
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
        PageRequest::get(
            endpoint(&source.base_url, "api.xro/2.0/Organisation"),
            String::new(),
        )
        .with_header("xero-tenant-id", tenant(source))
        .with_header("accept", "application/json")
    }

    fn first_request(
        &self,
        source: &SourceConfig,
        stream: &str,
        cursor: Option<&str>,
        window: &SyncWindow,
    ) -> Result<PageRequest, SourceError> {
        let mut cursor = WalkCursor::parse(cursor)?;
        let walk = cursor.begin(window, true).clone();
        list_request(source, stream_of(stream), &walk, cursor.encode())
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
        let spec = stream_of(stream);
        let list: List = ParseError::parse_json(body)?;
        let objects = if spec.field == "Payments" {
            list.payments
        } else {
            list.invoices
        }
        .ok_or_else(|| {
            ParseError::malformed(format!("expected a JSON object with `{}`", spec.field))
        })?;
        let records = fetched_records(
            &objects,
            &[spec.key],
            &source.record_fields(stream, &["UpdatedDateUTC"]),
        )?;
        let mut cursor = WalkCursor::from_state(&request.state)?;
        let mut walk = cursor.take_walk();
        let page = page_number(&walk)?;
        for fetched in &records {
            let updated = records::event_time(fetched.record.get("UpdatedDateUTC"), chrono_tz::UTC)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    ParseError::malformed(format!(
                        "{} {} has no readable `UpdatedDateUTC`",
                        spec.key, fetched.key
                    ))
                })?;
            walk.see(updated.timestamp());
        }
        let more = match list.pagination {
            Some(pagination) => pagination.page < pagination.page_count,
            None => records.len() >= PAGE_SIZE,
        };
        if !more || records.is_empty() {
            cursor.finish(walk);
            return Ok(Page {
                records,
                cursor: cursor.encode(),
                next: None,
            });
        }
        let walk = cursor.continue_after(walk, (page + 1).to_string()).clone();
        let state = cursor.encode();
        let next = list_request(source, spec, &walk, state.clone())?;
        Ok(Page {
            records,
            cursor: state,
            next: Some(next),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::secret::Secret;
    use crate::sources::presets::test_source;

    const TENANT: &str = "b1f8a2c4-0000-4000-8000-00000000a11e";

    fn source() -> SourceConfig {
        SourceConfig {
            access_token: Some(Secret::new("xero-access")),
            tenant_id: Some(TENANT.into()),
            ..test_source(SourceKind::Xero, "https://api.xero.com")
        }
    }

    fn window(start: Option<i64>) -> SyncWindow {
        SyncWindow {
            start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            lookback: Duration::from_secs(100),
        }
    }

    fn header<'a>(request: &'a PageRequest, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    const INVOICES_URL: &str = "https://api.xero.com/api.xro/2.0/Invoices?page=";
    const ORDER: &str = "&pageSize=1000&order=UpdatedDateUTC+ASC";

    #[test]
    fn invoices_walk_pages_from_if_modified_since_until_the_last_page() {
        let source = source();
        let first = Xero
            .first_request(&source, "invoices", None, &window(Some(1_767_225_600)))
            .expect("request");
        assert_eq!(first.url.as_str(), format!("{INVOICES_URL}1{ORDER}"));
        assert_eq!(header(&first, "xero-tenant-id"), Some(TENANT));
        assert_eq!(header(&first, "accept"), Some("application/json"));
        assert_eq!(
            header(&first, "if-modified-since"),
            Some("2026-01-01T00:00:00")
        );
        let body = br#"{"Id":"x","Status":"OK","Invoices":[
            {"InvoiceID":"a","Total":10,"UpdatedDateUTC":"/Date(1772359200000+0000)/"},
            {"InvoiceID":"b","Total":20,"UpdatedDateUTC":"/Date(1772445600000+0000)/"}],
            "pagination":{"page":1,"pageSize":2,"pageCount":2,"itemCount":3}}"#;
        let page = Xero
            .parse_page(&source, "invoices", &first, &HeaderMap::new(), body)
            .expect("page");
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[1].key, "b");
        assert_eq!(
            page.cursor,
            r#"{"run":{"gte":1767225600,"after":"2","max":1772445600}}"#
        );
        let next = page.next.expect("page 2");
        assert_eq!(next.url.as_str(), format!("{INVOICES_URL}2{ORDER}"));
        assert_eq!(
            header(&next, "if-modified-since"),
            Some("2026-01-01T00:00:00")
        );
        let last =
            br#"{"Invoices":[{"InvoiceID":"c","UpdatedDateUTC":"/Date(1772532000000+0000)/"}],
            "pagination":{"page":2,"pageSize":2,"pageCount":2,"itemCount":3}}"#;
        let end = Xero
            .parse_page(&source, "invoices", &next, &HeaderMap::new(), last)
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"since":1772532000}"#);
        // The next walk starts `lookback` before the newest UpdatedDateUTC.
        let again = Xero
            .first_request(&source, "invoices", Some(&end.cursor), &window(None))
            .expect("request");
        assert_eq!(
            header(&again, "if-modified-since"),
            Some("2026-03-03T09:58:20")
        );
    }

    #[test]
    fn without_pagination_a_short_page_ends_the_walk_and_a_full_one_continues() {
        let source = source();
        let request = Xero
            .first_request(&source, "payments", None, &window(None))
            .expect("request");
        assert_eq!(
            request.url.as_str(),
            format!("https://api.xero.com/api.xro/2.0/Payments?page=1{ORDER}")
        );
        assert_eq!(header(&request, "if-modified-since"), None, "everything");
        let full: Vec<String> = (0..PAGE_SIZE)
            .map(|i| {
                format!(
                    r#"{{"PaymentID":"p{i}","UpdatedDateUTC":"/Date({}+0000)/"}}"#,
                    1_000_000 + i
                )
            })
            .collect();
        let body = format!(r#"{{"Payments":[{}]}}"#, full.join(","));
        let page = Xero
            .parse_page(
                &source,
                "payments",
                &request,
                &HeaderMap::new(),
                body.as_bytes(),
            )
            .expect("page");
        assert!(
            page.next
                .expect("full page")
                .url
                .as_str()
                .contains("page=2")
        );
        let short = br#"{"Payments":[{"PaymentID":"p","UpdatedDateUTC":"/Date(5000000+0000)/"}]}"#;
        let end = Xero
            .parse_page(&source, "payments", &request, &HeaderMap::new(), short)
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"since":5000}"#);
        let empty = Xero
            .parse_page(
                &source,
                "payments",
                &request,
                &HeaderMap::new(),
                br#"{"Payments":[]}"#,
            )
            .expect("page");
        assert!(empty.next.is_none());
    }

    #[test]
    fn malformed_pages_name_what_is_wrong() {
        let source = source();
        let request = Xero
            .first_request(&source, "invoices", None, &window(None))
            .expect("request");
        let cases: [(&[u8], &str); 3] = [
            (
                br#"{"Payments":[]}"#,
                "expected a JSON object with `Invoices`",
            ),
            (
                br#"{"Invoices":[{"Total":1}]}"#,
                "item 0 has no usable primary key",
            ),
            (
                br#"{"Invoices":[{"InvoiceID":"a","UpdatedDateUTC":"yesterday"}]}"#,
                "InvoiceID a has no readable `UpdatedDateUTC`",
            ),
        ];
        for (body, expected) in cases {
            let error = Xero
                .parse_page(&source, "invoices", &request, &HeaderMap::new(), body)
                .expect_err(expected);
            assert!(error.detail.contains(expected), "{}", error.detail);
        }
        let truncated = Xero
            .parse_page(
                &source,
                "invoices",
                &request,
                &HeaderMap::new(),
                br#"{"Invoices":[{"#,
            )
            .expect_err("cut off");
        assert!(truncated.truncated);
    }

    #[test]
    fn auth_is_the_configured_bearer_token_and_the_probe_names_the_tenant() {
        match Xero.auth(&source()).expect("auth") {
            Auth::Bearer(token) => assert_eq!(token.expose(), "xero-access"),
            _ => panic!("expected a bearer token"),
        }
        let mut tokenless = source();
        tokenless.access_token = None;
        assert!(matches!(
            Xero.auth(&tokenless),
            Err(SourceError::Unauthorized { .. })
        ));
        let probe = Xero.probe(&source());
        assert_eq!(
            probe.url.as_str(),
            "https://api.xero.com/api.xro/2.0/Organisation"
        );
        assert_eq!(header(&probe, "xero-tenant-id"), Some(TENANT));
    }
}
