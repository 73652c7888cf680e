//! Where a registry's credentials come from, in order: given explicitly, then stored by
//! `nixpush login` in the OS keyring, then Docker's config (entries, then credential helpers),
//! then podman's auth files, else anonymous. The registry client only ever sees the answer.

mod connect;
mod docker_config;
mod keyring;
mod login;

use std::path::PathBuf;

pub use connect::{connect, Reach};
pub use docker_config::{default_config_path, podman_auth_paths, DockerConfigError};
pub use keyring::{
    within, CredentialStore, KeyringStore, OsKeyring, StoreError, KEYRING_KIND, LOOKUP_TIMEOUT,
    SERVICE,
};
pub use login::{login, logout, logout_from, registry_host, store_login, LoginError, LoginRequest};

use crate::progress::{Reporter, Warning};
use crate::registry::Credentials;

/// Credentials stored for `registry`: the OS keyring (`nixpush login`), then Docker's config
/// (entries, then its credential helper), then podman's auth files. A source that cannot be
/// read is reported and skipped (a machine without a keyring silently): the registry will say
/// if anonymous access is not enough.
pub fn stored_credentials(
    registry: &str,
    reporter: &dyn Reporter,
) -> Result<Option<Credentials>, DockerConfigError> {
    lookup(None, registry, reporter)
}

/// Credentials for `registry`: `explicit` (given on the command line or in the environment)
/// when there are some, else the stored ones (see [`stored_credentials`]). Blocking: the
/// keyring is asked over D-Bus and credential helpers are child processes.
pub fn lookup(
    explicit: Option<&Credentials>,
    registry: &str,
    reporter: &dyn Reporter,
) -> Result<Option<Credentials>, DockerConfigError> {
    first_credentials(
        explicit,
        OsKeyring::shared(),
        stored_files(),
        registry,
        reporter,
    )
}

/// Docker's config, then podman's auth files.
fn stored_files() -> impl Iterator<Item = PathBuf> {
    docker_config::default_config_path()
        .into_iter()
        .chain(docker_config::podman_auth_paths())
}

/// The first credentials of: `explicit`, the `keyring`'s entry for `registry`, the
/// Docker-format auth `files` in order. A source that cannot be read is told and skipped,
/// except a credential helper that fails: that is an error.
pub fn first_credentials(
    explicit: Option<&Credentials>,
    keyring: &dyn CredentialStore,
    files: impl IntoIterator<Item = PathBuf>,
    registry: &str,
    reporter: &dyn Reporter,
) -> Result<Option<Credentials>, DockerConfigError> {
    if let Some(c) = explicit {
        reporter.detail("credentials: given on the command line or in NIXPUSH_USERNAME");
        return Ok(Some(c.clone()));
    }
    match keyring.get(registry) {
        Ok(Some(c)) => {
            reporter.detail(&format!(
                "credentials for {registry}: the keyring (user {})",
                c.username
            ));
            return Ok(Some(c));
        }
        Ok(None) => {}
        Err(e @ StoreError::NoService(_)) => reporter.detail(&format!("credentials: {e}")),
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            reporter.warning(&Warning::CredentialsIgnored {
                from: "the keyring".into(),
                reason: format!("{e}{cause}"),
            });
        }
    }
    for path in files {
        match docker_config::lookup(&path, registry) {
            Ok(Some(c)) => {
                reporter.detail(&format!(
                    "credentials for {registry}: {} (user {})",
                    path.display(),
                    c.username
                ));
                return Ok(Some(c));
            }
            Ok(None) => {}
            Err(e) if e.is_helper() => return Err(e),
            Err(e) => reporter.warning(&Warning::CredentialsIgnored {
                from: "stored credentials".into(),
                reason: e.to_string(),
            }),
        }
    }
    Ok(None)
}
