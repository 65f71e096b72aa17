//! `/`: the dashboard, a static page whose script reads the JSON API, and
//! `GET /api/v1/events`, the Server-Sent Events stream that tells open pages when a
//! sync has finished.
//!
//! The page and its assets (`index.html`, `app.js`, `dom.js`, `chart.js`, `map.js`,
//! `style.css`, `icon.svg` beside this file) are embedded in the binary: there is no build step and
//! nothing is fetched from anywhere but the daemon itself. Assets are served under
//! `/assets/<fingerprint>/<file>`, where the fingerprint is a hash of all of them taken
//! at compile time: they can be cached for a year (`immutable`), a new binary changes
//! the path, and the ES modules import each other by relative paths inside that folder.
//! The page carries a strict `Content-Security-Policy` (everything from `'self'`, no
//! inline script or style), so neither a bug nor a measure name with markup in it can
//! load or run anything else.
//!
//! This module renders no data: the script builds the DOM from the API's JSON with
//! `textContent`, so names, units and objective titles are never parsed as HTML.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use super::AppState;

/// The page. `{{VERSION}}` is replaced by [`fingerprint`] when served.
const INDEX: &str = include_str!("index.html");

/// One embedded file under `/assets/<fingerprint>/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file the page loads.
const ASSETS: [Asset; 6] = [
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("app.js"),
    },
    Asset {
        name: "dom.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("dom.js"),
    },
    Asset {
        name: "chart.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("chart.js"),
    },
    Asset {
        name: "map.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("map.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("style.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("icon.svg"),
    },
];

/// FNV-1a (64 bit) over the page and every asset, computed by the compiler.
const FINGERPRINT: u64 = {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index <= ASSETS.len() {
        let bytes = if index == ASSETS.len() {
            INDEX.as_bytes()
        } else {
            ASSETS[index].body.as_bytes()
        };
        let mut at = 0;
        while at < bytes.len() {
            hash ^= bytes[at] as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
            at += 1;
        }
        index += 1;
    }
    hash
};

/// The folder name the assets of this build are served under.
pub fn fingerprint() -> String {
    format!("{FINGERPRINT:016x}")
}

/// What the page may load: only its own origin; no inline script or style, no plugins,
/// no framing, no form posts, no `<base>` rewrites.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Comment lines sent on an idle events stream, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /`: the page (never cached: it names the assets of the running binary).
pub(super) async fn page() -> Response {
    let body = INDEX.replace("{{VERSION}}", &fingerprint());
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `GET /assets/{version}/{file}`: an embedded file, cacheable for a year; 404 for
/// another build's fingerprint or an unknown file.
pub(super) async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|asset| asset.name == file);
    match found {
        Some(asset) if version == fingerprint() => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        _ => super::api::ApiError::NotFound(format!(
            "no asset \"{file}\" in build \"{version}\" (this build serves /assets/{}/)",
            fingerprint()
        ))
        .into_response(),
    }
}

/// `GET /api/v1/events`: Server-Sent Events. The first event carries the current sync
/// generation ([`crate::sources::engine::Engine::generation`]); one more follows each
/// time a sync finishes (`event: sync`, `data: <generation>`; when several finish close
/// together, only the latest is sent). A comment every 15 s keeps the stream open.
///
/// The stream ends when the server starts shutting down: graceful shutdown waits for
/// responses in flight, and an open dashboard would otherwise hold it until the drain
/// deadline.
pub(super) async fn events(State(state): State<AppState>) -> Response {
    let mut changes = state.engine.subscribe();
    let first = *changes.borrow_and_update();
    let stream = generation_events(first, changes, state.draining.clone());
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Not cached, and not buffered by a reverse proxy (nginx honours this header).
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `first`, then every later generation `changes` sees, until `draining` is cancelled or
/// the engine is gone.
fn generation_events(
    first: u64,
    changes: tokio::sync::watch::Receiver<u64>,
    draining: tokio_util::sync::CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let event = |generation: u64, retry: bool| {
        let event = Event::default()
            .event("sync")
            .id(generation.to_string())
            .data(generation.to_string());
        // Tell the browser how soon to reconnect after the server went away.
        Ok(if retry {
            event.retry(Duration::from_secs(5))
        } else {
            event
        })
    };
    futures_util::stream::unfold(
        (Some(first), changes, draining),
        move |(pending, mut changes, draining)| async move {
            if let Some(generation) = pending {
                return Some((event(generation, true), (None, changes, draining)));
            }
            // Cancellation first: once the server drains, no further event is sent even
            // if a sync finished at the same moment.
            tokio::select! {
                biased;
                () = draining.cancelled() => None,
                changed = changes.changed() => match changed {
                    Ok(()) => {
                        let generation = *changes.borrow_and_update();
                        Some((event(generation, false), (None, changes, draining)))
                    }
                    // The engine (and with it the sender) is gone: nothing more to say.
                    Err(_) => None,
                },
            }
        },
    )
}
