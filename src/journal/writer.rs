//! Appending to the journal: per-topic numbering, group commit, rolling and
//! retention.

use super::error::JournalError;
use super::format::{self, MAX_RECORD_PAYLOAD, PREAMBLE_LEN};
use super::reader::{self, Catalog, FileSpan, JournalReader, Pos, SEQ_FLOOR_NAME};
use crate::codec::Encode;
use crate::codec::HEADER_LEN;
use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

const DAY_MS: i64 = 86_400_000;
/// The mmap backend maps (and pre-extends the file by) this much at a time.
const MAP_WINDOW: u64 = 16 << 20;
/// Zeros written per call when the mapped file is extended.
const ZERO_CHUNK: usize = 1 << 20;
/// Map offsets are multiples of this (a multiple of every page size in use).
const MAP_ALIGN: u64 = 64 << 10;

/// How records reach the file. Both write the same bytes; see PROTOCOL.md 10.4
/// for the measured figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// One `write` call per record on a file opened for append.
    Write,
    /// Records copied into a shared memory map of the file, which is extended
    /// ahead by 16 MiB of zeros at a time (so a full disk shows as an error at
    /// the extension). The zero tail is cut when the file is closed or rolled,
    /// or at the next open after a crash. The default: it measured faster
    /// without fsync; with [`sync`](JournalConfig::sync) on, [`Backend::Write`]
    /// measured faster.
    #[default]
    Mmap,
}

/// How a [`Journal`] writes.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// When true, [`Journal::append`] returns only once the record is on disk
    /// (appends from many threads share one `fsync`). When false it returns once
    /// the record is in the operating system's hands (it survives the process
    /// being killed, not a power loss); [`Journal::sync`] makes it durable.
    pub sync: bool,
    /// Start a new file when the current one would grow past this many bytes.
    pub roll_bytes: u64,
    /// Start a new file on the first append of a new UTC day.
    pub roll_daily: bool,
    /// Keep at most this many files, removing the oldest at a roll; 0 keeps all.
    pub retain_files: usize,
    /// Plain writes or a memory map.
    pub backend: Backend,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            sync: false,
            roll_bytes: 256 << 20,
            roll_daily: true,
            retain_files: 0,
            backend: Backend::Mmap,
        }
    }
}

/// What [`Journal::append`] journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The update's sequence number in its topic.
    pub seq: i64,
    /// The record's place in this journal's append order (for [`Journal::commit`]).
    pub ticket: u64,
}

/// An append-only journal of topic updates in a directory, in the core's
/// journal format. Safe to share between threads.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    config: JournalConfig,
    state: Mutex<State>,
    synced: Condvar,
    _lock: File,
}

#[derive(Debug)]
struct State {
    cat: Catalog,
    active: Active,
    /// Tickets handed out, and the highest known on disk.
    appended: u64,
    durable: u64,
    flushing: bool,
    stopped: Option<String>,
    next_file_no: u64,
}

#[derive(Debug)]
struct Active {
    path: Arc<Path>,
    file: Arc<File>,
    /// End of the last record.
    len: u64,
    day: i64,
    map: Option<Window>,
}

#[derive(Debug)]
struct Window {
    map: memmap2::MmapMut,
    start: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A generation id as the core makes them: creation time in ms, shifted, with
/// a counter so that two files made in one millisecond differ.
fn fresh_generation() -> i64 {
    static SALT: AtomicI64 = AtomicI64::new(0);
    (now_ms() << 12) | (SALT.fetch_add(1, Ordering::Relaxed) & 0xfff)
}

fn file_name(no: u64) -> String {
    format!("journal-{no:08}.log")
}

/// The number in a raywire file name, `None` for another writer's file.
fn file_no(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("journal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Journal {
    /// Opens (creating it if needed) the journal in `dir`: takes its lock, checks
    /// every file as [`JournalReader::open`] does (cutting a torn last record),
    /// and goes on appending where it ended, numbering each topic on from its
    /// last journaled sequence number.
    pub fn open(dir: impl AsRef<Path>, config: JournalConfig) -> Result<Journal, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| JournalError::io("create", &dir, e))?;
        let lock = reader::lock(&dir)?;
        let mut cat = reader::check_dir(&dir)?;
        let next_file_no = cat
            .files
            .iter()
            .filter_map(|f| file_no(&f.path))
            .max()
            .map_or(1, |n| n + 1);
        let today = now_ms().div_euclid(DAY_MS);
        // Go on in the last file if it is raywire's and has room.
        let reuse = cat.files.last().filter(|f| {
            file_no(&f.path).is_some()
                && (f.start == PREAMBLE_LEN as u64 || f.end == 0)
                && f.end < config.roll_bytes
                && (!config.roll_daily
                    || f.end == 0
                    || (f.generation >> 12).div_euclid(DAY_MS) == today)
        });
        let active = match reuse {
            Some(f) => {
                let path = f.path.clone();
                let file = File::options()
                    .read(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| JournalError::io("open", &*path, e))?;
                let (len, day) = if f.end == 0 {
                    let generation = fresh_generation();
                    write_preamble(&file, &path, generation)?;
                    if let Some(last) = cat.files.last_mut() {
                        last.start = PREAMBLE_LEN as u64;
                        last.end = PREAMBLE_LEN as u64;
                        last.generation = generation;
                    }
                    (PREAMBLE_LEN as u64, today)
                } else {
                    (f.end, (f.generation >> 12).div_euclid(DAY_MS))
                };
                Active {
                    path,
                    file: Arc::new(file),
                    len,
                    day,
                    map: None,
                }
            }
            None => {
                let (active, span) = create_file(&dir, next_file_no)?;
                cat.files.push(span);
                active
            }
        };
        let next_file_no = next_file_no.max(file_no(&active.path).unwrap_or(0) + 1);
        Ok(Journal {
            dir,
            config,
            state: Mutex::new(State {
                cat,
                active,
                appended: 0,
                durable: 0,
                flushing: false,
                stopped: None,
                next_file_no,
            }),
            synced: Condvar::new(),
            _lock: lock,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as consistent as any
        // failed write does; `stopped` guards what matters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Journals `payload` as the next update of `topic` and returns its sequence
    /// number (one above the topic's last, 1 for a new topic). In
    /// [`sync`](JournalConfig::sync) mode it returns once the record is on disk.
    pub fn append<P: Encode + ?Sized>(
        &self,
        topic: &str,
        payload: &P,
    ) -> Result<Appended, JournalError> {
        self.append_inner(topic, None, payload)
    }

    /// Journals `payload` as update `seq` of `topic`, keeping a number given
    /// upstream (a relay); `seq` must be above the topic's last one.
    pub fn append_at<P: Encode + ?Sized>(
        &self,
        topic: &str,
        seq: i64,
        payload: &P,
    ) -> Result<Appended, JournalError> {
        self.append_inner(topic, Some(seq), payload)
    }

    fn append_inner<P: Encode + ?Sized>(
        &self,
        topic: &str,
        seq: Option<i64>,
        payload: &P,
    ) -> Result<Appended, JournalError> {
        let plen = payload.encoded_len();
        let rec_len = format::upd_record_len(topic, plen);
        let body = (rec_len - HEADER_LEN) as u64;
        if body > MAX_RECORD_PAYLOAD {
            return Err(JournalError::TooLarge {
                size: body,
                max: MAX_RECORD_PAYLOAD,
            });
        }
        let appended = match self.config.backend {
            // Encoded before taking the lock (with the number patched in under
            // it), so concurrent publishers only serialise on the write itself.
            Backend::Write => SCRATCH.with(|s| {
                let mut buf = s.borrow_mut();
                buf.clear();
                buf.resize(rec_len, 0);
                format::write_upd_record(topic, 0, payload, plen, &mut buf);
                let mut st = self.lock();
                let seq = self.next_number(&st, topic, seq)?;
                let seq_at = HEADER_LEN + 10 + 6 + 10 + topic.len() + 2;
                buf[seq_at..seq_at + 8].copy_from_slice(&seq.to_le_bytes());
                self.prepare(&mut st, rec_len as u64)?;
                let active = &mut st.active;
                if let Err(e) = (&*active.file).write_all(&buf) {
                    // Take back a partial write, so no half record sits before
                    // the next one.
                    let _ = active.file.set_len(active.len);
                    return Err(self.stop(&mut st, "write", e));
                }
                Ok(self.record(&mut st, topic, seq, rec_len as u64))
            })?,
            Backend::Mmap => {
                let mut st = self.lock();
                let seq = self.next_number(&st, topic, seq)?;
                self.prepare(&mut st, rec_len as u64)?;
                if let Err(e) = ensure_window(&mut st.active, rec_len as u64) {
                    return Err(self.stop(&mut st, "map", e));
                }
                let active = &mut st.active;
                let Some(w) = active.map.as_mut() else {
                    return Err(self.stop(&mut st, "map", std::io::Error::other("no mapping")));
                };
                let at = (active.len - w.start) as usize;
                format::write_upd_record(topic, seq, payload, plen, &mut w.map[at..at + rec_len]);
                Ok::<_, JournalError>(self.record(&mut st, topic, seq, rec_len as u64))
            }?,
        };
        if self.config.sync {
            self.commit(appended.ticket)?;
        }
        Ok(appended)
    }

    fn next_number(&self, st: &State, topic: &str, seq: Option<i64>) -> Result<i64, JournalError> {
        if let Some(detail) = &st.stopped {
            return Err(JournalError::Stopped {
                path: self.dir.clone(),
                detail: detail.clone(),
            });
        }
        let last = st.cat.last_seq.get(topic).copied().unwrap_or(0);
        match seq {
            None => Ok(last + 1),
            Some(s) if s > last => Ok(s),
            Some(s) => Err(JournalError::SeqNotAhead {
                topic: topic.to_owned(),
                seq: s,
                last,
            }),
        }
    }

    /// Rolls first if this record is due in a new file.
    fn prepare(&self, st: &mut State, rec_len: u64) -> Result<(), JournalError> {
        let a = &st.active;
        let has_records = a.len > PREAMBLE_LEN as u64;
        let too_big = has_records && a.len + rec_len > self.config.roll_bytes;
        let new_day = self.config.roll_daily && has_records && now_ms().div_euclid(DAY_MS) != a.day;
        if too_big || new_day {
            self.roll_locked(st)?;
        }
        Ok(())
    }

    fn record(&self, st: &mut State, topic: &str, seq: i64, rec_len: u64) -> Appended {
        let file = st.cat.files.len() - 1;
        let offset = st.active.len;
        st.cat.note(topic, seq, Pos { file, offset });
        st.active.len += rec_len;
        if let Some(span) = st.cat.files.last_mut() {
            span.end = st.active.len;
        }
        st.appended += 1;
        Appended {
            seq,
            ticket: st.appended,
        }
    }

    fn stop(&self, st: &mut State, op: &'static str, e: std::io::Error) -> JournalError {
        st.stopped = Some(format!("{op} {}: {e}", st.active.path.display()));
        self.synced.notify_all();
        JournalError::io(op, &*st.active.path, e)
    }

    /// Returns once every record up to `ticket` is on disk. Callers waiting
    /// together share one `fsync`: the first becomes the leader and syncs for
    /// all that were appended by then, the others wait for it.
    pub fn commit(&self, ticket: u64) -> Result<(), JournalError> {
        let mut st = self.lock();
        loop {
            if st.durable >= ticket {
                return Ok(());
            }
            if let Some(detail) = &st.stopped {
                return Err(JournalError::Stopped {
                    path: self.dir.clone(),
                    detail: detail.clone(),
                });
            }
            if st.flushing {
                st = self.synced.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.flushing = true;
            let target = st.appended;
            let file = st.active.file.clone();
            let path = st.active.path.clone();
            drop(st);
            let r = file.sync_data();
            st = self.lock();
            st.flushing = false;
            match r {
                Ok(()) => st.durable = st.durable.max(target),
                Err(e) => {
                    st.stopped = Some(format!("fsync {}: {e}", path.display()));
                    self.synced.notify_all();
                    return Err(JournalError::io("fsync", &*path, e));
                }
            }
            self.synced.notify_all();
        }
    }

    /// Returns once everything appended so far is on disk.
    pub fn sync(&self) -> Result<(), JournalError> {
        let ticket = self.lock().appended;
        self.commit(ticket)
    }

    /// Closes the current file and starts a new one (then applies retention).
    pub fn roll(&self) -> Result<(), JournalError> {
        let mut st = self.lock();
        self.roll_locked(&mut st)
    }

    fn roll_locked(&self, st: &mut State) -> Result<(), JournalError> {
        if let Err(e) = finish(&mut st.active) {
            return Err(self.stop(st, "close", e));
        }
        // Everything appended so far was in this file or an earlier, now synced.
        st.durable = st.appended;
        let (active, span) = create_file(&self.dir, st.next_file_no)?;
        st.next_file_no += 1;
        st.active = active;
        st.cat.files.push(span);
        self.synced.notify_all();
        self.retain(st)
    }

    fn retain(&self, st: &mut State) -> Result<(), JournalError> {
        let keep = self.config.retain_files;
        if keep == 0 || st.cat.files.len() <= keep {
            return Ok(());
        }
        let n = st.cat.files.len() - keep;
        // The numbering outlives the files: written before any is removed.
        write_seq_floor(&self.dir, &st.cat)?;
        for f in &st.cat.files[..n] {
            std::fs::remove_file(&f.path).map_err(|e| JournalError::io("remove", &*f.path, e))?;
        }
        st.cat.drop_front(n);
        Ok(())
    }

    /// The last sequence number journaled for `topic`, if any.
    pub fn last_seq(&self, topic: &str) -> Option<i64> {
        self.lock().cat.last_seq.get(topic).copied()
    }

    /// A reader of everything appended so far.
    pub fn reader(&self) -> JournalReader {
        JournalReader::from_catalog(self.lock().cat.clone())
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = finish(&mut st.active) {
            tracing::warn!(file = %st.active.path.display(), error = %e, "journal: closing the last file failed");
        }
    }
}

/// Makes sure the map covers `rec_len` more bytes at the end of the file.
fn ensure_window(a: &mut Active, rec_len: u64) -> std::io::Result<()> {
    let end = a.len + rec_len;
    if let Some(w) = &a.map
        && end <= w.start + w.map.len() as u64
    {
        return Ok(());
    }
    a.map = None;
    let start = a.len - a.len % MAP_ALIGN;
    let len = MAP_WINDOW.max(end - start + MAP_ALIGN);
    // Extended by writing zeros, not by `set_len`: the blocks are allocated
    // here, so a full disk is an error now rather than a SIGBUS on a later
    // store into a hole of the map.
    let have = a.file.metadata()?.len();
    if have < start + len {
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut left = start + len - have;
        while left > 0 {
            let n = left.min(ZERO_CHUNK as u64) as usize;
            (&*a.file).write_all(&zeros[..n])?;
            left -= n as u64;
        }
    }
    // SAFETY: the file is this journal's own, under its exclusive lock, and is
    // never shortened while mapped (it is cut only after the map is dropped),
    // so the mapped range stays backed; a measured need: see benches/journal.rs.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(start)
            .len(len as usize)
            .map_mut(&*a.file)?
    };
    a.map = Some(Window { map, start });
    Ok(())
}

/// Flushes the active file and cuts a mapped file's reserved tail.
fn finish(a: &mut Active) -> std::io::Result<()> {
    if a.map.take().is_some() {
        a.file.set_len(a.len)?;
    }
    a.file.sync_all()
}

fn write_preamble(file: &File, path: &Path, generation: i64) -> Result<(), JournalError> {
    let mut f = file;
    f.write_all(&format::preamble(generation))
        .map_err(|e| JournalError::io("write", path, e))?;
    file.sync_all()
        .map_err(|e| JournalError::io("fsync", path, e))
}

fn create_file(dir: &Path, no: u64) -> Result<(Active, FileSpan), JournalError> {
    let path: Arc<Path> = dir.join(file_name(no)).into();
    let file = File::options()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| JournalError::io("create", &*path, e))?;
    let generation = fresh_generation();
    write_preamble(&file, &path, generation)?;
    sync_dir(dir)?;
    let span = FileSpan {
        path: path.clone(),
        start: PREAMBLE_LEN as u64,
        end: PREAMBLE_LEN as u64,
        generation,
    };
    Ok((
        Active {
            path,
            file: Arc::new(file),
            len: PREAMBLE_LEN as u64,
            day: (generation >> 12).div_euclid(DAY_MS),
            map: None,
        },
        span,
    ))
}

/// Makes a new or removed directory entry durable.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    match File::open(dir) {
        Ok(d) => d.sync_all().map_err(|e| JournalError::io("fsync", dir, e)),
        // Directories cannot be opened as files everywhere; the entry is then
        // as durable as the platform makes it.
        Err(_) => Ok(()),
    }
}

fn write_seq_floor(dir: &Path, cat: &Catalog) -> Result<(), JournalError> {
    let path = dir.join(SEQ_FLOOR_NAME);
    let tmp = dir.join(format!("{SEQ_FLOOR_NAME}.tmp"));
    let mut text = String::new();
    for (topic, seq) in &cat.last_seq {
        text.push_str(&format!("{seq} {}\n", reader::hex(topic)));
    }
    let mut f = File::create(&tmp).map_err(|e| JournalError::io("create", &tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| JournalError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &path, e))?;
    sync_dir(dir)
}
