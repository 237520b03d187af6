//! The cheap path for a string publication: `(.mc.pub 'topic payload)` sent as
//! source text (what the core's client and raw publishers send) is recognised by
//! its shape, and only a plain literal payload is parsed, here, without the
//! evaluator. Anything else (a name, a call, a literal this reader does not know
//! for certain) is left to the evaluator, so the answer is always the
//! evaluator's.
//!
//! The grammar is deliberately narrow: integers and floats, alone or in a
//! bracketed vector of one kind. Each accepted form gives exactly the object the
//! evaluator gives for it (`tests/fanout_burst.rs` checks them side by side).

use crate::RayObj;

/// Longest vector literal taken here; the evaluator's own bound is larger, and
/// longer ones go to it.
const MAX_ELEMS: usize = 4096;
/// Most digits of an integer taken here: 18 always fit an `i64`, and no such
/// token can be the evaluator's null or infinity spelling.
const MAX_INT_DIGITS: usize = 18;
/// Longest float token taken here (a plain decimal, always finite).
const MAX_FLOAT_LEN: usize = 40;

/// A publication recognised in source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourcePub<'a> {
    /// The topic's name (from `'topic` or `"topic"`).
    pub(crate) topic: &'a str,
    /// The payload, as the evaluator would have built it.
    pub(crate) payload: RayObj,
}

/// `(.mc.pub 'topic literal)` or `(.mc.pub "topic" literal)`, with `literal`
/// in this module's grammar; `None` for every other text.
pub(crate) fn source_pub(src: &str) -> Option<SourcePub<'_>> {
    let rest = src.trim_matches(is_ws).strip_prefix('(')?;
    let rest = rest.trim_start_matches(is_ws).strip_prefix(".mc.pub")?;
    if !rest.starts_with(is_ws) {
        return None;
    }
    let rest = rest.trim_start_matches(is_ws);
    let (topic, rest) = topic(rest)?;
    if !rest.starts_with(is_ws) {
        return None;
    }
    let body = rest.strip_suffix(')')?.trim_matches(is_ws);
    let payload = literal(body)?;
    Some(SourcePub { topic, payload })
}

/// Only the blanks the evaluator skips; a `;` comment sends the text to it.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// `'name` or `"name"` at the start of `s`, and what follows it.
fn topic(s: &str) -> Option<(&str, &str)> {
    if let Some(r) = s.strip_prefix('\'') {
        let end = r.find(|c: char| !is_name_char(c)).unwrap_or(r.len());
        let name = &r[..end];
        let first = name.chars().next()?;
        if !first.is_ascii_alphabetic() {
            return None;
        }
        return Some((name, &r[end..]));
    }
    let r = s.strip_prefix('"')?;
    let end = r.find('"')?;
    let name = &r[..end];
    if name.is_empty() || !name.chars().all(is_name_char) {
        // Escapes and odd characters: the evaluator knows what they mean.
        return None;
    }
    Some((name, &r[end + 1..]))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// A number, or a vector of numbers of one kind.
fn literal(s: &str) -> Option<RayObj> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        return vector(inner);
    }
    if s.contains(is_ws) {
        return None;
    }
    match token(s)? {
        Num::Int(v) => Some(RayObj::from(v)),
        Num::Float(v) => Some(RayObj::from(v)),
    }
}

fn vector(inner: &str) -> Option<RayObj> {
    let mut ints: Vec<i64> = Vec::new();
    let mut floats: Vec<f64> = Vec::new();
    for (k, t) in inner.split(is_ws).filter(|t| !t.is_empty()).enumerate() {
        if k >= MAX_ELEMS {
            return None;
        }
        match token(t)? {
            Num::Int(v) if floats.is_empty() => ints.push(v),
            Num::Float(v) if ints.is_empty() => floats.push(v),
            // A mix is the evaluator's business (it has its own rules for it).
            _ => return None,
        }
    }
    match (ints.is_empty(), floats.is_empty()) {
        (false, true) => Some(RayObj::from(ints)),
        (true, false) => Some(RayObj::from(floats)),
        // `[]`: the evaluator's empty vector has its own type; leave it there.
        _ => None,
    }
}

enum Num {
    Int(i64),
    Float(f64),
}

/// `-?digits` or `-?digits.digits`: nothing with a suffix, exponent, date or
/// time shape, null or infinity.
fn token(t: &str) -> Option<Num> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) {
        return None;
    }
    match frac {
        None if whole.len() <= MAX_INT_DIGITS => t.parse().ok().map(Num::Int),
        None => None,
        // Four digits and a dot may begin a date; a second dot never reaches
        // here (`all_digits` refuses it).
        Some(f) if all_digits(f) && t.len() <= MAX_FLOAT_LEN => t
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .map(Num::Float),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_accepted_literal_is_what_the_evaluator_makes_of_it() {
        let ev = crate::eval::Evaluator::new();
        for lit in [
            "[7 1 2 3 4 5]",
            "[0]",
            "[-1 -0 007 999999999999999999]",
            "[1.5 -2.25 0.1 3.0]",
            "[ 1\t2\n3\r4 ]",
            "42",
            "-42",
            "0.001",
            "-0.5",
            "2024.01",
        ] {
            let p = source_pub(&format!("(.mc.pub 'x {lit})")).map(|p| p.payload);
            assert_eq!(p, Some(ev.eval_str(lit)), "{lit}");
        }
    }

    #[test]
    fn the_shape_is_recognised_and_everything_else_is_left_alone() {
        let p = source_pub("(.mc.pub 'trades [7 1 2 3 4 5])").map(|p| (p.topic, p.payload));
        assert_eq!(p, Some(("trades", RayObj::from(vec![7i64, 1, 2, 3, 4, 5]))));
        let p = source_pub(" ( .mc.pub \"px\"\t[1.5 -2.25] ) ").map(|p| (p.topic, p.payload));
        assert_eq!(p, Some(("px", RayObj::from(vec![1.5f64, -2.25]))));
        let p = source_pub("(.mc.pub 'a -42)").map(|p| p.payload);
        assert_eq!(p, Some(RayObj::from(-42i64)));
        for other in [
            "(.mc.pub 'trades t)",
            "(.mc.pub 'trades [1 2.0])",
            "(.mc.pub 'trades [1i 2i])",
            "(.mc.pub 'trades [])",
            "(.mc.pub 'trades (til 3))",
            "(.mc.pub 'trades [1 2]) (.mc.pub 'trades [3])",
            "(.mc.pub 'trades [1 2] ; note\n)",
            "(.mc.pub 'trades 2024.01.02)",
            "(.mc.pub 'trades 0N)",
            "(.mc.pub 'trades 1e5)",
            "(.mc.pub 'trades 1234567890123456789)",
            "(.mc.pub \"a\\\"b\" 1)",
            "(.mc.pub 'trades)",
            "(.mc.pubx 'trades 1)",
            "(.mc.sub 'trades)",
            "(.mc.pub'trades 1)",
            "(.mc.pub 'trades[1])",
        ] {
            assert_eq!(source_pub(other), None, "{other}");
        }
    }
}
