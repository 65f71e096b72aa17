//! The functions the rewritten tree calls, and the root context every
//! evaluation runs in.
//!
//! It owns the spreadsheet semantics of the module doc: arithmetic where
//! integers stay integers until they overflow, `/` is decimal division,
//! and a `null` operand or a zero divisor gives `null`; ordering
//! comparisons that are `false` with a `null` operand; and the null-safe
//! accessor and `has` for fields and indexes the rewrite could not turn
//! into a record path.
//! Anything that is not a number goes to CEL's own operator, and a type
//! mismatch is reported under the operator's CEL name (`_+_`), never under
//! the names registered here, which no source can spell.

use std::sync::{Arc, OnceLock};

use cel::common::ast::operators;
use cel::common::functions::Function;
use cel::common::types::{CelDouble, CelInt, CelNull, CelUInt, DYN_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{Context, Env, ExecutionError};

use super::convert::{boolean, null};
use super::type_name;

/// The functions the rewrite calls: names a CEL source cannot spell.
pub(super) const FN_ADD: &str = "@sk_add";
pub(super) const FN_SUB: &str = "@sk_sub";
pub(super) const FN_MUL: &str = "@sk_mul";
pub(super) const FN_DIV: &str = "@sk_div";
pub(super) const FN_REM: &str = "@sk_rem";
pub(super) const FN_NEG: &str = "@sk_neg";
pub(super) const FN_LT: &str = "@sk_lt";
pub(super) const FN_LE: &str = "@sk_le";
pub(super) const FN_GT: &str = "@sk_gt";
pub(super) const FN_GE: &str = "@sk_ge";
pub(super) const FN_AT: &str = "@sk_at";
pub(super) const FN_HAS: &str = "@sk_has";

/// The context every evaluation runs in a child scope of: the standard
/// library and the functions of this module.
pub(super) fn root_context() -> &'static Context<'static, 'static> {
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
pub(super) enum Num {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl Num {
    /// The number `value` is, if it is one of CEL's three kinds.
    pub(super) fn of(value: &dyn Val) -> Option<Num> {
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

    /// The number as a decimal, rounded for integers beyond 2^53.
    pub(super) fn float(self) -> f64 {
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
