//! The scorecard as people read it: each measure's judged and current period, with
//! value, target and status, grouped by perspective; and one measure's series.
//!
//! Read-only: built from stored values for the API, the dashboard and the CLI.
//! Which period is judged: the last complete period for measures that accumulate over
//! the period (`sum`, `count`, `count_distinct`, and formulas: a month of revenue is not
//! off target on its third day), the current period for the others (an average reply
//! time means something mid-month).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::{MeasureKind, Perspective, Settings};
use crate::measures::Aggregate;
use crate::measures::period::PeriodKind;
use crate::recompute::{BoundMeasure, Catalog};
use crate::status::{self, Status, Target};
use crate::store::{Store, StoreError};

/// One period's value of a measure.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// Label: `2026-03-05`, `2026-W10`, `2026-03`, `2026-Q1`, `2026`.
    pub period: String,
    /// Period start in the scorecard's zone, RFC 3339.
    #[schema(format = DateTime)]
    pub start: String,
    /// The value; `null` where there is no data.
    pub value: Option<f64>,
    /// The target value, if any.
    pub target: Option<f64>,
    /// The value judged against the target.
    pub status: Status,
}

/// One measure on the scorecard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MeasureView {
    /// The measure's id (its key under `[measures]`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The perspective it belongs to.
    pub perspective: Perspective,
    /// The length of its periods.
    pub period: PeriodKind,
    /// Unit shown after values, if configured.
    pub unit: Option<String>,
    /// The target, if any.
    pub target: Option<Target>,
    /// The objective it belongs to, if any.
    pub objective: Option<String>,
    /// The owner (routes its alerts), if any.
    pub owner: Option<String>,
    /// `complete` or `current`: which period `judged` is.
    pub evaluate: &'static str,
    /// The period the status is judged on.
    pub judged: SeriesPoint,
    /// The running period (value so far).
    pub current: SeriesPoint,
}

/// One perspective with its measures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PerspectiveView {
    /// Which perspective.
    pub id: Perspective,
    /// Heading.
    pub title: &'static str,
    /// Its measures, in configuration order.
    pub measures: Vec<MeasureView>,
}

/// The whole scorecard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScorecardView {
    /// Scorecard name.
    pub name: String,
    /// IANA time zone of the periods (`Europe/Berlin`).
    pub timezone: String,
    /// ISO currency code of money values, if configured.
    pub currency: Option<String>,
    /// When this view was built (RFC 3339, in the scorecard's zone); the API serves one
    /// build until the next sync or the next minute.
    #[schema(format = DateTime)]
    pub generated_at: String,
    /// The four perspectives in order.
    pub perspectives: Vec<PerspectiveView>,
}

/// True when the status is judged on the last complete period: as the measure's
/// `evaluate` says, else for sums, counts and formulas (a month of revenue is not off
/// target on its third day), and the running period for the others.
pub fn judges_complete_period(measure: &BoundMeasure) -> bool {
    match measure.config.alert.evaluate {
        Some(crate::config::Evaluate::Complete) => return true,
        Some(crate::config::Evaluate::Current) => return false,
        None => {}
    }
    match &measure.config.kind {
        MeasureKind::Records(records) => matches!(
            records.aggregate,
            Aggregate::Sum | Aggregate::Count | Aggregate::CountDistinct
        ),
        MeasureKind::Formula { .. } => true,
    }
}

/// The value of the period starting at `start` among a measure's `stored` values; a
/// period with no stored row is zero for sums and counts over records, and has no value
/// otherwise.
fn value_at(
    measure: &BoundMeasure,
    stored: &HashMap<i64, Option<f64>>,
    start: DateTime<Tz>,
) -> Option<f64> {
    match stored.get(&start.timestamp()) {
        Some(value) => *value,
        None => measure.value_without_row(),
    }
}

fn point(
    measure: &BoundMeasure,
    kind: PeriodKind,
    start: DateTime<Tz>,
    value: Option<f64>,
) -> SeriesPoint {
    let target = measure.config.target;
    SeriesPoint {
        period: kind.label(start),
        start: start.to_rfc3339(),
        value,
        target: target.map(|target| target.value),
        status: status::evaluate(value, target.as_ref()),
    }
}

/// Builds the scorecard at `now`.
pub async fn build(
    store: &Store,
    settings: &Settings,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<ScorecardView, StoreError> {
    let tz = catalog.timezone();
    let mut perspectives: Vec<PerspectiveView> = Perspective::ALL
        .into_iter()
        .map(|id| PerspectiveView {
            id,
            title: id.title(),
            measures: Vec::new(),
        })
        .collect();
    for measure in catalog.measures() {
        let kind = measure.config.period;
        let current_start = kind.start_of(now, tz);
        let previous_start = kind.start_of(
            current_start.with_timezone(&Utc) - chrono::Duration::seconds(1),
            tz,
        );
        let after_current = kind.next(current_start);
        let stored: HashMap<i64, Option<f64>> = store
            .values(
                measure.id,
                previous_start.timestamp(),
                after_current.timestamp(),
            )
            .await?
            .into_iter()
            .collect();
        let current = point(
            measure,
            kind,
            current_start,
            value_at(measure, &stored, current_start),
        );
        let complete = judges_complete_period(measure);
        let judged = if complete {
            point(
                measure,
                kind,
                previous_start,
                value_at(measure, &stored, previous_start),
            )
        } else {
            current.clone()
        };
        let view = MeasureView {
            id: measure.config.id.clone(),
            name: measure.config.name.clone(),
            perspective: measure.config.perspective,
            period: kind,
            unit: measure.config.unit.clone(),
            target: measure.config.target,
            objective: measure.config.objective.clone(),
            owner: measure.config.owner.clone(),
            evaluate: if complete { "complete" } else { "current" },
            judged,
            current,
        };
        let index = Perspective::ALL
            .iter()
            .position(|p| *p == measure.config.perspective)
            .expect("every perspective is listed");
        perspectives[index].measures.push(view);
    }
    Ok(ScorecardView {
        name: settings.scorecard.name.clone(),
        timezone: tz.to_string(),
        currency: settings.scorecard.currency.clone(),
        generated_at: now.with_timezone(&tz).to_rfc3339(),
        perspectives,
    })
}

/// The longest series returned at once (about 27 years of days).
const MAX_SERIES_POINTS: usize = 10_000;

/// One measure's series over the periods that contain `from` up to the one containing
/// `to` (local dates). Defaults: from the first stored period, to the current period.
pub async fn series(
    store: &Store,
    catalog: &Catalog,
    measure: &BoundMeasure,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<Vec<SeriesPoint>, StoreError> {
    let tz = catalog.timezone();
    let kind = measure.config.period;
    let first = match from {
        Some(date) => kind.start_of_date(date, tz),
        None => match store.first_value_period(measure.id).await? {
            Some(start) => kind.start_of(DateTime::from_timestamp(start, 0).unwrap_or(now), tz),
            None => return Ok(Vec::new()),
        },
    };
    let last = match to {
        Some(date) => kind.start_of_date(date, tz),
        None => kind.start_of(now, tz),
    };
    let end = kind.next(last);
    let stored: HashMap<i64, Option<f64>> = store
        .values(measure.id, first.timestamp(), end.timestamp())
        .await?
        .into_iter()
        .collect();
    let mut points = Vec::new();
    let mut start = first;
    while start < end && points.len() < MAX_SERIES_POINTS {
        points.push(point(
            measure,
            kind,
            start,
            value_at(measure, &stored, start),
        ));
        start = kind.next(start);
    }
    Ok(points)
}
