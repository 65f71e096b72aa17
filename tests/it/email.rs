//! Email delivery against a real SMTP server process: aiosmtpd (from PyPI) driven by
//! `tests/smtp_server.py`, on a free loopback port, in each TLS mode, with and without
//! AUTH, refusing or deferring a recipient; and against a port where nothing listens
//! and a server that never answers.
//!
//! The server parses every message it accepts with Python's `email` package and saves
//! the envelope, decoded headers and decoded MIME parts as JSON, so the assertions read
//! what a mail client would show. Certificates come from the `openssl` CLI: a throwaway
//! CA and a server certificate for 127.0.0.1 that it signs.
//!
//! When aiosmtpd cannot be imported the tests print why and pass, unless
//! `SCOREKEEPER_TEST_SMTP` is set (CI sets it), in which case they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use scorekeeper::config::{self, NotifyKind, SmtpConfig};
use scorekeeper::notify::email::send;
use scorekeeper::notify::{
    AlertEvent, EventKind, MeasureRef, Notification, NotificationKind, Outcome, PeriodRef,
    TargetRef,
};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Set (to anything) where the SMTP tests must run: a missing aiosmtpd is then a failure.
const SMTP_VAR: &str = "SCOREKEEPER_TEST_SMTP";
const USER: &str = "alerts@bakery.test";
const PASSWORD: &str = "smtp-pass-5f8a1c0e";
/// Bounds every wait on a helper process (start-up, openssl).
const PROCESS_WAIT: Duration = Duration::from_secs(30);

/// What the test server saved for one accepted message.
#[derive(Debug, Deserialize)]
struct Saved {
    mail_from: String,
    rcpt_tos: Vec<String>,
    login: Option<String>,
    tls_version: Option<String>,
    content_type: String,
    headers: BTreeMap<String, String>,
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    content_type: String,
    charset: Option<String>,
    body: String,
}

impl Saved {
    fn part(&self, content_type: &str) -> String {
        let part = self
            .parts
            .iter()
            .find(|part| part.content_type == content_type)
            .unwrap_or_else(|| panic!("no {content_type} part in {:?}", self.parts));
        assert_eq!(part.charset.as_deref(), Some("utf-8"), "{content_type}");
        part.body.replace("\r\n", "\n")
    }
}

/// How to start the test server.
#[derive(Default)]
struct ServerOptions<'a> {
    mode: &'a str,
    certs: Option<&'a Certs>,
    auth: bool,
    refuse: Option<&'a str>,
    defer: Option<&'a str>,
}

/// A running `tests/smtp_server.py`. Dropping it kills the process (also when a test
/// panics); the server also exits by itself when its standard input closes.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // SIGKILL now; tokio reaps the process in the background.
        let _ = self.child.start_kill();
    }
}

impl SmtpServer {
    /// Starts the server, or `None` (with the reason printed) when aiosmtpd is missing
    /// and `SCOREKEEPER_TEST_SMTP` is unset.
    async fn start(options: ServerOptions<'_>) -> Option<Self> {
        if !aiosmtpd_available().await {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir for messages");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .arg("--dir")
            .arg(dir.path())
            .arg("--mode")
            .arg(if options.mode.is_empty() {
                "none"
            } else {
                options.mode
            });
        if let Some(certs) = options.certs {
            command
                .arg("--cert")
                .arg(&certs.server_cert)
                .arg("--key")
                .arg(&certs.server_key);
        }
        if options.auth {
            command.arg("--auth").arg(format!("{USER}:{PASSWORD}"));
        }
        if let Some(address) = options.refuse {
            command.arg("--refuse-rcpt").arg(address);
        }
        if let Some(address) = options.defer {
            command.arg("--defer-rcpt").arg(address);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/smtp_server.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Self {
            child,
            port: 0,
            dir,
        };
        // The script prints `READY <port>` once it listens: no sleeping, no port race.
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(PROCESS_WAIT, lines.next_line())
            .await
            .expect("the SMTP server did not say READY in time")
            .expect("read the SMTP server's output")
            .expect("the SMTP server exited before it was ready");
        server.port = line
            .strip_prefix("READY ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP server: {line:?}"));
        Some(server)
    }

    /// Every message the server accepted, in order.
    fn messages(&self) -> Vec<Saved> {
        let mut paths: Vec<(u32, PathBuf)> = std::fs::read_dir(self.dir.path())
            .expect("read the message folder")
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let number = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()?;
                Some((number, path))
            })
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|(_, path)| {
                let text = std::fs::read_to_string(&path).expect("read a saved message");
                serde_json::from_str(&text).expect("a saved message is JSON")
            })
            .collect()
    }
}

/// True when `python3 -c "import aiosmtpd"` works; otherwise prints why and returns
/// false, or fails when `SCOREKEEPER_TEST_SMTP` says the server must be there.
async fn aiosmtpd_available() -> bool {
    let result = tokio::time::timeout(
        PROCESS_WAIT,
        Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdin(Stdio::null())
            .output(),
    )
    .await;
    let reason = match result {
        Ok(Ok(output)) if output.status.success() => return true,
        // The last line of the traceback: `ModuleNotFoundError: No module named 'aiosmtpd'`.
        Ok(Ok(output)) => String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("python3 failed")
            .to_string(),
        Ok(Err(error)) => format!("python3 cannot be started: {error}"),
        Err(_) => "python3 -c 'import aiosmtpd' did not finish in time".to_string(),
    };
    assert!(
        std::env::var_os(SMTP_VAR).is_none(),
        "{SMTP_VAR} is set but aiosmtpd is not usable ({reason}); install it with `python3 -m pip install aiosmtpd`"
    );
    eprintln!(
        "skipping this SMTP test: aiosmtpd is not importable ({reason}); set {SMTP_VAR} to make this a failure"
    );
    false
}

/// A throwaway CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
struct Certs {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl Certs {
    async fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(
            path("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions file");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"][..],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=scorekeeper test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ][..],
            ]
            .concat(),
            [
                &["req"][..],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ][..],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        ];
        for args in steps {
            let output = tokio::time::timeout(
                PROCESS_WAIT,
                Command::new("openssl")
                    .args(&args)
                    .current_dir(dir.path())
                    .stdin(Stdio::null())
                    .output(),
            )
            .await
            .expect("openssl finished in time")
            .expect("the openssl CLI runs (it makes the test certificates)");
            assert!(
                output.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Self {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            _dir: dir,
        }
    }
}

/// `[smtp]` and an email channel, loaded through the real configuration code; returns
/// the SMTP settings and the channel's recipients.
fn smtp_settings(port: u16, smtp_extra: &str) -> (SmtpConfig, Vec<String>) {
    let text = format!(
        r#"
[database]
url = "sqlite://unused.db"

[scorecard]
name = "Demo Bakery"
timezone = "Europe/Berlin"

[smtp]
host = "127.0.0.1"
port = {port}
from = "Scorekeeper <alerts@bakery.test>"
timeout = "10s"
{smtp_extra}

[notify.owner]
kind = "email"
to = ["owner@bakery.test", "finance@bakery.test"]
"#
    );
    let env = BTreeMap::from([("SMTP_PASSWORD".to_string(), PASSWORD.to_string())]);
    let settings = config::load_str(&text, "email-test.toml", &env)
        .unwrap_or_else(|error| panic!("test configuration: {error}"));
    let smtp = settings.smtp.clone().expect("[smtp] is configured");
    let NotifyKind::Email { to, .. } = &settings.notify["owner"].kind else {
        panic!("notify.owner is an email channel");
    };
    (smtp, to.clone())
}

fn notification() -> Notification {
    Notification {
        id: "msg_7m2k9q4x8v1c3b6n5p0r2s4t6w".to_string(),
        kind: NotificationKind::Alerts,
        scorecard: "Demo Bakery".to_string(),
        timezone: "Europe/Berlin".to_string(),
        created_at: "2026-04-01T06:05:00Z".to_string(),
        dashboard_url: Some(
            "https://scorecard.bakery.test/?view=financial&period=2026-03".to_string(),
        ),
        alerts: vec![AlertEvent {
            event: EventKind::Firing,
            measure: Some(MeasureRef {
                id: "net_revenue".to_string(),
                name: "Net revenue <café & bar>".to_string(),
                perspective: "financial".to_string(),
                unit: Some("EUR".to_string()),
                owner: Some("finance".to_string()),
            }),
            source: None,
            period: Some(PeriodRef {
                label: "2026-03".to_string(),
                start: "2026-03-01T00:00:00+01:00".to_string(),
                end: "2026-04-01T00:00:00+02:00".to_string(),
                complete: true,
            }),
            value: Some(38200.0),
            target: Some(TargetRef {
                value: 42000.0,
                direction: "up".to_string(),
                warn: Some(40000.0),
            }),
            status: "red".to_string(),
            previous_status: Some("amber".to_string()),
            forecast: None,
            since: "2026-04-01T06:00:00Z".to_string(),
            at: "2026-04-01T06:05:00Z".to_string(),
        }],
        digest: None,
    }
}

const SUBJECT: &str =
    "[Demo Bakery] Net revenue <café & bar> is red: 38,200 EUR vs target 42,000 (2026-03)";

/// The checks every delivered alert passes, whatever the transport.
fn assert_is_the_alert(saved: &Saved) {
    assert_eq!(saved.mail_from, "alerts@bakery.test");
    assert_eq!(saved.rcpt_tos, ["owner@bakery.test", "finance@bakery.test"]);
    assert_eq!(saved.headers["from"], "Scorekeeper <alerts@bakery.test>");
    assert_eq!(
        saved.headers["to"],
        "owner@bakery.test, finance@bakery.test"
    );
    assert_eq!(saved.headers["subject"], SUBJECT);
    assert_eq!(
        saved.headers["message-id"],
        "<msg_7m2k9q4x8v1c3b6n5p0r2s4t6w@bakery.test>"
    );
    assert_eq!(saved.headers["auto-submitted"], "auto-generated");
    assert!(saved.headers.contains_key("date"), "{:?}", saved.headers);
    assert_eq!(saved.content_type, "multipart/alternative");
    assert_eq!(
        saved
            .parts
            .iter()
            .map(|part| part.content_type.as_str())
            .collect::<Vec<_>>(),
        ["text/plain", "text/html"],
        "text first, HTML last"
    );

    let text = saved.part("text/plain");
    assert!(
        text.contains("* Net revenue <café & bar> is red (was amber)"),
        "{text}"
    );
    assert!(text.contains("Value             38,200 EUR"), "{text}");
    assert!(
        text.contains("Dashboard: https://scorecard.bakery.test/?view=financial&period=2026-03"),
        "{text}"
    );

    let html = saved.part("text/html");
    assert!(
        html.contains("Net revenue &lt;café &amp; bar&gt; is red (was amber)"),
        "{html}"
    );
    assert!(!html.contains("<café"), "unescaped name in {html}");
    assert!(
        html.contains("href=\"https://scorecard.bakery.test/?view=financial&amp;period=2026-03\""),
        "{html}"
    );
}

#[tokio::test]
async fn delivers_a_multipart_alert_over_a_plain_relay() {
    let Some(server) = SmtpServer::start(ServerOptions::default()).await else {
        return;
    };
    let (smtp, to) = smtp_settings(server.port, "tls = \"none\"");

    let outcome = send(&smtp, &to, &notification()).await;

    assert_eq!(outcome, Outcome::Delivered);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_is_the_alert(&messages[0]);
    assert_eq!(messages[0].tls_version, None);
    assert_eq!(messages[0].login, None);
}

#[tokio::test]
async fn a_retried_notification_keeps_its_message_id() {
    let Some(server) = SmtpServer::start(ServerOptions::default()).await else {
        return;
    };
    let (smtp, to) = smtp_settings(server.port, "tls = \"none\"");
    let notification = notification();
    let mut other = notification.clone();
    other.id = "msg_other00000000000000000000".to_string();

    for message in [&notification, &notification, &other] {
        assert_eq!(send(&smtp, &to, message).await, Outcome::Delivered);
    }

    let ids: Vec<String> = server
        .messages()
        .iter()
        .map(|saved| saved.headers["message-id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            "<msg_7m2k9q4x8v1c3b6n5p0r2s4t6w@bakery.test>",
            "<msg_7m2k9q4x8v1c3b6n5p0r2s4t6w@bakery.test>",
            "<msg_other00000000000000000000@bakery.test>",
        ]
    );
}

#[tokio::test]
async fn starttls_with_login_delivers_over_tls() {
    if !aiosmtpd_available().await {
        return;
    }
    let certs = Certs::generate().await;
    let Some(server) = SmtpServer::start(ServerOptions {
        mode: "starttls",
        certs: Some(&certs),
        auth: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (smtp, to) = smtp_settings(
        server.port,
        &format!(
            "tls = \"starttls\"\nusername = \"{USER}\"\npassword = \"${{SMTP_PASSWORD}}\"\nca_file = \"{}\"",
            certs.ca.display()
        ),
    );

    let outcome = send(&smtp, &to, &notification()).await;

    assert_eq!(outcome, Outcome::Delivered);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_is_the_alert(&messages[0]);
    assert!(
        messages[0]
            .tls_version
            .as_deref()
            .is_some_and(|version| version.starts_with("TLSv1.")),
        "{:?}",
        messages[0].tls_version
    );
    assert_eq!(messages[0].login.as_deref(), Some(USER));
}

#[tokio::test]
async fn implicit_tls_with_login_delivers() {
    if !aiosmtpd_available().await {
        return;
    }
    let certs = Certs::generate().await;
    let Some(server) = SmtpServer::start(ServerOptions {
        mode: "tls",
        certs: Some(&certs),
        auth: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (smtp, to) = smtp_settings(
        server.port,
        &format!(
            "tls = \"tls\"\nusername = \"{USER}\"\npassword = \"${{SMTP_PASSWORD}}\"\nca_file = \"{}\"",
            certs.ca.display()
        ),
    );

    let outcome = send(&smtp, &to, &notification()).await;

    assert_eq!(outcome, Outcome::Delivered);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_is_the_alert(&messages[0]);
    assert!(messages[0].tls_version.is_some());
    assert_eq!(messages[0].login.as_deref(), Some(USER));
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_and_nothing_is_sent() {
    if !aiosmtpd_available().await {
        return;
    }
    let certs = Certs::generate().await;
    let Some(server) = SmtpServer::start(ServerOptions {
        mode: "starttls",
        certs: Some(&certs),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    // No ca_file: the throwaway CA is not among the trusted roots.
    let (smtp, to) = smtp_settings(server.port, "tls = \"starttls\"");

    let outcome = send(&smtp, &to, &notification()).await;

    let Outcome::Retry { error, after: None } = &outcome else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert!(
        error.starts_with(&format!(
            "TLS with SMTP server 127.0.0.1:{} failed",
            server.port
        )),
        "{error}"
    );
    assert!(
        error.contains("invalid peer certificate: UnknownIssuer"),
        "{error}"
    );
    assert!(
        error.contains("smtp.ca_file"),
        "says how to fix it: {error}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn starttls_is_required_when_configured_and_the_server_lacks_it() {
    let Some(server) = SmtpServer::start(ServerOptions::default()).await else {
        return;
    };
    let (smtp, to) = smtp_settings(server.port, "tls = \"starttls\"");

    let outcome = send(&smtp, &to, &notification()).await;

    let Outcome::Failed { error } = &outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(error.contains("STARTTLS"), "{error}");
    assert!(
        server.messages().is_empty(),
        "nothing may go out in clear text"
    );
}

#[tokio::test]
async fn a_wrong_password_fails_without_showing_it() {
    if !aiosmtpd_available().await {
        return;
    }
    let certs = Certs::generate().await;
    let Some(server) = SmtpServer::start(ServerOptions {
        mode: "starttls",
        certs: Some(&certs),
        auth: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (mut smtp, to) = smtp_settings(
        server.port,
        &format!(
            "tls = \"starttls\"\nusername = \"{USER}\"\npassword = \"${{SMTP_PASSWORD}}\"\nca_file = \"{}\"",
            certs.ca.display()
        ),
    );
    smtp.password = Some(scorekeeper::secret::Secret::new("wrong-pass-91b2"));

    let outcome = send(&smtp, &to, &notification()).await;

    let Outcome::Failed { error } = &outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(
        error.contains(&format!(
            "SMTP server 127.0.0.1:{} refused the message: 535",
            server.port
        )),
        "{error}"
    );
    assert!(
        error.contains("Authentication credentials invalid"),
        "{error}"
    );
    assert!(
        !error.contains("wrong-pass-91b2") && !error.contains(PASSWORD),
        "{error}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_failure_with_the_servers_reply() {
    let Some(server) = SmtpServer::start(ServerOptions {
        refuse: Some("finance@bakery.test"),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (smtp, to) = smtp_settings(server.port, "tls = \"none\"");

    let outcome = send(&smtp, &to, &notification()).await;

    assert_eq!(
        outcome,
        Outcome::Failed {
            error: format!(
                "SMTP server 127.0.0.1:{} refused the message: 550 5.1.1 <finance@bakery.test>: Recipient address rejected: User unknown",
                server.port
            )
        }
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_deferred_recipient_is_retried() {
    let Some(server) = SmtpServer::start(ServerOptions {
        defer: Some("owner@bakery.test"),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (smtp, to) = smtp_settings(server.port, "tls = \"none\"");

    let outcome = send(&smtp, &to, &notification()).await;

    assert_eq!(
        outcome,
        Outcome::Retry {
            error: format!(
                "SMTP server 127.0.0.1:{} deferred the message: 451 4.3.0 <owner@bakery.test>: Mailbox temporarily unavailable, try later",
                server.port
            ),
            after: None,
        }
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_server_that_is_down_is_retried() {
    // A port that was free a moment ago and has no listener now.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        listener.local_addr().expect("local address").port()
    };
    let (smtp, to) = smtp_settings(port, "tls = \"none\"");

    let outcome = send(&smtp, &to, &notification()).await;

    let Outcome::Retry { error, after: None } = &outcome else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert!(
        error.starts_with(&format!("cannot reach SMTP server 127.0.0.1:{port}")),
        "{error}"
    );
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(
        !error.contains("Connection error: Connection error"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_retried() {
    // Accepts connections and never sends the greeting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let (mut smtp, to) = smtp_settings(port, "tls = \"none\"");
    smtp.timeout = Duration::from_millis(500);

    let outcome = tokio::time::timeout(Duration::from_secs(10), send(&smtp, &to, &notification()))
        .await
        .expect("send gives up by itself within its timeout");
    silent.abort();

    let Outcome::Retry { error, after: None } = &outcome else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(
        error.contains("timed out") || error.contains("did not finish"),
        "{error}"
    );
}
