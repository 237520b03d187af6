//! The evaluator's IPC semantics against the real core's server, over raw
//! sockets: the same request frames go to a core server (`rayforce -p`, a child
//! process) and to a raywire server, and the answers must be the same bytes.

use interop::{CoreServer, core_request_frame, hex, raw_exchange};
use raywire::Rayforce;
use raywire::codec::{FLAG_VERBOSE, Limits, decode_frame_owned};
use raywire::server::Server;

fn raywire_server() -> (Rayforce, Server) {
    let ray = Rayforce::new().expect("raywire starts");
    let server = ray.listen(0).expect("raywire server starts");
    (ray, server)
}

/// A sync request carrying `text`, with the verbose flag set or not.
fn request(text: &str, verbose: bool) -> Vec<u8> {
    let mut f = core_request_frame(text).expect("the core builds the frame");
    if verbose {
        f[5] |= FLAG_VERBOSE;
    }
    f
}

#[test]
fn verbose_requests_answer_what_they_printed_beside_the_result() {
    let core = CoreServer::start();
    let (_ray, ours) = raywire_server();
    let cases = [
        ("(println 42) (+ 1 2)", true),
        ("(do (print \"a\" 'b) (println [1 2] 1.5) 7)", true),
        ("(set lam_v (fn [x] (println x) (* x 2))) (lam_v 21)", true),
        ("(+ 1 2)", true),
        ("(+ 1 'a)", true),
        ("(println 42)", false),
        ("(map (fn [x] (println x)) [1 2])", true),
        (
            "(println 5i 2024.01.01 {a: 1} [1.5 2.5] (list 1.5 [1 2]) 0Nf -0.0 1e-300 'a \"\" 09:30:00)",
            true,
        ),
        ("(println \"%\" \"x %\" 1 2)", true),
        ("(println (fn [x] x) + (table [a] (list [1])) null)", true),
    ];
    for (text, verbose) in cases {
        let req = request(text, verbose);
        let want = raw_exchange(core.port(), None, &req).expect("the core answers");
        let got = raw_exchange(ours.port(), None, &req).expect("raywire answers");
        assert_eq!(hex(&got), hex(&want), "{text} (verbose: {verbose})");
    }
    // The shape, read back: the printed text, then the result.
    let reply = raw_exchange(ours.port(), None, &request("(println 42) (+ 1 2)", true)).unwrap();
    let (_, obj) = decode_frame_owned(&reply, &Limits::default()).unwrap();
    assert_eq!(
        obj,
        raywire::RayObj::list(vec![
            raywire::RayObj::string("42\n"),
            raywire::RayObj::from(3i64)
        ])
    );
}

#[test]
fn a_frame_of_unknown_message_type_is_evaluated_and_not_answered() {
    let core = CoreServer::start();
    let (_ray, ours) = raywire_server();
    for msgtype in [3u8, 9, 255] {
        // The odd frame sets a global; the sync frame behind it on the same
        // connection reads it back. Only the sync one is answered.
        let mut odd = request(&format!("(set lam_odd {msgtype})"), false);
        odd[7] = msgtype;
        let mut both = odd.clone();
        both.extend(request("lam_odd", false));
        let want = raw_exchange(core.port(), None, &both).expect("the core answers");
        let got = raw_exchange(ours.port(), None, &both).expect("raywire answers");
        assert_eq!(hex(&got), hex(&want), "message type {msgtype}");
        let (_, obj) = decode_frame_owned(&got, &Limits::default()).unwrap();
        assert_eq!(obj, raywire::RayObj::from(i64::from(msgtype)));
    }
}

#[test]
fn connection_hooks_run_as_in_the_core() {
    let core = CoreServer::start();
    let (_ray, ours) = raywire_server();
    let same = |frame: &[u8], what: &str| {
        let want = raw_exchange(core.port(), None, frame).expect("the core answers");
        let got = raw_exchange(ours.port(), None, frame).expect("raywire answers");
        assert_eq!(hex(&got), hex(&want), "{what}");
        got
    };
    // An open hook runs when the next client connects; its result goes nowhere.
    same(
        &request("(set .ipc.on.open (fn [h] (set lam_opened 'yes)))", false),
        "binding the open hook",
    );
    same(&request("lam_opened", false), "the open hook ran");
    // An async hook gets the payload as sent (a string here), unevaluated.
    same(
        &request("(set .ipc.on.async (fn [m] (set lam_async m)))", false),
        "binding the async hook",
    );
    let mut both = request("(+ 40 2)", false);
    both[7] = interop::MSG_ASYNC;
    both.extend(request("lam_async", false));
    same(&both, "the async hook saw the payload");
    // A sync hook's answer is the response, in place of the evaluation.
    same(
        &request("(set .ipc.on.sync (fn [m] (list 'seen m)))", false),
        "binding the sync hook",
    );
    let got = same(&request("(+ 1 2)", false), "the sync hook answers");
    let (_, obj) = decode_frame_owned(&got, &Limits::default()).unwrap();
    assert_eq!(
        obj,
        raywire::RayObj::list(vec![
            // A quoted symbol literal keeps its quoted flag on the wire.
            raywire::RayObj::Atom(raywire::Atom {
                value: raywire::Scalar::Symbol("seen".into()),
                flags: raywire::types::ATOM_FLAG_QUOTED,
            }),
            raywire::RayObj::string("(+ 1 2)")
        ])
    );
}

#[test]
fn objects_sent_as_requests_are_evaluated_as_in_the_core() {
    let core = CoreServer::start();
    let (_ray, ours) = raywire_server();
    // Expressions whose head is a lambda object the core serialized itself.
    for expr in [
        "(list (fn [x] (* x 2)) 21)",
        "(list (fn [x y] (+ x y)) 1)",
        "(list (do (let k 5) (fn [x] (+ x k))) 1)",
        "(list map (fn [x] (* x x)) [1 2 3])",
        // Argument lists that cannot be calls are data, as the core reads them.
        "(list (quote count) (quote (1 2 3)))",
        "(list (quote first) (quote (zz_unknown 1)))",
        "(list (quote count) (quote (+ 1 2)))",
        "(list (quote zz_unknown) 1)",
    ] {
        let frame = interop::with_msgtype(
            &interop::core_ser(expr).expect("the core serializes it"),
            interop::MSG_SYNC,
        );
        let want = raw_exchange(core.port(), None, &frame).expect("the core answers");
        let got = raw_exchange(ours.port(), None, &frame).expect("raywire answers");
        assert_eq!(hex(&got), hex(&want), "{expr}");
    }
}

#[test]
fn a_subscriber_applies_async_upd_messages_through_its_lambda() {
    let core = CoreServer::start();
    let (_ray, ours) = raywire_server();
    let same = |frame: &[u8], what: &str| {
        let want = raw_exchange(core.port(), None, frame).expect("the core answers");
        let got = raw_exchange(ours.port(), None, frame).expect("raywire answers");
        assert_eq!(hex(&got), hex(&want), "{what}");
    };
    same(
        &request(
            "(set feed (table [sym px] (list [a] [1.0]))) (set upd (fn [t x] (insert t x)))",
            false,
        ),
        "the subscriber's table and upd",
    );
    // A publisher's updates: async `(upd 'feed rows)` expressions, then a query.
    let mut frames = Vec::new();
    for rows in ["(list 'b 2.0)", "(list [c d] [3.0 4.0])"] {
        let expr = format!("(list (quote upd) (quote 'feed) {rows})");
        let f = interop::with_msgtype(
            &interop::core_ser(&expr).expect("the core serializes it"),
            interop::MSG_ASYNC,
        );
        frames.extend(f);
    }
    frames.extend(request("feed", false));
    same(&frames, "the table after the updates");
}
