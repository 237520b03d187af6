//! raywire's `Display` against the real core's formatter.
//!
//! For every expression of the corpus the core evaluates it, serializes the
//! value (`ser`) and prints it. raywire decodes those bytes, owned and as a
//! borrowed view, and must print exactly what the core printed:
//!
//! - `{:#}` (the REPL form) against the core's REPL printer, both for the value
//!   it evaluated and for the value it reads back from the same bytes (what a
//!   core client shows when that frame arrives);
//! - `{}` (the display form) against the same text, for every value other than
//!   a list or dict (the two forms differ only in how those break over lines).

use interop::{core_compress_frame, core_de_fmt, core_eval_fmt, core_ser, core_ser_error};
use raywire::RayObj;
use raywire::codec::{Limits, decode_frame_owned, decode_view, frame_payload};

/// The brief's table, as the core prints it.
const TRADES: &str = "(table [sym price qty time] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200] [09:30:00 09:31:00 09:32:00]))";
const TRADES_TEXT: &str = "\
┌──────┬───────┬─────┬────────────────┐
│ sym  │ price │ qty │      time      │
│ SYM  │  F64  │ I64 │      TIME      │
├──────┼───────┼─────┼────────────────┤
│ AAPL │ 150.0 │ 100 │ 09:30:00.000   │
│ MSFT │ 300.0 │ 50  │ 09:31:00.000   │
│ AAPL │ 151.0 │ 200 │ 09:32:00.000   │
├──────┴───────┴─────┴────────────────┤
│ 3 rows (3 shown) 4 columns (4 shown)│
└─────────────────────────────────────┘";

/// Expressions whose values raywire must print as the core does.
const CORPUS: &[&str] = &[
    // Atoms.
    "42",
    "-7",
    "(as 'I32 7)",
    "(as 'I16 -3)",
    "0x1f",
    "true",
    "false",
    "1.5",
    "150.0",
    "0.05",
    "0.1",
    "0.123456",
    "1234567.0",
    "1e10",
    "-0.0",
    "(as 'F32 1.5)",
    "(as 'F32 (/ 1.0 3.0))",
    "'AAPL",
    "\"hello\"",
    "\"\"",
    "2024.03.15",
    "09:30:00",
    "09:30:00.123",
    "(as 'TIME -1000)",
    "2024.03.15D09:30:00.000000000",
    "(as 'TIMESTAMP -1)",
    "1D00:00:01",
    "(as 'TIMESPAN -1)",
    "(as 'DATE 2147483647)",
    "(as 'DATE -2147483647)",
    "(as 'GUID \"00000000-0000-0000-0000-000000000000\")",
    // Typed nulls and the null object.
    "0Nl",
    "0Nf",
    "0Ni",
    "0Nh",
    "0Ne",
    "0Nd",
    "0Nt",
    "0Np",
    "0Nn",
    "0Ng",
    "(/ 0.0 0.0)",
    "null",
    // Vectors.
    "[100 200 300]",
    "[5]",
    "(til 0)",
    "(til 10)",
    "(til 100)",
    "[AAPL MSFT]",
    "['a ' 'b]",
    "[\"a\" \"bc\"]",
    "[\"\" \"a\"]",
    "[1.5 2.25 3.0]",
    "[-1.5 -0.05 1e-10 123456.789 999999.99 1000000.0 0.1 0.099 -1234567.0]",
    "[true false]",
    "(as 'U8 [1 2 255])",
    "(as 'I32 [0Nl 1])",
    "(as 'I16 [0Nl 1])",
    "(as 'F32 [0Nf 1.5])",
    "[1 0Nl 3]",
    "[1.0 0Nf]",
    "(* [1.0e308 1.0] 10.0)",
    "[1999.12.31 1970.01.01 1900.03.01 2100.12.31 0001.01.01]",
    "(as 'DATE [0Nl 1])",
    "[0Nt 00:00:01]",
    "(as 'TIME [1 -1 86400000 90000000])",
    "[1999.12.31D23:59:59.999999999 1970.01.01D00:00:00.000000000]",
    "[0Np]",
    "[0Nn 1D00:00:00]",
    "[0Ng]",
    "[\"日本語日本語日本語日本語日本語日本語日本語日本語日本語日本語日本語日本語日本語\"]",
    // Lists.
    "(list)",
    "(list 1 2 3)",
    "(list 1 \"a\" 'b)",
    "(list 1.0 2)",
    "(list \"a\" \"b\")",
    "(list (list))",
    "(list 'a ')",
    "(list (list 1 2) [1 2 3] \"abc\" (dict [a b] [1 2]))",
    "(list (til 100) (til 100))",
    "(list (list 1 2) (list (til 40) (til 40)))",
    "(map (fn [x] (list x \"s\")) (til 3))",
    "(map (fn [x] (list x)) (til 60))",
    "(list + -)",
    "(quote (+ 1 2))",
    "(quote (times [i 3] i))",
    "(at (quote (times [i 3] i)) 1)",
    // Dicts.
    "(dict [a b] [1 2])",
    "(dict [] [])",
    "(dict [a b] (list [1 2] \"x\"))",
    "(dict [\"a\" \"b\"] [1.5 2.5])",
    "(dict [1 2 3] ['x 'y 'z])",
    "(dict ['a '] [1 2])",
    "(dict [a b] [0Nl 1])",
    "(dict [0Nl 1] [1 2])",
    "(dict [a b] [0Nf 1.0])",
    "(dict (til 30) (til 30))",
    "(dict (til 60) (til 60))",
    "(dict [a b] (list (til 100) \"x\"))",
    "(dict [a b c] (list (til 30) (til 30) \"a long string value that will be wide\"))",
    "(list (til 30) (til 30) (dict [a b c] (list (til 30) (til 30) \"x\")))",
    "(dict [f g] (list + til))",
    // Tables.
    TRADES,
    "(table [a b] (list [] []))",
    "(table [a] (list (til 30)))",
    "(table [a] (list (til 21)))",
    "(table [a] (list (til 20)))",
    "(table [a b c d e f g h i j k l] (list [1] [2] [3] [4] [5] [6] [7] [8] [9] [10] [11] [12]))",
    "(table [name v] (list [\"héllo\" \"日本語\"] [1 2]))",
    "(table [l] (list (list [1 2] \"ab\")))",
    "(table [x] (list [0Nl 1]))",
    "(table [s] (list ['a ' 'b]))",
    "(table [x] (list [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]))",
    "(table [x] (list [\"日本語日本語日本語日本語日本語日本語日本語日本語日本語日本語日本語日本語日本語\"]))",
    "(table [x] (list (list (til 100))))",
    "(table [x] (list (list (table [a] (list [1 2])))))",
    "(table [x y] (list (til 25) (map (fn [x] (til x)) (til 25))))",
    "(table [a b c] (list (til 100000) (as 'F64 (til 100000)) (map (fn [x] 'abc) (til 100000))))",
    "(table [t ts d] (list [09:30:00] [2024.01.01D00:00:00.000000000] [2024.01.01]))",
    "(table [s] (list [1D00:00:00]))",
    "(table [b u] (list [true false] (as 'U8 [1 2])))",
    "(table [f e] (list [1.5 0Nf] (as 'F32 [1.5 0Nf])))",
    "(table [i h] (list (as 'I32 [1 0Nl]) (as 'I16 [1 0Nl])))",
    "(list (table [a] (list [1 2])) 1)",
    "(dict [a] (list (table [a] (list [1 2]))))",
    // Functions.
    "+",
    "til",
    "list",
    "count",
    "(fn [x] (+ x 1))",
];

/// A frame decoded by raywire, printed both ways, owned and as a view.
struct Printed {
    obj: RayObj,
    display: String,
    repl: String,
}

fn print_frame(frame: &[u8]) -> Result<Printed, String> {
    let limits = Limits::default();
    let (_, obj) = decode_frame_owned(frame, &limits).map_err(|e| format!("decode: {e}"))?;
    let (_, payload) = frame_payload(frame, &limits).map_err(|e| format!("payload: {e}"))?;
    let view = decode_view(&payload, &limits).map_err(|e| format!("view: {e}"))?;
    let (display, repl) = (format!("{obj}"), format!("{obj:#}"));
    if view.to_string() != display || format!("{view:#}") != repl {
        return Err(format!(
            "the view prints differently from the owned object:\n{view}\n---\n{display}"
        ));
    }
    Ok(Printed { obj, display, repl })
}

/// Checks one expression; `Err` describes every way it failed.
fn check(expr: &str) -> Result<(), String> {
    let frame = core_ser(expr)?;
    let evaluated = core_eval_fmt(expr)?;
    let received = core_de_fmt(&frame)?;
    let p = print_frame(&frame)?;
    let mut problems = Vec::new();
    if p.repl != evaluated {
        problems.push(format!(
            "core printed:\n{evaluated}\nraywire ({{:#}}):\n{}",
            p.repl
        ));
    }
    if p.repl != received {
        problems.push(format!(
            "core printed the received frame as:\n{received}\nraywire ({{:#}}):\n{}",
            p.repl
        ));
    }
    let breaks = matches!(p.obj, RayObj::List(_) | RayObj::Dict(_));
    if !breaks && p.display != evaluated {
        problems.push(format!(
            "core printed:\n{evaluated}\nraywire ({{}}):\n{}",
            p.display
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("`{expr}`:\n{}", problems.join("\n")))
    }
}

#[test]
fn corpus_prints_like_the_core() {
    assert!(CORPUS.len() >= 60);
    let failures: Vec<String> = CORPUS.iter().filter_map(|e| check(e).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} expressions differ:\n\n{}",
        failures.len(),
        CORPUS.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_trades_table() {
    assert_eq!(core_eval_fmt(TRADES).unwrap(), TRADES_TEXT);
    let p = print_frame(&core_ser(TRADES).unwrap()).unwrap();
    assert_eq!(p.display, TRADES_TEXT);
    assert_eq!(p.repl, TRADES_TEXT);
}

#[test]
fn generated_guids() {
    // `guid` is random: serialize and print one value, bound once.
    interop::core_eval_fmt("(set display_test_guids (guid 3))").unwrap();
    for expr in [
        "display_test_guids",
        "(first display_test_guids)",
        "(table [g] (list display_test_guids))",
        "(dict [a b c] display_test_guids)",
    ] {
        check(expr).unwrap();
    }
}

#[test]
fn sentinels_without_the_nulls_attribute() {
    // An overflow leaves a sentinel in a vector whose has-nulls attribute the
    // core did not set: it prints the number for its own value, but the null
    // literal once it reads the frame (it finds the sentinels itself), and a
    // client sees the latter. raywire prints what the bytes mean on arrival.
    for (expr, own, received) in [
        (
            "(+ [9223372036854775807 1] 1)",
            "[-9223372036854775808 2]",
            "[0Nl 2]",
        ),
        ("(as 'I32 [-2147483648 1])", "[-2147483648 1]", "[0Ni 1]"),
        (
            "(as 'DATE [-2147483648 1])",
            "[-5877611.06.22 2000.01.02]",
            "[0Nd 2000.01.02]",
        ),
    ] {
        let frame = core_ser(expr).unwrap();
        assert_eq!(core_eval_fmt(expr).unwrap(), own, "{expr}");
        assert_eq!(core_de_fmt(&frame).unwrap(), received, "{expr}");
        let p = print_frame(&frame).unwrap();
        assert_eq!(p.display, received, "{expr}");
        assert_eq!(p.repl, received, "{expr}");
    }
}

#[test]
fn error_values() {
    for code in ["type", "name", "parse", "domain", "length", "nyi"] {
        let frame = core_ser_error(code).unwrap();
        let want = core_de_fmt(&frame).unwrap();
        assert_eq!(want, format!("error: {code}"));
        let p = print_frame(&frame).unwrap();
        assert_eq!(p.display, want);
        assert_eq!(p.repl, want);
    }
}

#[test]
fn compressed_frames_print_the_same() {
    for expr in [
        "(table [a b] (list (til 5000) (map (fn [x] 'abc) (til 5000))))",
        "(til 10000)",
    ] {
        let frame = core_ser(expr).unwrap();
        let compressed = core_compress_frame(&frame, 0)
            .unwrap()
            .expect("the core compresses this frame");
        let want = core_eval_fmt(expr).unwrap();
        assert_eq!(core_de_fmt(&compressed).unwrap(), want);
        let p = print_frame(&compressed).unwrap();
        assert_eq!(p.repl, want, "{expr}");
        assert_eq!(p.display, want, "{expr}");
    }
}
