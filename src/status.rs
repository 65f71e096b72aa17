//! Status: a measure value against its target gives green, amber, red or none.
//!
//! Pure: no IO, no clock. The warning band lies between `warn` and `value` of the
//! target, on the bad side: for `up` (higher is better) a value at or above the target
//! is green, at or above `warn` amber, below it red; `down` mirrors this.

use serde::Serialize;

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Higher is better (revenue, satisfaction).
    Up,
    /// Lower is better (reply time, churn).
    Down,
}

/// A measure's target: `target = { value = 50000, direction = "up", warn = 45000 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Target {
    /// The target value.
    pub value: f64,
    /// Which way is better.
    pub direction: Direction,
    /// The edge of the warning band, on the bad side of `value`; none means no amber.
    pub warn: Option<f64>,
}

/// The traffic light of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// On target.
    Green,
    /// Inside the warning band.
    Amber,
    /// Off target.
    Red,
    /// No target, or no value.
    None,
}

impl Status {
    /// Lowercase name used in the API, the CLI and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Green => "green",
            Status::Amber => "amber",
            Status::Red => "red",
            Status::None => "none",
        }
    }
}

impl Target {
    /// Checks that `warn` lies on the bad side of the target.
    pub fn check(&self) -> Result<(), String> {
        match (self.direction, self.warn) {
            (Direction::Up, Some(warn)) if warn > self.value => Err(format!(
                "warn ({warn}) must not be above the target value ({}) when direction is up",
                self.value
            )),
            (Direction::Down, Some(warn)) if warn < self.value => Err(format!(
                "warn ({warn}) must not be below the target value ({}) when direction is down",
                self.value
            )),
            _ => Ok(()),
        }
    }

    /// The status of `value` against this target.
    pub fn status(&self, value: f64) -> Status {
        let (on_target, in_band) = match self.direction {
            Direction::Up => (
                value >= self.value,
                self.warn.is_some_and(|warn| value >= warn),
            ),
            Direction::Down => (
                value <= self.value,
                self.warn.is_some_and(|warn| value <= warn),
            ),
        };
        if on_target {
            Status::Green
        } else if in_band {
            Status::Amber
        } else {
            Status::Red
        }
    }
}

/// The status of an optional value against an optional target.
pub fn evaluate(value: Option<f64>, target: Option<&Target>) -> Status {
    match (value, target) {
        (Some(value), Some(target)) if value.is_finite() => target.status(value),
        _ => Status::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let up = Target {
            value: 50_000.0,
            direction: Direction::Up,
            warn: Some(45_000.0),
        };
        let down = Target {
            value: 60.0,
            direction: Direction::Down,
            warn: Some(90.0),
        };
        let up_no_band = Target {
            value: 10.0,
            direction: Direction::Up,
            warn: None,
        };
        let cases = [
            (Some(50_000.0), Some(&up), Status::Green),
            (Some(60_000.0), Some(&up), Status::Green),
            (Some(45_000.0), Some(&up), Status::Amber),
            (Some(49_999.0), Some(&up), Status::Amber),
            (Some(44_999.0), Some(&up), Status::Red),
            (Some(60.0), Some(&down), Status::Green),
            (Some(30.0), Some(&down), Status::Green),
            (Some(90.0), Some(&down), Status::Amber),
            (Some(90.5), Some(&down), Status::Red),
            (Some(9.0), Some(&up_no_band), Status::Red),
            (Some(10.0), Some(&up_no_band), Status::Green),
            (None, Some(&up), Status::None),
            (Some(1.0), None, Status::None),
            (Some(f64::NAN), Some(&up), Status::None),
        ];
        for (value, target, expected) in cases {
            assert_eq!(evaluate(value, target), expected, "{value:?} vs {target:?}");
        }
    }

    #[test]
    fn warn_on_the_good_side_is_rejected() {
        let up = Target {
            value: 100.0,
            direction: Direction::Up,
            warn: Some(120.0),
        };
        let down = Target {
            value: 100.0,
            direction: Direction::Down,
            warn: Some(80.0),
        };
        assert!(up.check().unwrap_err().contains("above the target"));
        assert!(down.check().unwrap_err().contains("below the target"));
    }
}
