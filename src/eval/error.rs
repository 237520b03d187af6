//! Evaluation errors: the core's short error code plus a human-readable message.

use crate::RayObj;
use std::fmt;

/// An evaluation failure, carrying the core's error code (`type`, `arity`, `name`,
/// `parse`, `domain`, `length`, `schema`, `limit`, ...) and a message for humans.
///
/// Only the code travels on the wire (as [`RayObj::Error`]); the message is for
/// logs and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// The core's error code, at most 7 ASCII bytes.
    pub code: &'static str,
    /// A description of what went wrong.
    pub message: String,
}

impl EvalError {
    /// An error with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> EvalError {
        EvalError {
            code,
            message: message.into(),
        }
    }

    /// The error as the wire object the core would send.
    pub fn to_obj(&self) -> RayObj {
        RayObj::error(self.code)
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for EvalError {}

/// Result of an evaluation step.
pub(crate) type R<T> = Result<T, EvalError>;

/// Builds an [`EvalError`] with a formatted message: `err!("type", "bad {x}")`.
macro_rules! err {
    ($code:expr, $($fmt:tt)*) => {
        $crate::eval::error::EvalError::new($code, format!($($fmt)*))
    };
}
pub(crate) use err;

/// Returns early with an [`EvalError`]: `bail!("type", "bad {x}")`.
macro_rules! bail {
    ($code:expr, $($fmt:tt)*) => {
        return Err($crate::eval::error::err!($code, $($fmt)*))
    };
}
pub(crate) use bail;
