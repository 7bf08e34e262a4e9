//! The process as the home of its own threads: what [`Home`] asks, made
//! here on the process's own state, WASI context and chain mode.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wasmtime::Caller;
use weft_snapshot::MergeRegion;
use weft_transport::envelope::{ChainAnswer, ChainCall, SyncCall};

use super::{Home, MAX_TID, Process, ThreadMemory, ThreadState};
use crate::calls::CallError;
use crate::outcome::Outcome;
use crate::start::ThreadError;
use crate::state::StateHost;

impl Home for Process {
    fn new_thread(&self, _: &Process) -> Result<u32, ThreadError> {
        let max = self.config.max_threads;
        self.live_threads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| ThreadError::Again)?;
        crate::metrics::thread_began();
        Ok(self.next_tid.fetch_add(1, Ordering::Relaxed) % MAX_TID + 1)
    }

    fn not_started(&self, _: &Process, _: u32) {
        self.thread_ended();
    }

    fn thread_failed(&self, _: &Process, tid: u32, end: Result<i32, wasmtime::Error>) {
        self.end(match end {
            Ok(code) => Outcome::Exit(code),
            Err(error) => Outcome::trap(tid, error),
        });
    }

    fn chained_thread_failed(
        &self,
        process: &Process,
        tid: u32,
        end: Result<i32, wasmtime::Error>,
    ) {
        Home::thread_failed(self, process, tid, end);
    }

    fn refuse(&self, _: &Process, code: i32, why: String) {
        self.end(Outcome::Refused { code, message: why });
    }

    fn decides_conflicts(&self) -> bool {
        true
    }

    fn chained_thread_runs(&self, _: &Process) {
        if let Some(placer) = &self.start.placer {
            placer.count_home_run(false);
        }
    }

    fn chained_thread_exiting(&self, _: u32) {}

    fn add_cpu(&self, _: u64) {
        // Home's own threads are counted by the process's clocks.
    }

    fn running_thread(self: Arc<Self>) -> Option<crate::home::CallThread> {
        None
    }

    fn state<'a>(&'a self, process: &'a Process) -> &'a StateHost {
        process.state()
    }

    fn wasi_call(
        &self,
        caller: &mut Caller<'_, ThreadState>,
        name: &str,
        args: Vec<i64>,
    ) -> wasmtime::Result<i32> {
        crate::wasi::call_here(caller, name, &args)
    }

    fn buffer_output(&self, _: u8, _: &[u8]) -> bool {
        false
    }

    fn exit(&self, _: u32, code: i32) -> wasmtime::Error {
        // The thread runner ends the program with this code.
        wasmtime::Error::new(wasmtime_wasi::I32Exit(code))
    }

    fn home_clock(&self, _: &Process, id: u32) -> wasmtime::Result<Option<u64>> {
        Ok(crate::wasi::cpu_clock_at_home(self, id))
    }

    fn output_fdstat(&self, _: &Process, fd: u32) -> wasmtime::Result<Result<Vec<u8>, u16>> {
        let fd = i32::try_from(fd).map_err(|_| wasmtime::Error::msg("fd_fdstat_get of no fd"))?;
        Ok(crate::wasi::fdstat(self, fd).map(|bytes| bytes.to_vec()))
    }

    fn merge_regions(&self, _: &Process, _: &ThreadMemory) -> Vec<MergeRegion> {
        Process::merge_regions(self)
    }

    fn first_arena_chunk(
        &self,
        process: &Arc<Process>,
        parent: &Arc<ThreadMemory>,
    ) -> wasmtime::Result<(u32, u32)> {
        match self.chaining() {
            Some(chaining) => chaining.first_arena_chunk(process, parent),
            None => wasmtime::bail!("a heap arena needs chain mode"),
        }
    }

    fn give_back_arena_chunk(&self, _: &Process, start: u32) {
        if let Some(chaining) = self.chaining() {
            chaining.give_back_arena_chunk(start);
        }
    }

    fn arena_grow(&self, caller: &mut Caller<'_, ThreadState>, size: u32) -> wasmtime::Result<u32> {
        Ok(self
            .chaining()
            .map_or(0, |chaining| chaining.arena_grow(caller, size)))
    }

    fn arena_lookup(&self, process: &Process, tid: u32, addr: u32) -> wasmtime::Result<u32> {
        match self.chaining() {
            Some(chaining) => chaining.arena_lookup(process, tid, addr),
            None => Ok(0),
        }
    }

    fn register_merge_region(
        &self,
        _: &Process,
        region: MergeRegion,
    ) -> wasmtime::Result<Result<(), u8>> {
        Ok(Process::register_merge_region(self, region).map_err(|e| e as u8))
    }

    fn is_cancelled(&self) -> bool {
        self.is_ending()
    }

    fn chain(&self, process: &Process, call: ChainCall) -> Result<ChainAnswer, CallError> {
        crate::calls::serve_chain(process.start_config(), process.calls(), call).0
    }

    fn chain_wait(&self, process: &Process, call: ChainCall) -> Result<ChainAnswer, CallError> {
        crate::calls::serve_chain_wait(process.start_config(), process.calls(), call)
    }

    fn synchronise(
        &self,
        caller: &mut Caller<'_, ThreadState>,
        call: &SyncCall,
    ) -> wasmtime::Result<i64> {
        match self.chaining() {
            Some(chaining) => chaining.synchronise(caller, call),
            None => wasmtime::bail!(
                "weft:threads {}: synchronisation through the host needs chain mode",
                call.name()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Program, StartConfig};

    fn process() -> Arc<Process> {
        let wasm = wat::parse_str(
            r#"(module
                (import "env" "memory" (memory 1 1 shared))
                (func (export "_start")))"#,
        )
        .unwrap();
        let engine = crate::engine::engine().unwrap();
        let program = Program::load(&engine, &wasm).unwrap();
        program.start(&StartConfig::default()).unwrap()
    }

    #[test]
    fn home_answers_what_only_home_has_from_its_own_context() {
        let process = process();
        let home: &dyn Home = &*process;
        // Home writes through its WASI context: nothing is kept.
        assert!(!home.buffer_output(1, b"x"));
        let exit = home.exit(0, 3);
        assert_eq!(
            exit.downcast_ref::<wasmtime_wasi::I32Exit>().map(|e| e.0),
            Some(3)
        );
        let record = home.output_fdstat(&process, 1).unwrap().unwrap();
        assert_eq!(record.len(), crate::wasi::FDSTAT_SIZE);
        assert!(home.output_fdstat(&process, 99).unwrap().is_err());
        let cpu = home
            .home_clock(&process, crate::wasi::CLOCKID_PROCESS_CPUTIME as u32)
            .unwrap();
        assert!(cpu.is_some_and(|nanos| nanos > 0));
        // A clock id that is no CPU clock of home's.
        assert_eq!(home.home_clock(&process, 0).unwrap(), None);
    }
}
