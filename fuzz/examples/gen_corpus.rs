//! Writes a seed corpus of valid frames for the `decode` fuzz target.
//!
//! `cargo run --example gen_corpus [DIR]` (DIR defaults to `corpus/decode`):
//! one file per sample object (atoms of every type, vectors of every type,
//! lists, dicts, tables, lambdas, builtins, errors), as uncompressed frames and,
//! for the larger ones, as core- and lz4-compressed frames too.

use raywire::codec::{self, Compression, MsgType};
use raywire::{
    Atom, Builtin, Date, Guid, Lambda, RayObj, RayVector, Symbol, Table, Time, Timespan, Timestamp,
    TypeCode,
};
use std::path::PathBuf;

fn syms(names: &[&str]) -> RayObj {
    RayVector::<Symbol>::from_vec(names.iter().map(|s| Symbol::from(*s)).collect()).into()
}

fn samples() -> Vec<(&'static str, RayObj)> {
    let mut s: Vec<(&'static str, RayObj)> = vec![
        ("null", RayObj::Null),
        ("atom_bool", true.into()),
        ("atom_u8", 7u8.into()),
        ("atom_i16", (-3i16).into()),
        ("atom_i32", 123_456i32.into()),
        ("atom_i64", (-1i64 << 40).into()),
        ("atom_f32", 1.5f32.into()),
        ("atom_f64", std::f64::consts::PI.into()),
        ("atom_date", Date(8840).into()),
        ("atom_time", Time(3_600_000).into()),
        ("atom_timestamp", Timestamp(1_000_000_000).into()),
        ("atom_timespan", Timespan(-5).into()),
        ("atom_guid", Guid([0xab; 16]).into()),
        ("atom_sym", RayObj::symbol("AAPL")),
        ("atom_str", RayObj::string("hello")),
        ("atom_null_i64", Atom::null(TypeCode::I64).unwrap().into()),
        ("atom_null_f64", Atom::null(TypeCode::F64).unwrap().into()),
        ("error", RayObj::error("type")),
        (
            "builtin",
            RayObj::Builtin(Builtin {
                kind: TypeCode::Binary,
                name: "+".into(),
            }),
        ),
        ("vec_bool", vec![true, false, true].into()),
        ("vec_u8", vec![1u8, 2, 255].into()),
        ("vec_i16", vec![1i16, i16::MIN, 3].into()),
        ("vec_i32", vec![1i32, -2, 3].into()),
        ("vec_i64", vec![100i64, 200, 300].into()),
        ("vec_i64_null", vec![1i64, i64::MIN].into()),
        ("vec_f32", vec![0.5f32, -1.0].into()),
        ("vec_f64", vec![1.5f64, f64::NAN, -0.0].into()),
        ("vec_date", vec![Date(0), Date(-1)].into()),
        ("vec_time", vec![Time(0), Time(1000)].into()),
        (
            "vec_timestamp",
            vec![Timestamp(0), Timestamp(1 << 50)].into(),
        ),
        ("vec_timespan", vec![Timespan(1), Timespan(-1)].into()),
        ("vec_guid", vec![Guid([1; 16]), Guid::NULL].into()),
        ("vec_sym", syms(&["a", "bc", "", "déf"])),
        (
            "vec_str",
            vec![String::from("x"), String::new(), String::from("yz")].into(),
        ),
        ("vec_empty", Vec::<i64>::new().into()),
        (
            "list",
            RayObj::list(vec![
                1i64.into(),
                RayObj::symbol("s"),
                vec![1.0f64, 2.0].into(),
                RayObj::list(vec![RayObj::Null, RayObj::error("name")]),
            ]),
        ),
        (
            "dict",
            RayObj::dict(
                syms(&["a", "b"]),
                RayObj::list(vec![1i64.into(), RayObj::string("v")]),
            ),
        ),
        (
            "dict_vec",
            RayObj::dict(vec![1i32, 2].into(), vec![3.0f64, 4.0].into()),
        ),
        (
            "lambda",
            RayObj::Lambda(Box::new(Lambda {
                attrs: 0,
                params: syms(&["x", "y"]),
                body: RayObj::list(vec![RayObj::symbol("+"), RayObj::symbol("x")]),
                closure: None,
            })),
        ),
        (
            "lambda_closure",
            RayObj::Lambda(Box::new(Lambda {
                attrs: 1,
                params: syms(&["x"]),
                body: RayObj::string("x+k"),
                closure: Some(RayObj::dict(syms(&["k"]), RayObj::list(vec![5i64.into()]))),
            })),
        ),
    ];
    let table = Table::new(
        ["sym", "price", "qty", "time"],
        vec![
            syms(&["AAPL", "MSFT", "AAPL"]),
            vec![1.5f64, 2.5, 3.5].into(),
            vec![100i64, 50, 10].into(),
            vec![Time(1), Time(2), Time(3)].into(),
        ],
    )
    .expect("table");
    s.push(("table", table.clone().into()));
    s.push((
        "dict_table",
        RayObj::dict(syms(&["t"]), RayObj::list(vec![table.into()])),
    ));
    let rows = 300;
    let big = Table::new(
        ["sym", "qty"],
        vec![
            RayVector::<Symbol>::from_vec(
                (0..rows)
                    .map(|i| Symbol::from(["A", "B", "C"][i % 3]))
                    .collect(),
            )
            .into(),
            (0..rows as i64).collect::<Vec<_>>().into(),
        ],
    )
    .expect("table");
    s.push(("big_table", big.into()));
    s.push(("big_i64", (0..600i64).collect::<Vec<_>>().into()));
    s.push((
        "big_f64",
        (0..600)
            .map(|i| f64::from(i) * 0.25)
            .collect::<Vec<_>>()
            .into(),
    ));
    s
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("corpus/decode"), PathBuf::from);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    let mut n = 0;
    for (name, obj) in samples() {
        let mut frame = Vec::new();
        codec::encode_frame(&obj, MsgType::Sync, &mut frame);
        std::fs::write(dir.join(format!("{name}.frame")), &frame).expect("write");
        n += 1;
        for (tag, c) in [
            ("core", Compression::Core { threshold: 0 }),
            ("lz4", Compression::Lz4 { threshold: 0 }),
        ] {
            let mut packed = Vec::new();
            codec::encode_frame_compressed(&obj, MsgType::Sync, c, &mut packed);
            if packed != frame {
                std::fs::write(dir.join(format!("{name}.{tag}.frame")), &packed).expect("write");
                n += 1;
            }
        }
    }
    println!("wrote {n} seeds to {}", dir.display());
}
