//! Both ends of a call against each other over in-memory streams, as a
//! QUIC layer would drive them, including broken and hostile peers.

use sha2::{Digest, Sha256};

use super::*;
use crate::frame::FrameDecoder;

const MODULE: &[u8] = b"\0asm\x01\0\0\0 a module";

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Decodes every whole message in `bytes`.
fn messages(bytes: &[u8]) -> Vec<Message> {
    let mut decoder = FrameDecoder::new(Limits::default());
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Some(frame) = decoder.next_frame().unwrap() {
        out.push(Message::decode(frame).unwrap());
    }
    decoder.finish().unwrap();
    out
}

/// Feeds the worker every message in `bytes`; the events and its replies.
fn to_worker(worker: &mut Worker, bytes: &[u8], known: bool) -> (Vec<WorkerEvent>, Vec<u8>) {
    let mut out = Vec::new();
    let events = messages(bytes)
        .into_iter()
        .filter_map(|m| worker.on_message(m, &|_| known, &mut out))
        .filter(|e| !matches!(e, WorkerEvent::Admit { .. }))
        .collect();
    (events, out)
}

fn to_requester(requester: &mut Requester, bytes: &[u8]) -> Vec<RequesterEvent> {
    messages(bytes)
        .into_iter()
        .filter_map(|m| requester.on_message(m).unwrap())
        .collect()
}

/// `len` bytes no compressor shrinks (xorshift), so they travel as they
/// are, in as many chunks as their length makes.
/// A run's module, module bytes and unpacked snapshot.
type Run = ([u8; 32], Option<Vec<u8>>, Vec<u8>);

/// The runs among `events`.
fn runs(events: Vec<WorkerEvent>) -> Vec<Run> {
    events
        .into_iter()
        .filter_map(|event| match event {
            WorkerEvent::Run {
                module,
                module_bytes,
                snapshot,
            } => Some((module, module_bytes, snapshot.unpack().expect("unpacks"))),
            _ => None,
        })
        .collect()
}

fn snapshot(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_patterned_snapshot_and_diff_travel_compressed_and_arrive_whole() {
    let snapshot: Vec<u8> = (0..CHUNK * 4).map(|i| (i * 7 % 251) as u8).collect();
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), &snapshot, Limits::default(), &mut wire);
    assert!(wire.len() < snapshot.len() / 10, "{} bytes", wire.len());
    let mut worker = Worker::new(Limits::default());
    let mut reply = Vec::new();
    let events: Vec<_> = messages(&wire)
        .into_iter()
        .filter_map(|m| worker.on_message(m, &|_| true, &mut reply))
        .collect();
    assert!(
        matches!(&events[..], [WorkerEvent::Admit { .. }, WorkerEvent::Run { snapshot: got, .. }] if got.clone().unpack().as_ref() == Ok(&snapshot))
    );
    let diff = vec![3u8; 100_000];
    worker.finish(7, &diff, &mut reply);
    assert!(reply.len() < 1000, "{} bytes", reply.len());
    assert_eq!(
        to_requester(&mut requester, &reply),
        [RequesterEvent::Finished { value: 7, diff }]
    );
}

#[test]
fn a_compressed_payload_past_the_limit_fails_the_call_as_too_large() {
    let limits = Limits {
        max_body: 1 << 20,
        max_payload: 1 << 16,
    };
    let snapshot = vec![0u8; 1 << 20];
    let mut wire = Vec::new();
    Requester::start(hash(MODULE), &snapshot, Limits::default(), &mut wire);
    let mut worker = Worker::new(limits);
    let mut reply = Vec::new();
    for m in messages(&wire) {
        worker.on_message(m, &|_| true, &mut reply);
    }
    assert!(worker.is_done());
    assert!(matches!(
        &messages(&reply)[..],
        [Message::Failed {
            code: ErrorCode::TooLarge,
            ..
        }]
    ));
}

#[test]
fn a_call_to_a_worker_that_has_the_module() {
    let snapshot = snapshot(CHUNK * 2 + 17);
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), &snapshot, Limits::default(), &mut wire);
    let mut worker = Worker::new(Limits::default());
    let (events, reply) = to_worker(&mut worker, &wire, true);
    assert!(reply.is_empty());
    assert_eq!(runs(events), [(hash(MODULE), None, snapshot.clone())]);
    let diff = snapshot[..CHUNK + 3].to_vec();
    let mut reply = Vec::new();
    worker.finish(42, &diff, &mut reply);
    assert!(worker.is_done());
    assert_eq!(
        to_requester(&mut requester, &reply),
        [RequesterEvent::Finished { value: 42, diff }]
    );
    assert!(requester.is_done());
    assert_eq!(requester.on_end(), Ok(()));
}

#[test]
fn a_worker_without_the_module_fetches_and_checks_it() {
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), b"snap", Limits::default(), &mut wire);
    let mut worker = Worker::new(Limits::default());
    let (events, reply) = to_worker(&mut worker, &wire, false);
    assert!(events.is_empty());
    assert_eq!(
        to_requester(&mut requester, &reply),
        [RequesterEvent::NeedModule]
    );
    let mut wire = Vec::new();
    requester.send_module(MODULE, &mut wire).unwrap();
    assert!(
        requester.send_module(MODULE, &mut wire).is_err(),
        "only once"
    );
    let (events, _) = to_worker(&mut worker, &wire[..], false);
    assert_eq!(
        runs(events),
        [(hash(MODULE), Some(MODULE.to_vec()), b"snap".to_vec())]
    );
    let mut reply = Vec::new();
    worker.finish(0, &[], &mut reply);
    assert_eq!(
        to_requester(&mut requester, &reply),
        [RequesterEvent::Finished {
            value: 0,
            diff: vec![]
        }]
    );
}

#[test]
fn module_bytes_that_do_not_match_the_hash_are_refused() {
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), b"snap", Limits::default(), &mut wire);
    let mut worker = Worker::new(Limits::default());
    let (_, reply) = to_worker(&mut worker, &wire, false);
    to_requester(&mut requester, &reply);
    let mut wire = Vec::new();
    requester
        .send_module(b"\0asm something else", &mut wire)
        .unwrap();
    let (events, reply) = to_worker(&mut worker, &wire, false);
    assert!(events.is_empty(), "never run");
    assert!(worker.is_done());
    assert!(matches!(
        to_requester(&mut requester, &reply)[..],
        [RequesterEvent::Failed {
            code: ErrorCode::ModuleMismatch,
            ..
        }]
    ));
}

#[test]
fn cancel_stops_the_call_at_any_point() {
    let snapshot = snapshot(CHUNK + 1);
    for cut in [0, 1, 2] {
        // Cancel after `cut` messages of the call have arrived.
        let mut wire = Vec::new();
        let mut requester = Requester::start(hash(MODULE), &snapshot, Limits::default(), &mut wire);
        let mut sent: Vec<Message> = messages(&wire).into_iter().take(cut).collect();
        let mut cancel = Vec::new();
        requester.cancel(&mut cancel);
        sent.extend(messages(&cancel));
        let mut worker = Worker::new(Limits::default());
        let mut reply = Vec::new();
        let events: Vec<_> = sent
            .into_iter()
            .filter_map(|m| worker.on_message(m, &|_| true, &mut reply))
            .collect();
        assert!(events.iter().all(|e| !matches!(e, WorkerEvent::Run { .. })) || cut == 3);
        assert!(worker.is_done());
        assert!(matches!(
            to_requester(&mut requester, &reply)[..],
            [RequesterEvent::Failed {
                code: ErrorCode::Cancelled,
                ..
            }]
        ));
    }
    // While running: the host is told to stop the thread.
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), b"s", Limits::default(), &mut wire);
    let mut worker = Worker::new(Limits::default());
    to_worker(&mut worker, &wire, true);
    let mut cancel = Vec::new();
    requester.cancel(&mut cancel);
    let (events, _) = to_worker(&mut worker, &cancel, true);
    assert_eq!(events, [WorkerEvent::Cancelled]);
}

#[test]
fn broken_or_hostile_requesters_get_a_failure_not_a_run() {
    let limits = Limits {
        max_body: 1 << 20,
        max_payload: 1000,
    };
    let cases: Vec<(&str, Vec<Message>, ErrorCode)> = vec![
        (
            "data before run",
            vec![Message::Data(vec![1])],
            ErrorCode::Protocol,
        ),
        (
            "snapshot over the limit",
            vec![Message::Run {
                module: [0; 32],
                snapshot_len: 1001,
            }],
            ErrorCode::TooLarge,
        ),
        (
            "more data than announced",
            vec![
                Message::Run {
                    module: [0; 32],
                    snapshot_len: 2,
                },
                Message::Data(vec![1, 2, 3]),
            ],
            ErrorCode::Protocol,
        ),
        (
            "a module nobody asked for",
            vec![
                Message::Run {
                    module: [0; 32],
                    snapshot_len: 1,
                },
                Message::Module { len: 1 },
            ],
            ErrorCode::Protocol,
        ),
        (
            "a second run",
            vec![
                Message::Run {
                    module: [0; 32],
                    snapshot_len: 0,
                },
                Message::Run {
                    module: [0; 32],
                    snapshot_len: 0,
                },
            ],
            ErrorCode::Protocol,
        ),
        (
            "a worker's message",
            vec![Message::NeedModule],
            ErrorCode::Protocol,
        ),
    ];
    for (what, sent, expected) in cases {
        let mut worker = Worker::new(limits);
        let mut reply = Vec::new();
        let events: Vec<_> = sent
            .into_iter()
            .filter_map(|m| worker.on_message(m, &|_| false, &mut reply))
            .filter(|e| !matches!(e, WorkerEvent::Admit { .. }))
            .collect();
        assert!(events.is_empty(), "{what}");
        assert!(worker.is_done(), "{what}");
        match &messages(&reply)[..] {
            [.., Message::Failed { code, .. }] => assert_eq!(*code, expected, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn broken_workers_are_protocol_errors_and_lost_calls_are_seen() {
    let limits = Limits {
        max_body: 1 << 20,
        max_payload: 10,
    };
    let mut wire = Vec::new();
    let mut requester = Requester::start([1; 32], b"s", limits, &mut wire);
    assert!(matches!(
        requester.on_message(Message::Finished {
            value: 1,
            diff_len: 11
        }),
        Err(ProtocolError::TooLarge { .. })
    ));
    let mut requester = Requester::start([1; 32], b"s", limits, &mut wire);
    assert!(
        requester
            .on_message(Message::Run {
                module: [0; 32],
                snapshot_len: 0
            })
            .is_err()
    );
    let mut requester = Requester::start([1; 32], b"s", limits, &mut wire);
    assert!(
        requester.send_module(MODULE, &mut wire).is_err(),
        "not asked for"
    );
    requester
        .on_message(Message::Finished {
            value: 1,
            diff_len: 4,
        })
        .unwrap();
    assert_eq!(
        requester.on_end(),
        Err(ProtocolError::Lost),
        "diff cut short"
    );
    assert_eq!(
        requester.on_message(Message::Data(vec![0; 5])),
        Err(ProtocolError::Overrun)
    );
    // A stream that ends before any answer: the call is lost, to be run
    // again elsewhere.
    let requester = Requester::start([1; 32], b"s", limits, &mut wire);
    assert_eq!(requester.on_end(), Err(ProtocolError::Lost));
}

#[test]
fn a_streamed_start_sends_the_same_bytes() {
    let snapshot: Vec<u8> = (0..(2 * CHUNK + 17)).map(|i| i as u8).collect();
    let mut whole = Vec::new();
    Requester::start([1; 32], &snapshot, Limits::default(), &mut whole);
    let mut streamed = Vec::new();
    let packed = crate::payload::pack(&snapshot);
    Requester::start_streamed([1; 32], &packed, Limits::default(), &mut streamed);
    for (header, chunk) in data_frames(&packed) {
        streamed.extend_from_slice(&header);
        streamed.extend_from_slice(chunk);
    }
    assert_eq!(streamed, whole);
}

#[test]
fn a_running_thread_calls_home_and_gets_each_answer() {
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), b"snap", Limits::default(), &mut wire);
    let mut worker = Worker::new(Limits::default());
    let mut out = Vec::new();
    assert!(
        worker.home_call(b"early", &mut out).is_err(),
        "no thread runs yet"
    );
    let (events, _) = to_worker(&mut worker, &wire, true);
    assert_eq!(events.len(), 1);

    for round in 0..3u8 {
        let mut call = Vec::new();
        worker.home_call(&[round], &mut call).unwrap();
        assert_eq!(
            to_requester(&mut requester, &call),
            [RequesterEvent::HomeCall(vec![round])]
        );
        let mut reply = Vec::new();
        requester.reply_home(&[round, round], &mut reply).unwrap();
        assert!(requester.reply_home(b"again", &mut Vec::new()).is_err());
        let (events, _) = to_worker(&mut worker, &reply, true);
        assert_eq!(events, [WorkerEvent::HomeReply(vec![round, round])]);
    }

    // A request and a reply larger than a frame arrive in pieces.
    let big: Vec<u8> = (0..3 * CHUNK + 5).map(|i| i as u8).collect();
    let mut call = Vec::new();
    worker.home_call(&big, &mut call).unwrap();
    assert_eq!(
        to_requester(&mut requester, &call),
        [RequesterEvent::HomeCall(big.clone())]
    );
    let mut reply = Vec::new();
    requester.reply_home(&big, &mut reply).unwrap();
    let (events, _) = to_worker(&mut worker, &reply, true);
    assert_eq!(events, [WorkerEvent::HomeReply(big)]);

    // A reply nobody asked for breaks the protocol.
    let mut stray = Vec::new();
    Message::HomeReply { len: 0 }.encode(&mut stray);
    let (events, failed) = to_worker(&mut worker, &stray, true);
    assert!(events.is_empty());
    assert!(matches!(
        messages(&failed)[..],
        [Message::Failed {
            code: ErrorCode::Protocol,
            ..
        }]
    ));
    assert!(worker.is_done());
}

/// Calls that need no answer before the thread goes on (an unlock) are
/// sent while earlier ones are in flight; answers come back in order, and
/// past the bound a call waits.
#[test]
fn home_calls_in_flight_are_answered_in_order_up_to_a_bound() {
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), b"snap", Limits::default(), &mut wire);
    let mut worker = Worker::new(Limits::default());
    to_worker(&mut worker, &wire, true);
    let mut calls = Vec::new();
    for round in 0..MAX_HOME_CALLS_IN_FLIGHT {
        worker.home_call(&round.to_le_bytes(), &mut calls).unwrap();
    }
    assert!(
        worker.home_call(b"one more", &mut Vec::new()).is_err(),
        "bounded"
    );
    let mut replies = Vec::new();
    for message in messages(&calls) {
        if let Some(event) = requester.on_message(message).unwrap() {
            let RequesterEvent::HomeCall(request) = event else {
                panic!("{event:?}");
            };
            requester.reply_home(&request, &mut replies).unwrap();
        }
    }
    let (events, _) = to_worker(&mut worker, &replies, true);
    let expected: Vec<WorkerEvent> = (0..MAX_HOME_CALLS_IN_FLIGHT)
        .map(|round| WorkerEvent::HomeReply(round.to_le_bytes().to_vec()))
        .collect();
    assert_eq!(events, expected);
    worker.home_call(b"again", &mut Vec::new()).unwrap();
}

#[test]
fn an_oversized_home_call_is_refused_before_its_bytes() {
    let limits = Limits {
        max_payload: 100,
        ..Limits::default()
    };
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), b"snap", limits, &mut wire);
    assert!(matches!(
        requester.on_message(Message::HomeCall { len: 101 }),
        Err(ProtocolError::TooLarge { .. })
    ));
}

#[test]
fn a_requester_refuses_a_result_while_a_home_call_is_outstanding() {
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), b"snap", Limits::default(), &mut wire);
    let mut call = Vec::new();
    send_payload(|len| Message::HomeCall { len }, b"grow", &mut call);
    assert_eq!(
        to_requester(&mut requester, &call),
        [RequesterEvent::HomeCall(b"grow".to_vec())]
    );
    assert!(requester.on_message(Message::HomeCall { len: 1 }).is_err());
    assert!(
        requester
            .on_message(Message::Finished {
                value: 1,
                diff_len: 0
            })
            .is_err()
    );
}

#[test]
fn a_busy_worker_refuses_a_call_before_its_snapshot_arrives() {
    let snapshot = snapshot(CHUNK * 3);
    let mut wire = Vec::new();
    let mut requester = Requester::start(hash(MODULE), &snapshot, Limits::default(), &mut wire);
    let mut worker = Worker::new(Limits::default());
    let mut reply = Vec::new();
    let mut sent = messages(&wire).into_iter();
    let first = worker.on_message(sent.next().unwrap(), &|_| true, &mut reply);
    assert_eq!(
        first,
        Some(WorkerEvent::Admit {
            module: hash(MODULE),
            // The bytes on the wire: the snapshot and its encoding's tag.
            snapshot_len: snapshot.len() as u64 + 1
        })
    );
    worker.fail(ErrorCode::Busy, "all 2 slots are busy", &mut reply);
    assert!(worker.is_done());
    // The snapshot's frames still in flight change nothing.
    for message in sent {
        assert_eq!(worker.on_message(message, &|_| true, &mut reply), None);
    }
    assert_eq!(
        to_requester(&mut requester, &reply),
        [RequesterEvent::Failed {
            code: ErrorCode::Busy,
            message: "all 2 slots are busy".into()
        }]
    );
}
