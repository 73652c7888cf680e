//! The order of a closure's store paths in an image: every path after all the paths it refers
//! to (so lower layers never depend on upper ones), ties broken by path name so the order is the
//! same on every machine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::nix::{Closure, StorePath};

/// Topological order of `closure`, dependencies first.
pub fn order_closure(closure: &Closure) -> Vec<&StorePath> {
    // Number of not-yet-emitted references of each path, and who refers to each path.
    let mut pending: BTreeMap<&Path, usize> = BTreeMap::new();
    let mut referrers: BTreeMap<&Path, Vec<&Path>> = BTreeMap::new();
    for sp in closure.paths.values() {
        pending.insert(&sp.path, sp.references.len());
        for r in &sp.references {
            referrers.entry(r.as_path()).or_default().push(&sp.path);
        }
    }
    let mut ready: BTreeSet<&Path> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(p, _)| *p)
        .collect();
    let mut order = Vec::with_capacity(closure.paths.len());
    while let Some(path) = ready.pop_first() {
        order.push(&closure.paths[path]);
        for referrer in referrers.get(path).into_iter().flatten() {
            let n = pending
                .get_mut(referrer)
                .expect("every referrer is in the closure");
            *n -= 1;
            if *n == 0 {
                ready.insert(referrer);
            }
        }
    }
    // Nix forbids reference cycles other than self-references (already dropped); should one
    // appear anyway, its paths go last in name order rather than being lost.
    if order.len() < closure.paths.len() {
        let emitted: BTreeSet<&Path> = order.iter().map(|sp| sp.path.as_path()).collect();
        order.extend(
            closure
                .paths
                .values()
                .filter(|sp| !emitted.contains(sp.path.as_path())),
        );
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn closure(edges: &[(&str, &[&str])]) -> Closure {
        let p = |n: &str| PathBuf::from(format!("/nix/store/{}-{n}", "x".repeat(32)));
        let mut c = Closure::default();
        for (name, refs) in edges {
            c.paths.insert(
                p(name),
                StorePath {
                    path: p(name),
                    nar_hash: String::new(),
                    nar_size: 1,
                    references: refs.iter().map(|r| p(r)).collect(),
                },
            );
        }
        c
    }

    fn names(c: &Closure) -> Vec<String> {
        order_closure(c)
            .iter()
            .map(|sp| sp.base_name().rsplit('-').next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn dependencies_come_first_and_ties_break_by_name() {
        // app -> lib -> libc, app -> zlib -> libc, app -> data
        let c = closure(&[
            ("app", &["lib", "zlib", "data"]),
            ("lib", &["libc"]),
            ("zlib", &["libc"]),
            ("libc", &[]),
            ("data", &[]),
        ]);
        assert_eq!(names(&c), ["data", "libc", "lib", "zlib", "app"]);
    }

    #[test]
    fn a_cycle_does_not_lose_paths() {
        let c = closure(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
        let mut got = names(&c);
        assert_eq!(got.remove(0), "c");
        got.sort();
        assert_eq!(got, ["a", "b"]);
    }
}
