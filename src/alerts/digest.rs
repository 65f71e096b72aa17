//! The scheduled digest of an email channel (`digest = "0 0 8 * * Mon"`): the whole
//! scorecard by perspective, what changed status since the previous digest, and what is
//! forecast to miss: the weekly review a busy owner never has time to prepare.
//!
//! The schedule is read in the scorecard's time zone (unlike source schedules, which are
//! UTC): `0 0 8 * * Mon` is Monday 08:00 where the business is.
//!
//! A channel's first evaluation only records a baseline (the statuses of the moment); the
//! first digest goes out at the schedule's next tick after it. Each digest is enqueued in
//! the transaction that records it as sent, with the statuses it reported, so a restart
//! neither repeats nor skips one. Ticks missed while the daemon was down produce one
//! digest, not one per tick.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{NotifyKind, Settings};
use crate::notify::{
    Digest, DigestLine, ForecastRef, MeasureRef, Notification, NotificationKind, PeriodRef,
    TargetRef,
};
use crate::recompute::Catalog;
use crate::status::Direction;
use crate::store::{Store, StoreError};

/// Enqueues the digests due at `now`; returns how many.
pub async fn enqueue_due(
    store: &Store,
    settings: &Settings,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut enqueued = 0;
    let mut view = None;
    for channel in settings.notify.values() {
        let NotifyKind::Email {
            digest: Some(schedule),
            ..
        } = &channel.kind
        else {
            continue;
        };
        let last = store.last_digest(&channel.name).await?;
        let due = match &last {
            None => false,
            Some((sent_at, _)) => {
                // Digest schedules read in the scorecard's zone: 08:00 is the owner's 08:00.
                let sent = DateTime::from_timestamp(*sent_at, 0)
                    .unwrap_or(now)
                    .with_timezone(&settings.scorecard.timezone);
                schedule
                    .after(&sent)
                    .next()
                    .is_some_and(|tick| tick.with_timezone(&Utc) <= now)
            }
        };
        if last.is_some() && !due {
            continue;
        }
        if view.is_none() {
            view = Some(crate::scorecard::build(store, settings, catalog, now).await?);
        }
        let scorecard = view.as_ref().expect("built above");
        let statuses: BTreeMap<String, String> = scorecard
            .perspectives
            .iter()
            .flat_map(|perspective| perspective.measures.iter())
            .map(|measure| {
                (
                    measure.id.clone(),
                    measure.judged.status.as_str().to_string(),
                )
            })
            .collect();
        let statuses_json =
            serde_json::to_string(&statuses).expect("a map of strings always serializes");
        let Some((sent_at, previous)) = last else {
            // The baseline: the first digest reports changes from here.
            let mut tx = store.begin().await?;
            tx.save_digest(&channel.name, now.timestamp(), &statuses_json)
                .await?;
            tx.commit().await?;
            continue;
        };
        let previous: BTreeMap<String, String> =
            serde_json::from_str(&previous).unwrap_or_default();
        let forecasts: BTreeMap<String, (f64, String)> = store
            .alert_states()
            .await?
            .into_iter()
            .filter(|row| row.kind == "forecast" && row.status.as_deref() == Some("red"))
            .filter_map(|row| Some((row.subject, (row.value?, "red".to_string()))))
            .collect();
        let lines: Vec<DigestLine> = scorecard
            .perspectives
            .iter()
            .flat_map(|perspective| perspective.measures.iter())
            .map(|measure| {
                let kind = measure.period;
                let status = measure.judged.status.as_str().to_string();
                let start = DateTime::parse_from_rfc3339(&measure.judged.start)
                    .ok()
                    .map(|start| start.with_timezone(&settings.scorecard.timezone));
                DigestLine {
                    measure: MeasureRef {
                        id: measure.id.clone(),
                        name: measure.name.clone(),
                        perspective: measure.perspective.as_str().into(),
                        unit: measure.unit.clone(),
                        owner: measure.owner.clone(),
                    },
                    period: PeriodRef {
                        label: measure.judged.period.clone(),
                        start: measure.judged.start.clone(),
                        end: start
                            .map(|start| kind.next(start).to_rfc3339())
                            .unwrap_or_default(),
                        complete: measure.evaluate == "complete",
                    },
                    value: measure.judged.value,
                    target: measure.target.map(|target| TargetRef {
                        value: target.value,
                        direction: match target.direction {
                            Direction::Up => "up".into(),
                            Direction::Down => "down".into(),
                        },
                        warn: target.warn,
                    }),
                    previous_status: previous
                        .get(&measure.id)
                        .filter(|before| **before != status)
                        .cloned(),
                    status,
                    forecast: forecasts
                        .get(&measure.id)
                        .map(|(value, status)| ForecastRef {
                            value: *value,
                            status: status.clone(),
                            method: "projection".into(),
                            elapsed: 0.0,
                        }),
                }
            })
            .collect();
        let notification = Notification {
            digest: Some(Digest {
                since: DateTime::from_timestamp(sent_at, 0).map(|since| {
                    since
                        .with_timezone(&settings.scorecard.timezone)
                        .to_rfc3339()
                }),
                lines,
            }),
            ..Notification::new(NotificationKind::Digest, settings, now)
        };
        let mut tx = store.begin().await?;
        tx.enqueue(&notification.into_outbox(
            &channel.name,
            now.timestamp(),
            now.timestamp(),
            settings.alerts.give_up,
        ))
        .await?;
        tx.save_digest(&channel.name, now.timestamp(), &statuses_json)
            .await?;
        tx.commit().await?;
        enqueued += 1;
    }
    Ok(enqueued)
}
