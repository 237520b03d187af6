//! String builtins: `upper lower strlen split str-join like format sym-name`,
//! following the core's `ops/string.c` and `ops/strop.c`.
//!
//! Strings are atoms (`"abc"`), string vectors are `["a" "b"]`; symbols take
//! part wherever the core lets them.

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{Num, V, quoted_sym, type_name};
use crate::types::NULL_I64;
use crate::{Atom, RayObj, RayVector, Scalar, Symbol, TypeCode, Vector};

fn str_atom(o: &RayObj) -> Option<&str> {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => Some(s),
        _ => None,
    }
}

/// The text of a string or symbol atom.
fn text_atom(o: &RayObj) -> Option<&str> {
    match o {
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => Some(s),
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => Some(s.as_str()),
        _ => None,
    }
}

fn transform(x: &RayObj, f: fn(&str) -> String) -> R<RayObj> {
    Ok(match x {
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => RayObj::string(&f(s)),
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => RayObj::symbol(&f(s)),
        RayObj::Vector(Vector::Symbol(v)) => RayObj::from(RayVector::from_vec(
            v.iter().map(|s| Symbol::from(f(s))).collect::<Vec<_>>(),
        )),
        RayObj::Vector(Vector::Str(v)) => RayObj::from(RayVector::from_vec(
            v.iter().map(|s| f(s)).collect::<Vec<String>>(),
        )),
        other => bail!(
            "type",
            "string transform: expected string or symbol, got {}",
            type_name(other)
        ),
    })
}

/// `(upper s)`: ASCII upper case of a string or symbol (atoms or vectors).
pub(crate) fn upper(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    transform(x, str::to_ascii_uppercase)
}

/// `(lower s)`: ASCII lower case of a string or symbol (atoms or vectors).
pub(crate) fn lower(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    transform(x, str::to_ascii_lowercase)
}

/// The length of one text; the empty string is null to the core.
fn len_of(s: &str, is_str: bool) -> i64 {
    if is_str && s.is_empty() {
        NULL_I64
    } else {
        s.len() as i64
    }
}

/// `(strlen s)`: the byte length of a string or symbol (atoms or vectors).
pub(crate) fn strlen(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    Ok(match x {
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => match len_of(s, true) {
            NULL_I64 => Num::null_of(TypeCode::I64).to_obj(),
            n => RayObj::from(n),
        },
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => RayObj::from(len_of(s, false)),
        RayObj::Vector(Vector::Symbol(v)) => {
            RayObj::from(v.iter().map(|s| len_of(s, false)).collect::<Vec<i64>>())
        }
        RayObj::Vector(Vector::Str(v)) => {
            RayObj::from(v.iter().map(|s| len_of(s, true)).collect::<Vec<i64>>())
        }
        _ => bail!("type", "strlen: expected string or symbol"),
    })
}

/// `(split s delim)`: the pieces of `s` between occurrences of `delim`.
pub(crate) fn split(cx: &mut Ctx, x: &RayObj, d: &RayObj) -> R<RayObj> {
    // Split at positions: the pieces `cut` makes.
    if matches!(d, RayObj::Vector(Vector::I64(_)))
        && (text_atom(x).is_some() || matches!(x, RayObj::Vector(_) | RayObj::List(_)))
    {
        // No piece before the first position; list pieces of one type
        // become vectors.
        let starts_at_zero = matches!(d, RayObj::Vector(Vector::I64(p)) if p.first() == Some(&0));
        let RayObj::List(pieces) = super::shape::cut(cx, x, d)? else {
            bail!("type", "split: cannot split {}", type_name(x));
        };
        let skip = usize::from(!starts_at_zero && !d.is_empty());
        return Ok(RayObj::list(
            pieces
                .items
                .into_iter()
                .skip(skip)
                .map(super::coll::collapse_uniform)
                .collect(),
        ));
    }
    let Some(s) = text_atom(x) else {
        bail!(
            "type",
            "split: expected str or sym input, got {}",
            type_name(x)
        );
    };
    let Some(delim) = str_atom(d) else {
        bail!(
            "type",
            "split: expected str delimiter, got {}",
            type_name(d)
        );
    };
    let parts: Vec<RayObj> = if delim.is_empty() {
        vec![RayObj::string(s)]
    } else {
        s.split(delim).map(RayObj::string).collect()
    };
    Ok(RayObj::list(parts))
}

/// `(str-join items delim)`: the strings or symbols of `items` joined by `delim`.
pub(crate) fn str_join(_cx: &mut Ctx, x: &RayObj, d: &RayObj) -> R<RayObj> {
    let Some(delim) = text_atom(d) else {
        bail!("type", "str-join: delimiter must be string or symbol atom");
    };
    let parts: Vec<String> = match x {
        RayObj::Vector(Vector::Symbol(v)) => v.iter().map(|s| s.0.clone()).collect(),
        RayObj::Vector(Vector::Str(v)) => v.to_vec(),
        RayObj::Atom(_) if text_atom(x).is_some() => {
            vec![text_atom(x).unwrap_or_default().to_owned()]
        }
        RayObj::List(l) => {
            let mut out = Vec::with_capacity(l.items.len());
            for it in &l.items {
                match text_atom(it) {
                    Some(s) => out.push(s.to_owned()),
                    None => bail!("type", "str-join: items must be string or symbol values"),
                }
            }
            out
        }
        _ => bail!(
            "type",
            "str-join: expected string/symbol atom, string/symbol vector, or list"
        ),
    };
    Ok(RayObj::string(&parts.join(delim)))
}

/// Whether `s` matches the glob `p`: `*` any run, `?` one byte, `[abc]` and
/// `[!abc]` (or `[^abc]`) a byte of (not of) a set, `[a-z]` ranges.
pub(crate) fn glob(s: &[u8], p: &[u8]) -> bool {
    // Iterative matching with one backtrack point for the last `*`.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    si += 1;
                    pi += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, next)) = class(p, pi, s[si])
                        && ok
                    {
                        si += 1;
                        pi = next;
                        continue;
                    }
                }
                c if c == s[si] => {
                    si += 1;
                    pi += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether byte `c` is in the class starting at `p[at]` (`[`), and where the
/// class ends; `None` when the class is not closed.
fn class(p: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let neg = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if neg {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() && (p[i] != b']' || first) {
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            hit |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    Some((hit != neg, i + 1))
}

/// `(like x pattern)`: whether strings or symbols match a glob pattern.
pub(crate) fn like(_cx: &mut Ctx, x: &RayObj, p: &RayObj) -> R<RayObj> {
    let Some(pat) = str_atom(p) else {
        bail!("type", "like: pattern must be a string");
    };
    like_impl(x, pat.as_bytes())
}

/// `(ilike x pattern)` inside a query: `like` ignoring ASCII case (the core's
/// query planner knows it; its evaluator outside a query does not).
pub(crate) fn ilike(cx: &mut Ctx, x: &RayObj, p: &RayObj) -> R<RayObj> {
    if cx.query.is_empty() {
        bail!("name", "'ilike' undefined");
    }
    let Some(pat) = str_atom(p) else {
        bail!("type", "like: pattern must be a string");
    };
    let lower = transform(x, str::to_ascii_lowercase)?;
    like_impl(&lower, pat.to_ascii_lowercase().as_bytes())
}

fn like_impl(x: &RayObj, pat: &[u8]) -> R<RayObj> {
    Ok(match x {
        RayObj::Atom(_) if text_atom(x).is_some() => {
            RayObj::from(glob(text_atom(x).unwrap_or_default().as_bytes(), pat))
        }
        RayObj::Vector(Vector::Symbol(v)) => RayObj::from(
            v.iter()
                .map(|s| glob(s.as_bytes(), pat))
                .collect::<Vec<bool>>(),
        ),
        RayObj::Vector(Vector::Str(v)) => RayObj::from(
            v.iter()
                .map(|s| glob(s.as_bytes(), pat))
                .collect::<Vec<bool>>(),
        ),
        RayObj::List(l) => {
            let mut out = Vec::with_capacity(l.items.len());
            for it in &l.items {
                match text_atom(it) {
                    Some(s) => out.push(glob(s.as_bytes(), pat)),
                    None => bail!("type", "like: expects string or symbol"),
                }
            }
            RayObj::from(out)
        }
        _ => bail!("type", "like: expects string or symbol"),
    })
}

/// How `format` shows an argument: strings and symbols as their text, other
/// values in the core's display form.
fn shown(o: &RayObj) -> String {
    if matches!(o, RayObj::Atom(Atom { value: Scalar::Symbol(s), .. }) if s.is_empty()) {
        return "'".into();
    }
    match text_atom(o) {
        Some(s) => s.to_owned(),
        None => o.to_string(),
    }
}

/// `(format template args...)`: `template` with each `%` replaced by the next
/// argument; a `%` left without an argument stays.
pub(crate) fn format(_cx: &mut Ctx, args: &[V]) -> R<RayObj> {
    let Some(first) = args.first() else {
        bail!("arity", "format: expected a format string");
    };
    let Some(tpl) = str_atom(first) else {
        bail!(
            "type",
            "format: format string must be str, got {}",
            type_name(first)
        );
    };
    let mut rest = args[1..].iter();
    let mut out = String::with_capacity(tpl.len());
    for ch in tpl.chars() {
        if ch == '%'
            && let Some(a) = rest.next()
        {
            out.push_str(&shown(a));
        } else {
            out.push(ch);
        }
    }
    Ok(RayObj::string(&out))
}

/// `(sym-name s)`: a symbol (or symbol vector) as itself, quoted.
pub(crate) fn sym_name(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    match x {
        RayObj::Atom(Atom {
            value: Scalar::Symbol(s),
            ..
        }) => Ok(quoted_sym(s)),
        RayObj::Vector(Vector::Symbol(_)) => Ok(x.clone()),
        _ => bail!("type", "sym-name: expected i64 or i64 vector"),
    }
}
