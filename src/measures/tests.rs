use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::config::RecordMeasure;
use expr::Expr;

fn measure(filter: Option<&str>, value: Option<&str>, aggregate: Aggregate) -> RecordMeasure {
    RecordMeasure {
        source: "stripe".into(),
        stream: "charges".into(),
        time_field: "created".into(),
        filter: filter.map(|text| Expr::parse(text).expect("valid test expression")),
        value: value.map(|text| Expr::parse(text).expect("valid test expression")),
        aggregate,
    }
}

fn record(value: serde_json::Value) -> Record {
    value.as_object().expect("test records are objects").clone()
}

fn input(number: f64, event_time: i64) -> StoredInput {
    StoredInput {
        event_time,
        record_id: event_time,
        number: Some(number),
        text: None,
    }
}

#[test]
fn every_aggregate_over_a_table_of_inputs() {
    let values = [4.0, 1.0, 3.0, 2.0, 10.0];
    // Event times in a different order than the values, so `last` is not just the last pushed.
    let times = [5, 1, 3, 2, 4];
    let inputs: Vec<StoredInput> = values
        .iter()
        .zip(times)
        .map(|(v, t)| input(*v, t))
        .collect();
    let cases = [
        (Aggregate::Count, Some(5.0)),
        (Aggregate::Sum, Some(20.0)),
        (Aggregate::Avg, Some(4.0)),
        (Aggregate::Min, Some(1.0)),
        (Aggregate::Max, Some(10.0)),
        (Aggregate::Median, Some(3.0)),
        // Linear interpolation: rank 0.9 × 4 = 3.6 between 4 and 10.
        (Aggregate::P90, Some(7.6)),
        (Aggregate::Last, Some(4.0)),
    ];
    for (aggregate, expected) in cases {
        let got = super::aggregate(aggregate, &inputs);
        assert!(
            matches!((got, expected), (Some(g), Some(e)) if (g - e).abs() < 1e-9),
            "{aggregate:?}: got {got:?}, expected {expected:?}"
        );
    }
    let even = [input(1.0, 1), input(2.0, 2), input(3.0, 3), input(10.0, 4)];
    assert_eq!(super::aggregate(Aggregate::Median, &even), Some(2.5));
}

#[test]
fn count_distinct_counts_numbers_and_strings_apart() {
    let text = |value: &str| StoredInput {
        event_time: 0,
        record_id: 0,
        number: None,
        text: Some(value.into()),
    };
    let inputs = [
        text("cus_1"),
        text("cus_2"),
        text("cus_1"),
        input(1.0, 0),
        input(1.0, 1),
        text("1"),
    ];
    assert_eq!(
        super::aggregate(Aggregate::CountDistinct, &inputs),
        Some(4.0)
    );
}

#[test]
fn empty_periods_are_zero_for_sums_and_counts_and_empty_otherwise() {
    for (aggregate, expected) in [
        (Aggregate::Count, Some(0.0)),
        (Aggregate::CountDistinct, Some(0.0)),
        (Aggregate::Sum, Some(0.0)),
        (Aggregate::Avg, None),
        (Aggregate::Min, None),
        (Aggregate::Max, None),
        (Aggregate::Median, None),
        (Aggregate::P90, None),
        (Aggregate::Last, None),
    ] {
        assert_eq!(super::aggregate(aggregate, &[]), expected, "{aggregate:?}");
    }
}

#[test]
fn contribution_filters_extracts_and_buckets() {
    let berlin: Tz = "Europe/Berlin".parse().expect("known zone");
    let revenue = measure(
        Some("status == 'succeeded'"),
        Some("amount / 100"),
        Aggregate::Sum,
    );
    // 2026-03-31T23:30:00Z is already April in Berlin.
    let late_march = record(
        json!({"id": "ch_1", "created": 1_774_999_800, "status": "succeeded", "amount": 1250}),
    );
    let got = contribution(&revenue, PeriodKind::Month, berlin, &late_march)
        .expect("evaluates")
        .expect("counts");
    assert_eq!(got.value, InputValue::Number(12.5));
    assert_eq!(
        got.period_start,
        DateTimeHelper::rfc3339("2026-04-01T00:00:00+02:00")
    );
    assert_eq!(got.event_time, 1_774_999_800_000);
    let in_utc = contribution(&revenue, PeriodKind::Month, chrono_tz::UTC, &late_march)
        .expect("ok")
        .expect("counts");
    assert_eq!(
        in_utc.period_start,
        DateTimeHelper::rfc3339("2026-03-01T00:00:00Z")
    );

    let failed =
        record(json!({"id": "ch_2", "created": 1_774_999_800, "status": "failed", "amount": 1250}));
    assert_eq!(
        contribution(&revenue, PeriodKind::Month, berlin, &failed).expect("ok"),
        None,
        "filtered out"
    );
    let no_time = record(json!({"id": "ch_3", "status": "succeeded", "amount": 1250}));
    assert_eq!(
        contribution(&revenue, PeriodKind::Month, berlin, &no_time).expect("ok"),
        None,
        "no event time, no period"
    );
    let null_value = record(
        json!({"id": "ch_4", "created": 1_774_999_800, "status": "succeeded", "amount": null}),
    );
    assert_eq!(
        contribution(&revenue, PeriodKind::Month, berlin, &null_value).expect("ok"),
        None,
        "a null value is skipped, not zero"
    );
}

#[test]
fn numeric_strings_are_numbers_as_value_and_time() {
    let shopify = RecordMeasure {
        time_field: "created_at".into(),
        ..measure(None, Some("total_price"), Aggregate::Sum)
    };
    let order = record(
        json!({"id": 1, "created_at": "2026-03-05T10:00:00-05:00", "total_price": "199.90"}),
    );
    let got = contribution(&shopify, PeriodKind::Day, chrono_tz::UTC, &order)
        .expect("ok")
        .expect("counts");
    assert_eq!(got.value, InputValue::Number(199.9));
    assert_eq!(
        got.period_start,
        DateTimeHelper::rfc3339("2026-03-05T00:00:00Z")
    );
    let converted = measure(None, Some("double(total_price) * 0.9"), Aggregate::Sum);
    let order = record(json!({"id": 1, "created": "1772704800", "total_price": "100.00"}));
    let got = contribution(&converted, PeriodKind::Day, chrono_tz::UTC, &order)
        .expect("ok")
        .expect("counts");
    assert_eq!(got.value, InputValue::Number(90.0));
}

#[test]
fn records_a_measure_cannot_read_are_problems_not_values() {
    let revenue = measure(None, Some("status"), Aggregate::Sum);
    let order = record(json!({"created": 1_774_999_800, "status": "paid"}));
    assert!(matches!(
        contribution(&revenue, PeriodKind::Month, chrono_tz::UTC, &order),
        Err(RecordProblem::Value(_))
    ));
    let bad_time = record(json!({"created": "soon", "status": "paid"}));
    let error =
        contribution(&revenue, PeriodKind::Month, chrono_tz::UTC, &bad_time).expect_err("bad time");
    assert!(
        error
            .to_string()
            .starts_with("field `created`: cannot read \"soon\""),
        "{error}"
    );
    let non_bool_filter = measure(Some("amount"), None, Aggregate::Count);
    let order = record(json!({"created": 1_774_999_800, "amount": 3}));
    assert!(matches!(
        contribution(&non_bool_filter, PeriodKind::Month, chrono_tz::UTC, &order),
        Err(RecordProblem::Filter(_))
    ));
}

#[test]
fn count_counts_records_and_count_distinct_keeps_strings() {
    let count = measure(None, None, Aggregate::Count);
    let customers = measure(None, Some("customer"), Aggregate::CountDistinct);
    let charge = record(json!({"created": 1_774_999_800, "customer": "cus_9"}));
    assert_eq!(
        contribution(&count, PeriodKind::Year, chrono_tz::UTC, &charge)
            .expect("ok")
            .expect("counts")
            .value,
        InputValue::Present
    );
    assert_eq!(
        contribution(&customers, PeriodKind::Year, chrono_tz::UTC, &charge)
            .expect("ok")
            .expect("counts")
            .value,
        InputValue::Text("cus_9".into())
    );
}

#[test]
fn formulas_combine_inputs_and_have_no_value_without_them() {
    let net = Expr::parse("gross_revenue - refunds").expect("valid");
    let inputs = |gross: Option<f64>, refunds: Option<f64>| {
        HashMap::from([
            ("gross_revenue".to_string(), gross),
            ("refunds".to_string(), refunds),
        ])
    };
    assert_eq!(
        evaluate_formula(&net, &inputs(Some(1000.0), Some(120.5))),
        Ok(Some(879.5))
    );
    assert_eq!(
        evaluate_formula(&net, &inputs(Some(1000.0), None)),
        Ok(None)
    );
    let rate = Expr::parse("failed / total * 100").expect("valid");
    let zero = HashMap::from([
        ("failed".to_string(), Some(0.0)),
        ("total".to_string(), Some(0.0)),
    ]);
    assert_eq!(
        evaluate_formula(&rate, &zero),
        Ok(None),
        "division by zero has no value"
    );
    let some = HashMap::from([
        ("failed".to_string(), Some(3.0)),
        ("total".to_string(), Some(60.0)),
    ]);
    assert_eq!(evaluate_formula(&rate, &some), Ok(Some(5.0)));
}

/// Period starts written as RFC 3339 in tests, compared as unix seconds.
struct DateTimeHelper;

impl DateTimeHelper {
    fn rfc3339(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("valid test instant")
            .timestamp()
    }
}
