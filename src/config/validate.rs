//! Converts the file as written ([`RawSettings`]) into typed [`Settings`], and
//! cross-checks it: every problem is collected with its key path, all in one go,
//! so a user fixes the whole file in one round.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDate;

use super::*;
use crate::measures::Aggregate;
use crate::measures::expr::Expr;
use crate::measures::period::PeriodKind;
use crate::sources::presets;
use crate::status::{Direction, Target};

/// Default listen address: loopback only.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long startup retries an unreachable database by default (a PostgreSQL server
/// that starts with the machine usually answers within seconds).
const DEFAULT_DATABASE_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default database: one SQLite file under `./data`.
const DEFAULT_DATABASE_URL: &str = "sqlite://data/scorekeeper.db";

/// How long a source's lease lasts without renewal, by default.
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// The shortest lease: renewed every third of it, once a second at least.
const MIN_LEASE_TTL: Duration = Duration::from_secs(3);

/// Collects problems with their key paths.
#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    pub(super) fn add(&mut self, key: impl std::fmt::Display, problem: impl std::fmt::Display) {
        self.0.push(format!("{key}: {problem}"));
    }

    /// Problems so far (to tell whether a part added any).
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Validates and converts the whole configuration; every problem is reported.
pub fn validate(raw: RawSettings) -> Result<Settings, ConfigError> {
    let mut problems = Problems::default();

    let connect_timeout = match raw.database.connect_timeout.as_deref() {
        None => DEFAULT_DATABASE_CONNECT_TIMEOUT,
        Some(text) => parse_duration(text).unwrap_or_else(|error| {
            problems.add("database.connect_timeout", error);
            DEFAULT_DATABASE_CONNECT_TIMEOUT
        }),
    };
    let lease_ttl = match raw.database.lease_ttl.as_deref() {
        None => DEFAULT_LEASE_TTL,
        Some(text) => match parse_duration(text) {
            Ok(ttl) if ttl >= MIN_LEASE_TTL => ttl,
            Ok(_) => {
                problems.add(
                    "database.lease_ttl",
                    format!(
                        "\"{text}\" is too short (at least 3s: it is renewed every third of it)"
                    ),
                );
                DEFAULT_LEASE_TTL
            }
            Err(error) => {
                problems.add("database.lease_ttl", error);
                DEFAULT_LEASE_TTL
            }
        },
    };
    let database = DatabaseConfig {
        url: raw
            .database
            .url
            .unwrap_or_else(|| Secret::new(DEFAULT_DATABASE_URL)),
        connect_timeout,
        lease_ttl,
    };
    let url = database.url.expose();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        problems.add(
            "database.url",
            format!(
                "unsupported database URL \"{}\" (use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB)",
                crate::secret::redact_url(url)
            ),
        );
    }

    let listen_text = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen_text.parse().unwrap_or_else(|error| {
        problems.add("server.listen", format!("invalid address \"{listen_text}\": {error} (expected HOST:PORT such as 127.0.0.1:8080)"));
        DEFAULT_LISTEN.parse().expect("the default listen address is valid")
    });
    if raw.server.api_token.as_ref().is_some_and(Secret::is_empty) {
        problems.add(
            "server.api_token",
            "is empty; remove the key to disable write endpoints, or set a token",
        );
    }
    let public_url = raw.server.public_url.as_deref().and_then(|text| {
        match reqwest::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                problems.add(
                    "server.public_url",
                    format!("\"{text}\" is not an http(s) URL (the dashboard's address as people reach it)"),
                );
                None
            }
        }
    });
    let server = ServerConfig {
        listen,
        api_token: raw.server.api_token,
        public_url,
    };

    let timezone = raw.scorecard.timezone.parse().unwrap_or_else(|_| {
        problems.add(
            "scorecard.timezone",
            format!(
                "unknown time zone \"{}\" (use an IANA name such as Europe/Berlin or UTC)",
                raw.scorecard.timezone
            ),
        );
        chrono_tz::UTC
    });
    let scorecard = ScorecardConfig {
        name: raw.scorecard.name,
        timezone,
        currency: raw.scorecard.currency,
    };

    // Sources that are declared but invalid were reported already; measures that read
    // them are not reported again as naming no source.
    let declared: BTreeSet<String> = raw.sources.keys().cloned().collect();
    let mut sources = BTreeMap::new();
    for (name, source) in raw.sources {
        if let Some(source) = validate_source(&name, source, &mut problems) {
            sources.insert(name, source);
        }
    }

    let objectives = validate_objectives(raw.objectives, &mut problems);
    let measures = validate_measures(
        raw.measures,
        &sources,
        &declared,
        &objectives,
        &mut problems,
    );

    record_fields(&mut sources, &measures);

    let alerts = super::alerting::validate_defaults(raw.alerts, &mut problems);
    let smtp = raw
        .smtp
        .and_then(|smtp| super::alerting::validate_smtp(smtp, &mut problems));
    let mut notify = BTreeMap::new();
    for (name, channel) in raw.notify {
        if let Some(channel) =
            super::alerting::validate_notify(&name, channel, &alerts, smtp.is_some(), &mut problems)
        {
            notify.insert(name, channel);
        }
    }

    if problems.0.is_empty() {
        Ok(Settings {
            database,
            server,
            scorecard,
            sources,
            measures,
            objectives,
            alerts,
            notify,
            smtp,
        })
    } else {
        Err(ConfigError {
            problems: problems.0,
        })
    }
}

/// Notes in each source, per stream, the top-level record fields its measures read
/// (the time field, and the expressions' variables), or `All` when an expression reads
/// the record as a whole.
fn record_fields(sources: &mut BTreeMap<String, SourceConfig>, measures: &[MeasureConfig]) {
    for measure in measures {
        let MeasureKind::Records(records) = &measure.kind else {
            continue;
        };
        let Some(source) = sources.get_mut(&records.source) else {
            continue;
        };
        let entry = source
            .record_fields
            .entry(records.stream.clone())
            .or_insert_with(|| RecordFields::Only(BTreeSet::new()));
        let expressions = [&records.filter, &records.value];
        if expressions
            .iter()
            .flat_map(|expression| expression.iter())
            .any(|expression| expression.uses_whole_record())
        {
            *entry = RecordFields::All;
        }
        if let RecordFields::Only(fields) = entry {
            fields.insert(super::top_level(&records.time_field).to_string());
            for expression in expressions.iter().flat_map(|expression| expression.iter()) {
                for variable in expression.variables() {
                    fields.insert(variable.clone());
                }
            }
        }
    }
}

/// Parses `"2h"`, `"30d"`, `"90m"` durations.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("invalid duration \"{text}\": {error} (examples: 30m, 2h, 30d)"))
}

fn validate_source(name: &str, raw: RawSource, problems: &mut Problems) -> Option<SourceConfig> {
    let key = format!("sources.{name}");
    let before = problems.0.len();
    let kind = SourceKind::ALL
        .iter()
        .find(|(text, _)| *text == raw.kind)
        .map(|(_, kind)| *kind);
    let Some(kind) = kind else {
        let known: Vec<&str> = SourceKind::ALL.iter().map(|(text, _)| *text).collect();
        problems.add(
            format!("{key}.kind"),
            format!(
                "unknown source kind \"{}\" (known kinds: {})",
                raw.kind,
                known.join(", ")
            ),
        );
        return None;
    };
    let preset = presets::describe(kind);

    let schedule = match cron::Schedule::from_str(&raw.schedule) {
        Ok(schedule) => Some(schedule),
        Err(error) => {
            problems.add(
                format!("{key}.schedule"),
                format!("invalid cron expression \"{}\": {error} (six fields, seconds first: sec min hour day month weekday)", raw.schedule),
            );
            None
        }
    };
    let start_date = raw.start_date.as_deref().and_then(|text| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| {
                problems.add(
                    format!("{key}.start_date"),
                    format!("invalid date \"{text}\" (expected YYYY-MM-DD)"),
                )
            })
            .ok()
    });
    // A preset's default address may name the account: `https://{subdomain}.zendesk.com`.
    let mut default_base = preset.default_base_url.to_string();
    // A bare shop name means its myshopify.com domain.
    let shop = raw.shop.as_ref().map(|shop| {
        if shop.contains('.') {
            shop.clone()
        } else {
            format!("{shop}.myshopify.com")
        }
    });
    if let Some(version) = raw.api_version.as_deref() {
        let well_formed = version == "unstable"
            || (version.len() == 7
                && version.as_bytes()[4] == b'-'
                && version
                    .chars()
                    .enumerate()
                    .all(|(i, c)| i == 4 || c.is_ascii_digit()));
        if !well_formed {
            problems.add(
                format!("{key}.api_version"),
                format!("\"{version}\" is not an API version (YYYY-MM, e.g. 2026-07)"),
            );
        }
    }
    // Likewise a bare account name means the service's own domain: acme.freshdesk.com,
    // acme.talentlms.com.
    let service_domain = match kind {
        SourceKind::Talentlms => "talentlms.com",
        _ => "freshdesk.com",
    };
    let domain = raw.domain.as_ref().map(|domain| {
        if domain.contains('.') {
            domain.clone()
        } else {
            format!("{domain}.{service_domain}")
        }
    });
    for (placeholder, value) in [
        ("{subdomain}", &raw.subdomain),
        ("{shop}", &shop),
        ("{domain}", &domain),
        ("{company_domain}", &raw.company_domain),
    ] {
        if let Some(value) = value {
            default_base = default_base.replace(placeholder, value);
        }
    }
    if let Some(subdomain) = raw.subdomain.as_deref()
        && (subdomain.is_empty()
            || !subdomain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        problems.add(format!("{key}.subdomain"), format!("\"{subdomain}\" is not a subdomain (letters, digits and dashes, e.g. acme for acme.zendesk.com)"));
    }
    // A CSV source has no API: its address is the file's own (see `validate_csv`).
    let csv = (kind == SourceKind::Csv)
        .then(|| validate_csv(&key, &raw, problems))
        .flatten();
    let base_url = if kind == SourceKind::Csv {
        if raw.base_url.is_some() {
            problems.add(
                format!("{key}.base_url"),
                "is not used by kind \"csv\"; give path or url",
            );
        }
        csv.as_ref().map(|csv| csv.location.url())
    } else {
        let base_text = raw.base_url.as_deref().unwrap_or(&default_base);
        match reqwest::Url::parse(base_text) {
            // No default and none given: reported once, as a required setting.
            _ if base_text.is_empty() => None,
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            Ok(_) => {
                problems.add(
                    format!("{key}.base_url"),
                    format!("\"{base_text}\" is not an http(s) URL"),
                );
                None
            }
            Err(error) => {
                problems.add(
                    format!("{key}.base_url"),
                    format!("invalid URL \"{base_text}\": {error}"),
                );
                None
            }
        }
    };
    let reconcile = validate_reconcile(&key, &raw, problems);
    let (oauth, oauth_partial) = validate_oauth(&key, &raw, preset, problems);
    // A declared connector's streams are its endpoints.
    let http = (kind == SourceKind::Http)
        .then(|| {
            let parts = super::declarative::RawHttpParts {
                auth: raw.auth.as_ref(),
                headers: raw.headers.as_ref(),
                endpoints: raw.endpoints.as_ref(),
            };
            super::declarative::validate_http(
                &key,
                parts,
                oauth.is_some() || oauth_partial,
                problems,
            )
        })
        .flatten();
    let offered: Vec<&str> = match (&http, &raw.endpoints) {
        (Some(http), _) => http.endpoints.keys().map(String::as_str).collect(),
        (None, Some(endpoints)) => endpoints.keys().map(String::as_str).collect(),
        (None, None) => preset.streams.to_vec(),
    };
    if kind != SourceKind::Http {
        for (name, present) in [
            ("auth", raw.auth.is_some()),
            ("headers", raw.headers.is_some()),
            ("endpoints", raw.endpoints.is_some()),
        ] {
            if present {
                problems.add(
                    format!("{key}.{name}"),
                    format!("is only used with kind \"http\", not \"{}\"", kind.as_str()),
                );
            }
        }
    }
    let streams = match raw.streams.clone() {
        None => offered.iter().map(|stream| stream.to_string()).collect(),
        Some(streams) => {
            for stream in &streams {
                if !offered.contains(&stream.as_str()) {
                    problems.add(
                        format!("{key}.streams"),
                        format!(
                            "{} has no stream \"{stream}\" (streams: {})",
                            kind.as_str(),
                            offered.join(", ")
                        ),
                    );
                }
            }
            if streams.is_empty() {
                problems.add(
                    format!("{key}.streams"),
                    "is empty; omit the key to sync every stream",
                );
            }
            streams
        }
    };
    let stale_after = raw.stale_after.as_deref().and_then(|text| {
        parse_duration(text)
            .map_err(|error| problems.add(format!("{key}.stale_after"), error))
            .ok()
    });
    let lookback = match raw.lookback.as_deref() {
        None => preset.default_lookback,
        Some(text) => parse_duration(text).unwrap_or_else(|error| {
            problems.add(format!("{key}.lookback"), error);
            preset.default_lookback
        }),
    };
    for setting in preset.required {
        let present = match *setting {
            "api_key" => raw
                .api_key
                .as_ref()
                .is_some_and(|secret| !secret.is_empty()),
            "api_token" => raw
                .api_token
                .as_ref()
                .is_some_and(|secret| !secret.is_empty()),
            "subdomain" => raw.subdomain.is_some() || raw.base_url.is_some(),
            "shop" => raw.shop.is_some() || raw.base_url.is_some(),
            "domain" => raw.domain.is_some() || raw.base_url.is_some(),
            "company_domain" => raw.company_domain.is_some() || raw.base_url.is_some(),
            "access_token" => raw
                .access_token
                .as_ref()
                .is_some_and(|secret| !secret.is_empty()),
            "email" => raw
                .email
                .as_deref()
                .is_some_and(|email| email.contains('@')),
            "realm_id" => raw.realm_id.as_deref().is_some_and(|id| !id.is_empty()),
            "base_url" => raw.base_url.is_some(),
            "tenant_id" => raw.tenant_id.as_deref().is_some_and(|id| !id.is_empty()),
            "token" => raw.token.as_ref().is_some_and(|secret| !secret.is_empty()),
            // An access token, or the three settings that let scorekeeper refresh its own.
            "access_token_or_refresh" => {
                let has_access = raw
                    .access_token
                    .as_ref()
                    .is_some_and(|secret| !secret.is_empty());
                if !has_access && oauth.is_none() && !oauth_partial {
                    problems.add(
                        format!("{key}.access_token"),
                        format!(
                            "kind \"{}\" needs access_token, or client_id, client_secret and refresh_token so scorekeeper can refresh tokens itself",
                            kind.as_str()
                        ),
                    );
                }
                true
            }
            other => unreachable!("preset requires an unknown setting {other}"),
        };
        if !present {
            problems.add(
                format!("{key}.{setting}"),
                format!("is required for kind \"{}\"", kind.as_str()),
            );
        }
    }
    if problems.0.len() > before {
        return None;
    }
    let source = SourceConfig {
        name: name.to_string(),
        kind,
        schedule: schedule?,
        schedule_text: raw.schedule,
        start_date,
        base_url: base_url?,
        streams,
        stale_after,
        lookback,
        api_key: raw.api_key,
        subdomain: raw.subdomain,
        email: raw.email,
        api_token: raw.api_token,
        shop: raw.shop,
        access_token: raw.access_token,
        api_version: raw.api_version,
        domain: raw.domain,
        company_domain: raw.company_domain,
        realm_id: raw.realm_id,
        tenant_id: raw.tenant_id,
        oauth,
        token: raw.token,
        csv,
        http,
        record_fields: BTreeMap::new(),
        reconcile,
    };
    // Reconciliation needs to know which stored records a re-read must list again.
    if source.reconcile.is_some() {
        let preset = presets::preset(kind);
        let blind: Vec<&str> = source
            .streams
            .iter()
            .filter(|stream| preset.coverage(&source, stream) == presets::Coverage::None)
            .map(String::as_str)
            .collect();
        if !blind.is_empty() {
            problems.add(
                format!("{key}.reconcile_window"),
                format!(
                    "{} cannot be reconciled (its API reports deletions itself or cannot re-list a window); \
                     limit `streams` to the others or remove reconcile_window",
                    blind.join(", ")
                ),
            );
            return None;
        }
    }
    Some(source)
}

/// The default time of the reconciliation re-read: daily at 03:30 UTC.
const DEFAULT_RECONCILE_SCHEDULE: &str = "0 30 3 * * *";

fn validate_reconcile(
    key: &str,
    raw: &RawSource,
    problems: &mut Problems,
) -> Option<ReconcileConfig> {
    let Some(window_text) = &raw.reconcile_window else {
        if raw.reconcile_schedule.is_some() {
            problems.add(
                format!("{key}.reconcile_schedule"),
                "needs reconcile_window (how far back the re-read looks, e.g. \"90d\")",
            );
        }
        return None;
    };
    let window = parse_duration(window_text)
        .map_err(|error| problems.add(format!("{key}.reconcile_window"), error))
        .ok()?;
    let schedule_text = raw
        .reconcile_schedule
        .clone()
        .unwrap_or_else(|| DEFAULT_RECONCILE_SCHEDULE.to_string());
    let schedule = cron::Schedule::from_str(&schedule_text)
        .map_err(|error| {
            problems.add(
                format!("{key}.reconcile_schedule"),
                format!("invalid cron expression \"{schedule_text}\": {error} (six fields, seconds first)"),
            )
        })
        .ok()?;
    Some(ReconcileConfig {
        window,
        schedule,
        schedule_text,
    })
}

/// The OAuth2 refresh-token settings: all three of client_id, client_secret and
/// refresh_token, or none. Returns the grant and whether some but not all were given.
fn validate_oauth(
    key: &str,
    raw: &RawSource,
    preset: &presets::PresetInfo,
    problems: &mut Problems,
) -> (Option<OAuthConfig>, bool) {
    let client_id = raw.client_id.clone().filter(|id| !id.is_empty());
    let client_secret = raw
        .client_secret
        .clone()
        .filter(|secret| !secret.is_empty());
    let refresh_token = raw
        .refresh_token
        .clone()
        .filter(|secret| !secret.is_empty());
    let given = [
        ("client_id", client_id.is_some()),
        ("client_secret", client_secret.is_some()),
        ("refresh_token", refresh_token.is_some()),
    ];
    if given.iter().all(|(_, present)| !present) {
        if raw.token_url.is_some() {
            problems.add(
                format!("{key}.token_url"),
                "is only used with client_id, client_secret and refresh_token",
            );
        }
        return (None, false);
    }
    let token_text = match (raw.token_url.as_deref(), preset.token_url) {
        (Some(url), _) => url,
        (None, Some(default)) => default,
        (None, None) if raw.kind == "http" => {
            problems.add(
                format!("{key}.token_url"),
                "is required with client_id, client_secret and refresh_token (the API's OAuth2 token endpoint)",
            );
            return (None, true);
        }
        (None, None) => {
            problems.add(
                format!("{key}.client_id"),
                format!(
                    "kind \"{}\" does not use OAuth2; remove client_id, client_secret and refresh_token",
                    raw.kind
                ),
            );
            return (None, true);
        }
    };
    let missing: Vec<&str> = given
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    for name in &missing {
        problems.add(
            format!("{key}.{name}"),
            "is required with the other OAuth2 settings (client_id, client_secret, refresh_token)",
        );
    }
    let token_url = match reqwest::Url::parse(token_text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        _ => {
            problems.add(
                format!("{key}.token_url"),
                format!("\"{token_text}\" is not an http(s) URL"),
            );
            None
        }
    };
    match (client_id, client_secret, refresh_token, token_url) {
        (Some(client_id), Some(client_secret), Some(refresh_token), Some(token_url)) => (
            Some(OAuthConfig {
                token_url,
                client_id,
                client_secret,
                refresh_token,
            }),
            false,
        ),
        _ => (None, true),
    }
}

/// The CSV settings: exactly one of path and url, typed columns, the key, the separator.
fn validate_csv(key: &str, raw: &RawSource, problems: &mut Problems) -> Option<CsvConfig> {
    let before = problems.0.len();
    let location = match (&raw.path, &raw.url) {
        // Relative to the working directory at load, made absolute now so a later change
        // of directory cannot move the file.
        (Some(path), None) => match std::path::absolute(PathBuf::from(path)) {
            Ok(path) if !path.as_os_str().is_empty() => Some(CsvLocation::Path(path)),
            _ => {
                problems.add(
                    format!("{key}.path"),
                    format!("\"{path}\" is not a usable file path"),
                );
                None
            }
        },
        (None, Some(url)) => match reqwest::Url::parse(url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(CsvLocation::Url(url)),
            _ => {
                problems.add(
                    format!("{key}.url"),
                    format!("\"{url}\" is not an http(s) URL"),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            problems.add(format!("{key}.url"), "give either path or url, not both");
            None
        }
        (None, None) => {
            problems.add(
                format!("{key}.path"),
                "is required for kind \"csv\" (or url for a file served over HTTP)",
            );
            None
        }
    };
    let mut columns = BTreeMap::new();
    for (name, text) in raw.columns.iter().flatten() {
        let kind = match text.as_str() {
            "string" => CsvColumnType::String,
            "integer" => CsvColumnType::Integer,
            "number" => CsvColumnType::Number,
            "boolean" => CsvColumnType::Boolean,
            "date" => CsvColumnType::Date,
            "datetime" => CsvColumnType::Datetime,
            other => {
                problems.add(
                    format!("{key}.columns.{name}"),
                    format!("unknown column type \"{other}\" (string, integer, number, boolean, date, datetime)"),
                );
                continue;
            }
        };
        columns.insert(name.clone(), kind);
    }
    let key_columns = raw.key.clone().unwrap_or_default();
    if key_columns.is_empty() {
        problems.add(
            format!("{key}.key"),
            "is required for kind \"csv\": the column(s) that identify a row, e.g. key = [\"order_id\"]",
        );
    }
    let delimiter = match raw.delimiter.as_deref() {
        None => b',',
        Some("\\t") | Some("\t") => b'\t',
        Some(text) if text.len() == 1 && text.is_ascii() => text.as_bytes()[0],
        Some(text) => {
            problems.add(
                format!("{key}.delimiter"),
                format!("\"{text}\" is not one ASCII character (\",\", \";\", \"\\t\")"),
            );
            b','
        }
    };
    if problems.0.len() > before {
        return None;
    }
    Some(CsvConfig {
        location: location?,
        columns,
        key: key_columns,
        delimiter,
    })
}

fn validate_objectives(
    raw: BTreeMap<String, RawObjective>,
    problems: &mut Problems,
) -> BTreeMap<String, ObjectiveConfig> {
    let ids: BTreeSet<String> = raw.keys().cloned().collect();
    let mut objectives = BTreeMap::new();
    for (id, objective) in raw {
        let key = format!("objectives.{id}");
        let Some(perspective) = Perspective::parse(&objective.perspective) else {
            problems.add(
                format!("{key}.perspective"),
                bad_perspective(&objective.perspective),
            );
            continue;
        };
        for driver in &objective.drivers {
            if !ids.contains(driver) {
                problems.add(
                    format!("{key}.drivers"),
                    format!("names no objective \"{driver}\""),
                );
            }
        }
        objectives.insert(
            id.clone(),
            ObjectiveConfig {
                name: objective.name.unwrap_or(id),
                perspective,
                drivers: objective.drivers,
            },
        );
    }
    objectives
}

fn bad_perspective(text: &str) -> String {
    format!("unknown perspective \"{text}\" (financial, customer, internal or learning)")
}

fn compile(key: &str, source: &str, problems: &mut Problems) -> Option<Expr> {
    Expr::parse(source)
        .map_err(|error| problems.add(key, format!("invalid CEL expression \"{source}\": {error}")))
        .ok()
}

fn validate_measures(
    raw: BTreeMap<String, RawMeasure>,
    sources: &BTreeMap<String, SourceConfig>,
    declared: &BTreeSet<String>,
    objectives: &BTreeMap<String, ObjectiveConfig>,
    problems: &mut Problems,
) -> Vec<MeasureConfig> {
    let mut measures: BTreeMap<String, MeasureConfig> = BTreeMap::new();
    for (id, measure) in &raw {
        let key = format!("measures.{id}");
        let before = problems.0.len();
        let perspective = Perspective::parse(&measure.perspective);
        if perspective.is_none() {
            problems.add(
                format!("{key}.perspective"),
                bad_perspective(&measure.perspective),
            );
        }
        let period = PeriodKind::parse(&measure.period);
        if period.is_none() {
            problems.add(
                format!("{key}.period"),
                format!(
                    "unknown period \"{}\" (day, week, month, quarter or year)",
                    measure.period
                ),
            );
        }
        if let Some(objective) = &measure.objective
            && !objectives.contains_key(objective)
        {
            problems.add(
                format!("{key}.objective"),
                format!(
                    "names no objective \"{objective}\" (declare it under [objectives.{objective}])"
                ),
            );
        }
        let target = measure
            .target
            .as_ref()
            .and_then(|raw| validate_target(&key, raw, problems));
        let kind = match &measure.formula {
            Some(formula) => validate_formula(&key, measure, formula, &raw, problems),
            None => validate_record_measure(&key, measure, sources, declared, problems)
                .map(MeasureKind::Records),
        };
        if problems.0.len() > before {
            continue;
        }
        let (Some(perspective), Some(period), Some(kind)) = (perspective, period, kind) else {
            continue;
        };
        measures.insert(
            id.clone(),
            MeasureConfig {
                id: id.clone(),
                name: measure.name.clone().unwrap_or_else(|| id.clone()),
                perspective,
                period,
                unit: measure.unit.clone(),
                kind,
                target,
                owner: measure.owner.clone(),
                objective: measure.objective.clone(),
                alert: super::alerting::validate_rule(
                    &key,
                    measure.alert_on.as_deref(),
                    measure.evaluate.as_deref(),
                    measure.hold.as_ref(),
                    measure.recovery,
                    measure.forecast,
                    problems,
                ),
            },
        );
    }

    // Formulas combine measures of the same period.
    for measure in measures.values() {
        if let MeasureKind::Formula { inputs, .. } = &measure.kind {
            for input in inputs {
                if let Some(other) = measures.get(input)
                    && other.period != measure.period
                {
                    problems.add(
                            format!("measures.{}.formula", measure.id),
                            format!(
                                "combines measures of different periods: \"{}\" is per {} but \"{input}\" is per {}",
                                measure.id,
                                measure.period.as_str(),
                                other.period.as_str()
                            ),
                        );
                }
            }
        }
    }
    order_measures(measures, problems)
}

fn validate_target(key: &str, raw: &RawTarget, problems: &mut Problems) -> Option<Target> {
    let direction = match raw.direction.as_deref().unwrap_or("up") {
        "up" => Direction::Up,
        "down" => Direction::Down,
        other => {
            problems.add(
                format!("{key}.target.direction"),
                format!(
                    "unknown direction \"{other}\" (up: higher is better; down: lower is better)"
                ),
            );
            return None;
        }
    };
    let target = Target {
        value: raw.value,
        direction,
        warn: raw.warn,
    };
    if let Err(problem) = target.check() {
        problems.add(format!("{key}.target.warn"), problem);
        return None;
    }
    Some(target)
}

fn validate_formula(
    key: &str,
    measure: &RawMeasure,
    formula: &str,
    all: &BTreeMap<String, RawMeasure>,
    problems: &mut Problems,
) -> Option<MeasureKind> {
    for (field, present) in [
        ("from", measure.from.is_some()),
        ("time", measure.time.is_some()),
        ("where", measure.filter.is_some()),
        ("value", measure.value.is_some()),
        ("aggregate", measure.aggregate.is_some()),
    ] {
        if present {
            problems.add(
                format!("{key}.{field}"),
                "cannot be combined with formula (a formula reads other measures, not records)",
            );
        }
    }
    let formula = compile(&format!("{key}.formula"), formula, problems)?;
    let inputs: Vec<String> = formula.variables().to_vec();
    for input in &inputs {
        if !all.contains_key(input) {
            problems.add(
                format!("{key}.formula"),
                format!("references unknown measure \"{input}\""),
            );
        }
    }
    Some(MeasureKind::Formula { formula, inputs })
}

fn validate_record_measure(
    key: &str,
    measure: &RawMeasure,
    sources: &BTreeMap<String, SourceConfig>,
    declared: &BTreeSet<String>,
    problems: &mut Problems,
) -> Option<RecordMeasure> {
    let Some(from) = &measure.from else {
        problems.add(key, "needs either from (with time) or formula");
        return None;
    };
    let (source_name, stream) = match from.split_once('.') {
        Some((source, stream)) => (source.to_string(), stream.to_string()),
        None => {
            problems.add(
                format!("{key}.from"),
                format!("\"{from}\" is not <source>.<stream> (for example stripe.charges)"),
            );
            return None;
        }
    };
    match sources.get(&source_name) {
        Some(source) if !source.streams.contains(&stream) => problems.add(
            format!("{key}.from"),
            format!(
                "source \"{source_name}\" has no stream \"{stream}\" (it syncs: {})",
                source.streams.join(", ")
            ),
        ),
        Some(_) => {}
        None if declared.contains(&source_name) => {}
        None => problems.add(
            format!("{key}.from"),
            format!("names no source \"{source_name}\" (declare it under [sources.{source_name}])"),
        ),
    }
    let Some(time_field) = measure.time.clone() else {
        problems.add(
            format!("{key}.time"),
            "is required: the record field with the event time (for example created)",
        );
        return None;
    };
    let aggregate_text = measure.aggregate.as_deref().unwrap_or("count");
    let aggregate = Aggregate::parse(aggregate_text);
    if aggregate.is_none() {
        problems.add(
            format!("{key}.aggregate"),
            format!("unknown aggregate \"{aggregate_text}\" (count, count_distinct, sum, avg, min, max, median, p90 or last)"),
        );
    }
    let filter = measure
        .filter
        .as_deref()
        .and_then(|text| compile(&format!("{key}.where"), text, problems));
    let value = measure
        .value
        .as_deref()
        .and_then(|text| compile(&format!("{key}.value"), text, problems));
    let aggregate = aggregate?;
    if aggregate != Aggregate::Count && measure.value.is_none() {
        problems.add(
            format!("{key}.value"),
            format!("is required for aggregate \"{}\"", aggregate.as_str()),
        );
    }
    if measure.filter.is_some() && filter.is_none() || measure.value.is_some() && value.is_none() {
        return None;
    }
    Some(RecordMeasure {
        source: source_name,
        stream,
        time_field,
        filter,
        value,
        aggregate,
    })
}

/// Orders measures so every formula follows its inputs; reports cycles.
fn order_measures(
    mut measures: BTreeMap<String, MeasureConfig>,
    problems: &mut Problems,
) -> Vec<MeasureConfig> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        id: &str,
        measures: &BTreeMap<String, MeasureConfig>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        order: &mut Vec<String>,
        problems: &mut Problems,
    ) {
        match marks.get(id) {
            Some(Mark::Done) => return,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|entry| entry == id).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(id.to_string());
                problems.add(
                    format!("measures.{id}.formula"),
                    format!("formula cycle: {}", cycle.join(" → ")),
                );
                return;
            }
            None => {}
        }
        let Some(measure) = measures.get(id) else {
            return;
        };
        marks.insert(id.to_string(), Mark::Visiting);
        stack.push(id.to_string());
        if let MeasureKind::Formula { inputs, .. } = &measure.kind {
            for input in inputs {
                visit(input, measures, marks, stack, order, problems);
            }
        }
        stack.pop();
        marks.insert(id.to_string(), Mark::Done);
        order.push(id.to_string());
    }

    let mut marks = BTreeMap::new();
    let mut order = Vec::new();
    let ids: Vec<String> = measures.keys().cloned().collect();
    for id in &ids {
        visit(
            id,
            &measures,
            &mut marks,
            &mut Vec::new(),
            &mut order,
            problems,
        );
    }
    order
        .into_iter()
        .filter_map(|id| measures.remove(&id))
        .collect()
}
