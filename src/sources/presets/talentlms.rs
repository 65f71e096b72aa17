//! TalentLMS: course completions, assembled from the course list and each course's users.
//!
//! Follows TalentLMS's REST API v1 documentation
//! (<https://www.talentlms.com/pages/docs/TalentLMS-API-Documentation.pdf>, sections
//! "Authentication", "Errors", "Rate limits", "Courses"):
//! - Base `https://{domain}/api/v1`, where `domain` is the portal's TalentLMS domain
//!   (`acme.talentlms.com`): <https://help.talentlms.com/hc/en-us/articles/9651527213468-Can-I-integrate-my-site-with-TalentLMS-Do-you-offer-an-API>
//! - Authentication: HTTP Basic with the API key as the user name and an empty password.
//! - `GET /api/v1/courses`: every course, abridged (no users), as one JSON array; no paging.
//! - `GET /api/v1/courses/id:{id}`: one course with `users`, each entry `{"id", "name",
//!   "role", "enrolled_on", "enrolled_on_timestamp", "completed_on",
//!   "completed_on_timestamp", "completion_percentage", "expired_on",
//!   "expired_on_timestamp", "total_time"}`; dates are in the portal's display format,
//!   the `*_timestamp` fields unix seconds as strings (null until the event happens).
//! - Errors: `{"error": {"type": ..., "message": ...}}` with 400, 401 (bad key), 403 (API
//!   disabled, domain inactive), 404 (no such course) or 500; the shared client shows
//!   `error.message`.
//! - Rate limits: an hourly allowance per domain and plan (`GET /api/v1/ratelimit` answers
//!   `{"limit", "remaining", "reset"}`, reset in unix seconds), and at most 200 calls per 5
//!   seconds (help article above). Responses may carry `X-RateLimit-Limit`,
//!   `X-RateLimit-Remaining` and `X-RateLimit-Reset`; a 429 goes through the shared client,
//!   which honours `Retry-After`.
//!
//! Records (DESIGN §2): one per (course, user): the entry of `users` as TalentLMS sends it,
//! plus `course_id` and `course_name` (the course's `id` and `name`). Key `(course_id, id)`.
//! A completion measure counts records whose `completed_on_timestamp` is set, at that time.
//!
//! The walk: the course list, then one request per course, in id order. The state the
//! engine carries says which courses remain; the saved cursor names the course to resume
//! at, so a sync that stops (crash, shutdown) lists the courses again and continues there
//! (a course deleted meanwhile simply drops out). A complete pass ends the stream and the
//! cursor goes back to `{}`: the next sync starts a new pass.
//!
//! Cost and incremental behaviour: the API has no "changed since" filter for course
//! users, so every pass re-reads every course: 1 + (number of courses) calls per sync.
//! Unchanged records are not rewritten. When a response says the hourly allowance is used
//! up (`X-RateLimit-Remaining: 0`), the pass stops after that page and the next sync resumes
//! at the next course, instead of running into an hour of refusals.

use crate::config::RecordFields;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Preset, PresetInfo, SyncWindow, endpoint};
use crate::config::SourceConfig;
use crate::secret::Secret;
use crate::sources::http::{Auth, ParseError};
use crate::sources::{FetchedRecord, Page, PageRequest, SourceError, fetched_records};

/// TalentLMS's description; the base URL is built from `domain` (a bare name means its
/// talentlms.com domain).
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "https://{domain}",
    streams: &["course_completions"],
    required: &["domain", "api_key"],
    // Every pass reads everything: there is no time window to look back over.
    default_lookback: Duration::ZERO,
    token_url: None,
};

/// The remaining calls of the hourly allowance, when the API says.
const REMAINING_HEADER: &str = "x-ratelimit-remaining";
/// When the allowance renews (unix seconds), when the API says.
const RESET_HEADER: &str = "x-ratelimit-reset";

/// The TalentLMS preset.
pub struct Talentlms;

/// The saved cursor: the course to resume at, or nothing between passes (`{}`).
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resume: Option<u64>,
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
    /// The course list, at the start of a pass (resuming at course `resume` if set).
    Courses {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<u64>,
    },
    /// One course with its users; `courses` follow.
    Course { course: u64, courses: Vec<u64> },
}

impl Step {
    /// The cursor to save once the page before this step is committed.
    fn saved(&self) -> Saved {
        match self {
            Step::Courses { resume } => Saved { resume: *resume },
            Step::Course { course, .. } => Saved {
                resume: Some(*course),
            },
        }
    }
}

/// The first of `courses`, or `None` at the end of the pass.
fn next_course(mut courses: Vec<u64>) -> Option<Step> {
    if courses.is_empty() {
        return None;
    }
    let course = courses.remove(0);
    Some(Step::Course { course, courses })
}

/// The request that carries out `step`.
fn request_for(base: &reqwest::Url, step: Step) -> PageRequest {
    let url = match &step {
        Step::Courses { .. } => endpoint(base, "api/v1/courses"),
        Step::Course { course, .. } => endpoint(base, &format!("api/v1/courses/id:{course}")),
    };
    let state = serde_json::to_string(&step).expect("a step of plain fields always serializes");
    PageRequest::get(url, state)
}

/// The page that read `records` and continues with `next` (or ends the pass).
fn page_to(base: &reqwest::Url, records: Vec<FetchedRecord>, next: Option<Step>) -> Page {
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

fn parse_body(body: &[u8], what: &str) -> Result<Value, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| ParseError {
        truncated: error.is_eof(),
        unauthorized: false,
        detail: format!("{what} is not JSON: {error}"),
    })?;
    // The documented error shape, should it ever come with a 2xx status.
    if let Some(error) = value.get("error").filter(|error| error.is_object()) {
        let field = |name: &str| {
            error
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        return Err(ParseError::malformed(format!(
            "{what}: TalentLMS error {}: {}",
            field("type"),
            field("message")
        )));
    }
    Ok(value)
}

/// A course id, sent as a numeric string (`"123"`) or a number.
fn course_id(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::String(text) => text.trim().parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

/// The course ids of the list, in numeric order.
fn course_ids(body: &Value) -> Result<Vec<u64>, ParseError> {
    let list = body
        .as_array()
        .ok_or_else(|| ParseError::malformed("GET courses did not return a list of courses"))?;
    let mut ids = Vec::with_capacity(list.len());
    for (index, course) in list.iter().enumerate() {
        ids.push(course_id(course.get("id")).ok_or_else(|| {
            ParseError::malformed(format!("course {index} of the list has no numeric id"))
        })?);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The records of one course: each entry of `users` with `course_id` and `course_name`.
fn course_records(body: Value, course: u64) -> Result<Vec<FetchedRecord>, ParseError> {
    let Value::Object(mut answer) = body else {
        return Err(ParseError::malformed(format!(
            "course {course} is not a JSON object"
        )));
    };
    let id = answer
        .remove("id")
        .unwrap_or_else(|| course.to_string().into());
    let name = answer.remove("name").unwrap_or(Value::Null);
    let users = match answer.remove("users") {
        Some(Value::Array(users)) => users,
        // A course nobody is enrolled in.
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(ParseError::malformed(format!(
                "course {course}: users is not a list"
            )));
        }
    };
    let mut raws = Vec::with_capacity(users.len());
    for (index, user) in users.into_iter().enumerate() {
        let Value::Object(mut entry) = user else {
            return Err(ParseError::malformed(format!(
                "course {course}: user {index} is not an object"
            )));
        };
        entry.insert("course_id".into(), id.clone());
        entry.insert("course_name".into(), name.clone());
        let text = serde_json::to_string(&entry).expect("a JSON object always serializes");
        raws.push(RawValue::from_string(text).expect("serde_json wrote valid JSON"));
    }
    let objects: Vec<&RawValue> = raws.iter().map(AsRef::as_ref).collect();
    fetched_records(&objects, &["course_id", "id"], &RecordFields::All)
}

/// True when the response says the hourly allowance is used up.
fn allowance_used_up(headers: &HeaderMap) -> bool {
    headers
        .get(REMAINING_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<i64>().ok())
        .is_some_and(|remaining| remaining <= 0)
}

impl Preset for Talentlms {
    /// Not reconcilable: a pass may end early when the hourly allowance runs out (and
    /// resume at the next sync), so a record missing from one walk is not proof.
    fn coverage(&self, _source: &SourceConfig, _stream: &str) -> super::Coverage {
        super::Coverage::None
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        match &source.api_key {
            // TalentLMS's form: the key is the user, the password is empty.
            Some(key) if !key.is_empty() => Ok(Auth::Basic {
                username: key.clone(),
                password: Secret::new(""),
            }),
            _ => Err(SourceError::Unauthorized {
                message: "api_key is required".into(),
            }),
        }
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        // Cheap, and answers only with a valid key on an API-enabled domain.
        PageRequest::get(
            endpoint(&source.base_url, "api/v1/ratelimit"),
            String::new(),
        )
    }

    fn check_probe(
        &self,
        _source: &SourceConfig,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), ParseError> {
        parse_body(body, "GET ratelimit").map(|_| ())
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
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let step: Step = serde_json::from_str(&request.state).map_err(|error| {
            ParseError::malformed(format!("internal cursor state unreadable: {error}"))
        })?;
        let base = &source.base_url;
        let (records, next) = match step {
            Step::Courses { resume } => {
                let mut courses = course_ids(&parse_body(body, "GET courses")?)?;
                if let Some(resume) = resume {
                    courses.retain(|course| *course >= resume);
                }
                (Vec::new(), next_course(courses))
            }
            Step::Course { course, courses } => {
                let answer = parse_body(body, &format!("GET courses/id:{course}"))?;
                (course_records(answer, course)?, next_course(courses))
            }
        };
        if let Some(step) = &next
            && allowance_used_up(headers)
        {
            let reset = headers
                .get(RESET_HEADER)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("unknown");
            tracing::warn!(
                reset,
                cursor = %step.saved().encode(),
                "TalentLMS API calls used up for this hour; the next sync resumes here"
            );
            return Ok(Page {
                records,
                cursor: step.saved().encode(),
                next: None,
            });
        }
        Ok(page_to(base, records, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::sources::presets::test_source;
    use reqwest::header::HeaderValue;

    const BASE: &str = "https://acme.talentlms.com";

    fn source() -> SourceConfig {
        SourceConfig {
            api_key: Some(Secret::new("tl-key")),
            domain: Some("acme.talentlms.com".into()),
            ..test_source(SourceKind::Talentlms, BASE)
        }
    }

    fn window() -> SyncWindow {
        SyncWindow {
            start: None,
            lookback: Duration::ZERO,
        }
    }

    fn parse(request: &PageRequest, headers: &HeaderMap, body: &str) -> Result<Page, ParseError> {
        Talentlms.parse_page(
            &source(),
            "course_completions",
            request,
            headers,
            body.as_bytes(),
        )
    }

    fn course_body(id: &str, users: &str) -> String {
        format!(
            r#"{{"id":"{id}","name":"Course {id}","status":"active","users":[{users}],"units":[]}}"#
        )
    }

    const USER_5: &str = r#"{"id":"5","name":"A. Learner","role":"learner","completed_on":"","completed_on_timestamp":null,"completion_percentage":"40"}"#;

    #[test]
    fn a_pass_lists_courses_then_reads_each_in_id_order() {
        let first = Talentlms
            .first_request(&source(), "course_completions", None, &window())
            .expect("request");
        assert_eq!(first.url.as_str(), format!("{BASE}/api/v1/courses"));
        let list = Talentlms
            .first_request(&source(), "course_completions", None, &window())
            .expect("request");
        let page = parse(
            &list,
            &HeaderMap::new(),
            r#"[{"id":"12","name":"B"},{"id":"3","name":"A"}]"#,
        )
        .expect("page");
        assert!(page.records.is_empty());
        assert_eq!(page.cursor, r#"{"resume":3}"#, "resume at the first course");
        let course_3 = page.next.expect("course 3");
        assert_eq!(course_3.url.as_str(), format!("{BASE}/api/v1/courses/id:3"));

        let page = parse(&course_3, &HeaderMap::new(), &course_body("3", USER_5)).expect("page");
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].key, "3\u{1f}5");
        let record: Value = serde_json::from_str(page.records[0].raw.get()).expect("json");
        assert_eq!(record["course_id"], "3");
        assert_eq!(record["course_name"], "Course 3");
        assert_eq!(
            record["completion_percentage"], "40",
            "the API's entry, unchanged"
        );
        assert_eq!(page.cursor, r#"{"resume":12}"#);
        let course_12 = page.next.expect("course 12");
        assert_eq!(
            course_12.url.as_str(),
            format!("{BASE}/api/v1/courses/id:12")
        );

        // The last course ends the pass; the cursor goes back to a fresh start.
        let end = parse(&course_12, &HeaderMap::new(), &course_body("12", "")).expect("page");
        assert!(end.records.is_empty());
        assert!(end.next.is_none());
        assert_eq!(end.cursor, "{}");
    }

    #[test]
    fn a_saved_position_resumes_at_that_course_or_the_next_one() {
        let request = Talentlms
            .first_request(
                &source(),
                "course_completions",
                Some(r#"{"resume":7}"#),
                &window(),
            )
            .expect("request");
        assert_eq!(request.url.as_str(), format!("{BASE}/api/v1/courses"));
        // Course 7 was deleted meanwhile: the walk continues at 9.
        let page = parse(
            &request,
            &HeaderMap::new(),
            r#"[{"id":3},{"id":9},{"id":"11"}]"#,
        )
        .expect("page");
        assert_eq!(
            page.next.expect("course 9").url.as_str(),
            format!("{BASE}/api/v1/courses/id:9")
        );
        assert_eq!(page.cursor, r#"{"resume":9}"#);
        assert!(matches!(
            Talentlms.first_request(
                &source(),
                "course_completions",
                Some(r#"{"resume":"x"}"#),
                &window()
            ),
            Err(SourceError::BadCursor(_))
        ));
    }

    #[test]
    fn a_used_up_allowance_stops_the_pass_where_the_next_sync_resumes() {
        let list = Talentlms
            .first_request(&source(), "course_completions", None, &window())
            .expect("request");
        let mut headers = HeaderMap::new();
        headers.insert(REMAINING_HEADER, HeaderValue::from_static("0"));
        headers.insert(RESET_HEADER, HeaderValue::from_static("1775000000"));
        let page = parse(&list, &headers, r#"[{"id":"4"}]"#).expect("page");
        assert!(page.next.is_none(), "stops instead of calling again");
        assert_eq!(page.cursor, r#"{"resume":4}"#);
        // Calls left: the pass goes on.
        headers.insert(REMAINING_HEADER, HeaderValue::from_static("17"));
        let page = parse(&list, &headers, r#"[{"id":"4"}]"#).expect("page");
        assert!(page.next.is_some());
    }

    #[test]
    fn malformed_answers_name_what_is_wrong() {
        let list = Talentlms
            .first_request(&source(), "course_completions", None, &window())
            .expect("request");
        let error = parse(
            &list,
            &HeaderMap::new(),
            r#"{"error":{"type":"invalid_request_error","message":"Invalid arguments provided"}}"#,
        )
        .expect_err("error body");
        assert!(
            error
                .detail
                .contains("TalentLMS error invalid_request_error: Invalid arguments provided"),
            "{}",
            error.detail
        );
        let error = parse(&list, &HeaderMap::new(), r#"[{"name":"no id"}]"#).expect_err("no id");
        assert!(
            error
                .detail
                .contains("course 0 of the list has no numeric id"),
            "{}",
            error.detail
        );
        let truncated = parse(&list, &HeaderMap::new(), r#"[{"id":"1"#).expect_err("cut off");
        assert!(truncated.truncated);
        let course = request_for(
            &source().base_url,
            Step::Course {
                course: 3,
                courses: Vec::new(),
            },
        );
        let error = parse(
            &course,
            &HeaderMap::new(),
            &course_body("3", r#"{"name":"no id"}"#),
        )
        .expect_err("user without id");
        assert!(
            error.detail.contains("item 0 has no usable primary key"),
            "{}",
            error.detail
        );
        let error =
            parse(&course, &HeaderMap::new(), r#"{"id":"3","users":{}}"#).expect_err("users");
        assert!(
            error.detail.contains("course 3: users is not a list"),
            "{}",
            error.detail
        );
    }

    #[test]
    fn auth_is_basic_with_the_key_as_user_and_an_empty_password() {
        match Talentlms.auth(&source()).expect("auth") {
            Auth::Basic { username, password } => {
                assert_eq!(username.expose(), "tl-key");
                assert_eq!(password.expose(), "");
            }
            _ => panic!("expected HTTP Basic"),
        }
        let mut keyless = source();
        keyless.api_key = None;
        assert!(matches!(
            Talentlms.auth(&keyless),
            Err(SourceError::Unauthorized { .. })
        ));
        assert_eq!(
            Talentlms.probe(&source()).url.as_str(),
            format!("{BASE}/api/v1/ratelimit")
        );
        assert!(
            Talentlms
                .check_probe(
                    &source(),
                    &HeaderMap::new(),
                    br#"{"limit":"2000","remaining":1999,"reset":"1775000000"}"#
                )
                .is_ok()
        );
    }
}
