//! Alerts: after each sync (and every minute in the daemon), every measure's judged period
//! is checked against its alert rule, every running period is projected to its end, and
//! every source's last successful sync is checked against its `stale_after`. Each alert
//! steps its state machine ([`state`]); the events that need telling become outbox
//! messages, grouped per channel, in the same transaction as the state changes, so a
//! crash can neither lose a notification nor send one twice for one change.
//!
//! Alerts and their keys:
//! - `measure:<id>`: the judged period (the last complete one for sums, counts and
//!   formulas, the running one otherwise, or as `evaluate` says) is in `alert_on`
//!   (red by default). Hold: one evaluation for a complete period (a closed month does
//!   not flap), two for the running one, or the measure's `for`. It resolves when the
//!   value is back past `recovery` (or simply back on target without one). No value to
//!   judge (an average of nothing, a formula over missing inputs) is `no data`, never a
//!   zero; a running period gets `no_data_grace` before it counts as such.
//! - `forecast:<id>`: the running period's projection ([`forecast`]) ends red. Hold:
//!   two evaluations. It closes quietly when the period ends (the measure alert judges
//!   the complete period from then on).
//! - `stale:<source>`: no successful sync within the source's `stale_after`.
//!
//! A measure whose sources have never synced successfully is not judged yet: an empty
//! database at first start is not a red scorecard (its stale alert covers a source that
//! never syncs).

pub mod digest;
pub mod forecast;
pub mod state;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config::{Hold, MeasureKind, Settings};
use crate::measures::Aggregate;
use crate::measures::period::PeriodKind;
use crate::notify::{
    AlertEvent, EventKind, ForecastRef, MeasureRef, Notification, NotificationKind, PeriodRef,
    SourceRef, TargetRef,
};
use crate::recompute::{BoundMeasure, Catalog};
use crate::status::{Direction, Status, Target};
use crate::store::{AlertRow, HistoryRow, Store, StoreError};
use state::{HoldRule, Memory, Observation, State};

/// What one evaluation did.
#[derive(Debug, Default, Clone)]
pub struct Evaluation {
    /// Events decided (sent or silenced).
    pub events: Vec<AlertEvent>,
    /// Outbox messages created or joined.
    pub messages: usize,
}

/// One alert's outcome of this evaluation.
struct Change {
    row: AlertRow,
    event: Option<AlertEvent>,
    /// Owners of the measures it concerns (for routing).
    owners: Vec<String>,
}

fn rfc3339(seconds: i64, tz: Tz) -> String {
    tz.timestamp_opt(seconds, 0)
        .single()
        .map(|time| time.to_rfc3339())
        .unwrap_or_default()
}

fn period_ref(kind: PeriodKind, start: DateTime<Tz>, now: DateTime<Utc>) -> PeriodRef {
    let end = kind.next(start);
    PeriodRef {
        label: kind.label(start),
        start: start.to_rfc3339(),
        end: end.to_rfc3339(),
        complete: end.with_timezone(&Utc) <= now,
    }
}

fn target_ref(target: &Target) -> TargetRef {
    TargetRef {
        value: target.value,
        direction: match target.direction {
            Direction::Up => "up".into(),
            Direction::Down => "down".into(),
        },
        warn: target.warn,
    }
}

fn measure_ref(measure: &BoundMeasure) -> MeasureRef {
    let config = &measure.config;
    MeasureRef {
        id: config.id.clone(),
        name: config.name.clone(),
        perspective: config.perspective.as_str().into(),
        unit: config.unit.clone(),
        owner: config.owner.clone(),
    }
}

/// The memory of a stored alert, or a new one.
fn memory_of(row: Option<&AlertRow>, now: i64) -> Memory {
    row.and_then(|row| {
        Some(Memory {
            state: State::parse(&row.state)?,
            since: row.since,
            pending_count: row.pending_count.max(0) as u32,
            last_notified: row.last_notified,
        })
    })
    .unwrap_or_else(|| Memory::new(now))
}

/// The stored row of alert `kind:subject` after this evaluation.
fn alert_row(
    kind: &str,
    subject: &str,
    memory: &Memory,
    status: Option<String>,
    period_start: Option<i64>,
    value: Option<f64>,
    now: i64,
) -> AlertRow {
    AlertRow {
        alert: format!("{kind}:{subject}"),
        kind: kind.into(),
        subject: subject.into(),
        state: memory.state.as_str().into(),
        status,
        since: memory.since,
        pending_count: i64::from(memory.pending_count),
        period_start,
        value,
        last_notified: memory.last_notified,
        updated_at: now,
    }
}

/// True when `value` is back past the recovery level (always, without one).
fn recovered(recovery: Option<f64>, target: &Target, value: f64) -> bool {
    match (recovery, target.direction) {
        (None, _) => true,
        (Some(level), Direction::Up) => value >= level,
        (Some(level), Direction::Down) => value <= level,
    }
}

fn hold_rule(hold: Option<Hold>, complete: bool) -> HoldRule {
    match hold {
        Some(Hold::Evaluations(count)) => HoldRule::Evaluations(count),
        Some(Hold::Duration(duration)) => HoldRule::Seconds(duration.as_secs() as i64),
        None if complete => HoldRule::Evaluations(1),
        None => HoldRule::Evaluations(2),
    }
}

/// The sources a measure reads, through its formula's inputs.
fn sources_of(id: &str, settings: &Settings) -> Vec<String> {
    let mut sources = Vec::new();
    let mut pending = vec![id.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(id) = pending.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        match settings.measure(&id).map(|measure| &measure.kind) {
            Some(MeasureKind::Records(records)) => sources.push(records.source.clone()),
            Some(MeasureKind::Formula { inputs, .. }) => pending.extend(inputs.iter().cloned()),
            None => {}
        }
    }
    sources
}

/// Evaluates every alert at `now` and enqueues what needs telling.
pub async fn evaluate(
    store: &Store,
    settings: &Settings,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<Evaluation, StoreError> {
    let tz = catalog.timezone();
    let now_s = now.timestamp();
    let stored: HashMap<String, AlertRow> = store
        .alert_states()
        .await?
        .into_iter()
        .map(|row| (row.alert.clone(), row))
        .collect();
    let silenced: HashMap<String, i64> = store.silences(now_s).await?.into_iter().collect();
    let repeat = settings.alerts.repeat.as_secs() as i64;
    let mut changes = Vec::new();
    let mut projections: HashMap<String, Option<f64>> = HashMap::new();

    // Sources that have synced successfully at least once: a measure over a source that
    // never has is not judged (an empty database is not a red scorecard).
    let mut health = HashMap::new();
    for source in settings.sources.keys() {
        health.insert(source.clone(), store.source_health(source).await?);
    }
    let synced: std::collections::HashSet<&String> = health
        .iter()
        .filter(|(_, health)| health.last_success.is_some())
        .map(|(source, _)| source)
        .collect();

    for measure in catalog.measures() {
        let config = &measure.config;
        let kind = config.period;
        let current = kind.start_of(now, tz);
        let next = kind.next(current);
        let previous = kind.start_of(
            current.with_timezone(&Utc) - chrono::Duration::seconds(1),
            tz,
        );
        let mut first = current;
        for _ in 0..forecast::TREND_PERIODS {
            first = kind.start_of(first.with_timezone(&Utc) - chrono::Duration::seconds(1), tz);
        }
        let rows: BTreeMap<i64, Option<f64>> = store
            .values(measure.id, first.timestamp(), next.timestamp())
            .await?
            .into_iter()
            .collect();
        let value_of = |start: i64| match rows.get(&start) {
            Some(value) => *value,
            None => measure.value_without_row(),
        };
        let elapsed = kind.elapsed_fraction(current, now);
        let history: Vec<f64> = rows
            .iter()
            .filter(|(start, _)| **start < current.timestamp())
            .filter_map(|(_, value)| *value)
            .collect();
        let so_far = value_of(current.timestamp());
        let projection = match &config.kind {
            MeasureKind::Records(records) => match records.aggregate {
                Aggregate::Sum | Aggregate::Count => {
                    so_far.and_then(|value| forecast::pro_rata(value, elapsed))
                }
                _ => so_far.and_then(|value| forecast::trend(value, elapsed, &history)),
            },
            MeasureKind::Formula { formula, inputs } => {
                let values: HashMap<String, Option<f64>> = inputs
                    .iter()
                    .map(|input| (input.clone(), projections.get(input).copied().flatten()))
                    .collect();
                (elapsed >= forecast::MIN_ELAPSED)
                    .then(|| {
                        crate::measures::evaluate_formula(formula, &values)
                            .ok()
                            .flatten()
                    })
                    .flatten()
                    .map(|value| forecast::Projection {
                        value,
                        method: forecast::Method::Formula,
                    })
            }
        };
        projections.insert(
            config.id.clone(),
            projection.map(|projection| projection.value),
        );

        let (Some(target), false) = (config.target, config.alert.on.is_empty()) else {
            continue;
        };
        if !sources_of(&config.id, settings)
            .iter()
            .all(|source| synced.contains(&source))
        {
            continue;
        }
        let owners: Vec<String> = config.owner.iter().cloned().collect();

        // The measure alert.
        let complete = crate::scorecard::judges_complete_period(measure);
        let judged = if complete { previous } else { current };
        let judged_value = value_of(judged.timestamp());
        let observation = match judged_value {
            None if complete
                || (now_s - current.timestamp()) as u64
                    >= settings.alerts.no_data_grace.as_secs() =>
            {
                Some(Observation::NoData)
            }
            None => None,
            Some(value) if config.alert.on.contains(&target.status(value)) => {
                Some(Observation::Bad)
            }
            Some(value) => Some(Observation::Good {
                recovered: recovered(config.alert.recovery, &target, value),
            }),
        };
        let status = judged_value.map_or("no_data".to_string(), |value| {
            target.status(value).as_str().to_string()
        });
        let key = format!("measure:{}", config.id);
        if let Some(observation) = observation {
            let before = stored.get(&key);
            let memory = memory_of(before, now_s);
            let (next_memory, event) = state::step(
                &memory,
                observation,
                hold_rule(config.alert.hold, complete),
                repeat,
                now_s,
            );
            let event = event.map(|event| AlertEvent {
                event,
                measure: Some(measure_ref(measure)),
                source: None,
                period: Some(period_ref(kind, judged, now)),
                value: judged_value,
                target: Some(target_ref(&target)),
                status: status.clone(),
                previous_status: before.and_then(|row| row.status.clone()),
                forecast: None,
                since: rfc3339(next_memory.since, tz),
                at: rfc3339(now_s, tz),
            });
            changes.push(Change {
                row: alert_row(
                    "measure",
                    &config.id,
                    &next_memory,
                    Some(status.clone()),
                    Some(judged.timestamp()),
                    judged_value,
                    now_s,
                ),
                event,
                owners: owners.clone(),
            });
        }

        // The forecast alert of the running period.
        if !config.alert.forecast || !config.alert.on.contains(&Status::Red) {
            continue;
        }
        let key = format!("forecast:{}", config.id);
        let before = stored.get(&key);
        let mut memory = memory_of(before, now_s);
        // A new period starts the forecast afresh (the old one closes quietly).
        if before.is_some_and(|row| row.period_start != Some(current.timestamp())) {
            memory = Memory::new(now_s);
        }
        let Some(projection) = projection else {
            if before.is_some_and(|row| row.period_start != Some(current.timestamp())) {
                changes.push(Change {
                    row: alert_row(
                        "forecast",
                        &config.id,
                        &Memory::new(now_s),
                        None,
                        Some(current.timestamp()),
                        None,
                        now_s,
                    ),
                    event: None,
                    owners,
                });
            }
            continue;
        };
        let projected_status = target.status(projection.value);
        let observation = if projected_status == Status::Red {
            Observation::Bad
        } else {
            Observation::Good { recovered: true }
        };
        let (next_memory, event) = state::step(
            &memory,
            observation,
            HoldRule::Evaluations(2),
            repeat,
            now_s,
        );
        let event = event.and_then(|event| {
            let event = match event {
                EventKind::Firing => EventKind::Forecast,
                EventKind::Resolved => EventKind::ForecastResolved,
                EventKind::Reminder => EventKind::Reminder,
                _ => return None,
            };
            Some(AlertEvent {
                event,
                measure: Some(measure_ref(measure)),
                source: None,
                period: Some(period_ref(kind, current, now)),
                value: so_far,
                target: Some(target_ref(&target)),
                status: so_far.map_or("no_data".into(), |value| {
                    target.status(value).as_str().to_string()
                }),
                previous_status: None,
                forecast: Some(ForecastRef {
                    value: projection.value,
                    status: projected_status.as_str().into(),
                    method: projection.method.as_str().into(),
                    elapsed,
                }),
                since: rfc3339(next_memory.since, tz),
                at: rfc3339(now_s, tz),
            })
        });
        changes.push(Change {
            row: alert_row(
                "forecast",
                &config.id,
                &next_memory,
                Some(projected_status.as_str().into()),
                Some(current.timestamp()),
                Some(projection.value),
                now_s,
            ),
            event,
            owners,
        });
    }

    // Stale sources.
    for source in settings.sources.values() {
        let Some(stale_after) = source.stale_after else {
            continue;
        };
        let key = format!("stale:{}", source.name);
        let before = stored.get(&key);
        let health = health.get(&source.name).cloned().unwrap_or_default();
        // Never synced: counted from the first attempt, or from when the alert was first
        // evaluated (a daemon that has not run a sync yet).
        let baseline = health
            .last_success
            .or(health.first_run)
            .or(before.map(|row| row.since))
            .unwrap_or(now_s);
        let stale = now_s - baseline > stale_after.as_secs() as i64;
        let observation = if stale {
            Observation::Bad
        } else {
            Observation::Good { recovered: true }
        };
        let memory = memory_of(before, now_s);
        let (next_memory, event) = state::step(
            &memory,
            observation,
            HoldRule::Evaluations(1),
            repeat,
            now_s,
        );
        let owners: Vec<String> = catalog
            .measures()
            .iter()
            .filter(|measure| {
                measure
                    .records()
                    .is_some_and(|records| records.source == source.name)
            })
            .filter_map(|measure| measure.config.owner.clone())
            .collect();
        let status = if stale { "stale" } else { "ok" };
        let event = event.and_then(|event| {
            let event = match event {
                EventKind::Firing => EventKind::Stale,
                EventKind::Resolved => EventKind::StaleResolved,
                EventKind::Reminder => EventKind::Reminder,
                _ => return None,
            };
            Some(AlertEvent {
                event,
                measure: None,
                source: Some(SourceRef {
                    name: source.name.clone(),
                    kind: source.kind.as_str().into(),
                    last_success_at: health.last_success.map(|at| rfc3339(at, tz)),
                    last_error: health.last_error.clone(),
                }),
                period: None,
                value: None,
                target: None,
                status: status.into(),
                previous_status: before.and_then(|row| row.status.clone()),
                forecast: None,
                since: rfc3339(next_memory.since, tz),
                at: rfc3339(now_s, tz),
            })
        });
        // The before-row's baseline survives: a never-synced source keeps its first `since`.
        let since = if next_memory.state == State::Ok && before.is_none() {
            baseline
        } else {
            next_memory.since
        };
        changes.push(Change {
            row: alert_row(
                "stale",
                &source.name,
                &Memory {
                    since,
                    ..next_memory
                },
                Some(status.into()),
                None,
                None,
                now_s,
            ),
            event,
            owners,
        });
    }

    commit(store, settings, &silenced, changes, now).await
}

/// Writes the states, the history and the outbox messages of one evaluation in one
/// transaction. Events go to every channel whose `owners` match (or that has none),
/// one message per channel, joining a message still waiting for its group.
async fn commit(
    store: &Store,
    settings: &Settings,
    silenced: &HashMap<String, i64>,
    changes: Vec<Change>,
    now: DateTime<Utc>,
) -> Result<Evaluation, StoreError> {
    let now_s = now.timestamp();
    let mut evaluation = Evaluation::default();
    let mut per_channel: BTreeMap<String, Vec<(usize, AlertEvent)>> = BTreeMap::new();
    let mut history = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let Some(event) = &change.event else { continue };
        let is_silenced = silenced.contains_key(&change.row.subject);
        history.push(HistoryRow {
            alert: change.row.alert.clone(),
            at: now_s,
            event: event.event.as_str().into(),
            status: change.row.status.clone(),
            value: change.row.value,
            period_start: change.row.period_start,
            silenced: is_silenced,
            message: None,
        });
        evaluation.events.push(event.clone());
        if is_silenced {
            continue;
        }
        for channel in settings.notify.values() {
            let routed = match &channel.owners {
                None => true,
                Some(owners) => change.owners.iter().any(|owner| owners.contains(owner)),
            };
            if routed {
                per_channel
                    .entry(channel.name.clone())
                    .or_default()
                    .push((index, event.clone()));
            }
        }
    }

    let mut tx = store.begin().await?;
    for change in &changes {
        tx.save_alert(&change.row).await?;
    }
    let mut message_of: HashMap<usize, String> = HashMap::new();
    for (name, events) in per_channel {
        let channel = &settings.notify[&name];
        let alerts: Vec<AlertEvent> = events.iter().map(|(_, event)| event.clone()).collect();
        let id = match tx.waiting_message(&name, now_s).await? {
            Some(waiting) => {
                let mut notification: Notification =
                    serde_json::from_str(&waiting.body).map_err(|error| {
                        StoreError::Corrupt(format!("outbox {}: {error}", waiting.id))
                    })?;
                notification.alerts.extend(alerts);
                tx.update_body(&waiting.id, &to_json(&notification)).await?;
                waiting.id
            }
            None => {
                let last = tx.last_message_at(&name).await?;
                let wait = now_s + channel.group_wait.as_secs() as i64;
                let interval =
                    last.map_or(0, |last| last + channel.group_interval.as_secs() as i64);
                let not_before = wait.max(interval);
                let notification = Notification {
                    alerts,
                    ..Notification::new(NotificationKind::Alerts, settings, now)
                };
                let id = notification.id.clone();
                tx.enqueue(&notification.into_outbox(
                    &name,
                    now_s,
                    not_before,
                    settings.alerts.give_up,
                ))
                .await?;
                id
            }
        };
        evaluation.messages += 1;
        for (index, _) in events {
            message_of.entry(index).or_insert_with(|| id.clone());
        }
    }
    let mut event_index = changes
        .iter()
        .enumerate()
        .filter(|(_, change)| change.event.is_some())
        .map(|(index, _)| index);
    for mut row in history {
        if let Some(index) = event_index.next() {
            row.message = message_of.get(&index).cloned();
        }
        tx.add_history(&row).await?;
    }
    tx.commit().await?;
    Ok(evaluation)
}

fn to_json(notification: &Notification) -> String {
    serde_json::to_string(notification).expect("a notification of plain fields always serializes")
}
