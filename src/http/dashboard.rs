//! `/`: the scorecard as a plain HTML table (the full dashboard comes later). Everything
//! is rendered on the server and embedded; nothing is fetched from outside.

use axum::extract::State;
use axum::response::Html;

use super::AppState;
use super::api::ApiError;
use crate::scorecard;

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Formats a value for people: grouped thousands are left to the browser; two decimals at most.
fn format_value(value: Option<f64>) -> String {
    match value {
        None => "—".to_string(),
        Some(value) if value.fract() == 0.0 => format!("{value:.0}"),
        Some(value) => format!("{value:.2}"),
    }
}

/// `GET /`
pub async fn page(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let view = scorecard::build(
        &state.store,
        &state.settings,
        &state.catalog,
        chrono::Utc::now(),
    )
    .await?;
    let mut html = String::with_capacity(8 * 1024);
    html.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str(&format!(
        "<title>{} — scorecard</title>",
        escape(&view.name)
    ));
    html.push_str("<style>body{font:15px system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin-bottom:2rem;min-width:40rem}th,td{padding:.4rem .8rem;border-bottom:1px solid #ddd;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}.status{font-weight:600}.green{color:#1a7f37}.amber{color:#9a6700}.red{color:#cf222e}.none{color:#777}</style></head><body>");
    html.push_str(&format!(
        "<h1>{}</h1><p>Periods in {} · updated {}</p>",
        escape(&view.name),
        escape(&view.timezone),
        escape(&view.generated_at)
    ));
    for perspective in &view.perspectives {
        html.push_str(&format!("<h2>{}</h2>", escape(perspective.title)));
        if perspective.measures.is_empty() {
            html.push_str("<p class=\"none\">No measures.</p>");
            continue;
        }
        html.push_str("<table><thead><tr><th>Measure</th><th>Period</th><th>Value</th><th>Target</th><th>Status</th><th>Current period so far</th></tr></thead><tbody>");
        for measure in &perspective.measures {
            let unit = measure
                .unit
                .as_deref()
                .map(|unit| format!(" {}", escape(unit)))
                .unwrap_or_default();
            let status = measure.judged.status.as_str();
            html.push_str(&format!(
                "<tr data-measure=\"{id}\"><td>{name}</td><td>{period}</td><td class=\"num\">{value}{unit}</td><td class=\"num\">{target}</td><td class=\"status {status}\">{status}</td><td class=\"num\">{current}{unit} ({current_period})</td></tr>",
                id = escape(&measure.id),
                name = escape(&measure.name),
                period = escape(&measure.judged.period),
                value = format_value(measure.judged.value),
                target = format_value(measure.judged.target),
                current = format_value(measure.current.value),
                current_period = escape(&measure.current.period),
            ));
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</body></html>");
    Ok(Html(html))
}
