//! The send side's sans-IO bookkeeping ([`FrameWriter`]): a frame written through
//! a peer that takes random partial amounts (including `WouldBlock` and
//! `Interrupted` steps that take nothing) must arrive as exactly the bytes
//! `codec::encode_frame` (or `encode_frame_compressed`) produces, whatever the
//! split between header, scratch and borrowed slices.

use proptest::prelude::*;
use raywire::codec::{self, Compression, MsgType};
use raywire::net::FrameWriter;
use raywire::{RayObj, Symbol};
use std::io::{ErrorKind, IoSlice, Write};

/// What the peer does on one write call.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Takes at most this many bytes (at least 1).
    Take(usize),
    /// Takes nothing: `WouldBlock`.
    Block,
    /// Takes nothing: `Interrupted`.
    Interrupt,
}

/// A socket that accepts scripted partial amounts and records what it got.
struct Peer {
    script: Vec<Step>,
    at: usize,
    got: Vec<u8>,
    calls: usize,
}

impl Peer {
    fn new(script: Vec<Step>) -> Peer {
        Peer {
            script,
            at: 0,
            got: Vec::new(),
            calls: 0,
        }
    }

    fn next(&mut self) -> Step {
        let s = self.script[self.at % self.script.len()];
        self.at += 1;
        self.calls += 1;
        s
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        let mut room = match self.next() {
            Step::Take(n) => n,
            Step::Block => return Err(ErrorKind::WouldBlock.into()),
            Step::Interrupt => return Err(ErrorKind::Interrupted.into()),
        };
        let mut n = 0;
        for b in bufs {
            let k = b.len().min(room);
            self.got.extend_from_slice(&b[..k]);
            n += k;
            room -= k;
            if room == 0 {
                break;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::Block),
        1 => Just(Step::Interrupt),
        3 => (1usize..17).prop_map(Step::Take),
        3 => (17usize..2_000).prop_map(Step::Take),
        1 => (2_000usize..200_000).prop_map(Step::Take),
    ]
}

/// Objects whose gathered payload mixes scratch parts (heads, symbols, short
/// vectors) with borrowed ones (vectors of more than 512 bytes).
fn obj() -> impl Strategy<Value = RayObj> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(RayObj::from),
        "[a-z]{0,12}".prop_map(|s| RayObj::string(&s)),
        "[a-z]{1,6}".prop_map(|s| RayObj::symbol(&s)),
        prop::collection::vec(any::<i64>(), 0..200).prop_map(RayObj::from),
        prop::collection::vec(any::<f64>(), 0..200).prop_map(RayObj::from),
        prop::collection::vec(any::<i32>(), 0..400).prop_map(RayObj::from),
        prop::collection::vec("[a-z]{1,5}", 0..30)
            .prop_map(|v| { RayObj::from(v.into_iter().map(Symbol).collect::<Vec<_>>()) }),
        Just(RayObj::Null),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(RayObj::list)
    })
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        3 => Just(Compression::None),
        1 => (0usize..3_000).prop_map(|threshold| Compression::Core { threshold }),
        1 => (0usize..3_000).prop_map(|threshold| Compression::Lz4 { threshold }),
    ]
}

fn expected(obj: &RayObj, msgtype: MsgType, c: Compression) -> Vec<u8> {
    let mut want = Vec::new();
    match c {
        Compression::None => codec::encode_frame(obj, msgtype, &mut want),
        c => codec::encode_frame_compressed(obj, msgtype, c, &mut want),
    }
    want
}

/// Writes `w` to `peer` until done, checking the bookkeeping after every call.
fn drive(w: &mut FrameWriter<'_>, peer: &mut Peer) -> Result<(), TestCaseError> {
    let bound = (w.len() + 1) * (peer.script.len() + 1) + 10;
    let mut calls = 0;
    while !w.is_done() {
        calls += 1;
        prop_assert!(calls <= bound, "no progress after {calls} writes");
        let rest: usize = w.slices().iter().map(|s| s.len()).sum();
        prop_assert!(rest > 0, "unfinished but nothing left to send");
        prop_assert!(rest <= w.len() - w.sent());
        let before = w.sent();
        match w.write_to(peer) {
            Ok(n) => prop_assert_eq!(w.sent(), before + n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                prop_assert_eq!(w.sent(), before, "a failed write moved the cursor");
            }
            Err(e) => return Err(TestCaseError::fail(format!("write: {e}"))),
        }
        prop_assert_eq!(peer.got.len(), w.sent());
    }
    prop_assert!(w.slices().is_empty(), "done but slices remain");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("RING_WRITER_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
    ))]

    #[test]
    fn partial_writes_send_exactly_the_encoded_frame(
        obj in obj(),
        sync in any::<bool>(),
        c in compression(),
        mut script in prop::collection::vec(step(), 1..40),
    ) {
        if !script.iter().any(|s| matches!(s, Step::Take(_))) {
            script.push(Step::Take(1));
        }
        let msgtype = if sync { MsgType::Sync } else { MsgType::Async };
        let want = expected(&obj, msgtype, c);
        let mut w = FrameWriter::new(&obj, msgtype, c);
        prop_assert_eq!(w.len(), want.len());
        prop_assert_eq!(w.to_vec(), want.clone());
        let mut peer = Peer::new(script);
        drive(&mut w, &mut peer)?;
        prop_assert_eq!(peer.got, want);
    }

    /// The same, driving `slices` and `advance` by hand the way the reactor does
    /// (one vectored write, then advance by what it took).
    #[test]
    fn slices_and_advance_by_hand(obj in obj(), takes in prop::collection::vec(0usize..5_000, 1..30)) {
        let want = expected(&obj, MsgType::Async, Compression::None);
        let mut w = FrameWriter::new(&obj, MsgType::Async, Compression::None);
        let mut got = Vec::new();
        for take in takes.iter().cycle().take(want.len() * 2 + 10) {
            if w.is_done() {
                break;
            }
            let mut room = (*take).max(1);
            let mut n = 0;
            for s in w.slices() {
                let k = s.len().min(room);
                got.extend_from_slice(&s[..k]);
                n += k;
                room -= k;
                if room == 0 {
                    break;
                }
            }
            w.advance(n);
        }
        prop_assert!(w.is_done());
        prop_assert_eq!(got, want);
    }
}

/// More borrowed slices than one `writev` takes (1024): the rest must follow in
/// later writes, in order.
#[test]
fn more_slices_than_one_writev_takes() {
    let cols: Vec<RayObj> = (0..1500i64).map(|i| RayObj::from(vec![i; 80])).collect();
    let obj = RayObj::list(cols);
    let want = expected(&obj, MsgType::Async, Compression::None);
    let mut w = FrameWriter::new(&obj, MsgType::Async, Compression::None);
    assert!(w.slices().len() <= 1024);
    let mut peer = Peer::new(vec![Step::Take(usize::MAX), Step::Block, Step::Take(333)]);
    drive(&mut w, &mut peer).unwrap();
    assert_eq!(peer.got, want);
}
