//! Finding out whether an installable is a dockerTools image, without building it.
//!
//! A `streamLayeredImage` result carries its conf as the attribute `conf`; a `buildLayeredImage`
//! result carries the stream as `passthru.stream` (building it would write the very tarball
//! nixpush exists to avoid). Both are found by evaluating, never building, the installable. A
//! store path (a stream script built earlier, or `./result`) is one when one of its references is
//! a `*-conf.json` of that shape.

use std::path::{Path, PathBuf};

use crate::nix::{self, as_store_path, NixError};

/// Where an image's conf.json comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfSource {
    /// A derivation to realise (found by evaluation).
    Derivation(String),
    /// A conf.json already in the store (a reference of a store path installable).
    StorePath(PathBuf),
}

/// Applied to the installable's value by `nix eval`: the conf derivation's path (or null), the
/// package's `version`, its derivation's `system` and its main output's path (or null), asked
/// in the same evaluation, so no later query needs the derivation and the closure can be read
/// while Nix checks the build.
const FIND_CONF: &str = r#"x:
  let
    isConf = c: builtins.isAttrs c && c ? drvPath;
    pick = [
      (if x ? conf then x.conf else null)
      (if x ? passthru && x.passthru ? stream && x.passthru.stream ? conf then x.passthru.stream.conf else null)
      (if x ? stream && builtins.isAttrs x.stream && x.stream ? conf then x.stream.conf else null)
    ];
    found = builtins.filter isConf pick;
    own = name:
      let tried = builtins.tryEval (if builtins.isAttrs x && x ? ${name} && builtins.isString x.${name} then x.${name} else null);
      in if tried.success then tried.value else null;
  in {
    conf = if builtins.isAttrs x && found != [ ] then (builtins.head found).drvPath else null;
    version = if builtins.isAttrs x && x ? version && builtins.isString x.version then x.version else null;
    system = if builtins.isAttrs x && x ? drvPath && x ? system && builtins.isString x.system then x.system else null;
    out = if builtins.isAttrs x && x ? drvPath && x ? outPath then x.outPath else null;
    imageName = own "imageName";
    imageTag = own "imageTag";
    license = if !WITH_LICENSE then null else
      let
        declared = if builtins.isAttrs x && x ? meta && builtins.isAttrs x.meta && x.meta ? license then x.meta.license else null;
        all = if declared == null then [ ] else if builtins.isList declared then declared else [ declared ];
        ids = map (l: if builtins.isAttrs l && l ? spdxId && builtins.isString l.spdxId then l.spdxId else null) all;
        tried = builtins.tryEval (if ids == [ ] || builtins.elem null ids then null else builtins.concatStringsSep " AND " ids);
      in if tried.success then tried.value else null;
  }"#;

/// Where [`FIND_CONF`] says whether to read `meta.license` (only for an SBOM: a package whose
/// `meta` does not evaluate is still pushed without one).
const WITH_LICENSE: &str = "WITH_LICENSE";

/// What evaluating an installable tells before anything is built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluated {
    /// Its dockerTools conf, when it is a dockerTools image.
    pub conf: Option<ConfSource>,
    /// Its `version` attribute, when it has one.
    pub version: Option<String>,
    /// The `system` of its derivation, when it is one.
    pub system: Option<String>,
    /// Its main output's store path, when it is a derivation.
    pub out_path: Option<String>,
    /// Its `meta.license` as an SPDX expression (`A AND B` for a list), when every license
    /// names its `spdxId`.
    pub license: Option<String>,
    /// Its `imageName` and `imageTag` (nix2container's `buildImage` names its image so).
    pub image_name: Option<String>,
    pub image_tag: Option<String>,
}

/// The conf of `installable` if it is a dockerTools image (else `conf` is `None`: a plain
/// package), and its version.
pub async fn find_conf(
    installable: &str,
    nix_args: &[String],
    with_license: bool,
) -> Result<Evaluated, NixError> {
    if let Some(path) = as_store_path(installable) {
        let references = nix::references(&path).await?;
        let conf = references
            .into_iter()
            .find(|r| r.to_string_lossy().ends_with("-conf.json") && looks_like_conf(r))
            .map(ConfSource::StorePath);
        return Ok(Evaluated {
            conf,
            ..Evaluated::default()
        });
    }
    let apply = FIND_CONF.replace(WITH_LICENSE, if with_license { "true" } else { "false" });
    let mut args = vec!["eval", "--json", installable, "--apply", &apply];
    args.extend(nix_args.iter().map(String::as_str));
    let out = match nix::nix_stdout(&args).await {
        Ok(out) => out,
        Err(NixError::Failed { .. }) => {
            return Err(NixError::EvalFailed {
                installable: installable.to_owned(),
            })
        }
        Err(e) => return Err(e),
    };
    #[derive(serde::Deserialize)]
    struct Found {
        conf: Option<String>,
        version: Option<String>,
        #[serde(default)]
        system: Option<String>,
        #[serde(default)]
        out: Option<String>,
        #[serde(default)]
        license: Option<String>,
        #[serde(default, rename = "imageName")]
        image_name: Option<String>,
        #[serde(default, rename = "imageTag")]
        image_tag: Option<String>,
    }
    match serde_json::from_slice::<Found>(&out) {
        Ok(found) => Ok(Evaluated {
            conf: found.conf.map(ConfSource::Derivation),
            version: found.version,
            system: found.system,
            out_path: found.out,
            license: found.license,
            image_name: found.image_name,
            image_tag: found.image_tag,
        }),
        Err(e) => Err(NixError::Unexpected(format!("nix eval printed {e}"))),
    }
}

/// A quick look at a file: is it a JSON object with the keys a conf.json has?
fn looks_like_conf(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| is_conf_shaped(&bytes))
}

/// Whether `bytes` are a JSON object with the keys a dockerTools conf.json has (whatever a
/// store path named `*-conf.json` is, it is an image's conf only then).
pub fn is_conf_shaped(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .is_ok_and(|v| v.get("store_layers").is_some() && v.get("customisation_layer").is_some())
}
