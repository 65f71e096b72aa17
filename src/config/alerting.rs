//! The settings of alerts and their delivery: per-measure alert rules (`alert_on`,
//! `evaluate`, `for`, `recovery`, `forecast`), the `[alerts]` defaults, the `[notify.NAME]`
//! channels and `[smtp]`.
//!
//! ```toml
//! [alerts]
//! repeat = "24h"            # reminders while still firing
//! group_wait = "0s"         # hold a new group this long to gather more alerts
//! group_interval = "5m"     # at most one message per channel this often
//! no_data_grace = "3d"      # a current period with no data past this is `no data`
//! give_up = "24h"           # stop retrying a delivery after this long
//!
//! [notify.owner]
//! kind = "email"
//! to = ["owner@example.com"]
//! owners = ["finance"]      # only alerts of measures with these owners
//! digest = "0 0 8 * * Mon"  # the weekly review
//!
//! [notify.ops]
//! kind = "webhook"
//! url = "https://hooks.example.com/scorecard"
//! secret = "${WEBHOOK_SECRET}"   # whsec_...: signs deliveries (Standard Webhooks)
//! format = "standard"            # or "slack" for an incoming-webhook URL
//!
//! [smtp]
//! host = "smtp.example.com"
//! port = 587                     # default: 587 starttls, 465 tls, 25 none
//! tls = "starttls"               # starttls (required) | tls (SMTPS) | none (local relay)
//! username = "alerts@example.com"
//! password = "${SMTP_PASSWORD}"
//! from = "Scorekeeper <alerts@example.com>"
//! ca_file = "/etc/scorekeeper/relay-ca.pem"   # optional: extra trusted roots (PEM)
//! timeout = "30s"                # optional: the longest one delivery may take
//! ```

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::validate::Problems;
use crate::secret::Secret;
use crate::status::Status;

/// `for = 2` (evaluations) or `for = "6h"` (a duration) as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawHold {
    /// Consecutive evaluations.
    Evaluations(i64),
    /// A duration.
    Duration(String),
}

/// `[alerts]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// Reminder interval while firing.
    pub repeat: Option<String>,
    /// Wait before a new group's first message.
    pub group_wait: Option<String>,
    /// Least time between two messages of one channel.
    pub group_interval: Option<String>,
    /// How long a current period may go without data before it is `no data`.
    pub no_data_grace: Option<String>,
    /// How long a delivery is retried.
    pub give_up: Option<String>,
}

/// `[notify.NAME]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// email | webhook
    pub kind: String,
    /// Email: recipients.
    pub to: Option<Vec<String>>,
    /// Email: the digest's cron schedule.
    pub digest: Option<String>,
    /// Webhook: the receiver.
    pub url: Option<String>,
    /// Webhook: the signing secret (`whsec_` + base64).
    pub secret: Option<Secret>,
    /// Webhook: standard | slack
    pub format: Option<String>,
    /// Only alerts of measures with one of these owners (default: every alert).
    pub owners: Option<Vec<String>>,
    /// Overrides `[alerts] group_wait` for this channel.
    pub group_wait: Option<String>,
    /// Overrides `[alerts] group_interval` for this channel.
    pub group_interval: Option<String>,
}

/// `[smtp]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// Server host name.
    pub host: String,
    /// Port (587 for starttls, 465 for tls, 25 for none by default).
    pub port: Option<u16>,
    /// starttls | tls | none
    pub tls: Option<String>,
    /// Login, if the server wants one.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// The From header: `Name <address>` or an address.
    pub from: String,
    /// A PEM file of extra trusted root certificates (a private relay, a test server).
    pub ca_file: Option<String>,
    /// How long one delivery may take, connection to QUIT (default 30s).
    pub timeout: Option<String>,
}

/// Defaults that apply to every alert.
#[derive(Debug, Clone)]
pub struct AlertDefaults {
    /// Reminders while firing.
    pub repeat: Duration,
    /// Wait before a new group's first message.
    pub group_wait: Duration,
    /// Least time between two messages of one channel.
    pub group_interval: Duration,
    /// A current period without data past this is `no data`.
    pub no_data_grace: Duration,
    /// Deliveries are retried this long.
    pub give_up: Duration,
}

impl Default for AlertDefaults {
    fn default() -> Self {
        Self {
            repeat: Duration::from_secs(24 * 3600),
            group_wait: Duration::ZERO,
            group_interval: Duration::ZERO,
            no_data_grace: Duration::from_secs(3 * 24 * 3600),
            give_up: Duration::from_secs(24 * 3600),
        }
    }
}

/// Which period an alert judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluate {
    /// The last complete period.
    Complete,
    /// The running period.
    Current,
}

/// How long a condition must hold before it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Consecutive evaluations.
    Evaluations(u32),
    /// Time since the condition began.
    Duration(Duration),
}

/// A measure's alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Statuses that fire (red by default; empty: no alert).
    pub on: Vec<Status>,
    /// The judged period, when set explicitly.
    pub evaluate: Option<Evaluate>,
    /// The hold, when set explicitly.
    pub hold: Option<Hold>,
    /// The value must come back past this level before the alert resolves.
    pub recovery: Option<f64>,
    /// Forecast alerts for the running period.
    pub forecast: bool,
}

impl Default for AlertRule {
    fn default() -> Self {
        Self {
            on: vec![Status::Red],
            evaluate: None,
            hold: None,
            recovery: None,
            forecast: true,
        }
    }
}

/// A notification channel.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The table key: `[notify.NAME]`.
    pub name: String,
    /// Where and how.
    pub kind: NotifyKind,
    /// Owners whose alerts it receives; `None`: every alert.
    pub owners: Option<Vec<String>>,
    /// Wait before a new group's first message.
    pub group_wait: Duration,
    /// Least time between two messages.
    pub group_interval: Duration,
}

/// A channel's kind.
#[derive(Clone)]
pub enum NotifyKind {
    /// Email through `[smtp]`.
    Email {
        /// Recipients.
        to: Vec<String>,
        /// The digest's schedule, if any.
        digest: Option<cron::Schedule>,
    },
    /// An HTTP POST.
    Webhook {
        /// The receiver.
        url: reqwest::Url,
        /// The signing secret.
        secret: Option<Secret>,
        /// Body format.
        format: WebhookFormat,
    },
}

/// Shows a webhook URL by its origin only: its path is often the credential itself
/// (Slack incoming webhooks), so `Debug` output (logs, panics) never carries it.
impl std::fmt::Debug for NotifyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyKind::Email { to, digest } => f
                .debug_struct("Email")
                .field("to", to)
                .field("digest", &digest.as_ref().map(ToString::to_string))
                .finish(),
            NotifyKind::Webhook {
                url,
                secret,
                format,
            } => f
                .debug_struct("Webhook")
                .field(
                    "url",
                    &format!("{}/***", url.origin().ascii_serialization()),
                )
                .field("secret", secret)
                .field("format", format)
                .finish(),
        }
    }
}

/// A webhook's body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// scorekeeper's versioned JSON, signed per Standard Webhooks.
    Standard,
    /// A Slack incoming-webhook message.
    Slack,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption (a local relay).
    None,
}

/// `[smtp]`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Encryption.
    pub tls: SmtpTls,
    /// Login.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// The From header.
    pub from: String,
    /// Extra trusted root certificates (PEM), besides the built-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// How long one delivery may take, connection to QUIT.
    pub timeout: Duration,
}

/// The SMTP timeout when `[smtp] timeout` is not set.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

fn duration(key: &str, text: &str, problems: &mut Problems) -> Option<Duration> {
    humantime::parse_duration(text)
        .map_err(|error| {
            problems.add(
                key,
                format!("invalid duration \"{text}\": {error} (examples: 30s, 5m, 24h)"),
            )
        })
        .ok()
}

/// Validates `[alerts]`.
pub(super) fn validate_defaults(raw: Option<RawAlerts>, problems: &mut Problems) -> AlertDefaults {
    let raw = raw.unwrap_or_default();
    let mut defaults = AlertDefaults::default();
    for (name, text, slot) in [
        ("repeat", &raw.repeat, &mut defaults.repeat),
        ("group_wait", &raw.group_wait, &mut defaults.group_wait),
        (
            "group_interval",
            &raw.group_interval,
            &mut defaults.group_interval,
        ),
        (
            "no_data_grace",
            &raw.no_data_grace,
            &mut defaults.no_data_grace,
        ),
        ("give_up", &raw.give_up, &mut defaults.give_up),
    ] {
        if let Some(text) = text
            && let Some(value) = duration(&format!("alerts.{name}"), text, problems)
        {
            *slot = value;
        }
    }
    defaults
}

/// Validates a measure's alert keys.
pub(super) fn validate_rule(
    key: &str,
    alert_on: Option<&[String]>,
    evaluate: Option<&str>,
    hold: Option<&RawHold>,
    recovery: Option<f64>,
    forecast: Option<bool>,
    problems: &mut Problems,
) -> AlertRule {
    let mut rule = AlertRule::default();
    if let Some(on) = alert_on {
        rule.on = Vec::new();
        for status in on {
            match status.as_str() {
                "red" => rule.on.push(Status::Red),
                "amber" => rule.on.push(Status::Amber),
                other => problems.add(
                    format!("{key}.alert_on"),
                    format!("\"{other}\" is not a status that can alert (red, amber)"),
                ),
            }
        }
    }
    rule.evaluate = match evaluate {
        None => None,
        Some("complete") => Some(Evaluate::Complete),
        Some("current") => Some(Evaluate::Current),
        Some(other) => {
            problems.add(
                format!("{key}.evaluate"),
                format!("\"{other}\" is not complete or current"),
            );
            None
        }
    };
    rule.hold = match hold {
        None => None,
        Some(RawHold::Evaluations(count)) if *count >= 1 && *count <= 1000 => {
            Some(Hold::Evaluations(*count as u32))
        }
        Some(RawHold::Evaluations(count)) => {
            problems.add(
                format!("{key}.for"),
                format!("{count} evaluations: give 1 to 1000, or a duration such as \"6h\""),
            );
            None
        }
        Some(RawHold::Duration(text)) => {
            duration(&format!("{key}.for"), text, problems).map(Hold::Duration)
        }
    };
    rule.recovery = recovery;
    rule.forecast = forecast.unwrap_or(true);
    rule
}

/// Validates `[notify.NAME]`; `smtp` says whether `[smtp]` is configured.
pub(super) fn validate_notify(
    name: &str,
    raw: RawNotify,
    defaults: &AlertDefaults,
    smtp: bool,
    problems: &mut Problems,
) -> Option<NotifyConfig> {
    let key = format!("notify.{name}");
    let before = problems.len();
    let only = |field: &str, present: bool, kind: &str, problems: &mut Problems| {
        if present {
            problems.add(
                format!("{key}.{field}"),
                format!("is not used by kind \"{kind}\""),
            );
        }
    };
    let kind = match raw.kind.as_str() {
        "email" => {
            only("url", raw.url.is_some(), "email", problems);
            only("secret", raw.secret.is_some(), "email", problems);
            only("format", raw.format.is_some(), "email", problems);
            let to = raw.to.clone().unwrap_or_default();
            if to.is_empty() {
                problems.add(format!("{key}.to"), "needs at least one address");
            }
            for address in &to {
                if address.parse::<lettre::Address>().is_err() {
                    problems.add(
                        format!("{key}.to"),
                        format!("\"{address}\" is not an email address"),
                    );
                }
            }
            if !smtp {
                problems.add(
                    format!("{key}.kind"),
                    "email needs an [smtp] section (host, port, tls, from)",
                );
            }
            let digest = raw.digest.as_deref().and_then(|text| {
                cron::Schedule::from_str(text)
                    .map_err(|error| {
                        problems.add(
                            format!("{key}.digest"),
                            format!("invalid cron expression \"{text}\": {error} (six fields, seconds first: \"0 0 8 * * Mon\")"),
                        )
                    })
                    .ok()
            });
            NotifyKind::Email { to, digest }
        }
        "webhook" => {
            only("to", raw.to.is_some(), "webhook", problems);
            only("digest", raw.digest.is_some(), "webhook", problems);
            let url = match raw.url.as_deref().map(reqwest::Url::parse) {
                Some(Ok(url)) if matches!(url.scheme(), "http" | "https") => Some(url),
                Some(_) => {
                    problems.add(format!("{key}.url"), "is not an http(s) URL");
                    None
                }
                None => {
                    problems.add(format!("{key}.url"), "is required for kind \"webhook\"");
                    None
                }
            };
            let format = match raw.format.as_deref() {
                None | Some("standard") => WebhookFormat::Standard,
                Some("slack") => WebhookFormat::Slack,
                Some(other) => {
                    problems.add(
                        format!("{key}.format"),
                        format!("\"{other}\" is not standard or slack"),
                    );
                    WebhookFormat::Standard
                }
            };
            if let Some(secret) = &raw.secret
                && crate::notify::webhook_secret_bytes(secret).is_none()
            {
                problems.add(
                    format!("{key}.secret"),
                    "is not a Standard Webhooks secret: \"whsec_\" followed by base64 (24 to 64 bytes)",
                );
            }
            if format == WebhookFormat::Slack && raw.secret.is_some() {
                problems.add(
                    format!("{key}.secret"),
                    "Slack incoming webhooks are not signed; remove secret",
                );
            }
            NotifyKind::Webhook {
                url: url?,
                secret: raw.secret.clone(),
                format,
            }
        }
        other => {
            problems.add(
                format!("{key}.kind"),
                format!("unknown channel kind \"{other}\" (email, webhook)"),
            );
            return None;
        }
    };
    let group_wait = raw
        .group_wait
        .as_deref()
        .map_or(Some(defaults.group_wait), |text| {
            duration(&format!("{key}.group_wait"), text, problems)
        });
    let group_interval = raw
        .group_interval
        .as_deref()
        .map_or(Some(defaults.group_interval), |text| {
            duration(&format!("{key}.group_interval"), text, problems)
        });
    if problems.len() > before {
        return None;
    }
    Some(NotifyConfig {
        name: name.to_string(),
        kind,
        owners: raw.owners,
        group_wait: group_wait?,
        group_interval: group_interval?,
    })
}

/// Validates `[smtp]`.
pub(super) fn validate_smtp(raw: RawSmtp, problems: &mut Problems) -> Option<SmtpConfig> {
    let before = problems.len();
    let tls = match raw.tls.as_deref() {
        None | Some("starttls") => SmtpTls::Starttls,
        Some("tls") => SmtpTls::Tls,
        Some("none") => SmtpTls::None,
        Some(other) => {
            problems.add(
                "smtp.tls",
                format!("\"{other}\" is not starttls, tls or none"),
            );
            SmtpTls::Starttls
        }
    };
    if raw.from.parse::<lettre::message::Mailbox>().is_err() {
        problems.add(
            "smtp.from",
            format!(
                "\"{}\" is not a mailbox (\"Name <address>\" or an address)",
                raw.from
            ),
        );
    }
    if raw.host.is_empty() {
        problems.add("smtp.host", "is empty");
    }
    if raw.password.is_some() && raw.username.is_none() {
        problems.add("smtp.username", "is required with password");
    }
    let ca_file = raw.ca_file.as_deref().and_then(|path| {
        check_ca_file(path)
            .map_err(|error| problems.add("smtp.ca_file", format!("\"{path}\": {error}")))
            .ok()
            .map(|()| PathBuf::from(path))
    });
    if ca_file.is_some() && tls == SmtpTls::None {
        problems.add(
            "smtp.ca_file",
            "is only used with tls = \"starttls\" or \"tls\"",
        );
    }
    let timeout = match raw.timeout.as_deref() {
        None => Some(DEFAULT_SMTP_TIMEOUT),
        Some(text) => match duration("smtp.timeout", text, problems) {
            Some(value) if value.is_zero() => {
                problems.add("smtp.timeout", "must be longer than 0s");
                None
            }
            other => other,
        },
    };
    let port = raw.port.unwrap_or(match tls {
        SmtpTls::Starttls => 587,
        SmtpTls::Tls => 465,
        SmtpTls::None => 25,
    });
    (problems.len() == before).then_some(SmtpConfig {
        host: raw.host,
        port,
        tls,
        username: raw.username,
        password: raw.password,
        from: raw.from,
        ca_file,
        timeout: timeout.unwrap_or(DEFAULT_SMTP_TIMEOUT),
    })
}

/// Checks that a `ca_file` holds at least one PEM certificate that can be a trust root.
fn check_ca_file(path: &str) -> Result<(), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let pem = std::fs::read(path).map_err(|error| format!("cannot be read: {error}"))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("is not a PEM certificate file: {error}"))?;
    if certificates.is_empty() {
        return Err("holds no \"BEGIN CERTIFICATE\" block".to_string());
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| format!("holds a certificate that cannot be a trust root: {error}"))?;
    }
    Ok(())
}
