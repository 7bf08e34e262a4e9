//! Load-time lowering of atomic instructions, for programs linked with
//! libweft by a toolchain other than weft-cc (Rust: `weft-cc --rustflags`).
//!
//! In chain mode every thread runs on its own copy of memory, where a wasm
//! atomic instruction would act on that copy alone: two threads' updates
//! of one counter would meet as a merge conflict, a lock taken in one copy
//! would exclude no one, and a `memory.atomic.wait` would wait for a change
//! no other copy can make. weft-cc lowers a C program's atomics in LLVM IR
//! into calls of libweft's `__weft_atomic_*` functions, which act on one
//! value for every thread (chain_atomic.c). Rust's std comes compiled, so
//! its locks, condition variables, channels, `Arc` counters and thread
//! parking reach the module as wasm atomics; here each of them becomes a
//! call of the same libweft functions, through a small helper per
//! instruction shape that computes and checks the address as the
//! instruction would.
//!
//! What is lowered: a module asks for it by exporting libweft's entry
//! points (the Rust link flags do); then every atomic instruction in every
//! function that is not libc's, libweft's or the linker's. libc's and
//! libweft's own functions keep their atomics: they are written for a copy
//! of memory per thread (libweft's wrappers of pthreads and the heap decide
//! what goes home). Which functions those are, the module says itself:
//! libweft carries a custom section, `weft.runtime_functions`, listing
//! every function libc and libweft define (made when libweft is built), and
//! the name section (or the symbol table the Rust link flags keep) names
//! each function of the module. Deciding by that list rather than by the
//! shape of a name keeps every function of the program: Rust functions
//! LLVM renamed across codegen units (`...E.llvm.1234`), `#[no_mangle]`
//! functions, closures, and C code a crate compiled with its own compiler.
//!
//! Only the type, function and code sections change (helpers are appended,
//! so no index moves); every other section is copied, except the custom
//! sections that locate code by byte offset (`reloc.CODE`, DWARF), which
//! the new bodies would make wrong.

use std::collections::{HashMap, HashSet};

use wasm_encoder::{BlockType, Encode, Instruction, RawSection, ValType};
use wasmparser::{
    CompositeInnerType, KnownCustom, Linking, MemArg, Name, Operator, Parser, Payload, SymbolInfo,
    TypeRef,
};

/// Prefix of libweft's atomic entry points.
pub const ENTRY_PREFIX: &str = "__weft_atomic_";

/// The custom section libweft adds: the names of the functions libc and
/// libweft define, one a line.
pub const RUNTIME_FUNCTIONS_SECTION: &str = "weft.runtime_functions";

/// Functions wasm-ld makes itself; `__wasm_init_memory` waits on an atomic
/// flag while the first thread copies the data segments, before libweft
/// can run.
const LINKER_FUNCTIONS: [&str; 5] = [
    "__wasm_call_ctors",
    "__wasm_init_memory",
    "__wasm_init_tls",
    "__wasm_apply_data_relocs",
    "__wasm_apply_global_relocs",
];

#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    #[error("parsing the module failed: {0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    #[error("a section runs past the end of the module (the file is truncated)")]
    Truncated,
    #[error("the module exports some of libweft's atomic entry points but not `{0}`")]
    MissingEntry(String),
    #[error("libweft's `{0}` has an unexpected signature")]
    EntrySignature(String),
    #[error("an atomic instruction uses memory {0}; Weft lowers atomics of memory 0 only")]
    OtherMemory(u32),
    #[error("the code of function {0} ends inside an instruction")]
    BodyEnd(u32),
    #[error(
        "the module exports libweft's atomic entry points but has no `weft.runtime_functions` section (link it with the current `weft-cc --rustflags`)"
    )]
    NoRuntimeFunctions,
    #[error("the `weft.runtime_functions` section is not UTF-8 text")]
    RuntimeFunctionsText,
    #[error(
        "the module has no function names (name section or symbol table), so Weft cannot tell the program's functions from libc's (do not strip symbols)"
    )]
    NoNames,
}

/// The read-modify-write operations, as libweft numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RmwOp {
    Xchg = 0,
    Add = 1,
    Sub = 2,
    And = 3,
    Or = 5,
    Xor = 6,
}

/// The shape of one atomic instruction: what it does, how many bytes, and
/// whether its value is an i64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Access {
    Load { bytes: u8, wide: bool },
    Store { bytes: u8, wide: bool },
    Rmw { op: RmwOp, bytes: u8, wide: bool },
    Cmpxchg { bytes: u8, wide: bool },
    Wait32,
    Wait64,
    Notify,
}

impl Access {
    fn bytes(self) -> u8 {
        match self {
            Self::Load { bytes, .. }
            | Self::Store { bytes, .. }
            | Self::Rmw { bytes, .. }
            | Self::Cmpxchg { bytes, .. } => bytes,
            Self::Wait32 | Self::Notify => 4,
            Self::Wait64 => 8,
        }
    }

    fn value_type(self) -> ValType {
        match self {
            Self::Load { wide: true, .. }
            | Self::Store { wide: true, .. }
            | Self::Rmw { wide: true, .. }
            | Self::Cmpxchg { wide: true, .. } => ValType::I64,
            _ => ValType::I32,
        }
    }

    /// The instruction's operands and results.
    fn signature(self) -> (Vec<ValType>, Vec<ValType>) {
        use ValType::{I32, I64};
        let t = self.value_type();
        match self {
            Self::Load { .. } => (vec![I32], vec![t]),
            Self::Store { .. } => (vec![I32, t], vec![]),
            Self::Rmw { .. } => (vec![I32, t], vec![t]),
            Self::Cmpxchg { .. } => (vec![I32, t, t], vec![t]),
            Self::Wait32 => (vec![I32, I32, I64], vec![I32]),
            Self::Wait64 => (vec![I32, I64, I64], vec![I32]),
            Self::Notify => (vec![I32, I32], vec![I32]),
        }
    }
}

/// The atomic instruction `op`, if it is one with a memory operand.
fn classify(op: &Operator<'_>) -> Option<(Access, MemArg)> {
    use Access::*;
    use Operator as O;
    let rmw = |op, bytes, wide| Rmw { op, bytes, wide };
    let (access, memarg) = match *op {
        O::I32AtomicLoad { memarg } => (
            Load {
                bytes: 4,
                wide: false,
            },
            memarg,
        ),
        O::I32AtomicLoad8U { memarg } => (
            Load {
                bytes: 1,
                wide: false,
            },
            memarg,
        ),
        O::I32AtomicLoad16U { memarg } => (
            Load {
                bytes: 2,
                wide: false,
            },
            memarg,
        ),
        O::I64AtomicLoad { memarg } => (
            Load {
                bytes: 8,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicLoad8U { memarg } => (
            Load {
                bytes: 1,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicLoad16U { memarg } => (
            Load {
                bytes: 2,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicLoad32U { memarg } => (
            Load {
                bytes: 4,
                wide: true,
            },
            memarg,
        ),
        O::I32AtomicStore { memarg } => (
            Store {
                bytes: 4,
                wide: false,
            },
            memarg,
        ),
        O::I32AtomicStore8 { memarg } => (
            Store {
                bytes: 1,
                wide: false,
            },
            memarg,
        ),
        O::I32AtomicStore16 { memarg } => (
            Store {
                bytes: 2,
                wide: false,
            },
            memarg,
        ),
        O::I64AtomicStore { memarg } => (
            Store {
                bytes: 8,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicStore8 { memarg } => (
            Store {
                bytes: 1,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicStore16 { memarg } => (
            Store {
                bytes: 2,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicStore32 { memarg } => (
            Store {
                bytes: 4,
                wide: true,
            },
            memarg,
        ),
        O::I32AtomicRmwAdd { memarg } => (rmw(RmwOp::Add, 4, false), memarg),
        O::I32AtomicRmw8AddU { memarg } => (rmw(RmwOp::Add, 1, false), memarg),
        O::I32AtomicRmw16AddU { memarg } => (rmw(RmwOp::Add, 2, false), memarg),
        O::I64AtomicRmwAdd { memarg } => (rmw(RmwOp::Add, 8, true), memarg),
        O::I64AtomicRmw8AddU { memarg } => (rmw(RmwOp::Add, 1, true), memarg),
        O::I64AtomicRmw16AddU { memarg } => (rmw(RmwOp::Add, 2, true), memarg),
        O::I64AtomicRmw32AddU { memarg } => (rmw(RmwOp::Add, 4, true), memarg),
        O::I32AtomicRmwSub { memarg } => (rmw(RmwOp::Sub, 4, false), memarg),
        O::I32AtomicRmw8SubU { memarg } => (rmw(RmwOp::Sub, 1, false), memarg),
        O::I32AtomicRmw16SubU { memarg } => (rmw(RmwOp::Sub, 2, false), memarg),
        O::I64AtomicRmwSub { memarg } => (rmw(RmwOp::Sub, 8, true), memarg),
        O::I64AtomicRmw8SubU { memarg } => (rmw(RmwOp::Sub, 1, true), memarg),
        O::I64AtomicRmw16SubU { memarg } => (rmw(RmwOp::Sub, 2, true), memarg),
        O::I64AtomicRmw32SubU { memarg } => (rmw(RmwOp::Sub, 4, true), memarg),
        O::I32AtomicRmwAnd { memarg } => (rmw(RmwOp::And, 4, false), memarg),
        O::I32AtomicRmw8AndU { memarg } => (rmw(RmwOp::And, 1, false), memarg),
        O::I32AtomicRmw16AndU { memarg } => (rmw(RmwOp::And, 2, false), memarg),
        O::I64AtomicRmwAnd { memarg } => (rmw(RmwOp::And, 8, true), memarg),
        O::I64AtomicRmw8AndU { memarg } => (rmw(RmwOp::And, 1, true), memarg),
        O::I64AtomicRmw16AndU { memarg } => (rmw(RmwOp::And, 2, true), memarg),
        O::I64AtomicRmw32AndU { memarg } => (rmw(RmwOp::And, 4, true), memarg),
        O::I32AtomicRmwOr { memarg } => (rmw(RmwOp::Or, 4, false), memarg),
        O::I32AtomicRmw8OrU { memarg } => (rmw(RmwOp::Or, 1, false), memarg),
        O::I32AtomicRmw16OrU { memarg } => (rmw(RmwOp::Or, 2, false), memarg),
        O::I64AtomicRmwOr { memarg } => (rmw(RmwOp::Or, 8, true), memarg),
        O::I64AtomicRmw8OrU { memarg } => (rmw(RmwOp::Or, 1, true), memarg),
        O::I64AtomicRmw16OrU { memarg } => (rmw(RmwOp::Or, 2, true), memarg),
        O::I64AtomicRmw32OrU { memarg } => (rmw(RmwOp::Or, 4, true), memarg),
        O::I32AtomicRmwXor { memarg } => (rmw(RmwOp::Xor, 4, false), memarg),
        O::I32AtomicRmw8XorU { memarg } => (rmw(RmwOp::Xor, 1, false), memarg),
        O::I32AtomicRmw16XorU { memarg } => (rmw(RmwOp::Xor, 2, false), memarg),
        O::I64AtomicRmwXor { memarg } => (rmw(RmwOp::Xor, 8, true), memarg),
        O::I64AtomicRmw8XorU { memarg } => (rmw(RmwOp::Xor, 1, true), memarg),
        O::I64AtomicRmw16XorU { memarg } => (rmw(RmwOp::Xor, 2, true), memarg),
        O::I64AtomicRmw32XorU { memarg } => (rmw(RmwOp::Xor, 4, true), memarg),
        O::I32AtomicRmwXchg { memarg } => (rmw(RmwOp::Xchg, 4, false), memarg),
        O::I32AtomicRmw8XchgU { memarg } => (rmw(RmwOp::Xchg, 1, false), memarg),
        O::I32AtomicRmw16XchgU { memarg } => (rmw(RmwOp::Xchg, 2, false), memarg),
        O::I64AtomicRmwXchg { memarg } => (rmw(RmwOp::Xchg, 8, true), memarg),
        O::I64AtomicRmw8XchgU { memarg } => (rmw(RmwOp::Xchg, 1, true), memarg),
        O::I64AtomicRmw16XchgU { memarg } => (rmw(RmwOp::Xchg, 2, true), memarg),
        O::I64AtomicRmw32XchgU { memarg } => (rmw(RmwOp::Xchg, 4, true), memarg),
        O::I32AtomicRmwCmpxchg { memarg } => (
            Cmpxchg {
                bytes: 4,
                wide: false,
            },
            memarg,
        ),
        O::I32AtomicRmw8CmpxchgU { memarg } => (
            Cmpxchg {
                bytes: 1,
                wide: false,
            },
            memarg,
        ),
        O::I32AtomicRmw16CmpxchgU { memarg } => (
            Cmpxchg {
                bytes: 2,
                wide: false,
            },
            memarg,
        ),
        O::I64AtomicRmwCmpxchg { memarg } => (
            Cmpxchg {
                bytes: 8,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicRmw8CmpxchgU { memarg } => (
            Cmpxchg {
                bytes: 1,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicRmw16CmpxchgU { memarg } => (
            Cmpxchg {
                bytes: 2,
                wide: true,
            },
            memarg,
        ),
        O::I64AtomicRmw32CmpxchgU { memarg } => (
            Cmpxchg {
                bytes: 4,
                wide: true,
            },
            memarg,
        ),
        O::MemoryAtomicWait32 { memarg } => (Wait32, memarg),
        O::MemoryAtomicWait64 { memarg } => (Wait64, memarg),
        O::MemoryAtomicNotify { memarg } => (Notify, memarg),
        _ => return None,
    };
    Some((access, memarg))
}

/// libweft's entry points (chain_atomic.c) and their wasm signatures.
const ENTRIES: [(&str, &[ValType], &[ValType]); 12] = {
    use ValType::{I32, I64};
    [
        ("rmw32", &[I32, I32, I32, I32], &[I32]),
        ("rmw64", &[I32, I32, I64], &[I64]),
        ("cas32", &[I32, I32, I32, I32], &[I32]),
        ("cas64", &[I32, I64, I64], &[I64]),
        ("load32", &[I32, I32], &[I32]),
        ("load64", &[I32], &[I64]),
        ("store32", &[I32, I32, I32], &[]),
        ("store64", &[I32, I64], &[]),
        ("fence", &[], &[]),
        ("wait32", &[I32, I32, I64], &[I32]),
        ("wait64", &[I32, I64, I64], &[I32]),
        ("notify", &[I32, I32], &[I32]),
    ]
};

/// Function indices of the entry points, by name without the prefix.
struct Entries(HashMap<&'static str, u32>);

impl Entries {
    fn get(&self, name: &str) -> u32 {
        // Every name of ENTRIES was checked present.
        self.0[name]
    }
}

/// Whether the function named `name` keeps its atomic instructions: it is
/// one of libc's or libweft's (`runtime` lists them) or the linker's. An
/// unnamed function is the program's.
fn keeps_atomics(name: Option<&str>, runtime: &HashSet<&str>) -> bool {
    name.is_some_and(|name| runtime.contains(name) || LINKER_FUNCTIONS.contains(&name))
}

/// What a first pass learns of the module.
#[derive(Default)]
struct Survey<'a> {
    /// Function types by type index (`None`: a GC type).
    types: Vec<Option<(Vec<ValType>, Vec<ValType>)>>,
    /// Type index of each function (imports first).
    function_types: Vec<u32>,
    imported_functions: u32,
    exports: HashMap<String, u32>,
    names: HashMap<u32, String>,
    /// The text of libweft's `weft.runtime_functions` section.
    runtime_functions: Option<&'a [u8]>,
    /// Each defined function's body (after its size), as a range of the
    /// module.
    bodies: Vec<std::ops::Range<usize>>,
    sections: Vec<(u8, &'a [u8])>,
}

fn survey(wasm: &[u8]) -> Result<Survey<'_>, LowerError> {
    let mut s = Survey::default();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::TypeSection(reader) => {
                for group in reader.clone() {
                    for sub in group?.into_types() {
                        s.types.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                let params: Option<Vec<_>> = f
                                    .params()
                                    .iter()
                                    .map(|t| crate::rewrite::number_or_vector(*t))
                                    .collect();
                                let results: Option<Vec<_>> = f
                                    .results()
                                    .iter()
                                    .map(|t| crate::rewrite::number_or_vector(*t))
                                    .collect();
                                params.zip(results)
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    if let TypeRef::Func(ty) | TypeRef::FuncExact(ty) = import?.ty {
                        s.function_types.push(ty);
                        s.imported_functions += 1;
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader.clone() {
                    s.function_types.push(ty?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export?;
                    if matches!(
                        export.kind,
                        wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact
                    ) {
                        s.exports.insert(export.name.to_string(), export.index);
                    }
                }
            }
            Payload::CodeSectionEntry(body) => s.bodies.push(body.range()),
            Payload::CustomSection(section) => match section.as_known() {
                KnownCustom::Name(reader) => {
                    for name in reader {
                        if let Name::Function(map) = name? {
                            for naming in map {
                                let naming = naming?;
                                s.names.insert(naming.index, naming.name.to_string());
                            }
                        }
                    }
                }
                KnownCustom::Linking(reader) => {
                    for subsection in reader {
                        if let Linking::SymbolTable(map) = subsection? {
                            for symbol in map {
                                if let SymbolInfo::Func {
                                    name: Some(name),
                                    index,
                                    ..
                                } = symbol?
                                {
                                    s.names.entry(index).or_insert_with(|| name.to_string());
                                }
                            }
                        }
                    }
                }
                _ if section.name() == RUNTIME_FUNCTIONS_SECTION => {
                    s.runtime_functions = Some(section.data());
                }
                _ => {}
            },
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            let data = wasm.get(range).ok_or(LowerError::Truncated)?;
            s.sections.push((id, data));
        }
    }
    Ok(s)
}

/// Rewrites `wasm` (a core module) so the atomic instructions of the
/// program's own functions (all but libc's, libweft's and the linker's)
/// call libweft; `None` when the module does not ask for it (no libweft
/// entry points exported) or has nothing to lower.
pub fn lower_atomics(wasm: &[u8]) -> Result<Option<Vec<u8>>, LowerError> {
    let survey = survey(wasm)?;
    if !survey.exports.keys().any(|n| n.starts_with(ENTRY_PREFIX)) {
        return Ok(None);
    }
    let mut entries = HashMap::new();
    for (name, params, results) in ENTRIES {
        let export = format!("{ENTRY_PREFIX}{name}");
        let index = *survey
            .exports
            .get(&export)
            .ok_or_else(|| LowerError::MissingEntry(export.clone()))?;
        let signature = survey
            .function_types
            .get(index as usize)
            .and_then(|ty| survey.types.get(*ty as usize))
            .and_then(Option::as_ref);
        if signature != Some(&(params.to_vec(), results.to_vec())) {
            return Err(LowerError::EntrySignature(export));
        }
        entries.insert(name, index);
    }
    let entries = Entries(entries);
    let runtime: HashSet<&str> = std::str::from_utf8(
        survey
            .runtime_functions
            .ok_or(LowerError::NoRuntimeFunctions)?,
    )
    .map_err(|_| LowerError::RuntimeFunctionsText)?
    .lines()
    .map(str::trim)
    .filter(|name| !name.is_empty())
    .collect();
    if survey.names.is_empty() {
        return Err(LowerError::NoNames);
    }

    let total_functions = survey.function_types.len() as u32;
    let mut helpers: Vec<(Access, u64)> = Vec::new();
    let mut helper_index: HashMap<(Access, u64), u32> = HashMap::new();
    let mut new_bodies: HashMap<usize, Vec<u8>> = HashMap::new();
    for (i, range) in survey.bodies.iter().enumerate() {
        let index = survey.imported_functions + i as u32;
        if keeps_atomics(survey.names.get(&index).map(String::as_str), &runtime) {
            continue;
        }
        let body = wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(
            &wasm[range.clone()],
            range.start,
        ));
        // Each atomic instruction's bytes [start, end) and its call target.
        let mut replacements: Vec<(usize, usize, u32)> = Vec::new();
        let mut ops = body.get_operators_reader()?.into_iter_with_offsets();
        let mut open: Option<(usize, u32)> = None;
        for item in &mut ops {
            let (op, offset) = item?;
            if let Some((start, target)) = open.take() {
                // The previous instruction ended here.
                replacements.push((start, offset, target));
            }
            let target = if let Operator::AtomicFence = op {
                Some(entries.get("fence"))
            } else if let Some((access, memarg)) = classify(&op) {
                if memarg.memory != 0 {
                    return Err(LowerError::OtherMemory(memarg.memory));
                }
                let key = (access, memarg.offset);
                Some(*helper_index.entry(key).or_insert_with(|| {
                    helpers.push(key);
                    total_functions + helpers.len() as u32 - 1
                }))
            } else {
                None
            };
            if let Some(target) = target {
                open = Some((offset, target));
            }
        }
        if open.is_some() {
            // A body's last instruction is `end`, never an atomic one.
            return Err(LowerError::BodyEnd(index));
        }
        if replacements.is_empty() {
            continue;
        }
        // Copy the body, replacing each atomic instruction by a call.
        let mut out = Vec::with_capacity(range.len() + replacements.len() * 4);
        let mut at = range.start;
        for (start, end, target) in replacements {
            out.extend_from_slice(&wasm[at..start]);
            Instruction::Call(target).encode(&mut out);
            at = end;
        }
        out.extend_from_slice(&wasm[at..range.end]);
        new_bodies.insert(i, out);
    }
    if helpers.is_empty() {
        return Ok(None);
    }

    // New types (one per helper signature) and helper bodies.
    let mut new_types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut helper_types = Vec::new();
    for (access, _) in &helpers {
        let signature = access.signature();
        let at = match new_types.iter().position(|t| *t == signature) {
            Some(at) => at,
            None => {
                new_types.push(signature);
                new_types.len() - 1
            }
        };
        helper_types.push(survey.types.len() as u32 + at as u32);
    }

    let mut module = wasm_encoder::Module::new();
    for &(id, data) in &survey.sections {
        match id {
            1 => {
                let (count, rest) = read_count(data)?;
                let mut out = Vec::new();
                (count + new_types.len() as u32).encode(&mut out);
                out.extend_from_slice(rest);
                for (params, results) in &new_types {
                    out.push(0x60);
                    params.as_slice().encode(&mut out);
                    results.as_slice().encode(&mut out);
                }
                module.section(&RawSection { id, data: &out });
            }
            3 => {
                let (count, rest) = read_count(data)?;
                let mut out = Vec::new();
                (count + helpers.len() as u32).encode(&mut out);
                out.extend_from_slice(rest);
                for ty in &helper_types {
                    ty.encode(&mut out);
                }
                module.section(&RawSection { id, data: &out });
            }
            10 => {
                let mut out = Vec::new();
                (survey.bodies.len() as u32 + helpers.len() as u32).encode(&mut out);
                for (i, range) in survey.bodies.iter().enumerate() {
                    let body = new_bodies
                        .get(&i)
                        .map_or(&wasm[range.clone()], Vec::as_slice);
                    body.len().encode(&mut out);
                    out.extend_from_slice(body);
                }
                for &(access, offset) in &helpers {
                    helper(access, offset, &entries).encode(&mut out);
                }
                module.section(&RawSection { id, data: &out });
            }
            0 if stale_custom(data) => {}
            _ => {
                module.section(&RawSection { id, data });
            }
        }
    }
    Ok(Some(module.finish()))
}

/// Custom sections that point into code by byte offset.
fn stale_custom(data: &[u8]) -> bool {
    let mut reader = wasmparser::BinaryReader::new(data, 0);
    reader
        .read_string()
        .is_ok_and(|name| name == "reloc.CODE" || name.starts_with(".debug_"))
}

/// A section's leading count, and the bytes after it.
fn read_count(data: &[u8]) -> Result<(u32, &[u8]), LowerError> {
    let mut reader = wasmparser::BinaryReader::new(data, 0);
    let count = reader.read_var_u32()?;
    Ok((count, &data[reader.current_position()..]))
}

/// The helper for `access` at `offset`: the instruction's checks (the
/// address with its offset must not pass 4 GiB, and must be aligned), then
/// the call of libweft, with narrow values masked and results widened as
/// the instruction defines them.
fn helper(access: Access, offset: u64, entries: &Entries) -> wasm_encoder::Function {
    use Instruction as I;
    let (params, _) = access.signature();
    let ea = params.len() as u32;
    let mut f = wasm_encoder::Function::new([(1, ValType::I32)]);
    let trap_if = |f: &mut wasm_encoder::Function| {
        f.instruction(&I::If(BlockType::Empty));
        f.instruction(&I::Unreachable);
        f.instruction(&I::End);
    };
    f.instruction(&I::LocalGet(0));
    if offset > u32::MAX as u64 {
        f.instruction(&I::Unreachable);
    } else if offset > 0 {
        f.instruction(&I::I32Const(offset as u32 as i32));
        f.instruction(&I::I32Add);
        f.instruction(&I::LocalTee(ea));
        f.instruction(&I::LocalGet(0));
        f.instruction(&I::I32LtU);
        trap_if(&mut f);
    } else {
        f.instruction(&I::LocalSet(ea));
    }
    let bytes = access.bytes();
    if bytes > 1 {
        f.instruction(&I::LocalGet(ea));
        f.instruction(&I::I32Const(bytes as i32 - 1));
        f.instruction(&I::I32And);
        trap_if(&mut f);
    }
    let wide = access.value_type() == ValType::I64;
    // The value parameter `n` as libweft's 32-bit entry takes it.
    let narrow_value = |f: &mut wasm_encoder::Function, n: u32, mask: bool| {
        f.instruction(&I::LocalGet(n));
        if wide {
            f.instruction(&I::I32WrapI64);
        }
        if mask && bytes < 4 {
            f.instruction(&I::I32Const(((1u32 << (8 * bytes)) - 1) as i32));
            f.instruction(&I::I32And);
        }
    };
    let widen = |f: &mut wasm_encoder::Function| {
        if wide {
            f.instruction(&I::I64ExtendI32U);
        }
    };
    match access {
        Access::Load { .. } if bytes == 8 => {
            f.instruction(&I::LocalGet(ea));
            f.instruction(&I::Call(entries.get("load64")));
        }
        Access::Load { .. } => {
            f.instruction(&I::I32Const(bytes as i32));
            f.instruction(&I::LocalGet(ea));
            f.instruction(&I::Call(entries.get("load32")));
            widen(&mut f);
        }
        Access::Store { .. } if bytes == 8 => {
            f.instruction(&I::LocalGet(ea));
            f.instruction(&I::LocalGet(1));
            f.instruction(&I::Call(entries.get("store64")));
        }
        Access::Store { .. } => {
            f.instruction(&I::I32Const(bytes as i32));
            f.instruction(&I::LocalGet(ea));
            narrow_value(&mut f, 1, false);
            f.instruction(&I::Call(entries.get("store32")));
        }
        Access::Rmw { op, .. } if bytes == 8 => {
            f.instruction(&I::I32Const(op as i32));
            f.instruction(&I::LocalGet(ea));
            f.instruction(&I::LocalGet(1));
            f.instruction(&I::Call(entries.get("rmw64")));
        }
        Access::Rmw { op, .. } => {
            f.instruction(&I::I32Const(op as i32));
            f.instruction(&I::I32Const(bytes as i32));
            f.instruction(&I::LocalGet(ea));
            narrow_value(&mut f, 1, false);
            f.instruction(&I::Call(entries.get("rmw32")));
            widen(&mut f);
        }
        Access::Cmpxchg { .. } if bytes == 8 => {
            f.instruction(&I::LocalGet(ea));
            f.instruction(&I::LocalGet(1));
            f.instruction(&I::LocalGet(2));
            f.instruction(&I::Call(entries.get("cas64")));
        }
        Access::Cmpxchg { .. } => {
            // The expected value compares with the loaded one at the
            // instruction's width.
            f.instruction(&I::I32Const(bytes as i32));
            f.instruction(&I::LocalGet(ea));
            narrow_value(&mut f, 1, true);
            narrow_value(&mut f, 2, false);
            f.instruction(&I::Call(entries.get("cas32")));
            widen(&mut f);
        }
        Access::Wait32 | Access::Wait64 | Access::Notify => {
            f.instruction(&I::LocalGet(ea));
            for n in 1..ea {
                f.instruction(&I::LocalGet(n));
            }
            let entry = match access {
                Access::Wait32 => "wait32",
                Access::Wait64 => "wait64",
                _ => "notify",
            };
            f.instruction(&I::Call(entries.get(entry)));
        }
    }
    f.instruction(&I::End);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program's functions of `module()`: a Rust function, one LLVM
    /// renamed across codegen units, and one with an unmangled name.
    const PROGRAM: [&str; 3] = [
        "_ZN4demo4workE",
        "_ZN17crossbeam_channel5waker9SyncWaker6notify17h0123456789abcdefE.llvm.1234",
        "demo_no_mangle",
    ];

    /// Functions of `module()` that keep their atomics: libc's (listed in
    /// the runtime section) and the linker's.
    const KEPT: [&str; 2] = ["c_work", "__wasm_init_memory"];

    /// A module with libweft's entry points as recorders (each writes its
    /// name's number and its arguments at 0..32 and answers 7), and the
    /// functions of PROGRAM and KEPT with the same atomic instructions;
    /// its `weft.runtime_functions` section lists the entry points and
    /// `c_work`.
    fn module() -> Vec<u8> {
        module_with(Some("__weft_atomic_fence\nc_work\n"), true)
    }

    /// `module()` with another runtime section (or none), and with or
    /// without function names.
    fn module_with(runtime: Option<&str>, named: bool) -> Vec<u8> {
        let mut entries = String::new();
        for (i, (name, params, results)) in ENTRIES.iter().enumerate() {
            let params: Vec<&str> = params
                .iter()
                .map(|t| if *t == ValType::I64 { "i64" } else { "i32" })
                .collect();
            let mut body = format!("(i32.store (i32.const 0) (i32.const {i}))");
            for (n, t) in params.iter().enumerate() {
                let store = if *t == "i64" {
                    "i64.store"
                } else {
                    "i32.store"
                };
                body += &format!("({store} (i32.const {}) (local.get {n}))", 8 + 8 * n);
            }
            let result = match results.first() {
                Some(ValType::I64) => "(result i64) ",
                Some(_) => "(result i32) ",
                None => "",
            };
            let answer = match results.first() {
                Some(ValType::I64) => "(i64.const 7)",
                Some(_) => "(i32.const 7)",
                None => "",
            };
            entries += &format!(
                "(func ${ENTRY_PREFIX}{name} (export \"{ENTRY_PREFIX}{name}\") (param {}) {result}{body} {answer})\n",
                params.join(" ")
            );
        }
        let work = |name: &str| {
            format!(
                r#"(func ${name} (export "{name}") (param $op i32) (param $addr i32) (result i64)
                  (block $narrow (block $wide (block $cas (block $wait (block $notify (block $fence
                    (br_table $narrow $wide $cas $wait $notify $fence (local.get $op)))
                    atomic.fence (return (i64.const 0)))
                    (return (i64.extend_i32_u (memory.atomic.notify offset=4 (local.get $addr) (i32.const 3)))))
                    (return (i64.extend_i32_u (memory.atomic.wait32 (local.get $addr) (i32.const 5) (i64.const -1)))))
                    (return (i64.atomic.rmw16.cmpxchg_u offset=2 (local.get $addr) (i64.const 0x1_0001) (i64.const 9))))
                    (return (i64.atomic.rmw.add (local.get $addr) (i64.const 11))))
                  (i64.extend_i32_u (i32.atomic.rmw8.add_u offset=4 (local.get $addr) (i32.const 0x1ff))))"#
            )
        };
        let functions: Vec<String> = PROGRAM.iter().chain(&KEPT).map(|n| work(n)).collect();
        let section = runtime.map_or(String::new(), |names| {
            let names = names.replace('\n', "\\n");
            format!("(@custom \"{RUNTIME_FUNCTIONS_SECTION}\" \"{names}\")")
        });
        let wat = format!(
            "(module (memory (export \"memory\") 1 1 shared)\n{entries}{}\n{section})",
            functions.join("\n")
        );
        let wasm = wat::parse_str(&wat).unwrap();
        if named {
            return wasm;
        }
        // The same module without its name section.
        let mut module = wasm_encoder::Module::new();
        for payload in Parser::new(0).parse_all(&wasm) {
            let payload = payload.unwrap();
            if let Payload::CustomSection(c) = &payload
                && c.name() == "name"
            {
                continue;
            }
            if let Some((id, range)) = payload.as_section() {
                module.section(&RawSection {
                    id,
                    data: &wasm[range],
                });
            }
        }
        module.finish()
    }

    /// Calls `function(op, addr)`; the call's result and the recorder's
    /// words 0..5 (entry number, then arguments as i64 slots).
    fn call(wasm: &[u8], function: &str, op: i32, addr: i32) -> wasmtime::Result<(i64, Vec<i64>)> {
        let mut config = wasmtime::Config::new();
        config.wasm_threads(true).shared_memory(true);
        let engine = wasmtime::Engine::new(&config)?;
        let module = wasmtime::Module::new(&engine, wasm)?;
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
        // Marks the recorder unused.
        let memory = instance.get_shared_memory(&mut store, "memory").unwrap();
        let data = memory.data();
        // SAFETY: one thread; plain writes and reads of the test's memory.
        unsafe { *data[0].get() = 0xee };
        let work = instance.get_typed_func::<(i32, i32), i64>(&mut store, function)?;
        let result = work.call(&mut store, (op, addr))?;
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            for (i, b) in bytes.iter_mut().enumerate() {
                // SAFETY: as above.
                *b = unsafe { *data[at + i].get() };
            }
            i64::from_le_bytes(bytes)
        };
        Ok((result, (0..5).map(|i| word(8 * i)).collect()))
    }

    fn entry(name: &str) -> i64 {
        ENTRIES.iter().position(|(n, ..)| *n == name).unwrap() as i64
    }

    #[test]
    fn every_program_function_is_lowered_whatever_its_name() {
        let lowered = lower_atomics(&module()).unwrap().expect("lowered");
        for name in PROGRAM {
            let (result, args) = call(&lowered, name, 1, 64).unwrap();
            assert_eq!((result, args[0] & 0xff), (7, entry("rmw64")), "{name}");
        }
    }

    #[test]
    fn program_functions_call_libweft_with_the_instructions_operands() {
        let lowered = lower_atomics(&module()).unwrap().expect("lowered");
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&lowered)
            .unwrap();
        // rmw8.add_u offset=4 at 64: rmw32(add, 1 byte, 68, 0x1ff), the
        // result widened.
        let (result, args) = call(&lowered, "_ZN4demo4workE", 0, 64).unwrap();
        assert_eq!(result, 7);
        assert_eq!(args[0] & 0xffff_ffff, entry("rmw32"));
        assert_eq!(
            args[1..5]
                .iter()
                .map(|a| a & 0xffff_ffff)
                .collect::<Vec<_>>(),
            vec![1, 1, 68, 0x1ff]
        );
        // i64.rmw.add: rmw64(add, 64, 11).
        let (result, args) = call(&lowered, "_ZN4demo4workE", 1, 64).unwrap();
        assert_eq!((result, args[0] & 0xff), (7, entry("rmw64")));
        assert_eq!(
            (args[1] & 0xffff_ffff, args[2] & 0xffff_ffff, args[3]),
            (1, 64, 11)
        );
        // rmw16.cmpxchg_u offset=2: the expected value is cut to 16 bits.
        let (_, args) = call(&lowered, "_ZN4demo4workE", 2, 64).unwrap();
        assert_eq!(args[0] & 0xff, entry("cas32"));
        assert_eq!(
            args[1..5]
                .iter()
                .map(|a| a & 0xffff_ffff)
                .collect::<Vec<_>>(),
            vec![2, 66, 1, 9]
        );
        // wait32 and notify keep their operands.
        let (_, args) = call(&lowered, "_ZN4demo4workE", 3, 64).unwrap();
        assert_eq!(args[0] & 0xff, entry("wait32"));
        assert_eq!(
            (args[1] & 0xffff_ffff, args[2] & 0xffff_ffff, args[3]),
            (64, 5, -1)
        );
        let (_, args) = call(&lowered, "_ZN4demo4workE", 4, 64).unwrap();
        assert_eq!(args[0] & 0xff, entry("notify"));
        assert_eq!((args[1] & 0xffff_ffff, args[2] & 0xffff_ffff), (68, 3));
        let (_, args) = call(&lowered, "_ZN4demo4workE", 5, 64).unwrap();
        assert_eq!(args[0] & 0xff, entry("fence"));
    }

    #[test]
    fn runtime_and_linker_functions_keep_their_atomics() {
        let lowered = lower_atomics(&module()).unwrap().expect("lowered");
        for name in KEPT {
            let (result, args) = call(&lowered, name, 0, 64).unwrap();
            // The native instruction: the old byte (0), no recorder call.
            assert_eq!((result, args[0] & 0xff), (0, 0xee), "{name}");
        }
    }

    #[test]
    fn a_module_that_does_not_say_which_functions_are_libcs_is_refused() {
        assert!(matches!(
            lower_atomics(&module_with(None, true)),
            Err(LowerError::NoRuntimeFunctions)
        ));
        assert!(matches!(
            lower_atomics(&module_with(Some("c_work"), false)),
            Err(LowerError::NoNames)
        ));
    }

    #[test]
    fn lowered_instructions_still_trap_where_the_instruction_would() {
        let lowered = lower_atomics(&module()).unwrap().expect("lowered");
        // Misaligned: i64.rmw.add at 65; wait32 at 66.
        assert!(call(&lowered, "_ZN4demo4workE", 1, 65).is_err());
        assert!(call(&lowered, "_ZN4demo4workE", 3, 66).is_err());
        // The offset carries the address past 4 GiB.
        assert!(call(&lowered, "_ZN4demo4workE", 0, -2).is_err());
    }

    #[test]
    fn modules_without_libwefts_entry_points_are_left_alone() {
        let wasm = wat::parse_str(
            r#"(module (memory 1 1 shared)
                 (func $_ZN4demo4workE (result i32) (i32.atomic.load (i32.const 0))))"#,
        )
        .unwrap();
        assert!(lower_atomics(&wasm).unwrap().is_none());
    }

    #[test]
    fn some_entry_points_without_the_rest_is_an_error() {
        let wasm = wat::parse_str(r#"(module (func (export "__weft_atomic_fence")))"#).unwrap();
        assert!(matches!(
            lower_atomics(&wasm),
            Err(LowerError::MissingEntry(name)) if name == "__weft_atomic_rmw32"
        ));
    }

    #[test]
    fn listed_and_linker_names_keep_their_atomics() {
        let runtime: HashSet<&str> = ["pthread_mutex_lock", "__wrap_malloc"].into();
        assert!(keeps_atomics(Some("pthread_mutex_lock"), &runtime));
        assert!(keeps_atomics(Some("__wrap_malloc"), &runtime));
        assert!(keeps_atomics(Some("__wasm_init_memory"), &runtime));
        // Names of the program, whatever their shape.
        assert!(!keeps_atomics(Some("pthread_mutex_lock.llvm.5"), &runtime));
        assert!(!keeps_atomics(
            Some("_ZN10rayon_core8registry8Registry15in_worker_cross17h0123456789abcdefE.llvm.77"),
            &runtime
        ));
        assert!(!keeps_atomics(Some("rust_begin_unwind"), &runtime));
        assert!(!keeps_atomics(None, &runtime));
    }

    #[test]
    fn every_prefix_is_refused_or_lowered_without_a_panic() {
        let wasm = module();
        for len in 0..wasm.len() {
            let _ = lower_atomics(&wasm[..len]);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn flipped_bytes_never_panic(
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), 1u8..=255), 1..4),
        ) {
            let mut wasm = module();
            for (at, xor) in flips {
                let at = at % wasm.len();
                wasm[at] ^= xor;
            }
            // A module that lowers must still be valid wasm, or be one the
            // compiler refuses anyway.
            if let Ok(Some(lowered)) = lower_atomics(&wasm) {
                let valid = |bytes: &[u8]| {
                    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                        .validate_all(bytes)
                        .is_ok()
                };
                proptest::prop_assert!(valid(&lowered) || !valid(&wasm));
            }
        }
    }
}
