//! Shopify: orders, through the Admin REST API.
//!
//! Follows Shopify's documentation:
//! - Authentication with an Admin API access token in the `X-Shopify-Access-Token` header,
//!   on `https://{shop}.myshopify.com/admin/api/{api_version}/...`:
//!   <https://shopify.dev/docs/api/admin-rest#authentication>,
//!   versions: <https://shopify.dev/docs/api/usage/versioning>
//! - Orders list `GET /admin/api/{version}/orders.json` with `status=any` (the default is
//!   only open orders), `limit` up to 250 and `updated_at_min`:
//!   <https://shopify.dev/docs/api/admin-rest/latest/resources/order#get-orders?status=any>
//! - Cursor pagination through the `Link` response header (`rel="next"` with a
//!   `page_info`); a request with `page_info` may carry only `limit` (and `fields`), never
//!   the first request's filters, so the next request is the header's URL as given:
//!   <https://shopify.dev/docs/api/admin-rest/usage/pagination>
//! - Rate limits: the leaky bucket reported in `X-Shopify-Shop-Api-Call-Limit`, and 429
//!   with `Retry-After` when it overflows (honoured by the shared client):
//!   <https://shopify.dev/docs/api/usage/rate-limits>
//!
//! Incremental sync: orders change after they are placed (paid, refunded, cancelled,
//! fulfilled), and each change moves `updated_at`. A walk asks for orders updated since the
//! newest `updated_at` of the last complete walk minus `lookback` (never before
//! `start_date`), so every changed order comes again and replaces its earlier version.
//! Shopify's money fields are strings (`"total_price": "199.00"`): `value = "total_price"`
//! is read as a number; inside an expression, convert with `double(total_price)`.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::walk::WalkCursor;
use super::{Preset, PresetInfo, SyncWindow, endpoint, next_link};
use crate::config::SourceConfig;
use crate::records;
use crate::sources::http::{Auth, ParseError};
use crate::sources::{Page, PageRequest, SourceError, fetched_records};

/// Shopify's description; the base URL is built from `shop`.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://{shop}",
    streams: &["orders"],
    required: &["shop", "access_token"],
    default_lookback: Duration::from_secs(7 * 24 * 3600),
    token_url: None,
};

/// The Admin API version used unless `api_version` says otherwise (each stable version
/// is supported for twelve months).
pub const DEFAULT_API_VERSION: &str = "2026-07";
/// The largest page Shopify allows.
const PAGE_LIMIT: &str = "250";

/// The Shopify preset.
pub struct Shopify;

/// `{"orders": [...]}`.
#[derive(Deserialize)]
struct Orders<'a> {
    #[serde(borrow)]
    orders: Vec<&'a RawValue>,
}

fn orders_url(source: &SourceConfig) -> reqwest::Url {
    let version = source.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION);
    endpoint(
        &source.base_url,
        &format!("admin/api/{version}/orders.json"),
    )
}

fn unix_to_rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Preset for Shopify {
    /// Orders walk on `updated_at_min`.
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> super::Coverage {
        super::Coverage::Field("updated_at".into())
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        source
            .access_token
            .clone()
            .map(|value| Auth::Header {
                name: "x-shopify-access-token".into(),
                value,
            })
            .ok_or_else(|| SourceError::Unauthorized {
                message: "no access_token configured".into(),
            })
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        let mut url = orders_url(source);
        url.query_pairs_mut()
            .append_pair("status", "any")
            .append_pair("limit", "1");
        PageRequest::get(url, String::new())
    }

    fn first_request(
        &self,
        source: &SourceConfig,
        _stream: &str,
        cursor: Option<&str>,
        window: &SyncWindow,
    ) -> Result<PageRequest, SourceError> {
        let mut cursor = WalkCursor::parse(cursor)?;
        let walk = cursor.begin(window, true);
        let mut url = orders_url(source);
        match &walk.after {
            // Resuming a walk: page_info carries the filters; only limit may accompany it.
            Some(page_info) => {
                url.query_pairs_mut()
                    .append_pair("limit", PAGE_LIMIT)
                    .append_pair("page_info", page_info);
            }
            None => {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("status", "any")
                    .append_pair("limit", PAGE_LIMIT);
                if let Some(gte) = walk.gte {
                    query.append_pair("updated_at_min", &unix_to_rfc3339(gte));
                }
            }
        }
        Ok(PageRequest::get(url, cursor.encode()))
    }

    fn parse_page(
        &self,
        source: &SourceConfig,
        stream: &str,
        request: &PageRequest,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let page: Orders = ParseError::parse_json(body)?;
        let records = fetched_records(
            &page.orders,
            &["id"],
            &source.record_fields(stream, &["updated_at"]),
        )?;
        let mut cursor = WalkCursor::from_state(&request.state)?;
        let mut walk = cursor.take_walk();
        for (index, fetched) in records.iter().enumerate() {
            let updated = records::event_time(fetched.record.get("updated_at"), chrono_tz::UTC)
                .ok()
                .flatten()
                .ok_or_else(|| ParseError {
                    truncated: false,
                    unauthorized: false,
                    detail: format!(
                        "order {index} ({}) has no readable `updated_at`",
                        fetched.key
                    ),
                })?;
            walk.see(updated.timestamp());
        }
        let Some(next) = next_link(headers)? else {
            return Ok(cursor.into_page(records, walk, None, |_| unreachable!("no next page")));
        };
        let next = reqwest::Url::parse(&next).map_err(|error| ParseError {
            truncated: false,
            unauthorized: false,
            detail: format!("Link rel=next is not a URL ({error}): {next}"),
        })?;
        let page_info = next
            .query_pairs()
            .find(|(name, _)| name == "page_info")
            .map(|(_, value)| value.into_owned())
            .ok_or_else(|| ParseError {
                truncated: false,
                unauthorized: false,
                detail: format!("Link rel=next has no page_info: {next}"),
            })?;
        // Follow the header's URL as given: it carries the walk's filters in page_info.
        Ok(cursor.into_page(records, walk, Some(page_info), |_| next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::sources::presets::test_source;
    use reqwest::header::{HeaderValue, LINK};

    fn source() -> SourceConfig {
        SourceConfig {
            name: "shop".into(),
            lookback: Duration::from_secs(3600),
            shop: Some("acme.myshopify.com".into()),
            access_token: Some(crate::secret::Secret::new("shpat_x")),
            ..test_source(SourceKind::Shopify, "https://acme.myshopify.com")
        }
    }

    fn window(start: Option<i64>) -> SyncWindow {
        SyncWindow {
            start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            lookback: Duration::from_secs(3600),
        }
    }

    #[test]
    fn first_page_filters_and_later_pages_follow_the_link_header() {
        let source = source();
        let first = Shopify
            .first_request(&source, "orders", None, &window(Some(1_767_225_600)))
            .expect("request");
        assert_eq!(
            first.url.as_str(),
            "https://acme.myshopify.com/admin/api/2026-07/orders.json?status=any&limit=250&updated_at_min=2026-01-01T00%3A00%3A00Z"
        );
        let mut headers = HeaderMap::new();
        headers.insert(LINK, HeaderValue::from_static("<https://acme.myshopify.com/admin/api/2026-07/orders.json?limit=250&page_info=eyJsYXN0X2lkIjo0fQ>; rel=\"next\""));
        let body = br#"{"orders":[{"id":450789469,"updated_at":"2026-03-01T10:00:00-05:00","total_price":"199.00"}]}"#;
        let page = Shopify
            .parse_page(&source, "orders", &first, &headers, body)
            .expect("page");
        let next = page.next.expect("more");
        assert_eq!(
            next.url.as_str(),
            "https://acme.myshopify.com/admin/api/2026-07/orders.json?limit=250&page_info=eyJsYXN0X2lkIjo0fQ"
        );
        // Resuming after a crash sends only limit and page_info.
        let resumed = Shopify
            .first_request(
                &source,
                "orders",
                Some(&page.cursor),
                &window(Some(1_767_225_600)),
            )
            .expect("request");
        assert_eq!(resumed.url, next.url);
        let end = Shopify
            .parse_page(
                &source,
                "orders",
                &next,
                &HeaderMap::new(),
                br#"{"orders":[]}"#,
            )
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(
            end.cursor, r#"{"since":1772377200}"#,
            "the newest updated_at becomes the mark"
        );
        let again = Shopify
            .first_request(
                &source,
                "orders",
                Some(&end.cursor),
                &window(Some(1_767_225_600)),
            )
            .expect("request");
        assert!(
            again
                .url
                .as_str()
                .ends_with("updated_at_min=2026-03-01T14%3A00%3A00Z"),
            "one hour of lookback: {}",
            again.url
        );
    }

    #[test]
    fn orders_without_updated_at_are_malformed() {
        let source = source();
        let first = Shopify
            .first_request(&source, "orders", None, &window(None))
            .expect("request");
        let error = Shopify
            .parse_page(
                &source,
                "orders",
                &first,
                &HeaderMap::new(),
                br#"{"orders":[{"id":1}]}"#,
            )
            .expect_err("malformed");
        assert!(error.detail.contains("updated_at"), "{}", error.detail);
    }
}
