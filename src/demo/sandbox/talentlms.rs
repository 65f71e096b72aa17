//! A TalentLMS portal on loopback: the bakery's yearly compliance refreshers (food hygiene,
//! allergens, fire safety, safe lifting), ready-made courses it runs on TalentLMS beside its
//! own Moodle academy.
//!
//! Serves what the `talentlms` preset reads, as TalentLMS's REST API v1 documents it
//! (<https://www.talentlms.com/pages/docs/TalentLMS-API-Documentation.pdf>, sections
//! "Authentication", "Errors", "Rate limits", "Courses"):
//! - HTTP Basic with the API key as the user name (the password is not checked); otherwise
//!   401 `{"error": {"type": "invalid_request_error", "message": "Invalid API key
//!   provided"}}`. Errors are always `{"error": {"type", "message"}}`: 400 for malformed
//!   arguments, 404 for a course that does not exist
//!   (<https://developers.talentlms.io/errors>).
//! - `GET /api/v1/courses`: every course, abridged (no users), as one JSON array.
//! - `GET /api/v1/courses/id:{id}`: the course with its `users` (`id`, `name`, `role`,
//!   `enrolled_on`, `enrolled_on_timestamp`, `completed_on`, `completed_on_timestamp`,
//!   `completion_percentage`, `expired_on`, `expired_on_timestamp`, `total_time`), `units`,
//!   `rules` and `prerequisites`. Ids, percentages and timestamps are strings; dates are
//!   in the portal's display format (`DD/MM/YYYY, HH:MM:SS`, Paris time); an event that has
//!   not happened is `""` and its timestamp null.
//! - Rate limits: an hourly allowance per domain (2,000 calls here): `GET /api/v1/ratelimit`
//!   answers `{"limit", "remaining", "reset"}` (reset in unix seconds) and every answer
//!   carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`; past the
//!   allowance, 429 with `Retry-After`.
//!
//! The data: every member of staff is enrolled in the four refreshers on the anniversary
//! of their hiring (so about a twelfth of the team each month), newcomers in fire safety
//! and safe lifting in their first week. Each course has a few units taken some days
//! apart, more days apart while the shop is short-staffed; someone who leaves stops where
//! they were. The owner is the instructor of every course.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::staff::{Member, team};
use super::{DAY, Scenario, TALENTLMS_API_KEY, basic_credentials, constant_time_eq};

/// Calls allowed per hour.
const HOURLY_LIMIT: u32 = 2_000;
/// The portal's own address, used in course and unit links.
const PORTAL: &str = "https://demo-bakery.talentlms.com";
/// The owner's user id: the instructor of every course.
const OWNER_ID: i64 = 1;

/// A course: id, code, name, category, units (name and type), rules, and whether
/// newcomers take it in their first week.
struct CourseDef {
    id: i64,
    code: &'static str,
    name: &'static str,
    description: &'static str,
    units: &'static [(&'static str, &'static str)],
    at_hiring: bool,
}

/// The food-hygiene refresher (its id is in `config/demo.toml`).
pub const FOOD_HYGIENE_REFRESHER: i64 = 121;

const COURSES: [CourseDef; 4] = [
    CourseDef {
        id: FOOD_HYGIENE_REFRESHER,
        code: "HYG-R",
        name: "Food hygiene refresher",
        description: "The yearly HACCP refresher: what changed, cleaning plans, temperature logs.",
        units: &[
            ("What changed this year", "Content"),
            ("Cleaning plans and temperature logs", "Video"),
            ("Refresher quiz", "Test"),
        ],
        at_hiring: false,
    },
    CourseDef {
        id: 122,
        code: "ALG-R",
        name: "Allergen awareness refresher",
        description: "The 14 allergens, cross-contact at the counter, answering customers.",
        units: &[
            ("Cross-contact in a bakehouse", "Content"),
            ("Allergen quiz", "Test"),
        ],
        at_hiring: false,
    },
    CourseDef {
        id: 123,
        code: "FIRE",
        name: "Fire safety and evacuation",
        description: "Ovens, extinguishers and the way out.",
        units: &[
            ("Fire risks of a bakehouse", "Video"),
            ("Evacuation drill check", "Assignment"),
        ],
        at_hiring: true,
    },
    CourseDef {
        id: 124,
        code: "LIFT",
        name: "Safe lifting and manual handling",
        description: "Flour sacks, proofing racks and delivery crates without back pain.",
        units: &[
            ("Lifting a 25 kg sack", "Video"),
            ("Manual handling quiz", "Test"),
        ],
        at_hiring: true,
    },
];

struct Course {
    id: i64,
    /// The course as the list shows it (no users, units, rules).
    listed: Value,
    /// The course with its users, units, rules and prerequisites.
    full: String,
}

/// The portal: its courses and the calls used this hour.
pub struct TalentlmsData {
    courses: Vec<Course>,
    /// (the hour's start in unix seconds, calls made in it).
    usage: Mutex<(i64, u32)>,
}

/// The portal's display format for a unix time, in Paris time.
fn display(time: i64) -> String {
    use chrono::TimeZone;
    chrono_tz::Europe::Paris
        .timestamp_opt(time, 0)
        .single()
        .map(|local| local.format("%d/%m/%Y, %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `1h 12m`, `34m 5s`: TalentLMS's rendering of time spent.
fn spent(seconds: i64) -> String {
    let (hours, minutes, seconds) = (seconds / 3_600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m {seconds}s")
    }
}

/// One learner's entry: units done a few days apart (more under strain), none after
/// `now` or after their last day.
fn learner(
    scenario: &Scenario,
    rng: &mut fastrand::Rng,
    course: &CourseDef,
    member: &Member,
    enrolled: i64,
) -> Value {
    let end = member.left.unwrap_or(i64::MAX).min(scenario.now);
    let mut at = enrolled;
    let mut done = 0;
    let mut time_spent = 0;
    for _ in course.units {
        let mut days = 1.0 + 6.0 * rng.f64();
        days *= 1.0 + 3.0 * scenario.strain(at);
        if rng.f64() < 0.1 {
            days += 15.0 + 25.0 * rng.f64();
        }
        at += (days * DAY as f64) as i64;
        if at > end {
            break;
        }
        done += 1;
        time_spent += rng.i64(8 * 60..30 * 60);
    }
    let units = course.units.len();
    let completed = (done == units).then_some(at);
    let person = &member.person;
    json!({
        "id": (10 + member.index).to_string(),
        "name": format!("{}. {}", &person.first[..1], person.last),
        "role": "learner",
        "enrolled_on": display(enrolled),
        "enrolled_on_timestamp": enrolled.to_string(),
        "completed_on": completed.map(display).unwrap_or_default(),
        "completed_on_timestamp": completed.map(|time| time.to_string()),
        "completion_percentage": (done * 100 / units).to_string(),
        "expired_on": "",
        "expired_on_timestamp": null,
        "total_time": (time_spent > 0).then(|| spent(time_spent)),
    })
}

impl TalentlmsData {
    /// The portal over the scenario's year.
    pub fn bakery(scenario: &Scenario) -> TalentlmsData {
        let mut rng = scenario.rng(0x746c_6d73);
        let team = team(scenario);
        let opened = scenario.start - 400 * DAY;
        let owner_enrolled = opened + DAY;
        let mut courses = Vec::new();
        for def in &COURSES {
            let mut users = vec![json!({
                "id": OWNER_ID.to_string(), "name": "S. Girard", "role": "instructor",
                "enrolled_on": display(owner_enrolled), "enrolled_on_timestamp": owner_enrolled.to_string(),
                "completed_on": "", "completed_on_timestamp": null, "completion_percentage": "0",
                "expired_on": "", "expired_on_timestamp": null, "total_time": null,
            })];
            for member in &team {
                // The anniversary of their hiring within the year, if they were there.
                let years = (scenario.now - member.hired) / (365 * DAY);
                let anniversary = member.hired + years * 365 * DAY;
                let enrolled = if years >= 1 && anniversary > scenario.start {
                    Some(anniversary)
                } else if def.at_hiring && member.new_hire(scenario) {
                    Some(member.hired + rng.i64(0..3 * DAY))
                } else {
                    None
                };
                let Some(enrolled) = enrolled.filter(|at| member.employed_at(*at)) else {
                    continue;
                };
                users.push(learner(scenario, &mut rng, def, member, enrolled));
            }
            let created = opened + (def.id - 120) * 3_600;
            let listed = json!({
                "id": def.id.to_string(), "name": def.name, "code": def.code, "category_id": "2",
                "description": def.description, "price": "&euro;0.00", "status": "active",
                "creation_date": display(created), "last_update_on": display(created + 30 * DAY),
                "creator_id": OWNER_ID.to_string(), "hide_from_catalog": "0", "time_limit": "0",
                "level": null, "shared": "0", "shared_url": "",
                "avatar": format!("{PORTAL}/pages/images/default_course.svg"),
                "big_avatar": format!("{PORTAL}/pages/images/default_course_big.svg"),
                "certification": "1", "certification_duration": "1 year",
            });
            let units: Vec<Value> = def
                .units
                .iter()
                .enumerate()
                .map(|(index, (name, kind))| {
                    let id = def.id * 100 + index as i64;
                    json!({"id": id.to_string(), "type": kind, "name": name, "url": format!("{PORTAL}/unit/view/id:{id}")})
                })
                .collect();
            let mut full = listed.clone();
            full["users"] = Value::Array(users);
            full["units"] = Value::Array(units);
            full["rules"] = json!(["All units must be completed"]);
            full["prerequisites"] = json!([]);
            courses.push(Course {
                id: def.id,
                listed,
                full: full.to_string(),
            });
        }
        TalentlmsData {
            courses,
            usage: Mutex::new((0, 0)),
        }
    }

    /// The learners' entries of every course.
    pub fn learners(&self) -> Vec<Value> {
        self.courses
            .iter()
            .flat_map(|course| {
                let full: Value = serde_json::from_str(&course.full).expect("own JSON");
                full["users"].as_array().cloned().unwrap_or_default()
            })
            .filter(|user| user["role"] == "learner")
            .collect()
    }

    /// Counts one call; `Err` with the reset time when the hour's allowance is used up,
    /// otherwise the calls remaining and the reset time.
    fn count_call(&self) -> Result<(u32, i64), i64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or_default();
        let hour = now - now.rem_euclid(3_600);
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if usage.0 != hour {
            *usage = (hour, 0);
        }
        if usage.1 >= HOURLY_LIMIT {
            return Err(hour + 3_600);
        }
        usage.1 += 1;
        Ok((HOURLY_LIMIT - usage.1, hour + 3_600))
    }
}

/// The routes, under the caller's prefix.
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(TalentlmsData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<TalentlmsData>) -> Router {
    Router::new()
        .route("/api/v1/courses", get(courses))
        .route("/api/v1/courses/{selector}", get(course))
        .route("/api/v1/ratelimit", get(ratelimit))
        .fallback(not_found)
        .with_state(data)
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    super::json(
        status,
        json!({"error": {"type": kind, "message": message}}).to_string(),
    )
}

/// Checks the key, then counts the call against the hour's allowance; the answer's
/// rate-limit headers are added by [`with_limits`].
fn admit(data: &TalentlmsData, headers: &HeaderMap) -> Result<(u32, i64), Response> {
    match basic_credentials(headers) {
        Some((key, _)) if constant_time_eq(key.as_bytes(), TALENTLMS_API_KEY.as_bytes()) => {}
        _ => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Invalid API key provided",
            ));
        }
    }
    data.count_call().map_err(|reset| {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "API rate limit exceeded",
        );
        let wait = reset
            - SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs() as i64)
                .unwrap_or_default();
        with_limits(&mut response, (0, reset));
        if let Ok(value) = HeaderValue::from_str(&wait.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    })
}

fn with_limits(response: &mut Response, (remaining, reset): (u32, i64)) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", HOURLY_LIMIT.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

fn respond(limits: (u32, i64), mut response: Response) -> Response {
    with_limits(&mut response, limits);
    response
}

async fn courses(State(data): State<Arc<TalentlmsData>>, headers: HeaderMap) -> Response {
    let limits = match admit(&data, &headers) {
        Ok(limits) => limits,
        Err(refused) => return refused,
    };
    let list: Vec<&Value> = data.courses.iter().map(|course| &course.listed).collect();
    respond(limits, super::json(StatusCode::OK, json!(list).to_string()))
}

async fn course(
    State(data): State<Arc<TalentlmsData>>,
    Path(selector): Path<String>,
    headers: HeaderMap,
) -> Response {
    let limits = match admit(&data, &headers) {
        Ok(limits) => limits,
        Err(refused) => return refused,
    };
    let Some(id) = selector
        .strip_prefix("id:")
        .and_then(|id| id.trim().parse::<i64>().ok())
    else {
        return respond(
            limits,
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Invalid arguments provided",
            ),
        );
    };
    match data.courses.iter().find(|course| course.id == id) {
        Some(course) => respond(limits, super::json(StatusCode::OK, course.full.clone())),
        None => respond(
            limits,
            error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "The requested course does not exist",
            ),
        ),
    }
}

async fn ratelimit(State(data): State<Arc<TalentlmsData>>, headers: HeaderMap) -> Response {
    let limits = match admit(&data, &headers) {
        Ok(limits) => limits,
        Err(refused) => return refused,
    };
    let (remaining, reset) = limits;
    respond(
        limits,
        super::json(
            StatusCode::OK,
            json!({"limit": HOURLY_LIMIT.to_string(), "remaining": remaining.to_string(), "reset": reset.to_string()})
                .to_string(),
        ),
    )
}

async fn not_found(State(data): State<Arc<TalentlmsData>>, headers: HeaderMap) -> Response {
    let limits = match admit(&data, &headers) {
        Ok(limits) => limits,
        Err(refused) => return refused,
    };
    respond(
        limits,
        error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "The requested resource does not exist",
        ),
    )
}
