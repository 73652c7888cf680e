//! A store path as a layer names it: its path and the NAR hash that identifies its contents
//! (nixpush's `nix` module reads them from Nix; a layer key is computed from them).

use std::fmt;
use std::path::PathBuf;

/// One valid store path with the metadata a layer key needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorePath {
    /// Absolute path, `/nix/store/<hash>-<name>`.
    pub path: PathBuf,
    /// Nix's `narHash` (e.g. `sha256-...` or `sha256:...`): identifies the contents exactly.
    pub nar_hash: String,
    pub nar_size: u64,
    /// Store paths this one refers to, itself excluded.
    pub references: Vec<PathBuf>,
}

impl StorePath {
    /// `<hash>-<name>`, the path's file name.
    pub fn base_name(&self) -> &str {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.path.display(), f)
    }
}
