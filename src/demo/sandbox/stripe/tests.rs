//! Tests of the sandbox: pagination, filters, errors and authentication through a real server
//! on loopback (as a connector sees them), the bakery's and the synthetic list's content, and
//! the pure helpers (query decoding, key masking).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{Datelike, TimeZone};
use tokio::net::{TcpListener, TcpStream};

use super::query::{Filter, ListQuery, percent_decode};
use super::*;

const KEY: &str = "sk_test_sandboxKey0123456789abcdef";

fn bakery_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0)
        .single()
        .expect("a valid instant")
}

/// Built once: the bakery takes a moment in a debug build.
fn bakery() -> StripeData {
    static BAKERY: OnceLock<StripeData> = OnceLock::new();
    BAKERY
        .get_or_init(|| StripeData::bakery(bakery_now(), 7))
        .clone()
}

fn parse_all(data: &StripeData, resource: &str) -> Vec<Value> {
    data.objects(resource)
        .iter()
        .map(|json| serde_json::from_str(json).expect("stored JSON parses"))
        .collect()
}

struct TestServer {
    addr: SocketAddr,
    data: Arc<RwLock<StripeData>>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn spawn(data: StripeData) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    let data = Arc::new(RwLock::new(data));
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(serve(
        listener,
        data.clone(),
        KEY.to_owned(),
        shutdown.clone(),
    ));
    TestServer {
        addr,
        data,
        shutdown,
        handle,
    }
}

/// One request over a fresh connection; returns the status and the parsed JSON body.
async fn request(addr: SocketAddr, method: &str, path: &str, key: Option<&str>) -> (u16, Value) {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let auth = key
            .map(|key| format!("Authorization: Bearer {key}\r\n"))
            .unwrap_or_default();
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
        // tokio's io-util feature is not enabled, so use the readiness API directly.
        let mut sent = 0;
        while sent < head.len() {
            stream.writable().await.expect("writable");
            match stream.try_write(&head.as_bytes()[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("send request: {e}"),
            }
        }
        let mut response = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            stream.readable().await.expect("readable");
            match stream.try_read(&mut buf) {
                Ok(0) => break response,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read response: {e}"),
            }
        }
    };
    let response = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .expect("response within 20 s");
    let text = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body ({e}): {body}")),
    )
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    request(addr, "GET", path, Some(KEY)).await
}

/// Follows `starting_after` to the end; returns every object and the number of pages.
async fn walk(addr: SocketAddr, resource: &str, query: &str) -> (Vec<Value>, usize) {
    let mut objects: Vec<Value> = Vec::new();
    for pages in 1..=1_000 {
        let cursor = objects
            .last()
            .map(|o| format!("&starting_after={}", o["id"].as_str().expect("id")))
            .unwrap_or_default();
        let (status, page) = get(addr, &format!("/v1/{resource}?{query}{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["object"], "list");
        assert_eq!(page["url"], format!("/v1/{resource}"));
        let data = page["data"].as_array().expect("data array");
        objects.extend(data.iter().cloned());
        if page["has_more"] == false {
            return (objects, pages);
        }
        assert!(!data.is_empty(), "has_more with an empty page");
    }
    panic!("more than 1,000 pages");
}

fn assert_list_order(objects: &[Value]) {
    let keys: Vec<(i64, &str)> = objects
        .iter()
        .map(|o| {
            (
                o["created"].as_i64().expect("created"),
                o["id"].as_str().expect("id"),
            )
        })
        .collect();
    for pair in keys.windows(2) {
        assert!(
            pair[0] > pair[1],
            "not newest first: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
}

fn synthetic_id(index: u64) -> String {
    format!("ch_bench{index:016}")
}

#[tokio::test]
async fn pagination_walks_every_bakery_object_once_newest_first() {
    let data = bakery();
    let server = spawn(data.clone()).await;
    for resource in RESOURCES {
        let query = if resource == "subscriptions" {
            "limit=100&status=all"
        } else {
            "limit=100"
        };
        let (objects, pages) = walk(server.addr, resource, query).await;
        let expected = data.len(resource).expect("a known resource");
        assert_eq!(objects.len() as u64, expected, "{resource}");
        assert_eq!(pages as u64, expected.div_ceil(100).max(1), "{resource}");
        let ids: HashSet<&str> = objects
            .iter()
            .map(|o| o["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids.len(), objects.len(), "{resource} repeats an id");
        assert_list_order(&objects);
    }
}

#[tokio::test]
async fn synthetic_walk_of_1050_charges_takes_11_pages() {
    let start = 1_700_000_000;
    let server = spawn(StripeData::synthetic_charges(
        1_050,
        start,
        start + 30 * DAY,
    ))
    .await;
    let (objects, pages) = walk(server.addr, "charges", "limit=100").await;
    assert_eq!(pages, 11);
    assert_eq!(objects.len(), 1_050);
    let expected: Vec<String> = (0..1_050).rev().map(synthetic_id).collect();
    let ids: Vec<&str> = objects
        .iter()
        .map(|o| o["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, expected);
    assert_list_order(&objects);
    assert_eq!(objects.last().expect("objects")["created"], start);
}

#[tokio::test]
async fn synthetic_ties_in_created_keep_id_order_across_pages() {
    // 500 charges within 10 seconds: ~50 share each second.
    let server = spawn(StripeData::synthetic_charges(
        500,
        1_700_000_000,
        1_700_000_010,
    ))
    .await;
    let (objects, pages) = walk(server.addr, "charges", "limit=7").await;
    assert_eq!((objects.len(), pages), (500, 72));
    assert_list_order(&objects);
}

#[tokio::test]
async fn ending_before_returns_the_newer_neighbours_newest_first() {
    let server = spawn(StripeData::synthetic_charges(
        30,
        1_700_000_000,
        1_700_003_000,
    ))
    .await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|o| o["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let (status, page) = get(
        server.addr,
        &format!("/v1/charges?limit=5&ending_before={}", synthetic_id(10)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&page),
        (11..=15).rev().map(synthetic_id).collect::<Vec<_>>()
    );
    assert_eq!(page["has_more"], true);
    let (_, page) = get(
        server.addr,
        &format!("/v1/charges?limit=5&ending_before={}", synthetic_id(25)),
    )
    .await;
    assert_eq!(
        ids(&page),
        (26..=29).rev().map(synthetic_id).collect::<Vec<_>>()
    );
    assert_eq!(page["has_more"], false);
    let (_, page) = get(
        server.addr,
        &format!("/v1/charges?limit=5&starting_after={}", synthetic_id(10)),
    )
    .await;
    assert_eq!(
        ids(&page),
        (5..=9).rev().map(synthetic_id).collect::<Vec<_>>()
    );
    assert_eq!(page["has_more"], true);
}

#[tokio::test]
async fn created_filters_bound_the_listing() {
    let start = 1_700_000_000;
    // Charge i is created at start + 60 i.
    let server = spawn(StripeData::synthetic_charges(1_000, start, start + 60_000)).await;
    let at = |i: i64| start + 60 * i;
    let (objects, pages) = walk(
        server.addr,
        "charges",
        &format!("limit=30&created[gte]={}&created[lt]={}", at(100), at(200)),
    )
    .await;
    assert_eq!((objects.len(), pages), (100, 4));
    assert_eq!(objects.first().expect("objects")["id"], synthetic_id(199));
    assert_eq!(objects.last().expect("objects")["id"], synthetic_id(100));
    // Encoded brackets, exclusive lower and inclusive upper bound.
    let (objects, _) = walk(
        server.addr,
        "charges",
        &format!(
            "limit=100&created%5Bgt%5D={}&created%5Blte%5D={}",
            at(100),
            at(200)
        ),
    )
    .await;
    assert_eq!(objects.len(), 100);
    assert_eq!(objects.first().expect("objects")["id"], synthetic_id(200));
    assert_eq!(objects.last().expect("objects")["id"], synthetic_id(101));
    let (status, page) = get(server.addr, &format!("/v1/charges?created={}", at(42))).await;
    assert_eq!(status, 200);
    assert_eq!(page["data"][0]["id"], synthetic_id(42));
    assert_eq!(page["data"].as_array().expect("data").len(), 1);
    let (status, page) = get(server.addr, "/v1/charges?created[gte]=soon").await;
    assert_eq!(status, 400);
    assert_eq!(page["error"]["param"], "created[gte]");

    // The stored form filters the same way.
    let data = bakery();
    let cut = bakery_now().timestamp() - 30 * DAY;
    let expected = parse_all(&data, "charges")
        .iter()
        .filter(|o| o["created"].as_i64().expect("created") >= cut)
        .count();
    let server = spawn(data).await;
    let (objects, _) = walk(
        server.addr,
        "charges",
        &format!("limit=100&created[gte]={cut}"),
    )
    .await;
    assert_eq!(objects.len(), expected);
    assert!(
        objects
            .iter()
            .all(|o| o["created"].as_i64().expect("created") >= cut)
    );
}

#[tokio::test]
async fn limit_outside_1_to_100_is_rejected_naming_the_parameter() {
    let server = spawn(StripeData::synthetic_charges(
        250,
        1_700_000_000,
        1_700_100_000,
    ))
    .await;
    for bad in ["0", "101", "-3", "ten"] {
        let (status, body) = get(server.addr, &format!("/v1/charges?limit={bad}")).await;
        assert_eq!(status, 400, "limit={bad}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "limit");
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .contains("limit")
                || bad == "ten",
            "{body}"
        );
    }
    for (query, expected) in [
        ("", 10),
        ("?limit=1", 1),
        ("?limit=100", 100),
        ("?limit=37&expand[]=data.customer", 37),
    ] {
        let (status, body) = get(server.addr, &format!("/v1/charges{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(
            body["data"].as_array().expect("data").len(),
            expected,
            "{query}"
        );
        assert_eq!(body["has_more"], true);
    }
}

#[tokio::test]
async fn wrong_or_missing_key_is_401_without_echoing_the_key() {
    let server = spawn(StripeData::synthetic_charges(
        5,
        1_700_000_000,
        1_700_000_500,
    ))
    .await;
    let wrong = "sk_test_wrongSecretValue9876";
    for path in ["/v1/charges", "/v1/nothing-here"] {
        let (status, body) = request(server.addr, "GET", path, Some(wrong)).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(
            body["error"]["message"],
            "Invalid API Key provided: sk_test_****9876"
        );
        assert!(!body.to_string().contains("wrongSecret"));
    }
    let (status, body) = request(server.addr, "GET", "/v1/charges", None).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("You did not provide an API key")
    );
    // A key that is too short to hide shows no characters at all.
    let (status, body) = request(server.addr, "GET", "/v1/charges", Some("abc")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "Invalid API Key provided: ****");
    let (status, _) = request(server.addr, "GET", "/v1/charges", Some(KEY)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_cursor_is_400_no_such_object() {
    let server = spawn(bakery()).await;
    let (status, body) = get(server.addr, "/v1/charges?starting_after=ch_x").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], "No such charge: 'ch_x'");
    assert_eq!(body["error"]["param"], "starting_after");
    assert_eq!(body["error"]["code"], "resource_missing");
    let (status, body) = get(
        server.addr,
        "/v1/balance_transactions?ending_before=txn_gone",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "No such balance transaction: 'txn_gone'"
    );
    assert_eq!(body["error"]["param"], "ending_before");

    let server = spawn(StripeData::synthetic_charges(
        100,
        1_700_000_000,
        1_700_010_000,
    ))
    .await;
    for id in [
        synthetic_id(100),
        "ch_bench12".to_owned(),
        "ch_x".to_owned(),
    ] {
        let (status, body) = get(server.addr, &format!("/v1/charges?starting_after={id}")).await;
        assert_eq!(status, 400, "{id}");
        assert_eq!(body["error"]["message"], format!("No such charge: '{id}'"));
    }
    let (status, body) = get(
        server.addr,
        &format!(
            "/v1/charges?starting_after={0}&ending_before={0}",
            synthetic_id(5)
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("only specify one")
    );
}

#[tokio::test]
async fn retrieve_and_unknown_paths_answer_like_stripe() {
    let server = spawn(StripeData::synthetic_charges(
        100,
        1_700_000_000,
        1_700_010_000,
    ))
    .await;
    let (status, body) = get(server.addr, &format!("/v1/charges/{}", synthetic_id(42))).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], synthetic_id(42));
    let (status, body) = get(server.addr, "/v1/charges/ch_missing").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["param"], "id");
    for (method, path) in [
        ("GET", "/v1/customers"),
        ("GET", "/v2/charges"),
        ("POST", "/v1/charges"),
    ] {
        let (status, body) = request(server.addr, method, path, Some(KEY)).await;
        assert_eq!(status, 404, "{method} {path}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.starts_with(&format!("Unrecognized request URL ({method}: {path})")),
            "{message}"
        );
    }
}

#[test]
fn bakery_has_failed_and_refunded_charges_and_refunds_point_at_them() {
    let data = bakery();
    let now = bakery_now().timestamp();
    let charges = parse_all(&data, "charges");
    let by_id: HashMap<&str, &Value> = charges
        .iter()
        .map(|c| (c["id"].as_str().expect("id"), c))
        .collect();
    let failed = charges.iter().filter(|c| c["status"] == "failed").count();
    let rate = failed as f64 / charges.len() as f64;
    assert!((0.03..0.07).contains(&rate), "failed share {rate}");
    for charge in charges.iter().filter(|c| c["status"] == "failed") {
        assert!(
            charge["failure_code"].is_string() && charge["failure_message"].is_string(),
            "{charge}"
        );
        assert_eq!(charge["paid"], false);
        assert_eq!(charge["amount_captured"], 0);
        assert!(charge["balance_transaction"].is_null());
    }
    assert!(
        charges
            .iter()
            .all(|c| c["created"].as_i64().expect("created") < now)
    );
    assert!(charges.iter().all(|c| {
        c["customer"]
            .as_str()
            .expect("customer")
            .starts_with("cus_")
    }));

    let refunds = parse_all(&data, "refunds");
    let refund_rate = refunds.len() as f64 / (charges.len() - failed) as f64;
    assert!(
        (0.01..0.035).contains(&refund_rate),
        "refund share {refund_rate}"
    );
    let mut refunded_by_charge: HashMap<&str, i64> = HashMap::new();
    for refund in &refunds {
        let charge = by_id[refund["charge"].as_str().expect("charge")];
        assert_eq!(charge["status"], "succeeded");
        assert!(refund["created"].as_i64() > charge["created"].as_i64());
        assert!(refund["created"].as_i64().expect("created") < now);
        *refunded_by_charge
            .entry(refund["charge"].as_str().expect("charge"))
            .or_default() += refund["amount"].as_i64().expect("amount");
    }
    for charge in &charges {
        let refunded = refunded_by_charge
            .get(charge["id"].as_str().expect("id"))
            .copied()
            .unwrap_or(0);
        assert_eq!(charge["amount_refunded"], refunded, "{charge}");
        assert_eq!(
            charge["refunded"],
            refunded == charge["amount"].as_i64().expect("amount")
        );
    }
    assert!(charges.iter().any(|c| c["refunded"] == true));
    assert!(
        charges
            .iter()
            .any(|c| c["refunded"] == false && c["amount_refunded"].as_i64() > Some(0))
    );

    let txns = parse_all(&data, "balance_transactions");
    let sources: HashSet<&str> = txns
        .iter()
        .map(|t| t["source"].as_str().expect("source"))
        .collect();
    assert!(
        charges
            .iter()
            .filter(|c| c["status"] == "succeeded")
            .all(|c| sources.contains(c["id"].as_str().expect("id")))
    );
    assert!(
        refunds
            .iter()
            .all(|r| sources.contains(r["id"].as_str().expect("id")))
    );
    for txn in &txns {
        assert_eq!(
            txn["net"].as_i64(),
            Some(txn["amount"].as_i64().expect("amount") - txn["fee"].as_i64().expect("fee"))
        );
    }
    assert!(txns.iter().any(|t| t["type"] == "payout"));

    let subscriptions = parse_all(&data, "subscriptions");
    assert!(
        (200..700).contains(&subscriptions.len()),
        "{} subscriptions",
        subscriptions.len()
    );
    let statuses: HashSet<&str> = subscriptions
        .iter()
        .map(|s| s["status"].as_str().expect("status"))
        .collect();
    assert!(
        statuses.contains("active") && statuses.contains("canceled"),
        "{statuses:?}"
    );
    let subscription_ids: HashSet<&str> = subscriptions
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    let invoices = parse_all(&data, "invoices");
    assert!(
        invoices
            .iter()
            .all(|i| subscription_ids.contains(i["subscription"].as_str().expect("subscription")))
    );
    let invoice_statuses: HashSet<&str> = invoices
        .iter()
        .map(|i| i["status"].as_str().expect("status"))
        .collect();
    assert!(
        invoice_statuses.contains("paid") && invoice_statuses.contains("void"),
        "{invoice_statuses:?}"
    );
    for invoice in invoices
        .iter()
        .filter(|i| i["status"] == "paid" && i["amount_paid"].as_i64() > Some(0))
    {
        let charge = by_id[invoice["charge"]
            .as_str()
            .expect("a paid invoice has a charge")];
        assert_eq!(charge["status"], "succeeded");
        assert_eq!(charge["amount"], invoice["amount_paid"]);
        assert_eq!(charge["invoice"], invoice["id"]);
    }
}

#[test]
fn bakery_sells_30_to_60_orders_a_day_with_a_christmas_peak() {
    let data = bakery();
    let mut per_day: HashMap<i64, u32> = HashMap::new();
    let mut per_month = [0u32; 12];
    for charge in parse_all(&data, "charges")
        .iter()
        .filter(|c| c["metadata"]["order_id"].is_string())
    {
        let created = charge["created"].as_i64().expect("created");
        *per_day.entry(created.div_euclid(DAY)).or_default() += 1;
        per_month[DateTime::from_timestamp(created, 0).expect("time").month0() as usize] += 1;
    }
    let full_days: Vec<u32> = per_day
        .iter()
        .filter(|(day, _)| {
            **day * DAY > bakery_now().timestamp() - 364 * DAY
                && (*day + 1) * DAY <= bakery_now().timestamp()
        })
        .map(|(_, n)| *n)
        .collect();
    let mean = full_days.iter().sum::<u32>() as f64 / full_days.len() as f64;
    assert!((35.0..55.0).contains(&mean), "mean {mean}");
    assert!(
        full_days.iter().all(|n| (20..=80).contains(n)),
        "{full_days:?}"
    );
    assert!(
        per_month[11] as f64 > per_month[7] as f64 * 1.2,
        "{per_month:?}"
    );
}

#[test]
fn bakery_is_deterministic_for_a_seed() {
    let now = bakery_now();
    let first = StripeData::bakery(now, 7);
    let again = bakery();
    let other = StripeData::bakery(now, 8);
    for resource in RESOURCES {
        assert_eq!(
            first.objects(resource),
            again.objects(resource),
            "{resource}"
        );
    }
    assert_ne!(
        first.objects("charges")[..20],
        other.objects("charges")[..20]
    );
}

#[tokio::test]
async fn subscriptions_hide_ended_ones_unless_status_asks() {
    let data = bakery();
    let all = parse_all(&data, "subscriptions");
    let canceled = all.iter().filter(|s| s["status"] == "canceled").count();
    let server = spawn(data).await;
    let (listed, _) = walk(server.addr, "subscriptions", "limit=100").await;
    assert_eq!(listed.len(), all.len() - canceled);
    assert!(listed.iter().all(|s| s["status"] != "canceled"));
    let (listed, _) = walk(server.addr, "subscriptions", "limit=100&status=canceled").await;
    assert_eq!(listed.len(), canceled);
    let (listed, _) = walk(server.addr, "subscriptions", "limit=100&status=active").await;
    assert!(!listed.is_empty() && listed.iter().all(|s| s["status"] == "active"));
    let (listed, _) = walk(server.addr, "subscriptions", "limit=100&status=all").await;
    assert_eq!(listed.len(), all.len());
    let (status, body) = get(server.addr, "/v1/subscriptions?status=sleeping").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "status");
}

#[tokio::test]
async fn equality_filters_select_matching_objects_in_both_forms() {
    let data = bakery();
    let refund = parse_all(&data, "refunds").remove(0);
    let charge = refund["charge"].as_str().expect("charge").to_owned();
    let server = spawn(data).await;
    let (refunds, _) = walk(
        server.addr,
        "refunds",
        &format!("limit=100&charge={charge}"),
    )
    .await;
    assert!(!refunds.is_empty() && refunds.iter().all(|r| r["charge"] == charge.as_str()));
    let (payouts, _) = walk(server.addr, "balance_transactions", "limit=100&type=payout").await;
    assert!(
        payouts.len() >= 50 && payouts.iter().all(|t| t["type"] == "payout"),
        "{} payouts",
        payouts.len()
    );

    let synthetic = StripeData::synthetic_charges(2_000, 1_700_000_000, 1_700_200_000);
    let customer = synthetic
        .get("charges", &synthetic_id(1_999))
        .expect("charge")["customer"]
        .as_str()
        .expect("customer")
        .to_owned();
    let server = spawn(synthetic).await;
    let (charges, _) = walk(
        server.addr,
        "charges",
        &format!("limit=10&customer={customer}"),
    )
    .await;
    assert!(!charges.is_empty() && charges.iter().all(|c| c["customer"] == customer.as_str()));
    assert_eq!(charges[0]["id"], synthetic_id(1_999));
}

#[test]
fn synthetic_charge_is_about_1_25_kb_of_stripe_shaped_json() {
    let data = StripeData::synthetic_charges(5_000, 1_700_000_000, 1_731_536_000);
    let objects = data.objects("charges");
    let sizes: Vec<usize> = objects.iter().map(String::len).collect();
    let (min, max) = (sizes.iter().min().copied(), sizes.iter().max().copied());
    assert!(
        sizes.iter().all(|size| (1_100..=1_400).contains(size)),
        "sizes from {min:?} to {max:?}"
    );
    let mean = sizes.iter().sum::<usize>() / sizes.len();
    assert!((1_150..=1_350).contains(&mean), "mean {mean}");
    let charges: Vec<Value> = objects
        .iter()
        .map(|json| serde_json::from_str(json).expect("valid JSON"))
        .collect();
    for charge in &charges {
        assert_eq!(charge["object"], "charge");
        assert_eq!(charge["currency"], "eur");
        assert_eq!(charge["livemode"], false);
        assert!(charge["amount"].as_i64() > Some(0));
        assert_eq!(charge["payment_method_details"]["type"], "card");
        assert_eq!(charge["billing_details"]["address"]["country"], "FR");
    }
    let failed = charges.iter().filter(|c| c["status"] == "failed").count();
    let refunded = charges.iter().filter(|c| c["refunded"] == true).count();
    assert!((100..300).contains(&failed), "{failed} failed");
    assert!((30..130).contains(&refunded), "{refunded} refunded");
    assert_eq!(
        data.objects("charges")[17],
        objects[17],
        "generated the same way twice"
    );
    assert_eq!(data.len("refunds"), Some(0));
}

#[tokio::test]
async fn upsert_shows_in_next_listing() {
    let server = spawn(bakery()).await;
    let (_, page) = get(server.addr, "/v1/charges?limit=3").await;
    let mut charge = page["data"][2].clone();
    assert_eq!(charge["refunded"], false);
    let id = charge["id"].as_str().expect("id").to_owned();
    charge["refunded"] = true.into();
    charge["amount_refunded"] = charge["amount"].clone();
    let newest = page["data"][0]["created"].as_i64().expect("created");
    let refund = serde_json::json!({
        "id": "re_sandboxTestRefund", "object": "refund", "amount": charge["amount"], "charge": id,
        "created": newest + 60, "currency": "eur", "status": "succeeded", "reason": "requested_by_customer",
    });
    {
        let mut data = server.data.write().await;
        data.upsert("charges", charge);
        data.upsert("refunds", refund);
    }
    let (_, page) = get(server.addr, "/v1/charges?limit=3").await;
    assert_eq!(
        page["data"][2]["id"],
        id.as_str(),
        "the changed charge keeps its place"
    );
    assert_eq!(page["data"][2]["refunded"], true);
    let (_, page) = get(server.addr, &format!("/v1/refunds?limit=1&charge={id}")).await;
    assert_eq!(page["data"][0]["id"], "re_sandboxTestRefund");
    let (_, page) = get(server.addr, "/v1/refunds?limit=1").await;
    assert_eq!(
        page["data"][0]["id"], "re_sandboxTestRefund",
        "the newest refund lists first"
    );
    let before = server.data.read().await.len("refunds");
    server.data.write().await.upsert(
        "refunds",
        serde_json::json!({"id": "re_sandboxTestRefund", "created": 1}),
    );
    assert_eq!(
        server.data.read().await.len("refunds"),
        before,
        "an upsert replaces, never duplicates"
    );
    let (_, page) = get(server.addr, "/v1/refunds?limit=1").await;
    assert_ne!(
        page["data"][0]["id"], "re_sandboxTestRefund",
        "moved to its new created time"
    );
}

#[tokio::test]
async fn serve_returns_once_shutdown_is_cancelled() {
    let server = spawn(StripeData::empty()).await;
    let (status, page) = get(server.addr, "/v1/invoices").await;
    assert_eq!(
        (status, page["has_more"].clone(), page["data"].clone()),
        (200, false.into(), serde_json::json!([]))
    );
    server.shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), server.handle)
        .await
        .expect("stops within 10 s");
    assert!(result.expect("server task did not panic").is_ok());
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed"
    );
}

#[test]
fn query_keys_and_values_are_url_decoded() {
    for (raw, decoded) in [
        ("created%5Bgte%5D", "created[gte]"),
        ("a+b", "a b"),
        ("100%25", "100%"),
        ("bad%zz", "bad%zz"),
        ("end%4", "end%4"),
        ("plain", "plain"),
    ] {
        assert_eq!(percent_decode(raw), decoded, "{raw}");
    }
    let query = ListQuery::parse(
        Resource::Charges,
        "created%5Bgt%5D=10&created[lt]=20&limit=5&foo=bar&customer=cus_1",
    )
    .expect("valid");
    assert_eq!(
        (query.created_min, query.created_max, query.limit),
        (Some(11), Some(19), 5)
    );
    assert_eq!(
        query.filters,
        vec![Filter {
            field: "customer",
            values: vec!["cus_1".to_owned()],
            exclude: false
        }]
    );
}

#[test]
fn a_wrong_key_is_masked_to_its_prefix_and_last_four() {
    assert_eq!(mask_key("sk_test_abcdefgh1234"), "sk_test_****1234");
    assert_eq!(mask_key("rk_live_abcdefgh5678"), "rk_live_****5678");
    assert_eq!(mask_key("sk_test_short"), "sk_test_****");
    assert_eq!(mask_key("whatever-token-9999"), "****9999");
}
