//! The manifest format: OCI, switched to Docker schema 2 once for a host that refuses OCI.

use std::sync::Mutex;

use bytes::Bytes;

use super::FakeRemote;
use crate::image::media_types::DOCKER_MANIFEST;
use crate::image::{ManifestFormat, OCI_MANIFEST};
use crate::push::documents::Kind;
use crate::push::manifest_format::ManifestWriter;
use crate::push::remote::Remote;
use crate::push::PushError;

/// Writes one manifest through a writer for `remote`, as a single-image push writes its tag.
async fn put_one(
    writer: &mut ManifestWriter<'_, FakeRemote>,
    manifest: &Bytes,
) -> Result<(Bytes, crate::digest::Digest), PushError> {
    let bytes = manifest.clone();
    writer
        .put(Some("v1"), Kind::Manifest, move |_| Ok(bytes.clone()))
        .await
}

#[tokio::test]
async fn manifest_format_switch() {
    let manifest = Bytes::from_static(b"{}");
    // A host that refuses OCI, nothing asked: OCI tried once, Docker written, the host learnt.
    let remote = FakeRemote {
        refuses_oci: true,
        ..FakeRemote::new("app")
    };
    let mut writer = ManifestWriter::new(&remote, None);
    assert_eq!(
        writer.formats_left(),
        [ManifestFormat::Oci, ManifestFormat::Docker]
    );
    put_one(&mut writer, &manifest).await.unwrap();
    assert_eq!(writer.format(), ManifestFormat::Docker);
    assert_eq!(
        remote.requests(),
        [
            format!("PUT v1 {OCI_MANIFEST}"),
            format!("PUT v1 {DOCKER_MANIFEST}"),
            "LEARN OCI manifests are refused; writing Docker schema 2 manifests".to_owned(),
        ]
    );
    assert!(remote.host_facts().docker_media_types);

    // The next push to that host starts in Docker schema 2, with one request.
    let again = FakeRemote {
        refuses_oci: true,
        facts: Mutex::new(remote.host_facts()),
        ..FakeRemote::new("app")
    };
    let mut writer = ManifestWriter::new(&again, None);
    assert_eq!(writer.format(), ManifestFormat::Docker);
    put_one(&mut writer, &manifest).await.unwrap();
    assert_eq!(again.requests(), [format!("PUT v1 {DOCKER_MANIFEST}")]);

    // --format oci asked: the refusal is the answer, no switch.
    let asked = FakeRemote {
        refuses_oci: true,
        ..FakeRemote::new("app")
    };
    let mut writer = ManifestWriter::new(&asked, Some(ManifestFormat::Oci));
    assert_eq!(writer.formats_left(), [ManifestFormat::Oci]);
    let err = put_one(&mut writer, &manifest).await.unwrap_err();
    assert!(err.to_string().contains("MANIFEST_INVALID"), "{err}");
    assert_eq!(asked.requests().len(), 1);
    assert!(!asked.host_facts().docker_media_types);

    // A host that takes OCI: one write, and the format settles (no switch after it).
    let takes = FakeRemote::new("app");
    let mut writer = ManifestWriter::new(&takes, None);
    put_one(&mut writer, &manifest).await.unwrap();
    assert_eq!(writer.formats_left(), [ManifestFormat::Oci]);
}
