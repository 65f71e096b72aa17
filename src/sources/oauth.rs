//! The OAuth2 refresh-token flow (RFC 6749 §6) of sources that refresh their own access
//! tokens: QuickBooks Online and Xero (and any `http` source given the three settings).
//!
//! Both APIs hand out short-lived access tokens (about an hour) and rotate the refresh
//! token: a refresh returns a new refresh token and the old one stops working (Xero
//! after a grace period, Intuit on its own schedule). Losing the newest refresh token
//! means the owner must authorize the app again, so:
//!
//! - the newest tokens live in the `oauth_tokens` table, saved (one statement,
//!   committed) before the access token that came with them is used;
//! - a refresh happens when the saved access token is missing or expires within
//!   [`EXPIRY_MARGIN`], and once more when the API answers 401 mid-sync;
//! - the row remembers which configured refresh token it descends from (`seed`): when
//!   the configuration holds a different one, the owner authorized again and the
//!   configured token wins;
//! - refreshes of one source never run concurrently: they happen inside the source's
//!   sync, which holds the source's lock (and, with several replicas, its lease).
//!
//! A crash between the token endpoint's answer and the save loses that answer; the
//! refresh token sent is then still the saved one. Xero keeps a rotated-out refresh
//! token valid for a grace period and Intuit returns the same refresh token for about
//! a day, so the next start refreshes again with it.
//!
//! The request follows RFC 6749 §6 as both providers document it: a form-encoded POST
//! of `grant_type=refresh_token&refresh_token=…` with the client id and secret in HTTP
//! Basic auth; the answer carries `access_token`, `expires_in` (seconds) and usually a
//! new `refresh_token`.
//! - Intuit: <https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0#refresh-the-token>
//! - Xero: <https://developer.xero.com/documentation/guides/oauth2/auth-flow/#refreshing-access-and-refresh-tokens>

use std::time::Duration;

use serde::Deserialize;

use super::SourceError;
use super::http::{Auth, HttpClient, api_error_message, describe_reqwest_error};
use crate::config::OAuthConfig;
use crate::secret::Secret;
use crate::store::{OAuthTokens, Store};

/// An access token this close to its expiry is refreshed before use.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// Assumed lifetime of an access token whose answer gives no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Attempts at the token endpoint when it fails with a network error or a 5xx.
const ATTEMPTS: u32 = 3;

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Gets the access token of `source`: the saved one while it is fresh (unless `force`),
/// otherwise a new one from the token endpoint, saved with its refresh token first.
pub async fn access_token(
    store: &Store,
    http: &HttpClient,
    source: &str,
    oauth: &OAuthConfig,
    force: bool,
) -> Result<Auth, SourceError> {
    let now = chrono::Utc::now().timestamp();
    // A chain started from another configured token is stale: the owner authorized again.
    let saved = store
        .oauth_tokens(source)
        .await?
        .filter(|tokens| tokens.seed == oauth.refresh_token);
    if !force
        && let Some(tokens) = &saved
        && let (Some(access), Some(expires_at)) = (&tokens.access_token, tokens.expires_at)
        && expires_at - EXPIRY_MARGIN.as_secs() as i64 > now
    {
        return Ok(Auth::Bearer(access.clone()));
    }
    let refresh_token = saved
        .as_ref()
        .map_or(&oauth.refresh_token, |tokens| &tokens.refresh_token);
    let answer = refresh(http, oauth, refresh_token).await?;
    let lifetime = answer
        .expires_in
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    let tokens = OAuthTokens {
        seed: oauth.refresh_token.clone(),
        // A provider that does not rotate sends no new refresh token: keep the old one.
        refresh_token: answer
            .refresh_token
            .filter(|token| !token.is_empty())
            .map_or_else(|| refresh_token.clone(), Secret::new),
        access_token: Some(Secret::new(answer.access_token)),
        expires_at: Some(now + lifetime.as_secs() as i64),
    };
    // Saved before use: if this fails, the new access token is not used either.
    store.save_oauth_tokens(source, &tokens, now).await?;
    tracing::info!(
        source,
        expires_in_s = lifetime.as_secs(),
        "OAuth2 access token refreshed"
    );
    let access = tokens.access_token.expect("set above");
    Ok(Auth::Bearer(access))
}

/// One refresh at the token endpoint, retried on network errors and 5xx only (a
/// refused grant stays refused).
async fn refresh(
    http: &HttpClient,
    oauth: &OAuthConfig,
    refresh_token: &Secret,
) -> Result<TokenResponse, SourceError> {
    // What the endpoint could echo back: the client secret (alone and in the Basic
    // header) and the refresh token. Errors are scrubbed of them.
    let mut secrets = Auth::Basic {
        username: Secret::new(oauth.client_id.clone()),
        password: oauth.client_secret.clone(),
    }
    .echoes();
    secrets.retain(|echo| echo != &oauth.client_id);
    secrets.extend(Auth::Bearer(refresh_token.clone()).echoes());
    refresh_once(http, oauth, refresh_token, &secrets)
        .await
        .map_err(|error| error.scrub(&secrets))
}

/// [`refresh`]; the errors it logs are scrubbed of `secrets`, those it returns are not.
async fn refresh_once(
    http: &HttpClient,
    oauth: &OAuthConfig,
    refresh_token: &Secret,
    secrets: &[String],
) -> Result<TokenResponse, SourceError> {
    let endpoint = super::redact_url(&oauth.token_url);
    let mut attempt = 1;
    loop {
        let sent = http
            .inner()
            .post(oauth.token_url.clone())
            .basic_auth(&oauth.client_id, Some(oauth.client_secret.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ])
            .send()
            .await;
        let error = 'failed: {
            let response = match sent {
                Ok(response) => response,
                Err(error) if error.is_redirect() => {
                    // Another origin: the client secret and refresh token stay here.
                    let detail = std::error::Error::source(&error)
                        .map_or_else(|| describe_reqwest_error(&error), ToString::to_string);
                    return Err(SourceError::Redirect { detail });
                }
                Err(error) => {
                    break 'failed SourceError::Transient {
                        detail: format!(
                            "token endpoint {endpoint}: {}",
                            describe_reqwest_error(&error)
                        ),
                    };
                }
            };
            let status = response.status();
            let body = match super::http::read_token_response(response, &endpoint).await {
                Ok(body) => body,
                Err(error @ SourceError::TooLarge { .. }) => return Err(error),
                Err(error) => break 'failed error,
            };
            if status.is_success() {
                return serde_json::from_slice(&body).map_err(|error| SourceError::Malformed {
                    url: endpoint.clone(),
                    detail: format!("token endpoint answer: {error}"),
                });
            }
            let message = api_error_message(&body);
            if status.is_client_error() {
                // RFC 6749 §5.2: invalid_grant = the refresh token is expired,
                // revoked or already used; invalid_client = wrong id or secret.
                return Err(SourceError::Unauthorized {
                    message: format!(
                        "the token endpoint {endpoint} refused the refresh (HTTP {}: {message}); \
                         check client_id and client_secret, or authorize the app again and \
                         set the new refresh_token",
                        status.as_u16()
                    ),
                });
            }
            SourceError::Http {
                status: status.as_u16(),
                url: endpoint.clone(),
                message,
            }
        };
        if attempt >= ATTEMPTS {
            return Err(SourceError::RetriesExhausted {
                attempts: attempt,
                last: Box::new(error),
            });
        }
        let error = error.scrub(secrets);
        tracing::warn!(attempt, error = %error, "OAuth2 token refresh failed, retrying");
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        attempt += 1;
    }
}
