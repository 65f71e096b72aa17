//! The API contract: the served OpenAPI document against the router and against real
//! responses.
//!
//! `every_route_is_documented_and_answers` keeps the document honest about the routes:
//! the routes in `src/http/` (read from the source, where `router()` declares them), the
//! [`ROUTES`] this file exercises, and the document's operations must be the same set,
//! and each listed route must answer through its handler (not the 404 fallback or a 405).
//!
//! `every_response_matches_the_served_document` starts the daemon on a database synced
//! from wiremock (charges over 40 days, a source that fails, alerts fired and delivered,
//! a silence, a strategy map with evidence and with "not enough data"), calls every
//! endpoint with good and bad requests (401 without or with a wrong token, 403 with
//! writes off, 404, 400, 405, 409, 413, and 500 and 503 after tables are dropped under
//! the daemon), and validates each answer against the schema the served document declares
//! for its path, method, status and media type.
//!
//! The schema check runs in Python (`jsonschema`, Draft 2020-12 as OpenAPI 3.1 uses, and
//! `openapi-spec-validator`, which also checks the document itself), installed by
//! `.ci/run` and required there by `SCOREKEEPER_TEST_OPENAPI=1`; without them the test
//! prints a skip for that part and keeps its own checks (declared status, media type,
//! `WWW-Authenticate`). The same path as the Prometheus and Standard Webhooks checks:
//! no build cost, and reference implementations. (The Rust `jsonschema` crate would add
//! its dependency tree to every test build, and would not check the document against the
//! OpenAPI 3.1 specification by itself.) The check is strict: objects may carry no field
//! the document does not declare, and deliberately broken answers ("mutants") must fail.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::*;

mod contract;
mod fuzz;
mod validate;

/// Every route of the router, as (method, path template). Keep in step with
/// `src/http/mod.rs`: the test fails if the two differ, or the document differs.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/scorecard"),
    ("get", "/api/v1/measures"),
    ("get", "/api/v1/measures/{id}/series"),
    ("get", "/api/v1/alerts"),
    ("post", "/api/v1/alerts/{id}/silence"),
    ("get", "/api/v1/sources"),
    ("get", "/api/v1/strategy-map"),
    ("post", "/api/v1/sources/{name}/sync"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/assets/{version}/{file}"),
    ("get", "/api/v1/events"),
];

/// The bearer token of the contract app.
pub(super) const TOKEN: &str = "contract-token-1";

/// (method, path) of every operation in the document.
pub(super) fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                operations.insert((method.clone(), path.clone()));
            }
        }
    }
    operations
}

/// (method, path) of every `.route("PATH", METHOD(...))` in `src/http/`, read from the
/// source: axum cannot list a router's routes.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = vec![folder];
    let mut routes = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read src/http") {
                files.push(entry.expect("a directory entry").path());
            }
            continue;
        }
        if path.extension().is_none_or(|extension| extension != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        // Unit tests build routers of their own; only the code before them serves.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for composed in [".nest(", ".nest_service(", ".merge(", ".route_service("] {
            assert!(
                !text.contains(composed),
                "{}: {composed} composes routes this test cannot see; teach it",
                path.display()
            );
        }
        let calls: Vec<&str> = text.split(".route(").skip(1).collect();
        for call in calls {
            let Some(rest) = call.trim_start().strip_prefix('"') else {
                continue;
            };
            let (route, handlers) = rest.split_once('"').expect("a closed path literal");
            // The method routers chained on this route, up to the next builder call.
            let handlers = handlers
                .split([';'])
                .next()
                .unwrap_or_default()
                .split(".fallback(")
                .next()
                .unwrap_or_default();
            let mut found = false;
            for method in ["get", "post", "put", "delete", "patch"] {
                let call = format!("{method}(");
                if handlers.match_indices(&call).any(|(index, _)| {
                    index == 0
                        || !handlers[..index].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                }) {
                    routes.insert((method.to_string(), route.to_string()));
                    found = true;
                }
            }
            assert!(found, "{}: no method for route {route}", path.display());
        }
    }
    routes
}

#[tokio::test]
async fn every_route_is_documented_and_answers() {
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(
        routes_in_source(),
        listed,
        "the routes in src/http/ and this test's ROUTES differ"
    );

    let db = TestDb::sqlite();
    let stripe = MockServer::start().await;
    let text = stripe_config(&db.url, &stripe.uri(), "").replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\napi_token = \"{TOKEN}\""),
    );
    let app = spawn_app(settings(&text, GOOD_KEY)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let response = client
        .get(format!("http://{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .expect("the document");
    assert_eq!(response.status().as_u16(), 200);
    let document: Value = serde_json::from_str(&response.text().await.expect("a body"))
        .expect("the document is JSON");
    assert_eq!(
        documented(&document),
        listed,
        "the document's operations and the router's routes differ"
    );

    // Each route answers through its own handler: not the fallback, not a 405.
    for (method, route) in ROUTES {
        let path = route
            .replace("{id}", "gross_revenue")
            .replace("{name}", "nope")
            .replace("{version}", "0")
            .replace("{file}", "app.js");
        let url = format!("http://{}{path}", app.address);
        let request = match *method {
            "get" => client.get(&url),
            "post" => client
                .post(&url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(json!({"for": "1h"}).to_string()),
            other => panic!("no request for {other}"),
        };
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        if *route == "/api/v1/events" {
            // A stream that stays open: its status and type show the handler answered.
            assert_eq!(status, 200, "{method} {path}");
            let media = response.headers()["content-type"]
                .to_str()
                .unwrap_or_default();
            assert_eq!(media, "text/event-stream", "{method} {path}");
            continue;
        }
        let body = response.text().await.expect("a body");
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("no such endpoint"),
            "{method} {path} reached the fallback: {body}"
        );
    }
    // And a path no route has reaches the fallback (the check above can fail).
    let response = client
        .get(format!("http://{}/api/v1/nothing-here", app.address))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 404);
    assert!(
        response
            .text()
            .await
            .expect("a body")
            .contains("no such endpoint")
    );
    app.stop().await;
}
