use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::notify::{
    AlertEvent, Digest, DigestLine, EventKind, ForecastRef, MeasureRef, NotificationKind,
    PeriodRef, SourceRef, TargetRef,
};
use crate::secret::Secret;

fn measure(name: &str, unit: Option<&str>) -> MeasureRef {
    MeasureRef {
        id: "net_revenue".to_string(),
        name: name.to_string(),
        perspective: "financial".to_string(),
        unit: unit.map(str::to_string),
        owner: Some("finance".to_string()),
    }
}

fn march(complete: bool) -> PeriodRef {
    PeriodRef {
        label: "2026-03".to_string(),
        start: "2026-03-01T00:00:00+01:00".to_string(),
        end: "2026-04-01T00:00:00+02:00".to_string(),
        complete,
    }
}

fn target() -> TargetRef {
    TargetRef {
        value: 42000.0,
        direction: "up".to_string(),
        warn: Some(40000.0),
    }
}

fn event(kind: EventKind, status: &str, value: Option<f64>) -> AlertEvent {
    AlertEvent {
        event: kind,
        measure: Some(measure("Net revenue", Some("EUR"))),
        source: None,
        period: Some(march(true)),
        value,
        target: Some(target()),
        status: status.to_string(),
        previous_status: Some("amber".to_string()),
        forecast: None,
        since: "2026-04-01T06:00:00Z".to_string(),
        at: "2026-04-02T06:30:00Z".to_string(),
    }
}

fn forecast_event() -> AlertEvent {
    AlertEvent {
        period: Some(march(false)),
        value: Some(18000.0),
        previous_status: None,
        forecast: Some(ForecastRef {
            value: 36500.0,
            status: "red".to_string(),
            method: "pro_rata".to_string(),
            elapsed: 0.452,
        }),
        ..event(EventKind::Forecast, "red", Some(18000.0))
    }
}

fn stale_event(kind: EventKind) -> AlertEvent {
    AlertEvent {
        event: kind,
        measure: None,
        source: Some(SourceRef {
            name: "stripe".to_string(),
            kind: "stripe".to_string(),
            last_success_at: Some("2026-03-14T08:15:00Z".to_string()),
            last_error: Some("GET https://api.stripe.com/v1/charges: 401 Unauthorized:\nInvalid API Key provided".to_string()),
        }),
        period: None,
        value: None,
        target: None,
        status: "stale".to_string(),
        previous_status: None,
        forecast: None,
        since: "2026-03-14T10:15:00Z".to_string(),
        at: "2026-03-14T10:15:00Z".to_string(),
    }
}

fn notification(kind: NotificationKind, alerts: Vec<AlertEvent>) -> Notification {
    Notification {
        id: "msg_0123456789abcdefghjkmnpqrs".to_string(),
        kind,
        scorecard: "Demo Bakery".to_string(),
        timezone: "Europe/Berlin".to_string(),
        created_at: "2026-04-02T06:30:00Z".to_string(),
        dashboard_url: Some("https://scorecard.example.com/".to_string()),
        alerts,
        digest: None,
    }
}

fn alerts(alerts: Vec<AlertEvent>) -> Rendered {
    render(&notification(NotificationKind::Alerts, alerts))
}

#[test]
fn numbers_are_formatted_for_people() {
    let cases = [
        (38200.0, None, "38,200"),
        (1234567.891, None, "1,234,568"),
        (999.96, None, "1,000"),
        (-4200.0, Some("EUR"), "-4,200 EUR"),
        (42.0, Some("tickets"), "42 tickets"),
        (92.456, Some("%"), "92.46%"),
        (150.26, Some("h"), "150.3 h"),
        (0.5, None, "0.5"),
        (0.0345, None, "0.0345"),
        (0.123456, None, "0.123"),
        (0.0, None, "0"),
        (-0.0001, None, "-0.0001"),
        (1250.0, Some("$"), "$1,250"),
        (-1250.0, Some("€"), "-€1,250"),
        (1000000.0, Some(""), "1,000,000"),
    ];
    for (value, unit, expected) in cases {
        assert_eq!(format_value(value, unit), expected, "{value} {unit:?}");
    }
}

#[test]
fn a_firing_alert_names_the_measure_status_value_target_and_period() {
    let rendered = alerts(vec![event(EventKind::Firing, "red", Some(38200.0))]);
    assert_eq!(
        rendered.subject,
        "[Demo Bakery] Net revenue is red: 38,200 EUR vs target 42,000 (2026-03)"
    );
    let text = &rendered.text;
    for expected in [
        "* Net revenue is red (was amber)",
        "Period            2026-03 (complete)",
        "Value             38,200 EUR",
        "Target            42,000 EUR or more, amber down to 40,000 EUR",
        "Off target since  2026-04-01 08:00 CEST",
        "Perspective       Financial",
        "Owner             finance",
        "Dashboard: https://scorecard.example.com/",
        "Notification msg_0123456789abcdefghjkmnpqrs.",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let html = &rendered.html;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("border-left:4px solid #cf222e"),
        "red block: {html}"
    );
    assert!(
        html.contains("<a href=\"https://scorecard.example.com/\""),
        "{html}"
    );
    assert!(html.contains("38,200 EUR"), "{html}");
    assert!(
        !html.contains("<img") && !html.contains("<script"),
        "{html}"
    );
}

#[test]
fn a_value_below_one_thousand_and_a_missing_value_read_well() {
    let mut alert = event(EventKind::Firing, "amber", Some(87.25));
    alert.measure = Some(measure("On-time delivery", Some("%")));
    alert.target = Some(TargetRef {
        value: 95.0,
        direction: "up".to_string(),
        warn: None,
    });
    assert_eq!(
        alerts(vec![alert.clone()]).subject,
        "[Demo Bakery] On-time delivery is amber: 87.25% vs target 95% (2026-03)"
    );
    alert.value = None;
    assert_eq!(
        alerts(vec![alert]).subject,
        "[Demo Bakery] On-time delivery is amber: no value (2026-03)"
    );
}

#[test]
fn reminders_and_resolutions_say_so() {
    let reminder = alerts(vec![event(EventKind::Reminder, "red", Some(38200.0))]);
    assert_eq!(
        reminder.subject,
        "[Demo Bakery] Reminder: Net revenue is still red: 38,200 EUR vs target 42,000 (2026-03)"
    );
    assert!(
        reminder.text.contains("* Net revenue is still red\n"),
        "{}",
        reminder.text
    );

    let mut resolved = event(EventKind::Resolved, "green", Some(43100.0));
    resolved.previous_status = Some("red".to_string());
    let resolved = alerts(vec![resolved]);
    assert_eq!(
        resolved.subject,
        "[Demo Bakery] Resolved: Net revenue is green: 43,100 EUR vs target 42,000 (2026-03)"
    );
    assert!(
        resolved
            .text
            .contains("* Resolved: Net revenue is green (was red)"),
        "{}",
        resolved.text
    );
    assert!(
        resolved
            .text
            .contains("Resolved at       2026-04-02 08:30 CEST"),
        "{}",
        resolved.text
    );
    assert!(
        resolved.html.contains("border-left:4px solid #1a7f37"),
        "{}",
        resolved.html
    );
}

#[test]
fn a_forecast_gives_the_projection_and_the_period_end() {
    let rendered = alerts(vec![forecast_event()]);
    assert_eq!(
        rendered.subject,
        "[Demo Bakery] Net revenue is forecast to miss its target: 36,500 EUR projected vs target 42,000 by Tue 31 Mar 2026 (2026-03)"
    );
    for expected in [
        "* Net revenue is forecast to miss its target",
        "2026-03 (running, ends Tue 31 Mar 2026)",
        "Value           18,000 EUR",
        "Projected       36,500 EUR at the period's end, red (pro rata, 45% of the period elapsed)",
    ] {
        assert!(
            rendered.text.contains(expected),
            "{expected:?} missing from:\n{}",
            rendered.text
        );
    }

    let mut back = forecast_event();
    back.event = EventKind::ForecastResolved;
    back.forecast = Some(ForecastRef {
        value: 43000.0,
        status: "green".to_string(),
        method: "trend".to_string(),
        elapsed: 0.6,
    });
    assert_eq!(
        alerts(vec![back]).subject,
        "[Demo Bakery] Forecast back on target: Net revenue 43,000 EUR projected vs target 42,000 (2026-03)"
    );
}

#[test]
fn a_stale_source_is_named_with_its_last_error() {
    let rendered = alerts(vec![stale_event(EventKind::Stale)]);
    assert_eq!(
        rendered.subject,
        "[Demo Bakery] Source stripe is stale: no successful sync since 2026-03-14 09:15 CET (last error: GET https://api.stripe.com/v1/charges: 401 Unauthorized: Invalid API Key provid…)"
    );
    assert!(!rendered.subject.contains('\n'));
    for expected in [
        "* Source stripe is stale",
        "Source                stripe (stripe)",
        "Last successful sync  2026-03-14 09:15 CET",
        "Last error            GET https://api.stripe.com/v1/charges: 401 Unauthorized:\n                        Invalid API Key provided\n",
    ] {
        assert!(
            rendered.text.contains(expected),
            "{expected:?} missing from:\n{}",
            rendered.text
        );
    }

    let mut never = stale_event(EventKind::Stale);
    never.source.as_mut().expect("a source").last_success_at = None;
    never.source.as_mut().expect("a source").last_error = None;
    let never = alerts(vec![never]);
    assert_eq!(
        never.subject,
        "[Demo Bakery] Source stripe is stale: no successful sync yet"
    );
    assert!(
        never.text.contains("Last successful sync  never"),
        "{}",
        never.text
    );
    assert!(
        rendered
            .html
            .contains("401 Unauthorized:<br>Invalid API Key provided"),
        "{}",
        rendered.html
    );

    assert_eq!(
        alerts(vec![stale_event(EventKind::StaleResolved)]).subject,
        "[Demo Bakery] Source stripe is syncing again"
    );
}

#[test]
fn no_data_names_the_period() {
    let mut alert = event(EventKind::NoData, "no_data", None);
    alert.period = Some(march(false));
    let rendered = alerts(vec![alert.clone()]);
    assert_eq!(
        rendered.subject,
        "[Demo Bakery] Net revenue has no data for 2026-03"
    );
    assert!(
        rendered.text.contains("Value               no value"),
        "{}",
        rendered.text
    );
    alert.event = EventKind::NoDataResolved;
    assert_eq!(
        alerts(vec![alert]).subject,
        "[Demo Bakery] Net revenue has data again (2026-03)"
    );
}

#[test]
fn several_alerts_get_a_summary_subject_and_one_block_each() {
    let mut other = event(EventKind::Firing, "red", Some(12.0));
    other.measure = Some(measure("New customers", None));
    let rendered = alerts(vec![
        event(EventKind::Firing, "red", Some(38200.0)),
        other,
        event(EventKind::Reminder, "amber", Some(41000.0)),
        forecast_event(),
        stale_event(EventKind::Stale),
        event(EventKind::Resolved, "green", Some(43000.0)),
    ]);
    assert_eq!(
        rendered.subject,
        "[Demo Bakery] 3 measures off target, 1 forecast to miss, 1 source stale, 1 resolved"
    );
    assert_eq!(
        rendered.text.matches("\n* ").count(),
        6,
        "{}",
        rendered.text
    );
    assert!(
        rendered.text.contains("* New customers is red (was amber)"),
        "{}",
        rendered.text
    );
    assert_eq!(
        rendered.html.matches("border-left:4px").count(),
        6,
        "{}",
        rendered.html
    );

    let two = alerts(vec![
        event(EventKind::Firing, "red", Some(1.0)),
        event(EventKind::Resolved, "green", Some(2.0)),
    ]);
    assert_eq!(
        two.subject,
        "[Demo Bakery] 1 measure off target, 1 resolved"
    );
}

#[test]
fn names_from_the_configuration_are_escaped_in_html_and_kept_on_one_line_in_subjects() {
    let mut alert = event(EventKind::Firing, "red", Some(5.0));
    alert.measure = Some(MeasureRef {
        owner: Some("R&D <lab>".to_string()),
        ..measure(
            "<script>alert(\"x\")</script> & 'Co'\nBcc: evil@example.com",
            None,
        )
    });
    let mut notification = notification(NotificationKind::Alerts, vec![alert]);
    notification.scorecard = "Smith & Sons <Bakery>".to_string();
    notification.dashboard_url = Some("https://example.com/?a=1&b=\"2\"".to_string());
    let rendered = render(&notification);
    assert!(!rendered.subject.contains('\n') && !rendered.subject.contains('\r'));
    assert!(
        rendered.subject.starts_with("[Smith & Sons <Bakery>] <script>alert(\"x\")</script> & 'Co' Bcc: evil@example.com is red"),
        "{}",
        rendered.subject
    );
    let html = &rendered.html;
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        !html.contains("<lab>") && !html.contains("<Bakery>"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Co&#39;"),
        "{html}"
    );
    assert!(html.contains("R&amp;D &lt;lab&gt;"), "{html}");
    assert!(
        html.contains("href=\"https://example.com/?a=1&amp;b=&quot;2&quot;\""),
        "{html}"
    );
    // The text part is not HTML: it keeps the names as written.
    assert!(
        rendered.text.contains("Owner             R&D <lab>"),
        "{}",
        rendered.text
    );
}

#[test]
fn without_a_public_url_there_is_no_dashboard_link() {
    let mut notification = notification(
        NotificationKind::Alerts,
        vec![event(EventKind::Firing, "red", Some(1.0))],
    );
    notification.dashboard_url = None;
    let rendered = render(&notification);
    assert!(!rendered.text.contains("Dashboard:"), "{}", rendered.text);
    assert!(!rendered.html.contains("<a "), "{}", rendered.html);
}

#[test]
fn a_test_message_says_what_it_is() {
    let test_event = AlertEvent {
        event: EventKind::Test,
        measure: None,
        source: None,
        period: None,
        value: None,
        target: None,
        status: "none".to_string(),
        previous_status: None,
        forecast: None,
        since: "2026-04-02T06:30:00Z".to_string(),
        at: "2026-04-02T06:30:00Z".to_string(),
    };
    let rendered = render(&notification(NotificationKind::Test, vec![test_event]));
    assert_eq!(
        rendered.subject,
        "[Demo Bakery] Test message from scorekeeper"
    );
    assert!(
        rendered
            .text
            .contains("This is a test message from scorekeeper."),
        "{}",
        rendered.text
    );
    assert!(
        rendered.text.contains("Sent at  2026-04-02 08:30 CEST"),
        "{}",
        rendered.text
    );
    assert!(
        rendered
            .html
            .contains("This is a test message from scorekeeper."),
        "{}",
        rendered.html
    );
}

fn digest_line(name: &str, perspective: &str, status: &str, previous: Option<&str>) -> DigestLine {
    DigestLine {
        measure: MeasureRef {
            perspective: perspective.to_string(),
            ..measure(name, Some("EUR"))
        },
        period: march(true),
        value: Some(38200.0),
        target: Some(target()),
        status: status.to_string(),
        previous_status: previous.map(str::to_string),
        forecast: None,
    }
}

#[test]
fn a_digest_shows_the_scorecard_by_perspective_the_changes_and_the_forecasts() {
    let mut forecast_line = digest_line("Gross revenue", "financial", "green", None);
    forecast_line.period = march(false);
    forecast_line.forecast = Some(ForecastRef {
        value: 36500.0,
        status: "red".to_string(),
        method: "pro_rata".to_string(),
        elapsed: 0.5,
    });
    let mut untargeted = digest_line("Training hours", "learning", "none", None);
    untargeted.target = None;
    untargeted.measure.unit = Some("h".to_string());
    untargeted.value = Some(12.5);
    let mut notification = notification(NotificationKind::Digest, Vec::new());
    notification.digest = Some(Digest {
        since: Some("2026-03-23T07:00:00Z".to_string()),
        lines: vec![
            digest_line("Net revenue", "financial", "red", Some("amber")),
            forecast_line,
            digest_line("Customer satisfaction", "customer", "green", Some("green")),
            untargeted,
        ],
    });
    let rendered = render(&notification);
    assert_eq!(
        rendered.subject,
        "[Demo Bakery] Scorecard digest: 1 red, 2 green, 1 without status, 1 changed, 1 forecast to miss"
    );
    let text = &rendered.text;
    for expected in [
        "4 measures: 1 red, 2 green, 1 without status. Changes since the last digest (2026-03-23 08:00 CET).",
        "Changed status\n--------------\n* Net revenue: amber → red (38,200 EUR vs target 42,000, 2026-03)\n",
        "Forecast to miss\n----------------\n* Gross revenue: 36,500 EUR projected vs target 42,000 by Tue 31 Mar 2026 (2026-03) — red\n",
        "Financial\n---------\nMeasure        Period   Value       Target                                        Status\n",
        "Net revenue    2026-03  38,200 EUR  42,000 EUR or more, amber down to 40,000 EUR  red (was amber)\n",
        "Customer\n--------\n",
        "Customer satisfaction  2026-03  38,200 EUR",
        "Learning & growth\n-----------------\n",
        "Training hours  2026-03  12.5 h  —       without status\n",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // Each perspective once, in scorecard order.
    let financial = text.find("Financial\n").expect("financial");
    let customer = text.find("Customer\n").expect("customer");
    let learning = text.find("Learning & growth\n").expect("learning");
    assert!(financial < customer && customer < learning, "{text}");
    assert_eq!(text.matches("Financial\n").count(), 1, "{text}");

    let html = &rendered.html;
    assert_eq!(html.matches("<h2").count(), 5, "{html}");
    assert!(html.contains("Learning &amp; growth"), "{html}");
    assert!(
        html.contains("color:#cf222e\">red (was amber)</td>"),
        "{html}"
    );
}

#[test]
fn an_empty_digest_says_there_is_nothing() {
    let mut notification = notification(NotificationKind::Digest, Vec::new());
    notification.digest = Some(Digest {
        since: None,
        lines: Vec::new(),
    });
    let rendered = render(&notification);
    assert_eq!(
        rendered.subject,
        "[Demo Bakery] Scorecard digest: no measures"
    );
    assert!(
        rendered.text.contains("No measure changed status."),
        "{}",
        rendered.text
    );
    assert!(
        rendered
            .text
            .contains("No running period is forecast to miss its target.")
    );
}

fn smtp() -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".to_string(),
        port: 2525,
        tls: SmtpTls::None,
        username: Some("alerts@example.com".to_string()),
        password: Some(Secret::new("hunter2-very-secret")),
        from: "Scorekeeper <alerts@example.com>".to_string(),
        ca_file: None::<PathBuf>,
        timeout: Duration::from_secs(5),
    }
}

#[test]
fn the_message_id_is_the_notification_id_at_the_senders_domain() {
    assert_eq!(
        message_id("msg_0123456789abcdefghjkmnpqrs", "example.com"),
        "<msg_0123456789abcdefghjkmnpqrs@example.com>"
    );
    assert_eq!(
        message_id("msg_<x> y", "example.com"),
        "<msg_xy@example.com>"
    );
    let rendered = alerts(vec![event(EventKind::Firing, "red", Some(1.0))]);
    let message = build_message(
        &smtp(),
        &["owner@example.com".to_string()],
        "msg_0123456789abcdefghjkmnpqrs",
        &rendered,
    )
    .expect("a valid message");
    let formatted = String::from_utf8(message.formatted()).expect("ascii headers");
    assert!(
        formatted.contains("Message-ID: <msg_0123456789abcdefghjkmnpqrs@example.com>\r\n"),
        "{formatted}"
    );
    assert!(
        formatted.contains("Auto-Submitted: auto-generated\r\n"),
        "{formatted}"
    );
    assert!(
        formatted.contains("Content-Type: multipart/alternative;"),
        "{formatted}"
    );
}

#[test]
fn a_bad_recipient_fails_before_connecting() {
    let rendered = alerts(vec![event(EventKind::Firing, "red", Some(1.0))]);
    let error = build_message(&smtp(), &["not an address".to_string()], "msg_1", &rendered)
        .expect_err("invalid");
    assert!(
        error.contains("\"not an address\" is not an email address"),
        "{error}"
    );
    let error = build_message(&smtp(), &[], "msg_1", &rendered).expect_err("no recipient");
    assert!(error.contains("no recipient"), "{error}");
}

#[test]
fn the_password_is_removed_from_server_replies() {
    use base64::Engine as _;
    let plain = base64::engine::general_purpose::STANDARD
        .encode("\0alerts@example.com\0hunter2-very-secret");
    let reply = format!("535 5.7.8 bad credentials {plain} (hunter2-very-secret)");
    let redacted = redact(&reply, &smtp());
    assert_eq!(redacted, "535 5.7.8 bad credentials *** (***)");
}
