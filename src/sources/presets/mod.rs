//! Connector presets: one file per SaaS kind. A preset knows its API's endpoints,
//! paging style, field names and documentation; it builds requests and cuts responses
//! into records, and never loops, sleeps or does IO (the engine does).

pub mod csv;
pub mod declarative;
pub mod freshdesk;
pub mod hubspot;
pub mod moodle;
pub mod pipedrive;
pub mod quickbooks;
pub mod shopify;
pub mod stripe;
pub mod talentlms;
pub mod walk;
pub mod xero;
pub mod zendesk;

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::http::Auth;
use super::{Page, PageRequest, ParseError, SourceError};
use crate::config::{SourceConfig, SourceKind};

/// What the configuration needs to know about a preset.
#[derive(Debug)]
pub struct PresetInfo {
    /// The real API address.
    pub default_base_url: &'static str,
    /// Every stream the preset offers.
    pub streams: &'static [&'static str],
    /// Settings the preset cannot work without.
    pub required: &'static [&'static str],
    /// Default re-read window before the saved cursor.
    pub default_lookback: Duration,
    /// The OAuth2 token endpoint, for presets that refresh their own access tokens.
    pub token_url: Option<&'static str>,
}

/// The context of one stream's sync.
#[derive(Debug, Clone, Copy)]
pub struct SyncWindow {
    /// The first instant to pull on a first sync (from `start_date`), if any.
    pub start: Option<DateTime<Utc>>,
    /// How far before the saved cursor to re-read.
    pub lookback: Duration,
}

impl SyncWindow {
    /// The window of a configured source, with `start_date` at midnight in `tz`.
    pub fn of(source: &SourceConfig, tz: Tz) -> Self {
        let start = source.start_date.map(|date| {
            crate::measures::period::PeriodKind::Day
                .start_of_date(date, tz)
                .with_timezone(&Utc)
        });
        Self {
            start,
            lookback: source.lookback,
        }
    }
}

/// A connector preset.
pub trait Preset: Send + Sync {
    /// How requests authenticate.
    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError>;
    /// One cheap request that proves the credentials work (`scorekeeper check --connect`).
    fn probe(&self, source: &SourceConfig) -> PageRequest;
    /// Which stored records a walk from a window's start lists again, for deletion
    /// reconciliation (records it should list but does not were deleted upstream).
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> Coverage {
        Coverage::None
    }
    /// Reads the probe's 2xx answer; presets whose API reports errors inside a 2xx body
    /// (Moodle) say what is wrong here, and the CSV preset checks the file's header
    /// against the source's settings.
    fn check_probe(
        &self,
        _source: &SourceConfig,
        _headers: &reqwest::header::HeaderMap,
        _body: &[u8],
    ) -> Result<(), ParseError> {
        Ok(())
    }
    /// The first request of a sync of `stream`, from the saved cursor.
    fn first_request(
        &self,
        source: &SourceConfig,
        stream: &str,
        cursor: Option<&str>,
        window: &SyncWindow,
    ) -> Result<PageRequest, SourceError>;
    /// Cuts the response to `request` into records and says what comes next.
    fn parse_page(
        &self,
        source: &SourceConfig,
        stream: &str,
        request: &PageRequest,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError>;
}

/// What a walk that starts at a window's start (as `first_request` builds it without a
/// cursor) is sure to list, for deletion reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Nothing can be concluded (the API reports deletions itself, or lists no window).
    None,
    /// Every record the stream has upstream (the walk ignores the window).
    All,
    /// Every record whose value of this field (as stored) is at or after the start: the
    /// field the API filters the walk on, or an earlier one (a record's last change
    /// time only grows, so a walk over changes since T lists every record last seen
    /// changed at or after T).
    Field(std::borrow::Cow<'static, str>),
}

/// The static description of a kind.
pub fn describe(kind: SourceKind) -> &'static PresetInfo {
    match kind {
        SourceKind::Stripe => &stripe::INFO,
        SourceKind::Zendesk => &zendesk::INFO,
        SourceKind::Shopify => &shopify::INFO,
        SourceKind::Freshdesk => &freshdesk::INFO,
        SourceKind::Pipedrive => &pipedrive::INFO,
        SourceKind::Http => &declarative::INFO,
        SourceKind::HubSpot => &hubspot::INFO,
        SourceKind::QuickBooks => &quickbooks::INFO,
        SourceKind::Xero => &xero::INFO,
        SourceKind::Csv => &csv::INFO,
        SourceKind::Moodle => &moodle::INFO,
        SourceKind::Talentlms => &talentlms::INFO,
    }
}

/// The preset implementation of a kind.
pub fn preset(kind: SourceKind) -> &'static dyn Preset {
    match kind {
        SourceKind::Stripe => &stripe::Stripe,
        SourceKind::Zendesk => &zendesk::Zendesk,
        SourceKind::Shopify => &shopify::Shopify,
        SourceKind::Freshdesk => &freshdesk::Freshdesk,
        SourceKind::Pipedrive => &pipedrive::Pipedrive,
        SourceKind::Http => &declarative::Declared,
        SourceKind::HubSpot => &hubspot::HUBSPOT,
        SourceKind::QuickBooks => &quickbooks::QuickBooks,
        SourceKind::Xero => &xero::Xero,
        SourceKind::Csv => &csv::Csv,
        SourceKind::Moodle => &moodle::Moodle,
        SourceKind::Talentlms => &talentlms::Talentlms,
    }
}

/// `base` joined with a relative API path, keeping any path prefix of `base`
/// (`http://host/proxy` + `v1/charges` → `http://host/proxy/v1/charges`).
pub fn endpoint(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let with_slash = format!("{}/", base.path());
        base.set_path(&with_slash);
    }
    base.join(path).unwrap_or(base)
}

/// The target of the `rel="next"` link of RFC 8288 `Link` headers (Shopify, Freshdesk,
/// GitHub-style pagination: `<url>; rel="next", <url>; rel="prev"`), or `None` when no
/// link says next (the last page).
pub fn next_link(headers: &reqwest::header::HeaderMap) -> Result<Option<String>, ParseError> {
    for value in headers.get_all(reqwest::header::LINK) {
        let text = value.to_str().map_err(|_| ParseError {
            truncated: false,
            unauthorized: false,
            detail: "the link header is not text".into(),
        })?;
        if let Some(target) = next_in(text)? {
            return Ok(Some(target));
        }
    }
    Ok(None)
}

/// Scans one `link` header value; URLs and quoted parameters may contain commas.
fn next_in(text: &str) -> Result<Option<String>, ParseError> {
    let malformed = || ParseError {
        truncated: false,
        unauthorized: false,
        detail: format!(
            "malformed link header: {}",
            text.chars().take(200).collect::<String>()
        ),
    };
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            return Ok(None);
        }
        let open = rest.strip_prefix('<').ok_or_else(malformed)?;
        let close = open.find('>').ok_or_else(malformed)?;
        let target = &open[..close];
        rest = &open[close + 1..];
        let mut is_next = false;
        // Parameters up to the comma that starts the next link.
        loop {
            rest = rest.trim_start();
            let Some(after_semicolon) = rest.strip_prefix(';') else {
                break;
            };
            let param = after_semicolon.trim_start();
            let name_end = param.find(['=', ';', ',']).unwrap_or(param.len());
            let name = param[..name_end].trim();
            rest = &param[name_end..];
            let mut value = "";
            if let Some(after_equals) = rest.strip_prefix('=') {
                let after_equals = after_equals.trim_start();
                if let Some(quoted) = after_equals.strip_prefix('"') {
                    let end = quoted.find('"').ok_or_else(malformed)?;
                    value = &quoted[..end];
                    rest = &quoted[end + 1..];
                } else {
                    let end = after_equals.find([';', ',']).unwrap_or(after_equals.len());
                    value = after_equals[..end].trim();
                    rest = &after_equals[end..];
                }
            }
            // `rel` may list several relation types: rel="next last".
            if name.eq_ignore_ascii_case("rel")
                && value
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
            {
                is_next = true;
            }
        }
        if is_next {
            return Ok(Some(target.to_string()));
        }
        if !(rest.is_empty() || rest.starts_with(',')) {
            return Err(malformed());
        }
    }
}

/// A source of `kind` at `base` with every preset setting unset, for preset unit tests
/// (they set what their preset needs with struct update syntax).
#[cfg(test)]
pub(crate) fn test_source(kind: SourceKind, base: &str) -> SourceConfig {
    use std::str::FromStr;
    SourceConfig {
        name: kind.as_str().into(),
        kind,
        schedule: cron::Schedule::from_str("0 */15 * * * *").expect("valid"),
        schedule_text: "0 */15 * * * *".into(),
        start_date: None,
        base_url: reqwest::Url::parse(base).expect("valid test URL"),
        streams: describe(kind)
            .streams
            .iter()
            .map(|stream| stream.to_string())
            .collect(),
        stale_after: None,
        lookback: Duration::from_secs(100),
        reconcile: None,
        api_key: None,
        subdomain: None,
        email: None,
        api_token: None,
        shop: None,
        access_token: None,
        api_version: None,
        domain: None,
        company_domain: None,
        realm_id: None,
        tenant_id: None,
        oauth: None,
        token: None,
        csv: None,
        http: None,
        // Preset tests read any field of what they parse: nothing is left out.
        record_fields: describe(kind)
            .streams
            .iter()
            .map(|stream| (stream.to_string(), crate::config::RecordFields::All))
            .collect(),
    }
}
