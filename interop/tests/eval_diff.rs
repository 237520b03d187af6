//! Differential test of raywire's built-in evaluator against the real core.
//!
//! Every line of `eval_corpus.txt` (blank lines and `;;` comments aside) is
//! evaluated, in order, by the core (through `rayforce` 1.4.0, serialized with
//! `ser` and decoded by raywire's codec) and by one [`raywire::eval::Evaluator`];
//! globals set by one line are seen by the later ones on both sides. The two
//! outcomes must agree:
//!
//! * both values: equal objects — types, values (NaN equal to NaN), atom flags
//!   and vector attribute bytes;
//! * both errors: the same error code.
//!
//! Lines in [`DELIBERATE`] are where raywire differs on purpose; they are
//! reported, not failed. Lines in [`ATTRS_ONLY`] agree in value and type and
//! differ only in an attribute byte the core sets by an internal accident.
//! NaNs are compared as one value: the core flips a null's sign bit under `neg`
//! inside a query's vector executor and nowhere else, which carries no meaning.
//!
//! Known divergences, kept out of the corpus:
//!
//! * `(as 'i64 (list [1 2] [3]))` and the other casts of a list of vectors: the
//!   core casts each vector through its length (or raw bytes, for floats);
//!   raywire answers `type`.
//! * `(at col i)` inside a `select` expression: the core answers `type` (its
//!   query planner rejects it); raywire indexes the column.
//! * `(insert 't (list [4 5] [p] [4.5 5.5]))`, columns of different lengths: the
//!   core accepts it and leaves a malformed table that its own serializer then
//!   refuses; raywire answers `length` and leaves the table alone.
//! * `(+ 1 2 ())`: raywire folds, so the empty list broadcasts; the core
//!   answers `arity` (see [`DELIBERATE`]).
//! * The core's query planner picks the order of groups of a computed `by:` key
//!   and the attribute byte of grouped symbol columns by internal paths; raywire
//!   reproduces the rules observed for the shapes in the corpus (computed keys
//!   sorted unless they hold nulls; column keys in first-appearance order).

use raywire::RayObj;
use raywire::codec::{Limits, decode_frame_owned};
use raywire::eval::Evaluator;

/// Expressions where raywire deliberately answers differently, with the reason.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "(+ 1 2 3)",
        "raywire folds arithmetic over more than two arguments; the core answers `arity`",
    ),
    ("(* 2 3 4)", "arithmetic folds, as above"),
    ("(- 10 1 2)", "arithmetic folds, as above"),
    (
        "(version)",
        "raywire answers its own version string; the core has no `version`",
    ),
];

/// Expressions whose value and type agree but whose attribute byte differs.
const ATTRS_ONLY: &[(&str, &str)] = &[];

#[derive(Debug)]
enum Outcome {
    Value(RayObj),
    Error(String),
}

fn core_outcome(line: &str) -> Outcome {
    match interop::core_ser(line) {
        Ok(frame) => match decode_frame_owned(&frame, &Limits::default()) {
            Ok((_, obj)) => Outcome::Value(canonical_nan(&obj)),
            Err(e) => Outcome::Error(format!("<undecodable: {e}>")),
        },
        Err(text) => {
            // `error: CODE` or `error: CODE: message`
            let rest = text.strip_prefix("error: ").unwrap_or(&text);
            let code = rest.split(':').next().unwrap_or(rest).trim().to_owned();
            Outcome::Error(code)
        }
    }
}

fn our_outcome(ev: &Evaluator, line: &str) -> Outcome {
    match ev.try_eval_str(line) {
        Ok(RayObj::Error(c)) => Outcome::Error(c.as_str().to_owned()),
        Ok(v) => Outcome::Value(canonical_nan(&v)),
        Err(e) => Outcome::Error(e.code.to_owned()),
    }
}

/// The object with every NaN made the canonical one: a null's sign and payload
/// bits carry no meaning (the core flips the sign of a null under `neg` in a
/// query's vector executor, and not elsewhere).
fn canonical_nan(o: &RayObj) -> RayObj {
    use raywire::{Atom, Dict, List, RayVector, Scalar, Table, Vector};
    let f = |x: f64| if x.is_nan() { f64::NAN } else { x };
    let g = |x: f32| if x.is_nan() { f32::NAN } else { x };
    match o {
        RayObj::Atom(Atom {
            value: Scalar::F64(x),
            flags,
        }) => RayObj::Atom(Atom {
            value: Scalar::F64(f(*x)),
            flags: *flags,
        }),
        RayObj::Atom(Atom {
            value: Scalar::F32(x),
            flags,
        }) => RayObj::Atom(Atom {
            value: Scalar::F32(g(*x)),
            flags: *flags,
        }),
        RayObj::Vector(Vector::F64(v)) => RayObj::Vector(Vector::F64(RayVector::with_attrs(
            v.iter().map(|&x| f(x)).collect(),
            v.attrs(),
        ))),
        RayObj::Vector(Vector::F32(v)) => RayObj::Vector(Vector::F32(RayVector::with_attrs(
            v.iter().map(|&x| g(x)).collect(),
            v.attrs(),
        ))),
        RayObj::List(l) => RayObj::List(List {
            attrs: l.attrs,
            items: l.items.iter().map(canonical_nan).collect(),
        }),
        RayObj::Dict(d) => RayObj::Dict(Box::new(Dict {
            attrs: d.attrs,
            keys: canonical_nan(&d.keys),
            values: canonical_nan(&d.values),
        })),
        RayObj::Table(t) => RayObj::Table(Table {
            attrs: t.attrs,
            names: t.names.clone(),
            columns: List {
                attrs: t.columns.attrs,
                items: t.columns.items.iter().map(canonical_nan).collect(),
            },
        }),
        other => other.clone(),
    }
}

/// The object with every attribute byte and the quoted-symbol flag cleared.
fn strip_attrs(o: &RayObj) -> RayObj {
    use raywire::{Dict, List, RayVector, Table, Vector};
    match o {
        RayObj::Atom(a) => {
            let mut a = a.clone();
            a.flags &= !0x20;
            RayObj::Atom(a)
        }
        RayObj::Vector(v) => RayObj::Vector(raywire::with_vector!(v, |x| Vector::from(
            RayVector::with_attrs(x.as_slice().to_vec(), 0)
        ))),
        RayObj::List(l) => RayObj::List(List::new(l.items.iter().map(strip_attrs).collect())),
        RayObj::Dict(d) => RayObj::Dict(Box::new(Dict {
            attrs: 0,
            keys: strip_attrs(&d.keys),
            values: strip_attrs(&d.values),
        })),
        RayObj::Table(t) => RayObj::Table(Table {
            attrs: 0,
            names: RayVector::with_attrs(t.names.as_slice().to_vec(), 0),
            columns: List::new(t.columns.items.iter().map(strip_attrs).collect()),
        }),
        other => other.clone(),
    }
}

#[test]
fn corpus_agrees_with_core() {
    let corpus = include_str!("eval_corpus.txt");
    let ev = Evaluator::new();
    let (mut total, mut exact, mut attrs, mut deliberate) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for line in corpus.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(";;") {
            continue;
        }
        total += 1;
        let core = core_outcome(line);
        let ours = our_outcome(&ev, line);
        let same = match (&core, &ours) {
            (Outcome::Value(a), Outcome::Value(b)) => {
                if a == b {
                    Some(true)
                } else if strip_attrs(a) == strip_attrs(b) {
                    Some(false)
                } else {
                    None
                }
            }
            (Outcome::Error(a), Outcome::Error(b)) => (a == b).then_some(true),
            _ => None,
        };
        let listed = |l: &[(&str, &str)]| l.iter().any(|(e, _)| *e == line);
        match same {
            Some(true) => exact += 1,
            _ if listed(DELIBERATE) => deliberate += 1,
            Some(false) if listed(ATTRS_ONLY) => attrs += 1,
            Some(false) => failures.push(format!(
                "{line}\n    attrs differ: core {core:?}\n               raywire {ours:?}"
            )),
            None => failures.push(format!(
                "{line}\n    core    {core:?}\n    raywire {ours:?}"
            )),
        }
    }
    eprintln!(
        "eval differential: {total} expressions, {exact} agree exactly, {attrs} agree up to attributes, \
         {deliberate} deliberate differences, {} disagree",
        failures.len()
    );
    for f in &failures {
        eprintln!("MISMATCH {f}");
    }
    assert!(
        total >= 200,
        "the corpus should hold at least 200 expressions"
    );
    assert!(
        failures.is_empty(),
        "{} expressions disagree with the core",
        failures.len()
    );
}

/// Whether a byte-by-byte scan is inside a string literal (with backslash
/// escapes).
#[derive(Default)]
struct Literal {
    in_str: bool,
    esc: bool,
}

impl Literal {
    /// Feeds byte `c`; true when it belongs to a string literal, its quotes
    /// included.
    fn quoted(&mut self, c: u8) -> bool {
        if self.in_str {
            if self.esc {
                self.esc = false;
            } else if c == b'\\' {
                self.esc = true;
            } else if c == b'"' {
                self.in_str = false;
            }
            true
        } else {
            self.in_str = c == b'"';
            self.in_str
        }
    }
}

/// Splits a yardstick assertion `lhs -- rhs` or `lhs !- code` at its marker
/// (outside string literals); `None` for a plain line.
fn split_assertion(s: &str) -> Option<(&str, &str, &str)> {
    let b = s.as_bytes();
    let mut lit = Literal::default();
    for i in 0..b.len() {
        let c = b[i];
        if lit.quoted(c) {
            continue;
        }
        if c == b';' {
            return None;
        } else if (c == b'-' || c == b'!')
            && i > 0
            && b[i - 1] == b' '
            && b.get(i + 1) == Some(&b'-')
            && b.get(i + 2) == Some(&b' ')
        {
            return Some((s[..i].trim(), &s[i..i + 2], s[i + 3..].trim()));
        }
    }
    None
}

/// Joins a script's lines into complete forms: a line with unclosed brackets
/// continues on the next.
fn script_forms(text: &str) -> Vec<String> {
    let mut forms = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i64;
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with(';')) {
            continue;
        }
        let mut lit = Literal::default();
        for &c in t.as_bytes() {
            if lit.quoted(c) {
                continue;
            }
            match c {
                b';' => break,
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ => {}
            }
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(t);
        if depth <= 0 {
            forms.push(std::mem::take(&mut cur));
            depth = 0;
        }
    }
    if !cur.is_empty() {
        forms.push(cur);
    }
    forms
}

/// A yardstick, not a test: runs one of the core's own `.rfl` scripts (path in
/// `RAYWIRE_RFL_FILE`) through the core and raywire, and prints how many of the
/// assertions the core passes raywire answers as the core does. The scripts
/// are the core's code and are not part of this repository.
#[test]
#[ignore = "reads a core .rfl script named by RAYWIRE_RFL_FILE"]
fn rfl_yardstick() {
    let Ok(path) = std::env::var("RAYWIRE_RFL_FILE") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let verbose = std::env::var("RAYWIRE_RFL_VERBOSE").is_ok();
    let ev = Evaluator::new();
    let same = |a: &Outcome, b: &Outcome| match (a, b) {
        (Outcome::Value(x), Outcome::Value(y)) => strip_attrs(x) == strip_attrs(y),
        (Outcome::Error(x), Outcome::Error(y)) => x == y,
        _ => false,
    };
    let (mut total, mut core_pass, mut agree) = (0, 0, 0);
    for form in script_forms(&text) {
        let Some((lhs, mark, rhs)) = split_assertion(&form) else {
            let (core, ours) = (core_outcome(&form), our_outcome(&ev, &form));
            if verbose {
                eprintln!("FORM {form}\n  core    {core:?}\n  raywire {ours:?}");
            }
            continue;
        };
        total += 1;
        let core = core_outcome(lhs);
        let ours = our_outcome(&ev, lhs);
        let passes = if mark == "--" {
            same(&core, &core_outcome(rhs))
        } else {
            matches!(&core, Outcome::Error(c) if rhs.starts_with(c.as_str()) || c.starts_with(rhs))
        };
        if passes {
            core_pass += 1;
            if same(&core, &ours) {
                agree += 1;
            } else if verbose {
                eprintln!("DIFF {lhs}\n  core    {core:?}\n  raywire {ours:?}");
            }
        }
    }
    println!("RFL {path} {total} {core_pass} {agree}");
}

/// The corpus of the vector, atom and table builtins (`eval_corpus_b.txt`),
/// checked the same way as the main corpus, against its own evaluator.
#[test]
fn corpus_b_agrees_with_core() {
    let ev = Evaluator::new();
    let mut failures = Vec::new();
    for line in include_str!("eval_corpus_b.txt").lines().map(str::trim) {
        if line.is_empty() || line.starts_with(";;") {
            continue;
        }
        match (core_outcome(line), our_outcome(&ev, line)) {
            (Outcome::Value(a), Outcome::Value(b)) if a == b => {}
            (Outcome::Error(a), Outcome::Error(b)) if a == b => {}
            (core, ours) => failures.push(format!(
                "{line}\n    core    {core:?}\n    raywire {ours:?}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
