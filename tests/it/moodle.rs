//! The Moodle source against wiremock: course completions assembled from the course list,
//! each course's enrolled users and each user's completion status; errors in 200 bodies;
//! a pass that resumes where a failed sync stopped; a learner who completes a course later.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

use crate::helpers::*;

const TOKEN: &str = "moodle-ws-0123456789abcdef";
const SERVER: &str = "/academy/webservice/rest/server.php";

/// The site lives under a path, as many Moodle sites do.
fn config(database_url: &str, moodle_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Academy"
timezone = "UTC"

[sources.lms]
kind = "moodle"
schedule = "0 0 2 * * *"
base_url = "{moodle_url}/academy"
token = "${{TEST_STRIPE_KEY}}"

[measures.course_completions]
perspective = "learning"
period = "month"
from = "lms.course_completions"
time = "timecompleted"
where = "completed"
aggregate = "count"
"#
    )
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "lms").await
}

/// A web service call of `function` with the configured token.
fn function(function: &str) -> MockBuilder {
    Mock::given(method("GET"))
        .and(path(SERVER))
        .and(query_param("wstoken", TOKEN))
        .and(query_param("moodlewsrestformat", "json"))
        .and(query_param("wsfunction", function))
}

fn completion(course: u32, user: u32) -> MockBuilder {
    function("core_completion_get_course_completion_status")
        .and(query_param("courseid", course.to_string().as_str()))
        .and(query_param("userid", user.to_string().as_str()))
}

/// Mounts the whole site, each call expected `times` times (the counts are assertions):
/// course 5 has completion off and course 1 is the site page, so neither is walked; course
/// 4 has no completion criteria, so its second user is never asked.
async fn mount_site(server: &MockServer, times: u64, user_2_12: &str) {
    function("core_course_get_courses")
        .respond_with(fixture_response("moodle/courses.json"))
        .expect(times)
        .named("course list")
        .mount(server)
        .await;
    for course in [2, 3, 4] {
        function("core_enrol_get_enrolled_users")
            .and(query_param("courseid", course.to_string().as_str()))
            .and(query_param("options[0][name]", "limitfrom"))
            .and(query_param("options[0][value]", "0"))
            .and(query_param("options[1][name]", "limitnumber"))
            .and(query_param("options[1][value]", "100"))
            .respond_with(fixture_response(&format!(
                "moodle/users_course_{course}.json"
            )))
            .expect(times)
            .named(format!("users of course {course}"))
            .mount(server)
            .await;
    }
    for (course, user, body) in [
        (2, 11, "moodle/completion_2_11.json"),
        (2, 12, user_2_12),
        (2, 13, "moodle/error_usernotenroled.json"),
        (3, 11, "moodle/completion_3_11.json"),
        (3, 14, "moodle/completion_3_14.json"),
        (4, 12, "moodle/error_nocriteriaset.json"),
    ] {
        completion(course, user)
            .respond_with(fixture_response(body))
            .expect(times)
            .named(format!("completion of user {user} in course {course}"))
            .mount(server)
            .await;
    }
    completion(4, 15)
        .respond_with(fixture_response("moodle/completion_3_11.json"))
        .expect(0)
        .named("never asked: course 4 has no criteria")
        .mount(server)
        .await;
}

async fn record_count(services: &Services) -> i64 {
    let state = services
        .store
        .stream_state("lms", "course_completions")
        .await
        .expect("state");
    services
        .store
        .record_count(state.id)
        .await
        .expect("record count")
}

#[tokio::test]
async fn a_full_pass_assembles_completions_and_counts_them_per_month() {
    for db in TestDb::all().await {
        let server = MockServer::start().await;
        // The first call is rate limited once; Retry-After is honoured, then the pass runs.
        mount_rate_limited_once(&server, SERVER, "1", "").await;
        mount_site(&server, 1, "moodle/completion_2_12.json").await;
        let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        // 1 course list + 3 users pages + 6 completion calls; 4 users have a status.
        assert_eq!(report.streams[0].pages, 10, "{}", db.backend);
        assert_eq!(report.streams[0].records, 4, "{}", db.backend);
        // By hand from the fixtures (timecompleted = latest criterion, only when completed):
        // March: course 2 user 11 (03-10), course 3 user 14 (03-20, not its 02-27 criterion);
        // April: course 3 user 11 (04-05); course 2 user 12 has not completed.
        assert_eq!(
            series(&services, "course_completions").await,
            [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(1.0))],
            "{}",
            db.backend
        );
        let state = services
            .store
            .stream_state("lms", "course_completions")
            .await
            .expect("state");
        assert_eq!(
            state.cursor.as_deref(),
            Some("{}"),
            "a complete pass ends the stream"
        );
        let records = services
            .store
            .records_after(state.id, 0, 10)
            .await
            .expect("records");
        let assembled = records
            .iter()
            .map(|record| serde_json::from_str::<serde_json::Value>(&record.data).expect("json"))
            .find(|record| record["courseid"] == 3 && record["userid"] == 14)
            .expect("course 3, user 14");
        assert_eq!(assembled["timecompleted"], 1_774_015_200);
        assert_eq!(assembled["aggregation"], 2);
        assert_eq!(assembled["completions"].as_array().map(Vec::len), Some(2));
        server.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn a_learner_who_completes_later_is_counted_once_in_the_month_of_completion() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    mount_site(&server, 1, "moodle/completion_2_12.json").await;
    let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
    assert!(sync(&services).await.is_success());
    server.verify().await;

    // Ben (user 12) completes course 2 on 2026-04-12; the next pass reads every status again.
    server.reset().await;
    mount_site(&server, 1, "moodle/completion_2_12_completed.json").await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.streams[0].records, 4);
    assert_eq!(report.streams[0].changed, 1, "only Ben's record changed");
    assert_eq!(
        series(&services, "course_completions").await,
        [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(2.0))]
    );
    assert_eq!(record_count(&services).await, 4, "no duplicates");
    server.verify().await;
}

#[tokio::test]
async fn an_invalid_token_in_a_200_body_fails_as_unauthorized_without_showing_it() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SERVER))
        .respond_with(fixture_response("moodle/error_invalidtoken.json"))
        // Not retried: a refused token stays refused.
        .expect(1)
        .mount(&server)
        .await;
    let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
    let report = sync(&services).await;
    let error = report.streams[0].error.clone().expect("failed");
    assert!(
        error.starts_with(
            "unauthorized (Moodle refused core_course_get_courses (invalidtoken: Invalid token - token not found); check the token under Site administration"
        ),
        "{error}"
    );
    assert!(!error.contains(TOKEN), "{error}");
    let state = services
        .store
        .stream_state("lms", "course_completions")
        .await
        .expect("state");
    assert_eq!(state.cursor, None, "nothing committed");
    server.verify().await;
}

#[tokio::test]
async fn a_failed_sync_resumes_at_the_user_where_it_stopped() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    // Everything up to course 3's second user works; that call fails with a Moodle error
    // (fast retries do not apply: an error in a 200 body is not worth retrying).
    function("core_course_get_courses")
        .respond_with(fixture_response("moodle/courses.json"))
        .expect(1)
        .mount(&server)
        .await;
    for course in [2, 3] {
        function("core_enrol_get_enrolled_users")
            .and(query_param("courseid", course.to_string().as_str()))
            .respond_with(fixture_response(&format!(
                "moodle/users_course_{course}.json"
            )))
            .expect(1)
            .mount(&server)
            .await;
    }
    for (course, user, body) in [
        (2, 11, "moodle/completion_2_11.json"),
        (2, 12, "moodle/completion_2_12.json"),
        (2, 13, "moodle/error_usernotenroled.json"),
        (3, 11, "moodle/completion_3_11.json"),
    ] {
        completion(course, user)
            .respond_with(fixture_response(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    completion(3, 14)
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"exception":"dml_read_exception","errorcode":"dmlreadexception","message":"Error reading from database"}"#,
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let services = services(settings(&config(&db.url, &server.uri()), TOKEN)).await;
    let report = sync(&services).await;
    let error = report.streams[0].error.clone().expect("failed");
    assert!(
        error.contains("core_completion_get_course_completion_status for course 3, user 14 failed with Moodle error dmlreadexception: Error reading from database"),
        "{error}"
    );
    // The three records read before the failure are committed with the position after them.
    assert_eq!(record_count(&services).await, 3);
    let state = services
        .store
        .stream_state("lms", "course_completions")
        .await
        .expect("state");
    assert_eq!(
        state.cursor.as_deref(),
        Some(r#"{"resume":{"course":3,"from":0,"after_user":11}}"#)
    );
    server.verify().await;

    // The next sync lists the courses again, re-reads course 3's users page and asks only
    // for user 14, then goes on with course 4: each call once, course 2 not at all.
    server.reset().await;
    function("core_course_get_courses")
        .respond_with(fixture_response("moodle/courses.json"))
        .expect(1)
        .mount(&server)
        .await;
    for course in [3, 4] {
        function("core_enrol_get_enrolled_users")
            .and(query_param("courseid", course.to_string().as_str()))
            .respond_with(fixture_response(&format!(
                "moodle/users_course_{course}.json"
            )))
            .expect(1)
            .mount(&server)
            .await;
    }
    for (course, user, body) in [
        (3, 14, "moodle/completion_3_14.json"),
        (4, 12, "moodle/error_nocriteriaset.json"),
    ] {
        completion(course, user)
            .respond_with(fixture_response(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(record_count(&services).await, 4);
    assert_eq!(
        series(&services, "course_completions").await,
        [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(1.0))]
    );
    server.verify().await;
}

#[tokio::test]
async fn moodle_needs_its_site_url_and_token() {
    let env = std::collections::BTreeMap::from([("TEST_STRIPE_KEY".to_string(), "t".to_string())]);
    let text = config("sqlite://unused.db", "http://127.0.0.1:9")
        .replace("base_url = \"http://127.0.0.1:9/academy\"\n", "")
        .replace("token = \"${TEST_STRIPE_KEY}\"\n", "");
    let error = scorekeeper::config::load_str(&text, "test.toml", &env).expect_err("invalid");
    let lms: Vec<&String> = error
        .problems
        .iter()
        .filter(|problem| problem.starts_with("sources.lms."))
        .collect();
    assert_eq!(
        lms,
        [
            "sources.lms.base_url: is required for kind \"moodle\"",
            "sources.lms.token: is required for kind \"moodle\""
        ],
        "one problem each, no invalid-URL noise"
    );
}
