//! Zendesk Support: tickets, ticket metrics and satisfaction ratings.
//!
//! Follows Zendesk's API reference:
//! - API token authentication, HTTP Basic with `{email}/token:{api_token}`, on
//!   `https://{subdomain}.zendesk.com/api/v2/...`:
//!   <https://developer.zendesk.com/api-reference/introduction/security-and-auth/#api-token>
//! - Tickets through the cursor-based incremental export
//!   (`GET /api/v2/incremental/tickets/cursor.json`): `start_time` on the first request only,
//!   then `cursor` = the previous page's `after_cursor`, until `end_of_stream`; up to 1,000
//!   per page; every ticket that changed since the cursor comes again, deleted ones with
//!   status `deleted` (so a re-opened or deleted ticket replaces its earlier version):
//!   <https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/>,
//!   <https://developer.zendesk.com/documentation/ticketing/managing-tickets/using-the-incremental-export-api>
//! - Ticket metrics (`GET /api/v2/ticket_metrics`) and satisfaction ratings
//!   (`GET /api/v2/satisfaction_ratings`, filtered by `start_time`) with cursor pagination:
//!   `page[size]` (100 at most), `page[after]` = `meta.after_cursor` while `meta.has_more`:
//!   <https://developer.zendesk.com/api-reference/introduction/pagination/>,
//!   <https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_metrics/>,
//!   <https://developer.zendesk.com/api-reference/ticketing/ticket-management/satisfaction_ratings/>
//! - Rate limits: 429 with `Retry-After` in seconds (the incremental export allows 10
//!   requests a minute), honoured by the shared client:
//!   <https://developer.zendesk.com/api-reference/introduction/rate-limits>
//!
//! Incremental sync: tickets resume from the export's own cursor, saved after every
//! committed batch; it never repeats what is committed and always brings changed tickets.
//! Ticket metrics have no time filter, so each sync walks the whole list (the walk's
//! position is saved, so an interrupted walk resumes), and changed metrics replace their
//! earlier versions. Satisfaction ratings are walked from `lookback` (default 30 days)
//! before the newest `created_at` of the last complete walk, so a rating changed after it
//! was first synced (a score turned from good to bad) is picked up.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::walk::{Walk, WalkCursor};
use super::{Preset, PresetInfo, SyncWindow, endpoint};
use crate::config::SourceConfig;
use crate::records;
use crate::secret::Secret;
use crate::sources::http::{Auth, ParseError};
use crate::sources::{Page, PageRequest, SourceError, fetched_records};

/// Zendesk's description; the base URL is built from `subdomain`.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://{subdomain}.zendesk.com",
    streams: &["tickets", "ticket_metrics", "satisfaction_ratings"],
    required: &["subdomain", "email", "api_token"],
    default_lookback: Duration::from_secs(30 * 24 * 3600),
    token_url: None,
};

/// Largest page of the incremental export.
const EXPORT_PAGE: &str = "1000";
/// Largest page of cursor-paginated lists.
const LIST_PAGE: &str = "100";

/// The Zendesk preset.
pub struct Zendesk;

/// The saved cursor of one Zendesk stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// Tickets: the export's `after_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    export: Option<String>,
    /// Lists: the walk's high-water mark and position.
    #[serde(flatten)]
    walk: WalkCursor,
}

/// The incremental export's response.
#[derive(Deserialize)]
struct Export<'a> {
    #[serde(borrow)]
    tickets: Vec<&'a RawValue>,
    after_cursor: Option<String>,
    end_of_stream: bool,
}

/// A cursor-paginated list response: the array under the stream's name, and `meta`.
#[derive(Deserialize)]
struct ListMeta {
    has_more: bool,
    after_cursor: Option<String>,
}

fn encode(cursor: &Cursor) -> String {
    serde_json::to_string(cursor).expect("a cursor of plain fields always serializes")
}

fn parse_error(detail: impl Into<String>) -> ParseError {
    ParseError {
        truncated: false,
        unauthorized: false,
        detail: detail.into(),
    }
}

fn export_url(base: &reqwest::Url, cursor: &Cursor, start: i64) -> reqwest::Url {
    let mut url = endpoint(base, "api/v2/incremental/tickets/cursor.json");
    {
        let mut query = url.query_pairs_mut();
        match &cursor.export {
            Some(after) => query.append_pair("cursor", after),
            None => query.append_pair("start_time", &start.to_string()),
        };
        query.append_pair("per_page", EXPORT_PAGE);
    }
    url
}

fn list_url(base: &reqwest::Url, stream: &str, walk: &Walk) -> reqwest::Url {
    let mut url = endpoint(base, &format!("api/v2/{stream}"));
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("page[size]", LIST_PAGE);
        if let Some(start) = walk.gte {
            query.append_pair("start_time", &start.to_string());
        }
        if let Some(after) = &walk.after {
            query.append_pair("page[after]", after);
        }
    }
    url
}

impl Preset for Zendesk {
    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        match (&source.email, &source.api_token) {
            // Zendesk's API token form: the user is "{email}/token".
            (Some(email), Some(token)) => Ok(Auth::Basic {
                username: Secret::new(format!("{email}/token")),
                password: token.clone(),
            }),
            _ => Err(SourceError::Unauthorized {
                message: "email and api_token are required".into(),
            }),
        }
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        let mut url = endpoint(&source.base_url, "api/v2/ticket_metrics");
        url.query_pairs_mut().append_pair("page[size]", "1");
        PageRequest::get(url, String::new())
    }

    fn first_request(
        &self,
        source: &SourceConfig,
        stream: &str,
        cursor: Option<&str>,
        window: &SyncWindow,
    ) -> Result<PageRequest, SourceError> {
        let mut cursor: Cursor = match cursor {
            Some(text) => serde_json::from_str(text)
                .map_err(|error| SourceError::BadCursor(error.to_string()))?,
            None => Cursor::default(),
        };
        let url = if stream == "tickets" {
            // The export wants a start_time on the first request; without a start_date,
            // the beginning of time (every ticket).
            export_url(
                &source.base_url,
                &cursor,
                window.start.map_or(0, |start| start.timestamp()),
            )
        } else {
            // Ticket metrics have no time filter upstream: each walk covers the whole list.
            let filtered = stream == "satisfaction_ratings";
            list_url(
                &source.base_url,
                stream,
                cursor.walk.begin(window, filtered),
            )
        };
        Ok(PageRequest::get(url, encode(&cursor)))
    }

    fn parse_page(
        &self,
        source: &SourceConfig,
        stream: &str,
        request: &PageRequest,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let mut cursor: Cursor = serde_json::from_str(&request.state)
            .map_err(|error| parse_error(format!("internal cursor state unreadable: {error}")))?;
        if stream == "tickets" {
            let export: Export = ParseError::parse_json(body)?;
            let records =
                fetched_records(&export.tickets, &["id"], &source.record_fields(stream, &[]))?;
            let after = export
                .after_cursor
                .ok_or_else(|| parse_error("after_cursor is missing"))?;
            cursor.export = Some(after);
            let next = (!export.end_of_stream).then(|| {
                PageRequest::get(export_url(&source.base_url, &cursor, 0), encode(&cursor))
            });
            return Ok(Page {
                records,
                cursor: encode(&cursor),
                next,
            });
        }

        // Lists carry their records under the stream's own name.
        let mut list: serde_json::Map<String, serde_json::Value> = ParseError::parse_json(body)?;
        let meta: ListMeta = list
            .remove("meta")
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| parse_error(format!("meta: {error}")))?
            .ok_or_else(|| parse_error("meta is missing (cursor pagination)"))?;
        let items = list
            .remove(stream)
            .ok_or_else(|| parse_error(format!("`{stream}` is missing")))?;
        let items: Vec<Box<RawValue>> = serde_json::from_value(items)
            .map_err(|error| parse_error(format!("`{stream}` is not a list: {error}")))?;
        let borrowed: Vec<&RawValue> = items.iter().map(Box::as_ref).collect();
        let records = fetched_records(
            &borrowed,
            &["id"],
            &source.record_fields(stream, &["created_at"]),
        )?;
        let mut walk = cursor.walk.take_walk();
        for fetched in &records {
            if let Ok(Some(created)) =
                records::event_time(fetched.record.get("created_at"), chrono_tz::UTC)
            {
                walk.see(created.timestamp());
            }
        }
        match (meta.has_more, meta.after_cursor) {
            (true, Some(after)) => {
                let url = list_url(
                    &source.base_url,
                    stream,
                    cursor.walk.continue_after(walk, after),
                );
                let state = encode(&cursor);
                Ok(Page {
                    records,
                    cursor: state.clone(),
                    next: Some(PageRequest::get(url, state)),
                })
            }
            (true, None) => Err(parse_error(
                "meta.has_more is true but meta.after_cursor is missing",
            )),
            (false, _) => {
                cursor.walk.finish(walk);
                Ok(Page {
                    records,
                    cursor: encode(&cursor),
                    next: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::sources::presets::test_source;

    fn source() -> SourceConfig {
        SourceConfig {
            name: "support".into(),
            subdomain: Some("acme".into()),
            email: Some("ops@acme.test".into()),
            api_token: Some(crate::secret::Secret::new("zd-token")),
            ..test_source(SourceKind::Zendesk, "https://acme.zendesk.com")
        }
    }

    fn window(start: Option<i64>) -> SyncWindow {
        SyncWindow {
            start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            lookback: Duration::from_secs(100),
        }
    }

    #[test]
    fn tickets_follow_the_export_cursor_until_end_of_stream() {
        let source = source();
        let first = Zendesk
            .first_request(&source, "tickets", None, &window(Some(1_000)))
            .expect("request");
        assert_eq!(
            first.url.as_str(),
            "https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json?start_time=1000&per_page=1000"
        );
        let body = br#"{"tickets":[{"id":1,"status":"open","updated_at":"2026-03-01T10:00:00Z"}],"after_cursor":"MTU3","after_url":"x","before_cursor":null,"end_of_stream":false}"#;
        let page = Zendesk
            .parse_page(&source, "tickets", &first, &HeaderMap::new(), body)
            .expect("page");
        assert_eq!(page.cursor, r#"{"export":"MTU3"}"#);
        let next = page.next.expect("more");
        assert_eq!(
            next.url.as_str(),
            "https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor=MTU3&per_page=1000"
        );
        // A later sync resumes from the saved cursor, never from start_time again.
        let resumed = Zendesk
            .first_request(&source, "tickets", Some(&page.cursor), &window(Some(1_000)))
            .expect("request");
        assert_eq!(resumed.url, next.url);
        let last = br#"{"tickets":[],"after_cursor":"MTU4","end_of_stream":true}"#;
        let end = Zendesk
            .parse_page(&source, "tickets", &next, &HeaderMap::new(), last)
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"export":"MTU4"}"#);
    }

    #[test]
    fn lists_walk_cursor_pages_and_ratings_start_at_since_minus_lookback() {
        let source = source();
        let metrics = Zendesk
            .first_request(
                &source,
                "ticket_metrics",
                Some(r#"{"since":5000}"#),
                &window(None),
            )
            .expect("request");
        assert_eq!(
            metrics.url.as_str(),
            "https://acme.zendesk.com/api/v2/ticket_metrics?page%5Bsize%5D=100",
            "no time filter on metrics"
        );
        let ratings = Zendesk
            .first_request(
                &source,
                "satisfaction_ratings",
                Some(r#"{"since":5000}"#),
                &window(Some(1_000)),
            )
            .expect("request");
        assert_eq!(
            ratings.url.as_str(),
            "https://acme.zendesk.com/api/v2/satisfaction_ratings?page%5Bsize%5D=100&start_time=4900"
        );
        let body = br#"{"satisfaction_ratings":[{"id":7,"score":"good","created_at":"1970-01-01T01:40:00Z"}],"meta":{"has_more":true,"after_cursor":"xyz"},"links":{"next":"n"}}"#;
        let page = Zendesk
            .parse_page(
                &source,
                "satisfaction_ratings",
                &ratings,
                &HeaderMap::new(),
                body,
            )
            .expect("page");
        let next = page.next.expect("more");
        assert!(
            next.url
                .as_str()
                .ends_with("start_time=4900&page%5Bafter%5D=xyz"),
            "{}",
            next.url
        );
        let last = br#"{"satisfaction_ratings":[],"meta":{"has_more":false,"after_cursor":null}}"#;
        let end = Zendesk
            .parse_page(
                &source,
                "satisfaction_ratings",
                &next,
                &HeaderMap::new(),
                last,
            )
            .expect("page");
        assert_eq!(end.cursor, r#"{"since":6000}"#);
    }

    #[test]
    fn auth_is_basic_with_the_token_user() {
        match Zendesk.auth(&source()).expect("auth") {
            Auth::Basic { username, password } => {
                assert_eq!(username.expose(), "ops@acme.test/token");
                assert_eq!(password.expose(), "zd-token");
            }
            other => panic!("unexpected auth {other:?}"),
        }
    }

    #[test]
    fn malformed_pages_name_what_is_missing() {
        let source = source();
        let request = Zendesk
            .first_request(&source, "ticket_metrics", None, &window(None))
            .expect("request");
        let no_meta = br#"{"ticket_metrics":[]}"#;
        assert!(
            Zendesk
                .parse_page(
                    &source,
                    "ticket_metrics",
                    &request,
                    &HeaderMap::new(),
                    no_meta
                )
                .expect_err("no meta")
                .detail
                .contains("meta")
        );
        let wrong = br#"{"tickets":[],"meta":{"has_more":false}}"#;
        assert!(
            Zendesk
                .parse_page(
                    &source,
                    "ticket_metrics",
                    &request,
                    &HeaderMap::new(),
                    wrong
                )
                .expect_err("no list")
                .detail
                .contains("ticket_metrics")
        );
    }
}
