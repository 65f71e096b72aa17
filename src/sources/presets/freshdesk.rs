//! Freshdesk: tickets and satisfaction ratings.
//!
//! Follows Freshdesk's API v2 reference (one page, <https://developers.freshdesk.com/api/>,
//! cited by anchor):
//! - Authentication: HTTP Basic with the API key as the user and any password (`X` in every
//!   published example), on `https://{domain}/api/v2/...` where `domain` is the helpdesk's
//!   Freshdesk domain (`acme.freshdesk.com`; the API answers only on Freshdesk domains, not
//!   on custom CNAMEs): <https://developers.freshdesk.com/api/#authentication>
//! - Tickets (`GET /api/v2/tickets`): without `updated_since` only tickets created in the
//!   last 30 days come, so every request carries `updated_since` (ISO 8601 UTC);
//!   `order_by=updated_at&order_type=asc` lists the oldest change first; at most 300 pages
//!   are served ("You cannot access tickets beyond the 300th page"):
//!   <https://developers.freshdesk.com/api/#list_all_tickets>
//! - Satisfaction ratings (`GET /api/v2/surveys/satisfaction_ratings`), filtered by
//!   `created_since`; each rating carries `ratings.default_question` on Freshdesk's scale
//!   (103 extremely happy … -103 extremely unhappy):
//!   <https://developers.freshdesk.com/api/#view_all_satisfaction_ratings>
//! - Pagination: lists are bare JSON arrays, `per_page` (100 at most) and `page` (from 1);
//!   "the 'link' header in the response will hold the next page url if exists. If you have
//!   reached the last page of objects, then the link header will not be set":
//!   <https://developers.freshdesk.com/api/#pagination>
//! - Rate limits: per minute and plan, with a lower limit for listing tickets (20 a minute
//!   on Growth); 429 with `Retry-After` in seconds, honoured by the shared client:
//!   <https://developers.freshdesk.com/api/#ratelimit>,
//!   <https://support.freshdesk.com/support/solutions/articles/225439-what-are-the-rate-limits-for-the-api-calls-to-freshdesk>
//! - Errors: `{"code": "invalid_credentials", "message": "You have to be logged in to
//!   perform this action."}` with 401 for a wrong key; the shared client shows `message`:
//!   <https://developers.freshdesk.com/api/#error>,
//!   <https://github.com/sjkingo/python-freshdesk/issues/74>
//!
//! Incremental sync: both streams are walked with the shared [`WalkCursor`]. Tickets start
//! at the newest `updated_at` of the last complete walk minus `lookback` (default one day;
//! never before `start_date`; from 1970 without either), so a ticket that changed since
//! comes again and replaces its earlier version. Ratings start the same way from the
//! newest `created_at`. The walk's position is the next page number, saved after every
//! committed page, so an interrupted walk resumes there. The next page number is read
//! from the `link` header's `rel="next"` URL and the request is rebuilt on `base_url`
//! (the link's host and other parameters are not followed).
//!
//! The 300-page cap: tickets come oldest change first, so when a walk would go past page
//! 300 (or page 300 is full and no link follows), the walk restarts at page 1 with
//! `updated_since` = the newest `updated_at` seen so far. Tickets updated in that very
//! second are read twice and replace themselves. If all 300 pages were updated in the
//! same second the restart would not advance; the sync then fails with that message
//! instead of looping.
//!
//! Known limit of page-number lists: a ticket that changes during a walk moves to the end
//! of the list, shifting the ones after it back by one, so one unchanged ticket may be
//! skipped on that walk; the next walk's `lookback` reads it again.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::value::RawValue;

use super::walk::{Walk, WalkCursor};
use super::{Preset, PresetInfo, SyncWindow, endpoint, next_link};
use crate::config::SourceConfig;
use crate::records;
use crate::secret::Secret;
use crate::sources::http::{Auth, ParseError};
use crate::sources::{Page, PageRequest, SourceError, fetched_records};

/// Freshdesk's description; the base URL is built from `domain`.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://{domain}",
    streams: &["tickets", "satisfaction_ratings"],
    required: &["domain", "api_key"],
    default_lookback: Duration::from_secs(24 * 3600),
    token_url: None,
};

/// Largest page of every list.
const PAGE_SIZE: usize = 100;
/// The last ticket page Freshdesk serves.
const LAST_TICKET_PAGE: u32 = 300;
/// The password sent with the API key (any value works; Freshdesk's examples use `X`).
const DUMMY_PASSWORD: &str = "X";

/// The Freshdesk preset.
pub struct Freshdesk;

/// How one stream is listed.
struct Stream {
    /// The list's path under the base URL.
    path: &'static str,
    /// The lower time bound parameter.
    since_param: &'static str,
    /// The field the walk's high-water mark follows (and the order of tickets).
    time_field: &'static str,
    /// Extra fixed query parameters.
    extra: &'static [(&'static str, &'static str)],
    /// Whether the list is ordered by `time_field` and capped at [`LAST_TICKET_PAGE`].
    capped: bool,
}

const TICKETS: Stream = Stream {
    path: "api/v2/tickets",
    since_param: "updated_since",
    time_field: "updated_at",
    extra: &[("order_by", "updated_at"), ("order_type", "asc")],
    capped: true,
};

const RATINGS: Stream = Stream {
    path: "api/v2/surveys/satisfaction_ratings",
    since_param: "created_since",
    time_field: "created_at",
    extra: &[],
    capped: false,
};

/// The stream's listing; validation admits only the names in [`INFO`].
fn stream_of(name: &str) -> &'static Stream {
    if name == "tickets" {
        &TICKETS
    } else {
        &RATINGS
    }
}

fn parse_error(detail: impl Into<String>) -> ParseError {
    ParseError {
        truncated: false,
        unauthorized: false,
        detail: detail.into(),
    }
}

/// Unix seconds as Freshdesk's `YYYY-MM-DDTHH:MM:SSZ`.
fn iso(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The page a walk's position names (the first page when none).
fn page_number(walk: &Walk) -> Result<u32, ParseError> {
    match walk.after.as_deref() {
        None => Ok(1),
        Some(text) => text.parse().map_err(|_| {
            parse_error(format!(
                "internal cursor state: page \"{text}\" is not a page number"
            ))
        }),
    }
}

fn list_url(base: &reqwest::Url, stream: &Stream, walk: &Walk) -> reqwest::Url {
    let mut url = endpoint(base, stream.path);
    {
        let mut query = url.query_pairs_mut();
        // Without a bound Freshdesk lists only the last 30 days: ask for everything.
        query.append_pair(stream.since_param, &iso(walk.gte.unwrap_or(0)));
        query.extend_pairs(stream.extra);
        query.append_pair("per_page", &PAGE_SIZE.to_string());
        if let Some(page) = &walk.after {
            query.append_pair("page", page);
        }
    }
    url
}

/// The `page` of the next link, resolved against the request it answers.
fn next_page(target: &str, request: &reqwest::Url, current: u32) -> Result<u32, ParseError> {
    let url = request
        .join(target)
        .map_err(|error| parse_error(format!("the link header's next URL is invalid: {error}")))?;
    let page = url
        .query_pairs()
        .find(|(name, _)| name == "page")
        .ok_or_else(|| parse_error("the link header's next URL has no page parameter"))?
        .1;
    let page: u32 = page.parse().map_err(|_| {
        parse_error(format!(
            "the link header's next page \"{page}\" is not a page number"
        ))
    })?;
    if page <= current {
        return Err(parse_error(format!(
            "the link header's next page {page} does not follow page {current}"
        )));
    }
    Ok(page)
}

impl Preset for Freshdesk {
    /// Tickets walk on `updated_since`, ratings on `created_since`.
    fn coverage(&self, _source: &SourceConfig, stream: &str) -> super::Coverage {
        super::Coverage::Field(stream_of(stream).time_field.into())
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        match &source.api_key {
            // Freshdesk's form: the key is the user, the password is a dummy.
            Some(key) if !key.is_empty() => Ok(Auth::Basic {
                username: key.clone(),
                password: Secret::new(DUMMY_PASSWORD),
            }),
            _ => Err(SourceError::Unauthorized {
                message: "api_key is required".into(),
            }),
        }
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        let mut url = endpoint(&source.base_url, TICKETS.path);
        url.query_pairs_mut().append_pair("per_page", "1");
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
        let url = list_url(
            &source.base_url,
            stream_of(stream),
            cursor.begin(window, true),
        );
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
        let spec = stream_of(stream);
        let mut cursor = WalkCursor::from_state(&request.state)?;
        let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|error| ParseError {
            truncated: error.is_eof(),
            unauthorized: false,
            detail: format!("expected a JSON array of {stream}: {error}"),
        })?;
        let records = fetched_records(
            &items,
            &["id"],
            &source.record_fields(stream, &[spec.time_field]),
        )?;
        let mut walk = cursor.take_walk();
        let current = page_number(&walk)?;
        for fetched in &records {
            if let Ok(Some(time)) =
                records::event_time(fetched.record.get(spec.time_field), chrono_tz::UTC)
            {
                walk.see(time.timestamp());
            }
        }
        // An empty page ends the walk whatever the header says.
        let next = match next_link(headers)? {
            Some(target) if !records.is_empty() => Some(next_page(&target, &request.url, current)?),
            _ => None,
        };
        let full = records.len() >= PAGE_SIZE;
        let capped = spec.capped
            && (next.is_some_and(|page| page > LAST_TICKET_PAGE)
                || (next.is_none() && current >= LAST_TICKET_PAGE && full));
        if capped {
            // Oldest change first: restart from the newest change seen so far.
            let newest = walk.max.ok_or_else(|| parse_error(format!("page {current} of tickets has no readable updated_at to continue past page {LAST_TICKET_PAGE} from")))?;
            if walk.gte.is_some_and(|gte| newest <= gte) {
                return Err(parse_error(format!(
                    "{LAST_TICKET_PAGE} pages of tickets were all updated at {}: Freshdesk serves no page past {LAST_TICKET_PAGE} and updated_since cannot advance",
                    iso(newest)
                )));
            }
            let walk = Walk {
                gte: Some(newest),
                after: None,
                max: walk.max,
            };
            let url = list_url(&source.base_url, spec, &walk);
            cursor.run = Some(walk);
            let state = cursor.encode();
            return Ok(Page {
                records,
                cursor: state.clone(),
                next: Some(PageRequest::get(url, state)),
            });
        }
        Ok(
            cursor.into_page(records, walk, next.map(|page| page.to_string()), |walk| {
                list_url(&source.base_url, spec, walk)
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::sources::presets::test_source;
    use reqwest::header::HeaderValue;

    fn source() -> SourceConfig {
        SourceConfig {
            name: "helpdesk".into(),
            api_key: Some(Secret::new("fd-key")),
            domain: Some("acme.freshdesk.com".into()),
            ..test_source(SourceKind::Freshdesk, "https://acme.freshdesk.com")
        }
    }

    fn window(start: Option<i64>) -> SyncWindow {
        SyncWindow {
            start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            lookback: Duration::from_secs(100),
        }
    }

    fn link(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    /// A page of `count` tickets, the newest updated at `newest` (unix seconds).
    fn tickets(count: usize, newest: i64) -> String {
        let items: Vec<String> = (0..count)
            .map(|index| {
                format!(
                    r#"{{"id":{},"status":2,"updated_at":"{}"}}"#,
                    index + 1,
                    iso(newest - (count - 1 - index) as i64)
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    const TICKETS_URL: &str = "https://acme.freshdesk.com/api/v2/tickets";
    const ORDER: &str = "order_by=updated_at&order_type=asc&per_page=100";

    #[test]
    fn tickets_walk_pages_by_the_link_header_and_finish_without_one() {
        let source = source();
        let first = Freshdesk
            .first_request(&source, "tickets", None, &window(Some(1_767_225_600)))
            .expect("request");
        assert_eq!(
            first.url.as_str(),
            format!("{TICKETS_URL}?updated_since=2026-01-01T00%3A00%3A00Z&{ORDER}")
        );
        let body = br#"[{"id":1,"status":4,"updated_at":"2026-03-01T10:00:00Z"},{"id":2,"status":2,"updated_at":"2026-03-02T10:00:00Z"}]"#;
        let headers = link(
            r#"<https://acme.freshdesk.com/api/v2/tickets?updated_since=2026-01-01T00%3A00%3A00Z&order_by=updated_at&order_type=asc&per_page=100&page=2>; rel="next""#,
        );
        let page = Freshdesk
            .parse_page(&source, "tickets", &first, &headers, body)
            .expect("page");
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].key, "1");
        assert_eq!(
            page.cursor,
            r#"{"run":{"gte":1767225600,"after":"2","max":1772445600}}"#
        );
        let next = page.next.expect("more");
        assert_eq!(
            next.url.as_str(),
            format!("{TICKETS_URL}?updated_since=2026-01-01T00%3A00%3A00Z&{ORDER}&page=2")
        );
        // No link header: the last page; the mark rises to the newest updated_at.
        let last = br#"[{"id":3,"status":5,"updated_at":"2026-03-03T10:00:00Z"}]"#;
        let end = Freshdesk
            .parse_page(&source, "tickets", &next, &HeaderMap::new(), last)
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"since":1772532000}"#);
        // The next walk starts `lookback` before the mark.
        let again = Freshdesk
            .first_request(
                &source,
                "tickets",
                Some(&end.cursor),
                &window(Some(1_767_225_600)),
            )
            .expect("request");
        assert_eq!(
            again.url.as_str(),
            format!("{TICKETS_URL}?updated_since=2026-03-03T09%3A58%3A20Z&{ORDER}")
        );
    }

    #[test]
    fn without_start_date_or_mark_the_walk_asks_for_every_ticket() {
        let request = Freshdesk
            .first_request(&source(), "tickets", None, &window(None))
            .expect("request");
        assert_eq!(
            request.url.as_str(),
            format!("{TICKETS_URL}?updated_since=1970-01-01T00%3A00%3A00Z&{ORDER}")
        );
    }

    #[test]
    fn an_interrupted_walk_resumes_at_its_saved_page() {
        let saved = r#"{"since":5000,"run":{"gte":4900,"after":"7","max":6000}}"#;
        let resumed = Freshdesk
            .first_request(&source(), "tickets", Some(saved), &window(Some(1_000)))
            .expect("request");
        assert_eq!(
            resumed.url.as_str(),
            format!("{TICKETS_URL}?updated_since=1970-01-01T01%3A21%3A40Z&{ORDER}&page=7")
        );
        assert_eq!(resumed.state, saved);
        let error = Freshdesk
            .first_request(&source(), "tickets", Some("not json"), &window(None))
            .expect_err("bad cursor");
        assert!(matches!(error, SourceError::BadCursor(_)), "{error:?}");
    }

    #[test]
    fn satisfaction_ratings_walk_from_created_since() {
        let source = source();
        let request = Freshdesk
            .first_request(
                &source,
                "satisfaction_ratings",
                Some(r#"{"since":5000}"#),
                &window(Some(1_000)),
            )
            .expect("request");
        assert_eq!(
            request.url.as_str(),
            "https://acme.freshdesk.com/api/v2/surveys/satisfaction_ratings?created_since=1970-01-01T01%3A21%3A40Z&per_page=100"
        );
        let body = br#"[{"id":9,"ticket_id":1,"ratings":{"default_question":103},"created_at":"1970-01-01T01:40:00Z","updated_at":"1970-01-01T01:40:00Z"}]"#;
        let page = Freshdesk
            .parse_page(
                &source,
                "satisfaction_ratings",
                &request,
                &HeaderMap::new(),
                body,
            )
            .expect("page");
        assert!(page.next.is_none());
        assert_eq!(page.cursor, r#"{"since":6000}"#);
        assert_eq!(page.records[0].record["ratings"]["default_question"], 103);
    }

    #[test]
    fn link_headers_are_parsed_by_relation() {
        let cases = [
            (
                r#"<https://a.test/x?page=2&per_page=100>;rel="next""#,
                Some("https://a.test/x?page=2&per_page=100"),
            ),
            (
                r#"<https://a.test/x?page=1>; rel="prev", <https://a.test/x?include=a,b&page=3>; rel="next""#,
                Some("https://a.test/x?include=a,b&page=3"),
            ),
            (
                r#"<https://a.test/x?page=9>; title="a, b; c"; rel="last next""#,
                Some("https://a.test/x?page=9"),
            ),
            (
                r#"<https://a.test/x?page=4>; REL=next"#,
                Some("https://a.test/x?page=4"),
            ),
            (r#"<https://a.test/x?page=1>; rel="prev""#, None),
            ("", None),
        ];
        for (header, expected) in cases {
            assert_eq!(
                next_link(&link(header)).expect(header).as_deref(),
                expected,
                "{header}"
            );
        }
        assert_eq!(next_link(&HeaderMap::new()).expect("none"), None);
        assert!(
            next_link(&link("https://a.test/x?page=2; rel=next"))
                .expect_err("no brackets")
                .detail
                .contains("malformed link header")
        );
        // A relative link resolves against the request; the page must move forward.
        let request =
            reqwest::Url::parse("https://acme.freshdesk.com/api/v2/tickets?page=2").expect("valid");
        assert_eq!(
            next_page("/api/v2/tickets?page=3", &request, 2).expect("page"),
            3
        );
        assert!(
            next_page("/api/v2/tickets?page=2", &request, 2)
                .expect_err("same page")
                .detail
                .contains("does not follow page 2")
        );
        assert!(
            next_page("/api/v2/tickets?per_page=100", &request, 2)
                .expect_err("no page")
                .detail
                .contains("no page parameter")
        );
        assert!(
            next_page("/api/v2/tickets?page=x", &request, 2)
                .expect_err("not a number")
                .detail
                .contains("\"x\"")
        );
    }

    #[test]
    fn past_page_300_the_walk_restarts_from_the_newest_updated_at() {
        let source = source();
        let state = r#"{"run":{"gte":1000,"after":"300","max":5000}}"#;
        let request = PageRequest::get(
            reqwest::Url::parse(&format!("{TICKETS_URL}?page=300")).expect("valid"),
            state.into(),
        );
        let body = tickets(PAGE_SIZE, 9_000);
        let headers = link(&format!(r#"<{TICKETS_URL}?page=301>; rel="next""#));
        let page = Freshdesk
            .parse_page(&source, "tickets", &request, &headers, body.as_bytes())
            .expect("page");
        let next = page.next.expect("restarted");
        assert_eq!(
            next.url.as_str(),
            format!("{TICKETS_URL}?updated_since=1970-01-01T02%3A30%3A00Z&{ORDER}"),
            "page 1 again, from the newest change"
        );
        assert_eq!(page.cursor, r#"{"run":{"gte":9000,"max":9000}}"#);
        // Page 300 full and no link: Freshdesk may have stopped serving; restart as well.
        let page = Freshdesk
            .parse_page(
                &source,
                "tickets",
                &request,
                &HeaderMap::new(),
                body.as_bytes(),
            )
            .expect("page");
        assert_eq!(page.next.expect("restarted").url, next.url);
        // Page 300 short and no link: the real end.
        let short = tickets(3, 9_000);
        let end = Freshdesk
            .parse_page(
                &source,
                "tickets",
                &request,
                &HeaderMap::new(),
                short.as_bytes(),
            )
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"since":9000}"#);
        // Ratings are not capped: page 301 is followed as given.
        let ratings = Freshdesk
            .parse_page(
                &source,
                "satisfaction_ratings",
                &request,
                &headers,
                body.as_bytes(),
            )
            .expect("page");
        assert!(
            ratings
                .next
                .expect("more")
                .url
                .as_str()
                .ends_with("&page=301")
        );
    }

    #[test]
    fn a_restart_that_cannot_advance_fails_instead_of_looping() {
        let state = r#"{"run":{"gte":9000,"after":"300","max":9000}}"#;
        let request = PageRequest::get(
            reqwest::Url::parse(&format!("{TICKETS_URL}?page=300")).expect("valid"),
            state.into(),
        );
        let same_second: String = (1..=PAGE_SIZE)
            .map(|id| format!(r#"{{"id":{id},"updated_at":"{}"}}"#, iso(9_000)))
            .collect::<Vec<_>>()
            .join(",");
        let headers = link(&format!(r#"<{TICKETS_URL}?page=301>; rel="next""#));
        let error = Freshdesk
            .parse_page(
                &source(),
                "tickets",
                &request,
                &headers,
                format!("[{same_second}]").as_bytes(),
            )
            .expect_err("stuck");
        assert!(
            error
                .detail
                .contains("were all updated at 1970-01-01T02:30:00Z"),
            "{}",
            error.detail
        );
    }

    #[test]
    fn an_empty_page_ends_the_walk_even_with_a_next_link() {
        let request = Freshdesk
            .first_request(
                &source(),
                "tickets",
                Some(r#"{"since":5000}"#),
                &window(None),
            )
            .expect("request");
        let headers = link(&format!(r#"<{TICKETS_URL}?page=2>; rel="next""#));
        let end = Freshdesk
            .parse_page(&source(), "tickets", &request, &headers, b"[]")
            .expect("page");
        assert!(end.next.is_none());
        assert_eq!(end.cursor, r#"{"since":5000}"#);
    }

    #[test]
    fn malformed_pages_name_what_is_wrong() {
        let source = source();
        let request = Freshdesk
            .first_request(&source, "tickets", None, &window(None))
            .expect("request");
        let object = br#"{"code":"invalid_value","message":"x"}"#;
        let error = Freshdesk
            .parse_page(&source, "tickets", &request, &HeaderMap::new(), object)
            .expect_err("not a list");
        assert!(
            error.detail.contains("expected a JSON array of tickets"),
            "{}",
            error.detail
        );
        assert!(!error.truncated);
        let truncated = Freshdesk
            .parse_page(
                &source,
                "tickets",
                &request,
                &HeaderMap::new(),
                br#"[{"id":1,"upd"#,
            )
            .expect_err("cut off");
        assert!(truncated.truncated, "worth another attempt");
        let no_id = Freshdesk
            .parse_page(
                &source,
                "tickets",
                &request,
                &HeaderMap::new(),
                br#"[{"subject":"x"}]"#,
            )
            .expect_err("no key");
        assert!(
            no_id.detail.contains("item 0 has no usable primary key"),
            "{}",
            no_id.detail
        );
        let bad_link =
            link(r#"<https://acme.freshdesk.com/api/v2/tickets?per_page=100>; rel="next""#);
        let error = Freshdesk
            .parse_page(&source, "tickets", &request, &bad_link, br#"[{"id":1}]"#)
            .expect_err("no page");
        assert!(
            error.detail.contains("no page parameter"),
            "{}",
            error.detail
        );
    }

    #[test]
    fn auth_is_basic_with_the_key_as_user() {
        match Freshdesk.auth(&source()).expect("auth") {
            Auth::Basic { username, password } => {
                assert_eq!(username.expose(), "fd-key");
                assert_eq!(password.expose(), "X");
            }
            _ => panic!("expected HTTP Basic"),
        }
        let mut keyless = source();
        keyless.api_key = None;
        assert!(matches!(
            Freshdesk.auth(&keyless),
            Err(SourceError::Unauthorized { .. })
        ));
        assert_eq!(
            Freshdesk.probe(&source()).url.as_str(),
            "https://acme.freshdesk.com/api/v2/tickets?per_page=1"
        );
    }
}
