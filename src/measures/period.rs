//! Calendar periods in the scorecard's time zone, and their labels.
//!
//! A period is identified by its start instant. Periods are calendar periods of the
//! zone (a Berlin month starts at local midnight of the 1st, whatever the UTC offset),
//! so a day may last 23 or 25 hours across a DST change. Weeks are ISO weeks
//! (Monday first, labelled with the ISO week-year). Pure: no clock is read here.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The length of a measure's periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    /// A calendar day.
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
    /// A calendar quarter.
    Quarter,
    /// A calendar year.
    Year,
}

impl PeriodKind {
    /// Parses the config spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            "quarter" => Self::Quarter,
            "year" => Self::Year,
            _ => return None,
        })
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Year => "year",
        }
    }

    /// The first calendar day of the period that contains `date`.
    fn first_day(self, date: NaiveDate) -> NaiveDate {
        let ymd = |year, month, day| {
            NaiveDate::from_ymd_opt(year, month, day).expect("first days of months exist")
        };
        match self {
            Self::Day => date,
            Self::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Self::Month => ymd(date.year(), date.month(), 1),
            Self::Quarter => ymd(date.year(), (date.month0() / 3) * 3 + 1, 1),
            Self::Year => ymd(date.year(), 1, 1),
        }
    }

    /// The first day of the period after the one starting on `first_day`.
    fn next_first_day(self, first_day: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => first_day + Duration::days(1),
            Self::Week => first_day + Duration::days(7),
            Self::Month => first_day
                .checked_add_months(chrono::Months::new(1))
                .expect("dates stay in range"),
            Self::Quarter => first_day
                .checked_add_months(chrono::Months::new(3))
                .expect("dates stay in range"),
            Self::Year => first_day
                .checked_add_months(chrono::Months::new(12))
                .expect("dates stay in range"),
        }
    }

    /// The start of the period that contains `instant`, in `tz`.
    pub fn start_of(self, instant: DateTime<Utc>, tz: Tz) -> DateTime<Tz> {
        let local_date = instant.with_timezone(&tz).date_naive();
        local_midnight(self.first_day(local_date), tz)
    }

    /// The start of the period containing the local calendar day `date`.
    pub fn start_of_date(self, date: NaiveDate, tz: Tz) -> DateTime<Tz> {
        local_midnight(self.first_day(date), tz)
    }

    /// The start of the period after the one that starts at `start`.
    pub fn next(self, start: DateTime<Tz>) -> DateTime<Tz> {
        let first_day = self.first_day(start.date_naive());
        local_midnight(self.next_first_day(first_day), start.timezone())
    }

    /// The label of the period that starts at `start`: `2026-03-05`, `2026-W10`,
    /// `2026-03`, `2026-Q1` or `2026`.
    pub fn label(self, start: DateTime<Tz>) -> String {
        let date = start.date_naive();
        match self {
            Self::Day => date.format("%Y-%m-%d").to_string(),
            Self::Week => {
                let week = date.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Self::Month => date.format("%Y-%m").to_string(),
            Self::Quarter => format!("{}-Q{}", date.year(), date.month0() / 3 + 1),
            Self::Year => format!("{}", date.year()),
        }
    }

    /// The fraction of the period `[start, next)` that has elapsed at `now`, from 0 to 1.
    pub fn elapsed_fraction(self, start: DateTime<Tz>, now: DateTime<Utc>) -> f64 {
        let end = self.next(start);
        let total = (end - start).num_seconds() as f64;
        let elapsed = (now - start.with_timezone(&Utc)).num_seconds() as f64;
        (elapsed / total).clamp(0.0, 1.0)
    }
}

/// Local midnight of `date` in `tz`; where midnight falls into a DST gap (some zones
/// switch at 00:00), the first instant that exists after it.
fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Tz> {
    let mut naive: NaiveDateTime = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    // A DST gap is at most a few hours; step through it a quarter hour at a time.
    for _ in 0..16 {
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(instant) => return instant,
            LocalResult::Ambiguous(earliest, _) => return earliest,
            LocalResult::None => naive += Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .with_timezone(&tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid test instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn starts_and_labels_in_berlin() {
        let berlin: Tz = "Europe/Berlin".parse().expect("known zone");
        let cases = [
            // Late on 31 March UTC is already April in Berlin (CEST, UTC+2).
            (
                PeriodKind::Month,
                "2026-03-31T23:30:00Z",
                "2026-04-01T00:00:00+02:00",
                "2026-04",
            ),
            (
                PeriodKind::Month,
                "2026-03-31T21:30:00Z",
                "2026-03-01T00:00:00+01:00",
                "2026-03",
            ),
            (
                PeriodKind::Day,
                "2026-03-29T00:30:00Z",
                "2026-03-29T00:00:00+01:00",
                "2026-03-29",
            ),
            (
                PeriodKind::Week,
                "2026-03-05T12:00:00Z",
                "2026-03-02T00:00:00+01:00",
                "2026-W10",
            ),
            // 1 Jan 2027 is a Friday: ISO week 53 of 2026.
            (
                PeriodKind::Week,
                "2027-01-01T12:00:00Z",
                "2026-12-28T00:00:00+01:00",
                "2026-W53",
            ),
            (
                PeriodKind::Quarter,
                "2026-05-17T12:00:00Z",
                "2026-04-01T00:00:00+02:00",
                "2026-Q2",
            ),
            (
                PeriodKind::Quarter,
                "2026-12-31T23:30:00Z",
                "2027-01-01T00:00:00+01:00",
                "2027-Q1",
            ),
            (
                PeriodKind::Year,
                "2026-07-01T00:00:00Z",
                "2026-01-01T00:00:00+01:00",
                "2026",
            ),
        ];
        for (kind, instant, start, label) in cases {
            let got = kind.start_of(utc(instant), berlin);
            assert_eq!(got.to_rfc3339(), start, "{kind:?} {instant}");
            assert_eq!(kind.label(got), label, "{kind:?} {instant}");
        }
    }

    #[test]
    fn next_period_spans_dst_changes() {
        let berlin: Tz = "Europe/Berlin".parse().expect("known zone");
        let day = PeriodKind::Day.start_of(utc("2026-03-29T10:00:00Z"), berlin);
        let next = PeriodKind::Day.next(day);
        assert_eq!(
            (next - day).num_hours(),
            23,
            "the spring-forward day is 23 hours long"
        );
        let autumn = PeriodKind::Day.start_of(utc("2026-10-25T10:00:00Z"), berlin);
        assert_eq!((PeriodKind::Day.next(autumn) - autumn).num_hours(), 25);
        let march = PeriodKind::Month.start_of(utc("2026-03-15T00:00:00Z"), berlin);
        assert_eq!(
            PeriodKind::Month.next(march).to_rfc3339(),
            "2026-04-01T00:00:00+02:00"
        );
        let q4 = PeriodKind::Quarter.start_of(utc("2026-11-15T00:00:00Z"), berlin);
        assert_eq!(
            PeriodKind::Quarter.next(q4).to_rfc3339(),
            "2027-01-01T00:00:00+01:00"
        );
    }

    #[test]
    fn midnight_in_a_dst_gap_moves_to_the_first_real_instant() {
        // Santiago (Chile) springs forward at 24:00 on the first Saturday of September:
        // 2026-09-06 00:00 does not exist locally.
        let santiago: Tz = "America/Santiago".parse().expect("known zone");
        let start = PeriodKind::Day.start_of(utc("2026-09-06T12:00:00Z"), santiago);
        assert_eq!(start.to_rfc3339(), "2026-09-06T01:00:00-03:00");
    }

    #[test]
    fn elapsed_fraction_of_a_month() {
        let start = PeriodKind::Month.start_of(utc("2026-04-10T00:00:00Z"), chrono_tz::UTC);
        let fraction = PeriodKind::Month.elapsed_fraction(start, utc("2026-04-16T00:00:00Z"));
        assert!((fraction - 0.5).abs() < 1e-9, "{fraction}");
    }
}
