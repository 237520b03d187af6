//! Statistics: the aggregates `med dev var stddev stddev_pop var_pop mode
//! percentile quantile wavg wsum cov scov pearson_corr`, the running
//! (`sums avgs maxs mins prds deltas ratios differ lag lead`) and moving
//! (`msum mavg mmax mmin mcount`) vector maps, following the core's
//! `ops/agg.c` and `ops/collection.c`.
//!
//! Nulls are skipped by the aggregates, count as 0 in running sums (1 in
//! products), are stepped over by running extremes, and make a null
//! difference or ratio.

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{Num, coll_elem, type_name, vec_nums};
use super::elem::{Key, groups_of, groups_of_list, with_keys};
use crate::types::NULL_I64;
use crate::{Element, RayObj, RayVector, TypeCode, Vector};

fn is_float_t(t: TypeCode) -> bool {
    matches!(t, TypeCode::F32 | TypeCode::F64)
}

/// The non-null values of an aggregate's argument as f64: a numeric or
/// temporal vector, or a list of numeric atoms.
fn agg_values(x: &RayObj, name: &str) -> R<Vec<f64>> {
    match x {
        RayObj::Vector(v) => match vec_nums(v) {
            Some(ns) => Ok(ns.iter().filter(|n| !n.null).map(Num::as_f64).collect()),
            None => bail!(
                "type",
                "expects a numeric or temporal vector, got {}",
                type_name(x)
            ),
        },
        RayObj::List(l) => {
            let mut out = Vec::with_capacity(l.items.len());
            for it in &l.items {
                match Num::from_obj(it) {
                    Some(n) if n.is_numeric() => {
                        if !n.null {
                            out.push(n.as_f64());
                        }
                    }
                    _ => bail!(
                        "type",
                        "{name}: list elements must be numeric, got {}",
                        type_name(it)
                    ),
                }
            }
            Ok(out)
        }
        _ => bail!(
            "type",
            "{name} expects a numeric atom, vector, or list, got {}",
            type_name(x)
        ),
    }
}

fn f64_null() -> RayObj {
    Num::null_of(TypeCode::F64).to_obj()
}

fn f64_obj(v: f64) -> RayObj {
    Num::f64(v).to_obj()
}

/// An aggregate of an atom: null stays null, a number is `atom(v)`.
fn atom_agg(x: &RayObj, name: &str, atom: impl Fn(f64) -> RayObj) -> Option<R<RayObj>> {
    let RayObj::Atom(_) = x else { return None };
    Some(match Num::from_obj(x) {
        Some(n) if n.null => Ok(f64_null()),
        Some(n) if n.is_numeric() => Ok(atom(n.as_f64())),
        _ => Err(super::super::error::err!(
            "type",
            "{name} expects a numeric atom, got {}",
            type_name(x)
        )),
    })
}

/// The value at fraction `q` (0 to 1) of sorted `v`, interpolated linearly.
fn quantile_of(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 1 || q <= 0.0 {
        return v[0];
    }
    if q >= 1.0 {
        return v[n - 1];
    }
    let pos = q * (n - 1) as f64;
    let lo = pos as usize;
    let frac = pos - lo as f64;
    if frac <= 0.0 || lo + 1 >= n {
        return v[lo];
    }
    v[lo] + frac * (v[lo + 1] - v[lo])
}

/// `(med x)`: the median, as f64.
pub(crate) fn med(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    if let Some(r) = atom_agg(x, "med", f64_obj) {
        return r;
    }
    let mut v = agg_values(x, "med")?;
    if v.is_empty() {
        return Ok(f64_null());
    }
    Ok(f64_obj(quantile_of(&mut v, 0.5)))
}

fn spread(x: &RayObj, sample: bool, root: bool) -> R<RayObj> {
    if let Some(r) = atom_agg(x, "var/stddev", |_| {
        if sample { f64_null() } else { f64_obj(0.0) }
    }) {
        return r;
    }
    let v = agg_values(x, "var/stddev")?;
    let n = v.len();
    if n == 0 || (sample && n <= 1) {
        return Ok(f64_null());
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let sq: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    let var = sq / if sample { (n - 1) as f64 } else { n as f64 };
    Ok(f64_obj(if root { var.sqrt() } else { var }))
}

/// `(dev x)`: the population standard deviation.
pub(crate) fn dev(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    spread(x, false, true)
}
/// `(stddev x)`: the sample standard deviation.
pub(crate) fn stddev(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    spread(x, true, true)
}
/// `(var x)`: the sample variance.
pub(crate) fn var(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    spread(x, true, false)
}
/// `(var_pop x)`: the population variance.
pub(crate) fn var_pop(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    spread(x, false, false)
}

fn quantile(x: &RayObj, p: &RayObj, scale: f64, name: &str) -> R<RayObj> {
    let q = match Num::from_obj(p) {
        Some(n) if n.is_numeric() => {
            if n.null {
                bail!("domain", "{name}: probability must be non-null");
            }
            let raw = n.as_f64();
            if !raw.is_finite() {
                bail!("domain", "{name}: probability must be finite");
            }
            if !(0.0..=scale).contains(&raw) {
                bail!("domain", "{name}: probability out of range");
            }
            raw / scale
        }
        _ => bail!("type", "{name}: probability must be a numeric atom"),
    };
    if let Some(r) = atom_agg(x, name, f64_obj) {
        return r;
    }
    let mut v = agg_values(x, name)?;
    if v.is_empty() {
        return Ok(f64_null());
    }
    Ok(f64_obj(quantile_of(&mut v, q)))
}

/// `(percentile x p)`: the value at percent `p` (0 to 100), interpolated.
pub(crate) fn percentile(_cx: &mut Ctx, x: &RayObj, p: &RayObj) -> R<RayObj> {
    quantile(x, p, 100.0, "percentile")
}
/// `(quantile x q)`: the value at fraction `q` (0 to 1), interpolated.
pub(crate) fn quantile_fn(_cx: &mut Ctx, x: &RayObj, q: &RayObj) -> R<RayObj> {
    quantile(x, q, 1.0, "quantile")
}

/// `(mode x)`: the most frequent non-null element (the first seen on ties).
pub(crate) fn mode(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let null_of = |t: TypeCode| crate::Atom::null(t).map_or(RayObj::Null, RayObj::Atom);
    match x {
        RayObj::Atom(_) => Ok(x.clone()),
        RayObj::Vector(v) => {
            let best = with_keys!(v, |s| {
                let s = s.as_slice();
                let mut best: Option<(usize, usize)> = None;
                for (first, rows) in groups_of(s) {
                    if s[first].is_null() {
                        continue;
                    }
                    if best.is_none_or(|(_, c)| rows.len() > c) {
                        best = Some((first, rows.len()));
                    }
                }
                best
            });
            Ok(match best {
                Some((i, _)) => coll_elem(x, i).unwrap_or(RayObj::Null),
                None => null_of(v.type_code()),
            })
        }
        RayObj::List(l) => {
            let mut best: Option<(usize, usize)> = None;
            for (first, rows) in groups_of_list(&l.items) {
                let it = &l.items[first];
                if matches!(it, RayObj::Atom(a) if a.is_null()) {
                    continue;
                }
                if best.is_none_or(|(_, c)| rows.len() > c) {
                    best = Some((first, rows.len()));
                }
            }
            Ok(match best {
                Some((i, _)) => l.items[i].clone(),
                None => null_of(TypeCode::I64),
            })
        }
        _ => bail!(
            "type",
            "mode expects an atom, vector, or list, got {}",
            type_name(x)
        ),
    }
}

/// The two vectors of a pairwise aggregate as f64 values with null markers.
fn pair_values(x: &RayObj, y: &RayObj, name: &str) -> R<Vec<(f64, f64)>> {
    let nums = |o: &RayObj| -> R<Vec<Num>> {
        match o {
            RayObj::Vector(v) => match vec_nums(v) {
                Some(n) => Ok(n),
                None => bail!(
                    "type",
                    "{name}: expects numeric vectors, got {}",
                    type_name(o)
                ),
            },
            RayObj::List(l) => l
                .items
                .iter()
                .map(|i| match Num::from_obj(i) {
                    Some(n) if n.is_numeric() => Ok(n),
                    _ => bail!(
                        "type",
                        "{name}: expects numeric vectors, got {}",
                        type_name(i)
                    ),
                })
                .collect(),
            other => bail!(
                "type",
                "{name} expects two numeric vectors, got {}",
                type_name(other)
            ),
        }
    };
    if !super::super::value::is_collection(x) || !super::super::value::is_collection(y) {
        bail!(
            "type",
            "{name} expects two numeric vectors, got {} and {}",
            type_name(x),
            type_name(y)
        );
    }
    let (a, b) = (nums(x)?, nums(y)?);
    if a.len() != b.len() {
        bail!(
            "length",
            "{name}: vectors must have equal length, got {} and {}",
            a.len(),
            b.len()
        );
    }
    Ok(a.iter()
        .zip(&b)
        .filter(|(p, q)| !p.null && !q.null)
        .map(|(p, q)| (p.as_f64(), q.as_f64()))
        .collect())
}

/// `(wsum w x)`: the sum of `w * x`, as f64.
pub(crate) fn wsum(_cx: &mut Ctx, w: &RayObj, x: &RayObj) -> R<RayObj> {
    let p = pair_values(w, x, "wsum")?;
    Ok(f64_obj(p.iter().map(|(a, b)| a * b).sum()))
}

/// `(wavg w x)`: the average of `x` weighted by `w`.
pub(crate) fn wavg(_cx: &mut Ctx, w: &RayObj, x: &RayObj) -> R<RayObj> {
    let p = pair_values(w, x, "wavg")?;
    let sw: f64 = p.iter().map(|(a, _)| a).sum();
    if p.is_empty() || sw == 0.0 {
        return Ok(f64_null());
    }
    Ok(f64_obj(p.iter().map(|(a, b)| a * b).sum::<f64>() / sw))
}

fn covariance(p: &[(f64, f64)], sample: bool) -> RayObj {
    let n = p.len();
    if n == 0 || (sample && n < 2) {
        return f64_null();
    }
    let mx = p.iter().map(|q| q.0).sum::<f64>() / n as f64;
    let my = p.iter().map(|q| q.1).sum::<f64>() / n as f64;
    let s: f64 = p.iter().map(|(a, b)| (a - mx) * (b - my)).sum();
    f64_obj(s / if sample { (n - 1) as f64 } else { n as f64 })
}

/// `(cov x y)`: the population covariance.
pub(crate) fn cov(_cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    Ok(covariance(&pair_values(x, y, "cov")?, false))
}

/// `(scov x y)`: the sample covariance.
pub(crate) fn scov(_cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    Ok(covariance(&pair_values(x, y, "scov")?, true))
}

/// `(pearson_corr x y)`: the correlation coefficient; null when either side
/// is constant or fewer than two pairs remain.
pub(crate) fn pearson_corr(_cx: &mut Ctx, x: &RayObj, y: &RayObj) -> R<RayObj> {
    let p = pair_values(x, y, "pearson_corr")?;
    let n = p.len() as f64;
    if p.len() < 2 {
        return Ok(f64_null());
    }
    let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(a, b) in &p {
        sx += a;
        sy += b;
        sxx += a * a;
        syy += b * b;
        sxy += a * b;
    }
    let den = ((n * sxx - sx * sx) * (n * syy - sy * sy)).sqrt();
    if den == 0.0 || !den.is_finite() {
        return Ok(f64_null());
    }
    Ok(f64_obj((n * sxy - sx * sy) / den))
}

/// The vector argument of a running or moving map.
/// A numeric or temporal vector argument: the ones running and moving extremes
/// order.
fn ordered_vec_arg<'a>(x: &'a RayObj, name: &str) -> R<&'a Vector> {
    let v = vec_arg(x, name)?;
    if vec_nums(v).is_none() {
        bail!(
            "type",
            "{name} expects a numeric or temporal vector, got {}",
            type_name(x)
        );
    }
    Ok(v)
}

fn vec_arg<'a>(x: &'a RayObj, name: &str) -> R<&'a Vector> {
    match x {
        RayObj::Vector(v) => Ok(v),
        _ => bail!(
            "type",
            "{name} expects a vector input, got {}",
            type_name(x)
        ),
    }
}

/// The numeric elements of a running sum's or product's argument.
fn numeric_nums(v: &Vector, name: &str) -> R<Vec<Num>> {
    match vec_nums(v) {
        Some(ns)
            if !matches!(
                v.type_code(),
                TypeCode::Date | TypeCode::Time | TypeCode::Timestamp | TypeCode::Timespan
            ) =>
        {
            Ok(ns)
        }
        _ => bail!(
            "type",
            "{name} expects a numeric vector, got {}",
            super::super::value::vec_type_name(v.type_code())
        ),
    }
}

/// A running fold: integers in i64 (nulls as `unit`), floats in f64.
fn running(
    x: &RayObj,
    name: &str,
    unit: i64,
    fi: fn(i64, i64) -> i64,
    ff: fn(f64, f64) -> f64,
) -> R<RayObj> {
    let v = vec_arg(x, name)?;
    let ns = numeric_nums(v, name)?;
    if is_float_t(v.type_code()) {
        let mut acc = unit as f64;
        return Ok(RayObj::from(
            ns.iter()
                .map(|n| {
                    if !n.null {
                        acc = ff(acc, n.as_f64());
                    }
                    acc
                })
                .collect::<Vec<f64>>(),
        ));
    }
    let mut acc = unit;
    Ok(RayObj::from(
        ns.iter()
            .map(|n| {
                if !n.null {
                    acc = fi(acc, n.i);
                }
                acc
            })
            .collect::<Vec<i64>>(),
    ))
}

/// `(sums v)`: running sums.
pub(crate) fn sums(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    running(x, "sums", 0, i64::wrapping_add, |a, b| a + b)
}

/// `(prds v)`: running products.
pub(crate) fn prds(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    running(x, "prds", 1, i64::wrapping_mul, |a, b| a * b)
}

/// `(avgs v)`: running averages of the non-null elements so far.
pub(crate) fn avgs(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let v = vec_arg(x, "avgs")?;
    let ns = numeric_nums(v, "avgs")?;
    let (mut s, mut c) = (0.0, 0usize);
    Ok(RayObj::from(
        ns.iter()
            .map(|n| {
                if !n.null {
                    s += n.as_f64();
                    c += 1;
                }
                if c == 0 { f64::NAN } else { s / c as f64 }
            })
            .collect::<Vec<f64>>(),
    ))
}

/// Running extremes over a typed slice: nulls are stepped over.
fn running_best<T: Key>(s: &[T], max: bool) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(s.len());
    let mut best: Option<T> = None;
    for x in s {
        if !x.is_null() {
            best = Some(match best {
                Some(b) if (max && b.ord(x).is_ge()) || (!max && b.ord(x).is_le()) => b,
                _ => x.clone(),
            });
        }
        out.push(best.clone().unwrap_or_else(|| x.clone()));
    }
    out
}

fn extremes(x: &RayObj, max: bool, name: &str) -> R<RayObj> {
    let v = ordered_vec_arg(x, name)?;
    Ok(RayObj::Vector(with_keys!(v, |s| Vector::from(
        RayVector::from_vec(running_best(s.as_slice(), max))
    ))))
}

/// `(maxs v)`: running maxima.
pub(crate) fn maxs(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extremes(x, true, "maxs")
}
/// `(mins v)`: running minima.
pub(crate) fn mins(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extremes(x, false, "mins")
}

/// `(deltas v)`: differences of neighbours; the first is null.
pub(crate) fn deltas(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let v = vec_arg(x, "deltas")?;
    let Some(ns) = vec_nums(v) else {
        bail!(
            "type",
            "deltas expects a numeric vector, got {}",
            type_name(x)
        );
    };
    if is_float_t(v.type_code()) {
        let out: Vec<f64> = (0..ns.len())
            .map(|i| {
                if i == 0 || ns[i].null || ns[i - 1].null {
                    f64::NAN
                } else {
                    ns[i].as_f64() - ns[i - 1].as_f64()
                }
            })
            .collect();
        return Ok(RayObj::from(out));
    }
    let out: Vec<i64> = (0..ns.len())
        .map(|i| {
            if i == 0 || ns[i].null || ns[i - 1].null {
                NULL_I64
            } else {
                ns[i].i.wrapping_sub(ns[i - 1].i)
            }
        })
        .collect();
    Ok(RayObj::from(out))
}

/// `(ratios v)`: quotients of neighbours, as f64; the first is null, and so
/// is a quotient by zero.
pub(crate) fn ratios(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let v = vec_arg(x, "ratios")?;
    let Some(ns) = vec_nums(v) else {
        bail!(
            "type",
            "ratios expects a numeric vector, got {}",
            type_name(x)
        );
    };
    let out: Vec<f64> = (0..ns.len())
        .map(|i| {
            if i == 0 || ns[i].null || ns[i - 1].null || ns[i - 1].as_f64() == 0.0 {
                f64::NAN
            } else {
                ns[i].as_f64() / ns[i - 1].as_f64()
            }
        })
        .collect();
    Ok(RayObj::from(out))
}

/// `(differ v)`: whether each element differs from the one before (the
/// first always does).
pub(crate) fn differ(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    let v = vec_arg(x, "differ")?;
    let out: Vec<bool> = with_keys!(v, |s| {
        let s = s.as_slice();
        (0..s.len())
            .map(|i| i == 0 || !s[i].same_key(&s[i - 1]))
            .collect()
    });
    Ok(RayObj::from(out))
}

/// A vector shifted by one place, the gap filled with the type's null.
fn shifted<T: Element + Clone>(v: &RayVector<T>, null: T, back: bool) -> RayVector<T> {
    let s = v.as_slice();
    let n = s.len();
    let out: Vec<T> = if back {
        (0..n)
            .map(|i| {
                if i == 0 {
                    null.clone()
                } else {
                    s[i - 1].clone()
                }
            })
            .collect()
    } else {
        (0..n)
            .map(|i| s.get(i + 1).cloned().unwrap_or_else(|| null.clone()))
            .collect()
    };
    RayVector::from_vec(out)
}

fn shift(x: &RayObj, back: bool, name: &str) -> R<RayObj> {
    let v = vec_arg(x, name)?;
    Ok(RayObj::Vector(match v {
        Vector::Bool(x) => Vector::from(shifted(x, false, back)),
        Vector::U8(x) => Vector::from(shifted(x, 0, back)),
        Vector::I16(x) => Vector::from(shifted(x, crate::types::NULL_I16, back)),
        Vector::I32(x) => Vector::from(shifted(x, crate::types::NULL_I32, back)),
        Vector::I64(x) => Vector::from(shifted(x, NULL_I64, back)),
        Vector::F32(x) => Vector::from(shifted(x, f32::NAN, back)),
        Vector::F64(x) => Vector::from(shifted(x, f64::NAN, back)),
        Vector::Date(x) => Vector::from(shifted(x, crate::Date::NULL, back)),
        Vector::Time(x) => Vector::from(shifted(x, crate::Time::NULL, back)),
        Vector::Timestamp(x) => Vector::from(shifted(x, crate::Timestamp::NULL, back)),
        Vector::Timespan(x) => Vector::from(shifted(x, crate::Timespan::NULL, back)),
        Vector::Guid(x) => Vector::from(shifted(x, crate::Guid::NULL, back)),
        // The core leaves the has-nulls attribute off a shifted symbol vector.
        Vector::Symbol(x) => Vector::from(RayVector::with_attrs(
            shifted(x, crate::Symbol::default(), back).into_vec(),
            0,
        )),
        Vector::Str(x) => Vector::from(shifted(x, String::new(), back)),
    }))
}

/// `(lag v)`: each element's predecessor (null first).
pub(crate) fn lag(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    shift(x, true, "lag")
}
/// `(lead v)`: each element's successor (null last).
pub(crate) fn lead(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    shift(x, false, "lead")
}

/// The window of a moving map: an integer atom of at least 1.
fn window_arg(n: &RayObj, name: &str) -> R<usize> {
    let w = match Num::from_obj(n) {
        Some(c)
            if !c.null
                && matches!(
                    c.t,
                    TypeCode::I64 | TypeCode::I32 | TypeCode::I16 | TypeCode::U8 | TypeCode::Bool
                ) =>
        {
            c.i
        }
        _ => bail!("type", "{name} window must be an integer atom"),
    };
    if w < 1 {
        bail!("range", "{name} window must be >= 1");
    }
    Ok(usize::try_from(w).unwrap_or(usize::MAX))
}

/// `(msum n v)`: sums over the last `n` elements (nulls as 0).
pub(crate) fn msum(_cx: &mut Ctx, n: &RayObj, x: &RayObj) -> R<RayObj> {
    let w = window_arg(n, "msum")?;
    let v = vec_arg(x, "msum")?;
    let ns = numeric_nums(v, "msum")?;
    if is_float_t(v.type_code()) {
        let vals: Vec<f64> = ns
            .iter()
            .map(|n| if n.null { 0.0 } else { n.as_f64() })
            .collect();
        let mut acc = 0.0;
        let out: Vec<f64> = (0..vals.len())
            .map(|i| {
                acc += vals[i];
                if i >= w {
                    acc -= vals[i - w];
                }
                acc
            })
            .collect();
        return Ok(RayObj::from(out));
    }
    let vals: Vec<i64> = ns.iter().map(|n| if n.null { 0 } else { n.i }).collect();
    let mut acc = 0i64;
    let out: Vec<i64> = (0..vals.len())
        .map(|i| {
            acc = acc.wrapping_add(vals[i]);
            if i >= w {
                acc = acc.wrapping_sub(vals[i - w]);
            }
            acc
        })
        .collect();
    Ok(RayObj::from(out))
}

/// `(mavg n v)`: averages of the non-null values among the last `n`.
pub(crate) fn mavg(_cx: &mut Ctx, n: &RayObj, x: &RayObj) -> R<RayObj> {
    let w = window_arg(n, "mavg")?;
    let v = vec_arg(x, "mavg")?;
    let ns = numeric_nums(v, "mavg")?;
    let (mut s, mut c) = (0.0, 0usize);
    let out: Vec<f64> = (0..ns.len())
        .map(|i| {
            if !ns[i].null {
                s += ns[i].as_f64();
                c += 1;
            }
            if i >= w && !ns[i - w].null {
                s -= ns[i - w].as_f64();
                c -= 1;
            }
            if c == 0 { f64::NAN } else { s / c as f64 }
        })
        .collect();
    Ok(RayObj::from(out))
}

/// `(mcount n v)`: the number of non-null values among the last `n`.
pub(crate) fn mcount(_cx: &mut Ctx, n: &RayObj, x: &RayObj) -> R<RayObj> {
    let w = window_arg(n, "mcount")?;
    let v = vec_arg(x, "mcount")?;
    let nulls: Vec<bool> = with_keys!(v, |s| s.iter().map(|e| e.is_null()).collect());
    let mut c = 0i64;
    let out: Vec<i64> = (0..nulls.len())
        .map(|i| {
            c += i64::from(!nulls[i]);
            if i >= w {
                c -= i64::from(!nulls[i - w]);
            }
            c
        })
        .collect();
    Ok(RayObj::from(out))
}

/// Moving extremes over a typed slice, nulls stepped over (a window of only
/// nulls answers null).
fn moving_best<T: Key>(s: &[T], w: usize, max: bool) -> Vec<T> {
    (0..s.len())
        .map(|i| {
            let lo = (i + 1).saturating_sub(w);
            let mut best: Option<&T> = None;
            for x in &s[lo..=i] {
                if x.is_null() {
                    continue;
                }
                best = Some(match best {
                    Some(b) if (max && b.ord(x).is_ge()) || (!max && b.ord(x).is_le()) => b,
                    _ => x,
                });
            }
            best.unwrap_or(&s[i]).clone()
        })
        .collect()
}

fn moving_extremes(n: &RayObj, x: &RayObj, max: bool, name: &str) -> R<RayObj> {
    let w = window_arg(n, name)?;
    let v = ordered_vec_arg(x, name)?;
    Ok(RayObj::Vector(with_keys!(v, |s| Vector::from(
        RayVector::from_vec(moving_best(s.as_slice(), w, max))
    ))))
}

/// `(mmax n v)`: maxima over the last `n` elements.
pub(crate) fn mmax(_cx: &mut Ctx, n: &RayObj, x: &RayObj) -> R<RayObj> {
    moving_extremes(n, x, true, "mmax")
}
/// `(mmin n v)`: minima over the last `n` elements.
pub(crate) fn mmin(_cx: &mut Ctx, n: &RayObj, x: &RayObj) -> R<RayObj> {
    moving_extremes(n, x, false, "mmin")
}

/// Moving population variances over the last `n` non-null values.
fn moving_var(n: &RayObj, x: &RayObj, name: &str, root: bool) -> R<RayObj> {
    let w = window_arg(n, name)?;
    let v = vec_arg(x, name)?;
    let ns = numeric_nums(v, name)?;
    let out: Vec<f64> = (0..ns.len())
        .map(|i| {
            let lo = (i + 1).saturating_sub(w);
            let vals: Vec<f64> = ns[lo..=i]
                .iter()
                .filter(|n| !n.null)
                .map(Num::as_f64)
                .collect();
            if vals.is_empty() {
                return f64::NAN;
            }
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
            if root { var.sqrt() } else { var }
        })
        .collect();
    Ok(RayObj::from(out))
}

/// `(mvar n v)`: population variances over the last `n` elements.
pub(crate) fn mvar(_cx: &mut Ctx, n: &RayObj, x: &RayObj) -> R<RayObj> {
    moving_var(n, x, "mvar", false)
}

/// `(mdev n v)`: population standard deviations over the last `n` elements.
pub(crate) fn mdev(_cx: &mut Ctx, n: &RayObj, x: &RayObj) -> R<RayObj> {
    moving_var(n, x, "mdev", true)
}
