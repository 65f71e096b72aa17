//! Sources: pulling records from SaaS APIs.
//!
//! A preset ([`presets`]) describes one API: its streams, how to build the next request
//! from the saved cursor, and how to cut a response into records. Presets never loop,
//! sleep or do IO. The [`engine`] is the only page loop: it sends each request through
//! the shared [`http`] client (timeouts, retries, rate limits), hands the records to the
//! store together with the cursor that follows them, and stops on the last page.

pub mod engine;
pub mod http;
pub mod oauth;
pub mod presets;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::RecordFields;
use crate::records::{self, Record};
use crate::store::StoreError;
pub use http::ParseError;

/// Why a sync of one stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The API refused the credentials.
    #[error("unauthorized ({message}); check the source's API key or token")]
    Unauthorized {
        /// The API's own message (never the secret).
        message: String,
    },
    /// HTTP 429; `retry_after` is what the API asked for, if anything.
    #[error("HTTP 429 from {url}: rate limited by the API{}: {message}", retry_after.map(|wait| format!(" (Retry-After {}s)", wait.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The wait the API asked for.
        retry_after: Option<std::time::Duration>,
        /// The request URL, secrets redacted.
        url: String,
        /// The API's own message.
        message: String,
    },
    /// A network problem or a broken transfer.
    #[error("{detail}")]
    Transient {
        /// What happened.
        detail: String,
    },
    /// Every attempt failed.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<SourceError>,
    },
    /// A non-2xx answer that retrying will not fix.
    #[error("HTTP {status} from {url}: {message}")]
    Http {
        /// Status code.
        status: u16,
        /// The request URL, secrets redacted.
        url: String,
        /// The API's own message.
        message: String,
    },
    /// The body is not what the API documents.
    #[error("malformed response from {url}: {detail}")]
    Malformed {
        /// The request URL, secrets redacted.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// A local file (a CSV source's `path`) cannot be read.
    #[error("cannot read {path}: {detail}")]
    File {
        /// The file's path.
        path: String,
        /// What went wrong (missing, not allowed, ...).
        detail: String,
    },
    /// The API handed back the cursor of the previous page: following it would loop forever.
    #[error("the API repeated the previous page's cursor at {url}; stopping instead of looping")]
    RepeatedCursor {
        /// The request URL, secrets redacted.
        url: String,
    },
    /// The API redirected to another origin (credentials are sent only to the configured
    /// one), or redirected too often.
    #[error("redirect not followed: {detail}")]
    Redirect {
        /// Both origins (scheme, host and port; never a path or query), and what to do.
        detail: String,
    },
    /// The response body is larger than the most scorekeeper reads from an API.
    #[error("response from {url} is larger than {}, the most scorekeeper reads from an API; nothing of it was stored", http::byte_size(*limit))]
    TooLarge {
        /// The request URL, secrets redacted.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The saved cursor cannot be read (written by another version?).
    #[error("cannot read the saved cursor: {0}")]
    BadCursor(String),
    /// Storing the page failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Shutdown was requested; everything committed so far stays.
    #[error("cancelled")]
    Cancelled,
}

impl SourceError {
    /// A short fixed label for metrics and the `result` of a run.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "auth",
            Self::RateLimited { .. } => "http_429",
            Self::Transient { .. } => "network",
            Self::RetriesExhausted { last, .. } => last.label(),
            Self::Http { status, .. } if *status >= 500 => "http_5xx",
            Self::Http { .. } => "http_4xx",
            Self::Malformed { .. } => "decode",
            Self::File { .. } => "file",
            Self::RepeatedCursor { .. } => "repeated_cursor",
            Self::Redirect { .. } => "redirect",
            Self::TooLarge { .. } => "too_large",
            Self::BadCursor(_) => "cursor",
            Self::Store(_) => "store",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One record as fetched: its key, the API's JSON text, and the parsed object.
#[derive(Debug)]
pub struct FetchedRecord {
    /// Primary key.
    pub key: String,
    /// The object as the API sent it.
    pub raw: Box<RawValue>,
    /// The same object, parsed.
    pub record: Record,
}

/// A request the engine should send next.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// Full URL with query.
    pub url: reqwest::Url,
    /// The preset's state before this page (opaque to the engine).
    pub state: String,
    /// A JSON body to POST (HubSpot's search endpoint); `None` sends a GET.
    pub body: Option<String>,
    /// Headers besides authentication (Xero's `Xero-tenant-id` and `If-Modified-Since`).
    pub headers: Vec<(std::borrow::Cow<'static, str>, String)>,
}

impl PageRequest {
    /// A GET of `url`.
    pub fn get(url: reqwest::Url, state: String) -> Self {
        Self {
            url,
            state,
            body: None,
            headers: Vec::new(),
        }
    }

    /// A POST of the JSON `body` to `url`.
    pub fn post_json(url: reqwest::Url, state: String, body: String) -> Self {
        Self {
            body: Some(body),
            ..Self::get(url, state)
        }
    }

    /// The same request with one more header.
    pub fn with_header(
        mut self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// True when `other` asks the API for exactly the same thing (a repeated cursor).
    pub fn same_call(&self, other: &PageRequest) -> bool {
        self.url == other.url && self.body == other.body && self.headers == other.headers
    }
}

/// One response cut into records.
#[derive(Debug)]
pub struct Page {
    /// The page's records.
    pub records: Vec<FetchedRecord>,
    /// The cursor to save once these records are committed.
    pub cursor: String,
    /// The next request, or `None` on the last page.
    pub next: Option<PageRequest>,
}

/// Parses API objects into records with their keys; an object without a key is malformed.
/// Only the top-level `fields` are parsed (and the key fields); the others are skipped
/// without building them, which is most of a record's parsing cost. `raw` keeps the
/// whole object either way.
pub fn fetched_records(
    objects: &[&RawValue],
    key_fields: &[&str],
    fields: &RecordFields,
) -> Result<Vec<FetchedRecord>, ParseError> {
    objects
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let parsed = match fields {
                RecordFields::All => serde_json::from_str(raw.get()),
                RecordFields::Only(keep) => {
                    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
                    serde::de::DeserializeSeed::deserialize(
                        OnlyFields { keep, key_fields },
                        &mut deserializer,
                    )
                }
            };
            let record: Record = parsed.map_err(|error| ParseError {
                truncated: false,
                unauthorized: false,
                detail: format!("item {index} is not a JSON object: {error}"),
            })?;
            let key = records::primary_key(&record, key_fields).ok_or_else(|| ParseError {
                truncated: false,
                unauthorized: false,
                detail: format!(
                    "item {index} has no usable primary key ({})",
                    key_fields.join(", ")
                ),
            })?;
            Ok(FetchedRecord {
                key,
                raw: (*raw).to_owned(),
                record,
            })
        })
        .collect()
}

/// Deserializes a JSON object keeping only the top-level keys in `keep` or starting a key
/// path; the values of the others are skipped (`IgnoredAny`) without allocating.
struct OnlyFields<'a> {
    keep: &'a std::collections::BTreeSet<String>,
    key_fields: &'a [&'a str],
}

impl OnlyFields<'_> {
    fn kept(&self, key: &str) -> bool {
        self.keep.contains(key)
            || self
                .key_fields
                .iter()
                .any(|path| crate::config::top_level(path) == key)
    }
}

/// An object key, borrowed from the input unless it has escapes (no allocation for the
/// keys that are skipped).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(key.to_owned())))
            }
            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for OnlyFields<'_> {
    type Value = Record;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Record, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for OnlyFields<'_> {
    type Value = Record;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        let mut record = Record::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if self.kept(&key) {
                let value = map.next_value::<Value>()?;
                record.insert(key.into_owned(), value);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(record)
    }
}

/// Query parameters whose values are never shown.
const SECRET_PARAMS: &[&str] = &["token", "key", "secret", "password", "signature", "auth"];

/// A URL fit for errors and logs: values of credential-like query parameters replaced by `***`.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            let hidden = SECRET_PARAMS.iter().any(|secret| lower.contains(secret));
            (
                name.into_owned(),
                if hidden {
                    "***".to_string()
                } else {
                    value.into_owned()
                },
            )
        })
        .collect();
    if !pairs.is_empty() {
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_credential_parameters() {
        let url = reqwest::Url::parse(
            "https://m.example.com/webservice/rest/server.php?wstoken=abc&wsfunction=f&limit=100",
        )
        .expect("valid");
        assert_eq!(
            redact_url(&url),
            "https://m.example.com/webservice/rest/server.php?wstoken=***&wsfunction=f&limit=100"
        );
        let url = reqwest::Url::parse("https://user:pw@example.com/x").expect("valid");
        assert!(!redact_url(&url).contains("pw"));
    }

    #[test]
    fn records_without_a_key_are_malformed() {
        let body = r#"[{"id":"a","n":1},{"n":2}]"#;
        let objects: Vec<&RawValue> = serde_json::from_str(body).expect("valid");
        let error =
            fetched_records(&objects, &["id"], &RecordFields::All).expect_err("second has no id");
        assert!(error.detail.contains("item 1"), "{}", error.detail);
        let ok =
            fetched_records(&objects[..1], &["id"], &RecordFields::All).expect("first is fine");
        assert_eq!(ok[0].key, "a");
        assert_eq!(ok[0].raw.get(), r#"{"id":"a","n":1}"#);
    }

    #[test]
    fn only_the_fields_asked_for_and_the_key_are_parsed_and_raw_stays_whole() {
        let body = r#"[{"id":7,"amount":3000,"status":"succeeded","billing_details":{"address":{"city":"Berlin"}},"metadata":{"a\"b":[1,{"c":null}]},"esc\u0061ped":"x","meta":{"updated":"2026-03-01"}}]"#;
        let objects: Vec<&RawValue> = serde_json::from_str(body).expect("valid");
        let keep = ["amount", "escaped", "meta"].map(String::from).into();
        let records =
            fetched_records(&objects, &["id"], &RecordFields::Only(keep)).expect("parses");
        let record = &records[0];
        assert_eq!(record.key, "7");
        let mut fields: Vec<&str> = record.record.keys().map(String::as_str).collect();
        fields.sort_unstable();
        // The key field, the fields asked for (an escaped key matched by its text, a
        // nested object kept whole), nothing else.
        assert_eq!(fields, ["amount", "escaped", "id", "meta"]);
        assert_eq!(record.record["meta"]["updated"], "2026-03-01");
        assert_eq!(record.raw.get(), &body[1..body.len() - 1]);
        // A malformed object is still refused, skipped parts included.
        let broken: Vec<&RawValue> =
            serde_json::from_str(r#"[{"id":1,"skipped":[1,2]}, [3]]"#).expect("valid");
        let error = fetched_records(&broken, &["id"], &RecordFields::Only(Default::default()))
            .expect_err("an array is not a record");
        assert!(error.detail.contains("item 1"), "{}", error.detail);
    }
}
