//! The bakery's Moodle site: its courses, users and every enrolment's completion status,
//! generated once from the scenario and the shared team.
//!
//! Every newcomer is enrolled at hiring in the onboarding course (a welcome tour on the
//! first day, then the manager's sign-off after the trial shifts), food hygiene and HACCP,
//! allergen handling, and, by role, customer service at the counter, barista basics and the
//! bread course. Staff cross-train during the year (bakers learn the counter for weekends,
//! counter staff the coffee machine, the shop the breads it sells). Each step takes a few days, longer while the shop is
//! short-staffed (the scenario's strain): completions lag during the shortage, then catch
//! up. A step not reached by `now` (or by someone's last day) is not complete yet.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::staff::{Member, Role, team};
use super::super::{DAY, Scenario};

/// The site's configured address (`$CFG->wwwroot`), which Moodle writes into links and
/// site information whatever address a client used.
pub const WWWROOT: &str = "https://academy.demo-bakery.example";
/// The administrator: the token's user, and the teacher of every course.
pub const ADMIN_ID: i64 = 2;
/// The first staff member's user id (1 is the guest, 2 the administrator).
const FIRST_STAFF_ID: i64 = 3;

/// A completion criterion of a course, in Moodle's order (by criterion type).
struct Criterion {
    /// `COMPLETION_CRITERIA_TYPE_*`: 1 self, 4 activity, 7 manual by role.
    kind: i64,
    /// The activity's module and name (activity criteria).
    activity: Option<(&'static str, &'static str)>,
    /// What the criterion asks for, as the completion report words it.
    requirement: &'static str,
    /// Days it usually takes after the previous step (a range, before strain).
    days: (f64, f64),
}

/// Who takes a course: at hiring (required), or later as cross-training.
#[derive(Clone, Copy)]
enum Audience {
    /// Everyone, at hiring.
    Everyone,
    /// Required for these roles.
    Roles(&'static [Role]),
    /// Nobody is required to: staff enrol at a given time (a seasonal workshop).
    Seasonal,
    /// Nobody any more: an archived course with its old enrolments.
    Archived,
}

struct CourseDef {
    id: i64,
    shortname: &'static str,
    fullname: &'static str,
    category: i64,
    format: &'static str,
    /// `enablecompletion`.
    completion: bool,
    criteria: &'static [Criterion],
    audience: Audience,
}

const fn activity(
    module: &'static str,
    name: &'static str,
    requirement: &'static str,
    days: (f64, f64),
) -> Criterion {
    Criterion {
        kind: 4,
        activity: Some((module, name)),
        requirement,
        days,
    }
}

const fn manager_sign_off(days: (f64, f64)) -> Criterion {
    Criterion {
        kind: 7,
        activity: None,
        requirement: "Marked complete by Manager",
        days,
    }
}

/// The onboarding course (its id is in `config/demo.toml`'s onboarding measure).
pub const ONBOARDING: i64 = 6;
/// The food hygiene course.
pub const FOOD_HYGIENE: i64 = 2;
/// The course without completion criteria (completion status: `nocriteriaset`).
pub const WORKSHOP: i64 = 7;

const COURSES: [CourseDef; 8] = [
    CourseDef {
        id: FOOD_HYGIENE,
        shortname: "FOODHYG",
        fullname: "Food hygiene and HACCP",
        category: 1,
        format: "topics",
        completion: true,
        criteria: &[
            activity(
                "quiz",
                "HACCP quiz",
                "Achieving grade, Passing grade",
                (2.0, 8.0),
            ),
            activity(
                "assign",
                "Cleaning and temperature log",
                "Marking yourself complete",
                (1.0, 5.0),
            ),
        ],
        audience: Audience::Everyone,
    },
    CourseDef {
        id: 3,
        shortname: "ALLERGEN",
        fullname: "Allergen handling",
        category: 1,
        format: "topics",
        completion: true,
        criteria: &[
            activity("page", "The 14 allergens", "Viewing", (1.0, 4.0)),
            activity(
                "quiz",
                "Allergen quiz",
                "Achieving grade, Passing grade",
                (2.0, 10.0),
            ),
        ],
        audience: Audience::Everyone,
    },
    CourseDef {
        id: 4,
        shortname: "COUNTER",
        fullname: "Customer service at the counter",
        category: 2,
        format: "weeks",
        completion: true,
        criteria: &[
            activity(
                "lesson",
                "The first minute with a customer",
                "Viewing",
                (3.0, 10.0),
            ),
            manager_sign_off((5.0, 15.0)),
        ],
        audience: Audience::Roles(&[Role::Counter, Role::Barista, Role::Manager]),
    },
    CourseDef {
        id: 5,
        shortname: "BARISTA",
        fullname: "Barista basics",
        category: 2,
        format: "topics",
        completion: true,
        criteria: &[
            activity(
                "lesson",
                "Espresso, milk and cleaning the machine",
                "Viewing",
                (3.0, 12.0),
            ),
            manager_sign_off((5.0, 20.0)),
        ],
        audience: Audience::Roles(&[Role::Barista]),
    },
    CourseDef {
        id: ONBOARDING,
        shortname: "ONBOARD",
        fullname: "New-hire onboarding",
        category: 3,
        format: "topics",
        completion: true,
        criteria: &[
            activity("page", "Welcome and bakery tour", "Viewing", (0.05, 0.3)),
            manager_sign_off((7.0, 14.0)),
        ],
        audience: Audience::Everyone,
    },
    CourseDef {
        id: WORKSHOP,
        shortname: "BUCHE",
        fullname: "Christmas log workshop",
        category: 2,
        format: "singleactivity",
        completion: true,
        criteria: &[],
        audience: Audience::Seasonal,
    },
    CourseDef {
        id: 9,
        shortname: "BREAD",
        fullname: "Our breads and how to sell them",
        category: 2,
        format: "topics",
        completion: true,
        criteria: &[
            activity(
                "page",
                "Sourdough, baguette, viennoiserie",
                "Viewing",
                (2.0, 8.0),
            ),
            activity(
                "quiz",
                "Product quiz",
                "Achieving grade, Passing grade",
                (2.0, 10.0),
            ),
        ],
        audience: Audience::Roles(&[Role::Baker, Role::Apprentice]),
    },
    CourseDef {
        id: 8,
        shortname: "ARCHIVE",
        fullname: "Old recipes (archived)",
        category: 4,
        format: "social",
        completion: false,
        criteria: &[],
        audience: Audience::Archived,
    },
];

/// One enrolled user of a course: a tracked learner with a completion status, or the
/// teacher (not tracked: `usernotenroled`).
pub struct Enrolment {
    /// The answer of `core_completion_get_course_completion_status` for a learner in a
    /// course with criteria; `None` for the teacher and in courses without criteria.
    pub status: Option<String>,
    /// True for learners (the completion report tracks them).
    pub tracked: bool,
}

/// A course as the site holds it.
pub struct Course {
    /// The course id.
    pub id: i64,
    /// The object `core_course_get_courses` lists.
    pub json: Value,
    /// `enablecompletion`.
    pub completion: bool,
    /// True when it has completion criteria.
    pub has_criteria: bool,
    /// Enrolled users by id.
    pub enrolled: BTreeMap<i64, Enrolment>,
}

/// A site user: the fields `core_enrol_get_enrolled_users` returns.
pub struct User {
    /// The user id.
    pub id: i64,
    /// Every field of the user's entry except `roles` and `enrolledcourses`.
    pub json: serde_json::Map<String, Value>,
}

/// The whole site.
pub struct MoodleData {
    /// Every course, the front page (id 1) first.
    pub courses: Vec<Course>,
    /// Every user by id.
    pub users: BTreeMap<i64, User>,
}

fn user_json(id: i64, first: &str, last: &str, email: &str, department: &str) -> User {
    let username = format!(
        "{}.{}",
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase()
    );
    let picture = format!("{WWWROOT}/theme/image.php/boost/core/1/u/");
    let json = json!({
        "id": id,
        "username": username,
        "firstname": first,
        "lastname": last,
        "fullname": format!("{first} {last}"),
        "email": email,
        "department": department,
        "city": "Lyon",
        "country": "FR",
        "description": "",
        "descriptionformat": 1,
        "profileimageurlsmall": format!("{picture}f2"),
        "profileimageurl": format!("{picture}f1"),
    });
    let Value::Object(json) = json else {
        unreachable!("json! of an object literal is an object")
    };
    User { id, json }
}

fn department(role: Role) -> &'static str {
    match role {
        Role::Baker | Role::Apprentice => "Bakehouse",
        Role::Pastry => "Pastry",
        Role::Counter | Role::Barista => "Shop",
        Role::Manager => "Management",
    }
}

/// The criteria statuses of one learner who starts at `enrolled` (or `None` if they never
/// start), each step a few days after the previous one, longer under strain; a step after
/// `now` or after their last day is not complete.
fn walk_criteria(
    scenario: &Scenario,
    rng: &mut fastrand::Rng,
    course: &CourseDef,
    member: &Member,
    enrolled: i64,
) -> String {
    let end = member.left.unwrap_or(i64::MAX).min(scenario.now);
    let mut at = enrolled;
    let mut completions = Vec::new();
    let mut all_done = true;
    let mut latest = 0;
    for (index, criterion) in course.criteria.iter().enumerate() {
        let (low, high) = criterion.days;
        let mut days = low + (high - low) * rng.f64();
        days *= 1.0 + 2.5 * scenario.strain(at);
        if rng.f64() < 0.08 {
            days += 10.0 + 20.0 * rng.f64();
        }
        at += (days * DAY as f64) as i64;
        let done = at <= end;
        all_done &= done;
        if done {
            latest = latest.max(at);
        }
        let (title, criteria) = match (criterion.kind, criterion.activity) {
            (4, Some((module, name))) => (
                "Activity completion",
                format!(
                    "<a href=\"{WWWROOT}/mod/{module}/view.php?id={}\">{name}</a>",
                    course.id * 100 + index as i64
                ),
            ),
            (7, _) => ("Manual completion by role", "Manager".to_string()),
            _ => ("Self completion", "Self completion".to_string()),
        };
        completions.push(json!({
            "type": criterion.kind,
            "title": title,
            "status": if done { "Yes" } else { "No" },
            "complete": done,
            "timecompleted": done.then_some(at),
            "details": {
                "type": title,
                "criteria": criteria,
                "requirement": criterion.requirement,
                "status": "",
            },
        }));
    }
    json!({
        "completionstatus": {
            "completed": all_done,
            "aggregation": 1,
            "completions": completions,
        },
        "warnings": [],
    })
    .to_string()
}

impl MoodleData {
    /// The site over the scenario's year.
    pub fn bakery(scenario: &Scenario) -> MoodleData {
        let mut rng = scenario.rng(0x6d6f_6f64);
        let team = team(scenario);
        let staff_id = |member: &Member| FIRST_STAFF_ID + member.index as i64;
        let mut users = BTreeMap::new();
        users.insert(
            ADMIN_ID,
            user_json(
                ADMIN_ID,
                "Sophie",
                "Girard",
                "owner@demo-bakery.example",
                "Management",
            ),
        );
        for member in &team {
            let id = staff_id(member);
            let person = &member.person;
            users.insert(
                id,
                user_json(
                    id,
                    person.first,
                    person.last,
                    &person.email,
                    department(member.role),
                ),
            );
        }
        let site = json!({
            "id": 1, "shortname": "academy", "categoryid": 0, "fullname": "Demo Bakery Academy",
            "displayname": "Demo Bakery Academy", "idnumber": "", "summary": "",
            "summaryformat": 1, "format": "site", "startdate": 0, "enddate": 0, "visible": 1,
            "showactivitydates": false, "showcompletionconditions": null,
            "timecreated": scenario.start - 1_200 * DAY, "timemodified": scenario.start - 1_200 * DAY,
            "enablecompletion": 0, "lang": "", "courseformatoptions": [],
        });
        let mut courses = vec![Course {
            id: 1,
            json: site,
            completion: false,
            has_criteria: false,
            enrolled: BTreeMap::new(),
        }];
        for def in &COURSES {
            let created = scenario.start - (1_150 - def.id * 10) * DAY;
            let mut enrolled = BTreeMap::new();
            enrolled.insert(
                ADMIN_ID,
                Enrolment {
                    status: None,
                    tracked: false,
                },
            );
            for member in &team {
                let start = match def.audience {
                    Audience::Everyone => Some(member.hired),
                    Audience::Roles(roles) if roles.contains(&member.role) => Some(member.hired),
                    Audience::Roles(roles) => cross_training(scenario, &mut rng, member, roles),
                    Audience::Seasonal => {
                        let workshop = scenario.now - 135 * DAY;
                        (matches!(member.role, Role::Baker | Role::Pastry | Role::Apprentice)
                            && member.employed_at(workshop))
                        .then_some(workshop)
                    }
                    Audience::Archived => (!member.new_hire(scenario)).then_some(member.hired),
                };
                let Some(start) = start else { continue };
                let status = (!def.criteria.is_empty())
                    .then(|| walk_criteria(scenario, &mut rng, def, member, start));
                enrolled.insert(
                    staff_id(member),
                    Enrolment {
                        status,
                        tracked: true,
                    },
                );
            }
            let json = json!({
                "id": def.id, "shortname": def.shortname, "categoryid": def.category,
                "categorysortorder": def.category * 10_000 + def.id, "fullname": def.fullname,
                "displayname": def.fullname, "idnumber": "", "summary": "", "summaryformat": 1,
                "format": def.format, "showgrades": 1, "newsitems": 0, "startdate": created,
                "enddate": 0, "numsections": def.criteria.len().max(1), "maxbytes": 0,
                "showreports": 0, "visible": i64::from(def.completion), "groupmode": 0,
                "groupmodeforce": 0, "defaultgroupingid": 0, "timecreated": created,
                "timemodified": created + 3 * DAY, "enablecompletion": i64::from(def.completion),
                "completionnotify": 0, "lang": "", "forcetheme": "",
                "courseformatoptions": [{"name": "hiddensections", "value": 0}, {"name": "coursedisplay", "value": 0}],
                "showactivitydates": true, "showcompletionconditions": true,
            });
            courses.push(Course {
                id: def.id,
                json,
                completion: def.completion,
                has_criteria: !def.criteria.is_empty(),
                enrolled,
            });
        }
        MoodleData { courses, users }
    }

    /// The course with `id`.
    pub fn course(&self, id: i64) -> Option<&Course> {
        self.courses.iter().find(|course| course.id == id)
    }

    /// How many learners have a completion status, and how many of them completed.
    pub fn counts(&self) -> (usize, usize) {
        let statuses: Vec<&String> = self
            .courses
            .iter()
            .flat_map(|course| course.enrolled.values())
            .filter_map(|enrolment| enrolment.status.as_ref())
            .collect();
        let completed = statuses
            .iter()
            .filter(|status| status.contains(r#""completed":true"#))
            .count();
        (statuses.len(), completed)
    }
}

/// When someone starts a course their role does not require, if they do: bakers and
/// pastry cooks learn the counter for weekends, counter staff the coffee bar, the shop
/// the breads it sells.
fn cross_training(
    scenario: &Scenario,
    rng: &mut fastrand::Rng,
    member: &Member,
    roles: &[Role],
) -> Option<i64> {
    let chance = if roles.contains(&Role::Manager) {
        // The counter course: bakers help at the counter on weekends.
        match member.role {
            Role::Baker | Role::Pastry | Role::Apprentice => 0.7,
            _ => 0.0,
        }
    } else if roles.contains(&Role::Barista) {
        // Barista basics: counter staff learn the coffee bar.
        match member.role {
            Role::Counter => 0.8,
            Role::Baker | Role::Pastry | Role::Apprentice => 0.15,
            _ => 0.0,
        }
    } else {
        // The products course: the shop learns what it sells.
        match member.role {
            Role::Counter | Role::Barista | Role::Manager | Role::Pastry => 0.7,
            _ => 0.0,
        }
    };
    if rng.f64() >= chance {
        return None;
    }
    let from = member.hired.max(scenario.start) + 20 * DAY;
    let to = member.left.unwrap_or(scenario.now).min(scenario.now) - 5 * DAY;
    (from < to).then(|| from + rng.i64(0..to - from))
}
