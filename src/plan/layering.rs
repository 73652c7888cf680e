//! How a plain package's closure is cut into layers.
//!
//! Within the limit, every store path gets a layer of its own, most popular first (nixpkgs'
//! `referencesByPopularity`, see `popularity`; a path is always more popular than anything that
//! refers to it, so dependencies come first). Past the limit nixpkgs puts the least popular paths
//! together in the last layer, the application's own path among them; nixpush keeps the
//! installable's outputs (what a new version changes) in a top layer of their own and groups the
//! least popular of the other paths just below, so a release that changes only the application
//! uploads only the application, never its unchanged neighbours (`--contents` packages included).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{by_popularity, store_paths_layer};
use crate::layer::{Compression, LayerSpec, Owner, NIX_DIRS_MODE};
use crate::nix::{Closure, StorePath};

/// The layers of `closure`, at most `max_layers` of them; `top` are the installable's outputs.
pub fn plain_layers(
    closure: &Closure,
    top: &[PathBuf],
    max_layers: usize,
    owner: &Owner,
    compression: Compression,
) -> Vec<LayerSpec> {
    group(closure, top, max_layers)
        .into_iter()
        .map(|group| store_paths_layer(&group, owner, NIX_DIRS_MODE, compression))
        .collect()
}

/// Store paths grouped into layers, bottom first.
fn group<'a>(closure: &'a Closure, top: &[PathBuf], max_layers: usize) -> Vec<Vec<&'a StorePath>> {
    let ordered = by_popularity(closure);
    let max_layers = max_layers.max(1);
    if ordered.len() <= max_layers {
        return ordered.into_iter().map(|sp| vec![sp]).collect();
    }
    if max_layers == 1 {
        return vec![ordered];
    }
    let top: BTreeSet<&Path> = top.iter().map(PathBuf::as_path).collect();
    let (roots, deps): (Vec<&StorePath>, Vec<&StorePath>) = ordered
        .into_iter()
        .partition(|sp| top.contains(sp.path.as_path()));
    // Singles for the most popular other paths, one layer for the rest, one for the outputs.
    let singles = (max_layers - 2).min(deps.len());
    let mut groups: Vec<Vec<&StorePath>> = deps[..singles].iter().map(|sp| vec![*sp]).collect();
    if singles < deps.len() {
        groups.push(deps[singles..].to_vec());
    }
    if !roots.is_empty() {
        groups.push(roots);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closure(edges: &[(&str, &[&str])]) -> Closure {
        Closure::from_edges(edges)
    }

    fn names(groups: &[Vec<&StorePath>]) -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|g| g.iter().map(|sp| sp.base_name()[33..].to_owned()).collect())
            .collect()
    }

    /// app -> lib -> libc, app -> zlib -> libc, app -> data
    fn app() -> Closure {
        closure(&[
            ("app", &["lib", "zlib", "data"]),
            ("lib", &["libc"]),
            ("zlib", &["libc"]),
            ("libc", &[]),
            ("data", &[]),
        ])
    }

    fn top() -> Vec<PathBuf> {
        vec![PathBuf::from(format!("/nix/store/{}-app", "x".repeat(32)))]
    }

    #[test]
    fn within_the_limit_every_path_is_a_layer_most_popular_first() {
        assert_eq!(
            names(&group(&app(), &top(), 5)),
            [["libc"], ["data"], ["lib"], ["zlib"], ["app"]]
        );
    }

    #[test]
    fn other_unreferenced_paths_are_not_the_top() {
        // A --contents package is unreferenced too, but it is not what a release changes.
        let mut c = app();
        c.paths
            .extend(Closure::from_edges(&[("busybox", &[])]).paths);
        assert_eq!(
            names(&group(&c, &top(), 3)),
            vec![
                vec!["libc"],
                vec!["data", "lib", "zlib", "busybox"],
                vec!["app"]
            ]
        );
    }

    #[test]
    fn past_the_limit_the_roots_keep_a_layer_of_their_own() {
        assert_eq!(
            names(&group(&app(), &top(), 3)),
            vec![vec!["libc"], vec!["data", "lib", "zlib"], vec!["app"]]
        );
        assert_eq!(
            names(&group(&app(), &top(), 2)),
            vec![vec!["libc", "data", "lib", "zlib"], vec!["app"]]
        );
        assert_eq!(
            names(&group(&app(), &top(), 1)),
            vec![vec!["libc", "data", "lib", "zlib", "app"]]
        );
    }
}
