//! The order nixpkgs' `referencesByPopularity` gives a closure, so that plain packages are layered
//! the way `dockerTools` layers images: the store paths most depended upon (glibc and the like)
//! first, each in a layer of its own, the rarely shared ones (the application itself) last.
//!
//! Popularity counts, for each store path, the paths from the closure's roots down to it (with
//! shared subtrees counted once per path through them, plus one per edge): a library every other
//! path needs scores high, the top-level program scores 1. Ties are broken by the package name
//! after the hash, then the hash, so the order does not move when only hashes change. Using the
//! same rule as nixpkgs means a layer nixpush makes for a popular path is byte-identical to the
//! one in a dockerTools image built from the same nixpkgs (same tar rules), and registries store it
//! once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::nix::{Closure, StorePath};

/// The closure's store paths, most popular first.
pub fn by_popularity(closure: &Closure) -> Vec<&StorePath> {
    let referenced: BTreeSet<&Path> = closure
        .paths
        .values()
        .flat_map(|sp| sp.references.iter().map(PathBuf::as_path))
        .collect();
    let roots: Vec<&Path> = closure
        .paths
        .keys()
        .map(PathBuf::as_path)
        .filter(|p| !referenced.contains(p))
        .collect();

    // contest(p)[m]: the popularity of m within the graph below p (p itself excluded).
    let mut memo: HashMap<&Path, BTreeMap<&Path, u64>> = HashMap::new();
    let mut popularity: BTreeMap<&Path, u64> = BTreeMap::new();
    for root in &roots {
        *popularity.entry(root).or_default() += 1;
        contest(root, closure, &mut memo);
        for (m, n) in &memo[root] {
            *popularity.entry(m).or_default() += n + 1;
        }
    }
    let mut ordered: Vec<&StorePath> = closure.paths.values().collect();
    ordered.sort_by(|a, b| {
        let pa = popularity.get(a.path.as_path()).copied().unwrap_or(0);
        let pb = popularity.get(b.path.as_path()).copied().unwrap_or(0);
        pb.cmp(&pa)
            .then_with(|| package_name(a).cmp(&package_name(b)))
    });
    ordered
}

/// Fills `memo[path]`: the popularity of every path below `path`, memoised per path as nixpkgs
/// does (quadratic in the worst case, like nixpkgs; fine for closures of a few thousand paths).
/// Iterative (post-order) so a deep closure cannot overflow the stack.
fn contest<'a>(
    path: &'a Path,
    closure: &'a Closure,
    memo: &mut HashMap<&'a Path, BTreeMap<&'a Path, u64>>,
) {
    let children = |p: &'a Path| -> &'a [PathBuf] {
        closure
            .get(p)
            .map(|sp| sp.references.as_slice())
            .unwrap_or(&[])
    };
    let mut stack: Vec<(&'a Path, bool)> = vec![(path, false)];
    while let Some((p, expanded)) = stack.pop() {
        if memo.contains_key(p) {
            continue;
        }
        if !expanded {
            stack.push((p, true));
            stack.extend(children(p).iter().map(|c| (c.as_path(), false)));
            continue;
        }
        let mut counts: BTreeMap<&'a Path, u64> = BTreeMap::new();
        for child in children(p) {
            *counts.entry(child.as_path()).or_default() += 1;
            for (m, n) in &memo[child.as_path()] {
                *counts.entry(m).or_default() += n + 1;
            }
        }
        memo.insert(p, counts);
    }
}

/// nixpkgs' sort key: the path split at `-`, its first part (`/nix/store/<hash>`) moved last:
/// `name-version-/nix/store/<hash>`. Sorting by name, hash last; kept to the letter (the `/`
/// sorts before every letter and digit, so `foo` comes before `foo-dev` whatever the hashes).
fn package_name(sp: &StorePath) -> String {
    let path = sp.path.to_string_lossy();
    match path.split_once('-') {
        Some((start, rest)) => format!("{rest}-{start}"),
        None => path.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closure(edges: &[(&str, &[&str])]) -> Closure {
        Closure::from_edges(edges)
    }

    fn names(c: &Closure) -> Vec<String> {
        by_popularity(c)
            .iter()
            .map(|sp| sp.base_name().split_once('-').unwrap().1.to_owned())
            .collect()
    }

    #[test]
    fn the_worked_example_of_nixpkgs_closure_graph() {
        // A - B - C - D - F, C - E - F, B - E, A - G: popularity A1 B2 C3 D4 E5 F9 G2, so
        // F E D C B G A (G before A: equal to B's 2, then by name).
        let c = closure(&[
            ("A", &["B", "G"]),
            ("B", &["C", "E"]),
            ("C", &["D", "E"]),
            ("D", &["F"]),
            ("E", &["F"]),
            ("F", &[]),
            ("G", &[]),
        ]);
        assert_eq!(names(&c), ["F", "E", "D", "C", "B", "G", "A"]);
    }

    /// Unrelated store paths with the given hash letter and name: only names and hashes differ.
    fn unrelated(paths: &[(&str, &str)]) -> Closure {
        let mut c = Closure::default();
        for (hash, name) in paths {
            let path = PathBuf::from(format!("/nix/store/{}-{name}", hash.repeat(32)));
            c.paths.insert(
                path.clone(),
                StorePath {
                    path,
                    nar_hash: String::new(),
                    nar_size: 1,
                    references: vec![],
                },
            );
        }
        c
    }

    #[test]
    fn ties_sort_by_package_name_not_hash() {
        let c = unrelated(&[("b", "zlib"), ("a", "openssl")]);
        let got: Vec<&str> = by_popularity(&c).iter().map(|s| s.base_name()).collect();
        assert!(
            got[0].ends_with("-openssl") && got[1].ends_with("-zlib"),
            "{got:?}"
        );
    }

    #[test]
    fn a_name_that_prefixes_another_sorts_first_whatever_the_hashes() {
        let c = unrelated(&[
            ("z", "foo"),
            ("0", "foo-bar"),
            ("a", "foo-bar"),
            ("5", "foo"),
        ]);
        let got: Vec<String> = by_popularity(&c)
            .iter()
            .map(|s| s.base_name().to_owned())
            .collect();
        let expected: Vec<String> = [
            ("5", "foo"),
            ("z", "foo"),
            ("0", "foo-bar"),
            ("a", "foo-bar"),
        ]
        .iter()
        .map(|(h, n)| format!("{}-{n}", h.repeat(32)))
        .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_deep_chain_does_not_overflow() {
        let chain: Vec<String> = (0..1000).map(|i| format!("p{i:05}")).collect();
        let edges: Vec<(&str, Vec<&str>)> = chain
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.as_str(),
                    chain
                        .get(i + 1)
                        .map(|m| vec![m.as_str()])
                        .unwrap_or_default(),
                )
            })
            .collect();
        let edges: Vec<(&str, &[&str])> = edges.iter().map(|(n, r)| (*n, r.as_slice())).collect();
        let c = closure(&edges);
        let order = names(&c);
        assert_eq!(
            order.first().unwrap(),
            "p00999",
            "the deepest is the most popular"
        );
        assert_eq!(order.last().unwrap(), "p00000");
    }
}
