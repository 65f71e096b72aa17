//! Period-end projections for forecast alerts. Pure: values and the elapsed share of the
//! running period come in.
//!
//! - **Pro rata** for measures that accumulate over the period (`sum`, `count`): the value
//!   so far divided by the share of the period elapsed. 12,000 of revenue ten days into a
//!   30-day month projects 36,000.
//! - **Trend** for the others (averages, medians, rates, `last`, `min`, `max`,
//!   `count_distinct`): the value so far, moved by the least-squares slope of the last
//!   complete periods (up to [`TREND_PERIODS`]) over the part of the period still to
//!   come. With fewer than two complete periods the value so far is the projection.
//! - **Formulas** are evaluated on their inputs' projections (so `gross - refunds` is
//!   pro-rated through its inputs and a ratio of two sums keeps its ratio).
//!
//! Nothing is projected before [`MIN_ELAPSED`] of the period has passed: two days into a
//! month say too little.

/// The share of a period that must have passed before it is projected.
pub const MIN_ELAPSED: f64 = 0.25;
/// Complete periods the trend is fitted on.
pub const TREND_PERIODS: usize = 6;

/// How a projection was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Value so far ÷ share elapsed.
    ProRata,
    /// Value so far + slope × share remaining.
    Trend,
    /// A formula over projected inputs.
    Formula,
}

impl Method {
    /// The spelling in notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::ProRata => "pro_rata",
            Method::Trend => "trend",
            Method::Formula => "formula",
        }
    }
}

/// The value a measure is projected to end its running period at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    /// Projected period-end value.
    pub value: f64,
    /// How.
    pub method: Method,
}

/// Pro rata: `so_far ÷ elapsed`, once enough of the period has passed.
pub fn pro_rata(so_far: f64, elapsed: f64) -> Option<Projection> {
    ((MIN_ELAPSED..=1.0).contains(&elapsed) && so_far.is_finite()).then(|| Projection {
        value: so_far / elapsed,
        method: Method::ProRata,
    })
}

/// Trend: `so_far` moved by the slope of `history` (complete periods, oldest first; the
/// last [`TREND_PERIODS`] are used) over the share of the period still to come.
pub fn trend(so_far: f64, elapsed: f64, history: &[f64]) -> Option<Projection> {
    if !(MIN_ELAPSED..=1.0).contains(&elapsed) || !so_far.is_finite() {
        return None;
    }
    let recent = &history[history.len().saturating_sub(TREND_PERIODS)..];
    let slope = slope(recent).unwrap_or(0.0);
    Some(Projection {
        value: so_far + slope * (1.0 - elapsed),
        method: Method::Trend,
    })
}

/// Least-squares slope per period of equally spaced values; `None` below two values.
fn slope(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 || values.iter().any(|value| !value.is_finite()) {
        return None;
    }
    let n_f = n as f64;
    let mean_x = (n_f - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n_f;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (index, value) in values.iter().enumerate() {
        let dx = index as f64 - mean_x;
        covariance += dx * (value - mean_y);
        variance += dx * dx;
    }
    Some(covariance / variance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pro_rata_projects_the_running_total_to_the_period_end() {
        // 12,000 after 10 of 30 days.
        let projection = pro_rata(12_000.0, 10.0 / 30.0).expect("projected");
        assert!((projection.value - 36_000.0).abs() < 1e-9);
        assert_eq!(projection.method, Method::ProRata);
        // A synthetic month of 1,000 a day: every day from the 8th on projects 30,000.
        for day in 8..=30 {
            let so_far = 1_000.0 * f64::from(day);
            let projected = pro_rata(so_far, f64::from(day) / 30.0).expect("projected");
            assert!((projected.value - 30_000.0).abs() < 1e-6, "day {day}");
        }
        assert_eq!(pro_rata(5_000.0, 0.1), None, "too early to say");
    }

    #[test]
    fn trend_moves_the_value_by_the_recent_slope() {
        // Satisfaction falling two points a month: 90, 88, 86, 84; halfway through the
        // next month it reads 82.5, and the trend says it ends a point lower.
        let projection = trend(82.5, 0.5, &[90.0, 88.0, 86.0, 84.0]).expect("projected");
        assert!((projection.value - 81.5).abs() < 1e-9, "{projection:?}");
        // Only the last six periods count.
        let long: Vec<f64> = [1000.0, 1000.0]
            .into_iter()
            .chain((0..6).map(|i| 50.0 + f64::from(i)))
            .collect();
        let projection = trend(56.0, 0.5, &long).expect("projected");
        assert!((projection.value - 56.5).abs() < 1e-9, "{projection:?}");
        // No history: the value so far.
        assert_eq!(trend(70.0, 0.5, &[]).map(|p| p.value), Some(70.0));
        assert_eq!(trend(70.0, 0.2, &[1.0, 2.0]), None);
    }

    #[test]
    fn slope_of_a_known_line() {
        assert_eq!(slope(&[1.0, 3.0, 5.0, 7.0]), Some(2.0));
        assert_eq!(slope(&[4.0]), None);
    }
}
