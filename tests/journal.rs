//! The journal: numbering across reopen, reading from a sequence number, the
//! start-up check (torn tails cut, damage refused), group commit, rolling and
//! retention, and a writer killed with SIGKILL mid-append.

use raywire::journal::{Backend, Journal, JournalConfig, JournalError, JournalReader};
use raywire::{RayObj, RayVector};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rw-journal-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The payload journaled as update `i`: easy to tell apart, known beforehand.
fn payload(i: i64) -> RayObj {
    RayObj::from(RayVector::<i64>::from_iter([i, i * 7, -i]))
}

fn config(backend: Backend) -> JournalConfig {
    JournalConfig {
        backend,
        ..JournalConfig::default()
    }
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

fn seqs(reader: &JournalReader, topic: &str, from: i64) -> Vec<i64> {
    reader
        .updates_from(from, |t| t == topic)
        .map(|u| u.expect("update").seq)
        .collect()
}

fn five_thousand_then_ten(backend: Backend) {
    let dir = TempDir::new("5010");
    {
        let j = Journal::open(dir.path(), config(backend)).unwrap();
        for i in 1..=5000 {
            assert_eq!(j.append("trades", &payload(i)).unwrap().seq, i);
        }
        j.sync().unwrap();
    }
    {
        let j = Journal::open(dir.path(), config(backend)).unwrap();
        assert_eq!(j.last_seq("trades"), Some(5000));
        for i in 5001..=5010 {
            assert_eq!(j.append("trades", &payload(i)).unwrap().seq, i);
        }
    }
    let r = JournalReader::open(dir.path()).unwrap();
    let all: Vec<_> = r
        .updates_from(1, |t| t == "trades")
        .map(|u| u.unwrap())
        .collect();
    assert_eq!(all.len(), 5010);
    for (k, u) in all.iter().enumerate() {
        let i = k as i64 + 1;
        assert_eq!((u.topic.as_str(), u.seq), ("trades", i));
        assert_eq!(u.payload().unwrap(), payload(i));
    }
    assert_eq!(seqs(&r, "trades", 4001), (4001..=5010).collect::<Vec<_>>());
    assert_eq!(seqs(&r, "trades", 5011), Vec::<i64>::new());
    // A mapped file's reserved tail is cut at close: the core's replay reads
    // the file to its end.
    for f in log_files(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert_ne!(
            bytes.last(),
            Some(&0),
            "{} ends in reserved zeros",
            f.display()
        );
    }
}

#[test]
fn numbering_continues_across_reopen_with_writes() {
    five_thousand_then_ten(Backend::Write);
}

#[test]
fn numbering_continues_across_reopen_with_mmap() {
    five_thousand_then_ten(Backend::Mmap);
}

#[test]
fn the_filter_hook_picks_topics_and_each_topic_has_its_own_numbers() {
    let dir = TempDir::new("topics");
    let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    for i in 1..=300 {
        assert_eq!(j.append("trades", &payload(i)).unwrap().seq, i);
        if i % 3 == 0 {
            assert_eq!(j.append("quotes", &payload(-i)).unwrap().seq, i / 3);
        }
    }
    let r = j.reader();
    assert_eq!(seqs(&r, "quotes", 95), (95..=100).collect::<Vec<_>>());
    let both: Vec<(String, i64)> = r
        .updates_from(299, |_| true)
        .map(|u| u.map(|u| (u.topic, u.seq)).unwrap())
        .collect();
    assert_eq!(
        both,
        [("trades".to_string(), 299), ("trades".to_string(), 300)]
    );
    let q: Vec<RayObj> = r
        .updates_from(1, |t| t == "quotes")
        .take(2)
        .map(|u| u.unwrap().payload().unwrap())
        .collect();
    assert_eq!(q, [payload(-3), payload(-6)]);
    // The frame is what a subscriber gets: an async frame, header included.
    let u = r
        .updates_from(1, |t| t == "trades")
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(&u.frame()[..8], &[0xfa, 0xde, 0xfa, 0xce, 3, 0, 0, 0]);
}

#[test]
fn a_torn_last_record_is_cut_at_every_byte() {
    let dir = TempDir::new("torn");
    {
        let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
        for i in 1..=20 {
            j.append("trades", &payload(i)).unwrap();
        }
    }
    let file = log_files(dir.path()).pop().unwrap();
    let whole = std::fs::read(&file).unwrap();
    // The last record's length: its frame is the same size as every other one.
    let rec = {
        let r = JournalReader::open(dir.path()).unwrap();
        let u = r.updates_from(20, |_| true).next().unwrap().unwrap();
        assert_eq!(u.offset as usize + u.frame().len(), whole.len());
        u.offset as usize
    };
    for cut in rec..whole.len() {
        std::fs::write(&file, &whole[..cut]).unwrap();
        let r = JournalReader::open(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(
            seqs(&r, "trades", 1),
            (1..=19).collect::<Vec<_>>(),
            "cut at {cut}"
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().len() as usize,
            rec,
            "cut at {cut}"
        );
    }
    // After a cut the writer goes on with the number that was lost.
    let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(j.append("trades", &payload(20)).unwrap().seq, 20);
}

#[test]
fn a_zero_filled_tail_is_cut() {
    let dir = TempDir::new("zeros");
    {
        let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
        for i in 1..=5 {
            j.append("trades", &payload(i)).unwrap();
        }
    }
    let file = log_files(dir.path()).pop().unwrap();
    let whole = std::fs::read(&file).unwrap();
    let mut padded = whole.clone();
    padded.resize(whole.len() + 70_000, 0);
    std::fs::write(&file, &padded).unwrap();
    let r = JournalReader::open(dir.path()).unwrap();
    assert_eq!(seqs(&r, "trades", 1), [1, 2, 3, 4, 5]);
    assert_eq!(std::fs::read(&file).unwrap(), whole);
}

fn expect_refused(dir: &Path, file: &Path, check: impl Fn(&JournalError) -> bool) {
    let before = std::fs::read(file).unwrap();
    let e = JournalReader::open(dir).expect_err("a damaged journal is refused");
    assert!(check(&e), "unexpected error: {e}");
    assert!(
        e.to_string().contains(&file.display().to_string()),
        "{e} names the file"
    );
    assert_eq!(std::fs::read(file).unwrap(), before, "nothing was changed");
    let e = Journal::open(dir, JournalConfig::default()).expect_err("the writer refuses it too");
    assert!(check(&e), "unexpected error: {e}");
    assert_eq!(std::fs::read(file).unwrap(), before, "nothing was changed");
}

#[test]
fn a_file_that_is_not_a_journal_is_refused() {
    let dir = TempDir::new("garbage");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("notes.log");
    std::fs::write(&file, b"this is a text file, not a journal\n").unwrap();
    expect_refused(dir.path(), &file, |e| {
        matches!(e, JournalError::NotAJournal { .. })
    });
}

#[test]
fn damage_in_the_middle_is_refused_with_its_offset() {
    let dir = TempDir::new("mid");
    {
        let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
        for i in 1..=10 {
            j.append("trades", &payload(i)).unwrap();
        }
    }
    let (offset5, offset6) = {
        let r = JournalReader::open(dir.path()).unwrap();
        let mut it = r.updates_from(5, |_| true);
        (
            it.next().unwrap().unwrap().offset,
            it.next().unwrap().unwrap().offset,
        )
    };
    let file = log_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    // Record 5's header loses its magic.
    bytes[offset5 as usize] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    expect_refused(
        dir.path(),
        &file,
        |e| matches!(e, JournalError::Damaged { offset, .. } if *offset == offset5),
    );
    // Record 5's size now points past record 6: the header of record 6 would be
    // read as payload, so the walk lands in the middle of a record.
    bytes[offset5 as usize] ^= 0xff;
    let size_at = offset5 as usize + 8;
    let size = i64::from_le_bytes(bytes[size_at..size_at + 8].try_into().unwrap());
    bytes[size_at..size_at + 8].copy_from_slice(&(size + 3).to_le_bytes());
    std::fs::write(&file, &bytes).unwrap();
    expect_refused(
        dir.path(),
        &file,
        |e| matches!(e, JournalError::Damaged { offset, .. } if *offset == offset6 + 3),
    );
}

#[test]
fn a_damaged_payload_is_reported_when_read() {
    let dir = TempDir::new("payload");
    {
        let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
        for i in 1..=3 {
            j.append("trades", &payload(i)).unwrap();
        }
    }
    let file = log_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    // The last byte is inside record 3's payload vector; its type byte sits 34
    // bytes before the end (2 + 8 header bytes, 3 x 8 elements). 0x7f is no type.
    let at = bytes.len() - 34;
    bytes[at] = 0x7f;
    std::fs::write(&file, &bytes).unwrap();
    let r = JournalReader::open(dir.path()).unwrap();
    let got: Vec<_> = r.updates_from(1, |_| true).collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].as_ref().unwrap().payload().unwrap(), payload(2));
    let third = got[2].as_ref().unwrap();
    assert!(
        matches!(third.payload(), Err(JournalError::Decode { offset, .. }) if offset == third.offset)
    );
}

#[test]
fn a_second_writer_and_a_checking_reader_are_locked_out() {
    let dir = TempDir::new("lock");
    let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    j.append("trades", &payload(1)).unwrap();
    assert!(matches!(
        Journal::open(dir.path(), JournalConfig::default()),
        Err(JournalError::Locked { .. })
    ));
    assert!(matches!(
        JournalReader::open(dir.path()),
        Err(JournalError::Locked { .. })
    ));
    // The writer's own reader serves meanwhile.
    assert_eq!(seqs(&j.reader(), "trades", 1), [1]);
    drop(j);
    assert_eq!(
        seqs(&JournalReader::open(dir.path()).unwrap(), "trades", 1),
        [1]
    );
}

#[test]
fn append_at_keeps_upstream_numbers_and_refuses_going_back() {
    let dir = TempDir::new("at");
    let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(j.append_at("trades", 41, &payload(41)).unwrap().seq, 41);
    assert_eq!(j.append("trades", &payload(42)).unwrap().seq, 42);
    assert!(matches!(
        j.append_at("trades", 42, &payload(0)),
        Err(JournalError::SeqNotAhead {
            seq: 42,
            last: 42,
            ..
        })
    ));
    assert_eq!(seqs(&j.reader(), "trades", 1), [41, 42]);
}

#[test]
fn group_commit_from_many_threads_numbers_every_append_once() {
    for backend in [Backend::Write, Backend::Mmap] {
        let dir = TempDir::new("group");
        let cfg = JournalConfig {
            sync: true,
            ..config(backend)
        };
        let j = Journal::open(dir.path(), cfg).unwrap();
        let mut got: Vec<i64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..100)
                            .map(|_| j.append("trades", &payload(0)).unwrap().seq)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        got.sort_unstable();
        assert_eq!(got, (1..=800).collect::<Vec<_>>());
        drop(j);
        assert_eq!(
            seqs(&JournalReader::open(dir.path()).unwrap(), "trades", 1),
            (1..=800).collect::<Vec<_>>()
        );
    }
}

#[test]
fn rolls_by_size_and_retention_keeps_the_numbering() {
    let dir = TempDir::new("roll");
    let cfg = JournalConfig {
        roll_bytes: 4096,
        retain_files: 3,
        ..JournalConfig::default()
    };
    {
        let j = Journal::open(dir.path(), cfg.clone()).unwrap();
        for i in 1..=500 {
            j.append("trades", &payload(i)).unwrap();
        }
        j.append("rare", &payload(1)).unwrap();
        for i in 501..=1000 {
            j.append("trades", &payload(i)).unwrap();
        }
    }
    let files = log_files(dir.path());
    assert_eq!(files.len(), 3);
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 4096);
    }
    let r = JournalReader::open(dir.path()).unwrap();
    let kept = seqs(&r, "trades", 1);
    assert_eq!(kept.last(), Some(&1000));
    let first = kept[0];
    assert!(first > 1);
    assert_eq!(kept, (first..=1000).collect::<Vec<_>>());
    // A topic whose records all went with the removed files keeps its number.
    assert_eq!(r.last_seq("rare"), Some(1));
    let j = Journal::open(dir.path(), cfg).unwrap();
    assert_eq!(j.append("rare", &payload(2)).unwrap().seq, 2);
    assert_eq!(j.append("trades", &payload(1001)).unwrap().seq, 1001);
}

#[test]
fn an_explicit_roll_starts_a_file_the_reader_follows() {
    let dir = TempDir::new("roll2");
    let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    for i in 1..=5 {
        j.append("trades", &payload(i)).unwrap();
        j.roll().unwrap();
    }
    assert_eq!(log_files(dir.path()).len(), 6);
    assert_eq!(seqs(&j.reader(), "trades", 3), [3, 4, 5]);
}

const CHILD_ENV: &str = "RAYWIRE_JOURNAL_CHILD_DIR";

/// In the child: append in sync mode from 4 threads forever, printing each
/// acknowledged `topic seq`. In the parent: kill the child with SIGKILL after
/// it has acknowledged a good number, then check that every acknowledged
/// update is there.
#[test]
fn sigkill_mid_append_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let j = Journal::open(
            &dir,
            JournalConfig {
                sync: true,
                ..JournalConfig::default()
            },
        )
        .expect("child opens the journal");
        std::thread::scope(|s| {
            for t in 0..4 {
                let j = &j;
                s.spawn(move || {
                    let topic = format!("t{t}");
                    // Bounded: the parent kills us long before.
                    for i in 1..=1_000_000i64 {
                        let a = j.append(&topic, &payload(i)).expect("append");
                        println!("{topic} {}", a.seq);
                    }
                });
            }
        });
        return;
    }
    let dir = TempDir::new("kill");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_mid_append_loses_nothing_acknowledged",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut acked: std::collections::HashMap<String, i64> = Default::default();
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in out.lines() {
        let line = line.unwrap();
        if let Some((t, s)) = line.split_once(' ')
            && let Ok(s) = s.parse::<i64>()
        {
            let e = acked.entry(t.to_string()).or_default();
            *e = (*e).max(s);
            n += 1;
        }
        if n >= 2000 || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(n >= 2000, "the child acknowledged only {n} appends");
    let r = JournalReader::open(dir.path()).unwrap();
    for (topic, &last) in &acked {
        let got = seqs(&r, topic, 1);
        assert!(
            got.len() as i64 >= last,
            "{topic}: acknowledged {last}, journal has {}",
            got.len()
        );
        assert_eq!(
            got,
            (1..=got.len() as i64).collect::<Vec<_>>(),
            "{topic} in order, no gap"
        );
    }
    for (k, u) in r.updates_from(1, |t| t == "t0").enumerate() {
        assert_eq!(u.unwrap().payload().unwrap(), payload(k as i64 + 1));
    }
}

#[test]
fn a_file_torn_while_being_created_is_emptied_and_reused() {
    let dir = TempDir::new("newfile");
    {
        let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
        for i in 1..=3 {
            j.append("trades", &payload(i)).unwrap();
        }
    }
    // A crash while the next file's preamble was being written.
    let torn = dir.path().join("journal-00000002.log");
    std::fs::write(&torn, b"RAYJL").unwrap();
    let r = JournalReader::open(dir.path()).unwrap();
    assert_eq!(seqs(&r, "trades", 1), [1, 2, 3]);
    assert_eq!(std::fs::metadata(&torn).unwrap().len(), 0);
    let j = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(j.append("trades", &payload(4)).unwrap().seq, 4);
    drop(j);
    assert_eq!(&std::fs::read(&torn).unwrap()[..8], b"RAYJLG1\0");
    assert_eq!(
        seqs(&JournalReader::open(dir.path()).unwrap(), "trades", 1),
        [1, 2, 3, 4]
    );
}

#[test]
fn a_body_without_its_header_at_the_end_is_cut() {
    // What a writer killed in the middle of a mapped append leaves: the body
    // was copied, the header (written last) was not, zeros follow.
    let dir = TempDir::new("headerless");
    {
        let j = Journal::open(dir.path(), config(Backend::Mmap)).unwrap();
        for i in 1..=4 {
            j.append("trades", &payload(i)).unwrap();
        }
    }
    let file = log_files(dir.path()).pop().unwrap();
    let whole = std::fs::read(&file).unwrap();
    let rec = {
        let r = JournalReader::open(dir.path()).unwrap();
        r.updates_from(4, |_| true).next().unwrap().unwrap().offset as usize
    };
    let mut bytes = whole.clone();
    bytes[rec..rec + 16].fill(0);
    bytes.resize(whole.len() + 4096, 0);
    std::fs::write(&file, &bytes).unwrap();
    let r = JournalReader::open(dir.path()).unwrap();
    assert_eq!(seqs(&r, "trades", 1), [1, 2, 3]);
    assert_eq!(std::fs::read(&file).unwrap(), &whole[..rec]);
}
