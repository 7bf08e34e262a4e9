//! The layering rules of `docs/architecture.md`:
//! - inside each crate, no two source files import each other, directly or
//!   through others (the crate root included);
//! - between crates, dependencies point one way: the CLI over the cluster,
//!   the cluster over the runtime, the runtime over the snapshot and
//!   transport crates; the libraries need none of the CLI's dependencies.
//!
//! A file imports another when it names a path that resolves to it:
//! `crate::...`, `super::...`, `self::...`, or a relative `use child::...`
//! of one of its own submodules; a name the crate root re-exports resolves
//! to the module it comes from, a name the root defines to the root. `mod`
//! declarations are no imports, a module's `pub use` of its own children
//! is a facade, and `#[cfg(test)]` code at a file's end is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path: `[]` for the crate root, `["chain", "child"]` ...
type Module = Vec<String>;

/// Every source file under `src` by module path.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            if relative == Path::new("main.rs") && src.join("lib.rs").exists() {
                // A binary beside a library is its client.
                continue;
            }
            let mut parts: Module = relative
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if parts
                .last()
                .is_some_and(|p| matches!(p.as_str(), "mod" | "lib" | "main"))
            {
                parts.pop();
            }
            found.insert(parts, path);
        }
    }
    found
}

/// A file's code: no comments, nothing from its trailing `#[cfg(test)]`.
fn code_of(text: &str) -> String {
    let text = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        rest = rest[at..]
            .find("*/")
            .map_or("", |end| &rest[at + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The path starting at byte `at` of `code` (`a::b::{c, d::e}`), as its
/// full paths (`a::b::c`, `a::b::d::e`) and where it ends.
fn path_at(code: &str, at: usize) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let mut segments = Vec::new();
    let mut i = at;
    loop {
        let start = i;
        while i < bytes.len() && is_ident(bytes[i] as char) {
            i += 1;
        }
        if i == start {
            break;
        }
        segments.push(code[start..i].to_string());
        if code[i..].starts_with("::") {
            i += 2;
            if code[i..].starts_with('{') {
                let mut depth = 0;
                let mut end = i;
                for (j, c) in code[i..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i + j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let mut out = Vec::new();
                for item in split_top(&code[i + 1..end]) {
                    let item = item.split(" as ").next().unwrap_or("").trim();
                    if item.is_empty() || item == "self" || item == "*" {
                        continue;
                    }
                    let (inner, _) = path_at(item, 0);
                    for tail in inner {
                        out.push([segments.clone(), tail].concat());
                    }
                }
                return (out, end + 1);
            }
        } else {
            break;
        }
    }
    (vec![segments], i)
}

/// The items of a `{...}` group, split at its top-level commas.
fn split_top(group: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&group[start..]);
    out
}

/// Every occurrence of `word` in `code` that starts an identifier and is
/// not inside a path (`super::super::a` starts once).
fn words<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word).filter_map(move |(at, _)| {
        if code[..at].ends_with("::") {
            return None;
        }
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        (before.is_none_or(|c| !is_ident(c)) && after.is_none_or(|c| !is_ident(c))).then_some(at)
    })
}

/// `segments` as written in `module`, made absolute (`super::` and
/// `self::` resolved; `crate::` dropped).
fn absolute(module: &Module, segments: &[String]) -> Module {
    match segments.first().map(String::as_str) {
        Some("crate") => segments[1..].to_vec(),
        Some("self") => [module.clone(), segments[1..].to_vec()].concat(),
        Some("super") => {
            let mut base = module.clone();
            let mut rest = segments;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            [base, rest.to_vec()].concat()
        }
        _ => [module.clone(), segments.to_vec()].concat(),
    }
}

/// The longest module `path` starts with, and what follows it.
fn longest<'a>(mods: &BTreeMap<Module, PathBuf>, path: &'a [String]) -> (Module, &'a [String]) {
    (0..=path.len())
        .rev()
        .find(|k| mods.contains_key(&path[..*k]))
        .map_or((Vec::new(), path), |k| (path[..k].to_vec(), &path[k..]))
}

/// The import graph of the crate whose sources are in `src`.
fn import_graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mods = modules(src);
    let codes: BTreeMap<Module, String> = mods
        .iter()
        .map(|(m, path)| (m.clone(), code_of(&std::fs::read_to_string(path).unwrap())))
        .collect();
    // What each module re-exports (`pub use`), by name.
    let mut reexports: BTreeMap<Module, BTreeMap<String, Module>> = BTreeMap::new();
    for (m, code) in &codes {
        let names = reexports.entry(m.clone()).or_default();
        for at in words(code, "pub") {
            let rest = &code[at + 3..];
            let rest_start = rest.find(|c: char| !c.is_whitespace()).unwrap_or(0);
            let mut after = &rest[rest_start..];
            if after.starts_with('(') {
                after = after[after.find(')').map_or(0, |i| i + 1)..].trim_start();
            }
            let Some(used) = after.strip_prefix("use ") else {
                continue;
            };
            let start = code.len() - used.trim_start().len();
            for path in path_at(code, start).0 {
                let target = longest(&mods, &absolute(m, &path)).0;
                if let Some(name) = path.last() {
                    names.insert(name.clone(), target);
                }
            }
        }
    }
    let resolve = |full: &[String]| -> Module {
        let (target, rest) = longest(&mods, full);
        match rest
            .first()
            .and_then(|name| reexports.get(&target)?.get(name))
        {
            Some(real) => real.clone(),
            None => target,
        }
    };
    let has_children = |m: &Module| {
        mods.keys()
            .any(|k| k.len() == m.len() + 1 && k.starts_with(m))
    };
    let mut graph = BTreeMap::new();
    for (m, code) in &codes {
        let mut refs: Vec<Module> = Vec::new();
        for word in ["crate", "super", "self"] {
            for at in words(code, word) {
                if !code[at + word.len()..].starts_with("::") {
                    continue;
                }
                for path in path_at(code, at).0 {
                    refs.push(absolute(m, &path));
                }
            }
        }
        if has_children(m) {
            for at in words(code, "use") {
                let start = code.len() - code[at + 3..].trim_start().len();
                for path in path_at(code, start).0 {
                    let Some(first) = path.first() else { continue };
                    let child = [m.clone(), vec![first.clone()]].concat();
                    if mods.contains_key(&child) {
                        refs.push([m.clone(), path].concat());
                    }
                }
            }
        }
        let mut edges: BTreeSet<Module> = refs
            .iter()
            .map(|full| resolve(full))
            .filter(|target| target != m)
            .collect();
        // A module's `pub use` of its own children is a facade.
        for target in reexports[m].values() {
            if target.starts_with(m) && target != m {
                edges.remove(target);
            }
        }
        graph.insert(m.clone(), edges);
    }
    graph
}

/// The strongly connected groups of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a Module) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in &self.graph[node] {
                let Some((next, _)) = self.graph.get_key_value(next) else {
                    continue;
                };
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut group = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    group.push(if top.is_empty() {
                        "(crate root)".to_string()
                    } else {
                        top.join("/")
                    });
                    if top == node {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found
}

/// The workspace's crates: folder, package name, and its dependencies.
/// `WEFT_LAYERS_WORKSPACE` points the checks at another checkout (to see
/// them fail on an older layout).
fn crates() -> Vec<(PathBuf, String, BTreeSet<String>)> {
    let workspace = std::env::var_os("WEFT_LAYERS_WORKSPACE").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        PathBuf::from,
    );
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find(|l| l.starts_with("members"))
        .expect("a members list");
    members
        .split('"')
        .skip(1)
        .step_by(2)
        .map(|dir| {
            let text = std::fs::read_to_string(workspace.join(dir).join("Cargo.toml")).unwrap();
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("name = \""))
                .map(|n| n.trim_end_matches('"').to_string())
                .expect("a package name");
            // Only [dependencies]: dev-dependencies are the tests'.
            let deps = text
                .split("\n[")
                .find(|section| section.starts_with("dependencies]"))
                .map(|section| {
                    section
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split([' ', '.', '=']).next())
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (workspace.join(dir), name, deps)
        })
        .collect()
}

#[test]
fn no_crate_has_an_import_cycle() {
    let mut report = Vec::new();
    for (dir, name, _) in crates() {
        let graph = import_graph(&dir.join("src"));
        assert!(graph.len() > 2, "{name}: too few modules found");
        for group in cycles(&graph) {
            report.push(format!("{name}: {}", group.join(", ")));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
}

#[test]
fn crates_depend_one_way_and_libraries_need_no_cli() {
    // Each crate may depend on the ones after it in this order only.
    let order = [
        "weft",
        "weft-conformance",
        "weft-serve",
        "weft-cluster",
        "weft-runtime",
        "weft-transport",
        "weft-snapshot",
    ];
    let cli_only = ["clap", "tracing-subscriber", "weft-conformance"];
    let all = crates();
    assert!(
        all.len() >= 6,
        "expected at least 6 crates, found {}",
        all.len()
    );
    for (_, name, deps) in all {
        let Some(rank) = order.iter().position(|n| *n == name) else {
            panic!("crate {name} has no place in the layer order");
        };
        for dep in deps.iter().filter(|d| d.starts_with("weft")) {
            let dep_rank = order.iter().position(|n| n == dep).expect("a known crate");
            assert!(dep_rank > rank, "{name} depends on {dep}, a layer above it");
        }
        if name != "weft" && name != "weft-conformance" {
            for dep in cli_only {
                assert!(!deps.contains(dep), "library {name} depends on {dep}");
            }
        }
    }
}

#[test]
fn the_check_sees_cycles_through_the_root_and_relative_uses() {
    let dir = std::env::temp_dir().join(format!("weft-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("net")).unwrap();
    std::fs::write(
        dir.join("lib.rs"),
        "mod a; mod b; mod c; mod net; mod top;\npub use top::Config;\npub struct Root;\nfn f() { crate::b::g() }",
    )
    .unwrap();
    std::fs::write(
        dir.join("a.rs"),
        "use crate::{b::Thing, c};\nuse crate::Config;",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.rs"),
        "// crate::a in a comment is no import\nuse crate::Root;",
    )
    .unwrap();
    std::fs::write(dir.join("c.rs"), "fn f() { crate::net::wire::send() }").unwrap();
    std::fs::write(dir.join("top.rs"), "pub struct Config;").unwrap();
    std::fs::write(dir.join("net/mod.rs"), "mod wire;\nuse wire::send;").unwrap();
    std::fs::write(
        dir.join("net/wire.rs"),
        "use super::super::a;\n#[cfg(test)]\nmod tests { use crate::net; }",
    )
    .unwrap();
    let graph = import_graph(&dir);
    let m = |s: &str| -> Module {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split('/').map(str::to_string).collect()
        }
    };
    // `crate::Config` resolves to `top`, where the root re-exports it from.
    assert_eq!(graph[&m("a")], BTreeSet::from([m("b"), m("c"), m("top")]));
    // A relative `use` of a child is an import; test code is not.
    assert_eq!(graph[&m("net")], BTreeSet::from([m("net/wire")]));
    assert_eq!(graph[&m("net/wire")], BTreeSet::from([m("a")]));
    let names = |groups: &[&[&str]]| -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|g| g.iter().map(|s| s.to_string()).collect())
            .collect()
    };
    // The root uses b, b uses a name the root defines; a, c and net/wire
    // go round through a relative path and `super::super`.
    assert_eq!(
        cycles(&graph),
        names(&[&["(crate root)", "b"], &["a", "c", "net/wire"]])
    );
    std::fs::write(dir.join("b.rs"), "pub fn g() { crate::a::h() }").unwrap();
    assert_eq!(
        cycles(&import_graph(&dir)),
        names(&[&["a", "b", "c", "net/wire"]])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
