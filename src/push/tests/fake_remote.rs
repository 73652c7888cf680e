//! An in-memory registry repository for the decision tests: blobs and manifests in maps, every
//! request it is asked logged (so a test can count them, as go-containerregistry's do), and the
//! refusals a test sets up (OCI manifests refused, mounts declined).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use bytes::Bytes;

use crate::digest::Digest;
use crate::push::remote::{Mounted, Remote};
use crate::registry::{HostFacts, RegistryError};

/// A session a declined mount opened: its number.
pub(crate) type FakeSession = u32;

#[derive(Default)]
pub(crate) struct FakeRemote {
    pub repository: String,
    /// Blobs of this repository, with their sizes.
    pub blobs: Mutex<BTreeMap<Digest, u64>>,
    /// Blobs of the other repositories of the registry, by repository.
    pub elsewhere: BTreeMap<String, BTreeSet<Digest>>,
    /// Whether a mount from a repository holding the blob links it (else: declined).
    pub mounts_link: bool,
    /// (repository, reference) -> bytes.
    pub manifests: Mutex<BTreeMap<(String, String), Bytes>>,
    /// OCI manifests are answered like Artifactory's and Harbor 1's: 400 MANIFEST_INVALID.
    pub refuses_oci: bool,
    pub facts: Mutex<HostFacts>,
    /// Every request, in order: "HEAD digest", "MOUNT digest from", "PUT manifest ref", ...
    pub log: Mutex<Vec<String>>,
    /// How long each manifest read or write takes (on tokio's clock): lets two writers race.
    pub latency: std::time::Duration,
    pub next_session: Mutex<FakeSession>,
}

impl FakeRemote {
    pub fn new(repository: &str) -> Self {
        FakeRemote {
            repository: repository.to_owned(),
            ..FakeRemote::default()
        }
    }

    pub fn with_blob(self, digest: &Digest, size: u64) -> Self {
        self.blobs.lock().unwrap().insert(digest.clone(), size);
        self
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn record(&self, request: String) {
        self.log.lock().unwrap().push(request);
    }
}

impl Remote for FakeRemote {
    type Session = FakeSession;

    fn registry(&self) -> &str {
        "fake.example"
    }

    fn repository(&self) -> &str {
        &self.repository
    }

    fn host_facts(&self) -> HostFacts {
        self.facts.lock().unwrap().clone()
    }

    fn learn(&self, what: &str, change: &mut dyn FnMut(&mut HostFacts)) {
        self.record(format!("LEARN {what}"));
        change(&mut self.facts.lock().unwrap());
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<Option<u64>>, RegistryError> {
        self.record(format!("HEAD {digest}"));
        Ok(self.blobs.lock().unwrap().get(digest).map(|s| Some(*s)))
    }

    async fn mount(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<Mounted<FakeSession>, RegistryError> {
        self.record(format!("MOUNT {digest} from {from}"));
        let there = self.elsewhere.get(from).is_some_and(|b| b.contains(digest));
        if there && self.mounts_link {
            self.blobs.lock().unwrap().insert(digest.clone(), 0);
            return Ok(Mounted::Linked);
        }
        let mut next = self.next_session.lock().unwrap();
        *next += 1;
        Ok(Mounted::Declined(*next))
    }

    async fn cancel(&self, session: FakeSession) {
        self.record(format!("DELETE session {session}"));
    }

    async fn ensure_blob(&self, digest: &Digest, data: Bytes) -> Result<(), RegistryError> {
        self.record(format!("ENSURE {digest}"));
        self.blobs
            .lock()
            .unwrap()
            .insert(digest.clone(), data.len() as u64);
        Ok(())
    }

    async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Bytes>, RegistryError> {
        self.record(format!("GET {repository}:{reference}"));
        tokio::time::sleep(self.latency).await;
        let key = (repository.to_owned(), reference.to_owned());
        Ok(self.manifests.lock().unwrap().get(&key).cloned())
    }

    async fn put_manifest(
        &self,
        reference: &str,
        media_type: &'static str,
        bytes: Bytes,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        self.record(format!("PUT {reference} {media_type}"));
        tokio::time::sleep(self.latency).await;
        if self.refuses_oci && media_type.starts_with("application/vnd.oci.") {
            let refusal = RegistryError::Status {
                method: "PUT".into(),
                url: format!(
                    "https://fake.example/v2/{}/manifests/{reference}",
                    self.repository
                ),
                status: reqwest::StatusCode::BAD_REQUEST,
                detail: "MANIFEST_INVALID".into(),
                retry_after: None,
            };
            return Err(RegistryError::FormatRefused(Box::new(refusal)));
        }
        let mut manifests = self.manifests.lock().unwrap();
        manifests.insert(
            (self.repository.clone(), reference.to_owned()),
            bytes.clone(),
        );
        manifests.insert((self.repository.clone(), digest.to_string()), bytes);
        Ok(false)
    }
}
