//! The local layer cache: layer key -> {digest, diff_id, size, media type}, and the repositories
//! the blob was last pushed to or found in (`registry/repository`: where it may be mounted from),
//! one small JSON file per key under `$XDG_CACHE_HOME/nixpush/layers/v1/` (or
//! `$NIXPUSH_CACHE_DIR`).
//!
//! One file per key, written to a temporary file and renamed into place, makes the cache safe when
//! several runs share it: a reader sees a whole entry or none, and two writers of the same key
//! write the same content. An unreadable or malformed entry is a miss, never an error: the worst a
//! bad cache can do is cost a rebuild, because every hit is confirmed by a HEAD before use.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::layer::{LayerDigests, LayerKey};

/// A layer's blob as it is known without reading the store: what the cache stores, and what
/// a manifest names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownBlob {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
    /// What the blob's descriptor says of it (a zstd:chunked table of contents' place).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl KnownBlob {
    /// The blob a layer was built into, compressed as `media_type` says.
    pub fn new(digests: &LayerDigests, media_type: &str) -> Self {
        KnownBlob {
            digest: digests.digest.clone(),
            diff_id: digests.diff_id.clone(),
            size: digests.size,
            media_type: media_type.to_owned(),
            annotations: digests.annotations.clone(),
        }
    }

    /// The digests a layer built into this blob has.
    pub fn digests(&self) -> LayerDigests {
        LayerDigests {
            diff_id: self.diff_id.clone(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: self.annotations.clone(),
        }
    }
}

/// Most repositories remembered per layer, most recent first.
const MAX_SEEN: usize = 8;

/// One file's content: the layer's blob and where it was seen. `seen` came later: entries
/// without it still read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The layer key the entry is for: an entry found under another key's name (a file copied
    /// over another) is ignored. Entries written before it was recorded are ignored too.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(flatten)]
    pub layer: KnownBlob,
    /// `registry/repository`s the blob was last seen in, most recent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<String>,
}

/// A cache directory, or none (`--no-cache`, or no home directory to put it in).
#[derive(Clone, Debug, Default)]
pub struct LayerCache {
    dir: Option<PathBuf>,
    /// Where what each registry host refused is kept (`registry::HostFacts`), beside the layers.
    hosts: Option<PathBuf>,
    /// Where the indexes of image archives read from binary caches are kept, beside the layers.
    archives: Option<PathBuf>,
}

impl LayerCache {
    /// The cache in its usual place.
    pub fn open_default() -> Self {
        let root = std::env::var_os("NIXPUSH_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("nixpush"))
            })
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/nixpush")));
        LayerCache {
            dir: root.as_ref().map(|r| r.join("layers/v1")),
            hosts: root.as_ref().map(|r| r.join("hosts/v1")),
            archives: root.map(|r| r.join("archives/v1")),
        }
    }

    pub fn at(dir: PathBuf) -> Self {
        LayerCache {
            dir: Some(dir),
            hosts: None,
            archives: None,
        }
    }

    pub fn disabled() -> Self {
        LayerCache::default()
    }

    /// The directory of what registry hosts were seen to refuse, if the cache is on.
    pub fn hosts_dir(&self) -> Option<PathBuf> {
        self.hosts.clone()
    }

    /// The index kept for the image archive `store_path` of NAR hash `nar_hash`, if any.
    pub fn archive_index(&self, store_path: &Path, nar_hash: &str) -> Option<Vec<u8>> {
        std::fs::read(self.archive_index_path(store_path, nar_hash)?).ok()
    }

    /// Keeps `index` for the image archive `store_path` of NAR hash `nar_hash`.
    pub fn put_archive_index(
        &self,
        store_path: &Path,
        nar_hash: &str,
        index: &[u8],
    ) -> std::io::Result<()> {
        let (Some(dir), Some(path)) = (
            &self.archives,
            self.archive_index_path(store_path, nar_hash),
        ) else {
            return Ok(());
        };
        write_whole(dir, &path, index)
    }

    /// Named by the archive's store path and NAR hash, which decide its bytes.
    fn archive_index_path(&self, store_path: &Path, nar_hash: &str) -> Option<PathBuf> {
        let named = format!("archive {}\nnar {nar_hash}\n", store_path.display());
        let key = crate::digest::Digest::of(named.as_bytes());
        Some(self.archives.as_ref()?.join(format!("{}.json", key.hex())))
    }

    fn entry_path(&self, key: &LayerKey) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.json")))
    }

    /// The whole entry of `key`: its blob and where it was seen, in one read. An entry that
    /// does not name `key` as its own is no entry of it.
    pub fn entry(&self, key: &LayerKey) -> Option<CacheEntry> {
        let text = std::fs::read(self.entry_path(key)?).ok()?;
        serde_json::from_slice::<CacheEntry>(&text)
            .ok()
            .filter(|e| e.key.as_deref() == Some(key.as_str()))
    }

    pub fn get(&self, key: &LayerKey) -> Option<KnownBlob> {
        self.entry(key).map(|e| e.layer)
    }

    /// Records `layer` under `key`.
    pub fn put(&self, key: &LayerKey, layer: &KnownBlob) -> std::io::Result<()> {
        self.put_seen(key, layer, None)
    }

    /// Records `layer` under `key`, seen in `place` (`registry/repository`) if given. Two runs
    /// recording at once may lose one's `place`: a missed mount, never a wrong entry.
    pub fn put_seen(
        &self,
        key: &LayerKey,
        layer: &KnownBlob,
        place: Option<&str>,
    ) -> std::io::Result<()> {
        let (Some(dir), Some(path)) = (&self.dir, self.entry_path(key)) else {
            return Ok(());
        };
        let mut seen: Vec<String> = place.map(str::to_owned).into_iter().collect();
        if let Some(old) = self.entry(key).filter(|e| e.layer.digest == layer.digest) {
            seen.extend(old.seen.into_iter().filter(|p| Some(p.as_str()) != place));
        }
        seen.truncate(MAX_SEEN);
        let entry = CacheEntry {
            key: Some(key.to_string()),
            layer: layer.clone(),
            seen,
        };
        write_whole(
            dir,
            &path,
            &serde_json::to_vec(&entry).expect("cache entries serialise"),
        )
    }
}

/// Writes `bytes` to `path` in `dir` through a temporary file renamed into place: a reader sees
/// the whole file or none.
fn write_whole(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_copied_over_another_keys_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::at(dir.path().join("layers"));
        let (a, b) = (
            LayerKey::parse(&"a".repeat(64)).unwrap(),
            LayerKey::parse(&"b".repeat(64)).unwrap(),
        );
        let blob = |s: &[u8]| KnownBlob {
            digest: Digest::of(s),
            diff_id: Digest::of(s),
            size: 1,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            annotations: Default::default(),
        };
        cache.put(&a, &blob(b"a")).unwrap();
        cache.put(&b, &blob(b"b")).unwrap();
        assert_eq!(cache.get(&b), Some(blob(b"b")));
        let path = |k: &LayerKey| dir.path().join("layers").join(format!("{k}.json"));
        std::fs::copy(path(&a), path(&b)).unwrap();
        assert_eq!(cache.get(&b), None, "a's entry is not b's");
        assert_eq!(cache.get(&a), Some(blob(b"a")));
        // An entry written before entries named their key is not trusted either.
        std::fs::write(
            path(&a),
            br#"{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","diff_id":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"media_type":"x"}"#,
        )
        .unwrap();
        assert_eq!(cache.get(&a), None);
    }

    #[test]
    fn concurrent_writers_and_readers_of_one_key_never_see_a_partial_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::at(dir.path().join("layers"));
        let key = LayerKey::parse(&"b".repeat(64)).unwrap();
        let entry = KnownBlob {
            digest: Digest::of(b"blob"),
            diff_id: Digest::of(b"tar"),
            size: 123_456,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            annotations: Default::default(),
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        cache.put(&key, &entry).unwrap();
                    }
                });
                s.spawn(|| {
                    for _ in 0..200 {
                        // A miss (not written yet) or the whole entry; never anything else.
                        if let Some(got) = cache.get(&key) {
                            assert_eq!(got, entry);
                        }
                    }
                });
            }
        });
        assert_eq!(cache.get(&key), Some(entry));
        // Nothing but the entry is left behind (temporary files are renamed or removed).
        assert_eq!(
            std::fs::read_dir(dir.path().join("layers"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn round_trips_and_treats_damage_as_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::at(dir.path().join("layers"));
        let key = LayerKey::parse(&"a".repeat(64)).unwrap();
        assert_eq!(cache.get(&key), None);
        let entry = KnownBlob {
            digest: Digest::of(b"blob"),
            diff_id: Digest::of(b"tar"),
            size: 4,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            annotations: Default::default(),
        };
        cache.put(&key, &entry).unwrap();
        assert_eq!(cache.get(&key), Some(entry.clone()));
        cache.put(&key, &entry).unwrap();
        assert_eq!(cache.get(&key), Some(entry));
        std::fs::write(
            dir.path().join("layers").join(format!("{key}.json")),
            b"{trunc",
        )
        .unwrap();
        assert_eq!(cache.get(&key), None);
        assert!(LayerCache::disabled()
            .put(
                &key,
                &KnownBlob {
                    digest: Digest::of(b""),
                    diff_id: Digest::of(b""),
                    size: 0,
                    media_type: String::new(),
                    annotations: Default::default(),
                }
            )
            .is_ok());
    }

    #[test]
    fn remembers_where_a_blob_was_seen_most_recent_first() {
        let seen = |cache: &LayerCache, key| cache.entry(key).map(|e| e.seen).unwrap_or_default();
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::at(dir.path().join("layers"));
        let key = LayerKey::parse(&"c".repeat(64)).unwrap();
        let entry = KnownBlob {
            digest: Digest::of(b"blob"),
            diff_id: Digest::of(b"tar"),
            size: 4,
            media_type: "m".into(),
            annotations: Default::default(),
        };
        // Recorded without a place: seen nowhere yet.
        cache.put(&key, &entry).unwrap();
        assert_eq!(cache.get(&key), Some(entry.clone()));
        assert!(seen(&cache, &key).is_empty());
        for place in ["r.io/a", "r.io/b", "r.io/a"] {
            cache.put_seen(&key, &entry, Some(place)).unwrap();
        }
        assert_eq!(seen(&cache, &key), ["r.io/a", "r.io/b"]);
        cache.put(&key, &entry).unwrap();
        assert_eq!(seen(&cache, &key), ["r.io/a", "r.io/b"]);
        for i in 0..20 {
            cache
                .put_seen(&key, &entry, Some(&format!("r.io/n{i}")))
                .unwrap();
        }
        assert_eq!(seen(&cache, &key).len(), MAX_SEEN);
        assert_eq!(seen(&cache, &key)[0], "r.io/n19");
        // Another blob for the key: what was seen of the old one no longer applies.
        let other = KnownBlob {
            digest: Digest::of(b"other"),
            ..entry
        };
        cache.put_seen(&key, &other, Some("r.io/z")).unwrap();
        assert_eq!(seen(&cache, &key), ["r.io/z"]);
    }
}
