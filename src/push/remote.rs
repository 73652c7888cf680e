//! What the push's decisions ask of a registry, as one small interface: whether a blob is
//! there, a cross-repository mount, a manifest read and written, the host's remembered facts.
//! The registry client implements it; the unit tests of the decisions (reuse or mount, the
//! manifest format switch, the unchanged re-push) implement it in memory, so each decision is
//! tested without a registry process or Nix. Streaming a layer's bytes is not in it: that is
//! the registry client's own business (`upload.rs`).

use bytes::Bytes;

use crate::digest::Digest;
use crate::registry::{Client, HostFacts, Mount, RegistryError, UploadSession};

/// A registry repository, as the push's decisions see it.
pub(crate) trait Remote: Sync {
    /// An upload session a declined mount opened, handed back to be used or cancelled.
    type Session: Send;

    /// The registry host (`name[:port]`).
    fn registry(&self) -> &str;
    /// The repository pushed to.
    fn repository(&self) -> &str;
    /// What the host was seen to refuse.
    fn host_facts(&self) -> HostFacts;
    /// Remembers something new about the host (`what` says it, for `--verbose`).
    fn learn(&self, what: &str, change: &mut dyn FnMut(&mut HostFacts));

    /// Whether the repository has the blob; its size when the registry says.
    async fn blob_size(&self, digest: &Digest) -> Result<Option<Option<u64>>, RegistryError>;
    /// Asks for `digest` to be linked from the repository `from` of the same registry.
    async fn mount(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<Mounted<Self::Session>, RegistryError>;
    /// Ends a session a declined mount opened, best effort.
    async fn cancel(&self, session: Self::Session);
    /// Makes sure a small blob held in memory is there (HEAD, then PUT if absent).
    async fn ensure_blob(&self, digest: &Digest, data: Bytes) -> Result<(), RegistryError>;
    /// A manifest's bytes in `repository` (this registry), or `None` if there is none.
    async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Bytes>, RegistryError>;
    /// Writes a manifest under `reference`; whether the registry said it indexed its subject.
    async fn put_manifest(
        &self,
        reference: &str,
        media_type: &'static str,
        bytes: Bytes,
        digest: &Digest,
    ) -> Result<bool, RegistryError>;
}

/// The answer to a mount.
#[derive(Debug)]
pub(crate) enum Mounted<S> {
    Linked,
    /// Not linked; the registry opened this upload session instead.
    Declined(S),
}

impl Remote for Client {
    type Session = UploadSession;

    fn registry(&self) -> &str {
        Client::registry(self)
    }

    fn repository(&self) -> &str {
        Client::repository(self)
    }

    fn host_facts(&self) -> HostFacts {
        Client::host_facts(self)
    }

    fn learn(&self, what: &str, change: &mut dyn FnMut(&mut HostFacts)) {
        Client::learn(self, what, change)
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<Option<u64>>, RegistryError> {
        Client::blob_size(self, digest).await
    }

    async fn mount(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<Mounted<UploadSession>, RegistryError> {
        Ok(match self.mount_blob(digest, from).await? {
            Mount::Linked => Mounted::Linked,
            Mount::Declined(session) => Mounted::Declined(session),
        })
    }

    async fn cancel(&self, session: UploadSession) {
        self.cancel_upload(session).await
    }

    async fn ensure_blob(&self, digest: &Digest, data: Bytes) -> Result<(), RegistryError> {
        Client::ensure_blob(self, digest, data).await
    }

    async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Bytes>, RegistryError> {
        Client::get_manifest(self, repository, reference).await
    }

    async fn put_manifest(
        &self,
        reference: &str,
        media_type: &'static str,
        bytes: Bytes,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        Client::put_manifest(self, reference, media_type, bytes, digest).await
    }
}
