//! Load-time adapters for callbacks called through a pointer of another
//! type. C lets a program declare a start routine `void *f()`, a
//! destructor or cleanup handler `void d()`, an `atexit` function that
//! returns `int`, or a signal handler without its argument, and pass it
//! where libc expects `void *(*)(void *)`, `void (*)(void *)`,
//! `void (*)(void)` or `void (*)(int)`. Natively the call works (extra
//! arguments are ignored, a missing result is garbage nobody reads); in
//! wasm a `call_indirect` whose type differs from the callee's traps
//! ("indirect call type mismatch").
//!
//! So at load, for each of those callback shapes that the module calls
//! indirectly, Weft adds a second function table of the same size as the
//! module's table: each slot holds the same function when its type is the
//! shape, and otherwise a small adapter of the shape's type that passes
//! the arguments the callee takes (the caller's, in order; a missing one
//! is 0), calls it, and drops or zero-fills the result. Every
//! `call_indirect` of that shape on the module's table then reads the
//! second table at the same slot. Function pointer values (slot numbers)
//! do not change; calls whose types agree do what they did.
//!
//! Adapted shapes (wasm types): `(i32) -> i32` (start routines),
//! `(i32) -> ()` (TSD destructors, cleanup handlers, signal handlers,
//! `__cxa_atexit` functions), `() -> ()` (`pthread_once` routines,
//! `atexit` functions) and `(i32, i32, i32) -> ()` (`SA_SIGINFO` handlers).
//! A callee whose parameters or results are not numbers stays as it was.
//!
//! A module whose code changes its table (`table.grow`, `table.set`, ...)
//! is left as it is: the adapted tables are made once, at load.
//!
//! Only the table, function, element and code sections grow (tables,
//! functions and segments are appended, so no index moves); custom
//! sections that locate code by byte offset (relocations, DWARF) are
//! dropped, as the other load-time rewrites do.

use std::collections::BTreeMap;

use wasm_encoder::reencode::{self, Reencode};

use crate::rewrite::ReencodeError;
use wasm_encoder::{ConstExpr, Elements, Instruction, RefType, TableType};
use wasmparser::{ElementItems, ElementKind, Operator, Parser, Payload, TypeRef};

/// A function type as parameter and result lists.
type Signature = (Vec<wasmparser::ValType>, Vec<wasmparser::ValType>);

/// The callback shapes that get an adapted table.
fn is_callback_shape((params, results): &Signature) -> bool {
    use wasmparser::ValType::I32;
    matches!(
        (params.as_slice(), results.as_slice()),
        ([I32], [I32]) | ([I32], []) | ([], []) | ([I32, I32, I32], [])
    )
}

fn is_number(ty: &wasmparser::ValType) -> bool {
    use wasmparser::ValType::*;
    matches!(ty, I32 | I64 | F32 | F64)
}

/// What the rewrite needs to know about the module.
#[derive(Debug, Default)]
struct Survey {
    /// Every type, `None` where it is not a function type.
    types: Vec<Option<Signature>>,
    /// The type index of every function, imported ones first.
    function_types: Vec<u32>,
    imported_functions: u32,
    /// Tables, imported ones first; the first one's size.
    tables: u32,
    table0: Option<(u64, Option<u64>)>,
    /// The function in each slot of table 0 that active segments fill.
    slots: Vec<Option<u32>>,
    /// Type indices of the callback shapes the code calls on table 0.
    called: Vec<u32>,
    /// The code changes table 0 (grow, set, fill, copy, init): a copy
    /// made at load would fall behind it, so nothing is adapted.
    table0_changes: bool,
}

fn survey(wasm: &[u8]) -> Result<Survey, ReencodeError> {
    let mut s = Survey::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    let ty = ty?;
                    s.types
                        .push(Some((ty.params().to_vec(), ty.results().to_vec())));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import?.ty {
                        TypeRef::Func(ty) | TypeRef::FuncExact(ty) => {
                            s.function_types.push(ty);
                            s.imported_functions += 1;
                        }
                        TypeRef::Table(_) => s.tables += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    s.function_types.push(ty?);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table?;
                    if s.tables == 0
                        && table.ty.element_type == wasmparser::RefType::FUNCREF
                        && !table.ty.table64
                        && !table.ty.shared
                    {
                        s.table0 = Some((table.ty.initial, table.ty.maximum));
                    }
                    s.tables += 1;
                }
            }
            Payload::ElementSection(reader) => {
                for element in reader {
                    let element = element?;
                    let ElementKind::Active {
                        table_index,
                        offset_expr,
                    } = element.kind
                    else {
                        continue;
                    };
                    if table_index.unwrap_or(0) != 0 {
                        continue;
                    }
                    let mut ops = offset_expr.get_operators_reader();
                    let Operator::I32Const { value } = ops.read()? else {
                        continue;
                    };
                    let mut functions = Vec::new();
                    match element.items {
                        ElementItems::Functions(items) => {
                            for f in items {
                                functions.push(Some(f?));
                            }
                        }
                        ElementItems::Expressions(_, items) => {
                            for item in items {
                                let mut ops = item?.get_operators_reader();
                                functions.push(match ops.read()? {
                                    Operator::RefFunc { function_index } => Some(function_index),
                                    _ => None,
                                });
                            }
                        }
                    }
                    let start = value as u32 as usize;
                    let end = start.saturating_add(functions.len());
                    if end > s.slots.len() {
                        s.slots.resize(end, None);
                    }
                    for (slot, f) in s.slots[start..end].iter_mut().zip(functions) {
                        *slot = f;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                for op in body.get_operators_reader()? {
                    let op = op?;
                    if matches!(
                        op,
                        Operator::TableGrow { table: 0 }
                            | Operator::TableSet { table: 0 }
                            | Operator::TableFill { table: 0 }
                            | Operator::TableCopy { dst_table: 0, .. }
                            | Operator::TableInit { table: 0, .. }
                    ) {
                        s.table0_changes = true;
                    }
                    if let Operator::CallIndirect {
                        type_index,
                        table_index: 0,
                    } = op
                        && !s.called.contains(&type_index)
                        && s.types
                            .get(type_index as usize)
                            .and_then(Option::as_ref)
                            .is_some_and(is_callback_shape)
                    {
                        s.called.push(type_index);
                    }
                }
            }
            _ => {}
        }
    }
    s.called.sort_unstable();
    Ok(s)
}

/// One adapter: a function of the shape `shape` that calls `callee`.
#[derive(Debug, Clone, Copy)]
struct Adapter {
    shape: u32,
    callee: u32,
}

/// Rewrites `wasm` so callbacks of another type are called as natively;
/// `None` when nothing needs it (no callback shape called indirectly, or
/// every function in the table has the shape it is called with).
pub fn adapt_callbacks(wasm: &[u8]) -> Result<Option<Vec<u8>>, ReencodeError> {
    let s = survey(wasm)?;
    let Some((minimum, maximum)) = s.table0 else {
        return Ok(None);
    };
    if s.called.is_empty() || s.table0_changes || s.slots.len() as u64 > minimum {
        return Ok(None);
    }
    let signature = |ty: u32| s.types.get(ty as usize).and_then(Option::as_ref);
    let mut adapters = Vec::new();
    // For each shape: the new table's index and its slots.
    let mut tables: BTreeMap<u32, (u32, Vec<Option<u32>>)> = BTreeMap::new();
    let defined_functions = s.function_types.len() as u32;
    for (n, &shape) in s.called.iter().enumerate() {
        let want = signature(shape).expect("called shapes are function types");
        let slots = s
            .slots
            .iter()
            .map(|slot| {
                let f = (*slot)?;
                let Some(have) = s.function_types.get(f as usize).and_then(|&t| signature(t))
                else {
                    return Some(f);
                };
                if have == want || !have.0.iter().chain(&have.1).all(is_number) || have.1.len() > 1
                {
                    return Some(f);
                }
                adapters.push(Adapter { shape, callee: f });
                Some(defined_functions + adapters.len() as u32 - 1)
            })
            .collect();
        tables.insert(shape, (s.tables + n as u32, slots));
    }
    if adapters.is_empty() {
        return Ok(None);
    }
    let mut rewriter = Rewriter {
        survey: &s,
        adapters,
        tables,
        minimum,
        maximum,
    };
    let mut module = wasm_encoder::Module::new();
    rewriter.parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(Some(module.finish()))
}

struct Rewriter<'a> {
    survey: &'a Survey,
    adapters: Vec<Adapter>,
    tables: BTreeMap<u32, (u32, Vec<Option<u32>>)>,
    minimum: u64,
    maximum: Option<u64>,
}

/// Pushes a zero of `ty`.
fn zero(f: &mut wasm_encoder::Function, ty: wasmparser::ValType) {
    f.instruction(&match ty {
        wasmparser::ValType::I64 => Instruction::I64Const(0),
        wasmparser::ValType::F32 => Instruction::F32Const(0.0.into()),
        wasmparser::ValType::F64 => Instruction::F64Const(0.0.into()),
        _ => Instruction::I32Const(0),
    });
}

impl Rewriter<'_> {
    /// The body of `adapter`: the shape's parameters, as many as the
    /// callee takes and of its types (an i32 widens to an i64 without
    /// sign, an i64 narrows; anything else or a missing one is 0), then
    /// the callee's result dropped or converted, or a 0 when it has none.
    fn adapter_body(&self, adapter: Adapter) -> wasm_encoder::Function {
        use wasmparser::ValType::{I32, I64};
        let signature = |ty: u32| {
            self.survey.types[ty as usize]
                .as_ref()
                .expect("function type")
        };
        let (params, results) = signature(adapter.shape);
        let callee_type = self.survey.function_types[adapter.callee as usize];
        let (callee_params, callee_results) = signature(callee_type);
        let mut f = wasm_encoder::Function::new([]);
        for (i, &want) in callee_params.iter().enumerate() {
            match params.get(i) {
                Some(&have) if have == want => {
                    f.instruction(&Instruction::LocalGet(i as u32));
                }
                Some(&I32) if want == I64 => {
                    f.instruction(&Instruction::LocalGet(i as u32));
                    f.instruction(&Instruction::I64ExtendI32U);
                }
                Some(&I64) if want == I32 => {
                    f.instruction(&Instruction::LocalGet(i as u32));
                    f.instruction(&Instruction::I32WrapI64);
                }
                _ => zero(&mut f, want),
            }
        }
        f.instruction(&Instruction::Call(adapter.callee));
        match (callee_results.first(), results.first()) {
            (None, None) => {}
            (Some(_), None) => {
                f.instruction(&Instruction::Drop);
            }
            (None, Some(&want)) => zero(&mut f, want),
            (Some(&have), Some(&want)) if have == want => {}
            (Some(&I64), Some(&I32)) => {
                f.instruction(&Instruction::I32WrapI64);
            }
            (Some(_), Some(&want)) => {
                f.instruction(&Instruction::Drop);
                zero(&mut f, want);
            }
        }
        f.instruction(&Instruction::End);
        f
    }
}

impl Reencode for Rewriter<'_> {
    type Error = std::convert::Infallible;

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        for adapter in &self.adapters {
            functions.function(adapter.shape);
        }
        Ok(())
    }

    fn parse_table_section(
        &mut self,
        tables: &mut wasm_encoder::TableSection,
        section: wasmparser::TableSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_table_section(self, tables, section)?;
        for _ in 0..self.tables.len() {
            tables.table(TableType {
                element_type: RefType::FUNCREF,
                table64: false,
                minimum: self.minimum,
                maximum: self.maximum,
                shared: false,
            });
        }
        Ok(())
    }

    fn parse_element_section(
        &mut self,
        elements: &mut wasm_encoder::ElementSection,
        section: wasmparser::ElementSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_element_section(self, elements, section)?;
        let null = ConstExpr::ref_null(wasm_encoder::HeapType::FUNC);
        for (table, slots) in self.tables.values() {
            let items: Vec<ConstExpr> = slots
                .iter()
                .map(|slot| slot.map_or_else(|| null.clone(), ConstExpr::ref_func))
                .collect();
            elements.active(
                Some(*table),
                &ConstExpr::i32_const(0),
                Elements::Expressions(RefType::FUNCREF, items.into()),
            );
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_code_section(self, code, section)?;
        for &adapter in &self.adapters {
            code.function(&self.adapter_body(adapter));
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        crate::rewrite::reencode_body(self, code, func, |rewriter, f, op| {
            let Operator::CallIndirect {
                type_index,
                table_index: 0,
            } = *op
            else {
                return false;
            };
            let Some(&(table_index, _)) = rewriter.tables.get(&type_index) else {
                return false;
            };
            f.instruction(&Instruction::CallIndirect {
                type_index,
                table_index,
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A table holding callbacks of several types, and a caller of each
    /// shape: `call_start(slot, arg)`, `call_dtor(slot, arg)`,
    /// `call_once(slot)`.
    fn module() -> Vec<u8> {
        wat::parse_str(
            r#"(module
                (type $start (func (param i32) (result i32)))
                (type $dtor (func (param i32)))
                (type $once (func))
                (global $seen (mut i32) (i32.const -1))
                (func $good (type $start) (i32.add (local.get 0) (i32.const 1)))
                (func $no_args (result i32) (i32.const 7))
                (func $record (param i32) (global.set $seen (local.get 0)))
                (func $returns (result i32) (global.set $seen (i32.const 99)) (i32.const 5))
                (func $wide (param i64) (result i64)
                    (global.set $seen (i32.wrap_i64 (local.get 0))) (local.get 0))
                (func $float (param f64))
                (table 8 funcref)
                (elem (i32.const 1) func $good $no_args $record $returns $wide $float)
                (func (export "call_start") (param i32 i32) (result i32)
                    (call_indirect (type $start) (local.get 1) (local.get 0)))
                (func (export "call_dtor") (param i32 i32) (result i32)
                    (call_indirect (type $dtor) (local.get 1) (local.get 0))
                    (global.get $seen))
                (func (export "call_once") (param i32) (result i32)
                    (call_indirect (type $once) (local.get 0))
                    (global.get $seen))
            )"#,
        )
        .unwrap()
    }

    fn call(wasm: &[u8], name: &str, args: &[i32]) -> wasmtime::Result<i32> {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, wasm)?;
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
        let f = instance.get_func(&mut store, name).unwrap();
        let params: Vec<wasmtime::Val> = args.iter().map(|&a| a.into()).collect();
        let mut result = [wasmtime::Val::I32(0)];
        f.call(&mut store, &params, &mut result)?;
        Ok(result[0].unwrap_i32())
    }

    #[test]
    fn callbacks_of_other_types_are_called_with_what_they_take() {
        let original = module();
        // The mismatches trap before the rewrite.
        assert!(call(&original, "call_start", &[2, 10]).is_err());
        let adapted = adapt_callbacks(&original).unwrap().expect("adapted");
        // Same type: unchanged.
        assert_eq!(call(&adapted, "call_start", &[1, 10]).unwrap(), 11);
        // `void *f()` as a start routine: its result, no argument.
        assert_eq!(call(&adapted, "call_start", &[2, 10]).unwrap(), 7);
        // A start routine with no result: 0.
        assert_eq!(call(&adapted, "call_start", &[3, 10]).unwrap(), 0);
        // A destructor that returns something: the result is dropped.
        assert_eq!(call(&adapted, "call_dtor", &[4, 10]).unwrap(), 99);
        // An i64 parameter gets the i32 argument, zero-extended.
        assert_eq!(call(&adapted, "call_dtor", &[5, 42]).unwrap(), 42);
        // A once routine that takes an argument gets 0.
        assert_eq!(call(&adapted, "call_once", &[3]).unwrap(), 0);
        // A float parameter gets 0.0; nothing traps.
        assert_eq!(call(&adapted, "call_once", &[6]).unwrap(), -1);
    }

    #[test]
    fn null_and_out_of_range_slots_still_trap() {
        let adapted = adapt_callbacks(&module()).unwrap().expect("adapted");
        let null = call(&adapted, "call_start", &[0, 1]).unwrap_err();
        assert!(
            format!("{null:?}").contains("uninitialized element"),
            "{null:?}"
        );
        assert!(call(&adapted, "call_start", &[8, 1]).is_err());
    }

    #[test]
    fn a_module_whose_callbacks_agree_is_left_alone() {
        let wasm = wat::parse_str(
            r#"(module
                (type $dtor (func (param i32)))
                (func $d (type $dtor))
                (table 2 funcref)
                (elem (i32.const 1) func $d)
                (func (export "f") (param i32)
                    (call_indirect (type $dtor) (i32.const 0) (local.get 0))))"#,
        )
        .unwrap();
        assert!(adapt_callbacks(&wasm).unwrap().is_none());
    }

    #[test]
    fn a_module_that_changes_its_table_is_left_alone() {
        let wasm = wat::parse_str(
            r#"(module
                (type $dtor (func (param i32)))
                (func $d)
                (table 2 funcref)
                (elem (i32.const 1) func $d)
                (func (export "f") (param i32)
                    (drop (table.grow (ref.null func) (i32.const 1)))
                    (call_indirect (type $dtor) (i32.const 0) (local.get 0))))"#,
        )
        .unwrap();
        assert!(adapt_callbacks(&wasm).unwrap().is_none());
    }

    #[test]
    fn truncated_modules_are_errors_not_panics() {
        let wasm = module();
        for len in 0..wasm.len() {
            let _ = adapt_callbacks(&wasm[..len]);
        }
    }
}
