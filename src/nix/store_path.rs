//! Store paths and closures as Nix reports them (`nix path-info --json --recursive`).
//!
//! Nix <= 2.18 prints an array of objects with a `path` field; newer Nix prints an object keyed by
//! path. Both are read into the same `Closure`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::NixError;
pub use nixpush_layer::store_path::StorePath;

/// The only store directory whose paths nixpush lays out: image layers put store paths under
/// `/nix/store/`, as dockerTools does.
pub const STORE_DIR: &str = "/nix/store";

/// A set of store paths closed under references, keyed by path.
#[derive(Clone, Debug, Default)]
pub struct Closure {
    pub paths: BTreeMap<PathBuf, StorePath>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PathInfo {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    valid: Option<bool>,
    nar_hash: Option<String>,
    nar_size: Option<u64>,
    #[serde(default)]
    references: Vec<String>,
}

/// The characters of Nix's base-32 (no `e`, `o`, `u`, `t`): a store path's hash part.
const NIX_BASE32: &str = "0123456789abcdfghijklmnpqrsvwxyz";
/// Length of a store path's hash part (160 bits in base 32).
const HASH_PART_LEN: usize = 32;
/// Longest name after the hash part, as Nix allows it.
const MAX_NAME_LEN: usize = 211;

/// Checks that `path` is directly inside the store: `/nix/store/<hash>-<name>`, named as Nix
/// names store paths (`<hash>`: 32 characters of Nix's base-32; `<name>`: 1 to 211 of
/// `A-Za-z0-9+-._?=`, not starting with `.`), so a name read from a cache can never be a path
/// or URL of its own (`\`, `%`, `/`, control characters).
pub fn check_store_path(path: &str) -> Result<PathBuf, NixError> {
    let bad = || NixError::Unexpected(format!("{path:?} is not a path in {STORE_DIR}"));
    let base = path
        .strip_prefix(STORE_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(bad)?;
    if !is_store_path_base_name(base) {
        return Err(bad());
    }
    Ok(PathBuf::from(path))
}

/// Whether `base` is a store path's file name as Nix allows it: `<hash>-<name>`.
pub fn is_store_path_base_name(base: &str) -> bool {
    let Some((hash, name)) = base.split_at_checked(HASH_PART_LEN) else {
        return false;
    };
    let Some(name) = name.strip_prefix('-') else {
        return false;
    };
    hash.chars().all(|c| NIX_BASE32.contains(c))
        && !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b))
}

impl Closure {
    /// Parses the JSON of `nix path-info --json --recursive`, in either shape.
    pub fn from_path_info_json(json: &[u8]) -> Result<Self, NixError> {
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
            NixError::Unexpected(format!("nix path-info printed invalid JSON: {e}"))
        })?;
        let entries: Vec<(Option<String>, serde_json::Value)> = match value {
            serde_json::Value::Array(items) => items.into_iter().map(|v| (None, v)).collect(),
            serde_json::Value::Object(map) => map.into_iter().map(|(k, v)| (Some(k), v)).collect(),
            _ => {
                return Err(NixError::Unexpected(
                    "nix path-info printed neither an array nor an object".into(),
                ))
            }
        };
        let mut closure = Closure::default();
        for (key, value) in entries {
            if value.is_null() {
                let key = key.unwrap_or_default();
                return Err(NixError::NotValid(key));
            }
            let info: PathInfo = serde_json::from_value(value).map_err(|e| {
                NixError::Unexpected(format!(
                    "nix path-info printed an entry of an unknown shape: {e}"
                ))
            })?;
            let path_str = key.or(info.path).ok_or_else(|| {
                NixError::Unexpected("nix path-info printed an entry without a path".into())
            })?;
            if info.valid == Some(false) {
                return Err(NixError::NotValid(path_str));
            }
            let path = check_store_path(&path_str)?;
            let missing = |field: &str| {
                NixError::Unexpected(format!("nix path-info gave no {field} for {path_str}"))
            };
            let nar_hash = info.nar_hash.ok_or_else(|| missing("narHash"))?;
            // One spelling whatever Nix printed, so layer keys never depend on Nix's version
            // or on where the path was read from.
            let nar_hash = super::NarHash::parse(&nar_hash)
                .map(|h| h.sri())
                .unwrap_or(nar_hash);
            let nar_size = info.nar_size.ok_or_else(|| missing("narSize"))?;
            let mut references = Vec::with_capacity(info.references.len());
            for r in &info.references {
                // Newer Nix may print bare base names; accept both.
                let full = if r.starts_with('/') {
                    r.clone()
                } else {
                    format!("{STORE_DIR}/{r}")
                };
                let r = check_store_path(&full)?;
                if r != path {
                    references.push(r);
                }
            }
            references.sort();
            closure.paths.insert(
                path.clone(),
                StorePath {
                    path,
                    nar_hash,
                    nar_size,
                    references,
                },
            );
        }
        closure.check_closed()?;
        Ok(closure)
    }

    fn check_closed(&self) -> Result<(), NixError> {
        for sp in self.paths.values() {
            if let Some(r) = sp.references.iter().find(|r| !self.paths.contains_key(*r)) {
                return Err(NixError::Unexpected(format!(
                    "nix path-info listed {} referring to {}, which it did not list",
                    sp.path.display(),
                    r.display()
                )));
            }
        }
        Ok(())
    }

    pub fn get(&self, path: &Path) -> Option<&StorePath> {
        self.paths.get(path)
    }

    /// The part of this closure that `roots` refer to, directly or not (roots included).
    pub fn below(&self, roots: &[PathBuf]) -> Closure {
        let mut out = Closure::default();
        let mut todo: Vec<&PathBuf> = roots.iter().collect();
        while let Some(p) = todo.pop() {
            if out.paths.contains_key(p) {
                continue;
            }
            if let Some(sp) = self.paths.get(p) {
                todo.extend(&sp.references);
                out.paths.insert(p.clone(), sp.clone());
            }
        }
        out
    }

    /// A closure of made-up store paths named `/nix/store/xxx…x-NAME`, for tests of code that
    /// only looks at the reference graph: `(name, names it refers to)`.
    #[cfg(test)]
    pub(crate) fn from_edges(edges: &[(&str, &[&str])]) -> Closure {
        let path = |n: &str| PathBuf::from(format!("{STORE_DIR}/{}-{n}", "x".repeat(32)));
        let mut c = Closure::default();
        for (name, refs) in edges {
            c.paths.insert(
                path(name),
                StorePath {
                    path: path(name),
                    nar_hash: String::new(),
                    nar_size: 1,
                    references: refs.iter().map(|r| path(r)).collect(),
                },
            );
        }
        c
    }

    /// Total NAR size: a good estimate of the uncompressed image size.
    pub fn nar_size(&self) -> u64 {
        self.paths.values().map(|p| p.nar_size).sum()
    }
}

/// The store path an installable spells out (`/nix/store/<hash>-<name>`), whether or not the
/// local store has it.
pub fn named_store_path(installable: &str) -> Option<PathBuf> {
    check_store_path(installable.trim_end_matches('/')).ok()
}

/// The store path an installable names directly, if it is one (`/nix/store/...`, `./result`).
pub fn as_store_path(installable: &str) -> Option<PathBuf> {
    if installable.contains('#') || !(installable.starts_with('/') || installable.starts_with('.'))
    {
        return None;
    }
    let real = std::fs::canonicalize(installable).ok()?;
    let inside = real.strip_prefix(STORE_DIR).ok()?;
    let top = inside.components().next()?;
    Some(Path::new(STORE_DIR).join(top))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a";
    const B: &str = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b";

    #[test]
    fn reads_the_array_shape_of_older_nix() {
        let json = format!(
            r#"[{{"path":"{B}","narHash":"sha256-x","narSize":10,"references":["{A}","{B}"]}},
                {{"path":"{A}","narHash":"sha256-y","narSize":5,"references":[]}}]"#
        );
        let c = Closure::from_path_info_json(json.as_bytes()).unwrap();
        assert_eq!(c.paths.len(), 2);
        let b = c.get(Path::new(B)).unwrap();
        assert_eq!(
            b.references,
            vec![PathBuf::from(A)],
            "self-reference dropped"
        );
        assert_eq!((b.nar_hash.as_str(), b.nar_size), ("sha256-x", 10));
        assert_eq!(c.nar_size(), 15);
    }

    #[test]
    fn reads_the_object_shape_of_newer_nix() {
        let json = format!(
            r#"{{"{B}":{{"narHash":"sha256:x","narSize":10,"references":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a"]}},
                "{A}":{{"narHash":"sha256:y","narSize":5,"references":[]}}}}"#
        );
        let c = Closure::from_path_info_json(json.as_bytes()).unwrap();
        assert_eq!(
            c.get(Path::new(B)).unwrap().references,
            vec![PathBuf::from(A)]
        );
    }

    #[test]
    fn rejects_invalid_or_open_closures() {
        let open = format!(r#"[{{"path":"{B}","narHash":"h","narSize":1,"references":["{A}"]}}]"#);
        assert!(Closure::from_path_info_json(open.as_bytes()).is_err());
        let invalid = format!(r#"{{"{A}":null}}"#);
        assert!(matches!(
            Closure::from_path_info_json(invalid.as_bytes()),
            Err(NixError::NotValid(_))
        ));
        let outside = r#"[{"path":"/tmp/x","narHash":"h","narSize":1,"references":[]}]"#;
        assert!(Closure::from_path_info_json(outside.as_bytes()).is_err());
    }

    #[test]
    fn store_path_shape_is_checked() {
        assert!(check_store_path(A).is_ok());
        for bad in [
            "/nix/store",
            "/nix/store/",
            "/nix/store/short",
            "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a/bin",
            "/other/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a",
        ] {
            assert!(check_store_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn store_path_names_are_those_nix_allows() {
        let hash = "0123456789abcdfghijklmnpqrsvwxyz";
        for good in [
            format!("{hash}-a"),
            format!("{hash}-hello-2.12.1"),
            format!("{hash}-python3.11-six-1.16.0.drv"),
            format!("{hash}-a+b-c_d?e=f"),
            format!("{hash}-{}", "n".repeat(211)),
            format!("{hash}-a.."),
        ] {
            assert!(is_store_path_base_name(&good), "{good}");
            assert!(
                check_store_path(&format!("{STORE_DIR}/{good}")).is_ok(),
                "{good}"
            );
        }
        for bad in [
            // A hash part outside Nix's base-32 (e, o, u, t), too short, or uppercase.
            format!("{}-a", "e".repeat(32)),
            format!("{}-a", "t".repeat(32)),
            format!("{}-a", "A".repeat(32)),
            format!("{}-a", "a".repeat(31)),
            format!("{}a", "a".repeat(32)),
            format!("{hash}-"),
            hash.to_string(),
            // Names that are paths or URLs of their own.
            format!("x\\..\\..\\..\\secret\\stolen-{}", "a".repeat(20)),
            format!("{hash}-a\\..\\..\\secret"),
            format!("{hash}-%2e%2e"),
            format!("{hash}-a b"),
            format!("{hash}-a\tb"),
            format!("{hash}-a\u{7f}"),
            format!("{hash}-é"),
            format!("{hash}-a:b"),
            format!("{hash}-a@b"),
            format!("{hash}-.hidden"),
            format!("{hash}-.."),
            format!("{hash}-{}", "n".repeat(212)),
        ] {
            assert!(!is_store_path_base_name(&bad), "{bad:?}");
            assert!(
                check_store_path(&format!("{STORE_DIR}/{bad}")).is_err(),
                "{bad:?}"
            );
        }
    }
}
