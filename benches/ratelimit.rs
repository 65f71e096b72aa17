//! Rate-limit benchmark: a long Shopify sync against a local server that enforces
//! Shopify's leaky bucket (40 requests burst, draining at 2 per second, 429 with
//! `Retry-After` when full), reporting the sync time against the minimum the limit
//! allows, the requests per synced record, and the 429 answers received.
//!
//! Run with `cargo bench --bench ratelimit -- [PAGES]` (default 140 pages of 250 orders).
//! Everything runs on 127.0.0.1 in this process; the database is a temporary SQLite file.
//!
//! The minimum wall time of R requests through a bucket of B that drains at L per second,
//! starting empty, is (R − B) / L seconds (the first B go at once, then one per 1/L). A
//! client that only reacts to 429 reaches about the same time but collects a 429 for
//! nearly every request after the burst; a client that paces itself from
//! `X-Shopify-Shop-Api-Call-Limit` gets none after the first.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use scorekeeper::app::Services;
use scorekeeper::sources::engine::Trigger;

const BUCKET: f64 = 40.0;
const LEAK_PER_SECOND: f64 = 2.0;
const PAGE_SIZE: usize = 250;
const DEFAULT_PAGES: usize = 140;
const TOKEN: &str = "shpat_bench";
const ORDERS_PATH: &str = "/admin/api/2026-07/orders.json";

/// The server's leaky bucket and counters.
struct Shop {
    /// `http://127.0.0.1:PORT`, for the `Link` header.
    address: String,
    pages: usize,
    bucket: Mutex<(f64, Instant)>,
    requests: AtomicU64,
    throttled: AtomicU64,
}

impl Shop {
    /// Adds one request to the bucket; `Err(level)` when it is full.
    async fn admit(&self) -> Result<f64, f64> {
        let mut guard = self.bucket.lock().await;
        let (level, since) = &mut *guard;
        let now = Instant::now();
        *level = (*level - now.duration_since(*since).as_secs_f64() * LEAK_PER_SECOND).max(0.0);
        *since = now;
        if *level + 1.0 > BUCKET {
            return Err(*level);
        }
        *level += 1.0;
        Ok(*level)
    }
}

fn order(id: usize) -> serde_json::Value {
    // Spread over 2025, one order every ~15 minutes.
    let created = 1_735_689_600 + id as i64 * 900;
    let time = chrono::DateTime::from_timestamp(created, 0)
        .expect("in range")
        .to_rfc3339();
    serde_json::json!({
        "id": 450_789_000 + id,
        "name": format!("#{}", 1000 + id),
        "created_at": time,
        "updated_at": time,
        "financial_status": if id.is_multiple_of(17) { "refunded" } else { "paid" },
        "currency": "EUR",
        "total_price": format!("{}.{:02}", 10 + id % 90, id % 100),
        "line_items": [{"sku": "SD-1", "quantity": 1 + id % 3}]
    })
}

async fn orders(
    State(shop): State<Arc<Shop>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    shop.requests.fetch_add(1, Ordering::Relaxed);
    if headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        != Some(TOKEN)
    {
        return (
            StatusCode::UNAUTHORIZED,
            "{\"errors\":\"[API] Invalid API key\"}",
        )
            .into_response();
    }
    let level = match shop.admit().await {
        Ok(level) => level,
        Err(level) => {
            shop.throttled.fetch_add(1, Ordering::Relaxed);
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                "{\"errors\":\"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.\"}",
            )
                .into_response();
            let headers = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from_static("1.0"));
            headers.insert(
                "x-shopify-shop-api-call-limit",
                HeaderValue::from_str(&format!("{}/{}", level.ceil() as u64, BUCKET as u64))
                    .expect("ascii"),
            );
            return response;
        }
    };
    let page: usize = query
        .get("page_info")
        .and_then(|info| info.strip_prefix('p'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let first = page * PAGE_SIZE;
    let body: Vec<serde_json::Value> = (first..first + PAGE_SIZE).map(order).collect();
    let mut response = axum::Json(serde_json::json!({ "orders": body })).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "x-shopify-shop-api-call-limit",
        HeaderValue::from_str(&format!("{}/{}", level.ceil() as u64, BUCKET as u64))
            .expect("ascii"),
    );
    if page + 1 < shop.pages {
        let link = format!(
            "<{}{ORDERS_PATH}?limit=250&page_info=p{}>; rel=\"next\"",
            shop.address,
            page + 1
        );
        headers.insert("link", HeaderValue::from_str(&link).expect("ascii"));
    }
    response
}

fn main() -> ExitCode {
    let pages = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGES);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(pages)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(pages: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let shop = Arc::new(Shop {
        address: address.clone(),
        pages,
        bucket: Mutex::new((0.0, Instant::now())),
        requests: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
    });
    let router = axum::Router::new()
        .route(ORDERS_PATH, axum::routing::get(orders))
        .with_state(shop.clone());
    let stop = CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        })
    };

    let dir = tempfile::tempdir()?;
    let config = format!(
        r#"
[database]
url = "sqlite://{}/bench.db"

[scorecard]
name = "Rate limit bench"
timezone = "UTC"

[sources.shop]
kind = "shopify"
schedule = "0 0 * * * *"
shop = "bench"
base_url = "{address}"
access_token = "{TOKEN}"

[measures.sales]
perspective = "financial"
period = "month"
from = "shop.orders"
time = "created_at"
where = "financial_status == 'paid'"
value = "total_price"
aggregate = "sum"
"#,
        dir.path().display()
    );
    let settings = scorekeeper::config::load_str(&config, "bench", &BTreeMap::new())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let services = Services::prepare(settings).await?;
    let source = services.settings.sources["shop"].clone();
    let started = Instant::now();
    let report = services
        .engine
        .sync_source(&source, Trigger::Manual, &CancellationToken::new())
        .await
        .context("sync")?;
    let elapsed = started.elapsed();
    ensure!(report.is_success(), "the sync failed: {report:?}");
    let records: u64 = report.streams.iter().map(|stream| stream.records).sum();
    ensure!(
        records == (pages * PAGE_SIZE) as u64,
        "synced {records} records, expected {}",
        pages * PAGE_SIZE
    );
    stop.cancel();
    let _ = server.await;

    let requests = shop.requests.load(Ordering::Relaxed);
    let throttled = shop.throttled.load(Ordering::Relaxed);
    let minimum = Duration::from_secs_f64(((pages as f64 - BUCKET) / LEAK_PER_SECOND).max(0.0));
    println!(
        "Shopify leaky bucket: {BUCKET} burst, {LEAK_PER_SECOND}/s; {pages} pages of {PAGE_SIZE} orders"
    );
    println!("records synced          {records}");
    println!(
        "requests sent           {requests} ({:.4} per record)",
        requests as f64 / records as f64
    );
    println!("429 answers             {throttled}");
    println!("sync time               {:.1} s", elapsed.as_secs_f64());
    println!("minimum the limit allows {:.1} s", minimum.as_secs_f64());
    println!(
        "ratio                   {:.2}",
        elapsed.as_secs_f64() / minimum.as_secs_f64().max(0.001)
    );
    Ok(())
}
