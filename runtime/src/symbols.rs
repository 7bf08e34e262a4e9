//! Names for addresses in linear memory, so a merge conflict can say which
//! variable two threads both changed.
//!
//! Data symbols (globals and statics, with their segment, offset and size)
//! are in the `linking` section that `weft-cc` keeps (`--emit-relocs`).
//! Segment addresses come from the data section for active segments, and
//! for the passive segments of threaded builds from the `memory.init` calls
//! of `__wasm_init_memory` (`i32.const dest; i32.const 0; i32.const len;
//! memory.init seg`, and `memory.fill` for the zeroed `.bss`). Modules
//! without a linking section fall back to the
//! data segment names of the `name` section (`.data`, `.bss`, ...).

use std::collections::HashMap;

use wasmparser::{DataKind, KnownCustom, Linking, Name, Operator, Parser, Payload, SymbolInfo};

/// Data symbols of a module, by address.
#[derive(Debug, Clone, Default)]
pub struct DataSymbols {
    /// (start, end, name), sorted by start.
    entries: Vec<(u32, u32, String)>,
}

impl DataSymbols {
    /// Reads the symbols of `wasm`; a module without symbol information, or
    /// one that does not parse, gives an empty table.
    pub fn parse(wasm: &[u8]) -> Self {
        Self::try_parse(wasm).unwrap_or_default()
    }

    fn try_parse(wasm: &[u8]) -> Result<Self, wasmparser::BinaryReaderError> {
        let mut segment_base: HashMap<u32, u32> = HashMap::new();
        let mut segment_len: HashMap<u32, u32> = HashMap::new();
        let mut segment_names: HashMap<u32, String> = HashMap::new();
        let mut symbols: Vec<(u32, u32, u32, String)> = Vec::new(); // segment, offset, size, name
        let mut zero_fills: Vec<(u32, u32)> = Vec::new(); // dest, len
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::DataSection(reader) => {
                    for (index, data) in reader.into_iter().enumerate() {
                        let data = data?;
                        segment_len.insert(index as u32, data.data.len() as u32);
                        if let DataKind::Active { offset_expr, .. } = data.kind
                            && let Some(Ok(Operator::I32Const { value })) =
                                offset_expr.get_operators_reader().into_iter().next()
                        {
                            segment_base.insert(index as u32, value as u32);
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    // In the function that initialises memory:
                    //   i32.const dest; i32.const 0; i32.const len; memory.init seg
                    // and, for .bss, the same operands before memory.fill.
                    let mut recent: [Option<i32>; 3] = [None; 3];
                    let mut inits = Vec::new();
                    let mut fills = Vec::new();
                    for op in body.get_operators_reader()? {
                        match op? {
                            Operator::I32Const { value } => {
                                recent = [recent[1], recent[2], Some(value)];
                                continue;
                            }
                            Operator::MemoryInit { data_index, .. } => {
                                if let [Some(dest), Some(0), Some(_)] = recent {
                                    inits.push((data_index, dest as u32));
                                }
                            }
                            Operator::MemoryFill { .. } => {
                                if let [Some(dest), Some(0), Some(len)] = recent {
                                    fills.push((dest as u32, len as u32));
                                }
                            }
                            _ => {}
                        }
                        recent = [None; 3];
                    }
                    if !inits.is_empty() {
                        for (segment, dest) in inits {
                            segment_base.entry(segment).or_insert(dest);
                        }
                        zero_fills.extend(fills);
                    }
                }
                Payload::CustomSection(section) => match section.as_known() {
                    KnownCustom::Linking(reader) => {
                        for subsection in reader {
                            if let Linking::SymbolTable(map) = subsection? {
                                for symbol in map {
                                    if let SymbolInfo::Data {
                                        name,
                                        symbol: Some(def),
                                        ..
                                    } = symbol?
                                        && def.size > 0
                                    {
                                        symbols.push((
                                            def.index,
                                            def.offset,
                                            def.size,
                                            name.to_string(),
                                        ));
                                    }
                                }
                            }
                        }
                    }
                    KnownCustom::Name(reader) => {
                        for name in reader {
                            if let Name::Data(map) = name? {
                                for naming in map {
                                    let naming = naming?;
                                    segment_names.insert(naming.index, naming.name.to_string());
                                }
                            }
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        // A zero-filled segment (.bss) has no memory.init: it is the one
        // fill of the init function with that segment's length.
        for (&segment, &len) in &segment_len {
            if segment_base.contains_key(&segment) {
                continue;
            }
            let mut same_len = zero_fills.iter().filter(|(_, l)| *l == len);
            if let (Some((dest, _)), None) = (same_len.next(), same_len.next()) {
                segment_base.insert(segment, *dest);
            }
        }
        let mut entries: Vec<(u32, u32, String)> = symbols
            .into_iter()
            .filter_map(|(segment, offset, size, name)| {
                let start = segment_base.get(&segment)?.checked_add(offset)?;
                Some((start, start.checked_add(size)?, name))
            })
            .collect();
        if entries.is_empty() {
            entries = segment_names
                .into_iter()
                .filter_map(|(segment, name)| {
                    let start = *segment_base.get(&segment)?;
                    Some((start, start.checked_add(*segment_len.get(&segment)?)?, name))
                })
                .collect();
        }
        entries.sort();
        Ok(Self { entries })
    }

    /// `name` or `name+offset` of the symbol holding `addr`.
    pub fn describe(&self, addr: u32) -> Option<String> {
        let i = self.entries.partition_point(|(start, _, _)| *start <= addr);
        let (start, _, name) = self.entries[..i]
            .iter()
            .rev()
            .find(|(start, end, _)| *start <= addr && addr < *end)?;
        Some(if addr == *start {
            name.clone()
        } else {
            format!("{name}+{}", addr - start)
        })
    }

    /// Where an address that no symbol holds lies, by the layout wasm-ld
    /// gives a program: below the static data, the main thread's stack;
    /// above it, the heap (libc's malloc, which holds the main thread's
    /// allocations and other threads' stacks). `None` between symbols, or
    /// when no symbols are known.
    pub fn region(&self, addr: u32) -> Option<&'static str> {
        let first = self.entries.first()?.0;
        let end = self.entries.iter().map(|(_, end, _)| *end).max()?;
        if addr < first {
            Some("the main thread's stack")
        } else if addr >= end {
            Some("the heap: a block of malloc's or a thread's stack")
        } else {
            None
        }
    }

    /// The address of the symbol `name`.
    pub fn address_of(&self, name: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|(_, _, n)| n == name)
            .map(|(start, _, _)| *start)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_outside_the_data_lie_in_the_stack_or_the_heap() {
        let symbols = DataSymbols {
            entries: vec![(1024, 1028, "a".into()), (2048, 2056, "b".into())],
        };
        assert_eq!(symbols.region(100), Some("the main thread's stack"));
        assert_eq!(symbols.region(1030), None);
        assert!(
            symbols
                .region(2056)
                .is_some_and(|r| r.starts_with("the heap"))
        );
        assert_eq!(DataSymbols::default().region(0), None);
    }

    #[test]
    fn falls_back_to_segment_names() {
        let wasm = wat::parse_str(
            r#"(module
              (memory 1)
              (data $rodata (i32.const 1024) "abcd")
              (data $bss (i32.const 2048) "\00\00\00\00\00\00\00\00"))"#,
        )
        .unwrap();
        let symbols = DataSymbols::parse(&wasm);
        assert_eq!(symbols.describe(1024).as_deref(), Some("rodata"));
        assert_eq!(symbols.describe(2050).as_deref(), Some("bss+2"));
        assert_eq!(symbols.describe(3000), None);
    }

    #[test]
    fn passive_segments_get_their_address_from_memory_init() {
        let wasm = wat::parse_str(
            r#"(module
              (memory 1)
              (data $init "xyz")
              (func $__wasm_init_memory
                (memory.init $init (i32.const 4096) (i32.const 0) (i32.const 3))))"#,
        )
        .unwrap();
        assert_eq!(
            DataSymbols::parse(&wasm).describe(4097).as_deref(),
            Some("init+1")
        );
    }

    #[test]
    fn garbage_gives_no_symbols() {
        assert!(DataSymbols::parse(b"not wasm").is_empty());
    }
}
