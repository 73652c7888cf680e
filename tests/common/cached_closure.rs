//! A closure that only a signed binary cache holds, for the tests of publishing from caches: a
//! fixture app of fixtures/cache built, its closure copied by `nix copy` to a cache signed with a
//! key of its own, deleted from the local store, the cache served over HTTP, and a fresh registry
//! to publish to. A test then states what differs (the copy, the damage done to the cache, the
//! flags) and what it checks. What a push from a cache must equal is here too: the facts of the
//! image the local store gives, and the oracle's diff_ids.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::binary_cache::{
    delete_from_store, BinaryCache, CacheServer, CopyOptions, NarCompression, SigningKey,
};
use super::{fixture, nix_build, nix_closure, oracle_diff_id, Nixpush, Registry, Run};

/// The system the fixtures are built for, as `--system` takes it.
pub const SYSTEM: &str = "x86_64-linux";

/// A fixture app of fixtures/cache, built: its attribute, store path and closure.
pub struct Built {
    pub attr: String,
    pub top: PathBuf,
    pub closure: Vec<PathBuf>,
}

impl Built {
    pub fn attr(attr: &str) -> Built {
        let top = nix_build(&fixture("cache", attr)).remove(0);
        let closure = nix_closure(std::slice::from_ref(&top));
        assert!(closure.len() >= 2, "an app and its busybox: {closure:?}");
        Built {
            attr: attr.to_owned(),
            top,
            closure,
        }
    }

    pub fn top(&self) -> &str {
        self.top.to_str().unwrap()
    }

    /// The other path of the closure (the app's busybox).
    pub fn dependency(&self) -> &Path {
        let deps: Vec<&PathBuf> = self.closure.iter().filter(|p| **p != self.top).collect();
        assert_eq!(deps.len(), 1, "{:?}", self.closure);
        deps[0]
    }

    /// The closure's paths, borrowed.
    pub fn closure_paths(&self) -> Vec<&Path> {
        self.closure.iter().map(PathBuf::as_path).collect()
    }

    /// The diff_id of a layer of each store path of the closure, by the Python tarfile oracle,
    /// read while the paths are still in the store.
    pub fn oracle_diff_ids(&self) -> BTreeMap<String, String> {
        self.closure
            .iter()
            .map(|p| {
                let diff_id = oracle_diff_id(std::slice::from_ref(p), &[]);
                (p.to_str().unwrap().to_owned(), diff_id)
            })
            .collect()
    }

    /// The name of the key this app's cache is signed with.
    pub fn key_name(&self) -> String {
        format!("nixpush-test-{}", self.attr)
    }
}

/// A binary cache and the key that signed it.
pub struct SignedCache {
    pub key: SigningKey,
    pub cache: BinaryCache,
}

impl SignedCache {
    /// `paths` and their closure, as a plain `nix copy` writes them (xz, no listings), signed by
    /// a fresh key named `key_name`. They stay in the local store.
    pub fn copy(paths: &[PathBuf], key_name: &str) -> SignedCache {
        SignedCache::copy_with(paths, key_name, NarCompression::Xz, false)
    }

    /// The same, in `compression`, with `.ls` listings if `listings`.
    pub fn copy_with(
        paths: &[PathBuf],
        key_name: &str,
        compression: NarCompression,
        listings: bool,
    ) -> SignedCache {
        let key = SigningKey::generate(key_name);
        let cache = BinaryCache::new();
        cache.copy(
            paths,
            &CopyOptions {
                key: Some(&key),
                compression,
                listings,
            },
        );
        SignedCache { key, cache }
    }
}

/// A cache served over HTTP (its access log says what was read), and a fresh registry to
/// publish to from it.
pub struct FromCache {
    pub key: SigningKey,
    pub cache: BinaryCache,
    pub server: CacheServer,
    pub registry: Registry,
}

impl FromCache {
    /// `app`'s closure as a plain `nix copy` writes it, signed by a key of its own (named after
    /// the attribute), deleted from the local store; the cache served; a registry started.
    pub fn only_there(app: &Built) -> FromCache {
        let signed = SignedCache::copy(&app.closure, &app.key_name());
        delete_from_store(&app.closure);
        FromCache::serve(signed)
    }

    /// Serves a cache already written (what it holds is left in the local store or not, as the
    /// test made it), and starts a registry.
    pub fn serve(signed: SignedCache) -> FromCache {
        FromCache::serve_with(signed, &[])
    }

    /// The same, the server breaking the first download of each NAR as `fault` says.
    pub fn serve_with(signed: SignedCache, fault: &[&str]) -> FromCache {
        let server = CacheServer::serve_with(signed.cache.dir(), fault);
        FromCache {
            key: signed.key,
            cache: signed.cache,
            server,
            registry: Registry::start(),
        }
    }

    /// `REGISTRY/repo_tag` (`cache/app:v1`).
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.registry.host())
    }

    /// nixpush's arguments to push `path` as `repo_tag` from this cache, trusting its key.
    pub fn args(&self, path: &str, repo_tag: &str, extra: &[&str]) -> Vec<String> {
        from_cache(
            path,
            &self.image(repo_tag),
            &[&self.server.url()],
            &[&self.key.public],
            extra,
        )
    }

    /// Pushes `path` as `repo_tag` from this cache (with `extra`): the `--json` document.
    pub fn push(&self, path: &str, repo_tag: &str, extra: &[&str]) -> serde_json::Value {
        push_json(&Nixpush::new(), &self.args(path, repo_tag, extra))
    }

    /// Pushes `path` as `repo_tag` from this cache (with `extra`), expecting a refusal: exit
    /// code 1, one line mentioning each of `needles`, nothing tagged.
    pub fn push_refused(
        &self,
        path: &str,
        repo_tag: &str,
        extra: &[&str],
        needles: &[&str],
    ) -> Run {
        self.run_refused(repo_tag, &self.args(path, repo_tag, extra), needles)
    }

    /// The same with arguments of the test's own making, pushing to `repo_tag`.
    pub fn run_refused(&self, repo_tag: &str, args: &[String], needles: &[&str]) -> Run {
        let run = push_failing(args);
        super::assert_refused(&run, 1, needles);
        self.assert_untagged(repo_tag);
        run
    }

    /// The registry has no manifest under `repo_tag`.
    pub fn assert_untagged(&self, repo_tag: &str) {
        let (repo, tag) = repo_tag.rsplit_once(':').unwrap();
        assert_eq!(
            self.registry.manifest_status(repo, tag, None),
            404,
            "{repo_tag}"
        );
    }

    /// The NAR files downloaded so far, as a set.
    pub fn downloaded(&self) -> BTreeSet<String> {
        self.server.nar_downloads().into_iter().collect()
    }

    /// The NAR request paths this cache serves for `paths`.
    pub fn nar_paths(&self, paths: &[&Path]) -> BTreeSet<String> {
        nar_paths(&self.cache, paths)
    }
}

/// nixpush's arguments to push `path` to `image` from the caches at `urls` (in that order),
/// trusting `keys`, for x86_64-linux, with the `--json` document on stdout; then `extra`.
pub fn from_cache(
    path: &str,
    image: &str,
    urls: &[&str],
    keys: &[&str],
    extra: &[&str],
) -> Vec<String> {
    let mut args = vec![path.to_owned(), image.to_owned()];
    for url in urls {
        args.extend(["--substituter".to_owned(), (*url).to_owned()]);
    }
    for key in keys {
        args.extend(["--trusted-public-key".to_owned(), (*key).to_owned()]);
    }
    args.extend(["--system", SYSTEM, "--json"].map(str::to_owned));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// `app` pushed from the local store (with `extra`) to a fresh registry as `cache/app:v1`: the
/// registry (kept running), the image, and the `--json` document a push from a cache must
/// equal.
pub fn push_from_the_local_store(
    app: &Built,
    extra: &[&str],
) -> (Registry, String, serde_json::Value) {
    let registry = Registry::start();
    let image = format!("{}/cache/app:v1", registry.host());
    let mut args = vec![app.top(), image.as_str()];
    args.extend(extra);
    args.push("--json");
    let json = push_json(
        &Nixpush::new(),
        &args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
    );
    (registry, image, json)
}

/// Runs nixpush with `args` and returns its `--json` document, failing the test if it fails.
pub fn push_json(nixpush: &Nixpush, args: &[String]) -> serde_json::Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = nixpush.run(&args);
    serde_json::from_str(run.assert_ok()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// Runs nixpush with `args`, expecting it to fail.
pub fn push_failing(args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Nixpush::new().run(&args)
}

/// What two pushes of the same image must agree on: the manifest and config digests, the
/// platform, and each layer's blob digest, size, diff_id and store paths, in order.
pub fn image_facts(json: &serde_json::Value) -> serde_json::Value {
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{json}");
    let image = &images[0];
    let layers: Vec<serde_json::Value> = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            serde_json::json!({
                "digest": l["digest"],
                "size": l["size"],
                "diffId": l["diffId"],
                "storePaths": l["storePaths"],
            })
        })
        .collect();
    serde_json::json!({
        "manifestDigest": image["manifestDigest"],
        "configDigest": image["configDigest"],
        "platform": image["platform"],
        "layers": layers,
    })
}

/// Each store path's layer has the oracle's diff_id, and the layers hold the whole closure.
pub fn assert_layers_are_the_oracles(json: &serde_json::Value, oracle: &BTreeMap<String, String>) {
    let mut seen = BTreeSet::new();
    for layer in json["images"][0]["layers"].as_array().unwrap() {
        let paths: Vec<&str> = layer["storePaths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        if let [path] = paths[..] {
            assert_eq!(layer["diffId"], oracle[path], "layer of {path}");
        }
        seen.extend(paths);
    }
    let closure: BTreeSet<&str> = oracle.keys().map(String::as_str).collect();
    assert_eq!(seen, closure);
}

/// The error line names one of `paths`.
pub fn assert_names_one_of(run: &Run, paths: &[PathBuf]) {
    let line = run.error_line();
    assert!(
        paths.iter().any(|p| line.contains(p.to_str().unwrap())),
        "{line:?} should name one of {paths:?}"
    );
}

/// The NAR request paths `cache` serves for `paths`.
pub fn nar_paths(cache: &BinaryCache, paths: &[&Path]) -> BTreeSet<String> {
    paths.iter().map(|p| cache.nar_request_path(p)).collect()
}

/// The NAR files `server` sent so far, as a set.
pub fn downloaded(server: &CacheServer) -> BTreeSet<String> {
    server.nar_downloads().into_iter().collect()
}

/// Every blob request the registry has had, of any method.
pub fn blob_requests(registry: &Registry) -> usize {
    ["HEAD", "GET", "POST", "PATCH", "PUT", "DELETE"]
        .iter()
        .map(|m| registry.requests(m, "/blobs/"))
        .sum()
}
