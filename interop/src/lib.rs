//! Interop harness: the real RayforceDB C core (through the `rayforce` crate,
//! pinned to 1.4.0) as an oracle for `raywire`.
//!
//! What it offers:
//!
//! - **Evaluate and print** — [`core_eval_fmt`], [`core_eval_error`]: what the
//!   core's REPL would print for an expression, or the error it raises.
//! - **Serialize / deserialize** — [`core_ser`] (the full IPC frame the core
//!   builds for a value), [`core_de_fmt`] and [`core_de_equals`] (hand the core
//!   a frame and see what it decodes), [`core_ser_error`].
//! - **Compression** — [`core_compress`], [`core_decompress`],
//!   [`core_compress_frame`], [`core_decompress_frame`]: the core's own
//!   delta + RLE frame codec.
//! - **Server** — [`CoreServer`]: the core's IPC listener on a kernel-picked
//!   port, with optional auth, restricted mode and setup expressions.
//! - **Client** — [`core_client_execute`] and friends: the core's IPC client
//!   (`rayforce::TcpClient`, or `.ipc.open` when options are needed).
//! - **Raw bytes** — [`raw_exchange`]: one request frame in, the server's
//!   response frame out, over a plain socket.
//!
//! # Threading
//!
//! The core allows one runtime per process, bound to the thread that made it.
//! All core work here runs on one dedicated thread (see `core.rs`), so every
//! function may be called from any thread, concurrently: calls are queued
//! and executed one at a time. Servers in [`ServerMode::Process`] (the
//! default) are child processes with their own runtime, so a core client and
//! a core server can talk within one test binary.
//!
//! Every function returns `Err(String)` rather than panicking on a core-side
//! failure; the strings are meant for test failure messages.

mod core;
mod ffi;
pub mod netns;
mod server;

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub use server::{CoreServer, CoreServerBuilder, ServerMode};

/// The IPC frame magic (`0xcefadefa`, little-endian on the wire).
pub const FRAME_PREFIX: u32 = 0xcefa_defa;
/// The serde wire version the pinned core speaks (byte 4 of a frame and the
/// first handshake byte).
pub const WIRE_VERSION: u8 = 3;
/// Header flag: the payload is compressed (`u32` uncompressed length, then
/// the codec's output).
pub const FLAG_COMPRESSED: u8 = ffi::FLAG_COMPRESSED;
/// Message types (byte 7 of the header).
pub const MSG_ASYNC: u8 = 0;
/// Synchronous request.
pub const MSG_SYNC: u8 = 1;
/// Response to a synchronous request.
pub const MSG_RESPONSE: u8 = 2;
/// Frame header length.
pub const HEADER_LEN: usize = ffi::HEADER_LEN;

/// An error value the core produced: its short code (`type`, `name`,
/// `parse`, ...) and the detail message that came with it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreError {
    /// Short error code, as carried by the error object (at most 7 bytes).
    pub code: String,
    /// Detail text from the evaluating thread; empty when there was none.
    /// Never part of the wire format.
    pub message: String,
}

impl fmt::Display for CoreError {
    /// `error: CODE: MESSAGE` (or `error: CODE`), as the core's REPL prints
    /// an error without a stack trace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "error: {}", self.code)
        } else {
            write!(f, "error: {}: {}", self.code, self.message)
        }
    }
}

impl From<ffi::CoreErr> for CoreError {
    fn from(e: ffi::CoreErr) -> Self {
        CoreError {
            code: e.code,
            message: e.message,
        }
    }
}

fn err_text(e: ffi::CoreErr) -> String {
    CoreError::from(e).to_string()
}

/// Quote `s` as a Rayfall string literal (`"..."`, with `\\`, `\"`, `\n`,
/// `\r`, `\t` escaped).
pub fn rayfall_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// Evaluate and print

/// Evaluate `expr` in the core runtime and return the core's printed form of
/// the result, exactly as its REPL (and its remote `-h` client) prints it
/// (`ray_fmt_pp`: the display formatter, which boxes tables and breaks wide
/// dicts/lists over lines). A null result prints as `null` (the REPL itself
/// would print nothing).
///
/// `Err` carries the REPL's one-line error rendering, `error: CODE` or
/// `error: CODE: DETAIL`; see [`core_eval_error`] for the parts.
///
/// Globals set by one call (`(set x 1)`) are visible to later calls: every
/// call shares the process's one runtime.
pub fn core_eval_fmt(expr: &str) -> Result<String, String> {
    let expr = expr.to_string();
    core::call(move |_| ffi::eval(&expr).map(|v| v.fmt_pp()).map_err(err_text))?
}

/// Evaluate `expr` and return the error it raises. `Err` if it succeeds
/// (with its printed value) or the harness fails.
pub fn core_eval_error(expr: &str) -> Result<CoreError, String> {
    let expr = expr.to_string();
    core::call(move |_| match ffi::eval(&expr) {
        Ok(v) => Err(format!("`{expr}` did not fail; it gave {}", v.fmt_pp())),
        Err(e) => Ok(CoreError::from(e)),
    })?
}

// ---------------------------------------------------------------------------
// Serialize / deserialize

/// The bytes of the IPC frame (16-byte header + payload) the core builds when
/// it serializes the value of `expr` (`ray_ser`, what the `ser` builtin
/// returns). The header's message type is 0 (async) and its flags 0; a
/// transport sets the message type, see [`with_msgtype`].
pub fn core_ser(expr: &str) -> Result<Vec<u8>, String> {
    let expr = expr.to_string();
    core::call(move |_| {
        let v = ffi::eval(&expr).map_err(err_text)?;
        v.ser().map_err(err_text)
    })?
}

/// The frame the core builds for an *error value* with this code (what a
/// server sends back for a failed request, as a response payload: type byte
/// 127, then the code NUL-padded to 8 bytes). The detail message is never
/// serialized.
pub fn core_ser_error(code: &str) -> Result<Vec<u8>, String> {
    let code = code.to_string();
    core::call(move |_| ffi::ser_error(&code).map_err(err_text))?
}

/// A copy of `frame` with header byte 7 (message type) set to `msgtype`.
pub fn with_msgtype(frame: &[u8], msgtype: u8) -> Vec<u8> {
    let mut f = frame.to_vec();
    if f.len() > 7 {
        f[7] = msgtype;
    }
    f
}

/// Whether the payload is a serialized error value (type byte 127): `ray_de`
/// hands those back as error objects, indistinguishable from a decode
/// failure, so the harness looks first.
fn payload_is_error_value(frame: &[u8]) -> bool {
    frame.len() == HEADER_LEN + 9 && frame[HEADER_LEN] == 127
}

/// Decompress a frame that carries [`FLAG_COMPRESSED`], the way the core's
/// IPC reader does before decoding (`ray_de` itself ignores the flag).
fn plain_frame(frame: &[u8]) -> Result<Vec<u8>, String> {
    if frame.len() > 5 && frame[5] & FLAG_COMPRESSED != 0 {
        core_decompress_frame(frame)
    } else {
        Ok(frame.to_vec())
    }
}

/// Hand `frame` (header + payload) to the core's deserializer and return the
/// core's printed form of what it decoded (REPL formatting, as
/// [`core_eval_fmt`]).
///
/// A compressed frame is decompressed with the core's codec first, as its
/// IPC reader would. A serialized error value prints as `error: CODE`.
/// `Err` when the core rejects the frame: bad magic, version, endianness,
/// size mismatch, trailing bytes, malformed payload... (the text is the
/// core's error).
pub fn core_de_fmt(frame: &[u8]) -> Result<String, String> {
    let frame = plain_frame(frame)?;
    core::call(move |_| match ffi::de(&frame) {
        Ok(v) => Ok(v.fmt_pp()),
        Err(e) if payload_is_error_value(&frame) => Ok(format!("error: {}", e.code)),
        Err(e) => Err(format!("core rejected the frame: {}", err_text(e))),
    })?
}

/// Whether the core decodes `frame` to the same value as evaluating `expr`.
///
/// The core has no whole-object equality builtin: `==` is element-wise,
/// coerces numbers (`(== 1 1.0)` is true) and refuses dicts and tables. So
/// this uses a strict structural equality over the two core objects: same
/// type at every level (a list of longs is not a long vector), atoms and
/// vectors compared by the bytes `ray_ser` emits for them (exact bit
/// patterns, lengths, and the vector has-nulls attribute), lists, dicts and
/// tables element by element. One normalization: a symbol atom's "quoted"
/// flag (set on `'a` literals, `0x20` in the atom flags byte) is ignored.
///
/// `Err` when the frame does not decode or `expr` fails.
pub fn core_de_equals(frame: &[u8], expr: &str) -> Result<bool, String> {
    let frame = plain_frame(frame)?;
    let expr = expr.to_string();
    core::call(move |_| {
        let expected = ffi::eval(&expr).map_err(|e| format!("`{expr}`: {}", err_text(e)))?;
        let got = match ffi::de(&frame) {
            Ok(v) => v,
            Err(e) if payload_is_error_value(&frame) => {
                return Err(format!("the frame holds an error value ({})", e.code));
            }
            Err(e) => return Err(format!("core rejected the frame: {}", err_text(e))),
        };
        ffi::equal(got.raw(), expected.raw()).map_err(err_text)
    })?
}

/// Structural equality (as [`core_de_equals`]) of two expressions' values.
pub fn core_equals(expr_a: &str, expr_b: &str) -> Result<bool, String> {
    let (a, b) = (expr_a.to_string(), expr_b.to_string());
    core::call(move |_| {
        let va = ffi::eval(&a).map_err(|e| format!("`{a}`: {}", err_text(e)))?;
        let vb = ffi::eval(&b).map_err(|e| format!("`{b}`: {}", err_text(e)))?;
        ffi::equal(va.raw(), vb.raw()).map_err(err_text)
    })?
}

// ---------------------------------------------------------------------------
// Compression

/// The core's frame codec (`ray_ipc_compress_at`, delta then RLE) applied to
/// `payload` unconditionally (threshold 0). `None` when the output would not
/// be smaller than the input. The core itself only compresses payloads over
/// 2000 bytes, and never toward a loopback peer; see [`core_compress_at`].
pub fn core_compress(payload: &[u8]) -> Option<Vec<u8>> {
    core_compress_at(payload, 0)
}

/// As [`core_compress`], with the core's threshold rule: `None` unless
/// `payload.len() > threshold` (the core's default is 2000).
pub fn core_compress_at(payload: &[u8], threshold: usize) -> Option<Vec<u8>> {
    let payload = payload.to_vec();
    core::call(move |_| ffi::compress_at(&payload, threshold))
        .ok()
        .flatten()
}

/// Inverse of [`core_compress`] (`ray_ipc_decompress`). `None` unless the
/// codec produces exactly `uncompressed_len` bytes.
pub fn core_decompress(compressed: &[u8], uncompressed_len: usize) -> Option<Vec<u8>> {
    let compressed = compressed.to_vec();
    core::call(move |_| ffi::decompress(&compressed, uncompressed_len))
        .ok()
        .flatten()
}

/// The frame the core's IPC writer would send for this uncompressed `frame`
/// on a link whose compression threshold is `threshold` (0 = always try):
/// header flags gain [`FLAG_COMPRESSED`], the size field becomes the new
/// payload length, and the payload becomes the `u32` (little-endian)
/// uncompressed size followed by the codec output. `Ok(None)` when the core
/// would send the frame as is (payload not over the threshold, or
/// compressed size + 4 not smaller than the payload).
pub fn core_compress_frame(frame: &[u8], threshold: usize) -> Result<Option<Vec<u8>>, String> {
    let (header, payload) = split_frame(frame)?;
    let Some(comp) = core_compress_at(payload, threshold) else {
        return Ok(None);
    };
    if comp.len() + 4 >= payload.len() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + comp.len());
    out.extend_from_slice(&header[..8]);
    out[5] |= FLAG_COMPRESSED;
    out.extend_from_slice(&((comp.len() + 4) as i64).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&comp);
    Ok(Some(out))
}

/// Undo [`core_compress_frame`]: the uncompressed frame (flag cleared, size
/// restored), decoded with the core's codec.
pub fn core_decompress_frame(frame: &[u8]) -> Result<Vec<u8>, String> {
    let (header, payload) = split_frame(frame)?;
    if header[5] & FLAG_COMPRESSED == 0 {
        return Err("frame is not flagged compressed".into());
    }
    if payload.len() < 4 {
        return Err("compressed payload shorter than its 4-byte length".into());
    }
    let ulen = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
    let plain = core_decompress(&payload[4..], ulen)
        .ok_or_else(|| format!("the core's codec could not restore {ulen} bytes"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len());
    out.extend_from_slice(&header[..8]);
    out[5] &= !FLAG_COMPRESSED;
    out.extend_from_slice(&(plain.len() as i64).to_le_bytes());
    out.extend_from_slice(&plain);
    Ok(out)
}

fn split_frame(frame: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if frame.len() < HEADER_LEN {
        return Err(format!(
            "frame of {} bytes is shorter than its header",
            frame.len()
        ));
    }
    let size = i64::from_le_bytes(frame[8..16].try_into().unwrap());
    if size < 0 || size as usize != frame.len() - HEADER_LEN {
        return Err(format!(
            "header size {size} does not match the {} payload bytes",
            frame.len() - HEADER_LEN
        ));
    }
    Ok(frame.split_at(HEADER_LEN))
}

// ---------------------------------------------------------------------------
// Client

/// Round-trip budget of the core client calls when none is given. A peer
/// that never answers would otherwise hold the core thread, and with it every
/// other harness call in the process, forever.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for [`core_client_execute_with`].
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Credentials, sent when the server asks for them.
    pub user: String,
    /// Password (`None`: connect without credentials).
    pub password: Option<String>,
    /// The link's compression threshold, as `.ipc.open`'s `compress` option:
    /// `Some(0)` compresses every request frame that shrinks, `Some(n)` those
    /// over `n` bytes. `None` leaves the core's default, which never
    /// compresses toward a loopback peer.
    pub compress: Option<usize>,
    /// Connect and round-trip timeout (default [`DEFAULT_CLIENT_TIMEOUT`]).
    pub timeout: Option<Duration>,
}

fn refuse_thread_port(port: u16) -> Result<(), String> {
    let served_here = server::thread_ports()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&port);
    if served_here {
        return Err(format!(
            "port {port} is served by a ServerMode::Thread server on this process's core \
             thread, which the core client would block: use ServerMode::Process"
        ));
    }
    Ok(())
}

/// Format a client-side failure: a server's error value is `error: CODE`
/// (the wire carries no message); a local failure keeps its detail.
fn client_err(e: rayforce::RayError) -> String {
    if e.code_str.is_empty() {
        e.message
    } else if e.code == rayforce::ErrorCode::Io && !e.message.is_empty() {
        format!("error: {}: {}", e.code_str, e.message)
    } else {
        format!("error: {}", e.code_str)
    }
}

/// Connect to the IPC server on 127.0.0.1:`port` with the core's own client
/// (`rayforce::TcpClient`), send `expr` as a string for the server to
/// evaluate, and return the result as the core prints it (as
/// [`core_eval_fmt`]). `Err("error: CODE")` when the server answers with an
/// error; other text for connection failures. The connect may take up to the
/// core's 5 s handshake budget, the exchange up to
/// [`DEFAULT_CLIENT_TIMEOUT`] (after which the core closes the connection and
/// this returns `error: io: ...`).
pub fn core_client_execute(port: u16, expr: &str) -> Result<String, String> {
    core_client_execute_auth(port, "", "", expr)
}

/// [`core_client_execute`] with credentials.
pub fn core_client_execute_auth(
    port: u16,
    user: &str,
    password: &str,
    expr: &str,
) -> Result<String, String> {
    refuse_thread_port(port)?;
    let (user, password, expr) = (user.to_string(), password.to_string(), expr.to_string());
    core::call(move |_| {
        let client = rayforce::TcpClient::connect("127.0.0.1", port, &user, &password)
            .map_err(|e| e.to_string())?;
        let v = client
            .execute_timeout(&expr, DEFAULT_CLIENT_TIMEOUT)
            .map_err(client_err)?;
        drop(client);
        // Print with the REPL's formatter: round-trip the value through the
        // core's serde into a raw object (what crossed the wire anyway).
        let bytes = v.serialize().map_err(|e| e.to_string())?;
        let obj = ffi::de(&bytes).map_err(err_text)?;
        Ok(obj.fmt_pp())
    })?
}

/// The core's client through Rayfall's `.ipc.open` / `.ipc.send`, for the
/// options [`rayforce::TcpClient`] does not expose (compression threshold).
/// Returns the printed result as [`core_client_execute`].
pub fn core_client_execute_with(
    port: u16,
    expr: &str,
    opts: &ClientOptions,
) -> Result<String, String> {
    refuse_thread_port(port)?;
    let mut target = format!("127.0.0.1:{port}");
    if let Some(pw) = &opts.password {
        target = format!("{target}:{}:{pw}", opts.user);
    }
    let mut dict = Vec::new();
    if let Some(c) = opts.compress {
        dict.push(format!("compress: {c}"));
    }
    let timeout_ms = opts
        .timeout
        .unwrap_or(DEFAULT_CLIENT_TIMEOUT)
        .as_millis()
        .max(1);
    dict.push(format!("timeout: {timeout_ms}"));
    let open = format!(
        "(.ipc.open {} {{{}}})",
        rayfall_string(&target),
        dict.join(" ")
    );
    let expr = expr.to_string();
    core::call(move |_| {
        let h = ffi::eval(&open).map_err(|e| format!("{open}: {}", err_text(e)))?;
        let handle = h.fmt_pp();
        let send = format!(
            "(.ipc.send {handle} {} {timeout_ms})",
            rayfall_string(&expr)
        );
        let result = ffi::eval(&send)
            .map(|v| v.fmt_pp())
            .map_err(|e| format!("error: {}", e.code));
        let _ = ffi::eval(&format!("(.ipc.close {handle})"));
        result
    })?
}

// ---------------------------------------------------------------------------
// Raw bytes

/// One exchange over a plain socket with the IPC server on 127.0.0.1:`port`:
/// the 2-byte handshake (`[WIRE_VERSION, 0]`), credentials when the server
/// asks and `auth` is given (`len` byte counting a trailing NUL, then
/// `user:password\0`, answered by one status byte), then `request` written
/// as is, and the first response frame read back whole (header + payload).
///
/// Useful to capture exactly what a server puts on the wire.
pub fn raw_exchange(
    port: u16,
    auth: Option<(&str, &str)>,
    request: &[u8],
) -> Result<Vec<u8>, String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| io("connect", e))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| io("timeout", e))?;
    s.set_nodelay(true).ok();
    s.write_all(&[WIRE_VERSION, 0])
        .map_err(|e| io("handshake", e))?;
    let mut hs = [0u8; 2];
    s.read_exact(&mut hs)
        .map_err(|e| io("handshake reply", e))?;
    if hs[0] != WIRE_VERSION {
        return Err(format!("server speaks wire version {}", hs[0]));
    }
    if hs[1] == 1 {
        let (u, p) = auth.ok_or("the server requires credentials")?;
        let cred = format!("{u}:{p}\0");
        if cred.len() > 255 {
            return Err("credentials too long".into());
        }
        s.write_all(&[cred.len() as u8])
            .map_err(|e| io("credentials", e))?;
        s.write_all(cred.as_bytes())
            .map_err(|e| io("credentials", e))?;
        let mut ok = [0u8; 1];
        s.read_exact(&mut ok).map_err(|e| io("auth reply", e))?;
        if ok[0] != 0 {
            return Err(format!("authentication rejected (status {})", ok[0]));
        }
    }
    s.write_all(request).map_err(|e| io("request", e))?;
    let mut header = [0u8; HEADER_LEN];
    s.read_exact(&mut header)
        .map_err(|e| io("response header", e))?;
    let size = i64::from_le_bytes(header[8..16].try_into().unwrap());
    if !(0..=256 * 1024 * 1024).contains(&size) {
        return Err(format!("response size {size} out of range"));
    }
    let mut frame = header.to_vec();
    frame.resize(HEADER_LEN + size as usize, 0);
    s.read_exact(&mut frame[HEADER_LEN..])
        .map_err(|e| io("response payload", e))?;
    Ok(frame)
}

/// The exact request frame the core's client sends for `expr` with these
/// options (e.g. `compress: Some(0)` for a compressed frame): a throwaway
/// listener on a harness thread plays the server, records the first frame
/// the core client writes, and answers it with `0` so the client returns.
/// Credentials in `opts` are ignored (the stand-in does not ask for them).
pub fn core_client_request_frame(expr: &str, opts: &ClientOptions) -> Result<Vec<u8>, String> {
    use std::net::TcpListener;
    // Built before the core thread gets busy with the client below.
    let reply = with_msgtype(&core_ser("0")?, MSG_RESPONSE);
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let stand_in = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        let io = |e: std::io::Error| e.to_string();
        // Bounded accept, so a client that never connects cannot hang us.
        listener.set_nonblocking(true).map_err(io)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return Err("the core client never connected".into());
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(io(e)),
            }
        };
        s.set_nonblocking(false).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io)?;
        let mut hs = [0u8; 2];
        s.read_exact(&mut hs).map_err(io)?;
        s.write_all(&[WIRE_VERSION, 0]).map_err(io)?;
        let mut header = [0u8; HEADER_LEN];
        s.read_exact(&mut header).map_err(io)?;
        let size = i64::from_le_bytes(header[8..16].try_into().unwrap());
        if !(0..=256 * 1024 * 1024).contains(&size) {
            return Err(format!("request size {size} out of range"));
        }
        let mut frame = header.to_vec();
        frame.resize(HEADER_LEN + size as usize, 0);
        s.read_exact(&mut frame[HEADER_LEN..]).map_err(io)?;
        s.write_all(&reply).map_err(io)?;
        // Wait for the client to hang up so it never sees a reset mid-reply.
        let _ = s.read(&mut [0u8; 1]);
        Ok(frame)
    });
    let opts = ClientOptions {
        password: None,
        ..opts.clone()
    };
    let sent = core_client_execute_with(port, expr, &opts);
    let frame = stand_in
        .join()
        .map_err(|_| "stand-in server panicked".to_string())??;
    sent.map_err(|e| format!("core client: {e}"))?;
    Ok(frame)
}

/// A SYNC request frame carrying `text` as a string atom (what the core's
/// client sends for `execute`), built by the core's serializer.
pub fn core_request_frame(text: &str) -> Result<Vec<u8>, String> {
    Ok(with_msgtype(&core_ser(&rayfall_string(text))?, MSG_SYNC))
}

/// Lower-case hex of `bytes`, no separators (handy in assertions and notes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
