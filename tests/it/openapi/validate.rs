//! Recording exchanges with the app, and validating them: the declared status, media type
//! and headers here, the bodies' schemas by `check.py`.

use std::time::Duration;

use serde_json::{Value, json};

/// Requires the Python validator instead of skipping without it.
const REQUIRE_VAR: &str = "SCOREKEEPER_TEST_OPENAPI";

/// One request and its answer, as the validator reads them.
#[derive(serde::Serialize)]
pub struct Exchange {
    /// `get`, `post`.
    pub method: &'static str,
    /// The route template, or `None` for a path or method no route has (validated
    /// against the `ErrorBody` schema).
    pub route: Option<&'static str>,
    /// What was requested.
    pub path: String,
    pub status: u16,
    /// Response headers, names lowercase.
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
    /// A deliberately broken answer: the validator must reject it.
    pub mutant: bool,
}

/// Calls the app and records every exchange.
pub struct Recorder {
    address: std::net::SocketAddr,
    client: reqwest::Client,
    pub exchanges: Vec<Exchange>,
}

/// How a request is sent.
pub enum Send<'a> {
    Get,
    /// A POST with an optional bearer token and a raw JSON body.
    Post {
        token: Option<&'a str>,
        body: Option<String>,
    },
    /// A POST with a raw `Authorization` header.
    PostWithAuthorization(&'a str),
}

impl Recorder {
    pub fn new(address: std::net::SocketAddr) -> Self {
        Self {
            address,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            exchanges: Vec::new(),
        }
    }

    /// Sends, records, and returns the status and the JSON body (`Null` if not JSON).
    pub async fn call(
        &mut self,
        send: Send<'_>,
        route: Option<&'static str>,
        path: &str,
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.address);
        let (method, request) = match send {
            Send::Get => ("get", self.client.get(&url)),
            Send::Post { token, body } => {
                let mut request = self.client.post(&url);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body);
                }
                ("post", request)
            }
            Send::PostWithAuthorization(value) => (
                "post",
                self.client.post(&url).header("authorization", value),
            ),
        };
        let response = request.send().await.expect("request to the app");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    value.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        // An event stream stays open: record its first event only.
        let streaming = response
            .headers()
            .get("content-type")
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        let body = if streaming {
            let mut response = response;
            let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
                .await
                .expect("the stream's first event within 10 s")
                .expect("a chunk")
                .unwrap_or_default();
            String::from_utf8_lossy(&chunk).into_owned()
        } else {
            response.text().await.expect("response body")
        };
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        self.exchanges.push(Exchange {
            method,
            route,
            path: path.to_string(),
            status,
            headers,
            body,
            mutant: false,
        });
        (status, json)
    }

    pub async fn get(&mut self, route: &'static str, path: &str) -> (u16, Value) {
        self.call(Send::Get, Some(route), path).await
    }

    pub async fn post(
        &mut self,
        route: &'static str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|body| body.to_string());
        self.call(Send::Post { token, body }, Some(route), path)
            .await
    }

    /// The last exchange's header.
    pub fn last_header(&self, name: &str) -> Option<&str> {
        self.exchanges
            .last()
            .and_then(|exchange| exchange.headers.get(name))
            .map(String::as_str)
    }
}

/// The media type without parameters, lowercase.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The document declares the exchange's status, media type and headers.
pub fn check_declared(document: &Value, exchange: &Exchange) {
    let what = format!("{} {} {}", exchange.method, exchange.path, exchange.status);
    let content_type = exchange
        .headers
        .get("content-type")
        .map(|value| essence(value));
    let Some(route) = exchange.route else {
        assert_eq!(content_type.as_deref(), Some("application/json"), "{what}");
        return;
    };
    let response =
        &document["paths"][route][exchange.method]["responses"][exchange.status.to_string()];
    assert!(
        response.is_object(),
        "{what}: status not declared for {route}"
    );
    let declared: Vec<String> = response["content"]
        .as_object()
        .map(|content| content.keys().map(|key| essence(key)).collect())
        .unwrap_or_default();
    assert!(
        content_type
            .as_ref()
            .is_some_and(|content_type| declared.contains(content_type)),
        "{what}: {content_type:?} is not among {declared:?}"
    );
    if let Some(headers) = response["headers"].as_object() {
        for name in headers.keys() {
            assert!(
                exchange.headers.contains_key(&name.to_ascii_lowercase()),
                "{what}: declared header {name} missing"
            );
        }
    }
}

/// Answers broken on purpose, each of which the validator must reject: a field of the
/// wrong type, a value outside its enum, a field left out, a field not declared, a
/// status not declared, a declared header left out.
pub fn mutants(exchanges: &[Exchange]) -> Vec<Exchange> {
    // The last of each: the one with the most data.
    let find = |route: &str, status: u16| {
        exchanges
            .iter()
            .rev()
            .find(|exchange| exchange.route == Some(route) && exchange.status == status)
            .unwrap_or_else(|| panic!("an exchange of {route} {status}"))
    };
    let mutate = |exchange: &Exchange, change: &dyn Fn(&mut Value)| {
        let mut body: Value = serde_json::from_str(&exchange.body).expect("a JSON body");
        change(&mut body);
        Exchange {
            method: exchange.method,
            route: exchange.route,
            path: exchange.path.clone(),
            status: exchange.status,
            headers: exchange.headers.clone(),
            body: body.to_string(),
            mutant: true,
        }
    };
    let scorecard = find("/api/v1/scorecard", 200);
    let sources = find("/api/v1/sources", 200);
    let alerts = find("/api/v1/alerts", 200);
    let map = find("/api/v1/strategy-map", 200);
    let unauthorized = find("/api/v1/sources/{name}/sync", 401);
    let mut broken = vec![
        mutate(scorecard, &|body| {
            body["perspectives"][0]["measures"][0]["judged"]["status"] = json!("purple")
        }),
        mutate(scorecard, &|body| body["generated_at"] = json!(12)),
        mutate(sources, &|body| {
            body[0]
                .as_object_mut()
                .expect("a source")
                .remove("next_run");
        }),
        mutate(alerts, &|body| body["alerts"][0]["colour"] = json!("red")),
        mutate(map, &|body| {
            for link in body["links"].as_array_mut().expect("links") {
                if link["best"].is_object() {
                    link["best"]["best"]["lag"] = json!(-1);
                }
            }
        }),
        mutate(unauthorized, &|body| body["error"]["code"] = json!("nope")),
    ];
    let mut undeclared = mutate(find("/healthz", 200), &|_| {});
    undeclared.status = 418;
    broken.push(undeclared);
    let mut no_challenge = mutate(unauthorized, &|_| {});
    no_challenge.headers.remove("www-authenticate");
    broken.push(no_challenge);
    broken
}

/// The Python validator, beside this file.
const VALIDATOR: &str = "tests/it/openapi/check.py";

pub async fn validate_with_python(document: &Value, exchanges: &[Exchange]) {
    let required = std::env::var_os(REQUIRE_VAR).is_some();
    let probe = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import jsonschema, openapi_spec_validator, referencing",
        ])
        .output();
    match tokio::time::timeout(Duration::from_secs(60), probe).await {
        Ok(Ok(output)) if output.status.success() => {}
        other if required => panic!(
            "{REQUIRE_VAR} is set: python3 with jsonschema and openapi-spec-validator must be here: {other:?}"
        ),
        other => {
            eprintln!(
                "skipped the schema validation (pip install jsonschema openapi-spec-validator; see .ci/run): {other:?}"
            );
            return;
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let document_file = dir.path().join("openapi.json");
    let exchanges_file = dir.path().join("exchanges.json");
    std::fs::write(&document_file, document.to_string()).expect("write the document");
    std::fs::write(
        &exchanges_file,
        serde_json::to_vec(exchanges).expect("exchanges as JSON"),
    )
    .expect("write the exchanges");
    let run = tokio::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(VALIDATOR))
        .arg(&document_file)
        .arg(&exchanges_file)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the validator finishes")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the validator failed (is the document valid OpenAPI 3.1?): {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("a JSON report");
    assert_eq!(report["checked"], exchanges.len(), "{report}");
    assert_eq!(report["failures"], json!([]), "{report:#}");
}
