//! What a registry host was seen to refuse, learned from its answers and remembered between
//! pushes (one small JSON file per host in the cache), so that the next push goes straight to
//! the way of uploading and the manifest format the host takes, without paying for the refused
//! try again. Registries bend the distribution spec in a few known ways (docs/registries.md has
//! the table): a streamed `PATCH` without a length refused (411 or 400), a cap on the size of one
//! request's body (416), OCI manifests refused (400 `MANIFEST_INVALID`).
//!
//! A fact file that cannot be read is no fact: the worst it costs is the refused try again.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The size of a chunk when a host wants a length on every request and has shown no cap: not
/// below ECR's 5 MiB minimum part (a smaller chunk that is not the last is refused there).
pub const DEFAULT_CHUNK: u64 = 8 * 1024 * 1024;
const _: () = assert!(DEFAULT_CHUNK >= 5 << 20, "ECR refuses parts under 5 MiB");

/// Everything learned of one host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// The status a streamed `PATCH` (no `Content-Length`) was refused with: 411 or 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_required: Option<u16>,
    /// The largest request body the host takes: a body over it was answered 416.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_cap: Option<u64>,
    /// OCI manifests are refused: manifests are written with Docker schema 2 media types.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub docker_media_types: bool,
}

impl HostFacts {
    /// Whether a body of `size` bytes with its length may be sent to this host.
    pub fn takes_body(&self, size: u64) -> bool {
        self.body_cap.is_none_or(|cap| size <= cap)
    }

    /// The size of each `PATCH` when the host wants lengths: under its cap, if it has one.
    pub fn chunk_size(&self) -> u64 {
        self.body_cap
            .map_or(DEFAULT_CHUNK, |cap| cap.min(DEFAULT_CHUNK))
    }
}

/// The facts of one host, with where they are kept (none: learned for this run only).
#[derive(Debug, Default)]
pub struct HostFactsStore {
    file: Option<PathBuf>,
    facts: Mutex<HostFacts>,
}

impl HostFactsStore {
    /// The facts remembered for `host` under `dir` (a missing or damaged file: none yet).
    pub fn open(dir: Option<PathBuf>, host: &str) -> Self {
        // A host is `name[:port]`: nothing in it can leave the directory once '/' is refused.
        let file = dir
            .filter(|_| !host.is_empty() && !host.contains(['/', '\\']) && !host.contains(".."))
            .map(|d| d.join(format!("{host}.json")));
        let facts = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        HostFactsStore {
            file,
            facts: Mutex::new(facts),
        }
    }

    pub fn get(&self) -> HostFacts {
        self.lock().clone()
    }

    /// Changes the facts and keeps them (best effort: a cache that cannot be written costs
    /// the refused try on the next push, nothing more). Returns whether anything changed.
    pub fn learn(&self, change: impl FnOnce(&mut HostFacts)) -> bool {
        let mut facts = self.lock();
        let before = facts.clone();
        change(&mut facts);
        if *facts == before {
            return false;
        }
        if let Some(file) = &self.file {
            let _ = write_atomically(
                file,
                &serde_json::to_vec_pretty(&*facts).unwrap_or_default(),
            );
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HostFacts> {
        self.facts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Written beside, then renamed: a reader sees the old facts or the new, never half.
fn write_atomically(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// The cap a 416 refusal names, e.g. GHCR's "exceeds the maximum permissible limit of 4.00MiB";
/// `None` when the answer names no size.
pub fn cap_named_in(detail: &str) -> Option<u64> {
    let lower = detail.to_ascii_lowercase();
    for (unit, scale) in [("mib", 1u64 << 20), ("mb", 1_000_000), ("kib", 1 << 10)] {
        // Every occurrence: "mb" is also inside words ("number").
        for (end, _) in lower.match_indices(unit) {
            let number: String = lower[..end]
                .trim_end()
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if let Ok(n) = number.parse::<f64>() {
                if n > 0.0 {
                    return Some((n * scale as f64) as u64);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cap_a_refusal_names() {
        let ghcr = "REQUESTED_RANGE_NOT_SATISFIABLE: the request body exceeds the maximum \
                    permissible limit of 4.00MiB";
        assert_eq!(cap_named_in(ghcr), Some(4 << 20));
        assert_eq!(cap_named_in("too large, limit 5 MB"), Some(5_000_000));
        assert_eq!(cap_named_in("range not satisfiable"), None);
        assert_eq!(
            cap_named_in("a number over the limit of 5 MB"),
            Some(5_000_000)
        );
    }

    #[test]
    fn chunks_stay_under_a_cap_and_are_large_enough_without_one() {
        let mut facts = HostFacts::default();
        assert_eq!(facts.chunk_size(), DEFAULT_CHUNK);
        assert!(facts.takes_body(u64::MAX));
        facts.body_cap = Some(4 << 20);
        assert_eq!(facts.chunk_size(), 4 << 20);
        assert!(facts.takes_body(4 << 20) && !facts.takes_body((4 << 20) + 1));
    }

    #[test]
    fn facts_are_remembered_per_host_and_damage_is_no_fact() {
        let dir = tempfile::tempdir().unwrap();
        let store = HostFactsStore::open(Some(dir.path().into()), "r.example:5000");
        assert!(store.learn(|f| f.length_required = Some(411)));
        assert!(!store.learn(|f| f.length_required = Some(411)));
        let again = HostFactsStore::open(Some(dir.path().into()), "r.example:5000");
        assert_eq!(again.get().length_required, Some(411));
        let other = HostFactsStore::open(Some(dir.path().into()), "other.example");
        assert_eq!(other.get(), HostFacts::default());
        std::fs::write(dir.path().join("bad.json"), b"{not json").unwrap();
        assert_eq!(
            HostFactsStore::open(Some(dir.path().into()), "bad").get(),
            HostFacts::default()
        );
        assert!(HostFactsStore::open(Some(dir.path().into()), "../x")
            .file
            .is_none());
    }
}
