//! Web orders: how many a day (month, weekday and a year of growth), at what hour, from which
//! customer, and what is in the basket.
//!
//! The menu and its seasons live here because only the basket reads them.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveTime};

use super::{Bakery, DAY, NewCharge};
use crate::demo::sandbox::stripe::draws::{Failure, weighted};

const BASE_ORDERS_PER_DAY: f64 = 42.0;
/// January..December: quiet after the holidays and in August, busy at Easter and Christmas.
const MONTH_FACTOR: [f64; 12] = [
    0.9, 0.9, 0.95, 1.05, 1.0, 0.95, 0.9, 0.88, 0.97, 1.0, 1.08, 1.25,
];
/// Monday..Sunday.
const WEEKDAY_FACTOR: [f64; 7] = [0.88, 0.92, 0.95, 1.0, 1.08, 1.18, 1.0];
/// Order weight per UTC hour from 05:00 to 21:00 (06:00-22:00 in Lyon).
const HOUR_WEIGHTS: [u32; 17] = [2, 5, 8, 9, 7, 6, 6, 7, 6, 4, 4, 5, 7, 8, 6, 4, 2];
const DELIVERY_FEE: i64 = 390;

struct MenuItem {
    name: &'static str,
    price: i64,
    weight: u32,
    /// Bit `m` set: sold in month `m` (1 = January).
    months: u16,
}

const ALL_YEAR: u16 = 0b1_1111_1111_1110;
const fn month_bit(month: u32) -> u16 {
    1 << month
}

const MENU: [MenuItem; 17] = [
    MenuItem {
        name: "Sourdough loaf",
        price: 650,
        weight: 14,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Seeded rye loaf",
        price: 720,
        weight: 7,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Baguette tradition (2)",
        price: 290,
        weight: 12,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Croissant box (6)",
        price: 1080,
        weight: 12,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Pain au chocolat box (6)",
        price: 1200,
        weight: 10,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Cinnamon buns (4)",
        price: 1100,
        weight: 6,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Brioche Nanterre",
        price: 890,
        weight: 6,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Quiche lorraine",
        price: 1650,
        weight: 5,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Seasonal fruit tart",
        price: 2450,
        weight: 4,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Celebration cake",
        price: 4800,
        weight: 2,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Coffee beans 250 g",
        price: 1190,
        weight: 5,
        months: ALL_YEAR,
    },
    MenuItem {
        name: "Galette des rois",
        price: 2800,
        weight: 10,
        months: month_bit(1),
    },
    MenuItem {
        name: "Hot cross buns (6)",
        price: 990,
        weight: 6,
        months: month_bit(3) | month_bit(4),
    },
    MenuItem {
        name: "Strawberry tart",
        price: 2650,
        weight: 5,
        months: month_bit(5) | month_bit(6) | month_bit(7),
    },
    MenuItem {
        name: "Pumpkin loaf",
        price: 780,
        weight: 5,
        months: month_bit(10) | month_bit(11),
    },
    MenuItem {
        name: "Stollen",
        price: 1890,
        weight: 6,
        months: month_bit(11) | month_bit(12),
    },
    MenuItem {
        name: "Buche de Noel",
        price: 3900,
        weight: 8,
        months: month_bit(12),
    },
];

impl Bakery {
    /// Web orders: a daily count shaped by month, weekday and a year of growth.
    pub(super) fn one_off_orders(&mut self) {
        let first_day = DateTime::from_timestamp(self.window_start, 0)
            .expect("now is a representable time")
            .date_naive();
        let last_day = DateTime::from_timestamp(self.now, 0)
            .expect("now is a representable time")
            .date_naive();
        let mut order_number = 18_000u32;
        let mut day = first_day;
        while day <= last_day {
            let day_start = day.and_time(NaiveTime::MIN).and_utc().timestamp();
            let progress =
                ((day_start - self.window_start) as f64 / (365 * DAY) as f64).clamp(0.0, 1.0);
            let factor = MONTH_FACTOR[day.month0() as usize]
                * WEEKDAY_FACTOR[day.weekday().num_days_from_monday() as usize]
                * (0.92 + 0.16 * progress)
                * (0.9 + 0.2 * self.rng.f64());
            let count = (BASE_ORDERS_PER_DAY * factor).round() as u32;
            for _ in 0..count {
                let hour = 5 + weighted(&mut self.rng, &HOUR_WEIGHTS) as i64;
                let created = day_start + hour * 3_600 + self.rng.i64(0..3_600);
                let customer = self.pick_regular();
                let failure = (self.rng.f64() < 0.05).then(|| Failure::pick(&mut self.rng));
                let (amount, items) = self.basket(day.month());
                if created < self.window_start || created >= self.now {
                    continue;
                }
                order_number += 1;
                let payment_intent = self.new_id("pi_", 24);
                self.add_charge(NewCharge {
                    created,
                    amount,
                    customer,
                    description: format!("Order {order_number}: {items}"),
                    payment_intent,
                    invoice: None,
                    order_id: Some(order_number.to_string()),
                    failure,
                });
            }
            day = day.succ_opt().expect("the calendar goes on past this year");
        }
    }

    /// Regulars order more: customer `i` is picked with a density falling like 1/sqrt(i).
    fn pick_regular(&mut self) -> usize {
        let u = self.rng.f64();
        ((u * u * self.customers.len() as f64) as usize).min(self.customers.len() - 1)
    }

    fn basket(&mut self, month: u32) -> (i64, String) {
        let available: Vec<&MenuItem> = MENU
            .iter()
            .filter(|item| item.months & month_bit(month) != 0)
            .collect();
        let weights: Vec<u32> = available.iter().map(|item| item.weight).collect();
        let lines = 1 + weighted(&mut self.rng, &[35, 35, 20, 10]);
        let mut amount = 0;
        let mut items = String::new();
        for line in 0..lines {
            let item = available[weighted(&mut self.rng, &weights)];
            let quantity = 1 + weighted(&mut self.rng, &[75, 20, 5]) as i64;
            amount += item.price * quantity;
            if line > 0 {
                items.push_str(", ");
            }
            let _ = write!(items, "{quantity} x {}", item.name);
        }
        if self.rng.f64() < 0.35 {
            amount += DELIVERY_FEE;
            items.push_str(", delivery");
        }
        (amount, items)
    }
}
