//! Measures: records → one value per period; formulas over other measures.
//!
//! Pure: no IO, no clock. The sync path calls [`contribution`] once per record and
//! measure, and the store keeps each record's contribution (its period, event time and
//! value) so that a period can be re-aggregated without re-reading the records.
//! [`aggregate`] turns a period's contributions into its value; [`evaluate_formula`]
//! combines other measures' values of the same period.

pub mod expr;
pub mod period;

use std::collections::HashMap;

use chrono_tz::Tz;

use crate::config::RecordMeasure;
use crate::records::{self, Record};
use expr::Scalar;
use period::PeriodKind;

/// How a period's values become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Number of matching records (of non-null values when `value` is set).
    Count,
    /// Number of distinct values.
    CountDistinct,
    /// Sum of the values.
    Sum,
    /// Arithmetic mean.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Middle value (mean of the two middle values for an even count).
    Median,
    /// 90th percentile, linear interpolation between closest ranks.
    P90,
    /// The value of the record with the latest event time.
    Last,
}

impl Aggregate {
    /// Parses the config spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "count" => Self::Count,
            "count_distinct" => Self::CountDistinct,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "median" => Self::Median,
            "p90" => Self::P90,
            "last" => Self::Last,
            _ => return None,
        })
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::CountDistinct => "count_distinct",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Median => "median",
            Self::P90 => "p90",
            Self::Last => "last",
        }
    }

    /// The value of a period without any contribution: a month without refunds
    /// refunded nothing, but there is no average of nothing.
    pub fn empty_value(self) -> Option<f64> {
        match self {
            Self::Count | Self::CountDistinct | Self::Sum => Some(0.0),
            _ => None,
        }
    }
}

/// The value a record contributes to a measure.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// `count` without a value expression: the record itself counts.
    Present,
    /// A number.
    Number(f64),
    /// A string (or boolean) for `count_distinct`.
    Text(String),
}

/// One record's contribution to one measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Start of the period it falls in, unix seconds.
    pub period_start: i64,
    /// Its event time, unix milliseconds (orders `last`).
    pub event_time: i64,
    /// What it contributes.
    pub value: InputValue,
}

/// Why a record could not be evaluated for a measure; the record is left out of that
/// measure, and the sync counts and logs it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordProblem {
    /// The time field is not a time.
    #[error("field `{field}`: {source}")]
    Time {
        /// The configured time field.
        field: String,
        /// What was wrong.
        source: records::TimeError,
    },
    /// `where` failed or did not return a bool.
    #[error("where: {0}")]
    Filter(String),
    /// `value` failed or returned something the aggregate cannot use.
    #[error("value: {0}")]
    Value(String),
}

/// What one record contributes to a measure: `Ok(None)` when it does not count (no event
/// time, filtered out, or a null value).
pub fn contribution(
    measure: &RecordMeasure,
    period: PeriodKind,
    tz: Tz,
    record: &Record,
) -> Result<Option<Contribution>, RecordProblem> {
    let time =
        records::event_time(records::field(record, &measure.time_field), tz).map_err(|source| {
            RecordProblem::Time {
                field: measure.time_field.clone(),
                source,
            }
        })?;
    let Some(time) = time else { return Ok(None) };

    if let Some(filter) = &measure.filter {
        match filter.eval_record(record) {
            Ok(Scalar::Bool(true)) => {}
            Ok(Scalar::Bool(false) | Scalar::Null) => return Ok(None),
            Ok(other) => {
                return Err(RecordProblem::Filter(format!(
                    "returned {other:?}, expected true or false"
                )));
            }
            Err(error) => return Err(RecordProblem::Filter(error.to_string())),
        }
    }

    let value = match &measure.value {
        None => InputValue::Present,
        Some(expression) => {
            let scalar = expression
                .eval_record(record)
                .map_err(|error| RecordProblem::Value(error.to_string()))?;
            match (measure.aggregate, scalar) {
                (_, Scalar::Null) => return Ok(None),
                (Aggregate::Count, _) => InputValue::Present,
                (Aggregate::CountDistinct, Scalar::Number(number)) => InputValue::Number(number),
                (Aggregate::CountDistinct, Scalar::Text(text)) => InputValue::Text(text),
                (Aggregate::CountDistinct, Scalar::Bool(flag)) => {
                    InputValue::Text(flag.to_string())
                }
                (_, scalar) => match scalar.as_number() {
                    Some(number) if number.is_finite() => InputValue::Number(number),
                    _ => {
                        return Err(RecordProblem::Value(format!(
                            "returned {scalar:?}, expected a number"
                        )));
                    }
                },
            }
        }
    };
    Ok(Some(Contribution {
        period_start: period.start_of(time, tz).timestamp(),
        event_time: time.timestamp_millis(),
        value,
    }))
}

/// A stored contribution as the aggregate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInput {
    /// Event time, unix milliseconds.
    pub event_time: i64,
    /// Tie-breaker for equal event times (the record's storage id).
    pub record_id: i64,
    /// Numeric value, if any.
    pub number: Option<f64>,
    /// Text value, if any.
    pub text: Option<String>,
}

/// Aggregates one period's contributions (any order). `None` means no value.
pub fn aggregate(aggregate: Aggregate, inputs: &[StoredInput]) -> Option<f64> {
    if inputs.is_empty() {
        return aggregate.empty_value();
    }
    let mut numbers: Vec<f64> = inputs.iter().filter_map(|input| input.number).collect();
    match aggregate {
        Aggregate::Count => Some(inputs.len() as f64),
        Aggregate::CountDistinct => {
            let mut keys: Vec<String> = inputs
                .iter()
                .map(|input| match (&input.number, &input.text) {
                    (Some(number), _) => format!("n{number}"),
                    (None, Some(text)) => format!("t{text}"),
                    (None, None) => String::from("-"),
                })
                .collect();
            keys.sort_unstable();
            keys.dedup();
            Some(keys.len() as f64)
        }
        Aggregate::Sum => Some(numbers.iter().sum()),
        _ if numbers.is_empty() => None,
        Aggregate::Avg => Some(numbers.iter().sum::<f64>() / numbers.len() as f64),
        Aggregate::Min => numbers.iter().copied().reduce(f64::min),
        Aggregate::Max => numbers.iter().copied().reduce(f64::max),
        Aggregate::Median => Some(quantile(&mut numbers, 0.5)),
        Aggregate::P90 => Some(quantile(&mut numbers, 0.9)),
        Aggregate::Last => inputs
            .iter()
            .filter(|input| input.number.is_some())
            .max_by_key(|input| (input.event_time, input.record_id))
            .and_then(|input| input.number),
    }
}

/// The q-quantile with linear interpolation between closest ranks (numpy's default).
fn quantile(numbers: &mut [f64], q: f64) -> f64 {
    numbers.sort_unstable_by(f64::total_cmp);
    let rank = q * (numbers.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    numbers[lower] + (numbers[upper] - numbers[lower]) * (rank - lower as f64)
}

/// Evaluates a formula for one period: `None` when an input has no value, the formula
/// divides by zero, or it does not give a finite number.
pub fn evaluate_formula(
    formula: &expr::Expr,
    inputs: &HashMap<String, Option<f64>>,
) -> Result<Option<f64>, String> {
    let mut vars = HashMap::with_capacity(inputs.len());
    for (name, value) in inputs {
        match value {
            Some(number) => vars.insert(name.clone(), Scalar::Number(*number)),
            None => return Ok(None),
        };
    }
    match formula
        .eval_vars(&vars)
        .map_err(|error| error.to_string())?
    {
        Scalar::Null => Ok(None),
        Scalar::Number(number) if number.is_finite() => Ok(Some(number)),
        Scalar::Number(_) => Ok(None),
        other => Err(format!("returned {other:?}, expected a number")),
    }
}

#[cfg(test)]
mod tests;
