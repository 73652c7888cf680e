//! `nixpush copy SRC DST`: its arguments, and what it prints: the destination's pinned
//! reference on stdout (or one JSON document), progress on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use nixpush::push::{copy, CopyRequest};
use nixpush::reference::Reference;

use super::credentials_args::given_credentials;
use super::subcommand::{fail, print_written, run_library, signer};

/// `nixpush copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The image or index to copy: HOST[:PORT]/REPO[:TAG][@sha256:DIGEST].
    #[arg(value_name = "SRC")]
    pub source: String,
    /// Where to: HOST[:PORT]/REPO[:TAG]; without a tag, the source's tag (none: by digest).
    #[arg(value_name = "DST")]
    pub destination: String,
    /// Credentials for the source, USER:PASSWORD (else the stored ones).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub src_creds: Option<String>,
    /// Credentials for the destination, USER:PASSWORD (else the stored ones).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub dest_creds: Option<String>,
    /// Also sign the copy for the destination's repository with this key (as `--sign-key` on a
    /// push), before any tag moves: the signatures carried name the source's repository.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// The key's passphrase is this file's first line [default: NIXPUSH_SIGN_PASSPHRASE, else
    /// asked on the terminal].
    #[arg(long, value_name = "FILE", requires = "sign_key")]
    pub sign_passphrase_file: Option<PathBuf>,
    /// Allow plain HTTP and unverified TLS for non-loopback registries.
    #[arg(long, conflicts_with = "ca_cert")]
    pub insecure: bool,
    /// Trust the certificates in this PEM file too; HTTPS only.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Print one JSON document (reference, digest, tag, what moved) instead of the reference.
    #[arg(long)]
    pub json: bool,
    /// Also print each registry request with its answer on stderr (never a secret).
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// Runs `nixpush copy`.
pub fn run(args: CopyArgs) -> ExitCode {
    let parsed = (|| -> Result<CopyRequest, String> {
        Ok(CopyRequest {
            source: Reference::parse(&args.source).map_err(|e| e.to_string())?,
            destination: Reference::parse(&args.destination).map_err(|e| e.to_string())?,
            // Each side's own flag only: NIXPUSH_USERNAME/PASSWORD would be a guess at which
            // registry they are for, and a password sent to the other one.
            source_credentials: given_credentials(args.src_creds.as_deref())
                .map_err(|e| e.to_string())?,
            destination_credentials: given_credentials(args.dest_creds.as_deref())
                .map_err(|e| e.to_string())?,
            insecure: args.insecure,
            ca_cert: args.ca_cert.clone(),
            retry: Default::default(),
            tags: Vec::new(),
            signer: None,
        })
    })();
    let mut request = match parsed {
        Ok(r) => r,
        Err(e) => return fail(2, &e),
    };
    request.signer = match signer(args.sign_key.clone(), args.sign_passphrase_file.clone()) {
        Ok(signer) => signer,
        Err(code) => return code,
    };
    let stop = nixpush::stop::Stop::default();
    match run_library(args.verbose, |reporter| copy(&request, reporter, &stop)) {
        Ok(outcome) => {
            let c = &outcome.counts;
            let doc = serde_json::json!({
                "reference": outcome.reference,
                "digest": outcome.digest.to_string(),
                "tags": outcome.tags,
                "blobsStreamed": c.streamed,
                "blobsMounted": c.mounted,
                "blobsSkipped": c.skipped,
                "manifestsWritten": c.manifests_written,
                "attachments": c.attachments,
            });
            print_written(args.json, &outcome.reference, doc)
        }
        Err(code) => code,
    }
}
