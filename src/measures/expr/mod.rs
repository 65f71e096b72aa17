//! CEL expressions of the measures config: `where`, `value` and `formula`.
//!
//! Users write [CEL](https://cel.dev) in the TOML config, e.g.
//! `where = "status == 'succeeded'"`, `value = "amount / 100.0"` or
//! `formula = "gross_revenue - refunds"`. The `cel` crate parses and
//! interprets it; this module adapts the language to what spreadsheet people
//! expect, by rewriting the parsed expression once, at config load:
//!
//! * **Numbers mix freely.** `+ - * %` between two integers stay integers
//!   (on overflow the result is a decimal instead); any other mix of integers
//!   and decimals gives a decimal. `/` is always decimal division
//!   (`7 / 2 == 3.5`), and dividing (or taking `%`) by zero gives `null`.
//! * **`null` propagates.** An arithmetic operation, unary `-` included, with
//!   a `null` operand is `null`. `< <= > >=` with a `null` operand are
//!   `false`. `==` and `!=` are CEL's own: `x == null` works.
//! * **Missing is `null`.** A record's fields are top-level names (`amount`,
//!   `status`); nested fields are read with dots or brackets
//!   (`properties.amount`, ``properties.`hs-amount` ``, `items[0].qty`). A key
//!   that is absent, or a field read on `null` or on anything that is not an
//!   object, or a list index out of range, is `null`, never an error. The
//!   whole record is also bound as `record`, so `record["odd-name"]` reads a
//!   key that is no identifier. `has(a.b)` keeps its CEL meaning, whether the
//!   key is present, but is `false`, not an error, when `a` is no object.
//! * **Strings stay strings.** `"12.50"` is not a number until converted:
//!   `double(total_price) * 0.9`.
//!
//! Everything else — string functions, `in`, comprehensions such as
//! `items.exists(i, i.qty > 2)`, timestamps and durations — is CEL's standard
//! library. A bare name that is a type name of CEL (`int`, `string`, `type`,
//! ...) reads the record's field of that name when the record has one, and is
//! the type otherwise, so that `type(x) == int` still works.
//!
//! # How it works
//!
//! [`Expr::parse`] parses with `cel`, then rewrites the tree: the arithmetic
//! operators, unary minus and the ordering comparisons become calls of
//! functions registered here under names no source can spell (`@sk_add`,
//! ...); a chain of field reads rooted in a record field (`a.b[0]["c"]`)
//! becomes one identifier standing for that path, which the variable
//! resolver walks in the JSON record, converting only the value at its end;
//! any other field read or index becomes a null-safe accessor call.
//! Evaluation runs `cel`'s interpreter on the rewritten tree, in a child scope
//! of one shared root context, with a resolver over the record (or over the
//! named values of [`Expr::eval_vars`]); comprehension variables live in
//! scopes nested inside it, so they shadow record fields of the same name.
//!
//! # Layout
//!
//! This file owns the public types and the parse and evaluation entry
//! points. `rewrite.rs` turns the parsed tree into the one evaluated,
//! `functions.rs` holds the functions the rewritten tree calls and the root
//! context they are registered in, and `convert.rs` converts between JSON,
//! [`Scalar`] and CEL values and resolves names over a record or over a
//! formula's named values. None of them does IO, and the only thing shared
//! between evaluations is the root context, built once.

mod convert;
mod functions;
mod rewrite;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use cel::common::ast::{IdedExpr, operators};
use cel::common::value::Val;
use cel::context::VariableResolver;
use cel::parser::{ParseErrors, Parser};
use cel::{Context, ExecutionError, Value};
use serde_json::{Map, Value as Json};

use convert::{RecordScope, VarScope};
use functions::root_context;
use rewrite::{Path, Rewriter};

/// The name the whole record (or, for a formula, all the named values) is
/// bound to.
const RECORD: &str = "record";

/// A CEL expression compiled once at config load.
///
/// It holds only the rewritten syntax tree and what was learnt while
/// rewriting it, so it is cheap to share: it is `Send + Sync`, and one
/// `Arc<Expr>` can be evaluated from many tasks at once.
#[derive(Clone, Debug)]
pub struct Expr {
    source: String,
    ast: IdedExpr,
    variables: Vec<String>,
    paths: Vec<Path>,
    whole_record: bool,
}

impl Expr {
    /// Parses and rewrites; the error message is one line that says what is
    /// wrong and where (column), fit to be prefixed by a config key path.
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        if source.trim().is_empty() {
            return Err(ExprError("empty expression".to_owned()));
        }
        let parsed = Parser::new()
            .enable_ident_escape_syntax(true)
            .parse(source)
            .map_err(|errors| ExprError::from_parse(source, &errors))?;
        let mut rewriter = Rewriter::default();
        let ast = rewriter.expr(parsed);
        Ok(Expr {
            source: source.to_owned(),
            ast,
            variables: rewriter.variables.into_iter().collect(),
            paths: rewriter.paths,
            whole_record: rewriter.whole_record,
        })
    }

    /// The source text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Top-level identifiers the expression reads (record fields, or other
    /// measures for a formula), sorted and deduplicated, excluding `record`
    /// and comprehension variables and function names.
    ///
    /// A key read through `record` with a literal (`record["odd-name"]`) is
    /// listed too, and so is a bare type name such as `int`, which reads the
    /// field of that name when there is one. Keys read through `record` otherwise (`record[k]`,
    /// `size(record)`) cannot be known: see [`Expr::uses_whole_record`].
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Whether the expression uses `record` other than to read a literal key
    /// of it, in which case it may read keys [`Expr::variables`] misses.
    pub fn uses_whole_record(&self) -> bool {
        self.whole_record
    }

    /// Evaluates over one API record (a JSON object).
    ///
    /// Only the fields the expression references are converted to CEL
    /// values, and of a nested path only the value at its end.
    pub fn eval_record(&self, record: &Map<String, Json>) -> Result<Scalar, EvalError> {
        let scope = RecordScope::new(record, &self.paths);
        self.eval_in(&scope)
    }

    /// Evaluates with named scalar variables (formulas over other measures);
    /// a name not in `vars` is null.
    ///
    /// Numbers are decimals here. `record` is bound to all of `vars`, so
    /// `record["odd-name"]` works as it does for a record.
    pub fn eval_vars(&self, vars: &HashMap<String, Scalar>) -> Result<Scalar, EvalError> {
        let scope = VarScope::new(vars, &self.paths);
        self.eval_in(&scope)
    }

    fn eval_in(&self, scope: &dyn VariableResolver) -> Result<Scalar, EvalError> {
        let root: &Context<'_, '_> = root_context();
        let mut ctx = root.new_inner_scope();
        ctx.set_variable_resolver(scope);
        let value = Value::resolve_val(&self.ast, &ctx).map_err(EvalError::from_execution)?;
        Scalar::from_val(value.as_ref())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The result of an expression, reduced to what a measure can use.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// `null`, also what a missing field reads as.
    Null,
    /// A boolean, e.g. the result of a `where` filter.
    Bool(bool),
    /// Any number: CEL's `int`, `uint` and `double` all end up here.
    Number(f64),
    /// A string; a timestamp result is given as RFC 3339 text.
    Text(String),
}

impl Scalar {
    /// The value as a number: a [`Scalar::Number`] as it is, a
    /// [`Scalar::Text`] that parses as a finite number once trimmed (e.g.
    /// `"12.50"`), and `None` for anything else.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Scalar::Number(n) => Some(*n),
            Scalar::Text(text) => text.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            Scalar::Null | Scalar::Bool(_) => None,
        }
    }
}

/// An expression that does not parse. Its message is one line that says
/// what is wrong and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(String);

impl ExprError {
    fn from_parse(source: &str, errors: &ParseErrors) -> ExprError {
        let Some(first) = errors.errors.first() else {
            return ExprError("invalid expression".to_owned());
        };
        let (line, column) = first.pos;
        let place = if source.contains('\n') {
            format!("line {line}, column {column}")
        } else {
            format!("column {column}")
        };
        ExprError(format!("{} at {place}", tidy_parse_message(&first.msg)))
    }
}

/// Makes the parser's message short and one line: the list of the tokens
/// it expected is long and says little to a config author.
fn tidy_parse_message(msg: &str) -> String {
    let msg = msg.strip_prefix("Syntax error: ").unwrap_or(msg);
    let msg = match msg.find(" expecting ") {
        Some(at) => &msg[..at],
        None => msg,
    };
    let msg = [
        ("extraneous input ", "unexpected "),
        ("mismatched input ", "unexpected "),
        ("no viable alternative at input ", "unexpected "),
        ("token recognition error at: ", "unexpected text "),
    ]
    .iter()
    .find_map(|(prefix, instead)| {
        msg.strip_prefix(prefix)
            .map(|rest| format!("{instead}{rest}"))
    })
    .unwrap_or_else(|| msg.to_owned());
    msg.replace("'<EOF>'", "end of expression")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// An expression that failed to evaluate. Its message is one line that says
/// what failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(String);

impl EvalError {
    fn from_execution(error: ExecutionError) -> EvalError {
        let message = match &error {
            ExecutionError::NoSuchOverload(overload) => {
                let name = overload.function();
                let what = match operator_symbol(name) {
                    Some(symbol) => format!("operator '{symbol}'"),
                    None => format!("function '{name}'"),
                };
                format!(
                    "{what} cannot be applied to ({})",
                    overload.argument_types().join(", ")
                )
            }
            ExecutionError::UndeclaredReference(name) => format!("unknown function '{name}'"),
            other => other.to_string(),
        };
        EvalError(message.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// The symbol of a CEL operator's function name, `+` for `_+_`.
fn operator_symbol(function: &str) -> Option<&'static str> {
    Some(match function {
        operators::ADD => "+",
        operators::SUBSTRACT => "-",
        operators::MULTIPLY => "*",
        operators::DIVIDE => "/",
        operators::MODULO => "%",
        operators::NEGATE => "-",
        operators::LESS => "<",
        operators::LESS_EQUALS => "<=",
        operators::GREATER => ">",
        operators::GREATER_EQUALS => ">=",
        operators::EQUALS => "==",
        operators::NOT_EQUALS => "!=",
        operators::LOGICAL_NOT => "!",
        operators::LOGICAL_AND => "&&",
        operators::LOGICAL_OR => "||",
        operators::CONDITIONAL => "? :",
        operators::INDEX => "[]",
        operators::IN => "in",
        _ => return None,
    })
}

/// A user-facing name of a value's type.
fn type_name(value: &dyn Val) -> &str {
    match value.get_type().name() {
        "google.protobuf.Duration" => "duration",
        "google.protobuf.Timestamp" => "timestamp",
        name => name,
    }
}
