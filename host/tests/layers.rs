//! The layering rule of `docs/architecture.md`: inside each crate of the
//! workspace, no two source files import each other, directly or through
//! others. A file imports another when it names it by `crate::`, `super::`
//! or `self::` paths (in `use` items or inline); the crate root, which
//! declares every module, is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`a::b`) of each source file under `src`, root excluded.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
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
            let mut parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let name = parts.join("::");
            if !matches!(name.as_str(), "lib" | "main" | "") {
                found.insert(name, path);
            }
        }
    }
    found
}

/// Source without `//` comments (doc comments name paths they do not use).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path written after `prefix::` in `code`, with `{...}` groups
/// expanded (`crate::{a, b::{c, d}}` gives `a`, `b::c`, `b::d`).
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(prefix) {
        let start = from + at;
        from = start + prefix.len();
        // Not the tail of a longer path (`super::super::`, `a::self::`).
        let boundary = start == 0 || !(is_ident(bytes[start - 1]) || bytes[start - 1] == b':');
        if boundary {
            expand(code, from, String::new(), &mut out);
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Expands the path starting at `at` (after a `::`), prefixed by `base`.
fn expand(code: &str, at: usize, base: String, out: &mut Vec<String>) {
    let bytes = code.as_bytes();
    if bytes.get(at) == Some(&b'{') {
        // One level of a group: split at top-level commas.
        let mut depth = 0;
        let mut item_start = at + 1;
        for (i, &b) in bytes.iter().enumerate().skip(at) {
            match b {
                b'{' => depth += 1,
                b'}' | b',' if depth == 1 => {
                    let item = code[item_start..i].trim();
                    if !item.is_empty() {
                        let offset = item_start + code[item_start..i].find(item).unwrap_or(0);
                        expand(code, offset, base.clone(), out);
                    }
                    item_start = i + 1;
                    if b == b'}' {
                        return;
                    }
                }
                b'}' => depth -= 1,
                _ => {}
            }
        }
        return;
    }
    let end = at + bytes[at..].iter().take_while(|&&b| is_ident(b)).count();
    if end == at {
        out.push(base);
        return;
    }
    let segment = &code[at..end];
    let path = if base.is_empty() {
        segment.to_string()
    } else {
        format!("{base}::{segment}")
    };
    if code[end..].starts_with("::") {
        expand(code, end + 2, path, out);
    } else {
        out.push(path);
    }
}

/// The module a path names: its longest prefix that is a module.
fn module_named(path: &str, known: &BTreeMap<String, PathBuf>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|candidate| known.contains_key(candidate))
}

/// Module -> modules it imports.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let known = modules(src);
    let mut graph = BTreeMap::new();
    for (name, path) in &known {
        let code = code_of(&std::fs::read_to_string(path).expect("read a source file"));
        // `super` is the parent of this file's module, `self` the module.
        let own: Vec<&str> = name.split("::").collect();
        let mut targets = BTreeSet::new();
        let mut add = |full: String| {
            if let Some(target) = module_named(&full, &known)
                && &target != name
            {
                targets.insert(target);
            }
        };
        for path in paths_after(&code, "crate::") {
            add(path);
        }
        for path in paths_after(&code, "super::") {
            let mut segments: Vec<&str> = path.split("::").collect();
            let mut up = 1;
            while segments.first() == Some(&"super") {
                segments.remove(0);
                up += 1;
            }
            let base = own[..own.len().saturating_sub(up)].join("::");
            let rest = segments.join("::");
            add(if base.is_empty() {
                rest
            } else {
                format!("{base}::{rest}")
            });
        }
        for path in paths_after(&code, "self::") {
            add(format!("{name}::{path}"));
        }
        graph.insert(name.clone(), targets);
    }
    graph
}

/// Groups of two or more modules that reach each other (Tarjan's SCCs).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in &self.graph[node] {
                let next = next.as_str();
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
                    group.push(top.to_string());
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
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

#[test]
fn no_crate_has_an_import_cycle() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut report = Vec::new();
    for krate in ["host", "snapshot", "transport", "conformance"] {
        let graph = import_graph(&workspace.join(krate).join("src"));
        assert!(graph.len() > 3, "{krate}: too few modules found");
        for group in cycles(&graph) {
            report.push(format!("{krate}: {}", group.join(", ")));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
}

#[test]
fn the_check_sees_a_cycle_and_a_grouped_import() {
    let dir = std::env::temp_dir().join(format!("weft-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("net")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a; mod b; mod c; mod net;").unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::{b::Thing, c};").unwrap();
    std::fs::write(dir.join("b.rs"), "// crate::a in a comment is no import\n").unwrap();
    std::fs::write(dir.join("c.rs"), "fn f() { crate::net::wire::send() }").unwrap();
    std::fs::write(dir.join("net/mod.rs"), "mod wire;").unwrap();
    std::fs::write(dir.join("net/wire.rs"), "use super::super::a;").unwrap();
    let graph = import_graph(&dir);
    assert_eq!(
        graph["a"],
        BTreeSet::from(["b".to_string(), "c".to_string()])
    );
    assert!(graph["b"].is_empty());
    assert_eq!(cycles(&graph), vec![vec!["a", "c", "net::wire"]]);
    std::fs::remove_dir_all(&dir).unwrap();
}
