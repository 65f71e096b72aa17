//! The benchmark's charges, computed from their index instead of stored.
//!
//! Charge `i` has a fixed id (`ch_bench` and `i` in 16 digits), a creation time that grows
//! with `i`, and everything else drawn from a generator seeded by `i` alone. So any page can be
//! written without touching the charges before it, a cursor decodes to its index without a
//! lookup, and a page costs O(page) however long the list is. Nothing here may keep state per
//! charge, or a list of millions would cost memory in proportion.

use chrono::{DateTime, Datelike};

use super::draws::{Customer, Failure, risk_score};
use super::shapes::{ChargeDoc, write_charge};

/// Charges computed from their index: nothing is stored per object.
#[derive(Clone, Debug)]
pub(super) struct SyntheticCharges {
    pub(super) count: u64,
    start: i64,
    span: i64,
    card_year: i32,
}

/// Synthetic ids are `ch_bench` plus the index in 16 zero-padded digits, so that string order
/// is index order (ties in `created` then sort by id as Stripe's list order needs) and a cursor
/// decodes to its index without a lookup.
const SYNTHETIC_CHARGE_PREFIX: &str = "ch_bench";
const SYNTHETIC_INDEX_DIGITS: usize = 16;
const SYNTHETIC_MAX_COUNT: u64 = 10_000_000_000_000_000;
const SYNTHETIC_CUSTOMERS: u32 = 20_000;

impl SyntheticCharges {
    /// `n` charges (capped so that every index fits the id's 16 digits) spread evenly from
    /// `start` to `end`; an `end` before `start` puts them all at `start`.
    pub(super) fn new(n: u64, start: i64, end: i64) -> SyntheticCharges {
        let card_year = DateTime::from_timestamp(start, 0).map_or(2026, |at| at.year());
        SyntheticCharges {
            count: n.min(SYNTHETIC_MAX_COUNT - 1),
            start,
            span: end.saturating_sub(start).max(0),
            card_year,
        }
    }

    pub(super) fn created(&self, index: u64) -> i64 {
        let offset = i128::from(self.span) * i128::from(index) / i128::from(self.count.max(1));
        self.start + offset as i64
    }

    pub(super) fn index_of(&self, id: &str) -> Option<u64> {
        let digits = id.strip_prefix(SYNTHETIC_CHARGE_PREFIX)?;
        if digits.len() != SYNTHETIC_INDEX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|index| *index < self.count)
    }

    fn draw(index: u64) -> SyntheticDraw {
        let mut rng =
            fastrand::Rng::with_seed(index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0005_EED5);
        let customer = rng.u32(..SYNTHETIC_CUSTOMERS);
        let amount = i64::from(rng.u32(45..=950)) * 10;
        let roll = rng.u32(..1000);
        let failure = (roll < 35).then(|| Failure::pick(&mut rng));
        let amount_refunded = if (35..50).contains(&roll) { amount } else { 0 };
        let risk_score = risk_score(&mut rng, failure);
        let mut receipt_token = String::with_capacity(40);
        for _ in 0..40 {
            receipt_token.push(rng.alphanumeric());
        }
        SyntheticDraw {
            customer,
            amount,
            amount_refunded,
            failure,
            risk_score,
            receipt_token,
        }
    }

    fn customer_id(customer: u32) -> String {
        format!("cus_bench{customer:09}")
    }

    pub(super) fn attr(&self, index: u64, field: &str) -> Option<String> {
        match field {
            "customer" => Some(Self::customer_id(Self::draw(index).customer)),
            "payment_intent" => Some(format!("pi_bench{index:016}")),
            _ => None,
        }
    }

    pub(super) fn write(&self, index: u64, out: &mut String) {
        let draw = Self::draw(index);
        let mut customer_rng = fastrand::Rng::with_seed(u64::from(draw.customer) ^ 0xC057_0000);
        let customer = Customer::generate(
            &mut customer_rng,
            Self::customer_id(draw.customer),
            format!("pm_bench{:016}", draw.customer),
            self.card_year,
        );
        let id = format!("{SYNTHETIC_CHARGE_PREFIX}{index:016}");
        let balance_transaction = format!("txn_bench{index:016}");
        let payment_intent = format!("pi_bench{index:016}");
        let order_id = (100_000 + index).to_string();
        let description = format!("Order {order_id}");
        write_charge(
            out,
            &ChargeDoc {
                id: &id,
                amount: draw.amount,
                amount_refunded: draw.amount_refunded,
                created: self.created(index),
                failure: draw.failure,
                customer: &customer,
                description: &description,
                balance_transaction: draw
                    .failure
                    .is_none()
                    .then_some(balance_transaction.as_str()),
                payment_intent: &payment_intent,
                invoice: None,
                order_id: Some(&order_id),
                risk_score: draw.risk_score,
                receipt_token: &draw.receipt_token,
            },
        );
    }
}

struct SyntheticDraw {
    customer: u32,
    amount: i64,
    amount_refunded: i64,
    failure: Option<Failure>,
    risk_score: i64,
    receipt_token: String,
}
