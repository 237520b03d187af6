//! Every builtin the evaluator can call, by name: the operators, aggregates and
//! special forms of `ops` and the table and query forms of `query`.
//!
//! Joining the two tables here, above both, lets `query` build on `ops`'
//! helpers while `ops` knows nothing of `query`: the dependencies go one way.

use super::ops::{self, Def};
use super::query;

/// The builtin called `name`, if raywire knows it.
pub(crate) fn lookup(name: &str) -> Option<Def> {
    ops::lookup(name)
        .or_else(|| query::lookup(name))
        .or_else(|| ops::lookup_b(name))
}
