//! Unit tests of the HubSpot preset: request bodies, paging, the result cap, parsing.

use super::*;
use crate::config::SourceKind;
use crate::secret::Secret;
use crate::sources::presets::test_source;
use serde_json::{Value, json};

fn source() -> SourceConfig {
    SourceConfig {
        name: "crm".into(),
        access_token: Some(Secret::new("pat-na1-0000")),
        ..test_source(SourceKind::HubSpot, "https://api.hubapi.com")
    }
}

fn window(start: Option<i64>) -> SyncWindow {
    SyncWindow {
        start: start.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
        lookback: Duration::from_secs(100),
    }
}

fn body(request: &PageRequest) -> Value {
    serde_json::from_str(request.body.as_deref().expect("a POST")).expect("JSON body")
}

/// A search page of deals `(id, hs_lastmodifieddate)` with `after` as the next position.
fn page(deals: &[(&str, &str)], after: Option<&str>) -> Vec<u8> {
    let results: Vec<Value> = deals
        .iter()
        .map(|(id, modified)| {
            json!({
                "id": id,
                "properties": {"dealname": format!("Deal {id}"), "amount": "100", "dealstage": "closedwon", "hs_lastmodifieddate": modified, "hs_object_id": id},
                "createdAt": "2026-01-05T10:00:00Z",
                "updatedAt": modified,
                "archived": false,
            })
        })
        .collect();
    let mut page = json!({"total": results.len(), "results": results});
    if let Some(after) = after {
        page["paging"] = json!({"next": {"after": after, "link": "https://api.hubapi.com/..."}});
    }
    page.to_string().into_bytes()
}

const SEARCH_URL: &str = "https://api.hubapi.com/crm/v3/objects/deals/search";

#[test]
fn searches_deals_by_modification_time_with_properties_and_the_largest_page() {
    let request = HUBSPOT
        .first_request(&source(), "deals", None, &window(Some(1_767_225_600)))
        .expect("request");
    assert_eq!(request.url.as_str(), SEARCH_URL);
    assert!(request.headers.is_empty());
    let body = body(&request);
    assert_eq!(
        body["filterGroups"],
        json!([{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1767225600000"}]}])
    );
    assert_eq!(
        body["sorts"],
        json!([{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}])
    );
    assert_eq!(body["limit"], 200);
    assert!(
        body.get("after").is_none(),
        "the first page has no position"
    );
    let properties: Vec<&str> = body["properties"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|name| name.as_str().expect("a name"))
        .collect();
    for needed in [
        "dealname",
        "amount",
        "dealstage",
        "pipeline",
        "closedate",
        "createdate",
        "hs_lastmodifieddate",
        "hs_is_closed_won",
        "hs_is_closed",
    ] {
        assert!(properties.contains(&needed), "{needed} is requested");
    }
    assert!(
        request.body.as_deref().expect("body").len() <= 3_000,
        "HubSpot refuses search bodies over 3,000 characters"
    );
    assert_eq!(request.state, r#"{"run":{"gte":1767225600}}"#);
    // Without start_date or mark the walk asks for every deal.
    let everything = HUBSPOT
        .first_request(&source(), "deals", None, &window(None))
        .expect("request");
    assert_eq!(body_filter_value(&everything), "0");
}

fn body_filter_value(request: &PageRequest) -> String {
    body(request)["filterGroups"][0]["filters"][0]["value"]
        .as_str()
        .expect("a string")
        .to_string()
}

#[test]
fn pages_follow_paging_next_after_and_the_last_page_raises_the_mark() {
    let source = source();
    let first = HUBSPOT
        .first_request(&source, "deals", None, &window(Some(1_767_225_600)))
        .expect("request");
    let page_1 = HUBSPOT
        .parse_page(
            &source,
            "deals",
            &first,
            &HeaderMap::new(),
            &page(
                &[
                    ("101", "2026-03-01T10:00:00.250Z"),
                    ("102", "2026-03-02T10:00:00Z"),
                ],
                Some("200"),
            ),
        )
        .expect("page");
    assert_eq!(
        page_1
            .records
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>(),
        ["101", "102"]
    );
    assert_eq!(
        page_1.cursor,
        r#"{"run":{"gte":1767225600,"after":"200","max":1772445600}}"#
    );
    let next = page_1.next.expect("more");
    assert_eq!(next.url.as_str(), SEARCH_URL);
    assert_eq!(next.state, page_1.cursor);
    let next_body = body(&next);
    assert_eq!(next_body["after"], "200");
    assert_eq!(body_filter_value(&next), "1767225600000", "same query");
    let last = HUBSPOT
        .parse_page(
            &source,
            "deals",
            &next,
            &HeaderMap::new(),
            &page(&[("103", "2026-03-03T10:00:00.999Z")], None),
        )
        .expect("page");
    assert!(last.next.is_none());
    assert_eq!(last.cursor, r#"{"since":1772532000}"#);
    // The next walk starts `lookback` (100 s here) before the mark.
    let again = HUBSPOT
        .first_request(
            &source,
            "deals",
            Some(&last.cursor),
            &window(Some(1_767_225_600)),
        )
        .expect("request");
    assert_eq!(body_filter_value(&again), "1772531900000");
    assert!(body(&again).get("after").is_none());
}

#[test]
fn at_the_result_cap_a_new_query_starts_from_the_newest_modification() {
    let capped = HubSpot { result_cap: 4 };
    let source = source();
    let first = capped
        .first_request(&source, "deals", None, &window(Some(1_767_225_600)))
        .expect("request");
    let page_1 = capped
        .parse_page(
            &source,
            "deals",
            &first,
            &HeaderMap::new(),
            &page(
                &[("1", "2026-03-01T00:00:01Z"), ("2", "2026-03-01T00:00:02Z")],
                Some("2"),
            ),
        )
        .expect("page");
    let page_2_request = page_1.next.expect("more");
    assert_eq!(body(&page_2_request)["after"], "2");
    // The next position would be the fourth result: the cap.
    let page_2 = capped
        .parse_page(
            &source,
            "deals",
            &page_2_request,
            &HeaderMap::new(),
            &page(
                &[
                    ("3", "2026-03-01T00:00:03Z"),
                    ("4", "2026-03-01T00:00:04.500Z"),
                ],
                Some("4"),
            ),
        )
        .expect("page");
    let restart = page_2.next.expect("a new query");
    let restart_body = body(&restart);
    assert!(restart_body.get("after").is_none(), "from the first result");
    assert_eq!(
        body_filter_value(&restart),
        "1772323204000",
        "from deal 4's second, so deals modified then are read again"
    );
    assert_eq!(restart.state, page_2.cursor);
    assert_eq!(
        page_2.cursor,
        r#"{"run":{"gte":1772323204,"max":1772323204}}"#
    );
    // The new query ends normally and the mark is the newest change of both.
    let end = capped
        .parse_page(
            &source,
            "deals",
            &restart,
            &HeaderMap::new(),
            &page(
                &[
                    ("4", "2026-03-01T00:00:04.500Z"),
                    ("5", "2026-03-01T00:00:09Z"),
                ],
                None,
            ),
        )
        .expect("page");
    assert!(end.next.is_none());
    assert_eq!(end.cursor, r#"{"since":1772323209}"#);
}

#[test]
fn a_cap_reached_within_one_second_fails_instead_of_looping() {
    let capped = HubSpot { result_cap: 2 };
    let source = source();
    let state = r#"{"run":{"gte":1772323200}}"#.to_string();
    let walk = Walk {
        gte: Some(1_772_323_200),
        after: None,
        max: None,
    };
    let request = search_request(&source.base_url, state, search_body(&walk));
    let error = capped
        .parse_page(
            &source,
            "deals",
            &request,
            &HeaderMap::new(),
            &page(
                &[
                    ("1", "2026-03-01T00:00:00.100Z"),
                    ("2", "2026-03-01T00:00:00.900Z"),
                ],
                Some("2"),
            ),
        )
        .expect_err("cannot advance");
    assert!(
        error
            .detail
            .contains("all modified at 2026-03-01T00:00:00Z"),
        "{}",
        error.detail
    );
}

#[test]
fn deals_need_a_modification_time_and_an_id() {
    let source = source();
    let request = HUBSPOT
        .first_request(&source, "deals", None, &window(None))
        .expect("request");
    let error = HUBSPOT
        .parse_page(
            &source,
            "deals",
            &request,
            &HeaderMap::new(),
            br#"{"results":[{"id":"7","properties":{"amount":"5"}}]}"#,
        )
        .expect_err("no time");
    assert!(
        error.detail.contains("hs_lastmodifieddate"),
        "{}",
        error.detail
    );
    // updatedAt alone is enough.
    let page = HUBSPOT
        .parse_page(
            &source,
            "deals",
            &request,
            &HeaderMap::new(),
            br#"{"results":[{"id":"7","properties":{},"updatedAt":"2026-03-01T00:00:00Z"}]}"#,
        )
        .expect("page");
    assert_eq!(page.cursor, r#"{"since":1772323200}"#);
    let error = HUBSPOT
        .parse_page(
            &source,
            "deals",
            &request,
            &HeaderMap::new(),
            br#"{"results":[{"properties":{}}]}"#,
        )
        .expect_err("no id");
    assert!(error.detail.contains("primary key"), "{}", error.detail);
    let truncated = HUBSPOT
        .parse_page(
            &source,
            "deals",
            &request,
            &HeaderMap::new(),
            br#"{"results":[{"id":"7""#,
        )
        .expect_err("cut off");
    assert!(truncated.truncated);
}

#[test]
fn the_token_is_a_bearer_and_the_probe_lists_one_deal() {
    assert!(matches!(HUBSPOT.auth(&source()), Ok(Auth::Bearer(_))));
    let without = SourceConfig {
        access_token: None,
        ..source()
    };
    assert!(matches!(
        HUBSPOT.auth(&without),
        Err(SourceError::Unauthorized { .. })
    ));
    let probe = HUBSPOT.probe(&source());
    assert_eq!(
        probe.url.as_str(),
        "https://api.hubapi.com/crm/v3/objects/deals?limit=1"
    );
    assert!(probe.body.is_none(), "a GET");
}
