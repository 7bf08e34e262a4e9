//! A thread whose stack overflows is stopped with one line, not left to
//! write over the memory below its stack. Natively a guard page below each
//! thread's stack turns an overflow into a crash; a wasm memory has no
//! pages to protect, and wasi-libc takes each thread's stack from the
//! heap, so a frame too large for it silently overwrites whatever lies
//! below (other threads' data, malloc's own records).
//!
//! So at load, every `global.set` of the module's `__stack_pointer` (the
//! C and Rust ABI's shadow stack pointer, named in the name section) is
//! followed by a look at the new value: up to [`GUARD`] bytes below the
//! bottom of the thread's stack (or past address 0 by as much), as a
//! guard region would catch it, the host's `weft-internal`
//! `stack-overflow` import ends the program with a line naming the
//! thread. The bottom is a global the rewrite adds (0 until set) and
//! exports as [`BOTTOM_EXPORT`]; libweft sets it as each thread starts
//! (`weft:threads` `set-stack-bottom`, from the block wasi-libc gave the
//! thread's stack). The main thread's stack lies at the bottom of the
//! memory (weft-cc links with `--stack-first`, as Rust does), so with the
//! bottom at 0 its overflow is caught as it passes address 0.
//!
//! Only the guard region is checked, not the whole range outside the
//! stack: code that moves the stack pointer to another stack on purpose
//! (Rust's `stacker`, which grows the stack onto the heap) must go on.
//! A switch to a stack that lies within the guard region below the
//! thread's would be taken for an overflow; a frame larger than the guard
//! region jumps over it, as it does a guard page natively. And a leaf
//! function (one that calls nothing) whose frame fits LLVM's 128-byte red
//! zone never writes its stack pointer back, so such a frame may lie up
//! to 128 bytes past the bottom unseen; a leaf with a larger frame writes
//! it back and is seen. Recursion, the usual overflow, always is.
//!
//! The rewrite runs after the mutable globals are exported for snapshots,
//! so the bounds are never part of one: a chained thread starts with none
//! and sets its own.
//!
//! The added import moves every defined function up by one: every
//! reference moves with it, as in `waits.rs`.

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{BlockType, EntityType, ExportKind, Instruction, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};
use wasmtime::Val;

use crate::rewrite::ReencodeError;

/// The import that ends the program: `(stack_pointer: i32) -> ()`, of
/// the host's internal module (the waits' too: `waits::MODULE`).
pub const MODULE: &str = "weft-internal";
pub const FUNCTION: &str = "stack-overflow";
/// The export name of the global holding the bottom of the thread's stack
/// (under the prefix modules may not use).
pub const BOTTOM_EXPORT: &str = "__weft_global_stack_bottom";
/// The export name the stack pointer gets too, so that a trap of the main
/// thread can be told to be its stack's overflow ([`main_overflow`]).
pub const POINTER_EXPORT: &str = "__weft_global_stack_pointer";
/// How far below the bottom a stack pointer is taken for an overflow: the
/// guard region (natively one page; here the largest frame caught).
pub const GUARD: u32 = 1 << 20;

/// What the rewrite needs to know of a module.
#[derive(Debug, Default)]
struct Survey {
    types: u32,
    imported_functions: u32,
    /// Imported and defined globals: the bottom's index comes after them.
    globals: u32,
    /// The index of `__stack_pointer`, when it is a mutable i32.
    stack_pointer: Option<u32>,
    has_imports: bool,
    has_globals: bool,
    has_exports: bool,
    sets_stack_pointer: bool,
    /// Global types in index order: (is i32, is mutable).
    global_types: Vec<(bool, bool)>,
}

fn survey(wasm: &[u8]) -> Result<Survey, ReencodeError> {
    let mut s = Survey::default();
    let mut stack_pointer_name = None;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(types) => s.types = types.count(),
            Payload::ImportSection(imports) => {
                s.has_imports = true;
                for import in imports.into_imports() {
                    match import?.ty {
                        TypeRef::Func(_) => s.imported_functions += 1,
                        TypeRef::Global(ty) => {
                            s.global_types
                                .push((ty.content_type == wasmparser::ValType::I32, ty.mutable));
                        }
                        _ => {}
                    }
                }
            }
            Payload::GlobalSection(globals) => {
                s.has_globals = true;
                for global in globals {
                    let ty = global?.ty;
                    s.global_types
                        .push((ty.content_type == wasmparser::ValType::I32, ty.mutable));
                }
            }
            Payload::ExportSection(_) => s.has_exports = true,
            Payload::CustomSection(c) => {
                if let wasmparser::KnownCustom::Name(names) = c.as_known() {
                    for name in names {
                        if let wasmparser::Name::Global(map) = name? {
                            for naming in map {
                                let naming = naming?;
                                if naming.name == "__stack_pointer" {
                                    stack_pointer_name = Some(naming.index);
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    s.globals = s.global_types.len() as u32;
    s.stack_pointer = stack_pointer_name
        .filter(|&index| s.global_types.get(index as usize) == Some(&(true, true)));
    if let Some(sp) = s.stack_pointer {
        'search: for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::CodeSectionEntry(body) = payload? {
                for op in body.get_operators_reader()? {
                    if matches!(op?, Operator::GlobalSet { global_index } if global_index == sp) {
                        s.sets_stack_pointer = true;
                        break 'search;
                    }
                }
            }
        }
    }
    Ok(s)
}

/// `wasm` with every move of its stack pointer checked against the
/// thread's bounds; `None` when the module names no mutable i32
/// `__stack_pointer` that its code sets (nothing to check), or lacks the
/// sections the rewrite adds to (then it is left as it is).
pub fn check_stacks(wasm: &[u8]) -> Result<Option<Vec<u8>>, ReencodeError> {
    let survey = survey(wasm)?;
    let Some(stack_pointer) = survey.stack_pointer else {
        return Ok(None);
    };
    if !(survey.sets_stack_pointer
        && survey.has_imports
        && survey.has_globals
        && survey.has_exports)
    {
        return Ok(None);
    }
    let mut checker = Checker {
        stack_pointer,
        bottom: survey.globals,
        overflow: survey.imported_functions,
        overflow_type: survey.types,
        imported_functions: survey.imported_functions,
    };
    let mut module = wasm_encoder::Module::new();
    checker.parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(Some(module.finish()))
}

struct Checker {
    stack_pointer: u32,
    /// The added global holding the bottom of the thread's stack.
    bottom: u32,
    /// The added import's function index, and its type's.
    overflow: u32,
    overflow_type: u32,
    imported_functions: u32,
}

impl Reencode for Checker {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(crate::rewrite::index_past_added_imports(
            func,
            self.imported_functions,
            1,
        ))
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([ValType::I32], []);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        imports.import(MODULE, FUNCTION, EntityType::Function(self.overflow_type));
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_global_section(self, globals, section)?;
        globals.global(
            wasm_encoder::GlobalType {
                val_type: ValType::I32,
                mutable: true,
                shared: false,
            },
            &wasm_encoder::ConstExpr::i32_const(0),
        );
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        exports.export(BOTTOM_EXPORT, ExportKind::Global, self.bottom);
        exports.export(POINTER_EXPORT, ExportKind::Global, self.stack_pointer);
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        crate::rewrite::reencode_body(self, code, func, |checker, f, op| {
            if !matches!(op, Operator::GlobalSet { global_index } if *global_index == checker.stack_pointer)
            {
                return false;
            }
            // Set it, then look: a frame is only written after the move.
            // In the guard region when `bottom - sp - 1 < GUARD` (unsigned:
            // also past address 0 by up to GUARD - bottom).
            let sp = checker.stack_pointer;
            f.instruction(&Instruction::GlobalSet(sp));
            f.instruction(&Instruction::GlobalGet(checker.bottom));
            f.instruction(&Instruction::GlobalGet(sp));
            f.instruction(&Instruction::I32Sub);
            f.instruction(&Instruction::I32Const(1));
            f.instruction(&Instruction::I32Sub);
            f.instruction(&Instruction::I32Const(GUARD as i32));
            f.instruction(&Instruction::I32LtU);
            f.instruction(&Instruction::If(BlockType::Empty));
            f.instruction(&Instruction::GlobalGet(sp));
            f.instruction(&Instruction::Call(checker.overflow));
            f.instruction(&Instruction::End);
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

/// The overflow a thread's stack pointer made, as its trap.
#[derive(Debug, thiserror::Error)]
pub struct StackOverflow {
    pub stack_pointer: u32,
    pub bottom: u32,
}

impl std::fmt::Display for StackOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let below = self.bottom.wrapping_sub(self.stack_pointer);
        if self.bottom == 0 {
            // The main thread's stack, at the bottom of the memory.
            write!(
                f,
                "stack overflow: a function's frame would start {below} bytes below the bottom of the main thread's stack (address 0); linking with -Wl,-z,stack-size=BYTES gives main a larger one (weft-cc's is 1 MiB)"
            )
        } else {
            write!(
                f,
                "stack overflow: a function's frame would start {below} bytes below the bottom of the thread's stack (at {:#x}); pthread_attr_setstacksize (OMP_STACKSIZE for OpenMP's threads) gives a thread a larger one",
                self.bottom
            )
        }
    }
}

/// The main thread's overflow by a frame larger than the guard region,
/// which the check after each move of the stack pointer does not see (it
/// jumps over the region, as over a guard page): when main trapped, its
/// stack pointer lies past the end of the memory (`memory_len` bytes),
/// having wrapped below address 0. `None` when the trap is another's.
pub(crate) fn main_overflow<T>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::Instance,
    memory_len: u64,
) -> Option<StackOverflow> {
    let read = |store: &mut wasmtime::Store<T>, name: &str| {
        instance
            .get_global(&mut *store, name)
            .and_then(|g| g.get(&mut *store).i32())
            .map(|v| v as u32)
    };
    let stack_pointer = read(store, POINTER_EXPORT)?;
    let bottom = read(store, BOTTOM_EXPORT)?;
    (bottom == 0 && u64::from(stack_pointer) >= memory_len).then_some(StackOverflow {
        stack_pointer,
        bottom,
    })
}

/// Clears `instance`'s stack bottom before a thread starts in it: an
/// instance kept for reuse still has the bottom of the thread that ran in
/// it last, and the new thread's first moves of its stack pointer (onto
/// its own stack) come before it sets its own.
pub(crate) fn forget_bounds<T>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::Instance,
) -> wasmtime::Result<()> {
    if let Some(global) = instance.get_global(&mut *store, BOTTOM_EXPORT) {
        global.set(&mut *store, Val::I32(0))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module whose `f` moves the stack pointer down by `frame` bytes
    /// and back, with its globals named as wasm-ld names them.
    fn module() -> Vec<u8> {
        wat::parse_str(
            r#"(module
              (import "env" "g" (func $g))
              (global $__stack_pointer (export "sp") (mut i32) (i32.const 65536))
              (func (export "f") (param $frame i32) (result i32)
                (global.set $__stack_pointer
                  (i32.sub (global.get $__stack_pointer) (local.get $frame)))
                (call $g)
                (global.set $__stack_pointer
                  (i32.add (global.get $__stack_pointer) (local.get $frame)))
                (global.get $__stack_pointer)))"#,
        )
        .unwrap()
    }

    #[test]
    fn a_frame_below_the_stack_stops_and_one_inside_runs() {
        let wasm = check_stacks(&module()).unwrap().expect("rewritten");
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let g = wasmtime::Func::wrap(&mut store, || {});
        let overflow = wasmtime::Func::wrap(&mut store, |sp: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::msg(format!("overflow at {sp:#x}")))
        });
        // Imports in order: the module's, then the added one.
        let instance =
            wasmtime::Instance::new(&mut store, &module, &[g.into(), overflow.into()]).unwrap();
        let f = instance
            .get_typed_func::<i32, i32>(&mut store, "f")
            .unwrap();
        // No bottom set: any frame runs.
        assert_eq!(f.call(&mut store, 60000).unwrap(), 65536);
        let bottom = instance.get_global(&mut store, BOTTOM_EXPORT).unwrap();
        bottom.set(&mut store, Val::I32(61440)).unwrap();
        assert_eq!(f.call(&mut store, 4096).unwrap(), 65536);
        let error = f.call(&mut store, 4097).unwrap_err();
        assert!(
            format!("{error:?}").contains("overflow at 0xefff"),
            "{error:?}"
        );
        // Far below (another stack, switched to on purpose): it runs.
        bottom.set(&mut store, Val::I32(0x40_0000)).unwrap();
        let sp = instance.get_global(&mut store, "sp").unwrap();
        sp.set(&mut store, Val::I32(65536)).unwrap();
        assert_eq!(f.call(&mut store, 4096).unwrap(), 65536);
        // Past address 0 with the bottom at 0 (the main thread).
        bottom.set(&mut store, Val::I32(0)).unwrap();
        let error = f.call(&mut store, 70000).unwrap_err();
        assert!(
            format!("{error:?}").contains("overflow at 0xffffee90"),
            "{error:?}"
        );
    }

    #[test]
    fn modules_without_a_named_stack_pointer_are_left_alone() {
        let unnamed = wat::parse_str(
            r#"(module (global (mut i32) (i32.const 0))
                 (func (global.set 0 (i32.const 1))))"#,
        )
        .unwrap();
        assert!(check_stacks(&unnamed).unwrap().is_none());
    }
}
