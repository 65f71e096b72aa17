//! Strategy-map evidence: for every driver → effect link between objectives, the lagged
//! correlation between the driver's measures and the effect's measures over the stored
//! history. It answers the question a balanced scorecard asks and rarely checks: does
//! the cause actually move the effect, and how many periods later?
//!
//! For each pair (driver measure, effect measure) with the same period kind, the Pearson
//! correlation of the effect at period *t* with the driver at *t − lag* is computed for
//! lags 0 to [`MAX_LAG`] over the periods where both have a stored value (a period no
//! record touched is left out, not taken as zero). The pair's evidence is
//! the lag with the largest |r|, its coefficient and how many periods stand behind it;
//! below [`MIN_PERIODS`] overlapping periods it is "not enough data". A link's evidence
//! is its strongest pair's. Correlation is not causation, and the page says so.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Settings;
use crate::recompute::Catalog;
use crate::store::{Store, StoreError};

/// The largest lag tried, in periods.
pub const MAX_LAG: usize = 6;
/// The fewest overlapping periods a coefficient is reported on.
pub const MIN_PERIODS: usize = 8;

/// The correlation at one lag.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Lagged {
    /// Periods the effect trails the driver by (0 to `max_lag`).
    pub lag: usize,
    /// Pearson's r, from -1 to 1.
    pub coefficient: f64,
    /// Overlapping periods behind it (at least `min_periods`).
    pub periods: usize,
}

/// Pearson's r over pairs; `None` below two pairs or when either side is constant.
fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let n_f = n as f64;
    let mean_x = pairs.iter().map(|(x, _)| x).sum::<f64>() / n_f;
    let mean_y = pairs.iter().map(|(_, y)| y).sum::<f64>() / n_f;
    let (mut covariance, mut var_x, mut var_y) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        covariance += (x - mean_x) * (y - mean_y);
        var_x += (x - mean_x).powi(2);
        var_y += (y - mean_y).powi(2);
    }
    (var_x > 0.0 && var_y > 0.0).then(|| covariance / (var_x.sqrt() * var_y.sqrt()))
}

/// The strongest lag of `effect` behind `driver` (equally spaced periods, oldest first,
/// aligned on the same calendar), or `None` when no lag has [`MIN_PERIODS`] overlapping
/// values.
pub fn best_lag(driver: &[Option<f64>], effect: &[Option<f64>]) -> Option<Lagged> {
    (0..=MAX_LAG)
        .filter_map(|lag| {
            let pairs: Vec<(f64, f64)> = (lag..effect.len().min(driver.len() + lag))
                .filter_map(|t| Some((driver[t - lag]?, effect[t]?)))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            (pairs.len() >= MIN_PERIODS)
                .then(|| pearson(&pairs))
                .flatten()
                .map(|coefficient| Lagged {
                    lag,
                    coefficient,
                    periods: pairs.len(),
                })
        })
        .max_by(|a, b| {
            a.coefficient
                .abs()
                .partial_cmp(&b.coefficient.abs())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
}

/// One measure pair's evidence.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PairEvidence {
    /// A measure of the driving objective.
    pub driver_measure: String,
    /// A measure of the objective it drives, with the same period kind.
    pub effect_measure: String,
    /// The lag with the strongest correlation; `null`: not enough data.
    pub best: Option<Lagged>,
}

/// One cause → effect link of the strategy map.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Link {
    /// The driving objective's id.
    pub driver: String,
    /// The id of the objective it drives.
    pub effect: String,
    /// The pair with the strongest correlation; `null`: not enough data for any pair.
    pub best: Option<PairEvidence>,
    /// Every pair of a driver measure and an effect measure with the same period kind.
    pub pairs: Vec<PairEvidence>,
}

/// An objective box.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ObjectiveView {
    /// The objective's id (its key under `[objectives]`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its perspective row (`Perspective::as_str`).
    #[schema(value_type = crate::config::Perspective)]
    pub perspective: &'static str,
    /// The ids of its measures.
    pub measures: Vec<String>,
}

/// The strategy map with its evidence (`GET /api/v1/strategy-map`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StrategyMap {
    /// The objectives, in configuration order.
    pub objectives: Vec<ObjectiveView>,
    /// One link per driver of each objective, with its evidence.
    pub links: Vec<Link>,
    /// Lags tried: 0 to this many periods.
    pub max_lag: usize,
    /// The fewest overlapping periods a coefficient is reported on.
    pub min_periods: usize,
}

/// Builds the strategy map with its evidence from the stored series.
pub async fn build(
    store: &Store,
    settings: &Settings,
    catalog: &Catalog,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<StrategyMap, StoreError> {
    let tz = catalog.timezone();
    // Every measure's whole history, one value per period, oldest first.
    let mut series: BTreeMap<String, BTreeMap<i64, Option<f64>>> = BTreeMap::new();
    for measure in catalog.measures() {
        let Some(first) = store.first_value_period(measure.id).await? else {
            continue;
        };
        let kind = measure.config.period;
        let end = kind.next(kind.start_of(now, tz)).timestamp();
        let stored: BTreeMap<i64, Option<f64>> = store
            .values(measure.id, first, end)
            .await?
            .into_iter()
            .collect();
        let mut all = BTreeMap::new();
        let mut start = kind.start_of(
            chrono::DateTime::from_timestamp(first, 0).unwrap_or(now),
            tz,
        );
        while start.timestamp() < end {
            // Only stored values count: a period no record ever touched is not evidence
            // (its zero would correlate with every other silent measure).
            all.insert(
                start.timestamp(),
                stored.get(&start.timestamp()).copied().flatten(),
            );
            start = kind.next(start);
        }
        series.insert(measure.config.id.clone(), all);
    }
    let measures_of = |objective: &str| -> Vec<&crate::config::MeasureConfig> {
        settings
            .measures
            .iter()
            .filter(|measure| measure.objective.as_deref() == Some(objective))
            .collect()
    };
    let objectives = settings
        .objectives
        .iter()
        .map(|(id, objective)| ObjectiveView {
            id: id.clone(),
            name: objective.name.clone(),
            perspective: objective.perspective.as_str(),
            measures: measures_of(id).iter().map(|m| m.id.clone()).collect(),
        })
        .collect();
    let mut links = Vec::new();
    for (effect, objective) in &settings.objectives {
        for driver in &objective.drivers {
            let mut pairs = Vec::new();
            for driver_measure in measures_of(driver) {
                for effect_measure in measures_of(effect) {
                    if driver_measure.period != effect_measure.period {
                        continue;
                    }
                    let (Some(x), Some(y)) = (
                        series.get(&driver_measure.id),
                        series.get(&effect_measure.id),
                    ) else {
                        pairs.push(PairEvidence {
                            driver_measure: driver_measure.id.clone(),
                            effect_measure: effect_measure.id.clone(),
                            best: None,
                        });
                        continue;
                    };
                    // Align both on the union of their periods.
                    let periods: Vec<i64> = x
                        .keys()
                        .chain(y.keys())
                        .copied()
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let xs: Vec<Option<f64>> = periods
                        .iter()
                        .map(|p| x.get(p).copied().flatten())
                        .collect();
                    let ys: Vec<Option<f64>> = periods
                        .iter()
                        .map(|p| y.get(p).copied().flatten())
                        .collect();
                    pairs.push(PairEvidence {
                        driver_measure: driver_measure.id.clone(),
                        effect_measure: effect_measure.id.clone(),
                        best: best_lag(&xs, &ys),
                    });
                }
            }
            let best = pairs
                .iter()
                .filter(|pair| pair.best.is_some())
                .max_by(|a, b| {
                    let strength =
                        |pair: &PairEvidence| pair.best.map_or(0.0, |b| b.coefficient.abs());
                    strength(a)
                        .partial_cmp(&strength(b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .cloned();
            links.push(Link {
                driver: driver.clone(),
                effect: effect.clone(),
                best,
                pairs,
            });
        }
    }
    Ok(StrategyMap {
        objectives,
        links,
        max_lag: MAX_LAG,
        min_periods: MIN_PERIODS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic wiggly series.
    fn driver(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let i = i as f64;
                100.0 + 10.0 * (i * 0.9).sin() + 5.0 * (i * 2.3).cos() + i
            })
            .collect()
    }

    #[test]
    fn finds_a_known_lag() {
        // The effect is the driver two periods later, scaled, plus a little noise.
        let x = driver(36);
        let y: Vec<Option<f64>> = (0..36)
            .map(|t| (t >= 2).then(|| 0.5 * x[t - 2] + 3.0 + ((t * 7919) % 13) as f64 * 0.05))
            .collect();
        let x: Vec<Option<f64>> = x.into_iter().map(Some).collect();
        let best = best_lag(&x, &y).expect("enough data");
        assert_eq!(best.lag, 2);
        assert!(best.coefficient > 0.99, "{best:?}");
        assert_eq!(best.periods, 34);
    }

    #[test]
    fn a_negative_relation_is_found_too_and_short_series_are_not_enough() {
        let x = driver(24);
        let y: Vec<Option<f64>> = (0..24)
            .map(|t| (t >= 1).then(|| 500.0 - 2.0 * x[t - 1]))
            .collect();
        let xs: Vec<Option<f64>> = x.iter().copied().map(Some).collect();
        let best = best_lag(&xs, &y).expect("enough data");
        assert_eq!(best.lag, 1);
        assert!(best.coefficient < -0.999, "{best:?}");
        let short: Vec<Option<f64>> = xs[..MIN_PERIODS - 1].to_vec();
        assert_eq!(best_lag(&short, &short), None, "below the minimum");
        let flat = vec![Some(1.0); 20];
        assert_eq!(
            best_lag(&flat, &xs[..20]),
            None,
            "a constant has no correlation"
        );
    }
}
