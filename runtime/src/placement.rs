//! Where a chained thread runs: a pure policy (no I/O, no shared state),
//! given ways to take a slot at home and to reserve a peer. Each is tried
//! only when the policy gets to it, so nothing is reserved that the thread
//! does not use. The peers themselves are behind [`Placer`], which the
//! cluster implements: the runtime never knows how a thread travels.

use std::str::FromStr;
use std::sync::atomic::AtomicBool;

use weft_snapshot::{Diff, Snapshot};

/// The peers chained threads may run on besides home, as the runtime
/// sees them (the cluster implements it over QUIC).
pub trait Placer: Send + Sync + std::fmt::Debug {
    /// Where chained threads go first.
    fn placement(&self) -> Placement;
    /// A peer with a free slot, reserved for one thread.
    fn reserve(&self) -> Option<usize>;
    /// Threads all peers together run at once (what the program is told
    /// as processors beyond home's slots).
    fn peer_slots(&self) -> usize {
        0
    }
    /// Gives back a reservation for a thread that will not go after all.
    fn unreserve(&self, peer: usize);
    /// Runs thread `(tid, start_arg, arena)` of the program whose wasm is
    /// `module` from `snapshot` on the reserved `peer` (or the next peer
    /// with room when that one is busy or lost). `home` answers the calls
    /// the thread makes home (encoded requests in, encoded replies out);
    /// `wants` says how the program wants it run.
    fn run(
        &self,
        peer: usize,
        module: &[u8],
        thread: (u32, u32, u32),
        snapshot: &Snapshot,
        home: &mut (dyn FnMut(Vec<u8>) -> Vec<u8> + Send),
        wants: Wants<'_>,
    ) -> Remote;
    /// Counts a thread that ran at home; `taken_back`: it went to a peer
    /// first and runs again from its snapshot.
    fn count_home_run(&self, taken_back: bool);
    /// Counts `threads` that ran on a peer (a remote thread and the
    /// threads it started there).
    fn count_peer_runs(&self, threads: u64);
}

/// How a program wants a thread it sends to a peer run.
#[derive(Clone, Copy)]
pub struct Wants<'a> {
    /// Whether the thread has changed what others see: it must not run
    /// again elsewhere.
    pub effects: &'a AtomicBool,
    /// The program has a time limit: the thread must stop anywhere when
    /// it is cancelled, not only at a host call.
    pub stoppable: bool,
    /// Whether the program has ended: the peer is asked to stop the
    /// thread.
    pub ended: &'a (dyn Fn() -> bool + Sync),
}

impl std::fmt::Debug for Wants<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wants")
            .field("effects", &self.effects)
            .field("stoppable", &self.stoppable)
            .finish_non_exhaustive()
    }
}

/// How a thread sent to a peer came back.
#[derive(Debug)]
pub enum Remote {
    /// It finished there: its result, its changes, its output records and
    /// the CPU time its threads used there.
    Finished {
        value: u32,
        diff: Diff,
        output: Vec<u8>,
        cpu_ns: u64,
    },
    /// Run it at home: it made a host call only home serves
    /// (`needs_home`), or no peer could run it; `ran`: it began running on
    /// a peer (it was not only refused or unreachable); `why`, for the
    /// log.
    Home {
        needs_home: bool,
        ran: bool,
        why: HomeAgain,
    },
}

/// Why a thread sent to a peer runs at home after all.
#[derive(Debug, thiserror::Error)]
pub enum HomeAgain {
    /// The peer ended the call: the thread made a host call only home
    /// serves. The peer's own words.
    #[error("the peer ended the call: {0}")]
    PeerEnded(String),
    /// The thread trapped on the peer: the trap and its wasm backtrace, as
    /// the peer tells them (home runs the thread again and reports the
    /// trap itself, unless the thread synchronised there).
    #[error("it trapped on the peer: {0}")]
    Trapped(String),
    /// No peer could run it (refused, unreachable, lost).
    #[error(transparent)]
    NoPeer(Box<dyn std::error::Error + Send + Sync>),
}

/// Where chained threads go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Home while it has a free slot, then peers in order (bin-packing).
    #[default]
    Pack,
    /// Peers while they have room, then home.
    Peers,
}

/// A placement's name that is neither `pack` nor `peers`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}`: expected `pack` or `peers`")]
pub struct UnknownPlacement(pub String);

impl FromStr for Placement {
    type Err = UnknownPlacement;
    fn from_str(s: &str) -> Result<Self, UnknownPlacement> {
        match s {
            "pack" => Ok(Self::Pack),
            "peers" => Ok(Self::Peers),
            _ => Err(UnknownPlacement(s.to_string())),
        }
    }
}

/// Where one thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// At home, on the slot just taken.
    Home,
    /// On this peer, reserved for it.
    Peer(usize),
    /// At home, once a slot is free (no room anywhere now).
    Queue,
}

/// Decides where a thread runs under `policy`: `take_home_slot` takes a
/// free slot at home if there is one, `reserve_peer` reserves a peer with
/// room if there is one.
pub fn place(
    policy: Placement,
    take_home_slot: impl FnOnce() -> bool,
    reserve_peer: impl FnOnce() -> Option<usize>,
) -> Place {
    if policy == Placement::Pack && take_home_slot() {
        return Place::Home;
    }
    reserve_peer().map_or(Place::Queue, Place::Peer)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// `place` with a home that has `home_free` slots and peers that have
    /// `peer_free`; the decision and how many peer reservations it made.
    fn decide(policy: Placement, home_free: bool, peer_free: Option<usize>) -> (Place, usize) {
        let reserved = Cell::new(0);
        let place = place(
            policy,
            || home_free,
            || {
                reserved.set(reserved.get() + 1);
                peer_free
            },
        );
        (place, reserved.get())
    }

    #[test]
    fn pack_fills_home_first_and_reserves_no_peer_for_it() {
        assert_eq!(decide(Placement::Pack, true, Some(0)), (Place::Home, 0));
        assert_eq!(decide(Placement::Pack, false, Some(2)), (Place::Peer(2), 1));
        assert_eq!(decide(Placement::Pack, false, None), (Place::Queue, 1));
    }

    #[test]
    fn peers_go_first_and_home_queues_when_they_are_full() {
        let mut home_asked = false;
        let chosen = place(
            Placement::Peers,
            || {
                home_asked = true;
                true
            },
            || Some(1),
        );
        assert_eq!(chosen, Place::Peer(1));
        assert!(!home_asked, "peers placement takes no home slot");
        assert_eq!(decide(Placement::Peers, true, None), (Place::Queue, 1));
    }

    #[test]
    fn placements_parse() {
        assert_eq!("pack".parse(), Ok(Placement::Pack));
        assert_eq!("peers".parse(), Ok(Placement::Peers));
        assert!("spread".parse::<Placement>().is_err());
    }
}
