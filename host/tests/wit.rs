//! The WIT contracts and the host agree: each file in `wit/` parses as its
//! package, and each interface's functions are exactly the core imports
//! the host defines for it.

use std::collections::BTreeSet;
use std::path::Path;

/// The functions of `interface` in the package of `wit/FILE`.
fn wit_functions(file: &str, package: &str, world: &str, interface: &str) -> BTreeSet<String> {
    let mut resolve = wit_parser::Resolve::default();
    let id = resolve
        .push_file(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../wit")
                .join(file),
        )
        .unwrap();
    let package_ = &resolve.packages[id];
    assert_eq!(package_.name.to_string(), package);
    assert!(package_.worlds.contains_key(world), "world `{world}`");
    let interface = &resolve.interfaces[package_.interfaces[interface]];
    interface.functions.keys().cloned().collect()
}

fn host_functions(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn threads_interface_matches_the_host() {
    assert_eq!(
        wit_functions("threads.wit", "weft:threads@0.1.0", "thread", "threads"),
        host_functions(weft::threads::WEFT_FUNCTIONS)
    );
    assert_eq!(weft::threads::WEFT_MODULE, "weft:threads/threads@0.1.0");
}

#[test]
fn state_interface_matches_the_host() {
    assert_eq!(
        wit_functions("state.wit", "weft:state@0.1.0", "stateful", "state"),
        host_functions(weft::state_imports::STATE_FUNCTIONS)
    );
    assert_eq!(weft::state_imports::STATE_MODULE, "weft:state/state@0.1.0");
}

#[test]
fn chain_interface_matches_the_host() {
    assert_eq!(
        wit_functions("chain.wit", "weft:chain@0.1.0", "function", "chain"),
        host_functions(weft::call_imports::CHAIN_FUNCTIONS)
    );
    assert_eq!(weft::call_imports::CHAIN_MODULE, "weft:chain/chain@0.1.0");
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
