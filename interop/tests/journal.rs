//! The journal format, both ways with the real core: the core replays a journal
//! raywire wrote (`.log.replay`, calling its own `upd`), and raywire reads a
//! journal a core server wrote with `.log.open` (its records are the
//! expressions clients sent, `.mc.pub` calls among them).

use interop::{CoreServer, core_client_execute, core_eval_fmt, rayfall_string};
use raywire::journal::{Journal, JournalConfig, JournalReader};
use raywire::{RayObj, RayVector};
use std::path::{Path, PathBuf};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("rw-journal-interop-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
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

fn payload(i: i64) -> RayObj {
    RayObj::from(RayVector::<i64>::from_iter([i, i * 7, -i]))
}

#[test]
fn the_core_replays_a_raywire_journal() {
    let dir = TempDir::new("replay");
    {
        let j = Journal::open(dir.path(), JournalConfig::default()).expect("journal");
        for i in 1..=60 {
            j.append("trades", &payload(i)).expect("append");
        }
        // Two files: each is a journal the core replays on its own.
        j.roll().expect("roll");
        for i in 61..=100 {
            j.append("trades", &payload(i)).expect("append");
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    let replays: Vec<String> = files
        .iter()
        .map(|f| format!("(.log.replay {})", rayfall_string(&f.display().to_string())))
        .collect();
    // `upd` counts calls, checks that numbers follow each other, sums the
    // first element of each payload and keeps the topic.
    let expr = format!(
        "(do (set n 0) (set ls 0) (set gaps 0) (set acc 0) (set lt \"\") \
         (set upd (fn [t s p] (do (set gaps (+ gaps (if (== s (+ ls 1)) 0 1))) \
         (set n (+ n 1)) (set ls s) (set lt t) (set acc (+ acc (first p)))))) \
         (list {} n ls gaps acc lt))",
        replays.join(" ")
    );
    let got = core_eval_fmt(&expr).expect("core replays");
    // 60 and 40 records replayed, 100 calls, last seq 100, no gap, 1+..+100.
    let want = "(60 40 100 100 0 5050 \"trades\")";
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        squash(&got).replace("( ", "(").replace(" )", ")"),
        want,
        "core printed {got}"
    );
}

#[test]
fn raywire_reads_a_journal_the_core_wrote() {
    let dir = TempDir::new("core");
    let base = dir.path().join("core");
    let server = CoreServer::builder()
        .setup(&format!(
            "(.log.open 'sync {})",
            rayfall_string(&base.display().to_string())
        ))
        .start()
        .expect("core server with a journal");
    // What a publisher sends a core tickerplant; the core journals each sync
    // message before evaluating it.
    for i in 1..=5 {
        core_client_execute(
            server.port(),
            &format!("(.mc.pub 'trades [{i} {} {}])", i * 7, -i),
        )
        .expect("publish");
    }
    core_client_execute(server.port(), "(set q [100 700 -100])").expect("set");
    core_client_execute(server.port(), "(.mc.pub 'quotes q)").expect("publish a variable");
    core_client_execute(server.port(), "(.mc.pub 'trades [6 42 -6])").expect("publish");
    drop(server);
    assert!(
        base.with_extension("log").exists(),
        "the core wrote {}",
        base.display()
    );

    let r = JournalReader::open(dir.path()).expect("raywire opens the core's journal");
    let trades: Vec<(i64, RayObj)> = r
        .updates_from(1, |t| t == "trades")
        .map(|u| {
            let u = u.expect("update");
            (u.seq, u.payload().expect("payload"))
        })
        .collect();
    assert_eq!(trades, (1..=6).map(|i| (i, payload(i))).collect::<Vec<_>>());
    let quotes: Vec<(i64, RayObj)> = r
        .updates_from(1, |t| t == "quotes")
        .map(|u| {
            let u = u.expect("update");
            (u.seq, u.payload().expect("payload"))
        })
        .collect();
    assert_eq!(quotes, [(1, payload(100))]);
    assert_eq!(
        r.updates_from(4, |t| t == "trades")
            .map(|u| u.expect("update").seq)
            .collect::<Vec<_>>(),
        [4, 5, 6]
    );

    // raywire serves it on: its numbering goes on after the core's records,
    // in a file of its own beside the core's.
    let j = Journal::open(dir.path(), JournalConfig::default()).expect("raywire writes on");
    assert_eq!(j.append("trades", &payload(7)).expect("append").seq, 7);
    let seqs: Vec<i64> = j
        .reader()
        .updates_from(5, |t| t == "trades")
        .map(|u| u.expect("update").seq)
        .collect();
    assert_eq!(seqs, [5, 6, 7]);
}
