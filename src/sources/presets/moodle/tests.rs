//! Unit tests of the Moodle preset: URLs, the walk's steps and saved positions, error mapping.

use super::*;
use crate::config::SourceKind;
use crate::secret::Secret;
use crate::sources::presets::test_source;

const SITE: &str = "https://learn.example.org/moodle";
const SERVER: &str = "https://learn.example.org/moodle/webservice/rest/server.php";

fn source() -> SourceConfig {
    SourceConfig {
        token: Some(Secret::new("ws-secret")),
        ..test_source(SourceKind::Moodle, SITE)
    }
}

fn window() -> SyncWindow {
    SyncWindow {
        start: None,
        lookback: Duration::ZERO,
    }
}

fn first(cursor: Option<&str>) -> PageRequest {
    Moodle
        .first_request(&source(), "course_completions", cursor, &window())
        .expect("request")
}

fn parse(request: &PageRequest, body: &str) -> Result<Page, ParseError> {
    Moodle.parse_page(
        &source(),
        "course_completions",
        request,
        &HeaderMap::new(),
        body.as_bytes(),
    )
}

fn users(ids: std::ops::RangeInclusive<i64>) -> String {
    let users: Vec<String> = ids.map(|id| format!(r#"{{"id":{id}}}"#)).collect();
    format!("[{}]", users.join(","))
}

fn status(completed: bool, times: &[Option<i64>]) -> String {
    let completions: Vec<String> = times
        .iter()
        .map(|time| {
            let time = time.map_or("null".to_string(), |time| time.to_string());
            format!(
                r#"{{"type":4,"title":"Activity completion","status":"Yes","complete":true,"timecompleted":{time},"details":{{"type":"Activity completion","criteria":"Quiz","requirement":"Marking yourself complete","status":""}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"completionstatus":{{"completed":{completed},"aggregation":1,"completions":[{}]}},"warnings":[]}}"#,
        completions.join(",")
    )
}

fn error(code: &str, message: &str) -> String {
    format!(r#"{{"exception":"moodle_exception","errorcode":"{code}","message":"{message}"}}"#)
}

#[test]
fn urls_keep_the_site_path_and_name_the_function() {
    let request = first(None);
    assert_eq!(
        request.url.as_str(),
        format!("{SERVER}?wsfunction=core_course_get_courses&moodlewsrestformat=json")
    );
    let users = request_for(
        &source().base_url,
        Step::Users {
            courses: vec![],
            at: Position {
                course: 7,
                from: 200,
                after_user: None,
            },
        },
    );
    let pairs: Vec<(String, String)> = users
        .url
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let expected = [
        ("wsfunction", "core_enrol_get_enrolled_users"),
        ("moodlewsrestformat", "json"),
        ("courseid", "7"),
        ("options[0][name]", "limitfrom"),
        ("options[0][value]", "200"),
        ("options[1][name]", "limitnumber"),
        ("options[1][value]", "100"),
        ("options[2][name]", "userfields"),
        ("options[2][value]", "id"),
        ("options[3][name]", "sortby"),
        ("options[3][value]", "id"),
        ("options[4][name]", "sortdirection"),
        ("options[4][value]", "ASC"),
    ];
    assert_eq!(
        pairs,
        expected
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        Moodle.probe(&source()).url.as_str(),
        format!("{SERVER}?wsfunction=core_webservice_get_site_info&moodlewsrestformat=json")
    );
    // The token travels as wstoken, a name redact_url hides.
    match Moodle.auth(&source()).expect("auth") {
        Auth::Query { name, value } => {
            assert_eq!(name, "wstoken");
            assert_eq!(value.expose(), "ws-secret");
        }
        _ => panic!("expected a query token"),
    }
    let mut tokenless = source();
    tokenless.token = None;
    assert!(matches!(
        Moodle.auth(&tokenless),
        Err(SourceError::Unauthorized { .. })
    ));
}

#[test]
fn a_pass_walks_courses_users_and_completions_then_ends() {
    let list = first(None);
    // The site page and a course with completion off are left out; ids come sorted.
    let page = parse(
        &list,
        r#"[{"id":1,"format":"site"},{"id":9,"format":"topics","enablecompletion":1},{"id":4,"format":"topics","enablecompletion":1},{"id":6,"format":"weeks","enablecompletion":0}]"#,
    )
    .expect("courses");
    assert!(page.records.is_empty());
    assert_eq!(page.cursor, r#"{"resume":{"course":4,"from":0}}"#);
    let users_4 = page.next.expect("users of course 4");
    assert_eq!(
        users_4
            .url
            .query_pairs()
            .find(|(name, _)| name == "courseid")
            .expect("courseid")
            .1,
        "4"
    );

    let page = parse(&users_4, r#"[{"id":12},{"id":3}]"#).expect("users");
    assert!(page.next.as_ref().is_some_and(|next| next
        .url
        .as_str()
        .contains("core_completion_get_course_completion_status&moodlewsrestformat=json&courseid=4&userid=3")));
    let user_3 = page.next.expect("user 3");

    // A teacher is not tracked: skipped without a record.
    let page = parse(&user_3, &error("usernotenroled", "User is not enrolled")).expect("skip");
    assert!(page.records.is_empty());
    assert_eq!(
        page.cursor,
        r#"{"resume":{"course":4,"from":0,"after_user":3}}"#
    );
    let user_12 = page.next.expect("user 12");
    assert!(user_12.url.as_str().ends_with("courseid=4&userid=12"));

    let page = parse(
        &user_12,
        &status(true, &[Some(1_772_000_000), Some(1_773_000_000), None]),
    )
    .expect("status");
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].key, "4\u{1f}12");
    let record: Value = serde_json::from_str(page.records[0].raw.get()).expect("json");
    assert_eq!(record["courseid"], 4);
    assert_eq!(record["userid"], 12);
    assert_eq!(
        record["timecompleted"], 1_773_000_000,
        "the latest criterion"
    );
    assert_eq!(record["completed"], true);
    assert_eq!(record["aggregation"], 1);
    assert_eq!(record["completions"][2]["timecompleted"], Value::Null);
    assert!(
        record.get("warnings").is_none(),
        "only the completionstatus object"
    );
    // Short users page: course 4 is done, course 9 follows.
    assert_eq!(page.cursor, r#"{"resume":{"course":9,"from":0}}"#);
    let users_9 = page.next.expect("users of course 9");

    let page = parse(&users_9, "[]").expect("nobody enrolled");
    assert!(page.next.is_none(), "the last course ends the pass");
    assert_eq!(page.cursor, "{}");
}

#[test]
fn not_completed_has_a_null_timecompleted() {
    let request = request_for(
        &source().base_url,
        Step::Completion {
            courses: vec![],
            at: Position {
                course: 2,
                from: 0,
                after_user: None,
            },
            users: vec![5],
            next_from: None,
        },
    );
    let page = parse(&request, &status(false, &[Some(1_772_000_000), None])).expect("status");
    let record: Value = serde_json::from_str(page.records[0].raw.get()).expect("json");
    assert_eq!(record["timecompleted"], Value::Null);
    assert_eq!(record["completed"], false);
    assert_eq!(page.cursor, "{}");
}

#[test]
fn full_users_pages_continue_at_the_next_offset() {
    let users_page = request_for(
        &source().base_url,
        Step::Users {
            courses: vec![8],
            at: Position {
                course: 2,
                from: 0,
                after_user: None,
            },
        },
    );
    let page = parse(&users_page, &users(1..=100)).expect("users");
    let mut next = page.next.expect("user 1");
    for user in 1..=100 {
        assert!(
            next.url
                .as_str()
                .ends_with(&format!("courseid=2&userid={user}"))
        );
        let page = parse(&next, &status(false, &[None])).expect("status");
        next = page.next.expect("more");
        if user == 100 {
            assert_eq!(
                page.cursor,
                r#"{"resume":{"course":2,"from":100,"after_user":100}}"#
            );
        }
    }
    assert!(
        next.url.as_str().contains("options%5B0%5D%5Bvalue%5D=100"),
        "{}",
        next.url
    );
    // A course without completion criteria: its other users are not asked.
    let after = parse(&next, &users(101..=101))
        .expect("users")
        .next
        .expect("user 101");
    let page = parse(&after, &error("nocriteriaset", "No criteria set")).expect("skip course");
    assert!(page.records.is_empty());
    assert_eq!(page.cursor, r#"{"resume":{"course":8,"from":0}}"#);
}

#[test]
fn a_site_that_ignores_the_paging_options_cannot_loop() {
    let users_page = |from: usize, after_user: Option<i64>| {
        request_for(
            &source().base_url,
            Step::Users {
                courses: vec![],
                at: Position {
                    course: 2,
                    from,
                    after_user,
                },
            },
        )
    };
    // All 150 users at once: no further page.
    let page = parse(&users_page(0, None), &users(1..=150)).expect("users");
    let mut next = page.next.expect("user 1");
    for _ in 1..150 {
        next = parse(&next, &status(false, &[None]))
            .expect("status")
            .next
            .expect("more users");
    }
    assert!(next.url.as_str().ends_with("userid=150"));
    assert!(
        parse(&next, &status(false, &[None]))
            .expect("status")
            .next
            .is_none()
    );
    // The first page again where the second was asked for: nobody new, the course ends.
    let page = parse(&users_page(100, Some(100)), &users(1..=100)).expect("users");
    assert!(page.next.is_none());
    assert_eq!(page.cursor, "{}");
}

#[test]
fn a_saved_position_resumes_at_that_course_and_skips_users_already_read() {
    let list = first(Some(
        r#"{"resume":{"course":4,"from":100,"after_user":150}}"#,
    ));
    assert!(list.url.as_str().contains("core_course_get_courses"));
    let page = parse(&list, r#"[{"id":2},{"id":4},{"id":9}]"#).expect("courses");
    assert_eq!(
        page.cursor,
        r#"{"resume":{"course":4,"from":100,"after_user":150}}"#
    );
    let users_page = page.next.expect("users page 2 of course 4");
    assert!(users_page.url.as_str().contains("courseid=4"));
    assert!(
        users_page
            .url
            .as_str()
            .contains("options%5B0%5D%5Bvalue%5D=100")
    );
    let page = parse(&users_page, &users(149..=152)).expect("users");
    assert!(
        page.next
            .expect("user 151")
            .url
            .as_str()
            .ends_with("userid=151")
    );

    // The course was deleted since: the walk goes on with the next one.
    let page = parse(&list, r#"[{"id":2},{"id":9}]"#).expect("courses");
    assert_eq!(page.cursor, r#"{"resume":{"course":9,"from":0}}"#);
    assert!(matches!(
        Moodle.first_request(
            &source(),
            "course_completions",
            Some("{\"resume\":1}"),
            &window()
        ),
        Err(SourceError::BadCursor(_))
    ));
}

#[test]
fn moodle_errors_in_200_bodies_map_to_unauthorized_or_name_the_call() {
    let list = first(None);
    let refused = parse(
        &list,
        &error("invalidtoken", "Invalid token - token not found"),
    )
    .expect_err("bad token");
    assert!(refused.unauthorized);
    assert!(
        refused.detail.starts_with(
            "Moodle refused core_course_get_courses (invalidtoken: Invalid token - token not found); check the token"
        ),
        "{}",
        refused.detail
    );
    let missing = parse(&list, &error("accessexception", "Access control exception"))
        .expect_err("function not in the service");
    assert!(missing.unauthorized);
    assert!(
        missing
            .detail
            .contains("must include core_course_get_courses"),
        "{}",
        missing.detail
    );

    let request = request_for(
        &source().base_url,
        Step::Completion {
            courses: vec![],
            at: Position {
                course: 3,
                from: 0,
                after_user: None,
            },
            users: vec![8],
            next_from: None,
        },
    );
    let other = parse(
        &request,
        r#"{"exception":"dml_read_exception","errorcode":"dmlreadexception","message":"Error reading from database","debuginfo":"server gone"}"#,
    )
    .expect_err("other errors fail the page");
    assert!(!other.unauthorized);
    assert_eq!(
        other.detail,
        "core_completion_get_course_completion_status for course 3, user 8 failed with Moodle error dmlreadexception: Error reading from database (server gone)"
    );
    let truncated = parse(&request, r#"{"completionstatus":{"compl"#).expect_err("cut off");
    assert!(truncated.truncated);
    let shapeless = parse(&request, r#"{"warnings":[]}"#).expect_err("no status");
    assert!(
        shapeless.detail.contains("has no completionstatus object"),
        "{}",
        shapeless.detail
    );
    let users_page = request_for(
        &source().base_url,
        Step::Users {
            courses: vec![5],
            at: Position {
                course: 3,
                from: 0,
                after_user: None,
            },
        },
    );
    let gone = parse(
        &users_page,
        &error(
            "invalidrecord",
            "Can't find data record in database table course.",
        ),
    )
    .expect("a deleted course is skipped");
    assert_eq!(gone.cursor, r#"{"resume":{"course":5,"from":0}}"#);
}

#[test]
fn the_probe_reads_errors_and_missing_functions() {
    let headers = HeaderMap::new();
    let refused = Moodle
        .check_probe(
            &source(),
            &headers,
            error("invalidtoken", "Invalid token - token not found").as_bytes(),
        )
        .expect_err("bad token");
    assert!(refused.unauthorized);
    assert!(
        refused.detail.contains("core_webservice_get_site_info"),
        "{}",
        refused.detail
    );
    let partial = br#"{"sitename":"Academy","functions":[{"name":"core_course_get_courses","version":"2024"},{"name":"core_webservice_get_site_info","version":"2024"}]}"#;
    let missing = Moodle
        .check_probe(&source(), &headers, partial)
        .expect_err("missing functions");
    assert!(missing.unauthorized);
    assert!(
        missing.detail.starts_with("the token's external service lacks core_enrol_get_enrolled_users, core_completion_get_course_completion_status"),
        "{}",
        missing.detail
    );
    let complete = br#"{"sitename":"Academy","functions":[{"name":"core_course_get_courses"},{"name":"core_enrol_get_enrolled_users"},{"name":"core_completion_get_course_completion_status"}]}"#;
    assert!(Moodle.check_probe(&source(), &headers, complete).is_ok());
}
