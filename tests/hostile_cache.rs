//! A binary cache that lies. A narinfo's `URL` is not covered by its signature, and the names in
//! it (`References`) come from the cache: neither may take nixpush, with the cache's password,
//! to another host or above the cache's base path. The cache here is a real one, written by
//! `nix copy --to file://...?secret-key=` under `/cache/` of a directory served over HTTP (with
//! its access log); each trick is written into a narinfo, which is signed again with the cache's
//! key where the signature covers what changed, so only the URL or name check can stop it. A
//! NAR holding an entry name Linux cannot create is refused, naming it.
//!
//! Every test builds and deletes a store path of its own (tests run concurrently).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::binary_cache::{delete_from_store, nix_hash_flat, CacheServer};
use common::*;

/// The cache's password, in its URL: it must never be printed.
const PASSWORD: &str = "cache-pw-7QxR2vLm";

/// The system the paths are built for, as `--system` takes it.
const SYSTEM: &str = "x86_64-linux";

/// A signing key from `nix key generate-secret`, kept to sign narinfos again.
struct Signer {
    name: String,
    secret_file: tempfile::NamedTempFile,
    public: String,
    key: ring::signature::Ed25519KeyPair,
}

impl Signer {
    fn generate(name: &str) -> Signer {
        let out = run_ok(
            nix_env(Command::new("nix").args(["key", "generate-secret", "--key-name", name])),
            "nix key generate-secret",
        );
        let secret = String::from_utf8(out.stdout).unwrap();
        let secret_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret_file.path(), &secret).unwrap();
        let public = run_ok(
            nix_env(Command::new("nix").args(["key", "convert-secret-to-public"]))
                .stdin(std::fs::File::open(secret_file.path()).unwrap()),
            "nix key convert-secret-to-public",
        );
        // Nix's secret key: the ed25519 seed, then the public key.
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret.trim().split_once(':').unwrap().1)
            .unwrap();
        let seed: [u8; 32] = bytes[..32].try_into().unwrap();
        Signer {
            name: name.to_owned(),
            secret_file,
            public: String::from_utf8(public.stdout).unwrap().trim().to_owned(),
            key: ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap(),
        }
    }

    /// `Sig` of a narinfo as Nix computes it: over `1;PATH;NARHASH;NARSIZE;REFS` (references
    /// as full paths, sorted, comma-separated).
    fn sig(&self, narinfo: &str) -> String {
        let field = |name: &str| {
            narinfo
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        let mut refs: Vec<String> = field("References")
            .split(' ')
            .filter(|r| !r.is_empty())
            .map(|r| format!("/nix/store/{r}"))
            .collect();
        refs.sort();
        let fingerprint = format!(
            "1;{};{};{};{}",
            field("StorePath"),
            field("NarHash"),
            field("NarSize"),
            refs.join(",")
        );
        let sig = self.key.sign(fingerprint.as_bytes());
        format!(
            "{}:{}",
            self.name,
            base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
        )
    }
}

/// A directory served over HTTP, holding a binary cache under `/cache/` and, beside it, files
/// a narinfo could try to reach (`/secret/...`).
struct HostileCache {
    root: tempfile::TempDir,
    server: CacheServer,
    signer: Signer,
}

impl HostileCache {
    /// `paths` copied by `nix copy` into `/cache/`, signed, then deleted from the local store.
    fn with(paths: &[PathBuf], key_name: &str) -> HostileCache {
        let root = tempfile::tempdir().unwrap();
        let signer = Signer::generate(key_name);
        let cache = root.path().join("cache");
        let url = format!(
            "file://{}?compression=xz&secret-key={}",
            cache.display(),
            signer.secret_file.path().display()
        );
        run_ok(
            nix_env(Command::new("nix").args(["copy", "--to", &url]).args(paths)),
            "nix copy",
        );
        delete_from_store(paths);
        std::fs::create_dir_all(root.path().join("secret")).unwrap();
        std::fs::write(root.path().join("secret/stolen.narinfo"), "not for nixpush").unwrap();
        let server = CacheServer::serve(root.path());
        HostileCache {
            root,
            server,
            signer,
        }
    }

    /// The substituter URL, with the password.
    fn url(&self) -> String {
        format!(
            "http://reader:{PASSWORD}@127.0.0.1:{}/cache",
            self.server.port
        )
    }

    fn narinfo_file(&self, store_path: &Path) -> PathBuf {
        let name = store_path.file_name().unwrap().to_str().unwrap();
        let hash = name.split('-').next().unwrap();
        self.root.path().join(format!("cache/{hash}.narinfo"))
    }

    fn narinfo(&self, store_path: &Path) -> String {
        std::fs::read_to_string(self.narinfo_file(store_path)).unwrap()
    }

    /// Writes `text` as the narinfo of `store_path`, signed with the cache's key when `sign`.
    fn write_narinfo(&self, store_path: &Path, text: &str, sign: bool) {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !(sign && l.starts_with("Sig:")))
            .map(str::to_owned)
            .collect();
        if sign {
            lines.push(format!("Sig: {}", self.signer.sig(text)));
        }
        std::fs::write(self.narinfo_file(store_path), lines.join("\n") + "\n").unwrap();
    }

    /// Every request the server had, and any outside `/cache/`.
    fn requests_outside(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .map(|(_, path)| path)
            .filter(|p| !p.starts_with("/cache/"))
            .collect()
    }
}

/// `text` with its line `NAME: ...` replaced by `NAME: value`.
fn with_field(text: &str, name: &str, value: &str) -> String {
    let prefix = format!("{name}:");
    assert!(text.lines().any(|l| l.starts_with(&prefix)), "{text}");
    text.lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{name}: {value}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A one-path derivation named `name` (no other test builds it), built: its store path.
fn build_own(name: &str) -> PathBuf {
    let expr = format!(
        r#"derivation {{ name = "{name}"; system = "{SYSTEM}"; builder = "/bin/sh";
             args = ["-c" "/bin/mkdir -p $out/bin; /usr/bin/printf '%s\n' {name} > $out/bin/app"]; }}"#
    );
    let out = run_ok(
        nix_env(Command::new("nix").args(["build", "--no-link", "--json", "--expr", &expr])),
        "nix build --expr",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(json[0]["outputs"]["out"].as_str().unwrap())
}

/// Pushes `path` from `cache` into a fresh OCI layout, trusting its key, with `--verbose`.
fn push(cache: &HostileCache, path: &Path) -> (Run, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}", out.path().join("image").display());
    let run = Nixpush::new().run(&[
        path.to_str().unwrap(),
        &dest,
        "--substituter",
        &cache.url(),
        "--trusted-public-key",
        &cache.signer.public,
        "--system",
        SYSTEM,
        "--verbose",
    ]);
    (run, out)
}

fn assert_no_password(run: &Run) {
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the password was printed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

/// Our re-signing is Nix's signing: the signature Nix wrote is the one computed here (ed25519
/// is deterministic), so a re-signed narinfo fails only on what it says.
fn assert_signs_as_nix(cache: &HostileCache, path: &Path) {
    let text = cache.narinfo(path);
    let nix_sig = text
        .lines()
        .find_map(|l| l.strip_prefix("Sig: "))
        .unwrap()
        .to_owned();
    assert_eq!(cache.signer.sig(&text), nix_sig);
}

#[test]
fn a_narinfo_url_leading_out_of_the_cache_is_refused_before_any_request_leaves_it() {
    let path = build_own("hostile-cache-url");
    let cache = HostileCache::with(std::slice::from_ref(&path), "hostile-url-1");
    assert_signs_as_nix(&cache, &path);
    let original = cache.narinfo(&path);
    let nar = original
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .unwrap()
        .to_owned();
    let file = nar.trim_start_matches("nar/");
    // Another host, which would serve the NAR if asked.
    let other = CacheServer::serve(&cache.root.path().join("cache"));
    let other_host = format!("127.0.0.1:{}", other.port);
    let tricks = [
        format!("\\\\{other_host}\\nar\\{file}"),
        format!("//{other_host}/nar/{file}"),
        format!("http://{other_host}/nar/{file}"),
        format!("nar/%2e%2e/%2e%2e/secret/{file}"),
        format!("nar/%2E%2e/%2e%2E/cache/nar/{file}"),
        format!("nar/.%2e/.%2E/secret/{file}"),
        format!(".\t./secret/{file}"),
        format!("nar/.\t./.\t./secret/{file}"),
        format!("nar/.\r./.\r./secret/{file}"),
        format!("nar\\..\\..\\secret\\{file}"),
        format!("nar/..\\..\\secret\\{file}"),
        format!("../secret/{file}"),
        format!("/secret/{file}"),
        format!("/cache/nar/{file}"),
        format!("nar%2f..%2f..%2fsecret%2f{file}"),
        format!("nar/..%5c..%5csecret%5c{file}"),
    ];
    for trick in &tricks {
        // The URL is not signed: the narinfo keeps its valid signature.
        cache.write_narinfo(&path, &with_field(&original, "URL", trick), false);
        let (run, _out) = push(&cache, &path);
        assert_eq!(run.code, 1, "{trick:?} was taken:\n{}", run.stderr);
        let line = run.error_line();
        assert!(line.starts_with("nixpush: error: "), "{line}");
        assert!(
            line.contains(path.to_str().unwrap()) && line.contains("URL"),
            "{trick:?}: {line}"
        );
        assert!(!line.contains("signature"), "{trick:?}: {line}");
        assert_no_password(&run);
        assert_eq!(cache.requests_outside(), Vec::<String>::new(), "{trick:?}");
        assert_eq!(other.requests(), vec![], "{trick:?} reached the other host");
        assert!(
            !cache
                .server
                .requests()
                .iter()
                .any(|(_, p)| p.contains("/nar/")),
            "{trick:?}: a NAR was asked for"
        );
    }
    // The same cache with the narinfo as Nix wrote it: the push goes through, reading the NAR
    // from inside the cache (what refused the tricks is not something else).
    cache.write_narinfo(&path, &original, false);
    let (run, _out) = push(&cache, &path);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_no_password(&run);
    assert!(cache
        .server
        .requests()
        .iter()
        .any(|(_, p)| *p == format!("/cache/{nar}")));
    assert_eq!(cache.requests_outside(), Vec::<String>::new());
}

#[test]
fn a_reference_that_is_not_a_store_path_name_is_refused_before_it_is_asked_for() {
    let path = build_own("hostile-cache-refs");
    let cache = HostileCache::with(std::slice::from_ref(&path), "hostile-refs-1");
    assert_signs_as_nix(&cache, &path);
    let original = cache.narinfo(&path);
    let refs = original
        .lines()
        .find_map(|l| l.strip_prefix("References:"))
        .unwrap()
        .trim()
        .to_owned();
    let hash = "0123456789abcdfghijklmnpqrsvwxyz";
    let tricks = [
        "x\\..\\..\\..\\secret\\stolen-aaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
        format!("{hash}\\..\\..\\secret\\stolen"),
        format!("..\\secret\\stolen-{hash}"),
        format!("%2e%2e%2fsecret%2fstolen-{hash}"),
        format!("{}-stolen", "e".repeat(32)),
        format!("{hash}-.stolen"),
        format!("{hash}-{}", "n".repeat(212)),
        format!("{hash}-a%2fb"),
    ];
    for trick in &tricks {
        let references = format!("{refs} {trick}");
        // References are signed: signed again, so only the name check can refuse them.
        cache.write_narinfo(
            &path,
            &with_field(&original, "References", references.trim()),
            true,
        );
        let (run, _out) = push(&cache, &path);
        assert_eq!(run.code, 1, "{trick:?} was taken:\n{}", run.stderr);
        let line = run.error_line();
        assert!(
            line.contains("bad narinfo") && line.contains(path.to_str().unwrap()),
            "{trick:?}: {line}"
        );
        assert!(!line.contains("signature"), "{trick:?}: {line}");
        assert_no_password(&run);
        assert_eq!(cache.requests_outside(), Vec::<String>::new(), "{trick:?}");
        let narinfos: Vec<String> = cache
            .server
            .requests()
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| p.ends_with(".narinfo"))
            .collect();
        assert!(
            narinfos
                .iter()
                .all(|p| *p == format!("/cache/{}", cache.narinfo_name(&path))),
            "{trick:?}: {narinfos:?}"
        );
    }
}

impl HostileCache {
    fn narinfo_name(&self, store_path: &Path) -> String {
        self.narinfo_file(store_path)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }
}

/// A NAR token: its length, its bytes, zeros to a multiple of 8.
fn token(nar: &mut Vec<u8>, s: &[u8]) {
    nar.extend_from_slice(&(s.len() as u64).to_le_bytes());
    nar.extend_from_slice(s);
    nar.resize(nar.len().next_multiple_of(8), 0);
}

/// A NAR of a directory holding one file named `name`.
fn nar_with_entry(name: &[u8]) -> Vec<u8> {
    let mut nar = Vec::new();
    for t in [&b"nix-archive-1"[..], b"(", b"type", b"directory"] {
        token(&mut nar, t);
    }
    for t in [&b"entry"[..], b"(", b"name", name, b"node", b"(", b"type"] {
        token(&mut nar, t);
    }
    for t in [&b"regular"[..], b"contents", b"hello\n", b")", b")", b")"] {
        token(&mut nar, t);
    }
    nar
}

#[test]
fn a_nar_entry_name_longer_than_linux_allows_is_refused_naming_it() {
    // A store path no store holds, served with a signed narinfo and a NAR written here: no
    // Linux file system could have given Nix a 256-byte name to archive.
    let root = tempfile::tempdir().unwrap();
    let signer = Signer::generate("hostile-names-1");
    std::fs::create_dir_all(root.path().join("cache/nar")).unwrap();
    let server = CacheServer::serve(root.path());
    let hash = "0123456789abcdfghijklmnpqrsvwxyz";
    for (len, accepted) in [(255, true), (256, false), (4095, false)] {
        // A hash part of its own for each length (still Nix's base-32).
        let path = format!(
            "/nix/store/{:02}{}-long-entry-name-{len}",
            len % 100,
            &hash[2..]
        );
        let nar = nar_with_entry(&vec![b'n'; len]);
        let nar_file = root.path().join(format!("cache/nar/{len}.nar"));
        std::fs::write(&nar_file, &nar).unwrap();
        let narinfo = format!(
            "StorePath: {path}\nURL: nar/{len}.nar\nCompression: none\nNarHash: sha256:{}\nNarSize: {}\nReferences: \n",
            nix_hash_flat(&nar_file),
            nar.len()
        );
        let hash_part = path
            .trim_start_matches("/nix/store/")
            .split('-')
            .next()
            .unwrap();
        std::fs::write(
            root.path().join(format!("cache/{hash_part}.narinfo")),
            format!("{narinfo}Sig: {}\n", signer.sig(&narinfo)),
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let run = Nixpush::new().run(&[
            &path,
            &format!("oci:{}", out.path().join("image").display()),
            "--substituter",
            &format!("http://127.0.0.1:{}/cache", server.port),
            "--trusted-public-key",
            &signer.public,
            "--system",
            SYSTEM,
        ]);
        if accepted {
            assert_eq!(run.code, 0, "{len}: {}", run.stderr);
            continue;
        }
        assert_eq!(run.code, 1, "{len}: {}", run.stderr);
        let line = run.error_line();
        assert!(line.contains(&path), "{line}");
        assert!(
            line.contains(&format!("{len} bytes")) && line.contains("255"),
            "{line}"
        );
        assert!(
            line.contains("nnnnnnnnnnnnnnnnnnnn"),
            "the entry is named: {line}"
        );
        assert!(line.len() < 400, "bounded: {line}");
        // Nothing half-done: no image in the layout.
        let manifests = std::fs::read(out.path().join("image/index.json"))
            .ok()
            .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
            .map_or(0, |index| index["manifests"].as_array().map_or(0, Vec::len));
        assert_eq!(manifests, 0, "{len}");
    }
}
