//! The TalentLMS source against wiremock: course completions assembled from the course list
//! and each course's users, API-key Basic auth, 401, 429, the hourly allowance running out
//! mid-pass, and a learner who completes a course later.

use scorekeeper::app::Services;
use scorekeeper::sources::engine::SourceReport;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const KEY: &str = "tl-secret-key";
/// `base64("tl-secret-key:")`: the API key as the Basic user, an empty password.
const BASIC: &str = "Basic dGwtc2VjcmV0LWtleTo=";

fn config(database_url: &str, talentlms_url: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[scorecard]
name = "Academy"
timezone = "UTC"

[sources.training]
kind = "talentlms"
schedule = "0 0 2 * * *"
domain = "acme"
base_url = "{talentlms_url}"
api_key = "${{TEST_STRIPE_KEY}}"

[measures.course_completions]
perspective = "learning"
period = "month"
from = "training.course_completions"
time = "completed_on_timestamp"
where = "role == 'learner' && completed_on_timestamp != null"
aggregate = "count"
"#
    )
}

async fn sync(services: &Services) -> SourceReport {
    sync_source(services, "training").await
}

/// Mounts the course list and each course, each expected `times` times (the counts are
/// assertions); `course_101` is the fixture of course 101.
async fn mount_portal(server: &MockServer, times: u64, course_101: &str) {
    Mock::given(method("GET"))
        .and(path("/api/v1/courses"))
        .and(header("authorization", BASIC))
        .respond_with(fixture_response("talentlms/courses.json"))
        .expect(times)
        .named("course list")
        .mount(server)
        .await;
    for (course, body) in [
        ("101", course_101),
        ("102", "talentlms/course_102.json"),
        ("103", "talentlms/course_103.json"),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/api/v1/courses/id:{course}")))
            .and(header("authorization", BASIC))
            .respond_with(fixture_response(body))
            .expect(times)
            .named(format!("course {course}"))
            .mount(server)
            .await;
    }
}

async fn stream_cursor(services: &Services) -> Option<String> {
    services
        .store
        .stream_state("training", "course_completions")
        .await
        .expect("state")
        .cursor
}

async fn record_count(services: &Services) -> i64 {
    let state = services
        .store
        .stream_state("training", "course_completions")
        .await
        .expect("state");
    services
        .store
        .record_count(state.id)
        .await
        .expect("record count")
}

#[tokio::test]
async fn a_full_pass_assembles_course_users_and_counts_completions_per_month() {
    for db in TestDb::all().await {
        let server = MockServer::start().await;
        mount_rate_limited_once(
            &server,
            "/api/v1/courses",
            "1",
            r#"{"error":{"type":"rate_limit_error","message":"Too many requests"}}"#,
        )
        .await;
        mount_portal(&server, 1, "talentlms/course_101.json").await;
        let services = services(settings(&config(&db.url, &server.uri()), KEY)).await;
        let report = sync(&services).await;
        assert!(report.is_success(), "{}: {report:?}", db.backend);
        // The list and three courses; 3 + 2 + 0 users.
        assert_eq!(report.streams[0].pages, 4, "{}", db.backend);
        assert_eq!(report.streams[0].records, 5, "{}", db.backend);
        // By hand from the fixtures (learners with completed_on_timestamp): March: course
        // 101 user 21 (03-02), course 102 user 23 (03-25); April: course 102 user 21 (04-21).
        assert_eq!(
            series(&services, "course_completions").await,
            [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(1.0))],
            "{}",
            db.backend
        );
        assert_eq!(stream_cursor(&services).await.as_deref(), Some("{}"));
        let state = services
            .store
            .stream_state("training", "course_completions")
            .await
            .expect("state");
        let records = services
            .store
            .records_after(state.id, 0, 10)
            .await
            .expect("records");
        let entry = records
            .iter()
            .map(|record| serde_json::from_str::<serde_json::Value>(&record.data).expect("json"))
            .find(|record| record["course_id"] == "102" && record["id"] == "23")
            .expect("course 102, user 23");
        assert_eq!(entry["course_name"], "Customer service at the counter");
        assert_eq!(entry["completed_on"], "25/03/2026, 11:00:00");
        assert_eq!(entry["total_time"], "1h 40m");
        server.verify().await;
        services.store.close().await;
    }
}

#[tokio::test]
async fn a_learner_who_completes_later_is_counted_once_in_the_month_of_completion() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    mount_portal(&server, 1, "talentlms/course_101.json").await;
    let services = services(settings(&config(&db.url, &server.uri()), KEY)).await;
    assert!(sync(&services).await.is_success());
    server.verify().await;

    // B. Crumb (user 22) completes course 101 on 2026-04-18; the next pass reads it again.
    server.reset().await;
    mount_portal(&server, 1, "talentlms/course_101_completed.json").await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        report.streams[0].changed, 1,
        "only user 22 in course 101 changed"
    );
    assert_eq!(
        series(&services, "course_completions").await,
        [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(2.0))]
    );
    assert_eq!(record_count(&services).await, 5, "no duplicates");
    server.verify().await;
}

#[tokio::test]
async fn a_refused_key_fails_with_talentlms_message_and_commits_nothing() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/courses"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            fixture("talentlms/error_invalid_key.json"),
            "application/json",
        ))
        // Not retried.
        .expect(1)
        .mount(&server)
        .await;
    let services = services(settings(&config(&db.url, &server.uri()), KEY)).await;
    let error = sync(&services).await.streams[0]
        .error
        .clone()
        .expect("failed");
    assert_eq!(
        error,
        "unauthorized (HTTP 401: Invalid API key provided); check the source's API key or token"
    );
    assert_eq!(stream_cursor(&services).await, None);
    server.verify().await;
}

#[tokio::test]
async fn a_used_up_hourly_allowance_ends_the_pass_and_the_next_sync_resumes() {
    let db = TestDb::sqlite();
    let server = MockServer::start().await;
    // Course 101 is the first in id order; its answer says no calls are left this hour.
    Mock::given(method("GET"))
        .and(path("/api/v1/courses"))
        .respond_with(
            fixture_response("talentlms/courses.json").insert_header("x-ratelimit-remaining", "1"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/courses/id:101"))
        .respond_with(
            fixture_response("talentlms/course_101.json")
                .insert_header("x-ratelimit-limit", "2000")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "1776765600"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let services = services(settings(&config(&db.url, &server.uri()), KEY)).await;
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.streams[0].pages, 2);
    assert_eq!(record_count(&services).await, 3);
    assert_eq!(
        stream_cursor(&services).await.as_deref(),
        Some(r#"{"resume":102}"#)
    );
    server.verify().await;

    // The next sync lists the courses again and reads only 102 and 103.
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/courses"))
        .respond_with(fixture_response("talentlms/courses.json"))
        .expect(1)
        .mount(&server)
        .await;
    for course in ["102", "103"] {
        Mock::given(method("GET"))
            .and(path(format!("/api/v1/courses/id:{course}")))
            .respond_with(fixture_response(&format!("talentlms/course_{course}.json")))
            .expect(1)
            .mount(&server)
            .await;
    }
    let report = sync(&services).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(record_count(&services).await, 5);
    assert_eq!(stream_cursor(&services).await.as_deref(), Some("{}"));
    assert_eq!(
        series(&services, "course_completions").await,
        [("2026-03".into(), Some(2.0)), ("2026-04".into(), Some(1.0))]
    );
    server.verify().await;
}

#[tokio::test]
async fn a_bare_domain_means_the_services_own_domain_per_kind() {
    let env = std::collections::BTreeMap::from([("TEST_STRIPE_KEY".to_string(), "t".to_string())]);
    let text = config("sqlite://unused.db", "http://127.0.0.1:9")
        .replace("base_url = \"http://127.0.0.1:9\"\n", "");
    let settings = scorekeeper::config::load_str(&text, "test.toml", &env).expect("valid");
    assert_eq!(
        settings.sources["training"].base_url.as_str(),
        "https://acme.talentlms.com/"
    );
    assert_eq!(settings.sources["training"].streams, ["course_completions"]);
    // Freshdesk keeps its own expansion.
    let freshdesk = text
        .replace("kind = \"talentlms\"", "kind = \"freshdesk\"")
        .replace(
            "from = \"training.course_completions\"",
            "from = \"training.tickets\"",
        );
    let settings = scorekeeper::config::load_str(&freshdesk, "test.toml", &env).expect("valid");
    assert_eq!(
        settings.sources["training"].base_url.as_str(),
        "https://acme.freshdesk.com/"
    );
    // Both settings are required.
    let bare = text
        .replace("domain = \"acme\"\n", "")
        .replace("api_key = \"${TEST_STRIPE_KEY}\"\n", "");
    let error = scorekeeper::config::load_str(&bare, "test.toml", &env).expect_err("invalid");
    for setting in ["domain", "api_key"] {
        let expected = format!("sources.training.{setting}: is required for kind \"talentlms\"");
        assert!(error.problems.contains(&expected), "{:?}", error.problems);
    }
}
