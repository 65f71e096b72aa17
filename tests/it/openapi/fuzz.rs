//! Schemathesis against the served document: requests generated from the document
//! (valid and invalid parameters and bodies, with and without the token, sequences that
//! follow the document's links), every answer checked for status, media type, headers and
//! schema conformance, no 5xx, invalid input refused and valid input accepted.
//!
//! Runs when the `schemathesis` command is installed (`.ci/run` installs it and requires
//! it with `SCOREKEEPER_TEST_SCHEMATHESIS=1`); prints a skip otherwise. The seed is fixed,
//! so a run is repeatable; a failure prints schemathesis' report with a `curl` line to
//! reproduce it.

use std::time::Duration;

use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer};

use super::TOKEN;
use crate::helpers::*;

/// Requires schemathesis instead of skipping without it.
const REQUIRE_VAR: &str = "SCOREKEEPER_TEST_SCHEMATHESIS";

#[tokio::test]
async fn schemathesis_finds_no_violation_of_the_document() {
    let required = std::env::var_os(REQUIRE_VAR).is_some();
    let probe = tokio::process::Command::new("schemathesis")
        .arg("--version")
        .output();
    match tokio::time::timeout(Duration::from_secs(60), probe).await {
        Ok(Ok(output)) if output.status.success() => {}
        other if required => panic!("{REQUIRE_VAR} is set: schemathesis must be here: {other:?}"),
        other => {
            eprintln!("skipped: schemathesis is not installed (see .ci/run): {other:?}");
            return;
        }
    }
    scorekeeper::tls::install_crypto_provider();
    let db = TestDb::sqlite();
    // Stripe's fixture pages, as often as the generated syncs ask for them.
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(fixture_response("stripe/charges_page_1.json"))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .and(query_param("starting_after", "ch_3Pq3AbCdEfGhIjKlMn"))
        .respond_with(fixture_response("stripe/charges_page_2.json"))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds"))
        .respond_with(fixture_response("stripe/refunds.json"))
        .mount(&stripe)
        .await;
    let text = stripe_config(&db.url, &stripe.uri(), "").replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\napi_token = \"{TOKEN}\""),
    );
    let app = spawn_app(settings(&text, GOOD_KEY)).await;
    assert!(sync_source(&app.services, "stripe").await.is_success());
    // Its reports and example database go to a temp folder, not the repository.
    let dir = tempfile::tempdir().expect("temp dir");
    let run = tokio::process::Command::new("schemathesis")
        .current_dir(dir.path())
        .arg("run")
        .arg(format!("http://{}/api/v1/openapi.json", app.address))
        .args([
            "--checks",
            "all",
            "--max-examples",
            "30",
            "--seed",
            "20261128",
        ])
        .args(["--workers", "1", "--request-timeout", "10", "--no-color"])
        .args(["--generation-database", "none"])
        // The events stream stays open until shutdown: no answer would ever end.
        .args(["--exclude-path", "/api/v1/events"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("schemathesis runs");
    assert!(
        output.status.success(),
        "schemathesis found violations:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    app.stop().await;
}
