//! Secrets never leave: the compiled binary runs `check`, `check --connect`, `sync`,
//! `notify test`, `alerts` and the daemon (`run`, a few ticks) with every log target at
//! `trace` (reqwest, hyper, h2, rustls, sqlx included), against upstreams that echo the
//! whole request (URL, headers, body) back in their error answers, with sources using
//! every kind of credential (bearer, basic, a header, a query key, the OAuth2 refresh flow
//! with a client secret), a Stripe key, an SMTP password (the SMTP server echoes the
//! login in its refusal), a webhook secret, the API token and, when PostgreSQL is
//! available, a database URL with a password. Every output (stdout, stderr, each API
//! answer) is searched for every secret, as configured and as it travels (base64 in
//! Basic auth and SMTP, percent-encoded in a query string).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_scorekeeper");

const STRIPE_KEY: &str = "sk_test_SECRETstripe7Hq2";
const BEARER: &str = "SECRET-bearer-9f8e7d";
const BASIC_USER: &str = "SECRETbasicuser4u";
const BASIC_PASSWORD: &str = "SECRET-basic-pw-2k";
const HEADER_KEY: &str = "SECRET-header-key-5m";
// Characters a query string encodes, so the encoded form is checked too.
const QUERY_KEY: &str = "SECRET/query+key=8z";
const CLIENT_SECRET: &str = "SECRET-client-secret-3c";
const REFRESH_TOKEN: &str = "SECRET-refresh-token-6r";
const ACCESS_TOKEN: &str = "SECRET-access-token-1a";
const ROTATED_REFRESH: &str = "SECRET-rotated-refresh-0b";
const SMTP_PASSWORD: &str = "SECRET-smtp-pw-4s";
const WEBHOOK_KEY_B64: &str = "U0VDUkVUd2ViaG9va2tleUZvclRlc3RpbmcxMjM0NTY=";
const API_TOKEN: &str = "SECRET-api-token-7t";
const PG_PASSWORD: &str = "SECRETpgpassword5p";

/// Every secret, as configured and in the forms it travels in.
fn forbidden() -> Vec<(String, String)> {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let mut list: Vec<(&str, String)> = vec![
        ("stripe key", STRIPE_KEY.into()),
        ("bearer token", BEARER.into()),
        ("basic user", BASIC_USER.into()),
        ("basic password", BASIC_PASSWORD.into()),
        (
            "basic header",
            b64(&format!("{BASIC_USER}:{BASIC_PASSWORD}")),
        ),
        ("header key", HEADER_KEY.into()),
        ("query key", QUERY_KEY.into()),
        ("query key, encoded", "SECRET%2Fquery%2Bkey%3D8z".into()),
        ("client secret", CLIENT_SECRET.into()),
        (
            "client basic header",
            b64(&format!("the-client:{CLIENT_SECRET}")),
        ),
        ("refresh token", REFRESH_TOKEN.into()),
        ("access token", ACCESS_TOKEN.into()),
        ("rotated refresh token", ROTATED_REFRESH.into()),
        ("smtp password", SMTP_PASSWORD.into()),
        (
            "smtp AUTH PLAIN",
            b64(&format!("\0alerts@example.com\0{SMTP_PASSWORD}")),
        ),
        ("smtp password, base64", b64(SMTP_PASSWORD)),
        ("webhook secret", WEBHOOK_KEY_B64.into()),
        ("api token", API_TOKEN.into()),
        ("database password", PG_PASSWORD.into()),
    ];
    // A secret cut short in an excerpt still shows its start.
    list.push(("any secret's prefix", "SECRET".into()));
    list.into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// Answers with `status` and a JSON error whose message repeats the whole request, as a
/// careless (or hostile) API might.
struct Echo(u16);

impl wiremock::Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
            .collect();
        let dump = format!(
            "{} {} | {} | {}",
            request.method,
            request.url,
            headers.join(" | "),
            String::from_utf8_lossy(&request.body)
        );
        let body =
            serde_json::json!({"error": {"message": format!("rejected: {dump}")}, "message": dump});
        ResponseTemplate::new(self.0).set_body_json(body)
    }
}

/// One record per source, dated last month and this month.
fn items() -> ResponseTemplate {
    let now = chrono::Utc::now();
    ResponseTemplate::new(200).set_body_json(serde_json::json!([
        {"id": 1, "amount": 5, "created": (now - chrono::Duration::days(40)).to_rfc3339()},
        {"id": 2, "amount": 7, "created": now.to_rfc3339()},
    ]))
}

async fn mount_api(api: &MockServer) {
    for prefix in ["bearer", "basic", "header", "query", "oauth"] {
        Mock::given(method("GET"))
            .and(path(format!("/{prefix}/items")))
            .respond_with(items())
            .mount(api)
            .await;
    }
    // Every refusal a source can meet, each echoing the request.
    for (prefix, status) in [
        ("bearer", 401),
        ("basic", 403),
        ("header", 400),
        ("query", 404),
        ("oauth", 401),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/{prefix}/denied")))
            .respond_with(Echo(status))
            .mount(api)
            .await;
    }
    Mock::given(method("GET"))
        .and(path_regex("^/v1/"))
        .respond_with(Echo(401))
        .mount(api)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer",
            "refresh_token": ROTATED_REFRESH
        })))
        .mount(api)
        .await;
}

/// A declared source at `{api}/{name}/` with `auth` and the streams `items` and `denied`.
fn declared(name: &str, api: &str, auth: &str, schedule: &str) -> String {
    format!(
        r#"
[sources.{name}]
kind = "http"
schedule = "{schedule}"
base_url = "{api}/{name}/"
{auth}

[sources.{name}.endpoints.items]
path = "items"
key = ["id"]

[sources.{name}.endpoints.denied]
path = "denied"
key = ["id"]

[measures.{name}_amount]
perspective = "financial"
period = "month"
from = "{name}.items"
time = "created"
value = "amount"
aggregate = "sum"
target = {{ value = 1000, direction = "up" }}
"#
    )
}

fn config(database: &str, api: &str, hooks: &str, smtp_port: u16, schedule: &str) -> String {
    let mut text = format!(
        r#"
[database]
url = "{database}"

[server]
listen = "127.0.0.1:0"
api_token = "${{SK_API_TOKEN}}"

[scorecard]
name = "Secret Bakery"
timezone = "UTC"
currency = "EUR"

[sources.stripe]
kind = "stripe"
schedule = "{schedule}"
base_url = "{api}"
api_key = "${{SK_STRIPE}}"
streams = ["charges"]

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
username = "alerts@example.com"
password = "${{SK_SMTP_PASSWORD}}"
from = "Scorekeeper <alerts@example.com>"
timeout = "5s"

[notify.mail]
kind = "email"
to = ["owner@example.com"]

[notify.hook]
kind = "webhook"
url = "{hooks}/hook"
secret = "${{SK_WEBHOOK_SECRET}}"
"#
    );
    text.push_str(&declared(
        "bearer",
        api,
        r#"auth = { kind = "bearer", token = "${SK_BEARER}" }"#,
        schedule,
    ));
    text.push_str(&declared(
        "basic",
        api,
        r#"auth = { kind = "basic", username = "${SK_BASIC_USER}", password = "${SK_BASIC_PASSWORD}" }"#,
        schedule,
    ));
    text.push_str(&declared(
        "header",
        api,
        r#"auth = { kind = "header", name = "X-Api-Key", value = "${SK_HEADER_KEY}" }"#,
        schedule,
    ));
    text.push_str(&declared(
        "query",
        api,
        r#"auth = { kind = "query", name = "api_key", value = "${SK_QUERY_KEY}" }"#,
        schedule,
    ));
    text.push_str(&declared(
        "oauth",
        api,
        &format!(
            "client_id = \"the-client\"\nclient_secret = \"${{SK_CLIENT_SECRET}}\"\nrefresh_token = \"${{SK_REFRESH_TOKEN}}\"\ntoken_url = \"{api}/oauth/token\""
        ),
        schedule,
    ));
    text
}

fn command(config_path: &Path, log_format: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("--config")
        .arg(config_path)
        .args(["--log-format", log_format])
        .args(args)
        .env("RUST_LOG", "trace")
        .env("SK_STRIPE", STRIPE_KEY)
        .env("SK_BEARER", BEARER)
        .env("SK_BASIC_USER", BASIC_USER)
        .env("SK_BASIC_PASSWORD", BASIC_PASSWORD)
        .env("SK_HEADER_KEY", HEADER_KEY)
        .env("SK_QUERY_KEY", QUERY_KEY)
        .env("SK_CLIENT_SECRET", CLIENT_SECRET)
        .env("SK_REFRESH_TOKEN", REFRESH_TOKEN)
        .env("SK_SMTP_PASSWORD", SMTP_PASSWORD)
        .env("SK_WEBHOOK_SECRET", format!("whsec_{WEBHOOK_KEY_B64}"))
        .env("SK_API_TOKEN", API_TOKEN)
        .kill_on_drop(true);
    command
}

/// Runs a one-shot command; returns its exit code and everything it printed.
async fn one_shot(config_path: &Path, log_format: &str, args: &[&str]) -> (i32, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(90),
        command(config_path, log_format, args).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{args:?} finishes within 90 s"))
    .expect("the binary runs");
    let text = format!(
        "$ scorekeeper {}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// An SMTP server that offers AUTH without TLS and refuses every login, quoting the
/// decoded credentials back in its reply.
async fn echoing_smtp_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let handle = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let decode = |text: &str| {
                    base64::engine::general_purpose::STANDARD
                        .decode(text.trim())
                        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
                        .unwrap_or_default()
                };
                let _ = write.write_all(b"220 echo ESMTP\r\n").await;
                let mut login_user = None;
                let mut in_login = false;
                while let Ok(Ok(Some(line))) =
                    tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
                {
                    let upper = line.to_ascii_uppercase();
                    let reply = if upper.starts_with("EHLO") {
                        "250-echo\r\n250 AUTH PLAIN LOGIN\r\n".to_string()
                    } else if let Some(plain) = line.strip_prefix("AUTH PLAIN ") {
                        format!(
                            "535 5.7.8 rejected {} ({})\r\n",
                            decode(plain),
                            plain.trim()
                        )
                    } else if upper.starts_with("AUTH LOGIN") {
                        in_login = true;
                        "334 VXNlcm5hbWU6\r\n".to_string()
                    } else if in_login && login_user.is_none() {
                        login_user = Some(decode(&line));
                        "334 UGFzc3dvcmQ6\r\n".to_string()
                    } else if in_login {
                        in_login = false;
                        format!(
                            "535 5.7.8 rejected {} {} ({})\r\n",
                            login_user.take().unwrap_or_default(),
                            decode(&line),
                            line.trim()
                        )
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        "250 ok\r\n".to_string()
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, handle)
}

/// The daemon for a few ticks: started, every source synced at least twice, every read
/// endpoint fetched, the write endpoints called with the token, a wrong one and none,
/// then SIGTERM. Returns the log and every answer.
async fn run_daemon(config_path: &Path) -> String {
    let mut child = command(config_path, "json", &["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let mut stdout = child.stdout.take().expect("stdout");
    let stdout_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = Vec::new();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            log.push(line.clone());
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["message"] == "Scorekeeper running" {
                return event["address"].as_str().expect("address").to_string();
            }
        }
        panic!("the daemon exited before it was running: {log:#?}");
    })
    .await
    .expect("the daemon starts within 30 s");
    let drain = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });

    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    let mut answers = String::new();
    // Every source has finished a scheduled run (the `sync` before was manual).
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(response) = client.get(format!("{base}/api/v1/sources")).send().await {
                let body: serde_json::Value =
                    serde_json::from_str(&response.text().await.unwrap_or_default())
                        .unwrap_or_default();
                let ready = body.as_array().is_some_and(|sources| {
                    sources.len() == 6
                        && sources.iter().all(|source| {
                            source["last_run"]["trigger"] == "schedule"
                                && source["last_run"]["finished_at"].is_i64()
                        })
                });
                if ready {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .expect("every source syncs within 60 s");
    // Two more ticks (the schedule is every 2 s), so refreshed tokens are used from the store.
    tokio::time::sleep(Duration::from_secs(4)).await;

    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/scorecard",
        "/api/v1/measures",
        "/api/v1/measures/bearer_amount/series",
        "/api/v1/alerts",
        "/api/v1/sources",
        "/api/v1/strategy-map",
        "/api/v1/nothing-here",
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        answers.push_str(&format!(
            "GET {path} -> {status}\n{}\n",
            response.text().await.unwrap_or_default()
        ));
    }
    for token in [Some(API_TOKEN), Some("wrong-token"), None] {
        for (path, body) in [
            ("/api/v1/sources/query/sync", "{}"),
            ("/api/v1/sources/oauth/sync", "{}"),
            ("/api/v1/alerts/bearer_amount/silence", r#"{"for": "1h"}"#),
        ] {
            let mut request = client
                .post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("POST");
            let status = response.status().as_u16();
            answers.push_str(&format!(
                "POST {path} ({}) -> {status}\n{}\n",
                if token.is_some() { "token" } else { "no token" },
                response.text().await.unwrap_or_default()
            ));
        }
    }
    assert!(
        answers.contains("POST /api/v1/sources/query/sync (token) -> 200"),
        "the authorized sync ran: {answers}"
    );

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    log.extend(drain.await.expect("drain"));
    let stdout = stdout_task.await.expect("stdout");
    format!(
        "$ scorekeeper run\n--- stdout\n{stdout}\n--- stderr\n{}\n--- answers\n{answers}",
        log.join("\n")
    )
}

/// The database URL with [`PG_PASSWORD`] as its password when PostgreSQL is available
/// (trust authentication accepts any password), else a SQLite file.
async fn database(dir: &tempfile::TempDir) -> (Option<TestDb>, String) {
    match TestDb::postgres().await {
        Some(db) => {
            let mut url = reqwest::Url::parse(&db.url).expect("PostgreSQL URL");
            url.set_password(Some(PG_PASSWORD)).expect("a password");
            (Some(db), url.to_string())
        }
        None => (
            None,
            format!("sqlite://{}", dir.path().join("sk.db").display()),
        ),
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_output_of_a_full_run() {
    scorekeeper::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let api = MockServer::start().await;
    mount_api(&api).await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Echo(400))
        .mount(&hooks)
        .await;
    let (smtp_port, smtp) = echoing_smtp_server().await;
    let (_db, database) = database(&dir).await;
    let config_path = dir.path().join("scorekeeper.toml");
    let text = config(
        &database,
        &api.uri(),
        &hooks.uri(),
        smtp_port,
        "*/2 * * * * *",
    );
    std::fs::write(&config_path, &text).expect("write config");

    let mut outputs = Vec::new();
    let (code, output) = one_shot(&config_path, "text", &["check"]).await;
    assert_eq!(code, 0, "{output}");
    outputs.push(output);
    let (code, output) = one_shot(&config_path, "json", &["check", "--connect"]).await;
    assert_eq!(code, 1, "the refusing sources fail the check: {output}");
    outputs.push(output);
    let (code, output) = one_shot(&config_path, "text", &["sync"]).await;
    assert_eq!(code, 1, "the denied streams fail: {output}");
    assert!(
        output.contains("bearer.items: 2 records") && output.contains("oauth.items: 2 records"),
        "the good streams synced with their credentials: {output}"
    );
    assert!(
        output.contains("rejected: GET"),
        "the upstream's echo reached the output, scrubbed: {output}"
    );
    outputs.push(output);
    for channel in ["mail", "hook"] {
        let (code, output) = one_shot(&config_path, "text", &["notify", "test", channel]).await;
        assert_eq!(code, 1, "the receivers refuse: {output}");
        outputs.push(output);
    }
    assert!(
        outputs
            .iter()
            .any(|output| output.contains("535 5.7.8 rejected")),
        "the SMTP refusal was reported: {outputs:#?}"
    );
    let (_, output) = one_shot(&config_path, "text", &["alerts"]).await;
    outputs.push(output);
    let (_, output) = one_shot(&config_path, "json", &["scorecard", "--format", "json"]).await;
    outputs.push(output);
    outputs.push(run_daemon(&config_path).await);
    smtp.abort();

    let everything = outputs.join("\n");
    assert!(
        everything.contains("TRACE") || everything.contains("\"level\":\"TRACE\""),
        "trace output was captured"
    );
    let mut leaks = Vec::new();
    for (name, value) in forbidden() {
        for output in &outputs {
            if let Some(line) = output.lines().find(|line| line.contains(&value)) {
                let command = output.lines().next().unwrap_or_default();
                leaks.push(format!("{name} in `{command}`: {line}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
