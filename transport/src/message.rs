//! What frames carry. `Data` frames carry raw bytes (chunks of a
//! snapshot, a module or a diff); every other kind is a postcard body that
//! must be used whole (trailing bytes are an error).

use serde::{Deserialize, Serialize};

use crate::frame::{self, Frame};

/// Why a worker could not run a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The module bytes do not hash to the module the call names.
    ModuleMismatch,
    /// The snapshot, module or diff is larger than the limits allow.
    TooLarge,
    /// The peer broke the protocol.
    Protocol,
    /// The requester cancelled the call.
    Cancelled,
    /// The thread trapped (or the snapshot could not be restored).
    Trapped,
    /// The worker has no free slot.
    Busy,
    /// The thread made a host call only its home host can serve (a nested
    /// spawn, shared state, a file): run it there from the same snapshot.
    NeedsHome,
    /// The call names a base snapshot the worker no longer keeps: send
    /// the whole snapshot.
    UnknownBase,
}

/// One message of a call's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Requester: run a thread of `module` from a snapshot of
    /// `snapshot_len` bytes on the wire, which follow as `Data`. Every
    /// length a message announces is of its payload as packed
    /// ([`crate::payload`]: as it is, or compressed).
    Run { module: [u8; 32], snapshot_len: u64 },
    /// Bytes of the snapshot, module or diff announced last.
    Data(Vec<u8>),
    /// Worker: send the module the `Run` named.
    NeedModule,
    /// Requester: the module's `len` bytes follow as `Data`.
    Module { len: u64 },
    /// Worker: the thread's result; its diff (`diff_len` bytes) follows.
    Finished { value: u32, diff_len: u64 },
    /// Worker: the call failed.
    Failed { code: ErrorCode, message: String },
    /// Requester: stop the call.
    Cancel,
    /// Worker: the running thread asks its home host for something (a
    /// request of `len` bytes in the hosts' own encoding, which follows as
    /// `Data`); at most one is outstanding.
    HomeCall { len: u64 },
    /// Requester: the answer to the outstanding `HomeCall`; its `len`
    /// bytes follow as `Data`.
    HomeReply { len: u64 },
}

#[derive(Serialize, Deserialize)]
struct RunBody {
    module: [u8; 32],
    snapshot_len: u64,
}

#[derive(Serialize, Deserialize)]
struct FinishedBody {
    value: u32,
    diff_len: u64,
}

#[derive(Serialize, Deserialize)]
struct FailedBody {
    code: ErrorCode,
    message: String,
}

const RUN: u8 = 1;
/// The frame kind of [`Message::Data`].
pub const DATA: u8 = 2;
const NEED_MODULE: u8 = 3;
const MODULE: u8 = 4;
const FINISHED: u8 = 5;
const FAILED: u8 = 6;
const CANCEL: u8 = 7;
const HOME_CALL: u8 = 8;
const HOME_REPLY: u8 = 9;

/// Longest failure message kept.
pub const MAX_MESSAGE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
}

fn body<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("plain structs always serialise")
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T, MessageError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        _ => Err(MessageError::Malformed(what)),
    }
}

impl Message {
    /// Appends the message as a frame.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Run {
                module,
                snapshot_len,
            } => frame::encode(
                RUN,
                &body(&RunBody {
                    module: *module,
                    snapshot_len: *snapshot_len,
                }),
                out,
            ),
            Message::Data(bytes) => frame::encode(DATA, bytes, out),
            Message::NeedModule => frame::encode(NEED_MODULE, &[], out),
            Message::Module { len } => frame::encode(MODULE, &body(len), out),
            Message::Finished { value, diff_len } => frame::encode(
                FINISHED,
                &body(&FinishedBody {
                    value: *value,
                    diff_len: *diff_len,
                }),
                out,
            ),
            Message::Failed { code, message } => {
                let mut message = message.clone();
                if message.len() > MAX_MESSAGE {
                    let mut cut = MAX_MESSAGE;
                    while !message.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    message.truncate(cut);
                }
                frame::encode(
                    FAILED,
                    &body(&FailedBody {
                        code: *code,
                        message,
                    }),
                    out,
                )
            }
            Message::Cancel => frame::encode(CANCEL, &[], out),
            Message::HomeCall { len } => frame::encode(HOME_CALL, &body(len), out),
            Message::HomeReply { len } => frame::encode(HOME_REPLY, &body(len), out),
        }
    }

    pub fn decode(frame: Frame) -> Result<Self, MessageError> {
        let empty = |what| {
            if frame.body.is_empty() {
                Ok(())
            } else {
                Err(MessageError::Malformed(what))
            }
        };
        Ok(match frame.kind {
            RUN => {
                let run: RunBody = parse(&frame.body, "run")?;
                Message::Run {
                    module: run.module,
                    snapshot_len: run.snapshot_len,
                }
            }
            DATA => Message::Data(frame.body),
            NEED_MODULE => {
                empty("need-module")?;
                Message::NeedModule
            }
            MODULE => Message::Module {
                len: parse(&frame.body, "module")?,
            },
            FINISHED => {
                let done: FinishedBody = parse(&frame.body, "finished")?;
                Message::Finished {
                    value: done.value,
                    diff_len: done.diff_len,
                }
            }
            FAILED => {
                let failed: FailedBody = parse(&frame.body, "failed")?;
                if failed.message.len() > MAX_MESSAGE {
                    return Err(MessageError::Malformed("failed"));
                }
                Message::Failed {
                    code: failed.code,
                    message: failed.message,
                }
            }
            CANCEL => {
                empty("cancel")?;
                Message::Cancel
            }
            HOME_CALL => Message::HomeCall {
                len: parse(&frame.body, "home-call")?,
            },
            HOME_REPLY => Message::HomeReply {
                len: parse(&frame.body, "home-reply")?,
            },
            kind => return Err(MessageError::UnknownKind(kind)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameDecoder, Limits};

    fn round_trip(message: Message) -> Message {
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.push(&bytes);
        Message::decode(decoder.next_frame().unwrap().unwrap()).unwrap()
    }

    #[test]
    fn every_message_round_trips() {
        for message in [
            Message::Run {
                module: [7; 32],
                snapshot_len: 1 << 40,
            },
            Message::Data(vec![1, 2, 3]),
            Message::NeedModule,
            Message::Module { len: 12345 },
            Message::Finished {
                value: 0xdead_beef,
                diff_len: 0,
            },
            Message::Failed {
                code: ErrorCode::Trapped,
                message: "unreachable".into(),
            },
            Message::Cancel,
            Message::HomeCall { len: 4 },
            Message::HomeReply { len: 0 },
        ] {
            assert_eq!(round_trip(message.clone()), message);
        }
        let long = Message::Failed {
            code: ErrorCode::Protocol,
            message: "é".repeat(MAX_MESSAGE),
        };
        let Message::Failed { message, .. } = round_trip(long) else {
            panic!("a failure");
        };
        assert!(message.len() <= MAX_MESSAGE);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let frame = |kind, body: &[u8]| Frame {
            kind,
            body: body.to_vec(),
        };
        assert_eq!(
            Message::decode(frame(99, b"")),
            Err(MessageError::UnknownKind(99))
        );
        assert!(Message::decode(frame(RUN, &[1, 2])).is_err(), "short");
        let mut run = body(&RunBody {
            module: [0; 32],
            snapshot_len: 1,
        });
        run.push(0);
        assert!(Message::decode(frame(RUN, &run)).is_err(), "trailing byte");
        assert!(Message::decode(frame(CANCEL, b"x")).is_err());
        assert!(
            Message::decode(frame(FAILED, &[9, 0])).is_err(),
            "unknown code"
        );
    }
}
