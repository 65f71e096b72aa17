//! The HTTP layer every preset shares: one reqwest client (rustls, timeouts, a
//! User-Agent, redirects followed only within the request's own origin, so credentials
//! never travel to another host (requests without any may go elsewhere); bodies capped
//! at [`MAX_RESPONSE_BYTES`]), retries with
//! jittered exponential backoff on timeouts, connection errors, 5xx and broken or
//! truncated bodies, and 429 handling that honours `Retry-After` and backs off on its
//! own where the API sends none (Stripe, HubSpot and QuickBooks document none).
//!
//! Every wait here is bounded (attempt count and per-request timeout) and cancellable.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio_util::sync::CancellationToken;

use super::{PageRequest, SourceError, redact_url};
use crate::secret::Secret;

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials (a CSV file on disk or at a public address, `kind = "http"` with
    /// `auth = { kind = "none" }`).
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// HTTP Basic (RFC 7617): `Authorization: Basic base64(user:password)`.
    Basic {
        /// The user part: secret too, since some APIs put the key there (Freshdesk).
        username: Secret,
        /// The password part.
        password: Secret,
    },
    /// A key in a header of its own (Shopify's `X-Shopify-Access-Token`).
    Header {
        /// Header name.
        name: std::borrow::Cow<'static, str>,
        /// The key.
        value: Secret,
    },
    /// A key in the query string (Pipedrive's `api_token`, Moodle's `wstoken`). It is
    /// added to the URL that is sent only, never to the URL shown in logs and errors.
    Query {
        /// Parameter name.
        name: std::borrow::Cow<'static, str>,
        /// The key.
        value: Secret,
    },
}

impl Auth {
    /// The credentials as a server could echo them back in an error: as sent, Basic's
    /// `user:password` in base64, and a query key percent-encoded. Error messages built
    /// from an answer have these removed ([`SourceError::scrub`]).
    pub fn echoes(&self) -> Vec<String> {
        use base64::Engine as _;
        let forms = |value: &str| {
            let encoded: String = url_encoded(value);
            if encoded == value {
                vec![value.to_string()]
            } else {
                vec![value.to_string(), encoded]
            }
        };
        match self {
            Auth::None => Vec::new(),
            Auth::Bearer(token) => forms(token.expose()),
            Auth::Basic { username, password } => {
                let pair = format!("{}:{}", username.expose(), password.expose());
                let mut echoes = vec![base64::engine::general_purpose::STANDARD.encode(pair)];
                echoes.extend(forms(username.expose()));
                echoes.extend(forms(password.expose()));
                echoes
            }
            Auth::Header { value, .. } | Auth::Query { value, .. } => forms(value.expose()),
        }
    }
}

/// `value` as `application/x-www-form-urlencoded` writes it in a query string.
fn url_encoded(value: &str) -> String {
    Url::parse_with_params("http://x.invalid/", [("k", value)])
        .ok()
        .and_then(|url| url.query().map(|query| query[2..].to_string()))
        .unwrap_or_else(|| value.to_string())
}

impl SourceError {
    /// The same error with every one of `secrets` removed from its messages: what an API
    /// answered may quote the request's credentials (a 401 body that repeats the key).
    pub fn scrub(self, secrets: &[String]) -> Self {
        if secrets.is_empty() {
            return self;
        }
        let clean = |text: String| crate::secret::scrub(&text, secrets);
        match self {
            Self::Unauthorized { message } => Self::Unauthorized {
                message: clean(message),
            },
            Self::Transient { detail } => Self::Transient {
                detail: clean(detail),
            },
            Self::RetriesExhausted { attempts, last } => Self::RetriesExhausted {
                attempts,
                last: Box::new(last.scrub(secrets)),
            },
            Self::Http {
                status,
                url,
                message,
            } => Self::Http {
                status,
                url: clean(url),
                message: clean(message),
            },
            Self::Malformed { url, detail } => Self::Malformed {
                url: clean(url),
                detail: clean(detail),
            },
            Self::Redirect { detail } => Self::Redirect {
                detail: clean(detail),
            },
            Self::TooLarge { url, limit } => Self::TooLarge {
                url: clean(url),
                limit,
            },
            Self::RepeatedCursor { url } => Self::RepeatedCursor { url: clean(url) },
            other => other,
        }
    }
}

/// Retry and timeout settings of the shared client.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each attempt.
    pub base_delay: Duration,
    /// Longest delay between attempts (and longest `Retry-After` honoured).
    pub max_delay: Duration,
    /// Timeout of one attempt, body included.
    pub request_timeout: Duration,
    /// Timeout to establish a connection.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (1-based): exponential with full jitter
    /// over the upper half, so concurrent clients spread out but never retry at once.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exponential.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Why a response body could not be turned into a page.
#[derive(Debug)]
pub struct ParseError {
    /// True when the body ended early (a truncated transfer): worth another attempt.
    pub truncated: bool,
    /// True when the body is the API's own refusal of the credentials, sent with a 2xx
    /// status (Moodle answers `invalidtoken` with HTTP 200).
    pub unauthorized: bool,
    /// What was wrong, without the body itself.
    pub detail: String,
}

impl ParseError {
    /// Classifies a serde_json error.
    pub fn from_json(error: &serde_json::Error) -> Self {
        Self {
            truncated: error.is_eof(),
            unauthorized: false,
            detail: error.to_string(),
        }
    }

    /// Parses a JSON body into a preset's page type; an error names the key path where
    /// the body stopped matching (`data: invalid type: map, expected a sequence`), so an
    /// API that changed a field's type says which field.
    /// The path is found by parsing a failed body a second time, so pages that parse pay
    /// nothing for it.
    pub fn parse_json<'de, T: serde::Deserialize<'de>>(body: &'de [u8]) -> Result<T, Self> {
        serde_json::from_slice(body).map_err(|error| {
            let mut parsed = Self::from_json(&error);
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            if let Err(located) = serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
                let path = located.path().to_string();
                if path != "." {
                    parsed.detail = format!("at `{path}`: {}", parsed.detail);
                }
            }
            parsed
        })
    }

    /// A body that is not what the API documents.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self {
            truncated: false,
            unauthorized: false,
            detail: detail.into(),
        }
    }

    /// The API's refusal of the credentials inside a 2xx body, in its own words.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            truncated: false,
            unauthorized: true,
            detail: message.into(),
        }
    }
}

/// The shared client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    /// For requests that carry no credentials at all (a CSV `url`, `auth = none` without
    /// headers): follows redirects to other origins too, as a published spreadsheet's
    /// export link does to its file host.
    anonymous: reqwest::Client,
    policy: RetryPolicy,
    /// The largest body read ([`MAX_RESPONSE_BYTES`] unless a test says otherwise).
    max_body: usize,
    pacer: std::sync::Arc<Pacer>,
    /// Answers received per (host, status), for `/metrics`.
    answers: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<(String, u16), u64>>>,
}

/// Pauses learned from APIs' own budget headers, per host: the next request to a host
/// waits until its pause is over, so a long sync runs near the allowed rate instead of
/// running into 429s. See [`budget_pause`] for the headers read.
#[derive(Debug, Default)]
struct Pacer {
    not_before: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
}

impl Pacer {
    fn host(url: &Url) -> String {
        format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        )
    }

    /// Waits until requests to `url`'s host may go again; false when cancelled.
    async fn wait(&self, url: &Url, cancel: &CancellationToken) -> bool {
        let until = self
            .not_before
            .lock()
            .expect("the pacer lock is never held across a panic")
            .get(&Self::host(url))
            .copied();
        let Some(until) = until else {
            return true;
        };
        if until <= tokio::time::Instant::now() {
            return true;
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => false,
            () = tokio::time::sleep_until(until) => true,
        }
    }

    /// Notes the pause a response's headers ask for.
    fn learn(&self, url: &Url, headers: &HeaderMap) {
        if let Some(pause) = budget_pause(headers, chrono::Utc::now().timestamp()) {
            let until = tokio::time::Instant::now() + pause;
            tracing::debug!(host = %Self::host(url), pause_ms = pause.as_millis() as u64, "Pacing requests from the API's budget headers");
            let mut map = self
                .not_before
                .lock()
                .expect("the pacer lock is never held across a panic");
            let entry = map.entry(Self::host(url)).or_insert(until);
            *entry = (*entry).max(until);
        }
    }
}

/// The longest pause budget headers can ask for (a broken header must not stall a sync).
const MAX_BUDGET_PAUSE: Duration = Duration::from_secs(120);

/// How long to hold the next request to the same API, read from the API's own budget
/// headers on a successful response; `None` while there is room. `now` is unix seconds.
///
/// - Shopify, `X-Shopify-Shop-Api-Call-Limit: used/size`: a leaky bucket that drains at
///   size/20 requests per second on every plan (40 and 2/s on Standard, 80 and 4/s on
///   Advanced, 400 and 20/s on Plus:
///   <https://shopify.dev/docs/api/admin-rest/usage/rate-limits>). The next request waits
///   until it fits below the bucket minus an eighth kept free for other apps of the shop.
/// - `X-RateLimit-Remaining`/`RateLimit-Remaining` with `X-RateLimit-Reset`/`RateLimit-Reset`
///   (TalentLMS, Zendesk and the IETF RateLimit draft): when nothing remains, wait for
///   the reset, given as seconds from now or as a unix time.
/// - HubSpot, `X-HubSpot-RateLimit-Remaining` with `X-HubSpot-RateLimit-Interval-Milliseconds`:
///   when nothing remains, wait one interval.
/// - Xero, `X-MinLimit-Remaining` (60 calls in a rolling minute per organisation): when
///   nothing remains, wait a minute.
pub fn budget_pause(headers: &HeaderMap, now: i64) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let number = |name: &str| text(name).and_then(|value| value.trim().parse::<f64>().ok());
    let pause = if let Some(limit) = text("x-shopify-shop-api-call-limit") {
        let (used, size) = limit.split_once('/')?;
        let used: f64 = used.trim().parse().ok()?;
        let size: f64 = size.trim().parse().ok()?;
        if size <= 0.0 {
            return None;
        }
        let leak_per_second = size / 20.0;
        let ceiling = size - (size / 8.0).max(1.0);
        let excess = used + 1.0 - ceiling;
        (excess > 0.0).then(|| Duration::from_secs_f64(excess / leak_per_second))
    } else if let Some(remaining) =
        number("x-ratelimit-remaining").or_else(|| number("ratelimit-remaining"))
    {
        if remaining > 0.0 {
            return None;
        }
        let reset = number("x-ratelimit-reset").or_else(|| number("ratelimit-reset"))?;
        // Values this large are unix times, not delays.
        let seconds = if reset > 1e9 {
            reset - now as f64
        } else {
            reset
        };
        Some(Duration::from_secs_f64(seconds.max(0.0)))
    } else if let Some(remaining) = number("x-hubspot-ratelimit-remaining") {
        if remaining > 0.0 {
            return None;
        }
        let interval = number("x-hubspot-ratelimit-interval-milliseconds").unwrap_or(1000.0);
        Some(Duration::from_secs_f64(interval.max(0.0) / 1000.0))
    } else if let Some(remaining) = number("x-minlimit-remaining") {
        (remaining <= 0.0).then_some(Duration::from_secs(60))
    } else {
        None
    };
    pause
        .filter(|pause| !pause.is_zero())
        .map(|pause| pause.min(MAX_BUDGET_PAUSE))
}

/// The largest response body read from an API (and from an OAuth2 token endpoint):
/// 64 MiB, far above any documented page (the largest, 1,000 Zendesk tickets or
/// QuickBooks invoices, are a few MB), so a broken or hostile API cannot make the daemon
/// buffer gigabytes. A bigger body fails the request with [`SourceError::TooLarge`]; it
/// is not retried and nothing of it is stored. Local `file://` CSV files are not capped.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Redirects followed per request, all within the request's origin.
pub const MAX_REDIRECTS: usize = 5;

/// `64 MiB`, `1 KiB`, or `1500 bytes`: a byte count as a person reads it.
pub fn byte_size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// A redirect the client refused to follow (see [`redirect_policy`]).
#[derive(Debug)]
struct RedirectRefused(String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// The redirect policy of the sources' client: follow a redirect only to the origin
/// (scheme, host and port) of the request the configuration produced, at most
/// [`MAX_REDIRECTS`] times. Credentials ride in the `Authorization` header (which reqwest
/// strips across hosts), but also in custom headers (`X-Shopify-Access-Token`) and in the
/// query string (`api_token`, `wstoken`), which it cannot know about; so another origin
/// is refused outright, before anything is sent there, and the error names both origins
/// (never a path or query, which may hold a key).
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        let from = first.origin().ascii_serialization();
        let to = attempt.url().origin().ascii_serialization();
        if from != to || !attempt.url().origin().is_tuple() {
            let detail = format!(
                "{from} answered HTTP {} with a redirect to {to}, another origin; credentials are sent only to the configured address. If the API moved, set the source's base_url (or url) to the new address",
                attempt.status().as_u16()
            );
            return attempt.error(RedirectRefused(detail));
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            let detail = format!("{from} redirected more than {MAX_REDIRECTS} times within itself");
            return attempt.error(RedirectRefused(detail));
        }
        attempt.follow()
    })
}

/// Why a body could not be read in full.
enum BodyError {
    /// Larger than the cap (by its `Content-Length` or by what arrived).
    TooLarge,
    /// The transfer broke off.
    Broken(reqwest::Error),
}

/// Reads `response`'s body, refusing more than `limit` bytes: at once when the
/// `Content-Length` says so, otherwise as soon as the chunks received pass it.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let announced = response.content_length();
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    // Trust the announced length for the first allocation only (it is within the cap).
    let mut body = Vec::with_capacity(announced.map_or(0, |length| length as usize));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Broken)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A token endpoint answers with a few hundred bytes; this is plenty.
const MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;

/// Reads an OAuth2 token endpoint's answer (capped at 1 MiB); an answer that is too
/// large or broken off reads as an error naming the endpoint.
pub async fn read_token_response(
    response: reqwest::Response,
    endpoint: &str,
) -> Result<Vec<u8>, SourceError> {
    read_capped(response, MAX_TOKEN_RESPONSE_BYTES)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => SourceError::TooLarge {
                url: endpoint.to_string(),
                limit: MAX_TOKEN_RESPONSE_BYTES,
            },
            BodyError::Broken(error) => SourceError::Transient {
                detail: format!(
                    "token endpoint {endpoint}: answer broken off: {}",
                    describe_reqwest_error(&error)
                ),
            },
        })
}

/// What one attempt ended with, before the retry decision.
enum Attempt<T> {
    Done(T),
    Retry {
        wait: Option<Duration>,
        error: SourceError,
    },
    Fail(SourceError),
}

impl HttpClient {
    /// Builds the client.
    pub fn new(policy: RetryPolicy) -> Result<Self, SourceError> {
        crate::tls::install_crypto_provider();
        let build = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .user_agent(concat!("scorekeeper/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(policy.connect_timeout)
                .timeout(policy.request_timeout)
                .redirect(redirects)
                // The Referer of a redirected request would repeat the URL, query key and all.
                .referer(false)
                .build()
                .map_err(|error| SourceError::Transient {
                    detail: format!("cannot build the HTTP client: {error}"),
                })
        };
        Ok(Self {
            client: build(redirect_policy())?,
            anonymous: build(reqwest::redirect::Policy::limited(MAX_REDIRECTS))?,
            policy,
            max_body: MAX_RESPONSE_BYTES,
            pacer: std::sync::Arc::default(),
            answers: std::sync::Arc::default(),
        })
    }

    /// The same client with another body cap than [`MAX_RESPONSE_BYTES`] (tests use a
    /// small one).
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Answers received since start, per (upstream host, HTTP status).
    pub fn answers(&self) -> Vec<((String, u16), u64)> {
        self.answers
            .lock()
            .expect("never poisoned: no panics while held")
            .iter()
            .map(|(key, count)| (key.clone(), *count))
            .collect()
    }

    /// The underlying reqwest client, for the few calls that are not pages (OAuth2
    /// token refreshes); they get the same timeouts, TLS and redirect policy.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// GETs `url` and parses the body with `parse`; see [`HttpClient::send`].
    pub async fn get<T>(
        &self,
        url: &Url,
        auth: &Auth,
        cancel: &CancellationToken,
        parse: impl Fn(&HeaderMap, &[u8]) -> Result<T, ParseError>,
    ) -> Result<T, SourceError> {
        let request = PageRequest::get(url.clone(), String::new());
        self.send(&request, auth, cancel, parse).await
    }

    /// Sends `request` (a GET, or a POST of its JSON body) and parses the body with
    /// `parse`, retrying what is worth retrying. Returns `Cancelled` promptly when
    /// `cancel` fires during a wait.
    ///
    /// A `file://` URL (a CSV source's local file) is read from disk instead, once:
    /// waiting does not make a missing file appear, so there are no retries.
    pub async fn send<T>(
        &self,
        request: &PageRequest,
        auth: &Auth,
        cancel: &CancellationToken,
        parse: impl Fn(&HeaderMap, &[u8]) -> Result<T, ParseError>,
    ) -> Result<T, SourceError> {
        let url = &request.url;
        if url.scheme() == "file" {
            return tokio::select! {
                biased;
                outcome = read_file(url, &parse) => outcome,
                () = grace_after(cancel) => Err(SourceError::Cancelled),
            };
        }
        let mut attempt = 1;
        loop {
            if !self.pacer.wait(url, cancel).await {
                return Err(SourceError::Cancelled);
            }
            // A request in flight at shutdown gets a short grace so its page can commit.
            let outcome = tokio::select! {
                biased;
                outcome = self.attempt(request, auth, &parse) => outcome,
                () = grace_after(cancel) => return Err(SourceError::Cancelled),
            };
            // Messages quote the API's answer, which may echo the credentials.
            let (wait, error) = match outcome {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error.scrub(&auth.echoes())),
                Attempt::Retry { wait, error } => (wait, error.scrub(&auth.echoes())),
            };
            if attempt >= self.policy.max_attempts {
                return Err(SourceError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let delay = wait.map_or_else(
                || self.policy.backoff(attempt),
                |wait| wait.min(self.policy.max_delay),
            );
            tracing::warn!(url = %redact_url(url), attempt, delay_ms = delay.as_millis() as u64, error = %error, "Request failed, retrying");
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(SourceError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
            attempt += 1;
        }
    }

    async fn attempt<T>(
        &self,
        page: &PageRequest,
        auth: &Auth,
        parse: &impl Fn(&HeaderMap, &[u8]) -> Result<T, ParseError>,
    ) -> Attempt<T> {
        let url = &page.url;
        // A query-string key goes on the URL that is sent only; `url`, used in errors
        // and logs, never carries it.
        let mut sent_url = url.clone();
        if let Auth::Query { name, value } = auth {
            sent_url
                .query_pairs_mut()
                .append_pair(name.as_ref(), value.expose());
        }
        let anonymous = matches!(auth, Auth::None)
            && page.headers.is_empty()
            && url.username().is_empty()
            && url.password().is_none();
        let client = if anonymous {
            &self.anonymous
        } else {
            &self.client
        };
        let mut request = match &page.body {
            Some(body) => client
                .post(sent_url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone()),
            None => client.get(sent_url),
        };
        for (name, value) in &page.headers {
            request = request.header(name.as_ref(), value);
        }
        match auth {
            Auth::Bearer(token) => {
                let mut value = match HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
                    Ok(value) => value,
                    Err(_) => {
                        return Attempt::Fail(SourceError::Unauthorized {
                            message: "the token contains characters not allowed in an HTTP header"
                                .into(),
                        });
                    }
                };
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            // reqwest marks the header it builds as sensitive, so it is never logged.
            Auth::Basic { username, password } => {
                request = request.basic_auth(username.expose(), Some(password.expose()))
            }
            Auth::Header { name, value } => {
                let Ok(mut value) = HeaderValue::from_str(value.expose()) else {
                    return Attempt::Fail(SourceError::Unauthorized {
                        message: format!(
                            "the {name} key contains characters not allowed in an HTTP header"
                        ),
                    });
                };
                value.set_sensitive(true);
                request = request.header(name.as_ref(), value);
            }
            // Added to the URL above; errors and logs show the URL through `redact_url`.
            Auth::Query { .. } | Auth::None => {}
        }
        let response = match request.send().await {
            Ok(response) => response,
            // Another origin, or a loop: asking again gets the same answer.
            Err(error) if error.is_redirect() => {
                let detail = std::error::Error::source(&error)
                    .map_or_else(|| describe_reqwest_error(&error), ToString::to_string);
                return Attempt::Fail(SourceError::Redirect { detail });
            }
            Err(error) => {
                let error = SourceError::Transient {
                    detail: format!(
                        "request to {} failed: {}",
                        redact_url(url),
                        describe_reqwest_error(&error)
                    ),
                };
                return Attempt::Retry { wait: None, error };
            }
        };
        let status = response.status();
        *self
            .answers
            .lock()
            .expect("never poisoned: no panics while held")
            .entry((
                url.host_str().unwrap_or_default().to_string(),
                status.as_u16(),
            ))
            .or_default() += 1;
        let headers = response.headers().clone();
        // A 429's Retry-After governs the retry; budgets are read from answers that count.
        if status.is_success() {
            self.pacer.learn(url, &headers);
        }
        let body = match read_capped(response, self.max_body).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return Attempt::Fail(SourceError::TooLarge {
                    url: redact_url(url),
                    limit: self.max_body,
                });
            }
            Err(BodyError::Broken(error)) => {
                let detail = format!(
                    "response body from {} broken off: {}",
                    redact_url(url),
                    describe_reqwest_error(&error)
                );
                return Attempt::Retry {
                    wait: None,
                    error: SourceError::Transient { detail },
                };
            }
        };
        if status.is_success() {
            return match parse(&headers, &body) {
                Ok(value) => Attempt::Done(value),
                Err(error) if error.unauthorized => Attempt::Fail(SourceError::Unauthorized {
                    message: error.detail,
                }),
                Err(error) if error.truncated => Attempt::Retry {
                    wait: None,
                    error: SourceError::Malformed {
                        url: redact_url(url),
                        detail: format!("truncated body: {}", error.detail),
                    },
                },
                Err(error) => Attempt::Fail(SourceError::Malformed {
                    url: redact_url(url),
                    detail: with_content_type(&headers, error.detail),
                }),
            };
        }
        classify_failure(url, status, &headers, &body)
    }
}

/// Names a 2xx answer's content type in a parse error when it is a markup page (a
/// proxy's login page, an HTML or XML error page), so the user sees why the body did not
/// parse. Other types are left alone: a CSV source is served as `text/csv` on purpose.
fn with_content_type(headers: &HeaderMap, detail: String) -> String {
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type.contains("html") || content_type.contains("xml") {
        format!("the answer is {content_type}, not JSON: {detail}")
    } else {
        detail
    }
}

/// Reads a `file://` URL from disk and parses it like a response body (without headers).
/// Errors name the path.
async fn read_file<T>(
    url: &Url,
    parse: &impl Fn(&HeaderMap, &[u8]) -> Result<T, ParseError>,
) -> Result<T, SourceError> {
    let path = url.to_file_path().map_err(|()| SourceError::File {
        path: url.to_string(),
        detail: "not a local file path".into(),
    })?;
    let shown = path.display().to_string();
    let body = tokio::fs::read(&path)
        .await
        .map_err(|error| SourceError::File {
            path: shown.clone(),
            detail: error.to_string(),
        })?;
    parse(&HeaderMap::new(), &body).map_err(|error| {
        if error.unauthorized {
            SourceError::Unauthorized {
                message: error.detail,
            }
        } else {
            SourceError::Malformed {
                url: shown,
                detail: error.detail,
            }
        }
    })
}

/// How long a request in flight may continue after shutdown was requested.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(5);

/// Completes [`IN_FLIGHT_GRACE`] after `cancel` fires.
async fn grace_after(cancel: &CancellationToken) {
    cancel.cancelled().await;
    tokio::time::sleep(IN_FLIGHT_GRACE).await;
}

/// Turns a non-2xx response into a retry or a failure.
fn classify_failure<T>(
    url: &Url,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Attempt<T> {
    let message = api_error_message(body);
    // Stripe says explicitly whether a retry can succeed:
    // https://docs.stripe.com/error-low-level#idempotency ("Stripe-Should-Retry").
    let should_retry = headers
        .get("stripe-should-retry")
        .and_then(|value| value.to_str().ok());
    if status == StatusCode::TOO_MANY_REQUESTS {
        let wait = retry_after(headers);
        return Attempt::Retry {
            wait,
            error: SourceError::RateLimited {
                retry_after: wait,
                url: redact_url(url),
                message,
            },
        };
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Attempt::Fail(SourceError::Unauthorized {
            message: format!("HTTP {}: {message}", status.as_u16()),
        });
    }
    let error = SourceError::Http {
        status: status.as_u16(),
        url: redact_url(url),
        message,
    };
    match should_retry {
        Some("false") => Attempt::Fail(error),
        Some("true") => Attempt::Retry {
            wait: retry_after(headers),
            error,
        },
        _ if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT => Attempt::Retry {
            wait: retry_after(headers),
            error,
        },
        _ => Attempt::Fail(error),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let delta = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// The API's own error message from a JSON error body (Stripe: `error.message`), or a
/// short excerpt of the body; never more than 300 characters.
pub fn api_error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|value| {
        if let Some(fault) = intuit_fault(value) {
            return Some(fault);
        }
        // Stripe: error.message; Zendesk: error; Shopify: errors; OAuth: error_description;
        // Xero: Message (validation) or Detail (401/403 problem details).
        let candidates = [
            value.pointer("/error/message"),
            value.pointer("/message"),
            value.pointer("/error_description"),
            value.pointer("/error"),
            value.pointer("/errors"),
            value.pointer("/Message"),
            value.pointer("/Detail"),
        ];
        candidates
            .into_iter()
            .flatten()
            .find_map(|found| found.as_str().map(str::to_string))
    });
    let text = message.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let text = if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text
    };
    text.chars().take(300).collect()
}

/// QuickBooks' fault body, `{"Fault":{"Error":[{"Message","Detail","code"}],"type"}}`
/// (spelled in lower case on 401s), as `Message: Detail (code N)`:
/// <https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes>
pub fn intuit_fault(value: &serde_json::Value) -> Option<String> {
    let fault = value.get("Fault").or_else(|| value.get("fault"))?;
    let error = fault
        .get("Error")
        .or_else(|| fault.get("error"))?
        .as_array()?
        .first()?;
    let text = |upper: &str, lower: &str| {
        error
            .get(upper)
            .or_else(|| error.get(lower))
            .and_then(serde_json::Value::as_str)
            .filter(|text| !text.is_empty())
    };
    let mut message = match (text("Message", "message"), text("Detail", "detail")) {
        (Some(message), Some(detail)) if message != detail => format!("{message}: {detail}"),
        (Some(message), _) => message.to_string(),
        (None, Some(detail)) => detail.to_string(),
        (None, None) => "QuickBooks reported a fault without a message".to_string(),
    };
    if let Some(code) = text("code", "code") {
        message.push_str(&format!(" (code {code})"));
    }
    Some(message)
}

/// A reqwest error without its URL (we add a redacted one where useful).
pub fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "body error"
    } else {
        "request failed"
    };
    let mut detail = kind.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        for attempt in 1..=10 {
            let ceiling =
                (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(Duration::from_secs(2));
            for _ in 0..50 {
                let delay = policy.backoff(attempt);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "attempt {attempt}: {delay:?} not in [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn shopify_bucket_pauses_only_near_the_top() {
        let pause = |limit| budget_pause(&headers(&[("x-shopify-shop-api-call-limit", limit)]), 0);
        assert_eq!(pause("1/40"), None);
        assert_eq!(pause("33/40"), None, "34 fits below 35");
        // 36 used: the next one makes 37, two over the ceiling of 35, at 2 per second.
        assert_eq!(pause("36/40"), Some(Duration::from_secs(1)));
        assert_eq!(pause("40/40"), Some(Duration::from_secs_f64(3.0)));
        // Plus: 400 at 20 per second; ceiling 350.
        assert_eq!(pause("360/400"), Some(Duration::from_secs_f64(11.0 / 20.0)));
        assert_eq!(pause("garbage"), None);
    }

    #[test]
    fn remaining_and_reset_headers() {
        let now = 1_800_000_000;
        assert_eq!(
            budget_pause(
                &headers(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "20")]),
                now
            ),
            None
        );
        assert_eq!(
            budget_pause(
                &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "20")]),
                now
            ),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            budget_pause(
                &headers(&[
                    ("ratelimit-remaining", "0"),
                    ("ratelimit-reset", "1800000007")
                ]),
                now
            ),
            Some(Duration::from_secs(7)),
            "a unix time"
        );
        assert_eq!(
            budget_pause(
                &headers(&[
                    ("x-hubspot-ratelimit-remaining", "0"),
                    ("x-hubspot-ratelimit-interval-milliseconds", "10000")
                ]),
                now
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            budget_pause(&headers(&[("x-minlimit-remaining", "0")]), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            budget_pause(
                &headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "99999")
                ]),
                now
            ),
            Some(MAX_BUDGET_PAUSE),
            "capped"
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn errors_are_scrubbed_of_the_credentials_as_they_travel() {
        let auth = Auth::Basic {
            username: Secret::new("user-1234"),
            password: Secret::new("pass/word+1"),
        };
        let error = SourceError::Http {
            status: 400,
            url: "https://api.example.com/v1?key=pass%2Fword%2B1".into(),
            message: "bad: Authorization: Basic dXNlci0xMjM0OnBhc3Mvd29yZCsx user-1234 pass/word+1"
                .into(),
        };
        let error = SourceError::RetriesExhausted {
            attempts: 2,
            last: Box::new(error),
        }
        .scrub(&auth.echoes());
        assert_eq!(
            error.to_string(),
            "gave up after 2 attempts: HTTP 400 from https://api.example.com/v1?key=***: bad: Authorization: Basic *** *** ***"
        );
    }

    #[test]
    fn api_error_messages() {
        assert_eq!(
            api_error_message(
                br#"{"error":{"message":"Invalid API Key provided: sk_test_****1234"}}"#
            ),
            "Invalid API Key provided: sk_test_****1234"
        );
        assert_eq!(api_error_message(b"Bad Gateway"), "Bad Gateway");
        assert_eq!(
            api_error_message(
                br#"{"Fault":{"Error":[{"Message":"Invalid Reference Id","Detail":"Invalid Reference Id : Something you're using has been deleted","code":"2500","element":""}],"type":"ValidationFault"},"time":"2026-03-01T10:00:00.000-08:00"}"#
            ),
            "Invalid Reference Id: Invalid Reference Id : Something you're using has been deleted (code 2500)"
        );
        assert_eq!(
            api_error_message(
                br#"{"warnings":null,"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired","code":"3200","element":null}],"type":"AUTHENTICATION"}}"#
            ),
            "message=AuthenticationFailed; errorCode=003200; statusCode=401: Token expired (code 3200)"
        );
        assert_eq!(
            api_error_message(
                br#"{"Type":null,"Title":"Unauthorized","Status":401,"Detail":"AuthenticationUnsuccessful","Instance":"5c4e6b3a"}"#
            ),
            "AuthenticationUnsuccessful"
        );
        assert_eq!(
            api_error_message(
                br#"{"ErrorNumber":10,"Type":"ValidationException","Message":"A validation exception occurred"}"#
            ),
            "A validation exception occurred"
        );
        assert_eq!(api_error_message(b""), "(empty body)");
    }
}
