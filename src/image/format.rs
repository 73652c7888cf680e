//! The two families of media types a manifest can be written in. OCI is the default; Docker
//! schema 2 is for registries that refuse OCI manifests (older Artifactory, Nexus, Harbor 1.x,
//! GitLab's older registry): the same config and layer bytes, so the same diff_ids and image ID,
//! named with Docker's media types. What Docker schema 2 cannot say: annotations (the layer keys
//! an empty-cache re-push reads, the provenance), zstd layers, and a `subject` (referrers).

use super::media_types::{
    DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST,
    OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManifestFormat {
    #[default]
    Oci,
    /// Docker image manifest v2 schema 2 and manifest list.
    Docker,
}

/// A layer compression Docker schema 2 has no media type for.
#[derive(Debug, thiserror::Error)]
#[error("Docker schema 2 manifests cannot name {0} layers (only gzip or uncompressed): push with --compression gzip")]
pub struct NotInDockerFormat(pub &'static str);

impl ManifestFormat {
    pub fn manifest_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_MANIFEST,
            ManifestFormat::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn index_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_INDEX,
            ManifestFormat::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    pub fn config_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_CONFIG,
            ManifestFormat::Docker => DOCKER_CONFIG,
        }
    }

    /// The media type of a layer whose OCI media type is `oci`.
    pub fn layer_type(self, oci: &'static str) -> Result<&'static str, NotInDockerFormat> {
        match (self, oci) {
            (ManifestFormat::Oci, t) => Ok(t),
            (ManifestFormat::Docker, OCI_LAYER_GZIP) => Ok(DOCKER_LAYER_GZIP),
            (ManifestFormat::Docker, OCI_LAYER) => Ok(DOCKER_LAYER),
            (ManifestFormat::Docker, OCI_LAYER_ZSTD) => Err(NotInDockerFormat("zstd")),
            (ManifestFormat::Docker, other) => Err(NotInDockerFormat(other)),
        }
    }

    /// Whether manifests of this format carry annotations.
    pub fn has_annotations(self) -> bool {
        self == ManifestFormat::Oci
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_gzip_and_plain_layers_and_refuses_zstd() {
        let d = ManifestFormat::Docker;
        assert_eq!(
            d.layer_type(OCI_LAYER_GZIP).unwrap(),
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert!(d
            .layer_type(OCI_LAYER_ZSTD)
            .unwrap_err()
            .to_string()
            .contains("zstd"));
        assert_eq!(
            ManifestFormat::Oci.layer_type(OCI_LAYER_ZSTD).unwrap(),
            OCI_LAYER_ZSTD
        );
        assert_eq!(
            d.manifest_type(),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
    }
}
