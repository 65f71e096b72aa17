//! `kind = "http"`: a connector declared in the configuration ([`crate::config::HttpSource`]),
//! so any REST/JSON API can become a source without a release.
//!
//! Each `[sources.NAME.endpoints.STREAM]` says where the records are (`path`, `query`,
//! `records`: the dotted path to the array), what identifies one (`key`, composite keys
//! allowed), how to reach the next page (`pagination`: a cursor in the body sent back as
//! a parameter, the `Link` header, a next URL in the body, page numbers or offsets; an
//! empty page always ends the stream, and `has_more` names a boolean that can end it
//! earlier) and how to ask only for changes (`incremental`: a record field's high-water
//! mark sent as a lower bound, re-reading `lookback` before it, or a server-side token
//! from the last page sent back on the next sync).
//!
//! Next-page URLs (from the `Link` header or the body) must stay on `base_url`'s scheme,
//! host and port: credentials are never sent anywhere the configuration did not name.
//! Pure like every preset: no IO, no loop.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Preset, PresetInfo, SyncWindow, next_link};
use crate::config::{
    Endpoint, HttpAuth, HttpSource, Incremental, Pagination, SourceConfig, TimeFormat,
};
use crate::records;
use crate::sources::http::{Auth, ParseError};
use crate::sources::{Page, PageRequest, SourceError, fetched_records};

/// The declared kind's description: everything else comes from the configuration.
pub static INFO: PresetInfo = PresetInfo {
    default_base_url: "",
    streams: &[],
    required: &["base_url"],
    default_lookback: Duration::from_secs(24 * 3600),
    token_url: None,
};

/// The declarative preset.
pub struct Declared;

/// The saved cursor of a declared stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// Newest change time (unix seconds) of the last complete walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<i64>,
    /// The server's sync token after the last complete walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The walk in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<Run>,
}

/// One walk through an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Run {
    /// Lower time bound sent with every page of this walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gte: Option<i64>,
    /// Sync token sent with every page of this walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// Where the next page starts: a cursor, a page number, an offset or a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    position: Option<String>,
    /// Newest change time seen in this walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<i64>,
    /// Newest sync token seen in this walk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

fn declared(source: &SourceConfig) -> Result<&HttpSource, SourceError> {
    source.http.as_ref().ok_or_else(|| {
        SourceError::BadCursor(format!("source {} has no declared endpoints", source.name))
    })
}

fn endpoint_of<'a>(source: &'a SourceConfig, stream: &str) -> Result<&'a Endpoint, SourceError> {
    declared(source)?.endpoints.get(stream).ok_or_else(|| {
        SourceError::BadCursor(format!(
            "source {} declares no endpoint {stream}",
            source.name
        ))
    })
}

fn format_time(seconds: i64, format: TimeFormat) -> String {
    let time = chrono::DateTime::from_timestamp(seconds, 0).unwrap_or_default();
    match format {
        TimeFormat::Rfc3339 => time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        TimeFormat::Unix => seconds.to_string(),
        TimeFormat::UnixMs => (seconds * 1000).to_string(),
        TimeFormat::Date => time.format("%Y-%m-%d").to_string(),
    }
}

/// The request for the page `run` points at.
fn request_for(
    source: &SourceConfig,
    endpoint: &Endpoint,
    cursor: &Cursor,
) -> Result<PageRequest, ParseError> {
    let run = cursor.run.clone().unwrap_or_default();
    let follows_url = matches!(
        endpoint.pagination,
        Pagination::LinkHeader | Pagination::NextUrl { .. }
    );
    let url = match (&run.position, follows_url) {
        // The next page's URL as the API gave it (checked to stay on base_url's host).
        (Some(next), true) => reqwest::Url::parse(next)
            .map_err(|error| ParseError::malformed(format!("saved next-page URL: {error}")))?,
        (position, _) => {
            let mut url = super::endpoint(&source.base_url, &endpoint.path);
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in &endpoint.query {
                    query.append_pair(name, value);
                }
                match (&endpoint.incremental, run.gte, &run.token) {
                    (Some(Incremental::Field { param, format, .. }), Some(gte), _) => {
                        query.append_pair(param, &format_time(gte, *format));
                    }
                    (Some(Incremental::Token { param, .. }), _, Some(token)) => {
                        query.append_pair(param, token);
                    }
                    _ => {}
                }
                match &endpoint.pagination {
                    Pagination::Cursor { param, .. } => {
                        if let Some(position) = position {
                            query.append_pair(param, position);
                        }
                    }
                    Pagination::Page { param, start, size } => {
                        let page = position.clone().unwrap_or_else(|| start.to_string());
                        query.append_pair(param, &page);
                        if let Some((size_param, size)) = size {
                            query.append_pair(size_param, &size.to_string());
                        }
                    }
                    Pagination::Offset { param, size } => {
                        let offset = position.clone().unwrap_or_else(|| "0".into());
                        query.append_pair(param, &offset);
                        if let Some((size_param, size)) = size {
                            query.append_pair(size_param, &size.to_string());
                        }
                    }
                    Pagination::None | Pagination::LinkHeader | Pagination::NextUrl { .. } => {}
                }
            }
            // An empty query leaves a bare `?`; drop it.
            if url.query() == Some("") {
                url.set_query(None);
            }
            url
        }
    };
    let mut request = PageRequest::get(url, encode(cursor));
    if let Ok(http) = declared(source) {
        for (name, value) in &http.headers {
            request = request.with_header(name.clone(), value.clone());
        }
    }
    Ok(request)
}

fn encode(cursor: &Cursor) -> String {
    serde_json::to_string(cursor).expect("a cursor of plain fields always serializes")
}

/// What a dotted path leads to.
enum Lookup<'a> {
    /// A step is not there.
    Missing,
    /// The value (or a step on the way) is null.
    Null,
    /// A value.
    Value(&'a RawValue),
}

impl<'a> Lookup<'a> {
    fn value(self) -> Option<&'a RawValue> {
        match self {
            Lookup::Value(raw) => Some(raw),
            Lookup::Missing | Lookup::Null => None,
        }
    }
}

/// Follows a dotted `path` inside `raw` without parsing what is not on the way.
fn at_path<'a>(raw: &'a RawValue, path: &str) -> Result<Lookup<'a>, ParseError> {
    let mut current = raw;
    for step in path.split('.').filter(|step| !step.is_empty()) {
        if current.get() == "null" {
            return Ok(Lookup::Null);
        }
        let object: HashMap<Cow<'a, str>, &'a RawValue> = serde_json::from_str(current.get())
            .map_err(|_| {
                ParseError::malformed(format!(
                    "`{path}`: the value before `{step}` is not an object"
                ))
            })?;
        match object.get(step) {
            Some(next) => current = next,
            None => return Ok(Lookup::Missing),
        }
    }
    Ok(if current.get() == "null" {
        Lookup::Null
    } else {
        Lookup::Value(current)
    })
}

/// A scalar at `path` as text (strings as written, numbers in JSON form); `None` when
/// missing, null or empty.
fn text_at(body: &RawValue, path: &str) -> Result<Option<String>, ParseError> {
    let Some(raw) = at_path(body, path)?.value() else {
        return Ok(None);
    };
    match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(serde_json::Value::String(text)) => Ok((!text.is_empty()).then_some(text)),
        Ok(serde_json::Value::Number(number)) => Ok(Some(number.to_string())),
        _ => Err(ParseError::malformed(format!(
            "`{path}` is not a string or a number"
        ))),
    }
}

/// Resolves a next-page URL against the request's and keeps it on `base`'s origin.
fn same_origin_next(
    base: &reqwest::Url,
    request: &reqwest::Url,
    next: &str,
) -> Result<String, ParseError> {
    let url = request
        .join(next)
        .map_err(|error| ParseError::malformed(format!("next-page URL {next:?}: {error}")))?;
    if url.origin() != base.origin() {
        return Err(ParseError::malformed(format!(
            "the next-page URL points to {} instead of the configured base_url's host; \
             scorekeeper sends credentials only to base_url",
            url.origin().ascii_serialization()
        )));
    }
    Ok(url.to_string())
}

impl Preset for Declared {
    /// A field-incremental endpoint walks on its field; one without `incremental` lists
    /// everything; a token walk lists only changes, which says nothing about the rest.
    fn coverage(&self, source: &SourceConfig, stream: &str) -> super::Coverage {
        match endpoint_of(source, stream).map(|endpoint| &endpoint.incremental) {
            Ok(Some(Incremental::Field { field, .. })) => {
                super::Coverage::Field(field.clone().into())
            }
            Ok(None) => super::Coverage::All,
            Ok(Some(Incremental::Token { .. })) | Err(_) => super::Coverage::None,
        }
    }

    fn auth(&self, source: &SourceConfig) -> Result<Auth, SourceError> {
        Ok(match &declared(source)?.auth {
            HttpAuth::None => Auth::None,
            HttpAuth::Bearer(token) => Auth::Bearer(token.clone()),
            HttpAuth::Basic { username, password } => Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            HttpAuth::Header { name, value } => Auth::Header {
                name: name.clone().into(),
                value: value.clone(),
            },
            HttpAuth::Query { name, value } => Auth::Query {
                name: name.clone().into(),
                value: value.clone(),
            },
        })
    }

    fn probe(&self, source: &SourceConfig) -> PageRequest {
        let first = source
            .http
            .as_ref()
            .and_then(|http| http.endpoints.values().next());
        match first.map(|endpoint| request_for(source, endpoint, &Cursor::default())) {
            Some(Ok(request)) => request,
            _ => PageRequest::get(source.base_url.clone(), String::new()),
        }
    }

    fn first_request(
        &self,
        source: &SourceConfig,
        stream: &str,
        cursor: Option<&str>,
        window: &SyncWindow,
    ) -> Result<PageRequest, SourceError> {
        let endpoint = endpoint_of(source, stream)?;
        let mut cursor: Cursor = match cursor {
            None => Cursor::default(),
            Some(text) => serde_json::from_str(text)
                .map_err(|error| SourceError::BadCursor(error.to_string()))?,
        };
        if cursor.run.is_none() {
            let start = window.start.map(|start| start.timestamp());
            let lookback = window.lookback.as_secs() as i64;
            let gte = match (&endpoint.incremental, cursor.since, start) {
                (Some(Incremental::Field { .. }), Some(since), start) => {
                    Some(start.map_or(since - lookback, |start| (since - lookback).max(start)))
                }
                (Some(Incremental::Field { .. }), None, start) => start,
                _ => None,
            };
            let token = match &endpoint.incremental {
                Some(Incremental::Token { .. }) => cursor.token.clone(),
                _ => None,
            };
            cursor.run = Some(Run {
                gte,
                token,
                ..Run::default()
            });
        }
        request_for(source, endpoint, &cursor).map_err(|error| SourceError::BadCursor(error.detail))
    }

    fn parse_page(
        &self,
        source: &SourceConfig,
        stream: &str,
        request: &PageRequest,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Page, ParseError> {
        let endpoint = endpoint_of(source, stream)
            .map_err(|error| ParseError::malformed(error.to_string()))?;
        let body: &RawValue = ParseError::parse_json(body)?;
        let list = match &endpoint.records {
            None => Some(body),
            Some(path) => match at_path(body, path)? {
                Lookup::Value(list) => Some(list),
                Lookup::Null => None,
                Lookup::Missing => {
                    return Err(ParseError::malformed(format!(
                        "no `{path}` in the body (the endpoint's `records` path)"
                    )));
                }
            },
        };
        let objects: Vec<&RawValue> = match list {
            None => Vec::new(),
            Some(list) => serde_json::from_str(list.get()).map_err(|_| {
                ParseError::malformed(format!(
                    "`{}` is not an array of records",
                    endpoint.records.as_deref().unwrap_or("the body")
                ))
            })?,
        };
        let keys: Vec<&str> = endpoint.key.iter().map(String::as_str).collect();
        let cursor_fields: Vec<&str> = match &endpoint.incremental {
            Some(Incremental::Field { field, .. }) => vec![field.as_str()],
            _ => Vec::new(),
        };
        let records = fetched_records(
            &objects,
            &keys,
            &source.record_fields(stream, &cursor_fields),
        )?;

        let mut cursor: Cursor = serde_json::from_str(&request.state).map_err(|error| {
            ParseError::malformed(format!("internal cursor state unreadable: {error}"))
        })?;
        let mut run = cursor.run.take().unwrap_or_default();
        match &endpoint.incremental {
            Some(Incremental::Field { field, .. }) => {
                for (index, fetched) in records.iter().enumerate() {
                    let time = records::event_time(records::field(&fetched.record, field), chrono_tz::UTC)
                        .ok()
                        .flatten()
                        .ok_or_else(|| {
                            ParseError::malformed(format!(
                                "record {index} ({}) has no readable `{field}` (the endpoint's incremental field)",
                                fetched.key
                            ))
                        })?;
                    run.max = Some(
                        run.max
                            .map_or(time.timestamp(), |max| max.max(time.timestamp())),
                    );
                }
            }
            Some(Incremental::Token { token, .. }) => {
                if let Some(token) = text_at(body, token)? {
                    run.next_token = Some(token);
                }
            }
            None => {}
        }

        let count = records.len() as u64;
        let next = if records.is_empty() {
            None
        } else {
            match &endpoint.pagination {
                Pagination::None => None,
                Pagination::Cursor { cursor, .. } => text_at(body, cursor)?,
                Pagination::LinkHeader => next_link(headers)?
                    .map(|next| same_origin_next(&source.base_url, &request.url, &next))
                    .transpose()?,
                Pagination::NextUrl { next } => text_at(body, next)?
                    .map(|next| same_origin_next(&source.base_url, &request.url, &next))
                    .transpose()?,
                Pagination::Page { start, size, .. } => {
                    let current: u64 = run
                        .position
                        .as_deref()
                        .and_then(|page| page.parse().ok())
                        .unwrap_or(*start);
                    let short = size.as_ref().is_some_and(|(_, size)| count < *size);
                    (!short).then(|| (current + 1).to_string())
                }
                Pagination::Offset { size, .. } => {
                    let current: u64 = run
                        .position
                        .as_deref()
                        .and_then(|offset| offset.parse().ok())
                        .unwrap_or(0);
                    let short = size.as_ref().is_some_and(|(_, size)| count < *size);
                    (!short).then(|| (current + count).to_string())
                }
            }
        };
        let more = match &endpoint.has_more {
            None => true,
            Some(path) => match at_path(body, path)?.value().map(|raw| raw.get()) {
                Some("false") | None => false,
                Some("true") => true,
                Some(other) => {
                    return Err(ParseError::malformed(format!(
                        "`{path}` is {other}, not true or false"
                    )));
                }
            },
        };
        match next.filter(|_| more) {
            Some(position) => {
                run.position = Some(position);
                cursor.run = Some(run);
                let state = encode(&cursor);
                let next = request_for(source, endpoint, &cursor)?;
                Ok(Page {
                    records,
                    cursor: state,
                    next: Some(next),
                })
            }
            None => {
                cursor.since = match (cursor.since, run.max) {
                    (Some(since), Some(max)) => Some(since.max(max)),
                    (since, max) => since.or(max),
                };
                if run.next_token.is_some() {
                    cursor.token = run.next_token;
                }
                Ok(Page {
                    records,
                    cursor: encode(&cursor),
                    next: None,
                })
            }
        }
    }
}
