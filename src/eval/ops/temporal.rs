//! Temporal parts: `yyyy mm dd doy dow hh minute ss`, following the core's
//! `ops/temporal.c` (`ray_temporal_extract`).
//!
//! Each takes a date, time or timestamp (atom or vector) and answers i64: a
//! date has no time of day (its `hh` is 0), a time has no date. Nulls stay
//! null.

use super::super::Ctx;
use super::super::error::{R, bail};
use super::super::value::{Num, type_name};
use crate::types::{NULL_I32, NULL_I64, civil_from_days};
use crate::{RayObj, TypeCode, Vector};

const DAY_MS: i64 = 86_400_000;
const DAY_NS: i64 = 86_400_000_000_000;

/// A calendar or clock field.
#[derive(Clone, Copy)]
enum Part {
    Year,
    Month,
    Day,
    DayOfYear,
    DayOfWeek,
    Hour,
    Minute,
    Second,
}

/// Splits a temporal value into days since 2000-01-01 and the time of day in
/// nanoseconds.
fn split(t: TypeCode, v: i64) -> (i64, i64) {
    match t {
        TypeCode::Date => (v, 0),
        TypeCode::Time => (0, v.rem_euclid(DAY_MS) * 1_000_000),
        _ => (v.div_euclid(DAY_NS), v.rem_euclid(DAY_NS)),
    }
}

fn field(part: Part, t: TypeCode, v: i64) -> i64 {
    let (days, ns) = split(t, v);
    match part {
        Part::Year => civil_from_days(days).0,
        Part::Month => i64::from(civil_from_days(days).1),
        Part::Day => i64::from(civil_from_days(days).2),
        Part::DayOfYear => {
            let y = civil_from_days(days).0;
            days - crate::types::days_from_civil(y, 1, 1) + 1
        }
        // 2000-01-01 was a Saturday; Monday is 1 and Sunday 7.
        Part::DayOfWeek => (days + 5).rem_euclid(7) + 1,
        Part::Hour => ns / 3_600_000_000_000,
        Part::Minute => ns / 60_000_000_000 % 60,
        Part::Second => ns / 1_000_000_000 % 60,
    }
}

fn extract(x: &RayObj, part: Part) -> R<RayObj> {
    if let Some(n) = Num::from_obj(x)
        && n.is_temporal()
    {
        if n.null {
            return Ok(Num::null_of(TypeCode::I64).to_obj());
        }
        return Ok(RayObj::from(field(part, n.t, n.i)));
    }
    let out: Vec<i64> = match x {
        RayObj::Vector(Vector::Date(v)) => v
            .iter()
            .map(|d| {
                if d.0 == NULL_I32 {
                    NULL_I64
                } else {
                    field(part, TypeCode::Date, i64::from(d.0))
                }
            })
            .collect(),
        RayObj::Vector(Vector::Time(v)) => v
            .iter()
            .map(|d| {
                if d.0 == NULL_I32 {
                    NULL_I64
                } else {
                    field(part, TypeCode::Time, i64::from(d.0))
                }
            })
            .collect(),
        RayObj::Vector(Vector::Timestamp(v)) => v
            .iter()
            .map(|d| {
                if d.0 == NULL_I64 {
                    NULL_I64
                } else {
                    field(part, TypeCode::Timestamp, d.0)
                }
            })
            .collect(),
        other => bail!(
            "type",
            "extract: expected date/time/timestamp, got {}",
            type_name(other)
        ),
    };
    Ok(RayObj::from(out))
}

/// `(yyyy x)`: the year.
pub(crate) fn yyyy(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extract(x, Part::Year)
}
/// `(mm x)`: the month, 1 to 12.
pub(crate) fn mm(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extract(x, Part::Month)
}
/// `(dd x)`: the day of the month.
pub(crate) fn dd(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extract(x, Part::Day)
}
/// `(doy x)`: the day of the year, from 1.
pub(crate) fn doy(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extract(x, Part::DayOfYear)
}
/// `(dow x)`: the day of the week, Monday 1 to Sunday 7.
pub(crate) fn dow(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extract(x, Part::DayOfWeek)
}
/// `(hh x)`: the hour.
pub(crate) fn hh(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extract(x, Part::Hour)
}
/// `(minute x)`: the minute of the hour.
pub(crate) fn minute(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extract(x, Part::Minute)
}
/// `(ss x)`: the second of the minute.
pub(crate) fn ss(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    extract(x, Part::Second)
}

/// The query-only spellings of the parts (`year`, `hour`, ...): the core's
/// query planner knows them, its evaluator outside a query does not.
fn in_query(cx: &Ctx, name: &str) -> R<()> {
    if cx.query.is_empty() {
        bail!("name", "'{name}' undefined");
    }
    Ok(())
}

/// `(year x)` inside a query: [`yyyy`].
pub(crate) fn year(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    in_query(cx, "year")?;
    extract(x, Part::Year)
}
/// `(month x)` inside a query: [`mm`].
pub(crate) fn month(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    in_query(cx, "month")?;
    extract(x, Part::Month)
}
/// `(day x)` inside a query: [`dd`].
pub(crate) fn day(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    in_query(cx, "day")?;
    extract(x, Part::Day)
}
/// `(dayofyear x)` inside a query: [`doy`].
pub(crate) fn dayofyear(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    in_query(cx, "dayofyear")?;
    extract(x, Part::DayOfYear)
}
/// `(dayofweek x)` inside a query: [`dow`].
pub(crate) fn dayofweek(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    in_query(cx, "dayofweek")?;
    extract(x, Part::DayOfWeek)
}
/// `(hour x)` inside a query: [`hh`].
pub(crate) fn hour(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    in_query(cx, "hour")?;
    extract(x, Part::Hour)
}
/// `(second x)` inside a query: [`ss`].
pub(crate) fn second(cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    in_query(cx, "second")?;
    extract(x, Part::Second)
}

/// `(date x)`: the timestamp of the start of `x`'s day, element-wise.
pub(crate) fn date(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    truncated(x, DAY_NS, "date")
}

/// `(time x)`: the timestamp of `x` cut to the second, element-wise.
pub(crate) fn time(_cx: &mut Ctx, x: &RayObj) -> R<RayObj> {
    truncated(x, 1_000_000_000, "time")
}

/// A temporal value as a timestamp (nanoseconds since 2000-01-01).
fn as_ns(t: TypeCode, v: i64) -> i64 {
    match t {
        TypeCode::Date => v.saturating_mul(DAY_NS),
        TypeCode::Time => v.saturating_mul(1_000_000),
        _ => v,
    }
}

/// Temporal values as timestamps rounded down to a multiple of `unit`.
fn truncated(x: &RayObj, unit: i64, name: &str) -> R<RayObj> {
    let cut = |t: TypeCode, v: i64| as_ns(t, v).div_euclid(unit).saturating_mul(unit);
    if let Some(n) = Num::from_obj(x)
        && n.is_temporal()
    {
        if n.null {
            return Ok(Num::null_of(TypeCode::Timestamp).to_obj());
        }
        return Ok(Num::int(TypeCode::Timestamp, cut(n.t, n.i)).to_obj());
    }
    if let RayObj::Vector(v) = x
        && matches!(
            v.type_code(),
            TypeCode::Date | TypeCode::Time | TypeCode::Timestamp
        )
        && let Some(ns) = super::super::value::vec_nums(v)
    {
        let out: Vec<i64> = ns
            .iter()
            .map(|n| if n.null { NULL_I64 } else { cut(n.t, n.i) })
            .collect();
        return Ok(super::super::value::ints_to_vec(out, TypeCode::Timestamp));
    }
    // The clock forms, `(date 'local)` and the like, read the wall clock,
    // which a differential test cannot pin down.
    bail!(
        "nyi",
        "{name}: expects a date, time or timestamp, got {}",
        type_name(x)
    )
}
