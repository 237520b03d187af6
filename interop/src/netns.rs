//! Test hosts: two Linux network namespaces joined by a veth pair, optionally
//! shaped to a slower link with `tc`, so traffic between "hosts" crosses a
//! real (virtual) network device instead of loopback. Peers see a non-loopback
//! address, which is what switches compression on in the core and in raywire.
//!
//! [`HostPair::create`] makes namespaces `rw<pid>h<n>a` / `...b`, a veth pair
//! with `10.77.<n>.1/24` in A and `10.77.<n>.2/24` in B, and brings both ends
//! and both loopbacks up. Dropping the pair deletes both namespaces (which
//! takes the veth with them), also while a panic unwinds.
//!
//! Code runs "on a host" through [`HostPair::run_in`]: a fresh thread enters
//! the namespace with `setns(2)`, which moves only that thread, so every socket
//! it (and any thread or child process it starts) creates lives in that
//! namespace. Sockets keep their namespace when handed to other threads, so a
//! server bound in A keeps serving A's veth address after `run_in` returns.
//! [`HostPair::command_in`] builds a process started under `ip netns exec`.
//!
//! Needs root and iproute2 (`ip`, and `tc` for [`HostPair::shape`]);
//! [`HostPair::create`] returns [`NetnsError::Unavailable`] otherwise, so a
//! test can print why it skipped.
//!
//! ```no_run
//! let pair = match interop::netns::HostPair::create() {
//!     Ok(p) => p,
//!     Err(e) => return eprintln!("SKIPPED: {e}"),
//! };
//! let listener = pair
//!     .run_in(interop::netns::Host::A, || std::net::TcpListener::bind((pair.addr_a(), 0)))
//!     .unwrap()
//!     .unwrap();
//! ```

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Why test hosts could not be made or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetnsError {
    /// This machine cannot make namespaces here (not root, no iproute2, not
    /// Linux): skip the test and say why.
    Unavailable(String),
    /// An `ip` or `tc` command failed; its stderr says why.
    Command {
        /// The command line.
        cmd: String,
        /// What it printed on stderr (or how it could not be started).
        stderr: String,
    },
    /// The namespace file could not be opened or entered.
    Enter {
        /// The namespace.
        name: String,
        /// The system error.
        source: std::io::Error,
    },
    /// The closure run on a host panicked.
    Panicked(String),
}

impl std::fmt::Display for NetnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetnsError::Unavailable(why) => write!(f, "network namespaces unavailable: {why}"),
            NetnsError::Command { cmd, stderr } => write!(f, "`{cmd}` failed: {stderr}"),
            NetnsError::Enter { name, source } => write!(f, "entering namespace {name}: {source}"),
            NetnsError::Panicked(name) => write!(f, "the code run in namespace {name} panicked"),
        }
    }
}

impl std::error::Error for NetnsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetnsError::Enter { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One end of a [`HostPair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The first namespace (address `.1`).
    A,
    /// The second namespace (address `.2`).
    B,
}

/// A shaped link: `tc qdisc replace dev ... root tbf rate RATE burst BURST
/// latency LATENCY` on both veth ends, so each direction is capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// `tc` rate, e.g. `1gbit`.
    pub rate: String,
    /// `tc` bucket size, e.g. `256kb`.
    pub burst: String,
    /// `tc` queueing latency bound, e.g. `50ms`.
    pub latency: String,
}

impl Shape {
    /// 1 Gbit/s, 256 kB burst, 50 ms latency: the issue's link.
    pub fn gigabit() -> Shape {
        Shape {
            rate: "1gbit".into(),
            burst: "256kb".into(),
            latency: "50ms".into(),
        }
    }
}

/// Two namespaces and the veth between them; removed on drop.
#[derive(Debug)]
pub struct HostPair {
    ns: [String; 2],
    dev: [String; 2],
    addr: [Ipv4Addr; 2],
    /// Which namespaces exist yet (so a half-made pair cleans up what it made).
    made: [bool; 2],
}

fn run(cmd: &str, args: &[&str]) -> Result<String, NetnsError> {
    let line = format!("{cmd} {}", args.join(" "));
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetnsError::Command {
            cmd: line.clone(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetnsError::Command {
            cmd: line,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Whether test hosts can be made here; `Err` says why not.
pub fn available() -> Result<(), NetnsError> {
    if !cfg!(target_os = "linux") {
        return Err(NetnsError::Unavailable("not Linux".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(NetnsError::Unavailable(
            "not root (namespaces and veth need CAP_NET_ADMIN)".into(),
        ));
    }
    match Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => Err(NetnsError::Unavailable(
            "`ip` (iproute2) not found or not working".into(),
        )),
    }
}

impl HostPair {
    /// Make the two namespaces and the veth between them (unshaped).
    pub fn create() -> Result<HostPair, NetnsError> {
        available()?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let base = format!("rw{pid}h{n}");
        // Interface names are limited to 15 bytes.
        let tag = format!("{:x}{n}", pid & 0xff_ffff);
        let third = (n % 250) as u8;
        let mut pair = HostPair {
            ns: [format!("{base}a"), format!("{base}b")],
            dev: [format!("rwa{tag}"), format!("rwb{tag}")],
            addr: [
                Ipv4Addr::new(10, 77, third, 1),
                Ipv4Addr::new(10, 77, third, 2),
            ],
            made: [false, false],
        };
        for i in 0..2 {
            match run("ip", &["netns", "add", &pair.ns[i]]) {
                Ok(_) => pair.made[i] = true,
                // The first failure is most likely a sandbox that forbids
                // namespaces: report it as a reason to skip.
                Err(e) if i == 0 => return Err(NetnsError::Unavailable(e.to_string())),
                Err(e) => return Err(e),
            }
        }
        let [na, nb] = &pair.ns;
        let [da, db] = &pair.dev;
        run(
            "ip",
            &[
                "link", "add", da, "netns", na, "type", "veth", "peer", "name", db, "netns", nb,
            ],
        )?;
        for i in 0..2 {
            let (ns, dev) = (&pair.ns[i], &pair.dev[i]);
            let cidr = format!("{}/24", pair.addr[i]);
            run("ip", &["-n", ns, "addr", "add", &cidr, "dev", dev])?;
            run("ip", &["-n", ns, "link", "set", dev, "up"])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    /// The namespace name of `host` (for `ip netns exec NAME ...`).
    pub fn name(&self, host: Host) -> &str {
        &self.ns[host as usize]
    }

    /// The veth device of `host`.
    pub fn device(&self, host: Host) -> &str {
        &self.dev[host as usize]
    }

    /// The veth address of `host`.
    pub fn addr(&self, host: Host) -> Ipv4Addr {
        self.addr[host as usize]
    }

    /// The address of host A.
    pub fn addr_a(&self) -> Ipv4Addr {
        self.addr[0]
    }

    /// The address of host B.
    pub fn addr_b(&self) -> Ipv4Addr {
        self.addr[1]
    }

    /// Cap both directions of the link (replaces an earlier shape).
    pub fn shape(&self, shape: &Shape) -> Result<(), NetnsError> {
        for i in 0..2 {
            run(
                "tc",
                &[
                    "-n",
                    &self.ns[i],
                    "qdisc",
                    "replace",
                    "dev",
                    &self.dev[i],
                    "root",
                    "tbf",
                    "rate",
                    &shape.rate,
                    "burst",
                    &shape.burst,
                    "latency",
                    &shape.latency,
                ],
            )?;
        }
        Ok(())
    }

    /// Remove the shape: the link runs at veth speed again.
    pub fn unshape(&self) -> Result<(), NetnsError> {
        for i in 0..2 {
            run(
                "tc",
                &[
                    "-n",
                    &self.ns[i],
                    "qdisc",
                    "del",
                    "dev",
                    &self.dev[i],
                    "root",
                ],
            )?;
        }
        Ok(())
    }

    /// What `tc qdisc show` reports for `host`'s veth (to check a shape).
    pub fn qdisc(&self, host: Host) -> Result<String, NetnsError> {
        let i = host as usize;
        run(
            "tc",
            &["-n", &self.ns[i], "qdisc", "show", "dev", &self.dev[i]],
        )
    }

    /// Run `f` on a new thread inside `host`'s namespace and return its
    /// result. Threads and processes `f` starts stay in that namespace.
    pub fn run_in<T, F>(&self, host: Host, f: F) -> Result<T, NetnsError>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let name = self.ns[host as usize].clone();
        let path = format!("/run/netns/{name}");
        let file = File::open(&path).map_err(|source| NetnsError::Enter {
            name: name.clone(),
            source,
        })?;
        std::thread::scope(|s| {
            let worker = s.spawn(move || -> Result<T, NetnsError> {
                // SAFETY: `file` is an open namespace file for the whole call;
                // setns only changes this thread's network namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(NetnsError::Enter {
                        name: name.clone(),
                        source: std::io::Error::last_os_error(),
                    });
                }
                Ok(f())
            });
            worker
                .join()
                .map_err(|_| NetnsError::Panicked(self.ns[host as usize].clone()))?
        })
    }

    /// A command that runs `program` inside `host`'s namespace
    /// (`ip netns exec NAME program`); add arguments and spawn it.
    pub fn command_in(&self, host: Host, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns[host as usize], program]);
        c
    }
}

impl Drop for HostPair {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth end inside it, and with it
        // the peer end.
        for i in 0..2 {
            if self.made[i] {
                let _ = run("ip", &["netns", "del", &self.ns[i]]);
            }
        }
    }
}
