//! HubSpot: deals, through the CRM API (v3) search endpoint.
//!
//! Follows HubSpot's developer documentation:
//! - Authentication with a private app's access token as `Authorization: Bearer`, on
//!   `https://api.hubapi.com`; a missing or wrong token gets 401 with
//!   `{"status":"error","message":...,"category":"INVALID_AUTHENTICATION"}`, and the shared
//!   client shows `message`:
//!   <https://developers.hubspot.com/docs/apps/legacy-apps/private-apps/overview>,
//!   <https://developers.hubspot.com/docs/api-reference/error-handling>
//! - Deals through the CRM search endpoint `POST /crm/v3/objects/deals/search`: a filter
//!   (`GTE` on `hs_lastmodifieddate`, epoch milliseconds as a string), one sort rule
//!   (`hs_lastmodifieddate` `ASCENDING`), `limit` (10 by default, 200 at most), `after` taken
//!   from the previous page's `paging.next.after` (absent on the last page), and an explicit
//!   `properties` list, since search returns only `dealname`, `amount`, `closedate`,
//!   `pipeline`, `dealstage`, `createdate`, `hs_lastmodifieddate` and `hs_object_id` by
//!   default. Search limits: 5 requests a second per account, at most 10,000 results per
//!   query ("attempting to page beyond 10,000 will result in a 400 error"), request bodies
//!   of at most 3,000 characters, archived deals never listed, and newly created or updated
//!   objects may take a few moments to appear:
//!   <https://developers.hubspot.com/docs/api-reference/latest/crm/search-the-crm>
//! - The deal object (`id`, `properties`, `createdAt`, `updatedAt`, `archived`), the scope
//!   the token needs (`crm.objects.deals.read`; without it HubSpot answers 403
//!   `MISSING_SCOPES`, reported as unauthorized) and the cheap probe
//!   `GET /crm/v3/objects/deals?limit=1`:
//!   <https://developers.hubspot.com/docs/api-reference/latest/crm/objects/deals/guide>
//! - The default deal properties requested here (internal names):
//!   <https://knowledge.hubspot.com/crm-deals/hubspots-default-deal-properties>
//! - Rate limits: a burst limit per 10 seconds and a daily limit per account (by
//!   subscription), and the search endpoint's own 5 a second. Over a limit HubSpot answers
//!   429 with `{"status":"error","message":"You have reached your secondly limit.",
//!   "errorType":"RATE_LIMIT","policyName":...}` and documents no `Retry-After`; search
//!   responses carry no `X-HubSpot-RateLimit-*` headers. The shared client retries 429 with
//!   jittered exponential backoff (from 0.5 s), which fits a per-second window:
//!   <https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines>,
//!   <https://developers.hubspot.com/changelog/increasing-our-api-limits>
//!
//! Incremental sync: every change to a deal (stage, amount, close date) moves
//! `hs_lastmodifieddate`. A walk searches for deals modified since the newest
//! `hs_lastmodifieddate` of the last complete walk minus `lookback` (default one day; never
//! before `start_date`; from 1970 without either), oldest change first, so a changed deal
//! comes again and replaces its earlier version, and deals that reach the search index
//! late are read on the next walk. The walk's position (`after`) is saved with every
//! committed page, so an interrupted walk resumes there.
//!
//! The 10,000-result cap: results come oldest change first, so when the next `after` would
//! reach the cap, the walk starts a new query from the newest `hs_lastmodifieddate` seen so
//! far (to the second). Deals modified in that second are read again and replace
//! themselves; none is skipped. If 10,000 deals were all modified in the same second the
//! new query could not advance; the sync then fails with that message instead of looping.
//!
//! Known limits: a deal that changes during a walk moves to the end of the results,
//! shifting the ones after it back by one, so one unchanged deal may be skipped on that
//! walk (the next walk's `lookback` reads it again). Deals deleted in HubSpot are archived
//! and no longer listed by search: they keep their last synced version here.

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

/// HubSpot's description.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://api.hubapi.com",
    streams: &["deals"],
    required: &["access_token"],
    default_lookback: Duration::from_secs(24 * 3600),
    token_url: None,
};

/// The deal search endpoint.
const SEARCH_PATH: &str = "crm/v3/objects/deals/search";
/// The deal list endpoint (the probe).
const LIST_PATH: &str = "crm/v3/objects/deals";
/// The largest page the search endpoint serves.
const PAGE_LIMIT: u32 = 200;
/// Results one search query may page through.
const SEARCH_RESULT_CAP: u64 = 10_000;
/// The property every walk filters and sorts on.
const MODIFIED: &str = "hs_lastmodifieddate";

/// The deal properties each record carries: search's defaults plus the ones a scorecard
/// needs (won/closed flags, currency, probability, forecast, owner, reasons).
const DEAL_PROPERTIES: &[&str] = &[
    "dealname",
    "amount",
    "amount_in_home_currency",
    "deal_currency_code",
    "dealstage",
    "pipeline",
    "dealtype",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
    "hs_is_closed",
    "hs_is_closed_won",
    "hs_deal_stage_probability",
    "hs_forecast_amount",
    "hs_closed_amount",
    "hubspot_owner_id",
    "closed_won_reason",
    "closed_lost_reason",
    "days_to_close",
];

/// The HubSpot preset.
pub struct HubSpot {
    /// Results one query may page through before a new query starts (the API's cap;
    /// smaller in tests).
    result_cap: u64,
}

/// The preset as registered, with HubSpot's real result cap.
pub static HUBSPOT: HubSpot = HubSpot {
    result_cap: SEARCH_RESULT_CAP,
};

/// `{"total": n, "results": [...], "paging": {"next": {"after": "200"}}}`.
#[derive(Deserialize)]
struct SearchPage<'a> {
    #[serde(borrow)]
    results: Vec<&'a RawValue>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    next: Option<NextPage>,
}

#[derive(Deserialize)]
struct NextPage {
    after: String,
}

/// Unix seconds as an ISO 8601 instant, for messages.
fn iso(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The search request body of `walk`: deals modified since its lower bound, oldest change
/// first, the largest page, from its position.
fn search_body(walk: &Walk) -> String {
    let since_ms = walk.gte.unwrap_or(0).max(0).saturating_mul(1000);
    let mut body = serde_json::json!({
        "filterGroups": [{
            "filters": [{
                "propertyName": MODIFIED,
                "operator": "GTE",
                "value": since_ms.to_string(),
            }],
        }],
        "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
        "properties": DEAL_PROPERTIES,
        "limit": PAGE_LIMIT,
    });
    if let Some(after) = &walk.after {
        body["after"] = after.clone().into();
    }
    body.to_string()
}

/// A search request with `body` (from [`search_body`]), carrying the cursor `state`.
fn search_request(base: &reqwest::Url, state: String, body: String) -> PageRequest {
    PageRequest::post_json(endpoint(base, SEARCH_PATH), state, body)
}

/// When a deal last changed: `properties.hs_lastmodifieddate`, else the object's
/// `updatedAt` (the same instant).
fn modified_at(record: &records::Record) -> Option<i64> {
    [
        records::field(record, "properties.hs_lastmodifieddate"),
        record.get("updatedAt"),
    ]
    .into_iter()
    .find_map(|value| records::event_time(value, chrono_tz::UTC).ok().flatten())
    .map(|time| time.timestamp())
}

impl Preset for HubSpot {
    /// The search walks on `hs_lastmodifieddate`; archived (deleted) deals drop out of
    /// it, which is what reconciliation needs to notice them.
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> super::Coverage {
        super::Coverage::Field("properties.hs_lastmodifieddate".into())
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        match &source.access_token {
            Some(token) if !token.is_empty() => Ok(Auth::Bearer(token.clone())),
            _ => Err(SourceError::Unauthorized {
                message: "no access_token configured".into(),
            }),
        }
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        let mut url = endpoint(&source.base_url, LIST_PATH);
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
        let body = search_body(cursor.begin(window, true));
        Ok(search_request(&source.base_url, cursor.encode(), body))
    }

    fn parse_page(
        &self,
        source: &SourceConfig,
        stream: &str,
        request: &PageRequest,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let page: SearchPage = serde_json::from_slice(body).map_err(|error| ParseError {
            truncated: error.is_eof(),
            unauthorized: false,
            detail: format!("expected HubSpot search results: {error}"),
        })?;
        let records = fetched_records(
            &page.results,
            &["id"],
            &source.record_fields(stream, &["properties", "updatedAt"]),
        )?;
        let mut cursor = WalkCursor::from_state(&request.state)?;
        let mut walk = cursor.take_walk();
        for (index, fetched) in records.iter().enumerate() {
            let modified = modified_at(&fetched.record).ok_or_else(|| {
                ParseError::malformed(format!(
                    "deal {index} ({}) has no readable properties.{MODIFIED} or updatedAt",
                    fetched.key
                ))
            })?;
            walk.see(modified);
        }
        // An empty page ends the walk whatever the paging says.
        let next = page
            .paging
            .and_then(|paging| paging.next)
            .map(|next| next.after)
            .filter(|_| !records.is_empty());
        let capped = next
            .as_deref()
            .and_then(|after| after.parse::<u64>().ok())
            .is_some_and(|offset| offset >= self.result_cap);
        if capped {
            // Oldest change first: a new query from the newest change seen so far.
            let newest = walk.max.ok_or_else(|| {
                ParseError::malformed("search results carry no modification time to continue past the 10,000-result cap from")
            })?;
            if walk.gte.is_some_and(|gte| newest <= gte) {
                return Err(ParseError::malformed(format!(
                    "{} deals were all modified at {}: HubSpot's search pages through at most {} results and the query cannot advance",
                    self.result_cap,
                    iso(newest),
                    self.result_cap
                )));
            }
            let restart = Walk {
                gte: Some(newest),
                after: None,
                max: walk.max,
            };
            let body = search_body(&restart);
            cursor.run = Some(restart);
            let state = cursor.encode();
            return Ok(Page {
                records,
                cursor: state.clone(),
                next: Some(search_request(&source.base_url, state, body)),
            });
        }
        match next {
            Some(after) => {
                let body = search_body(cursor.continue_after(walk, after));
                let state = cursor.encode();
                Ok(Page {
                    records,
                    cursor: state.clone(),
                    next: Some(search_request(&source.base_url, state, body)),
                })
            }
            None => {
                cursor.finish(walk);
                Ok(Page {
                    records,
                    cursor: cursor.encode(),
                    next: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
