//! The WIT contract and the host agree: `wit/` parses, and the functions of
//! `weft:threads/threads` are exactly the core imports the host defines.

use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn threads_interface_matches_the_host() {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit"))
        .unwrap();
    let package = &resolve.packages[package];
    assert_eq!(package.name.to_string(), "weft:threads@0.1.0");
    assert!(package.worlds.contains_key("thread"), "world `thread`");
    let interface = &resolve.interfaces[package.interfaces["threads"]];
    let in_wit: BTreeSet<&str> = interface.functions.keys().map(String::as_str).collect();
    let in_host: BTreeSet<&str> = weft::threads::WEFT_FUNCTIONS.iter().copied().collect();
    assert_eq!(in_wit, in_host);
    assert_eq!(weft::threads::WEFT_MODULE, "weft:threads/threads@0.1.0");
}
