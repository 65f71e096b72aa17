//! JSON text without `serde_json::Value`: the [`Obj`] writer every object goes through, and
//! the charge shape ([`ChargeDoc`], [`write_charge`]) that the bakery and the synthetic list
//! share.
//!
//! Writing straight into a `String` is what keeps a synthetic page cheap (no tree per object)
//! and lets stored pages be plain concatenations. Keys are trusted literals; values are
//! escaped.

use std::fmt::Write as _;

use super::draws::{Customer, Failure};

const RECEIPT_URL_PREFIX: &str =
    "https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8xUm9zaWVyQmFrZXJ5";

/// Writes one JSON object straight into a string; keys are trusted literals, values escaped.
pub(super) struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(super) fn open(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    pub(super) fn close(self) {
        self.out.push('}');
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    pub(super) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_str(self.out, value);
    }

    pub(super) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.null(key),
        }
    }

    pub(super) fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        let _ = write!(self.out, "{value}");
    }

    pub(super) fn opt_int(&mut self, key: &str, value: Option<i64>) {
        match value {
            Some(value) => self.int(key, value),
            None => self.null(key),
        }
    }

    pub(super) fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    pub(super) fn null(&mut self, key: &str) {
        self.key(key);
        self.out.push_str("null");
    }

    /// A literal JSON value such as `{}` or `[]`.
    pub(super) fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.out.push_str(json);
    }

    pub(super) fn obj(&mut self, key: &str, fill: impl FnOnce(&mut Obj<'_>)) {
        self.key(key);
        let mut child = Obj::open(&mut *self.out);
        fill(&mut child);
        child.close();
    }

    /// An array holding exactly one object.
    pub(super) fn array_of_one(&mut self, key: &str, fill: impl FnOnce(&mut Obj<'_>)) {
        self.key(key);
        self.out.push('[');
        let mut child = Obj::open(&mut *self.out);
        fill(&mut child);
        child.close();
        self.out.push(']');
    }
}

fn push_json_str(out: &mut String, value: &str) {
    out.push('"');
    if !value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(value);
    } else {
        for ch in value.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                ch if (ch as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", ch as u32);
                }
                ch => out.push(ch),
            }
        }
    }
    out.push('"');
}

/// Everything a charge object shows; shared by the stored and the synthetic form so both have
/// the same shape.
///
/// The object carries the fields of <https://docs.stripe.com/api/charges/object> that a
/// connector reads, plus the common nested ones (billing details, outcome, card). Fields that
/// are always null for a shop like this (Connect transfers, application fees, shipping, review,
/// statement descriptors, 3-D Secure and wallet details) are left out, which keeps a charge at
/// about 1.25 KB, the size the benchmark assumes.
pub(super) struct ChargeDoc<'a> {
    pub(super) id: &'a str,
    pub(super) amount: i64,
    pub(super) amount_refunded: i64,
    pub(super) created: i64,
    pub(super) failure: Option<Failure>,
    pub(super) customer: &'a Customer,
    pub(super) description: &'a str,
    pub(super) balance_transaction: Option<&'a str>,
    pub(super) payment_intent: &'a str,
    pub(super) invoice: Option<&'a str>,
    pub(super) order_id: Option<&'a str>,
    pub(super) risk_score: i64,
    pub(super) receipt_token: &'a str,
}

/// Appends `charge` to `out` as a Stripe charge object.
pub(super) fn write_charge(out: &mut String, charge: &ChargeDoc<'_>) {
    let failure = charge.failure;
    let paid = failure.is_none();
    let customer = charge.customer;
    let mut o = Obj::open(out);
    o.str("id", charge.id);
    o.str("object", "charge");
    o.int("amount", charge.amount);
    o.int("amount_captured", if paid { charge.amount } else { 0 });
    o.int("amount_refunded", charge.amount_refunded);
    o.opt_str("balance_transaction", charge.balance_transaction);
    o.obj("billing_details", |b| {
        b.obj("address", |a| {
            a.str("city", customer.city);
            a.str("country", "FR");
            a.str("line1", &customer.line1);
            a.null("line2");
            a.str("postal_code", customer.postal_code);
            a.null("state");
        });
        b.str("email", &customer.email);
        b.str("name", &customer.name);
        b.str("phone", &customer.phone);
    });
    o.bool("captured", paid);
    o.int("created", charge.created);
    o.str("currency", "eur");
    o.str("customer", &customer.id);
    o.str("description", charge.description);
    o.bool("disputed", false);
    o.opt_str("failure_code", failure.map(Failure::code));
    o.opt_str("failure_message", failure.map(Failure::message));
    o.opt_str("invoice", charge.invoice);
    o.bool("livemode", false);
    o.obj("metadata", |m| {
        if let Some(order_id) = charge.order_id {
            m.str("channel", "web");
            m.str("order_id", order_id);
        }
    });
    o.obj("outcome", |x| match failure {
        None => {
            x.str("network_status", "approved_by_network");
            x.null("reason");
            x.str(
                "risk_level",
                if charge.risk_score < 65 {
                    "normal"
                } else {
                    "elevated"
                },
            );
            x.int("risk_score", charge.risk_score);
            x.str("seller_message", "Payment complete.");
            x.str("type", "authorized");
        }
        Some(failure) => {
            let blocked = failure == Failure::Blocked;
            x.opt_str("network_decline_code", failure.network_decline_code());
            x.str(
                "network_status",
                if blocked {
                    "not_sent_to_network"
                } else {
                    "declined_by_network"
                },
            );
            x.str("reason", failure.reason());
            x.str("risk_level", if blocked { "highest" } else { "normal" });
            x.int("risk_score", charge.risk_score);
            x.str("seller_message", failure.seller_message());
            x.str(
                "type",
                if blocked {
                    "blocked"
                } else {
                    "issuer_declined"
                },
            );
        }
    });
    o.bool("paid", paid);
    o.str("payment_intent", charge.payment_intent);
    o.str("payment_method", &customer.payment_method);
    o.obj("payment_method_details", |p| {
        p.obj("card", |c| {
            c.str("brand", customer.card_brand);
            c.str("country", customer.card_country);
            c.int("exp_month", customer.card_exp_month);
            c.int("exp_year", customer.card_exp_year);
            c.str("fingerprint", &customer.card_fingerprint);
            c.str("funding", customer.card_funding);
            c.str("last4", &customer.card_last4);
            c.str("network", customer.card_brand);
        });
        p.str("type", "card");
    });
    o.str("receipt_email", &customer.email);
    o.key("receipt_url");
    if paid {
        o.out.push('"');
        o.out.push_str(RECEIPT_URL_PREFIX);
        o.out.push_str(charge.receipt_token);
        o.out.push('"');
    } else {
        o.out.push_str("null");
    }
    o.bool(
        "refunded",
        charge.amount_refunded > 0 && charge.amount_refunded >= charge.amount,
    );
    o.str("status", if paid { "succeeded" } else { "failed" });
    o.close();
}
