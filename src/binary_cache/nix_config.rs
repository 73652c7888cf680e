//! The binary caches Nix itself is configured with, read from `nix show-config`: its
//! substituters, trusted keys, `require-sigs`, and the CA file its HTTPS downloads trust.

use super::CacheError;
use crate::nix::NixError;

/// The substituters Nix is configured with.
pub(super) struct NixSubstituters {
    pub substituters: Vec<String>,
    pub trusted_public_keys: Vec<String>,
    pub require_sigs: bool,
    /// The CA file Nix's HTTPS downloads trust: its `ssl-cert-file` setting (newer Nix), else
    /// `NIX_SSL_CERT_FILE`, else `SSL_CERT_FILE`, when that file exists.
    pub ssl_cert_file: Option<std::path::PathBuf>,
}

/// Asks `nix show-config --json` for `substituters`, `trusted-public-keys`, `require-sigs`
/// (and `ssl-cert-file`, after Nix's environment variables for it).
pub(super) async fn nix_substituters() -> Result<NixSubstituters, CacheError> {
    let out = crate::nix::nix_stdout(&["show-config", "--json"]).await?;
    let config: serde_json::Value = serde_json::from_slice(&out)
        .map_err(|e| NixError::Unexpected(format!("nix show-config printed {e}")))?;
    let list = |key: &str| -> Vec<String> {
        config[key]["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(NixSubstituters {
        substituters: list("substituters"),
        trusted_public_keys: list("trusted-public-keys"),
        require_sigs: config["require-sigs"]["value"].as_bool().unwrap_or(true),
        // Newer Nix states the file it uses (nix.conf's, else its default from the
        // environment); Nix 2.8 states none and reads the environment.
        ssl_cert_file: config["ssl-cert-file"]["value"]
            .as_str()
            .map(std::path::PathBuf::from)
            .into_iter()
            .chain(
                ["NIX_SSL_CERT_FILE", "SSL_CERT_FILE"]
                    .iter()
                    .filter_map(std::env::var_os)
                    .map(std::path::PathBuf::from),
            )
            .find(|f| !f.as_os_str().is_empty() && f.is_file()),
    })
}
