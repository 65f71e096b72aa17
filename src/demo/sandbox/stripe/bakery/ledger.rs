//! Money after the sale: refunds of web orders, one balance transaction per paid charge and
//! per refund (with Stripe's fee), and the Monday payouts.
//!
//! It runs after orders and subscriptions because it reads every charge they made.

use super::{Bakery, DAY, RefundRec, TxnRec, midnight};
use crate::demo::sandbox::stripe::draws::weighted;

impl Bakery {
    /// About 2% of paid web orders are refunded, in full or in part, days later.
    pub(super) fn refunds(&mut self) {
        for charge in 0..self.charges.len() {
            let (created, amount, refundable) = {
                let c = &self.charges[charge];
                (
                    c.created,
                    c.amount,
                    c.failure.is_none() && c.order_id.is_some(),
                )
            };
            if !refundable || self.rng.f64() >= 0.022 {
                continue;
            }
            let refund_created = created + self.rng.i64(DAY..10 * DAY);
            let full = self.rng.f64() < 0.75;
            let share = self.rng.i64(30..=70);
            let reason = ["requested_by_customer", "duplicate", "fraudulent"]
                [weighted(&mut self.rng, &[80, 12, 8])];
            if refund_created >= self.now {
                continue;
            }
            let refund_amount = if full {
                amount
            } else {
                (amount * share / 100 / 10 * 10).clamp(100.min(amount), amount)
            };
            let id = self.new_id("re_", 24);
            let balance_transaction = self.new_id("txn_", 24);
            let reference = (0..23).map(|_| self.rng.digit(10)).collect();
            self.charges[charge].amount_refunded += refund_amount;
            self.refunds.push(RefundRec {
                id,
                charge,
                amount: refund_amount,
                created: refund_created,
                reason,
                balance_transaction,
                reference,
            });
        }
    }

    /// One transaction per paid charge and per refund, funds available after 7 days, and a
    /// payout every Monday of what became available during the week.
    pub(super) fn balance_transactions(&mut self) {
        let mut txns = Vec::with_capacity(self.charges.len() + self.refunds.len() + 60);
        for charge in &self.charges {
            let Some(id) = &charge.balance_transaction else {
                continue;
            };
            let card_country = self.customers[charge.customer].card_country;
            txns.push(TxnRec {
                id: id.clone(),
                amount: charge.amount,
                fee: stripe_fee(charge.amount, card_country),
                created: charge.created,
                available_on: midnight(charge.created) + 7 * DAY,
                kind: "charge",
                source: charge.id.clone(),
                description: Some(charge.description.clone()),
            });
        }
        for refund in &self.refunds {
            let charge = &self.charges[refund.charge];
            txns.push(TxnRec {
                id: refund.balance_transaction.clone(),
                amount: -refund.amount,
                fee: 0,
                created: refund.created,
                available_on: midnight(refund.created),
                kind: "refund",
                source: refund.id.clone(),
                description: Some(format!("REFUND FOR CHARGE ({})", charge.description)),
            });
        }
        let mut available: Vec<(i64, i64)> = txns
            .iter()
            .map(|t| (t.available_on, t.amount - t.fee))
            .collect();
        available.sort_unstable();
        let first_midnight = midnight(self.window_start);
        // 1970-01-01 was a Thursday: day number 4 (mod 7) is a Monday.
        let mut monday =
            first_midnight + (4 - (first_midnight / DAY).rem_euclid(7)).rem_euclid(7) * DAY;
        let mut next = 0;
        while monday + 6 * 3_600 < self.now {
            let mut total = 0;
            while next < available.len() && available[next].0 <= monday {
                total += available[next].1;
                next += 1;
            }
            if total > 0 {
                let id = self.new_id("txn_", 24);
                let payout = self.new_id("po_", 24);
                txns.push(TxnRec {
                    id,
                    amount: -total,
                    fee: 0,
                    created: monday + 6 * 3_600,
                    available_on: monday,
                    kind: "payout",
                    source: payout,
                    description: Some("STRIPE PAYOUT".to_owned()),
                });
            }
            monday += 7 * DAY;
        }
        self.txns = txns;
    }
}

/// Stripe's standard pricing for a French account: 1.5% + €0.25 for EEA cards, 2.5% + €0.25
/// for UK cards, 3.25% + €0.25 for other international cards (rounded to the cent).
fn stripe_fee(amount: i64, card_country: &str) -> i64 {
    let basis_points = match card_country {
        "GB" => 250,
        "CH" => 325,
        _ => 150,
    };
    (amount * basis_points + 5_000) / 10_000 + 25
}
