//! The OCI distribution API, as nixpush speaks it: one function per protocol step, one client
//! that authenticates and retries every request in one place, and errors that say what failed
//! without ever carrying a secret.

mod auth;
mod blob;
mod certs_d;
mod chunks;
mod client;
mod error;
mod host_facts;
mod manifest;
mod pinned_cert;
mod retry;
mod stall;
mod tls_config;
mod transport;

pub use auth::{Credentials, Secret};
pub use blob::{BlobBody, Mount, UploadSession};
pub use client::{cancel_abandoned_uploads, Access, Client, ConnectOptions};
pub use error::{display_url, is_temporary_status, transport_reason, RegistryError};
pub use host_facts::{HostFacts, DEFAULT_CHUNK};
pub use retry::{
    backoff, RetryPolicy, DEFAULT_RETRY_FOR, DEFAULT_STALL_TIMEOUT, FIRST_CONTACT_RETRY_FOR,
};
pub(crate) use retry::{with_retries, Attempt};
