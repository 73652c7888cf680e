//! The crate's layout rules, checked on its source: data flows one way (nix / dockertools ->
//! plan -> layer -> registry or destination, driven by push), the command line stays in the
//! binary, and no file grows past what one reads in one sitting. docs/architecture.md states
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
}

#[test]
fn the_lower_floors_never_import_the_floors_above() {
    let graph = graph();
    let forbidden: [(&str, &[&str]); 6] = [
        // HTTP as every part speaks it: it knows no registry, cache or push.
        (
            "http",
            &[
                "registry",
                "push",
                "nix",
                "plan",
                "layer",
                "binary_cache",
                "dockertools",
            ],
        ),
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
        ("http", ["registry", "push", "binary_cache"]),
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

#[test]
fn only_the_http_layer_builds_an_http_client() {
    // One place sets timeouts, TLS and the redirect policy for every request nixpush makes.
    for (rel, text) in sources() {
        if rel.starts_with("http/") {
            continue;
        }
        for built in [
            "reqwest::Client::builder",
            "reqwest::Client::new",
            "ClientBuilder",
            "Client::builder()",
        ] {
            let builds = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .any(|l| l.contains(built));
            assert!(
                !builds,
                "src/{rel} builds an HTTP client ({built}): only src/http/ may"
            );
        }
    }
    assert!(
        sources()
            .iter()
            .any(|(rel, text)| rel == "http/transport.rs"
                && text.contains("reqwest::Client::builder")),
        "the http layer is where the client is built"
    );
}
