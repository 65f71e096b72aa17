//! Stripe's error responses: the status and the `{"error": {...}}` body it sends for a bad
//! parameter, a missing object, a wrong or missing key, or an unknown URL.
//!
//! User text reaches a message only through [`clip`], so a huge id or path cannot swell a
//! response. An API key never reaches one unmasked: callers pass the masked form.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Resource;

/// A Stripe error response: `{"error":{"code"?,"doc_url"?,"message","param"?,"type"}}`.
#[derive(Debug)]
pub(super) struct StripeError {
    status: StatusCode,
    message: String,
    param: Option<String>,
    code: Option<&'static str>,
}

impl StripeError {
    pub(super) fn invalid(message: impl Into<String>, param: &str) -> Self {
        StripeError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: Some(param.to_owned()),
            code: None,
        }
    }

    pub(super) fn no_such(resource: Resource, id: &str, param: &str, status: StatusCode) -> Self {
        StripeError {
            status,
            message: format!("No such {}: '{}'", resource.noun(), clip(id)),
            param: Some(param.to_owned()),
            code: Some("resource_missing"),
        }
    }

    pub(super) fn unauthorized(message: String) -> Self {
        StripeError {
            status: StatusCode::UNAUTHORIZED,
            message,
            param: None,
            code: None,
        }
    }

    pub(super) fn unrecognized_url(method: &Method, path: &str) -> Self {
        StripeError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                clip(path)
            ),
            param: None,
            code: None,
        }
    }
}

impl IntoResponse for StripeError {
    fn into_response(self) -> Response {
        let mut error = serde_json::Map::new();
        if let Some(code) = self.code {
            error.insert("code".into(), code.into());
            error.insert(
                "doc_url".into(),
                format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )
                .into(),
            );
        }
        error.insert("message".into(), self.message.into());
        if let Some(param) = self.param {
            error.insert("param".into(), param.into());
        }
        error.insert("type".into(), "invalid_request_error".into());
        json_response(
            self.status,
            serde_json::json!({ "error": error }).to_string(),
        )
    }
}

/// `body` with `status`, labelled `application/json` as Stripe labels every response.
pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// User text echoed in an error message, cut to a sane length.
pub(super) fn clip(text: &str) -> &str {
    match text.char_indices().nth(100) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
