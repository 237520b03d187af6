//! An owned result from the real core server keeps the bytes it was received in:
//! `execute` of a column larger than the receive mapping hands back the column
//! where the socket put it, usable after the connection is gone.

use interop::CoreServer;
use raywire::ipc::hopen;
use raywire::{RayObj, Vector};

const N: usize = 1_000_000; // 8 MB: more than the 4 MiB receive mapping

#[test]
fn a_column_from_the_core_is_the_received_buffer_and_outlives_the_connection() {
    let server = CoreServer::builder()
        .setup("(set col (- (* (til 1000000) 3) 7))")
        .start()
        .unwrap();
    let conn = hopen("127.0.0.1", server.port()).unwrap();
    let RayObj::Vector(Vector::I64(v)) = conn.execute("col").unwrap() else {
        panic!("the core answered something other than an i64 column");
    };
    let buf = v
        .buffer()
        .expect("the column is the received buffer, not a copy");
    assert_eq!(buf.as_ptr(), v.as_slice().as_ptr().cast::<u8>());
    assert_eq!(buf.len(), 8 * N);
    drop(conn);
    drop(server);
    assert_eq!(v.len(), N);
    for (i, x) in v.iter().enumerate() {
        assert_eq!(*x, i as i64 * 3 - 7, "element {i}");
    }
    // Copy on write: the mutated clone owns its elements, the original is as received.
    let mut w = v.clone();
    w.as_mut_vec()[N - 1] = 0;
    assert!(w.buffer().is_none());
    assert_eq!(v[N - 1], (N as i64 - 1) * 3 - 7);
}
