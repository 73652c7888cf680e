//! The one place a push renders its documents: each platform image's config and manifest, and
//! for a multi-arch push the index naming them, in the format asked (OCI, or Docker schema 2 for
//! a host that refuses OCI). A registry push, an unchanged re-push, a local target and the SBOM's
//! subjects all take their bytes from here, so they are the same bytes.

use bytes::Bytes;

use crate::image::{ImageIndex, IndexEntry, ManifestFormat, NotInDockerFormat};
use crate::layer::LayerDigests;
use crate::plan::{ImageDocuments, ImagePlan};

/// Whether the top document of a push is an image manifest or an index of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Manifest,
    Index,
}

impl Kind {
    /// The top document of a push of several platforms (`multi_arch`) or of one.
    pub fn of(multi_arch: bool) -> Kind {
        if multi_arch {
            Kind::Index
        } else {
            Kind::Manifest
        }
    }

    pub fn media_type(self, format: ManifestFormat) -> &'static str {
        match self {
            Kind::Manifest => format.manifest_type(),
            Kind::Index => format.index_type(),
        }
    }
}

/// The images of one push with every layer's blob known (`layers[i]` is `plans[i]`'s).
pub(super) struct ImageSet<'a> {
    pub plans: Vec<&'a ImagePlan>,
    pub layers: Vec<Vec<LayerDigests>>,
    /// Several platforms: the top document is an index.
    pub multi_arch: bool,
}

impl ImageSet<'_> {
    /// The kind of document the tags name.
    pub fn kind(&self) -> Kind {
        Kind::of(self.multi_arch)
    }

    /// Each image's config and manifest in `format`.
    pub fn documents(
        &self,
        format: ManifestFormat,
    ) -> Result<Vec<ImageDocuments>, NotInDockerFormat> {
        self.plans
            .iter()
            .zip(&self.layers)
            .map(|(plan, layers)| plan.documents_in(layers, format))
            .collect()
    }

    /// Image `i`'s manifest in `format`.
    pub fn manifest(&self, i: usize, format: ManifestFormat) -> Result<Bytes, NotInDockerFormat> {
        Ok(self.plans[i]
            .documents_in(&self.layers[i], format)?
            .manifest)
    }

    /// The document the tags name: the image's manifest, or the index of every image's.
    pub fn top(&self, format: ManifestFormat) -> Result<Bytes, NotInDockerFormat> {
        let documents = self.documents(format)?;
        Ok(self.top_of(&documents, format))
    }

    /// The same, from documents already rendered in `format`.
    pub fn top_of(&self, documents: &[ImageDocuments], format: ManifestFormat) -> Bytes {
        match self.kind() {
            Kind::Index => Bytes::from(image_index(&self.plans, documents, format)),
            Kind::Manifest => documents[0].manifest.clone(),
        }
    }
}

/// The OCI index naming each platform's image (`documents[i]` is `plans[i]`'s), as bytes: the
/// same for a registry and an OCI layout.
pub(super) fn image_index(
    plans: &[&ImagePlan],
    documents: &[ImageDocuments],
    format: ManifestFormat,
) -> Vec<u8> {
    ImageIndex {
        format,
        manifests: plans
            .iter()
            .zip(documents)
            .map(|(plan, d)| IndexEntry {
                digest: d.manifest_digest.clone(),
                size: d.manifest.len() as u64,
                platform: plan.platform.clone(),
            })
            .collect(),
        // The provenance is the flake's, the same for every platform: the first image's.
        annotations: plans
            .first()
            .map(|p| p.annotations.clone())
            .unwrap_or_default(),
    }
    .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::test_plan;
    use crate::digest::Digest;
    use crate::layer::{build_layer, Compression};

    fn digests(plan: &ImagePlan) -> Vec<LayerDigests> {
        plan.layers
            .iter()
            .map(|l| build_layer(l, plan.compression, std::io::sink()).unwrap().1)
            .collect()
    }

    #[test]
    fn one_image_names_its_manifest_and_several_an_index_of_theirs() {
        let plan = test_plan::plan(Compression::default());
        let one = ImageSet {
            plans: vec![&plan],
            layers: vec![digests(&plan)],
            multi_arch: false,
        };
        let manifest = plan.documents(&one.layers[0]).manifest;
        assert_eq!(one.top(ManifestFormat::Oci).unwrap(), manifest);
        assert_eq!(
            one.kind().media_type(ManifestFormat::Oci),
            crate::image::OCI_MANIFEST
        );

        let mut arm = plan.clone();
        arm.platform.architecture = "arm64".into();
        let two = ImageSet {
            plans: vec![&plan, &arm],
            layers: vec![digests(&plan), digests(&arm)],
            multi_arch: true,
        };
        let index: serde_json::Value =
            serde_json::from_slice(&two.top(ManifestFormat::Oci).unwrap()).unwrap();
        let named: Vec<(&str, &str)> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["digest"].as_str().unwrap(),
                    m["platform"]["architecture"].as_str().unwrap(),
                )
            })
            .collect();
        let amd_digest = Digest::of(&manifest).to_string();
        let arm_digest = arm.documents(&two.layers[1]).manifest_digest.to_string();
        assert_eq!(
            named,
            [
                (amd_digest.as_str(), "amd64"),
                (arm_digest.as_str(), "arm64")
            ]
        );
        assert_eq!(
            two.kind().media_type(ManifestFormat::Docker),
            crate::image::media_types::DOCKER_MANIFEST_LIST
        );
    }

    #[test]
    fn zstd_layers_have_no_docker_manifest() {
        let plan = test_plan::plan(Compression::Zstd {
            level: crate::layer::DEFAULT_ZSTD_LEVEL,
        });
        let set = ImageSet {
            plans: vec![&plan],
            layers: vec![digests(&plan)],
            multi_arch: false,
        };
        assert!(set.top(ManifestFormat::Oci).is_ok());
        assert!(set.top(ManifestFormat::Docker).is_err());
    }
}
