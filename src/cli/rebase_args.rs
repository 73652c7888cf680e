//! `nixpush rebase IMAGE`: its arguments, and what it prints: the rebased image's pinned
//! reference on stdout (or one JSON document), progress on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use nixpush::push::{rebase, RebaseRequest};
use nixpush::reference::Reference;

use super::credentials_args::given_credentials;
use super::subcommand::{fail, print_written, run_library, signer};

/// `nixpush rebase`.
#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The image to rebase: HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]; the rebased image goes in
    /// the same repository.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The new base, by tag or digest [default: the base name IMAGE records, read again].
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// The base IMAGE's first layers are, for an image that records none.
    #[arg(long, value_name = "REF")]
    pub old_base: Option<String>,
    /// Tag the rebased image (repeatable) [default: IMAGE's tag; none: by digest only].
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Credentials for IMAGE's registry, USER:PASSWORD (else the stored ones).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Sign the rebased image with this key (as `--sign-key` on a push), before any tag moves.
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
    /// Print one JSON document (reference, digest, tags, both bases, what moved).
    #[arg(long)]
    pub json: bool,
    /// Also print each registry request with its answer on stderr (never a secret).
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// Runs `nixpush rebase`.
pub fn run(args: RebaseArgs) -> ExitCode {
    let reference = |r: &str| Reference::parse(r).map_err(|e| e.to_string());
    let parsed = (|| -> Result<RebaseRequest, String> {
        for tag in &args.tags {
            reference(&format!("localhost/x:{tag}"))
                .map_err(|_| format!("--tag {tag:?} is not a valid tag"))?;
        }
        Ok(RebaseRequest {
            image: reference(&args.image)?,
            base: args.base.as_deref().map(reference).transpose()?,
            old_base: args.old_base.as_deref().map(reference).transpose()?,
            tags: args.tags.clone(),
            credentials: given_credentials(args.creds.as_deref()).map_err(|e| e.to_string())?,
            insecure: args.insecure,
            ca_cert: args.ca_cert.clone(),
            retry: Default::default(),
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
    match run_library(args.verbose, |reporter| rebase(&request, reporter, &stop)) {
        Ok(outcome) => {
            let c = &outcome.counts;
            let doc = serde_json::json!({
                "reference": outcome.reference,
                "digest": outcome.digest.to_string(),
                "tags": outcome.tags,
                "oldBase": outcome.old_base,
                "newBase": outcome.new_base,
                "blobsStreamed": c.streamed,
                "blobsMounted": c.mounted,
                "blobsSkipped": c.skipped,
            });
            print_written(args.json, &outcome.reference, doc)
        }
        Err(code) => code,
    }
}
