//! The workspace's modules import downwards: within each crate, no files
//! import one another in a circle.
//!
//! Each crate's source is read as text and turned into a graph of its
//! files (one node per module file), with an edge wherever a file names
//! another: `crate::`, `super::` and `self::` paths, names brought in by
//! `use`, and paths through child modules. `pub use` re-exports are not
//! edges (they let a parent offer its children's items without depending
//! on them), nor is test code (`#[cfg(test)] mod …` blocks and files).
//! Every strongly connected component of more than one file is a cycle,
//! and the test fails listing each with the edges inside it.
//!
//! The analysis reads text, not a parsed crate, on purpose: it needs no
//! dependency and sees what a reader of the source sees.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A module, as the path of segments below its crate root (`[]` is the
/// root itself).
type Module = Vec<String>;

/// A cycle: the modules of a strongly connected component, and the edges
/// between them.
type Cycle = (BTreeSet<Module>, BTreeSet<(Module, Module)>);

/// The crates whose modules must form no cycle, relative to the
/// workspace root.
const CRATES: &[&str] = &[
    "shared/src",
    "engine/src",
    "lab/src",
    "server/src",
    "frontend/src",
];

#[test]
fn no_module_imports_in_a_circle() {
    // `LAYERS_ROOT` points the test at another checkout (to see it fail
    // on one with cycles); by default it reads this workspace.
    let root = std::env::var_os("LAYERS_ROOT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        PathBuf::from,
    );
    let mut report = String::new();
    for krate in CRATES {
        let files = read_crate(&root.join(krate));
        assert!(!files.is_empty(), "no sources found under {krate}");
        let cycles = cycles(&graph(&files));
        if !cycles.is_empty() {
            writeln!(report, "{krate}:").unwrap();
            report.push_str(&describe(&cycles));
        }
    }
    assert!(
        report.is_empty(),
        "modules import each other in a circle; move what they share into a module below them:\n{report}"
    );
}

/// The analysis finds a made-up two-file cycle, so the test above cannot
/// pass by finding nothing at all.
#[test]
fn a_two_file_cycle_is_found() {
    let files = crate_of(&[
        ("", "pub mod a;\npub mod b;\n"),
        ("a", "use crate::b::B;\npub struct A(B);\n"),
        ("b", "pub struct B;\nfn f() -> super::a::A { todo!() }\n"),
    ]);
    let found = cycles(&graph(&files));
    assert_eq!(found.len(), 1, "{}", describe(&found));
    let (members, edges) = &found[0];
    assert_eq!(members, &BTreeSet::from([m("a"), m("b")]));
    assert!(edges.contains(&(m("a"), m("b"))) && edges.contains(&(m("b"), m("a"))));
}

/// A parent whose children use its items is a cycle as soon as it uses
/// theirs; a `pub use` re-export is not a use.
#[test]
fn a_parent_and_its_children_are_a_cycle_only_if_it_imports_them() {
    let importing = crate_of(&[
        ("", "mod sink;\n"),
        (
            "sink",
            "mod file;\npub(crate) struct Error;\nfn open() { file::open() }\n",
        ),
        ("sink/file", "use super::Error;\npub fn open() {}\n"),
    ]);
    assert_eq!(cycles(&graph(&importing)).len(), 1);
    let re_exporting = crate_of(&[
        ("", "mod sink;\n"),
        (
            "sink",
            "mod error;\nmod file;\npub use error::Error;\npub use file::open;\n",
        ),
        ("sink/error", "pub struct Error;\n"),
        ("sink/file", "use super::error::Error;\npub fn open() {}\n"),
    ]);
    assert!(cycles(&graph(&re_exporting)).is_empty());
}

/// Test code, comments and strings are no edges.
#[test]
fn tests_comments_and_strings_are_ignored() {
    let files = crate_of(&[
        ("", "pub mod a;\npub mod b;\n"),
        ("a", "use crate::b;\npub fn f() { b::g() }\n"),
        (
            "b",
            "// crate::a::f\n/* crate::a::f */\npub fn g() { let _ = \"crate::a::f\"; \
             let _ = r#\"crate::a::f\"#; let _ = '\"'; }\n\
             #[cfg(test)]\nmod tests {\n    use crate::a::f;\n    #[test]\n    fn t() { f() }\n}\n",
        ),
    ]);
    let found = cycles(&graph(&files));
    assert!(found.is_empty(), "{}", describe(&found));
}

fn m(path: &str) -> Module {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn crate_of(files: &[(&str, &str)]) -> BTreeMap<Module, String> {
    files
        .iter()
        .map(|(path, text)| (m(path), (*text).to_owned()))
        .collect()
}

/// The module files of the crate whose root is `src`: `lib.rs` (or
/// `main.rs` when there is no library) is the root, `x/mod.rs` and `x.rs`
/// are `x`; binaries under `bin/` are left out.
fn read_crate(src: &Path) -> BTreeMap<Module, String> {
    let has_lib = src.join("lib.rs").exists();
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("below src");
            let mut parts: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if parts == ["main"] && has_lib {
                continue;
            }
            if parts.iter().any(|p| p == "bin") {
                continue;
            }
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(parts, text);
        }
    }
    out
}

/// The files each file imports from, test files left out.
fn graph(files: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let cleaned: BTreeMap<&Module, Cleaned> = files.iter().map(|(k, v)| (k, clean(v))).collect();
    let test_files: BTreeSet<Module> = cleaned
        .iter()
        .flat_map(|(module, c)| {
            c.test_children.iter().map(move |child| {
                let mut path = (*module).clone();
                path.push(child.clone());
                path
            })
        })
        .collect();
    let is_test = |m: &Module| test_files.iter().any(|t| m.starts_with(t));
    let known: BTreeSet<&Module> = files.keys().filter(|m| !is_test(m)).collect();
    let resolve = |path: &[String]| -> Option<Module> {
        (0..=path.len())
            .rev()
            .map(|i| path[..i].to_vec())
            .find(|prefix| known.contains(prefix))
    };
    let mut edges = BTreeMap::new();
    for (&module, c) in &cleaned {
        if is_test(module) {
            continue;
        }
        let absolute = |segs: &[String], scope: &BTreeMap<String, Module>| -> Option<Module> {
            let first = segs.first()?;
            match first.as_str() {
                "crate" => Some(segs[1..].to_vec()),
                "self" => Some([module.as_slice(), &segs[1..]].concat()),
                "super" => {
                    let ups = segs.iter().take_while(|s| *s == "super").count();
                    let base = &module[..module.len().saturating_sub(ups)];
                    Some([base, &segs[ups..]].concat())
                }
                _ => scope
                    .get(first)
                    .map(|target| [target.as_slice(), &segs[1..]].concat()),
            }
        };
        // Child modules, then what each `use` brings in, in order.
        let mut scope: BTreeMap<String, Module> = BTreeMap::new();
        for child in &c.children {
            let mut path = module.clone();
            path.push(child.clone());
            scope.insert(child.clone(), path);
        }
        let mut used: Vec<(String, Module)> = Vec::new();
        for (segs, alias) in &c.uses {
            let Some(target) = absolute(segs, &scope) else {
                continue;
            };
            let (name, target) = match segs.last().map(String::as_str) {
                Some("*") => {
                    used.push((String::new(), target[..target.len() - 1].to_vec()));
                    continue;
                }
                Some("self") => {
                    let target = target[..target.len() - 1].to_vec();
                    (target.last().cloned().unwrap_or_default(), target)
                }
                _ => (target.last().cloned().unwrap_or_default(), target),
            };
            let name = alias.clone().unwrap_or(name);
            scope.insert(name.clone(), target.clone());
            used.push((name, target));
        }
        let mut targets = BTreeSet::new();
        for (_, target) in used {
            targets.extend(resolve(&target));
        }
        for segs in &c.paths {
            if let Some(target) = absolute(segs, &scope) {
                targets.extend(resolve(&target));
            }
        }
        targets.remove(module);
        edges.insert(module.clone(), targets);
    }
    edges
}

/// What the graph needs of a file: its non-test child modules, the test
/// ones, its `use` paths (with any alias) and every other path of two
/// segments or more.
#[derive(Debug, Default)]
struct Cleaned {
    children: Vec<String>,
    test_children: Vec<String>,
    uses: Vec<(Vec<String>, Option<String>)>,
    paths: Vec<Vec<String>>,
}

fn clean(text: &str) -> Cleaned {
    let code = strip_comments_and_strings(text);
    let code = strip_tests(&code);
    let mut out = Cleaned::default();
    let tokens = tokenize(&code);
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        // `#[cfg(test)] mod x;` (a file of tests).
        if t == "#" && tokens[i..].starts_with(&s(&["#", "[", "cfg", "(", "test", ")", "]"])) {
            let mut j = i + 7;
            j = skip_visibility(&tokens, j);
            if tokens.get(j).map(String::as_str) == Some("mod")
                && tokens.get(j + 2).map(String::as_str) == Some(";")
            {
                out.test_children.push(tokens[j + 1].clone());
                i = j + 3;
                continue;
            }
        }
        if t == "mod" && tokens.get(i + 2).map(String::as_str) == Some(";") {
            out.children.push(tokens[i + 1].clone());
            i += 3;
            continue;
        }
        if t == "pub" || t == "use" {
            let j = if t == "pub" {
                skip_visibility(&tokens, i)
            } else {
                i
            };
            if tokens.get(j).map(String::as_str) == Some("use") {
                let end = (j..tokens.len())
                    .find(|&k| tokens[k] == ";")
                    .unwrap_or(tokens.len());
                if t == "use" {
                    expand_use(&tokens[j + 1..end], &[], &mut out.uses);
                }
                i = end + 1;
                continue;
            }
        }
        if is_ident(t) && tokens.get(i + 1).map(String::as_str) == Some("::") {
            // Not the tail of a path already taken.
            let follows_path = i > 0 && tokens[i - 1] == "::";
            let mut segs = vec![t.to_owned()];
            let mut j = i + 1;
            while tokens.get(j).map(String::as_str) == Some("::")
                && tokens.get(j + 1).is_some_and(|n| is_ident(n))
            {
                segs.push(tokens[j + 1].clone());
                j += 2;
            }
            if !follows_path && segs.len() > 1 {
                out.paths.push(segs);
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|x| (*x).to_owned()).collect()
}

/// Past `pub`, `pub(crate)`, `pub(super)`, `pub(in …)`.
fn skip_visibility(tokens: &[String], mut i: usize) -> usize {
    if tokens.get(i).map(String::as_str) == Some("pub") {
        i += 1;
        if tokens.get(i).map(String::as_str) == Some("(") {
            while i < tokens.len() && tokens[i] != ")" {
                i += 1;
            }
            i += 1;
        }
    }
    i
}

/// `a::b::{c, d::{e as f}, *}` into full paths with their aliases.
fn expand_use(tokens: &[String], prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    let mut items: Vec<&[String]> = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, t) in tokens.iter().enumerate() {
        match t.as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            "," if depth == 0 => {
                items.push(&tokens[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    items.push(&tokens[start..]);
    for item in items {
        let mut path = prefix.to_vec();
        let mut k = 0;
        let mut alias = None;
        while k < item.len() {
            match item[k].as_str() {
                "::" => {}
                "{" => {
                    let close = item
                        .iter()
                        .rposition(|t| t == "}")
                        .filter(|&close| close > k)
                        .unwrap_or(item.len());
                    expand_use(&item[k + 1..close], &path, out);
                    path.clear();
                    break;
                }
                "as" => {
                    alias = item.get(k + 1).cloned();
                    break;
                }
                seg => path.push(seg.to_owned()),
            }
            k += 1;
        }
        if !path.is_empty() && path.len() > prefix.len() {
            out.push((path, alias.filter(|a| a != "_")));
        }
    }
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && t.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers, `::` and single punctuation characters.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".to_owned());
            i += 2;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// The code without comments, and with every string and character
/// literal emptied (so nothing inside one reads as a path or a brace).
fn strip_comments_and_strings(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        let prev_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if !prev_ident && (ch == 'r' || (ch == 'b' && at(i + 1) == 'r')) && {
            let mut j = i + if ch == 'b' { 2 } else { 1 };
            while at(j) == '#' {
                j += 1;
            }
            at(j) == '"'
        } {
            // A raw string: r"…", r#"…"#, br"…".
            let mut j = i + if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (1..=hashes).all(|h| at(j + h) == '#') {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if ch == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if ch == '\'' && (at(i + 1) == '\\' || (at(i + 2) == '\'' && at(i + 1) != '\'')) {
            // A character literal ('x', '\n', '\''), not a lifetime.
            let mut j = i + 1;
            if at(j) == '\\' {
                j += 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
            } else {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

/// The code without `#[cfg(test)] mod name { … }` blocks.
fn strip_tests(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        let mut tokens_start = after.trim_start();
        // Past further attributes (`#[allow(…)]`).
        while let Some(attr) = tokens_start.strip_prefix("#[") {
            let close = attr.find(']').map_or(attr.len(), |k| k + 1);
            tokens_start = attr[close..].trim_start();
        }
        let body = tokens_start
            .strip_prefix("pub(crate)")
            .or_else(|| tokens_start.strip_prefix("pub(super)"))
            .or_else(|| tokens_start.strip_prefix("pub"))
            .unwrap_or(tokens_start)
            .trim_start();
        let is_block = body.strip_prefix("mod").is_some_and(|m| {
            let m = m.trim_start();
            let name_end = m
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(m.len());
            name_end > 0 && m[name_end..].trim_start().starts_with('{')
        });
        if !is_block {
            out.push_str(MARK);
            rest = after;
            continue;
        }
        let open = after.find('{').expect("a block");
        let mut depth = 0;
        let mut end = after.len();
        for (k, ch) in after[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every strongly connected component of more than one module, with the
/// edges inside it (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Cycle> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        next: usize,
        found: Vec<BTreeSet<Module>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a Module) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            let edges = self.edges;
            for w in edges.get(v).into_iter().flatten() {
                if !edges.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.insert(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
        .into_iter()
        .map(|component| {
            let inside = component
                .iter()
                .flat_map(|v| {
                    edges[v]
                        .iter()
                        .filter(|w| component.contains(*w))
                        .map(move |w| (v.clone(), w.clone()))
                })
                .collect();
            (component, inside)
        })
        .collect()
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".to_owned()
    } else {
        m.join("::")
    }
}

fn describe(cycles: &[Cycle]) -> String {
    let mut out = String::new();
    for (members, edges) in cycles {
        let names: Vec<String> = members.iter().map(name).collect();
        writeln!(out, "  cycle of {}: {}", members.len(), names.join(", ")).unwrap();
        for (from, to) in edges {
            writeln!(out, "    {} -> {}", name(from), name(to)).unwrap();
        }
    }
    out
}
