//! A busy-polling, pinned reactor: it delivers every message whether it is
//! spinning or asleep, and an idle one goes back to sleep rather than burning its
//! core. (Alone in its test binary, so the process's CPU time is the reactor's.)

use raywire::net::reactor::{Control, Handler, Reactor, ReactorConfig, Readiness};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Forwards what it reads to a channel.
struct Forward(TcpStream, crossbeam_channel::Sender<Vec<u8>>);
impl Handler for Forward {
    fn ready(&mut self, _r: Readiness) -> Control {
        let mut buf = [0u8; 256];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => return Control::Remove,
                Ok(n) => {
                    let _ = self.1.send(buf[..n].to_vec());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Control::Keep,
                Err(_) => return Control::Remove,
            }
        }
    }
}

/// User plus system CPU time of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, the 12th and 13th after it.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn busy_polling_reactor_delivers_and_sleeps_when_idle() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    c.set_nodelay(true).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    let r = Reactor::with_config(ReactorConfig {
        busy_poll: Duration::from_millis(2),
        // Modulo the usable cores: any index pins somewhere.
        core: Some(1000),
    })
    .unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    r.register(s.as_raw_fd(), Box::new(Forward(s, tx))).unwrap();

    // Messages close together (read while spinning) and far apart (after the
    // reactor went back to sleep): each arrives.
    for (i, gap) in [0u64, 0, 100, 0, 5_000, 20_000, 0, 3_000]
        .into_iter()
        .enumerate()
    {
        std::thread::sleep(Duration::from_micros(gap));
        c.write_all(&[i as u8; 8]).unwrap();
        let mut got = Vec::new();
        while got.len() < 8 {
            got.extend(rx.recv_timeout(Duration::from_secs(5)).expect("delivered"));
        }
        assert_eq!(got, [i as u8; 8]);
    }

    // Idle: past its 2 ms of polling the reactor sleeps. A spinning thread would
    // use about the whole second; a sleeping one next to nothing.
    std::thread::sleep(Duration::from_millis(50));
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks() - before;
    // Linux counts 100 ticks a second (USER_HZ): 50 is half the second.
    assert!(used < 50, "an idle reactor used {used} ticks of CPU in 1 s");

    drop(c);
    r.stop();
}
