//! The random draws both generators share: customers with a saved card, card declines with
//! Stripe's codes and messages, Radar risk scores, and weighted picks.
//!
//! Every draw takes the caller's generator instead of owning one: a seed gives the same objects
//! only while each generator keeps all of its draws in one fixed order. Nothing here reads a
//! clock or keeps state between draws.

/// Why a charge failed, with the codes, messages and outcome Stripe reports for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    GenericDecline,
    InsufficientFunds,
    ExpiredCard,
    IncorrectCvc,
    ProcessingError,
    Blocked,
}

impl Failure {
    const ALL: [Failure; 6] = [
        Failure::GenericDecline,
        Failure::InsufficientFunds,
        Failure::ExpiredCard,
        Failure::IncorrectCvc,
        Failure::ProcessingError,
        Failure::Blocked,
    ];
    const WEIGHTS: [u32; 6] = [40, 25, 10, 10, 8, 7];

    pub(super) fn pick(rng: &mut fastrand::Rng) -> Self {
        Self::ALL[weighted(rng, &Self::WEIGHTS)]
    }

    /// Renewals use a saved card, which Radar does not block.
    pub(super) fn pick_renewal(rng: &mut fastrand::Rng) -> Self {
        Self::ALL[weighted(rng, &Self::WEIGHTS[..5])]
    }

    pub(super) fn code(self) -> &'static str {
        match self {
            Failure::GenericDecline | Failure::InsufficientFunds | Failure::Blocked => {
                "card_declined"
            }
            Failure::ExpiredCard => "expired_card",
            Failure::IncorrectCvc => "incorrect_cvc",
            Failure::ProcessingError => "processing_error",
        }
    }

    pub(super) fn reason(self) -> &'static str {
        match self {
            Failure::GenericDecline => "generic_decline",
            Failure::InsufficientFunds => "insufficient_funds",
            Failure::ExpiredCard => "expired_card",
            Failure::IncorrectCvc => "incorrect_cvc",
            Failure::ProcessingError => "processing_error",
            Failure::Blocked => "highest_risk_level",
        }
    }

    pub(super) fn message(self) -> &'static str {
        match self {
            Failure::GenericDecline | Failure::Blocked => "Your card was declined.",
            Failure::InsufficientFunds => "Your card has insufficient funds.",
            Failure::ExpiredCard => "Your card has expired.",
            Failure::IncorrectCvc => "Your card's security code is incorrect.",
            Failure::ProcessingError => {
                "An error occurred while processing your card. Try again in a little bit."
            }
        }
    }

    pub(super) fn network_decline_code(self) -> Option<&'static str> {
        match self {
            Failure::GenericDecline => Some("05"),
            Failure::InsufficientFunds => Some("51"),
            Failure::ExpiredCard => Some("54"),
            Failure::IncorrectCvc => Some("N7"),
            Failure::ProcessingError => Some("96"),
            Failure::Blocked => None,
        }
    }

    pub(super) fn seller_message(self) -> &'static str {
        match self {
            Failure::GenericDecline => {
                "The bank did not return any further details with this decline."
            }
            Failure::InsufficientFunds => {
                "The bank returned the decline code `insufficient_funds`."
            }
            Failure::ExpiredCard => "The bank returned the decline code `expired_card`.",
            Failure::IncorrectCvc => "The bank returned the decline code `incorrect_cvc`.",
            Failure::ProcessingError => "The bank returned the decline code `processing_error`.",
            Failure::Blocked => "Stripe blocked this payment as too risky.",
        }
    }
}

/// Radar's score for a charge: 80-99 when Radar blocked it, 2-70 otherwise.
pub(super) fn risk_score(rng: &mut fastrand::Rng, failure: Option<Failure>) -> i64 {
    i64::from(if failure == Some(Failure::Blocked) {
        rng.u32(80..=99)
    } else {
        rng.u32(2..=70)
    })
}

/// A paying customer with one saved card.
#[derive(Clone, Debug)]
pub(super) struct Customer {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) email: String,
    pub(super) phone: String,
    pub(super) line1: String,
    pub(super) city: &'static str,
    pub(super) postal_code: &'static str,
    pub(super) invoice_prefix: String,
    pub(super) card_brand: &'static str,
    pub(super) card_last4: String,
    pub(super) card_exp_month: i64,
    pub(super) card_exp_year: i64,
    pub(super) card_funding: &'static str,
    pub(super) card_country: &'static str,
    pub(super) card_fingerprint: String,
    pub(super) payment_method: String,
}

const FIRST_NAMES: [&str; 30] = [
    "Camille", "Louis", "Chloe", "Gabriel", "Lea", "Arthur", "Manon", "Jules", "Ines", "Hugo",
    "Sarah", "Lucas", "Emma", "Nathan", "Juliette", "Paul", "Alice", "Thomas", "Zoe", "Antoine",
    "Clara", "Maxime", "Lina", "Victor", "Jeanne", "Romain", "Elise", "Mathis", "Anais", "Bastien",
];
const LAST_NAMES: [&str; 30] = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "Andre",
    "Mercier",
    "Blanc",
    "Guerin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "Francois",
];
const STREETS: [&str; 15] = [
    "Rue de la Republique",
    "Rue Merciere",
    "Quai Saint-Antoine",
    "Rue Victor Hugo",
    "Cours Lafayette",
    "Rue Garibaldi",
    "Avenue Jean Jaures",
    "Rue Paul Bert",
    "Boulevard des Belges",
    "Rue Juliette Recamier",
    "Montee de la Grande Cote",
    "Rue du Boeuf",
    "Rue Duguesclin",
    "Cours Vitton",
    "Rue de Marseille",
];
const PLACES: [(&str, &str); 13] = [
    ("Lyon", "69001"),
    ("Lyon", "69002"),
    ("Lyon", "69003"),
    ("Lyon", "69004"),
    ("Lyon", "69005"),
    ("Lyon", "69006"),
    ("Lyon", "69007"),
    ("Lyon", "69008"),
    ("Lyon", "69009"),
    ("Villeurbanne", "69100"),
    ("Caluire-et-Cuire", "69300"),
    ("Oullins", "69600"),
    ("Ecully", "69130"),
];
const EMAIL_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];
const CARD_BRANDS: [(&str, u32); 3] = [("visa", 56), ("mastercard", 38), ("amex", 6)];
const CARD_COUNTRIES: [(&str, u32); 6] = [
    ("FR", 88),
    ("BE", 4),
    ("DE", 3),
    ("CH", 2),
    ("GB", 2),
    ("ES", 1),
];
const CARD_FUNDING: [(&str, u32); 3] = [("credit", 55), ("debit", 43), ("prepaid", 2)];

impl Customer {
    pub(super) fn generate(
        rng: &mut fastrand::Rng,
        id: String,
        payment_method: String,
        card_year: i32,
    ) -> Customer {
        let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.usize(..LAST_NAMES.len())];
        let email = format!(
            "{}.{}{}@{}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase(),
            rng.u32(1..100),
            EMAIL_DOMAINS[rng.usize(..EMAIL_DOMAINS.len())]
        );
        let phone = format!("+336{:08}", rng.u32(..100_000_000));
        let line1 = format!(
            "{} {}",
            rng.u32(1..120),
            STREETS[rng.usize(..STREETS.len())]
        );
        let (city, postal_code) = PLACES[rng.usize(..PLACES.len())];
        let invoice_prefix = (0..8)
            .map(|_| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.usize(..36)]))
            .collect();
        let card_fingerprint = (0..16).map(|_| rng.alphanumeric()).collect();
        Customer {
            id,
            name: format!("{first} {last}"),
            email,
            phone,
            line1,
            city,
            postal_code,
            invoice_prefix,
            card_brand: pick_weighted(rng, &CARD_BRANDS),
            card_last4: format!("{:04}", rng.u32(..10_000)),
            card_exp_month: i64::from(rng.u32(1..=12)),
            card_exp_year: i64::from(card_year) + i64::from(rng.u32(1..=5)),
            card_funding: pick_weighted(rng, &CARD_FUNDING),
            card_country: pick_weighted(rng, &CARD_COUNTRIES),
            card_fingerprint,
            payment_method,
        }
    }
}

/// An index drawn with probability proportional to `weights[index]`.
pub(super) fn weighted(rng: &mut fastrand::Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut roll = rng.u32(..total.max(1));
    for (index, weight) in weights.iter().enumerate() {
        if roll < *weight {
            return index;
        }
        roll -= weight;
    }
    weights.len() - 1
}

fn pick_weighted<T: Copy>(rng: &mut fastrand::Rng, choices: &[(T, u32)]) -> T {
    let total: u32 = choices.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.u32(..total.max(1));
    for (value, weight) in choices {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    choices[choices.len() - 1].0
}
