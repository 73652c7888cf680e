//! `nixpush verify REF --key PUB`: its arguments, and printing what was verified, one line
//! each (exit 0 only when a signature by the key is valid for the manifest REF names).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use nixpush::progress::Reporter;
use nixpush::reference::Reference;
use nixpush::signing::PublicKey;
use nixpush::verify::{verify, VerifyRequest};

use super::credentials_args::explicit_credentials;
use super::progress::ProgressLines;
use super::subcommand::fail;

/// `nixpush verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image: HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]; without tag or digest, `latest`.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The public key (PKIX PEM: `nixpush key generate`'s or cosign's PREFIX.pub).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Also print each registry request with its answer on stderr (never a secret).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Allow plain HTTP and unverified TLS for a non-loopback registry.
    #[arg(long, conflicts_with = "ca_cert")]
    pub insecure: bool,
    /// Trust the certificates in this PEM file too; HTTPS only.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Registry credentials USER:PASSWORD (else NIXPUSH_USERNAME/NIXPUSH_PASSWORD, else the
    /// stored ones).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Also make this installable's image locally (as `nixpush INSTALLABLE oci:DIR` would,
    /// into a throw-away directory) and say whether the registry's image is exactly it: its
    /// config and every layer's diff_id compared, no layer downloaded. For images pushed
    /// without image config flags.
    #[arg(long, value_name = "INSTALLABLE")]
    pub against: Option<String>,
}

/// The push request that makes `installable`'s image into the OCI layout `dir`.
fn local_image(
    installable: &str,
    dir: &std::path::Path,
) -> Result<nixpush::request::PushRequest, String> {
    use clap::Parser;
    let destination = format!("oci:{}", dir.display());
    let cli = super::Cli::try_parse_from(["nixpush", installable, destination.as_str()])
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_owned())?;
    cli.push.into_request().map_err(|e| e.to_string())
}

/// Runs `nixpush verify`.
pub fn run(args: VerifyArgs) -> ExitCode {
    let reference = match Reference::parse(&args.reference) {
        Ok(r) => r,
        Err(e) => return fail(2, &e.to_string()),
    };
    let key = match PublicKey::load(&args.key) {
        Ok(k) => k,
        Err(e) => return fail(2, &e.to_string()),
    };
    let credentials = match explicit_credentials(args.creds.as_deref(), None, false) {
        Ok(c) => c,
        Err(e) => return fail(2, &e.to_string()),
    };
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return fail(1, &format!("cannot make a temporary directory: {e}")),
    };
    let local = match &args.against {
        None => None,
        Some(installable) => match local_image(installable, &scratch.path().join("image")) {
            Ok(r) => Some((installable, r)),
            Err(e) => return fail(2, &format!("--against {installable}: {e}")),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, &format!("cannot start the async runtime: {e}")),
    };
    let reporter: Arc<dyn Reporter> = Arc::new(ProgressLines::new(args.verbose));
    // The installable's image is made first, through the same pipeline as a push.
    let against = match local {
        None => None,
        Some((installable, local)) => {
            let stop = nixpush::stop::Stop::default();
            match runtime.block_on(nixpush::push::push(&local, reporter.clone(), &stop)) {
                Ok(made) => made.images.into_iter().next(),
                Err(e) => return fail(1, &format!("--against {installable}: {e}")),
            }
        }
    };
    let request = VerifyRequest {
        against,
        reference,
        key,
        credentials,
        insecure: args.insecure,
        ca_cert: args.ca_cert,
    };
    match runtime.block_on(verify(&request, reporter)) {
        Ok(verification) => {
            for finding in &verification.findings {
                println!("{finding}");
            }
            println!("verified: {} is signed by this key", verification.reference);
            if let Some(reproduction) = &verification.reproduction {
                println!("{reproduction}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, &e.to_string()),
    }
}
