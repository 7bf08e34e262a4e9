//! Rust's `std::thread::available_parallelism()` answers the processor
//! count Weft gives every other way of asking (parallelism.rs).
//!
//! On wasm32-wasip1-threads std compiles the function to a constant
//! "unsupported" error: it asks neither libc nor the host. Where the
//! function is still a function of the module (the name section names it
//! `std::thread::functions::available_parallelism`, `(i32) -> ()`, writing
//! an `io::Result<NonZeroUsize>` through the pointer it is given), its body
//! is replaced at load by one that writes `Ok(n)`, `n` from the
//! `available-parallelism` import of `weft:threads` (added when the module
//! does not import it yet, which moves every defined function up by one).
//!
//! The layout written is the one std uses on wasm32 (checked by compiling
//! a function returning `Ok(NonZeroUsize)` with the pinned toolchain):
//! `io::Error`'s representation is an enum with a one-byte tag at offset 0
//! (0 `Os`, 1 `Simple`, 2 `SimpleMessage`, 3 `Custom`) and a 4-byte payload
//! at offset 4; `Ok` takes the next tag, 4, with the `NonZeroUsize` at
//! offset 4. A body is replaced only when it has that shape: a leaf (no
//! calls, so it asks nobody) that stores the tag 2 of the constant error
//! with `i32.store8`. Anything else is left as it is.
//!
//! Where std's function was inlined into its callers (a release build: it
//! is a tiny leaf, so every crate that calls it gets its own copy, and
//! LLVM folds the constant error into the caller's `unwrap_or`), nothing
//! is left to replace: the module keeps std's answer. For rayon, whose
//! global pool is the common way a Rust program sizes its threads by that
//! answer, the program starts with `RAYON_NUM_THREADS` set to the count
//! (when its environment does not set it), which rayon reads first
//! ([`answer_std`]).

use wasm_encoder::reencode::{self, Reencode};

use crate::rewrite::ReencodeError;
use wasm_encoder::{EntityType, Instruction, MemArg, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use crate::threads::WEFT_MODULE;

/// The host import that answers the processor count: `() -> i32`.
const PARALLELISM_IMPORT: &str = "available-parallelism";

/// The tag std's `io::Result<NonZeroUsize>` has for `Ok` on wasm32.
const OK_TAG: i32 = 4;
/// The tag of the constant error std's function writes (`SimpleMessage`).
const ERROR_TAG: i32 = 2;
/// Offset of the `NonZeroUsize` in `Ok`.
const VALUE_OFFSET: u64 = 4;

/// Whether `name` (a function's name in the name section) is std's
/// `available_parallelism`, legacy-mangled, with or without the suffix
/// LLVM adds to names it moves across codegen units.
fn is_std_available_parallelism(name: &str) -> bool {
    let name = name.split_once(".llvm.").map_or(name, |(head, _)| head);
    let Some(hash) = [
        "_ZN3std6thread9functions21available_parallelism17h",
        "_ZN3std6thread21available_parallelism17h",
    ]
    .iter()
    .find_map(|prefix| name.strip_prefix(prefix)) else {
        return false;
    };
    hash.len() == 17 && hash.ends_with('E') && hash[..16].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `body` is std's constant error: no call of any kind, and a
/// store of the error's tag byte.
fn is_constant_error(body: &wasmparser::FunctionBody<'_>) -> Result<bool, ReencodeError> {
    let mut stores_error_tag = false;
    let mut previous_was_tag = false;
    for op in body.get_operators_reader()? {
        let op = op?;
        match op {
            Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. } => return Ok(false),
            Operator::I32Store8 { memarg } if previous_was_tag && memarg.memory == 0 => {
                stores_error_tag = true;
            }
            _ => {}
        }
        previous_was_tag = matches!(op, Operator::I32Const { value: ERROR_TAG });
    }
    Ok(stores_error_tag)
}

/// What the rewrite needs to know of a module.
#[derive(Debug, Default)]
struct Survey {
    types: u32,
    imported_functions: u32,
    /// The function index of `weft:threads` `available-parallelism`, when
    /// the module imports it with its type.
    parallelism: Option<u32>,
    /// Whether memory 0 is 32-bit (the layout above is wasm32's).
    memory32: Option<bool>,
    /// Type index of each defined function.
    function_types: Vec<u32>,
    /// Whether each type is `(i32) -> ()`, and whether it is `() -> i32`.
    sret_types: Vec<bool>,
    getter_types: Vec<bool>,
    /// The name section names a function of the `rayon_core` crate.
    rayon: bool,
    /// Defined functions (absolute indices) the name section gives std's name.
    named: Vec<u32>,
}

fn survey(wasm: &[u8]) -> Result<Survey, ReencodeError> {
    let mut s = Survey::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(types) => {
                for ty in types.into_iter_err_on_gc_types() {
                    let ty = ty?;
                    s.types += 1;
                    s.sret_types
                        .push(ty.params() == [wasmparser::ValType::I32] && ty.results().is_empty());
                    s.getter_types
                        .push(ty.params().is_empty() && ty.results() == [wasmparser::ValType::I32]);
                }
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import?;
                    match import.ty {
                        TypeRef::Func(ty) => {
                            if import.module == WEFT_MODULE
                                && import.name == PARALLELISM_IMPORT
                                && s.getter_types.get(ty as usize) == Some(&true)
                            {
                                s.parallelism = Some(s.imported_functions);
                            }
                            s.imported_functions += 1;
                        }
                        TypeRef::Memory(memory) => {
                            s.memory32.get_or_insert(!memory.memory64);
                        }
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(memories) => {
                if let Some(memory) = memories.into_iter().next() {
                    s.memory32.get_or_insert(!memory?.memory64);
                }
            }
            Payload::FunctionSection(functions) => {
                for ty in functions {
                    s.function_types.push(ty?);
                }
            }
            Payload::CustomSection(c) => {
                if let wasmparser::KnownCustom::Name(names) = c.as_known() {
                    for name in names {
                        if let wasmparser::Name::Function(map) = name? {
                            for naming in map {
                                let naming = naming?;
                                if is_std_available_parallelism(naming.name) {
                                    s.named.push(naming.index);
                                }
                                // Legacy and v0 mangling both spell the
                                // crate's name with its length.
                                s.rayon |= naming.name.contains("10rayon_core");
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// `wasm` with std's `available_parallelism` answering the host's count,
/// or `None` when the module has no such function of the verified shape
/// (then it is left unchanged).
pub fn answer_available_parallelism(wasm: &[u8]) -> Result<Option<Vec<u8>>, ReencodeError> {
    answer_from(wasm, survey(wasm)?)
}

/// [`answer_available_parallelism`], and whether `wasm` holds rayon (its
/// name section names a `rayon_core` function: its global pool is then
/// sized by `RAYON_NUM_THREADS`, as std's answer may be folded away),
/// from one look at the module.
pub fn answer_std(wasm: &[u8]) -> Result<(Option<Vec<u8>>, bool), ReencodeError> {
    let s = survey(wasm)?;
    let rayon = s.rayon;
    Ok((answer_from(wasm, s)?, rayon))
}

fn answer_from(wasm: &[u8], s: Survey) -> Result<Option<Vec<u8>>, ReencodeError> {
    if s.named.is_empty() {
        return Ok(None);
    }
    if s.memory32 != Some(true) {
        tracing::debug!("available_parallelism: memory 0 is not 32-bit; left unchanged");
        return Ok(None);
    }
    // Defined functions whose name and type are std's; their bodies are
    // checked below, in the order of the code section.
    let mut candidates = std::collections::BTreeSet::new();
    for &index in &s.named {
        let typed = index
            .checked_sub(s.imported_functions)
            .and_then(|defined| s.function_types.get(defined as usize))
            .is_some_and(|&ty| s.sret_types.get(ty as usize) == Some(&true));
        if typed {
            candidates.insert(index - s.imported_functions);
        } else {
            tracing::debug!(
                "available_parallelism: function {index} is not (i32) -> (); left unchanged"
            );
        }
    }
    let mut replace = std::collections::BTreeSet::new();
    let mut defined = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CodeSectionEntry(body) = payload? {
            if candidates.contains(&defined) {
                if is_constant_error(&body)? {
                    replace.insert(defined);
                } else {
                    tracing::debug!(
                        "available_parallelism: function {} is not std's constant error; left unchanged",
                        defined + s.imported_functions
                    );
                }
            }
            defined += 1;
        }
    }
    if replace.is_empty() {
        return Ok(None);
    }
    let shift = u32::from(s.parallelism.is_none());
    let mut answerer = Answerer {
        parallelism: s.parallelism.unwrap_or(s.imported_functions),
        shift,
        types: s.types,
        imported_functions: s.imported_functions,
        replace,
        defined: 0,
    };
    let mut module = wasm_encoder::Module::new();
    answerer.parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(Some(module.finish()))
}

/// The re-encoder: adds the import when missing (moving defined functions
/// up by `shift`) and replaces the chosen bodies.
struct Answerer {
    /// The import's function index in the new module.
    parallelism: u32,
    shift: u32,
    types: u32,
    imported_functions: u32,
    /// Defined function numbers (from 0) whose bodies are replaced.
    replace: std::collections::BTreeSet<u32>,
    /// The defined function the code section is at.
    defined: u32,
}

impl Reencode for Answerer {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(crate::rewrite::index_past_added_imports(
            func,
            self.imported_functions,
            self.shift,
        ))
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        if self.shift == 1 {
            types.ty().function([], [ValType::I32]);
        }
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        if self.shift == 1 {
            imports.import(
                WEFT_MODULE,
                PARALLELISM_IMPORT,
                EntityType::Function(self.types),
            );
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let defined = self.defined;
        self.defined += 1;
        if !self.replace.contains(&defined) {
            return crate::rewrite::reencode_body(self, code, func, |_, _, _| false);
        }
        let memarg = |offset, align| MemArg {
            offset,
            align,
            memory_index: 0,
        };
        let mut f = wasm_encoder::Function::new([]);
        f.instruction(&Instruction::LocalGet(0));
        f.instruction(&Instruction::I32Const(OK_TAG));
        f.instruction(&Instruction::I32Store8(memarg(0, 0)));
        f.instruction(&Instruction::LocalGet(0));
        f.instruction(&Instruction::Call(self.parallelism));
        f.instruction(&Instruction::I32Store(memarg(VALUE_OFFSET, 2)));
        f.instruction(&Instruction::End);
        code.function(&f);
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        crate::rewrite::copy_custom_section_after_code_change(self, module, section)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD_NAME: &str = "_ZN3std6thread9functions21available_parallelism17h2e2547cd6ff5240eE";

    /// A module shaped as a debug build of a guest: std's function writes
    /// the constant error (tag 2, a message pointer) through its pointer,
    /// and `main` calls it.
    fn guest(import: &str, name: &str, body: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(module
                (import "env" "memory" (memory 1 1 shared))
                {import}
                (func $main (export "main") (result i32)
                    (call $ap (i32.const 64))
                    (i32.load offset=4 (i32.const 64)))
                (func $ap (@name "{name}") (param i32) {body})
                (table 1 funcref)
                (elem (i32.const 0) $ap))"#
        ))
        .unwrap()
    }

    const ERROR_BODY: &str = "(i32.store8 (local.get 0) (i32.const 2))
                              (i32.store offset=4 (local.get 0) (i32.const 1024))";

    fn print(wasm: &[u8]) -> String {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(wasm)
            .unwrap();
        wasmprinter::print_bytes(wasm).unwrap()
    }

    fn answer_body(call: u32) -> String {
        format!(
            "local.get 0\n    i32.const 4\n    i32.store8\n    local.get 0\n    call {call}\n    i32.store offset=4\n"
        )
    }

    #[test]
    fn std_names_are_recognised_and_others_are_not() {
        assert!(is_std_available_parallelism(STD_NAME));
        assert!(is_std_available_parallelism(&format!(
            "{STD_NAME}.llvm.1234"
        )));
        assert!(is_std_available_parallelism(
            "_ZN3std6thread21available_parallelism17h0123456789abcdefE"
        ));
        assert!(!is_std_available_parallelism(
            "_ZN4mine6thread9functions21available_parallelism17h2e2547cd6ff5240eE"
        ));
        assert!(!is_std_available_parallelism(
            "_ZN3std6thread9functions21available_parallelism17h2e25E"
        ));
        assert!(!is_std_available_parallelism("available_parallelism"));
    }

    #[test]
    fn the_body_writes_ok_from_an_import_it_adds() {
        let wasm = guest("", STD_NAME, ERROR_BODY);
        let answered = answer_available_parallelism(&wasm)
            .unwrap()
            .expect("rewritten");
        let text = print(&answered);
        assert!(
            text.contains(
                r#"(import "weft:threads/threads@0.1.0" "available-parallelism" (func (;0;)"#
            ),
            "{text}"
        );
        // $main and $ap moved up by one, and their references with them.
        assert!(text.contains("(export \"main\" (func $main))"), "{text}");
        assert!(text.contains("(func $main (;1;)"), "{text}");
        assert!(text.contains("call $"), "{text}");
        assert!(text.contains(&answer_body(0)), "{text}");
        assert!(text.contains("func $"), "{text}");
    }

    #[test]
    fn an_import_the_module_has_is_used_and_nothing_moves() {
        let import = r#"(import "weft:threads/threads@0.1.0" "available-parallelism" (func $n (result i32)))"#;
        let wasm = guest(import, STD_NAME, ERROR_BODY);
        let answered = answer_available_parallelism(&wasm)
            .unwrap()
            .expect("rewritten");
        let text = print(&answered);
        assert!(text.contains("(func $main (;1;)"), "{text}");
        assert_eq!(text.matches("available-parallelism").count(), 1, "{text}");
        assert!(
            text.contains(&answer_body(0).replace("call 0", "call $n")),
            "{text}"
        );
    }

    #[test]
    fn the_answer_runs_and_reads_back_as_ok() {
        let wasm = guest("", STD_NAME, ERROR_BODY);
        let answered = answer_available_parallelism(&wasm).unwrap().unwrap();
        let mut config = wasmtime::Config::new();
        config.wasm_threads(true);
        config.shared_memory(true);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let module = wasmtime::Module::new(&engine, &answered).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let memory =
            wasmtime::SharedMemory::new(&engine, wasmtime::MemoryType::shared(1, 1)).unwrap();
        let mut linker = wasmtime::Linker::new(&engine);
        linker
            .define(&store, "env", "memory", memory.clone())
            .unwrap();
        linker
            .func_wrap(WEFT_MODULE, PARALLELISM_IMPORT, || -> i32 { 7 })
            .unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let main = instance
            .get_typed_func::<(), i32>(&mut store, "main")
            .unwrap();
        assert_eq!(main.call(&mut store, ()).unwrap(), 7);
        // SAFETY: no other thread uses the memory; the byte is read once.
        let tag = unsafe { *memory.data()[64].get() };
        assert_eq!(tag, OK_TAG as u8);
    }

    #[test]
    fn other_shapes_are_left_unchanged() {
        // A body that asks someone (a call): not the constant error.
        let calls = guest(
            "",
            STD_NAME,
            "(call $main) (drop) (i32.store8 (local.get 0) (i32.const 2))",
        );
        assert!(answer_available_parallelism(&calls).unwrap().is_none());
        // A body that stores another tag.
        let other_tag = guest("", STD_NAME, "(i32.store8 (local.get 0) (i32.const 4))");
        assert!(answer_available_parallelism(&other_tag).unwrap().is_none());
        // Another function's name.
        let other_name = guest(
            "",
            "_ZN4mine21available_parallelism17h2e2547cd6ff5240eE",
            ERROR_BODY,
        );
        assert!(answer_available_parallelism(&other_name).unwrap().is_none());
        // std's name on another type.
        let wrong_type = wat::parse_str(format!(
            r#"(module (memory 1)
                (func (@name "{STD_NAME}") (param i32 i32)
                    (i32.store8 (local.get 0) (i32.const 2))))"#
        ))
        .unwrap();
        assert!(answer_available_parallelism(&wrong_type).unwrap().is_none());
        // A 64-bit memory: another layout.
        let memory64 = wat::parse_str(format!(
            r#"(module (memory i64 1)
                (func (@name "{STD_NAME}") (param i32)
                    (i32.store8 (i64.const 0) (i32.const 2))))"#
        ))
        .unwrap();
        assert!(answer_available_parallelism(&memory64).unwrap().is_none());
        // An import of the right name but the wrong type is not used, and a
        // module without the function is left alone.
        let plain = wat::parse_str("(module (func (drop (i32.const 1))))").unwrap();
        assert!(answer_available_parallelism(&plain).unwrap().is_none());
    }

    #[test]
    fn a_wrongly_typed_import_is_not_called() {
        let import = r#"(import "weft:threads/threads@0.1.0" "available-parallelism" (func $n (result i64)))"#;
        let wasm = guest(import, STD_NAME, ERROR_BODY);
        let answered = answer_available_parallelism(&wasm).unwrap().unwrap();
        let text = print(&answered);
        // A second, well-typed import is added and called.
        assert_eq!(text.matches("available-parallelism").count(), 2, "{text}");
        assert!(text.contains(&answer_body(1)), "{text}");
    }
}
