//! Notifications: what the alert evaluation puts in the outbox, and how each channel
//! delivers it.
//!
//! A [`Notification`] is one outbox message for one channel: the alerts of one group (all
//! the alerts of one evaluation for that channel, merged with any still waiting for their
//! group interval), a digest, or a test. Its `id` is stable across retries: receivers
//! de-duplicate on it (the `webhook-id` header).
//!
//! `email` renders and sends it over SMTP; `webhook` renders scorekeeper's versioned JSON
//! (signed per Standard Webhooks) or a Slack message and posts it. Both return a
//! [`Outcome`] that the dispatcher records and acts on.

use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub mod dispatch;
pub mod email;
mod slack;
pub mod webhook;

/// The version of the webhook body schema (`"version"` in every body).
pub const SCHEMA_VERSION: u32 = 1;

/// What happened to a measure or a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The judged period went off target (after its hold).
    Firing,
    /// Still off target: a reminder after `repeat`.
    Reminder,
    /// Back on target (past the recovery level).
    Resolved,
    /// The running period is projected to end off target.
    Forecast,
    /// The projection is back on target.
    ForecastResolved,
    /// A source has had no successful sync within its `stale_after`.
    Stale,
    /// The source synced again.
    StaleResolved,
    /// A measure has no data for its running period past the grace.
    NoData,
    /// Data arrived again.
    NoDataResolved,
    /// `scorekeeper notify test CHANNEL`.
    Test,
}

impl EventKind {
    /// The spelling used in bodies and subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Firing => "firing",
            EventKind::Reminder => "reminder",
            EventKind::Resolved => "resolved",
            EventKind::Forecast => "forecast",
            EventKind::ForecastResolved => "forecast_resolved",
            EventKind::Stale => "stale",
            EventKind::StaleResolved => "stale_resolved",
            EventKind::NoData => "no_data",
            EventKind::NoDataResolved => "no_data_resolved",
            EventKind::Test => "test",
        }
    }

    /// True for the events that say a problem went away.
    pub fn is_recovery(self) -> bool {
        matches!(
            self,
            EventKind::Resolved
                | EventKind::ForecastResolved
                | EventKind::StaleResolved
                | EventKind::NoDataResolved
        )
    }
}

/// The measure an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureRef {
    /// Measure id (the key under `[measures]`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// financial | customer | internal | learning
    pub perspective: String,
    /// Unit shown next to values, if any.
    pub unit: Option<String>,
    /// Alert routing owner, if any.
    pub owner: Option<String>,
}

/// The source an event is about (stale data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Source name (the key under `[sources]`).
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Last successful sync (RFC 3339), if any.
    pub last_success_at: Option<String>,
    /// The last sync's error, if it failed.
    pub last_error: Option<String>,
}

/// A calendar period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodRef {
    /// Label: `2026-03`, `2026-W10`, `2026-Q1` ...
    pub label: String,
    /// First instant (RFC 3339, in the scorecard's zone).
    pub start: String,
    /// First instant of the next period.
    pub end: String,
    /// True when the period has ended.
    pub complete: bool,
}

/// A target as judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRef {
    /// The target value.
    pub value: f64,
    /// up | down
    pub direction: String,
    /// Edge of the warning band.
    pub warn: Option<f64>,
}

/// A period-end projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastRef {
    /// The projected value at the period's end.
    pub value: f64,
    /// The status the projection would have.
    pub status: String,
    /// How it was projected: `pro_rata` or `trend`.
    pub method: String,
    /// Share of the period elapsed (0 to 1).
    pub elapsed: f64,
}

/// One alert event in a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// What happened.
    pub event: EventKind,
    /// The measure, for measure events.
    pub measure: Option<MeasureRef>,
    /// The source, for stale events.
    pub source: Option<SourceRef>,
    /// The judged period, for measure events.
    pub period: Option<PeriodRef>,
    /// The value, if any.
    pub value: Option<f64>,
    /// The target, if any.
    pub target: Option<TargetRef>,
    /// green | amber | red | none | no_data | stale
    pub status: String,
    /// The status before this event.
    pub previous_status: Option<String>,
    /// The projection, for forecast events.
    pub forecast: Option<ForecastRef>,
    /// When the condition began (RFC 3339).
    pub since: String,
    /// When this event was decided (RFC 3339).
    pub at: String,
}

/// What a notification carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Alert events.
    Alerts,
    /// The scheduled digest.
    Digest,
    /// A test message.
    Test,
}

/// One measure's line in a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestLine {
    /// The measure.
    pub measure: MeasureRef,
    /// The judged period.
    pub period: PeriodRef,
    /// Its value.
    pub value: Option<f64>,
    /// Its target.
    pub target: Option<TargetRef>,
    /// Its status now.
    pub status: String,
    /// Its status at the previous digest, when it changed since.
    pub previous_status: Option<String>,
    /// The running period's projection, when it is forecast to miss.
    pub forecast: Option<ForecastRef>,
}

/// The weekly (or whatever the schedule says) review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// Since when changes are reported (the previous digest, RFC 3339), if any.
    pub since: Option<String>,
    /// Every measure, in scorecard order (perspective by perspective).
    pub lines: Vec<DigestLine>,
}

/// One outbox message for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable id (`msg_…`): the `webhook-id`, and the email's Message-ID local part.
    pub id: String,
    /// What it carries.
    pub kind: NotificationKind,
    /// The scorecard's name.
    pub scorecard: String,
    /// The scorecard's time zone (IANA name), for displaying times.
    pub timezone: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// A link to the dashboard when `server.public_url` is set.
    pub dashboard_url: Option<String>,
    /// The events, for alert notifications (and the one test event).
    pub alerts: Vec<AlertEvent>,
    /// The digest, for digest notifications.
    pub digest: Option<Digest>,
}

impl Notification {
    /// A new, empty notification of `kind` about the scorecard in `settings`, created at
    /// `now` (callers fill in `alerts` or `digest`).
    pub fn new(
        kind: NotificationKind,
        settings: &crate::config::Settings,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            id: new_id(),
            kind,
            scorecard: settings.scorecard.name.clone(),
            timezone: settings.scorecard.timezone.name().into(),
            created_at: now.with_timezone(&settings.scorecard.timezone).to_rfc3339(),
            dashboard_url: settings
                .server
                .public_url
                .as_ref()
                .map(|url| url.to_string()),
            alerts: Vec::new(),
            digest: None,
        }
    }

    /// The outbox row that carries it to `channel`: pending, not sent before
    /// `not_before`, given up `give_up` after that.
    pub fn into_outbox(
        self,
        channel: &str,
        created_at: i64,
        not_before: i64,
        give_up: Duration,
    ) -> crate::store::OutboxRow {
        crate::store::OutboxRow {
            id: self.id.clone(),
            channel: channel.to_string(),
            kind: match self.kind {
                NotificationKind::Alerts => "alerts",
                NotificationKind::Digest => "digest",
                NotificationKind::Test => "test",
            }
            .into(),
            body: serde_json::to_string(&self)
                .expect("a notification of plain fields always serializes"),
            created_at,
            not_before,
            next_attempt_at: not_before,
            attempts: 0,
            status: "pending".into(),
            last_error: None,
            finished_at: None,
            expires_at: not_before + give_up.as_secs() as i64,
        }
    }
}

/// What one delivery attempt ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted (2xx, or the SMTP server took the message).
    Delivered,
    /// Worth another attempt (network, timeout, 5xx, 408, 429, a temporary SMTP failure);
    /// `after` is what the receiver asked for (Retry-After), if anything.
    Retry {
        /// What went wrong.
        error: String,
        /// The receiver's requested wait.
        after: Option<Duration>,
    },
    /// Not worth retrying (4xx other than 408/410/429, a permanent SMTP failure).
    Failed {
        /// What went wrong.
        error: String,
    },
    /// 410 Gone: the endpoint is disabled until the configuration changes.
    Gone {
        /// What the receiver said.
        error: String,
    },
}

/// The key bytes of a Standard Webhooks secret (`whsec_` + base64 of 24 to 64 bytes),
/// or `None` when it is not one.
pub fn webhook_secret_bytes(secret: &Secret) -> Option<Vec<u8>> {
    let encoded = secret.expose().strip_prefix("whsec_")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    (24..=64).contains(&bytes.len()).then_some(bytes)
}

/// A new notification id: `msg_` and 26 random base32 characters, unique enough for
/// receivers to de-duplicate on.
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut id = String::from("msg_");
    for _ in 0..26 {
        id.push(ALPHABET[fastrand::usize(..ALPHABET.len())] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_are_whsec_and_base64_of_24_to_64_bytes() {
        let ok = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(webhook_secret_bytes(&ok).map(|bytes| bytes.len()), Some(24));
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
        ] {
            assert_eq!(webhook_secret_bytes(&Secret::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert!(a.starts_with("msg_") && a.len() == 30, "{a}");
        assert_ne!(a, b);
    }
}
