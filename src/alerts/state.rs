//! The alert state machine: one step per evaluation, pure (no IO, `now` comes in).
//!
//! ```text
//!            bad                 hold met               good past recovery
//!   ok ──────────────► pending ─────────────► firing ─────────────────────► ok (resolved)
//!    ▲                   │ good                 │ still bad after `repeat`
//!    └───────────────────┘                      └──► firing (reminder)
//!   any ── no data ──► no_data ── data again ──► ok (no_data_resolved)
//! ```
//!
//! A condition must hold for the alert's hold (a number of consecutive evaluations, or a
//! time since it began) before it fires, and a firing alert resolves only when the value
//! comes back past its recovery level, so a value hovering at the threshold does not flap.

use crate::notify::EventKind;

/// The states an alert can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing wrong.
    Ok,
    /// The condition holds but not yet for the hold.
    Pending,
    /// Notified.
    Firing,
    /// No data to judge.
    NoData,
}

impl State {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Firing => "firing",
            State::NoData => "no_data",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [State::Ok, State::Pending, State::Firing, State::NoData]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// How long a condition must hold before it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldRule {
    /// This many consecutive evaluations (1: at once).
    Evaluations(u32),
    /// This many seconds since the condition began.
    Seconds(i64),
}

/// What one evaluation saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// The condition holds (off target).
    Bad,
    /// Not off target; `recovered` says whether the value is past the recovery level.
    Good {
        /// Past the recovery level (always true without one).
        recovered: bool,
    },
    /// Nothing to judge.
    NoData,
}

/// An alert's remembered state.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// The state.
    pub state: State,
    /// When it began (unix seconds).
    pub since: i64,
    /// Consecutive bad evaluations while pending.
    pub pending_count: u32,
    /// The last firing or reminder notification (unix seconds).
    pub last_notified: Option<i64>,
}

impl Memory {
    /// A new alert: ok since `now`.
    pub fn new(now: i64) -> Self {
        Self {
            state: State::Ok,
            since: now,
            pending_count: 0,
            last_notified: None,
        }
    }
}

/// One step: the new memory and the event to notify, if any.
pub fn step(
    memory: &Memory,
    observation: Observation,
    hold: HoldRule,
    repeat_seconds: i64,
    now: i64,
) -> (Memory, Option<EventKind>) {
    let held = |since: i64, count: u32| match hold {
        HoldRule::Evaluations(needed) => count >= needed.max(1),
        HoldRule::Seconds(seconds) => now - since >= seconds,
    };
    let fire = |since: i64| {
        (
            Memory {
                state: State::Firing,
                since,
                pending_count: 0,
                last_notified: Some(now),
            },
            Some(EventKind::Firing),
        )
    };
    match (memory.state, observation) {
        (State::NoData, Observation::NoData) => (memory.clone(), None),
        (_, Observation::NoData) => (
            Memory {
                state: State::NoData,
                since: now,
                pending_count: 0,
                last_notified: None,
            },
            Some(EventKind::NoData),
        ),
        (State::Firing, Observation::Bad | Observation::Good { recovered: false }) => {
            let due = memory
                .last_notified
                .is_none_or(|last| now - last >= repeat_seconds);
            if due {
                (
                    Memory {
                        last_notified: Some(now),
                        ..memory.clone()
                    },
                    Some(EventKind::Reminder),
                )
            } else {
                (memory.clone(), None)
            }
        }
        (State::Firing, Observation::Good { recovered: true }) => {
            (Memory::new(now), Some(EventKind::Resolved))
        }
        (State::Pending, Observation::Bad) => {
            let count = memory.pending_count + 1;
            if held(memory.since, count) {
                fire(memory.since)
            } else {
                (
                    Memory {
                        pending_count: count,
                        ..memory.clone()
                    },
                    None,
                )
            }
        }
        (State::Ok | State::NoData, Observation::Bad) => {
            let event_back = memory.state == State::NoData;
            if held(now, 1) {
                fire(now)
            } else {
                let pending = Memory {
                    state: State::Pending,
                    since: now,
                    pending_count: 1,
                    last_notified: None,
                };
                (pending, event_back.then_some(EventKind::NoDataResolved))
            }
        }
        (State::Pending, Observation::Good { .. }) => (Memory::new(now), None),
        (State::NoData, Observation::Good { .. }) => {
            (Memory::new(now), Some(EventKind::NoDataResolved))
        }
        (State::Ok, Observation::Good { .. }) => (memory.clone(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn run(
        observations: &[Observation],
        hold: HoldRule,
        every: i64,
    ) -> Vec<(State, Option<EventKind>)> {
        let mut memory = Memory::new(0);
        observations
            .iter()
            .enumerate()
            .map(|(index, observation)| {
                let (next, event) = step(&memory, *observation, hold, DAY, index as i64 * every);
                memory = next;
                (memory.state, event)
            })
            .collect()
    }

    const BAD: Observation = Observation::Bad;
    const GOOD: Observation = Observation::Good { recovered: true };
    const HOVER: Observation = Observation::Good { recovered: false };

    #[test]
    fn a_complete_period_fires_at_once_and_resolves_past_recovery_only() {
        let steps = run(
            &[BAD, HOVER, HOVER, GOOD, GOOD],
            HoldRule::Evaluations(1),
            60,
        );
        assert_eq!(
            steps,
            [
                (State::Firing, Some(EventKind::Firing)),
                (State::Firing, None),
                (State::Firing, None),
                (State::Ok, Some(EventKind::Resolved)),
                (State::Ok, None),
            ]
        );
    }

    #[test]
    fn the_current_period_needs_two_bad_evaluations_and_a_blip_does_not_fire() {
        let steps = run(&[BAD, GOOD, BAD, BAD, BAD], HoldRule::Evaluations(2), 60);
        let events: Vec<_> = steps.iter().map(|(_, event)| *event).collect();
        assert_eq!(
            events,
            [None, None, None, Some(EventKind::Firing), None],
            "{steps:?}"
        );
    }

    #[test]
    fn a_value_hovering_at_the_threshold_never_flaps() {
        // Alternating just-red and just-green-but-below-recovery for a day of evaluations.
        let observations: Vec<Observation> = (0..48)
            .map(|index| if index % 2 == 0 { BAD } else { HOVER })
            .collect();
        let steps = run(&observations, HoldRule::Evaluations(1), 1800);
        let events: Vec<_> = steps.iter().filter_map(|(_, event)| *event).collect();
        assert_eq!(
            events,
            [EventKind::Firing],
            "one firing, no resolve/fire pairs"
        );
    }

    #[test]
    fn reminders_come_every_repeat_while_firing() {
        let observations = vec![BAD; 5];
        let mut memory = Memory::new(0);
        let mut events = Vec::new();
        for (index, observation) in observations.into_iter().enumerate() {
            let (next, event) = step(
                &memory,
                observation,
                HoldRule::Evaluations(1),
                DAY,
                index as i64 * DAY / 2,
            );
            memory = next;
            events.push(event);
        }
        assert_eq!(
            events,
            [
                Some(EventKind::Firing),
                None,
                Some(EventKind::Reminder),
                None,
                Some(EventKind::Reminder)
            ]
        );
    }

    #[test]
    fn a_duration_hold_counts_time_not_evaluations() {
        let steps = run(&[BAD, BAD, BAD, BAD], HoldRule::Seconds(3 * 3600), 3600);
        let events: Vec<_> = steps.iter().map(|(_, event)| *event).collect();
        assert_eq!(events, [None, None, None, Some(EventKind::Firing)]);
    }

    #[test]
    fn no_data_is_a_state_of_its_own() {
        let steps = run(
            &[Observation::NoData, Observation::NoData, GOOD, BAD],
            HoldRule::Evaluations(1),
            60,
        );
        assert_eq!(
            steps,
            [
                (State::NoData, Some(EventKind::NoData)),
                (State::NoData, None),
                (State::Ok, Some(EventKind::NoDataResolved)),
                (State::Firing, Some(EventKind::Firing)),
            ]
        );
        assert_eq!(State::parse("no_data"), Some(State::NoData));
    }
}
