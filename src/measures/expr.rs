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

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr as Node, IdedExpr, LiteralValue, operators,
};
use cel::common::functions::Function;
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp,
    CelUInt, DYN_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::parser::{ParseErrors, Parser};
use cel::{Context, Env, ExecutionError, Value};
use serde_json::{Map, Value as Json};

/// The name the whole record (or, for a formula, all the named values) is
/// bound to.
const RECORD: &str = "record";

/// Prefix of the identifiers that stand for a path of field reads; `@` is
/// not allowed in a CEL identifier, so no source can spell one.
const PATH_PREFIX: &str = "@sk:";

/// The functions the rewrite calls: names a CEL source cannot spell.
const FN_ADD: &str = "@sk_add";
const FN_SUB: &str = "@sk_sub";
const FN_MUL: &str = "@sk_mul";
const FN_DIV: &str = "@sk_div";
const FN_REM: &str = "@sk_rem";
const FN_NEG: &str = "@sk_neg";
const FN_LT: &str = "@sk_lt";
const FN_LE: &str = "@sk_le";
const FN_GT: &str = "@sk_gt";
const FN_GE: &str = "@sk_ge";
const FN_AT: &str = "@sk_at";
const FN_HAS: &str = "@sk_has";

/// The names of CEL's standard types: a bare identifier of one of these
/// names is that type unless the record has a field of that name.
const TYPE_NAMES: [&str; 10] = [
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

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
        let scope = RecordScope {
            record,
            paths: &self.paths,
            whole: OnceLock::new(),
        };
        self.eval_in(&scope)
    }

    /// Evaluates with named scalar variables (formulas over other measures);
    /// a name not in `vars` is null.
    ///
    /// Numbers are decimals here. `record` is bound to all of `vars`, so
    /// `record["odd-name"]` works as it does for a record.
    pub fn eval_vars(&self, vars: &HashMap<String, Scalar>) -> Result<Scalar, EvalError> {
        let scope = VarScope {
            vars,
            paths: &self.paths,
            whole: OnceLock::new(),
        };
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

    fn from_val(value: &dyn Val) -> Result<Scalar, EvalError> {
        if value.downcast_ref::<CelNull>().is_some() {
            Ok(Scalar::Null)
        } else if let Some(b) = value.downcast_ref::<CelBool>() {
            Ok(Scalar::Bool(*b.inner()))
        } else if let Some(n) = Num::of(value) {
            Ok(Scalar::Number(n.float()))
        } else if let Some(s) = value.downcast_ref::<CelString>() {
            Ok(Scalar::Text(s.inner().to_owned()))
        } else if let Some(t) = value.downcast_ref::<CelTimestamp>() {
            Ok(Scalar::Text(t.inner().to_rfc3339()))
        } else {
            Err(EvalError(format!(
                "the expression gave a {}, where a number, string, bool or null was expected",
                type_name(value)
            )))
        }
    }

    /// The scalar as a CEL value, borrowing a text.
    fn to_val(&self) -> CowVal<'_, '_> {
        match self {
            Scalar::Null => null(),
            Scalar::Bool(b) => boolean(*b),
            Scalar::Number(n) => CowVal::owned(CelDouble::from(*n)),
            Scalar::Text(s) => CowVal::owned(CelString::from(s.as_str())),
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

// ---------------------------------------------------------------------------
// The rewrite
// ---------------------------------------------------------------------------

/// One step of a path of field reads.
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    /// An object key: `.name` or `["name"]`.
    Key(String),
    /// A list position: `[0]`.
    Index(i64),
}

/// A path of field reads from the record, which the rewritten expression
/// names with an identifier `@sk:N`, N its position in [`Expr::paths`].
#[derive(Clone, Debug, PartialEq)]
struct Path {
    segs: Vec<Seg>,
    /// `has(...)` of the path: whether its last key is present.
    test: bool,
}

#[derive(Default)]
struct Rewriter {
    /// Comprehension variables in scope, innermost last.
    bound: Vec<String>,
    /// Comprehension accumulators in scope.
    accumulators: Vec<String>,
    paths: Vec<Path>,
    variables: BTreeSet<String>,
    whole_record: bool,
}

impl Rewriter {
    fn is_bound(&self, name: &str) -> bool {
        self.bound.iter().any(|bound| bound == name)
    }

    fn expr(&mut self, expr: IdedExpr) -> IdedExpr {
        let id = expr.id;
        let node = match expr.expr {
            Node::Ident(name) => match name.strip_prefix('.') {
                // `.name` is absolute: never a comprehension variable
                Some(RECORD) => {
                    self.whole_record = true;
                    Node::Ident(RECORD.to_owned())
                }
                Some(absolute) => return self.path(id, vec![Seg::Key(absolute.to_owned())], false),
                None => {
                    if !self.is_bound(&name) {
                        if name == RECORD {
                            self.whole_record = true;
                        } else {
                            self.variables.insert(name.clone());
                        }
                    }
                    Node::Ident(name)
                }
            },
            Node::Select(select) if select.test => {
                // `has(a.b)`: a path test when `a` is a path of the record
                if let Some(mut segs) = self.chain(&select.operand) {
                    segs.push(Seg::Key(select.field));
                    return self.path(id, segs, true);
                }
                let operand = self.expr(*select.operand);
                call(FN_HAS, vec![operand, string_literal(id, select.field)])
            }
            Node::Select(select) => {
                let whole = IdedExpr {
                    id,
                    expr: Node::Select(select),
                };
                if let Some(segs) = self.chain(&whole) {
                    return self.path(id, segs, false);
                }
                let Node::Select(select) = whole.expr else {
                    unreachable!("just built as a select")
                };
                let operand = self.expr(*select.operand);
                call(FN_AT, vec![operand, string_literal(id, select.field)])
            }
            Node::Call(c) if is_index(&c) => {
                let whole = IdedExpr {
                    id,
                    expr: Node::Call(c),
                };
                if let Some(segs) = self.chain(&whole) {
                    return self.path(id, segs, false);
                }
                let Node::Call(c) = whole.expr else {
                    unreachable!("just built as a call")
                };
                call(FN_AT, self.exprs(c.args))
            }
            Node::Call(c) => self.call(c),
            Node::Comprehension(c) => Node::Comprehension(Box::new(self.comprehension(*c))),
            Node::List(mut list) => {
                list.elements = self.exprs(list.elements);
                Node::List(list)
            }
            Node::Map(mut map) => {
                for entry in &mut map.entries {
                    self.entry(&mut entry.expr);
                }
                Node::Map(map)
            }
            Node::Struct(mut s) => {
                for entry in &mut s.entries {
                    self.entry(&mut entry.expr);
                }
                Node::Struct(s)
            }
            other @ (Node::Literal(_) | Node::Unspecified) => other,
        };
        IdedExpr { id, expr: node }
    }

    fn exprs(&mut self, exprs: Vec<IdedExpr>) -> Vec<IdedExpr> {
        exprs.into_iter().map(|e| self.expr(e)).collect()
    }

    fn in_place(&mut self, expr: &mut IdedExpr) {
        *expr = self.expr(std::mem::take(expr));
    }

    fn entry(&mut self, entry: &mut EntryExpr) {
        match entry {
            EntryExpr::MapEntry(e) => {
                self.in_place(&mut e.key);
                self.in_place(&mut e.value);
            }
            EntryExpr::StructField(f) => self.in_place(&mut f.value),
        }
    }

    fn call(&mut self, mut c: CallExpr) -> Node {
        if c.target.is_none() {
            let renamed = match (c.func_name.as_str(), c.args.len()) {
                // `@result + [x]` and the like, which the macros build, stay
                // CEL's: the interpreter recognises them
                (_, 2) if self.touches_accumulator(&c.args) => None,
                (operators::ADD, 2) => Some(FN_ADD),
                (operators::SUBSTRACT, 2) => Some(FN_SUB),
                (operators::MULTIPLY, 2) => Some(FN_MUL),
                (operators::DIVIDE, 2) => Some(FN_DIV),
                (operators::MODULO, 2) => Some(FN_REM),
                (operators::LESS, 2) => Some(FN_LT),
                (operators::LESS_EQUALS, 2) => Some(FN_LE),
                (operators::GREATER, 2) => Some(FN_GT),
                (operators::GREATER_EQUALS, 2) => Some(FN_GE),
                (operators::NEGATE, 1) => Some(FN_NEG),
                _ => None,
            };
            if let Some(name) = renamed {
                c.func_name = name.to_owned();
            }
        }
        if let Some(target) = c.target.as_deref_mut() {
            self.in_place(target);
        }
        c.args = self.exprs(c.args);
        Node::Call(c)
    }

    fn touches_accumulator(&self, args: &[IdedExpr]) -> bool {
        args.iter()
            .any(|arg| matches!(&arg.expr, Node::Ident(name) if self.accumulators.contains(name)))
    }

    fn comprehension(&mut self, mut c: ComprehensionExpr) -> ComprehensionExpr {
        self.in_place(&mut c.iter_range);
        self.in_place(&mut c.accu_init);
        let depth = self.bound.len();
        self.bound.push(c.iter_var.clone());
        self.bound.extend(c.iter_var2.clone());
        self.bound.push(c.accu_var.clone());
        self.accumulators.push(c.accu_var.clone());
        self.in_place(&mut c.loop_cond);
        self.in_place(&mut c.loop_step);
        self.in_place(&mut c.result);
        self.accumulators.pop();
        self.bound.truncate(depth);
        c
    }

    /// The path of the record `expr` reads, if it is a chain of field reads
    /// and literal indexes rooted in a record field or in `record`.
    fn chain(&self, expr: &IdedExpr) -> Option<Vec<Seg>> {
        match &expr.expr {
            Node::Ident(name) => match name.strip_prefix('.') {
                Some(RECORD) => Some(Vec::new()),
                Some(absolute) => Some(vec![Seg::Key(absolute.to_owned())]),
                None if self.is_bound(name) => None,
                None if name == RECORD => Some(Vec::new()),
                None => Some(vec![Seg::Key(name.clone())]),
            },
            Node::Select(select) if !select.test => {
                let mut segs = self.chain(&select.operand)?;
                segs.push(Seg::Key(select.field.clone()));
                Some(segs)
            }
            Node::Call(c) if is_index(c) => {
                let seg = match &c.args[1].expr {
                    Node::Literal(LiteralValue::String(s)) => Seg::Key(s.inner().to_owned()),
                    Node::Literal(LiteralValue::Int(i)) => Seg::Index(*i.inner()),
                    Node::Literal(LiteralValue::UInt(u)) => {
                        Seg::Index(i64::try_from(*u.inner()).ok()?)
                    }
                    _ => return None,
                };
                let mut segs = self.chain(&c.args[0])?;
                segs.push(seg);
                Some(segs)
            }
            _ => None,
        }
    }

    /// The identifier standing for the path `segs`, registered once.
    fn path(&mut self, id: u64, segs: Vec<Seg>, test: bool) -> IdedExpr {
        if let Some(Seg::Key(first)) = segs.first() {
            self.variables.insert(first.clone());
        }
        let path = Path { segs, test };
        let index = match self.paths.iter().position(|p| *p == path) {
            Some(index) => index,
            None => {
                self.paths.push(path);
                self.paths.len() - 1
            }
        };
        IdedExpr {
            id,
            expr: Node::Ident(format!("{PATH_PREFIX}{index}")),
        }
    }
}

fn is_index(c: &CallExpr) -> bool {
    c.func_name == operators::INDEX && c.target.is_none() && c.args.len() == 2
}

fn call(name: &str, args: Vec<IdedExpr>) -> Node {
    Node::Call(CallExpr {
        func_name: name.to_owned(),
        target: None,
        args,
    })
}

fn string_literal(id: u64, s: String) -> IdedExpr {
    IdedExpr {
        id,
        expr: Node::Literal(LiteralValue::String(CelString::from(s))),
    }
}

// ---------------------------------------------------------------------------
// Variables: the record, or the named values of a formula
// ---------------------------------------------------------------------------

fn path_index(name: &str) -> Option<usize> {
    name.strip_prefix(PATH_PREFIX)?.parse().ok()
}

/// Resolves the names of an expression over one JSON record.
struct RecordScope<'a> {
    record: &'a Map<String, Json>,
    paths: &'a [Path],
    /// `record` as a CEL map, built the first time it is needed.
    whole: OnceLock<Box<dyn Val + 'a>>,
}

impl VariableResolver for RecordScope<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        if let Some(path) = path_index(name).and_then(|i| self.paths.get(i)) {
            return Some(if path.test {
                boolean(json_has(self.record, &path.segs))
            } else {
                json_path(self.record, &path.segs).map_or_else(null, json_val)
            });
        }
        if name == RECORD {
            let whole = self.whole.get_or_init(|| Box::new(json_map(self.record)));
            return Some(CowVal::Borrowed(whole.as_ref()));
        }
        match self.record.get(name) {
            Some(value) => Some(json_val(value)),
            None if TYPE_NAMES.contains(&name) => None,
            None => Some(null()),
        }
    }
}

/// The value at `segs` in `record`, if there is one.
fn json_path<'a>(record: &'a Map<String, Json>, segs: &[Seg]) -> Option<&'a Json> {
    let (Seg::Key(first), rest) = segs.split_first()? else {
        return None;
    };
    let mut value = record.get(first)?;
    for seg in rest {
        value = match (seg, value) {
            (Seg::Key(key), Json::Object(object)) => object.get(key)?,
            (Seg::Index(i), Json::Array(array)) => array.get(usize::try_from(*i).ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Whether the last key of `segs` is present in the object its other
/// segments lead to.
fn json_has(record: &Map<String, Json>, segs: &[Seg]) -> bool {
    let Some((Seg::Key(last), parent)) = segs.split_last() else {
        return false;
    };
    if parent.is_empty() {
        return record.contains_key(last);
    }
    matches!(json_path(record, parent), Some(Json::Object(o)) if o.contains_key(last))
}

/// A JSON value as a CEL value, borrowing its strings. Integers that fit
/// an `i64` are `int`, larger ones `uint`, any other number `double`.
fn json_val(value: &Json) -> CowVal<'_, '_> {
    match value {
        Json::Null => null(),
        Json::Bool(b) => boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                CowVal::owned(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                CowVal::owned(CelUInt::from(u))
            } else {
                CowVal::owned(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => CowVal::owned(CelString::from(s.as_str())),
        Json::Array(items) => CowVal::owned(CelList::from(
            items
                .iter()
                .map(|item| json_val(item).into_owned())
                .collect::<Vec<_>>(),
        )),
        Json::Object(object) => CowVal::owned(json_map(object)),
    }
}

fn json_map(object: &Map<String, Json>) -> CelMap<'_> {
    CelMap::from(
        object
            .iter()
            .map(|(k, v)| {
                (
                    CelMapKey::String(CelString::from(k.as_str())),
                    json_val(v).into_owned(),
                )
            })
            .collect::<HashMap<_, _>>(),
    )
}

/// Resolves the names of a formula over the values of other measures.
struct VarScope<'a> {
    vars: &'a HashMap<String, Scalar>,
    paths: &'a [Path],
    whole: OnceLock<Box<dyn Val + 'a>>,
}

impl VariableResolver for VarScope<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        if let Some(path) = path_index(name).and_then(|i| self.paths.get(i)) {
            // a scalar has no fields: only a one-key path leads anywhere
            return Some(match (path.test, path.segs.as_slice()) {
                (true, [Seg::Key(key)]) => boolean(self.vars.contains_key(key)),
                (false, [Seg::Key(key)]) => self.vars.get(key).map_or_else(null, Scalar::to_val),
                (true, _) => boolean(false),
                (false, _) => null(),
            });
        }
        if name == RECORD {
            let whole = self.whole.get_or_init(|| {
                Box::new(CelMap::from(
                    self.vars
                        .iter()
                        .map(|(k, v)| {
                            (
                                CelMapKey::String(CelString::from(k.as_str())),
                                v.to_val().into_owned(),
                            )
                        })
                        .collect::<HashMap<_, _>>(),
                ))
            });
            return Some(CowVal::Borrowed(whole.as_ref()));
        }
        match self.vars.get(name) {
            Some(value) => Some(value.to_val()),
            None if TYPE_NAMES.contains(&name) => None,
            None => Some(null()),
        }
    }
}

// ---------------------------------------------------------------------------
// The functions the rewrite calls
// ---------------------------------------------------------------------------

/// The context every evaluation runs in a child scope of: the standard
/// library and the functions of this module.
fn root_context() -> &'static Context<'static, 'static> {
    static ROOT: OnceLock<Context<'static, 'static>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let mut env = Env::default().with_optional_support(false).with_stdlib();
        let functions: [(&str, Function, usize); 12] = [
            (FN_ADD, add, 2),
            (FN_SUB, sub, 2),
            (FN_MUL, mul, 2),
            (FN_DIV, div, 2),
            (FN_REM, rem, 2),
            (FN_NEG, neg, 1),
            (FN_LT, lt, 2),
            (FN_LE, le, 2),
            (FN_GT, gt, 2),
            (FN_GE, ge, 2),
            (FN_AT, at, 2),
            (FN_HAS, has, 2),
        ];
        for (name, function, arity) in functions {
            env.add_overload(name, name, (0..arity).map(|_| DYN_TYPE).collect(), function)
                .expect("the names of this module are declared once");
        }
        Context::with_env(Arc::new(env))
    })
}

static NULL: CelNull = CelNull;

fn null<'b, 'v>() -> CowVal<'b, 'v> {
    CowVal::Borrowed(&NULL)
}

fn boolean<'b, 'v>(b: bool) -> CowVal<'b, 'v> {
    CowVal::Borrowed(if b { &CelBool::TRUE } else { &CelBool::FALSE })
}

fn is_null(value: &dyn Val) -> bool {
    value.downcast_ref::<CelNull>().is_some()
}

type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

fn two<'b, 'v>(args: Args<'b, 'v>) -> Result<(CowVal<'b, 'v>, CowVal<'b, 'v>), ExecutionError> {
    let count = args.len();
    let mut args = args.into_iter();
    match (args.next(), args.next(), args.next()) {
        (Some(l), Some(r), None) => Ok((l, r)),
        _ => Err(ExecutionError::invalid_argument_count(2, count)),
    }
}

fn mismatch(function: &str, args: &[&dyn Val]) -> ExecutionError {
    ExecutionError::no_such_overload(
        function,
        args.iter().map(|a| type_name(*a).to_owned()).collect(),
    )
}

/// A CEL number.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl Num {
    fn of(value: &dyn Val) -> Option<Num> {
        if let Some(i) = value.downcast_ref::<CelInt>() {
            Some(Num::Int(*i.inner()))
        } else if let Some(f) = value.downcast_ref::<CelDouble>() {
            Some(Num::Float(*f.inner()))
        } else {
            value
                .downcast_ref::<CelUInt>()
                .map(|u| Num::UInt(*u.inner()))
        }
    }

    fn float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::UInt(u) => u as f64,
            Num::Float(f) => f,
        }
    }
}

fn int<'b, 'v>(i: i64) -> CowVal<'b, 'v> {
    CowVal::owned(CelInt::from(i))
}

fn uint<'b, 'v>(u: u64) -> CowVal<'b, 'v> {
    CowVal::owned(CelUInt::from(u))
}

fn float<'b, 'v>(f: f64) -> CowVal<'b, 'v> {
    CowVal::owned(CelDouble::from(f))
}

#[derive(Clone, Copy, PartialEq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Arith {
    fn operator(self) -> &'static str {
        match self {
            Arith::Add => operators::ADD,
            Arith::Sub => operators::SUBSTRACT,
            Arith::Mul => operators::MULTIPLY,
            Arith::Div => operators::DIVIDE,
            Arith::Rem => operators::MODULO,
        }
    }

    fn floats(self, x: f64, y: f64) -> f64 {
        match self {
            Arith::Add => x + y,
            Arith::Sub => x - y,
            Arith::Mul => x * y,
            Arith::Div => x / y,
            Arith::Rem => x % y,
        }
    }

    fn ints(self, x: i64, y: i64) -> Option<i64> {
        match self {
            Arith::Add => x.checked_add(y),
            Arith::Sub => x.checked_sub(y),
            Arith::Mul => x.checked_mul(y),
            Arith::Div => None,
            Arith::Rem => x.checked_rem(y),
        }
    }

    fn uints(self, x: u64, y: u64) -> Option<u64> {
        match self {
            Arith::Add => x.checked_add(y),
            Arith::Sub => x.checked_sub(y),
            Arith::Mul => x.checked_mul(y),
            Arith::Div => None,
            Arith::Rem => x.checked_rem(y),
        }
    }

    /// Two numbers: integers stay integers for all but `/`, falling back
    /// to decimals on overflow; any mix gives a decimal; by zero, `/` and
    /// `%` give `null`.
    fn numbers<'b, 'v>(self, a: Num, b: Num) -> CowVal<'b, 'v> {
        if matches!(self, Arith::Div | Arith::Rem) && b.float() == 0.0 {
            return null();
        }
        let exact = match (a, b) {
            (Num::Int(x), Num::Int(y)) => self.ints(x, y).map(int),
            (Num::UInt(x), Num::UInt(y)) => self.uints(x, y).map(uint),
            _ => None,
        };
        exact.unwrap_or_else(|| float(self.floats(a.float(), b.float())))
    }

    fn apply<'b, 'v>(self, args: Args<'b, 'v>) -> Ret<'b, 'v> {
        let (l, r) = two(args)?;
        if is_null(l.as_ref()) || is_null(r.as_ref()) {
            return Ok(null());
        }
        if let (Some(a), Some(b)) = (Num::of(l.as_ref()), Num::of(r.as_ref())) {
            return Ok(self.numbers(a, b));
        }
        // anything but numbers: CEL's own operator
        let (l, r): (&(dyn Val + 'v), &(dyn Val + 'v)) = (l.as_ref(), r.as_ref());
        let error = || mismatch(self.operator(), &[l, r]);
        let result = match self {
            Arith::Add => l.as_adder().ok_or_else(error)?.add(r),
            Arith::Sub => l.as_subtractor().ok_or_else(error)?.sub(r),
            Arith::Mul => l.as_multiplier().ok_or_else(error)?.mul(r),
            Arith::Div => l.as_divider().ok_or_else(error)?.div(r),
            Arith::Rem => l.as_modder().ok_or_else(error)?.modulo(r),
        };
        match result {
            Ok(value) => Ok(CowVal::Owned(value.into_owned())),
            Err(
                ExecutionError::UnsupportedBinaryOperator(..)
                | ExecutionError::NoSuchOverload(_)
                | ExecutionError::UnexpectedType { .. }
                | ExecutionError::ValuesNotComparable(..),
            ) => Err(error()),
            Err(other) => Err(other),
        }
    }
}

fn add<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    Arith::Add.apply(args)
}

fn sub<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    Arith::Sub.apply(args)
}

fn mul<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    Arith::Mul.apply(args)
}

fn div<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    Arith::Div.apply(args)
}

fn rem<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    Arith::Rem.apply(args)
}

/// Unary minus: `null` stays `null`; an `int` that cannot be negated
/// becomes a decimal.
fn neg<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let Some(value) = args.into_iter().next() else {
        return Err(ExecutionError::invalid_argument_count(1, 0));
    };
    if is_null(value.as_ref()) {
        return Ok(null());
    }
    Ok(match Num::of(value.as_ref()) {
        Some(Num::Int(i)) => i.checked_neg().map_or_else(|| float(-(i as f64)), int),
        Some(Num::UInt(u)) => i64::try_from(u).map_or_else(|_| float(-(u as f64)), |i| int(-i)),
        Some(Num::Float(f)) => float(-f),
        None => {
            let value = value.as_ref();
            let error = || mismatch(operators::NEGATE, &[value]);
            CowVal::Owned(
                value
                    .as_negator()
                    .ok_or_else(error)?
                    .negate()
                    .map_err(|_| error())?,
            )
        }
    })
}

/// An ordering comparison: `false` when either side is `null` (or a NaN).
fn compare<'b, 'v>(
    args: Args<'b, 'v>,
    operator: &str,
    holds: fn(std::cmp::Ordering) -> bool,
) -> Ret<'b, 'v> {
    use std::cmp::Ordering::{Greater, Less};
    let (l, r) = two(args)?;
    let (l, r) = (l.as_ref(), r.as_ref());
    if is_null(l) || is_null(r) {
        return Ok(boolean(false));
    }
    let ordering = match (Num::of(l), Num::of(r)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => Some(x.cmp(&y)),
        (Some(Num::UInt(x)), Some(Num::UInt(y))) => Some(x.cmp(&y)),
        (Some(Num::Int(x)), Some(Num::UInt(y))) => {
            Some(u64::try_from(x).map_or(Less, |x| x.cmp(&y)))
        }
        (Some(Num::UInt(x)), Some(Num::Int(y))) => {
            Some(u64::try_from(y).map_or(Greater, |y| x.cmp(&y)))
        }
        (Some(a), Some(b)) => a.float().partial_cmp(&b.float()),
        _ => {
            let error = || mismatch(operator, &[l, r]);
            Some(
                l.as_comparer()
                    .ok_or_else(error)?
                    .compare(r)
                    .map_err(|_| error())?,
            )
        }
    };
    Ok(boolean(ordering.is_some_and(holds)))
}

fn lt<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    compare(args, operators::LESS, std::cmp::Ordering::is_lt)
}

fn le<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    compare(args, operators::LESS_EQUALS, std::cmp::Ordering::is_le)
}

fn gt<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    compare(args, operators::GREATER, std::cmp::Ordering::is_gt)
}

fn ge<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    compare(args, operators::GREATER_EQUALS, std::cmp::Ordering::is_ge)
}

/// `x.f`, `x[k]`: the value, or `null` when there is none, `x` included.
fn at<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (target, key) = two(args)?;
    let key = key.as_ref();
    Ok(match target {
        CowVal::Borrowed(target) => match target.as_indexer() {
            Some(indexer) => indexer.get(key).unwrap_or_else(|_| null()),
            None => null(),
        },
        CowVal::Owned(target) => match target.as_indexer() {
            Some(indexer) => match indexer.get(key) {
                Ok(value) => CowVal::Owned(value.into_owned()),
                Err(_) => null(),
            },
            None => null(),
        },
    })
}

/// `has(x.f)`: whether `x` has the key; `false` when `x` has no keys at all.
fn has<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (target, key) = two(args)?;
    let present = target
        .as_indexer()
        .is_some_and(|indexer| indexer.get(key.as_ref()).is_ok());
    Ok(boolean(present))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
