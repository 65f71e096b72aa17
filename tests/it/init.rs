//! `scorekeeper init`: the command writes a starter that the configuration check accepts,
//! never over an existing file unless told, and the starter's measures read the fields
//! of the recorded API objects under `tests/fixtures/`.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Parser;
use scorekeeper::cli::{Cli, Failure, execute};
use scorekeeper::config::{self, MeasureKind, Settings};
use serde_json::Value;

use crate::helpers::*;

/// `NAME → dummy` for every `${NAME}` the text reads.
fn env_for(text: &str) -> BTreeMap<String, String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(name, _)| (name.to_string(), format!("dummy-{name}")))
        .collect()
}

async fn init(args: &[&str]) -> Result<(), Failure> {
    let cli = Cli::try_parse_from(["scorekeeper"].iter().chain(args)).expect("valid arguments");
    execute(cli).await
}

/// What `scorekeeper check` does with the file: load and validate it.
fn check(path: &Path) -> Settings {
    let text = std::fs::read_to_string(path).expect("the starter was written");
    config::load_with_env(path, &env_for(&text))
        .unwrap_or_else(|error| panic!("check fails on the starter: {error}\n{text}"))
}

#[tokio::test]
async fn init_writes_a_starter_that_passes_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config/scorekeeper.toml");
    let path_text = path.to_str().expect("utf-8 temp path");
    init(&[
        "init",
        "--template",
        "services",
        "--sources",
        "pipedrive,freshdesk",
        "--output",
        path_text,
    ])
    .await
    .unwrap_or_else(|_| panic!("init failed"));
    let settings = check(&path);
    assert_eq!(
        settings.sources.keys().collect::<Vec<_>>(),
        ["freshdesk", "pipedrive"]
    );
    assert!(settings.measure("pipedrive_win_rate").is_some());
    assert!(settings.objectives.contains_key("grow_fee_income"));
}

#[tokio::test]
async fn init_writes_to_the_config_path_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("starter.toml");
    let path_text = path.to_str().expect("utf-8 temp path");
    init(&[
        "--config",
        path_text,
        "init",
        "--template",
        "subscription",
        "--sources",
        "stripe,zendesk",
    ])
    .await
    .unwrap_or_else(|_| panic!("init failed"));
    let settings = check(&path);
    assert!(settings.measure("stripe_subscription_revenue").is_some());
}

#[tokio::test]
async fn init_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("scorekeeper.toml");
    std::fs::write(&path, "# the owner's own configuration\n").expect("write");
    let path_text = path.to_str().expect("utf-8 temp path");
    let args = [
        "init",
        "--template",
        "online-shop",
        "--sources",
        "shopify,zendesk",
        "--output",
        path_text,
    ];
    match init(&args).await {
        Err(Failure::Usage(message)) => {
            assert!(message.contains("exists already"), "{message}");
            assert!(message.contains("--force"), "{message}");
        }
        Err(_) => panic!("expected a usage error"),
        Ok(()) => panic!("an existing file was overwritten"),
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "# the owner's own configuration\n"
    );

    let mut forced = args.to_vec();
    forced.push("--force");
    init(&forced)
        .await
        .unwrap_or_else(|_| panic!("init --force failed"));
    let settings = check(&path);
    assert!(settings.sources.contains_key("shopify"));
}

#[tokio::test]
async fn init_with_missing_sources_is_a_usage_error_naming_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("scorekeeper.toml");
    let path_text = path.to_str().expect("utf-8 temp path");
    let outcome = init(&[
        "init",
        "--template",
        "online-shop",
        "--sources",
        "zendesk",
        "--output",
        path_text,
    ])
    .await;
    match outcome {
        Err(Failure::Usage(message)) => assert!(
            message.contains("needs an orders or payments source"),
            "{message}"
        ),
        _ => panic!("expected a usage error"),
    }
    assert!(!path.exists(), "nothing is written on error");
}

/// The records of a recorded page: the array itself, or the list inside the envelope.
fn records_of(relative: &str) -> Vec<serde_json::Map<String, Value>> {
    let page: Value = serde_json::from_str(&fixture(relative)).expect("fixture is JSON");
    // QuickBooks wraps its query answers once more.
    let page = match page {
        Value::Object(mut envelope) if envelope.contains_key("QueryResponse") => {
            envelope.remove("QueryResponse").expect("checked")
        }
        page => page,
    };
    let list = match page {
        Value::Array(items) => items,
        Value::Object(mut envelope) => [
            "data",
            "orders",
            "tickets",
            "ticket_metrics",
            "satisfaction_ratings",
            "results",
            "Invoices",
            "Payments",
            "Invoice",
            "Payment",
        ]
        .iter()
        .find_map(|key| match envelope.remove(*key) {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{relative}: no record list")),
        other => panic!("{relative}: not a page: {other}"),
    };
    list.into_iter()
        .map(|item| match item {
            Value::Object(record) => record,
            other => panic!("{relative}: not an object: {other}"),
        })
        .collect()
}

/// Every record measure of the starters evaluates on the recorded objects without a
/// problem, and each finds records where the recordings hold matching ones.
#[test]
fn starter_measures_read_the_recorded_api_objects() {
    let fixtures: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::from([
        (
            ("stripe", "charges"),
            vec!["stripe/charges_page_1.json", "stripe/charges_page_2.json"],
        ),
        (("stripe", "refunds"), vec!["stripe/refunds.json"]),
        (
            ("shopify", "orders"),
            vec!["shopify/orders_page_1.json", "shopify/orders_page_2.json"],
        ),
        (
            ("zendesk", "tickets"),
            vec!["zendesk/tickets_page_1.json", "zendesk/tickets_page_2.json"],
        ),
        (
            ("zendesk", "ticket_metrics"),
            vec!["zendesk/ticket_metrics.json"],
        ),
        (
            ("zendesk", "satisfaction_ratings"),
            vec!["zendesk/satisfaction_ratings.json"],
        ),
        (
            ("freshdesk", "tickets"),
            vec![
                "freshdesk/tickets_page_1.json",
                "freshdesk/tickets_page_2.json",
            ],
        ),
        (
            ("freshdesk", "satisfaction_ratings"),
            vec!["freshdesk/satisfaction_ratings.json"],
        ),
        (
            ("hubspot", "deals"),
            vec!["hubspot/deals_page_1.json", "hubspot/deals_page_2.json"],
        ),
        (
            ("quickbooks", "invoices"),
            vec![
                "quickbooks/invoices_page_1.json",
                "quickbooks/invoices_changed.json",
            ],
        ),
        (("quickbooks", "payments"), vec!["quickbooks/payments.json"]),
        (
            ("xero", "invoices"),
            vec!["xero/invoices_page_1.json", "xero/invoices_page_2.json"],
        ),
        (("xero", "payments"), vec!["xero/payments.json"]),
    ]);
    let starters = [
        ("online-shop", "shopify,stripe,zendesk"),
        ("online-shop", "stripe,freshdesk"),
        ("subscription", "stripe,zendesk"),
        ("services", "pipedrive,freshdesk"),
        ("services", "hubspot,quickbooks,zendesk"),
        ("subscription", "stripe,xero,freshdesk"),
    ];
    let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 15).expect("valid date");
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for (template, sources) in starters {
        let sources: Vec<String> = sources.split(',').map(str::to_string).collect();
        let starter = scorekeeper::templates::generate(template, &sources, today)
            .unwrap_or_else(|error| panic!("{template}: {error}"));
        let settings = config::load_str(&starter.text, template, &env_for(&starter.text))
            .unwrap_or_else(|error| panic!("{template}: {error}"));
        for measure in &settings.measures {
            let MeasureKind::Records(record_measure) = &measure.kind else {
                continue;
            };
            let kind = settings.sources[&record_measure.source].kind.as_str();
            let Some(files) = fixtures.get(&(kind, record_measure.stream.as_str())) else {
                continue;
            };
            let count = found.entry(measure.id.clone()).or_default();
            for file in files {
                for record in records_of(file) {
                    match scorekeeper::measures::contribution(
                        record_measure,
                        measure.period,
                        settings.scorecard.timezone,
                        &record,
                    ) {
                        Ok(Some(_)) => *count += 1,
                        Ok(None) => {}
                        Err(problem) => panic!("{}: {file}: {problem}", measure.id),
                    }
                }
            }
        }
    }
    // The recordings hold no cancelled or refunded orders, no solved Zendesk tickets, no
    // escalated resolved Freshdesk ticket and no Xero bill: those measures legitimately
    // find nothing.
    let nothing_to_find = [
        "shopify_cancelled_orders",
        "shopify_refunded_orders",
        "zendesk_reopened_tickets",
        "zendesk_resolution_time",
        "zendesk_solved_tickets",
        "zendesk_solved_by_one_agent",
        "freshdesk_resolved_escalated",
        "xero_bills",
    ];
    let empty: Vec<&String> = found
        .iter()
        .filter(|(id, count)| **count == 0 && !nothing_to_find.contains(&id.as_str()))
        .map(|(id, _)| id)
        .collect();
    assert!(
        empty.is_empty(),
        "measures that find no recorded object: {empty:?} (all: {found:?})"
    );
    assert!(
        found.len() > 20,
        "only {} measures were tried: {found:?}",
        found.len()
    );
}
