//! A real RayforceDB IPC server: the core's own listener and request loop,
//! as `rayforce -p PORT [-u PW]` runs them.
//!
//! Two ways to host it, because of the one-runtime-per-process rule (see
//! `crate::core`):
//!
//! - [`ServerMode::Process`] (the default): a child process with a runtime of
//!   its own. The child is this very test executable, re-executed with an
//!   environment variable that a start-up hook in this library (an
//!   `.init_array` entry, run before `main`) recognizes: it serves and exits
//!   without ever reaching the test harness. Works with every client,
//!   including a core client in this process (`crate::core_client_execute`).
//! - [`ServerMode::Thread`]: a listener on this process's shared core runtime,
//!   served by the core thread between jobs. Cheaper, and it shares globals
//!   with `crate::core_eval_fmt`, but a core client in this process cannot talk
//!   to it: the core's client blocks the very thread that would have to answer.
//!   Use it from raw sockets or from raywire's client.
//!
//! Either way the server listens on 127.0.0.1 on a port the kernel picks
//! (port 0 bound by the core, then read back), so there is no race with other
//! tests for a "free" port.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::ffi;

/// Environment variable that turns a process into a server child.
const CHILD_ENV: &str = "INTEROP_CORE_SERVER_CHILD";
const CHILD_AUTH_ENV: &str = "INTEROP_CORE_SERVER_AUTH";
const CHILD_SETUP_ENV: &str = "INTEROP_CORE_SERVER_SETUP";
const CHILD_RESTRICTED_ENV: &str = "INTEROP_CORE_SERVER_RESTRICTED";
const CHILD_PORT_ENV: &str = "INTEROP_CORE_SERVER_PORT";
const CHILD_HOST_ENV: &str = "INTEROP_CORE_SERVER_HOST";
const READY: &str = "INTEROP-CORE-SERVER READY ";
const FAILED: &str = "INTEROP-CORE-SERVER ERROR ";
/// How long a child may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a child may take to go after its stdin closes.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Event-loop slice of a child server.
const CHILD_SLICE_MS: i32 = 20;

/// Where a [`CoreServer`] runs. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerMode {
    /// A child process with its own core runtime (default).
    #[default]
    Process,
    /// A listener on this process's core runtime, served by the core thread.
    Thread,
}

/// Configures and starts a [`CoreServer`].
#[derive(Debug, Clone, Default)]
pub struct CoreServerBuilder {
    mode: ServerMode,
    auth: Option<(String, String)>,
    restricted: bool,
    setup: Vec<String>,
    port: u16,
    host: Option<String>,
}

impl CoreServerBuilder {
    /// Process or thread hosting (default [`ServerMode::Process`]).
    pub fn mode(mut self, mode: ServerMode) -> Self {
        self.mode = mode;
        self
    }

    /// Require credentials. The core itself checks only the password (its
    /// `-u PW`); a non-empty `user` is enforced too, through an
    /// `.ipc.on.auth` hook that accepts only that user name.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// Serve in the core's restricted (`-U`) mode: requests that would reach
    /// restricted builtins fail. Combine with [`auth`](Self::auth) as `-U PW`
    /// does, or use alone.
    pub fn restricted(mut self, restricted: bool) -> Self {
        self.restricted = restricted;
        self
    }

    /// Evaluate `expr` on the server's runtime before it starts serving,
    /// e.g. `(set t (table [a] (list [1 2])))`. Expressions run in order; the
    /// first that fails makes [`start`](Self::start) fail.
    pub fn setup(mut self, expr: &str) -> Self {
        self.setup.push(expr.to_string());
        self
    }

    /// Listen on this IPv4 address instead of 127.0.0.1 (e.g. a veth address
    /// inside a test namespace, see `crate::netns`). [`ServerMode::Process`]
    /// only; [`port`](CoreServer::port) is then a port on that address.
    pub fn host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }

    /// Listen on this port instead of one the kernel picks (0, the default).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Start serving. Returns once the port accepts connections.
    pub fn start(self) -> Result<CoreServer, String> {
        if let Some((user, pw)) = &self.auth {
            if pw.is_empty() {
                return Err("auth: the core treats an empty password as no auth".into());
            }
            if user.contains(':') {
                return Err("auth: a user name cannot contain ':'".into());
            }
            if pw.len() > 255 || pw.contains('\0') || user.contains('\0') {
                return Err("auth: password longer than 255 bytes or NUL in credentials".into());
            }
        }
        if self.host.is_some() && self.mode == ServerMode::Thread {
            return Err("host: only a ServerMode::Process server binds another address".into());
        }
        match self.mode {
            ServerMode::Process => start_process(self),
            ServerMode::Thread => start_thread(self),
        }
    }
}

/// A running core IPC server. Stops on drop.
///
/// ```no_run
/// let server = interop::CoreServer::builder()
///     .setup("(set t (table [a b] (list [1 2] [3 4])))")
///     .start()
///     .unwrap();
/// let text = interop::core_client_execute(server.port(), "(count t)").unwrap();
/// assert_eq!(text, "2");
/// ```
#[derive(Debug)]
pub struct CoreServer {
    port: u16,
    mode: ServerMode,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Process {
        child: Child,
        stdin: Option<ChildStdin>,
    },
    Thread {
        listener_id: i64,
    },
    Stopped,
}

impl CoreServer {
    /// Start a server with default settings (child process, no auth).
    ///
    /// # Panics
    /// If the server cannot be started; use [`CoreServer::builder`] for a
    /// `Result`.
    pub fn start() -> CoreServer {
        Self::builder()
            .start()
            .unwrap_or_else(|e| panic!("CoreServer::start: {e}"))
    }

    /// A builder for a server with auth, setup expressions, etc.
    pub fn builder() -> CoreServerBuilder {
        CoreServerBuilder::default()
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How this server is hosted.
    pub fn mode(&self) -> ServerMode {
        self.mode
    }

    /// Pins every thread of a process server to logical CPU `cpu` (as
    /// `taskset -a -p`), so a benchmark can place the core's server where it
    /// places raywire's. Fails for a thread server or a stopped one.
    pub fn pin_to_cpu(&self, cpu: usize) -> std::io::Result<()> {
        let Inner::Process { child, .. } = &self.inner else {
            return Err(std::io::Error::other("only a process server can be pinned"));
        };
        let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id()))?;
        for task in tasks {
            let tid: libc::pid_t = task?
                .file_name()
                .to_string_lossy()
                .parse()
                .map_err(std::io::Error::other)?;
            // SAFETY: `set` is a plain bit set, zeroed then filled by the libc
            // macros; the kernel reads `size_of::<cpu_set_t>()` bytes of it.
            let r = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Stop serving (also done on drop). Idempotent.
    ///
    /// A process server exits, closing every connection. A thread server
    /// closes its listening socket; connections it already accepted stay
    /// served until their clients close them (the core offers no way to find
    /// them per listener).
    pub fn stop(&mut self) {
        match std::mem::replace(&mut self.inner, Inner::Stopped) {
            Inner::Process { mut child, stdin } => {
                drop(stdin); // EOF on the child's stdin is its stop signal
                let deadline = Instant::now() + STOP_TIMEOUT;
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) => break,
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                    }
                }
            }
            Inner::Thread { listener_id } => {
                thread_ports()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&self.port);
                let _ = crate::core::call(move |ctx| {
                    ffi::unlisten(listener_id);
                    ctx.listeners.remove(&listener_id);
                    if ctx.listeners.is_empty() {
                        let _ = ffi::set_auth_secret(None);
                        ffi::set_restricted(false);
                        let _ = ffi::eval("(set .ipc.on.auth 0)");
                    }
                });
            }
            Inner::Stopped => {}
        }
    }
}

impl Drop for CoreServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// Thread mode

/// What the core thread keeps per in-process listener.
#[derive(Debug)]
pub(crate) struct ThreadListener {
    auth: Option<(String, String)>,
    restricted: bool,
}

/// Ports served in-process, so a core client in this process can refuse them
/// up front instead of deadlocking on the core thread.
pub(crate) fn thread_ports() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

fn start_thread(b: CoreServerBuilder) -> Result<CoreServer, String> {
    let CoreServerBuilder {
        auth,
        restricted,
        setup,
        port,
        ..
    } = b;
    let (id, port) = crate::core::call(move |ctx| -> Result<(i64, u16), String> {
        // Auth and restricted mode belong to the runtime's one poll, so every
        // in-process server has to agree on them.
        if let Some(other) = ctx.listeners.values().next()
            && (other.auth != auth || other.restricted != restricted)
        {
            return Err(
                "a thread-mode server with different auth/restricted settings is \
                        already running in this process; use ServerMode::Process"
                    .into(),
            );
        }
        for expr in &setup {
            ffi::eval(expr).map_err(|e| format!("setup `{expr}` failed: {}", fmt_err(&e)))?;
        }
        configure_auth(auth.as_ref(), restricted)?;
        let (id, bound) = ffi::listen("127.0.0.1", port)?;
        ctx.listeners
            .insert(id, ThreadListener { auth, restricted });
        Ok((id, bound))
    })??;
    thread_ports()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(port);
    Ok(CoreServer {
        port,
        mode: ServerMode::Thread,
        inner: Inner::Thread { listener_id: id },
    })
}

/// Apply auth settings to the current runtime (core thread or child).
fn configure_auth(auth: Option<&(String, String)>, restricted: bool) -> Result<(), String> {
    match auth {
        Some((user, pw)) => {
            ffi::set_auth_secret(Some(pw))?;
            let hook = if user.is_empty() {
                "(set .ipc.on.auth 0)".to_string()
            } else {
                format!(
                    "(set .ipc.on.auth (fn [u p] (== u {})))",
                    crate::rayfall_string(user)
                )
            };
            ffi::eval(&hook).map_err(|e| format!("installing .ipc.on.auth: {}", fmt_err(&e)))?;
        }
        None => ffi::set_auth_secret(None)?,
    }
    ffi::set_restricted(restricted);
    Ok(())
}

fn fmt_err(e: &ffi::CoreErr) -> String {
    crate::CoreError {
        code: e.code.clone(),
        message: e.message.clone(),
    }
    .to_string()
}

// ---------------------------------------------------------------------------
// Process mode: parent side

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn start_process(b: CoreServerBuilder) -> Result<CoreServer, String> {
    if !cfg!(target_os = "linux") {
        return Err("ServerMode::Process needs Linux (.init_array start-up hook)".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    // If the start-up hook were missing, the child would be a plain run of the
    // test harness: this filter makes that run match no test and exit at once.
    cmd.args(["__interop_core_server_child_no_such_test__", "--exact"])
        .env(CHILD_ENV, "1")
        .env(CHILD_PORT_ENV, b.port.to_string())
        .env(CHILD_HOST_ENV, b.host.as_deref().unwrap_or("127.0.0.1"))
        .env(CHILD_RESTRICTED_ENV, if b.restricted { "1" } else { "0" })
        .env(
            CHILD_SETUP_ENV,
            b.setup.iter().map(|e| hex(e)).collect::<Vec<_>>().join(","),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match &b.auth {
        Some((u, p)) => cmd.env(CHILD_AUTH_ENV, hex(&format!("{u}:{p}"))),
        None => cmd.env_remove(CHILD_AUTH_ENV),
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawning the server child: {e}"))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");

    // Read the child's status line on a helper thread, so a wedged child
    // cannot hang us past START_TIMEOUT.
    let (tx, rx) = mpsc::channel::<Result<u16, String>>();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        let outcome = loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    break Err("the server child exited before it was ready (is the \
                               interop start-up hook linked into this binary?)"
                        .to_string());
                }
                Ok(_) => {
                    let l = line.trim_end();
                    if let Some(p) = l.strip_prefix(READY) {
                        break p.parse::<u16>().map_err(|e| format!("bad port {p:?}: {e}"));
                    }
                    if let Some(msg) = l.strip_prefix(FAILED) {
                        break Err(msg.to_string());
                    }
                    // Anything else is noise from the child; keep reading.
                }
            }
        };
        let _ = tx.send(outcome);
        // Keep draining so the child never blocks or dies writing stdout.
        let _ = std::io::copy(&mut lines, &mut std::io::sink());
    });
    let outcome = rx
        .recv_timeout(START_TIMEOUT)
        .unwrap_or_else(|_| Err("the server child did not become ready in time".into()));
    let mut server = CoreServer {
        port: 0,
        mode: ServerMode::Process,
        inner: Inner::Process { child, stdin },
    };
    match outcome {
        Ok(port) => {
            server.port = port;
            Ok(server)
        }
        Err(e) => {
            server.stop();
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------
// Process mode: child side

/// Runs in every process that links this library, before `main`. Does
/// nothing unless [`CHILD_ENV`] is set, in which case this process is a
/// server child: it serves until its stdin closes, then exits.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CHILD_HOOK: extern "C" fn() = child_hook;

#[cfg(target_os = "linux")]
extern "C" fn child_hook() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let code = child_main();
        std::process::exit(code);
    }
}

#[cfg(target_os = "linux")]
fn child_main() -> i32 {
    use rayforce::{Poll, Runtime};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    // Rust's runtime never initialized here (we run before `main`), so
    // SIGPIPE still kills: ignore it, as `main` would have.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    close_inherited_fds();

    let port: u16 = std::env::var(CHILD_PORT_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let host = std::env::var(CHILD_HOST_ENV).unwrap_or_else(|_| "127.0.0.1".into());
    let restricted = std::env::var(CHILD_RESTRICTED_ENV)
        .map(|v| v == "1")
        .unwrap_or(false);
    let auth = std::env::var(CHILD_AUTH_ENV)
        .ok()
        .and_then(|h| unhex(&h))
        .map(|cred| {
            let (u, p) = cred.split_once(':').unwrap_or(("", cred.as_str()));
            (u.to_string(), p.to_string())
        });
    let setup: Vec<String> = std::env::var(CHILD_SETUP_ENV)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(unhex)
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let watcher_stop = Arc::clone(&stop);
    let _ = std::thread::Builder::new()
        .name("interop-server-stdin".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            watcher_stop.store(true, Ordering::SeqCst);
        });

    let say = |line: String| {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };

    let result = Runtime::scope(move |_rt| {
        let poll = Poll::install()?;
        let ready: Result<u16, String> = (|| {
            for expr in &setup {
                ffi::eval(expr).map_err(|e| format!("setup `{expr}` failed: {}", fmt_err(&e)))?;
            }
            configure_auth(auth.as_ref(), restricted)?;
            let (_, bound) = ffi::listen(&host, port)?;
            Ok(bound)
        })();
        match ready {
            Ok(bound) => say(format!("{READY}{bound}")),
            Err(e) => {
                say(format!("{FAILED}{}", e.replace('\n', " ")));
                return Ok(1);
            }
        }
        // Whatever evaluated requests print must not land in the pipe the
        // parent stopped reading: send stdout to stderr from here on.
        unsafe {
            libc::dup2(2, 1);
        }
        while !stop.load(Ordering::SeqCst) {
            if poll.run_for(CHILD_SLICE_MS).is_err() {
                break;
            }
        }
        Ok(0)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            say(format!("{FAILED}runtime: {e}"));
            1
        }
    }
}

/// Close every descriptor above stderr that the parent leaked to us (the core
/// opens its sockets without close-on-exec).
#[cfg(target_os = "linux")]
fn close_inherited_fds() {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|fd| *fd > 2)
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        // Includes the (already closed) directory fd; EBADF is harmless.
        unsafe {
            libc::close(fd);
        }
    }
}
