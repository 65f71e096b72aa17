//! The dispatcher: delivers outbox messages, records every attempt, retries with backoff.
//!
//! A message is claimed (its next attempt moved [`CLAIM`] ahead, with `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL so two replicas never take the same one), delivered through its
//! channel, and its attempt recorded with the outcome:
//! - delivered: done; a receiver that answered 2xx is never called again for it;
//! - retry (network errors, timeouts, 5xx, 408, 429, temporary SMTP failures): again
//!   after [`backoff`] (5 s doubling to an hour, or the receiver's `Retry-After`), until
//!   `give_up` after its creation, then expired;
//! - failed (other 4xx, permanent SMTP failures, a channel no longer configured): done;
//! - gone (410): failed, and the channel's address disabled until the configuration
//!   names another one.
//!
//! A dispatcher that dies between claim and record leaves the claim to lapse: the message
//! is delivered again after restart (at least once; `webhook-id` lets receivers
//! de-duplicate).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Notification, Outcome};
use crate::config::{NotifyConfig, NotifyKind, Settings};
use crate::store::{OutboxRow, Store, StoreError};

/// How long a claimed message is left alone by other dispatchers.
pub const CLAIM: Duration = Duration::from_secs(120);
/// Messages claimed per round.
const BATCH: i64 = 20;
/// The longest wait between two rounds (new messages also wake the dispatcher).
const IDLE: Duration = Duration::from_secs(5);
/// First retry delay; doubles per attempt.
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// Longest retry delay.
const MAX_RETRY: Duration = Duration::from_secs(3600);

/// The delay before retry number `attempt` (1-based): 5 s, 10 s, 20 s, … up to an hour,
/// with ±20 % jitter so a receiver coming back is not hit by every message at once.
pub fn backoff(attempt: i64) -> Duration {
    let exponent = attempt.clamp(1, 20) as u32 - 1;
    let base = FIRST_RETRY
        .saturating_mul(1u32 << exponent.min(16))
        .min(MAX_RETRY);
    base.mul_f64(0.8 + 0.4 * fastrand::f64())
}

/// Delivers outbox messages.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    settings: Arc<Settings>,
    http: reqwest::Client,
}

/// The address a channel delivers to (what a 410 disables).
fn target_of(channel: &NotifyConfig) -> String {
    match &channel.kind {
        NotifyKind::Email { to, .. } => to.join(", "),
        NotifyKind::Webhook { url, .. } => crate::sources::redact_url(url),
    }
}

impl Dispatcher {
    /// A dispatcher over the store and the configured channels.
    pub fn new(store: Store, settings: Arc<Settings>) -> Result<Self, reqwest::Error> {
        // Never follows redirects: the signed body goes only where the configuration says.
        let http = super::webhook::client()?;
        Ok(Self {
            store,
            settings,
            http,
        })
    }

    /// Delivers one notification through `channel` now (the outbox's deliveries and
    /// `scorekeeper notify test`).
    pub async fn deliver(&self, channel: &NotifyConfig, notification: &Notification) -> Outcome {
        match &channel.kind {
            NotifyKind::Email { to, .. } => match &self.settings.smtp {
                Some(smtp) => super::email::send(smtp, to, notification).await,
                None => Outcome::Failed {
                    error: "no [smtp] section is configured".into(),
                },
            },
            NotifyKind::Webhook {
                url,
                secret,
                format,
            } => {
                super::webhook::send(&self.http, url, secret.as_ref(), *format, notification).await
            }
        }
    }

    /// Claims and delivers every message due at `now`, once each; returns how many
    /// attempts were made.
    pub async fn run_once(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize, StoreError> {
        let now_s = now.timestamp();
        let claimed = self
            .store
            .claim_due(now_s, now_s + CLAIM.as_secs() as i64, BATCH)
            .await?;
        let count = claimed.len();
        for message in claimed {
            self.attempt(message).await?;
        }
        Ok(count)
    }

    async fn attempt(&self, mut message: OutboxRow) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        message.attempts += 1;
        let expired = now > message.expires_at;
        let outcome = if expired {
            Outcome::Failed {
                error: format!(
                    "expired: the give_up time passed before it could be delivered ({now} > {})",
                    message.expires_at
                ),
            }
        } else {
            match self.settings.notify.get(&message.channel) {
                None => Outcome::Failed {
                    error: format!("channel {} is no longer configured", message.channel),
                },
                Some(channel) => match self.store.disabled_channel(&channel.name).await? {
                    Some((target, reason)) if target == target_of(channel) => Outcome::Failed {
                        error: format!("the channel is disabled: {reason}"),
                    },
                    _ => match serde_json::from_str::<Notification>(&message.body) {
                        Ok(notification) => self.deliver(channel, &notification).await,
                        Err(error) => Outcome::Failed {
                            error: format!("unreadable message body: {error}"),
                        },
                    },
                },
            }
        };
        let finished = chrono::Utc::now().timestamp();
        let (result, error) = match outcome {
            Outcome::Delivered => {
                message.status = "delivered".into();
                message.finished_at = Some(finished);
                message.last_error = None;
                ("delivered", None)
            }
            Outcome::Retry { error, after } => {
                let delay = after
                    .unwrap_or_else(|| backoff(message.attempts))
                    .min(MAX_RETRY);
                let next = finished + delay.as_secs().max(1) as i64;
                if next > message.expires_at {
                    message.status = "expired".into();
                    message.finished_at = Some(finished);
                    ("expired", Some(error))
                } else {
                    message.next_attempt_at = next;
                    ("retry", Some(error))
                }
            }
            Outcome::Failed { error } => {
                message.status = if expired {
                    "expired".into()
                } else {
                    "failed".into()
                };
                message.finished_at = Some(finished);
                ("failed", Some(error))
            }
            Outcome::Gone { error } => {
                message.status = "failed".into();
                message.finished_at = Some(finished);
                if let Some(channel) = self.settings.notify.get(&message.channel) {
                    let reason = format!(
                        "the receiver answered 410 Gone ({error}); change the channel's address to enable it again"
                    );
                    self.store
                        .disable_channel(&channel.name, &target_of(channel), &reason, finished)
                        .await?;
                    tracing::error!(channel = %channel.name, "Channel disabled: {reason}");
                }
                ("gone", Some(error))
            }
        };
        message.last_error = error.clone();
        // Recorded first, logged after: a log line always describes a stored fact.
        self.store
            .record_attempt(&message, finished, result, error.as_deref())
            .await?;
        match (result, &error) {
            ("delivered", _) => {
                tracing::info!(channel = %message.channel, notification = %message.id, attempt = message.attempts, "Notification delivered")
            }
            (result, Some(error)) => {
                tracing::warn!(channel = %message.channel, notification = %message.id, attempt = message.attempts, result, error = %error, "Notification not delivered")
            }
            _ => {}
        }
        Ok(())
    }

    /// Runs until `cancel` fires: a round every few seconds, or at once when `wake` is
    /// notified (an evaluation enqueued messages).
    pub async fn run(self, wake: Arc<Notify>, cancel: CancellationToken) {
        loop {
            match self.run_once(chrono::Utc::now()).await {
                // A full batch: more may be due, go again at once.
                Ok(count) if count as i64 >= BATCH => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(error = %error, "Dispatching notifications failed; retrying shortly")
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(IDLE) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_seconds_and_caps_at_an_hour() {
        for (attempt, base) in [(1, 5), (2, 10), (3, 20), (4, 40), (10, 2560), (30, 3600)] {
            for _ in 0..20 {
                let delay = backoff(attempt).as_secs_f64();
                let base = base as f64;
                assert!(
                    delay >= base * 0.8 - 1e-9 && delay <= base * 1.2 + 1e-9,
                    "attempt {attempt}: {delay}"
                );
            }
        }
    }
}
