//! Moodle: course completions, assembled from three REST web service functions.
//!
//! Follows Moodle's web service documentation and the function definitions in Moodle's
//! source (the API reference every site serves under Site administration > Development >
//! API Documentation is generated from them):
//! - REST protocol: `{site}/webservice/rest/server.php` with `wstoken`, `wsfunction` and
//!   `moodlewsrestformat=json`; parameters as `name=value`, arrays as `name[0][key]=value`:
//!   <https://docs.moodle.org/dev/Creating_a_web_service_client>,
//!   <https://moodledev.io/docs/apis/subsystems/external/writing-a-service>
//! - Errors come as HTTP 200 with `{"exception": ..., "errorcode": ..., "message": ...}`
//!   (`debuginfo` too when the site debugs); a bad token is `invalidtoken`, an expired or
//!   IP-restricted one `invalidtimedtoken` / `invalidiptoken`, a function missing from the
//!   token's service `accessexception`: `webservice/lib.php` in
//!   <https://github.com/moodle/moodle>
//! - `core_course_get_courses` (no options: every course the token's user may see, the site
//!   front page among them with `format` = `site`; `enablecompletion` is sent to users who
//!   may update the course): `course/externallib.php`
//! - `core_enrol_get_enrolled_users` with `options[i][name]`/`options[i][value]`:
//!   `limitfrom`, `limitnumber`, `userfields`, `sortby` (`id`), `sortdirection`:
//!   `enrol/externallib.php`
//! - `core_completion_get_course_completion_status(courseid, userid)` returns
//!   `{"completionstatus": {"completed", "aggregation", "completions": [{"type", "title",
//!   "status", "complete", "timecompleted", "details"}]}, "warnings": []}`, and throws
//!   `nocriteriaset` for a course without completion criteria, `usernotenroled` for a user
//!   whose completion is not tracked (teachers, suspended enrolments), `cannotviewreport`
//!   when completion is off for the course or the token's user lacks
//!   `report/completion:view`: `completion/classes/external.php`
//! - `core_webservice_get_site_info` (the probe) lists the functions the token's service
//!   offers: `webservice/externallib.php`
//!
//! Records (DESIGN §2): one per (course, enrolled user who has a completion status): the
//! `completionstatus` object as Moodle sends it, plus `courseid`, `userid` and
//! `timecompleted`, the latest `completions[].timecompleted` once `completed` is true and
//! null before. Key `(courseid, userid)`.
//!
//! The walk: list the courses (skipping the site page and courses whose completion is off),
//! then per course page through its enrolled users (ids only, 100 a page, by id) and ask
//! for each user's completion status. Every request is one page; the state the engine
//! carries between pages says which course and which user come next. The saved cursor is
//! the position (course, users page offset, last user read), so a sync that stops (crash,
//! shutdown) resumes there: it lists the courses again, continues at that course (or the
//! next one, if that course is gone) and skips the users already read. A complete pass
//! ends the stream and the cursor goes back to `{}`: the next sync starts a new pass.
//!
//! Cost: Moodle has no "changed since" filter for completions, so every pass re-reads
//! everything: 1 call for the course list, plus per course one call per 100 enrolled users,
//! plus one call per enrolled user (a course without completion criteria stops after its
//! first user). A site with 20 courses of 50 learners costs about 1 + 20 + 1,000 calls per
//! sync; schedule accordingly (hourly or daily is plenty for training measures).
//! Unchanged records are not rewritten, so only real changes reach the measures. Moodle
//! sites are self-hosted and document no rate limit; a 429 from a proxy goes through the
//! shared client.
//!
//! Known limit of offset paging: a user unenrolled during a pass shifts the later users of
//! that course back by one, so one user may be missed on that pass; the next pass reads
//! them again.

use crate::config::RecordFields;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Preset, PresetInfo, SyncWindow, endpoint};
use crate::config::SourceConfig;
use crate::sources::http::{Auth, ParseError};
use crate::sources::{Page, PageRequest, SourceError, fetched_records};

/// Moodle's description: every site has its own address, so `base_url` is required.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "",
    streams: &["course_completions"],
    required: &["base_url", "token"],
    // Every pass reads everything: there is no time window to look back over.
    default_lookback: Duration::ZERO,
    token_url: None,
};

/// The REST entry point under the site URL.
const SERVER_PATH: &str = "webservice/rest/server.php";
/// Enrolled users per page (Moodle documents no maximum; ids only, so pages stay small).
const USERS_PAGE: usize = 100;
/// Lists the courses.
const LIST_COURSES: &str = "core_course_get_courses";
/// Lists a course's enrolled users.
const LIST_USERS: &str = "core_enrol_get_enrolled_users";
/// One user's completion status in one course.
const COMPLETION_STATUS: &str = "core_completion_get_course_completion_status";
/// The probe.
const SITE_INFO: &str = "core_webservice_get_site_info";
/// The functions the token's external service must offer.
const FUNCTIONS: [&str; 3] = [LIST_COURSES, LIST_USERS, COMPLETION_STATUS];

/// Error codes that mean the token or its user may not do this: the sync fails as
/// unauthorized with Moodle's message and what to fix.
const REFUSALS: &[(&str, &str)] = &[
    (
        "invalidtoken",
        "check the token under Site administration > Server > Web services > Manage tokens",
    ),
    (
        "invalidtimedtoken",
        "the token has expired; create a new one under Site administration > Server > Web services > Manage tokens",
    ),
    (
        "invalidiptoken",
        "the token is restricted to other IP addresses; widen its IP restriction or use another token",
    ),
    (
        "accessexception",
        "the token's external service must include core_course_get_courses, core_enrol_get_enrolled_users and core_completion_get_course_completion_status",
    ),
    (
        "nopermissions",
        "the token's user needs moodle/course:viewparticipants and report/completion:view in every course",
    ),
    (
        "requireloginerror",
        "the token's user must be able to enter every course (an administrator or a manager)",
    ),
    (
        "accessdenied",
        "the token's user must see every group of the course (moodle/site:accessallgroups)",
    ),
];

/// Completion-status error codes that mean "this user has no completion status here": the
/// user is skipped. `invalidrecord`: the user was deleted since the users page was read.
const USER_SKIPS: &[&str] = &[
    "usernotenroled",
    "notenroled",
    "userdeleted",
    "invalidrecord",
];

/// Completion-status error codes that hold for the whole course: the rest of its users are
/// skipped. `nocriteriaset`: the course has no completion criteria; `cannotviewreport`:
/// completion is off for the course (or the token's user may not view its report; Moodle
/// uses one code for both, and the first is common on sites where the course list does not
/// show `enablecompletion`).
const COURSE_SKIPS: &[&str] = &["nocriteriaset", "cannotviewreport"];

/// The Moodle preset.
pub struct Moodle;

/// Where a pass stands: the course, the offset of its users page, the last user read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Position {
    course: i64,
    from: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_user: Option<i64>,
}

/// The saved cursor: the position to resume at, or nothing between passes (`{}`).
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume: Option<Position>,
}

impl Saved {
    fn encode(&self) -> String {
        serde_json::to_string(self).expect("a cursor of plain fields always serializes")
    }
}

/// The state a request carries: what it asks for and what follows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    /// The course list, at the start of a pass (resuming at `resume` if set).
    Courses {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Position>,
    },
    /// A page of `at.course`'s enrolled users from `at.from`; `courses` follow.
    Users { courses: Vec<i64>, at: Position },
    /// The completion status of `users[0]` in `at.course`; `users[1..]` follow, then the
    /// users page at `next_from` (if the last page was full), then `courses`.
    Completion {
        courses: Vec<i64>,
        at: Position,
        users: Vec<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_from: Option<usize>,
    },
}

impl Step {
    /// The cursor to save once the page before this step is committed.
    fn saved(&self) -> Saved {
        match self {
            Step::Courses { resume } => Saved { resume: *resume },
            Step::Users { at, .. } | Step::Completion { at, .. } => Saved { resume: Some(*at) },
        }
    }
}

/// The first course of `courses`, from its first user, or `None` at the end of the pass.
fn next_course(mut courses: Vec<i64>) -> Option<Step> {
    if courses.is_empty() {
        return None;
    }
    let course = courses.remove(0);
    Some(Step::Users {
        courses,
        at: Position {
            course,
            from: 0,
            after_user: None,
        },
    })
}

/// What follows a user of the current page: the next user, the next users page, or the
/// next course.
fn after_user(
    courses: Vec<i64>,
    at: Position,
    users: Vec<i64>,
    next_from: Option<usize>,
) -> Option<Step> {
    if !users.is_empty() {
        return Some(Step::Completion {
            courses,
            at,
            users,
            next_from,
        });
    }
    match next_from {
        Some(from) => Some(Step::Users {
            courses,
            at: Position { from, ..at },
        }),
        None => next_course(courses),
    }
}

/// A call of `function` with `params` (the token is added by the shared client).
fn call(base: &reqwest::Url, function: &str, params: &[(String, String)]) -> reqwest::Url {
    let mut url = endpoint(base, SERVER_PATH);
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("wsfunction", function)
            .append_pair("moodlewsrestformat", "json");
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    url
}

/// The request that carries out `step`.
fn request_for(base: &reqwest::Url, step: Step) -> PageRequest {
    let url = match &step {
        Step::Courses { .. } => call(base, LIST_COURSES, &[]),
        Step::Users { at, .. } => {
            let options = [
                ("limitfrom", at.from.to_string()),
                ("limitnumber", USERS_PAGE.to_string()),
                ("userfields", "id".to_string()),
                ("sortby", "id".to_string()),
                ("sortdirection", "ASC".to_string()),
            ];
            let mut params = vec![("courseid".to_string(), at.course.to_string())];
            for (index, (name, value)) in options.into_iter().enumerate() {
                params.push((format!("options[{index}][name]"), name.to_string()));
                params.push((format!("options[{index}][value]"), value));
            }
            call(base, LIST_USERS, &params)
        }
        Step::Completion { at, users, .. } => call(
            base,
            COMPLETION_STATUS,
            &[
                ("courseid".to_string(), at.course.to_string()),
                (
                    "userid".to_string(),
                    users.first().copied().unwrap_or_default().to_string(),
                ),
            ],
        ),
    };
    let state = serde_json::to_string(&step).expect("a step of plain fields always serializes");
    PageRequest::get(url, state)
}

/// Moodle's error object (sent with HTTP 200).
#[derive(Debug, Deserialize)]
struct MoodleError {
    errorcode: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    debuginfo: Option<String>,
}

impl MoodleError {
    /// The error in `body`, if `body` is one.
    fn of(body: &Value) -> Option<Self> {
        let object = body.as_object()?;
        if !object.contains_key("errorcode") && !object.contains_key("exception") {
            return None;
        }
        Some(Self {
            errorcode: object
                .get("errorcode")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            message: object
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            debuginfo: object
                .get("debuginfo")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Moodle's words, short: `errorcode: message (debuginfo)`.
    fn describe(&self) -> String {
        let mut text = format!("{}: {}", self.errorcode, self.message.trim());
        if let Some(debug) = self.debuginfo.as_deref().map(str::trim)
            && !debug.is_empty()
        {
            text.push_str(&format!(" ({debug})"));
        }
        text.chars().take(400).collect()
    }

    /// The failure of `function`: unauthorized for refusals, malformed otherwise.
    fn into_failure(self, function: &str, what: &str) -> ParseError {
        match REFUSALS.iter().find(|(code, _)| *code == self.errorcode) {
            Some((_, fix)) => ParseError::unauthorized(format!(
                "Moodle refused {function} ({}); {fix}",
                self.describe()
            )),
            None => ParseError::malformed(format!(
                "{function}{what} failed with Moodle error {}",
                self.describe()
            )),
        }
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|error| ParseError {
        truncated: error.is_eof(),
        unauthorized: false,
        detail: format!("the web service answer is not JSON: {error}"),
    })
}

/// A numeric `id` of a listed object.
fn id_of(item: &Value, index: usize, what: &str) -> Result<i64, ParseError> {
    item.get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ParseError::malformed(format!("{what} {index} has no numeric id")))
}

/// The courses of a pass, in id order: not the site front page, not those whose
/// completion is off (when the list says so).
fn course_ids(body: &Value) -> Result<Vec<i64>, ParseError> {
    let list = body.as_array().ok_or_else(|| {
        ParseError::malformed(format!("{LIST_COURSES} did not return a list of courses"))
    })?;
    let mut ids = Vec::with_capacity(list.len());
    for (index, course) in list.iter().enumerate() {
        let id = id_of(course, index, "course")?;
        let is_site = course.get("format").and_then(Value::as_str) == Some("site");
        // An integer in the course list, a boolean in other functions' course objects.
        let completion_off = match course.get("enablecompletion") {
            Some(Value::Number(number)) => number.as_i64() == Some(0),
            Some(Value::Bool(enabled)) => !enabled,
            _ => false,
        };
        if !is_site && !completion_off {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The record of one user's completion status in one course (DESIGN §2).
fn completion_record(body: Value, course: i64, user: i64) -> Result<Box<RawValue>, ParseError> {
    let Value::Object(mut answer) = body else {
        return Err(ParseError::malformed(format!(
            "{COMPLETION_STATUS} for course {course}, user {user} is not an object"
        )));
    };
    let Some(Value::Object(mut status)) = answer.remove("completionstatus") else {
        return Err(ParseError::malformed(format!(
            "{COMPLETION_STATUS} for course {course}, user {user} has no completionstatus object"
        )));
    };
    let completed = match status.get("completed") {
        Some(Value::Bool(completed)) => *completed,
        Some(Value::Number(number)) => number.as_i64() == Some(1),
        _ => false,
    };
    // Criteria not yet met carry a null timecompleted.
    let latest = status
        .get("completions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|criterion| criterion.get("timecompleted").and_then(Value::as_i64))
        .filter(|time| *time > 0)
        .max();
    let timecompleted = if completed { latest } else { None };
    status.insert("courseid".into(), course.into());
    status.insert("userid".into(), user.into());
    status.insert("timecompleted".into(), timecompleted.into());
    let text = serde_json::to_string(&status).expect("a JSON object always serializes");
    Ok(RawValue::from_string(text).expect("serde_json wrote valid JSON"))
}

/// The page that read `records` and continues with `next` (or ends the pass).
fn page_to(
    base: &reqwest::Url,
    records: Vec<crate::sources::FetchedRecord>,
    next: Option<Step>,
) -> Page {
    match next {
        Some(step) => Page {
            records,
            cursor: step.saved().encode(),
            next: Some(request_for(base, step)),
        },
        None => Page {
            records,
            cursor: Saved::default().encode(),
            next: None,
        },
    }
}

impl Preset for Moodle {
    /// Every pass walks every course and enrolled user: a completion missing from a
    /// complete pass is gone (user unenrolled, course deleted).
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> super::Coverage {
        super::Coverage::All
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        match &source.token {
            // `wstoken` contains "token": redact_url hides it in every error and log.
            Some(token) if !token.is_empty() => Ok(Auth::Query {
                name: "wstoken".into(),
                value: token.clone(),
            }),
            _ => Err(SourceError::Unauthorized {
                message: "token is required".into(),
            }),
        }
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        PageRequest::get(call(&source.base_url, SITE_INFO, &[]), String::new())
    }

    fn check_probe(
        &self,
        _source: &SourceConfig,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), ParseError> {
        let body = parse_body(body)?;
        if let Some(error) = MoodleError::of(&body) {
            return Err(error.into_failure(SITE_INFO, ""));
        }
        // The functions the token's service offers; absent in very old versions.
        let Some(functions) = body.get("functions").and_then(Value::as_array) else {
            return Ok(());
        };
        let offered: Vec<&str> = functions
            .iter()
            .filter_map(|function| function.get("name").and_then(Value::as_str))
            .collect();
        let missing: Vec<&str> = FUNCTIONS
            .iter()
            .copied()
            .filter(|function| !offered.contains(function))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ParseError::unauthorized(format!(
                "the token's external service lacks {}; add them under Site administration > Server > Web services > External services",
                missing.join(", ")
            )))
        }
    }

    fn first_request(
        &self,
        source: &SourceConfig,
        _stream: &str,
        cursor: Option<&str>,
        _window: &SyncWindow,
    ) -> Result<PageRequest, SourceError> {
        let saved: Saved = match cursor {
            None => Saved::default(),
            Some(text) => serde_json::from_str(text)
                .map_err(|error| SourceError::BadCursor(error.to_string()))?,
        };
        // A pass always starts (or resumes) with the course list: a course deleted since
        // the cursor was saved simply drops out.
        Ok(request_for(
            &source.base_url,
            Step::Courses {
                resume: saved.resume,
            },
        ))
    }

    fn parse_page(
        &self,
        source: &SourceConfig,
        _stream: &str,
        request: &PageRequest,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let step: Step = serde_json::from_str(&request.state).map_err(|error| {
            ParseError::malformed(format!("internal cursor state unreadable: {error}"))
        })?;
        let base = &source.base_url;
        let body = parse_body(body)?;
        let error = MoodleError::of(&body);
        match step {
            Step::Courses { resume } => {
                if let Some(error) = error {
                    return Err(error.into_failure(LIST_COURSES, ""));
                }
                let mut courses = course_ids(&body)?;
                if let Some(resume) = resume {
                    courses.retain(|course| *course >= resume.course);
                    if courses.first() == Some(&resume.course) {
                        courses.remove(0);
                        let next = Step::Users {
                            courses,
                            at: resume,
                        };
                        return Ok(page_to(base, Vec::new(), Some(next)));
                    }
                }
                Ok(page_to(base, Vec::new(), next_course(courses)))
            }
            Step::Users { courses, at } => {
                if let Some(error) = error {
                    // The course was deleted since the course list was read.
                    if error.errorcode == "invalidrecord" {
                        return Ok(page_to(base, Vec::new(), next_course(courses)));
                    }
                    return Err(
                        error.into_failure(LIST_USERS, &format!(" for course {}", at.course))
                    );
                }
                let list = body.as_array().ok_or_else(|| {
                    ParseError::malformed(format!(
                        "{LIST_USERS} for course {} did not return a list of users",
                        at.course
                    ))
                })?;
                let mut users = Vec::with_capacity(list.len());
                for (index, user) in list.iter().enumerate() {
                    users.push(id_of(user, index, "user")?);
                }
                users.sort_unstable();
                users.dedup();
                // After a resume (or a shifted page) the users already read come again.
                users.retain(|user| at.after_user.is_none_or(|after| *user > after));
                // Another page follows a full one. Two guards keep a site that ignores the
                // paging options from looping: more users than asked for means it sent them
                // all, and a full page with nobody new means the offset was not applied (a
                // real shift that large within one pass is caught by the next pass).
                let next_from =
                    (list.len() == USERS_PAGE && !users.is_empty()).then_some(at.from + list.len());
                Ok(page_to(
                    base,
                    Vec::new(),
                    after_user(courses, at, users, next_from),
                ))
            }
            Step::Completion {
                courses,
                at,
                mut users,
                next_from,
            } => {
                let Some(&user) = users.first() else {
                    return Err(ParseError::malformed(
                        "internal cursor state: a completion step without a user",
                    ));
                };
                users.remove(0);
                let done = Position {
                    after_user: Some(user),
                    ..at
                };
                let records = match error {
                    None => {
                        let raw = completion_record(body, at.course, user)?;
                        fetched_records(
                            &[raw.as_ref()],
                            &["courseid", "userid"],
                            &RecordFields::All,
                        )?
                    }
                    Some(error) if USER_SKIPS.contains(&error.errorcode.as_str()) => Vec::new(),
                    Some(error) if COURSE_SKIPS.contains(&error.errorcode.as_str()) => {
                        tracing::debug!(course = at.course, errorcode = %error.errorcode, "Course has no completion status to read; skipped");
                        return Ok(page_to(base, Vec::new(), next_course(courses)));
                    }
                    Some(error) => {
                        return Err(error.into_failure(
                            COMPLETION_STATUS,
                            &format!(" for course {}, user {user}", at.course),
                        ));
                    }
                };
                Ok(page_to(
                    base,
                    records,
                    after_user(courses, done, users, next_from),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
