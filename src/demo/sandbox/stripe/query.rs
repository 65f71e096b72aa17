//! List query strings as Stripe reads them: `limit`, the `starting_after`/`ending_before`
//! cursor, `created` bounds (`created[gte]` and friends) and equality filters.
//!
//! Parsing turns the raw string into a [`ListQuery`], or into the 400 Stripe would send. It
//! never looks at the data: whether a cursor names a real object is decided when the page is
//! cut.

use std::borrow::Cow;

use super::Resource;
use super::error::{StripeError, clip};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

/// Where a page starts: just older (`starting_after`) or just newer (`ending_before`) than
/// the object with this id.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Cursor {
    StartingAfter(String),
    EndingBefore(String),
}

/// `field` must (or, with `exclude`, must not) equal one of `values`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Filter {
    pub(super) field: &'static str,
    pub(super) values: Vec<String>,
    pub(super) exclude: bool,
}

impl Filter {
    pub(super) fn matches(&self, value: Option<&str>) -> bool {
        let hit = value.is_some_and(|value| self.values.iter().any(|wanted| wanted == value));
        hit != self.exclude
    }
}

/// One list request's parameters, validated.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ListQuery {
    pub(super) limit: usize,
    pub(super) cursor: Option<Cursor>,
    /// Inclusive bounds on `created`.
    pub(super) created_min: Option<i64>,
    pub(super) created_max: Option<i64>,
    pub(super) filters: Vec<Filter>,
}

const SUBSCRIPTION_STATUSES: [&str; 10] = [
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "trialing",
    "paused",
    "all",
    "ended",
];
const INVOICE_STATUSES: [&str; 5] = ["draft", "open", "paid", "uncollectible", "void"];

impl ListQuery {
    /// Parses a raw query string. axum's `Query` cannot map Stripe's bracketed keys
    /// (`created[gte]`), so keys and values are url-decoded here. Unknown parameters are
    /// ignored (real Stripe rejects them) so that clients sending `expand[]` and the like work.
    pub(super) fn parse(resource: Resource, raw: &str) -> Result<ListQuery, StripeError> {
        let mut query = ListQuery {
            limit: DEFAULT_LIMIT,
            cursor: None,
            created_min: None,
            created_max: None,
            filters: Vec::new(),
        };
        let mut starting_after = None;
        let mut ending_before = None;
        let mut status = None;
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key);
            let value = percent_decode(value);
            match &*key {
                "limit" => {
                    let limit: i64 = parse_integer(&value, "limit")?;
                    if !(1..=MAX_LIMIT as i64).contains(&limit) {
                        return Err(StripeError::invalid(
                            "Invalid limit: must be between 1 and 100",
                            "limit",
                        ));
                    }
                    query.limit = limit as usize;
                }
                "starting_after" if !value.is_empty() => starting_after = Some(value.into_owned()),
                "ending_before" if !value.is_empty() => ending_before = Some(value.into_owned()),
                "created" => {
                    let at = parse_integer(&value, "created")?;
                    query.raise_min(at);
                    query.lower_max(at);
                }
                "created[gte]" => query.raise_min(parse_integer(&value, "created[gte]")?),
                "created[gt]" => {
                    query.raise_min(parse_integer(&value, "created[gt]")?.saturating_add(1))
                }
                "created[lte]" => query.lower_max(parse_integer(&value, "created[lte]")?),
                "created[lt]" => {
                    query.lower_max(parse_integer(&value, "created[lt]")?.saturating_sub(1))
                }
                "status" if matches!(resource, Resource::Subscriptions | Resource::Invoices) => {
                    status = Some(value.into_owned());
                }
                other => {
                    if let Some(field) = resource
                        .filter_fields()
                        .iter()
                        .find(|field| **field == other)
                    {
                        query.filters.push(Filter {
                            field,
                            values: vec![value.into_owned()],
                            exclude: false,
                        });
                    }
                }
            }
        }
        query.cursor = match (starting_after, ending_before) {
            (Some(_), Some(_)) => {
                return Err(StripeError::invalid(
                    "You may only specify one of these parameters: ending_before, starting_after.",
                    "starting_after",
                ));
            }
            (Some(id), None) => Some(Cursor::StartingAfter(id)),
            (None, Some(id)) => Some(Cursor::EndingBefore(id)),
            (None, None) => None,
        };
        match resource {
            // Stripe lists only subscriptions that have not ended unless asked for a status.
            Resource::Subscriptions => match status.as_deref() {
                None => query.filters.push(Filter {
                    field: "status",
                    values: ended_statuses(),
                    exclude: true,
                }),
                Some("all") => {}
                Some("ended") => query.filters.push(Filter {
                    field: "status",
                    values: ended_statuses(),
                    exclude: false,
                }),
                Some(status) if SUBSCRIPTION_STATUSES.contains(&status) => {
                    query.filters.push(Filter {
                        field: "status",
                        values: vec![status.to_owned()],
                        exclude: false,
                    });
                }
                Some(_) => {
                    return Err(StripeError::invalid(
                        format!(
                            "Invalid status: must be one of {}",
                            SUBSCRIPTION_STATUSES.join(", ")
                        ),
                        "status",
                    ));
                }
            },
            Resource::Invoices => match status {
                None => {}
                Some(status) if INVOICE_STATUSES.contains(&status.as_str()) => {
                    query.filters.push(Filter {
                        field: "status",
                        values: vec![status],
                        exclude: false,
                    });
                }
                Some(_) => {
                    return Err(StripeError::invalid(
                        format!(
                            "Invalid status: must be one of {}",
                            INVOICE_STATUSES.join(", ")
                        ),
                        "status",
                    ));
                }
            },
            _ => {}
        }
        Ok(query)
    }

    fn raise_min(&mut self, min: i64) {
        self.created_min = Some(self.created_min.map_or(min, |old| old.max(min)));
    }

    fn lower_max(&mut self, max: i64) {
        self.created_max = Some(self.created_max.map_or(max, |old| old.min(max)));
    }
}

fn ended_statuses() -> Vec<String> {
    vec!["canceled".to_owned(), "incomplete_expired".to_owned()]
}

fn parse_integer(value: &str, param: &str) -> Result<i64, StripeError> {
    value
        .trim()
        .parse()
        .map_err(|_| StripeError::invalid(format!("Invalid integer: {}", clip(value)), param))
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte; a broken
/// escape is kept as it is, and invalid UTF-8 becomes U+FFFD.
pub(super) fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
            {
                (Some(high), Some(low)) => {
                    decoded.push(high << 4 | low);
                    i += 2;
                }
                _ => decoded.push(b'%'),
            },
            byte => decoded.push(byte),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
