//! Prints the core's printed form and `core_ser` hex for a list of
//! expressions (the raw material of NOTES-core.md). Pass expressions as
//! arguments to dump your own: `cargo run -p interop --example reference_dump -- '[1 2]'`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let defaults = [
        "(+ 1 2)",
        "[100 200 300]",
        "[AAPL MSFT]",
        "'AAPL",
        "\"text\"",
        "1.5",
        "[1.5 2.0]",
        "09:30:00",
        "2024.01.15",
        "2024.01.15D09:30:00.123456789",
        "1D02:03:04.000000005",
        "(as 'guid \"01234567-89ab-cdef-0123-456789abcdef\")",
        "0Nh",
        "0Ni",
        "0Nl",
        "0Nf",
        "0Ne",
        "0Nd",
        "0Nt",
        "0Nn",
        "0Np",
        "0Ng",
        "'",
        "\"\"",
        "true",
        "(list 1 'a \"s\")",
        "{a: 1 b: 2}",
        "(table [sym price qty time] (list [AAPL MSFT AAPL] [150.0 300.0 151.0] [100 50 200] [09:30:00 09:31:00 09:32:00]))",
        "(invalid_query",
        "(+ 1 'a)",
        "undefined_name",
    ];
    let exprs: Vec<String> = if args.is_empty() {
        defaults.iter().map(|s| s.to_string()).collect()
    } else {
        args
    };
    for e in &exprs {
        println!("== {e}");
        match interop::core_eval_fmt(e) {
            Ok(text) => println!("printed:\n{text}"),
            Err(err) => println!("{err}"),
        }
        match interop::core_ser(e) {
            Ok(frame) => println!("ser: {}", interop::hex(&frame)),
            Err(err) => println!("ser failed: {err}"),
        }
    }
}
