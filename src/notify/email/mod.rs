//! Email delivery: a [`Notification`] rendered as a multipart text + HTML message and
//! sent through the `[smtp]` server with lettre.
//!
//! One connection per delivery (the outbox sends rarely; a pool would only hold idle
//! connections that servers drop). `tls` decides how the connection is secured:
//! `starttls` upgrades a plain connection and refuses to go on when the server does not
//! offer STARTTLS, `tls` speaks TLS from the first byte (SMTPS), `none` is plain text for
//! a relay on the same host or network. Certificates are checked against the Mozilla
//! roots (webpki-roots) plus the PEM roots in `[smtp] ca_file`.
//!
//! The Message-ID is derived from the notification id, so a retried notification is
//! recognisable as the same message. The result is an [`Outcome`]: connection failures,
//! timeouts and SMTP 4xx replies are worth retrying, 5xx replies are not. Errors carry
//! the server's own reply and never the password.
//!
//! This module does not retry, sleep or log: the dispatcher decides what to do with the
//! outcome. References: RFC 5321 (SMTP replies, §4.2), RFC 3207 (STARTTLS), RFC 8314
//! (implicit TLS), RFC 5322 §3.6.4 (Message-ID), RFC 3834 (Auto-Submitted), and lettre's
//! `AsyncSmtpTransport` documentation (docs.rs/lettre/0.11).

mod render;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use render::{Rendered, escape, format_number, format_value, render};

use crate::config::{SmtpConfig, SmtpTls};
use crate::notify::{Notification, Outcome};

/// Renders and sends one notification to `to` through `smtp`, within `smtp.timeout`.
///
/// Never panics. When the returned future is dropped (shutdown), the connection is
/// closed without QUIT and the message may or may not have been accepted; the outbox
/// then sends it again and the receiver sees the same Message-ID.
pub async fn send(smtp: &SmtpConfig, to: &[String], notification: &Notification) -> Outcome {
    crate::tls::install_crypto_provider();
    let rendered = render(notification);
    let message = match build_message(smtp, to, &notification.id, &rendered) {
        Ok(message) => message,
        Err(error) => return Outcome::Failed { error },
    };
    let transport = match transport(smtp).await {
        Ok(transport) => transport,
        Err(error) => return Outcome::Failed { error },
    };
    let server = format!("{}:{}", smtp.host, smtp.port);
    // lettre's timeout bounds the connection and each command; this one bounds the whole
    // conversation, so a server that trickles its replies cannot hold a worker forever.
    match tokio::time::timeout(smtp.timeout, transport.send(message)).await {
        Ok(Ok(_response)) => Outcome::Delivered,
        Ok(Err(error)) => classify(&server, smtp, &error),
        Err(_elapsed) => Outcome::Retry {
            error: format!(
                "SMTP server {server} did not finish the delivery within {}",
                humantime::format_duration(smtp.timeout)
            ),
            after: None,
        },
    }
}

/// The message: From, To, Subject, a Message-ID from the notification id, and a
/// multipart/alternative body (text first, HTML last, as RFC 2046 §5.1.4 orders them).
pub fn build_message(
    smtp: &SmtpConfig,
    to: &[String],
    notification_id: &str,
    rendered: &Rendered,
) -> Result<Message, String> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|error| format!("smtp.from \"{}\" is not a mailbox: {error}", smtp.from))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(rendered.subject.clone())
        .message_id(Some(message_id(notification_id, from.email.domain())))
        .user_agent(format!("scorekeeper/{}", env!("CARGO_PKG_VERSION")))
        // RFC 3834: no vacation auto-replies to alerts.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ));
    if to.is_empty() {
        return Err("the channel has no recipient".to_string());
    }
    for address in to {
        let mailbox: Mailbox = address
            .parse()
            .map_err(|error| format!("recipient \"{address}\" is not an email address: {error}"))?;
        builder = builder.to(mailbox);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(|error| format!("cannot build the email: {error}"))
}

/// `<msg_…@example.com>`: the notification id at the sender's domain (RFC 5322 §3.6.4).
pub fn message_id(notification_id: &str, domain: &str) -> String {
    // The id is ours (`msg_` + base32) but keep the header valid whatever it holds.
    let local: String = notification_id
        .chars()
        .filter(|character| character.is_ascii_alphanumeric() || "_-.".contains(*character))
        .collect();
    format!("<{local}@{domain}>")
}

/// The transport for one delivery.
async fn transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .timeout(Some(smtp.timeout));
    builder = match smtp.tls {
        SmtpTls::None => builder.tls(Tls::None),
        SmtpTls::Starttls => builder.tls(Tls::Required(tls_parameters(smtp).await?)),
        SmtpTls::Tls => builder.tls(Tls::Wrapper(tls_parameters(smtp).await?)),
    };
    if let Some(username) = &smtp.username {
        let password = smtp
            .password
            .as_ref()
            .map(|password| password.expose().to_string())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(username.clone(), password));
    }
    Ok(builder.build())
}

/// Certificate checks against the built-in roots plus `ca_file`.
async fn tls_parameters(smtp: &SmtpConfig) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if let Some(path) = &smtp.ca_file {
        let pem = tokio::fs::read(path)
            .await
            .map_err(|error| format!("smtp.ca_file {}: cannot be read: {error}", path.display()))?;
        let certificate = Certificate::from_pem(&pem).map_err(|error| {
            format!(
                "smtp.ca_file {}: not a PEM certificate: {error}",
                path.display()
            )
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|error| format!("cannot set up TLS for {}: {error}", smtp.host))
}

/// Turns a lettre error into an outcome, with the server's reply and without secrets.
fn classify(server: &str, smtp: &SmtpConfig, error: &lettre::transport::smtp::Error) -> Outcome {
    let detail = redact(&error_chain(error), smtp);
    if let Some(code) = error.status() {
        // lettre's Display is "permanent error (550): <reply>"; say it our way.
        let reply = std::error::Error::source(error)
            .map(|source| redact(&source.to_string(), smtp))
            .unwrap_or_default();
        let reply = format!("{code} {reply}").trim().to_string();
        if error.is_permanent() {
            return Outcome::Failed {
                error: format!("SMTP server {server} refused the message: {reply}"),
            };
        }
        return Outcome::Retry {
            error: format!("SMTP server {server} deferred the message: {reply}"),
            after: None,
        };
    }
    if error.is_timeout() {
        return Outcome::Retry {
            error: format!("SMTP server {server} timed out: {detail}"),
            after: None,
        };
    }
    if let Some(tls_error) = tls_failure(error) {
        // Often a certificate problem that needs a person, but also a relay restarting
        // with a renewed certificate: retried until the outbox gives up.
        let hint = if tls_error.contains("UnknownIssuer") {
            " (a private CA? put its certificate in smtp.ca_file)"
        } else {
            ""
        };
        return Outcome::Retry {
            error: format!("TLS with SMTP server {server} failed: {tls_error}{hint}"),
            after: None,
        };
    }
    if error.is_client() {
        // Raised on our side before anything was accepted: STARTTLS not offered while
        // required, no common AUTH mechanism, an address the client refuses. Retrying
        // the same configuration cannot help.
        return Outcome::Failed {
            error: format!(
                "cannot send through SMTP server {server}: {}",
                detail.trim_start_matches("internal client error: ")
            ),
        };
    }
    Outcome::Retry {
        error: format!("cannot reach SMTP server {server}: {detail}"),
        after: None,
    }
}

/// The TLS error behind a failure, if it is one: lettre reports a failed handshake as
/// a connection error around an `io::Error` around the `rustls::Error`.
fn tls_failure(error: &lettre::transport::smtp::Error) -> Option<String> {
    if error.is_tls() {
        return Some(error_chain(error));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(inner) = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(inner.to_string());
        }
        source = cause.source();
    }
    None
}

/// The error and its sources, `a: b: c`, each part once (lettre nests errors of the
/// same kind, which would print `Connection error: Connection error: ...`).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts
            .last()
            .is_none_or(|last| !last.eq_ignore_ascii_case(part))
        {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// Removes the password, as typed and as AUTH PLAIN/LOGIN send it (base64), should a
/// server echo it back in a reply.
fn redact(text: &str, smtp: &SmtpConfig) -> String {
    use base64::Engine as _;

    let Some(password) = smtp
        .password
        .as_ref()
        .filter(|password| !password.is_empty())
    else {
        return text.to_string();
    };
    let username = smtp.username.as_deref().unwrap_or_default();
    let encoder = base64::engine::general_purpose::STANDARD;
    let forms = [
        encoder.encode(format!("\0{username}\0{}", password.expose())),
        encoder.encode(password.expose()),
        password.expose().to_string(),
    ];
    let mut text = text.to_string();
    for form in forms {
        text = text.replace(&form, "***");
    }
    text
}

#[cfg(test)]
mod tests;
