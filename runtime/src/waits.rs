//! Waits a program's end can reach. A thread blocked in
//! `memory.atomic.wait32/64` with no timeout (inside `pthread_join`, a
//! mutex or a condition variable) wakes only on a notify of its address:
//! no epoch check, no signal reaches it. So at load every such instruction
//! of a module that imports its memory (the host's shared memory) becomes
//! a call of a host function (`weft-internal` `memory-wait32` /
//! `memory-wait64`) that waits the same way but counts the thread as
//! blocked at its address: the program's end notifies every such address,
//! and the woken thread stops with [`ProgramEnded`]. A wait also looks
//! every [`WAIT_SLICE`](crate::outcome::WAIT_SLICE) (a thread about to
//! wait when the end came; a call away from home that was cancelled). A
//! library then never needs to end the OS process to end one program.
//!
//! The same registry is local mode's deadlock detector: a wait with no
//! time limit (or a slice of one, `weft:threads` `wait-slice`) asks the
//! process at each slice whether every thread of the program has waited so
//! for a while with no wait woken meanwhile
//! (`Process::deadlocked_waits`).
//!
//! The rewrite adds two function imports, which moves every defined
//! function's index up by two: every reference (calls, `ref.func`,
//! element segments, exports, the start function, the name section) is
//! moved with it. Custom sections that point into code by byte offset
//! (relocations, DWARF) are dropped, as the atomics lowering does.

use std::time::{Duration, Instant};

use wasm_encoder::reencode::{self, Reencode};

use crate::rewrite::ReencodeError;
use wasm_encoder::{EntityType, Instruction, ValType};
use wasmparser::{Operator, Parser, Payload};
use wasmtime::{Caller, Linker, WaitResult};

use crate::outcome::{Outcome, ProgramEnded, WAIT_SLICE};
use crate::process::ThreadState;

/// The import module of the wait functions.
pub const MODULE: &str = "weft-internal";
/// Their names: `(addr, expected, timeout_ns, offset) -> 0 ok | 1 not-equal | 2 timed-out`.
pub const FUNCTIONS: &[&str] = &["memory-wait32", "memory-wait64"];

/// Whether a function body of `wasm` waits on memory 0.
fn has_waits(wasm: &[u8]) -> Result<bool, ReencodeError> {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CodeSectionEntry(body) = payload? {
            for op in body.get_operators_reader()? {
                if let Operator::MemoryAtomicWait32 { memarg }
                | Operator::MemoryAtomicWait64 { memarg } = op?
                    && memarg.memory == 0
                {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// `wasm` with every `memory.atomic.wait32/64` on memory 0 turned into a
/// call of the host's wait functions; `None` when it has no such wait, or
/// when its memory 0 is its own rather than imported (the host waits on
/// the shared memory it gives a program; a module that defines its memory
/// has no threads of the host's and keeps its waits).
pub fn route_waits(wasm: &[u8]) -> Result<Option<Vec<u8>>, ReencodeError> {
    if !has_waits(wasm)? {
        return Ok(None);
    }
    let mut survey = Survey::default();
    let mut imports_memory = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(types) => survey.types = types.count(),
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    match import?.ty {
                        wasmparser::TypeRef::Func(_) => survey.imported_functions += 1,
                        wasmparser::TypeRef::Memory(_) => imports_memory = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !imports_memory {
        return Ok(None);
    }
    let mut router = Router {
        survey,
        wait32: survey.imported_functions,
        wait64: survey.imported_functions + 1,
    };
    let mut module = wasm_encoder::Module::new();
    router.parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(Some(module.finish()))
}

#[derive(Debug, Default, Clone, Copy)]
struct Survey {
    types: u32,
    imported_functions: u32,
}

/// The re-encoder: adds the two types and imports, moves defined
/// functions up by two, and replaces the waits.
struct Router {
    survey: Survey,
    wait32: u32,
    wait64: u32,
}

impl Router {
    /// Type indices of the two wait functions (appended to the types).
    fn wait_types(&self) -> (u32, u32) {
        (self.survey.types, self.survey.types + 1)
    }

    fn add_imports(&self, imports: &mut wasm_encoder::ImportSection) {
        let (t32, t64) = self.wait_types();
        imports.import(MODULE, FUNCTIONS[0], EntityType::Function(t32));
        imports.import(MODULE, FUNCTIONS[1], EntityType::Function(t64));
    }
}

impl Reencode for Router {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(crate::rewrite::index_past_added_imports(
            func,
            self.survey.imported_functions,
            FUNCTIONS.len() as u32,
        ))
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        // (addr, expected, timeout_ns, offset) -> result, as the
        // instructions' operands with the offset pushed last.
        let wait = |expected| {
            (
                [ValType::I32, expected, ValType::I64, ValType::I32],
                [ValType::I32],
            )
        };
        let (params, results) = wait(ValType::I32);
        types.ty().function(params, results);
        let (params, results) = wait(ValType::I64);
        types.ty().function(params, results);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        crate::rewrite::reencode_body(self, code, func, |router, f, op| {
            let (memarg, wait) = match op {
                Operator::MemoryAtomicWait32 { memarg } => (memarg, router.wait32),
                Operator::MemoryAtomicWait64 { memarg } => (memarg, router.wait64),
                _ => return false,
            };
            if memarg.memory != 0 {
                return false;
            }
            f.instruction(&Instruction::I32Const(memarg.offset as u32 as i32));
            f.instruction(&Instruction::Call(wait));
            true
        })
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        crate::rewrite::copy_custom_section_after_code_change(self, module, section)
    }
}

/// Defines the wait functions on `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<ThreadState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        FUNCTIONS[0],
        |caller: Caller<'_, ThreadState>, addr: i32, expected: i32, timeout: i64, offset: i32| {
            wait(
                &caller,
                (addr, offset),
                timeout,
                timeout < 0,
                |memory, at, slice| memory.atomic_wait32(at, expected as u32, slice),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        FUNCTIONS[1],
        |caller: Caller<'_, ThreadState>, addr: i32, expected: i64, timeout: i64, offset: i32| {
            wait(
                &caller,
                (addr, offset),
                timeout,
                timeout < 0,
                |memory, at, slice| memory.atomic_wait64(at, expected as u64, slice),
            )
        },
    )?;
    Ok(())
}

/// `weft:threads` `wait-slice`: one slice of a guest's wait with no time
/// limit, counted as a wait for good.
pub(crate) fn wait_slice(
    caller: &Caller<'_, ThreadState>,
    addr: i32,
    expected: i32,
    slice_ns: i64,
) -> wasmtime::Result<i32> {
    wait(
        caller,
        (addr, 0),
        slice_ns.max(0),
        true,
        |memory, at, slice| memory.atomic_wait32(at, expected as u32, slice),
    )
}

/// Waits as the instruction would (at `addr + offset`, for `timeout_ns`,
/// negative: forever), one slice at a time, until woken, the value
/// differs, the time is up, or the thread's program has ended. A wait
/// `forever` (no time limit, or one slice of such a wait) asks the
/// process's deadlock detector at each slice.
fn wait(
    caller: &Caller<'_, ThreadState>,
    (addr, offset): (i32, i32),
    timeout_ns: i64,
    forever: bool,
    slice: impl Fn(&wasmtime::SharedMemory, u64, Option<Duration>) -> Result<WaitResult, wasmtime::Trap>,
) -> wasmtime::Result<i32> {
    let state = caller.data();
    let Some(memory) = state.memory.as_ref() else {
        return Err(wasmtime::Trap::AtomicWaitNonSharedMemory.into());
    };
    let at = addr as u32 as u64 + offset as u32 as u64;
    let deadline = u64::try_from(timeout_ns)
        .ok()
        .map(|ns| Instant::now() + Duration::from_nanos(ns));
    // Counted before the look at the end, so an end from now on wakes it.
    let blocked = state
        .process
        .blocked_wait(&memory.memory, at, state.tid, forever);
    loop {
        if state.home().is_cancelled() {
            return Err(wasmtime::Error::new(ProgramEnded));
        }
        let left = deadline.map(|at| at.saturating_duration_since(Instant::now()));
        let this_slice = left.map_or(WAIT_SLICE, |left| left.min(WAIT_SLICE));
        match slice(&memory.memory, at, Some(this_slice))? {
            // Woken by the program's end is no wake of the guest's.
            WaitResult::Ok if state.home().is_cancelled() => {
                return Err(wasmtime::Error::new(ProgramEnded));
            }
            WaitResult::Ok => {
                state.process.wait_went_on();
                return Ok(0);
            }
            WaitResult::Mismatch => {
                state.process.wait_went_on();
                return Ok(1);
            }
            // The guest's own time is up (a slice of `wait-slice` ended:
            // the guest looks for a cancel request and may go on).
            WaitResult::TimedOut if left.is_some_and(|left| left <= this_slice) => return Ok(2),
            WaitResult::TimedOut => {
                blocked.slice_ended();
                if forever && let Some(report) = state.process.deadlocked_waits() {
                    state.process.end(Outcome::Deadlock {
                        thread: state.tid,
                        report,
                    });
                    return Err(wasmtime::Error::new(ProgramEnded));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(wasm: &[u8]) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::CustomSection(c) = payload.unwrap()
                && let wasmparser::KnownCustom::Name(names) = c.as_known()
            {
                for name in names {
                    if let wasmparser::Name::Function(map) = name.unwrap() {
                        for naming in map {
                            let naming = naming.unwrap();
                            out.push((naming.index, naming.name.to_string()));
                        }
                    }
                }
            }
        }
        out
    }

    const WAITS: &str = r#"(module
        (import "env" "memory" (memory 1 1 shared))
        (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
        (table 2 funcref)
        (elem (i32.const 0) $waits $other)
        (func $waits (export "waits") (param i32) (result i32)
            (call $other)
            (memory.atomic.wait32 offset=8 (local.get 0) (i32.const 0) (i64.const -1))
            (memory.atomic.wait64 (local.get 0) (i64.const 0) (i64.const 5))
            i32.add
            (drop (ref.func $other)))
        (func $other)
        (start $other))"#;

    #[test]
    fn waits_become_calls_and_every_function_reference_moves() {
        let wasm = wat::parse_str(WAITS).unwrap();
        let routed = route_waits(&wasm).unwrap().expect("has waits");
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&routed)
            .unwrap();
        assert!(!has_waits(&routed).unwrap());
        let text = wasmprinter::print_bytes(&routed).unwrap();
        assert!(
            text.contains("(import \"weft-internal\" \"memory-wait32\""),
            "{text}"
        );
        assert!(text.contains("i32.const 8\n    call 1\n"), "{text}");
        assert!(text.contains("i32.const 0\n    call 2\n"), "{text}");
        // $waits was 1 and $other 2: now 3 and 4, and every reference
        // (export, start, element segment, ref.func, call) names them.
        assert!(text.contains("(func $waits (;3;)"), "{text}");
        assert!(text.contains("(func $other (;4;)"), "{text}");
        assert!(text.contains("(export \"waits\" (func $waits))"), "{text}");
        assert!(text.contains("(start $other)"), "{text}");
        assert!(text.contains("func $waits $other"), "{text}");
        assert!(text.contains("ref.func $other"), "{text}");
        assert!(text.contains("call $other"), "{text}");
        assert_eq!(
            names(&routed),
            vec![
                (0, "spawn".into()),
                (3, "waits".into()),
                (4, "other".into())
            ]
        );
    }

    #[test]
    fn a_module_without_waits_is_left_alone() {
        let wasm = wat::parse_str("(module (func (drop (i32.const 1))))").unwrap();
        assert!(route_waits(&wasm).unwrap().is_none());
    }

    #[test]
    fn a_module_that_defines_its_memory_keeps_its_waits() {
        let wasm = wat::parse_str(
            r#"(module (memory 1 1 shared)
                (func (export "f") (result i32)
                    (memory.atomic.wait32 (i32.const 0) (i32.const 1) (i64.const 0))))"#,
        )
        .unwrap();
        assert!(route_waits(&wasm).unwrap().is_none());
    }

    #[test]
    fn a_module_whose_only_import_is_its_memory_gets_the_waits_first() {
        let wasm = wat::parse_str(
            r#"(module (import "env" "memory" (memory 1 1 shared))
                (func (export "f") (result i32)
                    (memory.atomic.wait32 (i32.const 0) (i32.const 1) (i64.const 0))))"#,
        )
        .unwrap();
        let routed = route_waits(&wasm).unwrap().unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&routed)
            .unwrap();
        let text = wasmprinter::print_bytes(&routed).unwrap();
        assert!(text.contains("(export \"f\" (func 2))"), "{text}");
        assert!(text.contains("call 0"), "{text}");
    }
}
