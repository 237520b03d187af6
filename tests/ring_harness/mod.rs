//! A plain model of the receive ring, shared by `tests/ring_model.rs` and the
//! `ring` fuzz target (which includes this file by path).
//!
//! The model is a byte string of frames (each a valid header and a payload of
//! recognisable bytes), how much of it was handed to the [`FrameReader`], and the
//! frames a test holds, each with the index of the frame it must equal. After
//! every operation [`Model::check`] compares the reader with it: every held frame
//! still holds its own bytes, frames come out in order, complete and aligned,
//! `buffered()` and `declared()` are exact, and the reader's invariants hold.
#![allow(dead_code)] // each includer uses a different part

use raywire::codec::{FrameHeader, HEADER_LEN, Limits, MsgType};
use raywire::net::ring::{FRAME_ALIGN, FrameReader, RingError, RxFrame};
use std::ops::Range;
use std::thread::JoinHandle;

/// One step against the reader.
#[derive(Debug, Clone)]
pub enum Op {
    /// Append a frame with this many payload bytes to the peer's stream.
    Frame(usize),
    /// `read_from` a source that gives at most this many bytes per read.
    Read(usize),
    /// `read_buf`, fill up to `take` bytes, try to commit more than was offered
    /// (by `1 + extra`), then commit what was written.
    ReadOverCommit {
        /// Bytes to write at most.
        take: usize,
        /// How far past the offer the wrong commit goes, minus one.
        extra: usize,
    },
    /// `commit(n)` with no `read_buf` outstanding (`n > 0` must be refused).
    StrayCommit(usize),
    /// Take every complete frame and hold it.
    Take,
    /// Drop the held frame at this index (modulo the number held).
    Release(usize),
    /// Drop it on another thread, joined at the end of the run.
    ReleaseElsewhere(usize),
    /// Drop the oldest held frames until at most this many are left.
    KeepNewest(usize),
}

/// A source of at most `max` bytes per read.
struct Limited<'a>(&'a [u8], usize);

impl std::io::Read for Limited<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// The reader and the model it must agree with.
pub struct Model {
    /// The reader under test.
    pub reader: FrameReader,
    wire: Vec<u8>,
    frames: Vec<Range<usize>>,
    fed: usize,
    delivered: usize,
    /// Held frames with the index of the frame each must equal, oldest first.
    pub held: Vec<(usize, RxFrame)>,
    threads: Vec<JoinHandle<()>>,
}

/// The byte at `j` of frame `i`'s payload: differs between neighbouring frames
/// and along a frame, so a frame overwritten by another or shifted is noticed.
fn pattern(i: usize, j: usize) -> u8 {
    (i.wrapping_mul(131) ^ j.wrapping_mul(7) ^ (j >> 8)) as u8
}

impl Model {
    /// A reader with a mapping of `capacity` bytes and an empty stream.
    pub fn new(capacity: usize) -> Model {
        Model {
            reader: FrameReader::new(capacity, Limits::default()).expect("mapping"),
            wire: Vec::new(),
            frames: Vec::new(),
            fed: 0,
            delivered: 0,
            held: Vec::new(),
            threads: Vec::new(),
        }
    }

    /// The offset of ring frame `f` in the mapping.
    pub fn offset(&self, f: &RxFrame) -> usize {
        f.as_bytes().as_ptr() as usize - self.reader.region().start
    }

    /// Appends a frame of `payload` bytes to the stream; returns its index.
    pub fn push_frame(&mut self, payload: usize) -> usize {
        let i = self.frames.len();
        let start = self.wire.len();
        self.wire
            .extend_from_slice(&FrameHeader::new(MsgType::Async, payload as u64).to_bytes());
        self.wire.extend((0..payload).map(|j| pattern(i, j)));
        self.frames.push(start..self.wire.len());
        i
    }

    /// Bytes of the stream not yet handed to the reader.
    pub fn unread(&self) -> usize {
        self.wire.len() - self.fed
    }

    /// Applies one operation and checks the reader against the model.
    pub fn apply(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Frame(n) => {
                self.push_frame(n);
            }
            Op::Read(max) => {
                let mut src = Limited(&self.wire[self.fed..], max.max(1));
                let n = self
                    .reader
                    .read_from(&mut src)
                    .map_err(|e| format!("read_from: {e}"))?;
                self.fed += n;
            }
            Op::ReadOverCommit { take, extra } => {
                let buf = self
                    .reader
                    .read_buf()
                    .map_err(|e| format!("read_buf: {e}"))?;
                let offered = buf.len();
                if offered == 0 {
                    return Err("read_buf handed out an empty buffer".into());
                }
                let k = take.min(offered).min(self.wire.len() - self.fed);
                buf[..k].copy_from_slice(&self.wire[self.fed..self.fed + k]);
                let wrong = offered + 1 + extra;
                match self.reader.commit(wrong) {
                    Err(RingError::OverCommit {
                        committed,
                        offered: o,
                    }) if committed == wrong && o == offered => {}
                    other => return Err(format!("commit({wrong}) of {offered}: {other:?}")),
                }
                self.check()?;
                self.reader
                    .commit(k)
                    .map_err(|e| format!("commit({k}) after a refused one: {e}"))?;
                self.fed += k;
            }
            Op::StrayCommit(n) => match self.reader.commit(n) {
                Ok(()) if n == 0 => {}
                Err(RingError::OverCommit { offered: 0, .. }) if n > 0 => {}
                other => return Err(format!("stray commit({n}): {other:?}")),
            },
            Op::Take => self.take()?,
            Op::Release(i) => {
                if !self.held.is_empty() {
                    let k = i % self.held.len();
                    self.held.remove(k);
                }
            }
            Op::ReleaseElsewhere(i) => {
                if !self.held.is_empty() {
                    let k = i % self.held.len();
                    let (_, f) = self.held.remove(k);
                    self.threads.push(std::thread::spawn(move || drop(f)));
                }
            }
            Op::KeepNewest(n) => {
                let drop_n = self.held.len().saturating_sub(n);
                self.held.drain(..drop_n);
            }
        }
        self.check()
    }

    /// Takes every complete frame, checking each is the next one of the stream.
    pub fn take(&mut self) -> Result<(), String> {
        while let Some(f) = self.reader.next_frame() {
            let i = self.delivered;
            let want = self
                .frames
                .get(i)
                .ok_or_else(|| format!("frame {i} delivered but never sent"))?;
            if want.end > self.fed {
                return Err(format!("frame {i} delivered before its last byte"));
            }
            if f.as_bytes() != &self.wire[want.clone()] {
                return Err(format!("frame {i} delivered with other bytes"));
            }
            if f.header().size as usize != want.len() - HEADER_LEN {
                return Err(format!("frame {i}: header {:?}", f.header()));
            }
            self.delivered += 1;
            self.held.push((i, f));
        }
        let complete = self.frames.iter().take_while(|r| r.end <= self.fed).count();
        if self.delivered != complete {
            return Err(format!(
                "{} frames delivered, {complete} complete",
                self.delivered
            ));
        }
        Ok(())
    }

    /// Compares the reader with the model.
    pub fn check(&self) -> Result<(), String> {
        self.reader.check_invariants()?;
        for (i, f) in &self.held {
            let b = f.as_bytes();
            if b != &self.wire[self.frames[*i].clone()] {
                return Err(format!("held frame {i} was overwritten"));
            }
            if b.as_ptr() as usize % 8 != FRAME_ALIGN {
                return Err(format!("frame {i} starts at {:p}", b.as_ptr()));
            }
            if f.in_ring() != self.reader.contains(b.as_ptr()) {
                return Err(format!("frame {i}: in_ring disagrees with contains"));
            }
        }
        // The frame at the write head: the first one not wholly fed.
        let head = self.frames.iter().find(|r| r.end > self.fed);
        let start = head.map_or(self.fed, |r| r.start.min(self.fed));
        let got = self.fed - start;
        if self.reader.buffered() != got {
            return Err(format!(
                "buffered() {} but {got} bytes of a partial frame were fed",
                self.reader.buffered()
            ));
        }
        let declared = head.filter(|_| got >= HEADER_LEN).map(|r| r.len() as u64);
        if self.reader.declared() != declared {
            return Err(format!(
                "declared() {:?}, the header says {declared:?}",
                self.reader.declared()
            ));
        }
        Ok(())
    }

    /// Feeds everything left, takes every frame and checks each, releasing as it
    /// goes; then joins the threads that released frames.
    pub fn finish(mut self) -> Result<(), String> {
        for _ in 0..1_000_000 {
            if self.unread() == 0 {
                break;
            }
            self.apply(&Op::Read(usize::MAX))?;
            self.take()?;
            self.held.clear();
        }
        self.take()?;
        if self.delivered != self.frames.len() {
            return Err(format!(
                "{} of {} frames delivered at the end",
                self.delivered,
                self.frames.len()
            ));
        }
        self.check()?;
        for t in self.threads.drain(..) {
            t.join()
                .map_err(|_| "a releasing thread panicked".to_string())?;
        }
        Ok(())
    }
}
