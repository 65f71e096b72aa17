//! A Moodle site on loopback: the bakery's staff academy (food hygiene and HACCP, allergen
//! handling, customer service at the counter, barista basics, new-hire onboarding).
//!
//! Serves what the `moodle` preset reads, through Moodle's REST web service protocol
//! (<https://docs.moodle.org/dev/Creating_a_web_service_client>,
//! <https://moodledev.io/docs/apis/subsystems/external/writing-a-service>; the functions'
//! parameters and answers as defined in Moodle's source, <https://github.com/moodle/moodle>):
//! - One entry point, `{site}/webservice/rest/server.php` (GET or POST form), with
//!   `wstoken`, `wsfunction` and `moodlewsrestformat` (`json`; XML when absent, as in
//!   Moodle); arrays as `name[0][key]=value`.
//! - Every error, the wrong token included, is HTTP 200 with Moodle's exception object
//!   `{"exception", "errorcode", "message"}` (`<EXCEPTION>` in XML): `invalidtoken` for a
//!   token the site does not know, `invalidrecord` for an unknown function (or course or
//!   user), `accessexception` for a function the token's service does not offer,
//!   `invalidparameter` for a missing or bad parameter (`webservice/lib.php`,
//!   `lib/externallib.php`).
//! - `core_webservice_get_site_info`: the site, the token's user, and the `functions` of
//!   the token's service (`webservice/externallib.php`).
//! - `core_course_get_courses` (`options[ids][i]` optional): every course, the front page
//!   among them with `format` = `site`, with `enablecompletion` (`course/externallib.php`).
//! - `core_enrol_get_enrolled_users(courseid, options[i][name|value])`: `limitfrom`,
//!   `limitnumber` (0: all), `sortby` (`id`, `firstname`, `lastname`, `siteorder`),
//!   `sortdirection` (`ASC`, `DESC`), `userfields` (comma-separated; `id` always),
//!   `onlyactive`; anything else is ignored (`enrol/externallib.php`).
//! - `core_completion_get_course_completion_status(courseid, userid)`:
//!   `{"completionstatus": {"completed", "aggregation", "completions": [...]}, "warnings"}`;
//!   `cannotviewreport` when completion is off for the course, `usernotenroled` for a user
//!   the completion report does not track (the teacher), `nocriteriaset` for a course
//!   without criteria (`completion/classes/external.php`).
//!
//! The data ([`data`]): about 25 staff over the year and their courses; see there.

mod data;

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub use data::{FOOD_HYGIENE, MoodleData, ONBOARDING, WORKSHOP};

use super::{MOODLE_TOKEN, Scenario, constant_time_eq, query_pairs};

/// The functions the token's external service offers.
const SERVICE: [&str; 4] = [
    "core_webservice_get_site_info",
    "core_course_get_courses",
    "core_enrol_get_enrolled_users",
    "core_completion_get_course_completion_status",
];
/// Functions Moodle has that the token's service does not offer (`accessexception`);
/// any other name is unknown to the site (`invalidrecord`).
const OTHER_FUNCTIONS: [&str; 5] = [
    "core_user_get_users",
    "core_course_get_contents",
    "core_enrol_get_users_courses",
    "core_completion_get_activities_completion_status",
    "gradereport_user_get_grade_items",
];
/// The release the site reports.
const RELEASE: &str = "4.5.2 (Build: 20250210)";
const VERSION: &str = "2024100702";

/// A Moodle exception: what the REST server sends (with HTTP 200) instead of an answer.
#[derive(Debug)]
struct Exception {
    exception: &'static str,
    errorcode: &'static str,
    message: String,
}

impl Exception {
    fn new(exception: &'static str, errorcode: &'static str, message: &str) -> Exception {
        Exception {
            exception,
            errorcode,
            message: message.to_string(),
        }
    }

    fn invalid_parameter() -> Exception {
        Exception::new(
            "invalid_parameter_exception",
            "invalidparameter",
            "Invalid parameter value detected",
        )
    }

    fn missing_record(table: &str) -> Exception {
        Exception::new(
            "dml_missing_record_exception",
            "invalidrecord",
            &format!("Can't find data record in database table {table}."),
        )
    }
}

/// The routes, under the caller's prefix (the site's address).
pub fn router(scenario: &Scenario) -> Router {
    routes(Arc::new(MoodleData::bakery(scenario)))
}

/// The routes over `data`.
pub fn routes(data: Arc<MoodleData>) -> Router {
    Router::new()
        .route("/webservice/rest/server.php", get(rest_get).post(rest_post))
        .fallback(not_found)
        .with_state(data)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not Found",
    )
        .into_response()
}

async fn rest_get(State(data): State<Arc<MoodleData>>, RawQuery(raw): RawQuery) -> Response {
    answer(&data, query_pairs(raw.as_deref()))
}

/// A POST carries its parameters in the form body (and possibly the query string too).
async fn rest_post(
    State(data): State<Arc<MoodleData>>,
    RawQuery(raw): RawQuery,
    body: String,
) -> Response {
    let mut params = query_pairs(raw.as_deref());
    params.extend(query_pairs(Some(&body)));
    answer(&data, params)
}

fn answer(data: &MoodleData, params: Vec<(String, String)>) -> Response {
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let as_json = param("moodlewsrestformat") == Some("json");
    let result = call(data, &params, param("wstoken"), param("wsfunction"));
    if as_json {
        let body = match result {
            Ok(value) => value.to_string(),
            Err(error) => json!({
                "exception": error.exception,
                "errorcode": error.errorcode,
                "message": error.message,
            })
            .to_string(),
        };
        super::json(StatusCode::OK, body)
    } else {
        let body = match result {
            Ok(value) => {
                let mut out =
                    String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<RESPONSE>\n");
                xml_value(&value, &mut out);
                out.push_str("</RESPONSE>\n");
                out
            }
            Err(error) => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<EXCEPTION class=\"{}\">\n<ERRORCODE>{}</ERRORCODE>\n<MESSAGE>{}</MESSAGE>\n</EXCEPTION>\n",
                error.exception,
                error.errorcode,
                xml_escape(&error.message)
            ),
        };
        let mut response = (StatusCode::OK, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        response
    }
}

/// Moodle's XML rendering of an answer: lists as `MULTIPLE`, objects as `SINGLE` with
/// `KEY`s, scalars as `VALUE` (booleans as 1/0, null as `null="null"`).
fn xml_value(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push_str("<MULTIPLE>\n");
            for item in items {
                xml_value(item, out);
            }
            out.push_str("</MULTIPLE>\n");
        }
        Value::Object(fields) => {
            out.push_str("<SINGLE>\n");
            for (name, field) in fields {
                out.push_str(&format!("<KEY name=\"{}\">", xml_escape(name)));
                xml_value(field, out);
                out.push_str("</KEY>\n");
            }
            out.push_str("</SINGLE>\n");
        }
        Value::Null => out.push_str("<VALUE null=\"null\"/>"),
        Value::Bool(flag) => out.push_str(&format!("<VALUE>{}</VALUE>", u8::from(*flag))),
        Value::Number(number) => out.push_str(&format!("<VALUE>{number}</VALUE>")),
        Value::String(text) => out.push_str(&format!("<VALUE>{}</VALUE>", xml_escape(text))),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The REST server's order: the token, then the function, then its parameters.
fn call(
    data: &MoodleData,
    params: &[(String, String)],
    token: Option<&str>,
    function: Option<&str>,
) -> Result<Value, Exception> {
    if !constant_time_eq(token.unwrap_or("").as_bytes(), MOODLE_TOKEN.as_bytes()) {
        return Err(Exception::new(
            "moodle_exception",
            "invalidtoken",
            "Invalid token - token not found",
        ));
    }
    let function = function.unwrap_or_default();
    if !SERVICE.contains(&function) {
        return Err(if OTHER_FUNCTIONS.contains(&function) {
            Exception::new(
                "webservice_access_exception",
                "accessexception",
                "Access control exception",
            )
        } else {
            Exception::missing_record("external_functions")
        });
    }
    let integer = |name: &str| -> Result<i64, Exception> {
        params
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.trim().parse().ok())
            .ok_or_else(Exception::invalid_parameter)
    };
    match function {
        "core_webservice_get_site_info" => Ok(site_info(data)),
        "core_course_get_courses" => courses(data, params),
        "core_enrol_get_enrolled_users" => enrolled_users(data, integer("courseid")?, params),
        _ => completion_status(data, integer("courseid")?, integer("userid")?),
    }
}

fn site_info(data: &MoodleData) -> Value {
    let admin = &data.users[&data::ADMIN_ID].json;
    json!({
        "sitename": "Demo Bakery Academy",
        "username": admin["username"],
        "firstname": admin["firstname"],
        "lastname": admin["lastname"],
        "fullname": admin["fullname"],
        "lang": "en",
        "userid": data::ADMIN_ID,
        "siteurl": data::WWWROOT,
        "userpictureurl": admin["profileimageurl"],
        "functions": SERVICE.iter().map(|name| json!({"name": name, "version": VERSION})).collect::<Vec<_>>(),
        "downloadfiles": 0,
        "uploadfiles": 0,
        "release": RELEASE,
        "version": VERSION,
        "mobilecssurl": "",
        "advancedfeatures": [{"name": "usecomments", "value": 1}, {"name": "usetags", "value": 1}, {"name": "enablenotes", "value": 1}, {"name": "messaging", "value": 1}, {"name": "enablebadges", "value": 1}, {"name": "enablecompletion", "value": 1}],
        "usercanmanageownfiles": true,
        "userquota": 104_857_600,
        "usermaxuploadfilesize": 104_857_600,
        "userhomepage": 1,
        "userprivateaccesskey": "",
        "siteid": 1,
        "sitecalendartype": "gregorian",
        "usercalendartype": "gregorian",
        "userissiteadmin": true,
        "theme": "boost",
        "limitconcurrentlogins": 0,
        "policyagreed": 1,
    })
}

fn courses(data: &MoodleData, params: &[(String, String)]) -> Result<Value, Exception> {
    let mut ids = Vec::new();
    for (name, value) in params {
        if name.starts_with("options[ids][") {
            ids.push(
                value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| Exception::invalid_parameter())?,
            );
        }
    }
    Ok(Value::Array(
        data.courses
            .iter()
            .filter(|course| ids.is_empty() || ids.contains(&course.id))
            .map(|course| course.json.clone())
            .collect(),
    ))
}

/// The `options[i][name]` / `options[i][value]` pairs, by index.
fn options(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut found: std::collections::BTreeMap<usize, (String, String)> = Default::default();
    for (key, value) in params {
        let Some(rest) = key.strip_prefix("options[") else {
            continue;
        };
        let Some((index, field)) = rest.split_once("][") else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        let entry = found.entry(index).or_default();
        match field.trim_end_matches(']') {
            "name" => entry.0 = value.clone(),
            "value" => entry.1 = value.clone(),
            _ => {}
        }
    }
    found.into_values().collect()
}

fn enrolled_users(
    data: &MoodleData,
    course_id: i64,
    params: &[(String, String)],
) -> Result<Value, Exception> {
    let course = data
        .course(course_id)
        .ok_or_else(|| Exception::missing_record("course"))?;
    let mut from = 0usize;
    let mut limit = 0usize;
    let mut sort_by = "id".to_string();
    let mut descending = false;
    let mut fields: Option<Vec<String>> = None;
    for (name, value) in options(params) {
        let number = || {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| Exception::invalid_parameter())
        };
        match name.as_str() {
            "limitfrom" => from = number()?,
            "limitnumber" => limit = number()?,
            "sortby" => {
                if !matches!(
                    value.as_str(),
                    "id" | "firstname" | "lastname" | "siteorder"
                ) {
                    return Err(Exception::invalid_parameter());
                }
                sort_by = value;
            }
            "sortdirection" => match value.to_ascii_uppercase().as_str() {
                "ASC" => descending = false,
                "DESC" => descending = true,
                _ => return Err(Exception::invalid_parameter()),
            },
            "userfields" => {
                fields = Some(value.split(',').map(|f| f.trim().to_string()).collect());
            }
            // Every enrolment here is active; groups and capabilities do not narrow it.
            _ => {}
        }
    }
    let mut users: Vec<&data::User> = course
        .enrolled
        .keys()
        .filter_map(|id| data.users.get(id))
        .collect();
    let text = |user: &data::User, field: &str| {
        user.json
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase()
    };
    match sort_by.as_str() {
        "firstname" => users.sort_by_key(|user| (text(user, "firstname"), user.id)),
        "lastname" => users.sort_by_key(|user| (text(user, "lastname"), user.id)),
        _ => users.sort_by_key(|user| user.id),
    }
    if descending {
        users.reverse();
    }
    let page = users
        .into_iter()
        .skip(from)
        .take(if limit == 0 { usize::MAX } else { limit });
    let mut list = Vec::new();
    for user in page {
        let mut entry = user.json.clone();
        let tracked = course.enrolled[&user.id].tracked;
        entry.insert(
            "roles".into(),
            json!([{"roleid": if tracked { 5 } else { 3 }, "name": "", "shortname": if tracked { "student" } else { "editingteacher" }, "sortorder": 0}]),
        );
        entry.insert("groups".into(), json!([]));
        let enrolled_in: Vec<Value> = data
            .courses
            .iter()
            .filter(|other| other.enrolled.contains_key(&user.id))
            .map(|other| {
                json!({"id": other.id, "fullname": other.json["fullname"], "shortname": other.json["shortname"]})
            })
            .collect();
        entry.insert("enrolledcourses".into(), Value::Array(enrolled_in));
        if let Some(fields) = &fields {
            entry.retain(|name, _| name == "id" || fields.iter().any(|field| field == name));
        }
        list.push(Value::Object(entry));
    }
    Ok(Value::Array(list))
}

fn completion_status(data: &MoodleData, course_id: i64, user_id: i64) -> Result<Value, Exception> {
    let course = data
        .course(course_id)
        .ok_or_else(|| Exception::missing_record("course"))?;
    if !data.users.contains_key(&user_id) {
        return Err(Exception::missing_record("user"));
    }
    if !course.completion {
        return Err(Exception::new(
            "moodle_exception",
            "cannotviewreport",
            "You cannot view this report",
        ));
    }
    let enrolment = course
        .enrolled
        .get(&user_id)
        .filter(|enrolment| enrolment.tracked)
        .ok_or_else(|| {
            Exception::new(
                "moodle_exception",
                "usernotenroled",
                "User is not enrolled in this course",
            )
        })?;
    match &enrolment.status {
        Some(status) => Ok(serde_json::from_str(status).expect("the sandbox's own JSON parses")),
        None => Err(Exception::new(
            "moodle_exception",
            "nocriteriaset",
            "No criteria set for this course",
        )),
    }
}
