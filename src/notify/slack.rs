//! The Slack format of webhook channels (`format = "slack"`): a notification rendered as
//! an incoming-webhook message (`text` plus Block Kit `blocks`). Pure: [`super::webhook`]
//! posts it. Limits and escaping follow Slack's references, cited in that module's docs:
//! at most 50 blocks, section text at most 3000 characters, header text at most 150,
//! button URL at most 3000, and `&`, `<`, `>` escaped in mrkdwn.

use serde_json::{Value, json};

use super::webhook::truncate;
use super::{AlertEvent, DigestLine, EventKind, Notification, NotificationKind, TargetRef};

/// Slack's documented limits.
const SLACK_MAX_BLOCKS: usize = 50;
const SLACK_SECTION_CHARS: usize = 3000;
const SLACK_HEADER_CHARS: usize = 150;
const SLACK_BUTTON_URL_CHARS: usize = 3000;
/// Our own cap for the notification fallback `text`: it is what phones show.
const SLACK_TEXT_CHARS: usize = 500;

/// `&`, `<` and `>` as HTML entities: Slack's control characters in mrkdwn.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escaped mrkdwn cut to `max` characters without leaving half an entity (`&am…`).
fn truncate_mrkdwn(text: &str, max: usize) -> String {
    let cut = truncate(text, max);
    if cut == text {
        return cut;
    }
    let kept = cut.trim_end_matches('…');
    match kept.rfind('&') {
        Some(at) if !kept[at..].contains(';') => format!("{}…", &kept[..at]),
        _ => cut,
    }
}

fn status_emoji(status: &str) -> &'static str {
    match status {
        "green" => ":large_green_circle:",
        "amber" => ":large_orange_circle:",
        "red" => ":red_circle:",
        _ => ":white_circle:",
    }
}

/// `41,200.5`: thousands grouped, at most two decimals (four below 1), trailing zeros cut.
fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let decimals = if value.abs() < 1.0 { 4 } else { 2 };
    let fixed = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let fraction = fraction.trim_end_matches('0');
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 && (whole != "0" || !fraction.is_empty()) {
        "-"
    } else {
        ""
    };
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{fraction}")
    }
}

/// A value with its unit: `12.5%`, `41,200 EUR`.
fn with_unit(value: f64, unit: Option<&str>) -> String {
    match unit {
        Some("%") => format!("{}%", format_number(value)),
        Some(unit) if !unit.is_empty() => format!("{} {}", format_number(value), unit),
        _ => format_number(value),
    }
}

/// `≥ 50,000 EUR` (higher is better) or `≤ 4 h` (lower is better).
fn target_text(target: &TargetRef, unit: Option<&str>) -> String {
    let comparison = if target.direction == "down" {
        "≤"
    } else {
        "≥"
    };
    format!("{comparison} {}", with_unit(target.value, unit))
}

fn perspective_name(perspective: &str) -> String {
    let mut characters = perspective.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// The first line of an alert's section (mrkdwn, escaped).
fn headline(alert: &AlertEvent) -> String {
    let measure = alert
        .measure
        .as_ref()
        .map(|measure| format!("*{}*", escape(&measure.name)));
    let source = alert
        .source
        .as_ref()
        .map(|source| format!("*{}*", escape(&source.name)));
    let subject = measure
        .clone()
        .or_else(|| source.clone())
        .unwrap_or_else(|| "The scorecard".to_string());
    let status = escape(&alert.status);
    let was = alert
        .previous_status
        .as_deref()
        .map(|previous| format!(" (was {})", escape(previous)))
        .unwrap_or_default();
    match alert.event {
        EventKind::Firing => format!(
            "{} {subject} is *{status}*{was}",
            status_emoji(&alert.status)
        ),
        EventKind::Reminder => format!(
            "{} {subject} is still *{status}*",
            status_emoji(&alert.status)
        ),
        EventKind::Resolved => {
            format!(":white_check_mark: {subject} is back on target: *{status}*{was}")
        }
        EventKind::Forecast => {
            let projected = alert
                .forecast
                .as_ref()
                .map_or(status.clone(), |forecast| escape(&forecast.status));
            format!(":crystal_ball: {subject} is forecast to end the period *{projected}*")
        }
        EventKind::ForecastResolved => {
            format!(":white_check_mark: {subject} is forecast to end the period on target again")
        }
        EventKind::Stale => {
            let subject = source.unwrap_or(subject);
            let last = alert
                .source
                .as_ref()
                .and_then(|source| source.last_success_at.as_deref())
                .map_or("never synced successfully".to_string(), |at| {
                    format!("has not synced successfully since {}", escape(at))
                });
            format!(":hourglass_flowing_sand: Source {subject} {last}")
        }
        EventKind::StaleResolved => {
            let subject = source.unwrap_or(subject);
            format!(":white_check_mark: Source {subject} synced again")
        }
        EventKind::NoData => {
            format!(":grey_question: {subject} has no data for its running period")
        }
        EventKind::NoDataResolved => format!(":white_check_mark: {subject} has data again"),
        EventKind::Test => {
            ":wave: Test notification: this channel receives scorekeeper's alerts".to_string()
        }
    }
}

/// One alert's section text: the headline, then perspective and period, value vs target,
/// the forecast, the source's last error, and since when.
fn alert_text(alert: &AlertEvent) -> String {
    let mut lines = vec![headline(alert)];
    let unit = alert
        .measure
        .as_ref()
        .and_then(|measure| measure.unit.as_deref());
    let mut place = Vec::new();
    if let Some(measure) = &alert.measure {
        place.push(escape(&perspective_name(&measure.perspective)));
    }
    if let Some(period) = &alert.period {
        let running = if period.complete { "" } else { " (running)" };
        place.push(format!("{}{running}", escape(&period.label)));
    }
    if !place.is_empty() {
        lines.push(place.join(" · "));
    }
    match (alert.value, &alert.target) {
        (Some(value), Some(target)) => lines.push(format!(
            "Value *{}* vs target *{}*",
            escape(&with_unit(value, unit)),
            escape(&target_text(target, unit))
        )),
        (Some(value), None) => lines.push(format!("Value *{}*", escape(&with_unit(value, unit)))),
        (None, Some(target)) => lines.push(format!(
            "No value yet; target *{}*",
            escape(&target_text(target, unit))
        )),
        (None, None) => {}
    }
    if let Some(forecast) = &alert.forecast {
        lines.push(format!(
            "Forecast *{}* at the period's end ({}, {}, {}% of the period elapsed)",
            escape(&with_unit(forecast.value, unit)),
            escape(&forecast.status),
            escape(&forecast.method.replace('_', " ")),
            format_number((forecast.elapsed * 100.0).round())
        ));
    }
    if alert.event == EventKind::Stale
        && let Some(error) = alert
            .source
            .as_ref()
            .and_then(|source| source.last_error.as_deref())
    {
        lines.push(format!("Last error: {}", escape(error)));
    }
    if alert.event != EventKind::Test {
        lines.push(format!("Since {}", escape(&alert.since)));
    }
    truncate_mrkdwn(&lines.join("\n"), SLACK_SECTION_CHARS)
}

/// One digest line: `:red_circle: Revenue 41,200 EUR vs ≥ 50,000 EUR (was green)`.
fn digest_line_text(line: &DigestLine) -> String {
    let unit = line.measure.unit.as_deref();
    let mut text = format!(
        "{} *{}* ({})",
        status_emoji(&line.status),
        escape(&line.measure.name),
        escape(&line.period.label)
    );
    match line.value {
        Some(value) => text.push_str(&format!(" {}", escape(&with_unit(value, unit)))),
        None => text.push_str(" no data"),
    }
    if let Some(target) = &line.target {
        text.push_str(&format!(" vs {}", escape(&target_text(target, unit))));
    }
    if let Some(previous) = &line.previous_status {
        text.push_str(&format!(" (was {})", escape(previous)));
    }
    if let Some(forecast) = &line.forecast {
        text.push_str(&format!(
            " · forecast {} {}",
            escape(&with_unit(forecast.value, unit)),
            escape(&forecast.status)
        ));
    }
    text
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// Sections of one perspective's digest lines, each within the section text limit.
fn digest_sections(title: &str, lines: &[String]) -> Vec<Value> {
    let mut sections = Vec::new();
    let mut text = format!("*{}*", escape(title));
    for line in lines {
        let line = truncate_mrkdwn(line, SLACK_SECTION_CHARS - title.chars().count() - 3);
        if text.chars().count() + 1 + line.chars().count() > SLACK_SECTION_CHARS {
            sections.push(section(std::mem::replace(
                &mut text,
                format!("*{}* (continued)", escape(title)),
            )));
        }
        text.push('\n');
        text.push_str(&line);
    }
    sections.push(section(text));
    sections
}

/// The Slack incoming-webhook message for `notification`: `text` (the notification
/// fallback) and `blocks`: a header, a section per alert (or per perspective of a digest),
/// and a link button to the dashboard when `dashboard_url` is set; within Slack's limits.
pub(super) fn message(notification: &Notification) -> Value {
    let scorecard = &notification.scorecard;
    let (title, mut sections, fallback) = match notification.kind {
        NotificationKind::Alerts | NotificationKind::Test => {
            let count = notification.alerts.len();
            let title = if notification.kind == NotificationKind::Test {
                format!("{scorecard}: test notification")
            } else if count == 1 {
                format!("{scorecard}: 1 alert")
            } else {
                format!("{scorecard}: {count} alerts")
            };
            let sections: Vec<Value> = notification
                .alerts
                .iter()
                .map(|alert| section(alert_text(alert)))
                .collect();
            let headlines: Vec<String> = notification.alerts.iter().map(headline).collect();
            let fallback = format!("{}: {}", escape(scorecard), headlines.join("; "));
            (title, sections, fallback)
        }
        NotificationKind::Digest => {
            let title = format!("{scorecard}: scorecard review");
            let mut sections = Vec::new();
            let lines = notification
                .digest
                .as_ref()
                .map_or(&[][..], |digest| &digest.lines[..]);
            if let Some(since) = notification
                .digest
                .as_ref()
                .and_then(|digest| digest.since.as_deref())
            {
                sections.push(json!({
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": format!("Changes since {}", escape(since))}],
                }));
            }
            // Lines arrive in scorecard order, perspective by perspective.
            let mut index = 0;
            while index < lines.len() {
                let perspective = &lines[index].measure.perspective;
                let group: Vec<String> = lines[index..]
                    .iter()
                    .take_while(|line| &line.measure.perspective == perspective)
                    .map(digest_line_text)
                    .collect();
                index += group.len();
                sections.extend(digest_sections(&perspective_name(perspective), &group));
            }
            if lines.is_empty() {
                sections.push(section("No measures to review.".to_string()));
            }
            let off_target = lines.iter().filter(|line| line.status == "red").count();
            let fallback = format!(
                "{}: scorecard review, {} measures, {} red",
                escape(scorecard),
                lines.len(),
                off_target
            );
            (title, sections, fallback)
        }
    };
    let button = notification
        .dashboard_url
        .as_deref()
        .filter(|url| url.chars().count() <= SLACK_BUTTON_URL_CHARS)
        .map(|url| {
            json!({
                "type": "actions",
                "elements": [{
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open dashboard"},
                    "url": url,
                }],
            })
        });
    // Header and button take one block each; one more says how many sections were left out.
    let room = SLACK_MAX_BLOCKS - 1 - usize::from(button.is_some());
    if sections.len() > room {
        let left_out = sections.len() - (room - 1);
        sections.truncate(room - 1);
        let more = match &notification.dashboard_url {
            Some(_) => format!("…and {left_out} more: see the dashboard"),
            None => format!("…and {left_out} more"),
        };
        sections.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": more}],
        }));
    }
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&title, SLACK_HEADER_CHARS), "emoji": true},
    })];
    blocks.extend(sections);
    blocks.extend(button);
    json!({
        "text": truncate_mrkdwn(&fallback, SLACK_TEXT_CHARS),
        "blocks": blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::webhook::tests::{example_alerts, example_digest};

    fn texts(message: &Value) -> Vec<String> {
        message["blocks"]
            .as_array()
            .expect("blocks is an array")
            .iter()
            .filter(|block| block["type"] == "section")
            .map(|block| {
                block["text"]["text"]
                    .as_str()
                    .expect("mrkdwn text")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn cuts_never_split_an_entity() {
        assert_eq!(truncate_mrkdwn("R&amp;D", 4), "R…");
        assert_eq!(truncate_mrkdwn("R&amp;D budget", 8), "R&amp;D…");
        assert_eq!(truncate_mrkdwn("short", 10), "short");
    }

    #[test]
    fn numbers_are_grouped_and_trimmed() {
        for (value, expected) in [
            (41200.0, "41,200"),
            (1234567.891, "1,234,567.89"),
            (12.5, "12.5"),
            (-4500.0, "-4,500"),
            (0.12345, "0.1235"),
            (999.999, "1,000"),
            (0.0, "0"),
            (-0.00001, "0"),
        ] {
            assert_eq!(format_number(value), expected, "{value}");
        }
        assert_eq!(with_unit(12.5, Some("%")), "12.5%");
        assert_eq!(with_unit(41200.0, Some("EUR")), "41,200 EUR");
        assert_eq!(with_unit(3.0, None), "3");
    }

    #[test]
    fn alerts_get_a_header_a_section_each_and_a_dashboard_button() {
        let message = message(&example_alerts());
        let blocks = message["blocks"].as_array().expect("blocks is an array");
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(blocks[0]["text"]["text"], "Acme Coffee: 3 alerts");
        assert_eq!(
            texts(&message),
            [
                ":red_circle: *Monthly recurring revenue* is *red* (was amber)\nFinancial · 2026-02\nValue *41,200 EUR* vs target *≥ 50,000 EUR*\nSince 2026-03-02T06:00:00+01:00",
                ":crystal_ball: *First reply time* is forecast to end the period *red*\nCustomer · 2026-03 (running)\nValue *4.6 h* vs target *≤ 4 h*\nForecast *5.4 h* at the period's end (red, trend, 26% of the period elapsed)\nSince 2026-03-09T08:00:00+01:00",
                ":hourglass_flowing_sand: Source *stripe* has not synced successfully since 2026-03-09T04:00:00+01:00\nLast error: stripe.charges: 401 Unauthorized: Invalid API Key provided\nSince 2026-03-09T06:00:00+01:00",
            ]
        );
        let last = blocks.last().expect("blocks are not empty");
        assert_eq!(last["type"], "actions");
        assert_eq!(last["elements"][0]["type"], "button");
        assert_eq!(
            last["elements"][0]["url"],
            "https://scorecard.acme.example/"
        );
        let text = message["text"].as_str().expect("text is a string");
        assert!(
            text.starts_with("Acme Coffee: :red_circle: *Monthly recurring revenue* is *red*"),
            "{text}"
        );
    }

    #[test]
    fn no_button_without_a_dashboard_url() {
        let mut notification = example_alerts();
        notification.dashboard_url = None;
        let message = message(&notification);
        let blocks = message["blocks"].as_array().expect("blocks is an array");
        assert!(
            blocks.iter().all(|block| block["type"] != "actions"),
            "{message}"
        );
        assert_eq!(blocks.len(), 4);
    }

    #[test]
    fn control_characters_are_escaped_in_mrkdwn() {
        let mut notification = example_alerts();
        if let Some(measure) = notification.alerts[0].measure.as_mut() {
            measure.name = "R&D <spend> ratio".to_string();
        }
        let message = message(&notification);
        assert!(
            texts(&message)[0].contains("*R&amp;D &lt;spend&gt; ratio*"),
            "{message}"
        );
        assert!(
            message["text"]
                .as_str()
                .is_some_and(|text| text.contains("R&amp;D &lt;spend&gt;"))
        );
    }

    #[test]
    fn many_alerts_stay_within_slacks_limits() {
        let mut notification = example_alerts();
        notification.scorecard = "S".repeat(400);
        let first = notification.alerts[0].clone();
        notification.alerts = (0..80)
            .map(|index| {
                let mut alert = first.clone();
                if let Some(measure) = alert.measure.as_mut() {
                    measure.name = format!("Measure {index} {}", "x".repeat(4000));
                }
                alert
            })
            .collect();
        let message = message(&notification);
        let blocks = message["blocks"].as_array().expect("blocks is an array");
        assert_eq!(blocks.len(), SLACK_MAX_BLOCKS);
        let header = blocks[0]["text"]["text"].as_str().expect("header text");
        assert_eq!(header.chars().count(), SLACK_HEADER_CHARS);
        for text in texts(&message) {
            assert!(text.chars().count() <= SLACK_SECTION_CHARS);
        }
        // 50 blocks: the header, 47 alerts, "…and 33 more", the button.
        assert_eq!(texts(&message).len(), 47);
        assert_eq!(blocks[48]["type"], "context");
        assert_eq!(
            blocks[48]["elements"][0]["text"],
            "…and 33 more: see the dashboard"
        );
        assert_eq!(blocks[49]["type"], "actions");
        assert!(message["text"].as_str().expect("text").chars().count() <= SLACK_TEXT_CHARS);
    }

    #[test]
    fn digests_list_measures_perspective_by_perspective() {
        let message = message(&example_digest());
        let blocks = message["blocks"].as_array().expect("blocks is an array");
        assert_eq!(blocks[0]["text"]["text"], "Acme Coffee: scorecard review");
        assert_eq!(blocks[1]["type"], "context");
        assert_eq!(
            blocks[1]["elements"][0]["text"],
            "Changes since 2026-03-02T08:00:00+01:00"
        );
        assert_eq!(
            texts(&message),
            [
                "*Financial*\n:red_circle: *Monthly recurring revenue* (2026-02) 41,200 EUR vs ≥ 50,000 EUR (was amber)",
                "*Customer*\n:large_orange_circle: *First reply time* (2026-03) 4.6 h vs ≤ 4 h · forecast 5.4 h red",
            ]
        );
        assert_eq!(
            message["text"],
            "Acme Coffee: scorecard review, 2 measures, 1 red"
        );
    }

    #[test]
    fn long_digests_split_sections_at_the_text_limit() {
        let mut notification = example_digest();
        let digest = notification
            .digest
            .as_mut()
            .expect("the example is a digest");
        let line = digest.lines[0].clone();
        digest.lines = (0..200)
            .map(|index| {
                let mut line = line.clone();
                line.measure.name = format!("Financial measure number {index}");
                line
            })
            .collect();
        let message = message(&notification);
        let sections = texts(&message);
        assert!(sections.len() > 1, "{sections:?}");
        assert!(sections[1].starts_with("*Financial* (continued)\n"));
        for text in &sections {
            assert!(text.chars().count() <= SLACK_SECTION_CHARS);
        }
        let listed: usize = sections
            .iter()
            .map(|text| text.matches(":red_circle:").count())
            .sum();
        assert_eq!(listed, 200);
    }
}
