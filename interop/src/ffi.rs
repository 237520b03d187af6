//! A thin owned-pointer layer over the core's C API.
//!
//! The safe `rayforce` crate keeps raw pointers private, but the harness needs
//! a few things it does not wrap: the REPL's pretty printer (`ray_fmt_pp`), the
//! frame codec (`ray_ipc_compress_at` / `ray_ipc_decompress`), a listener on an
//! ephemeral port (`ray_ipc_listen_at`), and structural access for equality.
//! Everything here must run on the core thread (see `crate::core`), inside the
//! live runtime: the heap and the VM are thread-local in the core.
//!
//! The extra `extern` declarations below are copied from the private headers of
//! the vendored core of `rayforce-sys` 1.4.0 (`src/core/ipc.h`,
//! `src/core/poll.h`, `src/lang/format.h`). The dependency is pinned with `=`,
//! so they cannot drift under us; all of them are exported by `librayforce.a`.

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr;

use rayforce::sys;

pub(crate) type Raw = *mut sys::ray_t;

unsafe extern "C" {
    /// `src/lang/format.c`: the REPL's printer (mode-1 text, wide dicts and
    /// lists broken over lines).
    fn ray_fmt_pp(obj: *mut sys::ray_t) -> *mut sys::ray_t;
    /// `src/core/ipc.h`: delta + RLE compress `src` when `len > threshold`;
    /// returns the compressed length, or 0 when it would not shrink / fit.
    fn ray_ipc_compress_at(
        src: *const u8,
        len: usize,
        dst: *mut u8,
        dst_cap: usize,
        threshold: usize,
    ) -> usize;
    /// `src/core/ipc.h`: inverse of the above; returns bytes produced.
    fn ray_ipc_decompress(src: *const u8, clen: usize, dst: *mut u8, dst_len: usize) -> usize;
    /// `src/core/ipc.h`: register an IPC listener; host NULL = INADDR_ANY.
    fn ray_ipc_listen_at(poll: *mut sys::ray_poll_t, host: *const c_char, port: u16) -> i64;
    /// `src/core/poll.h`.
    fn ray_poll_set_restricted(poll: *mut sys::ray_poll_t, restricted: bool);
    /// `src/core/poll.h`: unregister a selector (closes its socket).
    fn ray_poll_deregister(poll: *mut sys::ray_poll_t, id: i64);
}

/// Layout of `struct ray_poll` (`src/core/poll.h` of the pinned core), whose
/// bindgen type is opaque. Only used to write `auth_secret`, the password the
/// core's `-u` flag sets and the handshake checks. The size assertion below
/// catches a layout change at compile time.
#[repr(C)]
struct PollLayout {
    fd: i64,
    code: i64,
    sels: *mut c_void,
    n_sels: u32,
    n_live: u32,
    sel_cap: u32,
    auth_secret: [u8; 256],
    restricted: bool,
    timers: *mut c_void,
    mcast: *mut c_void,
    tx_hwm_bytes: i64,
}

const _: () = assert!(std::mem::size_of::<PollLayout>() == std::mem::size_of::<sys::ray_poll>());

/// `RAY_IPC_FLAG_COMPRESSED` (`src/core/ipc.h`).
pub(crate) const FLAG_COMPRESSED: u8 = 0x01;
/// Size of the IPC frame header.
pub(crate) const HEADER_LEN: usize = 16;

/// An error object the core produced: its short code and the per-thread
/// message that came with it (often empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CoreErr {
    pub code: String,
    pub message: String,
}

/// An owned reference to a core object (never an error object, never C NULL).
pub(crate) struct Obj(Raw);

impl Drop for Obj {
    fn drop(&mut self) {
        // Retain/release are no-ops for the null singleton.
        unsafe { sys::ray_release(self.0) }
    }
}

unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

#[inline]
unsafe fn hdr<'a>(v: Raw) -> &'a sys::ray_t__bindgen_ty_1 {
    unsafe { (*v).__bindgen_anon_1.as_ref() }
}

pub(crate) fn null_obj() -> Raw {
    ptr::addr_of_mut!(sys::__ray_null)
}

/// Mirrors the header's `RAY_IS_ERR`.
pub(crate) unsafe fn is_err(v: Raw) -> bool {
    !v.is_null() && (v as usize) > 31 && unsafe { hdr(v).type_ } == sys::RAY_ERROR as i8
}

/// Turn an error object into its code + message, freeing it.
unsafe fn take_err(v: Raw) -> CoreErr {
    unsafe {
        let code = cstr(sys::ray_err_code(v));
        let message = cstr(sys::ray_error_msg());
        sys::ray_error_free(v);
        CoreErr { code, message }
    }
}

/// Materialize a lazy result (type `RAY_LAZY` = 104), consuming `v`.
unsafe fn materialize(v: Raw) -> Result<Raw, CoreErr> {
    const RAY_LAZY: i8 = 104;
    unsafe {
        if v.is_null() || hdr(v).type_ != RAY_LAZY {
            return Ok(v);
        }
        let m = sys::ray_lazy_materialize(v);
        if m.is_null() {
            return Err(CoreErr {
                code: "lazy".into(),
                message: "materialization failed".into(),
            });
        }
        if is_err(m) {
            return Err(take_err(m));
        }
        Ok(m)
    }
}

/// Wrap an owned result of a core call: C NULL becomes the null object, an
/// error object becomes `Err`, a lazy value is materialized.
unsafe fn own(v: Raw) -> Result<Obj, CoreErr> {
    unsafe {
        if v.is_null() {
            return Ok(Obj(null_obj()));
        }
        if is_err(v) {
            return Err(take_err(v));
        }
        Ok(Obj(materialize(v)?))
    }
}

impl Obj {
    pub(crate) fn raw(&self) -> Raw {
        self.0
    }

    pub(crate) fn len(&self) -> i64 {
        unsafe { hdr(self.0).__bindgen_anon_2.len }
    }

    /// The REPL's printed form of this object.
    pub(crate) fn fmt_pp(&self) -> String {
        unsafe { str_result(ray_fmt_pp(self.0)) }
    }

    /// The full frame (16-byte header + payload) `ray_ser` produces.
    pub(crate) fn ser(&self) -> Result<Vec<u8>, CoreErr> {
        unsafe { ser_raw(self.0) }
    }
}

/// Read a string object returned by a formatter and release it.
unsafe fn str_result(s: Raw) -> String {
    unsafe {
        if s.is_null() {
            return String::new();
        }
        if is_err(s) {
            sys::ray_error_free(s);
            return String::new();
        }
        let p = sys::ray_str_ptr(s).cast::<u8>();
        let n = sys::ray_str_len(s);
        let out = if p.is_null() || n == 0 {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(p, n)).into_owned()
        };
        sys::ray_release(s);
        out
    }
}

/// Pointer to a vector's element data, following slices.
unsafe fn data(v: Raw) -> *mut u8 {
    unsafe {
        if hdr(v).attrs & sys::RAY_ATTR_SLICE as u8 != 0 {
            sys::ray_data_slice_path(v) as *mut u8
        } else {
            hdr(v).data.as_ptr() as *mut u8
        }
    }
}

/// `ray_ser` of a borrowed object, copied out as bytes.
unsafe fn ser_raw(v: Raw) -> Result<Vec<u8>, CoreErr> {
    unsafe {
        let s = own(sys::ray_ser(v))?;
        let n = s.len().max(0) as usize;
        let p = data(s.raw());
        Ok(std::slice::from_raw_parts(p, n).to_vec())
    }
}

/// Evaluate Rayfall source in the global environment.
pub(crate) fn eval(src: &str) -> Result<Obj, CoreErr> {
    let c = CString::new(src).map_err(|_| CoreErr {
        code: "harness".into(),
        message: "source contains a NUL byte".into(),
    })?;
    unsafe {
        // The message is per-thread and sticky: clear it so an error reports
        // its own detail, not an earlier one's.
        sys::ray_error_clear();
        own(sys::ray_eval_str(c.as_ptr()))
    }
}

/// A U8 vector holding `bytes`.
pub(crate) fn u8_vec(bytes: &[u8]) -> Result<Obj, CoreErr> {
    unsafe {
        own(sys::ray_vec_from_raw(
            sys::RAY_U8 as i8,
            bytes.as_ptr() as *const c_void,
            bytes.len() as i64,
        ))
    }
}

/// `ray_de` over a whole frame. `Err` is whatever error object `ray_de`
/// returned, which is also how a serialized *error value* comes back.
pub(crate) fn de(frame: &[u8]) -> Result<Obj, CoreErr> {
    let buf = u8_vec(frame)?;
    unsafe {
        sys::ray_error_clear();
        own(sys::ray_de(buf.raw()))
    }
}

/// An error object with `code`, serialized by `ray_ser` (the core's own
/// encoding of error values: the code only, the message never travels).
pub(crate) fn ser_error(code: &str) -> Result<Vec<u8>, CoreErr> {
    let c = CString::new(code).map_err(|_| CoreErr {
        code: "harness".into(),
        message: "code contains a NUL byte".into(),
    })?;
    unsafe {
        let e = sys::ray_error(c.as_ptr(), ptr::null());
        let out = ser_raw(e);
        sys::ray_error_free(e);
        out
    }
}

/// The core's frame codec with an explicit threshold. `None` when the core
/// would not compress (payload not above `threshold`, or no gain).
pub(crate) fn compress_at(payload: &[u8], threshold: usize) -> Option<Vec<u8>> {
    if payload.is_empty() {
        return None;
    }
    let mut out = vec![0u8; payload.len()];
    let n = unsafe {
        ray_ipc_compress_at(
            payload.as_ptr(),
            payload.len(),
            out.as_mut_ptr(),
            out.len(),
            threshold,
        )
    };
    if n == 0 {
        return None;
    }
    out.truncate(n);
    Some(out)
}

/// Inverse of [`compress_at`]; `None` unless exactly `uncompressed_len`
/// bytes come out.
pub(crate) fn decompress(compressed: &[u8], uncompressed_len: usize) -> Option<Vec<u8>> {
    if uncompressed_len == 0 {
        return None;
    }
    let mut out = vec![0u8; uncompressed_len];
    let n = unsafe {
        ray_ipc_decompress(
            compressed.as_ptr(),
            compressed.len(),
            out.as_mut_ptr(),
            out.len(),
        )
    };
    (n == uncompressed_len).then_some(out)
}

/// Strict structural equality of two core objects, as the wire sees them.
///
/// The core has no whole-object match builtin (`==` is element-wise, coerces
/// numbers and refuses dicts and tables), so this compares what `ray_ser`
/// emits for each leaf: atoms and vectors by their serialized bytes (so type,
/// length, bit pattern and the vector `HAS_NULLS` attribute all count), with
/// one normalization — the atom flags byte keeps only its typed-null bit, so
/// a quoted symbol literal (`'a`, flag `0x20`) equals the same symbol taken
/// from a vector. Lists, dicts and tables are compared element by element.
pub(crate) fn equal(a: Raw, b: Raw) -> Result<bool, CoreErr> {
    unsafe {
        if a == b {
            return Ok(true);
        }
        let (an, bn) = (a == null_obj(), b == null_obj());
        if an || bn {
            return Ok(an && bn);
        }
        let (ae, be) = (is_err(a), is_err(b));
        if ae || be {
            return Ok(ae && be && cstr(sys::ray_err_code(a)) == cstr(sys::ray_err_code(b)));
        }
        let (ta, tb) = (hdr(a).type_, hdr(b).type_);
        if ta != tb {
            return Ok(false);
        }
        match ta as i32 {
            t if t < 0 => {
                let (mut sa, mut sb) = (ser_raw(a)?, ser_raw(b)?);
                for s in [&mut sa, &mut sb] {
                    if s.len() > HEADER_LEN + 1 {
                        s[HEADER_LEN + 1] &= 0x01;
                    }
                }
                Ok(sa == sb)
            }
            t if t == sys::RAY_LIST as i32 => {
                let n = hdr(a).__bindgen_anon_2.len;
                if n != hdr(b).__bindgen_anon_2.len {
                    return Ok(false);
                }
                for i in 0..n {
                    if !equal(sys::ray_list_get(a, i), sys::ray_list_get(b, i))? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            t if t == sys::RAY_DICT as i32 => {
                Ok(equal(sys::ray_dict_keys(a), sys::ray_dict_keys(b))?
                    && equal(sys::ray_dict_vals(a), sys::ray_dict_vals(b))?)
            }
            t if t == sys::RAY_TABLE as i32 => {
                let n = sys::ray_table_ncols(a);
                if n != sys::ray_table_ncols(b) {
                    return Ok(false);
                }
                for i in 0..n {
                    if sys::ray_table_col_name(a, i) != sys::ray_table_col_name(b, i) {
                        return Ok(false);
                    }
                    let (ca, cb) = (sys::ray_table_col_idx(a, i), sys::ray_table_col_idx(b, i));
                    if is_err(ca) || is_err(cb) {
                        let ea = if is_err(ca) { Some(take_err(ca)) } else { None };
                        let eb = if is_err(cb) { Some(take_err(cb)) } else { None };
                        return Err(ea.or(eb).expect("one of them is an error"));
                    }
                    if ca.is_null() || cb.is_null() {
                        if ca != cb {
                            return Ok(false);
                        }
                        continue;
                    }
                    if !equal(ca, cb)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            // Vectors, lambdas, builtins: the serialized form is the value.
            _ => Ok(ser_raw(a)? == ser_raw(b)?),
        }
    }
}

/// The runtime's poll (created by the core thread before any job runs).
pub(crate) fn runtime_poll() -> *mut sys::ray_poll_t {
    unsafe { sys::ray_runtime_get_poll().cast() }
}

/// Listen for IPC on `host:port` (`port` 0 = an ephemeral port). Returns the
/// selector id and the port actually bound.
pub(crate) fn listen(host: &str, port: u16) -> Result<(i64, u16), String> {
    let poll = runtime_poll();
    if poll.is_null() {
        return Err("the runtime has no poll".into());
    }
    let h = CString::new(host).map_err(|_| "host contains NUL".to_string())?;
    let id = unsafe { ray_ipc_listen_at(poll, h.as_ptr(), port) };
    if id < 0 {
        return Err(format!(
            "ray_ipc_listen_at({host}:{port}) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    let fd = unsafe {
        let sel = sys::ray_poll_get(poll, id);
        if sel.is_null() { -1 } else { (*sel).fd }
    };
    let bound = local_port(fd);
    match bound {
        Some(p) => {
            set_cloexec(fd);
            Ok((id, p))
        }
        None => {
            unsafe { ray_poll_deregister(poll, id) };
            Err("could not read the listener's bound port".into())
        }
    }
}

/// Stop listening: deregistering the selector closes its socket.
pub(crate) fn unlisten(id: i64) {
    let poll = runtime_poll();
    if !poll.is_null() {
        unsafe { ray_poll_deregister(poll, id) };
    }
}

/// Set (or clear, with `None`) the password every inbound IPC connection on
/// this runtime's poll must present, exactly as the core's `-u PW` does.
pub(crate) fn set_auth_secret(password: Option<&str>) -> Result<(), String> {
    let poll = runtime_poll();
    if poll.is_null() {
        return Err("the runtime has no poll".into());
    }
    let pw = password.unwrap_or("").as_bytes();
    if pw.len() > 255 || pw.contains(&0) {
        return Err("password must be at most 255 bytes and contain no NUL".into());
    }
    unsafe {
        let layout = &mut *(poll as *mut PollLayout);
        layout.auth_secret = [0u8; 256];
        layout.auth_secret[..pw.len()].copy_from_slice(pw);
    }
    Ok(())
}

/// The core's `-U` restricted mode for inbound connections.
pub(crate) fn set_restricted(restricted: bool) {
    let poll = runtime_poll();
    if !poll.is_null() {
        unsafe { ray_poll_set_restricted(poll, restricted) };
    }
}

/// Best effort: the core opens sockets without `SOCK_CLOEXEC`, and a child
/// process inheriting a listener would keep the port alive after we close it.
pub(crate) fn set_cloexec(fd: i64) {
    if let Ok(fd) = i32::try_from(fd)
        && fd >= 0
    {
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

fn local_port(fd: i64) -> Option<u16> {
    use std::mem::ManuallyDrop;
    use std::net::TcpListener;
    use std::os::fd::FromRawFd;
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the socket stays the core's; ManuallyDrop never closes it.
    let l = ManuallyDrop::new(unsafe { TcpListener::from_raw_fd(fd) });
    l.local_addr().ok().map(|a| a.port())
}
