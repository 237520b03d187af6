//! The wire side of fan-out: the `upd` message, encoded once into a shared frame,
//! and the row filter applied to table payloads.

use crate::codec::{Encode, FrameHeader, HEADER_LEN, MsgType, encode_to_slice};
use crate::obj::{Atom, Dict, List, RayObj, RayVector, Scalar, Symbol, Table, Vector};
use crate::types::TypeCode;
use crate::with_vector;
use std::collections::HashSet;
use std::sync::Arc;

/// `(upd "topic" seq (quote payload))` as one async frame, header included: the
/// bytes the core's `.mc.pub` sends (PROTOCOL.md 4.6). The payload is encoded
/// straight into the shared frame, after the fixed prefix: never copied into an
/// intermediate object or buffer.
pub(crate) fn upd_frame<P: Encode + ?Sized>(topic: &str, seq: i64, payload: &P) -> Arc<[u8]> {
    let payload_len = payload.encoded_len();
    let before_payload = 10 // list of 4
        + 6 // 'upd'
        + 10 + topic.len() // "topic"
        + 10 // seq
        + 10 // list of 2
        + 8; // 'quote'
    let body = before_payload + payload_len;
    let mut prefix = Vec::with_capacity(HEADER_LEN + before_payload);
    prefix.extend_from_slice(&FrameHeader::new(MsgType::Async, body as u64).to_bytes());
    list_head(&mut prefix, 4);
    symbol_atom(&mut prefix, "upd");
    prefix.push((TypeCode::Str as u8).wrapping_neg());
    prefix.push(0);
    prefix.extend_from_slice(&(topic.len() as i64).to_le_bytes());
    prefix.extend_from_slice(topic.as_bytes());
    prefix.push((TypeCode::I64 as u8).wrapping_neg());
    prefix.push(0);
    prefix.extend_from_slice(&seq.to_le_bytes());
    list_head(&mut prefix, 2);
    symbol_atom(&mut prefix, "quote");
    // The frame in one allocation of its exact size, the payload copied into it
    // once (a zero fill is far cheaper than the second copy of the payload that
    // `Arc::from(Vec)` would make); only the small prefix has a buffer of its own.
    let mut frame: Arc<[u8]> = std::iter::repeat_n(0u8, prefix.len() + payload_len).collect();
    let out = Arc::get_mut(&mut frame).expect("a new Arc has no other owner");
    let (head, rest) = out.split_at_mut(prefix.len());
    head.copy_from_slice(&prefix);
    encode_to_slice(payload, rest).expect("sized by encoded_len");
    frame
}

fn list_head(out: &mut Vec<u8>, n: i64) {
    out.push(TypeCode::List as u8);
    out.push(0);
    out.extend_from_slice(&n.to_le_bytes());
}

fn symbol_atom(out: &mut Vec<u8>, s: &str) {
    out.push((TypeCode::Symbol as u8).wrapping_neg());
    out.push(0);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// The symbols a subscriber asked for: rows of a table payload whose `sym` is one
/// of them reach it.
#[derive(Debug)]
pub(crate) struct Filter {
    /// Sorted and without duplicates: equal filters compare equal.
    pub(crate) syms: Vec<String>,
    set: HashSet<String>,
}

impl Filter {
    pub(crate) fn new(mut syms: Vec<String>) -> Filter {
        syms.sort_unstable();
        syms.dedup();
        let set = syms.iter().cloned().collect();
        Filter { syms, set }
    }

    fn matches(&self, s: &str) -> bool {
        self.set.contains(s)
    }
}

/// What a filter leaves of a payload.
pub(crate) enum Filtered {
    /// All of it: the unfiltered frame serves.
    Whole,
    /// Some rows of a table.
    Rows(RayObj),
    /// Nothing: the subscriber gets no message for this publication.
    Nothing,
}

/// The `sym` column of a table, or the `sym` value of a dict, read as symbols.
pub(crate) enum Syms<'a> {
    /// One symbol per row.
    Rows(&'a RayVector<Symbol>),
    /// A single record.
    One(&'a str),
    /// The payload has no `sym`: filters do not apply.
    NotApplicable,
}

pub(crate) fn syms_of(payload: &RayObj) -> Syms<'_> {
    match payload {
        RayObj::Table(t) => match t.column("sym") {
            Some(RayObj::Vector(Vector::Symbol(v))) => Syms::Rows(v),
            _ => Syms::NotApplicable,
        },
        RayObj::Dict(d) => dict_sym(d).map_or(Syms::NotApplicable, Syms::One),
        _ => Syms::NotApplicable,
    }
}

fn dict_sym(d: &Dict) -> Option<&str> {
    let keys = d.keys.as_vector::<Symbol>()?;
    let i = keys.iter().position(|k| k.as_str() == "sym")?;
    match &d.values {
        RayObj::List(l) => match l.items.get(i)? {
            RayObj::Atom(Atom {
                value: Scalar::Symbol(s),
                ..
            }) => Some(s.as_str()),
            _ => None,
        },
        RayObj::Vector(Vector::Symbol(v)) => v.get(i).map(Symbol::as_str),
        _ => None,
    }
}

/// Applies `filter` to `payload` (whose symbols are `syms`).
pub(crate) fn apply(payload: &RayObj, syms: &Syms<'_>, filter: &Filter) -> Filtered {
    match syms {
        Syms::NotApplicable => Filtered::Whole,
        Syms::One(s) if filter.matches(s) => Filtered::Whole,
        Syms::One(_) => Filtered::Nothing,
        Syms::Rows(col) => {
            let idx: Vec<usize> = col
                .iter()
                .enumerate()
                .filter(|(_, s)| filter.matches(s.as_str()))
                .map(|(i, _)| i)
                .collect();
            if idx.is_empty() {
                Filtered::Nothing
            } else if idx.len() == col.len() {
                Filtered::Whole
            } else {
                match payload {
                    RayObj::Table(t) => Filtered::Rows(RayObj::Table(take_rows(t, &idx))),
                    _ => Filtered::Whole,
                }
            }
        }
    }
}

fn take_rows(t: &Table, idx: &[usize]) -> Table {
    let columns = t.columns.items.iter().map(|c| take(c, idx)).collect();
    Table {
        attrs: t.attrs,
        names: t.names.clone(),
        columns: List {
            attrs: t.columns.attrs,
            items: columns,
        },
    }
}

fn take(col: &RayObj, idx: &[usize]) -> RayObj {
    match col {
        RayObj::Vector(v) => {
            RayObj::Vector(with_vector!(v, |x| Vector::from(RayVector::with_attrs(
                idx.iter().filter_map(|&i| x.get(i).cloned()).collect(),
                x.attrs()
            ))))
        }
        RayObj::List(l) => RayObj::List(List {
            attrs: l.attrs,
            items: idx
                .iter()
                .filter_map(|&i| l.items.get(i).cloned())
                .collect(),
        }),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Limits};

    #[test]
    fn upd_frame_is_the_core_s_bytes() {
        // PROTOCOL.md 4.6, observed from the core for (.mc.pub 'trades [1 2 3]).
        let want = "fa de fa ce 03 00 00 00 5e 00 00 00 00 00 00 00
                    00 00 04 00 00 00 00 00 00 00
                    f4 00 75 70 64 00
                    f3 00 06 00 00 00 00 00 00 00 74 72 61 64 65 73
                    fb 00 01 00 00 00 00 00 00 00
                    00 00 02 00 00 00 00 00 00 00
                    f4 00 71 75 6f 74 65 00
                    05 00 03 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00
                    02 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00";
        let want: String = want.chars().filter(|c| !c.is_whitespace()).collect();
        let got: String = upd_frame("trades", 1, &RayObj::from(vec![1i64, 2, 3]))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want);
        let frame = upd_frame("trades", 7, &RayObj::from(vec![1i64, 2, 3]));
        let (h, obj) = codec::decode_frame_owned(&frame, &Limits::default()).unwrap();
        assert_eq!(h.msgtype, MsgType::Async);
        assert_eq!(
            obj,
            RayObj::list(vec![
                RayObj::symbol("upd"),
                RayObj::string("trades"),
                RayObj::from(7i64),
                RayObj::list(vec![
                    RayObj::symbol("quote"),
                    RayObj::from(vec![1i64, 2, 3])
                ]),
            ])
        );
    }

    fn trades() -> RayObj {
        Table::new(
            ["sym", "qty"],
            vec![
                RayVector::<Symbol>::from_iter(["AAPL", "MSFT", "AAPL", "IBM"]).into(),
                RayVector::<i64>::from_iter([1, 2, 3, 4]).into(),
            ],
        )
        .unwrap()
        .into()
    }

    #[test]
    fn filters_rows_by_sym() {
        let t = trades();
        let syms = syms_of(&t);
        let f = Filter::new(vec!["AAPL".into(), "AAPL".into()]);
        match apply(&t, &syms, &f) {
            Filtered::Rows(RayObj::Table(r)) => {
                assert_eq!(r.column("qty"), Some(&RayObj::from(vec![1i64, 3])));
                assert_eq!(r.rows(), 2);
            }
            _ => panic!("expected rows"),
        }
        let all = Filter::new(vec!["AAPL".into(), "MSFT".into(), "IBM".into()]);
        assert!(matches!(apply(&t, &syms, &all), Filtered::Whole));
        let none = Filter::new(vec!["GOOG".into()]);
        assert!(matches!(apply(&t, &syms, &none), Filtered::Nothing));
        let v = RayObj::from(vec![1i64]);
        assert!(matches!(apply(&v, &syms_of(&v), &none), Filtered::Whole));
        let d = RayObj::dict(
            RayObj::from(RayVector::<Symbol>::from_iter(["sym", "px"])),
            RayObj::list(vec![RayObj::symbol("IBM"), RayObj::from(1.5f64)]),
        );
        assert!(matches!(apply(&d, &syms_of(&d), &all), Filtered::Whole));
        assert!(matches!(apply(&d, &syms_of(&d), &none), Filtered::Nothing));
    }
}
