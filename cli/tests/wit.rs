//! The WIT contracts and the host agree: each file in `wit/` parses as its
//! package, each interface's functions are exactly the core imports the
//! host defines for it, each with the core signature the canonical ABI
//! flattens it to, and each WIT enum's cases are in the order the host
//! decodes or encodes them.

use std::collections::BTreeSet;
use std::path::Path;

/// The functions of `interface` in the package of `wit/FILE`, checking
/// the package's name and that it has `world`.
fn wit_functions(file: &str, package: &str, world: &str, interface: &str) -> BTreeSet<String> {
    let (resolve, id) = self::interface(file, interface);
    let package_ = &resolve.packages[resolve.interfaces[id].package.unwrap()];
    assert_eq!(package_.name.to_string(), package);
    assert!(package_.worlds.contains_key(world), "world `{world}`");
    resolve.interfaces[id].functions.keys().cloned().collect()
}

fn host_functions(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn threads_interface_matches_the_host() {
    assert_eq!(
        wit_functions("threads.wit", "weft:threads@0.1.0", "thread", "threads"),
        host_functions(weft_runtime::threads::WEFT_FUNCTIONS)
    );
    assert_eq!(
        weft_runtime::threads::WEFT_MODULE,
        "weft:threads/threads@0.1.0"
    );
}

#[test]
fn state_interface_matches_the_host() {
    assert_eq!(
        wit_functions("state.wit", "weft:state@0.1.0", "stateful", "state"),
        host_functions(weft_runtime::state_imports::STATE_FUNCTIONS)
    );
    assert_eq!(
        weft_runtime::state_imports::STATE_MODULE,
        "weft:state/state@0.1.0"
    );
}

#[test]
fn chain_interface_matches_the_host() {
    assert_eq!(
        wit_functions("chain.wit", "weft:chain@0.1.0", "function", "chain"),
        host_functions(weft_runtime::call_imports::CHAIN_FUNCTIONS)
    );
    assert_eq!(
        weft_runtime::call_imports::CHAIN_MODULE,
        "weft:chain/chain@0.1.0"
    );
}

#[test]
fn the_component_world_resolves_its_dependencies() {
    let mut resolve = wit_parser::Resolve::default();
    let (id, _) = resolve
        .push_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/function"))
        .unwrap();
    let package = &resolve.packages[id];
    assert_eq!(package.name.to_string(), "weft:function@0.1.0");
    let world = &resolve.worlds[package.worlds["app"]];
    assert_eq!((world.imports.len(), world.exports.len()), (2, 1));
}

/// The package of `wit/FILE` and its interface `interface`.
fn interface(file: &str, name: &str) -> (wit_parser::Resolve, wit_parser::InterfaceId) {
    let mut resolve = wit_parser::Resolve::default();
    let id = resolve
        .push_file(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../wit")
                .join(file),
        )
        .unwrap();
    let interface = resolve.packages[id].interfaces[name];
    (resolve, interface)
}

/// The linker of a running process: every import with its core type.
fn linker_types() -> Vec<(String, String, wasmtime::FuncType)> {
    let engine = weft_runtime::engine().unwrap();
    let wasm = wat::parse_str(
        r#"(module (import "env" "memory" (memory 1 1 shared)) (func (export "_start")))"#,
    )
    .unwrap();
    let program = weft_runtime::Program::load(&engine, &wasm).unwrap();
    let process = program
        .start(&weft_runtime::StartConfig::default())
        .unwrap();
    process.import_types()
}

fn core_type(ty: wit_parser::abi::WasmType) -> wasmtime::ValType {
    use wit_parser::abi::WasmType;
    match ty {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => wasmtime::ValType::I32,
        WasmType::I64 | WasmType::PointerOrI64 => wasmtime::ValType::I64,
        WasmType::F32 => wasmtime::ValType::F32,
        WasmType::F64 => wasmtime::ValType::F64,
    }
}

fn kebab(rust: &str) -> String {
    let mut out = String::new();
    for (i, c) in rust.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn every_import_has_the_core_signature_its_wit_function_flattens_to() {
    let defined = linker_types();
    for (file, name, module) in [
        ("threads.wit", "threads", weft_runtime::threads::WEFT_MODULE),
        (
            "state.wit",
            "state",
            weft_runtime::state_imports::STATE_MODULE,
        ),
        (
            "chain.wit",
            "chain",
            weft_runtime::call_imports::CHAIN_MODULE,
        ),
    ] {
        let (resolve, id) = interface(file, name);
        for (function_name, function) in &resolve.interfaces[id].functions {
            let signature =
                resolve.wasm_signature(wit_parser::abi::AbiVariant::GuestImport, function);
            let (_, _, ty) = defined
                .iter()
                .find(|(m, n, _)| m == module && n == function_name)
                .unwrap_or_else(|| panic!("the host defines no `{module}`.`{function_name}`"));
            let params: Vec<String> = ty.params().map(|t| t.to_string()).collect();
            let results: Vec<String> = ty.results().map(|t| t.to_string()).collect();
            let wit_params: Vec<String> = signature
                .params
                .iter()
                .map(|t| core_type(*t).to_string())
                .collect();
            let wit_results: Vec<String> = signature
                .results
                .iter()
                .map(|t| core_type(*t).to_string())
                .collect();
            assert_eq!(
                (params, results),
                (wit_params, wit_results),
                "`{module}`.`{function_name}`: host's core type vs the WIT lowering"
            );
        }
    }
}

#[test]
fn every_wit_enum_lowers_in_the_order_the_host_reads_it() {
    let host: Vec<(&str, Vec<String>)> = [
        weft_runtime::threads::wit_enum_cases(),
        weft_runtime::state_imports::wit_enum_cases(),
        weft_runtime::call_imports::wit_enum_cases(),
    ]
    .concat();
    let mut checked = 0;
    for (file, name) in [
        ("threads.wit", "threads"),
        ("state.wit", "state"),
        ("chain.wit", "chain"),
    ] {
        let (resolve, id) = interface(file, name);
        for (type_name, type_id) in &resolve.interfaces[id].types {
            let wit_parser::TypeDefKind::Enum(cases) = &resolve.types[*type_id].kind else {
                continue;
            };
            let wit: Vec<String> = cases.cases.iter().map(|c| c.name.clone()).collect();
            let (_, rust) = host
                .iter()
                .find(|(name, _)| name == type_name)
                .unwrap_or_else(|| panic!("no host decoding of WIT enum `{type_name}`"));
            let rust: Vec<String> = rust.iter().map(|case| kebab(case)).collect();
            assert_eq!(rust, wit, "WIT enum `{type_name}`");
            checked += 1;
        }
    }
    assert_eq!(checked, host.len(), "a host enum has no WIT counterpart");
}
