//! Configuration: the typed `Settings` tree, and how it is loaded.
//!
//! Loading order (later wins): the TOML file (`--config`, else `$SCOREKEEPER_CONFIG`,
//! else `config/scorekeeper.toml`), then `SCOREKEEPER__SECTION__KEY` environment
//! variables. After merging, every `${NAME}` inside a string is replaced by that
//! environment variable. The merged tree is deserialized into the `Raw*` structs
//! (unknown keys rejected, with their key path), then [`validate`] converts it into
//! [`Settings`] with real types (cron schedules, time zones, compiled CEL, durations),
//! collecting every problem with its key path before returning.
//!
//! This module never touches the network or the database, and `Settings` never
//! changes after it is built.

mod alerting;
mod declarative;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::measures::Aggregate;
use crate::measures::expr::Expr;
use crate::measures::period::PeriodKind;
use crate::secret::Secret;
use crate::status::Target;

pub use alerting::{
    AlertDefaults, AlertRule, Evaluate, Hold, NotifyConfig, NotifyKind, SmtpConfig, SmtpTls,
    WebhookFormat,
};
pub use declarative::{Endpoint, HttpAuth, HttpSource, Incremental, Pagination, TimeFormat};
pub use validate::validate;

/// The configuration file used when neither `--config` nor `$SCOREKEEPER_CONFIG` is set.
pub const DEFAULT_CONFIG_PATH: &str = "config/scorekeeper.toml";
/// Prefix of environment overrides: `SCOREKEEPER__SOURCES__STRIPE__SCHEDULE=...`.
pub const ENV_PREFIX: &str = "SCOREKEEPER";

/// Everything wrong with a configuration, each problem with its key path.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// One line per problem: `key.path: what is wrong`.
    pub problems: Vec<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid configuration: {one}"),
            many => {
                write!(f, "invalid configuration ({} problems):", many.len())?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl ConfigError {
    fn one(problem: impl Into<String>) -> Self {
        Self {
            problems: vec![problem.into()],
        }
    }
}

/// Picks the configuration file: the explicit path, else `$SCOREKEEPER_CONFIG`, else the default.
pub fn config_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("SCOREKEEPER_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// Loads, interpolates and validates the configuration at `path` with the process environment.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_with_env(path, &env)
}

/// Like [`load`], with an explicit environment (tests pin the precedence with it).
pub fn load_with_env(path: &Path, env: &BTreeMap<String, String>) -> Result<Settings, ConfigError> {
    if !path.exists() {
        return Err(ConfigError::one(format!(
            "{}: configuration file not found (pass --config PATH or set SCOREKEEPER_CONFIG)",
            path.display()
        )));
    }
    let file = config::File::from(path).format(config::FileFormat::Toml);
    load_source(file, &path.display().to_string(), env)
}

/// Loads a configuration from TOML text (the demo's embedded file), with `env`.
pub fn load_str(
    toml: &str,
    origin: &str,
    env: &BTreeMap<String, String>,
) -> Result<Settings, ConfigError> {
    load_source(
        config::File::from_str(toml, config::FileFormat::Toml),
        origin,
        env,
    )
}

fn load_source<S>(
    file: S,
    origin: &str,
    env: &BTreeMap<String, String>,
) -> Result<Settings, ConfigError>
where
    S: config::Source + Send + Sync + 'static,
{
    // The `config` crate: later sources win, so the file goes first and the
    // environment overrides it (STYLE §5; a test pins the order down).
    let merged = config::Config::builder()
        .add_source(file)
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(env.clone().into_iter().collect()))
                .try_parsing(true),
        )
        .build()
        .map_err(|error| ConfigError::one(format!("{origin}: {error}")))?;
    let mut tree: serde_json::Value = merged
        .try_deserialize()
        .map_err(|error| ConfigError::one(format!("{origin}: {error}")))?;

    let mut problems = Vec::new();
    interpolate(&mut tree, &mut String::new(), env, &mut problems);
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let raw: RawSettings = serde_path_to_error::deserialize(tree).map_err(|error| {
        let path = error.path().to_string();
        ConfigError::one(format!("{path}: {}", error.into_inner()))
    })?;
    validate(raw)
}

/// Replaces `${NAME}` in every string of the tree; a missing variable is a problem at that key.
fn interpolate(
    value: &mut serde_json::Value,
    path: &mut String,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) {
    match value {
        serde_json::Value::String(text) if text.contains("${") => match substitute(text, env) {
            Ok(replaced) => *text = replaced,
            Err(name) => problems.push(format!(
                "{path}: environment variable {name} is not set (referenced as ${{{name}}})"
            )),
        },
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                interpolate(child, path, env, problems);
                path.truncate(len);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, child) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                interpolate(child, path, env, problems);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Substitutes every `${NAME}` in `text`; returns the first missing name as the error.
fn substitute(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        match env.get(name) {
            Some(value) => out.push_str(value),
            None => return Err(name.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------
// The file as written: plain serde structs, unknown keys rejected.
// ---------------------------------------------------------------------------

/// The configuration file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// `[database]`
    #[serde(default)]
    pub database: RawDatabase,
    /// `[server]`
    #[serde(default)]
    pub server: RawServer,
    /// `[scorecard]`
    pub scorecard: RawScorecard,
    /// `[sources.NAME]`
    #[serde(default)]
    pub sources: BTreeMap<String, RawSource>,
    /// `[measures.ID]`
    #[serde(default)]
    pub measures: BTreeMap<String, RawMeasure>,
    /// `[objectives.ID]`
    #[serde(default)]
    pub objectives: BTreeMap<String, RawObjective>,
    /// `[alerts]`
    pub alerts: Option<alerting::RawAlerts>,
    /// `[notify.NAME]`
    #[serde(default)]
    pub notify: BTreeMap<String, alerting::RawNotify>,
    /// `[smtp]`
    pub smtp: Option<alerting::RawSmtp>,
}

/// `[database]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// `sqlite://path` or `postgres://user:pw@host/db`.
    pub url: Option<Secret>,
    /// How long startup keeps retrying a database it cannot reach, e.g. `"30s"`.
    pub connect_timeout: Option<String>,
    /// How long a replica's lease on a source lasts without renewal (`30s`).
    pub lease_ttl: Option<String>,
}

/// `[server]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Listen address, `127.0.0.1:8080` by default.
    pub listen: Option<String>,
    /// Bearer token for write endpoints.
    pub api_token: Option<Secret>,
    /// The dashboard's public address, for links in notifications.
    pub public_url: Option<String>,
}

/// `[scorecard]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScorecard {
    /// Display name.
    pub name: String,
    /// IANA time zone of the calendar periods.
    pub timezone: String,
    /// ISO currency code shown next to money.
    pub currency: Option<String>,
}

/// `[sources.NAME]` as written: the common keys and every preset's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Connector preset.
    pub kind: String,
    /// Cron with seconds: `sec min hour day month weekday`.
    pub schedule: String,
    /// First day of history to pull.
    pub start_date: Option<String>,
    /// Overrides the preset's real API address.
    pub base_url: Option<String>,
    /// Subset of the preset's streams.
    pub streams: Option<Vec<String>>,
    /// Alert when no successful sync for this long.
    pub stale_after: Option<String>,
    /// How far before the saved cursor each incremental sync re-reads.
    pub lookback: Option<String>,
    /// Deletion reconciliation: how far back a scheduled re-read looks for records
    /// that vanished upstream.
    pub reconcile_window: Option<String>,
    /// When that re-read runs (cron with seconds; daily at 03:30 UTC by default).
    pub reconcile_schedule: Option<String>,
    /// Stripe: secret API key.
    pub api_key: Option<Secret>,
    /// Zendesk: the account's subdomain (`acme` for acme.zendesk.com).
    pub subdomain: Option<String>,
    /// Zendesk: the agent's email the API token belongs to.
    pub email: Option<String>,
    /// Zendesk: API token.
    pub api_token: Option<Secret>,
    /// Shopify: the shop's domain (`acme.myshopify.com`).
    pub shop: Option<String>,
    /// Shopify: Admin API access token.
    pub access_token: Option<Secret>,
    /// Shopify: Admin API version (`2025-07`).
    pub api_version: Option<String>,
    /// Freshdesk: the helpdesk domain (`acme.freshdesk.com`); TalentLMS: the portal's domain
    /// (`acme.talentlms.com`). A bare name means the service's own domain.
    pub domain: Option<String>,
    /// Pipedrive: the company domain (`acme` for acme.pipedrive.com).
    pub company_domain: Option<String>,
    /// QuickBooks: the company id (realm id).
    pub realm_id: Option<String>,
    /// Xero: the organisation's tenant id (sent as `Xero-tenant-id`).
    pub tenant_id: Option<String>,
    /// OAuth2 (QuickBooks, Xero): the app's client id.
    pub client_id: Option<String>,
    /// OAuth2: the app's client secret.
    pub client_secret: Option<Secret>,
    /// OAuth2: the refresh token from the authorization (rotated tokens are kept in the database).
    pub refresh_token: Option<Secret>,
    /// OAuth2: the token endpoint (each preset has its real default).
    pub token_url: Option<String>,
    /// Moodle: the web service token (`wstoken`).
    pub token: Option<Secret>,
    /// CSV: a local file.
    pub path: Option<String>,
    /// CSV: an HTTP(S) address of the file.
    pub url: Option<String>,
    /// CSV: column name → type (string, integer, number, boolean, date, datetime).
    pub columns: Option<BTreeMap<String, String>>,
    /// CSV: the columns that identify a row.
    pub key: Option<Vec<String>>,
    /// CSV: the field separator (one character, `,` by default).
    pub delimiter: Option<String>,
    /// http: how requests authenticate.
    pub auth: Option<declarative::RawHttpAuth>,
    /// http: fixed request headers.
    pub headers: Option<BTreeMap<String, String>>,
    /// http: the declared streams.
    pub endpoints: Option<BTreeMap<String, declarative::RawEndpoint>>,
}

/// `[measures.ID]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeasure {
    /// Display name (defaults to the id).
    pub name: Option<String>,
    /// financial | customer | internal | learning
    pub perspective: String,
    /// day | week | month | quarter | year
    pub period: String,
    /// Unit shown next to values.
    pub unit: Option<String>,
    /// `<source>.<stream>` the records come from.
    pub from: Option<String>,
    /// Record field with the event time.
    pub time: Option<String>,
    /// CEL filter over the record.
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// CEL value extracted from the record.
    pub value: Option<String>,
    /// Aggregate over the period's values.
    pub aggregate: Option<String>,
    /// CEL over other measures of the same period.
    pub formula: Option<String>,
    /// Target and warning band.
    pub target: Option<RawTarget>,
    /// Routes alerts.
    pub owner: Option<String>,
    /// Strategy-map objective this measure belongs to.
    pub objective: Option<String>,
    /// Statuses that fire an alert (`["red"]` by default; `[]`: none).
    pub alert_on: Option<Vec<String>>,
    /// Which period is judged: complete | current.
    pub evaluate: Option<String>,
    /// How long the condition must hold: evaluations (`2`) or a duration (`"6h"`).
    #[serde(rename = "for")]
    pub hold: Option<alerting::RawHold>,
    /// The value must come back past this level before the alert resolves.
    pub recovery: Option<f64>,
    /// Forecast alerts for the running period (default true).
    pub forecast: Option<bool>,
}

/// `target = { value, direction, warn }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// The target value.
    pub value: f64,
    /// up (higher is better) or down.
    pub direction: Option<String>,
    /// Edge of the warning band.
    pub warn: Option<f64>,
}

/// `[objectives.ID]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObjective {
    /// Display name.
    pub name: Option<String>,
    /// financial | customer | internal | learning
    pub perspective: String,
    /// Objectives this one drives (cause → effect).
    #[serde(default)]
    pub drivers: Vec<String>,
}

// ---------------------------------------------------------------------------
// The validated, typed settings.
// ---------------------------------------------------------------------------

/// The validated configuration. Built once at startup, never changed afterwards.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Storage.
    pub database: DatabaseConfig,
    /// HTTP server.
    pub server: ServerConfig,
    /// Scorecard name, time zone, currency.
    pub scorecard: ScorecardConfig,
    /// Sources by name.
    pub sources: BTreeMap<String, SourceConfig>,
    /// Measures in dependency order (every formula after its inputs).
    pub measures: Vec<MeasureConfig>,
    /// Strategy-map objectives by id.
    pub objectives: BTreeMap<String, ObjectiveConfig>,
    /// Alert defaults.
    pub alerts: AlertDefaults,
    /// Notification channels by name.
    pub notify: BTreeMap<String, NotifyConfig>,
    /// The SMTP server of email channels.
    pub smtp: Option<SmtpConfig>,
}

impl Settings {
    /// The measure with this id.
    pub fn measure(&self, id: &str) -> Option<&MeasureConfig> {
        self.measures.iter().find(|measure| measure.id == id)
    }

    /// Every secret value in the configuration (tests check none of them leaks).
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut secrets = vec![&self.database.url];
        secrets.extend(self.server.api_token.as_ref());
        for source in self.sources.values() {
            secrets.extend(source.api_key.as_ref());
            secrets.extend(source.api_token.as_ref());
            secrets.extend(source.access_token.as_ref());
            secrets.extend(source.token.as_ref());
            if let Some(http) = &source.http {
                secrets.extend(http.auth.secrets());
            }
            if let Some(oauth) = &source.oauth {
                secrets.push(&oauth.client_secret);
                secrets.push(&oauth.refresh_token);
            }
        }
        if let Some(password) = self.smtp.as_ref().and_then(|smtp| smtp.password.as_ref()) {
            secrets.push(password);
        }
        for channel in self.notify.values() {
            if let NotifyKind::Webhook {
                secret: Some(secret),
                ..
            } = &channel.kind
            {
                secrets.push(secret);
            }
        }
        secrets
    }
}

/// `[database]`.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Connection URL; a secret because it may carry a password.
    pub url: Secret,
    /// How long startup keeps retrying a database it cannot reach before giving up.
    pub connect_timeout: Duration,
    /// How long a source's lease lasts without renewal (PostgreSQL, several replicas): a
    /// replica that dies mid-sync blocks the source for at most this long. Renewed every
    /// third of it while the sync runs.
    pub lease_ttl: std::time::Duration,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address the HTTP server binds to (loopback by default).
    pub listen: SocketAddr,
    /// Bearer token required by write endpoints; without one they are refused.
    pub api_token: Option<Secret>,
    /// The dashboard's public address, for links in notifications.
    pub public_url: Option<reqwest::Url>,
}

/// `[scorecard]`.
#[derive(Debug, Clone)]
pub struct ScorecardConfig {
    /// Display name.
    pub name: String,
    /// Calendar periods are computed in this zone.
    pub timezone: Tz,
    /// Currency code, if any.
    pub currency: Option<String>,
}

/// One configured source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// The table key: `[sources.NAME]`.
    pub name: String,
    /// The preset.
    pub kind: SourceKind,
    /// When to sync (six-field cron, seconds first).
    pub schedule: cron::Schedule,
    /// The cron text, for display.
    pub schedule_text: String,
    /// The first sync pulls history from this day (in the scorecard's zone).
    pub start_date: Option<NaiveDate>,
    /// The API address (the preset's real default unless overridden).
    pub base_url: reqwest::Url,
    /// Streams to sync (all of the preset's by default).
    pub streams: Vec<String>,
    /// Alert when no successful sync for this long.
    pub stale_after: Option<Duration>,
    /// How far before the saved cursor each incremental sync re-reads, so objects that
    /// changed upstream after they were first synced are picked up again.
    pub lookback: Duration,
    /// Deletion reconciliation, when configured.
    pub reconcile: Option<ReconcileConfig>,
    /// Stripe: the secret API key.
    pub api_key: Option<Secret>,
    /// Zendesk: the account's subdomain.
    pub subdomain: Option<String>,
    /// Zendesk: the agent's email the API token belongs to.
    pub email: Option<String>,
    /// Zendesk: the API token.
    pub api_token: Option<Secret>,
    /// Shopify: the shop's domain.
    pub shop: Option<String>,
    /// Shopify: Admin API access token.
    pub access_token: Option<Secret>,
    /// Shopify: Admin API version.
    pub api_version: Option<String>,
    /// Freshdesk or TalentLMS: the account's domain.
    pub domain: Option<String>,
    /// Pipedrive: the company domain.
    pub company_domain: Option<String>,
    /// QuickBooks: the company id (realm id).
    pub realm_id: Option<String>,
    /// Xero: the organisation's tenant id.
    pub tenant_id: Option<String>,
    /// OAuth2 refresh-token flow (QuickBooks, Xero), when configured.
    pub oauth: Option<OAuthConfig>,
    /// Moodle: the web service token.
    pub token: Option<Secret>,
    /// CSV: where the file is and how to read it.
    pub csv: Option<CsvConfig>,
    /// http: the declared connector.
    pub http: Option<HttpSource>,
    /// Per stream, the top-level record fields its measures read (`All` when one reads
    /// the record as a whole); presets parse only these, their key and their cursor
    /// fields. A stream no measure reads is absent: only key and cursor fields.
    pub record_fields: BTreeMap<String, RecordFields>,
}

impl SourceConfig {
    /// The top-level fields to parse from a record of `stream`: those its measures
    /// read, and `preset_fields` (the preset's own: key, cursor).
    pub fn record_fields(&self, stream: &str, preset_fields: &[&str]) -> RecordFields {
        match self.record_fields.get(stream) {
            Some(RecordFields::All) => RecordFields::All,
            measured => {
                let mut fields = match measured {
                    Some(RecordFields::Only(fields)) => fields.clone(),
                    _ => std::collections::BTreeSet::new(),
                };
                fields.extend(
                    preset_fields
                        .iter()
                        .map(|field| top_level(field).to_string()),
                );
                RecordFields::Only(fields)
            }
        }
    }
}

/// The top-level key of a dotted field path (`MetaData.LastUpdatedTime` → `MetaData`).
pub fn top_level(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

/// Which top-level fields of an API record are parsed for measures and presets (the
/// record is stored whole either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFields {
    /// Every field (a measure reads the record as a whole, or an assembled stream).
    All,
    /// Only these top-level keys; the others are skipped unparsed.
    Only(std::collections::BTreeSet<String>),
}

/// A source's deletion reconciliation: a re-read of a recent window on its own
/// schedule that removes records no longer listed upstream.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// How far back the re-read looks.
    pub window: Duration,
    /// When it runs.
    pub schedule: cron::Schedule,
    /// The cron text, for display.
    pub schedule_text: String,
}

/// The OAuth2 refresh-token grant of a source (RFC 6749 §6).
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The token endpoint.
    pub token_url: reqwest::Url,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: Secret,
    /// The refresh token the user configured (the database keeps rotated successors).
    pub refresh_token: Secret,
}

/// Where a CSV source reads from and how.
#[derive(Debug, Clone)]
pub struct CsvConfig {
    /// A local file or an HTTP(S) address.
    pub location: CsvLocation,
    /// Column name → type; columns not listed are read as strings.
    pub columns: BTreeMap<String, CsvColumnType>,
    /// The columns that identify a row.
    pub key: Vec<String>,
    /// Field separator.
    pub delimiter: u8,
}

/// A CSV file's location.
#[derive(Debug, Clone)]
pub enum CsvLocation {
    /// A local path, made absolute against the working directory when the configuration
    /// is loaded.
    Path(PathBuf),
    /// An HTTP(S) address.
    Url(reqwest::Url),
}

impl CsvLocation {
    /// The address the shared client reads: `file://` for a path.
    pub fn url(&self) -> reqwest::Url {
        match self {
            CsvLocation::Path(path) => reqwest::Url::from_file_path(path)
                .expect("validate_csv makes every CSV path absolute"),
            CsvLocation::Url(url) => url.clone(),
        }
    }
}

/// The type a CSV column is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvColumnType {
    /// Text, as written.
    String,
    /// A whole number.
    Integer,
    /// A decimal number.
    Number,
    /// true/false, yes/no, 1/0.
    Boolean,
    /// A calendar date (YYYY-MM-DD).
    Date,
    /// A date-time (RFC 3339, or a date and time without offset).
    Datetime,
}

/// Built-in connector presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Stripe's REST API.
    Stripe,
    /// Zendesk Support's REST API.
    Zendesk,
    /// Shopify's Admin REST API.
    Shopify,
    /// Freshdesk's REST API.
    Freshdesk,
    /// Pipedrive's REST API (v2).
    Pipedrive,
    /// A connector declared in the configuration.
    Http,
    /// HubSpot's CRM API (v3).
    HubSpot,
    /// QuickBooks Online's Accounting API.
    QuickBooks,
    /// Xero's Accounting API.
    Xero,
    /// A CSV file, local or over HTTP(S).
    Csv,
    /// Moodle's REST web services.
    Moodle,
    /// TalentLMS's REST API (v1).
    Talentlms,
}

impl SourceKind {
    /// Every kind this build knows, with its config spelling.
    pub const ALL: &[(&str, SourceKind)] = &[
        ("stripe", SourceKind::Stripe),
        ("shopify", SourceKind::Shopify),
        ("zendesk", SourceKind::Zendesk),
        ("pipedrive", SourceKind::Pipedrive),
        ("freshdesk", SourceKind::Freshdesk),
        ("http", SourceKind::Http),
        ("hubspot", SourceKind::HubSpot),
        ("quickbooks", SourceKind::QuickBooks),
        ("xero", SourceKind::Xero),
        ("csv", SourceKind::Csv),
        ("moodle", SourceKind::Moodle),
        ("talentlms", SourceKind::Talentlms),
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Stripe => "stripe",
            SourceKind::Zendesk => "zendesk",
            SourceKind::Shopify => "shopify",
            SourceKind::Freshdesk => "freshdesk",
            SourceKind::Pipedrive => "pipedrive",
            SourceKind::Http => "http",
            SourceKind::HubSpot => "hubspot",
            SourceKind::QuickBooks => "quickbooks",
            SourceKind::Xero => "xero",
            SourceKind::Csv => "csv",
            SourceKind::Moodle => "moodle",
            SourceKind::Talentlms => "talentlms",
        }
    }
}

/// The four Balanced Scorecard perspectives.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Perspective {
    /// Financial.
    Financial,
    /// Customer.
    Customer,
    /// Internal process.
    Internal,
    /// Learning and growth.
    Learning,
}

impl Perspective {
    /// In scorecard order.
    pub const ALL: [Perspective; 4] = [
        Perspective::Financial,
        Perspective::Customer,
        Perspective::Internal,
        Perspective::Learning,
    ];

    /// Parses the config spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Perspective::Financial => "financial",
            Perspective::Customer => "customer",
            Perspective::Internal => "internal",
            Perspective::Learning => "learning",
        }
    }

    /// The heading shown to people.
    pub fn title(self) -> &'static str {
        match self {
            Perspective::Financial => "Financial",
            Perspective::Customer => "Customer",
            Perspective::Internal => "Internal process",
            Perspective::Learning => "Learning & growth",
        }
    }
}

/// One configured measure.
#[derive(Debug, Clone)]
pub struct MeasureConfig {
    /// The table key: `[measures.ID]`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Perspective it belongs to.
    pub perspective: Perspective,
    /// Period kind of its series.
    pub period: PeriodKind,
    /// Unit shown next to values.
    pub unit: Option<String>,
    /// Where its values come from.
    pub kind: MeasureKind,
    /// Target, if any.
    pub target: Option<Target>,
    /// Alert routing.
    pub owner: Option<String>,
    /// Objective it measures.
    pub objective: Option<String>,
    /// Its alert rule.
    pub alert: AlertRule,
}

/// How a measure gets its values.
#[derive(Debug, Clone)]
pub enum MeasureKind {
    /// Aggregated from one stream's records.
    Records(RecordMeasure),
    /// Computed from other measures of the same period.
    Formula {
        /// The compiled formula.
        formula: Expr,
        /// The measures it reads.
        inputs: Vec<String>,
    },
}

/// A measure over one stream's records.
#[derive(Debug, Clone)]
pub struct RecordMeasure {
    /// Source name.
    pub source: String,
    /// Stream name.
    pub stream: String,
    /// Dotted path of the event-time field.
    pub time_field: String,
    /// Filter; records for which it is not `true` are left out.
    pub filter: Option<Expr>,
    /// Value; `None` only for `count`.
    pub value: Option<Expr>,
    /// Aggregate over the period.
    pub aggregate: Aggregate,
}

/// One strategy-map objective.
#[derive(Debug, Clone)]
pub struct ObjectiveConfig {
    /// Display name.
    pub name: String,
    /// Perspective row.
    pub perspective: Perspective,
    /// Objectives this one drives.
    pub drivers: Vec<String>,
}

#[cfg(test)]
mod tests;
