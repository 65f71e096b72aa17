//! The bakery's team over the year, shared by the training APIs (`moodle`, `talentlms`):
//! who works there, in which role, since when, and who left.
//!
//! Sixteen people were on the team before the year began; nine join during it: an
//! apprentice in the autumn, a summer replacement, a Christmas temp (who leaves in
//! January), four hires in a rush while the shop is short-staffed (three people left
//! about three months back: the scenario's strain peaks some 70 days before `now`), and two
//! more since. Twenty-five people in all, four of whom have left.

use super::{DAY, Person, Scenario};

/// What someone does at the bakery; it decides which courses they take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Bread and viennoiserie, from 4 a.m.
    Baker,
    /// Cakes and pastries.
    Pastry,
    /// Sells at the counter.
    Counter,
    /// Coffee bar and counter.
    Barista,
    /// Learns the trade (CAP boulanger).
    Apprentice,
    /// Runs the shop floor.
    Manager,
}

impl Role {
    /// True for the roles that serve customers.
    pub fn serves_customers(self) -> bool {
        matches!(self, Role::Counter | Role::Barista | Role::Manager)
    }
}

/// One team member.
pub struct Member {
    /// Position in hiring order (0 is the longest-serving); the APIs derive their user ids
    /// from it.
    pub index: usize,
    /// Name and email.
    pub person: Person,
    /// What they do.
    pub role: Role,
    /// First working day (unix seconds, 8:00 UTC).
    pub hired: i64,
    /// Last working day, for those who left.
    pub left: Option<i64>,
}

impl Member {
    /// True when they worked at the bakery at `time`.
    pub fn employed_at(&self, time: i64) -> bool {
        self.hired <= time && self.left.is_none_or(|left| time <= left)
    }

    /// True when they joined during the scenario's year.
    pub fn new_hire(&self, scenario: &Scenario) -> bool {
        self.hired > scenario.start
    }
}

/// The sixteen roles of the team at the start of the year.
const FOUNDING: [Role; 16] = [
    Role::Manager,
    Role::Baker,
    Role::Baker,
    Role::Baker,
    Role::Baker,
    Role::Pastry,
    Role::Pastry,
    Role::Counter,
    Role::Counter,
    Role::Counter,
    Role::Counter,
    Role::Counter,
    Role::Barista,
    Role::Barista,
    Role::Barista,
    Role::Apprentice,
];

/// Hires during the year: days before `now`, role, and days before `now` they left.
const HIRES: [(i64, Role, Option<i64>); 9] = [
    (300, Role::Apprentice, None),
    (225, Role::Counter, None),
    (130, Role::Counter, Some(62)),
    (84, Role::Baker, None),
    (78, Role::Counter, None),
    (66, Role::Barista, None),
    (58, Role::Counter, None),
    (40, Role::Barista, None),
    (12, Role::Pastry, None),
];

/// Founding members who leave: their index and the days before `now` they left. Three
/// leave within a fortnight, which starts the shortage; one left in the summer.
const LEAVERS: [(usize, i64); 3] = [(3, 100), (9, 93), (13, 88)];
const SUMMER_LEAVER: (usize, i64) = (10, 232);

/// The team over the scenario's year, in hiring order.
pub fn team(scenario: &Scenario) -> Vec<Member> {
    let mut rng = scenario.rng(0x7374_6166);
    let midnight = |time: i64| time - time.rem_euclid(DAY);
    let morning = |days_ago: i64| midnight(scenario.now - days_ago * DAY) + 8 * 3_600;
    // Hired steadily over the three years before: the longest-serving first (the manager
    // opened the shop).
    let hired: Vec<i64> = (0..FOUNDING.len() as i64)
        .rev()
        .map(|order| {
            let days = 30 + order * 67 + rng.i64(0..40);
            midnight(scenario.start - days * DAY) + 8 * 3_600
        })
        .collect();
    let mut team: Vec<Member> = FOUNDING
        .iter()
        .zip(hired)
        .enumerate()
        .map(|(index, (role, hired))| Member {
            index,
            person: Person::generate(&mut rng, index),
            role: *role,
            hired,
            left: None,
        })
        .collect();
    for (index, days_ago) in LEAVERS.iter().chain([&SUMMER_LEAVER]) {
        team[*index].left = Some(morning(*days_ago) + 9 * 3_600);
    }
    for (days_ago, role, left) in HIRES {
        let index = team.len();
        team.push(Member {
            index,
            person: Person::generate(&mut rng, index),
            role,
            hired: morning(days_ago),
            left: left.map(|days_ago| morning(days_ago) + 9 * 3_600),
        });
    }
    team
}
