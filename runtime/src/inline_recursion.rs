//! Load-time inlining of a small function's calls of itself, up to two
//! levels deep, as gcc does at -O2 and clang does not.
//!
//! A call costs more in compiled wasm than natively: each callee checks
//! the stack limit (two dependent loads), keeps a frame pointer and takes
//! its instance as an argument. Recursive code pays it at every level:
//! the serial cutoff of a task-parallel fib ran 2.4x slower than gcc's
//! build, which inlines the recursion into itself. With each self-call of
//! a small function replaced by the function's own body, and that copy's
//! calls by copies again ([`MAX_LEVELS`] deep, within a size bound), it
//! makes a third as many calls: 1.7x faster, within 1.4x of gcc.
//!
//! A copy is exact: the call's arguments go into locals of their own
//! (the copy's parameters), the copy's other locals are set to zero (a
//! function's locals start at zero, and the copy may run again within one
//! activation), its `return`s branch to the end of a block that holds it,
//! and every other instruction is the same. Only the code section
//! changes, and only the bodies of the functions inlined; no index moves.
//!
//! Which functions: defined ones of at most [`MAX_BODY_BYTES`] of code
//! that call themselves directly at most [`MAX_SELF_CALLS`] times, whose
//! parameters and locals are numbers or vectors (each has a zero), with
//! no tail calls and no exception handling, and whose results a block
//! can have. Each goes as many levels deep as keeps it within
//! [`MAX_GROWN_BYTES`].

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{BlockType, Encode, Instruction, ValType};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use crate::rewrite::{ReencodeError, number_or_vector};

/// The largest body inlined into itself, in bytes of code: past it a
/// call's cost is small beside the body's, and compiling grows.
pub const MAX_BODY_BYTES: usize = 400;

/// The most calls of itself a body may make to be inlined: each adds a
/// copy of the body.
pub const MAX_SELF_CALLS: usize = 4;

/// The most code a function inlined into itself may grow to, in bytes.
pub const MAX_GROWN_BYTES: usize = 2000;

/// The most code the copies may add to one module, all functions
/// together: the compile budget was checked before this rewrite.
pub const MAX_ADDED_BYTES: usize = 4 << 20;

/// The deepest copies go: fib(36) as `weft bench openmp`'s serial cutoff
/// took 56 ms without copies, 44 ms with one level, 32 ms with two and no
/// less with three (gcc's build: 23 ms).
pub const MAX_LEVELS: u32 = 2;

/// The most locals (parameters included) of a function inlined, all its
/// levels' together: within wasm's limit per function.
const MAX_LOCALS: u32 = 2000;

/// How one function is inlined into itself.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// The type of the block that holds each copy.
    block: BlockType,
    /// How deep: 1 is a copy in place of each call; 2 also a copy in place
    /// of each of the copy's calls; and so on.
    levels: u32,
    /// Bytes of code the copies add (an upper bound).
    added: usize,
}

/// `wasm` with the calls of itself of every small recursive function
/// replaced by its body; `None` when no function qualifies.
pub fn inline_recursion(wasm: &[u8]) -> Result<Option<Vec<u8>>, ReencodeError> {
    let survey = survey(wasm)?;
    if survey.inlined.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut inliner = Inliner { survey, defined: 0 };
    let mut module = wasm_encoder::Module::new();
    inliner.parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(Some(module.finish()))
}

/// A function's type: parameters and results.
type Signature = (Vec<wasmparser::ValType>, Vec<wasmparser::ValType>);

#[derive(Debug, Default)]
struct Survey {
    /// Function types by type index (`None` for other kinds of type).
    types: Vec<Option<Signature>>,
    imported_functions: u32,
    /// The type index of each defined function.
    defined_types: Vec<u32>,
    /// Per defined function: how the block holding its copy is typed,
    /// when it is inlined into itself.
    inlined: Vec<Option<Plan>>,
    /// Bytes of code the copies add, all functions together.
    added: usize,
}

fn survey(wasm: &[u8]) -> Result<Survey, ReencodeError> {
    let mut s = Survey::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::Version { encoding, .. } if encoding != wasmparser::Encoding::Module => {
                return Ok(Survey::default());
            }
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.into_types() {
                        s.types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                Some((f.params().to_vec(), f.results().to_vec()))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if let TypeRef::Func(_) | TypeRef::FuncExact(_) = import?.ty {
                        s.imported_functions += 1;
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    s.defined_types.push(ty?);
                }
            }
            Payload::CodeSectionEntry(body) => {
                let defined = s.inlined.len();
                let mut verdict = s.qualifies(defined, &body)?;
                if let Some(plan) = verdict {
                    // Within the module's bound on added code.
                    match s.added.checked_add(plan.added) {
                        Some(added) if added <= MAX_ADDED_BYTES => s.added = added,
                        _ => verdict = None,
                    }
                }
                s.inlined.push(verdict);
            }
            _ => {}
        }
    }
    Ok(s)
}

impl Survey {
    /// How the copy of defined function `defined` is typed, if it is to be
    /// inlined into itself.
    fn qualifies(
        &self,
        defined: usize,
        body: &wasmparser::FunctionBody<'_>,
    ) -> Result<Option<Plan>, ReencodeError> {
        if body.range().len() > MAX_BODY_BYTES {
            return Ok(None);
        }
        let Some((params, results)) = self
            .defined_types
            .get(defined)
            .and_then(|&ty| self.types.get(ty as usize))
            .and_then(Option::as_ref)
        else {
            return Ok(None);
        };
        if !params.iter().all(|&t| zero_of(t).is_some()) {
            return Ok(None);
        }
        // What starts a copy: the block, a `local.set` per parameter, a
        // zero and a `local.set` per declared local (an index under
        // MAX_LOCALS takes at most 2 bytes).
        const SET_BYTES: usize = 3;
        let mut start_bytes = 2 + params.len() * SET_BYTES;
        let mut locals = params.len() as u32;
        for local in body.get_locals_reader()? {
            let (count, ty) = local?;
            locals = locals.saturating_add(count);
            let Some(zero) = zero_of(ty) else {
                return Ok(None);
            };
            let mut encoded = Vec::new();
            zero.encode(&mut encoded);
            start_bytes = start_bytes
                .saturating_add((count as usize).saturating_mul(encoded.len() + SET_BYTES));
        }
        if locals > MAX_LOCALS {
            return Ok(None);
        }
        let Some(block) = self.block_for(results) else {
            return Ok(None);
        };
        let me = self.imported_functions + defined as u32;
        let mut self_calls = 0;
        for op in body.get_operators_reader()? {
            match op? {
                Operator::Call { function_index } if function_index == me => self_calls += 1,
                // Invalid (wasmtime refuses it after the rewrite); a copy
                // would move its index past any bound.
                Operator::LocalGet { local_index }
                | Operator::LocalSet { local_index }
                | Operator::LocalTee { local_index }
                    if local_index >= locals =>
                {
                    return Ok(None);
                }
                // A tail call's frame, and exception handling's labels,
                // are not what a block gives.
                Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::ReturnCallRef { .. }
                | Operator::Try { .. }
                | Operator::Catch { .. }
                | Operator::CatchAll
                | Operator::Delegate { .. }
                | Operator::Rethrow { .. }
                | Operator::Throw { .. }
                | Operator::ThrowRef
                | Operator::TryTable { .. } => return Ok(None),
                _ => {}
            }
        }
        if !(1..=MAX_SELF_CALLS).contains(&self_calls) {
            return Ok(None);
        }
        // As deep as the grown body stays within its bounds: a level
        // holds `self_calls` times the copies of the one above, and each
        // copy is the body and what starts it (its locals set).
        let size = body.range().len();
        let copy = size.saturating_add(start_bytes);
        let (mut levels, mut copies, mut grown) = (0, 1, size);
        while levels < MAX_LEVELS {
            copies *= self_calls;
            let deeper = grown + copies * copy;
            if deeper > MAX_GROWN_BYTES || locals * (levels + 2) > MAX_LOCALS {
                break;
            }
            (levels, grown) = (levels + 1, deeper);
        }
        Ok((levels > 0).then_some(Plan {
            block,
            levels,
            added: grown - size,
        }))
    }

    /// The block type that leaves `results`: none, one value, or a
    /// function type the module has with no parameters and those results.
    fn block_for(&self, results: &[wasmparser::ValType]) -> Option<BlockType> {
        match results {
            [] => Some(BlockType::Empty),
            [one] => Some(BlockType::Result(number_or_vector(*one)?)),
            many => self
                .types
                .iter()
                .position(|ty| {
                    ty.as_ref()
                        .is_some_and(|(p, r)| p.is_empty() && r.as_slice() == many)
                })
                .map(|index| BlockType::FunctionType(index as u32)),
        }
    }
}

/// The instruction that pushes a local's initial value (zero), for the
/// types a copy can have.
fn zero_of(ty: wasmparser::ValType) -> Option<Instruction<'static>> {
    Some(match ty {
        wasmparser::ValType::I32 => Instruction::I32Const(0),
        wasmparser::ValType::I64 => Instruction::I64Const(0),
        wasmparser::ValType::F32 => Instruction::F32Const(wasm_encoder::Ieee32::new(0)),
        wasmparser::ValType::F64 => Instruction::F64Const(wasm_encoder::Ieee64::new(0)),
        wasmparser::ValType::V128 => Instruction::V128Const(0),
        wasmparser::ValType::Ref(_) => return None,
    })
}

struct Inliner {
    survey: Survey,
    /// The defined function whose body comes next.
    defined: usize,
}

impl Reencode for Inliner {
    type Error = std::convert::Infallible;

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let defined = self.defined;
        self.defined += 1;
        match self.survey.inlined.get(defined).copied().flatten() {
            Some(plan) => self.inline_into_itself(code, &func, defined, plan),
            None => {
                // Untouched: its bytes as they were.
                code.raw(func.as_bytes());
                Ok(())
            }
        }
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        crate::rewrite::copy_custom_section_after_code_change(self, module, section)
    }
}

impl Inliner {
    /// Writes `func`'s body with each call of itself replaced by a copy of
    /// that body, `levels` deep; each level's locals follow the one's
    /// above.
    fn inline_into_itself(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: &wasmparser::FunctionBody<'_>,
        defined: usize,
        plan: Plan,
    ) -> Result<(), reencode::Error<std::convert::Infallible>> {
        tracing::debug!(
            function = self.survey.imported_functions + defined as u32,
            levels = plan.levels,
            "inlining a recursive function into itself"
        );
        let ty = self.survey.defined_types[defined] as usize;
        let params: Vec<wasmparser::ValType> = self.survey.types[ty]
            .as_ref()
            .map(|(p, _)| p.clone())
            .unwrap_or_default();
        let mut declared: Vec<wasmparser::ValType> = Vec::new();
        for local in func.get_locals_reader()? {
            let (count, ty) = local?;
            declared.extend(std::iter::repeat_n(ty, count as usize));
        }
        let mut locals: Vec<(u32, ValType)> = Vec::new();
        let every_level = std::iter::repeat_n(params.iter().chain(&declared), plan.levels as usize);
        for &ty in declared.iter().chain(every_level.flatten()) {
            let ty = number_or_vector(ty).expect("the survey admits number and vector locals only");
            match locals.last_mut() {
                Some((count, last)) if *last == ty => *count += 1,
                _ => locals.push((1, ty)),
            }
        }
        let mut f = wasm_encoder::Function::new(locals);
        let body = Body {
            me: self.survey.imported_functions + defined as u32,
            params: &params,
            declared: &declared,
            plan,
        };
        self.write_level(&mut f, func, &body, 0)?;
        code.function(&f);
        Ok(())
    }

    /// Writes `func`'s instructions at `level`: 0 is the function itself;
    /// a copy (level 1 and down) is the body of the block just opened,
    /// with its locals moved past the level above's, a `return` a branch
    /// out of the block, and the body's final `end` the block's. A call
    /// of itself above the last level becomes the next level's copy.
    fn write_level(
        &mut self,
        f: &mut wasm_encoder::Function,
        func: &wasmparser::FunctionBody<'_>,
        body: &Body<'_>,
        level: u32,
    ) -> Result<(), reencode::Error<std::convert::Infallible>> {
        let first = level * body.locals();
        let mut depth = 0u32;
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            let moved = match op {
                Operator::Call { function_index }
                    if function_index == body.me && level < body.plan.levels =>
                {
                    // The arguments, last on top, become the copy's
                    // parameters; its other locals start at zero.
                    let below = first + body.locals();
                    for index in (0..body.params.len() as u32).rev() {
                        f.instruction(&Instruction::LocalSet(below + index));
                    }
                    let declared_at = below + body.params.len() as u32;
                    for (offset, &ty) in body.declared.iter().enumerate() {
                        f.instruction(&zero_of(ty).expect("admitted by the survey"));
                        f.instruction(&Instruction::LocalSet(declared_at + offset as u32));
                    }
                    f.instruction(&Instruction::Block(body.plan.block));
                    self.write_level(f, func, body, level + 1)?;
                    continue;
                }
                _ if level == 0 => self.instruction(op)?,
                Operator::LocalGet { local_index } => Instruction::LocalGet(first + local_index),
                Operator::LocalSet { local_index } => Instruction::LocalSet(first + local_index),
                Operator::LocalTee { local_index } => Instruction::LocalTee(first + local_index),
                Operator::Return => Instruction::Br(depth),
                Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                    depth += 1;
                    self.instruction(op)?
                }
                Operator::End => {
                    if depth == 0 {
                        f.instruction(&Instruction::End);
                        return Ok(());
                    }
                    depth -= 1;
                    Instruction::End
                }
                other => self.instruction(other)?,
            };
            f.instruction(&moved);
        }
        Ok(())
    }
}

/// What every level of one function's rewrite shares.
struct Body<'a> {
    /// The function's index.
    me: u32,
    params: &'a [wasmparser::ValType],
    declared: &'a [wasmparser::ValType],
    plan: Plan,
}

impl Body<'_> {
    /// Locals per level (parameters included).
    fn locals(&self) -> u32 {
        (self.params.len() + self.declared.len()) as u32
    }
}

#[cfg(test)]
mod tests;
