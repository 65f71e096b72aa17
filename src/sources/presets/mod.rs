//! Connector presets: one file per SaaS kind. A preset knows its API's endpoints,
//! paging style, field names and documentation; it builds requests and cuts responses
//! into records, and never loops, sleeps or does IO (the engine does).

pub mod stripe;
pub mod walk;
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
            crate::measures::period::PeriodKind::Day.start_of_date(date, tz).with_timezone(&Utc)
        });
        Self { start, lookback: source.lookback }
    }
}

/// A connector preset.
pub trait Preset: Send + Sync {
    /// How requests authenticate.
    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError>;
    /// One cheap request that proves the credentials work (`scorekeeper check --connect`).
    fn probe(&self, source: &SourceConfig) -> reqwest::Url;
    /// The first request of a sync of `stream`, from the saved cursor.
    fn first_request(&self, source: &SourceConfig, stream: &str, cursor: Option<&str>, window: &SyncWindow) -> Result<PageRequest, SourceError>;
    /// Cuts the response to `request` into records and says what comes next.
    fn parse_page(&self, source: &SourceConfig, stream: &str, request: &PageRequest, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Result<Page, ParseError>;
}

/// The static description of a kind.
pub fn describe(kind: SourceKind) -> &'static PresetInfo {
    match kind {
        SourceKind::Stripe => &stripe::INFO,
        SourceKind::Zendesk => &zendesk::INFO,
    }
}

/// The preset implementation of a kind.
pub fn preset(kind: SourceKind) -> &'static dyn Preset {
    match kind {
        SourceKind::Stripe => &stripe::Stripe,
        SourceKind::Zendesk => &zendesk::Zendesk,
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
