//! The bakery's records as Stripe JSON: refunds, invoices, subscriptions and balance
//! transactions (charges go through the shared `write_charge`), and the stored lists they
//! become.
//!
//! Every object is written once, when the year is built, so serving a page only copies text.

use super::{Bakery, ChargeRec, InvoiceRec, PriceRec, RefundRec, SubscriptionRec, TxnRec};
use crate::demo::sandbox::stripe::draws::Customer;
use crate::demo::sandbox::stripe::lists::{List, StoredList, StoredObject};
use crate::demo::sandbox::stripe::shapes::{ChargeDoc, Obj, write_charge};
use crate::demo::sandbox::stripe::{Resource, StripeData};

const ACCOUNT_NAME: &str = "Maison Rosier";

impl Bakery {
    pub(super) fn into_data(self) -> StripeData {
        let mut data = StripeData::empty();
        let charges = self
            .charges
            .iter()
            .map(|charge| {
                let customer = &self.customers[charge.customer];
                let mut json = String::with_capacity(1_500);
                write_charge(
                    &mut json,
                    &ChargeDoc {
                        id: &charge.id,
                        amount: charge.amount,
                        amount_refunded: charge.amount_refunded,
                        created: charge.created,
                        failure: charge.failure,
                        customer,
                        description: &charge.description,
                        balance_transaction: charge.balance_transaction.as_deref(),
                        payment_intent: &charge.payment_intent,
                        invoice: charge.invoice.as_deref(),
                        order_id: charge.order_id.as_deref(),
                        risk_score: charge.risk_score,
                        receipt_token: &charge.receipt_token,
                    },
                );
                stored(
                    charge.created,
                    &charge.id,
                    json,
                    [
                        ("customer", &customer.id),
                        ("payment_intent", &charge.payment_intent),
                    ],
                )
            })
            .collect();
        let refunds = self
            .refunds
            .iter()
            .map(|refund| {
                let charge = &self.charges[refund.charge];
                let json = write_refund(refund, charge);
                stored(
                    refund.created,
                    &refund.id,
                    json,
                    [
                        ("charge", &charge.id),
                        ("payment_intent", &charge.payment_intent),
                    ],
                )
            })
            .collect();
        let invoices = self
            .invoices
            .iter()
            .map(|invoice| {
                let customer = &self.customers[invoice.customer];
                let json = write_invoice(invoice, customer, &self.prices[invoice.price]);
                stored(
                    invoice.created,
                    &invoice.id,
                    json,
                    [
                        ("customer", &customer.id),
                        ("subscription", &invoice.subscription),
                        ("status", invoice.status),
                    ],
                )
            })
            .collect();
        let subscriptions = self
            .subscriptions
            .iter()
            .map(|sub| {
                let customer = &self.customers[sub.customer];
                let json = write_subscription(sub, customer, &self.prices[sub.price]);
                stored(
                    sub.created,
                    &sub.id,
                    json,
                    [("customer", &customer.id), ("status", sub.status)],
                )
            })
            .collect();
        let txns = self
            .txns
            .iter()
            .map(|txn| {
                stored(
                    txn.created,
                    &txn.id,
                    write_txn(txn, self.now),
                    [("type", txn.kind), ("source", &txn.source)],
                )
            })
            .collect();
        for (resource, objects) in [
            (Resource::Charges, charges),
            (Resource::Refunds, refunds),
            (Resource::Invoices, invoices),
            (Resource::Subscriptions, subscriptions),
            (Resource::BalanceTransactions, txns),
        ] {
            data.lists[resource.slot()] = List::Stored(StoredList::from_objects(objects));
        }
        data
    }
}

fn stored<const N: usize>(
    created: i64,
    id: &str,
    json: String,
    attrs: [(&'static str, &str); N],
) -> StoredObject {
    StoredObject {
        created,
        id: id.into(),
        json: json.into(),
        attrs: attrs
            .into_iter()
            .map(|(field, value)| (field, Box::from(value)))
            .collect(),
    }
}

fn write_refund(refund: &RefundRec, charge: &ChargeRec) -> String {
    let mut json = String::with_capacity(700);
    let mut o = Obj::open(&mut json);
    o.str("id", &refund.id);
    o.str("object", "refund");
    o.int("amount", refund.amount);
    o.str("balance_transaction", &refund.balance_transaction);
    o.str("charge", &charge.id);
    o.int("created", refund.created);
    o.str("currency", "eur");
    o.obj("destination_details", |d| {
        d.obj("card", |c| {
            c.str("reference", &refund.reference);
            c.str("reference_status", "available");
            c.str("reference_type", "acquirer_reference_number");
            c.str("type", "refund");
        });
        d.str("type", "card");
    });
    o.raw("metadata", "{}");
    o.str("payment_intent", &charge.payment_intent);
    o.str("reason", refund.reason);
    o.null("receipt_number");
    o.null("source_transfer_reversal");
    o.str("status", "succeeded");
    o.null("transfer_reversal");
    o.close();
    json
}

fn write_invoice(invoice: &InvoiceRec, customer: &Customer, price: &PriceRec) -> String {
    let mut json = String::with_capacity(1_600);
    let mut o = Obj::open(&mut json);
    let finalized = invoice.finalized_at.is_some();
    o.str("id", &invoice.id);
    o.str("object", "invoice");
    o.str("account_country", "FR");
    o.str("account_name", ACCOUNT_NAME);
    o.int("amount_due", invoice.amount_due);
    o.int("amount_paid", invoice.amount_paid);
    o.int(
        "amount_remaining",
        if invoice.status == "void" {
            0
        } else {
            invoice.amount_due - invoice.amount_paid
        },
    );
    o.int("attempt_count", invoice.attempt_count);
    o.bool(
        "attempted",
        invoice.attempt_count > 0 || invoice.status == "paid",
    );
    o.bool("auto_advance", matches!(invoice.status, "draft" | "open"));
    o.str("billing_reason", invoice.billing_reason);
    o.opt_str("charge", invoice.charge.as_deref());
    o.str("collection_method", "charge_automatically");
    o.int("created", invoice.created);
    o.str("currency", "eur");
    o.str("customer", &customer.id);
    o.str("customer_email", &customer.email);
    o.str("customer_name", &customer.name);
    o.null("description");
    o.null("due_date");
    o.opt_int("ending_balance", finalized.then_some(0));
    o.obj("lines", |lines| {
        lines.str("object", "list");
        lines.array_of_one("data", |line| {
            line.str("id", &invoice.line_id);
            line.str("object", "line_item");
            line.int("amount", invoice.amount_due);
            line.str("currency", "eur");
            let description = if invoice.trial {
                format!("Trial period for {}", price.nickname)
            } else {
                format!(
                    "1 × {} (at €{}.{:02} / month)",
                    price.nickname,
                    price.amount / 100,
                    price.amount % 100
                )
            };
            line.str("description", &description);
            line.obj("period", |p| {
                p.int("end", invoice.period.1);
                p.int("start", invoice.period.0);
            });
            line.str("price", &price.id);
            line.bool("proration", false);
            line.int("quantity", 1);
            line.str("subscription", &invoice.subscription);
            line.str("type", "subscription");
        });
        lines.bool("has_more", false);
        lines.int("total_count", 1);
        lines.str("url", &format!("/v1/invoices/{}/lines", invoice.id));
    });
    o.bool("livemode", false);
    o.raw("metadata", "{}");
    o.opt_str("number", finalized.then_some(invoice.number.as_str()));
    o.bool("paid", invoice.status == "paid");
    o.opt_str("payment_intent", invoice.payment_intent.as_deref());
    o.int("period_end", invoice.period.1);
    o.int("period_start", invoice.period.0);
    o.opt_int("starting_balance", finalized.then_some(0));
    o.str("status", invoice.status);
    o.obj("status_transitions", |s| {
        s.opt_int("finalized_at", invoice.finalized_at);
        s.null("marked_uncollectible_at");
        s.opt_int("paid_at", invoice.paid_at);
        s.opt_int("voided_at", invoice.voided_at);
    });
    o.str("subscription", &invoice.subscription);
    o.int("subtotal", invoice.amount_due);
    o.null("tax");
    o.int("total", invoice.amount_due);
    o.close();
    json
}

fn write_subscription(sub: &SubscriptionRec, customer: &Customer, price: &PriceRec) -> String {
    let mut json = String::with_capacity(1_800);
    let mut o = Obj::open(&mut json);
    o.str("id", &sub.id);
    o.str("object", "subscription");
    o.null("application");
    o.null("application_fee_percent");
    o.int("billing_cycle_anchor", sub.anchor);
    o.opt_int("cancel_at", sub.cancel_at);
    o.bool("cancel_at_period_end", sub.cancel_at_period_end);
    o.opt_int("canceled_at", sub.canceled_at);
    o.obj("cancellation_details", |c| {
        c.null("comment");
        c.opt_str("feedback", sub.cancel_feedback);
        c.opt_str("reason", sub.cancel_reason);
    });
    o.str("collection_method", "charge_automatically");
    o.int("created", sub.created);
    o.str("currency", "eur");
    o.int("current_period_end", sub.period.1);
    o.int("current_period_start", sub.period.0);
    o.str("customer", &customer.id);
    o.null("days_until_due");
    o.str("default_payment_method", &customer.payment_method);
    o.null("description");
    o.null("discount");
    o.opt_int("ended_at", sub.ended_at);
    o.obj("items", |items| {
        items.str("object", "list");
        items.array_of_one("data", |item| {
            item.str("id", &sub.item_id);
            item.str("object", "subscription_item");
            item.int("created", sub.created);
            item.int("current_period_end", sub.period.1);
            item.int("current_period_start", sub.period.0);
            item.raw("metadata", "{}");
            item.obj("price", |p| {
                p.str("id", &price.id);
                p.str("object", "price");
                p.bool("active", true);
                p.str("billing_scheme", "per_unit");
                p.int("created", price.created);
                p.str("currency", "eur");
                p.bool("livemode", false);
                p.null("lookup_key");
                p.raw("metadata", "{}");
                p.str("nickname", price.nickname);
                p.str("product", &price.product);
                p.obj("recurring", |r| {
                    r.str("interval", "month");
                    r.int("interval_count", 1);
                    r.null("meter");
                    r.str("usage_type", "licensed");
                });
                p.str("tax_behavior", "inclusive");
                p.str("type", "recurring");
                p.int("unit_amount", price.amount);
                p.str("unit_amount_decimal", &price.amount.to_string());
            });
            item.int("quantity", 1);
            item.str("subscription", &sub.id);
            item.raw("tax_rates", "[]");
        });
        items.bool("has_more", false);
        items.int("total_count", 1);
        items.str(
            "url",
            &format!("/v1/subscription_items?subscription={}", sub.id),
        );
    });
    o.opt_str("latest_invoice", sub.latest_invoice.as_deref());
    o.bool("livemode", false);
    o.raw("metadata", "{}");
    o.null("pause_collection");
    o.int("quantity", 1);
    o.null("schedule");
    o.int("start_date", sub.created);
    o.str("status", sub.status);
    o.opt_int("trial_end", sub.trial.map(|t| t.1));
    o.opt_int("trial_start", sub.trial.map(|t| t.0));
    o.close();
    json
}

fn write_txn(txn: &TxnRec, now: i64) -> String {
    let mut json = String::with_capacity(700);
    let mut o = Obj::open(&mut json);
    o.str("id", &txn.id);
    o.str("object", "balance_transaction");
    o.int("amount", txn.amount);
    o.int("available_on", txn.available_on);
    o.int("created", txn.created);
    o.str("currency", "eur");
    o.opt_str("description", txn.description.as_deref());
    o.null("exchange_rate");
    o.int("fee", txn.fee);
    if txn.fee > 0 {
        o.array_of_one("fee_details", |f| {
            f.int("amount", txn.fee);
            f.null("application");
            f.str("currency", "eur");
            f.str("description", "Stripe processing fees");
            f.str("type", "stripe_fee");
        });
    } else {
        o.raw("fee_details", "[]");
    }
    o.int("net", txn.amount - txn.fee);
    o.str("reporting_category", txn.kind);
    o.str("source", &txn.source);
    o.str(
        "status",
        if txn.available_on <= now {
            "available"
        } else {
            "pending"
        },
    );
    o.str("type", txn.kind);
    o.close();
    json
}
