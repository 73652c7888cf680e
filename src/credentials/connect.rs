//! Connecting to the registry a command reads (or copies into) with the credentials it was
//! given, else the stored ones: what `inspect`, `verify` and `copy` share. (A push connects in
//! `push/registry.rs`, off the async threads and with the host facts of its cache.)

use std::path::PathBuf;
use std::sync::Arc;

use super::{lookup, DockerConfigError};
use crate::progress::{HttpNotices, Reporter};
use crate::reference::Reference;
use crate::registry::{Access, Client, ConnectOptions, Credentials, RegistryError, RetryPolicy};

/// How to reach a registry other than a push's destination.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    pub insecure: bool,
    pub ca_cert: Option<PathBuf>,
    pub retry: RetryPolicy,
}

/// A client for `reference`'s registry with `access`, using `explicit` credentials, else the
/// stored ones.
pub async fn connect<E>(
    reference: &Reference,
    explicit: Option<&Credentials>,
    access: Access,
    reach: &Reach,
    reporter: &Arc<dyn Reporter>,
) -> Result<Client, E>
where
    E: From<RegistryError> + From<DockerConfigError>,
{
    // The keyring (D-Bus) and credential helpers (a child process) block: off the async threads.
    let (explicit, registry, told) = (
        explicit.cloned(),
        reference.registry().to_owned(),
        reporter.clone(),
    );
    let credentials =
        tokio::task::spawn_blocking(move || lookup(explicit.as_ref(), &registry, told.as_ref()))
            .await
            .unwrap_or(Ok(None))?;
    Ok(Client::connect(
        reference,
        ConnectOptions {
            access,
            insecure: reach.insecure,
            ca_cert: reach.ca_cert.clone(),
            credentials,
            notices: Arc::new(HttpNotices(reporter.clone())),
            retry: reach.retry,
            host_facts: None,
        },
    )
    .await?)
}
