//! What preparing an image reads of the request: how to ask Nix and the binary caches, how a
//! plain package is laid out, which annotations to write. Cut from the whole request once, so
//! nothing here sees where the image goes or how it is uploaded.

use std::collections::BTreeMap;

use super::error::PrepareError;
use crate::binary_cache::SubstituterSettings;
use crate::http::RetryPolicy;
use crate::layer::Compression;
use crate::nix::PlatformSpec;
use crate::plan::{ConfigFlags, PackageLayout};

/// One image to build: an installable, and the platform `--platform` says it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSource {
    pub installable: String,
    pub platform: Option<PlatformSpec>,
}

/// Everything preparing an image reads of the request.
#[derive(Clone, Debug, Default)]
pub struct PrepareOptions {
    /// Passed to every `nix` command.
    pub nix_args: Vec<String>,
    /// The run config flags (plain packages; a dockerTools image carries its own).
    pub config: ConfigFlags,
    /// Installables whose top-level directories are linked into `/` (plain packages only).
    pub contents: Vec<String>,
    /// `--created`, when given (plain packages).
    pub created: Option<String>,
    /// `--max-layers`, when given (plain packages).
    pub max_layers: Option<usize>,
    pub compression: Compression,
    /// `--compression` was given: a nix2container image's layers go as nix2container sends
    /// them (uncompressed) unless it was.
    pub compression_chosen: bool,
    /// An SBOM is wanted: the installable's `meta.license` is asked of Nix too.
    pub sbom: bool,
    /// SLSA provenance is wanted: the flake's metadata (locked reference, inputs) is read.
    pub provenance: bool,
    /// Where store paths missing from the local store are read from (`--substituter`).
    pub substituters: SubstituterSettings,
    /// How long reading from a binary cache keeps trying.
    pub retry: RetryPolicy,
    /// How binary caches are reached over HTTPS (`--ca-cert`, `--insecure`, as for registries).
    pub tls: crate::http::TlsOptions,
    /// The Nix system of the store paths, when no derivation says (`--system`).
    pub system: Option<String>,
    /// Manifest annotations given with `--annotation` (they win over the default ones).
    pub annotations: BTreeMap<String, String>,
    /// Annotate the manifest with the flake's provenance (`org.opencontainers.image.*`).
    pub default_annotations: bool,
    /// The image goes on a registry base image (`--base`): no generated `/etc` or `/tmp`.
    pub on_base: bool,
    /// Where the indexes of image archives read from binary caches are kept.
    pub cache: crate::known_layers::LayerCache,
}

impl PrepareOptions {
    /// Refuses the flags that would set what a dockerTools image (an image archive, a
    /// nix2container image: `kind`) defines in Nix.
    pub(super) fn refuse_config_flags(&self, kind: &'static str) -> Result<(), PrepareError> {
        let mut flags = self.config.set_flags().unwrap_or_default();
        for (given, flag) in [
            (!self.contents.is_empty(), "--contents"),
            (self.created.is_some(), "--created"),
            (self.max_layers.is_some(), "--max-layers"),
            (self.on_base, "--base"),
        ] {
            if given {
                flags.push(flag);
            }
        }
        if flags.is_empty() {
            Ok(())
        } else {
            Err(PrepareError::ConfigWithImage { kind, flags })
        }
    }

    /// How a plain package's image is laid out, as the flags say.
    pub(super) fn package_layout(&self) -> PackageLayout<'_> {
        PackageLayout {
            user: self.config.user.as_deref(),
            max_layers: self.max_layers,
            created: self.created.as_deref(),
            compression: self.compression,
            on_base: self.on_base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_flag_that_an_image_defines_in_nix_is_refused_when_none_is_given() {
        assert!(PrepareOptions::default()
            .refuse_config_flags("this image")
            .is_ok());
    }

    #[test]
    fn every_flag_that_an_image_defines_in_nix_is_named_in_the_refusal() {
        let options = PrepareOptions {
            contents: vec!["nixpkgs#bash".into()],
            created: Some("now".into()),
            max_layers: Some(3),
            ..Default::default()
        };
        let error = options
            .refuse_config_flags("this dockerTools image")
            .unwrap_err();
        assert!(error.is_usage());
        assert_eq!(
            error.to_string(),
            "this dockerTools image sets the image's configuration in Nix: change it there instead of with --contents, --created, --max-layers"
        );
    }
}
