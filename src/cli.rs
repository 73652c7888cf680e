//! The command line: clap definitions, and the step that turns raw arguments into a checked
//! `PushRequest` before any I/O (a bad reference or flag is exit code 2, and nothing has run).

use clap::{Args, Parser, Subcommand};

use crate::cache::LayerCache;
use crate::destination::{Destination, DestinationError};
use crate::layer::Compression;
use crate::nix::PlatformSpec;
use crate::plan::{ConfigError, ConfigFlags};
use crate::push::{ImageSource, PushRequest};
use crate::reference::{Reference, ReferenceError};
use crate::registry::{Credentials, Secret};
use crate::upload::UploadMode;

/// Layers built and uploaded at once unless `--jobs` says otherwise: twice the core count,
/// 4 to 8. A job alternates between compressing (one core) and waiting on the registry, so more
/// jobs than cores keep the cores busy: on 2 cores a cold 500 MiB push took 3.4 s with 1 job,
/// 2.4 s with 2 and 2.1 s with 8 (see the README); each job holds well under 1 MiB of buffers.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(4, 8)
}

#[derive(Debug, Parser)]
#[command(
    name = "nixpush",
    version,
    about = "Build a Nix installable and push its closure to an OCI registry as an image: streamed, no daemon, no tarball.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "An installable named like a subcommand (push, login, logout, inspect, completions, man) is written ./NAME."
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
    pub fn into_request(self) -> Result<crate::login::LoginRequest, crate::login::LoginError> {
        Ok(crate::login::LoginRequest {
            registry: crate::login::registry_host(&self.registry)?,
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

#[derive(Clone, Debug, Args)]
pub struct PushArgs {
    /// What to build: a flake installable (./flake#attr, .#docker) or a store path.
    #[arg(value_name = "INSTALLABLE", required_unless_present_any = ["images", "platforms"])]
    pub installable: Option<String>,
    /// Where to push: HOST[:PORT]/REPO[:TAG][@sha256:DIGEST] (short names mean Docker Hub), or
    /// a local target to try the image first: oci:DIR[:TAG] (an OCI image layout) or
    /// docker-archive:PATH[:NAME[:TAG]] (`-`: standard output, for `podman load`).
    #[arg(value_name = "DESTINATION", required_unless_present_any = ["images", "platforms"])]
    pub destination: Option<String>,
    /// Push every image described in this TOML file (one [[image]] table each, see the README),
    /// sharing work: a layer common to several images is built and uploaded once.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["installable", "destination"])]
    pub images: Option<std::path::PathBuf>,
    /// Another tag for the same image (repeatable); with none here nor in DESTINATION, the
    /// image's own tag, else `latest`.
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Multi-arch: the image for one platform, OS/ARCH[/VARIANT]=INSTALLABLE (repeatable, no
    /// INSTALLABLE argument then). Each is pushed, then an OCI index naming them all is tagged.
    /// The platform must be the image's own (dockerTools `architecture`, the derivation's
    /// system); building for another system is Nix's job (remote builders, binfmt).
    #[arg(
        long = "platform",
        value_name = "OS/ARCH=INSTALLABLE",
        conflicts_with = "images"
    )]
    pub platforms: Vec<String>,
    /// Extra arguments for `nix build`, after `--` (e.g. -- --impure -L).
    #[arg(last = true, value_name = "NIX_ARGS")]
    pub nix_args: Vec<String>,

    /// Program to run: a path (relative paths are inside the top store path) or a JSON array.
    #[arg(long, value_name = "CMD", help_heading = "Image config")]
    pub entrypoint: Option<String>,
    /// Default arguments: one word or a JSON array.
    #[arg(long, value_name = "CMD", help_heading = "Image config")]
    pub cmd: Option<String>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Image config")]
    pub env: Vec<String>,
    /// Working directory of the container.
    #[arg(long, value_name = "DIR", help_heading = "Image config")]
    pub workdir: Option<String>,
    /// User (and group) the container runs as: NAME, UID, or UID:GID.
    #[arg(long, value_name = "USER", help_heading = "Image config")]
    pub user: Option<String>,
    /// Port the container listens on, PORT[/tcp|udp|sctp] (repeatable).
    #[arg(long, value_name = "PORT", help_heading = "Image config")]
    pub expose: Vec<String>,
    /// Image label KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Image config")]
    pub label: Vec<String>,
    /// Installable whose top-level directories are linked into / (e.g. /bin from busybox,
    /// /etc/ssl from a CA bundle), as dockerTools `contents` does (repeatable).
    #[arg(long, value_name = "INSTALLABLE", help_heading = "Image config")]
    pub contents: Vec<String>,
    /// Image creation time: `now` or an RFC 3339 time [default: 1970-01-01T00:00:01Z].
    #[arg(long, value_name = "TIME", help_heading = "Image config")]
    pub created: Option<String>,

    /// Most layers the image gets (one is the generated root filesystem); past it, the least
    /// popular store paths share one layer [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=127), help_heading = "Layers")]
    pub max_layers: Option<usize>,
    /// How layers are compressed: gzip (read by every client), zstd (smaller and faster; needs
    /// a recent runtime), none.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip, help_heading = "Layers")]
    pub compression: CompressionArg,
    /// Compression level: gzip 0 to 9 [default: 1], zstd 1 to 19 [default: 3].
    #[arg(long, value_name = "LEVEL", help_heading = "Layers")]
    pub compression_level: Option<u32>,
    /// Layers built and uploaded at once [default: twice the cores, 4 to 8].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64), help_heading = "Layers")]
    pub jobs: Option<usize>,
    /// An image on the destination's registry whose layers may be reused (repeatable): its
    /// layers are linked (mounted) instead of built and uploaded when they match.
    #[arg(long, value_name = "REF", help_heading = "Layers")]
    pub cache_from: Vec<String>,
    /// A repository on the destination's registry to mount known layers from (repeatable;
    /// REPO or HOST/REPO): a layer the local cache knows is linked from there instead of
    /// uploaded. Repositories the cache saw a layer in are tried too.
    #[arg(long, value_name = "REPO", help_heading = "Layers")]
    pub mount_from: Vec<String>,
    /// How layer blobs go up: auto (one streaming PATCH; one PUT with Content-Length when the
    /// layer cache knows the digest), streaming, or monolithic (one PUT, for registries that
    /// refuse chunked uploads, such as Google Artifact Registry: a layer whose digest is not
    /// known is compressed twice, once only to hash it, since nothing is written to disk).
    #[arg(long, value_enum, default_value_t = UploadArg::Auto, help_heading = "Layers")]
    pub upload: UploadArg,
    /// Trust no known blob: rebuild every layer that would be skipped or mounted and reuse the
    /// blob only if it is byte-identical (costs the CPU of a cold push, uploads no more).
    #[arg(long, help_heading = "Layers")]
    pub verify: bool,
    /// Neither read nor write the local layer cache.
    #[arg(long, help_heading = "Layers")]
    pub no_cache: bool,

    /// Registry credentials USER:PASSWORD (visible to other users of this machine: prefer
    /// --password-stdin or NIXPUSH_USERNAME/NIXPUSH_PASSWORD).
    #[arg(long, value_name = "USER:PASSWORD", help_heading = "Registry")]
    pub creds: Option<String>,
    /// Registry user name, with the password (or token) read from standard input.
    #[arg(
        long,
        short = 'u',
        value_name = "USER",
        requires = "password_stdin",
        help_heading = "Registry"
    )]
    pub username: Option<String>,
    /// Read the password for --username from standard input.
    #[arg(long, requires = "username", help_heading = "Registry")]
    pub password_stdin: bool,

    /// Allow plain HTTP and unverified TLS for a non-loopback registry.
    #[arg(long, help_heading = "Registry", conflicts_with = "ca_cert")]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file too (a private registry's CA); HTTPS only.
    #[arg(long, value_name = "FILE", help_heading = "Registry")]
    pub ca_cert: Option<std::path::PathBuf>,

    /// Manifest annotation KEY=VALUE (repeatable; wins over a default one).
    #[arg(
        long = "annotation",
        value_name = "KEY=VALUE",
        help_heading = "Provenance"
    )]
    pub annotations: Vec<String>,
    /// Do not annotate the manifest with the flake's provenance (org.opencontainers.image.source,
    /// revision, created from the flake's lastModified, version).
    #[arg(long, help_heading = "Provenance")]
    pub no_default_annotations: bool,

    /// Print one JSON document describing what was pushed (see the README) instead of the
    /// reference lines.
    #[arg(long, conflicts_with = "dry_run", help_heading = "Output")]
    pub json: bool,
    /// Also write the pushed reference line(s) to this file (e.g. for a signing step).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "dry_run",
        help_heading = "Output"
    )]
    pub digest_file: Option<std::path::PathBuf>,

    /// Build and plan, then print the layers (number, NAR size, key, store paths) instead of
    /// pushing; no registry is contacted.
    #[arg(long)]
    pub dry_run: bool,

    /// Print only the pushed reference, no progress.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print each registry request with its answer, and where credentials came from
    /// (never a secret: no header, no query string).
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// `--platform OS/ARCH[/VARIANT]=INSTALLABLE`.
fn parse_platform_image(s: &str) -> Result<ImageSource, UsageError> {
    let bad = || UsageError::Platform(s.to_owned());
    let (platform, installable) = s.split_once('=').ok_or_else(bad)?;
    let platform = PlatformSpec::parse(platform).ok_or_else(bad)?;
    if installable.trim().is_empty() {
        return Err(bad());
    }
    Ok(ImageSource {
        installable: installable.to_owned(),
        platform: Some(platform),
    })
}

/// Credentials given on the command line or in the environment; two sources at once are an
/// error (which should win would be a guess).
fn explicit_credentials(
    creds: Option<&str>,
    username: Option<&str>,
    password_stdin: bool,
) -> Result<Option<Credentials>, UsageError> {
    let env_user = std::env::var("NIXPUSH_USERNAME")
        .ok()
        .filter(|u| !u.is_empty());
    let env_pass = std::env::var("NIXPUSH_PASSWORD").ok();
    let given = [creds.is_some(), username.is_some(), env_user.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(UsageError::Credentials(
            "give credentials one way: --creds, --username with --password-stdin, or NIXPUSH_USERNAME/NIXPUSH_PASSWORD",
        ));
    }
    if let Some(c) = creds {
        let (user, pass) = c
            .split_once(':')
            .filter(|(u, _)| !u.is_empty())
            .ok_or(UsageError::Credentials("--creds takes USER:PASSWORD"))?;
        return Ok(Some(Credentials {
            username: user.to_owned(),
            password: Secret::new(pass),
        }));
    }
    if let (Some(user), true) = (username, password_stdin) {
        let mut password = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut password).map_err(|_| {
            UsageError::Credentials("could not read the password from standard input")
        })?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(UsageError::Credentials(
                "--password-stdin read an empty password",
            ));
        }
        return Ok(Some(Credentials {
            username: user.to_owned(),
            password: Secret::new(password),
        }));
    }
    match (env_user, env_pass) {
        (Some(user), Some(pass)) if !pass.is_empty() => Ok(Some(Credentials {
            username: user,
            password: Secret::new(pass),
        })),
        (Some(_), _) => Err(UsageError::Credentials(
            "NIXPUSH_USERNAME is set but NIXPUSH_PASSWORD is empty",
        )),
        (None, _) => Ok(None),
    }
}

/// `--upload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UploadArg {
    Auto,
    Streaming,
    Monolithic,
}

impl From<UploadArg> for UploadMode {
    fn from(a: UploadArg) -> Self {
        match a {
            UploadArg::Auto => UploadMode::Auto,
            UploadArg::Streaming => UploadMode::Streaming,
            UploadArg::Monolithic => UploadMode::Monolithic,
        }
    }
}

/// `--compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
    None,
}

impl CompressionArg {
    fn name(self) -> &'static str {
        match self {
            CompressionArg::Gzip => "gzip",
            CompressionArg::Zstd => "zstd",
            CompressionArg::None => "none",
        }
    }

    fn with_level(self, level: Option<u32>) -> Result<Compression, UsageError> {
        let check = |range: std::ops::RangeInclusive<u32>, default: u32| {
            let level = level.unwrap_or(default);
            if range.contains(&level) {
                Ok(level)
            } else {
                Err(UsageError::Level {
                    compression: self,
                    level,
                    range,
                })
            }
        };
        Ok(match self {
            CompressionArg::Gzip => Compression::Gzip {
                level: check(0..=9, crate::layer::DEFAULT_GZIP_LEVEL)?,
            },
            CompressionArg::Zstd => Compression::Zstd {
                level: check(1..=19, crate::layer::DEFAULT_ZSTD_LEVEL)?,
            },
            CompressionArg::None => match level {
                None => Compression::None,
                Some(level) => {
                    return Err(UsageError::Level {
                        compression: self,
                        level,
                        range: 0..=0,
                    })
                }
            },
        })
    }
}

/// Arguments that are wrong before anything runs (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--created {0:?}: expected `now` or an RFC 3339 time such as 2024-05-01T12:00:00Z")]
    Created(String),
    #[error("--cache-from {0}: must be on the destination's registry (layers are reused by linking them there)")]
    CacheFromElsewhere(String),
    #[error(transparent)]
    Destination(DestinationError),
    #[error("--mount-from {0:?}: name a repository (REPO or HOST/REPO), without a tag or digest")]
    MountFrom(String),
    #[error("--platform {0:?}: expected OS/ARCH[/VARIANT]=INSTALLABLE, e.g. linux/arm64=.#packages.aarch64-linux.docker")]
    Platform(String),
    #[error(
        "with --platform, give only DESTINATION: the installables are in the --platform options"
    )]
    PlatformAndInstallable,
    #[error("{0} goes only to a registry, not to {1}")]
    RegistryOnly(&'static str, String),
    #[error("{0} holds one image, not an index: write a multi-arch image (--platform) to a registry or to oci:DIR")]
    MultiArchArchive(String),
    #[error("--json and {0} both write to standard output: write the archive to a file")]
    StdoutTwice(&'static str),
    #[error("--compression-level {level} does not fit --compression {}: {}", compression.name(), if range.is_empty() || range.end() == &0 { "it takes no level".to_owned() } else { format!("its levels are {} to {}", range.start(), range.end()) })]
    Level {
        compression: CompressionArg,
        level: u32,
        range: std::ops::RangeInclusive<u32>,
    },
    #[error("{}: {reason}", path.display())]
    ImagesFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("with --images, set {0} per image in the file")]
    FlagWithImages(&'static str),
    #[error("--tag {0:?}: a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")]
    Tag(String),
    #[error("{0}")]
    Credentials(&'static str),
    #[error("the installable is empty")]
    EmptyInstallable,
    #[error("--platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")]
    InspectPlatform(String),
}

impl From<DestinationError> for UsageError {
    fn from(e: DestinationError) -> Self {
        match e {
            DestinationError::Reference(r) => UsageError::Reference(r),
            other => UsageError::Destination(other),
        }
    }
}

impl PushArgs {
    /// Checks every argument and builds the request. No I/O.
    pub fn into_request(mut self) -> Result<PushRequest, UsageError> {
        let images = if self.platforms.is_empty() {
            let installable = self.installable.take().unwrap_or_default();
            if installable.trim().is_empty() {
                return Err(UsageError::EmptyInstallable);
            }
            vec![ImageSource {
                installable,
                platform: None,
            }]
        } else {
            // The one positional argument is the destination.
            if self.destination.is_some() {
                return Err(UsageError::PlatformAndInstallable);
            }
            self.destination = self.installable.take();
            self.platforms
                .iter()
                .map(|p| parse_platform_image(p))
                .collect::<Result<Vec<_>, _>>()?
        };
        let destination = Destination::parse(&self.destination.unwrap_or_default())?;
        if let Destination::Local(local) = &destination {
            if !self.cache_from.is_empty() {
                return Err(UsageError::RegistryOnly(
                    "--cache-from",
                    destination.to_string(),
                ));
            }
            if !self.platforms.is_empty()
                && matches!(local, crate::local::LocalTarget::DockerArchive { .. })
            {
                return Err(UsageError::MultiArchArchive(destination.to_string()));
            }
        }
        if self.json && destination.is_stdout() {
            return Err(UsageError::StdoutTwice("docker-archive:-"));
        }
        let mut annotations = std::collections::BTreeMap::new();
        for a in &self.annotations {
            let (k, v) = ConfigFlags::parse_key_value("--annotation", a)?;
            annotations.insert(k, v);
        }
        if let Some(bad) = self.tags.iter().find(|t| !crate::reference::valid_tag(t)) {
            return Err(UsageError::Tag(bad.clone()));
        }
        let mut cache_from = Vec::new();
        for r in &self.cache_from {
            let r = Reference::parse(r)?;
            if Some(r.registry()) != destination.registry().map(Reference::registry) {
                return Err(UsageError::CacheFromElsewhere(r.to_string()));
            }
            cache_from.push(r);
        }
        let mut mount_from = Vec::new();
        for repo in &self.mount_from {
            let Some(registry) = destination.registry().map(Reference::registry) else {
                return Err(UsageError::RegistryOnly(
                    "--mount-from",
                    destination.to_string(),
                ));
            };
            // HOST/REPO on the destination's registry, or a repository path on it.
            let r = match Reference::parse(repo) {
                Ok(r) if r.registry() == registry => r,
                _ => Reference::parse(&format!("{registry}/{repo}"))?,
            };
            if r.tag().is_some() || r.digest().is_some() {
                return Err(UsageError::MountFrom(repo.clone()));
            }
            mount_from.push(r.repository().to_owned());
        }
        let mut config = ConfigFlags {
            workdir: self.workdir,
            user: self.user,
            ..ConfigFlags::default()
        };
        if let Some(e) = &self.entrypoint {
            config.entrypoint = ConfigFlags::parse_command("--entrypoint", e)?;
        }
        if let Some(c) = &self.cmd {
            config.cmd = ConfigFlags::parse_command("--cmd", c)?;
        }
        for e in &self.env {
            config.env.push(ConfigFlags::parse_key_value("--env", e)?);
        }
        for l in &self.label {
            config
                .labels
                .push(ConfigFlags::parse_key_value("--label", l)?);
        }
        for p in &self.expose {
            config.expose.push(ConfigFlags::parse_port(p)?);
        }
        let created = match self.created.as_deref() {
            None => None,
            Some("now") => Some(crate::plan::rfc3339_now()),
            Some(t) if crate::plan::is_rfc3339(t) => Some(t.to_owned()),
            Some(t) => return Err(UsageError::Created(t.to_owned())),
        };
        let compression = self.compression.with_level(self.compression_level)?;
        Ok(PushRequest {
            images,
            nix_args: self.nix_args,
            destination,
            config,
            contents: self.contents,
            cache_from,
            mount_from,
            upload: self.upload.into(),
            tags: self.tags,
            credentials: explicit_credentials(
                self.creds.as_deref(),
                self.username.as_deref(),
                self.password_stdin,
            )?,
            created,
            max_layers: self.max_layers,
            compression,
            jobs: self.jobs.unwrap_or_else(default_jobs),
            insecure: self.insecure,
            ca_cert: self.ca_cert,
            verify: self.verify,
            annotations,
            default_annotations: !self.no_default_annotations,
            cache: if self.no_cache {
                LayerCache::disabled()
            } else {
                LayerCache::open_default()
            },
        })
    }
}

/// `nixpush inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image: HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]; without tag or digest, `latest`.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Print one JSON document (its shape is in the README) instead of text.
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
    /// Trust the CA certificates in this PEM file too (a private registry's CA); HTTPS only.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Registry credentials USER:PASSWORD (else NIXPUSH_USERNAME/NIXPUSH_PASSWORD, else the
    /// stored ones, as for a push).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
}

impl InspectArgs {
    /// Checks the arguments and builds the request. No I/O.
    pub fn into_request(self) -> Result<crate::inspect::InspectRequest, UsageError> {
        let platform = match &self.platform {
            None => None,
            Some(p) => {
                Some(PlatformSpec::parse(p).ok_or_else(|| UsageError::InspectPlatform(p.clone()))?)
            }
        };
        Ok(crate::inspect::InspectRequest {
            reference: Reference::parse(&self.reference)?,
            platform,
            credentials: explicit_credentials(self.creds.as_deref(), None, false)?,
            insecure: self.insecure,
            ca_cert: self.ca_cert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("nixpush").chain(args.iter().copied()))
    }

    #[test]
    fn bare_form_and_push_subcommand_are_the_same() {
        let bare = parse(&[".#app", "r.io/a:v1", "--env", "A=1", "--", "--impure"]).unwrap();
        assert!(bare.command.is_none());
        assert_eq!(bare.push.installable.as_deref(), Some(".#app"));
        assert_eq!(bare.push.nix_args, ["--impure"]);
        let sub = parse(&["push", ".#app", "r.io/a:v1"]).unwrap();
        let Some(Command::Push(args)) = sub.command else {
            panic!("push subcommand not recognised")
        };
        assert_eq!(args.destination.as_deref(), Some("r.io/a:v1"));
    }

    #[test]
    fn subcommand_names_are_subcommands_and_dot_slash_escapes_them() {
        let c = parse(&["login", "r.io"]).unwrap();
        assert!(matches!(c.command, Some(Command::Login(_))));
        let c = parse(&["./login", "r.io/a"]).unwrap();
        assert_eq!(c.push.installable.as_deref(), Some("./login"));
        let c = parse(&["./inspect", "r.io/a"]).unwrap();
        assert_eq!(c.push.installable.as_deref(), Some("./inspect"));
    }

    #[test]
    fn login_and_logout_take_a_registry() {
        let login = |args: &[&str]| match parse(args).unwrap().command {
            Some(Command::Login(a)) => a.into_request(),
            other => panic!("login subcommand not recognised: {other:?}"),
        };
        let r = login(&["login", "index.docker.io", "-u", "me", "--password-stdin"]).unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.username.as_deref(), Some("me"));
        assert!(r.password_stdin);
        assert!(login(&["login", "notahost"]).unwrap_err().is_usage());
        assert!(
            parse(&["login", "r.io", "--password-stdin"]).is_err(),
            "needs -u"
        );
        assert!(parse(&["login"]).is_err());
        let c = parse(&["logout", "r.io:5000"]).unwrap();
        assert!(matches!(c.command, Some(Command::Logout(a)) if a.registry == "r.io:5000"));
    }

    #[test]
    fn inspect_takes_a_reference_and_checks_it_before_io() {
        let req = |args: &[&str]| match parse(args).unwrap().command {
            Some(Command::Inspect(a)) => a.into_request(),
            other => panic!("inspect subcommand not recognised: {other:?}"),
        };
        let ok = req(&[
            "inspect",
            "--json",
            "r.io/a:v1",
            "--platform",
            "linux/arm64/v8",
        ])
        .unwrap();
        assert_eq!(ok.reference.tag(), Some("v1"));
        assert_eq!(ok.platform.unwrap().to_string(), "linux/arm64/v8");
        assert!(matches!(
            req(&["inspect", "R.io/Bad"]),
            Err(UsageError::Reference(_))
        ));
        assert!(matches!(
            req(&["inspect", "r.io/a", "--platform", "arm64"]),
            Err(UsageError::InspectPlatform(_))
        ));
        assert!(matches!(
            req(&["inspect", "r.io/a", "--creds", "nopassword"]),
            Err(UsageError::Credentials(_))
        ));
        assert!(parse(&["inspect"]).is_err(), "REF is required");
        assert!(parse(&["inspect", "r.io/a", "--insecure", "--ca-cert", "x"]).is_err());
    }

    #[test]
    fn missing_arguments_are_usage_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[".#app"]).is_err());
        assert!(parse(&[".#app", "r.io/a", "--max-layers", "0"]).is_err());
    }

    #[test]
    fn request_checks_reference_and_flags_before_io() {
        let req = |args: &[&str]| parse(args).unwrap().push.into_request();
        assert!(matches!(
            req(&[".#a", "R.io/Bad"]),
            Err(UsageError::Reference(_))
        ));
        assert!(matches!(
            req(&[".#a", "r.io/a", "--env", "x"]),
            Err(UsageError::Config(_))
        ));
        assert!(matches!(
            req(&[".#a", "r.io/a", "--created", "yesterday"]),
            Err(UsageError::Created(_))
        ));
        let ok = req(&[
            ".#a",
            "r.io/a",
            "--expose",
            "80",
            "--created",
            "2024-05-01T12:00:00Z",
        ])
        .unwrap();
        assert_eq!(ok.config.expose, ["80/tcp"]);
        assert_eq!(ok.created.as_deref(), Some("2024-05-01T12:00:00Z"));
        assert_eq!(ok.destination.registry().unwrap().tag(), None);
    }

    #[test]
    fn platforms_make_a_multi_arch_request_whose_one_argument_is_the_destination() {
        let req = |args: &[&str]| parse(args).unwrap().push.into_request();
        let r = req(&[
            "--platform",
            "linux/amd64=.#a",
            "--platform",
            "linux/arm64/v8=.#b",
            "r.io/x:1",
        ])
        .unwrap();
        assert_eq!(r.images.len(), 2);
        assert_eq!(r.images[1].installable, ".#b");
        assert_eq!(
            r.images[1].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(r.destination.to_string(), "r.io/x:1");
        for bad in [
            "amd64=.#a",
            "linux/amd64",
            "linux/amd64=",
            "Linux/amd64=.#a",
        ] {
            assert!(
                matches!(
                    req(&["--platform", bad, "r.io/x"]),
                    Err(UsageError::Platform(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            req(&["--platform", "linux/amd64=.#a", ".#c", "r.io/x"]),
            Err(UsageError::PlatformAndInstallable)
        ));
        assert!(req(&["--platform", "linux/amd64=.#a", "oci:out"]).is_ok());
        assert!(matches!(
            req(&["--platform", "linux/amd64=.#a", "docker-archive:-"]),
            Err(UsageError::MultiArchArchive(..))
        ));
    }

    #[test]
    fn local_targets_annotations_and_output_flags() {
        let req = |args: &[&str]| parse(args).unwrap().push.into_request();
        let r = req(&[".#a", "oci:out:v1", "--annotation", "a.b=c", "--json"]).unwrap();
        assert!(matches!(r.destination, Destination::Local(_)));
        assert_eq!(r.annotations["a.b"], "c");
        assert!(r.default_annotations);
        let r = req(&[".#a", "r.io/x", "--no-default-annotations"]).unwrap();
        assert!(!r.default_annotations && r.annotations.is_empty());
        assert!(matches!(
            req(&[".#a", "docker-archive:-", "--json"]),
            Err(UsageError::StdoutTwice(_))
        ));
        assert!(matches!(
            req(&[".#a", "oci:out", "--cache-from", "r.io/x"]),
            Err(UsageError::RegistryOnly(..))
        ));
        assert!(req(&[".#a", "r.io/x", "--annotation", "novalue"]).is_err());
        assert!(parse(&[".#a", "r.io/x", "--json", "--dry-run"]).is_err());
    }
}
