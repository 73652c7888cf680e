//! Flags that contradict each other, refused before anything runs (exit code 2), in one
//! sentence naming both, as crane and skopeo refuse them: otherwise the contradiction shows only
//! after the layers are uploaded, or reads as the registry's fault.

use nixpush::destination::Destination;

use super::choices::{CompressionArg, FormatArg, UploadArg};
use super::{PushArgs, UsageError};

/// Two flags that cannot be used together, and why.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{first} and {second} cannot be used together: {reason}")]
pub struct Conflict {
    pub first: &'static str,
    pub second: &'static str,
    pub reason: &'static str,
}

/// The first contradiction among `args` (whose destination is `destination`), if any.
pub(super) fn check(args: &PushArgs, destination: &Destination) -> Result<(), UsageError> {
    let docker = args.format == Some(FormatArg::Docker);
    let local = matches!(destination, Destination::Local(_));
    let docker_archive = matches!(
        destination,
        Destination::Local(nixpush::destination::LocalTarget::DockerArchive { .. })
    );
    let conflicts = [
        (
            docker
                && matches!(
                    CompressionArg::given(args.compression),
                    CompressionArg::Zstd | CompressionArg::ZstdChunked
                ),
            "--format docker",
            CompressionArg::given(args.compression).flag(),
            "Docker schema 2 manifests cannot name zstd layers (use --compression gzip, or OCI manifests)",
        ),
        (
            docker && args.sbom,
            "--format docker",
            "--sbom",
            "an SBOM is attached through the manifest's `subject`, which Docker schema 2 manifests do not have",
        ),
        (
            docker && !args.annotations.is_empty(),
            "--format docker",
            "--annotation",
            "Docker schema 2 manifests carry no annotations",
        ),
        (
            docker && args.sign.provenance,
            "--format docker",
            "--provenance",
            "provenance is attached through the manifest's `subject`, which Docker schema 2 manifests do not have",
        ),
        (
            local && !args.mirrors.is_empty(),
            "--mirror",
            "a local destination (oci:, docker-archive:)",
            "mirrors are copied from the destination registry",
        ),
        (
            local && args.base.is_some(),
            "--base",
            "a local destination (oci:, docker-archive:)",
            "a base image's layers are mounted or streamed registry to registry",
        ),
        (
            args.base.is_some() && !args.contents.is_empty(),
            "--base",
            "--contents",
            "the links --contents makes at / would hide the base's directories of the same name",
        ),
        (
            docker_archive && (args.sign.sign_key.is_some() || args.sign.provenance),
            "--sign-key or --provenance",
            "a docker-archive destination",
            "a docker-archive cannot hold signatures or provenance (push to a registry or to oci:DIR)",
        ),
        (
            args.sbom_format.is_some() && !args.sbom,
            "--sbom-format",
            "no --sbom",
            "the format is that of the SBOM --sbom attaches",
        ),
        (
            // In an images file the run's registry flags serve the registry destinations.
            local && !args.in_images_file && args.upload != UploadArg::Auto,
            "--upload",
            "a local destination (oci:, docker-archive:)",
            "only registries take uploads",
        ),
        (
            !args.trusted_public_keys.is_empty() && args.no_check_sigs,
            "--trusted-public-key",
            "--no-check-sigs",
            "keys are trusted only when signatures are checked",
        ),
    ];
    match conflicts.into_iter().find(|(found, ..)| *found) {
        Some((_, first, second, reason)) => Err(UsageError::Conflict(Conflict {
            first,
            second,
            reason,
        })),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn request(args: &[&str]) -> Result<nixpush::request::PushRequest, UsageError> {
        Cli::try_parse_from(std::iter::once("nixpush").chain(args.iter().copied()))
            .unwrap()
            .push
            .into_request()
    }

    #[test]
    fn contradicting_flags_are_named_in_one_sentence() {
        for (args, first, second) in [
            (
                &["--format", "docker", "--compression", "zstd"][..],
                "--format docker",
                "--compression zstd",
            ),
            (
                &["--format", "docker", "--compression", "zstd:chunked"][..],
                "--format docker",
                "--compression zstd:chunked",
            ),
            (
                &["--format", "docker", "--sbom"],
                "--format docker",
                "--sbom",
            ),
            (
                &["--format", "docker", "--annotation", "a=b"],
                "--format docker",
                "--annotation",
            ),
            (
                &["--sbom-format", "cyclonedx"],
                "--sbom-format",
                "no --sbom",
            ),
            (
                &["--trusted-public-key", "k:AAAA", "--no-check-sigs"],
                "--trusted-public-key",
                "--no-check-sigs",
            ),
        ] {
            let mut all = vec![".#a", "r.io/x"];
            all.extend(args);
            let e = request(&all).unwrap_err();
            let line = e.to_string();
            assert!(
                matches!(&e, UsageError::Conflict(c) if c.first == first && c.second == second),
                "{args:?}: {line}"
            );
            assert!(line.contains(first) && line.contains(second), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn registry_flags_are_refused_for_local_destinations() {
        for dest in ["oci:/tmp/x", "docker-archive:/tmp/x.tar"] {
            for (args, first) in [
                (&["--upload", "monolithic"][..], "--upload"),
                (&["--upload", "streaming"], "--upload"),
            ] {
                let mut all = vec![".#a", dest];
                all.extend(args);
                let e = request(&all).unwrap_err();
                assert!(
                    matches!(&e, UsageError::Conflict(c) if c.first == first),
                    "{all:?}: {e}"
                );
            }
        }
    }

    #[test]
    fn flags_that_agree_pass() {
        for args in [
            &["r.io/x", "--format", "docker", "--compression", "gzip"][..],
            &[
                "r.io/x",
                "--format",
                "oci",
                "--compression",
                "zstd",
                "--sbom",
            ],
            &["r.io/x", "--sbom", "--sbom-format", "cyclonedx"],
            &["r.io/x", "--upload", "monolithic", "--insecure"],
            &["oci:/tmp/x", "--upload", "auto", "--compression", "zstd"],
            // A binary cache behind a private CA (or plain HTTP) serves a local write too.
            &["oci:/tmp/x", "--ca-cert", "/tmp/ca.pem"],
            &["oci:/tmp/x", "--insecure"],
            &["r.io/x", "--trusted-public-key", "k:AAAA"],
        ] {
            let mut all = vec![".#a"];
            all.extend(args);
            let r = request(&all);
            assert!(
                !matches!(r, Err(UsageError::Conflict(_))),
                "{all:?}: {:?}",
                r.err()
            );
        }
    }
}
