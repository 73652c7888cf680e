//! The crate's layout rules, checked on its source: data flows one way (nix / dockertools ->
//! plan -> layer -> registry or destination, driven by push, which has each image prepared by
//! prepare), the files of a folder import each other one way too, the command line stays in
//! the binary, and no file grows past what one reads in one sitting, the tests' own files
//! included (each of them also says why it exists in a `//!` header). docs/architecture.md
//! states the same rules for people.

use crate::source_tree;

use std::collections::{BTreeMap, BTreeSet};

use source_tree::*;

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
fn no_test_file_is_longer_than_the_limit() {
    let files = test_files();
    assert!(
        files.iter().any(|(rel, _)| rel == "common/mod.rs"),
        "the walk reaches the test bed: {:?}",
        files.iter().map(|(rel, _)| rel).collect::<Vec<_>>()
    );
    let long: Vec<String> = files
        .into_iter()
        .filter(|(_, text)| text.lines().count() > MAX_LINES)
        .map(|(rel, text)| format!("tests/{rel}: {} lines", text.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn every_test_file_opens_with_a_header_saying_why_it_exists() {
    let bare: Vec<String> = test_files()
        .into_iter()
        .filter(|(_, text)| !text.starts_with("//!"))
        .map(|(rel, _)| format!("tests/{rel}"))
        .collect();
    assert!(bare.is_empty(), "no `//!` header: {bare:?}");
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
    let forbidden: [(&str, &[&str]); 8] = [
        // What the installable is, before anything is pushed: it never knows where the image
        // goes (push drives it, not the other way).
        ("prepare", &["push", "registry", "destination"]),
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
        // Reading nix2container's image JSON: what it describes, never how it is pushed.
        (
            "nix2container",
            &["push", "plan", "registry", "destination", "prepare", "nix"],
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
        ("nix2container", ["registry", "push", "plan"]),
        ("prepare", ["push", "destination", "request"]),
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
fn no_function_hides_a_long_argument_list_behind_an_allowance() {
    // Many arguments mean a small struct that says what they are together.
    for (rel, text) in sources() {
        assert!(
            !text.contains("too_many_arguments"),
            "{rel} allows clippy::too_many_arguments: pass a struct instead"
        );
    }
}

#[test]
fn stopping_is_a_signal_passed_down_not_a_static() {
    // One `stop::Stop` made by the binary and handed down: a process-wide flag would stop every
    // push of a run (and every test in a process) at once.
    for (rel, text) in sources() {
        for line in text.lines().map(str::trim_start) {
            let is_static = line.starts_with("static ") || line.starts_with("pub static ");
            assert!(
                !(is_static && (line.contains("Atomic") || line.contains("Stop"))),
                "{rel}: a static stop flag: {line}"
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
