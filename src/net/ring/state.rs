//! The ring's bookkeeping: a state machine over offsets, with no memory and no
//! `unsafe`. [`super::FrameReader`] asks it where each byte goes and performs the
//! copies it returns; everything the reader's `unsafe` relies on is an invariant
//! stated and checked here ([`RingState::check_invariants`]).
//!
//! # Layout
//!
//! Offsets run over `[FRAME_ALIGN, end)` of the mapping, with `end = cap - 2`
//! (≡ [`FRAME_ALIGN`] mod 8, so rounding a frame's end up to the next frame start
//! never leaves the mapping). Not wrapped (`high == 0`):
//!
//! ```text
//! FRAME_ALIGN   live frames (FIFO)     cur      filled                end
//! |  free  | f0 | f1 | ... | fk |      | partial |  free: the window   |
//! ```
//!
//! Wrapped (`high > 0`): the `high` oldest live frames lie above the write head,
//! the newer ones below it, and the window ends at the oldest live frame:
//!
//! ```text
//! FRAME_ALIGN          cur      filled     live[0]             end
//! | g0 | ... | gm |    | partial | window | f0 | ... | fk |  free |
//! ```
//!
//! Whether the ring is wrapped is the explicit count `high`, never inferred from
//! positions: when the wrapped-over region fills up exactly to `live[0].start`,
//! `cur == live[0].start` and the window is empty rather than the whole rest of
//! the mapping.
//!
//! # Invariants
//!
//! 1. `FRAME_ALIGN <= cur <= filled <= limit() <= end`, `cur` and `end` are
//!    ≡ [`FRAME_ALIGN`] mod 8; `limit()` is `live[0].start` when wrapped, else `end`.
//! 2. Every live span starts ≡ [`FRAME_ALIGN`] mod 8, is at least
//!    [`HEADER_LEN`] long and ends at or before `end`.
//! 3. Live spans are disjoint and disjoint from `[cur, limit())`: the low spans
//!    (`live[high..]`) ascend and end at or before `cur`; the high spans
//!    (`live[..high]`) ascend and start at or after `filled` (so at or after
//!    `limit()`). `high <= live.len()`.
//! 4. `[cur, filled)` is the received prefix of the frame at `cur`: when its header
//!    is in (`filled - cur >= HEADER_LEN`), `pending` is that frame's total length
//!    and exceeds `filled - cur`; otherwise `pending` is `None`. (Relaxed once
//!    [`RingState::fail`] was called: the stream then has no frame boundary.)
//! 5. Away from the mapping (`side` is `Head` or `Big`), `filled == cur` and
//!    `pending` is `None`: the frame at the write head lives in its own buffer.
//!    `Head { got }` has `got < HEADER_LEN`, `Big { len, filled }` has
//!    `filled < len`.
//! 6. An outstanding ring offer is `[filled, filled + len)` with `len >= 1` and
//!    `filled + len <= limit()`; a side offer is the unfilled rest of the side
//!    buffer. A commit may not exceed it.
//!
//! Everything the reader writes (reads into the window, the moves [`RingState::cut`]
//! and [`RingState::place`] return) lies in `[cur, limit())`, so by (3) never in a
//! live frame.

use super::{FRAME_ALIGN, HEADER_LEN};
use std::collections::VecDeque;
use std::ops::Range;

/// Room below which the reader stops reading into the mapping at the write head
/// when the frame's size is not known yet.
pub(super) const MIN_WINDOW: usize = 4096;

/// Largest partial frame moved back to the start when nothing is alive (a
/// larger one stays in place while it fits).
pub(super) const COMPACT_MAX: usize = 64 << 10;

/// Rounds `pos` up to the next offset ≡ [`FRAME_ALIGN`] mod 8.
pub(super) fn align_up(pos: usize) -> usize {
    pos + (FRAME_ALIGN + 8 - pos % 8) % 8
}

/// The bytes of one frame handed out of the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    /// First byte (the header).
    pub(super) start: usize,
    /// One past the last byte.
    pub(super) end: usize,
}

/// Where the frame at the write head is being received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// In the mapping, at `[cur, filled)`.
    Ring,
    /// Its header, outside the mapping (which had no room): `got` bytes of it.
    Head {
        /// Header bytes received.
        got: usize,
    },
    /// In a buffer of its own of `len` bytes, `filled` of them received.
    Big {
        /// The frame's total length (header and payload).
        len: usize,
        /// Bytes received.
        filled: usize,
    },
}

/// What [`RingState::offer`] hands out for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offer {
    /// `[at, at + len)` of the mapping.
    Ring {
        /// Offset in the mapping (`filled`).
        at: usize,
        /// Length.
        len: usize,
    },
    /// `[at, at + len)` of the side buffer ([`Side::Head`] or [`Side::Big`]).
    Side {
        /// Offset in the side buffer.
        at: usize,
        /// Length.
        len: usize,
    },
}

impl Offer {
    fn len(self) -> usize {
        match self {
            Offer::Ring { len, .. } | Offer::Side { len, .. } => len,
        }
    }
}

/// A copy inside the mapping the reader must perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Move {
    /// Source offset.
    pub(super) src: usize,
    /// Destination offset.
    pub(super) dst: usize,
    /// Bytes.
    pub(super) len: usize,
}

/// The outcome of [`RingState::place`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Placement {
    /// The next read goes into the mapping, after the reader performs the move
    /// (compaction to the start, or a wrap) if there is one.
    Ring(Option<Move>),
    /// The next read goes into the side buffer already set up.
    Side,
    /// The frame at the write head must leave the mapping: the reader copies
    /// `prefix` into a buffer of its own (the header buffer when `pending` is
    /// `None`, else one of `pending` bytes), then calls [`RingState::move_aside`].
    Overflow {
        /// The received bytes of the frame, in the mapping.
        prefix: Range<usize>,
    },
}

/// The outcome of [`RingState::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Committed {
    /// Nothing to do.
    Nothing,
    /// Bytes landed in the mapping and complete at least one frame: the reader
    /// parses the headers in [`RingState::partial`] and calls [`RingState::cut`].
    Ring,
    /// The header in the side buffer is complete: the reader parses it and calls
    /// [`RingState::head_done`].
    HeadDone,
    /// The frame in its own buffer is complete (the state is back in the mapping).
    BigDone,
}

/// A commit larger than the outstanding offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OverCommit {
    /// Bytes the caller claimed.
    pub(super) committed: usize,
    /// Bytes the last offer handed out.
    pub(super) offered: usize,
}

/// The ring's bookkeeping (see the module docs for layout and invariants).
#[derive(Debug)]
pub(super) struct RingState {
    end: usize,
    live: VecDeque<Span>,
    /// How many of the oldest live spans lie above the write head; nonzero exactly
    /// when the ring is wrapped.
    high: usize,
    cur: usize,
    filled: usize,
    pending: Option<usize>,
    side: Side,
    /// Length of the outstanding offer (0: none); where it starts follows from
    /// `side` (invariant 6).
    offered: usize,
    failed: bool,
}

impl RingState {
    /// The bookkeeping for a mapping of `cap` bytes (a multiple of 8 larger than
    /// `MIN_WINDOW`).
    pub(super) fn new(cap: usize) -> RingState {
        debug_assert!(cap.is_multiple_of(8) && cap > MIN_WINDOW + 8);
        RingState {
            end: cap - 8 + FRAME_ALIGN,
            live: VecDeque::new(),
            high: 0,
            cur: FRAME_ALIGN,
            filled: FRAME_ALIGN,
            pending: None,
            side: Side::Ring,
            offered: 0,
            failed: false,
        }
    }

    /// Where the frame at the write head is being received.
    pub(super) fn side(&self) -> Side {
        self.side
    }

    /// The received prefix of the frame at the write head, in the mapping.
    pub(super) fn partial(&self) -> Range<usize> {
        self.cur..self.filled
    }

    /// Total length of the frame at the write head, once its header is in.
    pub(super) fn declared(&self) -> Option<usize> {
        match self.side {
            Side::Ring => self.pending,
            Side::Head { .. } => None,
            Side::Big { len, .. } => Some(len),
        }
    }

    /// Bytes received that are not part of a complete frame.
    pub(super) fn buffered(&self) -> usize {
        match self.side {
            Side::Ring => self.filled - self.cur,
            Side::Head { got } => got,
            Side::Big { filled, .. } => filled,
        }
    }

    /// Number of frames handed out of the mapping and not yet reclaimed.
    pub(super) fn live_len(&self) -> usize {
        self.live.len()
    }

    /// The `k` newest live spans, oldest first.
    pub(super) fn newest(&self, k: usize) -> impl Iterator<Item = Span> + '_ {
        self.live.range(self.live.len() - k..).copied()
    }

    /// Marks the stream broken (an invalid header or a failed allocation): the
    /// reader stops, so invariant (4) no longer binds.
    pub(super) fn fail(&mut self) {
        self.failed = true;
        self.offered = 0;
    }

    /// The end of the window: the oldest live frame when wrapped, else `end`.
    fn limit(&self) -> usize {
        match self.live.front() {
            Some(l) if self.high > 0 => l.start,
            _ => self.end,
        }
    }

    /// Forgets the oldest live frame, which its holder released.
    pub(super) fn release_oldest(&mut self) {
        if self.live.pop_front().is_some() && self.high > 0 {
            self.high -= 1;
        }
        self.debug_check();
    }

    /// Moves the write head (with the received prefix) to `to`.
    fn move_partial(&mut self, to: usize) -> Option<Move> {
        let len = self.filled - self.cur;
        let mv = (to != self.cur && len > 0).then_some(Move {
            src: self.cur,
            dst: to,
            len,
        });
        self.cur = to;
        self.filled = to + len;
        mv
    }

    /// Decides where the next read goes: in place, at the start after a
    /// compaction or a wrap, or out of the mapping. Call after releasing what can
    /// be released.
    pub(super) fn place(&mut self) -> Placement {
        self.offered = 0;
        if self.side != Side::Ring {
            return Placement::Side;
        }
        let need = self.pending.unwrap_or(MIN_WINDOW);
        let fits_from =
            |start: usize, limit: usize| start.checked_add(need).is_some_and(|e| e <= limit);
        let placement = if self.live.is_empty() {
            // Nothing alive: the partial frame goes back to the start, so a
            // request/response loop keeps reusing the same cache-hot pages. A
            // large one that still fits where it is stays: moving it would copy
            // what may be most of the mapping.
            self.high = 0;
            if self.filled - self.cur > COMPACT_MAX && fits_from(self.cur, self.end) {
                Placement::Ring(None)
            } else if fits_from(FRAME_ALIGN, self.end) {
                Placement::Ring(self.move_partial(FRAME_ALIGN))
            } else {
                Placement::Overflow {
                    prefix: self.partial(),
                }
            }
        } else if fits_from(self.cur, self.limit()) {
            Placement::Ring(None)
        } else if self.high == 0 && fits_from(FRAME_ALIGN, self.live[0].start) {
            // Wrap: everything alive now lies above the write head.
            self.high = self.live.len();
            Placement::Ring(self.move_partial(FRAME_ALIGN))
        } else {
            Placement::Overflow {
                prefix: self.partial(),
            }
        };
        self.debug_check();
        placement
    }

    /// After [`Placement::Overflow`], once the reader copied the prefix out: the
    /// frame at the write head continues in its side buffer.
    pub(super) fn move_aside(&mut self) {
        debug_assert_eq!(self.side, Side::Ring);
        let got = self.filled - self.cur;
        self.side = match self.pending.take() {
            Some(len) => Side::Big { len, filled: got },
            None => Side::Head { got },
        };
        self.filled = self.cur;
        self.debug_check();
    }

    /// The region the next read may fill. Call after [`RingState::place`]; never
    /// empty.
    pub(super) fn offer(&mut self) -> Offer {
        let offer = match self.side {
            Side::Ring => {
                let limit = self.limit();
                // Up to the end of the frame being received, plus two thirds of the
                // rest. Every frame after the first that a read completes moves
                // forward by up to 7 bytes to start aligned, and so does the partial
                // frame after them. Those frames are at least 16 bytes, so k cut
                // frames and a tail in B bytes past the first frame's end grow by at
                // most 7k <= 7 + 7B/16; with B <= 2(rest - 8)/3 the grown bytes,
                // B + 7 + 7B/16 <= 7 + 23(rest - 8)/24, stay within `rest`.
                let base = self
                    .pending
                    .map_or(0, |t| (self.cur + t).min(limit).saturating_sub(self.filled));
                let rest = limit - self.filled - base;
                let len = (base + rest.saturating_sub(8) * 2 / 3)
                    .max(1)
                    .min(limit - self.filled);
                Offer::Ring {
                    at: self.filled,
                    len,
                }
            }
            Side::Head { got } => Offer::Side {
                at: got,
                len: HEADER_LEN - got,
            },
            Side::Big { len, filled } => Offer::Side {
                at: filled,
                len: len - filled,
            },
        };
        self.offered = offer.len();
        self.debug_check();
        offer
    }

    /// Records that `n` bytes of the outstanding offer were filled. More than it
    /// handed out is refused and changes nothing.
    pub(super) fn commit(&mut self, n: usize) -> Result<Committed, OverCommit> {
        let offered = self.offered;
        if n > offered {
            return Err(OverCommit {
                committed: n,
                offered,
            });
        }
        self.offered = 0;
        if n == 0 {
            return Ok(Committed::Nothing);
        }
        let out = match &mut self.side {
            Side::Ring => {
                self.filled += n;
                let complete = self.pending.unwrap_or(HEADER_LEN);
                if self.filled - self.cur >= complete {
                    Committed::Ring
                } else {
                    Committed::Nothing
                }
            }
            Side::Head { got } => {
                *got += n;
                if *got == HEADER_LEN {
                    Committed::HeadDone
                } else {
                    Committed::Nothing
                }
            }
            Side::Big { len, filled } => {
                *filled += n;
                if *filled == *len {
                    self.side = Side::Ring;
                    Committed::BigDone
                } else {
                    Committed::Nothing
                }
            }
        };
        // After `Ring` and `HeadDone` invariant (4) or (5) waits for the
        // reader's `cut` or `head_done`, which check it.
        if matches!(out, Committed::Nothing | Committed::BigDone) {
            self.debug_check();
        }
        Ok(out)
    }

    /// After [`Committed::HeadDone`]: the header announced a frame of `total`
    /// bytes, which the reader put in a buffer of its own. Returns whether that
    /// frame is already complete (a header with an empty payload).
    pub(super) fn head_done(&mut self, total: usize) -> bool {
        debug_assert_eq!(self.side, Side::Head { got: HEADER_LEN });
        let complete = total <= HEADER_LEN;
        self.side = if complete {
            Side::Ring
        } else {
            Side::Big {
                len: total,
                filled: HEADER_LEN,
            }
        };
        self.debug_check();
        complete
    }

    /// Cuts complete frames of the given lengths off the front of the partial
    /// region, each placed at the next aligned start, and records `pending` (the
    /// total of the frame left at the write head, if its header is in). Appends to
    /// `moves` the copies that place them, to be performed last to first (every
    /// move goes forward, so the later sources are moved before the earlier
    /// frames land on them). The new frames are [`RingState::newest`]`(count)`.
    pub(super) fn cut(
        &mut self,
        lens: impl IntoIterator<Item = usize>,
        pending: Option<usize>,
        moves: &mut Vec<Move>,
    ) {
        debug_assert_eq!(self.side, Side::Ring);
        let mut src = self.cur;
        let mut dst = self.cur;
        for len in lens {
            debug_assert!(len >= HEADER_LEN && src + len <= self.filled);
            if src != dst {
                moves.push(Move { src, dst, len });
            }
            self.live.push_back(Span {
                start: dst,
                end: dst + len,
            });
            src += len;
            dst = align_up(dst + len);
        }
        let tail = self.filled - src;
        if src != dst && tail > 0 {
            moves.push(Move {
                src,
                dst,
                len: tail,
            });
        }
        self.cur = dst;
        self.filled = dst + tail;
        self.pending = pending;
        self.debug_check();
    }

    /// The O(1) part of the invariants, after every transition in debug builds;
    /// the walk over all spans is left to [`RingState::check_invariants`].
    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if let Err(e) = self.check_local() {
            panic!("ring invariant broken: {e}\n{self:?}");
        }
    }

    /// Checks invariants (1)-(6) of the module docs.
    pub(super) fn check_invariants(&self) -> Result<(), String> {
        self.check_local()?;
        let aligned = |p: usize| p % 8 == FRAME_ALIGN;
        for s in &self.live {
            if !aligned(s.start) || s.end < s.start + HEADER_LEN || s.end > self.end {
                return Err(format!("(2) span {s:?}"));
            }
        }
        for (i, (a, b)) in self.live.iter().zip(self.live.iter().skip(1)).enumerate() {
            // The pair straddling the wrap is ordered the other way round.
            if i + 1 != self.high && a.end > b.start {
                return Err(format!("(3) spans out of order: {a:?} {b:?}"));
            }
        }
        Ok(())
    }

    /// Invariants (1) and (3)-(6), with (3) checked at the spans nearest the
    /// write head.
    fn check_local(&self) -> Result<(), String> {
        let limit = self.limit();
        let aligned = |p: usize| p % 8 == FRAME_ALIGN;
        if !(FRAME_ALIGN <= self.cur
            && self.cur <= self.filled
            && self.filled <= limit
            && limit <= self.end)
        {
            return Err(format!(
                "(1) order: cur {} filled {} limit {limit} end {}",
                self.cur, self.filled, self.end
            ));
        }
        if !aligned(self.cur) || !aligned(self.end) {
            return Err(format!("(1) alignment: cur {} end {}", self.cur, self.end));
        }
        if self.high > self.live.len() {
            return Err(format!(
                "(3) high {} of {} live",
                self.high,
                self.live.len()
            ));
        }
        let newest_low = (self.live.len() > self.high).then(|| self.live[self.live.len() - 1]);
        if let Some(s) = newest_low.filter(|s| s.end > self.cur) {
            return Err(format!("(3) low span {s:?} past cur {}", self.cur));
        }
        if let Some(s) = (self.high > 0)
            .then(|| self.live[self.high - 1])
            .filter(|s| s.end > self.end)
        {
            return Err(format!("(3) high span {s:?} past the end"));
        }
        let got = self.filled - self.cur;
        match self.side {
            Side::Ring if !self.failed => {
                let ok = match self.pending {
                    Some(t) => got >= HEADER_LEN && t > got,
                    None => got < HEADER_LEN,
                };
                if !ok {
                    return Err(format!("(4) pending {:?} with {got} bytes", self.pending));
                }
            }
            Side::Ring => {}
            Side::Head { got: h } => {
                if got != 0 || self.pending.is_some() || h >= HEADER_LEN && !self.failed {
                    return Err(format!("(5) head {h} partial {got} {:?}", self.pending));
                }
            }
            Side::Big { len, filled } => {
                if got != 0 || self.pending.is_some() || filled >= len {
                    return Err(format!("(5) big {filled}/{len} partial {got}"));
                }
            }
        }
        if self.offered > 0 {
            let ok = match self.side {
                Side::Ring => self.filled + self.offered <= limit,
                Side::Head { got } => got + self.offered == HEADER_LEN,
                Side::Big { len, filled } => filled + self.offered == len,
            };
            if !ok {
                return Err(format!(
                    "(6) offer of {} for {:?}, filled {} limit {limit}",
                    self.offered, self.side, self.filled
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: usize = 64 << 10;

    /// Receives one frame of `len` bytes in place: in one commit if the offer
    /// allows, else its header first.
    fn feed(s: &mut RingState, len: usize) -> Span {
        let mut got = 0;
        while got < len {
            assert_eq!(s.place(), Placement::Ring(None));
            let Offer::Ring { len: room, .. } = s.offer() else {
                panic!("not in the ring: {s:?}")
            };
            let n = if got == 0 && room < len {
                HEADER_LEN
            } else {
                len - got
            };
            assert!(room >= n, "room {room} for {n}");
            assert_eq!(s.commit(n), Ok(Committed::Ring));
            got += n;
            let mut moves = Vec::new();
            if got == len {
                s.cut([len], None, &mut moves);
            } else {
                s.cut([], Some(len), &mut moves);
            }
            assert!(moves.is_empty());
            s.check_invariants().unwrap();
        }
        s.newest(1).next().unwrap()
    }

    #[test]
    fn wrapped_region_ending_at_the_oldest_frame_leaves_no_window() {
        let mut s = RingState::new(CAP);
        let a = feed(&mut s, 20_000);
        let b = feed(&mut s, 1000);
        assert_eq!((a.start, b.start), (6, 20_006));
        while s.end - s.cur >= 12_000 {
            feed(&mut s, 4000);
        }
        s.release_oldest();
        // The header of a frame that does not fit before the end...
        assert_eq!(s.place(), Placement::Ring(None));
        s.offer();
        assert_eq!(s.commit(HEADER_LEN), Ok(Committed::Ring));
        s.cut([], Some(20_000), &mut Vec::new());
        // ...wraps to the start: it fits exactly below `b`.
        let old = s.cur;
        assert_eq!(
            s.place(),
            Placement::Ring(Some(Move {
                src: old,
                dst: FRAME_ALIGN,
                len: HEADER_LEN
            }))
        );
        assert_eq!(
            s.offer(),
            Offer::Ring {
                at: FRAME_ALIGN + HEADER_LEN,
                len: 20_000 - HEADER_LEN
            }
        );
        assert_eq!(s.commit(20_000 - HEADER_LEN), Ok(Committed::Ring));
        s.cut([20_000], None, &mut Vec::new());
        assert_eq!(s.cur, b.start, "the wrapped region ends exactly at `b`");
        // The next frame may not be read over `b`: it leaves the mapping.
        assert_eq!(
            s.place(),
            Placement::Overflow {
                prefix: b.start..b.start
            }
        );
        s.move_aside();
        assert_eq!(s.offer(), Offer::Side { at: 0, len: 16 });
        s.check_invariants().unwrap();
    }

    #[test]
    fn a_frame_ending_at_the_end_of_the_mapping_leaves_the_head_inside_it() {
        let mut s = RingState::new(CAP);
        let keep = feed(&mut s, 100);
        while s.end - s.cur >= 12_000 {
            feed(&mut s, 4000);
        }
        let rest = s.end - s.cur;
        let last = feed(&mut s, rest);
        assert_eq!(last.end, CAP - 2);
        assert_eq!(s.cur, CAP - 2, "the head is at the end, not past it");
        assert_eq!(keep.start, FRAME_ALIGN);
        // `keep` is alive at the start: no wrap below it, the header goes aside.
        assert!(matches!(s.place(), Placement::Overflow { .. }));
    }

    #[test]
    fn over_commit_is_refused_and_changes_nothing() {
        let mut s = RingState::new(CAP);
        assert_eq!(s.commit(1).unwrap_err().offered, 0, "nothing offered yet");
        s.place();
        let Offer::Ring { len, .. } = s.offer() else {
            panic!("{s:?}")
        };
        let before = format!("{s:?}");
        assert_eq!(
            s.commit(len + 1),
            Err(OverCommit {
                committed: len + 1,
                offered: len
            })
        );
        assert_eq!(format!("{s:?}"), before);
        assert_eq!(s.commit(3), Ok(Committed::Nothing));
        assert_eq!(s.buffered(), 3);
        assert!(s.commit(1).is_err(), "an offer is used up by its commit");
    }

    #[test]
    fn shifted_frames_stay_below_the_limit() {
        // Worst case for the 7-byte shifts: 17-byte frames (each moved 7 further
        // than the previous one), as many as the whole window holds.
        let mut s = RingState::new(CAP);
        let mut moves = Vec::new();
        for _ in 0..200 {
            s.place();
            let Offer::Ring { len, .. } = s.offer() else {
                break;
            };
            s.commit(len).unwrap();
            let got = s.filled - s.cur;
            let k = got / 17;
            let pending = (got % 17 >= HEADER_LEN).then_some(17);
            moves.clear();
            s.cut(std::iter::repeat_n(17, k), pending, &mut moves);
            s.check_invariants().unwrap();
            for _ in 0..k {
                s.release_oldest();
            }
        }
    }
}
