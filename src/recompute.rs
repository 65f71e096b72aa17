//! Recompute: keeps `measure_values` equal to what the stored records say.
//!
//! The [`Catalog`] binds each configured measure to its storage id and to the stream it
//! reads, and, at startup, rebuilds the stored inputs of any measure whose definition
//! changed. [`recompute_dirty`] turns the periods marked dirty by page writes into
//! values, formulas after their inputs, in one transaction that also clears the marks.
//! The decisions (what a record contributes, how a period aggregates, what a formula
//! gives) are the pure functions of [`crate::measures`]; this module only moves data.

use std::collections::{BTreeSet, HashMap};

use chrono_tz::Tz;

use crate::config::{MeasureConfig, MeasureKind, RecordMeasure, Settings};
use crate::measures::{self, Aggregate, InputValue, StoredInput};
use crate::records::Record;
use crate::store::{InputRow, Section, SqlAggregate, Store, StoreError};

/// Records read per batch when a measure's inputs are rebuilt.
const REBUILD_BATCH: i64 = 2_000;

/// A configured measure with its storage id.
#[derive(Debug, Clone)]
pub struct BoundMeasure {
    /// Storage id.
    pub id: i64,
    /// Its configuration.
    pub config: MeasureConfig,
}

impl BoundMeasure {
    /// The value of a period that has no stored row: zero for sums and counts over
    /// records (nothing happened), none otherwise.
    pub fn value_without_row(&self) -> Option<f64> {
        self.records()
            .and_then(|records| records.aggregate.empty_value())
    }

    /// The record side of the measure, if it reads records.
    pub fn records(&self) -> Option<&RecordMeasure> {
        match &self.config.kind {
            MeasureKind::Records(records) => Some(records),
            MeasureKind::Formula { .. } => None,
        }
    }
}

/// Every configured measure, bound to the store, in dependency order.
#[derive(Debug, Clone)]
pub struct Catalog {
    measures: Vec<BoundMeasure>,
    timezone: Tz,
}

/// What a measure definition is stored as: a change in any of these rebuilds its inputs.
fn definition(measure: &MeasureConfig, timezone: Tz) -> String {
    let period = measure.period.as_str();
    match &measure.kind {
        MeasureKind::Records(records) => format!(
            "records/v1|from={}.{}|time={}|where={}|value={}|aggregate={}|period={period}|tz={timezone}",
            records.source,
            records.stream,
            records.time_field,
            records.filter.as_ref().map_or("", |expr| expr.source()),
            records.value.as_ref().map_or("", |expr| expr.source()),
            records.aggregate.as_str(),
        ),
        MeasureKind::Formula { formula, .. } => format!(
            "formula/v1|{}|period={period}|tz={timezone}",
            formula.source()
        ),
    }
}

/// The stored form of a contribution.
pub fn input_row(
    measure_id: i64,
    record_id: i64,
    contribution: &measures::Contribution,
) -> InputRow {
    let (num, txt) = match &contribution.value {
        InputValue::Present => (None, None),
        InputValue::Number(number) => (Some(*number), None),
        InputValue::Text(text) => (None, Some(text.clone())),
    };
    InputRow {
        measure_id,
        period_start: contribution.period_start,
        record_id,
        event_time: contribution.event_time,
        num,
        txt,
    }
}

impl Catalog {
    /// Registers every measure; rebuilds the inputs of those whose definition changed and
    /// marks their periods dirty. Call [`recompute_dirty`] afterwards.
    pub async fn prepare(store: &Store, settings: &Settings) -> Result<Self, StoreError> {
        let timezone = settings.scorecard.timezone;
        let mut measures = Vec::with_capacity(settings.measures.len());
        for config in &settings.measures {
            let definition = definition(config, timezone);
            let (id, changed) = store.register_measure(&config.id, &definition).await?;
            let bound = BoundMeasure {
                id,
                config: config.clone(),
            };
            if changed {
                tracing::info!(measure = %config.id, "Measure definition changed, recomputing its history");
                rebuild(store, &bound, &measures, timezone).await?;
                let mut tx = store.begin().await?;
                tx.set_definition(id, &definition).await?;
                tx.commit().await?;
            }
            measures.push(bound);
        }
        Ok(Self { measures, timezone })
    }

    /// The scorecard's time zone.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Every measure, in dependency order.
    pub fn measures(&self) -> &[BoundMeasure] {
        &self.measures
    }

    /// The measure with this id.
    pub fn get(&self, id: &str) -> Option<&BoundMeasure> {
        self.measures.iter().find(|measure| measure.config.id == id)
    }

    /// The record measures that read one stream.
    pub fn reading(&self, source: &str, stream: &str) -> Vec<&BoundMeasure> {
        self.measures
            .iter()
            .filter(|measure| {
                measure
                    .records()
                    .is_some_and(|records| records.source == source && records.stream == stream)
            })
            .collect()
    }
}

/// Recomputes a measure's inputs from the stored records (record measures), or marks
/// every period of its inputs dirty (formulas).
async fn rebuild(
    store: &Store,
    measure: &BoundMeasure,
    earlier: &[BoundMeasure],
    timezone: Tz,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.clear_measure(measure.id).await?;
    let Some(records) = measure.records() else {
        let MeasureKind::Formula { inputs, .. } = &measure.config.kind else {
            unreachable!("records() is None only for formulas")
        };
        let mut periods = BTreeSet::new();
        for input in earlier
            .iter()
            .filter(|bound| inputs.contains(&bound.config.id))
        {
            periods.extend(tx.input_periods(input.id).await?);
            periods.extend(store.value_periods(input.id).await?);
        }
        let dirty: Vec<(i64, i64)> = periods
            .into_iter()
            .map(|period| (measure.id, period))
            .collect();
        tx.mark_dirty(&dirty).await?;
        return tx.commit().await;
    };
    tx.commit().await?;

    let stream = store.stream_state(&records.source, &records.stream).await?;
    let mut after_id = 0;
    loop {
        let batch = store
            .records_after(stream.id, after_id, REBUILD_BATCH)
            .await?;
        let Some(last) = batch.last() else { break };
        after_id = last.id;
        let mut rows = Vec::new();
        let mut dirty = BTreeSet::new();
        for stored in &batch {
            let record: Record = serde_json::from_str(&stored.data).map_err(|error| {
                StoreError::Corrupt(format!(
                    "record {} of {}.{} is not a JSON object: {error}",
                    stored.key, records.source, records.stream
                ))
            })?;
            if let Ok(Some(contribution)) =
                measures::contribution(records, measure.config.period, timezone, &record)
            {
                dirty.insert((measure.id, contribution.period_start));
                rows.push(input_row(measure.id, stored.id, &contribution));
            }
        }
        let mut tx = store.begin().await?;
        tx.upsert_inputs(&rows).await?;
        tx.mark_dirty(&dirty.into_iter().collect::<Vec<_>>())
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

fn sql_aggregate(aggregate: Aggregate) -> Option<SqlAggregate> {
    Some(match aggregate {
        Aggregate::Count => SqlAggregate::Count,
        Aggregate::Sum => SqlAggregate::Sum,
        Aggregate::Avg => SqlAggregate::Avg,
        Aggregate::Min => SqlAggregate::Min,
        Aggregate::Max => SqlAggregate::Max,
        _ => return None,
    })
}

/// Turns every dirty period into a value (formulas after their inputs) and clears the
/// marks, in one transaction. Returns how many values were written.
pub async fn recompute_dirty(
    store: &Store,
    catalog: &Catalog,
    now: i64,
) -> Result<usize, StoreError> {
    let mut tx = store.begin().await?;
    // Replicas (and sources syncing side by side) recompute one at a time: two recomputes
    // at once could each judge a formula from the other's old inputs, or the slower one
    // could overwrite the faster one's newer values.
    tx.lock_section(Section::Recompute).await?;
    let dirty = tx.dirty_periods().await?;
    if dirty.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let mut periods_of: HashMap<i64, BTreeSet<i64>> = HashMap::new();
    for (measure_id, period_start) in &dirty {
        periods_of
            .entry(*measure_id)
            .or_default()
            .insert(*period_start);
    }
    let mut computed: HashMap<(i64, i64), Option<f64>> = HashMap::new();
    for measure in catalog.measures() {
        let mut periods = periods_of.remove(&measure.id).unwrap_or_default();
        match &measure.config.kind {
            MeasureKind::Records(records) => {
                for period in periods {
                    let value = match sql_aggregate(records.aggregate) {
                        Some(sql) => tx.aggregate_inputs(measure.id, period, sql).await?,
                        None => {
                            let inputs: Vec<StoredInput> = tx
                                .period_inputs(measure.id, period)
                                .await?
                                .into_iter()
                                .map(|row| StoredInput {
                                    event_time: row.event_time,
                                    record_id: row.record_id,
                                    number: row.num,
                                    text: row.txt,
                                })
                                .collect();
                            measures::aggregate(records.aggregate, &inputs)
                        }
                    };
                    // SQL gives NULL for SUM over no rows; the empty value says what it means.
                    let value = value.or_else(|| records.aggregate.empty_value());
                    computed.insert((measure.id, period), value);
                }
            }
            MeasureKind::Formula { formula, inputs } => {
                let bound_inputs: Vec<&BoundMeasure> =
                    inputs.iter().filter_map(|name| catalog.get(name)).collect();
                for input in &bound_inputs {
                    periods.extend(
                        computed
                            .keys()
                            .filter(|(id, _)| *id == input.id)
                            .map(|(_, period)| *period),
                    );
                }
                for period in periods {
                    let mut values = HashMap::with_capacity(bound_inputs.len());
                    for input in &bound_inputs {
                        let value = match computed.get(&(input.id, period)) {
                            Some(value) => *value,
                            None => match tx.value_at(input.id, period).await? {
                                Some(stored) => stored,
                                None => input.value_without_row(),
                            },
                        };
                        values.insert(input.config.id.clone(), value);
                    }
                    let value = measures::evaluate_formula(formula, &values).unwrap_or_else(|error| {
                        tracing::warn!(measure = %measure.config.id, error = %error, "Formula failed; the period has no value");
                        None
                    });
                    computed.insert((measure.id, period), value);
                }
            }
        }
    }
    let values: Vec<(i64, i64, Option<f64>)> = computed
        .into_iter()
        .map(|((id, period), value)| (id, period, value))
        .collect();
    tx.write_values(&values, now).await?;
    tx.clear_dirty(&dirty).await?;
    tx.commit().await?;
    Ok(values.len())
}
