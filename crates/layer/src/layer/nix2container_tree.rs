//! A nix2container layer's tar: the file tree nix2container makes of a layer's store paths
//! (each path walked, its files moved by the path's `rewrite` regex, their owner and mode set by
//! its `perms`), written in name order as Go's `archive/tar` writes it.
//!
//! nix2container's rules, as its `nix/` package applies them:
//! - every file below each store path is walked (`lstat`, symlinks never followed) and placed in
//!   one tree under its name in the tar: the store path's own name, or the `rewrite` regex's
//!   replacement of it (every match, `$1`/`${name}` expanded); a name rewritten to nothing is
//!   left out (its children are not); a name placed twice must keep its mode (and a regular
//!   file its size) and its perms: the later one is written;
//! - the tree is written depth first, each directory's entries in bytewise name order, names
//!   as the tree holds them (absolute, no trailing `/`); a directory only implied by the names
//!   below it (`/`, `/nix`, `/nix/store`) is written mode 0755, owner root 0/0;
//! - each walked file: mode from `lstat` (a symlink 0777), owner root 0/0, mtime 1; then each of
//!   the path's `perms` whose regex matches the file's store path sets uid and gid, uname and
//!   gname when given, and mode when given (octal); hard links are written as regular files.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use regex_lite::Regex;
use serde::Deserialize;

use super::go_tar::{clean, GoHeader, GoKind, GoTarWriter};
use super::LayerError;

/// A store path's `rewrite`: its regex, replaced by `repl` in each file's name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Rewrite {
    #[serde(default)]
    pub regex: String,
    #[serde(default)]
    pub repl: String,
}

/// One of a store path's `perms`: the files whose path matches `regex` get these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Perm {
    pub regex: String,
    /// Octal, as nix2container reads it; empty keeps the file's own.
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub uid: u64,
    #[serde(default)]
    pub gid: u64,
    #[serde(default)]
    pub uname: String,
    #[serde(default)]
    pub gname: String,
}

/// A store path's `options` in the image JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct PathOptions {
    #[serde(default)]
    pub rewrite: Rewrite,
    #[serde(default)]
    pub perms: Vec<Perm>,
}

/// The store paths of one nix2container layer, in the JSON's order, each with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeSpec {
    pub paths: Vec<PathBuf>,
    pub options: Vec<Option<PathOptions>>,
}

/// A regex as nix2container's Go code reads it (RE2 syntax, ASCII classes), or why not.
pub fn go_regex(pattern: &str) -> Result<Regex, regex_lite::Error> {
    Regex::new(pattern)
}

/// First code point standing for a byte that is not UTF-8 (see [`as_text`]).
const RAW_BYTE: u32 = 0x10_FF00;

/// A name as the regexes read it. Go's regexp reads bytes, regex-lite text: a name that is not
/// UTF-8 has each stray byte carried as a private-use character (one character, as Go's `.`
/// takes a stray byte as one rune), put back by [`from_text`] after a rewrite.
fn as_text(name: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(name) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            let mut text = String::with_capacity(name.len() + 8);
            for chunk in name.utf8_chunks() {
                text.push_str(chunk.valid());
                for &b in chunk.invalid() {
                    text.extend(char::from_u32(RAW_BYTE + u32::from(b)));
                }
            }
            Cow::Owned(text)
        }
    }
}

/// The bytes of a name [`as_text`] made text of (`raw`: it carried stray bytes).
fn from_text(text: &str, raw: bool) -> Vec<u8> {
    if !raw {
        return text.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u32::from(c).checked_sub(RAW_BYTE) {
            Some(b) if b <= 0xff => out.push(b as u8),
            _ => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
    }
    out
}

/// On macOS, Nix stores names that differ only in case with a `~nix~case~hack~N` suffix;
/// nix2container's macOS build writes them without it (each component cut before it).
fn without_case_hack(path: &[u8]) -> Vec<u8> {
    if cfg!(target_os = "macos") {
        strip_case_hack(path)
    } else {
        path.to_vec()
    }
}

fn strip_case_hack(path: &[u8]) -> Vec<u8> {
    const HACK: &[u8] = b"~nix~case~hack~";
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .map(|part| {
            part.windows(HACK.len())
                .position(|w| w == HACK)
                .map_or(part, |i| &part[..i])
        })
        .collect();
    clean(&parts.join(&b'/'))
}

/// What `lstat` said of a walked file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Directory,
    File { size: u64 },
    Symlink,
}

struct Walked {
    source: PathBuf,
    kind: FileKind,
    /// Permission and set-id bits.
    mode: u32,
    /// Which of the layer's paths it came from (its options apply).
    from: usize,
}

#[derive(Default)]
struct Node {
    walked: Option<Walked>,
    children: BTreeMap<Vec<u8>, Node>,
}

/// Writes the layer's tar into `out`.
pub fn write_tree_tar<W: Write>(spec: &TreeSpec, out: W) -> Result<W, LayerError> {
    let compiled = compile(spec)?;
    let mut root = Node::default();
    for (from, path) in spec.paths.iter().enumerate() {
        walk(path, &mut |source, meta| {
            place(&mut root, &compiled, from, source, meta)
        })?;
    }
    let mut tar = GoTarWriter::new(out);
    let mut buf = vec![0u8; 256 * 1024];
    write_children(&mut tar, b"", &root, &compiled, &mut buf)?;
    tar.finish().map_err(LayerError::Sink)
}

/// The layer's paths with their rewrite and perms regexes, compiled once.
struct Compiled<'a> {
    spec: &'a TreeSpec,
    rewrites: Vec<Option<Regex>>,
    perms: Vec<Vec<Regex>>,
}

fn compile(spec: &TreeSpec) -> Result<Compiled<'_>, LayerError> {
    let bad = |path: &Path, pattern: &str, e: regex_lite::Error| LayerError::Tree {
        path: path.to_owned(),
        reason: format!("its regex {pattern:?} does not compile: {e}"),
    };
    let mut compiled = Compiled {
        spec,
        rewrites: Vec::new(),
        perms: Vec::new(),
    };
    for (path, options) in spec.paths.iter().zip(&spec.options) {
        let options = options.clone().unwrap_or_default();
        let rewrite = match options.rewrite.regex.as_str() {
            "" => None,
            p => Some(go_regex(p).map_err(|e| bad(path, p, e))?),
        };
        let perms = options
            .perms
            .iter()
            .map(|perm| go_regex(&perm.regex).map_err(|e| bad(path, &perm.regex, e)))
            .collect::<Result<_, _>>()?;
        compiled.rewrites.push(rewrite);
        compiled.perms.push(perms);
    }
    Ok(compiled)
}

/// Visits `root` and everything below it, parents first, names in bytewise order.
fn walk(
    root: &Path,
    visit: &mut dyn FnMut(&Path, &fs::Metadata) -> Result<(), LayerError>,
) -> Result<(), LayerError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| LayerError::Read { path, source }
    };
    let meta = fs::symlink_metadata(root).map_err(read_err(root))?;
    visit(root, &meta)?;
    if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(root)
            .map_err(read_err(root))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err(root))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            walk(&root.join(name), visit)?;
        }
    }
    Ok(())
}

/// Places one walked file in the tree, under its name in the tar.
fn place(
    root: &mut Node,
    compiled: &Compiled<'_>,
    from: usize,
    source: &Path,
    meta: &fs::Metadata,
) -> Result<(), LayerError> {
    let spec = compiled.spec;
    let name = without_case_hack(source.as_os_str().as_bytes());
    let dst = match &compiled.rewrites[from] {
        Some(re) => {
            let repl = spec.options[from].as_ref().map_or("", |o| &o.rewrite.repl);
            let text = as_text(&name);
            let raw = matches!(text, Cow::Owned(_));
            from_text(&re.replace_all(&text, repl), raw)
        }
        None => name,
    };
    if dst.is_empty() {
        return Ok(());
    }
    let kind = if meta.file_type().is_symlink() {
        FileKind::Symlink
    } else if meta.is_dir() {
        FileKind::Directory
    } else if meta.is_file() {
        FileKind::File { size: meta.len() }
    } else {
        return Err(LayerError::Unsupported {
            path: source.to_owned(),
        });
    };
    let cleaned = clean(&dst);
    let parts: Vec<&[u8]> = if cleaned == b"/" {
        vec![b""]
    } else {
        cleaned.split(|&b| b == b'/').collect()
    };
    let mut node = root;
    for part in parts {
        node = node.children.entry(part.to_vec()).or_default();
    }
    let conflict = |reason: String| LayerError::Tree {
        path: PathBuf::from(std::ffi::OsStr::from_bytes(&cleaned)),
        reason,
    };
    let mode = meta.permissions().mode() & 0o7777;
    if let Some(old) = &node.walked {
        let same_type = std::mem::discriminant(&old.kind) == std::mem::discriminant(&kind);
        if !same_type || old.mode != mode {
            return Err(conflict(format!(
                "placed by {} and again, with another mode, by {}",
                old.source.display(),
                source.display()
            )));
        }
        if old.kind != kind {
            return Err(conflict(format!(
                "placed by {} and again, with another size, by {}",
                old.source.display(),
                source.display()
            )));
        }
        let perms = |i: usize| spec.options[i].as_ref().map(|o| &o.perms);
        if perms(old.from).is_some() && perms(old.from) != perms(from) {
            return Err(conflict(format!(
                "placed by {} and again, with other perms, by {}",
                old.source.display(),
                source.display()
            )));
        }
    }
    node.walked = Some(Walked {
        source: source.to_owned(),
        kind,
        mode,
        from,
    });
    Ok(())
}

/// Writes the entries below `node` (whose name in the tar is `base`), depth first.
fn write_children<W: Write>(
    tar: &mut GoTarWriter<W>,
    base: &[u8],
    node: &Node,
    compiled: &Compiled<'_>,
    buf: &mut [u8],
) -> Result<(), LayerError> {
    for (name, child) in &node.children {
        let dst = if name.is_empty() {
            b"/".to_vec()
        } else if base.is_empty() {
            clean(name)
        } else {
            clean(&[base, b"/", name].concat())
        };
        match &child.walked {
            None => tar
                .append_header(&GoHeader {
                    name: &dst,
                    kind: GoKind::Directory,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    uname: b"root",
                    gname: b"root",
                })
                .map_err(LayerError::Sink)?,
            Some(walked) => write_walked(tar, &dst, walked, compiled, buf)?,
        }
        write_children(tar, &dst, child, compiled, buf)?;
    }
    Ok(())
}

/// One walked file's header (its perms applied) and content.
fn write_walked<W: Write>(
    tar: &mut GoTarWriter<W>,
    dst: &[u8],
    walked: &Walked,
    compiled: &Compiled<'_>,
    buf: &mut [u8],
) -> Result<(), LayerError> {
    let spec = compiled.spec;
    let path = &walked.source;
    let read_err = |source| LayerError::Read {
        path: path.clone(),
        source,
    };
    let target = match walked.kind {
        FileKind::Symlink => Some(fs::read_link(path).map_err(read_err)?),
        _ => None,
    };
    let kind = match (&walked.kind, &target) {
        (FileKind::File { size }, _) => GoKind::File { size: *size },
        (FileKind::Directory, _) => GoKind::Directory,
        (FileKind::Symlink, t) => GoKind::Symlink {
            target: t.as_deref().map_or(&b""[..], |t| t.as_os_str().as_bytes()),
        },
    };
    let mut header = GoHeader {
        name: dst,
        kind,
        mode: if target.is_some() { 0o777 } else { walked.mode },
        uid: 0,
        gid: 0,
        uname: b"root",
        gname: b"root",
    };
    let perms = spec.options[walked.from]
        .as_ref()
        .map_or(&[][..], |o| &o.perms[..]);
    for (perm, re) in perms.iter().zip(&compiled.perms[walked.from]) {
        if !re.is_match(&as_text(path.as_os_str().as_bytes())) {
            continue;
        }
        header.uid = perm.uid;
        header.gid = perm.gid;
        if !perm.uname.is_empty() {
            header.uname = perm.uname.as_bytes();
        }
        if !perm.gname.is_empty() {
            header.gname = perm.gname.as_bytes();
        }
        if !perm.mode.is_empty() {
            header.mode = parse_octal(&perm.mode).ok_or_else(|| LayerError::Tree {
                path: path.clone(),
                reason: format!("its perms' mode {:?} is not octal", perm.mode),
            })?;
        }
    }
    tar.append_header(&header).map_err(LayerError::Sink)?;
    if let FileKind::File { size } = walked.kind {
        let mut file = fs::File::open(path).map_err(read_err)?;
        let mut written = 0u64;
        loop {
            let n = file.read(buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > size {
                break;
            }
            tar.write_content(&buf[..n]).map_err(LayerError::Sink)?;
        }
        if written != size {
            return Err(LayerError::Changed { path: path.clone() });
        }
        tar.pad(size).map_err(LayerError::Sink)?;
    }
    Ok(())
}

/// `fmt.Sscanf(mode, "%o")`: after spaces and an optional `+`, the leading octal digits, at
/// least one (a negative mode is refused).
fn parse_octal(mode: &str) -> Option<u32> {
    let mode = mode.trim_start();
    let mode = mode.strip_prefix('+').unwrap_or(mode);
    let digits: String = mode
        .chars()
        .take_while(|c| ('0'..='7').contains(c))
        .collect();
    u32::from_str_radix(&digits, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_is_not_utf8_is_rewritten_byte_for_byte() {
        let name = b"/nix/store/abc-root/caf\xe9/x";
        let text = as_text(name);
        assert!(matches!(text, Cow::Owned(_)));
        let re = go_regex("^/nix/store/abc-root").unwrap();
        let rewritten = from_text(&re.replace_all(&text, ""), true);
        assert_eq!(rewritten, b"/caf\xe9/x");
        // `.` takes the stray byte as one character, as Go's regexp does.
        assert!(go_regex("caf./x$").unwrap().is_match(&text));
        assert_eq!(from_text("/plain", false), b"/plain");
    }

    #[test]
    fn the_case_hack_suffix_is_cut_from_every_component() {
        assert_eq!(
            strip_case_hack(b"/nix/store/x-t/E/eterm~nix~case~hack~1/a~nix~case~hack~2"),
            b"/nix/store/x-t/E/eterm/a"
        );
        assert_eq!(
            strip_case_hack(b"/nix/store/x-t/plain"),
            b"/nix/store/x-t/plain"
        );
    }

    #[test]
    fn modes_are_read_as_go_scans_them() {
        assert_eq!(parse_octal("0644"), Some(0o644));
        assert_eq!(parse_octal(" +755"), Some(0o755));
        assert_eq!(parse_octal("0755x"), Some(0o755));
        assert_eq!(parse_octal("rw"), None);
    }
}
