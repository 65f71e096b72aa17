//! A notification as an email: the subject, a plain-text part and an HTML part that say
//! the same thing.
//!
//! Pure: no IO, no clock (times come from the notification and are shown in the
//! scorecard's zone). Every piece of text that came from the configuration or a source
//! (measure names, owners, source errors) is escaped in the HTML part and stripped of
//! line breaks in the subject. The HTML is deliberately plain: inline styles, tables for
//! layout, no remote images, no scripts, so it reads the same in webmail, Outlook and
//! phone clients.

use chrono::{DateTime, Duration as ChronoDuration};
use chrono_tz::Tz;

use crate::config::Perspective;
use crate::notify::{
    AlertEvent, Digest, DigestLine, EventKind, ForecastRef, MeasureRef, Notification,
    NotificationKind, PeriodRef, TargetRef,
};

/// The three parts of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, without the scorecard prefix repeated elsewhere.
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// The `text/html` part: a whole document.
    pub html: String,
}

/// Renders a notification: alerts (one or several), a digest or a test.
pub fn render(notification: &Notification) -> Rendered {
    let zone = notification.timezone.parse::<Tz>().ok();
    let view = View { zone };
    let (title, intro, sections) = match notification.kind {
        NotificationKind::Digest => {
            let empty = Digest {
                since: None,
                lines: Vec::new(),
            };
            let digest = notification.digest.as_ref().unwrap_or(&empty);
            view.digest(digest)
        }
        NotificationKind::Alerts | NotificationKind::Test => {
            let title = alerts_title(&view, &notification.alerts);
            let blocks = notification
                .alerts
                .iter()
                .map(|alert| view.alert_block(alert))
                .collect::<Vec<_>>();
            let intro = match notification.kind {
                NotificationKind::Test => Some(
                    "This is a test message from scorekeeper. If you can read it, alerts \
                     for this scorecard reach you by email."
                        .to_string(),
                ),
                _ => None,
            };
            let intro = intro.or_else(|| {
                (blocks.is_empty()).then(|| "This notification carries no alert.".to_string())
            });
            (title, intro, vec![Section::Blocks(blocks)])
        }
    };
    let subject = one_line(&format!("[{}] {title}", notification.scorecard));
    let footer = format!(
        "Sent by scorekeeper for {} at {}. Notification {}.",
        notification.scorecard,
        view.time(&notification.created_at),
        notification.id
    );
    let document = Document {
        heading: format!("{} — {title}", notification.scorecard),
        intro,
        sections,
        dashboard_url: notification.dashboard_url.clone(),
        footer,
    };
    Rendered {
        text: document.text(),
        html: document.html(&subject),
        subject,
    }
}

/// The subject line (without the `[scorecard]` prefix) and heading of alert messages.
fn alerts_title(view: &View, alerts: &[AlertEvent]) -> String {
    match alerts {
        [] => "No alerts".to_string(),
        [alert] => view.alert_title(alert),
        several => summary_title(several),
    }
}

/// `3 measures off target, 1 forecast to miss, 1 resolved`.
fn summary_title(alerts: &[AlertEvent]) -> String {
    let count = |kinds: &[EventKind]| {
        alerts
            .iter()
            .filter(|alert| kinds.contains(&alert.event))
            .count()
    };
    let off = count(&[EventKind::Firing, EventKind::Reminder]);
    let forecast = count(&[EventKind::Forecast]);
    let stale = count(&[EventKind::Stale]);
    let no_data = count(&[EventKind::NoData]);
    let tests = count(&[EventKind::Test]);
    let resolved = alerts
        .iter()
        .filter(|alert| alert.event.is_recovery())
        .count();
    let mut parts = Vec::new();
    if off > 0 {
        parts.push(format!("{off} {} off target", plural(off, "measure")));
    }
    if forecast > 0 {
        parts.push(format!("{forecast} forecast to miss"));
    }
    if stale > 0 {
        parts.push(format!("{stale} {} stale", plural(stale, "source")));
    }
    if no_data > 0 {
        parts.push(format!(
            "{no_data} {} without data",
            plural(no_data, "measure")
        ));
    }
    if resolved > 0 {
        parts.push(format!("{resolved} resolved"));
    }
    if tests > 0 {
        parts.push(format!("{tests} {}", plural(tests, "test")));
    }
    parts.join(", ")
}

fn plural(count: usize, word: &str) -> String {
    if count == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// What both parts show, built once.
struct Document {
    heading: String,
    intro: Option<String>,
    sections: Vec<Section>,
    dashboard_url: Option<String>,
    footer: String,
}

enum Section {
    /// One block per alert, or per digest entry.
    Blocks(Vec<Block>),
    /// A heading and either a table or a sentence saying there is nothing.
    Table {
        heading: String,
        columns: Vec<&'static str>,
        rows: Vec<Vec<Cell>>,
        empty: &'static str,
    },
    /// A heading and a list of lines, or a sentence saying there is nothing.
    List {
        heading: String,
        items: Vec<Vec<Cell>>,
        empty: &'static str,
    },
}

/// A piece of text, coloured by status in HTML when it is one.
#[derive(Clone)]
struct Cell {
    text: String,
    status: Option<String>,
    /// Kept on one line in HTML tables (periods, values, statuses).
    nowrap: bool,
}

impl Cell {
    fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            status: None,
            nowrap: false,
        }
    }

    fn nowrap(text: impl Into<String>) -> Self {
        Self {
            nowrap: true,
            ..Self::plain(text)
        }
    }

    fn status(text: impl Into<String>, status: &str) -> Self {
        Self {
            text: text.into(),
            status: Some(status.to_string()),
            nowrap: true,
        }
    }
}

/// One alert: a headline and labelled rows.
struct Block {
    status: String,
    headline: String,
    rows: Vec<(&'static str, String)>,
}

impl Document {
    fn text(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.heading);
        out.push('\n');
        out.push_str(&"=".repeat(self.heading.chars().count().min(72)));
        out.push_str("\n\n");
        if let Some(intro) = &self.intro {
            out.push_str(intro);
            out.push_str("\n\n");
        }
        for section in &self.sections {
            match section {
                Section::Blocks(blocks) => {
                    for block in blocks {
                        out.push_str(&format!("* {}\n", block.headline));
                        let width = block
                            .rows
                            .iter()
                            .map(|(label, _)| label.chars().count())
                            .max()
                            .unwrap_or(0);
                        // Continuation lines (a source's multi-line error) line up
                        // under the first line of the value.
                        let continuation = format!("\n{}", " ".repeat(width + 4));
                        for (label, value) in &block.rows {
                            let value = value.trim_end().replace('\n', &continuation);
                            out.push_str(&format!("  {label:<width$}  {value}\n"));
                        }
                        out.push('\n');
                    }
                }
                Section::Table {
                    heading,
                    columns,
                    rows,
                    empty,
                } => {
                    out.push_str(&format!(
                        "{heading}\n{}\n",
                        "-".repeat(heading.chars().count())
                    ));
                    if rows.is_empty() {
                        out.push_str(&format!("{empty}\n\n"));
                        continue;
                    }
                    let mut widths: Vec<usize> =
                        columns.iter().map(|c| c.chars().count()).collect();
                    for row in rows {
                        for (index, cell) in row.iter().enumerate() {
                            widths[index] = widths[index].max(cell.text.chars().count());
                        }
                    }
                    let line = |cells: Vec<&str>| {
                        let mut line = String::new();
                        for (index, cell) in cells.iter().enumerate() {
                            if index + 1 == cells.len() {
                                line.push_str(cell);
                            } else {
                                let pad = widths[index] - cell.chars().count();
                                line.push_str(cell);
                                line.push_str(&" ".repeat(pad + 2));
                            }
                        }
                        line.trim_end().to_string()
                    };
                    out.push_str(&line(columns.to_vec()));
                    out.push('\n');
                    for row in rows {
                        out.push_str(&line(row.iter().map(|cell| cell.text.as_str()).collect()));
                        out.push('\n');
                    }
                    out.push('\n');
                }
                Section::List {
                    heading,
                    items,
                    empty,
                } => {
                    out.push_str(&format!(
                        "{heading}\n{}\n",
                        "-".repeat(heading.chars().count())
                    ));
                    if items.is_empty() {
                        out.push_str(&format!("{empty}\n"));
                    }
                    for item in items {
                        let text: String = item.iter().map(|cell| cell.text.as_str()).collect();
                        out.push_str(&format!("* {text}\n"));
                    }
                    out.push('\n');
                }
            }
        }
        if let Some(url) = &self.dashboard_url {
            out.push_str(&format!("Dashboard: {url}\n\n"));
        }
        out.push_str("-- \n");
        out.push_str(&self.footer);
        out.push('\n');
        out
    }

    fn html(&self, subject: &str) -> String {
        const MUTED: &str = "color:#57606a";
        let mut out = String::with_capacity(4096);
        out.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        out.push_str(&format!("<title>{}</title></head>\n", escape(subject)));
        out.push_str("<body style=\"margin:0;padding:16px;background:#f6f8fa;font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.5;color:#1f2328\">\n");
        out.push_str("<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"max-width:680px;margin:0 auto;background:#ffffff;border:1px solid #d0d7de\"><tr><td style=\"padding:20px\">\n");
        out.push_str(&format!(
            "<h1 style=\"font-size:18px;margin:0 0 16px\">{}</h1>\n",
            escape(&self.heading)
        ));
        if let Some(intro) = &self.intro {
            out.push_str(&format!(
                "<p style=\"margin:0 0 16px\">{}</p>\n",
                escape(intro)
            ));
        }
        for section in &self.sections {
            match section {
                Section::Blocks(blocks) => {
                    for block in blocks {
                        out.push_str(&format!(
                            "<div style=\"border-left:4px solid {};padding:4px 12px;margin:0 0 16px\">\n",
                            status_colour(&block.status)
                        ));
                        out.push_str(&format!(
                            "<p style=\"margin:0 0 6px;font-weight:bold\">{}</p>\n",
                            escape(&block.headline)
                        ));
                        out.push_str("<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse\">\n");
                        for (label, value) in &block.rows {
                            out.push_str(&format!(
                                "<tr><td style=\"padding:2px 16px 2px 0;vertical-align:top;white-space:nowrap;{MUTED}\">{}</td><td style=\"padding:2px 0\">{}</td></tr>\n",
                                escape(label),
                                escape(value.trim_end()).replace('\n', "<br>")
                            ));
                        }
                        out.push_str("</table>\n</div>\n");
                    }
                }
                Section::Table {
                    heading,
                    columns,
                    rows,
                    empty,
                } => {
                    out.push_str(&format!(
                        "<h2 style=\"font-size:16px;margin:20px 0 8px\">{}</h2>\n",
                        escape(heading)
                    ));
                    if rows.is_empty() {
                        out.push_str(&format!(
                            "<p style=\"margin:0 0 12px;{MUTED}\">{}</p>\n",
                            escape(empty)
                        ));
                        continue;
                    }
                    out.push_str("<table cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse;width:100%\">\n<tr>");
                    for column in columns {
                        out.push_str(&format!(
                            "<th style=\"text-align:left;padding:4px 8px;border-bottom:2px solid #d0d7de;font-size:13px;{MUTED}\">{}</th>",
                            escape(column)
                        ));
                    }
                    out.push_str("</tr>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        for cell in row {
                            out.push_str(&format!(
                                "<td style=\"padding:4px 8px;border-bottom:1px solid #eaeef2{}{}\">{}</td>",
                                if cell.nowrap { ";white-space:nowrap" } else { "" },
                                cell.status
                                    .as_deref()
                                    .map(|status| format!(";font-weight:bold;color:{}", status_colour(status)))
                                    .unwrap_or_default(),
                                escape(&cell.text)
                            ));
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</table>\n");
                }
                Section::List {
                    heading,
                    items,
                    empty,
                } => {
                    out.push_str(&format!(
                        "<h2 style=\"font-size:16px;margin:20px 0 8px\">{}</h2>\n",
                        escape(heading)
                    ));
                    if items.is_empty() {
                        out.push_str(&format!(
                            "<p style=\"margin:0 0 12px;{MUTED}\">{}</p>\n",
                            escape(empty)
                        ));
                        continue;
                    }
                    out.push_str("<ul style=\"margin:0 0 12px;padding-left:20px\">\n");
                    for item in items {
                        out.push_str("<li style=\"margin:0 0 4px\">");
                        for cell in item {
                            match &cell.status {
                                Some(status) => out.push_str(&format!(
                                    "<strong style=\"color:{}\">{}</strong>",
                                    status_colour(status),
                                    escape(&cell.text)
                                )),
                                None => out.push_str(&escape(&cell.text)),
                            }
                        }
                        out.push_str("</li>\n");
                    }
                    out.push_str("</ul>\n");
                }
            }
        }
        if let Some(url) = &self.dashboard_url {
            out.push_str(&format!(
                "<p style=\"margin:20px 0 0\"><a href=\"{}\" style=\"display:inline-block;padding:8px 14px;background:#0969da;color:#ffffff;text-decoration:none;border-radius:4px\">Open the dashboard</a></p>\n",
                escape(url)
            ));
        }
        out.push_str(&format!(
            "<p style=\"margin:24px 0 0;font-size:12px;{MUTED}\">{}</p>\n",
            escape(&self.footer)
        ));
        out.push_str("</td></tr></table>\n</body></html>\n");
        out
    }
}

/// Formatting that depends on the scorecard's time zone.
struct View {
    zone: Option<Tz>,
}

impl View {
    /// An RFC 3339 instant as `2026-04-01 08:00 CEST` in the scorecard's zone (as given
    /// when it cannot be read).
    fn time(&self, text: &str) -> String {
        match (DateTime::parse_from_rfc3339(text), self.zone) {
            (Ok(instant), Some(zone)) => instant
                .with_timezone(&zone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string(),
            (Ok(instant), None) => instant.format("%Y-%m-%d %H:%M %:z").to_string(),
            (Err(_), _) => text.to_string(),
        }
    }

    /// The last day of a period, `Tue 31 Mar 2026`.
    fn last_day(&self, period: &PeriodRef) -> Option<String> {
        let end = DateTime::parse_from_rfc3339(&period.end).ok()? - ChronoDuration::seconds(1);
        Some(match self.zone {
            Some(zone) => end.with_timezone(&zone).format("%a %-d %b %Y").to_string(),
            None => end.format("%a %-d %b %Y").to_string(),
        })
    }

    /// `2026-03 (complete)` or `2026-03 (running, ends Tue 31 Mar 2026)`.
    fn period(&self, period: &PeriodRef) -> String {
        if period.complete {
            format!("{} (complete)", period.label)
        } else {
            match self.last_day(period) {
                Some(day) => format!("{} (running, ends {day})", period.label),
                None => format!("{} (running)", period.label),
            }
        }
    }

    /// The one-line title of a single alert (the subject without the prefix).
    fn alert_title(&self, alert: &AlertEvent) -> String {
        let name = measure_name(alert.measure.as_ref());
        let unit = unit_of(alert.measure.as_ref());
        let period = alert
            .period
            .as_ref()
            .map(|period| format!(" ({})", period.label))
            .unwrap_or_default();
        let versus = versus(alert.value, alert.target.as_ref(), unit);
        let status = status_word(&alert.status);
        match alert.event {
            EventKind::Firing => format!("{name} is {status}{versus}{period}"),
            EventKind::Reminder => format!("Reminder: {name} is still {status}{versus}{period}"),
            EventKind::Resolved => format!("Resolved: {name} is {status}{versus}{period}"),
            EventKind::Forecast => {
                let by = alert
                    .period
                    .as_ref()
                    .and_then(|period| self.last_day(period))
                    .map(|day| format!(" by {day}"))
                    .unwrap_or_default();
                match &alert.forecast {
                    Some(forecast) => format!(
                        "{name} is forecast to miss its target: {} projected{}{by}{period}",
                        format_value(forecast.value, unit),
                        target_suffix(alert.target.as_ref(), unit),
                    ),
                    None => format!("{name} is forecast to miss its target{period}"),
                }
            }
            EventKind::ForecastResolved => match &alert.forecast {
                Some(forecast) => format!(
                    "Forecast back on target: {name} {} projected{}{period}",
                    format_value(forecast.value, unit),
                    target_suffix(alert.target.as_ref(), unit),
                ),
                None => format!("Forecast back on target: {name}{period}"),
            },
            EventKind::Stale => {
                let source = alert
                    .source
                    .as_ref()
                    .map_or("?", |source| source.name.as_str());
                let since = match alert
                    .source
                    .as_ref()
                    .and_then(|source| source.last_success_at.as_deref())
                {
                    Some(at) => format!("no successful sync since {}", self.time(at)),
                    None => "no successful sync yet".to_string(),
                };
                let error = alert
                    .source
                    .as_ref()
                    .and_then(|source| source.last_error.as_deref())
                    .map(|error| format!(" (last error: {})", truncate(&one_line(error), 80)))
                    .unwrap_or_default();
                format!("Source {source} is stale: {since}{error}")
            }
            EventKind::StaleResolved => format!(
                "Source {} is syncing again",
                alert
                    .source
                    .as_ref()
                    .map_or("?", |source| source.name.as_str())
            ),
            EventKind::NoData => match &alert.period {
                Some(period) => format!("{name} has no data for {}", period.label),
                None => format!("{name} has no data"),
            },
            EventKind::NoDataResolved => format!("{name} has data again{period}"),
            EventKind::Test => "Test message from scorekeeper".to_string(),
        }
    }

    /// The body block of one alert.
    fn alert_block(&self, alert: &AlertEvent) -> Block {
        let name = measure_name(alert.measure.as_ref());
        let unit = unit_of(alert.measure.as_ref());
        let status = status_word(&alert.status);
        let was = alert
            .previous_status
            .as_deref()
            .filter(|previous| *previous != alert.status)
            .map(|previous| format!(" (was {})", status_word(previous)))
            .unwrap_or_default();
        let mut rows: Vec<(&'static str, String)> = Vec::new();
        let measure_rows = |rows: &mut Vec<(&'static str, String)>, since_label: &'static str| {
            if let Some(period) = &alert.period {
                rows.push(("Period", self.period(period)));
            }
            rows.push(("Value", format_value_or_none(alert.value, unit)));
            if let Some(target) = &alert.target {
                rows.push(("Target", target_text(target, unit)));
            }
            if let Some(forecast) = &alert.forecast {
                rows.push(("Projected", forecast_text(forecast, unit)));
            }
            rows.push((since_label, self.time(&alert.since)));
            if let Some(measure) = &alert.measure {
                rows.push(("Perspective", perspective_title(&measure.perspective)));
                if let Some(owner) = &measure.owner {
                    rows.push(("Owner", owner.clone()));
                }
            }
        };
        let headline = match alert.event {
            EventKind::Firing => {
                measure_rows(&mut rows, "Off target since");
                format!("{name} is {status}{was}")
            }
            EventKind::Reminder => {
                measure_rows(&mut rows, "Off target since");
                format!("{name} is still {status}")
            }
            EventKind::Resolved => {
                measure_rows(&mut rows, "Off target since");
                rows.push(("Resolved at", self.time(&alert.at)));
                format!("Resolved: {name} is {status}{was}")
            }
            EventKind::Forecast => {
                measure_rows(&mut rows, "Forecast since");
                format!("{name} is forecast to miss its target")
            }
            EventKind::ForecastResolved => {
                measure_rows(&mut rows, "Forecast since");
                rows.push(("Resolved at", self.time(&alert.at)));
                format!("{name} is forecast to meet its target again")
            }
            EventKind::NoData => {
                measure_rows(&mut rows, "Without data since");
                format!("{name} has no data")
            }
            EventKind::NoDataResolved => {
                measure_rows(&mut rows, "Without data since");
                rows.push(("Data since", self.time(&alert.at)));
                format!("{name} has data again")
            }
            EventKind::Stale | EventKind::StaleResolved => {
                let source_name = alert
                    .source
                    .as_ref()
                    .map_or("?", |source| source.name.as_str());
                if let Some(source) = &alert.source {
                    rows.push(("Source", format!("{} ({})", source.name, source.kind)));
                    rows.push((
                        "Last successful sync",
                        source
                            .last_success_at
                            .as_deref()
                            .map_or_else(|| "never".to_string(), |at| self.time(at)),
                    ));
                    if alert.event == EventKind::Stale {
                        rows.push((
                            "Last error",
                            source
                                .last_error
                                .clone()
                                .unwrap_or_else(|| "none recorded".to_string()),
                        ));
                    }
                }
                rows.push(("Stale since", self.time(&alert.since)));
                if alert.event == EventKind::Stale {
                    format!("Source {source_name} is stale")
                } else {
                    rows.push(("Synced again at", self.time(&alert.at)));
                    format!("Source {source_name} is syncing again")
                }
            }
            EventKind::Test => {
                rows.push(("Sent at", self.time(&alert.at)));
                "Test message".to_string()
            }
        };
        let colour_status = match alert.event {
            EventKind::Forecast => alert
                .forecast
                .as_ref()
                .map_or_else(|| alert.status.clone(), |forecast| forecast.status.clone()),
            EventKind::Stale | EventKind::NoData => "amber".to_string(),
            event if event.is_recovery() => "green".to_string(),
            EventKind::Test => "none".to_string(),
            _ => alert.status.clone(),
        };
        Block {
            status: colour_status,
            headline,
            rows,
        }
    }

    /// Title, intro and sections of a digest.
    fn digest(&self, digest: &Digest) -> (String, Option<String>, Vec<Section>) {
        let count = |status: &str| {
            digest
                .lines
                .iter()
                .filter(|line| line.status == status)
                .count()
        };
        let changed: Vec<&DigestLine> = digest
            .lines
            .iter()
            .filter(|line| {
                line.previous_status
                    .as_deref()
                    .is_some_and(|previous| previous != line.status)
            })
            .collect();
        let forecast: Vec<&DigestLine> = digest
            .lines
            .iter()
            .filter(|line| line.forecast.is_some())
            .collect();
        let mut counts = Vec::new();
        for status in ["red", "amber", "green"] {
            let n = count(status);
            if n > 0 {
                counts.push(format!("{n} {status}"));
            }
        }
        let others = digest.lines.len() - count("red") - count("amber") - count("green");
        if others > 0 {
            counts.push(format!("{others} without status"));
        }
        let mut title_parts = counts.clone();
        if !changed.is_empty() {
            title_parts.push(format!("{} changed", changed.len()));
        }
        if !forecast.is_empty() {
            title_parts.push(format!("{} forecast to miss", forecast.len()));
        }
        let title = if digest.lines.is_empty() {
            "Scorecard digest: no measures".to_string()
        } else {
            format!("Scorecard digest: {}", title_parts.join(", "))
        };
        let mut intro = if counts.is_empty() {
            "The scorecard has no measures.".to_string()
        } else {
            format!("{} measures: {}.", digest.lines.len(), counts.join(", "))
        };
        if let Some(since) = &digest.since {
            intro.push_str(&format!(
                " Changes since the last digest ({}).",
                self.time(since)
            ));
        }

        let mut sections = vec![
            Section::List {
                heading: "Changed status".to_string(),
                items: changed
                    .iter()
                    .map(|line| {
                        let previous = line.previous_status.as_deref().unwrap_or("none");
                        vec![
                            Cell::plain(format!("{}: ", line.measure.name)),
                            Cell::status(status_word(previous), previous),
                            Cell::plain(" → "),
                            Cell::status(status_word(&line.status), &line.status),
                            Cell::plain(format!(
                                " ({}{}, {})",
                                format_value_or_none(line.value, line.measure.unit.as_deref()),
                                target_suffix(line.target.as_ref(), line.measure.unit.as_deref()),
                                line.period.label
                            )),
                        ]
                    })
                    .collect(),
                empty: "No measure changed status.",
            },
            Section::List {
                heading: "Forecast to miss".to_string(),
                items: forecast
                    .iter()
                    .filter_map(|line| {
                        let projection = line.forecast.as_ref()?;
                        let by = self
                            .last_day(&line.period)
                            .map(|day| format!(" by {day}"))
                            .unwrap_or_default();
                        Some(vec![
                            Cell::plain(format!(
                                "{}: {} projected{}{by} ({}) — ",
                                line.measure.name,
                                format_value(projection.value, line.measure.unit.as_deref()),
                                target_suffix(line.target.as_ref(), line.measure.unit.as_deref()),
                                line.period.label,
                            )),
                            Cell::status(status_word(&projection.status), &projection.status),
                        ])
                    })
                    .collect(),
                empty: "No running period is forecast to miss its target.",
            },
        ];
        // The lines come perspective by perspective; one table per perspective.
        let mut index = 0;
        while index < digest.lines.len() {
            let perspective = &digest.lines[index].measure.perspective;
            let mut rows = Vec::new();
            while index < digest.lines.len()
                && &digest.lines[index].measure.perspective == perspective
            {
                let line = &digest.lines[index];
                let unit = line.measure.unit.as_deref();
                let mut status = status_word(&line.status);
                if let Some(previous) = line.previous_status.as_deref()
                    && previous != line.status
                {
                    status.push_str(&format!(" (was {})", status_word(previous)));
                }
                rows.push(vec![
                    Cell::plain(line.measure.name.clone()),
                    Cell::nowrap(line.period.label.clone()),
                    Cell::nowrap(format_value_or_none(line.value, unit)),
                    Cell::plain(
                        line.target
                            .as_ref()
                            .map_or_else(|| "—".to_string(), |target| target_text(target, unit)),
                    ),
                    Cell::status(status, &line.status),
                ]);
                index += 1;
            }
            sections.push(Section::Table {
                heading: perspective_title(perspective),
                columns: vec!["Measure", "Period", "Value", "Target", "Status"],
                rows,
                empty: "No measures.",
            });
        }
        (title, Some(intro), sections)
    }
}

fn measure_name(measure: Option<&MeasureRef>) -> String {
    measure.map_or_else(|| "A measure".to_string(), |measure| measure.name.clone())
}

fn unit_of(measure: Option<&MeasureRef>) -> Option<&str> {
    measure.and_then(|measure| measure.unit.as_deref())
}

/// `: 38,200 EUR vs target 42,000` (or shorter when the value or target is missing).
fn versus(value: Option<f64>, target: Option<&TargetRef>, unit: Option<&str>) -> String {
    match value {
        Some(value) => format!(
            ": {}{}",
            format_value(value, unit),
            target_suffix(target, unit)
        ),
        None => ": no value".to_string(),
    }
}

/// ` vs target 42,000` (the unit is said once, with the value), or nothing.
fn target_suffix(target: Option<&TargetRef>, unit: Option<&str>) -> String {
    target
        .map(|target| {
            let number = if unit == Some("%") {
                format_value(target.value, unit)
            } else {
                format_number(target.value)
            };
            format!(" vs target {number}")
        })
        .unwrap_or_default()
}

/// `42,000 EUR or more (amber from 40,000 EUR)`.
fn target_text(target: &TargetRef, unit: Option<&str>) -> String {
    let (side, amber) = match target.direction.as_str() {
        "down" => ("or less", "amber up to"),
        _ => ("or more", "amber down to"),
    };
    let mut text = format!("{} {side}", format_value(target.value, unit));
    if let Some(warn) = target.warn {
        text.push_str(&format!(", {amber} {}", format_value(warn, unit)));
    }
    text
}

/// `36,500 EUR at the period's end, red (pro rata, 45% of the period elapsed)`.
fn forecast_text(forecast: &ForecastRef, unit: Option<&str>) -> String {
    let method = match forecast.method.as_str() {
        "pro_rata" => "pro rata".to_string(),
        "trend" => "from the trend".to_string(),
        other => other.replace('_', " "),
    };
    format!(
        "{} at the period's end, {} ({method}, {}% of the period elapsed)",
        format_value(forecast.value, unit),
        status_word(&forecast.status),
        format_number((forecast.elapsed * 100.0).round())
    )
}

fn perspective_title(perspective: &str) -> String {
    Perspective::parse(perspective)
        .map_or_else(|| perspective.to_string(), |p| p.title().to_string())
}

/// A status as people read it.
fn status_word(status: &str) -> String {
    match status {
        "none" => "without status".to_string(),
        "no_data" => "without data".to_string(),
        other => other.replace('_', " "),
    }
}

fn status_colour(status: &str) -> &'static str {
    match status {
        "green" => "#1a7f37",
        "amber" => "#bf8700",
        "red" => "#cf222e",
        _ => "#8c959f",
    }
}

/// A value with its unit, or `no value`.
fn format_value_or_none(value: Option<f64>, unit: Option<&str>) -> String {
    value.map_or_else(|| "no value".to_string(), |value| format_value(value, unit))
}

/// `38,200 EUR`, `92.5%`, `$1,250`, `17`.
pub fn format_value(value: f64, unit: Option<&str>) -> String {
    let number = format_number(value);
    match unit.map(str::trim).filter(|unit| !unit.is_empty()) {
        None => number,
        Some("%") => format!("{number}%"),
        Some(symbol @ ("$" | "€" | "£" | "¥")) => match number.strip_prefix('-') {
            Some(positive) => format!("-{symbol}{positive}"),
            None => format!("{symbol}{number}"),
        },
        Some(unit) => format!("{number} {unit}"),
    }
}

/// A number for people: thousands grouped with commas; no decimals from 1,000 up, one
/// from 100, two from 1, and three significant digits below 1; trailing zeros dropped.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    let decimals = if magnitude >= 1000.0 || value.fract() == 0.0 {
        0
    } else if magnitude >= 100.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        // 0.5 → 3 decimals, 0.0345 → 4: three significant digits, at most 6 decimals.
        ((-magnitude.log10().floor()) as usize + 2).min(6)
    };
    let mut text = format!("{:.*}", decimals, magnitude);
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let (integer, fraction) = match text.split_once('.') {
        Some((integer, fraction)) => (integer.to_string(), Some(fraction.to_string())),
        None => (text.clone(), None),
    };
    let mut grouped = String::new();
    for (index, digit) in integer.chars().enumerate() {
        if index > 0 && (integer.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if let Some(fraction) = fraction {
        grouped.push('.');
        grouped.push_str(&fraction);
    }
    if value < 0.0
        && grouped
            .chars()
            .any(|digit| digit.is_ascii_digit() && digit != '0')
    {
        grouped.insert(0, '-');
    }
    grouped
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Control characters (line breaks above all) become spaces: a subject is one line.
fn one_line(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect();
    replaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}
