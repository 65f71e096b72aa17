//! The bakery's business-to-business year, shared by the sandbox's HubSpot, QuickBooks and
//! Xero so the three tell one story:
//!
//! - HubSpot holds the deals: monthly bread and pastry supply contracts with cafés, hotels
//!   and offices (`amount` is the contract's first year), and one-off catering for events.
//!   Some are won, some lost (fewer won while the team is under strain, see
//!   [`Scenario::strain`]), the newest still open.
//! - Xero is the wholesale arm's ledger: every supply customer gets one invoice at the end
//!   of each month it was delivered (the twelve cafés and restaurants of the Freshdesk help
//!   desk since before the year, and every contract won in HubSpot from the month after the
//!   win), due at the end of the following month.
//! - QuickBooks is the bakery's own ledger: one invoice per won catering deal on the day of
//!   the event, due in 15 days, and the monthly Profit and Loss, whose income is the
//!   counter and web-shop sales plus exactly the catering invoices and the wholesale
//!   invoices of Xero (net of VAT).
//!
//! Payments come around the due date, later while the team is too stretched to chase them;
//! a few come very late, a few never (one café closed half-way through the year owing its
//! last two invoices). Nothing here reads a clock; everything derives from the scenario.

use super::freshdesk::COMPANIES;
use super::{DAY, Scenario, during_opening_hours, poisson};

const HOUR: i64 = 3_600;

/// New supply customers won through HubSpot.
pub const PROSPECTS: [&str; 16] = [
    "Hotel des Celestins",
    "Cafe Tete d'Or",
    "Le Comptoir Guillotiere",
    "Coworking Part-Dieu",
    "Hotel Perrache",
    "Cafe Sathonay",
    "Restaurant Les Pentes",
    "Brasserie Jean Mace",
    "Bistrot Vaise",
    "Cafe Fourviere",
    "Hotel Brotteaux",
    "Epicerie Gerland",
    "Cantine Villeurbanne",
    "Salon de the Confluence",
    "Le Kiosque Bellecour",
    "Hotel Ampere",
];

/// Catering customers (companies, associations, families).
pub const CATERING_CUSTOMERS: [&str; 10] = [
    "Atelier Soierie Lyon",
    "Cabinet Morel Avocats",
    "Lyon Tech Campus",
    "Mairie du 4e arrondissement",
    "Studio Confluence",
    "Famille Dubois",
    "Association Les Canuts",
    "Galerie Saint-Georges",
    "Clinique Monplaisir",
    "Famille Mercier",
];

/// What a deal sells.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Offer {
    /// A monthly supply contract, invoiced in Xero; `amount` is its first year.
    Supply,
    /// One catering order, invoiced in QuickBooks on the day of the event.
    Catering,
}

/// Deal stages of HubSpot's default sales pipeline, with their win probability.
pub const OPEN_STAGES: [(&str, f64); 5] = [
    ("appointmentscheduled", 0.2),
    ("qualifiedtobuy", 0.4),
    ("presentationscheduled", 0.6),
    ("decisionmakerboughtin", 0.8),
    ("contractsent", 0.9),
];

const LOST_REASONS: [&str; 4] = [
    "Price too high",
    "Stayed with their current bakery",
    "Event cancelled",
    "No answer after the tasting",
];

/// One deal.
pub struct Deal {
    /// HubSpot's id (also `hs_object_id`).
    pub id: u64,
    /// `dealname`.
    pub name: String,
    /// What it sells.
    pub offer: Offer,
    /// The customer's name.
    pub customer: &'static str,
    /// Euros: the contract's first year, or the catering order.
    pub amount: i64,
    /// Created, unix milliseconds.
    pub created_ms: i64,
    /// The actual close (closed deals) or the expected one (open deals), unix seconds.
    pub close: i64,
    /// The stage's internal name (`closedwon`, `closedlost` or an open stage).
    pub stage: &'static str,
    /// The stage's win probability.
    pub probability: f64,
    /// Why it was lost.
    pub lost_reason: Option<&'static str>,
    /// The last change, unix milliseconds.
    pub modified_ms: i64,
    /// The deal owner's id.
    pub owner: u64,
}

impl Deal {
    /// True when the deal was won.
    pub fn won(&self) -> bool {
        self.stage == "closedwon"
    }

    /// True when the deal was won or lost.
    pub fn closed(&self) -> bool {
        matches!(self.stage, "closedwon" | "closedlost")
    }
}

/// One invoice line: description and net amount (euros).
pub struct Line {
    /// What was delivered.
    pub description: String,
    /// Net of VAT.
    pub amount: f64,
}

/// One sales invoice, in Xero (supply) or QuickBooks (catering).
pub struct Invoice {
    /// Sequential from 1 in order of entry, per ledger.
    pub number: usize,
    /// The customer's name.
    pub customer: &'static str,
    /// The invoice date (UTC midnight).
    pub date: i64,
    /// The due date (UTC midnight).
    pub due: i64,
    /// When it was entered, unix seconds.
    pub entered: i64,
    /// The lines.
    pub lines: Vec<Line>,
    /// The VAT rate (5.5 % on bread, 10 % on catering).
    pub tax_rate: f64,
    /// When it was paid in full, if it was by `now`.
    pub paid: Option<i64>,
    /// Voided after entry (Xero only): no amount is owed or booked.
    pub voided: bool,
    /// The HubSpot deal it bills, if any.
    pub deal: Option<u64>,
}

/// Rounds to cents.
pub fn cents(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

impl Invoice {
    /// The net total.
    pub fn net(&self) -> f64 {
        cents(self.lines.iter().map(|line| line.amount).sum())
    }

    /// The VAT.
    pub fn tax(&self) -> f64 {
        cents(self.net() * self.tax_rate)
    }

    /// The total with VAT.
    pub fn total(&self) -> f64 {
        cents(self.net() + self.tax())
    }

    /// The last change: entry, voiding or payment.
    pub fn updated(&self) -> i64 {
        if self.voided {
            self.entered + 2 * DAY
        } else {
            self.paid.unwrap_or(self.entered)
        }
    }
}

/// The year's deals, invoices and counter sales.
pub struct Books {
    /// The HubSpot deals, by creation.
    pub deals: Vec<Deal>,
    /// Supply invoices (Xero), by entry.
    pub supply: Vec<Invoice>,
    /// Catering invoices (QuickBooks), by entry.
    pub catering: Vec<Invoice>,
    /// Counter and web-shop sales net of VAT per day: (UTC midnight, euros).
    pub counter: Vec<(i64, f64)>,
    /// The scenario's `now`.
    pub now: i64,
}

/// The share of a normal month's deliveries in `month` (1-12): cafés close in August.
fn delivery_factor(month: u32) -> f64 {
    match month {
        8 => 0.55,
        7 => 0.85,
        12 => 1.25,
        _ => 1.0,
    }
}

/// UTC midnight of the first day of the month after the one holding `time`.
fn next_month(time: i64) -> i64 {
    use chrono::Datelike;
    let date = chrono::DateTime::from_timestamp(time, 0)
        .unwrap_or_default()
        .date_naive();
    let (year, month) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    chrono::NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map_or(time, |start| start.and_utc().timestamp())
}

/// UTC midnight of the first day of the month holding `time`.
fn month_start(time: i64) -> i64 {
    use chrono::Datelike;
    let date = chrono::DateTime::from_timestamp(time, 0)
        .unwrap_or_default()
        .date_naive();
    date.with_day(1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map_or(time, |start| start.and_utc().timestamp())
}

fn month_of(time: i64) -> u32 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp(time, 0)
        .unwrap_or_default()
        .month()
}

/// When an invoice due at `due` is paid: around the due date, later and more often very
/// late under strain (nobody has time to chase payments), now and then never; `None` when
/// not (yet) by `now`.
fn payment(rng: &mut fastrand::Rng, scenario: &Scenario, due: i64) -> Option<i64> {
    let roll = rng.f64();
    let strain = scenario.strain(due);
    let mut days = rng.i64(-12..=5) + (strain * rng.f64() * 24.0) as i64;
    if roll < 0.015 {
        return None;
    }
    if roll < 0.05 + 0.1 * strain {
        days += rng.i64(25..70);
    }
    let paid = due + days * DAY + 9 * HOUR + rng.i64(0..8 * HOUR);
    (paid < scenario.now - HOUR).then_some(paid)
}

impl Books {
    /// The bakery's year before the scenario's `now`.
    pub fn bakery(scenario: &Scenario) -> Books {
        let mut rng = scenario.rng(0x626f_6f6b);
        let now = scenario.now;
        let counter = scenario
            .days()
            .filter(|day| *day < now)
            .map(|day| {
                let amount = 1_350.0 * scenario.seasonality(day) * (0.93 + 0.14 * rng.f64());
                (day, cents(amount))
            })
            .collect();
        let deals = Self::deals(&mut rng, scenario);
        let mut supply = Vec::new();
        // The long-standing customers (the Freshdesk desk's), invoiced since before the
        // year; one of them closes 200 days before now.
        let closing = COMPANIES.len() - 1;
        for (index, customer) in COMPANIES.iter().enumerate() {
            let monthly = 500.0 + 100.0 * rng.i64(0..14) as f64;
            let until = if index == closing {
                now - 200 * DAY
            } else {
                now
            };
            Self::supply_invoices(
                &mut rng,
                scenario,
                &mut supply,
                customer,
                monthly,
                month_start(scenario.start),
                until,
                None,
            );
        }
        for deal in deals.iter().filter(|deal| deal.won()) {
            if deal.offer == Offer::Supply {
                let monthly = deal.amount as f64 / 12.0;
                let first = next_month(deal.close);
                Self::supply_invoices(
                    &mut rng,
                    scenario,
                    &mut supply,
                    deal.customer,
                    monthly,
                    first,
                    now,
                    Some(deal.id),
                );
            }
        }
        // The closing café never pays its last two invoices.
        let mut owed: Vec<usize> = supply
            .iter()
            .enumerate()
            .filter(|(_, invoice)| invoice.customer == COMPANIES[closing])
            .map(|(index, _)| index)
            .collect();
        owed.sort_by_key(|index| supply[*index].date);
        for index in owed.iter().rev().take(2) {
            supply[*index].paid = None;
            supply[*index].voided = false;
        }
        supply.sort_by_key(|invoice| (invoice.entered, invoice.customer));
        for (index, invoice) in supply.iter_mut().enumerate() {
            invoice.number = index + 1;
        }
        let mut catering = Vec::new();
        for deal in deals
            .iter()
            .filter(|deal| deal.won() && deal.offer == Offer::Catering)
        {
            let event = deal.close + rng.i64(3..30) * DAY;
            let date = event - event.rem_euclid(DAY);
            let entered = date + 17 * HOUR + rng.i64(0..3 * HOUR);
            if entered >= now {
                continue;
            }
            let due = date + 15 * DAY;
            let paid = payment(&mut rng, scenario, due).map(|paid| paid.max(entered + HOUR));
            let staff = cents(deal.amount as f64 * 0.15);
            catering.push(Invoice {
                number: 0,
                customer: deal.customer,
                date,
                due,
                entered,
                lines: vec![
                    Line {
                        description: deal.name.clone(),
                        amount: deal.amount as f64 - staff,
                    },
                    Line {
                        description: "Service staff and delivery".into(),
                        amount: staff,
                    },
                ],
                tax_rate: 0.10,
                paid,
                voided: false,
                deal: Some(deal.id),
            });
        }
        catering.sort_by_key(|invoice| invoice.entered);
        for (index, invoice) in catering.iter_mut().enumerate() {
            invoice.number = index + 1;
        }
        Books {
            deals,
            supply,
            catering,
            counter,
            now,
        }
    }

    /// Deals created over the year: supply contracts and catering orders.
    fn deals(rng: &mut fastrand::Rng, scenario: &Scenario) -> Vec<Deal> {
        let now = scenario.now;
        let mut deals = Vec::new();
        let mut prospects = 0;
        for day in scenario.days() {
            let season = scenario.seasonality(day);
            let supply = poisson(rng, 0.065 * season);
            let catering = poisson(rng, 0.2 * season);
            let offers = std::iter::repeat_n(Offer::Supply, supply as usize)
                .chain(std::iter::repeat_n(Offer::Catering, catering as usize));
            for offer in offers {
                let created = during_opening_hours(rng, day);
                if created > now - 2 * HOUR {
                    continue;
                }
                let (customer, name, amount, days, odds) = match offer {
                    Offer::Supply => {
                        let customer = PROSPECTS[prospects % PROSPECTS.len()];
                        prospects += 1;
                        let monthly = 250 + 50 * rng.i64(0..20);
                        let kind = ["Bread supply", "Viennoiserie supply", "Breakfast supply"]
                            [rng.usize(..3)];
                        (
                            customer,
                            format!("{kind} - {customer}"),
                            monthly * 12,
                            rng.i64(12..60),
                            0.5,
                        )
                    }
                    Offer::Catering => {
                        let customer = CATERING_CUSTOMERS[rng.usize(..CATERING_CUSTOMERS.len())];
                        let kind = [
                            "Wedding cake and dessert table",
                            "Corporate breakfast",
                            "Cocktail pastries",
                            "Seminar lunch boxes",
                        ][rng.usize(..4)];
                        (
                            customer,
                            format!("{kind} - {customer}"),
                            (350 + rng.i64(0..2_600)) / 10 * 10,
                            rng.i64(4..30),
                            0.62,
                        )
                    }
                };
                let close = created + days * DAY + rng.i64(0..6 * HOUR);
                let owner = 51_234_567 + rng.u64(0..3);
                let id = 18_734_560_000 + deals.len() as u64 * 7 + 1;
                let created_ms = created * 1000 + rng.i64(0..1000);
                let roll = rng.f64();
                let reason = LOST_REASONS[rng.usize(..LOST_REASONS.len())];
                let (stage, probability, lost_reason, modified) = if close > now - HOUR {
                    // Still open: the further along, the later the stage.
                    let progress = (now - created) as f64 / (close - created) as f64;
                    let index =
                        ((progress * OPEN_STAGES.len() as f64) as usize).min(OPEN_STAGES.len() - 1);
                    let (stage, probability) = OPEN_STAGES[index];
                    let moved = created + ((now - created) as f64 * 0.8) as i64;
                    (stage, probability, None, moved.min(now - HOUR))
                } else if roll < odds - 0.22 * scenario.strain(close) {
                    ("closedwon", 1.0, None, close)
                } else {
                    ("closedlost", 0.0, Some(reason), close)
                };
                deals.push(Deal {
                    id,
                    name,
                    offer,
                    customer,
                    amount,
                    created_ms,
                    close,
                    stage,
                    probability,
                    lost_reason,
                    modified_ms: modified * 1000 + rng.i64(1_000..30_000),
                    owner,
                });
            }
        }
        deals
    }

    /// One invoice at the end of every month from `first` (a month's first day) while
    /// the month ends before `until` and the invoice is entered before `now`.
    #[allow(clippy::too_many_arguments)]
    fn supply_invoices(
        rng: &mut fastrand::Rng,
        scenario: &Scenario,
        out: &mut Vec<Invoice>,
        customer: &'static str,
        monthly: f64,
        first: i64,
        until: i64,
        deal: Option<u64>,
    ) {
        let mut month = first;
        loop {
            let next = next_month(month);
            let date = next - DAY;
            let entered = next + 8 * HOUR + rng.i64(0..4 * HOUR);
            if next > until || entered >= scenario.now {
                break;
            }
            let delivered = monthly * delivery_factor(month_of(month)) * (0.9 + 0.2 * rng.f64());
            let bread = cents(delivered * 0.7);
            // Due at the end of the following month.
            let due = next_month(next) - DAY;
            let voided = rng.f64() < 0.02;
            let paid = if voided {
                None
            } else {
                payment(rng, scenario, due).map(|paid| paid.max(entered + HOUR))
            };
            out.push(Invoice {
                number: 0,
                customer,
                date,
                due,
                entered,
                lines: vec![
                    Line {
                        description: "Bread deliveries".into(),
                        amount: bread,
                    },
                    Line {
                        description: "Viennoiseries and pastries".into(),
                        amount: cents(delivered - bread),
                    },
                ],
                tax_rate: 0.055,
                paid,
                voided,
                deal,
            });
            month = next;
        }
    }
}

/// A version-4 UUID from `rng` (Xero's ids).
pub fn uuid(rng: &mut fastrand::Rng) -> String {
    let a = rng.u128(..);
    let hex = format!("{a:032x}");
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][rng.usize(..4)],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn books() -> Books {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 3, 15, 12, 0, 0)
            .single()
            .expect("instant");
        Books::bakery(&Scenario::new(now, 7))
    }

    #[test]
    fn deals_are_won_lost_and_open_and_won_deals_are_invoiced() {
        let books = books();
        let won = books.deals.iter().filter(|deal| deal.won()).count();
        let lost = books
            .deals
            .iter()
            .filter(|deal| deal.stage == "closedlost")
            .count();
        let open = books.deals.iter().filter(|deal| !deal.closed()).count();
        assert!(
            won > 30 && lost > 30 && open > 3,
            "{won} won, {lost} lost, {open} open"
        );
        for invoice in books.catering.iter().chain(&books.supply) {
            if let Some(deal) = invoice.deal {
                let deal = books
                    .deals
                    .iter()
                    .find(|candidate| candidate.id == deal)
                    .expect("the deal exists");
                assert!(deal.won());
                assert!(invoice.date > deal.close - DAY);
            }
            assert!(invoice.entered < books.now && invoice.updated() < books.now);
            assert!(invoice.paid.is_none_or(|paid| paid > invoice.entered));
        }
        assert!(books.supply.iter().any(|invoice| invoice.deal.is_some()));
        let unpaid = books
            .supply
            .iter()
            .filter(|invoice| invoice.paid.is_none() && !invoice.voided)
            .count();
        assert!(unpaid >= 3, "{unpaid} unpaid");
        assert!(
            books
                .supply
                .windows(2)
                .all(|pair| pair[0].number + 1 == pair[1].number)
        );
    }

    #[test]
    fn uuids_look_like_version_4() {
        let mut rng = fastrand::Rng::with_seed(1);
        let id = uuid(&mut rng);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(id.matches('-').count(), 4);
    }
}
