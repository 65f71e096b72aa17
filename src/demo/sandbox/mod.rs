//! The demo's sandbox: one loopback HTTP server that serves the same small Lyon bakery
//! through every API the demo configuration reads, each as the real API behaves.
//!
//! Each API is one child module beside the others (`stripe`, `zendesk`, `shopify`,
//! `freshdesk`, `pipedrive`, `hubspot`, `quickbooks`, `xero`, `moodle`, `talentlms`), mounted
//! under `/{kind}` (so a source's `base_url` is `http://127.0.0.1:PORT/{kind}`, see
//! [`base_url`]). A module owns its data (generated from the shared [`Scenario`]: the
//! bakery's last 12 months before `now`, from one seed), its endpoints, its authentication
//! check and its error shapes; it registers itself with one line in [`APIS`]. Adding an API
//! later is one new module and one line there. HubSpot, QuickBooks and Xero read one set of
//! business-to-business books ([`books`]: deals, the invoices of the won ones, their
//! payments) so they agree; Moodle and TalentLMS share the bakery's team ([`staff`]).
//!
//! This root holds what the modules share: the scenario (calendar, seasonality, the team's
//! strain over the year), people's names (and, in `staff`, the bakery's team, which the
//! training APIs share), time formatting, base64 (Basic authentication and opaque cursors),
//! constant-time comparison, and JSON responses.
//! Nothing here reads a clock (`now` comes in) or spawns a task: [`serve`] runs on the
//! caller's task until its token is cancelled.

pub mod books;
// The APIs' request readers return the error answer itself (`Result<_, Response>`): it is
// built once per refused request, so its size does not matter.
#[allow(clippy::result_large_err)]
pub mod freshdesk;
#[allow(clippy::result_large_err)]
pub mod hubspot;
pub mod moodle;
#[allow(clippy::result_large_err)]
pub mod pipedrive;
#[allow(clippy::result_large_err)]
pub mod quickbooks;
#[allow(clippy::result_large_err)]
pub mod shopify;
pub mod staff;
pub mod stripe;
#[allow(clippy::result_large_err)]
pub mod talentlms;
#[cfg(test)]
mod tests;
#[allow(clippy::result_large_err)]
pub mod xero;
#[allow(clippy::result_large_err)]
pub mod zendesk;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, TimeZone, Utc, Weekday};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// The Stripe key the sandbox accepts (also in `config/demo.toml`; not a real key).
pub const STRIPE_API_KEY: &str = "sk_test_scorekeeper_demo";
/// The Zendesk agent and API token the sandbox accepts (also in `config/demo.toml`).
pub const ZENDESK_EMAIL: &str = "owner@demo-bakery.example";
/// The Zendesk API token the sandbox accepts.
pub const ZENDESK_API_TOKEN: &str = "zd_scorekeeper_demo_token";
/// The Shopify Admin API access token the sandbox accepts.
pub const SHOPIFY_ACCESS_TOKEN: &str = "shpat_scorekeeper_demo";
/// The Freshdesk API key the sandbox accepts.
pub const FRESHDESK_API_KEY: &str = "fd_scorekeeper_demo_key";
/// The Pipedrive API token the sandbox accepts.
pub const PIPEDRIVE_API_TOKEN: &str = "pd_scorekeeper_demo_token";
/// The Moodle web service token the sandbox accepts (32 hex digits, like Moodle's own).
pub const MOODLE_TOKEN: &str = "de70000000000000000000000000cafe";
/// The TalentLMS API key the sandbox accepts.
pub const TALENTLMS_API_KEY: &str = "tl_scorekeeper_demo_key";
/// The HubSpot private app access token the sandbox accepts.
pub const HUBSPOT_ACCESS_TOKEN: &str = "pat-eu1-scorekeeper-demo";
/// The QuickBooks Online access token the sandbox accepts (no OAuth2 refresh in the demo).
pub const QUICKBOOKS_ACCESS_TOKEN: &str = "qbo_scorekeeper_demo_token";
/// The QuickBooks company (realm) id of the bakery's books.
pub const QUICKBOOKS_REALM_ID: &str = "9341453174460001";
/// The Xero access token the sandbox accepts (no OAuth2 refresh in the demo).
pub const XERO_ACCESS_TOKEN: &str = "xero_scorekeeper_demo_token";
/// The Xero tenant (organisation connection) id of the bakery's wholesale arm.
pub const XERO_TENANT_ID: &str = "6f4c2a1e-8d3b-4e5f-9a7c-0b1d2e3f4a5b";

/// One sandboxed API: the source `kind` it imitates (also its path prefix) and how its
/// router is built for a scenario.
pub struct Api {
    /// The preset kind, as in `kind = "..."`; the API is mounted under `/{kind}`.
    pub kind: &'static str,
    /// Generates the API's data for the scenario and returns its routes.
    pub router: fn(&Scenario) -> Router,
}

/// Every API the sandbox serves.
pub const APIS: [Api; 10] = [
    Api {
        kind: "stripe",
        router: stripe_router,
    },
    Api {
        kind: "zendesk",
        router: zendesk::router,
    },
    Api {
        kind: "shopify",
        router: shopify::router,
    },
    Api {
        kind: "freshdesk",
        router: freshdesk::router,
    },
    Api {
        kind: "pipedrive",
        router: pipedrive::router,
    },
    Api {
        kind: "moodle",
        router: moodle::router,
    },
    Api {
        kind: "talentlms",
        router: talentlms::router,
    },
    Api {
        kind: "hubspot",
        router: hubspot::router,
    },
    Api {
        kind: "quickbooks",
        router: quickbooks::router,
    },
    Api {
        kind: "xero",
        router: xero::router,
    },
];

fn stripe_router(scenario: &Scenario) -> Router {
    let data = stripe::StripeData::bakery(scenario.now_utc(), scenario.seed);
    stripe::router(Arc::new(RwLock::new(data)), STRIPE_API_KEY.to_string())
}

/// True when the sandbox serves sources of `kind`.
pub fn serves(kind: &str) -> bool {
    APIS.iter().any(|api| api.kind == kind)
}

/// The `base_url` a source of `kind` uses against the sandbox at `address`.
pub fn base_url(address: SocketAddr, kind: &str) -> String {
    format!("http://{address}/{kind}")
}

/// Every API's routes, each under `/{kind}`, over the bakery's year before `now`.
///
/// Generating the data takes about a second in a debug build (mostly Stripe's).
pub fn router(now: DateTime<Utc>, seed: u64) -> Router {
    let scenario = Scenario::new(now, seed);
    APIS.iter().fold(Router::new(), |router, api| {
        router.nest(&format!("/{}", api.kind), (api.router)(&scenario))
    })
}

/// Serves `router` on `listener` until `shutdown` is cancelled (graceful: requests in flight
/// finish, then the future returns).
///
/// # Errors
///
/// None in practice (axum retries failed accepts); the `io::Result` is axum's signature.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// The bakery's year as every API sees it: the calendar, the seed, and the curves that make
/// the numbers move (seasonal sales, a support team under strain).
pub struct Scenario {
    /// The end of the year (unix seconds); nothing happens after it.
    pub now: i64,
    /// The start of the year: `now` minus 365 days.
    pub start: i64,
    /// The seed every generator derives its own from.
    pub seed: u64,
}

impl Scenario {
    /// The 365 days before `now`, seeded with `seed`.
    pub fn new(now: DateTime<Utc>, seed: u64) -> Scenario {
        let now = now.timestamp();
        Scenario {
            now,
            start: now - 365 * DAY,
            seed,
        }
    }

    fn now_utc(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.now, 0).unwrap_or_default()
    }

    /// A generator of its own for one API (`salt` differs per API), so adding an API or
    /// changing one never changes another's data.
    pub fn rng(&self, salt: u64) -> fastrand::Rng {
        fastrand::Rng::with_seed(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt)
    }

    /// The midnight (UTC) of every day of the year, oldest first.
    pub fn days(&self) -> impl Iterator<Item = i64> + use<> {
        let first = self.start - self.start.rem_euclid(DAY) + DAY;
        let last = self.now - self.now.rem_euclid(DAY);
        (0..)
            .map(move |day| first + day * DAY)
            .take_while(move |day| *day <= last)
    }

    /// How busy the bakery is on the day of `time`, about 1 on an ordinary weekday:
    /// Christmas and Epiphany (galettes) peak, August is quiet, Saturdays are busy.
    pub fn seasonality(&self, time: i64) -> f64 {
        let date = DateTime::from_timestamp(time, 0).unwrap_or_default();
        let month = match date.month() {
            12 => 1.5,
            1 | 11 => 1.1,
            7 => 0.8,
            8 => 0.65,
            5 | 6 => 0.95,
            _ => 1.0,
        };
        let weekday = match date.weekday() {
            Weekday::Sat => 1.4,
            Weekday::Sun => 1.15,
            Weekday::Mon => 0.7,
            _ => 1.0,
        };
        month * weekday
    }

    /// How stretched the team is at `time`, 0 (calm) to about 1.3: a slow drift up over the
    /// year, and a staff shortage around 70 days before `now`. Reply and resolution times
    /// grow with it, satisfaction drops, more tickets are re-opened, training lags.
    pub fn strain(&self, time: i64) -> f64 {
        let days_ago = (self.now - time) as f64 / DAY as f64;
        let shortage = (-((days_ago - 70.0) / 22.0).powi(2)).exp();
        let drift = 0.35 * (1.0 - days_ago / 365.0).clamp(0.0, 1.0);
        shortage + drift
    }
}

/// A customer or contact: name and email.
pub struct Person {
    /// First name.
    pub first: &'static str,
    /// Last name.
    pub last: &'static str,
    /// Email address (on a reserved example domain).
    pub email: String,
}

const FIRST_NAMES: [&str; 24] = [
    "Camille", "Louis", "Chloe", "Gabriel", "Lea", "Arthur", "Manon", "Jules", "Ines", "Hugo",
    "Sarah", "Lucas", "Emma", "Nathan", "Juliette", "Paul", "Alice", "Thomas", "Zoe", "Antoine",
    "Clara", "Maxime", "Lina", "Victor",
];
const LAST_NAMES: [&str; 20] = [
    "Martin", "Bernard", "Dubois", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
    "Simon", "Laurent", "Michel", "Garcia", "David", "Roux", "Vincent", "Fournier", "Morel",
    "Girard", "Mercier",
];

impl Person {
    /// A random person; `n` keeps emails apart.
    pub fn generate(rng: &mut fastrand::Rng, n: usize) -> Person {
        let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.usize(..LAST_NAMES.len())];
        let email = format!(
            "{}.{}{n}@example.com",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase()
        );
        Person { first, last, email }
    }
}

/// A draw from a Poisson distribution with the given mean (Knuth's method; small means).
pub fn poisson(rng: &mut fastrand::Rng, mean: f64) -> u32 {
    let limit = (-mean).exp();
    let mut product = rng.f64();
    let mut count = 0;
    while product > limit && count < 1_000 {
        product *= rng.f64();
        count += 1;
    }
    count
}

/// A time of day in the bakery's opening hours (7:00 to 19:00 UTC) on the day starting at
/// `midnight`.
pub fn during_opening_hours(rng: &mut fastrand::Rng, midnight: i64) -> i64 {
    midnight + 7 * 3600 + rng.i64(0..12 * 3600)
}

/// Unix seconds as `2026-03-02T09:00:00Z`.
pub fn utc(time: i64) -> String {
    DateTime::from_timestamp(time, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Unix seconds as local time in Lyon with its offset: `2026-03-02T10:00:00+01:00`.
pub fn lyon(time: i64) -> String {
    chrono_tz::Europe::Paris
        .timestamp_opt(time, 0)
        .single()
        .map(|local| local.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_else(|| utc(time))
}

/// Reads an RFC 3339 / ISO 8601 date-time (with offset or `Z`) as unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp())
}

/// A JSON response with `body` (already serialized).
pub fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Compares without stopping at the first difference (only the length leaks).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user and password of an `Authorization: Basic` header, if it is one.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The request's own origin (`http://host:port`), for absolute links in responses.
pub fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * index)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not; `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// The decoded query string as (name, value) pairs, in order (`+` is a space).
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let fake = format!("http://sandbox/?{raw}");
    reqwest::Url::parse(&fake)
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// Builds a query string from pairs (percent-encoded).
pub fn query_string(pairs: &[(&str, String)]) -> String {
    let mut url = reqwest::Url::parse("http://sandbox/").expect("a constant URL parses");
    url.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(name, value)| (*name, value.as_str())));
    url.query().unwrap_or("").to_string()
}
