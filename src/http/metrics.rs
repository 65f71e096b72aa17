//! `GET /metrics`: Prometheus text exposition format (version 0.0.4), so Prometheus can
//! scrape scorekeeper and Grafana can chart the scorecard next to everything else.
//!
//! Sync, record, outbox and delivery figures are read from the database (they survive
//! restarts and agree across replicas); upstream answers are counted by this process since
//! it started. Every measure's judged value and status are gauges.
//! Format: <https://prometheus.io/docs/instrumenting/exposition_formats/>.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::api::ApiError;
use crate::status::Status;
use crate::store::DURATION_BUCKETS;

/// A label value escaped as the format requires (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Prometheus metrics.
///
/// The text exposition format (version 0.0.4): per source sync runs, records and sync
/// durations, upstream answers by status, the outbox and deliveries, and every measure's
/// judged value and status.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The metrics", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 500, description = "The database failed; see the server log",
            body = super::api::ErrorBody),
    )
)]
pub async fn metrics(axum::extract::State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state.store.metrics().await?;
    let view = crate::scorecard::build(
        &state.store,
        &state.settings,
        &state.catalog,
        chrono::Utc::now(),
    )
    .await?;
    let mut out = String::with_capacity(4096);

    header(
        &mut out,
        "scorekeeper_sync_runs_total",
        "counter",
        "Finished sync runs by source and result.",
    );
    for (source, result, count) in &snapshot.runs {
        let _ = writeln!(
            out,
            "scorekeeper_sync_runs_total{{source=\"{}\",result=\"{}\"}} {count}",
            label(source),
            label(result)
        );
    }
    header(
        &mut out,
        "scorekeeper_records_synced_total",
        "counter",
        "Records received by finished sync runs, by source.",
    );
    for (source, count) in &snapshot.records {
        let _ = writeln!(
            out,
            "scorekeeper_records_synced_total{{source=\"{}\"}} {count}",
            label(source)
        );
    }
    header(
        &mut out,
        "scorekeeper_sync_duration_seconds",
        "histogram",
        "Duration of finished sync runs, by source.",
    );
    for (source, buckets, count, sum) in &snapshot.durations {
        let source = label(source);
        for (bound, cumulative) in DURATION_BUCKETS.iter().zip(buckets) {
            let _ = writeln!(
                out,
                "scorekeeper_sync_duration_seconds_bucket{{source=\"{source}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "scorekeeper_sync_duration_seconds_bucket{{source=\"{source}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "scorekeeper_sync_duration_seconds_sum{{source=\"{source}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "scorekeeper_sync_duration_seconds_count{{source=\"{source}\"}} {count}"
        );
    }
    header(
        &mut out,
        "scorekeeper_records_stored",
        "gauge",
        "Records stored, by source and stream.",
    );
    for (source, stream, count) in &snapshot.stored {
        let _ = writeln!(
            out,
            "scorekeeper_records_stored{{source=\"{}\",stream=\"{}\"}} {count}",
            label(source),
            label(stream)
        );
    }
    header(
        &mut out,
        "scorekeeper_upstream_responses_total",
        "counter",
        "Answers from upstream APIs since start, by host and HTTP status.",
    );
    for ((host, status), count) in state.engine.http().answers() {
        let _ = writeln!(
            out,
            "scorekeeper_upstream_responses_total{{host=\"{}\",status=\"{status}\"}} {count}",
            label(&host)
        );
    }
    header(
        &mut out,
        "scorekeeper_outbox_messages",
        "gauge",
        "Outbox messages by status (pending is the queue).",
    );
    for status in ["pending", "delivered", "failed", "expired"] {
        let count = snapshot
            .outbox
            .iter()
            .find(|(name, _)| name == status)
            .map_or(0, |(_, count)| *count);
        let _ = writeln!(
            out,
            "scorekeeper_outbox_messages{{status=\"{status}\"}} {count}"
        );
    }
    header(
        &mut out,
        "scorekeeper_delivery_attempts_total",
        "counter",
        "Notification delivery attempts, by channel and result (retry, failed, gone, expired are failures).",
    );
    for (channel, result, count) in &snapshot.deliveries {
        let _ = writeln!(
            out,
            "scorekeeper_delivery_attempts_total{{channel=\"{}\",result=\"{}\"}} {count}",
            label(channel),
            label(result)
        );
    }
    header(
        &mut out,
        "scorekeeper_measure_value",
        "gauge",
        "Each measure's value for its judged period.",
    );
    for perspective in &view.perspectives {
        for measure in &perspective.measures {
            if let Some(value) = measure.judged.value.filter(|value| value.is_finite()) {
                let _ = writeln!(
                    out,
                    "scorekeeper_measure_value{{measure=\"{}\",perspective=\"{}\"}} {value}",
                    label(&measure.id),
                    perspective.id.as_str()
                );
            }
        }
    }
    header(
        &mut out,
        "scorekeeper_measure_status",
        "gauge",
        "1 for each measure's current status of its judged period (green, amber, red, none).",
    );
    for perspective in &view.perspectives {
        for measure in &perspective.measures {
            for status in [Status::Green, Status::Amber, Status::Red, Status::None] {
                let _ = writeln!(
                    out,
                    "scorekeeper_measure_status{{measure=\"{}\",perspective=\"{}\",status=\"{}\"}} {}",
                    label(&measure.id),
                    perspective.id.as_str(),
                    status.as_str(),
                    u8::from(measure.judged.status == status)
                );
            }
        }
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response())
}
