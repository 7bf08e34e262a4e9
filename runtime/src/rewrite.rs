//! Load-time rewrite of a guest module so every mutable global it defines
//! (`__stack_pointer`, `__tls_base`, ...) is exported under a reserved name
//! and can be captured into and restored from a snapshot.
//!
//! Only the export section changes; every other section is copied byte for
//! byte. The guest cannot observe the new exports.

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// Section id of the export section.
const EXPORT_SECTION_ID: u8 = 7;

/// The largest function body Weft compiles: the compiler's time and
/// memory grow faster than a function's size (5 MB of straight-line code
/// took 29 s and 2.3 GB), so one huge function is refused at load.
pub const MAX_FUNCTION_BYTES: usize = 4 << 20;

/// The most code one module or component may bring, all functions
/// together: many medium functions cost as much to compile as one huge
/// one. (A Python component, CPython included, is well under it: its
/// whole file is about 18 MB.)
pub const MAX_CODE_BYTES: usize = 64 << 20;

/// Prefix of the exports this rewrite adds; a module may not use it.
pub const EXPORT_PREFIX: &str = "__weft_global_";

/// The export name of global `index`.
pub fn global_export(index: u32) -> String {
    format!("{EXPORT_PREFIX}{index}")
}

/// Why a load-time rewrite that re-encodes a module (waits, callbacks,
/// std's answers) could not run: the module does not parse, or the
/// re-encoder refused it.
#[derive(Debug, thiserror::Error)]
pub enum ReencodeError {
    #[error("parsing the module: {0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    #[error("re-encoding the module: {0}")]
    Encode(String),
}

impl From<wasm_encoder::reencode::Error> for ReencodeError {
    fn from(e: wasm_encoder::reencode::Error) -> Self {
        Self::Encode(e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("parsing the module failed: {0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    #[error("the module already exports `{0}`, a name Weft reserves")]
    ReservedExport(String),
    #[error("a component is not a core module")]
    Component,
    #[error("a section runs past the end of the module (the file is truncated)")]
    Truncated,
    #[error(
        "defined function {index} has {size} bytes of code; Weft compiles functions of at most {} MiB (compile time grows faster than their size)",
        MAX_FUNCTION_BYTES >> 20
    )]
    FunctionTooLarge { index: u32, size: usize },
    #[error(
        "its functions have {size} bytes of code in all; Weft compiles at most {} MiB per module or component",
        MAX_CODE_BYTES >> 20
    )]
    CodeTooLarge { size: usize },
}

/// The compile budget, before any compiling: no function over
/// [`MAX_FUNCTION_BYTES`], no more than [`MAX_CODE_BYTES`] of code in all.
/// Works on core modules and on components (every core module inside).
pub fn check_compile_budget(wasm: &[u8]) -> Result<(), RewriteError> {
    let mut budget = CodeBudget::default();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CodeSectionEntry(body) = payload? {
            budget.add(body.range().len())?;
        }
    }
    Ok(())
}

/// Code seen so far against the compile budget.
#[derive(Debug, Default)]
struct CodeBudget {
    functions: u32,
    total: usize,
}

impl CodeBudget {
    fn add(&mut self, size: usize) -> Result<(), RewriteError> {
        if size > MAX_FUNCTION_BYTES {
            return Err(RewriteError::FunctionTooLarge {
                index: self.functions,
                size,
            });
        }
        self.functions += 1;
        self.total += size;
        if self.total > MAX_CODE_BYTES {
            return Err(RewriteError::CodeTooLarge { size: self.total });
        }
        Ok(())
    }
}

/// A module with its mutable globals exported.
#[derive(Debug, Clone)]
pub struct Instrumented {
    pub bytes: Vec<u8>,
    /// Indices (in the global index space) of the mutable globals the module
    /// defines, each exported as [`global_export`].
    pub mutable_globals: Vec<u32>,
}

/// Rewrites `wasm` (a core module) to export its mutable globals.
pub fn export_mutable_globals(wasm: &[u8]) -> Result<Instrumented, RewriteError> {
    let mut sections: Vec<(u8, &[u8])> = Vec::new();
    let mut exports: Option<ExportSection> = None;
    let mut imported_globals = 0u32;
    let mut mutable_globals = Vec::new();
    let mut budget = CodeBudget::default();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::Version { encoding, .. } => {
                if *encoding != wasmparser::Encoding::Module {
                    return Err(RewriteError::Component);
                }
                continue;
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    if matches!(import?.ty, TypeRef::Global(_)) {
                        imported_globals += 1;
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.clone().into_iter().enumerate() {
                    if global?.ty.mutable {
                        mutable_globals.push(imported_globals + i as u32);
                    }
                }
            }
            Payload::CodeSectionEntry(body) => budget.add(body.range().len())?,
            Payload::ExportSection(reader) => {
                let mut section = ExportSection::new();
                for export in reader.clone() {
                    let export = export?;
                    if export.name.starts_with(EXPORT_PREFIX) {
                        return Err(RewriteError::ReservedExport(export.name.to_string()));
                    }
                    section.export(export.name, export_kind(export.kind), export.index);
                }
                exports = Some(section);
                // Placed by position below.
                sections.push((EXPORT_SECTION_ID, &[]));
                continue;
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            // A section's declared size is the module's word: it may run
            // past the end of a truncated file.
            let Some(data) = wasm.get(range) else {
                return Err(RewriteError::Truncated);
            };
            sections.push((id, data));
        }
    }

    let had_exports = exports.is_some();
    let mut exports = exports.unwrap_or_default();
    for &index in &mutable_globals {
        exports.export(&global_export(index), ExportKind::Global, index);
    }
    if !had_exports {
        // The export section goes after every section that must precede it
        // (type .. global, and tag) and before start/element/code/data.
        let position = sections
            .iter()
            .position(|(id, _)| matches!(*id, 8..=12))
            .unwrap_or(sections.len());
        sections.insert(position, (EXPORT_SECTION_ID, &[]));
    }

    let mut module = wasm_encoder::Module::new();
    for (id, data) in sections {
        if id == EXPORT_SECTION_ID {
            module.section(&exports);
        } else {
            module.section(&RawSection { id, data });
        }
    }
    Ok(Instrumented {
        bytes: module.finish(),
        mutable_globals,
    })
}

/// The index of function `func` once `added` imports follow the module's
/// `imported` ones: defined functions move up, imports stay.
pub(crate) fn index_past_added_imports(func: u32, imported: u32, added: u32) -> u32 {
    if func >= imported { func + added } else { func }
}

/// The encoder's form of a number or vector type; `None` for references.
pub(crate) fn number_or_vector(ty: wasmparser::ValType) -> Option<wasm_encoder::ValType> {
    use wasm_encoder::ValType;
    Some(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(_) => return None,
    })
}

/// Copies a custom section into a module whose code a load-time rewrite
/// re-encoded, unless it locates code by byte offset (relocations, DWARF,
/// the linking section): the new bodies make those offsets wrong.
pub(crate) fn copy_custom_section_after_code_change<R: Reencode + ?Sized>(
    reencoder: &mut R,
    module: &mut wasm_encoder::Module,
    section: wasmparser::CustomSectionReader<'_>,
) -> Result<(), reencode::Error<R::Error>> {
    let name = section.name();
    if name.starts_with("reloc.") || name.starts_with(".debug_") || name == "linking" {
        return Ok(());
    }
    reencode::utils::parse_custom_section(reencoder, module, section)
}

/// Re-encodes one function body, giving each instruction first to
/// `replace`, which writes what stands for it into the new body and says
/// whether it did; the others are copied.
pub(crate) fn reencode_body<R: Reencode + ?Sized>(
    reencoder: &mut R,
    code: &mut wasm_encoder::CodeSection,
    func: wasmparser::FunctionBody<'_>,
    mut replace: impl FnMut(&mut R, &mut wasm_encoder::Function, &wasmparser::Operator<'_>) -> bool,
) -> Result<(), reencode::Error<R::Error>> {
    let mut f = reencoder.new_function_with_parsed_locals(&func)?;
    let mut reader = func.get_operators_reader()?;
    while !reader.eof() {
        let op = reader.read()?;
        if !replace(reencoder, &mut f, &op) {
            f.instruction(&reencoder.instruction(op)?);
        }
    }
    code.function(&f);
    Ok(())
}

fn export_kind(kind: ExternalKind) -> ExportKind {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
        ExternalKind::Table => ExportKind::Table,
        ExternalKind::Memory => ExportKind::Memory,
        ExternalKind::Global => ExportKind::Global,
        ExternalKind::Tag => ExportKind::Tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one function of `instructions` constant-drops.
    fn module_with_function(instructions: usize) -> Vec<u8> {
        let mut module = wasm_encoder::Module::new();
        let mut types = wasm_encoder::TypeSection::new();
        types.ty().function([], []);
        module.section(&types);
        let mut functions = wasm_encoder::FunctionSection::new();
        functions.function(0);
        module.section(&functions);
        let mut body = wasm_encoder::Function::new([]);
        for _ in 0..instructions {
            body.instructions().i32_const(1).drop();
        }
        body.instructions().end();
        let mut code = wasm_encoder::CodeSection::new();
        code.function(&body);
        module.section(&code);
        module.finish()
    }

    #[test]
    fn the_compile_budget_looks_inside_components() {
        let small = module_with_function(10);
        let huge = module_with_function(1_600_000);
        let wrap = |module: &[u8]| {
            let mut component = wasm_encoder::Component::new();
            component.section(&wasm_encoder::RawSection {
                id: wasm_encoder::ComponentSectionId::CoreModule as u8,
                data: module,
            });
            component.finish()
        };
        assert!(check_compile_budget(&small).is_ok());
        assert!(check_compile_budget(&wrap(&small)).is_ok());
        assert!(matches!(
            check_compile_budget(&wrap(&huge)),
            Err(RewriteError::FunctionTooLarge { index: 0, .. })
        ));
        assert!(matches!(
            check_compile_budget(&huge),
            Err(RewriteError::FunctionTooLarge { .. })
        ));
    }

    #[test]
    fn many_medium_functions_exceed_the_total_budget() {
        let mut budget = CodeBudget::default();
        let medium = 3 << 20;
        for _ in 0..MAX_CODE_BYTES / medium {
            budget.add(medium).unwrap();
        }
        assert!(matches!(
            budget.add(medium),
            Err(RewriteError::CodeTooLarge { .. })
        ));
    }

    fn exports_of(wasm: &[u8]) -> Vec<String> {
        let mut names = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::ExportSection(reader) = payload.unwrap() {
                for e in reader {
                    names.push(e.unwrap().name.to_string());
                }
            }
        }
        names
    }

    #[test]
    fn exports_only_defined_mutable_globals() {
        let wasm = wat::parse_str(
            r#"(module
              (import "env" "g" (global $imported (mut i32)))
              (global $sp (mut i32) (i32.const 1024))
              (global $const i32 (i32.const 7))
              (global $tls (mut i64) (i64.const 0))
              (memory 1)
              (func (export "_start") (global.set $sp (i32.const 5)))
              (data (i32.const 0) "hi"))"#,
        )
        .unwrap();
        let out = export_mutable_globals(&wasm).unwrap();
        assert_eq!(out.mutable_globals, [1, 3]);
        assert_eq!(
            exports_of(&out.bytes),
            ["_start", "__weft_global_1", "__weft_global_3"]
        );
        wasmparser::Validator::new()
            .validate_all(&out.bytes)
            .unwrap();
    }

    #[test]
    fn adds_an_export_section_where_it_belongs() {
        let wasm = wat::parse_str(
            r#"(module
              (global (mut i32) (i32.const 0))
              (func $f)
              (start $f)
              (data (i32.const 0) "x")
              (memory 1))"#,
        )
        .unwrap();
        let out = export_mutable_globals(&wasm).unwrap();
        assert_eq!(exports_of(&out.bytes), ["__weft_global_0"]);
        wasmparser::Validator::new()
            .validate_all(&out.bytes)
            .unwrap();
    }

    #[test]
    fn reserved_names_are_refused() {
        let wasm =
            wat::parse_str(r#"(module (global (export "__weft_global_0") i32 (i32.const 0)))"#)
                .unwrap();
        assert!(matches!(
            export_mutable_globals(&wasm),
            Err(RewriteError::ReservedExport(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(export_mutable_globals(b"\0asm\x01\0\0\0\x07\xff").is_err());
    }

    fn sample_module() -> Vec<u8> {
        wat::parse_str(
            r#"(module
              (global $sp (mut i32) (i32.const 1024))
              (memory 1)
              (func (export "_start") (local i32)
                (global.set $sp (i32.const 5))
                (local.set 0 (i32.const 7))
                (drop (local.get 0)))
              (data (i32.const 0) "hello"))"#,
        )
        .unwrap()
    }

    #[test]
    fn every_prefix_of_a_module_is_an_error_or_a_module() {
        let wasm = sample_module();
        for cut in 0..wasm.len() {
            // A declared code section longer than what is left is the
            // case a truncated file hits.
            let _ = export_mutable_globals(&wasm[..cut]);
        }
        assert!(export_mutable_globals(&wasm).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn flipped_bytes_never_panic(at in 0usize..1000, flip in 1u8..=255) {
            let mut wasm = sample_module();
            let at = at % wasm.len();
            wasm[at] ^= flip;
            let _ = export_mutable_globals(&wasm);
        }
    }
}
