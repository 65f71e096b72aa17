//! The coffee club: monthly subscriptions with an optional 14-day trial, renewals charged an
//! hour into each period with one Smart Retry, cancellations, and one invoice per billed
//! period.
//!
//! Statuses follow Stripe's lifecycle (`trialing`, `active`, `past_due`, `canceled`) as seen
//! at `now`; a period that starts at or after `now` is not billed yet.

use chrono::{DateTime, Months, Utc};

use super::{Bakery, DAY, InvoiceRec, NewCharge, SubscriptionRec, midnight};
use crate::demo::sandbox::stripe::draws::Failure;

const CANCEL_FEEDBACK: [&str; 5] = [
    "too_expensive",
    "unused",
    "switched_service",
    "other",
    "low_quality",
];

impl Bakery {
    /// The coffee club: sign-ups grow through the year; some try it first, some leave.
    pub(super) fn subscriptions(&mut self) {
        let first_midnight = midnight(self.window_start);
        for day in 0..=365 {
            let day_start = first_midnight + day * DAY;
            let rate = 0.45 + 0.9 * day as f64 / 365.0;
            let count = rate.floor() as u32 + u32::from(self.rng.f64() < rate.fract());
            for _ in 0..count {
                let created = day_start + self.rng.i64(7 * 3_600..22 * 3_600);
                let customer = self.rng.usize(..self.customers.len());
                let price = usize::from(self.rng.f64() < 0.4);
                let trial = self.rng.f64() < 0.2;
                if created < self.window_start || created >= self.now {
                    continue;
                }
                self.simulate_subscription(created, customer, price, trial);
            }
        }
    }

    fn new_invoice(
        &mut self,
        sub: &SubscriptionRec,
        created: i64,
        period: (i64, i64),
        amount: i64,
        billing_reason: &'static str,
    ) -> InvoiceRec {
        let id = self.new_id("in_", 24);
        let line_id = self.new_id("il_", 24);
        self.invoice_counts[sub.customer] += 1;
        let number = format!(
            "{}-{:04}",
            self.customers[sub.customer].invoice_prefix, self.invoice_counts[sub.customer]
        );
        InvoiceRec {
            id,
            line_id,
            number,
            customer: sub.customer,
            subscription: sub.id.clone(),
            price: sub.price,
            created,
            period,
            amount_due: amount,
            amount_paid: 0,
            status: "draft",
            attempt_count: 0,
            billing_reason,
            charge: None,
            payment_intent: None,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            trial: amount == 0,
        }
    }

    fn simulate_subscription(&mut self, created: i64, customer: usize, price: usize, trial: bool) {
        let id = self.new_id("sub_", 24);
        let item_id = self.new_id("si_", 14);
        let amount = self.prices[price].amount;
        let mut sub = SubscriptionRec {
            id,
            item_id,
            customer,
            price,
            created,
            anchor: created,
            status: "active",
            trial: None,
            period: (created, created),
            canceled_at: None,
            ended_at: None,
            cancel_at: None,
            cancel_at_period_end: false,
            cancel_reason: None,
            cancel_feedback: None,
            latest_invoice: None,
        };
        if trial {
            // A 14-day trial starts with a paid zero-amount invoice, as in Stripe.
            let trial_end = created + 14 * DAY;
            sub.trial = Some((created, trial_end));
            sub.anchor = trial_end;
            sub.period = (created, trial_end);
            let mut invoice = self.new_invoice(
                &sub,
                created,
                (created, trial_end),
                0,
                "subscription_create",
            );
            invoice.status = "paid";
            invoice.finalized_at = Some(created);
            invoice.paid_at = Some(created);
            sub.latest_invoice = Some(invoice.id.clone());
            self.invoices.push(invoice);
            if trial_end >= self.now {
                sub.status = "trialing";
                self.subscriptions.push(sub);
                return;
            }
        }
        let anchor =
            DateTime::from_timestamp(sub.anchor, 0).expect("the anchor lies within a year of now");
        let description = |first: bool| {
            if first {
                "Subscription creation"
            } else {
                "Subscription update"
            }
        };
        for k in 0u32.. {
            let period_start = add_months(anchor, k);
            let period_end = add_months(anchor, k + 1);
            if period_start >= self.now {
                break;
            }
            // Some members leave at a renewal; they asked during the month before.
            if k >= 1 && self.rng.f64() < 0.045 {
                let canceled_at = (period_start - self.rng.i64(DAY..20 * DAY)).max(sub.period.0);
                sub.status = "canceled";
                sub.canceled_at = Some(canceled_at);
                sub.ended_at = Some(period_start);
                sub.cancel_at = Some(period_start);
                sub.cancel_at_period_end = true;
                sub.cancel_reason = Some("cancellation_requested");
                sub.cancel_feedback =
                    Some(CANCEL_FEEDBACK[self.rng.usize(..CANCEL_FEEDBACK.len())]);
                break;
            }
            sub.period = (period_start, period_end);
            let first = k == 0 && sub.trial.is_none();
            let reason = if first {
                "subscription_create"
            } else {
                "subscription_cycle"
            };
            let mut invoice = self.new_invoice(
                &sub,
                period_start,
                (period_start, period_end),
                amount,
                reason,
            );
            // Renewal invoices stay drafts for an hour before Stripe finalizes and charges them.
            let attempt_at = period_start + if first { 2 } else { 3_600 };
            if attempt_at >= self.now {
                sub.latest_invoice = Some(invoice.id.clone());
                self.invoices.push(invoice);
                break;
            }
            let payment_intent = self.new_id("pi_", 24);
            invoice.payment_intent = Some(payment_intent.clone());
            invoice.finalized_at = Some(attempt_at);
            invoice.status = "open";
            invoice.attempt_count = 1;
            let failure = (self.rng.f64() < 0.04).then(|| Failure::pick_renewal(&mut self.rng));
            let charge = self.add_charge(NewCharge {
                created: attempt_at,
                amount,
                customer,
                description: description(first).to_owned(),
                payment_intent: payment_intent.clone(),
                invoice: Some(invoice.id.clone()),
                order_id: None,
                failure,
            });
            invoice.charge = Some(charge);
            let mut paid_at = failure.is_none().then_some(attempt_at);
            if failure.is_some() {
                // Smart Retries try again a few days later.
                let retry_at = attempt_at + 3 * DAY + self.rng.i64(0..3_600);
                let retry_failure =
                    (self.rng.f64() >= 0.6).then(|| Failure::pick_renewal(&mut self.rng));
                if retry_at < self.now {
                    invoice.attempt_count = 2;
                    let charge = self.add_charge(NewCharge {
                        created: retry_at,
                        amount,
                        customer,
                        description: description(first).to_owned(),
                        payment_intent,
                        invoice: Some(invoice.id.clone()),
                        order_id: None,
                        failure: retry_failure,
                    });
                    invoice.charge = Some(charge);
                    paid_at = retry_failure.is_none().then_some(retry_at);
                }
            }
            if let Some(paid_at) = paid_at {
                invoice.status = "paid";
                invoice.amount_paid = amount;
                invoice.paid_at = Some(paid_at);
            } else {
                // After two weeks of failed retries the invoice is voided and the
                // subscription canceled; before that the subscription is past due.
                let give_up_at = attempt_at + 14 * DAY;
                if give_up_at < self.now {
                    invoice.status = "void";
                    invoice.voided_at = Some(give_up_at);
                    sub.status = "canceled";
                    sub.canceled_at = Some(give_up_at);
                    sub.ended_at = Some(give_up_at);
                    sub.cancel_reason = Some("payment_failed");
                } else {
                    sub.status = "past_due";
                }
            }
            sub.latest_invoice = Some(invoice.id.clone());
            self.invoices.push(invoice);
            if sub.status != "active" {
                break;
            }
        }
        if sub.status == "active" && self.rng.f64() < 0.05 {
            // A member who asked to stop at the end of the month already paid for.
            let canceled_at = (self.now - self.rng.i64(DAY..10 * DAY)).max(sub.period.0);
            sub.cancel_at_period_end = true;
            sub.cancel_at = Some(sub.period.1);
            sub.canceled_at = Some(canceled_at);
            sub.cancel_reason = Some("cancellation_requested");
        }
        self.subscriptions.push(sub);
    }
}

fn add_months(start: DateTime<Utc>, months: u32) -> i64 {
    start
        .checked_add_months(Months::new(months))
        .expect("a year of monthly periods stays representable")
        .timestamp()
}
