//! Writing the manifests of a registry push in the format the host takes: OCI unless `--format`
//! says otherwise or the host was seen to refuse it; an OCI document refused as such
//! (`RegistryError::FormatRefused`) is written again in Docker schema 2 media types, once, and
//! the host remembered for the next push. Only the first document of a push may switch: a
//! manifest list must name manifests of its own family.

use bytes::Bytes;

use super::documents::Kind;
use super::remote::Remote;
use super::PushError;
use crate::digest::Digest;
use crate::image::ManifestFormat;
use crate::registry::RegistryError;

/// The manifest format of one registry push, settled by its first write.
pub(super) struct ManifestWriter<'a, R: Remote> {
    client: &'a R,
    format: ManifestFormat,
    /// Nothing asked up front and nothing written yet: a refusal of OCI may still switch.
    may_switch: bool,
}

impl<'a, R: Remote> ManifestWriter<'a, R> {
    /// `asked`: `--format`, if given.
    pub fn new(client: &'a R, asked: Option<ManifestFormat>) -> Self {
        let learnt = if client.host_facts().docker_media_types {
            ManifestFormat::Docker
        } else {
            ManifestFormat::Oci
        };
        ManifestWriter {
            client,
            format: asked.unwrap_or(learnt),
            may_switch: asked.is_none(),
        }
    }

    pub fn format(&self) -> ManifestFormat {
        self.format
    }

    /// The formats the next write may still end in: the current one, then Docker schema 2 when
    /// a refusal of OCI may still switch to it.
    pub fn formats_left(&self) -> Vec<ManifestFormat> {
        let mut formats = vec![self.format];
        if self.may_switch && self.format == ManifestFormat::Oci {
            formats.push(ManifestFormat::Docker);
        }
        formats
    }

    /// Writes in `format` from now on, with no switch (a digest asked for settled it).
    pub fn settle(&mut self, format: ManifestFormat) {
        self.format = format;
        self.may_switch = false;
    }

    /// Writes the document `render` makes in the current format under `reference` (its own
    /// digest when `None`), switching to Docker schema 2 if the host refuses OCI and nothing
    /// was written yet. Returns the bytes written and their digest.
    pub async fn put(
        &mut self,
        reference: Option<&str>,
        kind: Kind,
        render: impl Fn(ManifestFormat) -> Result<Bytes, PushError>,
    ) -> Result<(Bytes, Digest), PushError> {
        let first = self.put_as(self.format, reference, kind, &render).await;
        let refused = match first {
            Err(PushError::Registry(RegistryError::FormatRefused(e))) if self.may_switch => *e,
            Err(PushError::Registry(RegistryError::FormatRefused(e))) => return Err((*e).into()),
            other => {
                self.may_switch = false;
                return other;
            }
        };
        self.may_switch = false;
        let again = self
            .put_as(ManifestFormat::Docker, reference, kind, &render)
            .await;
        match again {
            Ok(written) => {
                self.format = ManifestFormat::Docker;
                self.client.learn(
                    "OCI manifests are refused; writing Docker schema 2 manifests",
                    &mut |f| f.docker_media_types = true,
                );
                Ok(written)
            }
            // Not a format problem after all (or zstd layers, which Docker cannot name): the
            // host's answer to the OCI document says more.
            Err(PushError::Registry(_)) => Err(refused.into()),
            Err(e) => Err(e),
        }
    }

    async fn put_as(
        &self,
        format: ManifestFormat,
        reference: Option<&str>,
        kind: Kind,
        render: &impl Fn(ManifestFormat) -> Result<Bytes, PushError>,
    ) -> Result<(Bytes, Digest), PushError> {
        let bytes = render(format)?;
        let digest = Digest::of(&bytes);
        let media_type = kind.media_type(format);
        let target = reference.map_or_else(|| digest.to_string(), str::to_owned);
        self.client
            .put_manifest(&target, media_type, bytes.clone(), &digest)
            .await?;
        Ok((bytes, digest))
    }
}
