//! Building an installable, realising derivations, and reading closures, with every result held
//! by a temporary GC root.
//!
//! `nix build --json` works on every Nix from 2.8 on (`--print-out-paths` came later); a
//! derivation is realised with `nix-store --realise`, whose syntax has not changed across Nix
//! versions (`nix build DRV^out` is newer than 2.8). Each result gets an out-link in a private
//! temporary directory: a GC root, so a garbage collection running during a long push cannot
//! delete store paths still being read. The roots go away with the `GcRoots` value.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::run::{nix_stdout, nix_store_stdout};
use super::{check_store_path, Closure, NixError};

/// Temporary GC roots: a private directory of out-links, removed when dropped.
pub struct GcRoots {
    dir: tempfile::TempDir,
    count: usize,
}

impl GcRoots {
    pub fn new() -> Result<Self, NixError> {
        let dir = tempfile::Builder::new()
            .prefix("nixpush-gcroot-")
            .tempdir()
            .map_err(NixError::GcRoot)?;
        Ok(GcRoots { dir, count: 0 })
    }

    /// A fresh out-link path in the roots directory.
    fn next_link(&mut self) -> Result<String, NixError> {
        self.count += 1;
        self.dir
            .path()
            .join(format!("root-{}", self.count))
            .into_os_string()
            .into_string()
            .map_err(|_| {
                NixError::GcRoot(std::io::Error::other(
                    "temporary directory path is not UTF-8",
                ))
            })
    }

    /// Realises a derivation (or makes sure a store path is valid) and roots the result.
    pub async fn realise(&mut self, drv_or_path: &str) -> Result<Vec<PathBuf>, NixError> {
        let link = self.next_link()?;
        let out = nix_store_stdout(&["--realise", drv_or_path, "--add-root", &link, "--indirect"])
            .await
            .map_err(|e| match e {
                NixError::Failed { .. } => NixError::BuildFailed {
                    installable: drv_or_path.to_owned(),
                },
                e => e,
            })?;
        String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                // With --add-root, nix-store prints the root's path; the store path is its target.
                let target = std::fs::read_link(l).unwrap_or_else(|_| PathBuf::from(l));
                check_store_path(&target.to_string_lossy())
            })
            .collect()
    }
}

/// A built installable and its closure, alive (GC-rooted) for as long as this value lives.
pub struct Built {
    /// The installable's outputs, the main one (`out`, else the first) first.
    pub outputs: Vec<PathBuf>,
    pub closure: Closure,
    /// The Nix system (`x86_64-linux`) of the derivation, when Nix can tell.
    pub system: Option<String>,
    _roots: GcRoots,
}

impl Built {
    /// The store path an image is "of": relative entrypoints are resolved inside it.
    pub fn top(&self) -> &Path {
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
    build_for(installable, nix_args, None, None).await
}

/// The same, with what the evaluation that found the installable's kind already said: the
/// derivation's `system` (no query of the derivation then) and its main output's path (already
/// in the store: its closure is read while Nix checks the build, rather than after).
pub async fn build_for(
    installable: &str,
    nix_args: &[String],
    system: Option<String>,
    out_path: Option<String>,
) -> Result<Built, NixError> {
    let mut roots = GcRoots::new()?;
    let out_link = roots.next_link()?;
    let mut args = vec!["build", "--json", "--out-link", &out_link, installable];
    args.extend(nix_args.iter().map(String::as_str));
    let early = async {
        match out_path.as_deref().map(Path::new) {
            Some(out) if out.exists() => closure_of(&[out.to_owned()]).await.ok(),
            _ => None,
        }
    };
    let (stdout, early) = tokio::join!(nix_stdout(&args), early);
    let stdout = stdout.map_err(|e| match e {
        NixError::Failed { .. } => NixError::BuildFailed {
            installable: installable.to_owned(),
        },
        e => e,
    })?;
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
    let closure = match early {
        // The build gave exactly the output the evaluation named: its closure is already read.
        Some(closure)
            if out_path.as_deref().map(Path::new) == Some(outputs[0].as_path())
                && outputs.len() == 1 =>
        {
            closure
        }
        _ => closure_of(&outputs).await?,
    };
    if system.is_some() {
        return Ok(Built {
            outputs,
            closure,
            system,
            _roots: roots,
        });
    }
    let drv_path = match drv_path {
        Some(d) => Some(d),
        None => deriver_of(&outputs[0]).await,
    };
    // A derivation that is not in this store (a path copied from elsewhere) cannot be shown.
    let system = match drv_path {
        Some(drv) if Path::new(&drv).exists() => system_of(&drv).await,
        _ => None,
    };
    Ok(Built {
        outputs,
        closure,
        system,
        _roots: roots,
    })
}

/// The closure of `paths`, with NAR hashes and references.
pub async fn closure_of(paths: &[PathBuf]) -> Result<Closure, NixError> {
    let mut args = vec!["path-info", "--json", "--recursive"];
    let strs: Vec<&str> = paths.iter().filter_map(|p| p.to_str()).collect();
    args.extend(&strs);
    Closure::from_path_info_json(&nix_stdout(&args).await?)
}

/// The direct references of a store path.
pub async fn references(path: &Path) -> Result<Vec<PathBuf>, NixError> {
    let path = path.to_string_lossy();
    let out = nix_store_stdout(&["--query", "--references", &path]).await?;
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(check_store_path)
        .collect()
}

/// The derivation that produced `path`, if Nix recorded one.
async fn deriver_of(path: &Path) -> Option<String> {
    let out = nix_store_stdout(&["--query", "--deriver", path.to_str()?])
        .await
        .ok()?;
    let drv = String::from_utf8_lossy(&out).trim().to_owned();
    drv.ends_with(".drv").then_some(drv)
}

/// The `system` attribute of a derivation: `nix show-derivation` on Nix up to 2.18 (2.8 has
/// only that), `nix derivation show` on newer Nix.
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
