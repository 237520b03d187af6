//! The one core runtime of this process, on a thread of its own.
//!
//! The RayforceDB core allows exactly one live runtime per process (its
//! symbol table, environment and `__RUNTIME` are process globals) and binds
//! its VM and heap to the thread that created it (thread-locals). The
//! `rayforce` crate enforces both: a second `Runtime::scope` anywhere in the
//! process fails while one is live, and every entry point panics off the
//! runtime's thread. Its own test suites run one scope per test, serialized.
//!
//! A test binary runs its tests on many threads at once, so the harness
//! instead keeps a single scope open for the life of the process on a
//! dedicated thread, `interop-core`, and ships every piece of core work to it
//! as a closure over a channel. Jobs run one at a time, in arrival order.
//! While an in-process server is listening (see `crate::ServerMode::Thread`),
//! the thread also drives the runtime's event loop in short slices between
//! jobs. The thread is never joined: it ends with the process, and the
//! runtime is never torn down, so nothing engine-backed outlives its heap.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread;

use rayforce::{Poll, Runtime};

/// How long one slice of the event loop may block while servers listen:
/// the most a job waits before the core thread picks it up.
const SLICE_MS: i32 = 5;

/// State that lives on the core thread and that jobs may use.
pub(crate) struct Ctx {
    pub(crate) poll: Poll,
    /// In-process listeners by selector id.
    pub(crate) listeners: BTreeMap<i64, crate::server::ThreadListener>,
}

type Job = Box<dyn FnOnce(&mut Ctx) + Send + 'static>;

static CORE: OnceLock<Result<Sender<Job>, String>> = OnceLock::new();

fn start() -> Result<Sender<Job>, String> {
    let (tx, rx) = mpsc::channel::<Job>();
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
    thread::Builder::new()
        .name("interop-core".into())
        .spawn(move || core_main(rx, ready_tx))
        .map_err(|e| format!("cannot spawn the core thread: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(tx),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the core thread died while starting".into()),
    }
}

fn core_main(rx: Receiver<Job>, ready: mpsc::SyncSender<Result<(), String>>) {
    let outcome = Runtime::scope(move |_rt| {
        let poll = match Poll::install() {
            Ok(p) => p,
            Err(e) => {
                let _ = ready.send(Err(format!("Poll::install failed: {e}")));
                return Ok(());
            }
        };
        let mut ctx = Ctx {
            poll,
            listeners: BTreeMap::new(),
        };
        let _ = ready.send(Ok(()));
        loop {
            let next = if ctx.listeners.is_empty() {
                match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => break,
                }
            } else {
                // Serve the listeners for a slice, then look for work.
                let _ = ctx.poll.run_for(SLICE_MS);
                match rx.try_recv() {
                    Ok(job) => Some(job),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            };
            if let Some(job) = next {
                // A panicking job must not take the runtime down with it;
                // its caller learns of it through the dropped reply channel.
                let _ = catch_unwind(AssertUnwindSafe(|| job(&mut ctx)));
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        // Only reachable when the scope could not be opened (another scope is
        // live in this process, which the harness never does itself).
        eprintln!("interop: core runtime failed: {e}");
    }
}

/// Run `f` on the core thread and wait for its result.
///
/// Must not be called from inside another job (it would wait on itself).
pub(crate) fn call<R, F>(f: F) -> Result<R, String>
where
    R: Send + 'static,
    F: FnOnce(&mut Ctx) -> R + Send + 'static,
{
    if thread::current().name() == Some("interop-core") {
        return Err("interop: core::call from the core thread itself".into());
    }
    let tx = CORE
        .get_or_init(start)
        .as_ref()
        .map_err(|e| format!("core runtime unavailable: {e}"))?;
    let (rtx, rrx) = mpsc::sync_channel::<thread::Result<R>>(1);
    let job: Job = Box::new(move |ctx: &mut Ctx| {
        let r = catch_unwind(AssertUnwindSafe(|| f(ctx)));
        let _ = rtx.send(r);
    });
    tx.send(job)
        .map_err(|_| "the core thread is gone".to_string())?;
    match rrx.recv() {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(panic)) => Err(format!("core job panicked: {}", panic_text(&*panic))),
        Err(_) => Err("the core thread dropped the job".into()),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic)".into()
    }
}
