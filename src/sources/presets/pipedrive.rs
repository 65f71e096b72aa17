//! Pipedrive: deals, through the v2 REST API.
//!
//! Follows Pipedrive's developer documentation:
//! - Authentication with the personal API token as the `api_token` query parameter, on
//!   `https://{company_domain}.pipedrive.com/api/v2/...`:
//!   <https://pipedrive.readme.io/docs/core-api-concepts-authentication>
//! - Deals list `GET /api/v2/deals` with `updated_since` (RFC 3339), `sort_by=update_time`,
//!   `sort_direction=asc`: <https://developers.pipedrive.com/docs/api/v1/Deals#getDeals>
//! - Cursor pagination of every v2 list: `cursor` and `limit` (500 at most), the next
//!   cursor in `additional_data.next_cursor` (null on the last page):
//!   <https://pipedrive.readme.io/docs/core-api-concepts-pagination>
//! - Rate limits: 429 with `Retry-After`, honoured by the shared client:
//!   <https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting>
//!
//! Incremental sync: a deal moves `update_time` whenever it changes (won, lost, value or
//! stage changed). A walk asks for deals updated since the newest `update_time` of the last
//! complete walk minus `lookback` (never before `start_date`), so every changed deal comes
//! again and replaces its earlier version. The query key is never shown: errors and logs
//! print URLs without it.

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

/// Pipedrive's description; the base URL is built from `company_domain`.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://{company_domain}.pipedrive.com",
    streams: &["deals"],
    required: &["api_token", "company_domain"],
    default_lookback: Duration::from_secs(7 * 24 * 3600),
    token_url: None,
};

/// The largest page Pipedrive allows.
const PAGE_LIMIT: &str = "500";

/// The Pipedrive preset.
pub struct Pipedrive;

/// `{"success": true, "data": [...], "additional_data": {"next_cursor": ...}}`.
#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    data: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    additional_data: Option<AdditionalData>,
}

#[derive(Deserialize)]
struct AdditionalData {
    next_cursor: Option<String>,
}

fn deals_url(base: &reqwest::Url, walk: &Walk) -> reqwest::Url {
    let mut url = endpoint(base, "api/v2/deals");
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("limit", PAGE_LIMIT)
            .append_pair("sort_by", "update_time")
            .append_pair("sort_direction", "asc");
        if let Some(gte) = walk.gte {
            let since = chrono::DateTime::from_timestamp(gte, 0).unwrap_or_default();
            query.append_pair(
                "updated_since",
                &since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
        if let Some(cursor) = &walk.after {
            query.append_pair("cursor", cursor);
        }
    }
    url
}

impl Preset for Pipedrive {
    /// Deals walk on `updated_since`.
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> super::Coverage {
        super::Coverage::Field("update_time".into())
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        source
            .api_token
            .clone()
            .map(|value| Auth::Query {
                name: "api_token".into(),
                value,
            })
            .ok_or_else(|| SourceError::Unauthorized {
                message: "no api_token configured".into(),
            })
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        let mut url = endpoint(&source.base_url, "api/v2/deals");
        url.query_pairs_mut().append_pair("limit", "1");
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
        let url = deals_url(&source.base_url, cursor.begin(window, true));
        Ok(PageRequest::get(url, cursor.encode()))
    }

    fn parse_page(
        &self,
        source: &SourceConfig,
        stream: &str,
        request: &PageRequest,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let list: List = ParseError::parse_json(body)?;
        // `data` is null when nothing matches.
        let records = fetched_records(
            &list.data.unwrap_or_default(),
            &["id"],
            &source.record_fields(stream, &["update_time"]),
        )?;
        let mut cursor = WalkCursor::from_state(&request.state)?;
        let mut walk = cursor.take_walk();
        for (index, fetched) in records.iter().enumerate() {
            let updated = records::event_time(fetched.record.get("update_time"), chrono_tz::UTC)
                .ok()
                .flatten()
                .ok_or_else(|| ParseError {
                    truncated: false,
                    unauthorized: false,
                    detail: format!(
                        "deal {index} ({}) has no readable `update_time`",
                        fetched.key
                    ),
                })?;
            walk.see(updated.timestamp());
        }
        let next = list.additional_data.and_then(|data| data.next_cursor);
        Ok(cursor.into_page(records, walk, next, |walk| {
            deals_url(&source.base_url, walk)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::sources::presets::test_source;

    fn source() -> SourceConfig {
        SourceConfig {
            company_domain: Some("acme".into()),
            api_token: Some(crate::secret::Secret::new("pd-token")),
            ..test_source(SourceKind::Pipedrive, "https://acme.pipedrive.com")
        }
    }

    fn window(start: Option<i64>) -> SyncWindow {
        SyncWindow {
            start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            lookback: Duration::from_secs(100),
        }
    }

    #[test]
    fn walks_deals_by_update_time_with_the_next_cursor() {
        let source = source();
        let first = Pipedrive
            .first_request(&source, "deals", None, &window(Some(1_767_225_600)))
            .expect("request");
        assert_eq!(
            first.url.as_str(),
            "https://acme.pipedrive.com/api/v2/deals?limit=500&sort_by=update_time&sort_direction=asc&updated_since=2026-01-01T00%3A00%3A00Z"
        );
        let body = br#"{"success":true,"data":[{"id":1,"title":"Wedding cakes","value":1200,"status":"won","update_time":"2026-03-02T10:00:00Z"}],"additional_data":{"next_cursor":"eyJpZCI6MX0"}}"#;
        let page = Pipedrive
            .parse_page(&source, "deals", &first, &HeaderMap::new(), body)
            .expect("page");
        let next = page.next.expect("more");
        assert!(
            next.url
                .as_str()
                .ends_with("&updated_since=2026-01-01T00%3A00%3A00Z&cursor=eyJpZCI6MX0"),
            "{}",
            next.url
        );
        let end = Pipedrive
            .parse_page(
                &source,
                "deals",
                &next,
                &HeaderMap::new(),
                br#"{"success":true,"data":null,"additional_data":{"next_cursor":null}}"#,
            )
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"since":1772445600}"#);
    }

    #[test]
    fn the_token_goes_in_the_query_and_deals_need_update_time() {
        assert!(matches!(
            Pipedrive.auth(&source()),
            Ok(Auth::Query { name, .. }) if name == "api_token"
        ));
        let source = source();
        let first = Pipedrive
            .first_request(&source, "deals", None, &window(None))
            .expect("request");
        let error = Pipedrive
            .parse_page(
                &source,
                "deals",
                &first,
                &HeaderMap::new(),
                br#"{"data":[{"id":1}]}"#,
            )
            .expect_err("malformed");
        assert!(error.detail.contains("update_time"), "{}", error.detail);
    }
}
