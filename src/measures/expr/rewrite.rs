//! The rewrite of a parsed CEL tree into the one [`Expr`](super::Expr)
//! evaluates, done once at parse time.
//!
//! It owns the naming of record paths: a chain of field reads rooted in a
//! record field (`a.b[0]["c"]`, or `has(a.b)`) becomes one identifier
//! `@sk:N`, N the path's position in the list the rewrite collects. It
//! renames the arithmetic operators, unary minus and the ordering
//! comparisons to the functions of `functions.rs`, turns any other field
//! read or index into a null-safe accessor call, and records which
//! top-level names the expression reads. Operators that CEL's macros apply
//! to their accumulators (`@result + [x]`) stay CEL's, since the
//! interpreter recognises them. It never evaluates anything.

use std::collections::BTreeSet;

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr as Node, IdedExpr, LiteralValue, operators,
};
use cel::common::types::CelString;

use super::RECORD;
use super::functions::{
    FN_ADD, FN_AT, FN_DIV, FN_GE, FN_GT, FN_HAS, FN_LE, FN_LT, FN_MUL, FN_NEG, FN_REM, FN_SUB,
};

/// Prefix of the identifiers that stand for a path of field reads; `@` is
/// not allowed in a CEL identifier, so no source can spell one.
const PATH_PREFIX: &str = "@sk:";

/// The position in the collected paths of the identifier `name`, if it is
/// one the rewrite made for a path.
pub(super) fn path_index(name: &str) -> Option<usize> {
    name.strip_prefix(PATH_PREFIX)?.parse().ok()
}

/// One step of a path of field reads.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Seg {
    /// An object key: `.name` or `["name"]`.
    Key(String),
    /// A list position: `[0]`.
    Index(i64),
}

/// A path of field reads from the record, which the rewritten expression
/// names with an identifier `@sk:N`, N its position in the paths of the
/// [`Expr`](super::Expr).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Path {
    /// The field reads, outermost first; a path rooted in `record` itself
    /// has no segment for it.
    pub(super) segs: Vec<Seg>,
    /// `has(...)` of the path: whether its last key is present.
    pub(super) test: bool,
}

/// One pass over a parsed tree; what it learnt is left in its fields.
#[derive(Default)]
pub(super) struct Rewriter {
    /// Comprehension variables in scope, innermost last.
    bound: Vec<String>,
    /// Comprehension accumulators in scope.
    accumulators: Vec<String>,
    /// The paths the rewritten tree names, each once, by position.
    pub(super) paths: Vec<Path>,
    /// The top-level names read, as [`Expr::variables`](super::Expr::variables) lists them.
    pub(super) variables: BTreeSet<String>,
    /// Whether `record` is used other than to read a literal key of it.
    pub(super) whole_record: bool,
}

impl Rewriter {
    fn is_bound(&self, name: &str) -> bool {
        self.bound.iter().any(|bound| bound == name)
    }

    /// The rewritten `expr`.
    pub(super) fn expr(&mut self, expr: IdedExpr) -> IdedExpr {
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
