//! A Nix binary cache for the tests of publishing from one, made and served by real tools: signing
//! keys from `nix key`, a cache directory written by Nix itself (`nix copy --to file://DIR`:
//! narinfos, NARs in each compression, `.ls` listings), served over HTTP by Python's
//! `http.server` with its access log, and a closure deleted from the local store so that only the
//! cache holds it. Tests then break the cache the ways a real one breaks (a signature, a NAR's
//! bytes, a missing narinfo) with the small editors here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{nix_env, repo_root, require, run_ok, spawn_listening};

/// A signing key pair as Nix writes them (`NAME:BASE64`).
pub struct SigningKey {
    pub name: String,
    /// The public key, as `trusted-public-keys` takes it.
    pub public: String,
    secret_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl SigningKey {
    /// `nix key generate-secret --key-name NAME`, and its public half.
    pub fn generate(name: &str) -> SigningKey {
        require("nix");
        let dir = tempfile::tempdir().unwrap();
        let secret = run_ok(
            nix_env(Command::new("nix").args(["key", "generate-secret", "--key-name", name])),
            "nix key generate-secret",
        );
        let secret_file = dir.path().join("secret-key");
        std::fs::write(&secret_file, &secret.stdout).unwrap();
        let public = run_ok(
            nix_env(Command::new("nix").args(["key", "convert-secret-to-public"]))
                .stdin(std::fs::File::open(&secret_file).unwrap()),
            "nix key convert-secret-to-public",
        );
        let public = String::from_utf8(public.stdout).unwrap().trim().to_owned();
        assert!(public.starts_with(&format!("{name}:")), "{public}");
        SigningKey {
            name: name.to_owned(),
            public,
            secret_file,
            _dir: dir,
        }
    }
}

/// The NAR compressions `nix copy` writes to a file cache that nixpush reads (Nix 2.8 also
/// takes `br`, `lzip` and `lz4`).
#[derive(Clone, Copy, Debug)]
pub enum NarCompression {
    Xz,
    Zstd,
    Bzip2,
    /// Written under a plain `.nar` name: only the narinfo's `Compression` says it is gzip.
    Gzip,
    None,
}

impl NarCompression {
    pub const ALL: [NarCompression; 5] = [
        NarCompression::Xz,
        NarCompression::Zstd,
        NarCompression::Bzip2,
        NarCompression::Gzip,
        NarCompression::None,
    ];

    /// The name in the store URL and in the narinfo's `Compression` field.
    pub fn name(self) -> &'static str {
        match self {
            NarCompression::Xz => "xz",
            NarCompression::Zstd => "zstd",
            NarCompression::Bzip2 => "bzip2",
            NarCompression::Gzip => "gzip",
            NarCompression::None => "none",
        }
    }

    /// How Nix ends the NAR file's name in the narinfo's `URL`.
    pub fn extension(self) -> &'static str {
        match self {
            NarCompression::Xz => ".nar.xz",
            NarCompression::Zstd => ".nar.zst",
            NarCompression::Bzip2 => ".nar.bz2",
            NarCompression::Gzip => ".nar",
            NarCompression::None => ".nar",
        }
    }
}

/// How `nix copy` writes paths into a cache.
pub struct CopyOptions<'a> {
    /// Sign each narinfo with this key; `None` leaves them unsigned.
    pub key: Option<&'a SigningKey>,
    pub compression: NarCompression,
    /// `write-nar-listing=true`: a `HASH.ls` listing of each NAR's files beside its narinfo.
    pub listings: bool,
}

impl CopyOptions<'_> {
    /// Signed with `key`, xz (Nix's default), no listings: what a plain `nix copy` makes.
    pub fn signed(key: &SigningKey) -> CopyOptions<'_> {
        CopyOptions {
            key: Some(key),
            compression: NarCompression::Xz,
            listings: false,
        }
    }
}

/// A binary cache directory (`nix-cache-info`, `HASH.narinfo`, `nar/`), removed when dropped.
pub struct BinaryCache {
    dir: tempfile::TempDir,
}

impl BinaryCache {
    /// An empty cache; `copy` fills it.
    pub fn new() -> BinaryCache {
        BinaryCache {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `nix copy --to file://DIR?...` of `paths` and their closure, from the local store.
    pub fn copy(&self, paths: &[PathBuf], options: &CopyOptions) -> &BinaryCache {
        let mut url = format!(
            "file://{}?compression={}&write-nar-listing={}",
            self.dir.path().display(),
            options.compression.name(),
            options.listings
        );
        if let Some(key) = options.key {
            url.push_str(&format!("&secret-key={}", key.secret_file.display()));
        }
        run_ok(
            nix_env(Command::new("nix").args(["copy", "--to", &url]).args(paths)),
            "nix copy",
        );
        for path in paths {
            assert!(self.narinfo_file(path).is_file(), "{}", path.display());
        }
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cache as a `file://` substituter.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// `HASH.narinfo` of a store path.
    pub fn narinfo_file(&self, store_path: &Path) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.narinfo", hash_part(store_path)))
    }

    /// One field of a store path's narinfo.
    pub fn field(&self, store_path: &Path, name: &str) -> String {
        let text = std::fs::read_to_string(self.narinfo_file(store_path)).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in the narinfo of {}", store_path.display()))
            .to_owned()
    }

    /// Replaces one field of a store path's narinfo.
    pub fn set_field(&self, store_path: &Path, name: &str, value: &str) {
        let file = self.narinfo_file(store_path);
        let text = std::fs::read_to_string(&file).unwrap();
        let prefix = format!("{name}: ");
        assert!(text.lines().any(|l| l.starts_with(&prefix)), "{text}");
        let edited: String = text
            .lines()
            .map(|l| {
                if l.starts_with(&prefix) {
                    format!("{prefix}{value}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(file, edited).unwrap();
    }

    /// The path the HTTP server logs for a store path's NAR (`/nar/HASH.nar.xz`).
    pub fn nar_request_path(&self, store_path: &Path) -> String {
        format!("/{}", self.field(store_path, "URL"))
    }

    /// The NAR file of a store path.
    pub fn nar_file(&self, store_path: &Path) -> PathBuf {
        self.dir.path().join(self.field(store_path, "URL"))
    }

    /// Deletes a store path's narinfo: the cache no longer has the path.
    pub fn remove_narinfo(&self, store_path: &Path) {
        std::fs::remove_file(self.narinfo_file(store_path)).unwrap();
    }

    /// Flips one bit of the signature in a store path's narinfo (still valid base64, still the
    /// same key name, no longer the key's signature of that narinfo).
    pub fn corrupt_signature(&self, store_path: &Path) {
        use base64::Engine as _;
        let sig = self.field(store_path, "Sig");
        let (name, b64) = sig.split_once(':').unwrap();
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(bytes.len(), 64, "an ed25519 signature: {sig}");
        bytes[10] ^= 0x01;
        let forged = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.set_field(store_path, "Sig", &format!("{name}:{forged}"));
    }

    /// Rewrites the one occurrence of `from` in a store path's uncompressed NAR (the cache must
    /// have been written with `compression=none`) with `to`, of the same length: the NAR still
    /// parses, but its bytes are no longer those its `NarHash` names. With `update_file_hash`
    /// the narinfo's `FileHash` is made to match the new file (it is not signed), so only the
    /// NAR hash tells; otherwise both disagree with the file.
    pub fn tamper_nar(&self, store_path: &Path, from: &[u8], to: &[u8], update_file_hash: bool) {
        assert_eq!(from.len(), to.len(), "the NAR keeps its length");
        assert_eq!(self.field(store_path, "Compression"), "none");
        let file = self.nar_file(store_path);
        let mut nar = std::fs::read(&file).unwrap();
        let at: Vec<usize> = nar
            .windows(from.len())
            .enumerate()
            .filter(|(_, w)| *w == from)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 1, "{from:?} once in {}", file.display());
        nar[at[0]..at[0] + to.len()].copy_from_slice(to);
        std::fs::write(&file, &nar).unwrap();
        let file_hash = format!("sha256:{}", nix_hash_flat(&file));
        assert_ne!(
            file_hash,
            self.field(store_path, "NarHash"),
            "the tampered NAR has another hash"
        );
        if update_file_hash {
            self.set_field(store_path, "FileHash", &file_hash);
        }
    }
}

/// The base-32 SHA-256 of a file's bytes, as Nix writes hashes in narinfos.
pub fn nix_hash_flat(file: &Path) -> String {
    let out = run_ok(
        nix_env(Command::new("nix-hash").args(["--type", "sha256", "--flat", "--base32"]))
            .arg(file),
        "nix-hash",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The 32-character hash part of a store path (`/nix/store/HASH-name`).
pub fn hash_part(store_path: &Path) -> String {
    let name = store_path.file_name().unwrap().to_str().unwrap();
    name.split('-').next().unwrap().to_owned()
}

/// A directory served over HTTP by `tests/cache_server.py` (Python's `http.server`, HTTP/1.1,
/// one thread per connection, a real listen backlog) on a free loopback port, writing its access
/// log to a file; stopped when dropped.
pub struct CacheServer {
    child: Child,
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl CacheServer {
    pub fn serve(dir: &Path) -> CacheServer {
        CacheServer::serve_with(dir, &[])
    }

    /// The same, breaking the first download of each NAR as `fault` says (`--fault cut
    /// --after N`, see tests/cache_server.py).
    pub fn serve_with(dir: &Path, fault: &[&str]) -> CacheServer {
        require("python3");
        let log = tempfile::NamedTempFile::new().unwrap();
        let (child, port) = spawn_listening(
            Command::new("python3")
                .arg(super::repo_root().join("tests/cache_server.py"))
                .args(fault)
                .arg("0")
                .arg(dir)
                .stdin(Stdio::null())
                .stderr(log.reopen().unwrap()),
            "the binary cache server",
        );
        CacheServer { child, port, log }
    }

    /// The cache as an `http://` substituter.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The same directory served over HTTPS only, with `cert` and its `key` (PEM).
    pub fn serve_tls(dir: &Path, cert: &Path, key: &Path) -> CacheServer {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        CacheServer::serve_with(dir, &["--tls", &cert, &key])
    }

    /// The cache as an `https://` substituter (served with [`CacheServer::serve_tls`]).
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The access log as the server wrote it.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    /// Every request so far, in order: (method, path).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.log()
            .lines()
            .filter_map(|line| {
                // `127.0.0.1 - - [date] "GET /path HTTP/1.1" 200 -`
                let request_line = line.split('"').nth(1)?;
                let mut words = request_line.split(' ');
                Some((words.next()?.to_owned(), words.next()?.to_owned()))
            })
            .collect()
    }

    /// The NAR files downloaded so far (GETs under `/nar/`), in order.
    pub fn nar_downloads(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|(method, path)| method == "GET" && path.starts_with("/nar/"))
            .map(|(_, path)| path)
            .collect()
    }
}

impl Drop for CacheServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deletes `paths` from the local store (`nix-store --delete`, all at once: a closure goes
/// whole, referrers first) and checks they are gone. Nothing may root them: tests build with
/// `--no-link`, and each test deletes only paths of its own fixture attribute.
pub fn delete_from_store(paths: &[PathBuf]) {
    run_ok(
        nix_env(Command::new("nix-store").arg("--delete").args(paths)),
        "nix-store --delete",
    );
    assert_not_in_store(paths);
}

/// Fails the test if any of `paths` is in the local store (on disk, or valid in Nix's database).
pub fn assert_not_in_store(paths: &[PathBuf]) {
    for path in paths {
        assert!(!path.exists(), "{} is on disk", path.display());
        let valid = nix_env(Command::new("nix-store").arg("--check-validity").arg(path))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!valid.success(), "{} is valid in the store", path.display());
    }
}

/// The derivation a store path was built by, as the local store records it.
pub fn deriver(store_path: &Path) -> PathBuf {
    let out = run_ok(
        nix_env(Command::new("nix-store").args(["--query", "--deriver"])).arg(store_path),
        "nix-store --query --deriver",
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A directory for `NIX_CONF_DIR`: the test bed's nix.conf with Nix's own `substituters` and
/// `trusted-public-keys` set to `urls` and `keys`, in their order.
pub fn nix_conf_with_caches(urls: &[&str], keys: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(repo_root().join("fixtures/nix.conf")).unwrap();
    let mut conf: String = base
        .lines()
        .filter(|l| !l.starts_with("substituters") && !l.starts_with("trusted-public-keys"))
        .map(|l| format!("{l}\n"))
        .collect();
    conf.push_str(&format!(
        "substituters = {}\ntrusted-public-keys = {}\n",
        urls.join(" "),
        keys.join(" ")
    ));
    std::fs::write(dir.path().join("nix.conf"), conf).unwrap();
    dir
}
