//! Conversion between the values of this module and CEL's, and the
//! resolution of names during an evaluation.
//!
//! It owns how a JSON value becomes a CEL value (only when read, borrowing
//! strings), how a [`Scalar`] goes to and from a CEL value, and the two
//! variable resolvers: [`RecordScope`] over one JSON record and
//! [`VarScope`] over the named values of a formula. Both read missing names
//! as `null`, walk the paths the rewrite collected, and bind the whole
//! input as `record`. Nothing here parses or rewrites, and the only error
//! is [`Scalar::from_val`]'s, for a result that is no scalar.

use std::collections::HashMap;
use std::sync::OnceLock;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp,
    CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use serde_json::{Map, Value as Json};

use super::functions::Num;
use super::rewrite::{Path, Seg, path_index};
use super::{EvalError, RECORD, Scalar, type_name};

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

impl Scalar {
    /// The result of an evaluation as a scalar: numbers of any kind become
    /// [`Scalar::Number`], a timestamp RFC 3339 text, and anything that is
    /// no number, string, bool or null an error naming its type.
    pub(super) fn from_val(value: &dyn Val) -> Result<Scalar, EvalError> {
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

/// Resolves the names of an expression over one JSON record.
pub(super) struct RecordScope<'a> {
    record: &'a Map<String, Json>,
    paths: &'a [Path],
    /// `record` as a CEL map, built the first time it is needed.
    whole: OnceLock<Box<dyn Val + 'a>>,
}

impl<'a> RecordScope<'a> {
    /// A scope over `record`, where the identifier of a path names the path
    /// at its position in `paths`.
    pub(super) fn new(record: &'a Map<String, Json>, paths: &'a [Path]) -> Self {
        RecordScope {
            record,
            paths,
            whole: OnceLock::new(),
        }
    }
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
pub(super) struct VarScope<'a> {
    vars: &'a HashMap<String, Scalar>,
    paths: &'a [Path],
    /// `record` as a CEL map of all of `vars`, built the first time it is
    /// needed.
    whole: OnceLock<Box<dyn Val + 'a>>,
}

impl<'a> VarScope<'a> {
    /// A scope over the named values `vars`, where the identifier of a path
    /// names the path at its position in `paths`.
    pub(super) fn new(vars: &'a HashMap<String, Scalar>, paths: &'a [Path]) -> Self {
        VarScope {
            vars,
            paths,
            whole: OnceLock::new(),
        }
    }
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

static NULL: CelNull = CelNull;

/// CEL's `null`, borrowed from a static.
pub(super) fn null<'b, 'v>() -> CowVal<'b, 'v> {
    CowVal::Borrowed(&NULL)
}

/// A CEL bool, borrowed from CEL's constants.
pub(super) fn boolean<'b, 'v>(b: bool) -> CowVal<'b, 'v> {
    CowVal::Borrowed(if b { &CelBool::TRUE } else { &CelBool::FALSE })
}
