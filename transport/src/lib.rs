//! Weft's host-to-host protocol, sans IO: bytes in, bytes and events out,
//! no sockets and no clock (like quinn-proto). A QUIC layer drives it: one
//! bidirectional stream per chained call.
//!
//! - [`frame`]: the framing of a stream (magic, version, kind, bounded
//!   length) and its incremental decoder;
//! - [`message`]: what frames carry;
//! - [`call`]: the two ends of a chained call: the host that asks
//!   ([`call::Requester`]) and the worker that runs it ([`call::Worker`]);
//! - [`envelope`]: what a chained call's payloads carry (the thread, its
//!   snapshot or a delta against a base, the result and its output) and
//!   the calls a thread away from home makes to its home;
//! - [`payload`]: how a payload travels: as it is, or zstd-compressed
//!   where that pays (bounded when unpacked).
//!
//! A chained call on the wire: the requester sends `Run` (module hash,
//! snapshot length) and the snapshot in `Data` chunks. A worker without the
//! module asks for it (`NeedModule`); the requester sends `Module` and its
//! bytes in chunks, and the worker checks them against the hash: a host
//! never accepts compiled code, only wasm it compiles itself. The worker
//! answers `Finished` (the result and the diff in chunks) or `Failed`.
//! The requester may `Cancel` at any time.

pub mod call;
pub mod envelope;
pub mod frame;
pub mod fuzz;
pub mod message;
pub mod payload;
#[cfg(feature = "quic")]
pub mod quic;

pub use frame::{Frame, FrameDecoder, FrameError, Limits};
pub use message::{ErrorCode, Message};
