//! The sandbox as the demo uses it: the real engine syncs each sandboxed source of the
//! embedded demo configuration over loopback and every demo measure gets values; and each
//! API's own surface (authentication, paging, filters) as a connector sees it.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use chrono::TimeZone;
use serde_json::{Value, json};

use super::freshdesk::FreshdeskData;
use super::moodle::MoodleData;
use super::pipedrive::PipedriveData;
use super::shopify::ShopifyData;
use super::talentlms::TalentlmsData;
use super::zendesk::ZendeskData;
use super::*;
use crate::app::Services;
use crate::config::MeasureKind;
use crate::sources::engine::{SourceReport, Trigger};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0)
        .single()
        .expect("a valid instant")
}

struct Running {
    address: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("bound address");
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, router(now(), 7), shutdown.clone()));
    Running { address, shutdown }
}

/// The embedded demo configuration against the sandbox, on a fresh SQLite file.
async fn demo_services(address: SocketAddr, dir: &tempfile::TempDir) -> Services {
    let mut env = BTreeMap::new();
    env.insert(
        "SCOREKEEPER__DATABASE__URL".to_string(),
        format!("sqlite://{}", dir.path().join("demo.db").display()),
    );
    // QuickBooks' profit and loss reads months up to the real clock's; from the scenario's
    // start it always covers the sandbox's fixed year, whatever today is.
    env.insert(
        "SCOREKEEPER__SOURCES__QUICKBOOKS__START_DATE".to_string(),
        (now() - chrono::Duration::days(365))
            .format("%Y-%m-%d")
            .to_string(),
    );
    let settings = crate::demo::load_config(None, address, &env).expect("the demo config loads");
    for (name, source) in &settings.sources {
        assert_eq!(
            source.base_url.as_str().trim_end_matches('/'),
            base_url(address, source.kind.as_str()),
            "{name} points at the sandbox"
        );
    }
    Services::prepare(settings).await.expect("services")
}

async fn sync(services: &Services, name: &str) -> SourceReport {
    services
        .engine
        .sync_source(
            &services.settings.sources[name],
            Trigger::Manual,
            &CancellationToken::new(),
        )
        .await
        .expect("sync runs")
}

/// Every value of `measure` over the sandbox's year.
async fn values(services: &Services, measure: &str) -> Vec<Option<f64>> {
    let bound = services.catalog.get(measure).expect("measure exists");
    crate::scorecard::series(
        &services.store,
        &services.catalog,
        bound,
        Some((now() - chrono::Duration::days(366)).date_naive()),
        Some(now().date_naive()),
        now(),
    )
    .await
    .expect("series")
    .into_iter()
    .map(|point| point.value)
    .collect()
}

/// The demo measures that read `source`'s records.
fn measures_of(services: &Services, source: &str) -> Vec<String> {
    services
        .settings
        .measures
        .iter()
        .filter_map(|measure| match &measure.kind {
            MeasureKind::Records(records) if records.source == source => Some(measure.id.clone()),
            _ => None,
        })
        .collect()
}

/// Syncs `source` of the demo twice: the first sync stores records and gives each of its
/// measures values in several periods; the second changes nothing.
async fn syncs_and_feeds_measures(source: &str) {
    let sandbox = start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let services = demo_services(sandbox.address, &dir).await;
    let report = sync(&services, source).await;
    assert!(report.is_success(), "{source}: {report:?}");
    for stream in &report.streams {
        assert!(stream.records > 0, "{source}.{}: no records", stream.stream);
        assert_eq!(stream.record_problems, 0, "{source}.{}", stream.stream);
    }
    let measures = measures_of(&services, source);
    assert!(!measures.is_empty(), "the demo reads {source}");
    for measure in measures {
        let with_value = values(&services, &measure)
            .await
            .into_iter()
            .filter(|value| value.is_some_and(|value| value != 0.0))
            .count();
        assert!(
            with_value >= 3,
            "{measure} has a value in only {with_value} periods"
        );
    }
    let again = sync(&services, source).await;
    assert!(again.is_success(), "{source}: {again:?}");
    let changed: u64 = again.streams.iter().map(|stream| stream.changed).sum();
    assert_eq!(
        changed, 0,
        "a re-sync of {source} changed records: {again:?}"
    );
}

#[tokio::test]
async fn zendesk_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("zendesk").await;
}

#[tokio::test]
async fn shopify_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("shopify").await;
}

#[tokio::test]
async fn freshdesk_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("freshdesk").await;
}

#[tokio::test]
async fn pipedrive_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("pipedrive").await;
}

#[tokio::test]
async fn moodle_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("moodle").await;
}

#[tokio::test]
async fn talentlms_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("talentlms").await;
}

#[tokio::test]
async fn the_whole_demo_syncs_and_every_measure_has_values_in_a_mix_of_statuses() {
    let sandbox = start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let services = demo_services(sandbox.address, &dir).await;
    let kinds: HashSet<&str> = services
        .settings
        .sources
        .values()
        .map(|source| source.kind.as_str())
        .collect();
    for api in &APIS {
        assert!(
            kinds.contains(api.kind),
            "the demo has no {} source",
            api.kind
        );
    }
    let names: Vec<String> = services.settings.sources.keys().cloned().collect();
    for name in &names {
        let report = sync(&services, name).await;
        assert!(report.is_success(), "{name}: {report:?}");
    }
    for measure in &services.settings.measures {
        let id = &measure.id;
        let with_value = values(&services, id)
            .await
            .into_iter()
            .filter(Option::is_some)
            .count();
        assert!(
            with_value >= 2,
            "{id} has a value in only {with_value} periods"
        );
    }
    let view = crate::scorecard::build(
        &services.store,
        &services.settings,
        &services.catalog,
        now(),
    )
    .await
    .expect("scorecard");
    let mut statuses = Vec::new();
    for perspective in &view.perspectives {
        assert!(
            !perspective.measures.is_empty(),
            "{:?} is empty",
            perspective.id
        );
        for measure in &perspective.measures {
            let status = serde_json::to_value(measure.judged.status).expect("status");
            println!(
                "{:>12} {:<28} {:>10?} {:>10?} {}",
                format!("{:?}", perspective.id),
                measure.id,
                measure.judged.value,
                measure.judged.target,
                status
            );
            statuses.push(status.as_str().unwrap_or_default().to_string());
        }
    }
    for wanted in ["green", "amber", "red"] {
        assert!(
            statuses.iter().any(|status| status == wanted),
            "no {wanted} measure: {statuses:?}"
        );
    }
}

// --- Each API's surface -------------------------------------------------------------------

async fn get(
    url: &str,
    auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (u16, HeaderMap, Value) {
    crate::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let response = auth(client.get(url)).send().await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON ({e}): {text}"))
    };
    (status, headers, body)
}

fn zendesk_auth(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.basic_auth(format!("{ZENDESK_EMAIL}/token"), Some(ZENDESK_API_TOKEN))
}

fn next_link(headers: &HeaderMap) -> Option<String> {
    crate::sources::presets::next_link(headers).expect("a well-formed link header")
}

#[tokio::test]
async fn every_api_refuses_wrong_credentials_in_its_own_shape() {
    let sandbox = start().await;
    let base = |kind: &str| base_url(sandbox.address, kind);
    let (status, _, body) = get(
        &format!("{}/api/v2/ticket_metrics", base("zendesk")),
        |request| request.basic_auth("owner@demo-bakery.example", Some("wrong")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("Couldn't authenticate you"))
    );
    let (status, _, body) = get(
        &format!("{}/admin/api/2026-07/orders.json", base("shopify")),
        |request| request.header("x-shopify-access-token", "shpat_wrong"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["errors"]
            .as_str()
            .is_some_and(|text| text.contains("Invalid API key or access token"))
    );
    let (status, _, body) = get(
        &format!("{}/api/v2/tickets", base("freshdesk")),
        |request| request,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    let (status, _, body) = get(
        &format!("{}/api/v2/deals?api_token=wrong", base("pipedrive")),
        |request| request,
    )
    .await;
    assert_eq!((status, body["success"].as_bool()), (401, Some(false)));
    // Moodle refuses with HTTP 200 and its exception object.
    let (status, _, body) = get(
        &format!(
            "{}/webservice/rest/server.php?wstoken=wrong&wsfunction=core_course_get_courses&moodlewsrestformat=json",
            base("moodle")
        ),
        |request| request,
    )
    .await;
    assert_eq!(
        (status, body["errorcode"].as_str()),
        (200, Some("invalidtoken"))
    );
    let (status, _, body) = get(
        &format!("{}/api/v1/courses", base("talentlms")),
        |request| request.basic_auth("tl_wrong_key", Some("")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (401, Some("Invalid API key provided"))
    );
    let (status, _, body) = get(&format!("{}/v1/charges", base("stripe")), |request| {
        request.bearer_auth("sk_test_wrong_key_0000")
    })
    .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("invalid_request_error"))
    );
}

#[tokio::test]
async fn zendesk_export_pages_by_cursor_and_resumes_at_the_end() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "zendesk");
    let data = ZendeskData::bakery(&Scenario::new(now(), 7));
    let (tickets, metrics, ratings) = data.counts();
    assert!((300..600).contains(&tickets), "{tickets} tickets");
    assert_eq!(metrics, tickets);
    assert!(ratings > 100, "{ratings} ratings");
    let mut url =
        format!("{base}/api/v2/incremental/tickets/cursor.json?start_time=0&per_page=100");
    let mut seen = Vec::new();
    let mut last_updated = 0;
    let last_cursor = loop {
        let (status, _, body) = get(&url, zendesk_auth).await;
        assert_eq!(status, 200, "{body}");
        for ticket in body["tickets"].as_array().expect("tickets") {
            let updated = ticket["generated_timestamp"]
                .as_i64()
                .expect("generated_timestamp");
            assert!(updated >= last_updated, "not in change order");
            last_updated = updated;
            seen.push(ticket["id"].as_i64().expect("id"));
        }
        let cursor = body["after_cursor"]
            .as_str()
            .expect("after_cursor")
            .to_string();
        if body["end_of_stream"] == true {
            break cursor;
        }
        url = body["after_url"].as_str().expect("after_url").to_string();
    };
    assert_eq!(seen.len(), tickets);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        tickets,
        "a ticket came twice"
    );
    // Resuming from the last cursor: nothing new, the same cursor, still the end.
    let (_, _, body) = get(
        &format!("{base}/api/v2/incremental/tickets/cursor.json?cursor={last_cursor}"),
        zendesk_auth,
    )
    .await;
    assert_eq!(body["tickets"].as_array().map(Vec::len), Some(0));
    assert_eq!(body["after_cursor"].as_str(), Some(last_cursor.as_str()));
    assert_eq!(body["end_of_stream"], true);
    let (status, _, body) = get(
        &format!("{base}/api/v2/ticket_metrics?page[size]=101"),
        zendesk_auth,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidPaginationParameter"))
    );
}

#[tokio::test]
async fn zendesk_lists_follow_links_and_ratings_filter_by_start_time() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "zendesk");
    let start_time = now().timestamp() - 90 * DAY;
    let mut url = Some(format!(
        "{base}/api/v2/satisfaction_ratings?page%5Bsize%5D=40&start_time={start_time}"
    ));
    let mut scores = Vec::new();
    while let Some(next) = url.take() {
        let (status, _, body) = get(&next, zendesk_auth).await;
        assert_eq!(status, 200, "{body}");
        for rating in body["satisfaction_ratings"].as_array().expect("ratings") {
            let created =
                parse_time(rating["created_at"].as_str().expect("created_at")).expect("time");
            assert!(created >= start_time, "a rating before start_time");
            scores.push(rating["score"].as_str().expect("score").to_string());
        }
        if body["meta"]["has_more"] == true {
            url = body["links"]["next"].as_str().map(str::to_string);
            assert!(url.is_some(), "has_more without links.next");
        }
    }
    let good = scores.iter().filter(|score| *score == "good").count();
    let bad = scores.iter().filter(|score| *score == "bad").count();
    assert!(good > bad && bad > 0, "{good} good, {bad} bad");
}

#[tokio::test]
async fn shopify_pages_through_link_headers_and_keeps_the_filters_in_page_info() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "shopify");
    let auth = |request: reqwest::RequestBuilder| {
        request.header("x-shopify-access-token", SHOPIFY_ACCESS_TOKEN)
    };
    let data = ShopifyData::bakery(&Scenario::new(now(), 7));
    let since = lyon(now().timestamp() - 60 * DAY);
    let first = format!(
        "{base}/admin/api/2026-07/orders.json?{}",
        query_string(&[
            ("status", "any".into()),
            ("limit", "50".into()),
            ("updated_at_min", since.clone())
        ])
    );
    let mut url = Some(first);
    let mut ids = Vec::new();
    let mut cancelled = 0;
    while let Some(next) = url.take() {
        let (status, headers, body) = get(&next, auth).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["x-shopify-shop-api-call-limit"], "1/40");
        for order in body["orders"].as_array().expect("orders") {
            let updated =
                parse_time(order["updated_at"].as_str().expect("updated_at")).expect("time");
            assert!(
                updated >= parse_time(&since).expect("since"),
                "filter lost across pages"
            );
            ids.push(order["id"].as_i64().expect("id"));
            cancelled += usize::from(!order["cancelled_at"].is_null());
        }
        url = next_link(&headers);
    }
    assert!(
        ids.len() > 60 && ids.len() < data.len(),
        "{} of {} orders",
        ids.len(),
        data.len()
    );
    assert!(
        ids.windows(2).all(|pair| pair[0] > pair[1]),
        "not newest first"
    );
    assert!(cancelled > 0, "no cancelled order in 60 days");
    // Without status=any, only open orders; page_info refuses other filters.
    let (_, headers, body) = get(
        &format!("{base}/admin/api/2026-07/orders.json?limit=5"),
        auth,
    )
    .await;
    assert!(
        body["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .all(|order| order["closed_at"].is_null() && order["cancelled_at"].is_null())
    );
    if let Some(next) = next_link(&headers) {
        let (status, _, _) = get(&format!("{next}&status=any"), auth).await;
        assert_eq!(status, 400);
    }
    let (status, _, _) = get(
        &format!("{base}/admin/api/2026-07/orders.json?limit=251"),
        auth,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn freshdesk_pages_by_number_and_lists_only_recent_tickets_without_updated_since() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "freshdesk");
    let auth = |request: reqwest::RequestBuilder| request.basic_auth(FRESHDESK_API_KEY, Some("X"));
    let data = FreshdeskData::bakery(&Scenario::new(now(), 7));
    let (tickets, ratings) = data.counts();
    assert!(
        (150..350).contains(&tickets) && ratings > 40,
        "{tickets} tickets, {ratings} ratings"
    );
    let mut url = Some(format!(
        "{base}/api/v2/tickets?updated_since=1970-01-01T00:00:00Z&order_by=updated_at&order_type=asc&per_page=100"
    ));
    let mut seen = Vec::new();
    while let Some(next) = url.take() {
        let (status, headers, body) = get(&next, auth).await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains_key("x-ratelimit-remaining"));
        seen.extend(body.as_array().expect("a bare array").iter().map(|ticket| {
            ticket["updated_at"]
                .as_str()
                .expect("updated_at")
                .to_string()
        }));
        url = next_link(&headers);
    }
    assert_eq!(seen.len(), tickets);
    assert!(
        seen.windows(2).all(|pair| pair[0] <= pair[1]),
        "not oldest change first"
    );
    let (_, _, recent) = get(&format!("{base}/api/v2/tickets?per_page=100"), auth).await;
    let recent = recent.as_array().expect("array").len();
    assert!(
        recent > 0 && recent < tickets / 4,
        "{recent} tickets without updated_since"
    );
    let (status, _, body) = get(&format!("{base}/api/v2/tickets?per_page=101"), auth).await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (400, Some("per_page"))
    );
}

#[tokio::test]
async fn pipedrive_walks_deals_by_cursor_and_filters_by_update_time() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "pipedrive");
    let data = PipedriveData::bakery(&Scenario::new(now(), 7));
    let token = PIPEDRIVE_API_TOKEN;
    let mut url = format!(
        "{base}/api/v2/deals?limit=40&sort_by=update_time&sort_direction=asc&api_token={token}"
    );
    let mut deals = Vec::new();
    loop {
        let (status, _, body) = get(&url, |request| request).await;
        assert_eq!(
            (status, body["success"].as_bool()),
            (200, Some(true)),
            "{body}"
        );
        deals.extend(body["data"].as_array().expect("data").iter().cloned());
        match body["additional_data"]["next_cursor"].as_str() {
            Some(cursor) => {
                url = format!(
                    "{base}/api/v2/deals?limit=40&sort_by=update_time&sort_direction=asc&cursor={cursor}&api_token={token}"
                )
            }
            None => break,
        }
    }
    let statuses: Vec<&str> = deals
        .iter()
        .map(|deal| deal["status"].as_str().expect("status"))
        .collect();
    assert!(
        statuses.len() > 150 && statuses.len() < data.len() + 1,
        "{} deals",
        statuses.len()
    );
    for wanted in ["won", "lost", "open"] {
        assert!(statuses.contains(&wanted), "no {wanted} deal");
    }
    assert!(
        !statuses.contains(&"deleted"),
        "deleted deals are listed only on request"
    );
    let times: Vec<&str> = deals
        .iter()
        .map(|deal| deal["update_time"].as_str().expect("update_time"))
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] <= pair[1]),
        "not by update_time"
    );
    let since = utc(now().timestamp() - 30 * DAY);
    let (_, _, recent) = get(
        &format!("{base}/api/v2/deals?limit=500&updated_since={since}"),
        |request| request.header("x-api-token", token),
    )
    .await;
    let recent = recent["data"].as_array().expect("data");
    assert!(!recent.is_empty() && recent.len() < deals.len());
    assert!(recent.iter().all(|deal| {
        deal["update_time"]
            .as_str()
            .is_some_and(|time| time >= since.as_str())
    }));
}

#[test]
fn base64_round_trips_and_rejects_other_text() {
    for text in ["", "a", "ab", "abc", "owner@demo-bakery.example/token:zd"] {
        let encoded = base64_encode(text.as_bytes());
        assert_eq!(base64_decode(&encoded).as_deref(), Some(text.as_bytes()));
    }
    assert_eq!(base64_encode(b"ab"), "YWI=");
    assert_eq!(base64_decode("not base64!"), None);
}

#[test]
fn the_scenario_is_busier_at_christmas_and_strained_two_months_back() {
    let scenario = Scenario::new(now(), 7);
    let december = Utc
        .with_ymd_and_hms(2025, 12, 10, 12, 0, 0)
        .single()
        .expect("instant")
        .timestamp();
    let august = Utc
        .with_ymd_and_hms(2025, 8, 13, 12, 0, 0)
        .single()
        .expect("instant")
        .timestamp();
    assert!(scenario.seasonality(december) > 2.0 * scenario.seasonality(august));
    let shortage = scenario.now - 70 * DAY;
    assert!(scenario.strain(shortage) > 1.0);
    assert!(scenario.strain(scenario.now) < 0.5);
    assert!(scenario.strain(scenario.start) < 0.1);
    assert_eq!(scenario.days().count(), 365);
}

/// A Moodle web service call of `function` with the sandbox's token and `params`.
fn moodle_call(base: &str, function: &str, params: &[(&str, String)]) -> String {
    let mut pairs = vec![
        ("wstoken", MOODLE_TOKEN.to_string()),
        ("wsfunction", function.to_string()),
        ("moodlewsrestformat", "json".to_string()),
    ];
    pairs.extend(params.iter().cloned());
    format!("{base}/webservice/rest/server.php?{}", query_string(&pairs))
}

async fn moodle_get(url: &str) -> Value {
    let (status, _, body) = get(url, |request| request).await;
    assert_eq!(status, 200, "Moodle answers every call with 200: {body}");
    body
}

/// The enrolled-users options the preset sends, from `from`, `number` at a time.
fn users_page(
    course: i64,
    from: usize,
    number: usize,
    fields: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("courseid", course.to_string()),
        ("options[0][name]", "limitfrom".into()),
        ("options[0][value]", from.to_string()),
        ("options[1][name]", "limitnumber".into()),
        ("options[1][value]", number.to_string()),
        ("options[2][name]", "userfields".into()),
        ("options[2][value]", fields.into()),
        ("options[3][name]", "sortby".into()),
        ("options[3][value]", "id".into()),
        ("options[4][name]", "sortdirection".into()),
        ("options[4][value]", "ASC".into()),
    ]
}

#[tokio::test]
async fn moodle_answers_the_preset_s_functions_with_errors_in_200_bodies() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "moodle");
    let info = moodle_get(&moodle_call(&base, "core_webservice_get_site_info", &[])).await;
    let functions: Vec<&str> = info["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|function| function["name"].as_str())
        .collect();
    for wanted in [
        "core_course_get_courses",
        "core_enrol_get_enrolled_users",
        "core_completion_get_course_completion_status",
    ] {
        assert!(functions.contains(&wanted), "the service lacks {wanted}");
    }
    let courses = moodle_get(&moodle_call(&base, "core_course_get_courses", &[])).await;
    let courses = courses.as_array().expect("a list of courses");
    assert_eq!(courses[0]["format"], "site", "the front page is listed");
    assert!(
        courses
            .iter()
            .any(|course| course["enablecompletion"] == 0 && course["format"] != "site"),
        "a course with completion off"
    );
    let only = moodle_get(&moodle_call(
        &base,
        "core_course_get_courses",
        &[("options[ids][0]", "6".into())],
    ))
    .await;
    assert_eq!(only[0]["fullname"], "New-hire onboarding");
    assert_eq!(only.as_array().map(Vec::len), Some(1));

    // Paging: pages of 4 ids cover every enrolled user once, in id order.
    let course = super::moodle::FOOD_HYGIENE;
    let all = moodle_get(&moodle_call(
        &base,
        "core_enrol_get_enrolled_users",
        &[("courseid", course.to_string())],
    ))
    .await;
    let all = all.as_array().expect("users");
    assert!(all.len() > 20, "{} enrolled", all.len());
    assert!(all[0]["roles"].is_array() && all[0]["fullname"].is_string());
    let mut paged = Vec::new();
    for from in (0..).step_by(4) {
        let page = moodle_get(&moodle_call(
            &base,
            "core_enrol_get_enrolled_users",
            &users_page(course, from, 4, "id"),
        ))
        .await;
        let page = page.as_array().expect("users").clone();
        assert!(page.len() <= 4);
        for user in &page {
            assert_eq!(user.as_object().map(|user| user.len()), Some(1), "{user}");
            paged.push(user["id"].as_i64().expect("id"));
        }
        if page.len() < 4 {
            break;
        }
    }
    let ids: Vec<i64> = all.iter().filter_map(|user| user["id"].as_i64()).collect();
    assert_eq!(paged, ids);
    assert!(paged.windows(2).all(|pair| pair[0] < pair[1]));

    // Completion status: a learner, the teacher, a course without criteria, completion off.
    let status = moodle_get(&moodle_call(
        &base,
        "core_completion_get_course_completion_status",
        &[
            ("courseid", course.to_string()),
            ("userid", ids[1].to_string()),
        ],
    ))
    .await;
    assert!(
        status["completionstatus"]["completions"].is_array(),
        "{status}"
    );
    let error = |body: &Value| body["errorcode"].as_str().map(str::to_string);
    let teacher = moodle_get(&moodle_call(
        &base,
        "core_completion_get_course_completion_status",
        &[("courseid", course.to_string()), ("userid", "2".into())],
    ))
    .await;
    assert_eq!(error(&teacher).as_deref(), Some("usernotenroled"));
    let workshop = super::moodle::WORKSHOP;
    let learner = moodle_get(&moodle_call(
        &base,
        "core_enrol_get_enrolled_users",
        &users_page(workshop, 1, 1, "id"),
    ))
    .await;
    let learner = learner[0]["id"]
        .as_i64()
        .expect("a learner in the workshop");
    let none = moodle_get(&moodle_call(
        &base,
        "core_completion_get_course_completion_status",
        &[
            ("courseid", workshop.to_string()),
            ("userid", learner.to_string()),
        ],
    ))
    .await;
    assert_eq!(error(&none).as_deref(), Some("nocriteriaset"));
    let off = moodle_get(&moodle_call(
        &base,
        "core_completion_get_course_completion_status",
        &[("courseid", "8".into()), ("userid", learner.to_string())],
    ))
    .await;
    assert_eq!(error(&off).as_deref(), Some("cannotviewreport"));

    // Other errors, still HTTP 200.
    for (function, params, code) in [
        ("core_user_get_users", vec![], "accessexception"),
        ("core_no_such_function", vec![], "invalidrecord"),
        (
            "core_enrol_get_enrolled_users",
            vec![("courseid", "999".to_string())],
            "invalidrecord",
        ),
        (
            "core_completion_get_course_completion_status",
            vec![("courseid", "2".to_string())],
            "invalidparameter",
        ),
    ] {
        let body = moodle_get(&moodle_call(&base, function, &params)).await;
        assert_eq!(error(&body).as_deref(), Some(code), "{function}: {body}");
    }
    let mut sort = users_page(course, 0, 5, "id");
    sort[8].1 = "email".into();
    let body = moodle_get(&moodle_call(&base, "core_enrol_get_enrolled_users", &sort)).await;
    assert_eq!(error(&body).as_deref(), Some("invalidparameter"));

    // Without moodlewsrestformat, Moodle answers in XML.
    let client = reqwest::Client::new();
    let xml = client
        .get(format!(
            "{base}/webservice/rest/server.php?wstoken=wrong&wsfunction=core_course_get_courses"
        ))
        .send()
        .await
        .expect("response")
        .text()
        .await
        .expect("body");
    assert!(xml.contains("<ERRORCODE>invalidtoken</ERRORCODE>"), "{xml}");
}

#[test]
fn moodle_completions_lag_while_the_shop_is_short_staffed() {
    let scenario = Scenario::new(now(), 7);
    let data = MoodleData::bakery(&scenario);
    let (statuses, completed) = data.counts();
    assert!(
        (90..250).contains(&statuses) && completed * 10 > statuses * 7 && completed < statuses,
        "{completed} of {statuses} completed"
    );
    // Onboarding: longer for people who started during the shortage than in calm times.
    let course = data.course(super::moodle::ONBOARDING).expect("onboarding");
    let mut calm = Vec::new();
    let mut strained = Vec::new();
    for enrolment in course.enrolled.values() {
        let Some(status) = &enrolment.status else {
            continue;
        };
        let status: Value = serde_json::from_str(status).expect("JSON");
        let steps = &status["completionstatus"]["completions"];
        let (Some(first), Some(last)) = (
            steps[0]["timecompleted"].as_i64(),
            steps[1]["timecompleted"].as_i64(),
        ) else {
            continue;
        };
        let days = (last - first) as f64 / DAY as f64;
        if scenario.strain(first) > 0.7 {
            strained.push(days);
        } else if first < scenario.start {
            calm.push(days);
        }
    }
    let mean = |days: &[f64]| days.iter().sum::<f64>() / days.len().max(1) as f64;
    assert!(
        !strained.is_empty() && calm.len() > 10,
        "{strained:?} {calm:?}"
    );
    assert!(
        mean(&strained) > 1.5 * mean(&calm),
        "strained {strained:?}, calm {calm:?}"
    );
}

#[tokio::test]
async fn talentlms_serves_courses_with_their_users_and_counts_calls_against_the_hour() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "talentlms");
    let auth = |request: reqwest::RequestBuilder| request.basic_auth(TALENTLMS_API_KEY, Some(""));
    let (status, headers, limits) = get(&format!("{base}/api/v1/ratelimit"), auth).await;
    assert_eq!(status, 200, "{limits}");
    assert_eq!(limits["limit"], "2000");
    let first_remaining: u32 = limits["remaining"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("remaining");
    assert_eq!(
        headers["x-ratelimit-remaining"].to_str().ok(),
        Some(first_remaining.to_string().as_str())
    );
    let (status, headers, courses) = get(&format!("{base}/api/v1/courses"), auth).await;
    assert_eq!(status, 200);
    let remaining: u32 = headers["x-ratelimit-remaining"]
        .to_str()
        .ok()
        .and_then(|text| text.parse().ok())
        .expect("remaining");
    let reset = |headers: &HeaderMap| {
        headers["x-ratelimit-reset"]
            .to_str()
            .ok()
            .map(str::to_string)
    };
    // Unless the hour turned between the two calls, each call counts.
    if reset(&headers) == Some(limits["reset"].as_str().unwrap_or_default().to_string()) {
        assert_eq!(remaining, first_remaining - 1, "each call counts");
    }
    let courses = courses.as_array().expect("a list");
    assert_eq!(courses.len(), 4);
    assert!(courses.iter().all(|course| course.get("users").is_none()));
    let mut learners = 0;
    let mut completed = 0;
    for course in courses {
        let id = course["id"].as_str().expect("a string id");
        let (status, _, full) = get(&format!("{base}/api/v1/courses/id:{id}"), auth).await;
        assert_eq!(status, 200);
        for user in full["users"].as_array().expect("users") {
            for field in [
                "id",
                "name",
                "role",
                "enrolled_on",
                "enrolled_on_timestamp",
                "completed_on",
                "completed_on_timestamp",
                "completion_percentage",
                "total_time",
            ] {
                assert!(user.get(field).is_some(), "{field} missing: {user}");
            }
            if user["role"] == "learner" {
                learners += 1;
                let done = user["completed_on_timestamp"].is_string();
                completed += usize::from(done);
                assert_eq!(done, user["completion_percentage"] == "100", "{user}");
                assert_eq!(done, user["completed_on"] != "", "{user}");
            }
        }
    }
    assert!(
        learners > 40 && completed < learners && completed > learners / 2,
        "{completed} of {learners}"
    );
    assert_eq!(
        learners,
        TalentlmsData::bakery(&Scenario::new(now(), 7))
            .learners()
            .len()
    );
    let (status, _, body) = get(&format!("{base}/api/v1/courses/id:999"), auth).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (404, Some("invalid_request_error"))
    );
    let (status, _, body) = get(&format!("{base}/api/v1/courses/name:bread"), auth).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (400, Some("Invalid arguments provided"))
    );
    let (status, _, _) = get(&format!("{base}/api/v1/courses"), |request| request).await;
    assert_eq!(status, 401, "no key");
}

#[tokio::test]
async fn hubspot_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("hubspot").await;
}

#[tokio::test]
async fn quickbooks_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("quickbooks").await;
}

#[tokio::test]
async fn xero_syncs_and_feeds_the_demo_measures() {
    syncs_and_feeds_measures("xero").await;
}

async fn post(
    url: &str,
    auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    body: &Value,
) -> (u16, HeaderMap, Value) {
    crate::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    let response = auth(request).send().await.expect("response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON ({e}): {text}"));
    (status, headers, body)
}

fn hubspot_auth(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.bearer_auth(HUBSPOT_ACCESS_TOKEN)
}

fn quickbooks_auth(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .bearer_auth(QUICKBOOKS_ACCESS_TOKEN)
        .header("accept", "application/json")
}

fn xero_auth(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .bearer_auth(XERO_ACCESS_TOKEN)
        .header("xero-tenant-id", XERO_TENANT_ID)
        .header("accept", "application/json")
}

/// Milliseconds of Xero's `/Date(1518685950940+0000)/`.
fn xero_ms(value: &Value) -> i64 {
    let text = value.as_str().expect("a Xero date");
    text.trim_start_matches("/Date(")
        .split('+')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("not a Xero date: {text}"))
}

#[tokio::test]
async fn finance_apis_refuse_wrong_credentials_in_their_own_shape() {
    let sandbox = start().await;
    let base = |kind: &str| base_url(sandbox.address, kind);
    let search = json!({"limit": 1});
    let (status, _, body) = post(
        &format!("{}/crm/v3/objects/deals/search", base("hubspot")),
        |request| request.bearer_auth("pat-eu1-wrong"),
        &search,
    )
    .await;
    assert_eq!(
        (status, body["category"].as_str()),
        (401, Some("INVALID_AUTHENTICATION"))
    );
    let (status, _, body) = get(
        &format!("{}/crm/v3/objects/deals?limit=1", base("hubspot")),
        |request| request,
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (401, Some("error")));

    let query = format!(
        "{}/v3/company/{QUICKBOOKS_REALM_ID}/query?query=SELECT%20*%20FROM%20Invoice",
        base("quickbooks")
    );
    let (status, headers, body) = get(&query, |request| request.bearer_auth("expired")).await;
    assert_eq!(
        (status, body["fault"]["error"][0]["code"].as_str()),
        (401, Some("3200"))
    );
    assert!(headers.contains_key("www-authenticate"));
    let other_company = format!(
        "{}/v3/company/1234/companyinfo/1234?minorversion=75",
        base("quickbooks")
    );
    let (status, _, body) = get(&other_company, quickbooks_auth).await;
    assert_eq!(
        (status, body["Fault"]["Error"][0]["code"].as_str()),
        (403, Some("3100"))
    );

    let invoices = format!("{}/api.xro/2.0/Invoices?page=1", base("xero"));
    let (status, headers, body) = get(&invoices, |request| {
        request
            .bearer_auth("wrong")
            .header("xero-tenant-id", XERO_TENANT_ID)
    })
    .await;
    assert_eq!(
        (status, body["Detail"].as_str()),
        (401, Some("AuthenticationUnsuccessful"))
    );
    assert!(headers.contains_key("x-minlimit-remaining"));
    let (status, _, body) = get(&invoices, |request| {
        request
            .bearer_auth(XERO_ACCESS_TOKEN)
            .header("xero-tenant-id", "00000000-0000-4000-8000-000000000000")
    })
    .await;
    assert_eq!(
        (status, body["Detail"].as_str()),
        (403, Some("AuthorizationUnsuccessful"))
    );
}

#[tokio::test]
async fn hubspot_search_pages_by_after_filters_by_modification_and_caps_at_10000() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "hubspot");
    let url = format!("{base}/crm/v3/objects/deals/search");
    let data = super::hubspot::HubSpotData::bakery(&Scenario::new(now(), 7));
    let (won, lost, open) = data.outcomes();
    assert!(
        won > 30 && lost > 30 && open > 3,
        "{won} won, {lost} lost, {open} open"
    );
    let since_ms = (now().timestamp() - 120 * DAY) * 1000;
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    let mut total;
    loop {
        let mut body = json!({
            "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": since_ms.to_string()}]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["dealname", "amount", "dealstage", "hs_is_closed_won", "closed_lost_reason", "no_such_property"],
            "limit": 25,
        });
        if let Some(after) = &after {
            body["after"] = json!(after);
        }
        let (status, headers, page) = post(&url, hubspot_auth, &body).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            !headers.contains_key("x-hubspot-ratelimit-remaining"),
            "search answers carry no rate-limit headers"
        );
        total = page["total"].as_u64().expect("total");
        for deal in page["results"].as_array().expect("results") {
            let properties = deal["properties"].as_object().expect("properties");
            assert!(properties["amount"].is_string(), "{deal}");
            assert!(
                properties["hs_is_closed_won"]
                    .as_str()
                    .is_some_and(|flag| flag == "true" || flag == "false")
            );
            assert!(properties.contains_key("closed_lost_reason"));
            assert!(!properties.contains_key("no_such_property"));
            assert!(
                !properties.contains_key("pipeline"),
                "only what was asked for"
            );
            let modified = chrono::DateTime::parse_from_rfc3339(
                properties["hs_lastmodifieddate"]
                    .as_str()
                    .expect("always returned"),
            )
            .expect("an instant")
            .timestamp_millis();
            assert!(modified >= since_ms, "the filter let an older deal through");
            assert_eq!(deal["updatedAt"], properties["hs_lastmodifieddate"]);
            seen.push(modified);
        }
        match page["paging"]["next"]["after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, total);
    assert!(
        seen.len() > 25 && seen.len() < data.len(),
        "{} deals",
        seen.len()
    );
    assert!(seen.windows(2).all(|pair| pair[0] <= pair[1]), "not sorted");
    // Won deals only, newest close first.
    let (_, _, won_page) = post(
        &url,
        hubspot_auth,
        &json!({
            "filterGroups": [{"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}]}],
            "sorts": [{"propertyName": "closedate", "direction": "DESCENDING"}],
            "limit": 200,
        }),
    )
    .await;
    assert_eq!(won_page["total"].as_u64(), Some(won as u64));
    // Past the limits.
    let (status, _, body) = post(&url, hubspot_auth, &json!({"limit": 201})).await;
    assert_eq!(
        (status, body["category"].as_str()),
        (400, Some("VALIDATION_ERROR"))
    );
    let (status, _, body) = post(&url, hubspot_auth, &json!({"limit": 10, "after": "10000"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = post(&url, hubspot_auth, &json!({"limit": 10, "after": "9990"})).await;
    assert_eq!(status, 200);
    // The probe lists one deal, with a link to the next and the rate-limit headers.
    let (status, headers, body) = get(
        &format!("{base}/crm/v3/objects/deals?limit=1"),
        hubspot_auth,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1));
    assert!(headers.contains_key("x-hubspot-ratelimit-remaining"));
    let link = body["paging"]["next"]["link"].as_str().expect("link");
    let (status, _, next) = get(link, hubspot_auth).await;
    assert_eq!(status, 200);
    assert_ne!(next["results"][0]["id"], body["results"][0]["id"]);
}

#[tokio::test]
async fn quickbooks_queries_page_by_start_position_and_filter_by_last_updated_time() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "quickbooks");
    let data = super::quickbooks::QuickBooksData::bakery(&Scenario::new(now(), 7));
    let (invoices, payments) = data.counts();
    assert!(
        invoices > 20 && payments > 15 && payments < invoices,
        "{invoices} invoices, {payments} payments"
    );
    let run = |statement: String| {
        let url = format!(
            "{base}/v3/company/{QUICKBOOKS_REALM_ID}/query?{}",
            query_string(&[("query", statement), ("minorversion", "75".into())])
        );
        async move { get(&url, quickbooks_auth).await }
    };
    let since = now().timestamp() - 90 * DAY;
    let since_text = utc(since).replace('Z', "+00:00");
    let mut position = 1;
    let mut seen = Vec::new();
    loop {
        let (status, _, body) = run(format!(
            "SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= '{since_text}' ORDERBY MetaData.LastUpdatedTime STARTPOSITION {position} MAXRESULTS 20"
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        let page = body["QueryResponse"]["Invoice"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !page.is_empty() {
            assert_eq!(body["QueryResponse"]["startPosition"], position);
            assert_eq!(body["QueryResponse"]["maxResults"], page.len());
        }
        for invoice in &page {
            let updated = parse_time(
                invoice["MetaData"]["LastUpdatedTime"]
                    .as_str()
                    .expect("time"),
            )
            .expect("RFC 3339");
            assert!(updated >= since, "the filter let an older invoice through");
            seen.push(updated);
            let balance = invoice["Balance"].as_f64().expect("Balance");
            let paid = !invoice["LinkedTxn"]
                .as_array()
                .expect("LinkedTxn")
                .is_empty();
            assert_eq!(balance == 0.0, paid, "{invoice}");
        }
        if page.len() < 20 {
            break;
        }
        position += 20;
    }
    assert!(
        seen.len() > 5 && seen.len() < invoices,
        "{} invoices",
        seen.len()
    );
    assert!(
        seen.windows(2).all(|pair| pair[0] <= pair[1]),
        "not in order"
    );
    let (_, _, count) = run("SELECT COUNT(*) FROM Payment".into()).await;
    assert_eq!(count["QueryResponse"]["totalCount"], payments);
    let (_, _, none) = run(format!(
        "SELECT * FROM Payment WHERE MetaData.LastUpdatedTime >= '{}'",
        utc(now().timestamp() + DAY)
    ))
    .await;
    assert_eq!(none["QueryResponse"], json!({}));
    let (status, _, body) = run("SELECT * FROM Invoice ORDER BY Id".into()).await;
    assert_eq!(
        (
            status,
            body["Fault"]["type"].as_str(),
            body["Fault"]["Error"][0]["code"].as_str()
        ),
        (400, Some("ValidationFault"), Some("4000"))
    );
}

/// The report's cells of `account` (an account row at any depth, or a summary such as
/// `Total Sales`) by month (`YYYY-MM`).
fn report_cells(report: &Value, account: &str) -> BTreeMap<String, f64> {
    let columns = report["Columns"]["Column"].as_array().expect("columns");
    fn find<'a>(rows: &'a Value, account: &str) -> Option<&'a Value> {
        rows["Row"].as_array()?.iter().find_map(|row| {
            if row["ColData"][0]["value"] == account {
                return Some(&row["ColData"]);
            }
            if row["Summary"]["ColData"][0]["value"] == account {
                return Some(&row["Summary"]["ColData"]);
            }
            find(&row["Rows"], account)
        })
    }
    let cells = find(&report["Rows"], account).unwrap_or_else(|| panic!("no {account} row"));
    columns
        .iter()
        .enumerate()
        .filter_map(|(index, column)| {
            let start = column["MetaData"]
                .as_array()?
                .iter()
                .find(|meta| meta["Name"] == "StartDate")?["Value"]
                .as_str()?;
            let text = cells[index]["value"].as_str().unwrap_or_default();
            Some((start[..7].to_string(), text.parse().unwrap_or(0.0)))
        })
        .collect()
}

#[tokio::test]
async fn quickbooks_profit_and_loss_books_exactly_the_invoices_of_both_ledgers() {
    let sandbox = start().await;
    let qbo = base_url(sandbox.address, "quickbooks");
    let xero = base_url(sandbox.address, "xero");
    let (status, _, report) = get(
        &format!(
            "{qbo}/v3/company/{QUICKBOOKS_REALM_ID}/reports/ProfitAndLoss?start_date=2025-04-01&end_date=2026-03-31&summarize_column_by=Month&minorversion=75"
        ),
        quickbooks_auth,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["Columns"]["Column"].as_array().map(Vec::len),
        Some(14)
    );
    let groups: Vec<&str> = report["Rows"]["Row"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|row| row["group"].as_str())
        .collect();
    assert_eq!(
        groups,
        [
            "Income",
            "COGS",
            "GrossProfit",
            "Expenses",
            "NetOperatingIncome",
            "NetIncome"
        ]
    );
    // Wholesale income per month is Xero's invoices of that month, net of VAT.
    let (_, _, invoices) = get(&format!("{xero}/api.xro/2.0/Invoices"), xero_auth).await;
    let mut wholesale: BTreeMap<String, f64> = BTreeMap::new();
    for invoice in invoices["Invoices"].as_array().expect("invoices") {
        assert!(
            invoice.get("LineItems").is_none(),
            "no line items without page"
        );
        if invoice["Status"] == "VOIDED" {
            continue;
        }
        let month = utc(xero_ms(&invoice["Date"]) / 1000)[..7].to_string();
        *wholesale.entry(month).or_default() += invoice["SubTotal"].as_f64().expect("SubTotal");
    }
    let booked = report_cells(&report, "Wholesale");
    for (month, amount) in &booked {
        let invoiced = wholesale.get(month).copied().unwrap_or_default();
        assert!(
            (amount - invoiced).abs() < 0.02,
            "{month}: booked {amount}, invoiced {invoiced}"
        );
    }
    assert!(booked.values().filter(|amount| **amount > 0.0).count() >= 10);
    // Catering income is QuickBooks' own invoices, net of VAT.
    let url = format!(
        "{qbo}/v3/company/{QUICKBOOKS_REALM_ID}/query?{}",
        query_string(&[("query", "SELECT * FROM Invoice MAXRESULTS 1000".into())])
    );
    let (_, _, body) = get(&url, quickbooks_auth).await;
    let mut catering: BTreeMap<String, f64> = BTreeMap::new();
    for invoice in body["QueryResponse"]["Invoice"]
        .as_array()
        .expect("invoices")
    {
        let month = invoice["TxnDate"].as_str().expect("TxnDate")[..7].to_string();
        let net = invoice["TotalAmt"].as_f64().expect("TotalAmt")
            - invoice["TxnTaxDetail"]["TotalTax"]
                .as_f64()
                .expect("TotalTax");
        *catering.entry(month).or_default() += net;
    }
    for (month, amount) in report_cells(&report, "Catering") {
        let invoiced = catering.get(&month).copied().unwrap_or_default();
        assert!(
            (amount - invoiced).abs() < 0.02,
            "{month}: booked {amount}, invoiced {invoiced}"
        );
    }
    // Flour follows sales, as in a bakery.
    let sales = report_cells(&report, "Total Sales");
    let flour = report_cells(&report, "Flour and grain");
    for (month, sales) in sales.iter().filter(|(_, sales)| **sales > 0.0) {
        let share = flour[month] / sales;
        assert!(
            (0.1..0.2).contains(&share),
            "{month}: flour is {share} of sales"
        );
    }
    let (status, _, body) = get(
        &format!(
            "{qbo}/v3/company/{QUICKBOOKS_REALM_ID}/reports/ProfitAndLoss?start_date=2026-13-01"
        ),
        quickbooks_auth,
    )
    .await;
    assert_eq!(
        (status, body["Fault"]["type"].as_str()),
        (400, Some("ValidationFault"))
    );
}

#[tokio::test]
async fn xero_pages_with_pagination_and_filters_by_if_modified_since() {
    let sandbox = start().await;
    let base = base_url(sandbox.address, "xero");
    let data = super::xero::XeroData::bakery(&Scenario::new(now(), 7));
    let (invoices, payments) = data.counts();
    assert!(
        invoices > 100 && payments > 80 && payments < invoices,
        "{invoices} invoices, {payments} payments"
    );
    let since = now().timestamp() - 60 * DAY;
    let since_header = chrono::DateTime::from_timestamp(since, 0)
        .expect("instant")
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let mut page = 1;
    let mut seen = Vec::new();
    let mut statuses = HashSet::new();
    loop {
        let (status, headers, body) = get(
            &format!(
                "{base}/api.xro/2.0/Invoices?page={page}&pageSize=10&order=UpdatedDateUTC%20ASC"
            ),
            |request| xero_auth(request).header("if-modified-since", since_header.as_str()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains_key("x-daylimit-remaining"));
        assert_eq!(body["pagination"]["page"], page);
        for invoice in body["Invoices"].as_array().expect("invoices") {
            let updated = xero_ms(&invoice["UpdatedDateUTC"]);
            assert!(
                updated >= since * 1000,
                "If-Modified-Since let an older invoice through"
            );
            assert!(
                invoice["LineItems"]
                    .as_array()
                    .is_some_and(|lines| !lines.is_empty())
            );
            let status = invoice["Status"].as_str().expect("Status").to_string();
            let due = invoice["AmountDue"].as_f64().expect("AmountDue");
            assert_eq!(due > 0.0, status == "AUTHORISED", "{invoice}");
            statuses.insert(status);
            seen.push(updated);
        }
        if page >= body["pagination"]["pageCount"].as_u64().expect("pageCount") as usize {
            assert_eq!(body["pagination"]["itemCount"], seen.len());
            break;
        }
        page += 1;
    }
    assert!(
        seen.len() > 20 && seen.len() < invoices,
        "{} invoices",
        seen.len()
    );
    assert!(
        seen.windows(2).all(|pair| pair[0] <= pair[1]),
        "not in order"
    );
    assert!(
        statuses.contains("PAID") && statuses.contains("AUTHORISED"),
        "{statuses:?}"
    );
    // Payments name the invoice they pay; an HTTP date works as well.
    let (status, _, body) = get(
        &format!("{base}/api.xro/2.0/Payments?page=1&pageSize=1000"),
        |request| xero_auth(request).header("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let listed = body["Payments"].as_array().expect("payments");
    assert_eq!(listed.len(), payments);
    assert!(
        listed
            .iter()
            .all(|payment| payment["Invoice"]["InvoiceID"].is_string())
    );
    let (status, _, body) = get(
        &format!("{base}/api.xro/2.0/Invoices?page=1&order=Colour"),
        xero_auth,
    )
    .await;
    assert_eq!(
        (status, body["Type"].as_str()),
        (400, Some("QueryParseException"))
    );
    let (status, _, body) = get(&format!("{base}/api.xro/2.0/Organisation"), xero_auth).await;
    assert_eq!(
        (status, body["Organisations"][0]["BaseCurrency"].as_str()),
        (200, Some("EUR"))
    );
}
