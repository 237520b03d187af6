//! Tests of raywire's built-in Rayfall evaluator. Every expected value here was
//! taken from the real core (`rayforce` 1.4.0); `interop/tests/eval_diff.rs`
//! checks a much larger corpus against the core directly.

use raywire::eval::Evaluator;
use raywire::types::{ATOM_FLAG_QUOTED, ATTR_HAS_NULLS, NULL_I32, NULL_I64};
use raywire::{
    Atom, Date, RayObj, RayVector, Scalar, Symbol, Table, Time, Timespan, Timestamp, TypeCode,
    Vector,
};
use std::sync::Arc;

const DAY_NS: i64 = 86_400_000_000_000;

fn ev(src: &str) -> RayObj {
    Evaluator::new().eval_str(src)
}

fn code(src: &str) -> String {
    match ev(src) {
        RayObj::Error(c) => c.as_str().to_owned(),
        other => panic!("`{src}` did not fail: {other:?}"),
    }
}

fn i(v: i64) -> RayObj {
    RayObj::from(v)
}

fn f(v: f64) -> RayObj {
    RayObj::from(v)
}

fn syms(s: &[&str]) -> RayObj {
    RayObj::from(RayVector::from_vec(
        s.iter().map(|x| Symbol::from(*x)).collect(),
    ))
}

fn quoted(s: &str) -> RayObj {
    RayObj::Atom(Atom {
        value: Scalar::Symbol(Symbol::from(s)),
        flags: ATOM_FLAG_QUOTED,
    })
}

fn null(t: TypeCode) -> RayObj {
    RayObj::Atom(Atom::null(t).unwrap())
}

fn table(ev: &Evaluator, src: &str) -> Table {
    match ev.eval_str(src) {
        RayObj::Table(t) => t,
        other => panic!("`{src}` is not a table: {other:?}"),
    }
}

#[test]
fn literals() {
    assert_eq!(ev("1"), i(1));
    assert_eq!(ev("-7"), i(-7));
    assert_eq!(ev("1.5"), f(1.5));
    assert_eq!(ev("1e3"), f(1000.0));
    assert_eq!(ev("2.5e"), RayObj::from(2.5f32));
    assert_eq!(ev("3h"), RayObj::from(3i16));
    assert_eq!(ev("3i"), RayObj::from(3i32));
    assert_eq!(ev("0x1f"), RayObj::from(0x1fu8));
    assert_eq!(ev("true"), RayObj::from(true));
    assert_eq!(ev("'AAPL"), quoted("AAPL"));
    assert_eq!(ev("'"), quoted(""));
    assert_eq!(ev("\"text\""), RayObj::string("text"));
    assert_eq!(ev("'a'"), RayObj::string("a"));
    assert_eq!(ev("09:30:00"), RayObj::from(Time(34_200_000)));
    assert_eq!(ev("09:30:00.123"), RayObj::from(Time(34_200_123)));
    assert_eq!(ev("2024.03.15"), RayObj::from(Date(8840)));
    assert_eq!(
        ev("2024.03.15D09:30:00.123456789"),
        RayObj::from(Timestamp(8840 * DAY_NS + 34_200_123_456_789))
    );
    assert_eq!(
        ev("1D02:03:04"),
        RayObj::from(Timespan(DAY_NS + 7_384_000_000_000))
    );
    assert_eq!(ev("0Wn"), RayObj::from(Timespan(i64::MAX)));
    // 9223372036854775808 does not fit an i64: it reads as an f64.
    assert_eq!(ev("9223372036854775808"), f(9.223372036854776e18));
    // Typed nulls travel with the null flag.
    assert_eq!(ev("0Nl"), null(TypeCode::I64));
    assert_eq!(ev("0Ni"), null(TypeCode::I32));
    assert_eq!(ev("0Nf"), null(TypeCode::F64));
    assert_eq!(ev("0Nd"), null(TypeCode::Date));
    assert_eq!(ev("0Ng"), null(TypeCode::Guid));
    assert_eq!(ev("0N"), null(TypeCode::I64));
    assert_eq!(ev("null"), RayObj::Null);
}

#[test]
fn vector_literals() {
    assert_eq!(ev("[1 2 3]"), RayObj::from(vec![1i64, 2, 3]));
    assert_eq!(ev("[1 2.5]"), RayObj::from(vec![1.0, 2.5]));
    assert_eq!(ev("[AAPL MSFT]"), syms(&["AAPL", "MSFT"]));
    assert_eq!(ev("['a 'b]"), syms(&["a", "b"]));
    assert_eq!(ev("[]"), RayObj::from(Vec::<i64>::new()));
    assert_eq!(
        ev("[1 0N 3]"),
        RayObj::from(RayVector::with_attrs(vec![1, NULL_I64, 3], ATTR_HAS_NULLS))
    );
    assert_eq!(
        ev("[\"a\" \"bc\"]"),
        RayObj::from(vec!["a".to_owned(), "bc".to_owned()])
    );
    assert_eq!(
        ev("[09:30:00 10:00:00]"),
        RayObj::from(vec![Time(34_200_000), Time(36_000_000)])
    );
    assert_eq!(code("[1 'a]"), "domain");
}

#[test]
fn dictionaries_lists_and_quote() {
    // A dict literal is self-evaluating: its values stay unevaluated.
    let RayObj::Dict(d) = ev("{a: (+ 1 2) b: 2}") else {
        panic!()
    };
    assert_eq!(d.keys, syms(&["a", "b"]));
    assert_eq!(d.values.len(), 2);
    assert!(matches!(&d.values, RayObj::List(l) if matches!(l.items[0], RayObj::List(_))));
    assert_eq!(ev("(at {a: 1 b: 2} 'b)"), i(2));
    assert_eq!(ev("(at {a: 1 b: 2} 'c)"), null(TypeCode::I64));
    assert_eq!(
        ev("(list 1 'a \"s\")"),
        RayObj::list(vec![i(1), quoted("a"), RayObj::string("s")])
    );
    assert_eq!(ev("(list)"), RayObj::list(vec![]));
    assert_eq!(ev("(quote x)"), quoted("x"));
    assert_eq!(ev("(quote 1 2)"), i(1));
    assert_eq!(ev("(count (quote (+ 1 2)))"), i(3));
}

#[test]
fn arithmetic_promotion() {
    assert_eq!(ev("(+ 1 2)"), i(3));
    assert_eq!(ev("(+ 1 2.5)"), f(3.5));
    assert_eq!(ev("(+ 3i 3)"), i(6));
    assert_eq!(ev("(+ 3h 3i)"), RayObj::from(6i32));
    assert_eq!(ev("(+ 0x05 0x05)"), RayObj::from(10u8));
    assert_eq!(ev("(+ true true)"), i(2));
    assert_eq!(ev("(+ 2.5e 2.5e)"), RayObj::from(5.0f32));
    assert_eq!(ev("(+ 2.5e 2.5)"), f(5.0));
    assert_eq!(ev("(- 3 2.5)"), f(0.5));
    assert_eq!(ev("(* 3h 3)"), i(9));
    // `/` always divides to f64; `div` floors to i64.
    assert_eq!(ev("(/ 7 2)"), f(3.5));
    assert_eq!(ev("(div 7 2)"), i(3));
    assert_eq!(ev("(div -7 2)"), i(-4));
    assert_eq!(ev("(div 2.5 1)"), i(2));
    // `%` is the floor modulo, typed by its right operand.
    assert_eq!(ev("(% -7 3)"), i(2));
    assert_eq!(ev("(% 7 -3)"), i(-2));
    assert_eq!(ev("(% 3 3i)"), RayObj::from(0i32));
    assert_eq!(ev("(% 3 0x05)"), RayObj::from(3u8));
    // Overflow wraps; the wrapped sentinel is unflagged.
    assert_eq!(
        ev("(+ 9223372036854775807 1)"),
        RayObj::Atom(Atom::new(Scalar::I64(NULL_I64)))
    );
}

#[test]
fn arithmetic_nulls_and_zero() {
    assert_eq!(ev("(+ 0Nl 1)"), null(TypeCode::I64));
    assert_eq!(ev("(+ 0Ni 1)"), null(TypeCode::I64));
    assert_eq!(ev("(+ 0Ni 1i)"), null(TypeCode::I32));
    assert_eq!(ev("(+ 0Nf 1)"), null(TypeCode::F64));
    assert_eq!(ev("(/ 1 0)"), null(TypeCode::F64));
    assert_eq!(ev("(div 1 0)"), null(TypeCode::I64));
    assert_eq!(ev("(% 5 0)"), null(TypeCode::I64));
    assert_eq!(ev("(+ 0Nd 1)"), null(TypeCode::Date));
    assert_eq!(code("(+ null 1)"), "type");
    assert_eq!(ev("(== null null)"), RayObj::from(true));
}

#[test]
fn temporal_arithmetic() {
    assert_eq!(ev("(+ 2024.03.15 1)"), RayObj::from(Date(8841)));
    assert_eq!(ev("(- 2024.03.15 2024.01.01)"), RayObj::from(74i32));
    assert_eq!(
        ev("(+ 2024.03.15 09:30:00.000)"),
        RayObj::from(Timestamp(8840 * DAY_NS + 34_200_000_000_000))
    );
    assert_eq!(
        ev("(+ 09:30:00.000 09:30:00.000)"),
        RayObj::from(Time(68_400_000))
    );
    assert_eq!(ev("(* 09:00:00.000 2)"), RayObj::from(Time(64_800_000)));
    assert_eq!(
        ev("(- 2024.03.15D09:30:00.000 2024.03.14D09:30:00.000)"),
        RayObj::from(Timespan(DAY_NS))
    );
    assert_eq!(ev("(+ 1D 1D)"), RayObj::from(Timespan(2 * DAY_NS)));
    assert_eq!(code("(+ 2.5 2024.03.15)"), "type");
    assert_eq!(code("(+ 2024.03.15 2024.03.15)"), "type");
    assert_eq!(code("(* 09:00:00.000 09:00:00.000)"), "type");
}

#[test]
fn broadcasting_and_vector_types() {
    assert_eq!(ev("(+ [1 2 3] 1)"), RayObj::from(vec![2i64, 3, 4]));
    assert_eq!(ev("(* 2.0 [1 2])"), RayObj::from(vec![2.0, 4.0]));
    assert_eq!(ev("(+ [1 2] [10 20])"), RayObj::from(vec![11i64, 22]));
    assert_eq!(code("(+ [1 2 3] [1 2])"), "length");
    // The core's result-type rules for mixed vectors.
    assert_eq!(
        ev("(+ [true false true] [3i 0Ni -7i])"),
        RayObj::from(RayVector::with_attrs(
            vec![4i64, NULL_I64, -6],
            ATTR_HAS_NULLS
        ))
    );
    assert_eq!(
        ev("(+ [3i 0Ni -7i] [true false true])"),
        RayObj::from(RayVector::with_attrs(
            vec![4i32, NULL_I32, -6],
            ATTR_HAS_NULLS
        ))
    );
    assert_eq!(
        ev("(+ 2i [true false true])"),
        RayObj::from(vec![3i32, 2, 3])
    );
    assert_eq!(
        ev("(+ [true false true] 2i)"),
        RayObj::from(vec![3i64, 2, 3])
    );
    assert_eq!(ev("(+ true [0x05 0x00])"), RayObj::from(vec![6u8, 1]));
    // Two f32 vectors add up to a list of f32 atoms, as in the core.
    assert_eq!(
        ev("(+ [2.5e] [1.0e])"),
        RayObj::list(vec![RayObj::from(3.5f32)])
    );
    assert_eq!(ev("(+ [] 1)"), RayObj::from(Vec::<i64>::new()));
    assert_eq!(code("(* [1.5] [])"), "length");
    // A list operand keeps each result as it comes.
    assert_eq!(ev("(+ (list 1 2.5) 1)"), RayObj::list(vec![i(2), f(3.5)]));
    assert_eq!(
        ev("(+ [2024.01.01 2024.01.02] 1)"),
        RayObj::from(vec![Date(8767), Date(8768)])
    );
}

#[test]
fn comparisons_and_logic() {
    assert_eq!(ev("(== 1 1.0)"), RayObj::from(true));
    assert_eq!(ev("(> [1 2 3] 2)"), RayObj::from(vec![false, false, true]));
    assert_eq!(ev("(< 0Nl 1)"), RayObj::from(true));
    assert_eq!(ev("(== 0Nl 0Nl)"), RayObj::from(true));
    assert_eq!(
        ev("(== [a b c] 'b)"),
        RayObj::from(vec![false, true, false])
    );
    assert_eq!(ev("(< 'a 'b)"), RayObj::from(true));
    assert_eq!(
        ev("(< 2024.01.01 2024.01.02D00:00:00.000)"),
        RayObj::from(true)
    );
    assert_eq!(code("(== 'a 1)"), "type");
    assert_eq!(ev("(min 1 2.5)"), f(1.0));
    assert_eq!(ev("(max 3 [1 5 2])"), RayObj::from(vec![3i64, 5, 3]));
    assert_eq!(ev("(and true false)"), RayObj::from(false));
    assert_eq!(ev("(and 0 2)"), i(0));
    assert_eq!(ev("(and 1 2)"), RayObj::from(true));
    assert_eq!(ev("(or 0 2)"), RayObj::from(true));
    assert_eq!(
        ev("(and [true false] [true true])"),
        RayObj::from(vec![true, false])
    );
    assert_eq!(ev("(not [1 0 2])"), RayObj::from(vec![false, true, false]));
    assert_eq!(ev("(not 0)"), RayObj::from(true));
    assert_eq!(code("(and)"), "arity");
    assert_eq!(code("(not 1 2)"), "arity");
}

#[test]
fn aggregations() {
    assert_eq!(ev("(sum [1 2 3])"), i(6));
    assert_eq!(ev("(sum [])"), i(0));
    assert_eq!(ev("(sum [1 0N 3])"), i(4));
    assert_eq!(ev("(sum [1i 2i])"), i(3));
    assert_eq!(ev("(sum [2.5e 0Ne -7.0e])"), f(-4.5));
    assert_eq!(
        ev("(sum [09:00:00.000 10:00:00.000])"),
        RayObj::from(Time(68_400_000))
    );
    assert_eq!(code("(sum [a b])"), "type");
    assert_eq!(ev("(avg [1 2 3 4])"), f(2.5));
    assert_eq!(ev("(avg [])"), null(TypeCode::F64));
    assert_eq!(ev("(avg [5])"), f(5.0));
    assert_eq!(code("(avg (list))"), "domain");
    assert_eq!(ev("(min [3 1 2])"), i(1));
    assert_eq!(ev("(min [])"), null(TypeCode::I64));
    assert_eq!(
        ev("(max [2024.01.01 2024.02.01])"),
        RayObj::from(Date(8797))
    );
    assert_eq!(ev("(max [a c b])"), RayObj::symbol("c"));
    assert_eq!(ev("(min [3i 0Ni -7i])"), RayObj::from(-7i32));
    assert_eq!(ev("(count [1 2 3])"), i(3));
    assert_eq!(ev("(count \"abc\")"), i(3));
    assert_eq!(ev("(count 5)"), i(1));
    assert_eq!(code("(count null)"), "type");
    assert_eq!(ev("(first [1 2 3])"), i(1));
    assert_eq!(ev("(first [])"), null(TypeCode::I64));
    assert_eq!(ev("(first [2.5e])"), f(2.5));
    assert_eq!(ev("(last [1.5])"), f(1.5));
    assert_eq!(ev("(first \"abc\")"), RayObj::string("a"));
    assert_eq!(ev("(prod [1 2 3])"), i(6));
    assert_eq!(ev("(prod [])"), i(1));
}

#[test]
fn collections() {
    assert_eq!(ev("(distinct [3 1 3 2 1])"), RayObj::from(vec![1i64, 2, 3]));
    assert_eq!(ev("(distinct [b a b c])"), syms(&["b", "a", "c"]));
    assert_eq!(
        ev("(distinct [3.0 1.0 3.0 0.5])"),
        RayObj::from(vec![0.5, 1.0, 3.0])
    );
    assert_eq!(code("(distinct 5)"), "type");
    assert_eq!(ev("(til 5)"), RayObj::from(vec![0i64, 1, 2, 3, 4]));
    assert_eq!(code("(til -1)"), "domain");
    assert_eq!(code("(til 5i)"), "type");
    assert_eq!(ev("(at [10 20 30] 1)"), i(20));
    assert_eq!(
        ev("(at [10 20 30] [2 0 5])"),
        RayObj::from(RayVector::with_attrs(
            vec![30i64, 10, NULL_I64],
            ATTR_HAS_NULLS
        ))
    );
    assert_eq!(ev("(at [10 20 30] 5)"), null(TypeCode::I64));
    assert_eq!(code("(at [10 20 30] 1.5)"), "type");
    assert_eq!(ev("(as 'f64 [1 2])"), RayObj::from(vec![1.0, 2.0]));
    assert_eq!(ev("(as 'i64 -2.7)"), i(-2));
    assert_eq!(ev("(as 'u8 300)"), RayObj::from(44u8));
    assert_eq!(ev("(as 'u8 300.0)"), RayObj::from(255u8));
    assert_eq!(ev("(as 'sym \"abc\")"), RayObj::symbol("abc"));
    assert_eq!(ev("(as 'str 2.5)"), RayObj::string("2.5"));
    assert_eq!(ev("(as 'str 1234567.0)"), RayObj::string("1.23457e+06"));
    assert_eq!(ev("(as 'sym 0.1)"), RayObj::symbol("0.10000000000000001"));
    assert_eq!(
        ev("(as 'date 2024.01.01D12:00:00.000)"),
        RayObj::from(Date(8766))
    );
    assert_eq!(code("(as 'bad 1)"), "domain");
    assert_eq!(ev("(type [1])"), RayObj::symbol("I64"));
    assert_eq!(ev("(type 1.5e)"), RayObj::symbol("f32"));
    assert_eq!(ev("(enlist 1 2.5)"), RayObj::from(vec![1.0, 2.5]));
    assert_eq!(ev("(where [true false true])"), RayObj::from(vec![0i64, 2]));
    assert_eq!(ev("(neg [1 -2])"), RayObj::from(vec![-1i64, 2]));
}

#[test]
fn control_and_globals() {
    let e = Evaluator::new();
    assert_eq!(e.eval_str("(set x 10)"), i(10));
    assert_eq!(e.eval_str("x"), i(10));
    assert_eq!(e.eval_str("(* x [1 2])"), RayObj::from(vec![10i64, 20]));
    assert_eq!(e.eval_str("(do (set v 1) (set v (+ v 1)) v)"), i(2));
    assert_eq!(e.eval_str("(do (let q 7) (+ q 1))"), i(8));
    assert!(e.eval_str("q").is_error());
    assert_eq!(e.eval_str("(if 0 1 0 2 3)"), i(3));
    assert_eq!(e.eval_str("(if false 1)"), i(0));
    assert_eq!(e.eval_str("(do)"), i(0));
    assert_eq!(e.eval_str("(set p 1) (set p (+ p 1)) p"), i(2));
    // A global shadows a builtin, as in the core.
    assert_eq!(e.eval_str("(set sum 5)"), i(5));
    assert_eq!(code_in(&e, "(sum 1 2)"), "type");
    assert_eq!(e.get_global("x"), Some(i(10)));
    e.set_global("y", RayObj::from(vec![1i64]));
    assert_eq!(e.eval_str("(count y)"), i(1));
}

fn code_in(e: &Evaluator, src: &str) -> String {
    match e.eval_str(src) {
        RayObj::Error(c) => c.as_str().to_owned(),
        other => panic!("`{src}` did not fail: {other:?}"),
    }
}

#[test]
fn error_codes() {
    assert_eq!(code("nosuchname"), "name");
    assert_eq!(code("(nosuchfn 1)"), "name");
    assert_eq!(code("(+ 1)"), "arity");
    assert_eq!(code("(til)"), "arity");
    assert_eq!(code("(sum 1 2 3)"), "arity");
    assert_eq!(code("(1 2 3)"), "type");
    assert_eq!(code("(+ 'a 1)"), "type");
    assert_eq!(code("(set 5 5)"), "type");
    assert_eq!(code("(set .x 1)"), "reserve");
    assert_eq!(code("(quote)"), "domain");
    for bad in [
        "(+ 1",
        "1+",
        "\"abc",
        "{a 1}",
        "[1,2]",
        "2024.13.01",
        ")",
        "",
    ] {
        assert_eq!(code(bad), "parse", "{bad}");
    }
    assert_eq!(code("32768h"), "domain");
}

fn trades(e: &Evaluator) {
    e.eval_str(
        "(set trades (table [sym price qty] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200])))",
    );
}

#[test]
fn tables() {
    let e = Evaluator::new();
    trades(&e);
    let t = table(&e, "trades");
    assert_eq!(
        t.names.as_slice(),
        &[
            Symbol::from("sym"),
            Symbol::from("price"),
            Symbol::from("qty")
        ]
    );
    assert_eq!(t.rows(), 3);
    assert_eq!(e.eval_str("(count trades)"), i(3));
    assert_eq!(
        e.eval_str("(at trades 'qty)"),
        RayObj::from(vec![100i64, 50, 200])
    );
    let RayObj::Dict(row) = e.eval_str("(first trades)") else {
        panic!()
    };
    assert_eq!(
        row.values,
        RayObj::list(vec![RayObj::symbol("AAPL"), f(150.0), i(100)])
    );
    assert_eq!(code("(table [a b] (list [1 2] [3 4 5]))"), "domain");
    assert_eq!(code("(table [a b] (list [1 2]))"), "domain");
    assert_eq!(code("(table 'a (list [1 2]))"), "type");
    assert_eq!(code("(table [a b] (list [1 2] (list 1 'x)))"), "type");
    let t = table(&e, "(table [a] (list 1))");
    assert_eq!(t.column("a"), Some(&RayObj::from(vec![1i64])));
}

#[test]
fn select_by_named_expressions() {
    let e = Evaluator::new();
    trades(&e);
    let t = table(
        &e,
        "(select {sym: sym total_value: (sum (* price qty)) from: trades by: sym})",
    );
    assert_eq!(
        t.names.as_slice(),
        &[Symbol::from("sym"), Symbol::from("total_value")]
    );
    // Group-key symbol columns carry the has-nulls attribute, as the core's do.
    assert_eq!(
        t.column("sym"),
        Some(&RayObj::from(RayVector::with_attrs(
            vec![Symbol::from("AAPL"), Symbol::from("MSFT")],
            ATTR_HAS_NULLS
        )))
    );
    assert_eq!(
        t.column("total_value"),
        Some(&RayObj::from(vec![45200.0, 15000.0]))
    );
    let t = table(
        &e,
        "(select {s: (sum qty) c: (count qty) from: trades by: sym})",
    );
    assert_eq!(t.column("s"), Some(&RayObj::from(vec![300i64, 50])));
    assert_eq!(t.column("c"), Some(&RayObj::from(vec![2i64, 1])));
    // Groups come in first-appearance order.
    let t = table(
        &e,
        "(select {total: (sum qty) from: trades by: sym where: (> price 150.0)})",
    );
    assert_eq!(
        t.column("sym"),
        Some(&RayObj::from(RayVector::with_attrs(
            vec![Symbol::from("MSFT"), Symbol::from("AAPL")],
            ATTR_HAS_NULLS
        )))
    );
    // A non-aggregated column per group is a list of vectors.
    let t = table(&e, "(select {q: qty from: trades by: sym})");
    assert_eq!(
        t.column("q"),
        Some(&RayObj::list(vec![
            RayObj::from(vec![100i64, 200]),
            RayObj::from(vec![50i64])
        ]))
    );
    // No aggregate: the first row of each group.
    let t = table(&e, "(select {from: trades by: sym})");
    assert_eq!(t.column("qty"), Some(&RayObj::from(vec![100i64, 50])));
}

#[test]
fn select_where_and_shapes() {
    let e = Evaluator::new();
    trades(&e);
    let t = table(&e, "(select {from: trades where: (> qty 60)})");
    assert_eq!(t.column("qty"), Some(&RayObj::from(vec![100i64, 200])));
    let t = table(&e, "(select {s: (sum qty) from: trades})");
    assert_eq!(t.column("s"), Some(&RayObj::from(vec![350i64])));
    let t = table(&e, "(select {p: (* price 2) q: 1 from: trades})");
    assert_eq!(t.column("q"), Some(&RayObj::from(vec![1i64, 1, 1])));
    let t = table(
        &e,
        "(select {s: (sum qty) from: trades where: (== sym 'ZZZ)})",
    );
    assert_eq!(t.column("s"), Some(&RayObj::from(vec![0i64])));
    let t = table(&e, "(select {qty: qty from: trades where: (== sym 'ZZZ)})");
    assert_eq!(t.rows(), 0);
    let t = table(
        &e,
        "(select {from: trades where: (and (== sym 'AAPL) (> qty 150))})",
    );
    assert_eq!(t.column("price"), Some(&RayObj::from(vec![151.0])));
    assert_eq!(code_in(&e, "(select {from: nosuch})"), "name");
    assert_eq!(code_in(&e, "(select {from: 5})"), "type");
    assert_eq!(
        code_in(&e, "(select {x: nosuchcol from: trades})"),
        "schema"
    );
    assert_eq!(code_in(&e, "(select {a: 1})"), "domain");
}

#[test]
fn select_grouped_types() {
    let e = Evaluator::new();
    e.eval_str("(set u (table [s p] (list [b a b c a] [1.5 2.5 3.5 4.5 0Nf])))");
    let t = table(
        &e,
        "(select {m: (max p) a: (avg p) l: (last p) c: (count p) from: u by: s})",
    );
    assert_eq!(t.column("m"), Some(&RayObj::from(vec![3.5, 2.5, 4.5])));
    assert_eq!(t.column("a"), Some(&RayObj::from(vec![2.5, 2.5, 4.5])));
    // Grouped `last` skips nulls, as the core's grouped aggregation does.
    assert_eq!(t.column("l"), Some(&RayObj::from(vec![3.5, 2.5, 4.5])));
    assert_eq!(t.column("c"), Some(&RayObj::from(vec![2i64, 2, 1])));
    e.eval_str("(set g (table [l] (list [9 3 9 1])))");
    // Computed keys come out in key order.
    let t = table(&e, "(select {c: (count l) from: g by: (+ l 1)})");
    assert_eq!(t.column("l"), Some(&RayObj::from(vec![2i64, 4, 10])));
}

#[test]
fn insert_and_upsert() {
    let e = Evaluator::new();
    trades(&e);
    // Functional insert leaves the global alone.
    let t = table(&e, "(insert trades (list 'IBM 99.0 10))");
    assert_eq!(t.rows(), 4);
    assert_eq!(e.eval_str("(count trades)"), i(3));
    // In place: the global changes and the symbol comes back.
    assert_eq!(
        e.eval_str("(insert 'trades (list 'IBM 99.0 10))"),
        RayObj::symbol("trades")
    );
    assert_eq!(e.eval_str("(count trades)"), i(4));
    e.eval_str("(insert 'trades (list [GOOG X] [1.0 2.0] [1 2]))");
    e.eval_str("(insert 'trades {sym: 'Z price: 3.0 qty: 7})");
    e.eval_str("(insert 'trades (list 'IBM 99 10))");
    assert_eq!(e.eval_str("(count trades)"), i(8));
    assert_eq!(e.eval_str("(last (at trades 'price))"), f(99.0));
    assert_eq!(code_in(&e, "(insert 'trades (list 'IBM 99.0))"), "domain");
    assert_eq!(code_in(&e, "(insert 'nosuch (list 1))"), "domain");
    assert_eq!(code_in(&e, "(insert 'trades (list 'IBM \"x\" 10))"), "type");

    e.eval_str("(set kt (table [k v] (list [a b] [1 2])))");
    assert_eq!(
        e.eval_str("(upsert 'kt 1 (list 'a 10))"),
        RayObj::symbol("kt")
    );
    e.eval_str("(upsert 'kt 1 (list 'c 30))");
    let t = table(&e, "kt");
    assert_eq!(t.column("v"), Some(&RayObj::from(vec![10i64, 2, 30])));
    let t = table(&e, "(upsert kt 1 (list 'a 99))");
    assert_eq!(t.column("v"), Some(&RayObj::from(vec![99i64, 2, 30])));
    assert_eq!(code_in(&e, "(upsert 'kt (list 'a 5))"), "arity");
    e.eval_str("(upsert 'kt 1 (table [k v] (list [b d] [7 8])))");
    let t = table(&e, "kt");
    assert_eq!(t.column("v"), Some(&RayObj::from(vec![10i64, 7, 30, 8])));
}

#[test]
fn deliberate_differences() {
    // raywire folds arithmetic over more than two arguments; the core says `arity`.
    assert_eq!(ev("(+ 1 2 3)"), i(6));
    assert_eq!(ev("(- 10 1 2)"), i(7));
    assert_eq!(ev("(* 2 3 4.0)"), f(24.0));
    match ev("(version)") {
        RayObj::Atom(Atom {
            value: Scalar::Str(s),
            ..
        }) => assert!(s.starts_with("raywire ")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn eval_obj_calls_lists() {
    let e = Evaluator::new();
    let call = RayObj::list(vec![RayObj::symbol("+"), i(1), i(2)]);
    assert_eq!(e.eval_obj(&call), i(3));
    let quoted_head = RayObj::list(vec![quoted("sum"), RayObj::from(vec![1i64, 2])]);
    assert_eq!(e.eval_obj(&quoted_head), i(3));
    let builtin = RayObj::Builtin(raywire::Builtin {
        kind: TypeCode::Binary,
        name: "*".into(),
    });
    assert_eq!(e.eval_obj(&RayObj::list(vec![builtin, i(3), i(4)])), i(12));
    // Anything else evaluates to itself.
    assert_eq!(
        e.eval_obj(&RayObj::from(vec![1i64])),
        RayObj::from(vec![1i64])
    );
    assert_eq!(e.eval_obj(&RayObj::list(vec![])), RayObj::list(vec![]));
}

#[test]
fn vectors_are_computed_whole() {
    let e = Evaluator::new();
    assert_eq!(e.eval_str("(sum (til 100000))"), i(4_999_950_000));
    assert_eq!(e.eval_str("(count (+ (til 100000) 1.5))"), i(100_000));
    assert_eq!(e.eval_str("(sum (* (til 1000) 2))"), i(999_000));
    let t = table(
        &e,
        "(select {c: (count v) s: (sum v) from: (table [k v] (list (% (til 1000) 7) (til 1000))) by: k})",
    );
    assert_eq!(t.rows(), 7);
    assert_eq!(e.eval_str("(sum (at (select {c: (count v) from: (table [k v] (list (% (til 1000) 7) (til 1000))) by: k}) 'c))"), i(1000));
}

#[test]
fn deep_nesting_is_bounded() {
    let e = Evaluator::new();
    // The reader accepts at most 1024 levels, evaluation at most 512.
    assert_eq!(code_in(&e, &"[".repeat(5000)), "parse");
    let deep = format!("{}1{}", "(+ 1 ".repeat(600), ")".repeat(600));
    assert_eq!(code_in(&e, &deep), "limit");
    let ok = format!("{}1{}", "(+ 1 ".repeat(300), ")".repeat(300));
    assert_eq!(e.eval_str(&ok), i(301));
}

#[test]
fn concurrent_queries_see_consistent_state() {
    let e = Arc::new(Evaluator::new());
    e.eval_str("(set t (table [a] (list [0])))");
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for k in 0..20 {
                    let r = e.eval_str(&format!("(insert 't (list {}))", w * 100 + k));
                    assert_eq!(r, RayObj::symbol("t"));
                }
            })
        })
        .collect();
    let reader = {
        let e = Arc::clone(&e);
        std::thread::spawn(move || {
            for _ in 0..50 {
                // A query sees one snapshot: count and sum agree on its rows.
                let r = e.eval_str("(list (count t) (count (at t 'a)))");
                let RayObj::List(l) = r else { panic!() };
                assert_eq!(l.items[0], l.items[1]);
            }
        })
    };
    for h in writers {
        h.join().unwrap();
    }
    reader.join().unwrap();
    assert_eq!(e.eval_str("(count t)"), i(61));
}

#[test]
fn garbage_never_panics() {
    // A small deterministic generator (xorshift) over Rayfall-flavoured bytes.
    let alphabet: &[u8] = b"()[]{}'\":;.-+*/%<>=!&|?_ 0123456789abcdefxyzDNhie\\\t\n\x00\xff";
    let atoms = [
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "sum",
        "select",
        "from:",
        "by:",
        "where:",
        "table",
        "insert",
        "'t",
        "0N",
        "0Nf",
        "1.5",
        "2024.01.01",
        "09:00:00",
        "1D",
        "\"s\"",
        "til",
        "at",
        "as",
        "'i64",
        "list",
        "set",
        "t",
        "x",
        "+",
        "-",
        "/",
        "div",
        "%",
        "==",
        "<",
        "and",
        "not",
        "first",
        "distinct",
        "upsert",
        "quote",
        "do",
        "if",
        "let",
    ];
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let e = Evaluator::new();
    e.eval_str("(set t (table [a b] (list [1 2 3] [x y z])))");
    for round in 0..3000 {
        let len = (next() % 40) as usize;
        let text: String = if round % 2 == 0 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..len)
                .map(|_| atoms[(next() % atoms.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = e.eval_str(&text);
    }
    // Structured garbage through eval_obj too.
    for k in 0..500u64 {
        let obj = RayObj::list(vec![
            RayObj::symbol(atoms[(k % atoms.len() as u64) as usize]),
            RayObj::from(k as i64),
            RayObj::Vector(Vector::F64(RayVector::from_vec(vec![f64::NAN, 1.0]))),
            RayObj::Null,
        ]);
        let _ = e.eval_obj(&obj);
    }
}

// ---------------------------------------------------------------- lambdas

/// Every expected value below was read from the core (`rayforce` 1.4.0).
#[test]
fn lambdas_call_recurse_and_close_over_locals() {
    let e = Evaluator::new();
    assert_eq!(e.eval_str("((fn [x y] (+ x y)) 3 4)"), i(7));
    assert_eq!(e.eval_str("((fn [] 42))"), i(42));
    e.eval_str("(set fact (fn [n] (if (<= n 1) 1 (* n (fact (- n 1))))))");
    assert_eq!(e.eval_str("(fact 10)"), i(3_628_800));
    e.eval_str("(set fact2 (fn [n] (if (<= n 1) 1 (* n (self (- n 1))))))");
    assert_eq!(e.eval_str("(fact2 5)"), i(120));
    // A closure keeps the value a local had when the lambda was made.
    assert_eq!(
        e.eval_str("(do (let k 3) (let g (fn [x] (+ x k))) (let k 100) (g 1))"),
        i(4)
    );
    e.eval_str("(set mk (fn [n] (fn [x] (+ x n))))");
    assert_eq!(e.eval_str("((mk 10) 5)"), i(15));
    // The caller's locals are not the callee's.
    e.eval_str("(set peek (fn [] hidden))");
    assert_eq!(
        e.eval_str("(do (let hidden 1) (peek))"),
        RayObj::error("name")
    );
    // `let` in a body binds in the call's frame, even inside a `do`.
    assert_eq!(e.eval_str("((fn [] (do (let a 1)) a))"), i(1));
    // `set` writes the global, never the parameter.
    assert_eq!(e.eval_str("((fn [x] (set x 5) x) 1)"), i(1));
    assert_eq!(e.eval_str("x"), i(5));
    assert_eq!(e.eval_str("((fn [x] (return (* x 2)) 99) 4)"), i(8));
}

#[test]
fn lambda_errors_are_the_cores() {
    assert_eq!(code("((fn [x] x))"), "arity");
    assert_eq!(code("((fn [x] x) 1 2)"), "arity");
    assert_eq!(code("(fn [x])"), "domain");
    assert_eq!(code("(fn [.a] 1)"), "reserve");
    assert_eq!(code("((fn [x] (+ x 'a)) 1)"), "type");
    assert_eq!(code("(set deep (fn [n] (deep (+ n 1)))) (deep 0)"), "limit");
}

#[test]
fn a_lambda_is_the_cores_wire_object() {
    let RayObj::Lambda(l) = ev("(do (let a 5) (fn [x] (+ x a)))") else {
        panic!("not a lambda");
    };
    assert_eq!(l.attrs, 1);
    assert_eq!(l.params, syms(&["x"]));
    assert_eq!(
        l.body,
        RayObj::list(vec![RayObj::list(vec![
            RayObj::symbol("+"),
            RayObj::symbol("x"),
            RayObj::symbol("a")
        ])])
    );
    assert_eq!(
        l.closure,
        Some(RayObj::dict(syms(&["a"]), RayObj::list(vec![i(5)])))
    );
    assert_eq!(ev("(type (fn [x] x))"), RayObj::symbol("?"));
}

#[test]
fn iterators_answer_the_cores_shapes() {
    assert_eq!(
        ev("(map (fn [x] (* x 2)) [1 2 3])"),
        RayObj::list(vec![i(2), i(4), i(6)])
    );
    assert_eq!(ev("(map (fn [x] x) [])"), RayObj::list(vec![]));
    assert_eq!(
        ev("(map + [1 2] [3 4])"),
        RayObj::list(vec![
            RayObj::from(vec![4i64, 5]),
            RayObj::from(vec![5i64, 6])
        ])
    );
    assert_eq!(ev("(fold + 10 [1 2 3])"), i(16));
    assert_eq!(code("(fold + [])"), "domain");
    assert_eq!(ev("(fold count [1 2 3])"), i(1));
    assert_eq!(ev("(scan + [1 2 3])"), RayObj::from(vec![1i64, 3, 6]));
    assert_eq!(
        ev("(scan - [10 1 2])"),
        RayObj::list(vec![i(10), i(9), i(7)])
    );
    assert_eq!(code("(scan + 10 [1 2 3])"), "type");
    assert_eq!(ev("(apply + [1 2 3] [1])"), RayObj::list(vec![i(2)]));
    assert_eq!(ev("(apply (fn [a b] (- a b)) 5 3)"), i(2));
    assert_eq!(ev("(fold-right - [1 2 3])"), i(2));
    assert_eq!(
        ev("(filter [1 2 3 4] [true false true false])"),
        RayObj::from(vec![1i64, 3])
    );
    assert_eq!(code("(map list [1 2])"), "type");
}

#[test]
fn try_raise_eval_parse_timeit() {
    assert_eq!(ev("(try (raise 99) (fn [e] e))"), i(99));
    assert_eq!(ev("(try (+ 1 'a) (fn [e] e))"), i(0));
    assert_eq!(ev("(try (raise 42) neg)"), i(-42));
    assert_eq!(ev("(try (raise 5) 7)"), i(7));
    assert_eq!(code("(raise 5)"), "domain");
    assert_eq!(ev("(try ((fn [] (return 3) 4)) (fn [e] 'caught))"), i(3));
    assert_eq!(ev("(eval (parse \"(* 6 7)\"))"), i(42));
    assert_eq!(ev("(eval \"(+ 1 2)\")"), RayObj::string("(+ 1 2)"));
    assert_eq!(code("(parse 1)"), "type");
    assert_eq!(code("(parse \"(+ 1\")"), "parse");
    assert_eq!(ev("(type (timeit (+ 1 2)))"), RayObj::symbol("f64"));
    assert_eq!(code("(timeit)"), "arity");
}

#[test]
fn print_output_is_captured_for_the_query_that_made_it() {
    let e = Evaluator::new();
    let run = |src: &str| {
        let expr = raywire::RayObj::string(src);
        let (r, printed) = e.eval_str_printed(src, &raywire::eval::NoHost);
        drop(expr);
        (r.map(|a| (*a).clone()), printed)
    };
    // Texts as the core's server captures them for a verbose request.
    assert_eq!(
        run("(println 1.5 [1 2] 'a \"s\" (list 1 \"a\") true 0Nl)"),
        (
            Ok(RayObj::Null),
            "1.5 [1 2] 'a s [1 a] true 0Nl\n".to_owned()
        )
    );
    assert_eq!(
        run("(println \"a % b % c\" 1 'x \"s\")"),
        (Ok(RayObj::Null), "a 1 b x c\n".to_owned())
    );
    assert_eq!(
        run("(do (print 1e10 0.0001) (println (table [a] (list [1 2]))) 7)"),
        (Ok(i(7)), "1e+10 0.0001<table 2x1>\n".to_owned())
    );
    // A failing query still hands back what it printed before failing.
    let (r, printed) = run("(do (println 'x) (+ 1 'a))");
    assert_eq!(r.unwrap_err().code, "type");
    assert_eq!(printed, "'x\n");
}

#[test]
fn deep_recursion_on_a_small_stack_ends_in_limit_not_a_crash() {
    // A worker thread's stack can be small; evaluation moves to a large stack
    // of its own when it needs one.
    let h = std::thread::Builder::new()
        .stack_size(512 << 10)
        .spawn(|| {
            let e = Evaluator::new();
            e.eval_str("(set d (fn [n] (if (== n 0) 0 (+ 1 (d (- n 1))))))");
            (e.eval_str("(d 100)"), e.eval_str("(d 100000)"))
        })
        .unwrap();
    assert_eq!(h.join().unwrap(), (i(100), RayObj::error("limit")));
}
