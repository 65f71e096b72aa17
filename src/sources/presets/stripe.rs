//! Stripe: charges, refunds, invoices, subscriptions and balance transactions.
//!
//! Follows Stripe's API reference:
//! - Authentication with the secret key as a Bearer token:
//!   <https://docs.stripe.com/api/authentication>
//! - List endpoints and cursor pagination (`limit` 1–100, `starting_after` = the last
//!   object's id, `has_more`; newest first): <https://docs.stripe.com/api/pagination>
//! - `created[gte]` range filter on every list used here:
//!   <https://docs.stripe.com/api/charges/list>, <https://docs.stripe.com/api/refunds/list>,
//!   <https://docs.stripe.com/api/invoices/list>,
//!   <https://docs.stripe.com/api/subscriptions/list> (canceled subscriptions only with
//!   `status=all`), <https://docs.stripe.com/api/balance_transactions/list>
//! - Errors as `{"error": {"message": ...}}`, 429 on rate limits with no `Retry-After`
//!   (the shared client backs off on its own), and the `Stripe-Should-Retry` header:
//!   <https://docs.stripe.com/api/errors>, <https://docs.stripe.com/rate-limits>
//!
//! Incremental sync: a list is walked newest first, so the high-water mark (`since`, the
//! largest `created` seen) can only move once a walk has reached its end. Until then the
//! cursor records the walk in progress (`run`: its `created[gte]` bound and the last id
//! committed) so a crash resumes the walk after the last committed page. Each new walk
//! starts at `since - lookback` (default 30 days, `lookback` in the source's config):
//! objects created in that window are read again, so a charge refunded, captured or
//! disputed after it was first synced is picked up with its new state and replaces its
//! earlier version. Refunds are objects of their own with their own `created`, so a
//! refund issued months later is always seen by the `refunds` stream. The lookback is
//! applied to the saved cursor, never to `start_date`.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::walk::{Walk, WalkCursor};
use super::{Preset, PresetInfo, SyncWindow, endpoint};
use crate::config::SourceConfig;
use crate::sources::http::{Auth, ParseError};
use crate::sources::{Page, PageRequest, SourceError, fetched_records};

/// Stripe's description.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://api.stripe.com",
    streams: &[
        "charges",
        "refunds",
        "invoices",
        "subscriptions",
        "balance_transactions",
    ],
    required: &["api_key"],
    default_lookback: Duration::from_secs(30 * 24 * 3600),
    token_url: None,
};

/// The largest page Stripe allows.
const PAGE_LIMIT: &str = "100";

/// The Stripe preset.
pub struct Stripe;

/// A list response: `{"object": "list", "data": [...], "has_more": bool}`.
#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    has_more: bool,
}

fn list_url(base: &reqwest::Url, stream: &str, walk: &Walk) -> reqwest::Url {
    let mut url = endpoint(base, &format!("v1/{stream}"));
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("limit", PAGE_LIMIT);
        if stream == "subscriptions" {
            query.append_pair("status", "all");
        }
        if let Some(gte) = walk.gte {
            query.append_pair("created[gte]", &gte.to_string());
        }
        if let Some(after) = &walk.after {
            query.append_pair("starting_after", after);
        }
    }
    url
}

impl Preset for Stripe {
    /// Every list walks on `created[gte]`.
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> super::Coverage {
        super::Coverage::Field("created".into())
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        source
            .api_key
            .clone()
            .map(Auth::Bearer)
            .ok_or_else(|| SourceError::Unauthorized {
                message: "no api_key configured".into(),
            })
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        let mut url = endpoint(&source.base_url, "v1/charges");
        url.query_pairs_mut().append_pair("limit", "1");
        PageRequest::get(url, String::new())
    }

    fn first_request(
        &self,
        source: &SourceConfig,
        stream: &str,
        cursor: Option<&str>,
        window: &SyncWindow,
    ) -> Result<PageRequest, SourceError> {
        let mut cursor = WalkCursor::parse(cursor)?;
        let url = list_url(&source.base_url, stream, cursor.begin(window, true));
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
        let records = fetched_records(
            &list.data,
            &["id"],
            &source.record_fields(stream, &["created"]),
        )?;
        let mut cursor = WalkCursor::from_state(&request.state)?;
        let mut walk = cursor.take_walk();
        for (index, fetched) in records.iter().enumerate() {
            let created = fetched
                .record
                .get("created")
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| ParseError {
                    truncated: false,
                    unauthorized: false,
                    detail: format!("item {index} ({}) has no integer `created`", fetched.key),
                })?;
            walk.see(created);
        }
        // The next page starts after the last object of this one.
        let next = match (list.has_more, records.last()) {
            (false, _) => None,
            (true, Some(last)) => Some(last.key.clone()),
            (true, None) => {
                return Err(ParseError {
                    truncated: false,
                    unauthorized: false,
                    detail: "has_more is true but data is empty".into(),
                });
            }
        };
        Ok(cursor.into_page(records, walk, next, |walk| {
            list_url(&source.base_url, stream, walk)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::sources::presets::test_source;

    fn source(base: &str) -> SourceConfig {
        SourceConfig {
            name: "stripe".into(),
            streams: vec!["charges".into()],
            api_key: Some(crate::secret::Secret::new("sk_test_x")),
            ..test_source(SourceKind::Stripe, base)
        }
    }

    fn window(start: Option<i64>) -> SyncWindow {
        SyncWindow {
            start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            lookback: Duration::from_secs(100),
        }
    }

    #[test]
    fn first_walk_starts_at_start_date_and_then_at_since_minus_lookback() {
        let source = source("http://127.0.0.1:9/prefix");
        let first = Stripe
            .first_request(&source, "charges", None, &window(Some(1_000)))
            .expect("request");
        assert_eq!(
            first.url.as_str(),
            "http://127.0.0.1:9/prefix/v1/charges?limit=100&created%5Bgte%5D=1000"
        );
        let cursor = r#"{"since":5000}"#;
        let next = Stripe
            .first_request(&source, "charges", Some(cursor), &window(Some(1_000)))
            .expect("request");
        assert!(
            next.url.as_str().ends_with("created%5Bgte%5D=4900"),
            "{}",
            next.url
        );
        // The lookback never reaches before start_date.
        let early = Stripe
            .first_request(
                &source,
                "charges",
                Some(r#"{"since":1050}"#),
                &window(Some(1_000)),
            )
            .expect("request");
        assert!(
            early.url.as_str().ends_with("created%5Bgte%5D=1000"),
            "{}",
            early.url
        );
        let subscriptions = Stripe
            .first_request(&source, "subscriptions", None, &window(None))
            .expect("request");
        assert_eq!(
            subscriptions.url.as_str(),
            "http://127.0.0.1:9/prefix/v1/subscriptions?limit=100&status=all"
        );
    }

    #[test]
    fn walk_in_progress_resumes_after_the_last_committed_object() {
        let source = source("http://127.0.0.1:9");
        let request = Stripe
            .first_request(&source, "charges", None, &window(Some(1_000)))
            .expect("request");
        let body = br#"{"object":"list","has_more":true,"data":[{"id":"ch_3","created":3000},{"id":"ch_2","created":2000}]}"#;
        let page = Stripe
            .parse_page(&source, "charges", &request, &HeaderMap::new(), body)
            .expect("page");
        assert_eq!(page.records.len(), 2);
        let next = page.next.expect("has_more");
        assert_eq!(
            next.url.as_str(),
            "http://127.0.0.1:9/v1/charges?limit=100&created%5Bgte%5D=1000&starting_after=ch_2"
        );
        // A restart with the committed cursor sends the same request.
        let resumed = Stripe
            .first_request(&source, "charges", Some(&page.cursor), &window(Some(1_000)))
            .expect("request");
        assert_eq!(resumed.url, next.url);
        let last = br#"{"object":"list","has_more":false,"data":[{"id":"ch_1","created":1500}]}"#;
        let end = Stripe
            .parse_page(&source, "charges", &next, &HeaderMap::new(), last)
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"since":3000}"#);
    }

    #[test]
    fn malformed_pages_are_rejected() {
        let source = source("http://127.0.0.1:9");
        let request = Stripe
            .first_request(&source, "charges", None, &window(None))
            .expect("request");
        let truncated = br#"{"object":"list","has_more":true,"data":[{"id":"ch_3","crea"#;
        assert!(
            Stripe
                .parse_page(&source, "charges", &request, &HeaderMap::new(), truncated)
                .expect_err("truncated")
                .truncated
        );
        let empty_more = br#"{"object":"list","has_more":true,"data":[]}"#;
        assert!(
            Stripe
                .parse_page(&source, "charges", &request, &HeaderMap::new(), empty_more)
                .expect_err("empty")
                .detail
                .contains("has_more")
        );
        let no_created = br#"{"object":"list","has_more":false,"data":[{"id":"ch_3"}]}"#;
        assert!(
            Stripe
                .parse_page(&source, "charges", &request, &HeaderMap::new(), no_created)
                .expect_err("no created")
                .detail
                .contains("created")
        );
        let error_body = br#"{"error":{"message":"nope"}}"#;
        assert!(
            !Stripe
                .parse_page(&source, "charges", &request, &HeaderMap::new(), error_body)
                .expect_err("not a list")
                .truncated
        );
    }
}
