//! Building an installable and reading what it produced.
//!
//! `nix build --json` works on every Nix from 2.8 on (`--print-out-paths` came later). The build
//! writes an out-link into a private temporary directory: that out-link is a GC root, so a garbage
//! collection running during a long push cannot delete store paths that are still being read. The
//! root goes away with the `Built` value.

use std::path::PathBuf;

use serde::Deserialize;

use super::run::nix_stdout;
use super::{check_store_path, Closure, NixError};

/// A built installable and its closure, alive (GC-rooted) for as long as this value lives.
pub struct Built {
    pub installable: String,
    /// The installable's outputs, the main one (`out`, else the first) first.
    pub outputs: Vec<PathBuf>,
    pub closure: Closure,
    /// The Nix system (`x86_64-linux`) of the derivation, when Nix can tell.
    pub system: Option<String>,
    _gc_root: tempfile::TempDir,
}

impl Built {
    /// The store path an image is "of": relative entrypoints are resolved inside it.
    pub fn top(&self) -> &std::path::Path {
        &self.outputs[0]
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuildResult {
    drv_path: Option<String>,
    #[serde(default)]
    outputs: std::collections::BTreeMap<String, String>,
    path: Option<String>,
}

/// Builds `installable` with extra `nix_args` and reads its closure.
pub async fn build(installable: &str, nix_args: &[String]) -> Result<Built, NixError> {
    let gc_root = tempfile::Builder::new()
        .prefix("nixpush-gcroot-")
        .tempdir()
        .map_err(NixError::GcRoot)?;
    let out_link = gc_root.path().join("result");
    let out_link = out_link.to_str().ok_or_else(|| {
        NixError::GcRoot(std::io::Error::other(
            "temporary directory path is not UTF-8",
        ))
    })?;
    let mut args = vec!["build", "--json", "--out-link", out_link, installable];
    args.extend(nix_args.iter().map(String::as_str));
    let stdout = match nix_stdout(&args).await {
        Ok(out) => out,
        Err(NixError::Failed { .. }) => {
            return Err(NixError::BuildFailed {
                installable: installable.to_owned(),
            })
        }
        Err(e) => return Err(e),
    };
    let results: Vec<BuildResult> = serde_json::from_slice(&stdout)
        .map_err(|e| NixError::Unexpected(format!("nix build printed invalid JSON: {e}")))?;
    let mut outputs = Vec::new();
    let mut drv_path = None;
    for r in results {
        drv_path = drv_path.or(r.drv_path);
        let mut named: Vec<(String, String)> = r.outputs.into_iter().collect();
        // `out` is the conventional main output: it goes first.
        named.sort_by_key(|(name, _)| name != "out");
        outputs.extend(named.into_iter().map(|(_, p)| p));
        outputs.extend(r.path);
    }
    if outputs.is_empty() {
        return Err(NixError::Unexpected(format!(
            "nix build produced no output for {installable:?}"
        )));
    }
    let outputs = outputs
        .iter()
        .map(|p| check_store_path(p))
        .collect::<Result<Vec<_>, _>>()?;

    let mut info_args = vec!["path-info", "--json", "--recursive"];
    let output_strs: Vec<&str> = outputs.iter().filter_map(|p| p.to_str()).collect();
    info_args.extend(&output_strs);
    let closure = Closure::from_path_info_json(&nix_stdout(&info_args).await?)?;

    let drv_path = match drv_path {
        Some(d) => Some(d),
        None => deriver_of(output_strs[0]).await,
    };
    // A derivation that is not in this store (a path copied from elsewhere) cannot be shown.
    let system = match drv_path {
        Some(drv) if std::path::Path::new(&drv).exists() => system_of(&drv).await,
        _ => None,
    };
    Ok(Built {
        installable: installable.to_owned(),
        outputs,
        closure,
        system,
        _gc_root: gc_root,
    })
}

/// The derivation that produced `path`, if Nix recorded one.
async fn deriver_of(path: &str) -> Option<String> {
    let out = nix_stdout(&["path-info", "--json", path]).await.ok()?;
    let value: serde_json::Value = serde_json::from_slice(&out).ok()?;
    let entry = match &value {
        serde_json::Value::Array(a) => a.first()?,
        serde_json::Value::Object(o) => o.values().next()?,
        _ => return None,
    };
    entry.get("deriver")?.as_str().map(str::to_owned)
}

/// The `system` attribute of a derivation: `nix derivation show` on newer Nix,
/// `nix show-derivation` on older Nix (2.8 has only the latter).
async fn system_of(drv: &str) -> Option<String> {
    for command in [
        &["show-derivation", drv][..],
        &["derivation", "show", drv][..],
    ] {
        if let Ok(out) = nix_stdout(command).await {
            let value: serde_json::Value = serde_json::from_slice(&out).ok()?;
            let drvs = value.get("derivations").unwrap_or(&value);
            let first = drvs.as_object()?.values().next()?;
            return first.get("system")?.as_str().map(str::to_owned);
        }
    }
    None
}
