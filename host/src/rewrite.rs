//! Load-time rewrite of a guest module so every mutable global it defines
//! (`__stack_pointer`, `__tls_base`, ...) is exported under a reserved name
//! and can be captured into and restored from a snapshot.
//!
//! Only the export section changes; every other section is copied byte for
//! byte. The guest cannot observe the new exports.

use wasm_encoder::{ExportKind, ExportSection, RawSection};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// Section id of the export section.
const EXPORT_SECTION_ID: u8 = 7;

/// The largest function body Weft compiles: the compiler's time and
/// memory grow faster than a function's size (5 MB of straight-line code
/// took 29 s and 2.3 GB), so one huge function is refused at load.
pub const MAX_FUNCTION_BYTES: usize = 4 << 20;

/// Prefix of the exports this rewrite adds; a module may not use it.
pub const EXPORT_PREFIX: &str = "__weft_global_";

/// The export name of global `index`.
pub fn global_export(index: u32) -> String {
    format!("{EXPORT_PREFIX}{index}")
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
    let mut defined_functions = 0u32;
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
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len();
                if size > MAX_FUNCTION_BYTES {
                    return Err(RewriteError::FunctionTooLarge {
                        index: defined_functions,
                        size,
                    });
                }
                defined_functions += 1;
            }
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
