//! The command line's definitions: the commands and their arguments as clap parses them. Each
//! argument set turns itself into a checked request before any I/O (`into_request`): a bad
//! reference or flag is exit code 2, and nothing has run.

mod choices;
mod conflicts;
pub mod copy_args;
mod credentials_args;
pub mod docs;
pub mod images_file;
pub mod json;
pub mod keys;
pub mod progress;
pub(crate) mod push_args;
pub mod rebase_args;
pub mod sign_args;
mod subcommand;
#[cfg(test)]
mod tests;
mod usage;
pub mod verify_args;

use clap::{Args, Parser, Subcommand};

use nixpush::nix::PlatformSpec;
use nixpush::reference::Reference;

use credentials_args::explicit_credentials;
pub use push_args::PushArgs;
pub use usage::UsageError;

/// Layers built and uploaded at once unless `--jobs` says otherwise: twice the core count,
/// 4 to 8. A job alternates between compressing (one core) and waiting on the registry, so more
/// jobs than cores keep the cores busy: on 2 cores a cold 500 MiB push took 3.4 s with 1 job,
/// 2.4 s with 2 and 2.1 s with 8 (docs/benchmarks.md); each job holds well under 1 MiB of buffers.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(4, 8)
}

#[derive(Debug, Parser)]
#[command(
    name = "nixpush",
    // The crate's version, and the commit when built from a git checkout (set by build.rs).
    version = env!("NIXPUSH_VERSION"),
    about = "Build a Nix installable and push its closure to an OCI registry as an image: streamed, no daemon, no tarball.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "An installable named like a subcommand (push, login, logout, inspect, copy, key, verify, completions, man) is written ./NAME."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub push: PushArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build INSTALLABLE and push it to DESTINATION (the same as the bare form).
    Push(Box<PushArgs>),
    /// Store credentials for a registry in the OS keyring (Secret Service, macOS Keychain);
    /// pushes and inspect use them. They are stored as given, not checked: the next push
    /// checks them.
    Login(LoginArgs),
    /// Remove the credentials `nixpush login` stored for a registry.
    Logout(LogoutArgs),
    /// Describe an image in a registry: manifest or index, layers with their sizes and the store
    /// paths behind them, config. Works on images nixpush did not push; needs pull access only.
    Inspect(InspectArgs),
    /// Print a shell completion script (e.g. `nixpush completions bash > /etc/bash_completion.d/nixpush`).
    Completions(CompletionsArgs),
    /// Copy an image or index to another repository or registry with its digest unchanged,
    /// together with what refers to it (SBOMs, provenance, cosign signatures and attestations);
    /// blobs the destination has are skipped, same-registry ones mounted, others streamed.
    Copy(copy_args::CopyArgs),
    /// Move an image's own layers onto another base (by default its recorded base, read again:
    /// the base's update), with no build and none of its own layers sent again; the tag moves
    /// last.
    Rebase(rebase_args::RebaseArgs),
    /// Make a key pair for `--sign-key` (cosign's format).
    Key(keys::KeyArgs),
    /// Check an image's signatures and attestations with a public key (cosign's format: made
    /// by nixpush, cosign, podman or skopeo). Exit 0 only if a signature by the key is valid
    /// for the manifest REF names.
    Verify(verify_args::VerifyArgs),
    /// Print the man page (roff), e.g. `nixpush man > nixpush.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `nixpush login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: HOST[:PORT] (docker.io for Docker Hub).
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    /// User name [default: asked on the terminal].
    #[arg(long, short = 'u', value_name = "USER")]
    pub username: Option<String>,
    /// Read the password (or token) from standard input; without it, it is asked on the
    /// terminal without echo.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

impl LoginArgs {
    /// Checks the registry and builds the request. No I/O.
    pub fn into_request(
        self,
    ) -> Result<nixpush::credentials::LoginRequest, nixpush::credentials::LoginError> {
        Ok(nixpush::credentials::LoginRequest {
            registry: nixpush::credentials::registry_host(&self.registry)?,
            username: self.username,
            password_stdin: self.password_stdin,
        })
    }
}

/// `nixpush logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT], as given to `nixpush login`.
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}

/// `nixpush inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]; without tag or digest, `latest`.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Print one JSON document (its shape is in docs/usage.md) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also print each registry request with its answer on stderr (never a secret).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// For an index (multi-platform image): also describe its image for this platform.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Allow plain HTTP and unverified TLS for a non-loopback registry.
    #[arg(long, conflicts_with = "ca_cert")]
    pub insecure: bool,
    /// Trust the certificates in this PEM file too (a private registry's CA, or its own
    /// self-signed certificate); HTTPS only.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Registry credentials USER:PASSWORD (else NIXPUSH_USERNAME/NIXPUSH_PASSWORD, else the
    /// stored ones, as for a push).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Print the SBOM attached to the image (`push --sbom`) instead of describing the image.
    #[arg(long, conflicts_with = "json")]
    pub sbom: bool,
}

impl InspectArgs {
    /// Checks the arguments and builds the request. No I/O.
    pub fn into_request(self) -> Result<nixpush::inspect::InspectRequest, UsageError> {
        let platform = match &self.platform {
            None => None,
            Some(p) => {
                Some(PlatformSpec::parse(p).ok_or_else(|| UsageError::InspectPlatform(p.clone()))?)
            }
        };
        Ok(nixpush::inspect::InspectRequest {
            reference: Reference::parse(&self.reference)?,
            platform,
            credentials: explicit_credentials(self.creds.as_deref(), None, false)?,
            insecure: self.insecure,
            ca_cert: self.ca_cert,
            sbom: self.sbom,
        })
    }
}
