//! Unit tests of the expression module: table-driven cases for each rule of
//! the module doc (numbers, `null`, missing fields, `record`, `has`,
//! strings, comprehensions, type names), formulas over named values, the
//! variables an expression reads, and the wording of parse and evaluation
//! errors. They go through the public API only.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::*;

fn record(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn eval(source: &str, rec: &Json) -> Result<Scalar, EvalError> {
    Expr::parse(source)
        .unwrap_or_else(|e| panic!("`{source}` does not parse: {e}"))
        .eval_record(&record(rec.clone()))
}

fn check(rec: &Json, cases: &[(&str, Scalar)]) {
    for (source, expected) in cases {
        match eval(source, rec) {
            Ok(actual) => assert_eq!(&actual, expected, "`{source}`"),
            Err(e) => panic!("`{source}` failed: {e}"),
        }
    }
}

fn n(x: f64) -> Scalar {
    Scalar::Number(x)
}

fn b(x: bool) -> Scalar {
    Scalar::Bool(x)
}

fn text(x: &str) -> Scalar {
    Scalar::Text(x.to_owned())
}

#[test]
fn integers_and_decimals_mix() {
    let rec = json!({"amount": 1250, "rate": 1.19, "qty": 3, "big": 18446744073709551615u64});
    check(
        &rec,
        &[
            ("amount / 100", n(12.5)),
            ("amount / 100.0", n(12.5)),
            ("amount > 0.5", b(true)),
            ("amount < 0.5", b(false)),
            ("amount >= 1250.0", b(true)),
            ("amount <= 1249.5", b(false)),
            ("amount * 1.19", n(1250.0 * 1.19)),
            ("amount * rate", n(1250.0 * 1.19)),
            ("amount * 2 == 2500", b(true)),
            ("amount * 2", n(2500.0)),
            ("1 + 2.5", n(3.5)),
            ("2.5 + 1", n(3.5)),
            ("amount - 0.5", n(1249.5)),
            ("amount % 7", n(4.0)),
            ("amount % 2.5", n(0.0)),
            ("7 / 2 == 3.5", b(true)),
            ("7 / 2", n(3.5)),
            ("-amount", n(-1250.0)),
            ("-rate", n(-1.19)),
            // uint-sized JSON numbers
            ("big > amount", b(true)),
            ("amount < big", b(true)),
            ("big + 1", n(18446744073709551615.0 + 1.0)),
            ("big / 2", n(18446744073709551615.0 / 2.0)),
            ("big * 1.0", n(18446744073709551615.0)),
            ("1u + 2u", n(3.0)),
            ("1u + 2", n(3.0)),
            ("-(1u)", n(-1.0)),
        ],
    );
}

#[test]
fn integers_stay_integers_until_they_overflow() {
    let rec = json!({"max": i64::MAX, "qty": 3});
    // an int result still compares equal to the same int, a double does not
    // print the same, but `type()` tells them apart
    check(
        &rec,
        &[
            ("type(qty + 1) == int", b(true)),
            ("type(qty * 2) == int", b(true)),
            ("type(qty % 2) == int", b(true)),
            ("type(qty / 1) == double", b(true)),
            ("type(qty + 1.0) == double", b(true)),
            ("type(max + 1) == double", b(true)),
            ("max + 1", n(i64::MAX as f64 + 1.0)),
            ("type(-max - 2) == double", b(true)),
        ],
    );
}

#[test]
fn dividing_by_zero_is_null() {
    let rec = json!({"amount": 10, "zero": 0, "fzero": 0.0});
    check(
        &rec,
        &[
            ("amount / 0", Scalar::Null),
            ("amount / zero", Scalar::Null),
            ("amount / 0.0", Scalar::Null),
            ("amount / fzero", Scalar::Null),
            ("amount % 0", Scalar::Null),
            ("amount % 0.0", Scalar::Null),
            ("amount / zero == null", b(true)),
            ("(amount / zero) + 1", Scalar::Null),
        ],
    );
}

#[test]
fn null_propagates_through_arithmetic() {
    let rec = json!({"amount": null, "qty": 2});
    check(
        &rec,
        &[
            ("null + 1", Scalar::Null),
            ("1 + null", Scalar::Null),
            ("amount / 100", Scalar::Null),
            ("amount * 1.19", Scalar::Null),
            ("qty - amount", Scalar::Null),
            ("amount % 2", Scalar::Null),
            ("-amount", Scalar::Null),
            ("missing + qty", Scalar::Null),
            ("'a' + null", Scalar::Null),
        ],
    );
}

#[test]
fn ordering_null_is_false_and_equality_is_cels() {
    let rec = json!({"amount": null, "qty": 2});
    check(
        &rec,
        &[
            ("amount > 0", b(false)),
            ("amount < 0", b(false)),
            ("amount >= 0", b(false)),
            ("amount <= 0", b(false)),
            ("0 < amount", b(false)),
            ("null < null", b(false)),
            ("missing > 1", b(false)),
            ("!(amount > 0)", b(true)),
            ("amount == null", b(true)),
            ("amount != null", b(false)),
            ("qty == null", b(false)),
            ("qty != null", b(true)),
            ("qty == 2.0", b(true)),
            ("'abc' < 'abd'", b(true)),
        ],
    );
}

#[test]
fn ordering_mismatched_types_is_an_error() {
    let e = eval("status > 1", &json!({"status": "paid"})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "operator '>' cannot be applied to (string, int)"
    );
    let e = eval("status + 1", &json!({"status": "paid"})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "operator '+' cannot be applied to (string, int)"
    );
}

#[test]
fn non_numbers_keep_cels_operators() {
    let rec = json!({"first": "Ada", "tags": ["a"], "at": "2024-03-01T10:00:00Z"});
    check(
        &rec,
        &[
            ("first + ' Lovelace'", text("Ada Lovelace")),
            ("size(tags + ['b'])", n(2.0)),
            ("timestamp(at) + duration('1h') > timestamp(at)", b(true)),
            (
                "(timestamp(at) - timestamp('2024-03-01T09:00:00Z')) == duration('1h')",
                b(true),
            ),
            ("timestamp(at)", text("2024-03-01T10:00:00+00:00")),
        ],
    );
}

#[test]
fn missing_fields_read_as_null() {
    let rec = json!({
        "amount": 5,
        "properties": {"name": "x", "hs-amount": "7"},
        "reply_time_in_minutes": {"calendar": 42, "business": null},
        "status": "paid",
        "items": [{"qty": 1}, {"qty": 3}],
    });
    check(
        &rec,
        &[
            ("cancelled_at == null", b(true)),
            ("cancelled_at", Scalar::Null),
            ("amount == null", b(false)),
            ("properties.amount", Scalar::Null),
            ("properties.amount == null", b(true)),
            ("reply_time_in_minutes.calendar", n(42.0)),
            ("reply_time_in_minutes.calendar / 60", n(0.7)),
            ("reply_time_in_minutes.business", Scalar::Null),
            ("nowhere.at.all", Scalar::Null),
            ("nowhere.at.all == null", b(true)),
            // a field of something that is no object
            ("status.length", Scalar::Null),
            ("amount.cents", Scalar::Null),
            // brackets and escapes
            ("properties['hs-amount']", text("7")),
            ("properties.`hs-amount`", text("7")),
            ("properties['nope']", Scalar::Null),
            ("items[1].qty", n(3.0)),
            ("items[5].qty", Scalar::Null),
            ("items[-1]", Scalar::Null),
            // on values the expression computes, not paths of the record
            ("[properties][0].name", text("x")),
            ("[properties][0].nope", Scalar::Null),
            ("{'a': 1}.b", Scalar::Null),
            ("{'a': 1}['a']", n(1.0)),
            ("[1, 2][7]", Scalar::Null),
            ("(cancelled_at).x", Scalar::Null),
        ],
    );
}

#[test]
fn the_whole_record_is_bound_as_record() {
    let rec = json!({"odd-name": 3, "a": {"b-c": 4}, "status": "paid"});
    check(
        &rec,
        &[
            ("record['odd-name']", n(3.0)),
            ("record['odd-name'] * 2", n(6.0)),
            ("record['missing']", Scalar::Null),
            ("record.status", text("paid")),
            ("record['a']['b-c']", n(4.0)),
            ("record.a['missing']", Scalar::Null),
            ("size(record)", n(3.0)),
            ("'status' in record", b(true)),
            ("record[status]", Scalar::Null),
            ("record.exists(k, k == 'odd-name')", b(true)),
        ],
    );
}

#[test]
fn has_keeps_its_meaning() {
    let rec = json!({"a": {"b": null, "c": 1}, "n": 1, "items": [{"qty": 1}]});
    check(
        &rec,
        &[
            ("has(a.b)", b(true)),
            ("a.b == null", b(true)),
            ("has(a.c)", b(true)),
            ("has(a.z)", b(false)),
            ("has(missing.z)", b(false)),
            ("has(n.z)", b(false)),
            ("has(record.a)", b(true)),
            ("has(record.zz)", b(false)),
            ("has(a.b.c)", b(false)),
            ("items.all(i, has(i.qty))", b(true)),
            ("items.exists(i, has(i.nope))", b(false)),
            ("has({'x': 1}.x)", b(true)),
        ],
    );
}

#[test]
fn strings_stay_strings() {
    let rec = json!({"status": "succeeded", "total_price": "12.50", "email": "A@B.io"});
    check(
        &rec,
        &[
            ("status.startsWith('succ')", b(true)),
            ("status == 'succeeded'", b(true)),
            ("status.contains('cee')", b(true)),
            ("email.endsWith('.io')", b(true)),
            ("status.matches('^su.*d$')", b(true)),
            ("size(status)", n(9.0)),
            ("double(total_price) * 0.9", n(12.5 * 0.9)),
            ("total_price", text("12.50")),
            ("status in ['succeeded', 'paid']", b(true)),
            ("missing.startsWith('x') || true", b(true)),
        ],
    );
    assert!(eval("total_price * 0.9", &rec).is_err());
    assert!(eval("missing.startsWith('x')", &rec).is_err());
}

#[test]
fn comprehensions_bind_their_own_variables() {
    let rec = json!({
        "items": [{"qty": 1, "price": 250}, {"qty": 3, "price": 100}],
        "qty": 100,
        "i": "a field named like the variable",
    });
    check(
        &rec,
        &[
            ("items.exists(i, i.qty > 2)", b(true)),
            ("items.all(i, i.qty > 2)", b(false)),
            ("items.exists_one(i, i.qty > 2)", b(true)),
            ("items.filter(i, i.qty > 2).size()", n(1.0)),
            ("items.map(i, i.qty * i.price / 100)[1]", n(3.0)),
            ("items.map(i, i.qty)[0] + items.map(i, i.qty)[1]", n(4.0)),
            // a variable shadows the field of its name, and outer fields stay readable
            ("items.exists(qty, qty.qty == 3)", b(true)),
            ("items.exists(x, x.qty * 100 > qty)", b(true)),
            ("items.map(i, i.missing)[0]", Scalar::Null),
            ("i", text("a field named like the variable")),
            ("items.exists(i, .i.startsWith('a field'))", b(true)),
            ("items.exists(i, .record.qty == 100)", b(true)),
            (".qty", n(100.0)),
            ("[1, 2, 3].map(x, x / 2)[0]", n(0.5)),
            ("missing.exists(x, true) || true", b(true)),
        ],
    );
    assert!(eval("missing.exists(x, x > 1)", &rec).is_err());
}

#[test]
fn conditionals_and_type_names() {
    let rec = json!({"type": "charge", "amount": 5});
    check(
        &rec,
        &[
            ("type == 'charge'", b(true)),
            ("type(amount) == int", b(true)),
            ("amount > 1 ? 'big' : 'small'", text("big")),
            ("int(amount / 2)", n(2.0)),
        ],
    );
    // without a field of that name, `type` is the type again
    check(&json!({"amount": 5}), &[("type(amount) == int", b(true))]);
}

#[test]
fn eval_vars_computes_formulas() {
    let e = Expr::parse("gross_revenue - refunds").unwrap();
    let mut vars = HashMap::new();
    vars.insert("gross_revenue".to_owned(), Scalar::Number(1000.0));
    vars.insert("refunds".to_owned(), Scalar::Number(150.5));
    assert_eq!(e.eval_vars(&vars).unwrap(), Scalar::Number(849.5));

    vars.remove("refunds");
    assert_eq!(e.eval_vars(&vars).unwrap(), Scalar::Null);

    vars.insert("refunds".to_owned(), Scalar::Null);
    assert_eq!(e.eval_vars(&vars).unwrap(), Scalar::Null);

    let vars: HashMap<String, Scalar> = [
        ("a".to_owned(), Scalar::Number(7.0)),
        ("b".to_owned(), Scalar::Number(2.0)),
        ("zero".to_owned(), Scalar::Number(0.0)),
        ("odd-name".to_owned(), Scalar::Number(4.0)),
        ("label".to_owned(), Scalar::Text("x".to_owned())),
        ("flag".to_owned(), Scalar::Bool(true)),
    ]
    .into_iter()
    .collect();
    for (source, expected) in [
        ("a / b", n(3.5)),
        ("a / zero", Scalar::Null),
        ("a % b", n(1.0)),
        ("a > b", b(true)),
        ("missing > b", b(false)),
        ("record['odd-name'] + a", n(11.0)),
        ("label + 'y'", text("xy")),
        ("flag && a == 7", b(true)),
        ("a.field", Scalar::Null),
        ("has(record.a)", b(true)),
        ("has(record.nope)", b(false)),
        ("has(a.field)", b(false)),
        ("size(record)", n(6.0)),
    ] {
        let e = Expr::parse(source).unwrap();
        assert_eq!(e.eval_vars(&vars).unwrap(), expected, "`{source}`");
    }
}

#[test]
fn variables_lists_what_the_expression_reads() {
    let cases: &[(&str, &[&str], bool)] = &[
        (
            "gross_revenue - refunds",
            &["gross_revenue", "refunds"],
            false,
        ),
        ("amount / 100 + amount", &["amount"], false),
        (
            "properties.amount > 0 && has(meta.x)",
            &["meta", "properties"],
            false,
        ),
        ("items.exists(i, i.qty > limit)", &["items", "limit"], false),
        ("record['odd-name'] + record.b.c", &["b", "odd-name"], false),
        (
            "status.startsWith('x') && size(tags) > 0",
            &["status", "tags"],
            false,
        ),
        ("size(record) > n", &["n"], true),
        ("[1, 2].map(x, x * 2)[0]", &[], false),
    ];
    for (source, expected, whole) in cases {
        let e = Expr::parse(source).unwrap();
        assert_eq!(e.variables(), *expected, "`{source}`");
        assert_eq!(e.uses_whole_record(), *whole, "`{source}`");
        assert_eq!(e.source(), *source);
    }
}

#[test]
fn parse_errors_say_what_and_where() {
    let e = Expr::parse("amount /").unwrap_err().to_string();
    assert_eq!(e, "unexpected end of expression at column 9");

    for (source, expected) in [
        ("amount +* 2", "unexpected '*' at column 9"),
        ("status == 'paid", "unexpected text ''paid' at column 11"),
        ("a b", "unexpected 'b' at column 3"),
        ("has(amount)", "invalid argument to has() macro at column 5"),
        (
            "a ==\n  (b",
            "missing ')' at end of expression at line 2, column 5",
        ),
    ] {
        assert_eq!(Expr::parse(source).unwrap_err().to_string(), expected);
    }

    assert_eq!(
        Expr::parse("  ").unwrap_err().to_string(),
        "empty expression"
    );

    for source in ["amount /", "'unterminated", "a b", "1 +* 2", "f(", "x.y."] {
        let e = Expr::parse(source).unwrap_err().to_string();
        assert!(!e.contains('\n') && e.contains("column"), "`{source}`: {e}");
    }
}

#[test]
fn results_that_are_not_scalars_are_errors() {
    let rec = json!({"tags": ["a", "b"], "meta": {"x": 1}});
    for (source, kind) in [
        ("tags", "list"),
        ("[1, 2]", "list"),
        ("meta", "map"),
        ("b'abc'", "bytes"),
        ("duration('1h')", "duration"),
        ("int", "type"),
    ] {
        let e = eval(source, &rec).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "the expression gave a {kind}, where a number, string, bool or null was expected"
            ),
            "`{source}`"
        );
    }
}

#[test]
fn evaluation_errors_are_one_line() {
    let rec = json!({"s": "x"});
    for source in ["nope(1)", "s.nope()", "int('abc')", "!s", "s ? 1 : 2"] {
        let e = eval(source, &rec).unwrap_err().to_string();
        assert!(!e.contains('\n') && !e.contains("@sk"), "`{source}`: {e}");
    }
    assert_eq!(
        eval("nope(1)", &rec).unwrap_err().to_string(),
        "unknown function 'nope'"
    );
}

#[test]
fn as_number_reads_numbers_and_numeric_text() {
    assert_eq!(Scalar::Number(2.5).as_number(), Some(2.5));
    assert_eq!(Scalar::Text(" 12.50 ".to_owned()).as_number(), Some(12.5));
    assert_eq!(Scalar::Text("-3".to_owned()).as_number(), Some(-3.0));
    assert_eq!(Scalar::Text("12,50".to_owned()).as_number(), None);
    assert_eq!(Scalar::Text("NaN".to_owned()).as_number(), None);
    assert_eq!(Scalar::Text("inf".to_owned()).as_number(), None);
    assert_eq!(Scalar::Text(String::new()).as_number(), None);
    assert_eq!(Scalar::Bool(true).as_number(), None);
    assert_eq!(Scalar::Null.as_number(), None);
}

#[test]
fn expr_is_send_and_sync() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Expr>();
    shared::<ExprError>();
    shared::<EvalError>();

    let e = Arc::new(Expr::parse("amount / 100").unwrap());
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let rec = record(json!({"amount": 100 * t}));
                e.eval_record(&rec).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results, vec![Scalar::Number(0.0), Scalar::Number(1.0)]);
}
