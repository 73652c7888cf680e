//! `nixpush [push]`'s arguments, and the step that checks them into a `PushRequest`.

use clap::Args;

use nixpush::destination::Destination;
use nixpush::known_layers::LayerCache;
use nixpush::nix::PlatformSpec;
use nixpush::plan::ConfigFlags;
use nixpush::reference::Reference;
use nixpush::registry::RetryPolicy;
use nixpush::request::{ImageSource, PushRequest};

use super::choices::{CompressionArg, FormatArg, SbomFormatArg, UploadArg};
use super::credentials_args::explicit_credentials;
use super::{default_jobs, UsageError};

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
    /// Push every image described in this TOML file (one [[image]] table each, see docs/usage.md),
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
    /// How layers are compressed: gzip (read by every client), zstd (smaller, faster; needs a
    /// recent runtime), none [default: gzip; a nix2container image's: none, as it sends them].
    #[arg(long, value_enum, help_heading = "Layers")]
    pub compression: Option<CompressionArg>,
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
    /// The media types of the manifests written to a registry: oci, or docker (Docker schema 2,
    /// for registries that refuse OCI manifests; no annotations, no zstd layers). Without it,
    /// OCI, and Docker schema 2 for a registry that refuses OCI (tried once, then remembered).
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Registry")]
    pub format: Option<FormatArg>,
    /// Attach a software bill of materials of the image's exact closure (every store path, its
    /// NAR hash, its references) to the pushed image as an OCI 1.1 referrer.
    #[arg(long, help_heading = "Output")]
    pub sbom: bool,
    /// The SBOM's format: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON) [default:
    /// spdx].
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Output")]
    pub sbom_format: Option<SbomFormatArg>,
    #[command(flatten)]
    pub sign: super::sign_args::SignArgs,
    /// Put the same image in this registry repository too, HOST[:PORT]/REPO (repeatable): once
    /// the destination holds it, copied (mounted or streamed, never rebuilt) with its
    /// attachments and signatures, then tagged with the same tags.
    #[arg(long = "mirror", value_name = "REF", help_heading = "Registry")]
    pub mirrors: Vec<String>,
    /// Put a plain package's layers on top of this registry image, by tag or digest (resolved
    /// once; each platform takes the base's matching image): its layers mounted or streamed,
    /// never rebuilt, its run config under the image's own flags.
    #[arg(long, value_name = "REF", help_heading = "Image config")]
    pub base: Option<String>,
    /// Trust no known blob: rebuild every layer that would be skipped or mounted and reuse the
    /// blob only if it is byte-identical (costs the CPU of a cold push, uploads no more).
    #[arg(long, help_heading = "Layers")]
    pub verify: bool,
    /// Neither read nor write the local layer cache.
    #[arg(long, help_heading = "Layers")]
    pub no_cache: bool,

    /// Read a store path that is not in the local store (and its closure) from this binary
    /// cache: http://, https://, file:// or s3://BUCKET?region=R&endpoint=HOST&scheme=http|https&profile=P
    /// (repeatable, tried in order). Without it, the substituters Nix is configured with, by
    /// priority. Nothing is written to the local store.
    #[arg(
        long = "substituter",
        value_name = "URL",
        help_heading = "Binary cache"
    )]
    pub substituters: Vec<String>,
    /// Trust narinfos signed with this key: NAME:KEY as `nix key convert-secret-to-public`
    /// prints it (repeatable).
    #[arg(
        long = "trusted-public-key",
        value_name = "NAME:KEY",
        help_heading = "Binary cache"
    )]
    pub trusted_public_keys: Vec<String>,
    /// Take narinfos from the binary caches without a trusted signature (each NAR is still
    /// checked against its narinfo's hash and size).
    #[arg(long, help_heading = "Binary cache")]
    pub no_check_sigs: bool,
    /// The Nix system the store path was built for (x86_64-linux, aarch64-linux), when its
    /// derivation is not at hand (a narinfo seldom says); it must agree with one that is.
    #[arg(long, value_name = "SYSTEM", help_heading = "Binary cache")]
    pub system: Option<String>,

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
    /// Trust the certificates in this PEM file too (a private registry's CA, or its own
    /// self-signed certificate); HTTPS only.
    #[arg(long, value_name = "FILE", help_heading = "Registry")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Keep trying a request that fails in a way that may pass (a dropped connection, a 5xx, a
    /// 429) for this long from its first try, then give up on the push: seconds, or with a
    /// unit (`90s`, `5m`).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "90s",
        value_parser = parse_duration,
        help_heading = "Registry"
    )]
    pub retry_for: std::time::Duration,
    /// Count a request as failed (and try it again) when no byte of the registry's answer has
    /// come for this long: seconds, or with a unit (`30s`, `2m`).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_duration,
        help_heading = "Registry"
    )]
    pub stall_timeout: std::time::Duration,

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

    /// Print one JSON document describing what was pushed (see docs/usage.md) instead of the
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

    /// Set for the arguments of one image of an `--images` file: the run's registry flags are
    /// for the file's registry destinations, not conflicts with its local ones.
    #[arg(skip)]
    pub(super) in_images_file: bool,
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

/// Shortest `--retry-for` or `--stall-timeout`: below it, every request fails (nothing answers
/// in microseconds), which says nothing of the registry.
const MIN_DURATION: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest `--retry-for` or `--stall-timeout`: a day.
const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A duration as `--retry-for` and `--stall-timeout` take it: seconds (`90`, `1.5`), or a
/// number with `ms`, `s`, `m` or `h`; from 100ms to a day.
pub(super) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (seconds, or 500ms, 30s, 5m, 1h)"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit {other:?}: use ms, s, m or h")),
    };
    // `number` is digits and dots only: never NaN.
    if seconds < MIN_DURATION.as_secs_f64() {
        return Err(format!(
            "{s:?} is too short: at least 100ms (a shorter one fails every request)"
        ));
    }
    if seconds > MAX_DURATION.as_secs_f64() {
        return Err(format!("{s:?} is too long: at most a day (24h)"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
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
        let destination = Destination::parse(&self.destination.clone().unwrap_or_default())?;
        super::conflicts::check(&self, &destination)?;
        if let Destination::Local(local) = &destination {
            if self.format.is_some() {
                return Err(UsageError::RegistryOnly(
                    "--format",
                    destination.to_string(),
                ));
            }
            if self.sbom
                && matches!(
                    local,
                    nixpush::destination::LocalTarget::DockerArchive { .. }
                )
            {
                // A docker-archive has no place for an artifact; an OCI layout has.
                return Err(UsageError::NoReferrers(destination.to_string()));
            }
            if !self.cache_from.is_empty() {
                return Err(UsageError::RegistryOnly(
                    "--cache-from",
                    destination.to_string(),
                ));
            }
            if !self.platforms.is_empty()
                && matches!(
                    local,
                    nixpush::destination::LocalTarget::DockerArchive { .. }
                )
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
        if let Some(bad) = self.tags.iter().find(|t| !nixpush::reference::valid_tag(t)) {
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
            Some("now") => Some(nixpush::plan::rfc3339_now()),
            Some(t) if nixpush::plan::is_rfc3339(t) => Some(t.to_owned()),
            Some(t) => return Err(UsageError::Created(t.to_owned())),
        };
        let compression =
            CompressionArg::given(self.compression).with_level(self.compression_level)?;
        nixpush::binary_cache::TrustedKeys::parse(&self.trusted_public_keys)?;
        if let Some(bad) = self
            .substituters
            .iter()
            .find(|u| !nixpush::binary_cache::is_cache_url(u))
        {
            return Err(UsageError::Substituter(nixpush::binary_cache::redact(bad)));
        }
        for url in self.substituters.iter().filter(|u| u.starts_with("s3://")) {
            nixpush::binary_cache::S3Location::parse(url)?;
        }
        if let Some(system) = &self.system {
            if nixpush::nix::Platform::from_nix_system(system).is_err() {
                return Err(UsageError::System(system.clone()));
            }
        }
        Ok(PushRequest {
            images,
            nix_args: self.nix_args,
            destination,
            config,
            contents: self.contents,
            cache_from,
            mount_from,
            upload: self.upload.into(),
            format: self.format.map(Into::into),
            sbom: self
                .sbom
                .then(|| self.sbom_format.unwrap_or(SbomFormatArg::Spdx).into()),
            signer: None,
            provenance: self.sign.provenance,
            mirrors: self
                .mirrors
                .iter()
                .map(|m| Reference::parse(m))
                .collect::<Result<_, _>>()?,
            base: self.base.as_deref().map(Reference::parse).transpose()?,
            tags: self.tags,
            credentials: explicit_credentials(
                self.creds.as_deref(),
                self.username.as_deref(),
                self.password_stdin,
            )?,
            created,
            max_layers: self.max_layers,
            compression,
            compression_chosen: self.compression.is_some(),
            jobs: self.jobs.unwrap_or_else(default_jobs),
            insecure: self.insecure,
            ca_cert: self.ca_cert,
            retry: RetryPolicy {
                retry_for: self.retry_for,
                stall_timeout: self.stall_timeout,
            },
            verify: self.verify,
            substituters: nixpush::binary_cache::SubstituterSettings {
                urls: self.substituters,
                trusted_public_keys: self.trusted_public_keys,
                check_sigs: !self.no_check_sigs,
            },
            system: self.system,
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
