//! A wrapper for secrets (API keys, tokens, passwords, database URLs with passwords).
//!
//! `Debug` and `Display` print `***`, the type does not implement `Serialize`, and the
//! value is reachable only through [`Secret::expose`], called at the single place that
//! sends it. This module sits on the ground floor so that `config/` and `sources/` can
//! both use it without an upward import.

use std::fmt;

/// A string that must never be printed, logged, serialized or returned by the API.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call it only where the value leaves the process (a request
    /// header, a connection string), never to format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string (a variable that was set but empty).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Replaces the password of a `scheme://user:password@host/...` URL with `***`, so a
/// database URL can be shown in logs and `scorekeeper check`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// Secrets shorter than this are not scrubbed from text: a placeholder such as
/// Freshdesk's password `X` would otherwise blank out every letter X of a message.
const MIN_SCRUBBED_LEN: usize = 4;

/// `text` with every occurrence of each of `secrets` replaced by `***` (longest first,
/// so a secret that contains another is removed whole). For messages that quote what a
/// server sent back, which may echo the credentials of the request.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets
        .iter()
        .filter(|secret| secret.len() >= MIN_SCRUBBED_LEN)
        .collect();
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    let mut text = text.to_string();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("sk_live_abc");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(secret.expose(), "sk_live_abc");
    }

    #[test]
    fn scrub_removes_every_secret_longest_first_and_skips_placeholders() {
        let secrets = vec!["abcd".to_string(), "abcdefgh".to_string(), "X".to_string()];
        assert_eq!(
            scrub("Key abcdefgh and abcd rejected (X-Request-Id 7)", &secrets),
            "Key *** and *** rejected (X-Request-Id 7)"
        );
    }

    #[test]
    fn redact_url_hides_only_the_password() {
        let cases = [
            (
                "postgres://app:hunter2@db:5432/sk",
                "postgres://app:***@db:5432/sk",
            ),
            ("postgres://app@db/sk", "postgres://app@db/sk"),
            (
                "sqlite://data/scorekeeper.db",
                "sqlite://data/scorekeeper.db",
            ),
            (
                "postgres://u:p@h/d?sslmode=require",
                "postgres://u:***@h/d?sslmode=require",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "{input}");
        }
    }
}
