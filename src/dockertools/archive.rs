//! Image archives in the store: what `dockerTools.buildImage` (a `.tar.gz`, `.tar.zst` or
//! `.tar`), `pullImage` (a plain `.tar` skopeo wrote) and a built `buildLayeredImage`
//! (`./result`) are. Recognised by content, never by name: a tar, plain, gzip- or
//! zstd-compressed, whose `manifest.json` names a config and layers (`docker save`'s format).
//!
//! This is the one place nixpush reads a tarball, because Nix already built it. The archive is
//! never unpacked: it is read once for its index (`manifest.json` and the config, which
//! `docker save` and skopeo write last; a plain tar by seeking from header to header), and once
//! per layer, streaming that layer's member into the compressor. Nothing is written to disk;
//! what is held in memory is bounded (the small JSON documents at the archive's root).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::layer::{
    link_target, read_member, scan_archive, ArchiveCompression, ArchiveFile, StoreSource,
};

/// Most bytes of `manifest.json` or of an image config read: both are small documents.
const MAX_DOCUMENT: u64 = 16 * 1024 * 1024;
/// Most bytes of JSON documents kept while looking for the index (an archive that is no image
/// may hold many).
const MAX_DOCUMENTS: u64 = 64 * 1024 * 1024;
/// Most links followed from a name the manifest gives to a member with content.
const MAX_LINKS: usize = 8;

/// A member seen in the index pass.
struct Named {
    name: String,
    size: u64,
    /// Where it points, and whether symbolically, when it is a link.
    link: Option<(String, bool)>,
}

/// What an image archive holds, read from its `manifest.json` and config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveImage {
    /// The archive's store path, and where it is read from.
    pub file: ArchiveFile,
    /// How the archive is compressed (`buildImage`: `.tar.gz` by default, `.tar.zst` or `.tar`).
    pub compression: ArchiveCompression,
    /// The config's bytes, as they are: their sha256 is the image ID `docker load` prints.
    pub config: Vec<u8>,
    /// The layer members, bottom first, with the diff_id the config gives each.
    pub layers: Vec<ArchiveLayer>,
    /// `RepoTags` (`name:tag`), as the archive names the image.
    pub repo_tags: Vec<String>,
    /// The config's `architecture`, `os` and `variant`.
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// The config's `config.Env` (a base image's, merged into an image built on it).
    pub env: Vec<String>,
    /// The config's `created`, as written.
    pub created: Option<String>,
}

impl ArchiveImage {
    /// The tag the archive names its image with (the first of `RepoTags`), if any.
    pub fn tag(&self) -> Option<&str> {
        self.name_tag().map(|(_, tag)| tag)
    }

    /// The name the archive gives its image (the first of `RepoTags`, without the tag).
    pub fn name(&self) -> Option<&str> {
        self.name_tag().map(|(name, _)| name)
    }

    fn name_tag(&self) -> Option<(&str, &str)> {
        self.repo_tags
            .first()
            .and_then(|rt| rt.rsplit_once(':'))
            .filter(|(name, tag)| !tag.contains('/') && !name.is_empty() && !tag.is_empty())
    }
}

/// One layer of an archive: its member and its diff_id.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchiveLayer {
    /// The member's name in the archive (`<hex>/layer.tar`, `<hex>.tar`).
    pub member: String,
    pub diff_id: Digest,
    /// The member's size in the archive (compressed, when the member is).
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read the image archive {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the image archive {} has a member named {member:?}: absolute names and `..` are refused", path.display())]
    UnsafeName { path: PathBuf, member: String },
    #[error("the image archive {}: {what}", path.display())]
    Malformed { path: PathBuf, what: String },
}

/// How the file is compressed, if it is one and starts like a tar (a ustar header) once
/// decompressed. Reads no more than that header needs.
fn looks_like_tar(file: &ArchiveFile) -> io::Result<Option<ArchiveCompression>> {
    let Some(bytes) = file.open_if_file()? else {
        return Ok(None);
    };
    let (compression, bytes) = ArchiveCompression::sniffed(bytes)?;
    let mut header = [0u8; 512];
    // A compressed stream that is not valid (or too short) is simply not an archive.
    let read = compression
        .decoder(bytes)
        .and_then(|mut r| read_full(&mut r, &mut header));
    match read {
        Ok(512) if &header[257..262] == b"ustar" => Ok(Some(compression)),
        _ => Ok(None),
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A member name as written, checked: relative, without `..`, `./` prefix dropped.
fn member_name(path: &Path, raw: &[u8]) -> Result<String, ArchiveError> {
    let name = String::from_utf8_lossy(raw).into_owned();
    let unsafe_name = name.starts_with('/') || name.split('/').any(|c| c == "..");
    if unsafe_name {
        return Err(ArchiveError::UnsafeName {
            path: path.to_owned(),
            member: name,
        });
    }
    Ok(name.trim_start_matches("./").to_owned())
}

/// Reads `file` if it is an image archive; `None` for anything else (a plain package). A tar
/// that names its image wrongly, or whose members could escape, is an error. The whole archive
/// is read (from a NAR, its hash is checked before anything is taken from it).
pub fn read_archive(file: &ArchiveFile) -> Result<Option<ArchiveImage>, ArchiveError> {
    let path = file.path.as_path();
    let read_err = |source| ArchiveError::Read {
        path: path.to_owned(),
        source,
    };
    let Some(compression) = looks_like_tar(file).map_err(read_err)? else {
        return Ok(None);
    };
    // Every member's name (names are only keys here, never paths on disk), and the small JSON
    // documents at the archive's root kept as they pass: the config is not known until
    // manifest.json, usually last, names it.
    let mut names: Vec<Named> = Vec::new();
    let mut documents: Vec<(String, Vec<u8>)> = Vec::new();
    let mut kept = 0;
    scan_archive(file, compression, |m| -> io::Result<Option<()>> {
        let name = String::from_utf8_lossy(m.name)
            .trim_start_matches("./")
            .to_owned();
        let root_json = name.ends_with(".json") && !name.contains('/');
        if root_json && m.size <= MAX_DOCUMENT && kept + m.size <= MAX_DOCUMENTS {
            let mut bytes = Vec::with_capacity(m.size as usize);
            m.content.read_to_end(&mut bytes)?;
            kept += m.size;
            documents.push((name.clone(), bytes));
        }
        names.push(Named {
            name,
            size: m.size,
            link: m
                .link
                .map(|(l, symbolic)| (String::from_utf8_lossy(&l).into_owned(), symbolic)),
        });
        Ok(None)
    })
    .map_err(read_err)?;
    let Some((_, manifest)) = documents.iter().find(|(n, _)| n == "manifest.json") else {
        return Ok(None);
    };
    let malformed = |what: String| ArchiveError::Malformed {
        path: path.to_owned(),
        what,
    };
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(manifest)
        .map_err(|e| malformed(format!("manifest.json is not docker save's manifest: {e}")))?;
    let entry = match entries.as_slice() {
        [one] => one,
        [] => return Err(malformed("manifest.json names no image".into())),
        more => {
            return Err(malformed(format!(
                "it holds {} images; nixpush pushes an archive of one",
                more.len()
            )))
        }
    };
    // A member the manifest names: checked, and found (through links, for its size).
    let find = |wanted: &str| -> Result<(String, u64), ArchiveError> {
        let wanted = member_name(path, wanted.as_bytes())?;
        let mut name = wanted.clone();
        for _ in 0..=MAX_LINKS {
            let found = names.iter().rev().find(|n| n.name == name).ok_or_else(|| {
                malformed(format!("manifest.json names {wanted:?}, which it lacks"))
            })?;
            match &found.link {
                Some((target, symbolic)) => name = link_target(&name, target, *symbolic),
                None => return Ok((wanted, found.size)),
            }
        }
        Err(malformed(format!(
            "{wanted:?} is a link that leads nowhere"
        )))
    };
    let (config_name, _) = find(&entry.config)?;
    let config = match documents.iter().find(|(n, _)| *n == config_name) {
        Some((_, bytes)) => bytes.clone(),
        // Elsewhere (`docker save` of newer Docker: `blobs/sha256/<hex>`): read it now, as it is
        // and never past the bound.
        None => {
            let bytes = read_member(file, compression, &config_name, MAX_DOCUMENT)
                .map_err(read_err)?
                .ok_or_else(|| {
                    malformed(format!("its config {config_name:?} is not a plain file"))
                })?;
            // From a cache, this second read is not the one whose NAR hash was checked: the
            // config must be the blob its name gives the digest of.
            if file.source != StoreSource::Local && !names_its_digest(&config_name, &bytes) {
                return Err(malformed(format!(
                    "its config {config_name:?} is not named by its digest"
                )));
            }
            bytes
        }
    };
    let summary = ConfigSummary::parse(&config)
        .map_err(|e| malformed(format!("its config {config_name:?}: {e}")))?;
    if summary.diff_ids.len() != entry.layers.len() {
        return Err(malformed(format!(
            "its config lists {} diff_ids for {} layers",
            summary.diff_ids.len(),
            entry.layers.len()
        )));
    }
    let layers = entry
        .layers
        .iter()
        .zip(summary.diff_ids.iter().cloned())
        .map(|(member, diff_id)| {
            let (member, size) = find(member)?;
            Ok(ArchiveLayer {
                member,
                diff_id,
                size,
            })
        })
        .collect::<Result<Vec<_>, ArchiveError>>()?;
    let repo_tags = entry.repo_tags.clone().unwrap_or_default();
    Ok(Some(ArchiveImage::new(
        file.clone(),
        compression,
        config,
        layers,
        repo_tags,
        summary,
    )))
}

/// Whether `name` (`blobs/sha256/<hex>`, `<hex>.json`) names the sha256 of `bytes`.
fn names_its_digest(name: &str, bytes: &[u8]) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    let hex = last.strip_suffix(".json").unwrap_or(last);
    hex == Digest::of(bytes).hex()
}

impl ArchiveImage {
    fn new(
        file: ArchiveFile,
        compression: ArchiveCompression,
        config: Vec<u8>,
        layers: Vec<ArchiveLayer>,
        repo_tags: Vec<String>,
        summary: ConfigSummary,
    ) -> Self {
        ArchiveImage {
            file,
            compression,
            config,
            layers,
            repo_tags,
            architecture: summary.architecture,
            os: summary.os,
            variant: summary.variant,
            env: summary.env,
            created: summary.created,
        }
    }

    /// What is kept of the archive once read (its index): enough to plan its image again
    /// without reading it. `None` for a config that is not UTF-8 (kept as JSON text).
    pub fn index(&self) -> Option<Vec<u8>> {
        let index = ArchiveIndex {
            compression: self.compression,
            config: String::from_utf8(self.config.clone()).ok()?,
            layers: self.layers.clone(),
            repo_tags: self.repo_tags.clone(),
        };
        serde_json::to_vec(&index).ok()
    }

    /// The image of `file` from its index as [`ArchiveImage::index`] wrote it; `None` for an
    /// index that does not read or does not agree with its config.
    pub fn from_index(file: ArchiveFile, index: &[u8]) -> Option<Self> {
        let index: ArchiveIndex = serde_json::from_slice(index).ok()?;
        let config = index.config.into_bytes();
        let summary = ConfigSummary::parse(&config).ok()?;
        let agrees = summary.diff_ids.len() == index.layers.len()
            && summary
                .diff_ids
                .iter()
                .zip(&index.layers)
                .all(|(d, l)| *d == l.diff_id);
        agrees.then(|| {
            ArchiveImage::new(
                file,
                index.compression,
                config,
                index.layers,
                index.repo_tags,
                summary,
            )
        })
    }
}

/// An archive's index, as the layer cache keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct ArchiveIndex {
    compression: ArchiveCompression,
    config: String,
    layers: Vec<ArchiveLayer>,
    repo_tags: Vec<String>,
}

/// What nixpush needs of an image config: the platform, the layers' diff_ids, the `Env`.
struct ConfigSummary {
    architecture: String,
    os: String,
    variant: Option<String>,
    diff_ids: Vec<Digest>,
    env: Vec<String>,
    created: Option<String>,
}

impl ConfigSummary {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Config {
            architecture: Option<String>,
            os: Option<String>,
            variant: Option<String>,
            created: Option<String>,
            rootfs: RootFs,
            #[serde(default)]
            config: Option<Run>,
        }
        #[derive(serde::Deserialize)]
        struct RootFs {
            diff_ids: Vec<Digest>,
        }
        #[derive(serde::Deserialize)]
        struct Run {
            #[serde(rename = "Env", default)]
            env: Option<Vec<String>>,
        }
        let c: Config = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(ConfigSummary {
            architecture: c.architecture.ok_or("it names no architecture")?.to_owned(),
            os: c.os.unwrap_or_else(|| "linux".to_owned()),
            variant: c.variant.filter(|v| !v.is_empty()),
            diff_ids: c.rootfs.diff_ids,
            env: c.config.and_then(|r| r.env).unwrap_or_default(),
            created: c.created,
        })
    }
}
