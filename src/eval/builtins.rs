//! Every builtin the evaluator can call, by name: the operators, aggregates and
//! special forms of `ops`, the table and query forms of `query`, and the
//! lambdas, iterators and control forms of `control`.
//!
//! Joining the two tables here, above both, lets `query` build on `ops`'
//! helpers while `ops` knows nothing of `query`: the dependencies go one way.

use super::control;
use super::ops;
pub(crate) use super::ops::Def;
use super::query;

/// The builtin called `name`, if raywire knows it.
pub(crate) fn lookup(name: &str) -> Option<Def> {
    ops::lookup(name)
        .or_else(|| query::lookup(name))
        .or_else(|| control::lookup(name))
        .or_else(|| ops::lookup_b(name))
}
