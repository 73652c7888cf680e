//! A cache's `.ls` listing of a store path (written by `nix copy` with `write-nar-listing`):
//! its files without their contents, enough to check a relative entrypoint without a NAR.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One node of a listing.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Node {
    Regular {},
    Symlink {
        target: String,
    },
    Directory {
        #[serde(default)]
        entries: BTreeMap<String, Node>,
    },
}

#[derive(Deserialize)]
struct Listing {
    root: Node,
}

/// The root node of a listing's JSON.
pub fn parse(json: &[u8]) -> Option<Node> {
    serde_json::from_slice::<Listing>(json).ok().map(|l| l.root)
}

/// Most symlinks followed while looking a name up.
const MAX_LINKS: usize = 16;

/// Whether `rel` (a `/`-separated name below the root) is there, following symlinks on the way
/// as `lstat` does (the last component is not followed); `None` when a symlink leads out of the
/// store path, where the listing cannot tell.
pub fn holds(root: &Node, rel: &str) -> Option<bool> {
    let mut parts: Vec<String> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_owned)
        .collect();
    parts.reverse();
    let mut at: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = parts.pop() {
        if part.is_empty() || part == "." {
            continue;
        }
        if part == ".." {
            at.pop()?;
            continue;
        }
        let node = lookup(root, &at)?;
        let Node::Directory { entries } = node else {
            return Some(false);
        };
        let Some(child) = entries.get(&part) else {
            return Some(false);
        };
        match child {
            Node::Symlink { target } if !parts.is_empty() => {
                links += 1;
                if links > MAX_LINKS || target.starts_with('/') {
                    return None;
                }
                parts.extend(target.split('/').rev().map(str::to_owned));
            }
            _ => at.push(part),
        }
    }
    Some(true)
}

fn lookup<'a>(root: &'a Node, at: &[String]) -> Option<&'a Node> {
    let mut node = root;
    for part in at {
        let Node::Directory { entries } = node else {
            return None;
        };
        node = entries.get(part)?;
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_through_relative_links() {
        let root = parse(
            br#"{"version":1,"root":{"type":"directory","entries":{
                "bin":{"type":"symlink","target":"libexec"},
                "dot":{"type":"symlink","target":"./libexec/"},
                "libexec":{"type":"directory","entries":{"app":{"type":"regular","size":3,"executable":true,"narOffset":8}}},
                "out":{"type":"symlink","target":"/nix/store/x"}}}}"#,
        )
        .unwrap();
        assert_eq!(holds(&root, "libexec/app"), Some(true));
        assert_eq!(holds(&root, "bin/app"), Some(true));
        assert_eq!(holds(&root, "dot/app"), Some(true));
        assert_eq!(holds(&root, "./bin//app"), Some(true));
        assert_eq!(holds(&root, "bin"), Some(true));
        assert_eq!(holds(&root, "bin/nothing"), Some(false));
        assert_eq!(holds(&root, "libexec/app/x"), Some(false));
        assert_eq!(holds(&root, "out/x"), None);
    }
}
