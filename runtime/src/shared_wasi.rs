//! The process-wide WASI context every thread of a program shares (one fd
//! table, as natively); `wasi.rs` defines the preview1 imports over it.

use crate::locks::Locked as _;
use std::sync::{Mutex, MutexGuard};

use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1 as _;

/// Bytes a single WASI call may copy between guest and host (the same bound
/// wasmtime uses by default).
const HOSTCALL_FUEL: usize = 128 << 20;

/// The process-wide WASI state shared by all threads.
pub struct SharedWasi {
    ctx: Mutex<WasiP1Ctx>,
}

impl std::fmt::Debug for SharedWasi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWasi").finish_non_exhaustive()
    }
}

impl SharedWasi {
    pub fn new(ctx: WasiP1Ctx) -> Self {
        Self {
            ctx: Mutex::new(ctx),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, WasiP1Ctx> {
        // A thread that panicked inside a WASI call cannot leave the table
        // half-updated in a way that matters more than ending the process,
        // which the panic already does; keep serving the others meanwhile.
        let mut ctx = self.ctx.locked();
        ctx.set_hostcall_fuel(HOSTCALL_FUEL);
        ctx
    }
}
