//! The crate's layout rules, checked on its source: data flows one way (nix / dockertools ->
//! plan -> layer -> registry or destination, driven by push, which has each image prepared by
//! prepare), the files of a folder import each other one way too, the command line stays in
//! the binary, and no file grows past what one reads in one sitting. docs/architecture.md states
//! the same rules for people.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest a source file may be, its unit tests included.
const MAX_LINES: usize = 500;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file, relative to `src/`.
fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Whether a file is the binary's (the command line), not the library's.
fn is_binary(rel: &str) -> bool {
    rel == "main.rs" || rel.starts_with("cli/")
}

/// The library's top-level module a file belongs to: `push/upload.rs` -> `push`.
fn module_of(rel: &str) -> String {
    rel.split('/')
        .next()
        .unwrap()
        .trim_end_matches(".rs")
        .to_owned()
}

/// The top-level modules `text` names through `crate::` (plain paths and `crate::{a, b::c}`
/// groups), comments left out.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                found.insert(ident(item.trim()));
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Top-level module -> the top-level modules it names directly.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        if is_binary(&rel) || rel == "lib.rs" {
            continue;
        }
        let module = module_of(&rel);
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(crate_paths(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

/// Everything `from` reaches, by any path.
fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(m) = todo.pop() {
        for d in graph.get(&m).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn the_path_parser_reads_plain_and_grouped_paths() {
    let text = "use crate::plan::{A, B};\nuse crate::{layer::X, nix};\n// crate::push\nlet a = crate::registry::f();";
    let found: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(found, ["layer", "nix", "plan", "registry"]);
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| text.lines().count() > MAX_LINES)
        .map(|(rel, text)| format!("{rel}: {} lines", text.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn the_library_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    let cycles: Vec<String> = graph
        .keys()
        .filter(|m| reachable(&graph, m).contains(*m))
        .cloned()
        .collect();
    assert!(
        cycles.is_empty(),
        "modules on an import cycle: {cycles:?}\n{graph:#?}"
    );
}

#[test]
fn nothing_in_the_library_reaches_up_to_the_orchestrator() {
    let graph = graph();
    for (module, _) in graph.iter().filter(|(m, _)| *m != "push") {
        let reached = reachable(&graph, module);
        assert!(
            !reached.contains("push"),
            "{module} reaches push: {reached:?}"
        );
    }
    // The destinations in particular: the pipeline drives them, they never drive it.
    assert!(graph.contains_key("destination"));
    // The orchestrator calls the prepare stage, never the reverse.
    assert!(graph["push"].contains("prepare"));
}

#[test]
fn the_lower_floors_never_import_the_floors_above() {
    let graph = graph();
    let forbidden: [(&str, &[&str]); 6] = [
        // What the installable is, before anything is pushed: it never knows where the image
        // goes (push drives it, not the other way).
        ("prepare", &["push", "registry", "destination"]),
        (
            "registry",
            &[
                "nix",
                "plan",
                "layer",
                "dockertools",
                "push",
                "binary_cache",
            ],
        ),
        (
            "layer",
            &["registry", "push", "plan", "destination", "binary_cache"],
        ),
        ("plan", &["registry", "push", "binary_cache"]),
        (
            "nix",
            &["registry", "push", "plan", "layer", "binary_cache"],
        ),
        // A second source of store paths: it serves the layers, it never plans or pushes.
        (
            "binary_cache",
            &["push", "plan", "dockertools", "destination"],
        ),
    ];
    for (module, never) in forbidden {
        let deps = &graph[module];
        for n in never {
            assert!(!deps.contains(*n), "{module} imports {n}: {deps:?}");
        }
    }
    // And by any path, for the ones whose whole reach stays low.
    for (module, never) in [
        ("layer", ["registry", "push", "plan"]),
        ("nix", ["registry", "push", "plan"]),
        ("prepare", ["push", "destination", "request"]),
    ] {
        let reached = reachable(&graph, module);
        for n in never {
            assert!(!reached.contains(n), "{module} reaches {n}: {reached:?}");
        }
    }
}

#[test]
fn the_command_line_crates_stay_in_the_binary() {
    for (rel, text) in sources() {
        if is_binary(&rel) {
            continue;
        }
        for name in ["clap", "indicatif"] {
            let uses = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .any(|l| l.contains(&format!("{name}::")) || l.contains(&format!("use {name}")));
            assert!(
                !uses,
                "src/{rel} uses {name}: only src/main.rs and src/cli/ may"
            );
        }
    }
}

// ---- Files within a folder ----
//
// The same one-way rule one floor down: within a folder (a module with a `mod.rs`), the files
// import each other without a cycle, so each file can be read knowing only the ones it names
// (the way `push/prepare.rs` once dispatched to the kinds of image, which imported its toolbox
// back, is what fails). A node is a file of the folder, or a subfolder as a whole; the edges:
// - a file naming `super::x`, `self::x` or `crate::folder::x` (plain or in a `{}` group, at
//   any depth of `super::`) points to `x` when `x` is a file or subfolder of the folder;
// - a name that is an item of `mod.rs` points to where the item lives: to the file `mod.rs`
//   re-exports it from (`pub use x::Item`: `mod.rs` is only a signpost on the way), else to
//   `mod` itself;
// - `mod.rs` has no edges of its own: it is the folder's face, which declares the files,
//   re-exports them, may define what they share and dispatch to them. A shared item that
//   grows its own dependencies belongs in a file of its own;
// - unit tests (from a file's first `#[cfg(test)]` on) are left out: there `super` is the file.

/// File cycles that predate this check, each to be broken (and its entry removed): a new cycle
/// anywhere, or one of these growing, fails.
const KNOWN_FILE_CYCLES: [(&str, &[&str]); 2] = [
    // `reuse.rs` reads `upload.rs`'s options, `upload.rs` calls `reuse.rs`.
    ("push", &["reuse", "upload"]),
    // `client/` names upload sessions (`blob.rs`), `blob.rs` sends through the client.
    ("registry", &["blob", "client"]),
];

/// A file's code without its unit tests and comment lines.
fn code_of(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a path expression starting at `s` names, as segments: `a::{b, c::D}` gives
/// `[a, b]` and `[a, c, D]`.
fn path_segments(s: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut items = Vec::new();
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        items.push(&group[start..i]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&group[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            let mut out = Vec::new();
            for item in items {
                for tail in path_segments(item) {
                    let mut p = segments.clone();
                    p.extend(tail);
                    out.push(p);
                }
            }
            return out;
        }
        let id = ident(rest);
        if id.is_empty() {
            break;
        }
        rest = &rest[id.len()..];
        segments.push(id);
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    vec![segments]
}

/// Whether `code[..i]` ends where a path may begin (not inside an identifier or a longer path).
fn path_starts_at(code: &str, i: usize) -> bool {
    code[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
}

/// The module path of a file: `push/upload.rs` -> `[push, upload]`, `push/mod.rs` -> `[push]`.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every absolute path (from the crate root) a file's code names through `crate::`, `self::`
/// or `super::`.
fn absolute_paths(rel: &str, code: &str) -> Vec<Vec<String>> {
    let here = module_path(rel);
    let mut found = Vec::new();
    for prefix in ["crate::", "self::", "super::"] {
        for (i, _) in code.match_indices(prefix) {
            if !path_starts_at(code, i) {
                continue;
            }
            for segments in path_segments(&code[i..]) {
                let mut base: Vec<String> = Vec::new();
                let mut rest = segments.as_slice();
                match rest.first().map(String::as_str) {
                    Some("crate") => rest = &rest[1..],
                    Some("self") => {
                        base = here.clone();
                        rest = &rest[1..];
                    }
                    _ => {
                        base = here.clone();
                        while rest.first().is_some_and(|s| s == "super") {
                            base.pop();
                            rest = &rest[1..];
                        }
                    }
                }
                base.extend(rest.iter().cloned());
                found.push(base);
            }
        }
    }
    found
}

/// Folder (as `a/b`) -> file or subfolder -> the files or subfolders of the same folder it
/// names.
fn folder_graphs() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let files = sources();
    let folders: BTreeSet<String> = files
        .iter()
        .filter_map(|(rel, _)| rel.strip_suffix("/mod.rs").map(str::to_owned))
        .collect();
    let mut graphs = BTreeMap::new();
    for folder in &folders {
        let inside: Vec<&(String, String)> = files
            .iter()
            .filter(|(rel, _)| rel.starts_with(&format!("{folder}/")))
            .collect();
        // The folder's nodes: its files and subfolders, by the name `mod.rs` declares them.
        let node_of = |rel: &str| -> String {
            let below = &rel[folder.len() + 1..];
            match below.split_once('/') {
                Some((sub, _)) => sub.to_owned(),
                None => below.trim_end_matches(".rs").to_owned(),
            }
        };
        let nodes: BTreeSet<String> = inside.iter().map(|(rel, _)| node_of(rel)).collect();
        let mod_text = &files
            .iter()
            .find(|(rel, _)| *rel == format!("{folder}/mod.rs"))
            .unwrap()
            .1;
        // What `mod.rs` re-exports, and from which child.
        let mut reexported: BTreeMap<String, String> = BTreeMap::new();
        let is_reexport = |l: &str| {
            let l = l.trim_start();
            l.starts_with("pub use ") || l.starts_with("pub(crate) use ")
        };
        for line in code_of(mod_text).lines().filter(|l| is_reexport(l)) {
            let path = line.trim_start().split_once("use ").unwrap().1;
            for segments in path_segments(path) {
                if let (Some(child), Some(item)) = (segments.first(), segments.last()) {
                    if nodes.contains(child) {
                        reexported.insert(item.clone(), child.clone());
                    }
                }
            }
        }
        let folder_path = module_path(&format!("{folder}/mod.rs"));
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (rel, text) in inside {
            let from = node_of(rel);
            if from == "mod" {
                graph.entry(from).or_default();
                continue;
            }
            let code = code_of(text);
            let mut targets = BTreeSet::new();
            for path in absolute_paths(rel, &code) {
                if path.len() <= folder_path.len() || path[..folder_path.len()] != folder_path[..] {
                    continue;
                }
                let name = &path[folder_path.len()];
                if nodes.contains(name) {
                    targets.insert(name.clone());
                } else if let Some(child) = reexported.get(name) {
                    targets.insert(child.clone());
                } else if !name.is_empty() {
                    targets.insert("mod".to_owned());
                }
            }
            targets.remove(&from);
            graph.entry(from).or_default().extend(targets);
        }
        graphs.insert(folder.clone(), graph);
    }
    graphs
}

#[test]
fn the_folder_graph_reads_groups_super_and_reexports() {
    let code = "use super::{a::X, b};\nuse super::super::top::Y;\nlet z = crate::push::c::f();";
    let paths = absolute_paths("push/d.rs", code);
    for expected in [
        &["push", "a", "X"][..],
        &["push", "b"],
        &["top", "Y"],
        &["push", "c", "f"],
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected:?} not in {paths:?}"
        );
    }
    // Inside `self::` of a mod.rs, and a `super` that is part of a longer path is not one.
    let paths = absolute_paths("push/mod.rs", "use self::e::Z; x::super::q;");
    assert_eq!(paths, [vec!["push", "e", "Z"]]);
}

#[test]
fn the_files_of_each_folder_import_each_other_without_a_cycle() {
    let mut cycles = Vec::new();
    for (folder, graph) in folder_graphs() {
        let on_cycle: Vec<&String> = graph
            .keys()
            .filter(|f| reachable(&graph, f).contains(*f))
            .collect();
        let known: &[&str] = KNOWN_FILE_CYCLES
            .iter()
            .find(|(f, _)| *f == folder)
            .map_or(&[], |(_, files)| files);
        if on_cycle.iter().any(|f| !known.contains(&f.as_str())) {
            cycles.push(format!("src/{folder}/: {on_cycle:?} in {graph:?}"));
        }
    }
    assert!(
        cycles.is_empty(),
        "files on an import cycle:\n{}",
        cycles.join("\n")
    );
}
