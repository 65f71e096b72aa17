//! The settings of `kind = "http"`: a connector declared in the configuration, for any
//! REST/JSON API, run by the same engine as the built-in presets.
//!
//! ```toml
//! [sources.lms]
//! kind = "http"
//! schedule = "0 0 * * * *"
//! base_url = "https://lms.example.com/api/v2/"
//! auth = { kind = "bearer", token = "${LMS_TOKEN}" }
//! headers = { Accept = "application/json" }
//!
//! [sources.lms.endpoints.enrollments]
//! path = "enrollments"
//! query = { status = "all" }
//! records = "data"
//! key = ["id"]
//! pagination = { kind = "cursor", cursor = "meta.next_cursor", param = "cursor" }
//! incremental = { field = "updated_at", param = "updated_since" }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::validate::Problems;
use crate::secret::Secret;

/// `auth = { kind = ..., ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawHttpAuth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// HTTP Basic.
    Basic {
        /// User name (some APIs put the key here).
        username: Secret,
        /// Password (empty when omitted).
        password: Option<Secret>,
    },
    /// A key in a header of its own.
    Header {
        /// Header name.
        name: String,
        /// The key.
        value: Secret,
    },
    /// A key in the query string.
    Query {
        /// Parameter name.
        name: String,
        /// The key.
        value: Secret,
    },
}

/// `[sources.NAME.endpoints.STREAM]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Path relative to `base_url`.
    pub path: String,
    /// Fixed query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Dotted path to the array of records in the body; omitted: the body is the array.
    pub records: Option<String>,
    /// The field(s) that identify a record.
    pub key: Vec<String>,
    /// How to get the next page; omitted: one page.
    pub pagination: Option<RawPagination>,
    /// Dotted path to a boolean in the body; `false` means the last page.
    pub has_more: Option<String>,
    /// How to ask only for what changed.
    pub incremental: Option<RawIncremental>,
}

/// `pagination = { kind = ..., ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawPagination {
    /// One page.
    None,
    /// A cursor in the body, sent back as a query parameter.
    Cursor {
        /// Dotted path to the next cursor in the body.
        cursor: String,
        /// Query parameter that carries it.
        param: String,
    },
    /// The `rel="next"` link of the `Link` header.
    LinkHeader,
    /// A URL to the next page in the body.
    NextUrl {
        /// Dotted path to the URL.
        next: String,
    },
    /// Page numbers.
    Page {
        /// Query parameter of the page number.
        param: String,
        /// Number of the first page (1 by default).
        start: Option<u64>,
        /// Query parameter of the page size, if any.
        size_param: Option<String>,
        /// Page size to ask for.
        size: Option<u64>,
    },
    /// Record offsets.
    Offset {
        /// Query parameter of the offset.
        param: String,
        /// Query parameter of the page size, if any.
        size_param: Option<String>,
        /// Page size to ask for.
        size: Option<u64>,
    },
}

/// `incremental = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncremental {
    /// Record field with the change time (the high-water mark).
    pub field: Option<String>,
    /// Dotted path to a server-side sync token in the body.
    pub token: Option<String>,
    /// Query parameter that carries the lower time bound or the token.
    pub param: String,
    /// How the time bound is written: rfc3339 (default), unix, unix_ms, date.
    pub format: Option<String>,
}

/// A validated declarative connector.
#[derive(Debug, Clone)]
pub struct HttpSource {
    /// How requests authenticate.
    pub auth: HttpAuth,
    /// Fixed request headers.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The streams, by name.
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// Validated `auth`.
#[derive(Debug, Clone)]
pub enum HttpAuth {
    /// No credentials (or OAuth2 through the source's client_id/secret/refresh_token).
    None,
    /// Bearer token.
    Bearer(Secret),
    /// HTTP Basic.
    Basic {
        /// User name.
        username: Secret,
        /// Password.
        password: Secret,
    },
    /// Header key.
    Header {
        /// Header name.
        name: String,
        /// The key.
        value: Secret,
    },
    /// Query key.
    Query {
        /// Parameter name.
        name: String,
        /// The key.
        value: Secret,
    },
}

impl HttpAuth {
    /// The secrets it holds.
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            HttpAuth::None => Vec::new(),
            HttpAuth::Bearer(token) => vec![token],
            HttpAuth::Basic { username, password } => vec![username, password],
            HttpAuth::Header { value, .. } | HttpAuth::Query { value, .. } => vec![value],
        }
    }
}

/// One declared stream.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Path relative to `base_url`.
    pub path: String,
    /// Fixed query parameters.
    pub query: Vec<(String, String)>,
    /// Dotted path to the records; `None`: the body is the array.
    pub records: Option<String>,
    /// Key fields.
    pub key: Vec<String>,
    /// Next-page rule.
    pub pagination: Pagination,
    /// Dotted path to a "more pages" boolean.
    pub has_more: Option<String>,
    /// Change tracking, if any.
    pub incremental: Option<Incremental>,
}

/// Validated pagination.
#[derive(Debug, Clone, PartialEq)]
pub enum Pagination {
    /// One page.
    None,
    /// Body cursor → query parameter.
    Cursor {
        /// Path in the body.
        cursor: String,
        /// Query parameter.
        param: String,
    },
    /// `Link: <...>; rel="next"`.
    LinkHeader,
    /// Next URL in the body.
    NextUrl {
        /// Path in the body.
        next: String,
    },
    /// Page numbers.
    Page {
        /// Query parameter.
        param: String,
        /// First page number.
        start: u64,
        /// Page size parameter and size.
        size: Option<(String, u64)>,
    },
    /// Offsets.
    Offset {
        /// Query parameter.
        param: String,
        /// Page size parameter and size.
        size: Option<(String, u64)>,
    },
}

/// Validated incremental sync.
#[derive(Debug, Clone, PartialEq)]
pub enum Incremental {
    /// A record field's high-water mark, sent (minus lookback) as a lower bound.
    Field {
        /// Record field.
        field: String,
        /// Query parameter.
        param: String,
        /// How the bound is written.
        format: TimeFormat,
    },
    /// A server-side token from the last page, sent back on the next sync.
    Token {
        /// Path in the body.
        token: String,
        /// Query parameter.
        param: String,
    },
}

/// How a time bound is written in a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2026-03-01T00:00:00Z`
    Rfc3339,
    /// Unix seconds.
    Unix,
    /// Unix milliseconds.
    UnixMs,
    /// `2026-03-01` (UTC).
    Date,
}

/// The settings of a `kind = "http"` source as written (a part of `RawSource`).
pub struct RawHttpParts<'a> {
    /// `auth`.
    pub auth: Option<&'a RawHttpAuth>,
    /// `headers`.
    pub headers: Option<&'a BTreeMap<String, String>>,
    /// `endpoints`.
    pub endpoints: Option<&'a BTreeMap<String, RawEndpoint>>,
}

/// Validates the declarative settings of source `key`; `oauth` says whether the source
/// has the OAuth2 settings (then `auth` must be absent or `none`).
pub(super) fn validate_http(
    key: &str,
    raw: RawHttpParts<'_>,
    oauth: bool,
    problems: &mut Problems,
) -> Option<HttpSource> {
    let before = problems.len();
    let auth = match (raw.auth, oauth) {
        (None | Some(RawHttpAuth::None), _) => HttpAuth::None,
        (Some(_), true) => {
            problems.add(
                format!("{key}.auth"),
                "give either auth or the OAuth2 settings (client_id, client_secret, refresh_token), not both",
            );
            HttpAuth::None
        }
        (Some(RawHttpAuth::Bearer { token }), false) => HttpAuth::Bearer(token.clone()),
        (Some(RawHttpAuth::Basic { username, password }), false) => HttpAuth::Basic {
            username: username.clone(),
            password: password.clone().unwrap_or_else(|| Secret::new("")),
        },
        (Some(RawHttpAuth::Header { name, value }), false) => {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.add(
                    format!("{key}.auth.name"),
                    format!("\"{name}\" is not a valid header name"),
                );
            }
            HttpAuth::Header {
                name: name.clone(),
                value: value.clone(),
            }
        }
        (Some(RawHttpAuth::Query { name, value }), false) => HttpAuth::Query {
            name: name.clone(),
            value: value.clone(),
        },
    };
    let mut headers = Vec::new();
    for (name, value) in raw.headers.into_iter().flatten() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(value).is_err()
        {
            problems.add(
                format!("{key}.headers.{name}"),
                "is not a valid header name and value",
            );
        }
        headers.push((Cow::Owned(name.clone()), value.clone()));
    }
    let mut endpoints = BTreeMap::new();
    match raw.endpoints {
        None => problems.add(
            format!("{key}.endpoints"),
            "kind \"http\" needs at least one endpoint: [sources.NAME.endpoints.STREAM] with path and key",
        ),
        Some(raw_endpoints) if raw_endpoints.is_empty() => {
            problems.add(format!("{key}.endpoints"), "is empty")
        }
        Some(raw_endpoints) => {
            for (stream, endpoint) in raw_endpoints {
                let at = format!("{key}.endpoints.{stream}");
                if let Some(endpoint) = validate_endpoint(&at, endpoint, problems) {
                    endpoints.insert(stream.clone(), endpoint);
                }
            }
        }
    }
    (problems.len() == before).then_some(HttpSource {
        auth,
        headers,
        endpoints,
    })
}

fn validate_endpoint(at: &str, raw: &RawEndpoint, problems: &mut Problems) -> Option<Endpoint> {
    let before = problems.len();
    if raw.path.starts_with("http://")
        || raw.path.starts_with("https://")
        || raw.path.starts_with("//")
    {
        problems.add(
            format!("{at}.path"),
            "must be relative to the source's base_url (requests never leave its host)",
        );
    }
    if raw.key.is_empty() || raw.key.iter().any(String::is_empty) {
        problems.add(
            format!("{at}.key"),
            "needs the field(s) that identify a record, e.g. key = [\"id\"]",
        );
    }
    let size =
        |param: &Option<String>, size: Option<u64>, problems: &mut Problems| match (param, size) {
            (Some(param), Some(size)) if size > 0 => Some((param.clone(), size)),
            (None, None) => None,
            _ => {
                problems.add(
                    format!("{at}.pagination"),
                    "size_param and size go together (size at least 1)",
                );
                None
            }
        };
    let pagination = match &raw.pagination {
        None | Some(RawPagination::None) => Pagination::None,
        Some(RawPagination::Cursor { cursor, param }) => Pagination::Cursor {
            cursor: cursor.clone(),
            param: param.clone(),
        },
        Some(RawPagination::LinkHeader) => Pagination::LinkHeader,
        Some(RawPagination::NextUrl { next }) => Pagination::NextUrl { next: next.clone() },
        Some(RawPagination::Page {
            param,
            start,
            size_param,
            size: page_size,
        }) => Pagination::Page {
            param: param.clone(),
            start: start.unwrap_or(1),
            size: size(size_param, *page_size, problems),
        },
        Some(RawPagination::Offset {
            param,
            size_param,
            size: page_size,
        }) => Pagination::Offset {
            param: param.clone(),
            size: size(size_param, *page_size, problems),
        },
    };
    let incremental = match &raw.incremental {
        None => None,
        Some(RawIncremental {
            field: Some(field),
            token: None,
            param,
            format,
        }) => {
            let format = match format.as_deref() {
                None | Some("rfc3339") => TimeFormat::Rfc3339,
                Some("unix") => TimeFormat::Unix,
                Some("unix_ms") => TimeFormat::UnixMs,
                Some("date") => TimeFormat::Date,
                Some(other) => {
                    problems.add(
                        format!("{at}.incremental.format"),
                        format!("unknown time format \"{other}\" (rfc3339, unix, unix_ms, date)"),
                    );
                    TimeFormat::Rfc3339
                }
            };
            Some(Incremental::Field {
                field: field.clone(),
                param: param.clone(),
                format,
            })
        }
        Some(RawIncremental {
            field: None,
            token: Some(token),
            param,
            format,
        }) => {
            if format.is_some() {
                problems.add(
                    format!("{at}.incremental.format"),
                    "only applies with field (a token is sent as the server wrote it)",
                );
            }
            Some(Incremental::Token {
                token: token.clone(),
                param: param.clone(),
            })
        }
        Some(_) => {
            problems.add(
                format!("{at}.incremental"),
                "give exactly one of field (a record's change time) and token (a server-side sync token)",
            );
            None
        }
    };
    (problems.len() == before).then(|| Endpoint {
        path: raw.path.clone(),
        query: raw
            .query
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        records: raw.records.clone().filter(|path| !path.is_empty()),
        key: raw.key.clone(),
        pagination,
        has_more: raw.has_more.clone(),
        incremental,
    })
}
