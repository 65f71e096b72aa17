use std::collections::BTreeMap;

use super::*;

/// A valid configuration in the shape of DESIGN §2, with `${VAR}` references.
const VALID: &str = r#"
[database]
url = "sqlite://data/test.db"

[server]
listen = "127.0.0.1:8080"
api_token = "${SCOREKEEPER_API_TOKEN}"

[scorecard]
name = "Acme Bakery"
timezone = "Europe/Berlin"
currency = "EUR"

[sources.stripe]
kind = "stripe"
schedule = "0 */15 * * * *"
start_date = "2026-01-01"
api_key = "${STRIPE_API_KEY}"
streams = ["charges", "refunds"]
stale_after = "2h"

[measures.gross_revenue]
name = "Gross revenue"
perspective = "financial"
period = "month"
unit = "EUR"
from = "stripe.charges"
time = "created"
where = "status == 'succeeded'"
value = "amount / 100.0"
aggregate = "sum"

[measures.net_revenue]
name = "Net revenue"
perspective = "financial"
period = "month"
formula = "gross_revenue - refunds"
target = { value = 50000, direction = "up", warn = 45000 }
owner = "finance"
objective = "grow_recurring_revenue"

[measures.refunds]
perspective = "financial"
period = "month"
from = "stripe.refunds"
time = "created"
value = "amount / 100.0"
aggregate = "sum"

[objectives.grow_recurring_revenue]
name = "Grow recurring revenue"
perspective = "financial"
drivers = ["improve_customer_loyalty"]

[objectives.improve_customer_loyalty]
perspective = "customer"
"#;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn base_env() -> BTreeMap<String, String> {
    env(&[
        ("STRIPE_API_KEY", "sk_test_51SecretValue"),
        ("SCOREKEEPER_API_TOKEN", "tok-very-secret"),
    ])
}

fn load(text: &str, env: &BTreeMap<String, String>) -> Result<Settings, ConfigError> {
    load_str(text, "test.toml", env)
}

/// Loads `VALID` with one line replaced, and returns the problems.
fn problems_with(replace: &str, with: &str) -> Vec<String> {
    assert!(
        VALID.contains(replace),
        "test setup: {replace:?} not in VALID"
    );
    let text = VALID.replacen(replace, with, 1);
    load(&text, &base_env())
        .expect_err("configuration should be rejected")
        .problems
}

#[test]
fn valid_configuration_loads_with_real_types() {
    let settings = load(VALID, &base_env()).expect("valid");
    let source = &settings.sources["stripe"];
    assert_eq!(source.kind, SourceKind::Stripe);
    assert_eq!(source.base_url.as_str(), "https://api.stripe.com/");
    assert_eq!(source.streams, ["charges", "refunds"]);
    assert_eq!(source.stale_after, Some(Duration::from_secs(7200)));
    assert_eq!(
        source.api_key.as_ref().map(Secret::expose),
        Some("sk_test_51SecretValue")
    );
    assert_eq!(settings.scorecard.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(settings.database.connect_timeout, Duration::from_secs(30));
    // Formulas come after the measures they read.
    let order: Vec<&str> = settings.measures.iter().map(|m| m.id.as_str()).collect();
    let position = |id: &str| order.iter().position(|m| *m == id).expect("present");
    assert!(position("net_revenue") > position("gross_revenue"));
    assert!(position("net_revenue") > position("refunds"));
    let net = settings.measure("net_revenue").expect("present");
    assert!(
        matches!(&net.kind, MeasureKind::Formula { inputs, .. } if inputs == &["gross_revenue", "refunds"])
    );
}

#[test]
fn each_error_names_its_key_path() {
    let cases = [
        (
            "schedule = \"0 */15 * * * *\"",
            "schedule = \"every day\"",
            "sources.stripe.schedule: invalid cron expression \"every day\"",
        ),
        (
            "kind = \"stripe\"",
            "kind = \"strype\"",
            "sources.stripe.kind: unknown source kind \"strype\"",
        ),
        (
            "from = \"stripe.refunds\"",
            "from = \"stripe.payouts\"",
            "measures.refunds.from: source \"stripe\" has no stream \"payouts\"",
        ),
        (
            "from = \"stripe.refunds\"",
            "from = \"paypal.refunds\"",
            "measures.refunds.from: names no source \"paypal\"",
        ),
        (
            "where = \"status == 'succeeded'\"",
            "where = \"status == \"",
            "measures.gross_revenue.where: invalid CEL expression",
        ),
        (
            "value = \"amount / 100.0\"\naggregate = \"sum\"\n\n[measures.net",
            "value = \"amount / \"\naggregate = \"sum\"\n\n[measures.net",
            "measures.gross_revenue.value: invalid CEL expression",
        ),
        (
            "formula = \"gross_revenue - refunds\"",
            "formula = \"gross_revenue - chargebacks\"",
            "measures.net_revenue.formula: references unknown measure \"chargebacks\"",
        ),
        (
            "timezone = \"Europe/Berlin\"",
            "timezone = \"Europe/Bonn\"",
            "scorecard.timezone: unknown time zone \"Europe/Bonn\"",
        ),
        (
            "start_date = \"2026-01-01\"",
            "start_date = \"01.01.2026\"",
            "sources.stripe.start_date: invalid date",
        ),
        (
            "stale_after = \"2h\"",
            "stale_after = \"two hours\"",
            "sources.stripe.stale_after: invalid duration",
        ),
        (
            "url = \"sqlite://data/test.db\"",
            "url = \"sqlite://data/test.db\"\nconnect_timeout = \"a while\"",
            "database.connect_timeout: invalid duration \"a while\"",
        ),
        (
            "period = \"month\"\nformula",
            "period = \"fortnight\"\nformula",
            "measures.net_revenue.period: unknown period \"fortnight\"",
        ),
        (
            "aggregate = \"sum\"\n\n[measures.net",
            "aggregate = \"mean\"\n\n[measures.net",
            "measures.gross_revenue.aggregate: unknown aggregate \"mean\"",
        ),
        (
            "direction = \"up\"",
            "direction = \"upward\"",
            "measures.net_revenue.target.direction: unknown direction",
        ),
        (
            "warn = 45000",
            "warn = 55000",
            "measures.net_revenue.target.warn: warn (55000) must not be above",
        ),
        (
            "objective = \"grow_recurring_revenue\"",
            "objective = \"grow\"",
            "measures.net_revenue.objective: names no objective \"grow\"",
        ),
        (
            "drivers = [\"improve_customer_loyalty\"]",
            "drivers = [\"nobody\"]",
            "objectives.grow_recurring_revenue.drivers: names no objective \"nobody\"",
        ),
        (
            "listen = \"127.0.0.1:8080\"",
            "listen = \"localhost\"",
            "server.listen: invalid address \"localhost\"",
        ),
        (
            "url = \"sqlite://data/test.db\"",
            "url = \"mysql://x\"",
            "database.url: unsupported database URL",
        ),
    ];
    for (replace, with, expected) in cases {
        let problems = problems_with(replace, with);
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "expected a problem starting with {expected:?}, got {problems:#?}"
        );
    }
}

#[test]
fn formula_cycles_are_rejected_with_the_cycle_spelled_out() {
    let text = VALID.replacen(
        "value = \"amount / 100.0\"\naggregate = \"sum\"\n\n[objectives",
        "formula = \"net_revenue * 0.1\"\n\n[objectives",
        1,
    );
    let text = text.replacen("from = \"stripe.refunds\"\ntime = \"created\"\n", "", 1);
    let problems = load(&text, &base_env()).expect_err("cycle").problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("formula cycle")
                && p.contains("net_revenue → refunds → net_revenue")),
        "{problems:#?}"
    );
    let self_reference = VALID.replacen("gross_revenue - refunds", "net_revenue + 1", 1);
    let problems = load(&self_reference, &base_env())
        .expect_err("self reference")
        .problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("formula cycle: net_revenue → net_revenue")),
        "{problems:#?}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = VALID
        .replacen("schedule = \"0 */15 * * * *\"", "schedule = \"nope\"", 1)
        .replacen(
            "where = \"status == 'succeeded'\"",
            "where = \"status ==\"",
            1,
        )
        .replacen("gross_revenue - refunds", "gross - refunds", 1);
    let error = load(&text, &base_env()).expect_err("three problems");
    assert!(error.problems.len() >= 3, "{:#?}", error.problems);
    let shown = error.to_string();
    assert!(
        shown.contains("sources.stripe.schedule")
            && shown.contains("measures.gross_revenue.where")
            && shown.contains("measures.net_revenue.formula"),
        "{shown}"
    );
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let problems = problems_with("stale_after = \"2h\"", "stale_afterr = \"2h\"");
    assert!(
        problems[0].starts_with("sources.stripe.stale_afterr: unknown field `stale_afterr`"),
        "{problems:?}"
    );
    let problems = problems_with("[scorecard]", "[scorecards]\nname = \"x\"\n[scorecard]");
    assert!(
        problems[0].contains("unknown field `scorecards`"),
        "{problems:?}"
    );
}

#[test]
fn missing_environment_variable_names_the_key() {
    let error =
        load(VALID, &env(&[("SCOREKEEPER_API_TOKEN", "t")])).expect_err("no STRIPE_API_KEY");
    assert_eq!(
        error.problems,
        [
            "sources.stripe.api_key: environment variable STRIPE_API_KEY is not set (referenced as ${STRIPE_API_KEY})"
        ]
    );
}

#[test]
fn environment_overrides_the_file() {
    let mut env = base_env();
    env.insert(
        "SCOREKEEPER__SOURCES__STRIPE__SCHEDULE".into(),
        "0 0 * * * *".into(),
    );
    env.insert("SCOREKEEPER__SCORECARD__NAME".into(), "Overridden".into());
    env.insert(
        "SCOREKEEPER__SERVER__LISTEN".into(),
        "127.0.0.1:9999".into(),
    );
    let settings = load(VALID, &env).expect("valid");
    assert_eq!(settings.sources["stripe"].schedule_text, "0 0 * * * *");
    assert_eq!(settings.scorecard.name, "Overridden");
    assert_eq!(settings.server.listen.port(), 9999);
    // An override can itself reference a variable.
    env.insert(
        "SCOREKEEPER__SOURCES__STRIPE__API_KEY".into(),
        "${OTHER_KEY}".into(),
    );
    env.insert("OTHER_KEY".into(), "sk_test_other".into());
    let settings = load(VALID, &env).expect("valid");
    assert_eq!(
        settings.sources["stripe"]
            .api_key
            .as_ref()
            .map(Secret::expose),
        Some("sk_test_other")
    );
}

#[test]
fn debug_output_never_contains_a_secret() {
    let mut env = base_env();
    env.insert(
        "SCOREKEEPER__DATABASE__URL".into(),
        "postgres://app:db-password-123@localhost/sk".into(),
    );
    let settings = load(VALID, &env).expect("valid");
    let shown = format!("{settings:?}");
    for secret in settings.secrets() {
        assert!(
            !shown.contains(secret.expose()),
            "secret leaked in Debug output"
        );
    }
    assert!(
        !shown.contains("db-password-123")
            && !shown.contains("sk_test_51SecretValue")
            && !shown.contains("tok-very-secret")
    );
    assert_eq!(settings.secrets().len(), 3);
}

#[test]
fn a_slack_webhook_url_never_shows_in_debug_output() {
    let text = format!(
        "{VALID}\n[notify.team]\nkind = \"webhook\"\nformat = \"slack\"\nurl = \"https://hooks.slack.com/services/T000/B000/XXXXsecretpath\"\n"
    );
    let settings = load(&text, &base_env()).expect("valid");
    let shown = format!("{settings:?}");
    assert!(!shown.contains("XXXXsecretpath"), "{shown}");
    assert!(shown.contains("https://hooks.slack.com/***"));
}

#[test]
fn a_missing_file_says_how_to_point_at_one() {
    let error = load_with_env(Path::new("/nonexistent/scorekeeper.toml"), &base_env())
        .expect_err("missing");
    assert!(
        error.to_string().contains("configuration file not found"),
        "{error}"
    );
}

#[test]
fn shipped_configurations_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut env = base_env();
    env.insert("WEBHOOK_SECRET".into(), "whsec_x".into());
    env.insert("SMTP_PASSWORD".into(), "pw".into());
    env.insert("ZENDESK_API_TOKEN".into(), "zd".into());
    env.insert("SHOPIFY_ACCESS_TOKEN".into(), "shpat".into());
    env.insert("FRESHDESK_API_KEY".into(), "fd".into());
    env.insert("PIPEDRIVE_API_TOKEN".into(), "pd".into());
    for entry in std::fs::read_dir(&root).expect("config folder exists") {
        let path = entry.expect("readable").path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            load_with_env(&path, &env)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        }
    }
}

/// The commented source examples in the shipped file stay valid: uncommented, they load.
#[test]
fn the_commented_source_examples_are_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scorekeeper.toml");
    let text = std::fs::read_to_string(&path).expect("shipped config");
    let start = text
        .find("# --- More sources")
        .expect("the examples section");
    let end = start + text[start..].find("\n\n").expect("the section ends");
    let examples: String = text[start..end]
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|line| line.starts_with('[') || line.contains(" = "))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut env = base_env();
    for name in [
        "HUBSPOT_ACCESS_TOKEN",
        "QBO_REALM_ID",
        "QBO_CLIENT_ID",
        "QBO_CLIENT_SECRET",
        "QBO_REFRESH_TOKEN",
        "XERO_TENANT_ID",
        "XERO_CLIENT_ID",
        "XERO_CLIENT_SECRET",
        "XERO_REFRESH_TOKEN",
        "MOODLE_TOKEN",
        "TALENTLMS_API_KEY",
        "LMS_TOKEN",
    ] {
        env.insert(name.into(), "x".into());
    }
    let settings = load_str(
        &format!("[scorecard]\nname = \"x\"\ntimezone = \"UTC\"\n{examples}"),
        "examples",
        &env,
    )
    .unwrap_or_else(|error| panic!("{error}\n{examples}"));
    let mut kinds: Vec<&str> = settings
        .sources
        .values()
        .map(|source| source.kind.as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "csv",
            "http",
            "hubspot",
            "moodle",
            "quickbooks",
            "talentlms",
            "xero"
        ]
    );
    assert_eq!(settings.sources.len(), 7, "{examples}");
}

/// The commented alert examples in the shipped file load when uncommented.
#[test]
fn the_commented_alert_examples_are_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scorekeeper.toml");
    let text = std::fs::read_to_string(&path).expect("shipped config");
    let start = text.find("# --- Alerts").expect("the alerts section");
    let examples: String = text[start..]
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|line| line.starts_with('[') || line.contains(" = "))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut env = base_env();
    env.insert("SMTP_PASSWORD".into(), "pw".into());
    env.insert(
        "WEBHOOK_SECRET".into(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
    );
    let settings = load_str(
        &format!("[scorecard]\nname = \"x\"\ntimezone = \"UTC\"\n{examples}"),
        "examples",
        &env,
    )
    .unwrap_or_else(|error| panic!("{error}\n{examples}"));
    assert_eq!(settings.notify.len(), 2);
    assert!(settings.smtp.is_some());
    assert_eq!(settings.alerts.repeat.as_secs(), 24 * 3600);
}

/// A configuration with one CSV source whose settings are `settings`.
fn csv_source(settings: &str) -> String {
    format!(
        r#"
[scorecard]
name = "Bakery"
timezone = "UTC"

[sources.pos]
kind = "csv"
schedule = "0 0 * * * *"
{settings}
"#
    )
}

#[test]
fn csv_paths_are_relative_to_the_working_directory_and_become_file_urls() {
    let settings = load(
        &csv_source(
            "path = \"data/pos.csv\"\nkey = [\"id\"]\ncolumns = { total = \"number\" }\ndelimiter = \";\"",
        ),
        &base_env(),
    )
    .expect("valid");
    let source = &settings.sources["pos"];
    let absolute = std::env::current_dir()
        .expect("working directory")
        .join("data/pos.csv");
    assert_eq!(source.kind, SourceKind::Csv);
    assert_eq!(source.streams, ["rows"]);
    assert_eq!(
        source.base_url,
        reqwest::Url::from_file_path(&absolute).expect("absolute")
    );
    let csv = source.csv.as_ref().expect("CSV settings");
    assert!(matches!(&csv.location, CsvLocation::Path(path) if *path == absolute));
    assert_eq!(csv.delimiter, b';');
    assert_eq!(csv.key, ["id"]);
    assert_eq!(csv.columns["total"], CsvColumnType::Number);

    let settings = load(
        &csv_source("url = \"https://example.com/export.csv\"\nkey = [\"id\"]"),
        &base_env(),
    )
    .expect("valid");
    assert_eq!(
        settings.sources["pos"].base_url.as_str(),
        "https://example.com/export.csv"
    );
}

#[test]
fn csv_settings_problems_name_their_keys() {
    let cases = [
        (
            "path = \"a.csv\"\nkey = [\"id\"]\nbase_url = \"https://example.com\"",
            "sources.pos.base_url: is not used by kind \"csv\"; give path or url",
        ),
        (
            "key = [\"id\"]",
            "sources.pos.path: is required for kind \"csv\"",
        ),
        (
            "path = \"a.csv\"\nurl = \"https://example.com/a.csv\"\nkey = [\"id\"]",
            "sources.pos.url: give either path or url, not both",
        ),
        (
            "url = \"ftp://example.com/a.csv\"\nkey = [\"id\"]",
            "sources.pos.url: \"ftp://example.com/a.csv\" is not an http(s) URL",
        ),
        (
            "path = \"a.csv\"",
            "sources.pos.key: is required for kind \"csv\"",
        ),
        (
            "path = \"a.csv\"\nkey = [\"id\"]\ncolumns = { total = \"money\" }",
            "sources.pos.columns.total: unknown column type \"money\"",
        ),
    ];
    for (settings, expected) in cases {
        let problems = load(&csv_source(settings), &base_env())
            .expect_err(settings)
            .problems;
        assert!(
            problems.iter().any(|problem| problem.starts_with(expected)),
            "{settings}: {problems:?}"
        );
    }
}

/// A minimal configuration with this `[smtp]` body after host and from.
fn with_smtp(smtp: &str) -> String {
    format!(
        "[database]\nurl = \"sqlite://x.db\"\n\n[scorecard]\nname = \"S\"\ntimezone = \"UTC\"\n\n[smtp]\nhost = \"smtp.example.com\"\nfrom = \"Alerts <alerts@example.com>\"\n{smtp}\n"
    )
}

#[test]
fn smtp_timeout_and_ca_file_are_read_with_defaults() {
    let settings = load(&with_smtp(""), &base_env()).expect("valid");
    let smtp = settings.smtp.expect("[smtp]");
    assert_eq!((smtp.tls, smtp.port), (SmtpTls::Starttls, 587));
    assert_eq!(smtp.timeout, Duration::from_secs(30));
    assert_eq!(smtp.ca_file, None);

    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp/ca.pem");
    let text = with_smtp(&format!(
        "tls = \"tls\"\ntimeout = \"45s\"\nca_file = \"{}\"",
        ca.display()
    ));
    let smtp = load(&text, &base_env())
        .expect("valid")
        .smtp
        .expect("[smtp]");
    assert_eq!((smtp.tls, smtp.port), (SmtpTls::Tls, 465));
    assert_eq!(smtp.timeout, Duration::from_secs(45));
    assert_eq!(smtp.ca_file.as_deref(), Some(ca.as_path()));
}

#[test]
fn smtp_timeout_and_ca_file_problems_name_their_keys() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp/ca.pem");
    let cases = [
        (
            "timeout = \"soon\"".to_string(),
            "smtp.timeout: invalid duration \"soon\"".to_string(),
        ),
        (
            "timeout = \"0s\"".to_string(),
            "smtp.timeout: must be longer than 0s".to_string(),
        ),
        (
            "ca_file = \"/nonexistent/ca.pem\"".to_string(),
            "smtp.ca_file: \"/nonexistent/ca.pem\": cannot be read".to_string(),
        ),
        (
            format!("ca_file = \"{}\"", manifest.display()),
            format!(
                "smtp.ca_file: \"{}\": holds no \"BEGIN CERTIFICATE\" block",
                manifest.display()
            ),
        ),
        (
            format!("tls = \"none\"\nca_file = \"{}\"", ca.display()),
            "smtp.ca_file: is only used with tls = \"starttls\" or \"tls\"".to_string(),
        ),
    ];
    for (smtp, expected) in cases {
        let problems = load(&with_smtp(&smtp), &base_env())
            .expect_err(&smtp)
            .problems;
        assert!(
            problems
                .iter()
                .any(|problem| problem.starts_with(&expected)),
            "{smtp}: {problems:?}"
        );
    }
}
