//! The start-up check of a journal directory and iteration over its updates.

use super::error::JournalError;
use super::format::{self, HeaderCheck, MAGIC, PREAMBLE_LEN};
use crate::RayObj;
use crate::codec::{self, FLAG_COMPRESSED, FLAG_LZ4, FrameHeader, HEADER_LEN, Limits};
use crate::eval::{EvalError, Evaluator, Host};
use crate::obj::{Atom, Scalar};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Every this many records of a topic, the index notes where one starts.
const INDEX_EVERY: u64 = 256;
/// Read buffer of a scan: large sequential reads, few syscalls.
const READ_BUF: usize = 256 * 1024;

/// The name of the lock file a writer holds in its directory.
pub(crate) const LOCK_NAME: &str = "journal.lk";
/// The file that keeps the last sequence numbers of topics whose records were
/// all removed by retention.
pub(crate) const SEQ_FLOOR_NAME: &str = "journal.seq";

/// One journal file and the range of it that holds checked records.
#[derive(Debug, Clone)]
pub(crate) struct FileSpan {
    pub(crate) path: Arc<Path>,
    /// Where records start: after the preamble, or 0 for a file without one.
    pub(crate) start: u64,
    /// End of the last whole record.
    pub(crate) end: u64,
    /// The preamble's generation id (0 without a preamble).
    pub(crate) generation: i64,
}

/// Where one record starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) file: usize,
    pub(crate) offset: u64,
}

/// What is known about a journal: its files, the last sequence number of each
/// topic, and a sparse index from sequence numbers to positions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub(crate) files: Vec<FileSpan>,
    pub(crate) last_seq: HashMap<String, i64>,
    /// Per topic, ascending: (seq, position) for the first record of the topic
    /// in each file and every [`INDEX_EVERY`]th record.
    pub(crate) index: HashMap<String, Vec<(i64, Pos)>>,
    counts: HashMap<String, (usize, u64)>,
    /// Some record is not an `upd` record (a core-written journal): reading
    /// evaluates the journal from its start, as the core's replay does.
    pub(crate) foreign: bool,
}

impl Catalog {
    /// Notes an `upd` record of `topic` numbered `seq` at `pos`.
    pub(crate) fn note(&mut self, topic: &str, seq: i64, pos: Pos) {
        let last = self.last_seq.entry(topic.to_owned()).or_insert(seq);
        *last = (*last).max(seq);
        let (file, count) = self
            .counts
            .entry(topic.to_owned())
            .or_insert((usize::MAX, 0));
        if *file != pos.file || count.is_multiple_of(INDEX_EVERY) {
            self.index
                .entry(topic.to_owned())
                .or_default()
                .push((seq, pos));
        }
        *file = pos.file;
        *count += 1;
    }

    /// Forgets the first `n` files (removed by retention).
    pub(crate) fn drop_front(&mut self, n: usize) {
        self.files.drain(..n.min(self.files.len()));
        for marks in self.index.values_mut() {
            marks.retain(|(_, p)| p.file >= n);
            for (_, p) in marks.iter_mut() {
                p.file -= n;
            }
        }
        self.index.retain(|_, m| !m.is_empty());
        for (file, _) in self.counts.values_mut() {
            *file = file.wrapping_sub(n);
        }
    }

    /// Where reading must start to see every record with seq >= `from` of the
    /// topics `filter` accepts; `None` when no such record exists.
    fn start_for(&self, from: i64, filter: &mut dyn FnMut(&str) -> bool) -> Option<Pos> {
        if self.foreign {
            return self.files.first().map(|f| Pos {
                file: 0,
                offset: f.start,
            });
        }
        self.index
            .iter()
            .filter(|(t, _)| filter(t))
            .filter(|(t, _)| self.last_seq.get(*t).is_some_and(|&l| l >= from))
            .filter_map(|(_, marks)| {
                let i = marks.partition_point(|(s, _)| *s <= from);
                marks.get(i.saturating_sub(1)).map(|(_, p)| *p)
            })
            .min()
    }
}

/// Takes the journal's lock file, or says who holds it.
pub(crate) fn lock(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_NAME);
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io("open", &path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Locked { path }),
        Err(std::fs::TryLockError::Error(e)) => Err(JournalError::io("lock", &path, e)),
    }
}

/// Reads as many bytes as are there, up to `buf.len()`.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The journal files of `dir`, in journal order: by generation (the core's and
/// raywire's are creation times), then by name.
fn list(dir: &Path) -> Result<Vec<(PathBuf, Option<i64>, u64)>, JournalError> {
    let rd = std::fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| JournalError::io("list", dir, e))?;
        let path = ent.path();
        if path.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let md = ent
            .metadata()
            .map_err(|e| JournalError::io("stat", &path, e))?;
        if !md.is_file() {
            continue;
        }
        let mut head = [0u8; PREAMBLE_LEN];
        let mut f = File::open(&path).map_err(|e| JournalError::io("open", &path, e))?;
        let n = read_full(&mut f, &mut head).map_err(|e| JournalError::io("read", &path, e))?;
        let generation = format::parse_preamble(&head[..n]);
        // An empty file, or one whose preamble was cut short, was being
        // created: the newest.
        let order = match generation {
            Some(g) => g,
            None if n < PREAMBLE_LEN && MAGIC.starts_with(&head[..n]) => i64::MAX,
            None => 0,
        };
        out.push((order, path, generation, md.len()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(out.into_iter().map(|(_, p, g, l)| (p, g, l)).collect())
}

/// Whether the file holds only zero bytes from `at` on (what a crash leaves past
/// the end of a pre-extended file).
fn zeros_from(f: &mut File, path: &Path, at: u64) -> Result<bool, JournalError> {
    f.seek(SeekFrom::Start(at))
        .map_err(|e| JournalError::io("seek", path, e))?;
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = read_full(f, &mut buf).map_err(|e| JournalError::io("read", path, e))?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Checks every file of the journal in `dir` (the caller holds its lock): a
/// torn last record of the last file is cut (with a warning), anything else
/// broken is refused.
pub(crate) fn check_dir(dir: &Path) -> Result<Catalog, JournalError> {
    let files = list(dir)?;
    let mut cat = Catalog::default();
    read_seq_floor(dir, &mut cat)?;
    let mut foreign = ForeignEval::default();
    let n = files.len();
    for (i, (path, generation, len)) in files.into_iter().enumerate() {
        let last = i + 1 == n;
        let span = check_file(&path, generation, len, last, i, &mut cat, &mut foreign)?;
        cat.files.push(span);
    }
    Ok(cat)
}

fn read_seq_floor(dir: &Path, cat: &mut Catalog) -> Result<(), JournalError> {
    let path = dir.join(SEQ_FLOOR_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(JournalError::io("read", &path, e)),
    };
    for (no, line) in text.lines().enumerate() {
        let bad = || JournalError::Damaged {
            path: path.clone(),
            offset: no as u64,
            detail: format!("line {} is not `SEQ HEX-TOPIC`", no + 1),
        };
        let (seq, hex) = line.split_once(' ').ok_or_else(bad)?;
        let seq: i64 = seq.parse().map_err(|_| bad())?;
        let topic = unhex(hex).ok_or_else(bad)?;
        cat.last_seq.insert(topic, seq);
    }
    Ok(())
}

pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(h: &str) -> Option<String> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn check_file(
    path: &Path,
    generation: Option<i64>,
    len: u64,
    last: bool,
    file_no: usize,
    cat: &mut Catalog,
    foreign: &mut ForeignEval,
) -> Result<FileSpan, JournalError> {
    let mut f = File::options()
        .read(true)
        .write(last)
        .open(path)
        .map_err(|e| JournalError::io("open", path, e))?;
    let mut head = [0u8; PREAMBLE_LEN];
    let got = read_full(&mut f, &mut head).map_err(|e| JournalError::io("read", path, e))?;
    let head = &head[..got];
    let start = if generation.is_some() {
        PREAMBLE_LEN as u64
    } else if head.is_empty() {
        0
    } else if MAGIC.starts_with(head) {
        // A preamble cut short: the file was being created.
        if !last {
            return Err(damaged(
                path,
                0,
                "preamble cut short in a file that is not the last",
            ));
        }
        cut(&f, path, 0, len)?;
        return Ok(FileSpan {
            path: path.into(),
            start: 0,
            end: 0,
            generation: 0,
        });
    } else if matches!(format::check_header(head), HeaderCheck::Invalid(_)) {
        return Err(JournalError::NotAJournal {
            path: path.to_owned(),
            detail: format!(
                "it starts with {:02x?}, neither the preamble {:?} nor a record header",
                &head[..head.len().min(8)],
                String::from_utf8_lossy(&MAGIC[..7])
            ),
        });
    } else {
        0
    };
    let mut r = BufReader::with_capacity(READ_BUF, f);
    r.seek(SeekFrom::Start(start))
        .map_err(|e| JournalError::io("seek", path, e))?;
    let mut off = start;
    let mut body = Vec::new();
    let mut hdr = [0u8; HEADER_LEN];
    loop {
        let n = read_full(&mut r, &mut hdr).map_err(|e| JournalError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        let torn = match format::check_header(&hdr[..n]) {
            HeaderCheck::Valid(h) => off + HEADER_LEN as u64 + h.size > len,
            HeaderCheck::Partial => true,
            HeaderCheck::Invalid(e) => {
                let mut f = r.into_inner();
                // A zero header in the last file is where a mapped write was
                // interrupted (bodies are written before headers), or the
                // zeros reserved past the end of a mapped file.
                if last && (hdr.iter().all(|&b| b == 0) || zeros_from(&mut f, path, off)?) {
                    cut(&f, path, off, len)?;
                    break;
                }
                return Err(damaged(path, off, &format!("not a record header ({e})")));
            }
        };
        if torn {
            if !last {
                return Err(damaged(
                    path,
                    off,
                    "record cut short at the end of a file that is not the last",
                ));
            }
            cut(r.get_ref(), path, off, len)?;
            break;
        }
        let HeaderCheck::Valid(h) = format::check_header(&hdr) else {
            break;
        };
        body.resize(h.size as usize, 0);
        r.read_exact(&mut body)
            .map_err(|e| JournalError::io("read", path, e))?;
        let pos = Pos {
            file: file_no,
            offset: off,
        };
        let plain = inflate(&h, &body, path, off)?;
        match format::peek_upd(&plain) {
            Some(p) => cat.note(p.topic, p.seq, pos),
            None => {
                cat.foreign = true;
                for (topic, _) in foreign.run(&plain, path, off)? {
                    let seq = cat.last_seq.get(&topic).copied().unwrap_or(0) + 1;
                    cat.last_seq.insert(topic, seq);
                }
            }
        }
        off += HEADER_LEN as u64 + h.size;
    }
    Ok(FileSpan {
        path: path.into(),
        start,
        end: off,
        generation: generation.unwrap_or(0),
    })
}

fn damaged(path: &Path, offset: u64, detail: &str) -> JournalError {
    JournalError::Damaged {
        path: path.to_owned(),
        offset,
        detail: detail.to_owned(),
    }
}

/// Cuts a torn tail at `at`, saying so.
fn cut(f: &File, path: &Path, at: u64, len: u64) -> Result<(), JournalError> {
    tracing::warn!(
        file = %path.display(),
        offset = at,
        bytes = len - at,
        "journal: cutting a torn last record (an interrupted write); every record before it is kept"
    );
    f.set_len(at)
        .map_err(|e| JournalError::io("truncate", path, e))?;
    f.sync_all().map_err(|e| JournalError::io("fsync", path, e))
}

/// The uncompressed body of a record.
fn inflate<'a>(
    h: &FrameHeader,
    body: &'a [u8],
    path: &Path,
    off: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, JournalError> {
    if h.flags & (FLAG_COMPRESSED | FLAG_LZ4) == 0 {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    codec::inflate(h.flags, body, &record_limits()).map_err(|source| JournalError::Decode {
        path: path.to_owned(),
        offset: off,
        source,
    })
}

fn record_limits() -> Limits {
    Limits {
        max_frame: format::MAX_RECORD_PAYLOAD,
        ..Limits::default()
    }
}

/// Replays records that are not `upd` records (a core-written journal holds
/// the expressions clients sent) through raywire's evaluator, collecting the
/// `.mc.pub` calls they make.
#[derive(Default)]
struct ForeignEval {
    ev: Option<Evaluator>,
    host: Capture,
}

#[derive(Default)]
struct Capture(Mutex<Vec<(String, RayObj)>>);

impl Host for Capture {
    fn provides(&self, name: &str) -> bool {
        name == ".mc.pub"
    }
    fn call(&self, _name: &str, args: &[RayObj]) -> Result<RayObj, EvalError> {
        let topic = match args.first() {
            Some(RayObj::Atom(Atom {
                value: Scalar::Symbol(s),
                ..
            })) => s.as_str().to_owned(),
            Some(RayObj::Atom(Atom {
                value: Scalar::Str(s),
                ..
            })) => s.clone(),
            _ => return Err(EvalError::new("type", ".mc.pub topic must be a symbol")),
        };
        let Some(payload) = args.get(1).filter(|_| args.len() == 2) else {
            return Err(EvalError::new(
                "rank",
                ".mc.pub expects a topic and a payload",
            ));
        };
        if let Ok(mut v) = self.0.lock() {
            v.push((topic, payload.clone()));
        }
        Ok(RayObj::Null)
    }
}

impl ForeignEval {
    fn run(
        &mut self,
        body: &[u8],
        path: &Path,
        off: u64,
    ) -> Result<Vec<(String, RayObj)>, JournalError> {
        let expr =
            codec::decode(body, &record_limits()).map_err(|source| JournalError::Decode {
                path: path.to_owned(),
                offset: off,
                source,
            })?;
        let ev = self.ev.get_or_insert_with(Evaluator::new);
        let res = match &expr {
            RayObj::Atom(Atom {
                value: Scalar::Str(s),
                ..
            }) => ev.try_eval_str_with(s, &self.host),
            other => ev.try_eval_obj_with(other, &self.host),
        };
        if let Err(e) = res {
            // The core also goes on past a record that raises (framing is intact).
            tracing::debug!(file = %path.display(), offset = off, error = %e, "journal: record raised on replay");
        }
        Ok(self
            .host
            .0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default())
    }
}

/// A checked journal, read from a sequence number on.
///
/// [`JournalReader::open`] is the start-up check of a directory (see the module
/// docs); [`Journal::reader`](super::Journal::reader) gives one over a journal
/// being written, bounded by what was appended when it was made.
#[derive(Debug, Clone)]
pub struct JournalReader {
    cat: Arc<Catalog>,
}

impl JournalReader {
    /// Checks the journal in `dir` and opens it for reading. A torn last record
    /// (an interrupted write) is cut with a warning; a file that is not a
    /// journal, or a record broken before the end, is refused with the file and
    /// offset, and nothing is changed. Fails with [`JournalError::Locked`] while
    /// a [`Journal`](super::Journal) writes there (use its
    /// [`reader`](super::Journal::reader) instead).
    pub fn open(dir: impl AsRef<Path>) -> Result<JournalReader, JournalError> {
        let dir = dir.as_ref();
        let _lock = lock(dir)?;
        Ok(JournalReader {
            cat: Arc::new(check_dir(dir)?),
        })
    }

    pub(crate) fn from_catalog(cat: Catalog) -> JournalReader {
        JournalReader { cat: Arc::new(cat) }
    }

    /// The last sequence number journaled for `topic`, if any.
    pub fn last_seq(&self, topic: &str) -> Option<i64> {
        self.cat.last_seq.get(topic).copied()
    }

    /// The topics with journaled updates.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.cat.last_seq.keys().map(String::as_str)
    }

    /// The journal's files, oldest first.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.cat.files.iter().map(|f| &*f.path)
    }

    /// Every update of a topic `filter` accepts whose sequence number is at least
    /// `from`, in journal order (for one topic: ascending). The sparse index
    /// finds where to start; a core-written journal is evaluated from its start.
    pub fn updates_from<F: FnMut(&str) -> bool>(&self, from: i64, mut filter: F) -> Updates<F> {
        let start = self.cat.start_for(from, &mut filter);
        Updates {
            cat: self.cat.clone(),
            filter,
            from,
            pos: start,
            file: None,
            hdr_buf: Vec::new(),
            foreign: ForeignEval::default(),
            numbering: HashMap::new(),
            pending: VecDeque::new(),
        }
    }
}

/// One journaled update.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The topic.
    pub topic: String,
    /// Its sequence number in the topic.
    pub seq: i64,
    /// The file the record is in.
    pub file: Arc<Path>,
    /// The record's byte offset in that file.
    pub offset: u64,
    frame: Vec<u8>,
    payload_at: usize,
}

impl Update {
    /// The whole `(upd "topic" seq (quote payload))` async frame, header
    /// included, uncompressed: what a subscriber of the topic receives.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The encoded payload.
    pub fn payload_bytes(&self) -> &[u8] {
        self.frame.get(self.payload_at..).unwrap_or_default()
    }

    /// The payload, decoded.
    pub fn payload(&self) -> Result<RayObj, JournalError> {
        codec::decode(self.payload_bytes(), &record_limits()).map_err(|source| {
            JournalError::Decode {
                path: self.file.to_path_buf(),
                offset: self.offset,
                source,
            }
        })
    }
}

/// The iterator of [`JournalReader::updates_from`].
pub struct Updates<F> {
    cat: Arc<Catalog>,
    filter: F,
    from: i64,
    pos: Option<Pos>,
    file: Option<(usize, BufReader<File>)>,
    hdr_buf: Vec<u8>,
    foreign: ForeignEval,
    /// Sequence numbers given to `.mc.pub` calls of foreign records.
    numbering: HashMap<String, i64>,
    pending: VecDeque<Update>,
}

impl<F: FnMut(&str) -> bool> Updates<F> {
    /// Reads the next record at `self.pos`; `Ok(false)` at the end.
    fn step(&mut self) -> Result<bool, JournalError> {
        let Some(pos) = self.pos else {
            return Ok(false);
        };
        let Some(span) = self.cat.files.get(pos.file) else {
            self.pos = None;
            return Ok(false);
        };
        if pos.offset >= span.end {
            self.pos = self.cat.files.get(pos.file + 1).map(|f| Pos {
                file: pos.file + 1,
                offset: f.start,
            });
            return Ok(true);
        }
        let path = span.path.clone();
        let r = match &mut self.file {
            Some((no, r)) if *no == pos.file => r,
            slot => {
                let mut f = File::open(&path).map_err(|e| JournalError::io("open", &*path, e))?;
                f.seek(SeekFrom::Start(pos.offset))
                    .map_err(|e| JournalError::io("seek", &*path, e))?;
                &mut slot
                    .insert((pos.file, BufReader::with_capacity(READ_BUF, f)))
                    .1
            }
        };
        let mut hdr = [0u8; HEADER_LEN];
        r.read_exact(&mut hdr)
            .map_err(|e| JournalError::io("read", &*path, e))?;
        let h = match format::check_header(&hdr) {
            HeaderCheck::Valid(h) if pos.offset + HEADER_LEN as u64 + h.size <= span.end => h,
            _ => {
                return Err(damaged(
                    &path,
                    pos.offset,
                    "record changed since the journal was checked",
                ));
            }
        };
        self.hdr_buf.clear();
        self.hdr_buf.extend_from_slice(&hdr);
        self.hdr_buf.resize(HEADER_LEN + h.size as usize, 0);
        r.read_exact(&mut self.hdr_buf[HEADER_LEN..])
            .map_err(|e| JournalError::io("read", &*path, e))?;
        self.pos = Some(Pos {
            file: pos.file,
            offset: pos.offset + HEADER_LEN as u64 + h.size,
        });
        let owned = if h.flags & (FLAG_COMPRESSED | FLAG_LZ4) != 0 {
            Some(inflate(&h, &self.hdr_buf[HEADER_LEN..], &path, pos.offset)?.into_owned())
        } else {
            None
        };
        let body: &[u8] = owned.as_deref().unwrap_or(&self.hdr_buf[HEADER_LEN..]);
        if let Some(p) = format::peek_upd(body) {
            if self.cat.foreign {
                let last = self.numbering.entry(p.topic.to_owned()).or_insert(p.seq);
                *last = (*last).max(p.seq);
            }
            if p.seq >= self.from && (self.filter)(p.topic) {
                let (topic, seq, at) = (p.topic.to_owned(), p.seq, p.payload_at);
                let frame = match &owned {
                    Some(b) => reframe(b),
                    None => std::mem::take(&mut self.hdr_buf),
                };
                self.pending.push_back(Update {
                    topic,
                    seq,
                    file: path,
                    offset: pos.offset,
                    frame,
                    payload_at: HEADER_LEN + at,
                });
            }
            return Ok(true);
        }
        let body = owned.unwrap_or_else(|| self.hdr_buf[HEADER_LEN..].to_vec());
        for (topic, payload) in self.foreign.run(&body, &path, pos.offset)? {
            let seq = self.numbering.get(&topic).copied().unwrap_or(0) + 1;
            self.numbering.insert(topic.clone(), seq);
            if seq >= self.from && (self.filter)(&topic) {
                let n = codec::Encode::encoded_len(&payload);
                let mut frame = vec![0u8; format::upd_record_len(&topic, n)];
                format::write_upd_record(&topic, seq, &payload, n, &mut frame);
                let payload_at = frame.len() - n;
                self.pending.push_back(Update {
                    topic,
                    seq,
                    file: path.clone(),
                    offset: pos.offset,
                    frame,
                    payload_at,
                });
            }
        }
        Ok(true)
    }
}

/// An uncompressed frame around an inflated body.
fn reframe(body: &[u8]) -> Vec<u8> {
    let mut out = FrameHeader::new(codec::MsgType::Async, body.len() as u64)
        .to_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

impl<F: FnMut(&str) -> bool> Iterator for Updates<F> {
    type Item = Result<Update, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(u) = self.pending.pop_front() {
                return Some(Ok(u));
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.pos = None;
                    return Some(Err(e));
                }
            }
        }
    }
}
