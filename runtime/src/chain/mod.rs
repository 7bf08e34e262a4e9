//! Chain mode: every new thread is a chained call, a fresh instance on a
//! memory of its own restored from a snapshot of its parent.
//!
//! At `pthread_create` (the parent is inside `thread-spawn`):
//! 1. snapshot the parent's memory and globals (under the parent memory's
//!    merge lock, so no merge lands halfway);
//! 2. adjust what the child will see, in the snapshot itself so the same
//!    bytes are the diff's baseline: the thread-list lock the parent holds is
//!    released, and the thread's start routine becomes libweft's trampoline,
//!    with the real routine and argument in `weft_chain_entry`;
//! 3. run the child on a pool thread: restore, `wasi_thread_start`, and the
//!    trampoline hands back the routine's result (`finish`);
//! 4. merge the child's diff into the parent's memory with the registered
//!    merge regions, reporting conflicts (address and variable name);
//! 5. finish the thread on the parent's memory: a helper instance runs
//!    libc's real exit path (`wasi_thread_start` with a start routine that
//!    returns the result), which wakes the joiner and updates libc's thread
//!    list exactly as in local mode.
//!
//! Where the child runs is `run_child`: the seam a remote host plugs into.
//!
//! Heap: each chained thread allocates from an arena of chunks that Weft
//! hands out from the arena zone (`zone.rs`), address space of the main
//! memory that no allocator uses. A chunk must read the same (zero) in
//! every copy of memory its writes travel through: the thread's memory and
//! snapshot, its parent's, and so on up to the main memory. Fresh zone
//! space is zero everywhere; a reused chunk is zeroed along that path when
//! it is handed out (`zero_along`).
//!
//! A chained thread creates, joins and detaches threads at home
//! (`at_home`): libc's thread list and the new thread's memory are the
//! main memory's, and the new thread is a child of the main memory.
//!
//! Files, bottom to top: `support` (what chain mode keeps for a program:
//! libweft's addresses, the memory pool, the zone, the home's sync table
//! and published image; conflict reports), `arena` (heap chunks),
//! `sync_point` (release/acquire, home atomics, loads), `sync_calls` (what
//! each sync import does, for a thread here or on a peer), `sync_away`
//! (sync points of a thread on a peer, over its call's stream), `stall`
//! (the stall
//! watch), `child` (a chained thread's run, at home or for a peer),
//! `spawn` (a new thread: the snapshot and where it runs).

mod arena;
mod at_home;
mod child;
mod spawn;
mod stall;
mod support;
mod sync_away;
mod sync_calls;
mod sync_point;

pub(crate) use arena::{adopt_remote_chunk, arena_of_checked, release_arena_chunk};
pub use child::{ChildError, run_remote};
pub(crate) use spawn::home_chunk;
pub use support::MissingSymbol;
pub(crate) use support::{ChainSupport, sync_table};
pub(crate) use sync_away::{acquire_away, release_away, unreleased_away, write_away};
pub(crate) use sync_point::{atomic_at_home, load_point, sync_point};

use crate::locks::Locked as _;
use std::sync::Arc;

use wasmtime::Caller;

use crate::process::{Chaining, Process, ThreadMemory, ThreadState};
use crate::start::ThreadError;
use weft_transport::envelope::SyncCall;

impl Chaining for ChainSupport {
    fn spawn(
        &self,
        process: &Arc<Process>,
        caller: &mut Caller<'_, ThreadState>,
        memory: Arc<ThreadMemory>,
        tid: u32,
        start_arg: u32,
    ) -> Result<(), ThreadError> {
        spawn::spawn(self, process, caller, memory, tid, start_arg)
    }

    fn pooled_bytes(&self) -> u64 {
        ChainSupport::pooled_bytes(self)
    }

    fn drop_pooled(&self) {
        ChainSupport::drop_pooled(self)
    }

    fn program_ended(&self) {
        self.sync.close();
    }

    fn first_arena_chunk(
        &self,
        process: &Arc<Process>,
        parent: &Arc<ThreadMemory>,
    ) -> wasmtime::Result<(u32, u32)> {
        arena::allocate_chunk(process, self, parent, arena::FIRST_ARENA_CHUNK, None)
            .map(|(start, len, _)| (start, len))
            .map_err(wasmtime::Error::new)
    }

    fn give_back_arena_chunk(&self, start: u32) {
        self.zone.locked().release(start).ok();
    }

    fn arena_grow(&self, caller: &mut Caller<'_, ThreadState>, size: u32) -> u32 {
        arena::grow_arena(caller, size)
    }

    fn arena_lookup(&self, process: &Process, tid: u32, addr: u32) -> wasmtime::Result<u32> {
        arena::arena_of_checked(process, tid, addr)
    }

    fn synchronise(
        &self,
        caller: &mut Caller<'_, ThreadState>,
        call: &SyncCall,
    ) -> wasmtime::Result<i64> {
        let process = caller.data().process.clone();
        sync_calls::perform(&mut sync_calls::Here { caller, process }, call)
    }
}
