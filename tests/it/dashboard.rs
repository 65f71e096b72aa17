//! The dashboard over HTTP, without a browser: the page's security headers and embedded
//! assets, and the events stream (one event per finished sync, and its end when the
//! server shuts down). The page itself is tested in Chromium by `browser.rs`.

use std::time::Duration;

use wiremock::MockServer;

use crate::helpers::{GOOD_KEY, charges_config, mount_stripe_fixtures, settings, spawn_app};

/// Every `src="..."` and `href="..."` of a page.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let end = rest.find('"').expect("attribute closes");
            found.push(rest[..end].to_string());
        }
    }
    found
}

#[tokio::test]
async fn page_has_a_strict_policy_and_loads_only_its_own_embedded_assets() {
    let db = crate::helpers::TestDb::sqlite();
    // The source is never synced here: nothing listens at its address.
    let app = spawn_app(settings(
        &charges_config(&db.url, "http://127.0.0.1:9", &["charges"]),
        GOOD_KEY,
    ))
    .await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", app.address);

    let page = client.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(header("cache-control"), "no-cache");
    assert!(header("content-type").starts_with("text/html"));
    let html = page.text().await.expect("page body");
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("<style"), "no inline style");

    let assets = references(&html);
    assert!(assets.len() >= 3, "{assets:?}");
    // The build's folder: /assets/<16 hex digits>/.
    let own = assets[0][..assets[0].rfind('/').expect("a folder") + 1].to_string();
    let fingerprint = own
        .strip_prefix("/assets/")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_default();
    assert_eq!(fingerprint.len(), 16, "{own}");
    assert!(fingerprint.chars().all(|c| c.is_ascii_hexdigit()), "{own}");
    let mut scripts = Vec::new();
    for asset in assets.iter().filter(|asset| !asset.starts_with("/api/")) {
        assert!(asset.starts_with(&own), "{asset} is not an embedded asset");
        let response = client
            .get(format!("{base}{asset}"))
            .send()
            .await
            .expect("GET asset");
        assert_eq!(response.status(), 200, "{asset}");
        let cache = response.headers()["cache-control"].to_str().unwrap_or("");
        assert!(cache.contains("immutable"), "{asset}: {cache}");
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_string();
        let body = response.text().await.expect("asset body");
        if kind.starts_with("text/javascript") {
            scripts.push((asset.clone(), body));
        }
    }
    // The module imports the others by relative paths inside the same folder.
    let app_js = scripts
        .iter()
        .find(|(name, _)| name.ends_with("/app.js"))
        .expect("app.js is loaded")
        .1
        .clone();
    for module in ["dom.js", "chart.js", "map.js"] {
        assert!(app_js.contains(&format!("\"./{module}\"")), "{module}");
        let response = client
            .get(format!("{base}{own}{module}"))
            .send()
            .await
            .expect("GET module");
        assert_eq!(response.status(), 200, "{module}");
        scripts.push((module.to_string(), response.text().await.expect("module")));
    }
    for (name, script) in &scripts {
        // Data goes into the DOM as text, and nothing is fetched from elsewhere.
        assert!(!script.contains("innerHTML"), "{name} uses innerHTML");
        assert!(!script.contains("insertAdjacentHTML"), "{name}");
        assert!(!script.contains("document.write"), "{name}");
        for line in script.lines() {
            let outside = line.contains("http://") || line.contains("https://");
            assert!(
                !outside || line.contains("http://www.w3.org/2000/svg"),
                "{name} names another origin: {line}"
            );
        }
    }

    let stale = client
        .get(format!("{base}/assets/0000000000000000/app.js"))
        .send()
        .await
        .expect("GET stale asset");
    assert_eq!(stale.status(), 404, "another build's fingerprint");
    let unknown = client
        .get(format!("{base}{own}secrets.txt"))
        .send()
        .await
        .expect("GET unknown asset");
    assert_eq!(unknown.status(), 404);
    app.stop().await;
}

/// Reads the stream until one whole event (ended by a blank line) has arrived, and returns
/// its `data`; `None` when the stream ended first.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String) -> Option<String> {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            // Comment lines (keep-alives) start with ':' and carry no data.
            if let Some(data) = event.lines().find_map(|line| line.strip_prefix("data: ")) {
                return Some(data.to_string());
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(20), response.chunk())
            .await
            .expect("the events stream answers within 20 s")
            .expect("events stream read");
        match chunk {
            Some(bytes) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            None => return None,
        }
    }
}

#[tokio::test]
async fn events_stream_tells_each_finished_sync_and_ends_when_the_server_shuts_down() {
    let db = crate::helpers::TestDb::sqlite();
    let stripe = MockServer::start().await;
    mount_stripe_fixtures(&stripe, 1).await;
    let app = spawn_app(settings(
        &charges_config(&db.url, &stripe.uri(), &["charges", "refunds"]),
        GOOD_KEY,
    ))
    .await;
    let mut response = reqwest::get(format!("http://{}/api/v1/events", app.address))
        .await
        .expect("GET /api/v1/events");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let first = next_event(&mut response, &mut buffer).await;
    assert_eq!(first.as_deref(), Some("0"), "the current generation first");

    let report = crate::helpers::sync_source(&app.services, "stripe").await;
    assert!(report.is_success());
    let after_sync = next_event(&mut response, &mut buffer).await;
    assert_eq!(after_sync.as_deref(), Some("1"), "one event for the sync");

    // The server drains: the open stream must end by itself, or graceful shutdown would
    // wait for it until the drain deadline.
    app.shutdown.cancel();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        next_event(&mut response, &mut buffer).await
    })
    .await
    .expect("the stream ends within 5 s of the shutdown (the drain deadline is 8 s)");
    assert_eq!(end, None, "no event after the shutdown");
    app.stop().await;
}
