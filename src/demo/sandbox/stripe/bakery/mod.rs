//! The demo's data: a small Lyon bakery's last 12 months on Stripe, built as plain records and
//! then written once as stored JSON.
//!
//! [`Bakery`] holds the seeded generator, the customers and every record made so far. Each
//! child adds one activity: web orders (`orders`), the coffee club's subscriptions and invoices
//! (`coffee_club`), refunds, balance transactions and payouts (`ledger`), and the records'
//! JSON (`shapes`). Records point at each other by index into `Bakery`'s vectors, so nothing is
//! looked up by id while the year is built. The bakery must not read a clock (`now` comes in)
//! or draw from any generator but its own, or a seed would stop giving the same objects.

mod coffee_club;
mod ledger;
mod orders;
mod shapes;

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Utc};

use super::draws::{Customer, Failure, risk_score};
use super::{DAY, StripeData};

/// The bakery's 12 months before `now` as stored lists (see [`StripeData::bakery`]).
///
/// The steps share one generator, so they run in this fixed order: refunds and balance
/// transactions read the charges the orders and subscriptions made, and any other order would
/// change every object a seed gives.
pub(super) fn generate(now: DateTime<Utc>, seed: u64) -> StripeData {
    let mut bakery = Bakery::new(now.timestamp(), now.year(), seed);
    bakery.one_off_orders();
    bakery.subscriptions();
    bakery.refunds();
    bakery.balance_transactions();
    bakery.into_data()
}

struct PriceRec {
    id: String,
    product: String,
    nickname: &'static str,
    amount: i64,
    created: i64,
}

const COFFEE_CLUB: [(&str, i64); 2] = [("Coffee Club Classic", 1900), ("Coffee Club Plus", 2900)];

struct ChargeRec {
    id: String,
    created: i64,
    amount: i64,
    amount_refunded: i64,
    failure: Option<Failure>,
    customer: usize,
    description: String,
    balance_transaction: Option<String>,
    payment_intent: String,
    invoice: Option<String>,
    order_id: Option<String>,
    risk_score: i64,
    receipt_token: String,
}

struct NewCharge {
    created: i64,
    amount: i64,
    customer: usize,
    description: String,
    payment_intent: String,
    invoice: Option<String>,
    order_id: Option<String>,
    failure: Option<Failure>,
}

struct RefundRec {
    id: String,
    charge: usize,
    amount: i64,
    created: i64,
    reason: &'static str,
    balance_transaction: String,
    reference: String,
}

struct InvoiceRec {
    id: String,
    line_id: String,
    number: String,
    customer: usize,
    subscription: String,
    price: usize,
    created: i64,
    period: (i64, i64),
    amount_due: i64,
    amount_paid: i64,
    status: &'static str,
    attempt_count: i64,
    billing_reason: &'static str,
    charge: Option<String>,
    payment_intent: Option<String>,
    finalized_at: Option<i64>,
    paid_at: Option<i64>,
    voided_at: Option<i64>,
    trial: bool,
}

struct SubscriptionRec {
    id: String,
    item_id: String,
    customer: usize,
    price: usize,
    created: i64,
    anchor: i64,
    status: &'static str,
    trial: Option<(i64, i64)>,
    period: (i64, i64),
    canceled_at: Option<i64>,
    ended_at: Option<i64>,
    cancel_at: Option<i64>,
    cancel_at_period_end: bool,
    cancel_reason: Option<&'static str>,
    cancel_feedback: Option<&'static str>,
    latest_invoice: Option<String>,
}

struct TxnRec {
    id: String,
    amount: i64,
    fee: i64,
    created: i64,
    available_on: i64,
    kind: &'static str,
    source: String,
    description: Option<String>,
}

/// Builds the bakery's year; every random draw comes from one seeded generator in a fixed
/// order, so a seed always gives the same objects.
struct Bakery {
    rng: fastrand::Rng,
    now: i64,
    window_start: i64,
    ids: HashSet<String>,
    customers: Vec<Customer>,
    invoice_counts: Vec<u32>,
    prices: Vec<PriceRec>,
    charges: Vec<ChargeRec>,
    refunds: Vec<RefundRec>,
    invoices: Vec<InvoiceRec>,
    subscriptions: Vec<SubscriptionRec>,
    txns: Vec<TxnRec>,
}

impl Bakery {
    const CUSTOMERS: usize = 2_400;

    fn new(now: i64, year: i32, seed: u64) -> Bakery {
        let mut bakery = Bakery {
            rng: fastrand::Rng::with_seed(seed),
            now,
            window_start: now - 365 * DAY,
            ids: HashSet::new(),
            customers: Vec::with_capacity(Self::CUSTOMERS),
            invoice_counts: vec![0; Self::CUSTOMERS],
            prices: Vec::new(),
            charges: Vec::new(),
            refunds: Vec::new(),
            invoices: Vec::new(),
            subscriptions: Vec::new(),
            txns: Vec::new(),
        };
        for _ in 0..Self::CUSTOMERS {
            let id = bakery.new_id("cus_", 14);
            let payment_method = bakery.new_id("pm_", 24);
            let customer = Customer::generate(&mut bakery.rng, id, payment_method, year);
            bakery.customers.push(customer);
        }
        for (nickname, amount) in COFFEE_CLUB {
            let id = bakery.new_id("price_", 24);
            let product = bakery.new_id("prod_", 14);
            bakery.prices.push(PriceRec {
                id,
                product,
                nickname,
                amount,
                created: bakery.window_start - 30 * DAY,
            });
        }
        bakery
    }

    fn new_id(&mut self, prefix: &str, len: usize) -> String {
        loop {
            let mut id = String::with_capacity(prefix.len() + len);
            id.push_str(prefix);
            for _ in 0..len {
                id.push(self.rng.alphanumeric());
            }
            if self.ids.insert(id.clone()) {
                return id;
            }
        }
    }

    fn random_text(&mut self, len: usize) -> String {
        (0..len).map(|_| self.rng.alphanumeric()).collect()
    }

    fn add_charge(&mut self, new: NewCharge) -> String {
        let id = self.new_id("ch_", 24);
        let balance_transaction = new.failure.is_none().then(|| self.new_id("txn_", 24));
        let risk_score = risk_score(&mut self.rng, new.failure);
        let receipt_token = self.random_text(40);
        self.charges.push(ChargeRec {
            id: id.clone(),
            created: new.created,
            amount: new.amount,
            amount_refunded: 0,
            failure: new.failure,
            customer: new.customer,
            description: new.description,
            balance_transaction,
            payment_intent: new.payment_intent,
            invoice: new.invoice,
            order_id: new.order_id,
            risk_score,
            receipt_token,
        });
        id
    }
}

fn midnight(timestamp: i64) -> i64 {
    timestamp - timestamp.rem_euclid(DAY)
}
