//! Security of the upstream client: credentials never follow a redirect to another
//! origin (two wiremock servers on loopback are two origins), same-origin redirects are
//! followed (bounded), and response bodies are capped.

use std::borrow::Cow;

use scorekeeper::secret::Secret;
use scorekeeper::sources::SourceError;
use scorekeeper::sources::http::{Auth, HttpClient};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;

const KEY: &str = "redirect-secret-Q7w2E9r4";

/// Answers with a redirect to the same path and query on `target`: what an API that
/// moved (or a hostile one) sends, credentials in the query string included.
struct RedirectTo {
    target: String,
    status: u16,
    /// Another path to send to (the request's own when `None`).
    path: Option<&'static str>,
}

impl wiremock::Respond for RedirectTo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query = request
            .url
            .query()
            .map(|query| format!("?{query}"))
            .unwrap_or_default();
        ResponseTemplate::new(self.status).insert_header(
            "location",
            format!(
                "{}{}{query}",
                self.target,
                self.path.unwrap_or(request.url.path())
            )
            .as_str(),
        )
    }
}

/// Every way a source authenticates, each carrying [`KEY`].
fn auth_styles() -> Vec<(&'static str, Auth)> {
    vec![
        ("bearer", Auth::Bearer(Secret::new(KEY))),
        (
            "basic",
            Auth::Basic {
                username: Secret::new("user"),
                password: Secret::new(KEY),
            },
        ),
        (
            "header",
            Auth::Header {
                name: Cow::Borrowed("X-Shopify-Access-Token"),
                value: Secret::new(KEY),
            },
        ),
        (
            "query",
            Auth::Query {
                name: Cow::Borrowed("api_token"),
                value: Secret::new(KEY),
            },
        ),
    ]
}

fn client() -> HttpClient {
    scorekeeper::tls::install_crypto_provider();
    HttpClient::new(fast_retries()).expect("client")
}

async fn get_text(client: &HttpClient, url: &str, auth: &Auth) -> Result<String, SourceError> {
    let url = reqwest::Url::parse(url).expect("url");
    client
        .get(&url, auth, &CancellationToken::new(), |_, body| {
            Ok(String::from_utf8_lossy(body).into_owned())
        })
        .await
}

/// True when `request` carries the key anywhere: headers, query or body.
fn carries_key(request: &Request) -> bool {
    let basic = base64_of(&format!("user:{KEY}"));
    request.url.as_str().contains(KEY)
        || String::from_utf8_lossy(&request.body).contains(KEY)
        || request.headers.values().any(|value| {
            let text = String::from_utf8_lossy(value.as_bytes());
            text.contains(KEY) || text.contains(&basic)
        })
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused_and_the_credential_stays_home() {
    let client = client();
    for (style, auth) in auth_styles() {
        for status in [301, 302, 307, 308] {
            let api = MockServer::start().await;
            let elsewhere = MockServer::start().await;
            Mock::given(method("GET"))
                .respond_with(RedirectTo {
                    target: elsewhere.uri(),
                    status,
                    path: None,
                })
                .expect(1)
                .mount(&api)
                .await;
            // Nothing may arrive here; the count is the assertion.
            Mock::given(method("GET"))
                .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
                .expect(0)
                .mount(&elsewhere)
                .await;

            let error = get_text(&client, &format!("{}/v1/charges?limit=1", api.uri()), &auth)
                .await
                .expect_err("a redirect to another origin fails");
            let SourceError::Redirect { detail } = &error else {
                panic!("{style} {status}: not a redirect error: {error:?}");
            };
            let message = error.to_string();
            assert!(
                detail.contains(&api.uri())
                    && detail.contains(&elsewhere.uri())
                    && detail.contains(&format!("HTTP {status}")),
                "{style} {status}: names both origins and the status: {message}"
            );
            assert!(
                !message.contains(KEY) && !message.contains("/v1/charges"),
                "{style} {status}: origins only, never a path or the key: {message}"
            );
            assert!(
                api.received_requests()
                    .await
                    .expect("recording")
                    .iter()
                    .all(carries_key),
                "{style} {status}: the configured API got the credential (the test's own check)"
            );
            assert!(
                elsewhere
                    .received_requests()
                    .await
                    .expect("recording")
                    .is_empty(),
                "{style} {status}: nothing reached the other origin"
            );
            api.verify().await;
            elsewhere.verify().await;
        }
    }
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed_with_the_credential() {
    let client = client();
    for (style, auth) in auth_styles() {
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/old"))
            // The same query on the new path: a query-string key comes along.
            .respond_with(RedirectTo {
                target: api.uri(),
                status: 301,
                path: Some("/v1/new"),
            })
            .expect(1)
            .mount(&api)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/new"))
            .respond_with(ResponseTemplate::new(200).set_body_string("moved here"))
            .expect(1)
            .mount(&api)
            .await;
        let body = get_text(&client, &format!("{}/v1/old", api.uri()), &auth)
            .await
            .unwrap_or_else(|error| panic!("{style}: {error}"));
        assert_eq!(body, "moved here", "{style}");
        let requests = api.received_requests().await.expect("recording");
        assert!(
            requests.iter().all(carries_key),
            "{style}: the redirected request authenticates too"
        );
        assert!(
            requests
                .iter()
                .all(|request| !request.headers.contains_key("referer")),
            "{style}: no Referer repeats the first URL"
        );
        api.verify().await;
    }
}

#[tokio::test]
async fn a_request_without_credentials_may_follow_a_redirect_elsewhere() {
    // A published spreadsheet's CSV link answers with a redirect to its file host.
    let sheet = MockServer::start().await;
    let files = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(RedirectTo {
            target: files.uri(),
            status: 307,
            path: Some("/export.csv"),
        })
        .expect(1)
        .mount(&sheet)
        .await;
    Mock::given(method("GET"))
        .and(path("/export.csv"))
        .respond_with(ResponseTemplate::new(200).set_body_string("id,total\n1,5\n"))
        .expect(1)
        .mount(&files)
        .await;
    let body = get_text(
        &client(),
        &format!("{}/pub?output=csv", sheet.uri()),
        &Auth::None,
    )
    .await
    .expect("followed");
    assert_eq!(body, "id,total\n1,5\n");
    sheet.verify().await;
    files.verify().await;
}

#[tokio::test]
async fn a_redirect_loop_within_the_origin_stops_after_five() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/again"))
        // The first request and five followed redirects; the sixth is refused.
        .expect(6)
        .mount(&api)
        .await;
    let error = get_text(
        &client(),
        &format!("{}/start", api.uri()),
        &Auth::Bearer(Secret::new(KEY)),
    )
    .await
    .expect_err("a loop fails");
    assert!(
        matches!(&error, SourceError::Redirect { detail } if detail.contains("more than 5 times")),
        "{error:?}"
    );
    api.verify().await;
}

#[tokio::test]
async fn a_source_whose_api_redirects_elsewhere_fails_naming_source_and_origins() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(RedirectTo {
            target: elsewhere.uri(),
            status: 302,
            path: None,
        })
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let services = services(settings(&stripe_config(&db.url, &api.uri(), ""), GOOD_KEY)).await;
    let report = sync_source(&services, "stripe").await;
    assert!(!report.is_success());
    let charges = report
        .streams
        .iter()
        .find(|stream| stream.stream == "charges")
        .expect("charges report");
    let error = charges.error.as_deref().expect("the stream failed");
    assert!(
        error.starts_with("redirect not followed: ")
            && error.contains(&api.uri())
            && error.contains(&elsewhere.uri())
            && error.contains("base_url"),
        "{error}"
    );
    assert!(!error.contains(GOOD_KEY), "{error}");
    elsewhere.verify().await;
}

#[tokio::test]
async fn an_oauth_token_endpoint_redirecting_elsewhere_gets_no_client_secret() {
    let db = TestDb::sqlite();
    let api = MockServer::start().await;
    let tokens = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(RedirectTo {
            target: elsewhere.uri(),
            status: 307,
            path: None,
        })
        .expect(1)
        .mount(&tokens)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let text = format!(
        r#"
[database]
url = "{}"

[scorecard]
name = "Token Bakery"
timezone = "UTC"

[sources.lms]
kind = "http"
schedule = "0 0 * * * *"
base_url = "{}/api/"
client_id = "the-client"
client_secret = "${{TEST_STRIPE_KEY}}"
refresh_token = "refresh-Zq81"
token_url = "{}/oauth/token"

[sources.lms.endpoints.items]
path = "items"
key = ["id"]
"#,
        db.url,
        api.uri(),
        tokens.uri()
    );
    let services = services(settings(&text, KEY)).await;
    let report = sync_source(&services, "lms").await;
    let error = report.streams[0].error.as_deref().expect("the sync failed");
    assert!(
        error.starts_with("redirect not followed: ")
            && error.contains(&tokens.uri())
            && error.contains(&elsewhere.uri()),
        "{error}"
    );
    assert!(
        !error.contains(KEY) && !error.contains("refresh-Zq81"),
        "{error}"
    );
    assert!(
        api.received_requests().await.expect("recording").is_empty(),
        "no API call without a token"
    );
    tokens.verify().await;
    elsewhere.verify().await;
}

#[tokio::test]
async fn a_body_over_the_cap_fails_without_retrying() {
    let client = client().with_max_body(1024);
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(1025)))
        // Not retried: the count is an assertion.
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/fits"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_string("y".repeat(1024)))
        .expect(1)
        .mount(&api)
        .await;
    let auth = Auth::Bearer(Secret::new(KEY));
    let body = get_text(&client, &format!("{}/fits?page=1", api.uri()), &auth)
        .await
        .expect("exactly the cap is read");
    assert_eq!(body.len(), 1024);
    let error = get_text(&client, &format!("{}/big", api.uri()), &auth)
        .await
        .expect_err("over the cap");
    assert!(
        matches!(error, SourceError::TooLarge { limit: 1024, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "response from {}/big is larger than 1 KiB, the most scorekeeper reads from an API; nothing of it was stored",
            api.uri()
        )
    );
    api.verify().await;
}

/// A server that answers every connection with a chunked body of `chunks` chunks of
/// 1 KiB and no `Content-Length`, so only counting what arrives can stop it.
async fn chunked_server(chunks: usize) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    let handle = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let chunk = format!("400\r\n{}\r\n", "z".repeat(1024));
                for _ in 0..chunks {
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    (format!("http://{address}"), handle)
}

#[tokio::test]
async fn a_chunked_body_without_length_is_cut_at_the_cap() {
    let client = client().with_max_body(64 * 1024);
    let auth = Auth::None;
    let (small, small_server) = chunked_server(64).await;
    let body = get_text(&client, &format!("{small}/page"), &auth)
        .await
        .expect("64 KiB fits");
    assert_eq!(body.len(), 64 * 1024);
    // 100 MiB announced by nobody: refused once 64 KiB have arrived.
    let (big, big_server) = chunked_server(100 * 1024).await;
    let error = get_text(&client, &format!("{big}/page"), &auth)
        .await
        .expect_err("over the cap");
    assert!(
        error
            .to_string()
            .starts_with(&format!("response from {big}/page is larger than 64 KiB")),
        "{error}"
    );
    small_server.abort();
    big_server.abort();
}
